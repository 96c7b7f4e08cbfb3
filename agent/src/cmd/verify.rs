//! `lifeboat verify [GEN | file-name=F]`: decompresses an archive and checks every checksum,
//! the manifest and the trailer; without GEN, every generation of the store. Exit 0: sound;
//! 1: damage found (the first damaged path is named); 2: could not be read at all.

use super::restore::{bar, open_file, open_generation, open_store, Input};
use crate::cli::Command;
use anyhow::{bail, Result};
use lifeboat_core::archive::verify::{verify_tar, VerifyReport};
use lifeboat_core::archive::ArchiveError;
use lifeboat_core::codec;
use lifeboat_core::io::ProgressReader;
use lifeboat_core::progress::Progress;
use std::process::ExitCode;

pub fn run(cmd: Command, quiet: bool) -> Result<ExitCode> {
    let Command::Verify {
        generation,
        file_name,
        device,
        json,
    } = cmd
    else {
        bail!("internal error: not a verify command");
    };
    // The store stays mounted (read-only) while its generations are read.
    let mut store = None;
    let sources: Vec<Option<String>> = match (generation.as_deref(), file_name.as_deref()) {
        (Some(_), Some(_)) => bail!("give either a generation or file-name=F, not both"),
        (None, Some(_)) => vec![None],
        (gen, None) => {
            let (st, mounted, dev) = open_store(device.backup_device.as_deref())?;
            let ids = match gen {
                Some(g) => vec![Some(st.find(g)?.id)],
                None => st.generations()?.into_iter().map(|g| Some(g.id)).collect(),
            };
            if ids.is_empty() {
                bail!("the store on {dev} holds no generation to verify");
            }
            store = Some((st, mounted, dev));
            ids
        }
    };
    let mut damaged = 0;
    let mut results = Vec::new();
    for source in sources {
        let input = match (&source, &store, file_name.as_deref()) {
            (Some(id), Some((st, _, dev)), _) => open_generation(st, dev, id)?,
            (None, _, Some(f)) => open_file(f)?,
            _ => bail!("internal error: nothing to verify"),
        };
        let name = input.name.clone();
        let verdict = verify_one(input, quiet || json);
        match &verdict {
            Ok(r) if !json && !quiet => {
                let c = &r.counts;
                println!(
                    "{name}: {} ({}): {} entries, {} files, {} bytes{}",
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
            Ok(_) => {}
            Err(e) => {
                damaged += 1;
                if !json {
                    eprintln!("lifeboat: {name}: DAMAGED: {e}");
                }
            }
        }
        if json {
            results.push(match verdict {
                Ok(r) => serde_json::json!({
                    "archive": name, "ok": true, "codec": r.codec.name(), "lifeboat": r.is_lifeboat,
                    "counts": r.counts, "host": r.manifest.as_ref().map(|m| m.hostname.clone()),
                }),
                Err(e) => {
                    serde_json::json!({ "archive": name, "ok": false, "error": e.to_string() })
                }
            });
        }
    }
    if json {
        println!(
            "{}",
            serde_json::json!({ "ok": damaged == 0, "archives": results })
        );
    }
    Ok(if damaged == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn verify_one(input: Input, quiet: bool) -> Result<VerifyReport, String> {
    let bar = bar(quiet, input.size);
    bar.set_message(&input.name);
    let generation = input.generation;
    let counted = ProgressReader::new(input.stream, bar);
    let result = codec::decoder(counted)
        .map_err(|e| ArchiveError::from(e).to_string())
        .and_then(|(codec, tar)| {
            // A generation is also checked against its meta.json.
            if let Some(g) = &generation {
                g.check_codec(codec).map_err(|e| e.to_string())?;
            }
            let report = verify_tar(tar, codec).map_err(|e| e.to_string())?;
            if let Some(g) = &generation {
                g.check_end(&(&report).into()).map_err(|e| e.to_string())?;
            }
            Ok(report)
        });
    bar.finish();
    result
}
