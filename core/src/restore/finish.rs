//! The end of a restore: the ext flags of regular files and the metadata of directories, which
//! wait for the contents (an immutable file cannot be linked, a directory's mtime changes with
//! every entry made in it, a read-only mode or immutable flag would stop the restore).
//!
//! One walk of the validator's tree, each directory after its contents (post-order), opening
//! each directory once from its parent. Only the upper levels keep their fds; beyond that a
//! parent is reopened as `..` of its child and checked to be the same directory (device and
//! inode), so a 4,096-deep tree costs one open per directory, not one per component.

use super::metadata::{self, Target};
use super::validate::{NodeKind, ROOT};
use super::{Extractor, RestoreError};
use crate::sys;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Directory levels whose fds stay open during the walk.
const KEPT_FDS: usize = 128;

struct Frame {
    node: u32,
    fd: Option<OwnedFd>,
    id: (u64, u64),
    /// Index of the next child in `kids`.
    next: usize,
    end: usize,
}

fn identity(fd: BorrowedFd<'_>) -> std::io::Result<(u64, u64)> {
    let st = sys::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

impl Extractor {
    /// Applies the pending file flags and directory metadata, every directory after its
    /// contents.
    pub(super) fn apply_deferred(&mut self) -> Result<(), RestoreError> {
        if self.deferred_dirs.is_empty() && self.deferred_flags.is_empty() {
            return Ok(());
        }
        let (start, kids) = self.validator.tree().children();
        let range = |n: u32| (start[n as usize] as usize, start[n as usize + 1] as usize);
        let root = (self.dirs.root_fd().try_clone_to_owned())
            .map_err(|e| self.write_err("open", ".", e))?;
        let id = identity(root.as_fd()).map_err(|e| self.write_err("inspect", ".", e))?;
        let (next, end) = range(ROOT);
        let mut stack = vec![Frame {
            node: ROOT,
            fd: Some(root),
            id,
            next,
            end,
        }];
        loop {
            let depth = stack.len();
            let Some(top) = stack.last_mut() else {
                break;
            };
            if top.next < top.end {
                let child = kids[top.next];
                top.next += 1;
                let Some(dir) = top.fd.as_ref().map(|f| f.as_fd()) else {
                    continue;
                };
                let tree = self.validator.tree();
                let name = tree.name(child).to_vec();
                match tree.kind(child) {
                    NodeKind::Dir => {
                        if let Some(frame) = self.enter(dir, child, &name, range(child)) {
                            if depth > KEPT_FDS {
                                if let Some(parent) = stack.last_mut() {
                                    parent.fd = None;
                                }
                            }
                            stack.push(frame);
                        }
                    }
                    _ => {
                        if let Some(flags) = self.deferred_flags.remove(&child) {
                            self.file_flags(dir, child, &name, flags)?;
                        }
                    }
                }
                continue;
            }
            // Every child is done: this directory's own metadata, once its parent is at hand.
            let Some(frame) = stack.pop() else { break };
            let Some(fd) = frame.fd else {
                continue;
            };
            if let Some(parent) = stack.last_mut() {
                if parent.fd.is_none() {
                    parent.fd = Some(self.reopen_parent(fd.as_fd(), frame.node, parent.id)?);
                }
            }
            if let Some(d) = self.deferred_dirs.remove(&frame.node) {
                let shown = self.validator.tree().path_of(frame.node);
                let raw = fd.as_fd();
                metadata::apply(
                    Target::Fd(raw),
                    &d.meta(),
                    &shown,
                    self.opts.preserve_owner,
                    &mut self.report.warnings,
                )
                .map_err(|e| self.write_err("set the metadata of", &shown.to_string(), e))?;
                metadata::apply_flags(raw, d.flags, &shown, &mut self.report.warnings)
                    .map_err(|e| self.write_err("set the flags of", &shown.to_string(), e))?;
            }
        }
        Ok(())
    }

    /// Opens the directory `child` in `dir`; a warning (and its subtree skipped) when it
    /// cannot be (the target held something else there).
    fn enter(
        &mut self,
        dir: BorrowedFd<'_>,
        child: u32,
        name: &[u8],
        range: (usize, usize),
    ) -> Option<Frame> {
        let opened = sys::cstring(name)
            .and_then(|c| sys::open_dir_nofollow(dir, &c))
            .and_then(|fd| identity(fd.as_fd()).map(|id| (fd, id)));
        match opened {
            Ok((fd, id)) => Some(Frame {
                node: child,
                fd: Some(fd),
                id,
                next: range.0,
                end: range.1,
            }),
            Err(e) => {
                let shown = self.validator.tree().display(child);
                self.report.warnings.push(format!(
                    "cannot set the metadata of the directory '{shown}' and beneath it: {e}"
                ));
                None
            }
        }
    }

    /// The parent of the directory `fd` (node `node`), opened as its `..` and checked to be
    /// the directory `id` that the walk came from.
    fn reopen_parent(
        &self,
        fd: BorrowedFd<'_>,
        node: u32,
        id: (u64, u64),
    ) -> Result<OwnedFd, RestoreError> {
        let shown = self.validator.tree().display(node);
        let parent = sys::open_dir_nofollow(fd, c"..")
            .map_err(|e| self.write_err("open the parent of", &shown, e))?;
        let found = identity(parent.as_fd()).map_err(|e| self.write_err("inspect", &shown, e))?;
        if found != id {
            return Err(RestoreError::Write {
                op: "find the parent directory of",
                path: shown,
                target: self.opts.target.clone(),
                source: std::io::Error::other(
                    "the directory was moved during the restore; run the restore again",
                ),
            });
        }
        Ok(parent)
    }

    /// Sets immutable / append-only on the regular file `name` in `dir`.
    fn file_flags(
        &mut self,
        dir: BorrowedFd<'_>,
        node: u32,
        name: &[u8],
        flags: crate::archive::FileFlags,
    ) -> Result<(), RestoreError> {
        let shown = self.validator.tree().display(node);
        let open = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
        let fd = match sys::cstring(name).and_then(|c| sys::openat(dir, &c, open, 0)) {
            Ok(fd) => fd,
            Err(e) => {
                self.report
                    .warnings
                    .push(format!("cannot set the flags of '{shown}': {e}"));
                return Ok(());
            }
        };
        let st = sys::fstat(fd.as_fd()).map_err(|e| self.write_err("inspect", &shown, e))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Ok(());
        }
        metadata::apply_flags(fd.as_fd(), flags, &shown, &mut self.report.warnings)
            .map_err(|e| self.write_err("set the flags of", &shown, e))
    }
}
