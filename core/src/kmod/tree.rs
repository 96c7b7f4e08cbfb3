//! A `/lib/modules/<version>` tree: which modules exist, which are built in, what each one
//! needs, and the closure of a set of modules in load order.
//!
//! The index files depmod generates (modules.dep, modules.softdep, modules.alias) are used when
//! present; otherwise every answer comes from the modules' own `.modinfo` (Debian ships its
//! kernel packages without them and generates them at install time).

use super::alias::AliasTable;
use super::depmod;
use super::modinfo::{module_name_of, read_decompressed, ModInfo};
use super::{normalize_name, KmodError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// What a name stands for in this tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A loadable module (normalized name).
    Module(String),
    /// Built into the kernel: nothing to load.
    Builtin(String),
    /// Neither.
    Missing,
}

/// A set of modules with everything they need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Closure {
    /// Loadable modules, each after its dependencies and "pre" softdeps.
    pub modules: Vec<String>,
    /// Names (requested or needed) that are built into the kernel.
    pub builtin: BTreeSet<String>,
    /// Requested names this kernel has neither as module nor built in.
    pub missing: BTreeSet<String>,
    /// Hard dependencies that cannot be found: (module, dependency). A broken tree.
    pub broken: BTreeSet<(String, String)>,
    /// Softdeps that cannot be found: (module, name). Harmless, as for modprobe.
    pub missing_softdeps: BTreeSet<(String, String)>,
}

/// Soft dependencies: (pre, post).
pub type SoftDeps = (Vec<String>, Vec<String>);

/// One module tree.
#[derive(Debug)]
pub struct ModuleTree {
    dir: PathBuf,
    version: String,
    /// name -> path relative to `dir`, as found (maybe compressed).
    paths: BTreeMap<String, PathBuf>,
    builtin: BTreeSet<String>,
    /// Aliases of the built-in modules, from modules.builtin.modinfo.
    builtin_aliases: AliasTable,
    /// name -> dependencies, from modules.dep when the tree has one.
    dep_file: Option<BTreeMap<String, Vec<String>>>,
    /// name -> (pre, post), from modules.softdep when the tree has one.
    softdep_file: Option<BTreeMap<String, SoftDeps>>,
    /// Aliases of the loadable modules, from modules.alias or built on demand.
    aliases: Option<AliasTable>,
    infos: HashMap<String, ModInfo>,
}

