//! The few system calls the test tools need that std lacks: `*at` calls on dirfds (paths longer
//! than PATH_MAX can only be reached that way), xattrs, ext flags, device nodes. Plain nix and
//! libc, on purpose not lifeboat-core's `sys` layer: this is the oracle the restore is checked
//! against, so it must not share the code it checks.

use anyhow::{bail, Context, Result};
use nix::fcntl::AtFlags;
use nix::sys::stat::{self, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd;
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;

pub fn cstr(b: &[u8]) -> Result<CString> {
    CString::new(b).context("a name contains a NUL byte")
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn check_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

pub fn openat(
    dir: RawFd,
    name: &[u8],
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid C string; the returned fd is owned by us.
    let fd = unsafe {
        libc::openat(
            dir,
            c.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is fresh.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn open_dir(dir: RawFd, name: &[u8]) -> io::Result<OwnedFd> {
    openat(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
}

pub fn open_path_dir(path: &std::path::Path) -> Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    openat(
        libc::AT_FDCWD,
        path.as_os_str().as_bytes(),
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
    )
    .with_context(|| format!("cannot open the directory {}", path.display()))
}

pub fn lstatat(dir: RawFd, name: &[u8]) -> io::Result<libc::stat> {
    Ok(stat::fstatat(
        Some(dir),
        name,
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )?)
}

pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    Ok(stat::fstat(fd)?)
}

pub fn mkdirat(dir: RawFd, name: &[u8], mode: libc::mode_t) -> Result<()> {
    stat::mkdirat(Some(dir), name, Mode::from_bits_truncate(mode)).context("mkdirat")?;
    Ok(())
}

pub fn mknodat(dir: RawFd, name: &[u8], mode: libc::mode_t, dev: libc::dev_t) -> io::Result<()> {
    let kind = SFlag::from_bits_truncate(mode & libc::S_IFMT);
    let perm = Mode::from_bits_truncate(mode & !libc::S_IFMT);
    Ok(stat::mknodat(Some(dir), name, kind, perm, dev)?)
}

pub fn symlinkat(target: &[u8], dir: RawFd, name: &[u8]) -> Result<()> {
    unistd::symlinkat(target, Some(dir), name).context("symlinkat")?;
    Ok(())
}

pub fn readlinkat(dir: RawFd, name: &[u8]) -> io::Result<Vec<u8>> {
    Ok(nix::fcntl::readlinkat(Some(dir), name)?.into_vec())
}

pub fn fchownat_nofollow(dir: RawFd, name: &[u8], uid: u32, gid: u32) -> Result<()> {
    unistd::fchownat(
        Some(dir),
        name,
        Some(uid.into()),
        Some(gid.into()),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .context("fchownat")?;
    Ok(())
}

pub fn fchmodat(dir: RawFd, name: &[u8], mode: u32) -> Result<()> {
    stat::fchmodat(
        Some(dir),
        name,
        Mode::from_bits_truncate(mode),
        stat::FchmodatFlags::FollowSymlink,
    )
    .context("fchmodat")?;
    Ok(())
}

pub fn set_mtime_at(dir: RawFd, name: &[u8], secs: i64, nanos: u32) -> Result<()> {
    let t = TimeSpec::new(secs as _, nanos as _);
    stat::utimensat(
        Some(dir),
        name,
        &t,
        &t,
        stat::UtimensatFlags::NoFollowSymlink,
    )
    .context("utimensat")?;
    Ok(())
}

/// `/proc/self/fd/<dir>/<name>`: reaches `name` through a magic link without a long path;
/// with the `l*xattr` calls the last component is not followed.
fn proc_path(dir: RawFd, name: &[u8]) -> io::Result<CString> {
    let mut p = format!("/proc/self/fd/{dir}/").into_bytes();
    p.extend_from_slice(name);
    CString::new(p).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn split_names(buf: &[u8]) -> Vec<Vec<u8>> {
    buf.split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| n.to_vec())
        .collect()
}

/// Every xattr (name, value) of `name` in `dir`, not following a symbolic link, sorted.
pub fn xattrs_at(dir: RawFd, name: &[u8]) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let p = proc_path(dir, name)?;
    let mut buf = vec![0u8; 65536];
    // SAFETY: buffer valid for its length.
    let n = match check_size(unsafe {
        libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
    }) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => 0,
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for xname in split_names(&buf[..n]) {
        let cx =
            CString::new(xname.clone()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let mut val = vec![0u8; 65536];
        // SAFETY: buffers valid.
        let m = check_size(unsafe {
            libc::lgetxattr(p.as_ptr(), cx.as_ptr(), val.as_mut_ptr().cast(), val.len())
        })?;
        val.truncate(m);
        out.push((xname, val));
    }
    out.sort();
    Ok(out)
}

pub fn set_xattr_at(dir: RawFd, name: &[u8], xname: &str, value: &[u8]) -> io::Result<()> {
    let p = proc_path(dir, name)?;
    let cx = CString::new(xname).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid C strings and slice.
    check(unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            cx.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

pub const FS_IMMUTABLE_FL: libc::c_int = 0x10;
pub const FS_APPEND_FL: libc::c_int = 0x20;
const FS_IOC_GETFLAGS: libc::c_ulong = 0x8008_6601;
const FS_IOC_SETFLAGS: libc::c_ulong = 0x4008_6602;

pub fn get_flags(fd: &OwnedFd) -> io::Result<libc::c_int> {
    let mut f: libc::c_int = 0;
    // SAFETY: the ioctl writes one int.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), FS_IOC_GETFLAGS as _, &mut f) })?;
    Ok(f)
}

pub fn set_flags(fd: &OwnedFd, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: the ioctl reads one int.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), FS_IOC_SETFLAGS as _, &flags) })
}

/// Names in a directory (without `.` and `..`), sorted bytewise.
pub fn list_dir(fd: &OwnedFd) -> Result<Vec<Vec<u8>>> {
    // A fresh open file description, so reading it moves no one else's offset.
    let own = openat(fd.as_raw_fd(), b".", libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .context("reopen a directory")?;
    let mut dir =
        nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(own)).context("fdopendir")?;
    let mut names = Vec::new();
    for e in dir.iter() {
        let e = e.context("readdir")?;
        let n: &CStr = e.file_name();
        let b = n.to_bytes();
        if b != b"." && b != b".." {
            names.push(b.to_vec());
        }
    }
    names.sort();
    Ok(names)
}

pub fn is_root() -> bool {
    unistd::geteuid().is_root()
}

pub fn ensure(cond: bool, msg: &str) -> Result<()> {
    if !cond {
        bail!("{msg}");
    }
    Ok(())
}
