//! Debian's packages in the ramdisk: `cargo xtask qemu --debian PKG[,PKG...]`.
//!
//! The packages and the closure of their dependencies (Depends and Pre-Depends, no Recommends)
//! are found with `apt-cache depends`; of alternatives `a | b` the first that exists is taken,
//! and a virtual package is served by its first provider, unless the closure already holds one
//! of them. The `.deb` files come from Debian's archive through `apt-get download` into
//! `target/debian/debs/`, once: files already there are kept. They are unpacked with
//! `dpkg-deb -x` into a staging root, `target/debian/root-HASH/` (HASH names the set of `.deb`
//! files), made once and reused. The ramdisk then carries every file, directory and symbolic
//! link of that root at its path, less the documentation ([`SKIPPED`]).
//!
//! Nothing is configured: the packages' maintainer scripts never run, so what they would make
//! (alternatives' links, caches such as `/etc/ld.so.cache`) is absent; the dynamic linker finds
//! the libraries in its default directories without a cache.
//!
//! This module owns `target/debian/`; nothing else writes there, and a staging root is built
//! under a temporary name and renamed once complete, so an interrupted run leaves no half root
//! that a later one would take for done. Only the host's apt and dpkg are used, so the release
//! is whatever the host's apt sources name.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::artifacts;
use crate::toolchain::{capture, run};

/// Directories of the staging root left out of the ramdisk: documentation and translations.
pub const SKIPPED: &[&str] = &[
    "usr/share/doc",
    "usr/share/man",
    "usr/share/locale",
    "usr/share/info",
];
/// Symbolic links followed in one path lookup before giving up, as Linux's limit.
const MAX_LINKS: usize = 40;

/// Debian packages unpacked on the host, ready for the ramdisk.
pub struct Staged {
    /// The unpacked tree, which the ramdisk carries at `/`.
    pub root: PathBuf,
    /// Every package in it, the dependencies included, sorted.
    pub packages: Vec<String>,
}

impl Staged {
    /// The host path of the image's `path` (absolute), following symbolic links as the kernel
    /// would in the image; `None` where nothing is there. See [`find_in_root`].
    pub fn find(&self, path: &str) -> Option<PathBuf> {
        find_in_root(&self.root, path)
    }
}

/// Resolves `requested` and its dependencies, fetches what is not cached yet and unpacks the
/// lot into its staging root (unless that root exists already).
pub fn stage(requested: &[String]) -> Result<Staged, String> {
    stage_leaving_out(requested, &[])
}

/// [`stage`], with the packages in `left_out` taken for installed already: neither they nor
/// what only they need come in (for dependencies only maintainer scripts use, such as dpkg and
/// perl).
pub fn stage_leaving_out(requested: &[String], left_out: &[&str]) -> Result<Staged, String> {
    if requested.is_empty() {
        return Err("--debian needs at least one package name".into());
    }
    if let Some(bad) = requested.iter().find(|name| !is_package_name(name)) {
        return Err(format!(
            "{bad:?} is not a Debian package name (lower-case letters, digits, '+', '-', '.')"
        ));
    }
    let packages = closure(requested, left_out)?;
    let dir = artifacts::target_dir().join("debian");
    let debs = fetch(&packages, &dir)?;
    let names: Vec<&str> = debs
        .iter()
        .filter_map(|deb| deb.file_name()?.to_str())
        .collect();
    let root = dir.join(format!("root-{:016x}", fnv1a(names.join("\n").as_bytes())));
    if !root.is_dir() {
        unpack(&debs, &root)?;
    }
    Ok(Staged { root, packages })
}

/// Whether `name` is spelt as Debian's policy allows: at least two characters of `a-z`, `0-9`,
/// `+`, `-` and `.`, starting with a letter or digit (so never an option to apt).
fn is_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

/// One package in `apt-cache depends` output.
#[derive(Debug, PartialEq, Eq)]
struct Package {
    name: String,
    /// Shown as `<name>`: no package has this name, though some may provide it.
    is_virtual: bool,
    /// The Depends and Pre-Depends, each a list of alternatives (`a | b` is two).
    dependencies: Vec<Vec<Alternative>>,
}

/// One alternative of a dependency.
#[derive(Debug, PartialEq, Eq)]
struct Alternative {
    name: String,
    is_virtual: bool,
    /// The packages apt lists as able to serve a virtual `name`.
    providers: Vec<String>,
}

