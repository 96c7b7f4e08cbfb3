//! Thin wrappers over the `*at` system calls the restore engine is built from. Every call takes
//! a directory fd and one name (never a path with `/`), so nothing is ever resolved through a
//! symbolic link. libc is used directly (nix 0.29 lacks the xattr and `FS_IOC_*` calls, and
//! mixing the two would make the fd ownership harder to follow).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

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

pub fn openat(
    dir: RawFd,
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

/// Opens the directory `name` in `dir` without following a symbolic link.
pub fn open_dir_nofollow(dir: RawFd, name: &CStr) -> io::Result<OwnedFd> {
    openat(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
}

pub fn open_path(path: &std::path::Path) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let c = cstring(path.as_os_str().as_bytes())?;
    openat(libc::AT_FDCWD, &c, libc::O_RDONLY | libc::O_DIRECTORY, 0)
}

pub fn mkdirat(dir: RawFd, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::mkdirat(dir, name.as_ptr(), mode) }).map(|_| ())
}

pub fn mknodat(dir: RawFd, name: &CStr, mode: libc::mode_t, dev: libc::dev_t) -> io::Result<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::mknodat(dir, name.as_ptr(), mode, dev) }).map(|_| ())
}

pub fn symlinkat(target: &CStr, dir: RawFd, name: &CStr) -> io::Result<()> {
    // SAFETY: valid C strings.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir, name.as_ptr()) }).map(|_| ())
}

/// Links `old` (in `old_dir`) as `new` (in `new_dir`); a symbolic link `old` is linked itself,
/// never followed (no `AT_SYMLINK_FOLLOW`).
pub fn linkat(old_dir: RawFd, old: &CStr, new_dir: RawFd, new: &CStr) -> io::Result<()> {
    // SAFETY: valid C strings.
    check(unsafe { libc::linkat(old_dir, old.as_ptr(), new_dir, new.as_ptr(), 0) }).map(|_| ())
}

pub fn unlinkat(dir: RawFd, name: &CStr, is_dir: bool) -> io::Result<()> {
    let flags = if is_dir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: valid C string.
    check(unsafe { libc::unlinkat(dir, name.as_ptr(), flags) }).map(|_| ())
}

/// `lstat` of `name` in `dir`; None when it does not exist.
pub fn lstatat(dir: RawFd, name: &CStr) -> io::Result<Option<libc::stat>> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st is a valid out pointer; name a valid C string.
    let ret = unsafe {
        libc::fstatat(
            dir,
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if ret < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ENOENT) {
            return Ok(None);
        }
        return Err(err);
    }
    // SAFETY: fstatat succeeded and filled st.
    Ok(Some(unsafe { st.assume_init() }))
}

pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: valid out pointer.
    check(unsafe { libc::fstat(fd, st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded.
    Ok(unsafe { st.assume_init() })
}

pub fn fchown(fd: RawFd, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: plain syscall on an fd.
    check(unsafe { libc::fchown(fd, uid, gid) }).map(|_| ())
}

pub fn fchownat_nofollow(dir: RawFd, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::fchownat(dir, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) })
        .map(|_| ())
}

pub fn fchmod(fd: RawFd, mode: u32) -> io::Result<()> {
    // SAFETY: plain syscall on an fd.
    check(unsafe { libc::fchmod(fd, mode as libc::mode_t) }).map(|_| ())
}

/// chmod of a name that is known not to be a symbolic link (a device node or fifo we just made).
pub fn fchmodat(dir: RawFd, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::fchmodat(dir, name.as_ptr(), mode as libc::mode_t, 0) }).map(|_| ())
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
pub fn futimens(fd: RawFd, secs: i64, nanos: u32) -> io::Result<()> {
    let ts = times(secs, nanos);
    // SAFETY: ts is an array of two timespecs.
    check(unsafe { libc::futimens(fd, ts.as_ptr()) }).map(|_| ())
}

/// Sets the mtime of `name` in `dir`, of a symbolic link itself when it is one.
pub fn utimensat_nofollow(dir: RawFd, name: &CStr, secs: i64, nanos: u32) -> io::Result<()> {
    let ts = times(secs, nanos);
    // SAFETY: valid C string, ts an array of two timespecs.
    check(unsafe { libc::utimensat(dir, name.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })
        .map(|_| ())
}

pub fn fsetxattr(fd: RawFd, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: name valid C string, value a valid slice.
    check(unsafe { libc::fsetxattr(fd, name.as_ptr(), value.as_ptr().cast(), value.len(), 0) })
        .map(|_| ())
}

/// Sets an xattr on `name` in `dir` without following it: `lsetxattr` on
/// `/proc/self/fd/<dir>/<name>` (the magic link resolves to the directory; the last component,
/// which may be a symbolic link, is not followed). There is no `fsetxattrat` on Linux 4.x.
pub fn lsetxattr_at(dir: RawFd, name: &[u8], xname: &CStr, value: &[u8]) -> io::Result<()> {
    let mut path = format!("/proc/self/fd/{dir}/").into_bytes();
    path.extend_from_slice(name);
    let path = cstring(&path)?;
    // SAFETY: valid C strings and slice.
    check(unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            xname.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
    .map(|_| ())
}

// ext2/3/4 inode flags (linux/fs.h). The ioctls take an `int` in the kernel although declared
// with `long`; the request numbers below are the 64-bit ones (`_IOR('f', 1, long)`).
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

pub fn get_flags(fd: RawFd) -> io::Result<libc::c_int> {
    let mut flags: libc::c_int = 0;
    // SAFETY: the ioctl writes one int into `flags`.
    check(unsafe { libc::ioctl(fd, FS_IOC_GETFLAGS as _, &mut flags) })?;
    Ok(flags)
}

pub fn set_flags(fd: RawFd, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: the ioctl reads one int from `flags`.
    check(unsafe { libc::ioctl(fd, FS_IOC_SETFLAGS as _, &flags) }).map(|_| ())
}

/// Starts writeback of a file's dirty pages without waiting for it.
pub fn start_writeback(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain syscall on an fd.
    check(unsafe { libc::sync_file_range(fd, 0, 0, libc::SYNC_FILE_RANGE_WRITE) }).map(|_| ())
}

pub fn syncfs(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain syscall on an fd.
    check(unsafe { libc::syncfs(fd) }).map(|_| ())
}

pub fn dup(fd: &OwnedFd) -> io::Result<OwnedFd> {
    fd.try_clone()
}

pub fn dup_raw(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on a valid fd returns a new fd we own.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: new is a fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

pub fn raw(fd: &OwnedFd) -> RawFd {
    fd.as_raw_fd()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
