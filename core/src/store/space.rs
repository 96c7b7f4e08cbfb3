//! Free space on the store, and how much a new generation will need.

use super::StoreError;
use std::path::Path;

/// Space of a filesystem, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub total: u64,
    /// Usable by an unprivileged writer (f_bavail).
    pub available: u64,
    /// In use (total minus free).
    pub used: u64,
}

/// statvfs of the filesystem holding `dir`.
pub fn space_of(dir: &Path) -> Result<Space, StoreError> {
    space_of_raw(dir).map_err(|e| StoreError::io(dir, e))
}

/// statvfs of the filesystem holding `path` (or of its parent when it is gone).
pub(crate) fn space_of_raw(path: &Path) -> std::io::Result<Space> {
    let st = match nix::sys::statvfs::statvfs(path) {
        Ok(st) => st,
        Err(e) => match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => nix::sys::statvfs::statvfs(parent)?,
            _ => return Err(e.into()),
        },
    };
    let frsize = st.fragment_size() as u64;
    let blocks = st.blocks() as u64;
    Ok(Space {
        total: blocks * frsize,
        available: st.blocks_available() as u64 * frsize,
        used: blocks.saturating_sub(st.blocks_free() as u64) * frsize,
    })
}

/// True when `e` is, or was caused by, "no space left on device" anywhere in core (a
/// [`StoreError::NoSpace`], a backup or archive write that hit ENOSPC, a raw I/O error). For
/// an `anyhow::Error`: `e.chain().any(is_no_space)`.
pub fn is_no_space(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(s) = e.downcast_ref::<StoreError>() {
        return s.is_no_space()
            || matches!(s, StoreError::Io { source, .. } if io_no_space(source));
    }
    if let Some(s) = e.downcast_ref::<crate::source::SourceError>() {
        return s.is_no_space();
    }
    if let Some(crate::archive::ArchiveError::Io(io)) =
        e.downcast_ref::<crate::archive::ArchiveError>()
    {
        return io_no_space(io);
    }
    e.downcast_ref::<std::io::Error>().is_some_and(io_no_space)
}

/// ENOSPC, or an `io::Error` carrying one of the errors above (as a `Read` or `Write` in a
/// pipeline passes them on).
fn io_no_space(io: &std::io::Error) -> bool {
    io.raw_os_error() == Some(libc::ENOSPC)
        || io.get_ref().is_some_and(|inner| {
            let inner: &(dyn std::error::Error + 'static) = inner;
            is_no_space(inner)
        })
}

/// Estimated archive size of the next generation: the previous generation's size plus 10%
/// (but never more than the source's used bytes plus 5%, which bounds any tar of it), or,
/// for a first backup, the source's used bytes (halved for a compressed codec, since a dom0
/// compresses at least 2:1), plus a fixed margin for the metadata. `source_used` 0 means
/// unknown.
pub fn estimate(previous_size: Option<u64>, source_used: u64, compressed: bool) -> u64 {
    const MARGIN: u64 = 1 << 20;
    let bound = if source_used == 0 {
        u64::MAX
    } else {
        source_used + source_used / 20
    };
    let base = match previous_size {
        Some(s) => (s + s / 10).min(bound),
        None if compressed => source_used / 2,
        None => source_used,
    };
    base + MARGIN
}
