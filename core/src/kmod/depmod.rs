//! Parsers for the index files depmod writes beside a module tree (`modules.dep`,
//! `modules.softdep`, `modules.builtin`); `modules.alias` is [`super::alias::AliasTable`].
//! The image builder ([`super::tree`]) and the recovery image's loader read them through
//! these functions only, so both agree on names (see [`super::normalize_name`]).

use super::modinfo::{module_name_of, parse_softdep};
use super::normalize_name;
use super::tree::SoftDeps;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One `modules.dep` line: the module's path relative to the tree and its dependencies,
/// deepest last (a loader loads them from the last to the first, then the module).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DepLine {
    pub path: PathBuf,
    pub deps: Vec<String>,
}

/// `modules.dep`: module name -> its line. Lines that are not `path: deps...` are ignored.
pub fn parse_modules_dep(text: &str) -> BTreeMap<String, DepLine> {
    text.lines()
        .filter_map(|line| {
            let (module, deps) = line.split_once(':')?;
            let path = PathBuf::from(module.trim());
            let name = module_name_of(&path)?;
            let deps = deps
                .split_whitespace()
                .filter_map(|d| module_name_of(Path::new(d)))
                .collect();
            Some((name, DepLine { path, deps }))
        })
        .collect()
}

/// `modules.softdep`: module name -> (pre, post). Lines other than `softdep M ...` are
/// ignored; several lines for one module add up.
pub fn parse_modules_softdep(text: &str) -> BTreeMap<String, SoftDeps> {
    let mut map: BTreeMap<String, SoftDeps> = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("softdep") {
            continue;
        }
        let Some(module) = words.next() else { continue };
        let rest: Vec<&str> = words.collect();
        let (pre, post) = parse_softdep(&rest.join(" "));
        let entry = map.entry(normalize_name(module)).or_default();
        entry.0.extend(pre);
        entry.1.extend(post);
    }
    map
}

/// `modules.builtin`: the names of the modules built into the kernel.
pub fn parse_modules_builtin(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| module_name_of(Path::new(l.trim())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_depmod_files() {
        let dep = parse_modules_dep(
            "kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko kernel/lib/crc16.ko.xz\n\
             kernel/fs/jbd2/jbd2.ko:\nnot a line\n",
        );
        assert_eq!(dep.len(), 2);
        assert_eq!(dep["ext4"].path, PathBuf::from("kernel/fs/ext4/ext4.ko"));
        assert_eq!(dep["ext4"].deps, ["jbd2", "crc16"]);
        assert!(dep["jbd2"].deps.is_empty());

        let soft = parse_modules_softdep(
            "# comment\nsoftdep ext4 pre: crc32c\nsoftdep ext4 post: x-y\nsoftdep\n",
        );
        // Softdep names stay as written: they may be aliases such as `crypto-crc32c`.
        assert_eq!(soft["ext4"], (vec!["crc32c".into()], vec!["x-y".into()]));

        let builtin = parse_modules_builtin("kernel/fs/fat/fat.ko\nkernel/drivers/nvme-core.ko\n");
        assert!(builtin.contains("fat") && builtin.contains("nvme_core"));
    }
}
