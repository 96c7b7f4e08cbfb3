//! Round trips, compatibility with GNU tar and bsdtar, corruption and hostile input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};

use super::reader::ArchiveReader;
use super::writer::ArchiveWriter;
use super::*;
use crate::codec::{self, Codec};

type TestResult = Result<(), Box<dyn std::error::Error>>;

pub(crate) fn file(path: &[u8], content: &[u8]) -> (Entry, Vec<u8>) {
    (
        Entry {
            path: path.to_vec(),
            kind: EntryKind::File { sparse: None },
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: Timestamp {
                secs: 1_700_000_000,
                nanos: 123_456_789,
            },
            size: content.len() as u64,
            xattrs: vec![],
            flags: FileFlags::default(),
            checksum: Some(*blake3::hash(content).as_bytes()),
        },
        content.to_vec(),
    )
}

fn other(path: &[u8], kind: EntryKind) -> (Entry, Vec<u8>) {
    let (mut e, _) = file(path, b"");
    e.kind = kind;
    e.size = 0;
    e.checksum = None;
    e.mode = 0o755;
    (e, Vec::new())
}

/// A sparse file: logical content and its map; the stored data is the segments.
pub(crate) fn sparse(path: &[u8], size: u64, map: Vec<(u64, u64)>) -> (Entry, Vec<u8>) {
    let mut logical = vec![0u8; size as usize];
    let mut stored = Vec::new();
    for (i, &(o, l)) in map.iter().enumerate() {
        for j in 0..l {
            let b = (i as u8).wrapping_mul(31).wrapping_add(j as u8) | 1;
            logical[(o + j) as usize] = b;
            stored.push(b);
        }
    }
    let (mut e, _) = file(path, &logical);
    e.checksum = Some(checksum::of_content(&logical, Some(&map)).expect("valid map"));
    e.kind = EntryKind::File { sparse: Some(map) };
    (e, stored)
}

/// Every kind of entry and metadata the format must keep.
pub(crate) fn sample_entries() -> Vec<(Entry, Vec<u8>)> {
    let mut v = Vec::new();
    let mut root = other(b".", EntryKind::Dir).0;
    root.mode = 0o755;
    v.push((root, Vec::new()));
    v.push(other(b"dir", EntryKind::Dir));
    let (mut f, c) = file(b"dir/hello.txt", b"hello, world\n");
    f.xattrs = vec![
        (
            b"security.selinux".to_vec(),
            b"system_u:object_r:etc_t:s0\0".to_vec(),
        ),
        (b"user.binary".to_vec(), vec![0, 1, 2, 255, b'\n', b'=', 0]),
    ];
    f.mode = 0o4755;
    v.push((f, c));
    let (mut big, c) = file(b"dir/big", &vec![7u8; 3 * 1024 * 1024 + 17]);
    big.uid = 4_294_967_294;
    big.gid = 3_000_000;
    v.push((big, c));
    let (mut neg, c) = file(b"negative-mtime", b"old");
    neg.mtime = Timestamp {
        secs: -2,
        nanos: 500_000_000,
    };
    v.push((neg, c));
    let (mut imm, c) = file(b"immutable", b"i");
    imm.flags = FileFlags {
        immutable: true,
        append_only: true,
    };
    v.push((imm, c));
    let (mut d, _) = other(b"appenddir", EntryKind::Dir);
    d.flags.append_only = true;
    d.mode = 0o1777;
    v.push((d, Vec::new()));
    v.push(file(b"empty", b""));
    v.push(file(b"non-utf8-\xff\xfe name", b"bytes"));
    let mut long = b"deep/".to_vec();
    while long.len() < 5000 {
        long.extend_from_slice(b"abcdefghij/");
    }
    long.extend_from_slice(b"file\xff");
    v.push(file(&long, b"long"));
    v.push(sparse(
        b"sparse",
        5 * 1024 * 1024,
        vec![(4096, 100), (1024 * 1024, 8192)],
    ));
    v.push(sparse(b"sparse-all-hole", 1 << 30, vec![]));
    v.push(sparse(b"sparse-tail", 20_000, vec![(0, 10), (19_990, 10)]));
    v.push(other(
        b"dir/link",
        EntryKind::Symlink {
            target: b"hello.txt".to_vec(),
        },
    ));
    let mut long_target = b"../".repeat(40);
    long_target.extend_from_slice(b"etc/\xffpasswd");
    v.push(other(
        b"dir/longlink",
        EntryKind::Symlink {
            target: long_target,
        },
    ));
    v.push(other(
        b"dir/hard",
        EntryKind::HardLink {
            target: b"dir/hello.txt".to_vec(),
        },
    ));
    v.push(other(
        b"dev/null",
        EntryKind::CharDevice { major: 1, minor: 3 },
    ));
    v.push(other(
        b"dev/sda",
        EntryKind::BlockDevice {
            major: 8,
            minor: 1_048_575,
        },
    ));
    v.push(other(b"fifo", EntryKind::Fifo));
    v
}

pub(crate) fn sample_manifest() -> Manifest {
    Manifest {
        format_version: manifest::FORMAT_VERSION,
        tool_version: "test".into(),
        created: "2026-11-22T03:00:00Z".into(),
        hostname: "host".into(),
        codec: "zstd".into(),
        ..Default::default()
    }
}

pub(crate) fn write_archive(entries: &[(Entry, Vec<u8>)]) -> Result<Vec<u8>, ArchiveError> {
    let mut w = ArchiveWriter::new(Vec::new(), &sample_manifest())?;
    for (e, c) in entries {
        w.append(e, &mut &c[..])?;
    }
    let (out, trailer) = w.finish(vec!["changed".into()], 2)?;
    assert_eq!(trailer.counts.entries, entries.len() as u64);
    Ok(out)
}

/// Reads everything; returns the entries with their stored content.
type ReadBack = (Vec<(Entry, Vec<u8>)>, bool, Option<Trailer>);

