//! Safe resolution of archive paths beneath the target directory.
//!
//! Every path is split into components; `..`, absolute paths, empty components and NUL bytes are
//! refused. The parent directory is then reached from the target's directory fd, one
//! component at a time, with `openat(O_DIRECTORY | O_NOFOLLOW)`: a component that is a symbolic
//! link (one that was in the target, or one the archive itself created a moment ago) or not a
//! directory stops the walk. The final component is only ever used with `*at` calls that do not
//! follow it. So nothing can be written outside the target.
//!
//! This is written by hand because `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` needs Linux
//! 5.6 and the control domains of XenServer 7/8 and XCP-ng 8 run 4.x kernels.
//!
//! The directories of the current parent are kept open (a stack of dirfds) so that an archive
//! in tree order, as every tar is, opens each directory once: consecutive entries in the same
//! directory cost no extra system call.

use super::validate::{MAX_DEPTH, MAX_PATH_BYTES};
use crate::sys;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

/// Directory fds kept open at most; deeper levels are reopened when needed.
const MAX_CACHED_FDS: usize = 128;

/// A path split into checked components; empty for the target directory itself (`.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafePath {
    pub comps: Vec<Vec<u8>>,
}

impl SafePath {
    /// Checks and splits an archive path. A leading `./` and `.` components are dropped; one
    /// trailing `/` (a directory written by tar) is accepted.
    pub fn parse(path: &[u8]) -> Result<SafePath, String> {
        if path.is_empty() {
            return Err("the path is empty".into());
        }
        if path.len() > MAX_PATH_BYTES {
            return Err(format!(
                "the path is {} bytes long (more than {MAX_PATH_BYTES})",
                path.len()
            ));
        }
        if path[0] == b'/' {
            return Err("the path is absolute".into());
        }
        if path.contains(&0) {
            return Err("the path contains a NUL byte".into());
        }
        let trimmed = path.strip_suffix(b"/").unwrap_or(path);
        let mut comps = Vec::new();
        for c in trimmed.split(|&b| b == b'/') {
            match c {
                b"" => return Err("the path has an empty component ('//')".into()),
                b"." => continue,
                b".." => return Err("the path contains '..'".into()),
                _ => comps.push(c.to_vec()),
            }
        }
        if comps.len() > MAX_DEPTH {
            return Err(format!(
                "the path is {} directories deep (more than {MAX_DEPTH})",
                comps.len()
            ));
        }
        Ok(SafePath { comps })
    }

    pub fn is_root(&self) -> bool {
        self.comps.is_empty()
    }

    pub fn parent(&self) -> &[Vec<u8>] {
        match self.comps.split_last() {
            Some((_, p)) => p,
            None => &[],
        }
    }

    /// The last component (None for the target itself).
    pub fn name(&self) -> Option<&[u8]> {
        self.comps.last().map(|v| v.as_slice())
    }
}

/// Why a parent directory could not be reached.
#[derive(Debug)]
pub enum ResolveError {
    /// A component is a symbolic link or not a directory: writing through it would escape.
    Unsafe(String),
    Io {
        what: String,
        source: io::Error,
    },
}

struct Level {
    name: Vec<u8>,
    fd: Option<Arc<OwnedFd>>,
}

/// Open directories along the most recently used parent path.
/// The descriptors are shared (`Arc`) with the caller, so a directory handed out stays open
/// while the cache moves on or forgets it.
pub struct DirCache {
    root: Arc<OwnedFd>,
    stack: Vec<Level>,
    /// Directories created because an entry's parent was missing from the archive.
    pub created_parents: u64,
}

impl DirCache {
    pub fn new(root: OwnedFd) -> Self {
        Self {
            root: Arc::new(root),
            stack: Vec::new(),
            created_parents: 0,
        }
    }

