//! Sparse files: the map of data segments found with SEEK_DATA/SEEK_HOLE.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// The data segments `(offset, length)` of a file of `size` bytes, or `None` when the file
/// has no holes (or the filesystem cannot tell). Only called when the block count suggests
/// holes, so ordinary files cost nothing.
pub fn data_map(fd: BorrowedFd<'_>, size: u64) -> io::Result<Option<Vec<(u64, u64)>>> {
    let raw = fd.as_raw_fd();
    let mut segments = Vec::new();
    let mut pos: u64 = 0;
    while pos < size {
        // SAFETY: lseek on a descriptor we borrow; no memory is involved.
        let data = unsafe { libc::lseek(raw, pos as libc::off_t, libc::SEEK_DATA) };
        if data < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                // No more data after pos: the rest is a hole.
                Some(libc::ENXIO) => break,
                Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => return Ok(None),
                _ => return Err(e),
            }
        }
        let data = data as u64;
        if data >= size {
            break;
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(raw, data as libc::off_t, libc::SEEK_HOLE) };
        if hole < 0 {
            return Err(io::Error::last_os_error());
        }
        let hole = (hole as u64).min(size);
        if hole > data {
            segments.push((data, hole - data));
        }
        pos = hole;
    }
    // SAFETY: as above (rewind for the readers that follow).
    unsafe { libc::lseek(raw, 0, libc::SEEK_SET) };
    let covered: u64 = segments.iter().map(|s| s.1).sum();
    if covered == size {
        return Ok(None);
    }
    Ok(Some(segments))
}

/// Total bytes of data in a map (what the archive stores for the file).
pub fn data_len(map: &[(u64, u64)]) -> u64 {
    map.iter().map(|s| s.1).sum()
}
