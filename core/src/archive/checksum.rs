//! The per-file checksum carried in a regular file's `comment` record (`b3=`), and the size
//! limits that keep checking it bounded.
//!
//! - A file without holes: BLAKE3 of its content.
//! - A sparse file, format 1.1 (manifest `format_minor` 1, what this writer produces): BLAKE3
//!   of `"lifeboat sparse v1\n"`, the logical size (u64 little-endian), the number of data
//!   segments (u64 LE), each segment's offset and length (u64 LE each) as the archive stores
//!   the map (aligned, see [`super::sparse`]), then the stored data bytes. The holes are not
//!   hashed: checking costs time proportional to the data, whatever size the header claims.
//! - A sparse file, format 1.0 (archives written before; manifest without `format_minor`):
//!   BLAKE3 of the logical content with the holes read as zeros. The reader still accepts it,
//!   hashing at most [`LEGACY_HOLE_BUDGET`] bytes of holes per archive.

use super::sparse::{self, SparseMap};

/// Largest logical file size accepted (by the reader, so by verify, and by restore): the
/// largest file ext4 holds with 4 KiB blocks (2^32 blocks less one: 16 TiB less 4 KiB).
pub const MAX_LOGICAL_SIZE: u64 = (1 << 44) - 4096;

/// Bytes of holes the reader hashes as zeros, per archive, to check the sparse files of a
/// format 1.0 archive (about 8 s of hashing). A 1.0 archive needing more is refused: make a new
/// backup, whose checksums do not cover holes.
pub const LEGACY_HOLE_BUDGET: u64 = 16 << 30;

const SPARSE_DOMAIN: &[u8] = b"lifeboat sparse v1\n";

static ZEROS: [u8; 64 * 1024] = [0u8; 64 * 1024];

/// Hashes `n` zero bytes (the one helper for it).
pub fn hash_zeros(h: &mut blake3::Hasher, mut n: u64) {
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        h.update(&ZEROS[..k]);
        n -= k as u64;
    }
}

/// Computes a file's checksum (format 1.1) from its logical content, given in order as data
/// ([`Self::data`]) and holes ([`Self::hole`]): what a backup source feeds before handing the
/// entry to the writer.
pub struct ContentHasher {
    h: blake3::Hasher,
    /// For a sparse file: the stored (aligned) map, the next segment that may still overlap
    /// what comes, and the logical position.
    sparse: Option<(SparseMap, usize, u64)>,
}

impl ContentHasher {
    /// `sparse`: the data segments as they will be given to the writer (aligned here the
    /// way the writer stores them). An invalid map is an error (the writer refuses it too).
    pub fn new(size: u64, sparse: Option<&[(u64, u64)]>) -> Result<Self, String> {
        match sparse {
            None => Ok(Self::new_plain()),
            Some(map) => Ok(Self::for_stored_map(size, sparse::aligned_map(map, size)?)),
        }
    }

    /// A file without holes: BLAKE3 of its content.
    pub fn new_plain() -> Self {
        Self {
            h: blake3::Hasher::new(),
            sparse: None,
        }
    }

    /// For a map exactly as stored in the archive (the reader's side): feed the stored data
    /// with [`Self::data`].
    pub fn for_stored_map(size: u64, map: SparseMap) -> Self {
        let mut h = blake3::Hasher::new();
        h.update(SPARSE_DOMAIN);
        h.update(&size.to_le_bytes());
        h.update(&(map.len() as u64).to_le_bytes());
        for &(o, l) in &map {
            h.update(&o.to_le_bytes());
            h.update(&l.to_le_bytes());
        }
        Self {
            h,
            sparse: Some((map, 0, 0)),
        }
    }

    /// The next bytes of data.
    pub fn data(&mut self, bytes: &[u8]) {
        self.h.update(bytes);
        if let Some((_, _, at)) = self.sparse.as_mut() {
            *at += bytes.len() as u64;
        }
    }

    /// The next `n` bytes are a hole. Of a sparse file only the part the stored map covers
    /// (alignment of a segment, stored as zeros) is hashed; of a plain file, all of it.
    pub fn hole(&mut self, n: u64) {
        let Some((map, next, at)) = self.sparse.as_mut() else {
            hash_zeros(&mut self.h, n);
            return;
        };
        let end = at.saturating_add(n);
        while let Some(&(o, l)) = map.get(*next) {
            let seg_end = o + l;
            if seg_end <= *at {
                *next += 1;
                continue;
            }
            if o >= end {
                break;
            }
            let from = o.max(*at);
            let to = seg_end.min(end);
            hash_zeros(&mut self.h, to - from);
            if seg_end > end {
                break;
            }
            *next += 1;
        }
        *at = end;
    }

    pub fn finalize(&self) -> [u8; 32] {
        *self.h.finalize().as_bytes()
    }
}

/// The checksum of a file whose logical content is `content` (holes included as zeros) and
/// whose data segments are `sparse` (tests and small callers).
pub fn of_content(content: &[u8], sparse: Option<&[(u64, u64)]>) -> Result<[u8; 32], String> {
    let size = content.len() as u64;
    let mut h = ContentHasher::new(size, sparse)?;
    match sparse {
        None => h.data(content),
        Some(map) => {
            let mut pos = 0u64;
            for (o, l) in sparse::validate(map, size)? {
                h.hole(o - pos);
                h.data(&content[o as usize..(o + l) as usize]);
                pos = o + l;
            }
            h.hole(size - pos);
        }
    }
    Ok(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_and_stored_views_agree() -> Result<(), String> {
        // Unaligned segments: the writer stores (0, 110) with 90 zeros inside.
        let map = [(0u64, 10u64), (100, 10)];
        let mut content = vec![0u8; 1000];
        content[..10].fill(1);
        content[100..110].fill(2);
        let from_source = of_content(&content, Some(&map))?;
        let mut stored = ContentHasher::for_stored_map(1000, vec![(0, 110)]);
        stored.data(&content[..110]);
        assert_eq!(from_source, stored.finalize());
        // The logical size and the map are covered.
        let mut other = ContentHasher::for_stored_map(1001, vec![(0, 110)]);
        other.data(&content[..110]);
        assert_ne!(from_source, other.finalize());
        // A plain file: BLAKE3 of the content.
        assert_eq!(of_content(b"abc", None)?, *blake3::hash(b"abc").as_bytes());
        Ok(())
    }

    #[test]
    fn a_huge_hole_costs_nothing() -> Result<(), String> {
        let mut h = ContentHasher::new(1 << 62, Some(&[(0, 4096)]))?;
        h.data(&[7u8; 4096]);
        h.hole((1 << 62) - 4096);
        h.finalize();
        Ok(())
    }
}
