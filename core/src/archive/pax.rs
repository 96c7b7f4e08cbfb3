//! pax extended header records (`"<len> <key>=<value>\n"`), pax times, and the Lifeboat
//! `comment` record.

use super::entry::{FileFlags, Timestamp};

/// Appends one record. `len` counts the whole record including its own digits.
pub fn push_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = 1 + key.len() + 1 + value.len() + 1; // ' ' key '=' value '\n'
    let mut digits = 1;
    while decimal_len(body + digits) != digits {
        digits += 1;
    }
    push_decimal(out, (body + digits) as u64);
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn decimal_len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 10 {
        v /= 10;
        n += 1;
    }
    n
}

/// Appends the decimal form of `v` without allocating.
pub fn push_decimal(out: &mut Vec<u8>, v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let mut v = v;
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Calls `f(key, value)` for every record of a pax extended header, in order.
pub fn parse_records(
    mut data: &[u8],
    mut f: impl FnMut(&[u8], &[u8]) -> Result<(), String>,
) -> Result<(), String> {
    // Trailing NUL padding (some writers pad the data) ends the records.
    while !data.is_empty() && data[0] != 0 {
        let sp = data
            .iter()
            .take(20)
            .position(|&c| c == b' ')
            .ok_or("pax record without a length")?;
        let len = parse_decimal(&data[..sp]).ok_or("bad pax record length")? as usize;
        if len <= sp + 1 || len > data.len() {
            return Err(format!("pax record length {len} out of bounds"));
        }
        let rec = &data[sp + 1..len];
        if rec.last() != Some(&b'\n') {
            return Err("pax record does not end with a newline".into());
        }
        let rec = &rec[..rec.len() - 1];
        let eq = rec
            .iter()
            .position(|&c| c == b'=')
            .ok_or("pax record without '='")?;
        f(&rec[..eq], &rec[eq + 1..])?;
        data = &data[len..];
    }
    Ok(())
}

/// Parses an unsigned decimal number (no sign, no spaces, at most 19 digits).
pub fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u64;
    }
    Some(v)
}

/// Appends a pax time: `secs` or `secs.nnnnnnnnn`, negative times written as the real signed
/// value (e.g. secs=-2, nanos=500000000 is `-1.500000000`).
pub fn push_time(out: &mut Vec<u8>, t: Timestamp) {
    if t.nanos == 0 {
        if t.secs < 0 {
            out.push(b'-');
        }
        push_decimal(out, t.secs.unsigned_abs());
        return;
    }
    let (neg, whole, frac) = if t.secs < 0 {
        // secs + nanos/1e9 = -((|secs|-1) + (1e9-nanos)/1e9)
        (true, t.secs.unsigned_abs() - 1, 1_000_000_000 - t.nanos)
    } else {
        (false, t.secs as u64, t.nanos)
    };
    if neg {
        out.push(b'-');
    }
    push_decimal(out, whole);
    out.push(b'.');
    let mut digits = [b'0'; 9];
    let mut f = frac;
    for i in (0..9).rev() {
        digits[i] = b'0' + (f % 10) as u8;
        f /= 10;
    }
    out.extend_from_slice(&digits);
}

/// Parses a pax time (`[-]secs[.fraction]`; digits beyond nanoseconds are dropped).
pub fn parse_time(s: &[u8]) -> Option<Timestamp> {
    let (neg, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = match s.iter().position(|&c| c == b'.') {
        Some(p) => (&s[..p], &s[p + 1..]),
        None => (s, &s[s.len()..]),
    };
    let whole = if int.is_empty() {
        0
    } else {
        parse_decimal(int)?
    };
    let whole = i64::try_from(whole).ok()?;
    let mut nanos: u32 = 0;
    for i in 0..9 {
        let d = match frac.get(i) {
            Some(c) if c.is_ascii_digit() => (c - b'0') as u32,
            Some(_) => return None,
            None => 0,
        };
        nanos = nanos * 10 + d;
    }
    if frac.iter().any(|c| !c.is_ascii_digit()) {
        return None;
    }
    if !neg {
        return Some(Timestamp { secs: whole, nanos });
    }
    if nanos == 0 {
        Some(Timestamp {
            secs: -whole,
            nanos: 0,
        })
    } else {
        Some(Timestamp {
            secs: -whole - 1,
            nanos: 1_000_000_000 - nanos,
        })
    }
}

/// The marker that starts a Lifeboat `comment` record.
pub const LIFEBOAT_MARK: &[u8] = b"lifeboat";

/// Appends the value of the Lifeboat `comment` record:
/// `lifeboat[ b3=<64 lower-case hex>][ fl=<i?a?>]`.
pub fn push_lifeboat_comment(out: &mut Vec<u8>, checksum: Option<&[u8; 32]>, flags: FileFlags) {
    out.extend_from_slice(LIFEBOAT_MARK);
    if let Some(sum) = checksum {
        out.extend_from_slice(b" b3=");
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for &b in sum {
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 15) as usize]);
        }
    }
    if !flags.is_empty() {
        out.extend_from_slice(b" fl=");
        if flags.immutable {
            out.push(b'i');
        }
        if flags.append_only {
            out.push(b'a');
        }
    }
}

