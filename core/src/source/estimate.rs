//! How much a backup will read: the figure the space check and the progress bar start from.
//!
//! When the root is the top of its filesystem, the filesystem's used bytes (statvfs) are the
//! figure, plus those of each included mount (`boot/efi`): fast, and what a tar of it holds
//! at most. When the root is a directory inside a filesystem (`--root /srv/data`), the
//! filesystem's figure says nothing about it: the tree under the root is walked instead (the
//! walker's rules: one filesystem plus the included mounts, excludes applied, hard links
//! once), adding up allocated bytes and a header block per entry.

use super::exclude::Excludes;
use super::SourceOptions;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bytes a tar header takes per entry.
const HEADER: u64 = 512;

/// Estimated bytes of data under `opts.root` that a backup with `opts` reads (see the module
/// documentation). None when the root cannot be read.
pub fn source_bytes(opts: &SourceOptions) -> Option<u64> {
    let root_meta = std::fs::metadata(&opts.root).ok()?;
    let includes = opts.include_paths();
    if is_mount_top(&opts.root, &root_meta) {
        let mut total = used_bytes(&opts.root)?;
        for inc in &includes {
            let p = opts.root.join(OsStr::from_bytes(inc));
            if let Ok(m) = std::fs::metadata(&p) {
                if m.dev() != root_meta.dev() && is_mount_top(&p, &m) {
                    total = total.saturating_add(used_bytes(&p).unwrap_or(0));
                }
            }
        }
        return Some(total);
    }
    let excludes = Excludes::new(&opts.excludes);
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut stack: Vec<(std::path::PathBuf, Vec<u8>, u64)> =
        vec![(opts.root.clone(), Vec::new(), root_meta.dev())];
    total += HEADER;
    while let Some((dir, rel, dev)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for ent in rd.flatten() {
            let name = ent.file_name();
            let mut r = rel.clone();
            if !r.is_empty() {
                r.push(b'/');
            }
            r.extend_from_slice(name.as_bytes());
            if excludes.is_excluded(&r) {
                continue;
            }
            let Ok(m) = ent.metadata() else { continue };
            if m.nlink() > 1 && !m.is_dir() && !seen.insert((m.dev(), m.ino())) {
                total = total.saturating_add(HEADER);
                continue;
            }
            total = total.saturating_add(HEADER + m.blocks().saturating_mul(512));
            if m.is_dir() && (m.dev() == dev || includes.contains(&r)) {
                stack.push((ent.path(), r, m.dev()));
            }
        }
    }
    Some(total)
}

/// True when `path` is the top directory of its filesystem.
fn is_mount_top(path: &Path, meta: &std::fs::Metadata) -> bool {
    match std::fs::metadata(path.join("..")) {
        Ok(parent) => parent.dev() != meta.dev() || parent.ino() == meta.ino(),
        Err(_) => false,
    }
}

/// Used bytes of the filesystem holding `path`.
fn used_bytes(path: &Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    let used = (s.blocks() as u64).saturating_sub(s.blocks_free() as u64);
    Some(used.saturating_mul(s.fragment_size() as u64))
}
