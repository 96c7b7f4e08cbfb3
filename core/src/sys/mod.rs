//! The one system-call layer of Lifeboat: the `*at` calls the backup walker and the restore
//! engine are built from, inode flags, sparse maps and (in [`xattr`]) extended attributes.
//!
//! Every `*at` call takes a directory descriptor and one name (never a path with `/`), so
//! nothing is ever resolved through a symbolic link. Descriptors are `OwnedFd` when returned
//! and `BorrowedFd` when passed in; raw descriptors only exist inside this module.
//!
//! The calls are nix's where nix 0.29 has them (it takes `RawFd`s: the borrowed descriptor is
//! lent for the call only). libc is used directly where nix lacks the call (xattrs,
//! `FS_IOC_*FLAGS` with the kernel's `int` width, `sync_file_range`) or returns a bare `RawFd`
//! (`openat`: owned here at once). Each `unsafe` block is one system call with NUL-terminated
//! names and, where the kernel writes, a buffer the wrapper owns. The test crate's oracle
//! (tests/src) deliberately does not use this module, so it does not check the code with
//! the code.

pub mod net;
pub mod xattr;

use nix::fcntl::AtFlags;
use nix::sys::stat::{self, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd;
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
    stat::mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(mode))?;
    Ok(())
}

/// Makes a device node or fifo; `mode` holds the type (`S_IFCHR`, ...) and the permissions.
pub fn mknodat(
    dir: BorrowedFd<'_>,
    name: &CStr,
    mode: libc::mode_t,
    dev: libc::dev_t,
) -> io::Result<()> {
    stat::mknodat(
        Some(dir.as_raw_fd()),
        name,
        SFlag::from_bits_truncate(mode & libc::S_IFMT),
        Mode::from_bits_truncate(mode & !libc::S_IFMT),
        dev,
    )?;
    Ok(())
}

pub fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    unistd::symlinkat(target, Some(dir.as_raw_fd()), name)?;
    Ok(())
}

/// Links `old` (in `old_dir`) as `new` (in `new_dir`); a symbolic link `old` is linked itself,
/// never followed (no `AT_SYMLINK_FOLLOW`).
pub fn linkat(
    old_dir: BorrowedFd<'_>,
    old: &CStr,
    new_dir: BorrowedFd<'_>,
    new: &CStr,
) -> io::Result<()> {
    unistd::linkat(
        Some(old_dir.as_raw_fd()),
        old,
        Some(new_dir.as_raw_fd()),
        new,
        AtFlags::empty(),
    )?;
    Ok(())
}

pub fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, is_dir: bool) -> io::Result<()> {
    let flag = if is_dir {
        unistd::UnlinkatFlags::RemoveDir
    } else {
        unistd::UnlinkatFlags::NoRemoveDir
    };
    unistd::unlinkat(Some(dir.as_raw_fd()), name, flag)?;
    Ok(())
}

/// `lstat` of `name` in `dir`: the object itself, a symbolic link not followed.
pub fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<libc::stat> {
    Ok(stat::fstatat(
        Some(dir.as_raw_fd()),
        name,
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )?)
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
    Ok(stat::fstat(fd.as_raw_fd())?)
}

pub fn fchown(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    unistd::fchown(fd.as_raw_fd(), Some(uid.into()), Some(gid.into()))?;
    Ok(())
}

pub fn fchownat_nofollow(dir: BorrowedFd<'_>, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
    unistd::fchownat(
        Some(dir.as_raw_fd()),
        name,
        Some(uid.into()),
        Some(gid.into()),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

pub fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(mode))?;
    Ok(())
}

/// chmod of a name that is known not to be a symbolic link (a device node or fifo we just made).
pub fn fchmodat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    stat::fchmodat(
        Some(dir.as_raw_fd()),
        name,
        Mode::from_bits_truncate(mode),
        stat::FchmodatFlags::FollowSymlink,
    )?;
    Ok(())
}

fn mtime(secs: i64, nanos: u32) -> TimeSpec {
    TimeSpec::new(secs as _, nanos as _)
}

/// Sets the mtime (atime untouched) of an open file.
pub fn futimens(fd: BorrowedFd<'_>, secs: i64, nanos: u32) -> io::Result<()> {
    stat::futimens(fd.as_raw_fd(), &TimeSpec::UTIME_OMIT, &mtime(secs, nanos))?;
    Ok(())
}

/// Sets the mtime of `name` in `dir`, of a symbolic link itself when it is one.
pub fn utimensat_nofollow(
    dir: BorrowedFd<'_>,
    name: &CStr,
    secs: i64,
    nanos: u32,
) -> io::Result<()> {
    stat::utimensat(
        Some(dir.as_raw_fd()),
        name,
        &TimeSpec::UTIME_OMIT,
        &mtime(secs, nanos),
        stat::UtimensatFlags::NoFollowSymlink,
    )?;
    Ok(())
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
    unistd::syncfs(fd.as_raw_fd())?;
    Ok(())
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

nix::ioctl_none!(blkrrpart, 0x12, 95);

/// Asks the kernel to read a disk's partition table again (BLKRRPART, what `blockdev
/// --rereadpt` does). Fails with EBUSY while a partition of the disk is in use.
pub fn reread_partitions(disk: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: BLKRRPART takes no argument; the descriptor is open for the call's duration.
    unsafe { blkrrpart(disk.as_raw_fd()) }
        .map(|_| ())
        .map_err(io::Error::from)
}
