//! Content checking: the stored bytes of the entry being read, hashed as they pass and
//! compared with the checksum of its header (see [`super::super::checksum`]).

use super::super::checksum::{hash_zeros, ContentHasher, LEGACY_HOLE_BUDGET};
use super::super::entry::{Entry, EntryKind};
use super::super::ArchiveError;

/// The content of the current entry: how much is left, and its check.
pub(super) struct Content {
    /// Stored bytes not yet consumed.
    pub left: u64,
    /// Padding after the stored bytes.
    pub pad: u64,
    pub path: Vec<u8>,
    check: Option<Check>,
    /// None: not compared yet; Some(ok).
    verdict: Option<bool>,
}

struct Check {
    expected: [u8; 32],
    hasher: Hasher,
}

enum Hasher {
    /// Plain files, and sparse files of format 1.1 (map and data).
    Stored(ContentHasher),
    /// Sparse files of format 1.0: the logical content, holes as zeros.
    Logical {
        h: blake3::Hasher,
        map: Vec<(u64, u64)>,
        next: usize,
        in_seg: u64,
        logical: u64,
        size: u64,
    },
}

/// Which meaning a sparse file's checksum has in this archive.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum SparseSums {
    /// Format 1.1: map and data.
    MapAndData,
    /// Format 1.0: logical content; the holes hashed so far in this archive.
    Logical { holes_hashed: u64 },
}

impl Content {
    /// The content of `entry`, checked against `expected` when given. For a format 1.0 sparse
    /// file the holes to hash are counted against the archive's budget first.
    pub fn new(
        entry: &Entry,
        stored: u64,
        pad: u64,
        expected: Option<[u8; 32]>,
        sums: &mut SparseSums,
    ) -> Result<Self, ArchiveError> {
        let check = match expected {
            None => None,
            Some(expected) => {
                let hasher = match (&entry.kind, &mut *sums) {
                    (EntryKind::File { sparse: Some(map) }, SparseSums::MapAndData) => {
                        Hasher::Stored(ContentHasher::for_stored_map(entry.size, map.clone()))
                    }
                    (
                        EntryKind::File { sparse: Some(map) },
                        SparseSums::Logical { holes_hashed },
                    ) => {
                        let holes = entry.size - super::super::sparse::data_len(map);
                        *holes_hashed = holes_hashed.saturating_add(holes);
                        if *holes_hashed > LEGACY_HOLE_BUDGET {
                            return Err(ArchiveError::Unsupported(format!(
                                "'{}' is a sparse file of an archive in format 1.0, whose checksums cover the holes: checking it would hash more than {LEGACY_HOLE_BUDGET} bytes of holes in this archive, which is refused to keep verify and restore bounded. Make a new backup with this Lifeboat (format 1.1 checksums do not cover holes)",
                                entry.display_path()
                            )));
                        }
                        Hasher::Logical {
                            h: blake3::Hasher::new(),
                            map: map.clone(),
                            next: 0,
                            in_seg: 0,
                            logical: 0,
                            size: entry.size,
                        }
                    }
                    _ => Hasher::Stored(ContentHasher::new_plain()),
                };
                Some(Check { expected, hasher })
            }
        };
        Ok(Self {
            left: stored,
            pad,
            // Only needed to name the file in a checksum error.
            path: if check.is_some() {
                entry.path.clone()
            } else {
                Vec::new()
            },
            check,
            verdict: None,
        })
    }

    pub fn is_checked(&self) -> bool {
        self.check.is_some()
    }

    /// Accounts for the next `data` of the stored content.
    pub fn consume(&mut self, mut data: &[u8]) {
        self.left -= data.len() as u64;
        let Some(check) = self.check.as_mut() else {
            return;
        };
        match &mut check.hasher {
            Hasher::Stored(h) => h.data(data),
            Hasher::Logical {
                h,
                map,
                next,
                in_seg,
                logical,
                ..
            } => {
                while !data.is_empty() {
                    if *in_seg == 0 {
                        let Some(&(o, l)) = map.get(*next) else {
                            break;
                        };
                        *next += 1;
                        hash_zeros(h, o - *logical);
                        *logical = o;
                        *in_seg = l;
                        continue;
                    }
                    let k = (*in_seg).min(data.len() as u64) as usize;
                    h.update(&data[..k]);
                    *in_seg -= k as u64;
                    *logical += k as u64;
                    data = &data[k..];
                }
            }
        }
    }

    /// At the end of the stored content: compares the checksum (once; later calls repeat
    /// the verdict).
    pub fn verdict(&mut self) -> Result<(), ArchiveError> {
        let ok = match (self.verdict, self.check.as_mut()) {
            (Some(ok), _) => ok,
            (None, None) => true,
            (None, Some(check)) => {
                let sum = match &mut check.hasher {
                    Hasher::Stored(h) => h.finalize(),
                    Hasher::Logical {
                        h, logical, size, ..
                    } => {
                        hash_zeros(h, size.saturating_sub(*logical));
                        *logical = *size;
                        *h.finalize().as_bytes()
                    }
                };
                sum == check.expected
            }
        };
        self.verdict = Some(ok);
        if ok {
            Ok(())
        } else {
            Err(ArchiveError::ChecksumMismatch {
                path: String::from_utf8_lossy(&self.path).into_owned(),
            })
        }
    }
}
