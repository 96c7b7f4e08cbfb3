//! The mutation test's engine (binary `lbtest-mutate`, driven by `tests/tests/mutation.rs`):
//! real archives of small trees (sparse files, hard links, symbolic links, xattrs, a fifo,
//! directories) written by the project's walker and writer, mutated in their tar structure
//! (pax records rewritten, duplicated, oversized; sparse maps and real sizes forged; members
//! duplicated, removed, swapped; link tricks; zeroed blocks; truncation; trailing data) and in
//! their bytes, in every codec. Each case is then verified and restored with the core engine
//! into a target beneath a canary directory, and must hold to:
//! - verify's verdict equals restore's (verify OK => the restore succeeds and restores the
//!   counts the trailer records; verify error => the restore fails too);
//! - nothing is written outside the target (the canary is unchanged);
//! - no panic (the worker process dies), no hang and bounded memory (checked by the driver).
//!
//! Cases are numbered; case `i` of seed `s` is always the same case.

use crate::backup::backup_tree;
use anyhow::{bail, Context, Result};
use lifeboat_core::archive::verify::verify_stream;
use lifeboat_core::codec::{self, Codec};
use lifeboat_core::progress::NoProgress;
use lifeboat_core::restore::{extract, RestoreOptions};
use std::io::{Cursor, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A small deterministic generator (splitmix64): the cases must not depend on a crate's
/// version.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
    /// `min` to `min + spread - 1` random bytes.
    pub fn some(&mut self, min: usize, spread: usize) -> Vec<u8> {
        let n = min + self.below(spread);
        self.bytes(n)
    }
}

pub const CODECS: [Codec; 4] = [Codec::None, Codec::Zstd, Codec::Gzip, Codec::Xz];
/// Base trees per seed.
pub const TREES: usize = 3;

