//! The ext2/3/4 inode flags immutable and append-only, read with the FS_IOC_GETFLAGS ioctl
//! (what `lsattr` does). Filesystems without inode flags answer ENOTTY/EOPNOTSUPP: no flags.

use crate::archive::FileFlags;
use crate::sys;
use std::io;
use std::os::fd::BorrowedFd;

pub fn read(fd: BorrowedFd<'_>) -> io::Result<FileFlags> {
    match sys::get_flags(fd) {
        Ok(v) => Ok(FileFlags {
            immutable: v & sys::FS_IMMUTABLE_FL != 0,
            append_only: v & sys::FS_APPEND_FL != 0,
        }),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOTTY | libc::EOPNOTSUPP | libc::EINVAL | libc::ENOSYS)
            ) =>
        {
            Ok(FileFlags::default())
        }
        Err(e) => Err(e),
    }
}
