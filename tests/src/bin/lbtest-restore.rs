//! `lbtest-restore ARCHIVE TARGET [--no-sync] [--no-writeback]`: restores with the library and prints how long
//! the extraction, the deferred metadata and the final syncfs took (for measuring the engine
//! apart from the CLI and the disk's writeback).

use anyhow::{bail, Result};
use lifeboat_core::archive::reader::ArchiveReader;
use lifeboat_core::codec;
use lifeboat_core::restore::{Extractor, RestoreOptions};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (archive, target) = match args.as_slice() {
        [a, t, ..] => (a, t),
        _ => bail!("usage: lbtest-restore ARCHIVE TARGET [--no-sync] [--no-writeback]"),
    };
    let sync = !args.iter().any(|a| a == "--no-sync");
    let start = Instant::now();
    let (_, tar) = codec::decoder(std::fs::File::open(archive)?)?;
    let mut reader = ArchiveReader::new(tar);
    let mut opts = RestoreOptions::new(PathBuf::from(target));
    opts.sync = false;
    opts.early_writeback = !args.iter().any(|a| a == "--no-writeback");
    let mut ex = Extractor::new(&opts)?;
    while let Some(mut item) = reader.next_entry()? {
        let entry = item.entry.clone();
        ex.apply(&entry, &mut item)?;
    }
    let extracted = start.elapsed();
    let report = ex.finish()?;
    let finished = start.elapsed();
    if sync {
        let f = std::fs::File::open(target)?;
        nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f))?;
    }
    let synced = start.elapsed();
    println!(
        "{} files, {} bytes: extract {:.2} s, directory metadata {:.2} s, syncfs {:.2} s, total {:.2} s",
        report.files,
        report.bytes,
        extracted.as_secs_f64(),
        (finished - extracted).as_secs_f64(),
        (synced - finished).as_secs_f64(),
        synced.as_secs_f64()
    );
    Ok(())
}
