//! Sparse maps as members carry them: pax 1.0 (a decimal map at the start of the data), pax
//! 0.0/0.1 (records, collected in [`super::pax_attrs`]) and old GNU 'S' headers, all checked
//! by the one validator [`sparse::validate`].

use std::io::Read;

use super::super::header::{self, BLOCK};
use super::super::sparse::{self, MAX_SPARSE_SEGMENTS};
use super::super::ArchiveError;
use super::corrupt;
use super::input::BlockInput;

/// Reads the sparse 1.0 map at the start of the data; returns it and the bytes it used.
pub(super) fn read_sparse_v1<R: Read>(
    input: &mut BlockInput<R>,
    path: &[u8],
    size: u64,
    in_lifeboat: bool,
) -> Result<(Vec<(u64, u64)>, u64), ArchiveError> {
    let mut used = 0u64;
    let mut block = [0u8; BLOCK];
    let mut pos = BLOCK; // position in `block`; BLOCK = need a new one
    let mut next_number =
        |input: &mut BlockInput<R>, used: &mut u64| -> Result<u64, ArchiveError> {
            let mut v: u64 = 0;
            let mut digits = 0;
            loop {
                if pos == BLOCK {
                    if *used + BLOCK as u64 > size {
                        return Err(corrupt(path, "sparse map runs past the file data"));
                    }
                    input.read_exact(&mut block, "a sparse map")?;
                    *used += BLOCK as u64;
                    pos = 0;
                }
                let c = block[pos];
                pos += 1;
                match c {
                    b'0'..=b'9' if digits < 19 => {
                        v = v * 10 + (c - b'0') as u64;
                        digits += 1;
                    }
                    b'\n' if digits > 0 => return Ok(v),
                    _ => return Err(corrupt(path, "malformed sparse map")),
                }
            }
        };
    let count = next_number(input, &mut used)?;
    if count > MAX_SPARSE_SEGMENTS as u64 {
        return Err(corrupt(
            path,
            format!("sparse map of {count} segments is too large"),
        ));
    }
    let mut map = Vec::with_capacity((count as usize).min(1024));
    for _ in 0..count {
        let o = next_number(input, &mut used)?;
        let l = next_number(input, &mut used)?;
        map.push((o, l));
    }
    if in_lifeboat && block[pos.min(BLOCK)..].iter().any(|&b| b != 0) {
        return Err(corrupt(path, "non-zero bytes after the sparse map"));
    }
    Ok((map, used))
}

/// Reads the old GNU sparse map: four slots in the header, then extension blocks.
pub(super) fn read_old_gnu_sparse<R: Read>(
    input: &mut BlockInput<R>,
    path: &[u8],
    block: &[u8; BLOCK],
) -> Result<Vec<(u64, u64)>, ArchiveError> {
    let mut map = Vec::new();
    let parse_slots =
        |map: &mut Vec<(u64, u64)>, area: &[u8], n: usize| -> Result<(), ArchiveError> {
            for i in 0..n {
                let slot = &area[i * 24..i * 24 + 24];
                if slot[0] == 0 {
                    break;
                }
                let o = header::parse_u64(&slot[..12])
                    .map_err(|e| corrupt(path, format!("bad sparse map: {e}")))?;
                let l = header::parse_u64(&slot[12..])
                    .map_err(|e| corrupt(path, format!("bad sparse map: {e}")))?;
                if map.len() >= MAX_SPARSE_SEGMENTS {
                    return Err(corrupt(path, "too many sparse segments"));
                }
                map.push((o, l));
            }
            Ok(())
        };
    parse_slots(
        &mut map,
        &block[header::GNU_SPARSE..header::GNU_SPARSE + 96],
        4,
    )?;
    let mut extended = block[header::GNU_ISEXTENDED] != 0;
    while extended {
        let mut ext = [0u8; BLOCK];
        input.read_exact(&mut ext, "a sparse header")?;
        parse_slots(&mut map, &ext[..504], 21)?;
        extended = ext[504] != 0;
    }
    Ok(map)
}

/// Validates a sparse map (see [`sparse::validate`]) and that it describes the stored bytes.
pub(super) fn check_sparse(
    path: &[u8],
    map: &[(u64, u64)],
    realsize: u64,
    stored: u64,
) -> Result<Vec<(u64, u64)>, ArchiveError> {
    let map = sparse::validate(map, realsize).map_err(|e| corrupt(path, e))?;
    let total = sparse::data_len(&map);
    if total != stored {
        return Err(corrupt(
            path,
            format!("sparse map describes {total} bytes but {stored} are stored"),
        ));
    }
    Ok(map)
}
