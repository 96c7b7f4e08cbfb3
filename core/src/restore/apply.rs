//! Creating each kind of object beneath the target. Every creation is an `*at` call on the
//! parent's dirfd with one name; when something is in the way it is replaced (an empty
//! directory in the way of a non-directory is removed, a non-empty one is an error), except a
//! directory in the way of a directory, which is kept and gets the archive's metadata.

use super::beneath::{ResolveError, SafePath};
use super::metadata::{self, Meta, Target};
use super::{DeferredDir, Extractor, RestoreError};
use crate::archive::{Entry, EntryKind};
use crate::sys;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;

/// Files at least this big have their writeback started as soon as they are written.
pub const WRITEBACK_AT: u64 = 1 << 20;
impl Extractor {
    /// Restores one entry; `content` yields a regular file's stored content (only the data
    /// segments of a sparse file) and is read to its end, so the reader checks its checksum.
    pub fn apply(&mut self, entry: &Entry, content: &mut dyn Read) -> Result<(), RestoreError> {
        let shown = entry.display_path();
        // The one validation (verify applies it too): nothing is written for a refused entry.
        let checked = self.validator.check(entry)?;
        let path = checked.path;
        // A later entry at a path replaces the object there, and its pending metadata.
        self.deferred_flags.remove(&checked.node);
        if entry.kind != EntryKind::Dir {
            self.deferred_dirs.remove(&checked.node);
        }
        let Some(name) = path.name() else {
            self.report.dirs += 1;
            self.deferred_dirs
                .insert(checked.node, DeferredDir::of(entry));
            return Ok(());
        };
        let cname = sys::cstring(name).map_err(|_| RestoreError::Unsafe {
            path: shown.clone(),
            reason: "the name contains a NUL byte".into(),
        })?;
        let parent_fd = self
            .dirs
            .dir(path.parent(), true)
            .map_err(|e| self.resolve_err(&shown, e))?;
        let parent = parent_fd.as_fd();
        match &entry.kind {
            EntryKind::File { sparse } => {
                self.make_file(
                    parent,
                    &cname,
                    &path,
                    &shown,
                    entry,
                    sparse.as_deref(),
                    content,
                )?;
                if !entry.flags.is_empty() {
                    // Set at the end: an immutable file cannot be hard linked, nor its times
                    // set.
                    self.deferred_flags.insert(checked.node, entry.flags);
                }
            }
            EntryKind::Dir => {
                self.create(parent, &cname, &path, &shown, true, |p, n| {
                    sys::mkdirat(p, n, 0o700)
                })?;
                self.report.dirs += 1;
                self.deferred_dirs
                    .insert(checked.node, DeferredDir::of(entry));
            }
            EntryKind::Symlink { target } => {
                let t = CString::new(target.as_slice()).map_err(|_| RestoreError::Bomb {
                    path: shown.clone(),
                    reason: "the symbolic link's target contains a NUL byte".into(),
                })?;
                self.create(parent, &cname, &path, &shown, false, |p, n| {
                    sys::symlinkat(&t, p, n)
                })?;
                self.at_metadata(parent, name, &cname, &shown, entry, true)?;
                self.report.symlinks += 1;
            }
            EntryKind::HardLink { target } => {
                let Some((tpath, _)) = &checked.link_target else {
                    return Err(RestoreError::Unsafe {
                        path: shown,
                        reason: "its hard link target was not checked".into(),
                    });
                };
                self.make_hardlink(parent, &cname, &path, &shown, target, tpath)?;
                self.report.hardlinks += 1;
            }
            EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
                let kind = if matches!(entry.kind, EntryKind::CharDevice { .. }) {
                    libc::S_IFCHR
                } else {
                    libc::S_IFBLK
                };
                let dev = libc::makedev(*major, *minor);
                self.create(parent, &cname, &path, &shown, false, |p, n| {
                    sys::mknodat(p, n, kind | 0o600, dev)
                })?;
                self.at_metadata(parent, name, &cname, &shown, entry, false)?;
                self.report.devices += 1;
            }
            EntryKind::Fifo => {
                self.create(parent, &cname, &path, &shown, false, |p, n| {
                    sys::mknodat(p, n, libc::S_IFIFO | 0o600, 0)
                })?;
                self.at_metadata(parent, name, &cname, &shown, entry, false)?;
                self.report.fifos += 1;
            }
        }
        Ok(())
    }

    pub(super) fn resolve_err(&self, shown: &str, e: ResolveError) -> RestoreError {
        match e {
            ResolveError::Unsafe(reason) => RestoreError::Unsafe {
                path: shown.to_string(),
                reason,
            },
            ResolveError::Io { what, source } => {
                self.write_err("open the directory", &what, source)
            }
        }
    }

    /// Runs `make(parent, name)`; if something is in the way, replaces it (or keeps an existing
    /// directory when `dir`) and runs it again.
    fn create(
        &mut self,
        parent: BorrowedFd<'_>,
        cname: &CString,
        path: &SafePath,
        shown: &str,
        dir: bool,
        make: impl Fn(BorrowedFd<'_>, &CString) -> io::Result<()>,
    ) -> Result<(), RestoreError> {
        match make(parent, cname) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(self.write_err("create", shown, e)),
        }
        if self.clear_way(parent, cname, path, shown, dir)? {
            return Ok(());
        }
        make(parent, cname).map_err(|e| self.write_err("create", shown, e))
    }

    /// Removes what is at `name`; returns true when it is a directory and `keep_dir`.
    fn clear_way(
        &mut self,
        parent: BorrowedFd<'_>,
        cname: &CString,
        path: &SafePath,
        shown: &str,
        keep_dir: bool,
    ) -> Result<bool, RestoreError> {
        let st = sys::lstatat(parent, cname).map_err(|e| self.write_err("inspect", shown, e))?;
        let Some(st) = st else { return Ok(false) };
        let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        if is_dir && keep_dir {
            return Ok(true);
        }
        self.dirs.invalidate(&path.comps);
        self.link_dirs.invalidate(&path.comps);
        let mut removed = sys::unlinkat(parent, cname, is_dir);
        if matches!(&removed, Err(e) if e.raw_os_error() == Some(libc::EPERM))
            && (is_dir || st.st_mode & libc::S_IFMT == libc::S_IFREG)
            && clear_flags(parent, cname)
        {
            // An immutable or append-only file of an earlier restore: cleared, now removable.
            removed = sys::unlinkat(parent, cname, is_dir);
        }
        removed.map_err(|e| {
            if e.raw_os_error() == Some(libc::ENOTEMPTY) || e.raw_os_error() == Some(libc::EEXIST) {
                RestoreError::Write {
                    op: "replace the non-empty directory",
                    path: shown.to_string(),
                    target: self.opts.target.clone(),
                    source: e,
                }
            } else {
                self.write_err("replace", shown, e)
            }
        })?;
        Ok(false)
    }

    fn at_metadata(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        cname: &CString,
        shown: &str,
        entry: &Entry,
        symlink: bool,
    ) -> Result<(), RestoreError> {
        let target = Target::At {
            dir: parent,
            name,
            cname,
            symlink,
        };
        metadata::apply(
            target,
            &Meta::of(entry),
            &shown,
            self.opts.preserve_owner,
            &mut self.report.warnings,
        )
        .map_err(|e| self.write_err("set the metadata of", shown, e))
    }

    #[allow(clippy::too_many_arguments)]
    fn make_file(
        &mut self,
        parent: BorrowedFd<'_>,
        cname: &CString,
        path: &SafePath,
        shown: &str,
        entry: &Entry,
        sparse: Option<&[(u64, u64)]>,
        content: &mut dyn Read,
    ) -> Result<(), RestoreError> {
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let fd = match sys::openat(parent, cname, flags, 0o600) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                self.clear_way(parent, cname, path, shown, false)?;
                sys::openat(parent, cname, flags, 0o600)
                    .map_err(|e| self.write_err("create", shown, e))?
            }
            Err(e) => return Err(self.write_err("create", shown, e)),
        };
        let mut file = File::from(fd);
        match sparse {
            None => self.copy_exact(content, &mut file, entry.size, None, shown)?,
            Some(segments) => {
                for &(offset, len) in segments {
                    self.copy_exact(content, &mut file, len, Some(offset), shown)?;
                }
                file.set_len(entry.size)
                    .map_err(|e| self.write_err("set the size of", shown, e))?;
            }
        }
        self.expect_end(content, shown)?;
        if self.opts.early_writeback && entry.size >= WRITEBACK_AT {
            // Start writing this file back now (no waiting), so that the one syncfs at the
            // end finds little left to do. Advisory: a failure changes nothing.
            let _ = sys::start_writeback(file.as_fd());
        }
        metadata::apply(
            Target::Fd(file.as_fd()),
            &Meta::of(entry),
            &shown,
            self.opts.preserve_owner,
            &mut self.report.warnings,
        )
        .map_err(|e| self.write_err("set the metadata of", shown, e))?;
        self.report.files += 1;
        Ok(())
    }

    /// Copies exactly `len` bytes of content to `file` (at `offset`, or where it stands).
    fn copy_exact(
        &mut self,
        content: &mut dyn Read,
        file: &mut File,
        len: u64,
        mut offset: Option<u64>,
        shown: &str,
    ) -> Result<(), RestoreError> {
        let mut left = len;
        while left > 0 {
            let want = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(self.buf.len());
            let n = match content.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(RestoreError::Content {
                        path: shown.to_string(),
                        source: io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("the content ends {left} bytes early (truncated archive)"),
                        ),
                    })
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(content_err(shown, e)),
            };
            let r = match offset {
                Some(o) => file.write_all_at(&self.buf[..n], o),
                None => file.write_all(&self.buf[..n]),
            };
            r.map_err(|e| self.write_err("write", shown, e))?;
            if let Some(o) = offset.as_mut() {
                *o += n as u64;
            }
            left -= n as u64;
            self.report.bytes += n as u64;
        }
        Ok(())
    }

    /// Reads the content to its end: the reader checks the checksum there; more content than
    /// the entry's size is damage.
    fn expect_end(&mut self, content: &mut dyn Read, shown: &str) -> Result<(), RestoreError> {
        let mut probe = [0u8; 1];
        loop {
            return match content.read(&mut probe) {
                Ok(0) => Ok(()),
                Ok(_) => Err(RestoreError::Content {
                    path: shown.to_string(),
                    source: io::Error::new(
                        io::ErrorKind::InvalidData,
                        "more content than the entry's size",
                    ),
                }),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(content_err(shown, e)),
            };
        }
    }

    /// Links `tpath` (checked by the validator: an earlier non-directory entry) as `path`.
    fn make_hardlink(
        &mut self,
        parent: BorrowedFd<'_>,
        cname: &CString,
        path: &SafePath,
        shown: &str,
        target: &[u8],
        tpath: &SafePath,
    ) -> Result<(), RestoreError> {
        let shown_target = String::from_utf8_lossy(target).into_owned();
        let unsafe_target = |reason: String| RestoreError::Unsafe {
            path: shown.to_string(),
            reason: format!("its hard link target '{shown_target}' {reason}"),
        };
        let Some(tname) = tpath.name() else {
            return Err(unsafe_target("is the target directory itself".into()));
        };
        let tcname =
            sys::cstring(tname).map_err(|_| unsafe_target("contains a NUL byte".into()))?;
        let tparent = match self.link_dirs.dir(tpath.parent(), false) {
            Ok(fd) => fd,
            Err(ResolveError::Unsafe(reason)) => {
                return Err(unsafe_target(format!("is refused: {reason}")))
            }
            Err(ResolveError::Io { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) => {
                return Err(unsafe_target(
                    "does not exist (it must be an earlier entry)".into(),
                ))
            }
            Err(e) => return Err(self.resolve_err(shown, e)),
        };
        let link = |p: BorrowedFd<'_>, n: &CString| sys::linkat(tparent.as_fd(), &tcname, p, n);
        match link(parent, cname) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                self.clear_way(parent, cname, path, shown, false)?;
                link(parent, cname).map_err(|e| self.write_err("create the hard link", shown, e))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Err(unsafe_target(
                "does not exist (it must be an earlier entry)".into(),
            )),
            Err(e) => Err(self.write_err("create the hard link", shown, e)),
        }
    }
}

/// Clears immutable / append-only on a regular file or directory in the way; true if done.
fn clear_flags(parent: BorrowedFd<'_>, cname: &CString) -> bool {
    let open = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
    let Ok(fd) = sys::openat(parent, cname, open, 0) else {
        return false;
    };
    let raw = fd.as_fd();
    match sys::get_flags(raw) {
        Ok(f) if f & (sys::FS_IMMUTABLE_FL | sys::FS_APPEND_FL) != 0 => {
            sys::set_flags(raw, f & !(sys::FS_IMMUTABLE_FL | sys::FS_APPEND_FL)).is_ok()
        }
        _ => false,
    }
}

/// An error reading an entry's content: the reader's own error (e.g. a checksum mismatch,
/// which names the path) when it is one, else the I/O error with the path.
fn content_err(shown: &str, e: io::Error) -> RestoreError {
    if e.get_ref()
        .is_some_and(|inner| inner.is::<crate::archive::ArchiveError>())
    {
        return RestoreError::Archive(e.into());
    }
    RestoreError::Content {
        path: shown.to_string(),
        source: e,
    }
}