    pub fn root_fd(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    fn fd_at(&self, depth: usize) -> &Arc<OwnedFd> {
        // depth 0 = the root; depth k = stack[k-1]
        if depth == 0 {
            return &self.root;
        }
        match self.stack.get(depth - 1).and_then(|l| l.fd.as_ref()) {
            Some(fd) => fd,
            None => &self.root,
        }
    }

    /// The fd of the directory `dirs` (components beneath the root), walking and, when
    /// `create`, making missing directories (mode 0755, fixed later if the archive has them).
    pub fn dir(&mut self, dirs: &[Vec<u8>], create: bool) -> Result<Arc<OwnedFd>, ResolveError> {
        let common = self
            .stack
            .iter()
            .zip(dirs)
            .take_while(|(l, d)| &l.name == *d)
            .count();
        self.stack.truncate(common);
        // Reopen from the deepest level that still has an open fd.
        let mut start = self.stack.len();
        while start > 0 && self.stack[start - 1].fd.is_none() {
            start -= 1;
        }
        self.stack.truncate(start);
        for (i, name) in dirs.iter().enumerate().skip(start) {
            let parent = Arc::clone(self.fd_at(i));
            let fd = open_or_create(
                parent.as_fd(),
                name,
                create,
                &dirs[..=i],
                &mut self.created_parents,
            )?;
            self.stack.push(Level {
                name: name.clone(),
                fd: Some(Arc::new(fd)),
            });
        }
        // Bound the number of open fds for very deep paths: keep the first levels and the last.
        let n = self.stack.len();
        if n > MAX_CACHED_FDS {
            for l in &mut self.stack[MAX_CACHED_FDS..n - 1] {
                l.fd = None;
            }
        }
        Ok(Arc::clone(self.fd_at(dirs.len())))
    }

    /// Forgets cached directories at or beneath `path` (it is being removed or replaced).
    pub fn invalidate(&mut self, path: &[Vec<u8>]) {
        if path.is_empty() {
            return;
        }
        let matches = self.stack.len() >= path.len()
            && self.stack.iter().zip(path).all(|(l, p)| &l.name == p);
        if matches {
            self.stack.truncate(path.len() - 1);
        }
    }
}

fn display(comps: &[Vec<u8>]) -> String {
    let joined: Vec<u8> = comps.join(&b'/');
    String::from_utf8_lossy(&joined).into_owned()
}

fn open_or_create(
    parent: BorrowedFd<'_>,
    name: &[u8],
    create: bool,
    so_far: &[Vec<u8>],
    created: &mut u64,
) -> Result<OwnedFd, ResolveError> {
    let c = sys::cstring(name).map_err(|e| ResolveError::Io {
        what: display(so_far),
        source: e,
    })?;
    match sys::open_dir_nofollow(parent, &c) {
        Ok(fd) => Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create => {
            match sys::mkdirat(parent, &c, 0o755) {
                Ok(()) => *created += 1,
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => {
                    return Err(ResolveError::Io {
                        what: display(so_far),
                        source: e,
                    })
                }
            }
            sys::open_dir_nofollow(parent, &c).map_err(|e| classify(parent, &c, so_far, e))
        }
        Err(e) => Err(classify(parent, &c, so_far, e)),
    }
}

fn classify(
    parent: BorrowedFd<'_>,
    name: &CString,
    so_far: &[Vec<u8>],
    e: io::Error,
) -> ResolveError {
    match e.raw_os_error() {
        Some(libc::ELOOP) | Some(libc::ENOTDIR) => {
            let what = match sys::lstatat(parent, name) {
                Ok(Some(st)) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => "a symbolic link",
                _ => "not a directory",
            };
            ResolveError::Unsafe(format!(
                "its parent '{}' is {what} in the target; refusing to write through it",
                display(so_far)
            ))
        }
        _ => ResolveError::Io {
            what: display(so_far),
            source: e,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comps(p: &str) -> Result<Vec<String>, String> {
        SafePath::parse(p.as_bytes()).map(|s| {
            s.comps
                .into_iter()
                .map(|c| String::from_utf8_lossy(&c).into_owned())
                .collect()
        })
    }

    #[test]
    fn parse_accepts_relative_paths() -> Result<(), String> {
        assert_eq!(comps("a/b/c")?, vec!["a", "b", "c"]);
        assert_eq!(comps("./a/b/")?, vec!["a", "b"]);
        assert!(comps(".")?.is_empty());
        assert_eq!(comps("a/./b")?, vec!["a", "b"]);
        Ok(())
    }

    #[test]
    fn parse_refuses_escapes() {
        for p in ["../x", "a/../../x", "/etc/passwd", "a//b", "", "..", "a/.."] {
            assert!(comps(p).is_err(), "{p} accepted");
        }
        assert!(SafePath::parse(b"a\0b").is_err());
    }
}