/// Builds tree number `n` of `seed` under `dir`.
pub fn build_tree(dir: &Path, seed: u64, n: usize) -> Result<()> {
    let mut rng = Rng::new(seed ^ (n as u64).wrapping_mul(0xA5A5_5A5A_1234_5678));
    let w =
        |p: &Path, data: &[u8]| std::fs::write(p, data).with_context(|| p.display().to_string());
    std::fs::create_dir_all(dir.join("d1/sub"))?;
    std::fs::create_dir_all(dir.join("d2/deeper/deepest"))?;
    std::fs::create_dir_all(dir.join("empty"))?;
    let small = rng.some(1, 3000);
    w(&dir.join("d1/small"), &small)?;
    w(&dir.join("d1/sub/tiny"), b"tiny\n")?;
    w(&dir.join("d2/deeper/deepest/leaf"), &rng.some(0, 700))?;
    w(&dir.join("top"), &rng.some(0, 5000))?;
    // A sparse file: data at a few offsets, holes between, maybe a hole at the end.
    let sparse = std::fs::File::create(dir.join("d1/sparse"))?;
    // (Small logical sizes: holes are hashed, and a debug build hashes slowly.)
    let len = (64 + rng.below(192) as u64) << 10;
    for k in 0..1 + rng.below(3) {
        let at = (k as u64 * 40_960 + rng.below(4096) as u64) & !4095;
        std::os::unix::fs::FileExt::write_all_at(&sparse, &rng.some(1, 6000), at)?;
    }
    sparse.set_len(len)?;
    drop(sparse);
    std::fs::hard_link(dir.join("d1/small"), dir.join("d2/hard"))?;
    std::os::unix::fs::symlink("../d1/small", dir.join("d2/rel-link"))?;
    std::os::unix::fs::symlink("/etc/passwd", dir.join("d2/abs-link"))?;
    std::os::unix::fs::symlink("d1", dir.join("dir-link"))?;
    nix::unistd::mkfifo(
        &dir.join("d2/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )?;
    for (path, name, len) in [
        ("d1", "user.dir", 10 + rng.below(200)),
        ("d1/small", "user.small", rng.below(2000)),
        ("top", "user.top", 1 + rng.below(100)),
    ] {
        xattr_set(&dir.join(path), name, &rng.bytes(len))?;
    }
    std::fs::set_permissions(
        dir.join("d2/deeper"),
        std::fs::Permissions::from_mode(0o750),
    )?;
    for k in 0..rng.below(6) {
        w(&dir.join(format!("d2/extra{k}")), &rng.some(0, 1500))?;
    }
    Ok(())
}

fn xattr_set(path: &Path, name: &str, value: &[u8]) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    let n = std::ffi::CString::new(name)?;
    // SAFETY: valid C strings and slice.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r != 0 {
        bail!(
            "setxattr {name} on {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// The uncompressed archive of each base tree of `seed` (built under `work`).
pub fn base_archives(work: &Path, seed: u64) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for n in 0..TREES {
        let root = work.join(format!("tree{n}"));
        if root.exists() {
            std::fs::remove_dir_all(&root)?;
        }
        std::fs::create_dir_all(&root)?;
        build_tree(&root, seed, n)?;
        let file = work.join(format!("tree{n}.tar"));
        backup_tree(&root, &file, Codec::None)?;
        out.push(std::fs::read(&file)?);
        std::fs::remove_file(&file)?;
    }
    Ok(out)
}

/// One header and the extension headers (pax, GNU long names) before it, with their data.
#[derive(Debug, Clone, Copy)]
struct Member {
    start: usize,
    /// The main (last) header.
    main: usize,
    end: usize,
}

fn octal(field: &[u8]) -> u64 {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        return field[1..]
            .iter()
            .fold(0u64, |a, &b| a.wrapping_shl(8) | u64::from(b));
    }
    let s: String = field
        .iter()
        .take_while(|&&b| b != 0 && b != b' ')
        .map(|&b| b as char)
        .collect();
    u64::from_str_radix(s.trim(), 8).unwrap_or(0)
}

fn put_octal(h: &mut [u8], off: usize, len: usize, v: u64) {
    let s = format!("{:0width$o}\0", v, width = len - 1);
    if s.len() == len {
        h[off..off + len].copy_from_slice(s.as_bytes());
    }
}

fn fix_checksum(h: &mut [u8]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h[..512].iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
}

fn padded(n: u64) -> usize {
    (n as usize).div_ceil(512) * 512
}

/// The members of a tar stream, and where its end-of-archive blocks start.
fn members(tar: &[u8]) -> (Vec<Member>, usize) {
    let mut out = Vec::new();
    let mut off = 0;
    let mut start = 0;
    while off + 512 <= tar.len() {
        let h = &tar[off..off + 512];
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let size = octal(&h[124..136]);
        let next = off
            .saturating_add(512)
            .saturating_add(padded(size.min(1 << 40)));
        let ext = matches!(h[156], b'x' | b'g' | b'L' | b'K');
        if !ext {
            out.push(Member {
                start,
                main: off,
                end: next.min(tar.len()),
            });
            start = next;
        }
        off = next;
    }
    (out, off.min(tar.len()))
}

/// The pax header of a member (offset of its header), if it has one.
fn pax_of(tar: &[u8], m: &Member) -> Option<usize> {
    let mut off = m.start;
    while off < m.main {
        if tar[off + 156] == b'x' {
            return Some(off);
        }
        off += 512 + padded(octal(&tar[off + 124..off + 136]));
    }
    None
}

fn parse_records(data: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(sp) = rest.iter().position(|&b| b == b' ') {
        let Ok(len) = std::str::from_utf8(&rest[..sp])
            .unwrap_or("x")
            .parse::<usize>()
        else {
            break;
        };
        if len <= sp + 1 || len > rest.len() {
            break;
        }
        let rec = &rest[sp + 1..len - 1];
        if let Some(eq) = rec.iter().position(|&b| b == b'=') {
            out.push((rec[..eq].to_vec(), rec[eq + 1..].to_vec()));
        }
        rest = &rest[len..];
    }
    out
}

fn record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while format!("{len}").len() + body != len {
        len += 1;
    }
    let mut r = format!("{len} ").into_bytes();
    r.extend_from_slice(key);
    r.push(b'=');
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

/// Replaces the pax header at `at` (with its data) by one carrying `records`.
fn replace_pax(tar: &mut Vec<u8>, at: usize, records: &[(Vec<u8>, Vec<u8>)]) {
    let old_len = 512 + padded(octal(&tar[at + 124..at + 136]));
    let mut data = Vec::new();
    for (k, v) in records {
        data.extend(record(k, v));
    }
    let mut h = tar[at..at + 512].to_vec();
    put_octal(&mut h, 124, 12, data.len() as u64);
    fix_checksum(&mut h);
    let mut block = h;
    let n = data.len();
    block.extend(data);
    block.resize(512 + padded(n as u64), 0);
    tar.splice(at..(at + old_len).min(tar.len()), block);
}

fn number_values() -> Vec<Vec<u8>> {
    [
        "0",
        "1",
        "-1",
        "513",
        "1099511627776",
        "1125899906842624",
        "9223372036854775807",
        "18446744073709551616",
        "abc",
        "",
        "1.5",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn path_values() -> Vec<Vec<u8>> {
    vec![
        b"../escape".to_vec(),
        b"/tmp/escape".to_vec(),
        b"d1/../../escape".to_vec(),
        b"./d2".to_vec(),
        b"d1".to_vec(),
        b"d1/small".to_vec(),
        b"dir-link/x".to_vec(),
        b"".to_vec(),
        vec![b'n'; 300],
        b"d/".repeat(4200),
        b"a\0b".to_vec(),
    ]
}

/// What a case did to its archive.
pub struct Case {
    pub what: String,
    pub codec: Codec,
    pub bytes: Vec<u8>,
}

/// Case `i` of `seed`, from the base archives.
pub fn make_case(bases: &[Vec<u8>], seed: u64, i: u64) -> Result<Case> {
    let mut rng = Rng::new(seed ^ i.wrapping_mul(0xD1B5_4A32_D192_ED03));
    let base = rng.below(bases.len());
    let codec = CODECS[(i % CODECS.len() as u64) as usize];
    let mut tar = bases[base].clone();
    let mut what = Vec::new();
    let structural = 1 + usize::from(rng.below(4) == 0);
    for _ in 0..structural {
        what.push(mutate_tar(&mut tar, &mut rng));
    }
    let mut bytes = encode(&tar, codec)?;
    if codec != Codec::None && rng.below(5) == 0 {
        // Damage in the compressed stream itself.
        let n = bytes.len();
        match rng.below(3) {
            0 if n > 0 => {
                let at = rng.below(n);
                bytes[at] ^= 1 << rng.below(8);
                what.push(format!("compressed byte {at} flipped"));
            }
            1 => {
                let at = rng.below(n);
                bytes.truncate(at);
                what.push(format!("compressed stream cut at {at}"));
            }
            _ => {
                let extra = rng.some(1, 2000);
                bytes.extend(extra);
                what.push("garbage after the compressed stream".into());
            }
        }
    }
    Ok(Case {
        what: format!("tree {base}: {}", what.join("; ")),
        codec,
        bytes,
    })
}

fn encode(tar: &[u8], codec: Codec) -> Result<Vec<u8>> {
    if codec == Codec::None {
        return Ok(tar.to_vec());
    }
    let mut enc = codec::encoder(Vec::new(), codec, Some(1.max(codec.level_range().0)), 1)?;
    enc.write_all(tar)?;
    Ok(enc.finish()?)
}

/// One structural or byte mutation of an uncompressed tar; says what it did.
fn mutate_tar(tar: &mut Vec<u8>, rng: &mut Rng) -> String {
    let (ms, end) = members(tar);
    if ms.is_empty() {
        tar.truncate(0);
        return "emptied".into();
    }
    let m = *rng.pick(&ms);
    let with_pax: Vec<(Member, usize)> = ms
        .iter()
        .filter_map(|m| pax_of(tar, m).map(|p| (*m, p)))
        .collect();
    match rng.below(14) {
        // A pax record rewritten.
        0 | 1 if !with_pax.is_empty() => {
            let (_, at) = *rng.pick(&with_pax);
            let size = octal(&tar[at + 124..at + 136]);
            let mut recs = parse_records(&tar[at + 512..(at + 512 + size as usize).min(tar.len())]);
            if recs.is_empty() {
                return "no pax records".into();
            }
            let k = rng.below(recs.len());
            let key = String::from_utf8_lossy(&recs[k].0).into_owned();
            let value = if key.contains("path") || key.contains("name") {
                rng.pick(&path_values()).clone()
            } else if key.starts_with("SCHILY") || key == "comment" {
                let mut v = recs[k].1.clone();
                if !v.is_empty() {
                    let j = rng.below(v.len());
                    v[j] ^= 1;
                }
                v
            } else {
                rng.pick(&number_values()).clone()
            };
            recs[k].1 = value;
            replace_pax(tar, at, &recs);
            format!("pax record {key} rewritten")
        }
        // The sparse real size forged.
        2 => {
            let sparse: Vec<_> = with_pax
                .iter()
                .filter(|(_, at)| {
                    let size = octal(&tar[at + 124..at + 136]) as usize;
                    parse_records(&tar[at + 512..(at + 512 + size).min(tar.len())])
                        .iter()
                        .any(|(k, _)| k == b"GNU.sparse.realsize")
                })
                .collect();
            let Some(&&(_, at)) = sparse.get(rng.below(sparse.len().max(1))) else {
                return "no sparse member".into();
            };
            let size = octal(&tar[at + 124..at + 136]) as usize;
            let mut recs = parse_records(&tar[at + 512..(at + 512 + size).min(tar.len())]);
            let v = rng
                .pick(&[
                    "1099511627776",
                    "1125899906842624",
                    "9223372036854775807",
                    "0",
                    "4096",
                ])
                .to_string();
            for r in &mut recs {
                if r.0 == b"GNU.sparse.realsize" {
                    r.1 = v.clone().into_bytes();
                }
            }
            replace_pax(tar, at, &recs);
            format!("GNU.sparse.realsize forged to {v}")
        }
        // The sparse map (the first data block of a sparse 1.0 member) altered.
        3 => {
            let sparse: Vec<_> = ms
                .iter()
                .filter(|m| {
                    tar[m.main..m.main + 100]
                        .windows(14)
                        .any(|w| w == b"GNUSparseFile.")
                })
                .collect();
            let Some(&&sm) = sparse.get(rng.below(sparse.len().max(1))) else {
                return "no sparse member".into();
            };
            let at = sm.main + 512;
            if at + 512 > tar.len() {
                return "sparse member cut".into();
            }
            let text = String::from_utf8_lossy(&tar[at..at + 512]).into_owned();
            let mut lines: Vec<String> = text
                .trim_end_matches('\0')
                .lines()
                .map(|s| s.to_string())
                .collect();
            if lines.is_empty() {
                return "empty sparse map".into();
            }
            let k = rng.below(lines.len());
            lines[k] = rng
                .pick(&[
                    "0",
                    "1",
                    "999999",
                    "1099511627776",
                    "18446744073709551615",
                    "x",
                    "4096",
                ])
                .to_string();
            let mut block = lines.join("\n").into_bytes();
            block.push(b'\n');
            block.resize(512, 0);
            tar[at..at + 512].copy_from_slice(&block[..512]);
            format!("sparse map line {k} altered")
        }
        // A pax record duplicated, or an oversized one added.
        4 if !with_pax.is_empty() => {
            let (_, at) = *rng.pick(&with_pax);
            let size = octal(&tar[at + 124..at + 136]) as usize;
            let mut recs = parse_records(&tar[at + 512..(at + 512 + size).min(tar.len())]);
            if rng.below(2) == 0 && !recs.is_empty() {
                let k = rng.below(recs.len());
                let mut dup = recs[k].clone();
                if rng.below(2) == 0 {
                    dup.1 = rng.pick(&number_values()).clone();
                }
                recs.push(dup);
                replace_pax(tar, at, &recs);
                "pax record duplicated".into()
            } else {
                let big = vec![b'x'; (1 << 20) + rng.below(1 << 20)];
                let key = rng
                    .pick(&[&b"SCHILY.xattr.user.big"[..], b"path", b"comment"])
                    .to_vec();
                recs.push((key, big));
                replace_pax(tar, at, &recs);
                "oversized pax record".into()
            }
        }
        // A member duplicated (at another place), removed, or two swapped.
        5 => {
            let copy = tar[m.start..m.end].to_vec();
            let to = rng.pick(&ms).start;
            tar.splice(to..to, copy);
            "member duplicated".into()
        }
        6 => {
            tar.drain(m.start..m.end);
            "member removed".into()
        }
        7 if ms.len() > 1 => {
            let (a, b) = (m, *rng.pick(&ms));
            let (a, b) = if a.start <= b.start { (a, b) } else { (b, a) };
            if a.start == b.start {
                return "swap of a member with itself".into();
            }
            let mut out = tar[..a.start].to_vec();
            out.extend_from_slice(&tar[b.start..b.end]);
            out.extend_from_slice(&tar[a.end..b.start]);
            out.extend_from_slice(&tar[a.start..a.end]);
            out.extend_from_slice(&tar[b.end..]);
            *tar = out;
            "members swapped".into()
        }
        // A member turned into a hard link or symbolic link with a tricky target.
        8 => {
            let names: Vec<Vec<u8>> = ms
                .iter()
                .map(|o| {
                    tar[o.main..o.main + 100]
                        .split(|&b| b == 0)
                        .next()
                        .unwrap_or(b"")
                        .to_vec()
                })
                .collect();
            let mut targets = path_values();
            targets.extend(names);
            targets.push(b"../../etc/passwd".to_vec());
            let target = rng.pick(&targets).clone();
            let kind = *rng.pick(b"12");
            let mut h = tar[m.main..m.main + 512].to_vec();
            h[156] = kind;
            h[157..257].fill(0);
            let n = target.len().min(100);
            h[157..157 + n].copy_from_slice(&target[..n]);
            put_octal(&mut h, 124, 12, 0);
            fix_checksum(&mut h);
            tar.splice(m.main..m.end, h);
            format!(
                "member made a {} to '{}'",
                if kind == b'1' { "hard link" } else { "symlink" },
                String::from_utf8_lossy(&target[..n])
            )
        }
        // A symbolic link inserted where a directory is, before its contents.
        9 => {
            let mut h = tar[m.main..m.main + 512].to_vec();
            let name: Vec<u8> = h[..100].split(|&b| b == 0).next().unwrap_or(b"").to_vec();
            let name = name.strip_suffix(b"/").unwrap_or(&name).to_vec();
            h[..100].fill(0);
            h[..name.len()].copy_from_slice(&name);
            h[156] = b'2';
            h[157..257].fill(0);
            let target = rng.pick(&[&b"/tmp"[..], b"..", b"../..", b"/"]).to_vec();
            h[157..157 + target.len()].copy_from_slice(&target);
            put_octal(&mut h, 124, 12, 0);
            fix_checksum(&mut h);
            tar.splice(m.end..m.end, h);
            format!(
                "symlink to '{}' inserted after a member",
                String::from_utf8_lossy(&target)
            )
        }
        // A block zeroed.
        10 => {
            let blocks = tar.len() / 512;
            let b = rng.below(blocks.max(1));
            if (b + 1) * 512 <= tar.len() {
                tar[b * 512..(b + 1) * 512].fill(0);
            }
            format!("block {b} zeroed")
        }
        // Truncated.
        11 => {
            let at = if rng.below(2) == 0 {
                rng.pick(&ms).start
            } else {
                rng.below(tar.len())
            };
            tar.truncate(at);
            format!("cut at {at}")
        }
        // Trailing data after the end-of-archive blocks.
        12 => {
            let extra = match rng.below(3) {
                0 => rng.some(1, 3000),
                1 => tar.clone(),
                _ => {
                    let mut b = vec![0u8; 512];
                    b[..5].copy_from_slice(b"junk!");
                    b
                }
            };
            let _ = end;
            tar.extend(extra);
            "trailing data".into()
        }
        // Byte flips, with or without a fixed header checksum.
        _ => {
            let n = 1 + rng.below(3);
            for _ in 0..n {
                let at = rng.below(tar.len());
                tar[at] ^= 1 << rng.below(8);
                if rng.below(2) == 0 {
                    let blk = at / 512 * 512;
                    if blk + 512 <= tar.len() && ms.iter().any(|m| m.main == blk) {
                        fix_checksum(&mut tar[blk..blk + 512]);
                    }
                }
            }
            format!("{n} byte(s) flipped")
        }
    }
}

/// What running one case found.
pub struct Outcome {
    pub verify: Result<(), String>,
    /// Verify accepted it as a plain tar archive (no longer a Lifeboat archive).
    pub plain: bool,
    pub restore: Result<(), String>,
    /// Broken promises (empty when the case holds).
    pub failures: Vec<String>,
}

/// Verifies and restores `case` into `work/canary/target`; checks the promises.
pub fn run_case(case: &Case, work: &Path) -> Result<Outcome> {
    let canary = work.join("canary");
    if canary.exists() {
        clear(&canary)?;
    }
    std::fs::create_dir_all(canary.join("target"))?;
    std::fs::write(canary.join("passwd"), b"root:x:0:0\n")?;
    let verified = verify_stream(Cursor::new(case.bytes.clone()));
    let target: PathBuf = canary.join("target");
    let restored = codec::decoder(Cursor::new(case.bytes.clone()))
        .map_err(|e| e.to_string())
        .and_then(|(_, tar)| {
            let mut reader = lifeboat_core::archive::reader::ArchiveReader::new(tar);
            let mut opts = RestoreOptions::new(&target);
            opts.sync = false;
            opts.early_writeback = false;
            extract(&mut reader, &opts, &NoProgress).map_err(|e| e.to_string())
        });
    let mut failures = Vec::new();
    match (&verified, &restored) {
        (Ok(v), Ok(r)) => {
            // What the restore made must be what verify read: the trailer's counts for a
            // Lifeboat archive, the entries read for one that now reads as a plain tar (its
            // manifest moved or removed: the reader's policy, not a broken promise here).
            let c = match &v.trailer {
                Some(t) if v.is_lifeboat => &t.counts,
                Some(_) | None if !v.is_lifeboat => &v.counts,
                _ => {
                    failures.push("verify OK for a Lifeboat archive without a trailer".into());
                    &v.counts
                }
            };
            let got = (r.files, r.dirs, r.symlinks, r.hardlinks, r.fifos, r.devices);
            let want = (c.files, c.dirs, c.symlinks, c.hardlinks, c.fifos, c.devices);
            if got != want {
                failures.push(format!(
                    "verify OK but the restore made (files, dirs, symlinks, hardlinks, fifos, devices) {got:?}, verify counted {want:?}"
                ));
            }
        }
        (Ok(_), Err(e)) => failures.push(format!("verify OK but the restore failed: {e}")),
        (Err(e), Ok(_)) => failures.push(format!("verify failed ({e}) but the restore succeeded")),
        (Err(_), Err(_)) => {}
    }
    let names: Vec<_> = std::fs::read_dir(&canary)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()?;
    let mut names = names;
    names.sort();
    if names != ["passwd", "target"] {
        failures.push(format!(
            "written outside the target: the canary holds {names:?}"
        ));
    }
    if std::fs::read(canary.join("passwd"))? != b"root:x:0:0\n" {
        failures.push("the canary's passwd was changed".into());
    }
    for p in ["/tmp/escape", "/escape"] {
        if Path::new(p).exists() {
            failures.push(format!("{p} was created"));
        }
    }
    if work.join("escape").exists() {
        failures.push("escaped into the work directory".into());
    }
    clear(&canary)?;
    Ok(Outcome {
        plain: verified.as_ref().is_ok_and(|v| !v.is_lifeboat),
        verify: verified.map(|_| ()).map_err(|e| e.to_string()),
        restore: restored.map(|_| ()),
        failures,
    })
}

/// Removes `dir` (as root, modes do not stop it; an immutable file, which a forged flag could
/// make, is cleared with `chattr` first).
fn clear(dir: &Path) -> Result<()> {
    if std::fs::remove_dir_all(dir).is_ok() {
        return Ok(());
    }
    let _ = std::process::Command::new("chattr")
        .args(["-R", "-f", "-i", "-a"])
        .arg(dir)
        .status();
    std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))
}
