//! `lifeboat verify [GEN | file-name=F]`: decompresses an archive and checks every checksum,
//! the manifest and the trailer. Exit 0: sound; 1: damaged (the first damaged path is named);
//! 2: could not be read at all.

use crate::cli::Command;
use anyhow::{bail, Result};
use lifeboat_core::archive::verify::verify_tar;
use lifeboat_core::codec;
use lifeboat_core::io::ProgressReader;
use lifeboat_core::progress::Progress;
use std::process::ExitCode;

pub fn run(cmd: Command, quiet: bool) -> Result<ExitCode> {
    let Command::Verify {
        generation,
        file_name,
        device: _,
        json,
    } = cmd
    else {
        bail!("internal error: not a verify command");
    };
    if generation.is_none() && file_name.is_none() {
        bail!("verifying the generations of the backup store needs the store, which this build cannot open yet; use file-name=F");
    }
    let input = super::restore::select(generation.as_deref(), file_name.as_deref())?;
    let bar = super::restore::bar(quiet || json, input.size);
    let counted = ProgressReader::new(input.stream, bar);
    let result = codec::decoder(counted)
        .map_err(lifeboat_core::archive::ArchiveError::from)
        .and_then(|(codec, tar)| verify_tar(tar, codec));
    bar.finish();
    match result {
        Ok(r) => {
            let c = &r.counts;
            if json {
                let out = serde_json::json!({
                    "ok": true, "archive": input.name, "codec": r.codec.name(), "lifeboat": r.is_lifeboat,
                    "counts": c, "host": r.manifest.as_ref().map(|m| m.hostname.clone()),
                });
                println!("{out}");
            } else if !quiet {
                println!(
                    "{}: {} ({}): {} entries, {} files, {} bytes{}",
                    input.name,
                    if r.is_lifeboat { "sound" } else { "readable" },
                    r.codec.name(),
                    c.entries,
                    c.files,
                    c.bytes,
                    if r.is_lifeboat {
                        ", every checksum verified"
                    } else {
                        "; a plain tar archive has no checksums to verify"
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "ok": false, "archive": input.name, "error": e.to_string() })
                );
            } else {
                eprintln!("lifeboat: {}: DAMAGED: {e}", input.name);
            }
            Ok(ExitCode::from(1))
        }
    }
}
