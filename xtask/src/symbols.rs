//! The kernel's symbol map for readable exception reports: function symbols from the kernel
//! ELF's `.symtab`, demangled, as `ADDRESS SIZE NAME` lines (hex, link-time addresses, sorted).
//! The kernel reads it from the ramdisk (kernel/src/arch/x86_64/symbols.rs).

use std::fmt::Write;

const SHT_SYMTAB: u32 = 2;
const STT_FUNC: u8 = 2;
const SYMBOL_SIZE: usize = 24;

fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn read_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

struct Section {
    kind: u32,
    offset: usize,
    size: usize,
    link: usize,
}

fn sections(elf: &[u8]) -> Option<Vec<Section>> {
    if elf.get(..4)? != b"\x7fELF" || elf[4] != 2 || elf[5] != 1 {
        return None; // not a little-endian ELF64
    }
    let table = read_u64(elf, 0x28)? as usize;
    let entry_size = usize::from(read_u16(elf, 0x3a)?);
    let count = usize::from(read_u16(elf, 0x3c)?);
    (0..count)
        .map(|i| {
            let at = table + i * entry_size;
            Some(Section {
                kind: read_u32(elf, at + 4)?,
                offset: read_u64(elf, at + 0x18)? as usize,
                size: read_u64(elf, at + 0x20)? as usize,
                link: read_u32(elf, at + 0x28)? as usize,
            })
        })
        .collect()
}

/// The symbol map text, or an error naming what is wrong with the ELF.
pub fn symbol_map(elf: &[u8]) -> Result<String, String> {
    let sections = sections(elf).ok_or("the kernel is not a readable little-endian ELF64 file")?;
    let symtab = sections
        .iter()
        .find(|s| s.kind == SHT_SYMTAB)
        .ok_or("the kernel ELF has no symbol table (stripped?)")?;
    let strtab = sections
        .get(symtab.link)
        .ok_or("the symbol table names no string table")?;
    let strings = elf
        .get(strtab.offset..strtab.offset + strtab.size)
        .ok_or("the string table lies outside the file")?;
    let symbols = elf
        .get(symtab.offset..symtab.offset + symtab.size)
        .ok_or("the symbol table lies outside the file")?;
    let mut functions: Vec<(u64, u64, String)> = symbols
        .as_chunks::<SYMBOL_SIZE>()
        .0
        .iter()
        .filter_map(|sym| {
            let name_at = read_u32(sym, 0)? as usize;
            let kind = sym[4] & 0xf;
            let value = read_u64(sym, 8)?;
            let size = read_u64(sym, 16)?;
            if kind != STT_FUNC || value == 0 || size == 0 {
                return None;
            }
            let raw = strings.get(name_at..)?;
            let raw = std::str::from_utf8(&raw[..raw.iter().position(|&b| b == 0)?]).ok()?;
            Some((value, size, format!("{:#}", rustc_demangle::demangle(raw))))
        })
        .collect();
    functions.sort();
    functions.dedup_by_key(|f| f.0);
    let mut text = String::new();
    for (address, size, name) in functions {
        let _ = writeln!(text, "{address:x} {size:x} {name}");
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_elf_input() {
        assert!(symbol_map(b"not an elf").is_err());
        assert!(symbol_map(&[]).is_err());
    }

    #[test]
    fn reads_its_own_binary() {
        // The test binary is an ELF64 with a symbol table on Linux hosts.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let map = symbol_map(&me).expect("own executable readable");
        assert!(
            map.lines().any(|l| l.contains("reads_its_own_binary")),
            "own test function missing"
        );
        let addresses: Vec<u64> = map
            .lines()
            .map(|l| u64::from_str_radix(l.split(' ').next().unwrap(), 16).unwrap())
            .collect();
        assert!(addresses.windows(2).all(|w| w[0] < w[1]), "map not sorted");
    }
}
