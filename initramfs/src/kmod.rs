//! The kernel modules of the image: /lib/modules/$(uname -r)/{modules.dep, modules.softdep,
//! modules.builtin, modules.alias}, and loading a module after its dependencies.

use anyhow::{anyhow, Context, Result};
use lifeboat_core::kmod::alias::{normalize_module_name, AliasTable};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

pub struct ModuleDb {
    pub dir: PathBuf,
    /// module name -> (path relative to dir, dependency names)
    deps: HashMap<String, (String, Vec<String>)>,
    /// module name -> modules to load first (softdep "pre:")
    softdeps: HashMap<String, Vec<String>>,
    builtin: HashSet<String>,
    pub aliases: AliasTable,
    /// Modules loaded (or found already present) by this process.
    pub loaded: BTreeSet<String>,
    /// Modules that failed, with the reason (reported, then never retried).
    pub failed: HashMap<String, String>,
}

fn name_of(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = base.split(".ko").next().unwrap_or(base);
    normalize_module_name(stem)
}

impl ModuleDb {
    /// Reads the module database of the running kernel. Missing files give an empty table.
    pub fn open(dir: &Path) -> Self {
        let read = |f: &str| fs::read_to_string(dir.join(f)).unwrap_or_default();
        let mut deps = HashMap::new();
        for line in read("modules.dep").lines() {
            if let Some((module, rest)) = line.split_once(':') {
                let list = rest.split_whitespace().map(name_of).collect();
                deps.insert(name_of(module), (module.trim().to_string(), list));
            }
        }
        let mut softdeps: HashMap<String, Vec<String>> = HashMap::new();
        for line in read("modules.softdep").lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some("softdep") {
                continue;
            }
            let Some(module) = words.next() else { continue };
            let mut pre = false;
            for w in words {
                match w {
                    "pre:" => pre = true,
                    "post:" => pre = false,
                    m if pre => softdeps
                        .entry(normalize_module_name(module))
                        .or_default()
                        .push(normalize_module_name(m)),
                    _ => {}
                }
            }
        }
        let builtin = read("modules.builtin").lines().map(name_of).collect();
        let aliases = AliasTable::parse(&read("modules.alias"));
        Self {
            dir: dir.to_path_buf(),
            deps,
            softdeps,
            builtin,
            aliases,
            loaded: BTreeSet::new(),
            failed: HashMap::new(),
        }
    }

    pub fn module_count(&self) -> usize {
        self.deps.len()
    }

    pub fn is_known(&self, name: &str) -> bool {
        let n = normalize_module_name(name);
        self.deps.contains_key(&n) || self.builtin.contains(&n)
    }

    /// Loads `name` after its softdeps and dependencies. Returns the names newly loaded.
    /// Errors are recorded in `failed` (and the module is not retried).
    pub fn load(&mut self, name: &str) -> Vec<String> {
        let mut newly = Vec::new();
        let mut visiting = HashSet::new();
        self.load_inner(&normalize_module_name(name), &mut newly, &mut visiting);
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
        for pre in self.softdeps.get(name).cloned().unwrap_or_default() {
            // Softdeps may name modules that are not in the image; that is fine.
            if self.deps.contains_key(&pre) {
                self.load_inner(&pre, newly, visiting);
            }
        }
        let Some((rel, deps)) = self.deps.get(name).cloned() else {
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