impl ModuleTree {
    /// Scans a module tree.
    pub fn open(dir: &Path) -> Result<Self, KmodError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| KmodError::Io { path, source }
        };
        let mut files = Vec::new();
        collect_modules(dir, Path::new(""), &mut files).map_err(io_err(dir))?;
        if files.is_empty() {
            return Err(KmodError::EmptyTree(dir.to_path_buf()));
        }
        files.sort();
        let mut paths = BTreeMap::new();
        for rel in files {
            let Some(name) = module_name_of(&rel) else {
                continue;
            };
            // depmod's default search order: updates/ wins over the rest.
            let preferred = rel.starts_with("updates");
            match paths.get(&name) {
                Some(_) if !preferred => {}
                _ => {
                    paths.insert(name, rel);
                }
            }
        }

        let read_opt = |name: &str| -> Result<Option<String>, KmodError> {
            let path = dir.join(name);
            match std::fs::read(&path) {
                Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(KmodError::Io { path, source: e }),
            }
        };

        let builtin =
            depmod::parse_modules_builtin(&read_opt("modules.builtin")?.unwrap_or_default());
        let mut builtin_aliases = Vec::new();
        if let Some(text) = read_opt("modules.builtin.modinfo")? {
            for entry in text.split('\0') {
                if let Some((module, value)) = entry
                    .split_once(".alias=")
                    .filter(|(m, _)| !m.contains('='))
                {
                    builtin_aliases.push((value.to_string(), module.to_string()));
                }
            }
        }
        let builtin_aliases = AliasTable::from_pairs(builtin_aliases);
        let dep_file = read_opt("modules.dep")?.map(|text| {
            depmod::parse_modules_dep(&text)
                .into_iter()
                .map(|(name, line)| (name, line.deps))
                .collect()
        });
        let softdep_file =
            read_opt("modules.softdep")?.map(|text| depmod::parse_modules_softdep(&text));
        let aliases = read_opt("modules.alias")?.map(|text| AliasTable::parse(&text));

        let mut tree = Self {
            dir: dir.to_path_buf(),
            version: String::new(),
            paths,
            builtin,
            builtin_aliases,
            dep_file,
            softdep_file,
            aliases,
            infos: HashMap::new(),
        };
        tree.version = tree.find_version()?;
        Ok(tree)
    }

    /// The kernel release: the tree's directory name when it looks like one, otherwise the
    /// `vermagic` of a module.
    fn find_version(&mut self) -> Result<String, KmodError> {
        let canonical = std::fs::canonicalize(&self.dir).unwrap_or_else(|_| self.dir.clone());
        let dir_name = canonical
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let looks_like_release =
            dir_name.chars().next().is_some_and(|c| c.is_ascii_digit()) && dir_name.contains('.');
        if looks_like_release {
            return Ok(dir_name);
        }
        let first = self.paths.keys().next().cloned().unwrap_or_default();
        Ok(self
            .info(&first)?
            .kernel_release()
            .unwrap_or(&dir_name)
            .to_string())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The kernel release this tree belongs to (e.g. `6.1.0-56-cloud-amd64`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Names of every loadable module, sorted.
    pub fn module_names(&self) -> impl Iterator<Item = &str> {
        self.paths.keys().map(String::as_str)
    }

    /// Path of a module relative to the tree, as found (maybe compressed).
    pub fn relative_path(&self, name: &str) -> Option<&Path> {
        self.paths.get(&normalize_name(name)).map(PathBuf::as_path)
    }

    /// Path of a module relative to the tree once decompressed (`….ko`).
    pub fn plain_relative_path(&self, name: &str) -> Option<PathBuf> {
        let rel = self.relative_path(name)?;
        let text = rel.to_string_lossy();
        let end = text.rfind(".ko").map(|i| i + 3).unwrap_or(text.len());
        Some(PathBuf::from(&text[..end]))
    }

    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&normalize_name(name))
    }

    /// The raw modules.builtin file, if the tree has one.
    pub fn builtin_names(&self) -> &BTreeSet<String> {
        &self.builtin
    }

    /// The module's bytes, decompressed.
    pub fn read_module(&self, name: &str) -> Result<Vec<u8>, KmodError> {
        let rel = self
            .relative_path(name)
            .ok_or_else(|| KmodError::Elf(format!("no module named {name}")))?;
        read_decompressed(&self.dir.join(rel))
    }

    /// The module's `.modinfo` (read once, then cached).
    pub fn info(&mut self, name: &str) -> Result<&ModInfo, KmodError> {
        let name = normalize_name(name);
        if !self.infos.contains_key(&name) {
            let rel = self
                .paths
                .get(&name)
                .ok_or_else(|| KmodError::Elf(format!("no module named {name}")))?;
            let path = self.dir.join(rel);
            let wrap = |e| KmodError::Module {
                path: path.clone(),
                source: Box::new(e),
            };
            let bytes = read_decompressed(&path).map_err(wrap)?;
            let info = ModInfo::from_elf(&bytes).map_err(wrap)?;
            self.infos.insert(name.clone(), info);
        }
        self.infos
            .get(&name)
            .ok_or_else(|| KmodError::Elf(format!("no module named {name}")))
    }

    /// Direct hard dependencies (modules.dep when present, else `depends=`).
    pub fn dependencies(&mut self, name: &str) -> Result<Vec<String>, KmodError> {
        let name = normalize_name(name);
        if let Some(deps) = self.dep_file.as_ref().and_then(|d| d.get(&name)) {
            return Ok(deps.clone());
        }
        Ok(self.info(&name)?.depends.clone())
    }

    /// Soft dependencies (pre, post): modules.softdep when present, else `softdep=`.
    pub fn softdeps(&mut self, name: &str) -> Result<SoftDeps, KmodError> {
        let name = normalize_name(name);
        let from_file = self
            .softdep_file
            .as_ref()
            .map(|f| f.get(&name).cloned().unwrap_or_default());
        match from_file {
            Some(sd) => Ok(sd),
            None => {
                let info = self.info(&name)?;
                Ok((info.softdep_pre.clone(), info.softdep_post.clone()))
            }
        }
    }

    /// The aliases of the loadable modules.
    pub fn aliases(&mut self) -> Result<&AliasTable, KmodError> {
        if self.aliases.is_none() {
            let names: Vec<String> = self.paths.keys().cloned().collect();
            let mut all = Vec::new();
            for name in names {
                for alias in &self.info(&name)?.aliases {
                    all.push((alias.clone(), name.clone()));
                }
            }
            self.aliases = Some(AliasTable::from_pairs(all));
        }
        match &self.aliases {
            Some(table) => Ok(table),
            None => Err(KmodError::Elf("alias table missing".into())),
        }
    }

    /// Aliases of built-in modules (from modules.builtin.modinfo).
    pub fn builtin_aliases(&self) -> &AliasTable {
        &self.builtin_aliases
    }

    /// Loadable modules whose aliases match `modalias` (a device's, or a name such as
    /// `fs-vfat` or `crypto-crc32c`), sorted.
    pub fn modules_for_alias(&mut self, modalias: &str) -> Result<Vec<String>, KmodError> {
        Ok(self.aliases()?.modules_for(modalias))
    }

    /// What a name (module name or alias) stands for.
    pub fn lookup(&mut self, name: &str) -> Result<Lookup, KmodError> {
        let normalized = normalize_name(name);
        if self.paths.contains_key(&normalized) {
            return Ok(Lookup::Module(normalized));
        }
        if self.builtin.contains(&normalized) {
            return Ok(Lookup::Builtin(normalized));
        }
        if let Some(first) = self.modules_for_alias(name)?.into_iter().next() {
            return Ok(Lookup::Module(first));
        }
        if let Some(alias) = self.builtin_aliases.first_match(name) {
            return Ok(Lookup::Builtin(alias.module.clone()));
        }
        Ok(Lookup::Missing)
    }

    /// The requested modules (names or aliases) with their dependencies and softdeps, in an
    /// order in which they can be loaded.
    pub fn closure<S: AsRef<str>>(&mut self, requests: &[S]) -> Result<Closure, KmodError> {
        let mut walk = Walk::default();
        for request in requests {
            match self.lookup(request.as_ref())? {
                Lookup::Module(m) => self.visit(&m, &mut walk)?,
                Lookup::Builtin(b) => {
                    walk.closure.builtin.insert(b);
                }
                Lookup::Missing => {
                    walk.closure
                        .missing
                        .insert(normalize_name(request.as_ref()));
                }
            }
        }
        Ok(walk.closure)
    }

    fn visit(&mut self, module: &str, walk: &mut Walk) -> Result<(), KmodError> {
        if !walk.seen.insert(module.to_string()) {
            return Ok(());
        }
        let (pre, post) = self.softdeps(module)?;
        for soft in pre {
            self.visit_soft(module, &soft, walk)?;
        }
        let mut deps = self.dependencies(module)?;
        deps.sort();
        for dep in deps {
            match self.lookup(&dep)? {
                Lookup::Module(m) => self.visit(&m, walk)?,
                Lookup::Builtin(b) => {
                    walk.closure.builtin.insert(b);
                }
                Lookup::Missing => {
                    walk.closure.broken.insert((module.to_string(), dep));
                }
            }
        }
        walk.closure.modules.push(module.to_string());
        for soft in post {
            self.visit_soft(module, &soft, walk)?;
        }
        Ok(())
    }

    fn visit_soft(&mut self, module: &str, soft: &str, walk: &mut Walk) -> Result<(), KmodError> {
        match self.lookup(soft)? {
            Lookup::Module(m) => self.visit(&m, walk),
            Lookup::Builtin(b) => {
                walk.closure.builtin.insert(b);
                Ok(())
            }
            Lookup::Missing => {
                walk.closure
                    .missing_softdeps
                    .insert((module.to_string(), soft.to_string()));
                Ok(())
            }
        }
    }

    /// Every hard dependency of `module`, transitively, in the order depmod writes them in
    /// modules.dep: a module comes before the modules it needs, so a loader loads the list
    /// from the last entry to the first, then `module` itself.
    pub fn dependency_list(&mut self, module: &str) -> Result<Vec<String>, KmodError> {
        let mut walk = Walk::default();
        walk.seen.insert(normalize_name(module));
        let mut deps = self.dependencies(module)?;
        deps.sort();
        for dep in deps {
            self.visit_hard(&dep, &mut walk)?;
        }
        walk.closure.modules.reverse();
        Ok(walk.closure.modules)
    }

    fn visit_hard(&mut self, name: &str, walk: &mut Walk) -> Result<(), KmodError> {
        let Lookup::Module(module) = self.lookup(name)? else {
            return Ok(());
        };
        if !walk.seen.insert(module.clone()) {
            return Ok(());
        }
        let mut deps = self.dependencies(&module)?;
        deps.sort();
        for dep in deps {
            self.visit_hard(&dep, walk)?;
        }
        walk.closure.modules.push(module);
        Ok(())
    }
}

