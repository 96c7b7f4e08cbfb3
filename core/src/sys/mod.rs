//! The one system-call layer of Lifeboat: the `*at` calls the backup walker and the restore
//! engine are built from, inode flags, sparse maps and (in [`xattr`]) extended attributes.
//!
//! Every `*at` call takes a directory descriptor and one name (never a path with `/`), so
//! nothing is ever resolved through a symbolic link. Descriptors are `OwnedFd` when returned
//! and `BorrowedFd` when passed in; raw descriptors only exist inside this module.
//!
//! libc is used directly where nix 0.29 either lacks the call (xattrs, `FS_IOC_*FLAGS`,
//! `sync_file_range`, `syncfs`) or only offers it on `RawFd` returning a `RawFd` (the `*at`
//! calls), which would move the ownership question to every caller. Each `unsafe` block here
//! is one system call with a NUL-terminated name and, where the kernel writes, a buffer owned
//! by the wrapper. The test crate's oracle (tests/src) deliberately does not use this module.

pub mod xattr;

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `name` as a C string; a NUL byte inside a name is refused by the caller before this.
pub fn cstring(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn openat_raw(
    dir: libc::c_int,
    name: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: name is a valid NUL-terminated string; the returned fd is owned by us.
        let fd = unsafe {
            libc::openat(
                dir,
                name.as_ptr(),
                flags | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        };
        if fd >= 0 {
            // SAFETY: fd was just returned by openat and is not owned elsewhere.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// `openat(dir, name, flags | O_CLOEXEC, mode)`, retried on EINTR.
pub fn openat(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    openat_raw(dir.as_raw_fd(), name, flags, mode)
}

/// Opens `name` in `dir` for reading without following a symbolic link and, where the
/// caller may (the owner or root), without updating its access time: the backup walker's
/// open, which leaves the live root's atimes alone.
pub fn open_noatime(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    let base = flags | libc::O_NOFOLLOW;
    match openat(dir, name, base | libc::O_NOATIME, 0) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => openat(dir, name, base, 0),
        r => r,
    }
}

/// Opens the directory `name` in `dir` without following a symbolic link.
pub fn open_dir_nofollow(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    openat(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
}

/// Opens the directory at `path`, following symbolic links (a root given as `/mnt/link`).
pub fn open_dir_path(path: &Path) -> io::Result<OwnedFd> {
    let c = cstring(path.as_os_str().as_bytes())?;
    openat_raw(libc::AT_FDCWD, &c, libc::O_RDONLY | libc::O_DIRECTORY, 0)
}

pub fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) }).map(|_| ())
}

pub fn mknodat(
    dir: BorrowedFd<'_>,
    name: &CStr,
    mode: libc::mode_t,
    dev: libc::dev_t,
) -> io::Result<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, dev) }).map(|_| ())
}

pub fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: valid C strings.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) }).map(|_| ())
}

/// Links `old` (in `old_dir`) as `new` (in `new_dir`); a symbolic link `old` is linked itself,
/// never followed (no `AT_SYMLINK_FOLLOW`).
pub fn linkat(
    old_dir: BorrowedFd<'_>,
    old: &CStr,
    new_dir: BorrowedFd<'_>,
    new: &CStr,
) -> io::Result<()> {
    // SAFETY: valid C strings.
    check(unsafe {
        libc::linkat(
            old_dir.as_raw_fd(),
            old.as_ptr(),
            new_dir.as_raw_fd(),
            new.as_ptr(),
            0,
        )
    })
    .map(|_| ())
}

pub fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, is_dir: bool) -> io::Result<()> {
    let flags = if is_dir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: valid C string.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) }).map(|_| ())
}

/// `lstat` of `name` in `dir`: the object itself, a symbolic link not followed.
pub fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st is a valid out pointer; name a valid C string.
    check(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    // SAFETY: fstatat succeeded and filled st.
    Ok(unsafe { st.assume_init() })
}

/// [`stat_at`], None when `name` does not exist.
pub fn lstatat(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Option<libc::stat>> {
    match stat_at(dir, name) {
        Ok(st) => Ok(Some(st)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: valid out pointer.
    check(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded.
    Ok(unsafe { st.assume_init() })
}

pub fn fchown(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: plain syscall on an fd.
    check(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) }).map(|_| ())
}

pub fn fchownat_nofollow(dir: BorrowedFd<'_>, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: valid C string.
    check(unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            name.as_ptr(),
            uid,
            gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(|_| ())
}

pub fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: plain syscall on an fd.
    check(unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) }).map(|_| ())
}

