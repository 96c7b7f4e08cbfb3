//! The 512-byte ustar header block: field offsets, numeric fields (octal, or GNU base-256 when a
//! value does not fit) and the header checksum. Shared by the writer and the reader.

/// Size of a tar block.
pub const BLOCK: usize = 512;

pub const NAME: (usize, usize) = (0, 100);
pub const MODE: (usize, usize) = (100, 8);
pub const UID: (usize, usize) = (108, 8);
pub const GID: (usize, usize) = (116, 8);
pub const SIZE: (usize, usize) = (124, 12);
pub const MTIME: (usize, usize) = (136, 12);
pub const CHKSUM: (usize, usize) = (148, 8);
pub const TYPEFLAG: usize = 156;
pub const LINKNAME: (usize, usize) = (157, 100);
pub const MAGIC: (usize, usize) = (257, 8);
pub const DEVMAJOR: (usize, usize) = (329, 8);
pub const DEVMINOR: (usize, usize) = (337, 8);
pub const PREFIX: (usize, usize) = (345, 155);
/// Old GNU sparse header ('S'): four (offset, numbytes) pairs, the extension flag, real size.
pub const GNU_SPARSE: usize = 386;
pub const GNU_ISEXTENDED: usize = 482;
pub const GNU_REALSIZE: (usize, usize) = (483, 12);

/// POSIX ustar magic + version ("ustar\0" "00").
pub const USTAR_MAGIC: &[u8; 8] = b"ustar\x0000";
/// Old GNU magic ("ustar " " \0"): the prefix field holds other data.
pub const GNU_MAGIC: &[u8; 8] = b"ustar  \x00";

/// Number of bytes of padding after `n` bytes of data.
pub fn padding(n: u64) -> u64 {
    (BLOCK as u64 - n % BLOCK as u64) % BLOCK as u64
}

pub fn field(block: &[u8; BLOCK], f: (usize, usize)) -> &[u8] {
    &block[f.0..f.0 + f.1]
}

/// True when `v` fits the octal field of `len` bytes (len-1 digits and a NUL).
pub fn fits_octal(v: u64, len: usize) -> bool {
    let digits = (len - 1) as u32;
    digits >= 22 || v < 8u64.pow(digits)
}

/// Writes a non-negative number: octal when it fits, GNU base-256 otherwise (GNU tar and
/// bsdtar read both; the pax header carries the exact value too when it matters).
pub fn put_u64(block: &mut [u8; BLOCK], f: (usize, usize), v: u64) {
    let dst = &mut block[f.0..f.0 + f.1];
    if fits_octal(v, f.1) {
        put_octal(dst, v);
    } else {
        put_base256(dst, v.min(i64::MAX as u64) as i64);
    }
}

/// Writes a possibly negative number (mtime).
pub fn put_i64(block: &mut [u8; BLOCK], f: (usize, usize), v: i64) {
    let dst = &mut block[f.0..f.0 + f.1];
    if v >= 0 && fits_octal(v as u64, f.1) {
        put_octal(dst, v as u64);
    } else {
        put_base256(dst, v);
    }
}

fn put_octal(dst: &mut [u8], mut v: u64) {
    let n = dst.len();
    dst[n - 1] = 0;
    for i in (0..n - 1).rev() {
        dst[i] = b'0' + (v & 7) as u8;
        v >>= 3;
    }
}

fn put_base256(dst: &mut [u8], v: i64) {
    let fill = if v < 0 { 0xff } else { 0 };
    for b in dst.iter_mut() {
        *b = fill;
    }
    let n = dst.len();
    let bytes = v.to_be_bytes();
    let take = bytes.len().min(n);
    dst[n - take..].copy_from_slice(&bytes[bytes.len() - take..]);
    dst[0] = if v < 0 { 0xff } else { 0x80 };
}

/// Parses a numeric field: octal (leading spaces, terminated by space or NUL, empty = 0) or
/// GNU base-256 (first byte 0x80 positive, 0xff negative).
pub fn parse_i64(src: &[u8]) -> Result<i64, String> {
    if let Some(&first) = src.first() {
        if first & 0x80 != 0 {
            let neg = first == 0xff;
            if !neg && first != 0x80 && (first & 0xc0) != 0x80 {
                return Err("invalid base-256 number".into());
            }
            let mut v: i128 = if neg { -1 } else { (first & 0x7f) as i128 };
            for &b in &src[1..] {
                v = (v << 8) | b as i128;
                if v > i64::MAX as i128 || v < i64::MIN as i128 {
                    return Err("number too large".into());
                }
            }
            return Ok(v as i64);
        }
    }
    let mut v: u64 = 0;
    let mut i = 0;
    while i < src.len() && src[i] == b' ' {
        i += 1;
    }
    while i < src.len() {
        let c = src[i];
        match c {
            b'0'..=b'7' => {
                v = v
                    .checked_mul(8)
                    .and_then(|x| x.checked_add((c - b'0') as u64))
                    .ok_or("number too large")?;
            }
            b' ' | 0 => break,
            _ => return Err(format!("invalid octal digit 0x{c:02x}")),
        }
        i += 1;
    }
    // Anything after the terminator must be spaces or NULs.
    if src[i..].iter().any(|&c| c != b' ' && c != 0) {
        return Err("garbage after number".into());
    }
    i64::try_from(v).map_err(|_| "number too large".to_string())
}

pub fn parse_u64(src: &[u8]) -> Result<u64, String> {
    let v = parse_i64(src)?;
    u64::try_from(v).map_err(|_| "negative number".to_string())
}

/// Computes and stores the header checksum.
pub fn set_checksum(block: &mut [u8; BLOCK]) {
    block[CHKSUM.0..CHKSUM.0 + CHKSUM.1].fill(b' ');
    let sum: u32 = block.iter().map(|&b| b as u32).sum();
    let dst = &mut block[CHKSUM.0..CHKSUM.0 + CHKSUM.1];
    // Six octal digits, NUL, space: the traditional layout.
    put_octal(&mut dst[..7], sum as u64);
    dst[7] = b' ';
}

/// Checks the stored header checksum (unsigned, or the signed sum some old tars wrote).
pub fn checksum_ok(block: &[u8; BLOCK]) -> bool {
    let stored = match parse_u64(field(block, CHKSUM)) {
        Ok(v) => v,
        Err(_) => return false,
    };
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (CHKSUM.0..CHKSUM.0 + CHKSUM.1).contains(&i) {
            b' '
        } else {
            b
        };
        unsigned += b as u64;
        signed += (b as i8) as i64;
    }
    stored == unsigned || stored as i64 == signed
}

/// The bytes of a NUL-terminated (or full-width) string field.
pub fn cstr(src: &[u8]) -> &[u8] {
    match src.iter().position(|&c| c == 0) {
        Some(n) => &src[..n],
        None => src,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() -> Result<(), String> {
        let mut b = [0u8; BLOCK];
        for v in [0u64, 7, 0o7777777, 0o7777777 + 1, u32::MAX as u64, 1 << 40] {
            put_u64(&mut b, UID, v);
            assert_eq!(parse_u64(field(&b, UID))?, v);
            put_u64(&mut b, SIZE, v);
            assert_eq!(parse_u64(field(&b, SIZE))?, v);
        }
        for v in [-1i64, -1_000_000_000, 0, 1 << 34, i64::MIN / 2] {
            put_i64(&mut b, MTIME, v);
            assert_eq!(parse_i64(field(&b, MTIME))?, v);
        }
        assert!(parse_u64(b"12x4").is_err());
        assert_eq!(parse_u64(b"  644 \0")?, 0o644);
        Ok(())
    }
}
