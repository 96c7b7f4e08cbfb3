//! Damaged and hostile archives the reader must refuse, quickly and within bounded memory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Cursor, Read, Write};
use std::time::{Duration, Instant};

use super::super::checksum::{self, MAX_LOGICAL_SIZE};
use super::super::header;
use super::super::pax;
use super::super::tests::{
    file, find, plain_tar, raw_header, sample_entries, sample_manifest, sparse, write_archive,
};
use super::super::verify::{self, VerifyReport};
use super::super::writer::ArchiveWriter;
use super::super::{ArchiveError, Entry, EntryKind};
use super::RECORD;
use crate::codec::{self, Codec};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The verify loop, with its error as the reader's (these tests are about the reader).
fn verify_tar(tar: impl Read, c: Codec) -> Result<VerifyReport, ArchiveError> {
    verify::verify_tar(tar, c).map_err(ArchiveError::from)
}

fn verify_stream(input: impl Read + Send + 'static) -> Result<VerifyReport, ArchiveError> {
    verify::verify_stream(input).map_err(ArchiveError::from)
}

/// The hard limit for a hostile archive (only exceeded by hashing holes or an
/// endless stream, which take minutes to forever).
const LIMIT: Duration = Duration::from_secs(10);

fn small_archive() -> Result<Vec<u8>, ArchiveError> {
    let entries: Vec<_> = sample_entries()
        .into_iter()
        .filter(|(e, _)| e.size < 100_000)
        .collect();
    write_archive(&entries)
}

fn compress(c: Codec, tar: &[u8]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut enc = codec::encoder(Vec::new(), c, Some(1.max(c.level_range().0)), 1)?;
    enc.write_all(tar)?;
    Ok(enc.finish()?)
}

#[test]
fn a_zeroed_first_block_is_not_a_backup() -> TestResult {
    let mut tar = small_archive()?;
    tar[..512].fill(0);
    // Read as a tar stream: no entry before the end marker.
    assert!(matches!(
        verify_tar(&tar[..], Codec::None),
        Err(ArchiveError::Empty(_))
    ));
    // Opened as a file: neither compressed nor tar.
    assert!(matches!(
        verify_stream(Cursor::new(tar.clone())),
        Err(ArchiveError::NotAnArchive(_))
    ));
    // The same damage inside a compressed stream.
    for c in [Codec::Zstd, Codec::Gzip, Codec::Xz] {
        match verify_stream(Cursor::new(compress(c, &tar)?)) {
            Err(ArchiveError::Empty(_)) => {}
            other => return Err(format!("{c}: {other:?}").into()),
        }
    }
    Ok(())
}

#[test]
fn a_file_of_zeros_is_not_an_archive() -> TestResult {
    let zeros = vec![0u8; 1 << 20];
    assert!(matches!(
        verify_stream(Cursor::new(zeros.clone())),
        Err(ArchiveError::NotAnArchive(_))
    ));
    assert!(matches!(
        verify_tar(&zeros[..], Codec::None),
        Err(ArchiveError::Empty(_))
    ));
    assert!(matches!(
        verify_stream(Cursor::new(Vec::new())),
        Err(ArchiveError::Empty(_))
    ));
    Ok(())
}

#[test]
fn archives_without_entries_are_refused() -> TestResult {
    // A plain tar that is only its end marker.
    let t = vec![0u8; 10240];
    assert!(matches!(
        verify_tar(&t[..], Codec::None),
        Err(ArchiveError::Empty(_))
    ));
    // A Lifeboat archive with a manifest and a trailer but nothing between them.
    let w = ArchiveWriter::new(Vec::new(), &sample_manifest())?;
    let (t, _) = w.finish(vec![], 0)?;
    assert!(matches!(
        verify_tar(&t[..], Codec::None),
        Err(ArchiveError::Empty(_))
    ));
    Ok(())
}

#[test]
fn a_lifeboat_archive_without_its_manifest_is_refused() -> TestResult {
    let tar = small_archive()?;
    // Cut the manifest off: the first entry's pax header is the second one in the archive.
    let first = find(&tar, b"././@PaxHeader").ok_or("no pax header")?;
    let second = first + 512 + find(&tar[first + 512..], b"././@PaxHeader").ok_or("no entry")?;
    assert_eq!(second % 512, 0);
    match verify_tar(&tar[second..], Codec::None) {
        Err(ArchiveError::Corrupt { reason, .. }) => {
            assert!(reason.contains("Lifeboat manifest"), "{reason}")
        }
        other => return Err(format!("{other:?}").into()),
    }
    Ok(())
}