fn read_all(tar: &[u8]) -> Result<ReadBack, ArchiveError> {
    let mut r = ArchiveReader::new(tar);
    let mut out = Vec::new();
    while let Some(mut e) = r.next_entry()? {
        let before = e.remaining();
        let mut c = Vec::new();
        e.read_to_end(&mut c)?;
        assert_eq!(before, c.len() as u64);
        assert_eq!(e.remaining(), 0);
        out.push((e.entry.clone(), c));
    }
    Ok((out, r.is_lifeboat(), r.trailer().cloned()))
}

#[test]
fn round_trip_every_kind() -> TestResult {
    let entries = sample_entries();
    let tar = write_archive(&entries)?;
    let (got, lifeboat, trailer) = read_all(&tar)?;
    assert!(lifeboat);
    let trailer = trailer.ok_or("no trailer")?;
    assert_eq!(trailer.counts.sockets_skipped, 2);
    assert_eq!(trailer.changed_files, vec!["changed".to_string()]);
    assert_eq!(got.len(), entries.len());
    for ((orig, wc), (have, hc)) in entries.iter().zip(&got) {
        let mut want = orig.clone();
        if let EntryKind::File { sparse: Some(map) } = &want.kind {
            want.kind = EntryKind::File {
                sparse: Some(sparse::aligned_map(map, want.size)?),
            };
        }
        assert_eq!(&want, have, "entry {}", want.display_path());
        assert_eq!(
            logical(orig, wc),
            logical(have, hc),
            "content of {}",
            want.display_path()
        );
    }
    Ok(())
}

#[test]
fn manifest_is_available_before_entries() -> TestResult {
    let tar = write_archive(&sample_entries())?;
    let mut r = ArchiveReader::new(&tar[..]);
    let m = r.read_manifest()?.cloned().ok_or("no manifest")?;
    let mut want = sample_manifest();
    want.format_minor = manifest::FORMAT_MINOR;
    assert_eq!(m, want);
    let first = r.next_entry()?.ok_or("no entry")?;
    assert_eq!(first.entry.path, b".");
    Ok(())
}

#[test]
fn skipping_content_still_verifies() -> TestResult {
    let tar = write_archive(&sample_entries())?;
    let mut r = ArchiveReader::new(&tar[..]);
    let mut n = 0;
    while let Some(e) = r.next_entry()? {
        let _ = e.entry;
        n += 1;
    }
    assert_eq!(n, sample_entries().len());
    assert!(r.trailer().is_some());
    Ok(())
}

#[test]
fn every_codec_round_trips() -> TestResult {
    let tar = write_archive(&sample_entries())?;
    for c in Codec::ALL {
        let mut enc = codec::encoder(Vec::new(), c, None, 2)?;
        enc.write_all(&tar)?;
        let packed = enc.finish()?;
        assert_eq!(codec::detect(&packed), c, "{c}");
        let (detected, mut dec) = codec::decoder(std::io::Cursor::new(packed.clone()))?;
        assert_eq!(detected, c);
        let mut back = Vec::new();
        dec.read_to_end(&mut back)?;
        assert_eq!(back, tar, "{c}");
        let report = verify::verify_stream(std::io::Cursor::new(packed))?;
        assert!(report.is_lifeboat);
        assert_eq!(report.codec, c);
        assert_eq!(report.counts.entries, sample_entries().len() as u64);
    }
    Ok(())
}

fn run(
    cmd: &mut std::process::Command,
) -> Result<std::process::Output, Box<dyn std::error::Error>> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(out)
}

use crate::testing::require_tool;

#[test]
fn dump_sample_for_inspection() -> TestResult {
    if let Ok(p) = std::env::var("LIFEBOAT_DUMP_SAMPLE") {
        std::fs::write(p, write_archive(&sample_entries())?)?;
    }
    Ok(())
}

/// Expands stored content into the logical content of a file entry.
fn logical(e: &Entry, stored: &[u8]) -> Vec<u8> {
    match &e.kind {
        EntryKind::File { sparse: Some(map) } => {
            let mut out = vec![0u8; e.size as usize];
            let mut pos = 0usize;
            for &(o, l) in map {
                out[o as usize..(o + l) as usize].copy_from_slice(&stored[pos..pos + l as usize]);
                pos += l as usize;
            }
            out
        }
        _ => stored.to_vec(),
    }
}

fn bytes_of(p: &std::path::Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    p.as_os_str().as_bytes().to_vec()
}

fn lgetxattr(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    let c = std::ffi::CString::new(bytes_of(path)).ok()?;
    let n = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 65536];
    // SAFETY: valid NUL-terminated strings and a buffer of the length passed.
    let r = unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return None;
    }
    buf.truncate(r as usize);
    Some(buf)
}

/// The sample without the 5000-byte path (GNU tar cannot create files beyond PATH_MAX).
fn sample_for_gnu_tar() -> Vec<(Entry, Vec<u8>)> {
    sample_entries()
        .into_iter()
        .filter(|(e, _)| e.path.len() < 4000)
        .collect()
}

