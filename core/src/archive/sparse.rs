//! Sparse maps as stored in the archive.
//!
//! GNU tar reads the data of each sparse segment in whole 512-byte blocks: every segment
//! except the last must be a multiple of 512 bytes long or GNU tar loses its place in the
//! archive. The writer therefore stores an *aligned* map: each segment but the last is
//! extended into the hole after it up to a multiple of 512 (the extension is stored as zeros,
//! which is what the hole reads as), merging with the next segment when they meet. The
//! reader returns the map as stored. Maps from SEEK_DATA/SEEK_HOLE are already aligned.

/// One step of producing the stored data: bytes from the caller's segment data, or zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    Data(u64),
    Zeros(u64),
}

/// A list of `(offset, length)` data segments.
pub type SparseMap = Vec<(u64, u64)>;

/// Most data segments accepted in one sparse map (by the reader, and so by verify and restore).
pub const MAX_SPARSE_SEGMENTS: usize = 1 << 20;

/// The one sparse-map check: segments sorted, non-overlapping, inside `size`, at most
/// [`MAX_SPARSE_SEGMENTS`]. Returns the map without its empty segments (GNU tar ends a file
/// that ends in a hole with a `(size, 0)` segment).
pub fn validate(map: &[(u64, u64)], size: u64) -> Result<SparseMap, String> {
    let mut out = Vec::with_capacity(map.len().min(MAX_SPARSE_SEGMENTS));
    let mut prev_end = 0u64;
    for &(o, l) in map {
        let end = o.checked_add(l).ok_or("sparse map segment overflows")?;
        if end > size {
            return Err("sparse map segment beyond the end of the file".into());
        }
        if l == 0 {
            continue;
        }
        if o < prev_end {
            return Err("sparse map segments overlap or are out of order".into());
        }
        if out.len() >= MAX_SPARSE_SEGMENTS {
            return Err(format!(
                "sparse map of more than {MAX_SPARSE_SEGMENTS} segments"
            ));
        }
        prev_end = end;
        out.push((o, l));
    }
    Ok(out)
}

/// Bytes of data a map describes.
pub fn data_len(map: &[(u64, u64)]) -> u64 {
    map.iter().map(|&(_, l)| l).sum()
}

/// Validates `map` (see [`validate`]) and returns the aligned map with the steps that build its
/// stored data from the caller's data.
pub fn align(map: &[(u64, u64)], size: u64) -> Result<(SparseMap, Vec<Fill>), String> {
    let segs = validate(map, size)?;
    let mut out = Vec::with_capacity(segs.len());
    let mut plan = Vec::with_capacity(segs.len() * 2);
    let mut i = 0;
    while i < segs.len() {
        let (start, len) = segs[i];
        let mut end = start + len;
        plan.push(Fill::Data(len));
        while i + 1 < segs.len() {
            let aligned = start + (end - start).div_ceil(512) * 512;
            let (next_start, next_len) = segs[i + 1];
            if aligned >= next_start {
                plan.push(Fill::Zeros(next_start - end));
                plan.push(Fill::Data(next_len));
                end = next_start + next_len;
                i += 1;
            } else {
                if aligned > end {
                    plan.push(Fill::Zeros(aligned - end));
                }
                end = aligned;
                break;
            }
        }
        out.push((start, end - start));
        i += 1;
    }
    Ok((out, plan))
}

/// The map the archive will store (and the reader return) for `map`; see [`align`].
pub fn aligned_map(map: &[(u64, u64)], size: u64) -> Result<Vec<(u64, u64)>, String> {
    align(map, size).map(|(m, _)| m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_and_merges() -> Result<(), String> {
        let (m, p) = align(&[(0, 10), (19_990, 10)], 20_000)?;
        assert_eq!(m, vec![(0, 512), (19_990, 10)]);
        assert_eq!(p, vec![Fill::Data(10), Fill::Zeros(502), Fill::Data(10)]);
        let (m, p) = align(&[(0, 10), (100, 10), (4096, 4096)], 10_000)?;
        assert_eq!(m, vec![(0, 512), (4096, 4096)]);
        assert_eq!(
            p,
            vec![
                Fill::Data(10),
                Fill::Zeros(90),
                Fill::Data(10),
                Fill::Zeros(402),
                Fill::Data(4096)
            ]
        );
        assert_eq!(
            aligned_map(&[(4096, 4096), (1 << 20, 8192)], 2 << 20)?,
            vec![(4096, 4096), (1 << 20, 8192)]
        );
        assert!(align(&[(10, 10), (5, 1)], 100).is_err());
        assert!(align(&[(90, 20)], 100).is_err());
        Ok(())
    }
}