impl Alternative {
    /// The real packages that satisfy this alternative, best first: the package itself, or a
    /// virtual package's providers of this architecture (`name:arch` ones are left out).
    fn candidates(&self) -> Vec<&str> {
        if self.is_virtual {
            self.providers
                .iter()
                .map(String::as_str)
                .filter(|p| !p.contains(':'))
                .collect()
        } else {
            vec![self.name.as_str()]
        }
    }
}

/// The packages `requested` need, themselves included, sorted: the closure over Depends and
/// Pre-Depends, one `apt-cache depends` per round of newly found packages; a dependency whose
/// choice is in `left_out` adds nothing.
fn closure(requested: &[String], left_out: &[&str]) -> Result<Vec<String>, String> {
    let mut chosen: BTreeSet<String> = BTreeSet::new();
    let mut pending: BTreeSet<String> = requested.iter().cloned().collect();
    while !pending.is_empty() {
        let mut command = Command::new("apt-cache");
        command.args([
            "depends",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
        ]);
        command.args(&pending);
        let text = capture(&mut command).map_err(|e| {
            format!("{e} (check the package names; `apt-get update` refreshes apt's lists)")
        })?;
        let packages = parse_depends(&text);
        for name in &pending {
            match packages.iter().find(|p| p.name == *name) {
                Some(package) if !package.is_virtual => {}
                Some(_) => {
                    return Err(format!(
                        "{name} is a virtual package: name a package that provides it \
                         (`apt-cache showpkg {name}` lists them)"
                    ));
                }
                None => return Err(format!("apt knows no package {name}")),
            }
        }
        chosen.append(&mut pending);
        for package in &packages {
            for dependency in &package.dependencies {
                if let Some(pick) = choose(dependency, &chosen, &pending) {
                    if !left_out.contains(&pick) {
                        pending.insert(pick.to_owned());
                    }
                } else if !is_satisfied(dependency, &chosen, &pending) {
                    let names: Vec<&str> = dependency.iter().map(|a| a.name.as_str()).collect();
                    return Err(format!(
                        "no package satisfies {}'s dependency on {}",
                        package.name,
                        names.join(" | ")
                    ));
                }
            }
        }
    }
    Ok(chosen.into_iter().collect())
}

/// Whether a package already taken (`chosen`, or `pending` in the next round) satisfies
/// `dependency`.
fn is_satisfied(
    dependency: &[Alternative],
    chosen: &BTreeSet<String>,
    pending: &BTreeSet<String>,
) -> bool {
    dependency
        .iter()
        .flat_map(Alternative::candidates)
        .any(|name| chosen.contains(name) || pending.contains(name))
}

/// The package to add for `dependency`: `None` if one already taken satisfies it (or nothing
/// can), else the first candidate of the first alternative that has one.
fn choose<'a>(
    dependency: &'a [Alternative],
    chosen: &BTreeSet<String>,
    pending: &BTreeSet<String>,
) -> Option<&'a str> {
    if is_satisfied(dependency, chosen, pending) {
        return None;
    }
    dependency
        .iter()
        .find_map(|alternative| alternative.candidates().first().copied())
}

/// Reads `apt-cache depends` output (without `--recurse`): a line per package, then one per
/// dependency, indented by two, ` |` instead where the next line is an alternative of the same
/// dependency, a virtual name in `<>`, and the providers of a virtual name indented by four:
///
/// ```text
/// libpam-modules
///   PreDepends: libc6
///  |PreDepends: debconf
///   PreDepends: <debconf-2.0>
///     cdebconf
///     debconf
/// ```
///
/// Dependencies other than Depends and PreDepends are ignored.
fn parse_depends(text: &str) -> Vec<Package> {
    let mut packages: Vec<Package> = Vec::new();
    // Whether the last dependency line ended in an alternative (` |`).
    let mut continues = false;
    for line in text.lines() {
        if let Some(provider) = line.strip_prefix("    ") {
            let last = packages
                .last_mut()
                .and_then(|p| p.dependencies.last_mut())
                .and_then(|d| d.last_mut());
            if let Some(alternative) = last {
                alternative.providers.push(provider.trim().to_owned());
            }
        } else if let Some(rest) = line.strip_prefix(' ') {
            let (alternative_follows, rest) = match rest.strip_prefix('|') {
                Some(rest) => (true, rest),
                None => (false, rest.trim_start()),
            };
            let Some((kind, target)) = rest.split_once(':') else {
                continue;
            };
            let Some(package) = packages.last_mut() else {
                continue;
            };
            if !matches!(kind, "Depends" | "PreDepends") {
                continue;
            }
            let (name, is_virtual) = split_virtual(target.trim());
            let alternative = Alternative {
                name: name.to_owned(),
                is_virtual,
                providers: Vec::new(),
            };
            match package.dependencies.last_mut() {
                Some(dependency) if continues => dependency.push(alternative),
                _ => package.dependencies.push(vec![alternative]),
            }
            continues = alternative_follows;
        } else if !line.trim().is_empty() {
            let (name, is_virtual) = split_virtual(line.trim());
            packages.push(Package {
                name: name.to_owned(),
                is_virtual,
                dependencies: Vec::new(),
            });
            continues = false;
        }
    }
    packages
}

