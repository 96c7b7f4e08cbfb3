//! The restore engine on real archives: round trips in every codec onto ext4 (root), damage
//! detected by verify and by restore (bit flips in data, checksums, manifest, headers;
//! truncation), and hostile archives refused with nothing written outside the target.

use anyhow::{Context, Result};
use lifeboat_core::archive::reader::ArchiveReader;
use lifeboat_core::archive::verify::verify_stream;
use lifeboat_core::codec::{self, Codec};
use lifeboat_core::progress::NoProgress;
use lifeboat_core::restore::{extract, RestoreOptions};
use lifeboat_tests::backup::backup_tree;
use lifeboat_tests::compare::{compare, CompareOptions};
use lifeboat_tests::fixture::{build, FixtureOptions};
use lifeboat_tests::hostile::{self, Expect};
use lifeboat_tests::image::{have_root, Image};
use std::io::Cursor;
use std::path::Path;

fn restore_bytes(archive: Vec<u8>, target: &Path) -> Result<lifeboat_core::restore::RestoreReport> {
    let (_, tar) = codec::decoder(Cursor::new(archive))?;
    let mut reader = ArchiveReader::new(tar);
    let mut opts = RestoreOptions::new(target);
    opts.sync = false;
    Ok(extract(&mut reader, &opts, &NoProgress)?)
}

#[test]
fn round_trip_in_every_codec_is_identical() -> Result<()> {
    if !have_root("round_trip_in_every_codec_is_identical") {
        return Ok(());
    }
    let src = Image::new("ext4", 256)?;
    build(src.path(), &FixtureOptions::default())?;
    let tmp = tempfile::tempdir()?;
    for codec in [Codec::Zstd, Codec::Gzip, Codec::Xz, Codec::None] {
        let file = tmp.path().join(format!("backup.{}", codec.name()));
        backup_tree(src.path(), &file, codec)?;
        let report = verify_stream(std::fs::File::open(&file)?)?;
        assert!(report.is_lifeboat);
        assert_eq!(report.codec, codec);
        let dst = Image::new("ext4", 256)?;
        let (_, tar) = codec::decoder(std::fs::File::open(&file)?)?;
        let mut reader = ArchiveReader::new(tar);
        let restored = extract(&mut reader, &RestoreOptions::new(dst.path()), &NoProgress)?;
        assert_eq!(
            restored.warnings.count, 0,
            "{:?}",
            restored.warnings.messages
        );
        let cmp = compare(src.path(), dst.path(), &CompareOptions::default())?;
        assert!(
            cmp.is_same(),
            "{}: differences:\n{}",
            codec.name(),
            cmp.differences.join("\n")
        );
    }
    Ok(())
}