/// A Lifeboat archive (format 1.1) with one sparse file of `size` bytes holding one 4 KiB
/// data segment.
fn huge_sparse(size: u64) -> Result<Vec<u8>, ArchiveError> {
    let (mut e, _) = file(b"big", b"");
    e.kind = EntryKind::File {
        sparse: Some(vec![(0, 4096)]),
    };
    e.size = size;
    let mut h = checksum::ContentHasher::new(size, Some(&[(0, 4096)])).map_err(|reason| {
        ArchiveError::Corrupt {
            path: "big".into(),
            reason,
        }
    })?;
    h.data(&[7u8; 4096]);
    h.hole(size - 4096);
    e.checksum = Some(h.finalize());
    let mut w = ArchiveWriter::new(Vec::new(), &sample_manifest())?;
    w.append(&e, &mut &[7u8; 4096][..])?;
    Ok(w.finish(vec![], 0)?.0)
}

#[test]
fn huge_sparse_files_verify_in_time_proportional_to_their_data() -> TestResult {
    // 1 TiB: a real (if unusual) file; its checksum does not cover the holes.
    let t = Instant::now();
    let tar = huge_sparse(1 << 40)?;
    let report = verify_tar(&tar[..], Codec::None)?;
    assert_eq!(report.counts.bytes, 1 << 40);
    assert!(t.elapsed() < LIMIT, "{:?}", t.elapsed());
    // 2^50 and 2^63-1: larger than any file a restore can create: refused, naming it.
    for size in [1u64 << 50, i64::MAX as u64, MAX_LOGICAL_SIZE + 1] {
        let t = Instant::now();
        let tar = huge_sparse(size)?;
        match verify_tar(&tar[..], Codec::None) {
            Err(ArchiveError::Refused { path, reason }) => {
                assert_eq!(path, "big");
                assert!(reason.contains("16 TiB"), "{reason}");
            }
            other => return Err(format!("{size}: {other:?}").into()),
        }
        assert!(t.elapsed() < LIMIT, "{size}: {:?}", t.elapsed());
    }
    verify_tar(&huge_sparse(MAX_LOGICAL_SIZE)?[..], Codec::None)?;
    Ok(())
}

/// An archive in format 1.0 (checksums of sparse files over the logical content).
fn legacy_archive(entries: &[(Entry, Vec<u8>)]) -> Result<Vec<u8>, ArchiveError> {
    let mut w = ArchiveWriter::with_format_minor(Vec::new(), &sample_manifest(), 0)?;
    for (e, c) in entries {
        w.append(e, &mut &c[..])?;
    }
    Ok(w.finish(vec![], 0)?.0)
}

#[test]
fn format_1_0_sparse_checksums_still_verify_within_a_budget() -> TestResult {
    // A small sparse file with the old meaning of its checksum reads and verifies.
    let (mut e, stored) = sparse(b"old", 20_000, vec![(0, 10), (19_990, 10)]);
    let mut logical = vec![0u8; 20_000];
    logical[..10].copy_from_slice(&stored[..10]);
    logical[19_990..].copy_from_slice(&stored[10..]);
    e.checksum = Some(*blake3::hash(&logical).as_bytes());
    let tar = legacy_archive(&[(e.clone(), stored.clone())])?;
    verify_tar(&tar[..], Codec::None)?;
    // The new meaning in an old archive is a mismatch (the versions are not mixed up).
    let (e2, stored2) = sparse(b"old", 20_000, vec![(0, 10), (19_990, 10)]);
    assert!(matches!(
        verify_tar(&legacy_archive(&[(e2, stored2)])?[..], Codec::None),
        Err(ArchiveError::ChecksumMismatch { .. })
    ));
    // 1 TiB of holes to hash as zeros: refused at once rather than hashed for minutes.
    let (mut big, _) = file(b"big", b"");
    big.kind = EntryKind::File {
        sparse: Some(vec![(0, 4096)]),
    };
    big.size = 1 << 40;
    big.checksum = Some([0u8; 32]);
    let t = Instant::now();
    match verify_tar(&legacy_archive(&[(big, vec![7u8; 4096])])?[..], Codec::None) {
        Err(ArchiveError::Unsupported(msg)) => assert!(msg.contains("format 1.0"), "{msg}"),
        other => return Err(format!("{other:?}").into()),
    }
    assert!(t.elapsed() < LIMIT);
    Ok(())
}