#[test]
fn gnu_tar_lists_and_extracts_our_archive() -> TestResult {
    use std::os::unix::fs::MetadataExt;
    if !require_tool("tar") {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let entries = sample_for_gnu_tar();
    let tar = write_archive(&entries)?;
    let mut enc = codec::encoder(Vec::new(), Codec::Gzip, None, 2)?;
    enc.write_all(&tar)?;
    let archive = dir.path().join("backup.tar.gz");
    std::fs::write(&archive, enc.finish()?)?;
    if let Ok(p) = std::env::var("LIFEBOAT_DUMP_SAMPLE") {
        std::fs::copy(&archive, format!("{p}.gnu.tgz"))?;
    }
    let list = run(std::process::Command::new("tar").arg("-tvzf").arg(&archive))?;
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("./dir/hello.txt"), "{list}");
    assert!(list.contains("./.lifeboat/manifest.json"), "{list}");
    assert!(list.contains("./sparse"), "{list}");
    assert!(!list.contains("GNUSparseFile"), "{list}");
    let out = dir.path().join("out");
    std::fs::create_dir(&out)?;
    run(std::process::Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "-xpzf"])
        .arg(&archive)
        .arg("-C")
        .arg(&out))?;
    for (e, c) in &entries {
        let p = out.join(os(&e.path));
        let md = std::fs::symlink_metadata(&p)?;
        match &e.kind {
            EntryKind::File { .. } => {
                assert_eq!(std::fs::read(&p)?, logical(e, c), "{}", e.display_path());
                assert_eq!(md.mode() & 0o7777, e.mode, "{}", e.display_path());
                assert_eq!(md.uid() as u64, e.uid, "{}", e.display_path());
                assert_eq!(
                    (md.mtime(), md.mtime_nsec() as u32),
                    (e.mtime.secs, e.mtime.nanos),
                    "{}",
                    e.display_path()
                );
                if let EntryKind::File { sparse: Some(_) } = e.kind {
                    assert!(
                        md.blocks() * 512 < e.size.max(1) || e.size < 65536,
                        "{} is not sparse: {} blocks",
                        e.display_path(),
                        md.blocks()
                    );
                }
            }
            EntryKind::Symlink { target } => {
                assert_eq!(bytes_of(&std::fs::read_link(&p)?), *target);
            }
            EntryKind::HardLink { target } => {
                let t = std::fs::metadata(out.join(os(target)))?;
                assert_eq!(md.ino(), t.ino());
            }
            EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
                assert_eq!(libc::major(md.rdev()), *major);
                assert_eq!(libc::minor(md.rdev()), *minor);
            }
            _ => {}
        }
        for (k, v) in &e.xattrs {
            if k.starts_with(b"user.") {
                let name = String::from_utf8_lossy(k).into_owned();
                assert_eq!(
                    lgetxattr(&p, &name).as_ref(),
                    Some(v),
                    "{name} of {}",
                    e.display_path()
                );
            }
        }
    }
    // The sparse file really has holes.
    let big_hole = std::fs::metadata(out.join("sparse-all-hole"))?;
    assert_eq!(big_hole.len(), 1 << 30);
    assert!(
        big_hole.blocks() < 64,
        "all-hole file took {} blocks",
        big_hole.blocks()
    );
    Ok(())
}

#[test]
fn bsdtar_lists_and_extracts_our_archive() -> TestResult {
    if !require_tool("bsdtar") {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let entries = sample_entries();
    let tar = write_archive(&entries)?;
    let mut enc = codec::encoder(Vec::new(), Codec::Zstd, None, 2)?;
    enc.write_all(&tar)?;
    let archive = dir.path().join("backup.tar.zst");
    std::fs::write(&archive, enc.finish()?)?;
    let list = run(std::process::Command::new("bsdtar")
        .arg("-tf")
        .arg(&archive))?;
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("./dir/hello.txt"), "{list}");
    assert!(list.contains("./sparse\n"), "{list}");
    let out = dir.path().join("out");
    std::fs::create_dir(&out)?;
    run(std::process::Command::new("bsdtar")
        .arg("-xpf")
        .arg(&archive)
        .arg("-C")
        .arg(&out))?;
    for (e, c) in &entries {
        if e.path.len() > 4000 || !e.is_file() {
            continue;
        }
        let p = out.join(os(&e.path));
        assert_eq!(std::fs::read(&p)?, logical(e, c), "{}", e.display_path());
    }
    Ok(())
}

fn os(b: &[u8]) -> &std::ffi::OsStr {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(b)
}

/// A tree with a long name, a sparse file, a hardlink, a symlink and an xattr.
fn make_tree(root: &std::path::Path) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    use std::os::unix::fs::FileExt;
    let src = root.join("src");
    std::fs::create_dir_all(src.join("sub"))?;
    std::fs::write(src.join(format!("longname_{}", "x".repeat(120))), b"long")?;
    // A name that only fits ustar with the prefix field (> 100, each part < 100/155).
    let deep = src.join("sub").join("p".repeat(90));
    std::fs::create_dir_all(&deep)?;
    std::fs::write(deep.join("q".repeat(60)), b"prefixed")?;
    let f = std::fs::File::create(src.join("sparse"))?;
    let mut sparse = vec![0u8; 5 << 20];
    for (off, byte, len) in [(1usize << 20, b'A', 5000usize), (3 << 20, b'B', 10)] {
        let chunk = vec![byte; len];
        f.write_all_at(&chunk, off as u64)?;
        sparse[off..off + len].copy_from_slice(&chunk);
    }
    f.set_len(5 << 20)?;
    std::fs::write(src.join("plain"), b"plain\n")?;
    std::fs::hard_link(src.join("plain"), src.join("hard"))?;
    std::os::unix::fs::symlink("plain", src.join("sym"))?;
    let c = std::ffi::CString::new(bytes_of(&src.join("plain")))?;
    // SAFETY: valid NUL-terminated strings and a value of the length passed.
    let r = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            c"user.test".as_ptr(),
            b"hello".as_ptr().cast(),
            5,
            0,
        )
    };
    assert_eq!(r, 0, "setting user.test failed");
    Ok(sparse)
}