/// An uncompressed archive of a small fixture (no root needed: cases needing it are skipped).
fn small_archive() -> Result<(tempfile::TempDir, Vec<u8>)> {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path().join("root");
    let opts = FixtureOptions {
        big_file_bytes: 256 << 10,
        sparse_bytes: 1 << 20,
        flags: false,
        long_path: true,
    };
    build(&root, &opts)?;
    let file = tmp.path().join("a.tar");
    backup_tree(&root, &file, Codec::None)?;
    let bytes = std::fs::read(&file)?;
    Ok((tmp, bytes))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind_before(hay: &[u8], needle: &[u8], before: usize) -> Option<usize> {
    hay[..before]
        .windows(needle.len())
        .rposition(|w| w == needle)
}

fn verify_err(bytes: Vec<u8>) -> String {
    match verify_stream(Cursor::new(bytes)) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn damage_is_detected_and_named() -> Result<()> {
    let (tmp, good) = small_archive()?;
    assert!(
        verify_err(good.clone()).is_empty(),
        "the sound archive fails: {}",
        verify_err(good.clone())
    );

    // A bit flip in a file's content.
    let data_at = find(&good, b"hello, lifeboat\n").context("content not found")?;
    let mut bad = good.clone();
    bad[data_at + 3] ^= 0x01;
    let msg = verify_err(bad.clone());
    assert!(msg.contains("files/small"), "content flip: {msg:?}");
    let target = tmp.path().join("target");
    std::fs::create_dir(&target)?;
    let err = restore_bytes(bad, &target)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("files/small"),
        "restore of a damaged file: {err:?}"
    );

    // A changed checksum in the file's pax header (still valid hex).
    let sum_at = rfind_before(&good, b"b3=", data_at).context("checksum not found")? + 3;
    let mut bad = good.clone();
    bad[sum_at] = if bad[sum_at] == b'0' { b'1' } else { b'0' };
    let msg = verify_err(bad);
    assert!(msg.contains("files/small"), "checksum flip: {msg:?}");

    // The manifest.
    let man_at = find(&good, b"\"hostname\"").context("manifest not found")?;
    let mut bad = good.clone();
    bad[man_at + 14] ^= 0x01;
    assert!(!verify_err(bad).is_empty(), "manifest flip not detected");

    // A header (the name of the file's ustar header).
    let hdr_at = rfind_before(&good, b"ustar", data_at).context("header not found")? - 257;
    let mut bad = good.clone();
    bad[hdr_at + 2] ^= 0x20;
    assert!(!verify_err(bad).is_empty(), "header flip not detected");

    // Truncation anywhere.
    for cut in [
        good.len() / 3,
        good.len() / 2,
        good.len() - 1536,
        good.len() - 2048,
        data_at + 5,
        700,
    ] {
        let msg = verify_err(good[..cut].to_vec());
        assert!(
            !msg.is_empty(),
            "truncation at {cut} of {} not detected",
            good.len()
        );
    }
    Ok(())
}

#[test]
fn damage_in_a_compressed_stream_is_detected() -> Result<()> {
    let (_tmp, good) = small_archive()?;
    let mut z = Vec::new();
    let mut enc = codec::encoder(&mut z, Codec::Zstd, None, 1)?;
    std::io::Write::write_all(&mut enc, &good)?;
    enc.finish()?;
    assert!(verify_err(z.clone()).is_empty());
    for at in [z.len() / 4, z.len() / 2, z.len() - 20] {
        let mut bad = z.clone();
        bad[at] ^= 0x10;
        assert!(
            !verify_err(bad).is_empty(),
            "zstd flip at {at} not detected"
        );
    }
    assert!(!verify_err(z[..z.len() / 2].to_vec()).is_empty());
    Ok(())
}

#[test]
fn hostile_archives_write_nothing_outside_the_target() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let canary = tmp.path().join("canary");
    std::fs::create_dir(&canary)?;
    std::fs::write(canary.join("passwd"), b"root:x:0:0\n")?;
    for case in hostile::cases(&canary) {
        let target = tmp.path().join(format!("target-{}", case.name));
        std::fs::create_dir(&target)?;
        let result = restore_bytes(case.tar, &target);
        match (&result, case.expect) {
            (Err(e), Expect::Refused) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("refusing"),
                    "{}: unclear message: {msg}",
                    case.name
                );
            }
            (Ok(_), Expect::Harmless) => {}
            (r, _) => anyhow::bail!(
                "{} ({}): unexpected outcome {:?}",
                case.name,
                case.what,
                r.as_ref().err()
            ),
        }
        let mut names: Vec<_> = std::fs::read_dir(&canary)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("passwd")],
            "{}: wrote into the canary",
            case.name
        );
        assert_eq!(
            std::fs::read(canary.join("passwd"))?,
            b"root:x:0:0\n",
            "{}",
            case.name
        );
        assert!(!tmp.path().join("escaped").exists(), "{}", case.name);
        assert!(
            !Path::new("/tmp/escaped").exists() && !Path::new("/escaped").exists(),
            "{}",
            case.name
        );
    }
    Ok(())
}