/// Zeros forever, counting what was read: an endless input must end after a bounded read (a
/// byte count, not a time: the test does not depend on the machine's load).
struct CountedZeros(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Read for CountedZeros {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        buf.fill(0);
        self.0
            .fetch_add(buf.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(buf.len())
    }
}

/// What an endless input may be read for before it is refused.
const ENDLESS_BUDGET: u64 = 64 << 20;

#[test]
fn endless_zeros_end_after_a_bounded_read() -> TestResult {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    // `verify file-name=/dev/zero`: zeros forever.
    let read = Arc::new(AtomicU64::new(0));
    assert!(matches!(
        verify_tar(CountedZeros(read.clone()), Codec::None),
        Err(ArchiveError::Empty(_))
    ));
    assert!(read.load(Ordering::Relaxed) < ENDLESS_BUDGET, "{read:?}");
    let read = Arc::new(AtomicU64::new(0));
    assert!(matches!(
        verify_stream(CountedZeros(read.clone())),
        Err(ArchiveError::NotAnArchive(_))
    ));
    assert!(read.load(Ordering::Relaxed) < ENDLESS_BUDGET, "{read:?}");
    // A sound archive followed by zeros forever: one record of padding, then an error.
    let tar = small_archive()?;
    let read = Arc::new(AtomicU64::new(0));
    match verify_tar(
        Cursor::new(tar).chain(CountedZeros(read.clone())),
        Codec::None,
    ) {
        Err(ArchiveError::TrailingData(_)) => {}
        other => return Err(format!("{other:?}").into()),
    }
    assert!(read.load(Ordering::Relaxed) < ENDLESS_BUDGET, "{read:?}");
    Ok(())
}

#[test]
fn only_zero_padding_may_follow_the_end() -> TestResult {
    let tar = small_archive()?;
    // Padding up to a record (what GNU tar writes) is fine.
    for pad in [0usize, 512, 9 * 512, RECORD as usize] {
        let mut t = tar.clone();
        t.resize(t.len() + pad, 0);
        verify_tar(&t[..], Codec::None)?;
    }
    let mut too_much = tar.clone();
    too_much.resize(too_much.len() + RECORD as usize + 1, 0);
    let mut garbage = tar.clone();
    garbage.extend_from_slice(b"trailing garbage");
    let mut late_garbage = tar.clone();
    late_garbage.resize(late_garbage.len() + 4096, 0);
    late_garbage.push(1);
    let mut two = tar.clone();
    two.extend_from_slice(&tar);
    // A non-zero block right after the first end-of-archive block.
    let mut lone = tar.clone();
    let end = lone.len() - 512;
    lone[end..].copy_from_slice(&raw_header(b"./x", b'0', 0));
    lone.extend_from_slice(&[0u8; 1024]);
    for (what, t) in [
        ("too much padding", too_much),
        ("garbage", garbage),
        ("late garbage", late_garbage),
        ("a second archive", two),
        ("a member after one zero block", lone),
    ] {
        match verify_tar(&t[..], Codec::None) {
            Err(ArchiveError::TrailingData(_)) => {}
            other => return Err(format!("{what}: {other:?}").into()),
        }
        // Compressed, too.
        match verify_stream(Cursor::new(compress(Codec::Zstd, &t)?)) {
            Err(ArchiveError::TrailingData(_)) => {}
            other => return Err(format!("{what} (zstd): {other:?}").into()),
        }
    }
    Ok(())
}

#[test]
fn a_plain_tar_cut_between_members_is_truncated() -> TestResult {
    let whole = plain_tar(&[(b"./a/", b'5', b""), (b"./a/b", b'0', b"")]);
    verify_tar(&whole[..], Codec::None)?;
    for cut in [512, 1024, 1536] {
        match verify_tar(&whole[..cut], Codec::None) {
            Err(ArchiveError::Truncated(_)) => {}
            other => return Err(format!("cut at {cut}: {other:?}").into()),
        }
    }
    Ok(())
}

#[test]
fn pax_global_attributes_are_bounded() -> TestResult {
    let global = |len: usize| {
        let mut data = Vec::new();
        pax::push_record(&mut data, b"SCHILY.xattr.user.bomb", &vec![b'v'; len]);
        let mut t = raw_header(b"././@PaxGlobal", b'g', data.len() as u64).to_vec();
        t.extend_from_slice(&data);
        t.resize(t.len() + header::padding(data.len() as u64) as usize, 0);
        t
    };
    let members = |t: &mut Vec<u8>| {
        for i in 0..100 {
            t.extend_from_slice(&raw_header(format!("./d{i}/").as_bytes(), b'5', 0));
        }
        t.extend_from_slice(&[0u8; 1024]);
    };
    // A small global xattr applies to every member.
    let mut ok = global(1000);
    members(&mut ok);
    let mut r = super::ArchiveReader::new(&ok[..]);
    let mut n = 0;
    while let Some(e) = r.next_entry()? {
        assert_eq!(e.entry.xattrs.len(), 1);
        n += 1;
    }
    assert_eq!(n, 100);
    // 200 KiB of global xattrs (copied into every entry) are refused.
    let mut bomb = global(200 << 10);
    members(&mut bomb);
    match verify_tar(&bomb[..], Codec::None) {
        Err(ArchiveError::Corrupt { reason, .. }) => {
            assert!(reason.contains("global"), "{reason}")
        }
        other => return Err(format!("{other:?}").into()),
    }
    // So are many small global headers adding up.
    let mut many = Vec::new();
    for _ in 0..100 {
        many.extend_from_slice(&global(1000));
    }
    members(&mut many);
    assert!(matches!(
        verify_tar(&many[..], Codec::None),
        Err(ArchiveError::Corrupt { .. })
    ));
    Ok(())
}