#[test]
fn reads_archives_made_by_gnu_tar() -> TestResult {
    if !require_tool("tar") {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let sparse_content = make_tree(dir.path())?;
    let variants: &[(&str, &[&str])] = &[
        (
            "default.tgz",
            &["--sparse", "--xattrs", "--numeric-owner", "-czf"],
        ),
        (
            "gnu.tar",
            &["--format=gnu", "--sparse", "--numeric-owner", "-cf"],
        ),
        (
            "oldgnu.tar",
            &["--format=oldgnu", "--sparse", "--numeric-owner", "-cf"],
        ),
        (
            "pax00.tar.xz",
            &[
                "--format=posix",
                "--sparse",
                "--sparse-version=0.0",
                "--xattrs",
                "-cJf",
            ],
        ),
        (
            "pax01.tar",
            &[
                "--format=posix",
                "--sparse",
                "--sparse-version=0.1",
                "--xattrs",
                "-cf",
            ],
        ),
        (
            "pax10.tar.zst",
            &[
                "--format=posix",
                "--sparse",
                "--sparse-version=1.0",
                "--xattrs",
                "--zstd",
                "-cf",
            ],
        ),
        ("ustar.tar", &["--format=ustar", "-cf"]),
    ];
    for (name, args) in variants {
        let archive = dir.path().join(name);
        let mut cmd = std::process::Command::new("tar");
        cmd.args(*args)
            .arg(&archive)
            .arg("-C")
            .arg(dir.path().join("src"))
            .arg(".");
        if run(&mut cmd).is_err() {
            // ustar cannot hold the 129-byte name: let it drop that one file.
            if !name.starts_with("ustar") {
                run(&mut cmd)?;
            }
        }
        let (codec, stream) = codec::decoder(std::fs::File::open(&archive)?)?;
        let mut r = ArchiveReader::new(stream);
        let mut seen = std::collections::BTreeMap::new();
        while let Some(mut e) = r.next_entry()? {
            let mut c = Vec::new();
            e.read_to_end(&mut c)?;
            let content = logical(&e.entry, &c);
            seen.insert(e.entry.path.clone(), (e.entry.clone(), content));
        }
        assert!(!r.is_lifeboat(), "{name}");
        assert!(r.manifest().is_none());
        let get = |p: &str| {
            seen.get(p.as_bytes()).ok_or_else(|| {
                format!(
                    "{name} ({codec}): {p} missing; have {:?}",
                    seen.keys()
                        .map(|k| String::from_utf8_lossy(k).into_owned())
                        .collect::<Vec<_>>()
                )
            })
        };
        assert!(matches!(get(".")?.0.kind, EntryKind::Dir));
        if !name.starts_with("ustar") {
            let (e, c) = get(&format!("longname_{}", "x".repeat(120)))?;
            assert_eq!(c, b"long");
            assert_eq!(e.size, 4);
        }
        let (_, c) = get(&format!("sub/{}/{}", "p".repeat(90), "q".repeat(60)))?;
        assert_eq!(c, b"prefixed", "{name}");
        let (e, c) = get("sparse")?;
        assert_eq!(e.size, 5 << 20, "{name}");
        assert!(c == &sparse_content, "{name}: sparse content differs");
        if !name.starts_with("ustar") {
            assert!(
                matches!(&e.kind, EntryKind::File { sparse: Some(m) } if !m.is_empty()),
                "{name}: {:?}",
                e.kind
            );
        }
        let (sym, _) = get("sym")?;
        assert_eq!(
            sym.kind,
            EntryKind::Symlink {
                target: b"plain".to_vec()
            }
        );
        // One of plain/hard is the file, the other a hard link to it.
        let (p, _) = get("plain")?;
        let (h, _) = get("hard")?;
        let (file, link) = if p.is_file() { (p, h) } else { (h, p) };
        assert!(file.is_file(), "{name}");
        assert_eq!(
            link.kind,
            EntryKind::HardLink {
                target: file.path.clone()
            },
            "{name}"
        );
        if args.contains(&"--xattrs") {
            assert!(
                file.xattrs
                    .contains(&(b"user.test".to_vec(), b"hello".to_vec())),
                "{name}: {:?}",
                file.xattrs
            );
            assert!(
                file.mtime.nanos != 0 || p.mtime.nanos != 0,
                "{name}: no ns mtime"
            );
        }
    }
    Ok(())
}

fn expect_damage(tar: &[u8], what: &str) -> Result<ArchiveError, Box<dyn std::error::Error>> {
    match verify::verify_tar(tar, Codec::None).map_err(ArchiveError::from) {
        Ok(_) => Err(format!("{what}: damage not detected").into()),
        Err(e) => Ok(e),
    }
}

/// Offset of the first occurrence of `needle` in `hay`.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn bit_flips_are_detected() -> TestResult {
    let tar = write_archive(&sample_entries())?;
    verify::verify_tar(&tar[..], Codec::None)?;

    // In file data: names the file.
    let mut t = tar.clone();
    let at = find(&t, b"hello, world").ok_or("data not found")?;
    t[at] ^= 1;
    match expect_damage(&t, "data")? {
        ArchiveError::ChecksumMismatch { path } => assert_eq!(path, "dir/hello.txt"),
        e => return Err(format!("data flip gave {e}").into()),
    }
    // Also when the caller reads the content itself: the read reaching the end fails.
    let mut r = ArchiveReader::new(&t[..]);
    let mut failed = false;
    while let Some(mut e) = r.next_entry().map_err(|e| e.to_string())? {
        let mut c = Vec::new();
        if let Err(err) = e.read_to_end(&mut c) {
            assert!(err.to_string().contains("dir/hello.txt"), "{err}");
            // Converted back, the caller gets the specific error.
            match ArchiveError::from(err) {
                ArchiveError::ChecksumMismatch { path } => assert_eq!(path, "dir/hello.txt"),
                other => return Err(format!("read error converts to {other}").into()),
            }
            failed = true;
            break;
        }
    }
    assert!(failed);

    // In sparse data.
    let mut t = tar.clone();
    let at = find(&t, b"GNU.sparse.name=./sparse\n").ok_or("sparse not found")?;
    let data = at + 1500 + 4096; // well inside the stored segments
    t[data] ^= 0x40;
    expect_damage(&t, "sparse data")?;

    // In a ustar header: header checksum.
    let mut t = tar.clone();
    let at = find(&t, b"./empty\0").ok_or("header not found")?;
    t[at + 100] ^= 1; // mode field
    match expect_damage(&t, "header")? {
        ArchiveError::Corrupt { path, reason } => {
            assert_eq!(path, "./empty");
            assert!(reason.contains("checksum"), "{reason}");
        }
        e => return Err(format!("header flip gave {e}").into()),
    }

    // In pax records (covered by the trailer digest): an mtime digit.
    let mut t = tar.clone();
    let at = find(&t, b"mtime=1700000000.123456789").ok_or("pax mtime not found")?;
    t[at + 8] = b'9';
    expect_damage(&t, "pax mtime")?;

    // In the checksum itself.
    let mut t = tar.clone();
    let at = find(&t, b" b3=").ok_or("b3 not found")?;
    let at = find(&t[at + 4000..], b" b3=").ok_or("b3 not found")? + at + 4000;
    t[at + 10] = if t[at + 10] == b'0' { b'1' } else { b'0' };
    expect_damage(&t, "checksum")?;

    // In the manifest.
    let mut t = tar.clone();
    let at = find(&t, b"\"hostname\"").ok_or("manifest not found")?;
    t[at + 3] ^= 1;
    match expect_damage(&t, "manifest")? {
        ArchiveError::ChecksumMismatch { path } => assert_eq!(path, manifest::MANIFEST_PATH),
        e => return Err(format!("manifest flip gave {e}").into()),
    }

    // In the trailer.
    let mut t = tar.clone();
    let at = find(&t, b"\"entries_digest\"").ok_or("trailer not found")?;
    t[at + 20] ^= 1;
    match expect_damage(&t, "trailer")? {
        ArchiveError::ChecksumMismatch { path } => assert_eq!(path, manifest::TRAILER_PATH),
        e => return Err(format!("trailer flip gave {e}").into()),
    }
    Ok(())
}

