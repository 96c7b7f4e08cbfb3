//! Finding the external programs Lifeboat runs or copies (mke2fs, tune2fs, busybox, ...): the
//! one program finder of the agent and the recovery image.

use std::path::PathBuf;

/// The system directories, searched before `PATH` so that what is run (or copied into the
/// recovery image) does not depend on the caller's shell.
pub const SYSTEM_DIRS: &[&str] = &["/sbin", "/usr/sbin", "/bin", "/usr/bin"];

/// The file `name` in the system directories, then on `PATH`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    search(
        SYSTEM_DIRS
            .iter()
            .map(PathBuf::from)
            .chain(std::env::split_paths(&path)),
        name,
    )
}

/// The first of `names` that [`find_program`] finds: alternative names of one tool, the
/// preferred first (`["mke2fs", "mkfs.ext4"]`).
pub fn find_any(names: &[&str]) -> Option<PathBuf> {
    names.iter().find_map(|n| find_program(n))
}

fn search(dirs: impl Iterator<Item = PathBuf>, name: &str) -> Option<PathBuf> {
    // A name with a slash is a path, not a program name: never looked up.
    if name.is_empty() || name.contains('/') {
        return None;
    }
    dirs.map(|d| d.join(name)).find(|p| p.is_file())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_file_in_the_first_directory_that_has_it() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(b.path().join("tool"), b"").unwrap();
        std::fs::create_dir(a.path().join("sub")).unwrap();
        let dirs = || [a.path().to_path_buf(), b.path().to_path_buf()].into_iter();
        assert_eq!(search(dirs(), "tool"), Some(b.path().join("tool")));
        std::fs::write(a.path().join("tool"), b"").unwrap();
        assert_eq!(search(dirs(), "tool"), Some(a.path().join("tool")));
        // A directory is no program; a path is no name.
        assert_eq!(search(dirs(), "sub"), None);
        assert_eq!(search(dirs(), "sub/tool"), None);
        assert_eq!(search(dirs(), "missing"), None);
    }

    #[test]
    fn finds_a_system_program_by_any_of_its_names() {
        let sh = find_any(&["no-such-program-lifeboat", "sh"]).unwrap();
        assert!(sh.ends_with("sh"), "{}", sh.display());
        assert_eq!(find_any(&["no-such-program-lifeboat"]), None);
    }
}