#[derive(Default)]
struct Walk {
    seen: BTreeSet<String>,
    closure: Closure,
}

fn collect_modules(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(root.join(rel))? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let child = rel.join(entry.file_name());
        // `build` and `source` are symlinks to kernel headers: never follow symlinks.
        if kind.is_dir() {
            collect_modules(root, &child, out)?;
        } else if kind.is_file() && module_name_of(&child).is_some() {
            out.push(child);
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn synthetic_tree() -> tempfile::TempDir {
        use crate::kmod::modinfo::synthetic_module;
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let k = dir.path().join("kernel");
        std::fs::create_dir_all(&k).unwrap();
        let put = |file: &str, pairs: &[(&str, &str)]| {
            std::fs::write(k.join(file), synthetic_module(pairs)).unwrap();
        };
        put(
            "a.ko",
            &[
                ("name", "a"),
                ("depends", "b,c"),
                ("softdep", "pre: alias-d post: e"),
            ],
        );
        put("b.ko", &[("name", "b"), ("depends", "c")]);
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(&synthetic_module(&[("name", "c"), ("depends", "")]))
            .unwrap();
        std::fs::write(k.join("c.ko.xz"), xz.finish().unwrap()).unwrap();
        put("d.ko", &[("name", "d"), ("alias", "alias-d")]);
        put("e.ko", &[("name", "e")]);
        put("f.ko", &[("name", "f"), ("depends", "gone")]);
        put("g.ko", &[("name", "g"), ("depends", "builtin_x")]);
        std::fs::write(dir.path().join("modules.builtin"), "kernel/builtin-x.ko\n").unwrap();
        std::fs::write(
            dir.path().join("modules.builtin.modinfo"),
            "builtin_x.alias=fs-bx\0builtin_x.license=GPL\0",
        )
        .unwrap();
        dir
    }

    #[test]
    fn closure_orders_softdeps_and_dependencies() {
        let dir = synthetic_tree();
        let mut tree = ModuleTree::open(dir.path()).unwrap();
        let closure = tree.closure(&["a"]).unwrap();
        assert_eq!(closure.modules, ["d", "c", "b", "a", "e"]);
        assert_eq!(tree.dependency_list("a").unwrap(), ["b", "c"]);

        let closure = tree.closure(&["f", "g", "fs-bx", "nothing"]).unwrap();
        assert_eq!(closure.modules, ["f", "g"]);
        assert!(closure
            .broken
            .contains(&("f".to_string(), "gone".to_string())));
        assert!(closure.builtin.contains("builtin_x"));
        assert!(closure.missing.contains("nothing"));

        let files = crate::kmod::index::build(
            &mut tree,
            &["a".into(), "b".into(), "c".into(), "d".into(), "e".into()],
        )
        .unwrap();
        assert!(
            files
                .modules_dep
                .contains("kernel/a.ko: kernel/b.ko kernel/c.ko\n"),
            "{}",
            files.modules_dep
        );
        assert!(
            files.modules_dep.contains("kernel/c.ko:\n"),
            "{}",
            files.modules_dep
        );
        assert!(files
            .modules_softdep
            .contains("softdep a pre: alias-d post: e\n"));
        assert!(files.modules_alias.contains("alias alias-d d\n"));
        assert_eq!(files.modules_builtin, "kernel/builtin-x.ko\n");
    }
}
