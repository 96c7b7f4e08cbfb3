//! `lbtest-verdict verify ARCHIVE` | `lbtest-verdict restore ARCHIVE TARGET`: verifies, or
//! restores with the core engine, one archive in its own process (so that a test can bound its
//! time and measure its peak memory); prints `ok` or `error: MESSAGE`, exits 0 either way
//! (2 on bad usage).

use anyhow::{bail, Result};
use lifeboat_core::archive::reader::ArchiveReader;
use lifeboat_core::archive::verify::verify_stream;
use lifeboat_core::codec;
use lifeboat_core::progress::NoProgress;
use lifeboat_core::restore::{extract, RestoreOptions};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verdict = match args.as_slice() {
        [mode, archive] if mode == "verify" => verify_stream(std::fs::File::open(archive)?)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        [mode, archive, target] if mode == "restore" => {
            let (_, tar) = codec::decoder(std::fs::File::open(archive)?)?;
            let mut reader = ArchiveReader::new(tar);
            let mut opts = RestoreOptions::new(target);
            opts.sync = false;
            extract(&mut reader, &opts, &NoProgress)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        _ => bail!("usage: lbtest-verdict verify ARCHIVE | restore ARCHIVE TARGET"),
    };
    match verdict {
        Ok(()) => println!("ok"),
        Err(e) => println!("error: {e}"),
    }
    Ok(())
}
