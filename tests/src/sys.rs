//! The few system calls the test tools need that std lacks: `*at` calls on dirfds (paths longer
//! than PATH_MAX can only be reached that way), xattrs, ext flags, device nodes.

use anyhow::{bail, Context, Result};
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

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
    let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: valid pointers.
    check(unsafe { libc::fstatat(dir, c.as_ptr(), st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) })?;
    // SAFETY: fstatat filled it.
    Ok(unsafe { st.assume_init() })
}

pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: valid pointer.
    check(unsafe { libc::fstat(fd, st.as_mut_ptr()) })?;
    // SAFETY: fstat filled it.
    Ok(unsafe { st.assume_init() })
}

pub fn mkdirat(dir: RawFd, name: &[u8], mode: libc::mode_t) -> Result<()> {
    let c = cstr(name)?;
    // SAFETY: valid C string.
    check(unsafe { libc::mkdirat(dir, c.as_ptr(), mode) }).context("mkdirat")?;
    Ok(())
}

pub fn mknodat(dir: RawFd, name: &[u8], mode: libc::mode_t, dev: libc::dev_t) -> io::Result<()> {
    let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid C string.
    check(unsafe { libc::mknodat(dir, c.as_ptr(), mode, dev) })
}

pub fn symlinkat(target: &[u8], dir: RawFd, name: &[u8]) -> Result<()> {
    let (t, c) = (cstr(target)?, cstr(name)?);
    // SAFETY: valid C strings.
    check(unsafe { libc::symlinkat(t.as_ptr(), dir, c.as_ptr()) }).context("symlinkat")?;
    Ok(())
}

pub fn readlinkat(dir: RawFd, name: &[u8]) -> io::Result<Vec<u8>> {
    let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut buf = vec![0u8; 8192];
    // SAFETY: buf is valid for its length.
    let n = check_size(unsafe {
        libc::readlinkat(dir, c.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
    })?;
    buf.truncate(n);
    Ok(buf)
}

pub fn fchownat_nofollow(dir: RawFd, name: &[u8], uid: u32, gid: u32) -> Result<()> {
    let c = cstr(name)?;
    // SAFETY: valid C string.
    check(unsafe { libc::fchownat(dir, c.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) })
        .context("fchownat")?;
    Ok(())
}

pub fn fchmodat(dir: RawFd, name: &[u8], mode: u32) -> Result<()> {
    let c = cstr(name)?;
    // SAFETY: valid C string.
    check(unsafe { libc::fchmodat(dir, c.as_ptr(), mode as libc::mode_t, 0) })
        .context("fchmodat")?;
    Ok(())
}

pub fn set_mtime_at(dir: RawFd, name: &[u8], secs: i64, nanos: u32) -> Result<()> {
    let c = cstr(name)?;
    let ts = [
        libc::timespec {
            tv_sec: secs as _,
            tv_nsec: nanos as _,
        },
        libc::timespec {
            tv_sec: secs as _,
            tv_nsec: nanos as _,
        },
    ];
    // SAFETY: valid C string and timespec array.
    check(unsafe { libc::utimensat(dir, c.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })
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
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn ensure(cond: bool, msg: &str) -> Result<()> {
    if !cond {
        bail!("{msg}");
    }
    Ok(())
}