/// `<name>` is virtual: `(name, true)`; anything else is `(text, false)`.
fn split_virtual(text: &str) -> (&str, bool) {
    match text.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
        Some(name) => (name, true),
        None => (text, false),
    }
}

/// The `.deb` of every package, from the cache `dir/debs/`, downloading into it those missing;
/// sorted by file name.
fn fetch(packages: &[String], dir: &Path) -> Result<Vec<PathBuf>, String> {
    let cache = dir.join("debs");
    std::fs::create_dir_all(&cache)
        .map_err(|e| format!("cannot create {}: {e}", cache.display()))?;
    // Asked in `dir`, which holds no .deb, apt-get lists every file (it leaves out those already
    // in its working directory) and downloads nothing.
    let mut uris = Command::new("apt-get");
    uris.args(["download", "--print-uris"])
        .args(packages)
        .current_dir(dir);
    let files = parse_print_uris(&capture(&mut uris)?);
    if files.len() != packages.len() {
        return Err(format!(
            "apt-get download --print-uris named {} files for {} packages",
            files.len(),
            packages.len()
        ));
    }
    let missing: Vec<&str> = files
        .iter()
        .filter(|file| !cache.join(file).is_file())
        .filter_map(|file| file.split('_').next())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "xtask: fetching {} package(s) from Debian's archive into {}",
            missing.len(),
            cache.display()
        );
        let mut download = Command::new("apt-get");
        download
            .args(["download", "-q", "-o", "APT::Sandbox::User=root"])
            .args(&missing)
            .current_dir(&cache);
        run(&mut download)?;
    }
    let mut debs: Vec<PathBuf> = files.iter().map(|file| cache.join(file)).collect();
    debs.sort();
    if let Some(absent) = debs.iter().find(|deb| !deb.is_file()) {
        return Err(format!("apt-get did not download {}", absent.display()));
    }
    Ok(debs)
}

/// The file names in `apt-get download --print-uris` output: one line per file,
/// `'URI' NAME SIZE HASH`.
fn parse_print_uris(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| line.starts_with('\''))
        .filter_map(|line| line.split_whitespace().nth(1))
        .map(str::to_owned)
        .collect()
}

/// Unpacks every `.deb` into `root`, through a temporary directory renamed at the end.
fn unpack(debs: &[PathBuf], root: &Path) -> Result<(), String> {
    let partial = root.with_extension("partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .map_err(|e| format!("cannot remove {}: {e}", partial.display()))?;
    }
    std::fs::create_dir_all(&partial)
        .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    eprintln!(
        "xtask: unpacking {} package(s) into {}",
        debs.len(),
        root.display()
    );
    for deb in debs {
        run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&partial))?;
    }
    std::fs::rename(&partial, root).map_err(|e| {
        format!(
            "cannot rename {} to {}: {e}",
            partial.display(),
            root.display()
        )
    })
}