#[test]
fn altered_archives_are_detected() -> TestResult {
    let entries = sample_entries();
    let tar = write_archive(&entries)?;
    // Drop an entry (recompute nothing): the trailer counts/digest disagree.
    let fewer: Vec<_> = entries
        .iter()
        .filter(|(e, _)| e.path != b"fifo")
        .cloned()
        .collect();
    let short = write_archive(&fewer)?;
    let trailer_at = |t: &[u8]| -> Result<usize, Box<dyn std::error::Error>> {
        // Start of the pax header that precedes the trailer entry.
        let at = find(t, b"./.lifeboat/trailer.json").ok_or("trailer header")?;
        Ok(at - 1024)
    };
    let mut spliced = short[..trailer_at(&short)?].to_vec();
    spliced.extend_from_slice(&tar[trailer_at(&tar)?..]);
    match expect_damage(&spliced, "missing entry")? {
        ArchiveError::Corrupt { reason, .. } => assert!(reason.contains("trailer"), "{reason}"),
        e => return Err(format!("missing entry gave {e}").into()),
    }
    // Something appended after the trailer.
    let mut t = tar[..tar.len() - 1024].to_vec();
    t.extend_from_slice(&tar[512 * 3..512 * 6]);
    t.extend_from_slice(&[0u8; 1024]);
    expect_damage(&t, "appended")?;
    Ok(())
}

#[test]
fn truncation_is_detected_everywhere() -> TestResult {
    let entries: Vec<_> = sample_entries()
        .into_iter()
        .filter(|(e, _)| e.size < 100_000)
        .collect();
    let tar = write_archive(&entries)?;
    let end_of_trailer = tar.len() - 1024;
    let mut offsets: Vec<usize> = (0..end_of_trailer).step_by(509).collect();
    offsets.extend([1, 511, 512, 513, end_of_trailer - 1]);
    for cut in offsets {
        match verify::verify_tar(&tar[..cut], Codec::None).map_err(ArchiveError::from) {
            Ok(_) => {
                return Err(format!("truncation at {cut} of {} not detected", tar.len()).into())
            }
            Err(ArchiveError::Truncated(_)) | Err(ArchiveError::Corrupt { .. }) => {}
            Err(ArchiveError::Empty(_)) if cut == 0 => {}
            Err(e) => return Err(format!("truncation at {cut} gave {e}").into()),
        }
    }
    // Losing the end-of-archive zero blocks (or one of them) is truncation too.
    for cut in [end_of_trailer, end_of_trailer + 512] {
        match verify::verify_tar(&tar[..cut], Codec::None).map_err(ArchiveError::from) {
            Err(ArchiveError::Truncated(_)) => {}
            other => return Err(format!("cut at {cut}: {other:?}").into()),
        }
    }

    // Inside compressed streams.
    for c in [Codec::Zstd, Codec::Gzip, Codec::Xz] {
        let mut enc = codec::encoder(Vec::new(), c, Some(1.max(c.level_range().0)), 2)?;
        enc.write_all(&tar)?;
        let packed = enc.finish()?;
        for cut in [
            packed.len() / 3,
            packed.len() / 2,
            packed.len() - 30,
            packed.len() - 1,
        ] {
            let r = verify::verify_stream(std::io::Cursor::new(packed[..cut].to_vec()));
            assert!(
                r.is_err(),
                "{c}: truncation at {cut} of {} not detected",
                packed.len()
            );
        }
        // A flipped bit in the compressed stream.
        let mut bad = packed.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x10;
        assert!(
            verify::verify_stream(std::io::Cursor::new(bad)).is_err(),
            "{c}: bit flip not detected"
        );
    }
    Ok(())
}

/// A raw header block with the given name, type and size (valid checksum).
pub(crate) fn raw_header(name: &[u8], typeflag: u8, size: u64) -> [u8; 512] {
    let mut b = [0u8; 512];
    b[..name.len()].copy_from_slice(name);
    header::put_u64(&mut b, header::MODE, 0o644);
    header::put_u64(&mut b, header::UID, 0);
    header::put_u64(&mut b, header::GID, 0);
    header::put_u64(&mut b, header::SIZE, size);
    header::put_i64(&mut b, header::MTIME, 0);
    b[header::TYPEFLAG] = typeflag;
    b[257..265].copy_from_slice(header::USTAR_MAGIC);
    header::set_checksum(&mut b);
    b
}

