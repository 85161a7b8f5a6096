//! Kernel symbol names for exception reports and backtraces.
//!
//! The bootloader loads only the kernel's segments, not its symbol table, so `cargo xtask`
//! packs a text map into the ramdisk at [`SYMBOL_MAP_PATH`]: one function per line,
//! `ADDRESS SIZE NAME` in hex with link-time addresses, sorted by address. Addresses at run time
//! are shifted by the kernel's load offset. Lookups scan the text: they serve reports, not hot paths.

use spin::Once;

const SYMBOL_MAP_PATH: &str = "/boot/kernel.sym";

struct SymbolMap {
    text: &'static str,
    load_offset: u64,
}

static MAP: Once<SymbolMap> = Once::new();

/// Finds the symbol map in the ramdisk; reports stay numeric without one.
pub fn init(ramdisk: &'static [u8], load_offset: u64) {
    let text = initrd::Archive::new(ramdisk)
        .find(SYMBOL_MAP_PATH)
        .and_then(|entry| core::str::from_utf8(entry.data).ok());
    match text {
        Some(text) => {
            MAP.call_once(|| SymbolMap { text, load_offset });
        }
        None => log::warn!("no symbol map at {SYMBOL_MAP_PATH}: reports show bare addresses"),
    }
}

/// The function containing `addr` and the offset into it.
pub fn lookup(addr: u64) -> Option<(&'static str, u64)> {
    let map = MAP.get()?;
    let link_addr = addr.checked_sub(map.load_offset)?;
    map.text.lines().find_map(|line| {
        let mut fields = line.splitn(3, ' ');
        let start = u64::from_str_radix(fields.next()?, 16).ok()?;
        let size = u64::from_str_radix(fields.next()?, 16).ok()?;
        let name = fields.next()?;
        (start <= link_addr && link_addr < start + size.max(1)).then(|| (name, link_addr - start))
    })
}
