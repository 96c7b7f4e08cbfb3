//! Writes the standard index files (as depmod does) for the modules that go into an image:
//! modules.dep, modules.alias, modules.softdep, modules.builtin. Paths are the decompressed
//! ones (`….ko`), relative to the module tree.

use super::tree::ModuleTree;
use super::KmodError;
use std::fmt::Write as _;
use std::path::Path;

/// The four index files, as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexFiles {
    pub modules_dep: String,
    pub modules_alias: String,
    pub modules_softdep: String,
    pub modules_builtin: String,
}

/// Builds the index files for `modules` (names of loadable modules in the tree; the list
/// should be closed under dependencies). Lines come sorted by module path, so the output
/// depends only on the set.
pub fn build(tree: &mut ModuleTree, modules: &[String]) -> Result<IndexFiles, KmodError> {
    let mut sorted: Vec<(String, String)> = modules
        .iter()
        .filter_map(|m| Some((path_text(&tree.plain_relative_path(m)?), m.clone())))
        .collect();
    sorted.sort();
    sorted.dedup();

    let mut files = IndexFiles::default();
    files
        .modules_alias
        .push_str("# Aliases extracted from modules themselves.\n");
    files
        .modules_softdep
        .push_str("# Soft dependencies extracted from modules themselves.\n");
    for (rel, module) in &sorted {
        let deps: Vec<String> = tree
            .dependency_list(module)?
            .iter()
            .filter_map(|d| Some(path_text(&tree.plain_relative_path(d)?)))
            .collect();
        if deps.is_empty() {
            let _ = writeln!(files.modules_dep, "{rel}:");
        } else {
            let _ = writeln!(files.modules_dep, "{rel}: {}", deps.join(" "));
        }
        let info = tree.info(module)?.clone();
        for alias in &info.aliases {
            let _ = writeln!(files.modules_alias, "alias {alias} {module}");
        }
        let (pre, post) = tree.softdeps(module)?;
        if !pre.is_empty() || !post.is_empty() {
            let mut line = format!("softdep {module}");
            if !pre.is_empty() {
                let _ = write!(line, " pre: {}", pre.join(" "));
            }
            if !post.is_empty() {
                let _ = write!(line, " post: {}", post.join(" "));
            }
            let _ = writeln!(files.modules_softdep, "{line}");
        }
    }
    let builtin_file = tree.dir().join("modules.builtin");
    files.modules_builtin = match std::fs::read_to_string(&builtin_file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(KmodError::Io {
                path: builtin_file,
                source,
            })
        }
    };
    Ok(files)
}

fn path_text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
