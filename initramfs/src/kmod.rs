//! The kernel modules of the image: /lib/modules/$(uname -r)/{modules.dep, modules.softdep,
//! modules.builtin, modules.alias}, and loading a module after its dependencies.

use anyhow::{anyhow, Context, Result};
use lifeboat_core::kmod::alias::AliasTable;
use lifeboat_core::kmod::depmod::{self, DepLine};
use lifeboat_core::kmod::normalize_name;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

pub struct ModuleDb {
    pub dir: PathBuf,
    /// module name -> its modules.dep line (path relative to dir, dependencies)
    deps: BTreeMap<String, DepLine>,
    /// module name -> (pre, post) softdeps
    softdeps: BTreeMap<String, (Vec<String>, Vec<String>)>,
    builtin: BTreeSet<String>,
    pub aliases: AliasTable,
    /// Modules loaded (or found already present) by this process.
    pub loaded: BTreeSet<String>,
    /// Modules that failed, with the reason (reported, then never retried).
    pub failed: HashMap<String, String>,
}

impl ModuleDb {
    /// Reads the module database of the running kernel (the index files `mkrescue` wrote,
    /// parsed by core's `kmod::depmod`, as the image builder reads them). Missing files give
    /// an empty table.
    pub fn open(dir: &Path) -> Self {
        let read = |f: &str| fs::read_to_string(dir.join(f)).unwrap_or_default();
        Self {
            dir: dir.to_path_buf(),
            deps: depmod::parse_modules_dep(&read("modules.dep")),
            softdeps: depmod::parse_modules_softdep(&read("modules.softdep")),
            builtin: depmod::parse_modules_builtin(&read("modules.builtin")),
            aliases: AliasTable::parse(&read("modules.alias")),
            loaded: BTreeSet::new(),
            failed: HashMap::new(),
        }
    }

    pub fn module_count(&self) -> usize {
        self.deps.len()
    }

    /// Where `name` is in the module tree (`kernel/drivers/ata/ahci.ko`), for a module of
    /// this image's modules.dep.
    pub fn path_of(&self, name: &str) -> Option<&Path> {
        self.deps
            .get(&normalize_name(name))
            .map(|d| d.path.as_path())
    }

    pub fn is_known(&self, name: &str) -> bool {
        let n = normalize_name(name);
        self.deps.contains_key(&n) || self.builtin.contains(&n)
    }

    /// Loads `name` after its softdeps and dependencies. Returns the names newly loaded.
    /// Errors are recorded in `failed` (and the module is not retried).
    pub fn load(&mut self, name: &str) -> Vec<String> {
        let mut newly = Vec::new();
        let mut visiting = HashSet::new();
        self.load_inner(&normalize_name(name), &mut newly, &mut visiting);
        newly
    }

    fn load_inner(&mut self, name: &str, newly: &mut Vec<String>, visiting: &mut HashSet<String>) {
        if self.loaded.contains(name)
            || self.failed.contains_key(name)
            || self.builtin.contains(name)
            || !visiting.insert(name.to_string())
        {
            return;
        }
        let pre = self
            .softdeps
            .get(name)
            .map(|s| s.0.clone())
            .unwrap_or_default();
        for pre in pre.iter().map(|p| normalize_name(p)) {
            // Softdeps may name modules that are not in the image; that is fine.
            if self.deps.contains_key(&pre) {
                self.load_inner(&pre, newly, visiting);
            }
        }
        let Some(DepLine { path: rel, deps }) = self.deps.get(name).cloned() else {
            self.failed
                .insert(name.to_string(), "not in this image's modules.dep".into());
            return;
        };
        // modules.dep lists the deepest dependency last; load from the end.
        for dep in deps.iter().rev() {
            self.load_inner(dep, newly, visiting);
        }
        match insert(&self.dir.join(&rel)) {
            Ok(true) => {
                self.loaded.insert(name.to_string());
                newly.push(name.to_string());
            }
            Ok(false) => {
                self.loaded.insert(name.to_string());
            }
            Err(e) => {
                self.failed.insert(name.to_string(), format!("{e:#}"));
            }
        }
    }
}

/// finit_module(2). Ok(false) when the module was already loaded.
fn insert(path: &Path) -> Result<bool> {
    let file = fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    // Compressed modules (.ko.xz, .ko.zst, .ko.gz) are decompressed by the kernel (>= 5.17)
    // with MODULE_INIT_COMPRESSED_FILE; the image builder normally stores them plain.
    let name = path.to_string_lossy();
    let flags = if name.ends_with(".ko") {
        nix::kmod::ModuleInitFlags::empty()
    } else {
        nix::kmod::ModuleInitFlags::from_bits_retain(4)
    };
    match nix::kmod::finit_module(&file, c"", flags) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::EEXIST) => Ok(false),
        Err(e) => Err(anyhow!("{}: {e}", path.display())),
    }
}
