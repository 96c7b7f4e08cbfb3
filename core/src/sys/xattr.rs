//! Extended attributes of one object, read through an open descriptor (files, directories)
//! or, for objects that cannot be opened (symlinks, devices, fifos), through the l*xattr calls
//! on `/proc/self/fd/<dirfd>/<name>` so that no full path is ever built.
//!
//! nix has no xattr calls, hence these thin libc wrappers: each `unsafe` block is one call
//! with NUL-terminated names and a buffer the wrapper owns.

use super::{check, cstring};
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Where to read the attributes from.
pub enum Target<'a> {
    Fd(BorrowedFd<'a>),
    /// Not followed if it is a symlink.
    Path(&'a CStr),
}

/// Every attribute, sorted by name. Filesystems without xattr support yield an empty list.
pub fn read_all(target: &Target<'_>) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let names = match list(target) {
        Ok(n) => n,
        Err(e) if unsupported(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
        match get(target, &cname) {
            Ok(v) => out.push((name.to_vec(), v)),
            // Removed between list and get.
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => {}
            Err(e) => return Err(e),
        }
    }
    out.sort();
    Ok(out)
}

fn unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::ENOSYS))
}

/// The first buffer [`fetch`] tries: most objects have no attributes or a short list, and a
/// call with a buffer that big answers at once, with no separate size query.
const FIRST_TRY: usize = 256;

/// Calls `f(buf_ptr, len)` once with a small buffer; only when that is too small (ERANGE) does
/// it ask the size (`f(null, 0)`) and fetch again, retried because the value can grow in
/// between. One system call for an object without attributes, not two.
fn fetch(mut f: impl FnMut(*mut libc::c_void, usize) -> isize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; FIRST_TRY];
    let n = f(buf.as_mut_ptr().cast(), buf.len());
    if n >= 0 {
        buf.truncate(n as usize);
        return Ok(buf);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::ERANGE) {
        return Err(e);
    }
    for _ in 0..8 {
        let size = f(std::ptr::null_mut(), 0);
        if size < 0 {
            return Err(io::Error::last_os_error());
        }
        buf.clear();
        buf.resize(size as usize + 1, 0);
        let n = f(buf.as_mut_ptr().cast(), buf.len());
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ERANGE) {
            return Err(e);
        }
    }
    Err(io::Error::from_raw_os_error(libc::ERANGE))
}

fn list(target: &Target<'_>) -> io::Result<Vec<u8>> {
    match target {
        // SAFETY: the buffer pointer and length come from `fetch`, which owns the buffer.
        Target::Fd(fd) => fetch(|p, n| unsafe { libc::flistxattr(fd.as_raw_fd(), p.cast(), n) }),
        // SAFETY: as above; the path is a valid NUL-terminated string.
        Target::Path(path) => fetch(|p, n| unsafe { libc::llistxattr(path.as_ptr(), p.cast(), n) }),
    }
}

fn get(target: &Target<'_>, name: &CStr) -> io::Result<Vec<u8>> {
    match target {
        // SAFETY: see `list`.
        Target::Fd(fd) => {
            fetch(|p, n| unsafe { libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), p, n) })
        }
        // SAFETY: see `list`.
        Target::Path(path) => {
            fetch(|p, n| unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), p, n) })
        }
    }
}

/// Sets a value through `call(value_ptr, len)` (one `f*`/`l*setxattr`, flags 0).
fn set_with(
    value: &[u8],
    call: impl FnOnce(*const libc::c_void, usize) -> libc::c_int,
) -> io::Result<()> {
    check(call(value.as_ptr().cast(), value.len())).map(|_| ())
}

/// Sets the attribute `name` of an open file.
pub fn fset(fd: BorrowedFd<'_>, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: name is a valid C string; pointer and length come from the `value` slice.
    set_with(value, |p, n| unsafe {
        libc::fsetxattr(fd.as_raw_fd(), name.as_ptr(), p, n, 0)
    })
}

/// Sets the attribute `xname` of `path` itself, a symbolic link not followed.
pub fn lset(path: &CStr, xname: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: as in `fset`; path is a valid C string.
    set_with(value, |p, n| unsafe {
        libc::lsetxattr(path.as_ptr(), xname.as_ptr(), p, n, 0)
    })
}

/// `/proc/self/fd/<dir>/<name>`: names `name` in the open directory `dir` for the l*xattr
/// calls (the magic link resolves to the directory; the last component, which may be a
/// symbolic link, is not followed). There is no `f*xattrat` on Linux 4.x.
pub fn proc_path(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<CString> {
    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    path.extend_from_slice(name);
    cstring(&path)
}

/// Sets an attribute on `name` in `dir` without following it ([`proc_path`]).
pub fn lset_at(dir: BorrowedFd<'_>, name: &[u8], xname: &CStr, value: &[u8]) -> io::Result<()> {
    lset(&proc_path(dir, name)?, xname, value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::fd::AsFd;

    /// A list and values longer than the first buffer go through the size query; short ones
    /// and an empty list do not need it. Both give the same answer.
    #[test]
    fn reads_short_and_long_attributes() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let fd = file.as_file().as_fd();
        assert_eq!(read_all(&Target::Fd(fd)).unwrap(), Vec::new());
        let long_value = vec![b'v'; 1000];
        let long_name = format!("user.{}", "n".repeat(200));
        fset(fd, &CString::new("user.a").unwrap(), b"short").unwrap();
        fset(fd, &CString::new(long_name.clone()).unwrap(), &long_value).unwrap();
        fset(fd, &CString::new("user.b").unwrap(), &long_value).unwrap();
        let got = read_all(&Target::Fd(fd)).unwrap();
        let mut want = vec![
            (b"user.a".to_vec(), b"short".to_vec()),
            (long_name.into_bytes(), long_value.clone()),
            (b"user.b".to_vec(), long_value),
        ];
        want.sort();
        assert_eq!(got, want);
        let path = CString::new(file.path().as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(read_all(&Target::Path(&path)).unwrap(), want);
    }
}
