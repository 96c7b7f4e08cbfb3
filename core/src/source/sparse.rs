//! Sparse files: the map of data segments found with SEEK_DATA/SEEK_HOLE.

use crate::sys;
use std::io;
use std::os::fd::BorrowedFd;

/// The data segments `(offset, length)` of a file of `size` bytes, or `None` when the file
/// has no holes (or the filesystem cannot tell). Only called when the block count suggests
/// holes, so ordinary files cost nothing.
pub fn data_map(fd: BorrowedFd<'_>, size: u64) -> io::Result<Option<Vec<(u64, u64)>>> {
    let mut segments = Vec::new();
    let mut pos: u64 = 0;
    while pos < size {
        let data = match sys::seek_data(fd, pos) {
            Ok(d) => d,
            // No more data after pos: the rest is a hole.
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => break,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP)) => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        if data >= size {
            break;
        }
        let hole = sys::seek_hole(fd, data)?.min(size);
        if hole > data {
            segments.push((data, hole - data));
        }
        pos = hole;
    }
    // Rewind for the readers that follow.
    let _ = sys::rewind(fd);
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
