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
fn sparse(path: &[u8], size: u64, map: Vec<(u64, u64)>) -> (Entry, Vec<u8>) {
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
        let mut c = Vec::new();
        e.read_to_end(&mut c)?;
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
    for ((want, wc), (have, hc)) in entries.iter().zip(&got) {
        assert_eq!(want, have, "entry {}", want.display_path());
        assert_eq!(wc, hc, "content of {}", want.display_path());
    }
    Ok(())
}

#[test]
fn manifest_is_available_before_entries() -> TestResult {
    let tar = write_archive(&sample_entries())?;
    let mut r = ArchiveReader::new(&tar[..]);
    let m = r.read_manifest()?.cloned().ok_or("no manifest")?;
    assert_eq!(m, sample_manifest());
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
