//! The shared libraries and ELF interpreter a program needs, found as the dynamic loader would:
//! DT_RPATH, LD_LIBRARY_PATH is ignored (a build must not depend on the caller's shell),
//! DT_RUNPATH, /etc/ld.so.conf (with its `include`s), then the default directories.

use anyhow::{Context, Result};
use goblin::elf::Elf;
use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// Where libraries are looked for after a program's own RPATH/RUNPATH.
#[derive(Debug, Clone)]
pub struct LibSearch {
    pub dirs: Vec<PathBuf>,
}

const DEFAULT_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

impl LibSearch {
    /// This system's: /etc/ld.so.conf and the default directories.
    pub fn system() -> Self {
        let mut dirs = Vec::new();
        read_ld_so_conf(Path::new("/etc/ld.so.conf"), &mut dirs, 0);
        for d in DEFAULT_DIRS {
            dirs.push(PathBuf::from(d));
        }
        let mut seen = BTreeSet::new();
        dirs.retain(|d| seen.insert(d.clone()));
        Self { dirs }
    }
}

fn read_ld_so_conf(file: &Path, dirs: &mut Vec<PathBuf>, depth: usize) {
    let Ok(text) = std::fs::read_to_string(file) else {
        return;
    };
    if depth > 8 {
        return;
    }
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if let Some(pattern) = line.strip_prefix("include") {
            for included in expand_include(pattern.trim(), file) {
                read_ld_so_conf(&included, dirs, depth + 1);
            }
        } else if line.starts_with('/') {
            dirs.push(PathBuf::from(line));
        }
    }
}

/// `include /etc/ld.so.conf.d/*.conf`: a glob only in the last component, as in practice.
fn expand_include(pattern: &str, from: &Path) -> Vec<PathBuf> {
    let path = if pattern.starts_with('/') {
        PathBuf::from(pattern)
    } else {
        from.parent().unwrap_or(Path::new("/")).join(pattern)
    };
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = read
        .flatten()
        .filter(|e| {
            e.file_name().to_str().is_some_and(|n| {
                lifeboat_core::kmod::alias::glob_match(name.as_bytes(), n.as_bytes())
            })
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// What a program needs to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElfDeps {
    /// The ELF interpreter (PT_INTERP), e.g. /lib64/ld-linux-x86-64.so.2.
    pub interpreter: Option<PathBuf>,
    /// Every shared library, transitively, at the path where it was found.
    pub libraries: Vec<PathBuf>,
    /// DT_NEEDED names that were not found anywhere.
    pub missing: Vec<String>,
}

struct Object {
    interpreter: Option<String>,
    needed: Vec<String>,
    rpaths: Vec<String>,
    runpaths: Vec<String>,
    is_64: bool,
    machine: u16,
}

fn read_object(path: &Path) -> Result<Option<Object>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !bytes.starts_with(b"\x7fELF") {
        return Ok(None);
    }
    let elf = Elf::parse(&bytes)
        .with_context(|| format!("{}: not a readable ELF file", path.display()))?;
    Ok(Some(Object {
        interpreter: elf.interpreter.map(str::to_string),
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        rpaths: elf.rpaths.iter().map(|s| s.to_string()).collect(),
        runpaths: elf.runpaths.iter().map(|s| s.to_string()).collect(),
        is_64: elf.is_64,
        machine: elf.header.e_machine,
    }))
}

/// Whether `path` is an ELF file of the given class and machine (a 32-bit libc in /lib must not
/// satisfy a 64-bit program).
fn compatible(path: &Path, is_64: bool, machine: u16) -> bool {
    use std::io::Read;
    let mut header = [0u8; 64];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    if f.read_exact(&mut header).is_err() {
        return false;
    }
    match Elf::parse_header(&header) {
        Ok(h) => {
            let class_64 =
                h.e_ident[goblin::elf::header::EI_CLASS] == goblin::elf::header::ELFCLASS64;
            class_64 == is_64 && h.e_machine == machine
        }
        Err(_) => false,
    }
}

fn expand_origin(dirs: &[String], origin: &Path) -> Vec<PathBuf> {
    dirs.iter()
        .flat_map(|d| d.split(':'))
        .filter(|d| !d.is_empty())
        .map(|d| {
            let o = origin.to_string_lossy();
            PathBuf::from(d.replace("${ORIGIN}", &o).replace("$ORIGIN", &o))
        })
        .collect()
}

/// The interpreter and libraries of `program`, transitively. A non-ELF file (a script) or a
/// static program needs nothing.
pub fn dependencies(program: &Path, search: &LibSearch) -> Result<ElfDeps> {
    let mut deps = ElfDeps::default();
    let Some(main) = read_object(program)? else {
        return Ok(deps);
    };
    deps.interpreter = main.interpreter.as_ref().map(PathBuf::from);
    let (is_64, machine) = (main.is_64, main.machine);
    let main_rpaths = expand_origin(&main.rpaths, program.parent().unwrap_or(Path::new("/")));

    let mut seen_names = BTreeSet::new();
    let mut queue = VecDeque::from([(program.to_path_buf(), main)]);
    while let Some((path, object)) = queue.pop_front() {
        let origin = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        let mut dirs = Vec::new();
        if object.runpaths.is_empty() {
            dirs.extend(expand_origin(&object.rpaths, &origin));
            dirs.extend(main_rpaths.iter().cloned());
        } else {
            dirs.extend(expand_origin(&object.runpaths, &origin));
        }
        dirs.extend(search.dirs.iter().cloned());
        for name in object.needed {
            if !seen_names.insert(name.clone()) {
                continue;
            }
            let found = if name.contains('/') {
                Some(PathBuf::from(&name)).filter(|p| compatible(p, is_64, machine))
            } else {
                dirs.iter()
                    .map(|d| d.join(&name))
                    .find(|p| compatible(p, is_64, machine))
            };
            match found {
                Some(lib) => {
                    if let Some(obj) = read_object(&lib)? {
                        queue.push_back((lib.clone(), obj));
                    }
                    deps.libraries.push(lib);
                }
                None => deps.missing.push(name),
            }
        }
    }
    Ok(deps)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mke2fs_needs_libext2fs_libc_and_the_interpreter() {
        let program = Path::new("/sbin/mke2fs");
        if !lifeboat_core::testing::require(program.exists(), "no /sbin/mke2fs (e2fsprogs)") {
            return;
        }
        let deps = dependencies(program, &LibSearch::system()).unwrap();
        let names: Vec<String> = deps
            .libraries
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().any(|n| n.starts_with("libext2fs.so")),
            "{names:?}"
        );
        assert!(names.iter().any(|n| n.starts_with("libc.so")), "{names:?}");
        assert!(deps.missing.is_empty(), "{:?}", deps.missing);
        let interp = deps.interpreter.unwrap();
        assert!(
            interp.to_string_lossy().contains("ld-linux"),
            "{}",
            interp.display()
        );
    }

    #[test]
    fn scripts_and_static_programs_need_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        assert_eq!(
            dependencies(&script, &LibSearch::system()).unwrap(),
            ElfDeps::default()
        );
        let busybox = Path::new("/bin/busybox");
        if busybox.exists() {
            let deps = dependencies(busybox, &LibSearch::system()).unwrap();
            assert!(
                deps.interpreter.is_none() && deps.libraries.is_empty(),
                "{deps:?}"
            );
        }
    }
}