#[test]
fn hostile_headers_are_refused() -> TestResult {
    // A pax header claiming 8 GiB: refused before allocating.
    let mut t = raw_header(b"././@PaxHeader", b'x', 8 << 30).to_vec();
    t.extend_from_slice(&[0u8; 2048]);
    match verify::verify_tar(&t[..], Codec::None).map_err(ArchiveError::from) {
        Err(ArchiveError::Corrupt { reason, .. }) => {
            assert!(reason.contains("exceeds"), "{reason}")
        }
        other => return Err(format!("huge pax header gave {other:?}").into()),
    }
    // A pax record whose length points past the header.
    let mut data = b"999999 path=x\n".to_vec();
    data.resize(512, 0);
    let mut t = raw_header(b"././@PaxHeader", b'x', 14).to_vec();
    t.extend_from_slice(&data);
    t.extend_from_slice(&raw_header(b"./x", b'0', 0));
    t.extend_from_slice(&[0u8; 1024]);
    assert!(matches!(
        verify::verify_tar(&t[..], Codec::None).map_err(ArchiveError::from),
        Err(ArchiveError::Corrupt { .. })
    ));
    // A GNU long name of 1 TiB.
    let mut t = raw_header(b"././@LongLink", b'L', 1 << 40).to_vec();
    t.extend_from_slice(&[0u8; 1024]);
    assert!(matches!(
        verify::verify_tar(&t[..], Codec::None).map_err(ArchiveError::from),
        Err(ArchiveError::Corrupt { .. })
    ));
    // Bad octal in the size field.
    let mut h = raw_header(b"./x", b'0', 0);
    h[124..136].copy_from_slice(b"00000000x00\0");
    header::set_checksum(&mut h);
    let mut t = h.to_vec();
    t.extend_from_slice(&[0u8; 1024]);
    assert!(matches!(
        verify::verify_tar(&t[..], Codec::None).map_err(ArchiveError::from),
        Err(ArchiveError::Corrupt { .. })
    ));
    // A sparse 1.0 map with a huge count.
    let mut pax_data = Vec::new();
    pax::push_record(&mut pax_data, b"GNU.sparse.major", b"1");
    pax::push_record(&mut pax_data, b"GNU.sparse.minor", b"0");
    pax::push_record(&mut pax_data, b"GNU.sparse.realsize", b"1000");
    let mut t = raw_header(b"././@PaxHeader", b'x', pax_data.len() as u64).to_vec();
    pax_data.resize(512, 0);
    t.extend_from_slice(&pax_data);
    t.extend_from_slice(&raw_header(b"./s", b'0', 512));
    let mut map = b"99999999999\n".to_vec();
    map.resize(512, 0);
    t.extend_from_slice(&map);
    t.extend_from_slice(&[0u8; 1024]);
    assert!(matches!(
        verify::verify_tar(&t[..], Codec::None).map_err(ArchiveError::from),
        Err(ArchiveError::Corrupt { .. })
    ));
    // Many unknown members in a row do not exhaust the stack.
    let mut t = Vec::new();
    for _ in 0..100_000 {
        t.extend_from_slice(&raw_header(b"./n", b'N', 0));
    }
    t.extend_from_slice(&raw_header(b"./f", b'0', 0));
    t.extend_from_slice(&[0u8; 1024]);
    let report = verify::verify_tar(&t[..], Codec::None)?;
    assert_eq!(report.counts.entries, 1);
    // Garbage is not an archive.
    let junk: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    assert!(verify::verify_tar(&junk[..], Codec::None).is_err());
    Ok(())
}

/// Walks `dir` (no sparse detection) and writes an archive through `codec` into a sink.
fn archive_dir(dir: &std::path::Path, c: Codec) -> Result<(u64, u64), Box<dyn std::error::Error>> {
    use std::os::unix::fs::MetadataExt;
    let out: Box<dyn Write> = match std::env::var("LIFEBOAT_BENCH_OUT") {
        Ok(p) => Box::new(std::fs::File::create(format!("{p}.{}", c.extension()))?),
        Err(_) => Box::new(std::io::sink()),
    };
    let sink = crate::io::CountingWriter::new(out);
    let enc = codec::encoder(sink, c, None, 0)?;
    let mut w = ArchiveWriter::new(enc, &sample_manifest())?;
    let mut stack = vec![dir.to_path_buf()];
    let mut buf = vec![0u8; 256 * 1024];
    while let Some(d) = stack.pop() {
        let mut names: Vec<_> = std::fs::read_dir(&d)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect();
        names.sort();
        for p in names {
            let md = std::fs::symlink_metadata(&p)?;
            let rel = p.strip_prefix(dir)?;
            let ft = md.file_type();
            let kind = if ft.is_dir() {
                stack.push(p.clone());
                EntryKind::Dir
            } else if ft.is_symlink() {
                EntryKind::Symlink {
                    target: bytes_of(&std::fs::read_link(&p)?),
                }
            } else if ft.is_file() {
                EntryKind::File { sparse: None }
            } else {
                continue;
            };
            let mut e = Entry {
                path: bytes_of(rel),
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid() as u64,
                gid: md.gid() as u64,
                mtime: Timestamp {
                    secs: md.mtime(),
                    nanos: md.mtime_nsec() as u32,
                },
                size: 0,
                xattrs: vec![],
                flags: FileFlags::default(),
                checksum: None,
            };
            if e.is_file() {
                // Hash pass, then write pass (what a streaming source does).
                let mut h = blake3::Hasher::new();
                let mut f = std::fs::File::open(&p)?;
                loop {
                    let n = f.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
                e.size = md.len();
                e.checksum = Some(*h.finalize().as_bytes());
                w.append(&e, &mut std::fs::File::open(&p)?)?;
            } else {
                w.append(&e, &mut std::io::empty())?;
            }
        }
    }
    let (enc, _) = w.finish(vec![], 0)?;
    let tar_bytes = 0;
    let sink = enc.finish()?;
    Ok((sink.count(), tar_bytes))
}

/// `LIFEBOAT_BENCH_DIR=/usr/share cargo test --release -p lifeboat-core bench_ -- --ignored --nocapture`
#[test]
#[ignore]
fn bench_backup_codecs() -> TestResult {
    let Ok(dir) = std::env::var("LIFEBOAT_BENCH_DIR") else {
        return Ok(());
    };
    let dir = std::path::PathBuf::from(dir);
    let codecs: Vec<Codec> = std::env::var("LIFEBOAT_BENCH_CODECS")
        .unwrap_or_else(|_| "zstd,gzip".into())
        .split(',')
        .filter_map(Codec::from_name)
        .collect();
    for c in codecs {
        let t = std::time::Instant::now();
        let (size, _) = archive_dir(&dir, c)?;
        eprintln!(
            "lifeboat {c}: {:.2}s {} bytes",
            t.elapsed().as_secs_f64(),
            size
        );
    }
    Ok(())
}

/// `LIFEBOAT_BENCH_ARCHIVE=x.tar.zst cargo test --release -p lifeboat-core bench_ -- --ignored --nocapture`
#[test]
#[ignore]
fn bench_verify() -> TestResult {
    let Ok(path) = std::env::var("LIFEBOAT_BENCH_ARCHIVE") else {
        return Ok(());
    };
    let t = std::time::Instant::now();
    let r = if std::env::var("LIFEBOAT_BENCH_INLINE").is_ok() {
        let (c, tar) = codec::decoder_inline(std::fs::File::open(path)?)?;
        verify::verify_tar(tar, c)?
    } else {
        verify::verify_stream(std::fs::File::open(path)?)?
    };
    eprintln!(
        "verify {}: {:.2}s {} entries {} tar bytes",
        r.codec,
        t.elapsed().as_secs_f64(),
        r.counts.entries,
        r.tar_bytes
    );
    Ok(())
}

/// `LIFEBOAT_BENCH_TAR=x.tar cargo test --release -p lifeboat-core bench_ -- --ignored --nocapture`
#[test]
#[ignore]
fn bench_codec_only() -> TestResult {
    let Ok(path) = std::env::var("LIFEBOAT_BENCH_TAR") else {
        return Ok(());
    };
    let codecs: Vec<Codec> = std::env::var("LIFEBOAT_BENCH_CODECS")
        .unwrap_or_else(|_| "zstd,gzip".into())
        .split(',')
        .filter_map(Codec::from_name)
        .collect();
    let mut buf = vec![0u8; 512 * 1024];
    for c in codecs {
        let t = std::time::Instant::now();
        let mut f = std::fs::File::open(&path)?;
        let threads = std::env::var("LIFEBOAT_BENCH_THREADS")
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        eprintln!("threads {threads} (default {})", codec::default_threads());
        let mut enc = codec::encoder(
            crate::io::CountingWriter::new(std::io::sink()),
            c,
            None,
            threads,
        )?;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            enc.write_all(&buf[..n])?;
        }
        let n = enc.finish()?.count();
        eprintln!("codec {c}: {:.2}s {n} bytes", t.elapsed().as_secs_f64());
    }
    Ok(())
}

