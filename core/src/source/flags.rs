//! The ext2/3/4 inode flags immutable and append-only, read with the FS_IOC_GETFLAGS ioctl
//! (what `lsattr` does). Filesystems without inode flags answer ENOTTY/EOPNOTSUPP: no flags.

use crate::archive::FileFlags;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

const FS_IMMUTABLE_FL: libc::c_int = 0x0000_0010;
const FS_APPEND_FL: libc::c_int = 0x0000_0020;

// FS_IOC_GETFLAGS is _IOR('f', 1, long) although the kernel reads and writes an int.
nix::ioctl_read!(fs_ioc_getflags, b'f', 1, libc::c_long);

pub fn read(fd: BorrowedFd<'_>) -> io::Result<FileFlags> {
    let mut raw: libc::c_long = 0;
    // SAFETY: `raw` is a valid, writable c_long; the kernel writes at most an int into it.
    match unsafe { fs_ioc_getflags(fd.as_raw_fd(), &mut raw) } {
        Ok(_) => {
            let v = raw as libc::c_int;
            Ok(FileFlags {
                immutable: v & FS_IMMUTABLE_FL != 0,
                append_only: v & FS_APPEND_FL != 0,
            })
        }
        Err(nix::errno::Errno::ENOTTY)
        | Err(nix::errno::Errno::EOPNOTSUPP)
        | Err(nix::errno::Errno::EINVAL)
        | Err(nix::errno::Errno::ENOSYS) => Ok(FileFlags::default()),
        Err(e) => Err(io::Error::from(e)),
    }
}
