//! Root test: the fixture on an ext4 image, walked by the backup source and fed straight into
//! the restore engine (no archive in between), restored onto a second ext4 image, compared.
//! This checks the source and the restore engine against each other on every case.

use anyhow::Result;
use lifeboat_core::archive::{ArchiveError, Entry};
use lifeboat_core::progress::NoProgress;
use lifeboat_core::restore::{Extractor, RestoreError, RestoreOptions};
use lifeboat_core::source::pipeline::{self, EntrySink};
use lifeboat_core::source::SourceOptions;
use lifeboat_tests::compare::{compare, CompareOptions};
use lifeboat_tests::fixture::{build, FixtureOptions};
use lifeboat_tests::image::{have_root, Image};
use std::io::Read;

struct Sink(Extractor);

impl EntrySink for Sink {
    fn append(&mut self, entry: &Entry, content: &mut dyn Read) -> Result<(), ArchiveError> {
        self.0.apply(entry, content).map_err(|e| match e {
            RestoreError::Archive(a) => a,
            other => ArchiveError::Unsupported(other.to_string()),
        })
    }
}

#[test]
fn fixture_walked_and_restored_is_identical() -> Result<()> {
    if !have_root("fixture_walked_and_restored_is_identical") {
        return Ok(());
    }
    let src = Image::new("ext4", 256)?;
    let dst = Image::new("ext4", 256)?;
    let report = build(src.path(), &FixtureOptions::default())?;
    assert!(
        report.skipped.is_empty(),
        "fixture cases skipped: {:?}",
        report.skipped
    );

    let cfg = SourceOptions::new(src.path()).walk_config();
    let mut sink = Sink(Extractor::new(&RestoreOptions::new(dst.path()))?);
    pipeline::run(&cfg, &mut sink, &NoProgress)?;
    let restored = sink.0.finish()?;
    assert_eq!(
        restored.warnings.count, 0,
        "{:?}",
        restored.warnings.messages
    );

    let cmp = compare(src.path(), dst.path(), &CompareOptions::default())?;
    assert!(
        cmp.is_same(),
        "differences:\n{}",
        cmp.differences.join("\n")
    );
    assert!(cmp.entries > 80);
    Ok(())
}

#[test]
fn a_full_target_stops_with_a_clear_error() -> Result<()> {
    if !have_root("a_full_target_stops_with_a_clear_error") {
        return Ok(());
    }
    let src = Image::new("ext4", 256)?;
    let dst = Image::new("ext4", 16)?;
    let opts = FixtureOptions {
        big_file_bytes: 64 << 20,
        ..FixtureOptions::default()
    };
    build(src.path(), &opts)?;
    let cfg = SourceOptions::new(src.path()).walk_config();
    let mut ro = RestoreOptions::new(dst.path());
    ro.expected_bytes = Some(70 << 20);
    let mut sink = Sink(Extractor::new(&ro)?);
    let err = pipeline::run(&cfg, &mut sink, &NoProgress)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let target = dst.path().display().to_string();
    assert!(
        err.contains(&format!("the target {target} is full"))
            && err.contains(&format!("of {}", 70 << 20)),
        "unexpected error: {err}"
    );
    Ok(())
}