/// What a Lifeboat comment carries.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LifeboatComment {
    pub checksum: Option<[u8; 32]>,
    pub flags: FileFlags,
}

/// Parses a `comment` value: `Ok(None)` when it is not a Lifeboat comment, an error when it is
/// one but malformed. Unknown `key=value` tokens are ignored (later format versions).
pub fn parse_lifeboat_comment(v: &[u8]) -> Result<Option<LifeboatComment>, String> {
    let mut tokens = v.split(|&c| c == b' ').filter(|t| !t.is_empty());
    if tokens.next() != Some(LIFEBOAT_MARK) {
        return Ok(None);
    }
    let mut out = LifeboatComment::default();
    for tok in tokens {
        if let Some(hex) = tok.strip_prefix(b"b3=") {
            let mut sum = [0u8; 32];
            if hex.len() != 64 {
                return Err("checksum in header has the wrong length".into());
            }
            for (i, pair) in hex.chunks(2).enumerate() {
                let hi = hex_val(pair[0]).ok_or("checksum in header is not hex")?;
                let lo = hex_val(pair[1]).ok_or("checksum in header is not hex")?;
                sum[i] = (hi << 4) | lo;
            }
            out.checksum = Some(sum);
        } else if let Some(fl) = tok.strip_prefix(b"fl=") {
            for &c in fl {
                match c {
                    b'i' => out.flags.immutable = true,
                    b'a' => out.flags.append_only = true,
                    _ => return Err(format!("unknown file flag '{}'", c as char)),
                }
            }
        }
    }
    Ok(Some(out))
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() -> Result<(), String> {
        let mut out = Vec::new();
        push_record(&mut out, b"path", b"a");
        push_record(&mut out, b"SCHILY.xattr.user.x", &[0, 1, b'\n', 255]);
        let long = vec![b'x'; 5000];
        push_record(&mut out, b"path", &long);
        let mut seen = Vec::new();
        parse_records(&out, |k, v| {
            seen.push((k.to_vec(), v.to_vec()));
            Ok(())
        })?;
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[1].1, vec![0, 1, b'\n', 255]);
        assert_eq!(seen[2].1, long);
        assert_eq!(&out[..9], b"9 path=a\n");
        Ok(())
    }

    #[test]
    fn times_round_trip() {
        for (secs, nanos) in [
            (0, 0),
            (1, 5),
            (-2, 500_000_000),
            (-1, 0),
            (1_700_000_000, 999_999_999),
        ] {
            let t = Timestamp { secs, nanos };
            let mut out = Vec::new();
            push_time(&mut out, t);
            assert_eq!(
                parse_time(&out),
                Some(t),
                "{}",
                String::from_utf8_lossy(&out)
            );
        }
        let mut out = Vec::new();
        push_time(
            &mut out,
            Timestamp {
                secs: -2,
                nanos: 500_000_000,
            },
        );
        assert_eq!(out, b"-1.500000000");
        assert_eq!(
            parse_time(b"12.3"),
            Some(Timestamp {
                secs: 12,
                nanos: 300_000_000
            })
        );
        assert_eq!(parse_time(b"1x"), None);
    }

    #[test]
    fn comment_round_trip() -> Result<(), String> {
        let sum = [0xabu8; 32];
        let flags = FileFlags {
            immutable: true,
            append_only: true,
        };
        let mut out = Vec::new();
        push_lifeboat_comment(&mut out, Some(&sum), flags);
        let c = parse_lifeboat_comment(&out)?.ok_or("not ours")?;
        assert_eq!(c.checksum, Some(sum));
        assert_eq!(c.flags, flags);
        assert_eq!(parse_lifeboat_comment(b"made by someone")?, None);
        assert!(parse_lifeboat_comment(b"lifeboat b3=zz").is_err());
        Ok(())
    }
}
