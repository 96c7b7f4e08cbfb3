//! The trailer's `entries_digest`: one BLAKE3 stream over a canonical record of every entry's
//! header fields, in archive order, so that a missing, added, reordered or altered entry (path,
//! type, mode, owner, time, size, sparse map, link target, device, xattrs, flags, checksum)
//! changes it.
//!
//! Canonical record of one entry (integers little-endian, `bytes` = u64 length + bytes):
//! `"E"`, path bytes, kind u8 (0 file, 1 dir, 2 symlink, 3 hardlink, 4 char, 5 block, 6 fifo),
//! kind data (file: u8 sparse?, then u64 count and (u64 offset, u64 length) per non-empty
//! segment; links: target bytes; devices: u32 major, u32 minor), u32 mode & 0o7777, u64 uid,
//! u64 gid, i64 mtime secs, u32 nanos, u64 size (0 unless a file), u64 xattr count and per
//! xattr name bytes + value bytes, u8 flags (1 immutable | 2 append-only), u8 has-checksum and
//! the 32 checksum bytes (files only). Paths and hardlink targets are normalised (leading
//! `/` and `./` removed, trailing `/` removed, empty = `.`) the way the reader returns them
//! (the reader refuses absolute names before they reach the digest).

use super::entry::{Entry, EntryKind};
use super::manifest::Counts;

/// The normalised relative form of an archive path (see the module doc).
pub fn normalize(mut p: &[u8]) -> &[u8] {
    loop {
        if let Some(rest) = p.strip_prefix(b"./") {
            p = rest;
        } else if let Some(rest) = p.strip_prefix(b"/") {
            p = rest;
        } else {
            break;
        }
    }
    while p.len() > 1 && p.ends_with(b"/") {
        p = &p[..p.len() - 1];
    }
    if p.is_empty() || p == b"/" {
        b"."
    } else {
        p
    }
}

/// Accumulates the entries digest.
pub struct EntriesDigest {
    hasher: blake3::Hasher,
    scratch: Vec<u8>,
}

impl Default for EntriesDigest {
    fn default() -> Self {
        Self::new()
    }
}

impl EntriesDigest {
    pub fn new() -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"lifeboat entries digest v1\n");
        Self {
            hasher,
            scratch: Vec::with_capacity(4096),
        }
    }

    pub fn add(&mut self, e: &Entry) {
        let s = &mut self.scratch;
        s.clear();
        s.push(b'E');
        bytes(s, normalize(&e.path));
        let mut is_file = false;
        match &e.kind {
            EntryKind::File { sparse } => {
                is_file = true;
                s.push(0);
                match sparse {
                    None => s.push(0),
                    Some(map) => {
                        s.push(1);
                        let n = map.iter().filter(|(_, l)| *l > 0).count();
                        s.extend_from_slice(&(n as u64).to_le_bytes());
                        for (o, l) in map.iter().filter(|(_, l)| *l > 0) {
                            s.extend_from_slice(&o.to_le_bytes());
                            s.extend_from_slice(&l.to_le_bytes());
                        }
                    }
                }
            }
            EntryKind::Dir => s.push(1),
            EntryKind::Symlink { target } => {
                s.push(2);
                bytes(s, target);
            }
            EntryKind::HardLink { target } => {
                s.push(3);
                bytes(s, normalize(target));
            }
            EntryKind::CharDevice { major, minor } => {
                s.push(4);
                s.extend_from_slice(&major.to_le_bytes());
                s.extend_from_slice(&minor.to_le_bytes());
            }
            EntryKind::BlockDevice { major, minor } => {
                s.push(5);
                s.extend_from_slice(&major.to_le_bytes());
                s.extend_from_slice(&minor.to_le_bytes());
            }
            EntryKind::Fifo => s.push(6),
        }
        s.extend_from_slice(&(e.mode & 0o7777).to_le_bytes());
        s.extend_from_slice(&e.uid.to_le_bytes());
        s.extend_from_slice(&e.gid.to_le_bytes());
        s.extend_from_slice(&e.mtime.secs.to_le_bytes());
        s.extend_from_slice(&e.mtime.nanos.to_le_bytes());
        let size = if is_file { e.size } else { 0 };
        s.extend_from_slice(&size.to_le_bytes());
        s.extend_from_slice(&(e.xattrs.len() as u64).to_le_bytes());
        for (k, v) in &e.xattrs {
            bytes(s, k);
            bytes(s, v);
        }
        s.push(e.flags.immutable as u8 | (e.flags.append_only as u8) << 1);
        match (is_file, &e.checksum) {
            (true, Some(sum)) => {
                s.push(1);
                s.extend_from_slice(sum);
            }
            _ => s.push(0),
        }
        self.hasher.update(s);
    }

    /// Lower-case hex of the digest so far.
    pub fn hex(&self) -> String {
        self.hasher.finalize().to_hex().to_string()
    }
}

fn bytes(s: &mut Vec<u8>, b: &[u8]) {
    s.extend_from_slice(&(b.len() as u64).to_le_bytes());
    s.extend_from_slice(b);
}

/// Adds one entry to the counts the trailer carries.
pub fn count(c: &mut Counts, e: &Entry) {
    c.entries += 1;
    match e.kind {
        EntryKind::File { .. } => {
            c.files += 1;
            c.bytes = c.bytes.saturating_add(e.size);
        }
        EntryKind::Dir => c.dirs += 1,
        EntryKind::Symlink { .. } => c.symlinks += 1,
        EntryKind::HardLink { .. } => c.hardlinks += 1,
        EntryKind::CharDevice { .. } | EntryKind::BlockDevice { .. } => c.devices += 1,
        EntryKind::Fifo => c.fifos += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_paths() {
        assert_eq!(normalize(b"./"), b".");
        assert_eq!(normalize(b"."), b".");
        assert_eq!(normalize(b"././etc/"), b"etc");
        assert_eq!(normalize(b"/etc/passwd"), b"etc/passwd");
        assert_eq!(normalize(b"../x"), b"../x");
    }
}
