//! Applying an entry's metadata, in the order that keeps it: owner first (chown clears setuid,
//! setgid and security.capability), then mode, then xattrs (ACLs, capabilities, SELinux
//! labels), then mtime, and the ext flags immutable / append-only last (they forbid the rest).

use super::Warnings;
use crate::archive::{Entry, FileFlags, Timestamp};
use crate::sys;
use std::ffi::CStr;
use std::io;
use std::os::fd::BorrowedFd;

/// Where metadata is applied: an open fd (files, directories), or a name in a directory for
/// objects that must not be opened (symbolic links, device nodes, fifos).
#[derive(Clone, Copy)]
pub enum Target<'a> {
    Fd(BorrowedFd<'a>),
    At {
        dir: BorrowedFd<'a>,
        name: &'a [u8],
        cname: &'a CStr,
        symlink: bool,
    },
}

/// A failure that must stop the restore (others become warnings).
pub fn is_fatal(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EIO) | Some(libc::EROFS)
    )
}

fn uid32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX - 1)
}

/// The metadata [`apply`] sets: an entry's, or a deferred directory's.
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: Timestamp,
    pub xattrs: &'a [(Vec<u8>, Vec<u8>)],
}

impl<'a> Meta<'a> {
    pub fn of(entry: &'a Entry) -> Self {
        Self {
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
            mtime: entry.mtime,
            xattrs: &entry.xattrs,
        }
    }
}

/// Owner, mode, xattrs and mtime (not flags: see [`apply_flags`]) of the object `path`.
pub fn apply(
    target: Target<'_>,
    entry: &Meta<'_>,
    path: &dyn std::fmt::Display,
    preserve_owner: bool,
    warnings: &mut Warnings,
) -> io::Result<()> {
    if preserve_owner {
        let (u, g) = (uid32(entry.uid), uid32(entry.gid));
        let r = match target {
            Target::Fd(fd) => sys::fchown(fd, u, g),
            Target::At { dir, cname, .. } => sys::fchownat_nofollow(dir, cname, u, g),
        };
        soft(r, warnings, || {
            format!("cannot set the owner {u}:{g} of '{path}'")
        })?;
    }
    let mode = entry.mode & 0o7777;
    let r = match target {
        Target::Fd(fd) => sys::fchmod(fd, mode),
        Target::At { symlink: true, .. } => Ok(()),
        Target::At { dir, cname, .. } => sys::fchmodat(dir, cname, mode),
    };
    soft(r, warnings, || {
        format!("cannot set the mode {mode:o} of '{path}'")
    })?;
    for (name, value) in entry.xattrs {
        let xname = String::from_utf8_lossy(name).into_owned();
        let Ok(cname) = sys::cstring(name) else {
            warnings.push(format!(
                "skipped the xattr '{xname}' of '{path}': its name has a NUL byte"
            ));
            continue;
        };
        let r = match target {
            Target::Fd(fd) => sys::xattr::fset(fd, &cname, value),
            Target::At { dir, name, .. } => sys::xattr::lset_at(dir, name, &cname, value),
        };
        soft(r, warnings, || {
            format!("cannot set the xattr '{xname}' of '{path}'")
        })?;
    }
    let r = match target {
        Target::Fd(fd) => sys::futimens(fd, entry.mtime.secs, entry.mtime.nanos),
        Target::At { dir, cname, .. } => {
            sys::utimensat_nofollow(dir, cname, entry.mtime.secs, entry.mtime.nanos)
        }
    };
    soft(r, warnings, || {
        format!("cannot set the modification time of '{path}'")
    })?;
    Ok(())
}

/// Sets immutable / append-only on an open regular file or directory.
pub fn apply_flags(
    fd: BorrowedFd<'_>,
    flags: FileFlags,
    path: &dyn std::fmt::Display,
    warnings: &mut Warnings,
) -> io::Result<()> {
    if flags.is_empty() {
        return Ok(());
    }
    let r = sys::get_flags(fd).and_then(|mut f| {
        if flags.immutable {
            f |= sys::FS_IMMUTABLE_FL;
        }
        if flags.append_only {
            f |= sys::FS_APPEND_FL;
        }
        sys::set_flags(fd, f)
    });
    soft(r, warnings, || {
        format!("cannot set the flags (immutable/append-only) of '{path}'")
    })
}

/// A metadata failure the filesystem or our privileges cause (vfat has no owners, a kernel
/// without SELinux may refuse a label, a non-root user cannot chown) is a warning; running
/// out of space or a dead disk is an error.
fn soft(
    r: io::Result<()>,
    warnings: &mut Warnings,
    what: impl FnOnce() -> String,
) -> io::Result<()> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if is_fatal(&e) => Err(e),
        Err(e) => {
            warnings.push(format!("{}: {e}", what()));
            Ok(())
        }
    }
}