/// 64-bit FNV-1a: a hash that stays the same across Rust releases, for naming staging roots.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Adds every directory, file and symbolic link under `root` to `archive` at its path relative
/// to `root`, with its permission bits, except [`SKIPPED`]; anything else (a device node, a
/// FIFO) is left out with a note.
pub fn add_tree(archive: &mut initrd::ArchiveBuilder, root: &Path) -> Result<(), String> {
    let mut directories = vec![root.to_owned()];
    while let Some(directory) = directories.pop() {
        let entries = std::fs::read_dir(&directory)
            .map_err(|e| format!("cannot read {}: {e}", directory.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot read {}: {e}", directory.display()))?;
            let host = entry.path();
            let shown = host.display();
            let path = host
                .strip_prefix(root)
                .ok()
                .and_then(Path::to_str)
                .ok_or_else(|| format!("{shown}: the file name is not UTF-8"))?;
            if SKIPPED.contains(&path) {
                continue;
            }
            let metadata = std::fs::symlink_metadata(&host)
                .map_err(|e| format!("cannot read {shown}: {e}"))?;
            let mode = std::os::unix::fs::PermissionsExt::mode(&metadata.permissions());
            let added = if metadata.is_symlink() {
                let target =
                    std::fs::read_link(&host).map_err(|e| format!("cannot read {shown}: {e}"))?;
                let target = target
                    .to_str()
                    .ok_or_else(|| format!("{shown}: the link's target is not UTF-8"))?;
                archive.add_symlink(path, target)
            } else if metadata.is_dir() {
                directories.push(host.clone());
                archive.add_dir(path, mode)
            } else if metadata.is_file() {
                let data = std::fs::read(&host).map_err(|e| format!("cannot read {shown}: {e}"))?;
                archive.add_file(path, mode, &data)
            } else {
                eprintln!(
                    "xtask: leaving {shown} out of the ramdisk: not a file, directory or link"
                );
                Ok(())
            };
            added.map_err(|e| format!("ramdisk: {e} (from {shown})"))?;
        }
    }
    Ok(())
}

/// The host path under `root` of the image's `path`, following symbolic links as the kernel
/// follows them in the image: an absolute target starts again at `root`, `..` stops at `root`.
/// `None` where nothing is there, a component is not a directory, or links nest deeper than
/// Linux allows; host files outside `root` are never looked at.
pub fn find_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    // Components still to walk, the next one last.
    let mut pending: Vec<String> = path.split('/').rev().map(str::to_owned).collect();
    let mut resolved = root.to_owned();
    let mut links = 0;
    while let Some(component) = pending.pop() {
        match component.as_str() {
            "" | "." => {}
            ".." => {
                if resolved != root {
                    resolved.pop();
                }
            }
            name => {
                let next = resolved.join(name);
                if std::fs::symlink_metadata(&next).ok()?.is_symlink() {
                    links += 1;
                    if links > MAX_LINKS {
                        return None;
                    }
                    let target = std::fs::read_link(&next).ok()?;
                    let target = target.to_str()?;
                    if target.starts_with('/') {
                        resolved = root.to_owned();
                    }
                    pending.extend(target.split('/').rev().map(str::to_owned));
                } else {
                    resolved = next;
                }
            }
        }
    }
    Some(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real(name: &str) -> Alternative {
        Alternative {
            name: name.into(),
            is_virtual: false,
            providers: Vec::new(),
        }
    }

    fn virtual_package(name: &str, providers: &[&str]) -> Alternative {
        Alternative {
            name: name.into(),
            is_virtual: true,
            providers: providers.iter().map(|p| (*p).into()).collect(),
        }
    }

    #[test]
    fn parses_apt_cache_depends() {
        let text = "\
libpam-modules
  PreDepends: libc6
 |PreDepends: debconf
  PreDepends: <debconf-2.0>
    cdebconf
    debconf
  Depends: <perl:any>
    perl
    perl:i386
  Recommends: ignored
hello
  Depends: libc6
  Conflicts: hello-traditional
<awk>
";
        let packages = parse_depends(text);
        assert_eq!(packages.len(), 3);
        assert_eq!(packages[0].name, "libpam-modules");
        assert!(!packages[0].is_virtual);
        assert_eq!(
            packages[0].dependencies,
            [
                vec![real("libc6")],
                vec![
                    real("debconf"),
                    virtual_package("debconf-2.0", &["cdebconf", "debconf"])
                ],
                vec![virtual_package("perl:any", &["perl", "perl:i386"])],
            ]
        );
        assert_eq!(packages[1].dependencies, [vec![real("libc6")]]);
        assert_eq!(packages[2].name, "awk");
        assert!(packages[2].is_virtual && packages[2].dependencies.is_empty());
    }

    #[test]
    fn chooses_the_first_real_alternative() {
        let set = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect();
        let none = BTreeSet::new();
        // A virtual package without providers is skipped; a virtual one is served by its
        // first provider of this architecture.
        let dependency = [
            virtual_package("gone", &[]),
            virtual_package("c-compiler", &["gcc:i386", "gcc", "clang"]),
        ];
        assert_eq!(choose(&dependency, &none, &none), Some("gcc"));
        // One already taken serves it, whether an alternative or a provider.
        assert_eq!(choose(&dependency, &set(&["clang"]), &none), None);
        assert_eq!(choose(&dependency, &none, &set(&["clang"])), None);
        let plain = [real("mawk"), real("gawk")];
        assert_eq!(choose(&plain, &none, &none), Some("mawk"));
        assert_eq!(choose(&plain, &set(&["gawk"]), &none), None);
        let unsatisfiable = [virtual_package("nothing", &[])];
        assert_eq!(choose(&unsatisfiable, &none, &none), None);
        assert!(!is_satisfied(&unsatisfiable, &none, &none));
    }

    #[test]
    fn reads_print_uris_and_checks_names() {
        let text = "'uri://archive/pool/main/h/hello/hello_2.10-3_amd64.deb' hello_2.10-3_amd64.deb 53100 SHA256:ab\n\
                    'uri://archive/x/libc6_2.36_amd64.deb' libc6_2.36_amd64.deb 2759320 SHA256:cd\n\
                    W: a warning\n";
        assert_eq!(
            parse_print_uris(text),
            ["hello_2.10-3_amd64.deb", "libc6_2.36_amd64.deb"]
        );
        assert!(is_package_name("libc6") && is_package_name("g++-12"));
        for bad in ["-x", "a", "Hello", "a b", "a_b", "--print-uris"] {
            assert!(!is_package_name(bad), "{bad}");
        }
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    /// A fresh scratch directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-debian-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn finds_paths_through_links_inside_the_root() {
        use std::os::unix::fs::symlink;
        let root = scratch("find");
        std::fs::create_dir_all(root.join("lib/x86_64-linux-gnu")).unwrap();
        std::fs::create_dir_all(root.join("lib64")).unwrap();
        std::fs::write(root.join("lib/x86_64-linux-gnu/ld.so"), b"ld").unwrap();
        // Absolute targets are read inside the root, not on the host.
        symlink("/lib/x86_64-linux-gnu/ld.so", root.join("lib64/ld.so")).unwrap();
        symlink("../lib/x86_64-linux-gnu", root.join("lib64/dir")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        symlink("/etc/passwd", root.join("hostfile")).unwrap();
        let ld = root.join("lib/x86_64-linux-gnu/ld.so");
        assert_eq!(find_in_root(&root, "/lib64/ld.so"), Some(ld.clone()));
        assert_eq!(find_in_root(&root, "/lib64/dir/ld.so"), Some(ld.clone()));
        assert_eq!(
            find_in_root(&root, "/../../lib64/./ld.so"),
            Some(ld.clone())
        );
        assert_eq!(find_in_root(&root, "/loop"), None);
        assert_eq!(find_in_root(&root, "/hostfile"), None);
        assert_eq!(find_in_root(&root, "/lib64/ld.so/x"), None);
        assert_eq!(find_in_root(&root, "/missing"), None);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn packs_a_tree_with_links_and_without_documentation() {
        use std::os::unix::fs::{PermissionsExt, symlink};
        let root = scratch("tree");
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::create_dir_all(root.join("usr/share/doc/hello")).unwrap();
        std::fs::create_dir_all(root.join("usr/share/docs")).unwrap();
        std::fs::write(root.join("usr/share/doc/hello/copyright"), b"c").unwrap();
        std::fs::write(root.join("usr/bin/hello"), b"\x7fELF").unwrap();
        std::fs::set_permissions(
            root.join("usr/bin/hello"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        symlink("/usr/bin/hello", root.join("usr/bin/hi")).unwrap();
        let mut archive = initrd::ArchiveBuilder::new();
        add_tree(&mut archive, &root).unwrap();
        let bytes = archive.finish();
        let archive = initrd::Archive::new(&bytes);
        let entries: Vec<_> = archive
            .iter()
            .map(|e| {
                let e = e.unwrap();
                // Directories keep the scratch directories' modes, which the umask decides.
                let mode = if e.is_dir() { 0o040_000 } else { e.mode };
                (e.name.to_owned(), mode, e.data.to_vec())
            })
            .collect();
        let expected = [
            ("usr", 0o040_000, &b""[..]),
            ("usr/bin", 0o040_000, b""),
            ("usr/bin/hello", 0o100_755, b"\x7fELF"),
            ("usr/bin/hi", 0o120_777, b"/usr/bin/hello"),
            ("usr/share", 0o040_000, b""),
            ("usr/share/docs", 0o040_000, b""),
        ]
        .map(|(name, mode, data)| (name.to_owned(), mode, data.to_vec()));
        assert_eq!(entries, expected);
        std::fs::remove_dir_all(root).unwrap();
    }
}