/// chmod of a name that is known not to be a symbolic link (a device node or fifo we just made).
pub fn fchmodat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::fchmodat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t, 0) })
        .map(|_| ())
}

fn times(secs: i64, nanos: u32) -> [libc::timespec; 2] {
    [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: secs as _,
            tv_nsec: nanos as _,
        },
    ]
}

/// Sets the mtime (atime untouched) of an open file.
pub fn futimens(fd: BorrowedFd<'_>, secs: i64, nanos: u32) -> io::Result<()> {
    let ts = times(secs, nanos);
    // SAFETY: ts is an array of two timespecs.
    check(unsafe { libc::futimens(fd.as_raw_fd(), ts.as_ptr()) }).map(|_| ())
}

/// Sets the mtime of `name` in `dir`, of a symbolic link itself when it is one.
pub fn utimensat_nofollow(
    dir: BorrowedFd<'_>,
    name: &CStr,
    secs: i64,
    nanos: u32,
) -> io::Result<()> {
    let ts = times(secs, nanos);
    // SAFETY: valid C string, ts an array of two timespecs.
    check(unsafe {
        libc::utimensat(
            dir.as_raw_fd(),
            name.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(|_| ())
}

// ext2/3/4 inode flags (linux/fs.h). The ioctls take an `int` in the kernel although declared
// with `long`; the request numbers below are the 64-bit ones (`_IOR('f', 1, long)`). nix's
// ioctl macros would generate the same unsafe call, typed with the wrong (`long`) width.
pub const FS_IMMUTABLE_FL: libc::c_int = 0x10;
pub const FS_APPEND_FL: libc::c_int = 0x20;
#[cfg(target_pointer_width = "64")]
const FS_IOC_GETFLAGS: libc::c_ulong = 0x8008_6601;
#[cfg(target_pointer_width = "64")]
const FS_IOC_SETFLAGS: libc::c_ulong = 0x4008_6602;
#[cfg(target_pointer_width = "32")]
const FS_IOC_GETFLAGS: libc::c_ulong = 0x8004_6601;
#[cfg(target_pointer_width = "32")]
const FS_IOC_SETFLAGS: libc::c_ulong = 0x4004_6602;

/// The inode flags (what `lsattr` shows).
pub fn get_flags(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    let mut flags: libc::c_int = 0;
    // SAFETY: the ioctl writes one int into `flags`.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), FS_IOC_GETFLAGS as _, &mut flags) })?;
    Ok(flags)
}

pub fn set_flags(fd: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: the ioctl reads one int from `flags`.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), FS_IOC_SETFLAGS as _, &flags) }).map(|_| ())
}

/// `lseek(fd, offset, SEEK_DATA)`: the next data at or after `offset`; ENXIO when none.
pub fn seek_data(fd: BorrowedFd<'_>, offset: u64) -> io::Result<u64> {
    seek(fd, offset, nix::unistd::Whence::SeekData)
}

/// `lseek(fd, offset, SEEK_HOLE)`: the next hole at or after `offset` (the end is one).
pub fn seek_hole(fd: BorrowedFd<'_>, offset: u64) -> io::Result<u64> {
    seek(fd, offset, nix::unistd::Whence::SeekHole)
}

/// Moves the file offset back to the start.
pub fn rewind(fd: BorrowedFd<'_>) -> io::Result<()> {
    seek(fd, 0, nix::unistd::Whence::SeekSet).map(|_| ())
}

fn seek(fd: BorrowedFd<'_>, offset: u64, whence: nix::unistd::Whence) -> io::Result<u64> {
    let offset =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let pos = nix::unistd::lseek(fd.as_raw_fd(), offset, whence)?;
    Ok(pos as u64)
}

/// Starts writeback of a file's dirty pages without waiting for it.
pub fn start_writeback(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain syscall on an fd.
    check(unsafe { libc::sync_file_range(fd.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) })
        .map(|_| ())
}

pub fn syncfs(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain syscall on an fd.
    check(unsafe { libc::syncfs(fd.as_raw_fd()) }).map(|_| ())
}

/// Raises the soft limit of open descriptors to the hard one (a deep tree keeps one
/// descriptor per level open); left as it is when that fails.
pub fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