#[test]
fn a_run_of_pax_headers_is_bounded() -> TestResult {
    let mut data = Vec::new();
    pax::push_record(&mut data, b"SCHILY.xattr.user.x", &vec![b'v'; 900_000]);
    let mut t = Vec::new();
    for _ in 0..10 {
        t.extend_from_slice(&raw_header(b"././@PaxHeader", b'x', data.len() as u64));
        t.extend_from_slice(&data);
        t.resize(t.len() + header::padding(data.len() as u64) as usize, 0);
    }
    t.extend_from_slice(&raw_header(b"./x", b'0', 0));
    t.extend_from_slice(&[0u8; 1024]);
    match verify::verify_tar(&t[..], Codec::None).map_err(ArchiveError::from) {
        Err(ArchiveError::Corrupt { reason, .. }) => {
            assert!(reason.contains("exceeds"), "{reason}")
        }
        other => return Err(format!("pax run gave {other:?}").into()),
    }
    Ok(())
}

#[test]
fn random_damage_never_panics_and_is_reported() -> TestResult {
    use rand::{Rng, SeedableRng};
    let entries: Vec<_> = sample_entries()
        .into_iter()
        .filter(|(e, _)| e.size < 100_000)
        .collect();
    let tar = write_archive(&entries)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut undetected = 0;
    for i in 0..1500 {
        let mut t = tar.clone();
        match i % 3 {
            0 => {
                let at = rng.gen_range(0..t.len() - 1024);
                t[at] ^= 1 << rng.gen_range(0..8);
            }
            1 => {
                for _ in 0..8 {
                    let at = rng.gen_range(0..t.len());
                    t[at] = rng.gen();
                }
            }
            _ => {
                let at = rng.gen_range(0..t.len() - 1024);
                let len = rng.gen_range(1..64).min(t.len() - at);
                for b in &mut t[at..at + len] {
                    *b = rng.gen();
                }
            }
        }
        if t == tar {
            continue;
        }
        if verify::verify_tar(&t[..], Codec::None).is_ok() {
            undetected += 1;
            if let Some(at) = t.iter().zip(&tar).position(|(a, b)| a != b) {
                let blk = at / 512 * 512;
                eprintln!(
                    "undetected change at {at} (block {blk} +{}): {:?}",
                    at - blk,
                    String::from_utf8_lossy(&tar[at.saturating_sub(20)..(at + 20).min(tar.len())])
                );
            }
        }
    }
    // Every byte before the end-of-archive blocks is covered: headers by their checksum, pax
    // records and metadata by the trailer digest, content by its BLAKE3, padding must be zero.
    assert_eq!(
        undetected, 0,
        "{undetected} of 1500 random damages went unnoticed"
    );
    Ok(())
}

/// A plain tar of raw members (name, typeflag, link target), no content.
pub(crate) fn plain_tar(members: &[(&[u8], u8, &[u8])]) -> Vec<u8> {
    let mut t = Vec::new();
    for (name, typeflag, link) in members {
        let mut h = raw_header(name, *typeflag, 0);
        h[header::LINKNAME.0..header::LINKNAME.0 + link.len()].copy_from_slice(link);
        header::set_checksum(&mut h);
        t.extend_from_slice(&h);
    }
    t.extend_from_slice(&[0u8; 1024]);
    t
}

#[test]
fn absolute_names_are_refused() -> TestResult {
    // `./`-prefixed names (xe host-backup) read normally.
    let ok = plain_tar(&[(b"./etc/", b'5', b""), (b"./etc/x", b'0', b"")]);
    let back = read_all(&ok)?;
    let paths: Vec<&[u8]> = back.0.iter().map(|(e, _)| e.path.as_slice()).collect();
    assert_eq!(paths, [&b"etc"[..], &b"etc/x"[..]]);
    // An absolute name, an absolute pax path, an absolute hard link target: refused, naming
    // the entry, by the reader and so by verify.
    let mut pax_abs = Vec::new();
    pax::push_record(&mut pax_abs, b"path", b"/etc/shadow");
    let mut t = raw_header(b"././@PaxHeader", b'x', pax_abs.len() as u64).to_vec();
    pax_abs.resize(512, 0);
    t.extend_from_slice(&pax_abs);
    t.extend_from_slice(&raw_header(b"./innocent", b'0', 0));
    t.extend_from_slice(&[0u8; 1024]);
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (
            plain_tar(&[(b"./ok", b'0', b""), (b"/etc/x", b'0', b"")]),
            "'/etc/x'",
            "name is absolute",
        ),
        (plain_tar(&[(b"/", b'5', b"")]), "'/'", "name is absolute"),
        (t, "'/etc/shadow'", "name is absolute"),
        (
            plain_tar(&[(b"./h", b'1', b"/etc/passwd")]),
            "'./h'",
            "target '/etc/passwd' is absolute",
        ),
    ];
    for (tar, name, why) in cases {
        match verify::verify_tar(&tar[..], Codec::None).map_err(ArchiveError::from) {
            Err(e @ ArchiveError::Refused { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(name) && msg.contains(why), "{msg}");
                assert!(msg.contains("refusing the archive entry"), "{msg}");
            }
            other => return Err(format!("{name}: {other:?}").into()),
        }
    }
    Ok(())
}

/// `getfacl -n` of a path, without the header naming it.
fn getfacl(p: &std::path::Path) -> Result<String, Box<dyn std::error::Error>> {
    let out = run(std::process::Command::new("getfacl")
        .args(["-n", "-p", "--omit-header"])
        .arg(p))?;
    Ok(String::from_utf8(out.stdout)?)
}

#[test]
fn acls_interoperate_with_gnu_tar() -> TestResult {
    use std::os::unix::fs::MetadataExt;
    if !require_tool("tar") || !require_tool("setfacl") {
        return Ok(());
    }
    let tmp = tempfile::tempdir()?;
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("d"))?;
    std::fs::write(src.join("f"), b"acl")?;
    let acl_ok = std::process::Command::new("setfacl")
        .args(["-m", "u:1000:r,g:27:rw"])
        .arg(src.join("f"))
        .status()?
        .success();
    if !acl_ok {
        eprintln!("the temporary filesystem does not support ACLs; skipped");
        return Ok(());
    }
    run(std::process::Command::new("setfacl")
        .args(["-m", "u:1001:rwx", "-d", "-m", "u:1000:rx,g:27:r"])
        .arg(src.join("d")))?;
    // The entries as the backup source would see them: the raw ACL xattrs.
    let mut entries = Vec::new();
    for (name, is_dir) in [("d", true), ("f", false)] {
        let p = src.join(name);
        let md = std::fs::symlink_metadata(&p)?;
        let (mut e, c) = file(name.as_bytes(), &std::fs::read(&p).unwrap_or_default());
        if is_dir {
            e.kind = EntryKind::Dir;
            e.size = 0;
            e.checksum = None;
        }
        e.mode = md.mode() & 0o7777;
        for x in ["system.posix_acl_access", "system.posix_acl_default"] {
            if let Some(v) = lgetxattr(&p, x) {
                e.xattrs.push((x.as_bytes().to_vec(), v));
            }
        }
        assert!(!e.xattrs.is_empty(), "{name} has no ACL xattr");
        entries.push((e, if is_dir { Vec::new() } else { c }));
    }
    let ours = write_archive(&entries)?;
    // The text records are there, in GNU tar's form with numeric ids.
    assert!(
        find(&ours, b"SCHILY.acl.access=user::rw-\nuser:1000:r--\ngroup::r--\ngroup:27:rw-\nmask::rw-\nother::r--\n\n").is_some()
    );
    assert!(find(&ours, b"SCHILY.acl.default=user::rwx\nuser:1000:r-x\n").is_some());
    // Lifeboat reads back exactly the raw xattrs (the text records are not doubled in).
    let (back, _, _) = read_all(&ours)?;
    for ((a, _), (b, _)) in entries.iter().zip(&back) {
        assert_eq!(a.xattrs, b.xattrs, "{}", a.display_path());
    }
    // GNU tar restores the same ACLs, silently.
    let dst = tmp.path().join("dst");
    std::fs::create_dir(&dst)?;
    let archive = tmp.path().join("ours.tar");
    std::fs::write(&archive, &ours)?;
    let out = run(std::process::Command::new("tar")
        .args([
            "--xattrs",
            "--xattrs-include=*",
            "--acls",
            "--numeric-owner",
            "-xpf",
        ])
        .arg(&archive)
        .arg("-C")
        .arg(&dst))?;
    assert!(
        out.stderr.is_empty(),
        "GNU tar warned: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["d", "f"] {
        assert_eq!(
            getfacl(&src.join(name))?,
            getfacl(&dst.join(name))?,
            "{name}"
        );
    }
    // A GNU tar --acls archive (text records only) reads with the raw ACL xattrs.
    let gnu = tmp.path().join("gnu.tar");
    run(std::process::Command::new("tar")
        .args(["--acls", "--format=posix", "-cf"])
        .arg(&gnu)
        .arg("-C")
        .arg(&src)
        .args(["d", "f"]))?;
    let gnu_bytes = std::fs::read(&gnu)?;
    assert!(find(&gnu_bytes, b"SCHILY.xattr.system.posix_acl").is_none());
    let (back, is_lifeboat, _) = read_all(&gnu_bytes)?;
    assert!(!is_lifeboat);
    for (e, _) in &back {
        let want: Vec<_> = entries
            .iter()
            .find(|(s, _)| s.path == e.path)
            .map(|(s, _)| s.xattrs.clone())
            .unwrap_or_default();
        assert_eq!(e.xattrs, want, "{}", e.display_path());
    }
    // In a Lifeboat archive the raw xattr is authoritative: an altered text record is ignored
    // (it is derived, and not covered by the entries digest).
    let mut altered = ours.clone();
    let at = find(&altered, b"user:1000:r--\ngroup::r--\ngroup:27:rw-").ok_or("no text")?;
    altered[at + 11..at + 13].copy_from_slice(b"wx");
    let (back, _, _) = read_all(&altered)?;
    for ((a, _), (b, _)) in entries.iter().zip(&back) {
        assert_eq!(a.xattrs, b.xattrs, "{}", a.display_path());
    }
    Ok(())
}
