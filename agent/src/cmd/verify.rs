//! `lifeboat verify [GEN | file-name=F]`: decompresses an archive and checks every checksum,
//! the manifest and the trailer; without GEN, every generation of the store. Exit 0: sound;
//! 1: damage found (the first damaged path is named; a generation that does not read as what
//! its meta.json records, or as no archive at all, is damaged too); 2: could not be read at
//! all, or a file that is not a Lifeboat or tar archive (a directory, random bytes).
//! A generation is read the one way every consumer reads it (see [`decode`]).

use super::common::{
    decode, open_file, open_generation, open_store, Decoded, GenerationRefused, Input, NotAnArchive,
};
use crate::cli::{ArchiveArgs, VerifyArgs};
use crate::ui::Bar;
use anyhow::{bail, Result};
use lifeboat_core::archive::verify::{verify_reader, VerifyReport};
use lifeboat_core::progress::Progress;
use std::process::ExitCode;

pub fn run(args: VerifyArgs, quiet: bool) -> Result<ExitCode> {
    let VerifyArgs {
        archive:
            ArchiveArgs {
                generation,
                file_name,
                device,
                repo,
            },
        json,
        remote: _,
    } = args;
    // The store stays mounted (read-only) while its generations are read.
    let store;
    let inputs: Box<dyn Iterator<Item = Result<Item>>> = if repo.repo.is_some() {
        if file_name.is_some() {
            bail!("give either --repo or file-name=F, not both");
        }
        let ids = match generation {
            Some(g) => vec![g],
            None => super::repo::all_generations(&repo)?,
        };
        Box::new(ids.into_iter().map(|g| Ok(Item::Repo(g))))
    } else {
        let inputs: Box<dyn Iterator<Item = Result<Input>>> =
            match (generation.as_deref(), file_name.as_deref()) {
                (Some(_), Some(_)) => bail!("give either a generation or file-name=F, not both"),
                (None, Some(f)) => Box::new(std::iter::once_with(|| open_file(f))),
                (gen, None) => {
                    store = open_store(device.backup_device.as_deref())?;
                    let ids: Vec<String> = match gen {
                        Some(g) => vec![store.store.find(g)?.id],
                        None => store
                            .store
                            .generations()?
                            .into_iter()
                            .map(|g| g.id)
                            .collect(),
                    };
                    if ids.is_empty() {
                        bail!(
                            "the store on {} holds no generation to verify",
                            store.device
                        );
                    }
                    let st = &store;
                    Box::new(
                        ids.into_iter()
                            .map(move |id| open_generation(&st.store, &st.device, &id)),
                    )
                }
            };
        Box::new(inputs.map(|i| i.map(Item::Local)))
    };
    let mut damaged = 0;
    let mut not_archives = 0;
    // For the repository's record of this verification (`repo hosts`).
    let (mut checked_ids, mut damaged_ids) = (Vec::new(), Vec::new());
    let mut results = Vec::new();
    for input in inputs {
        let (name, verdict) = match input? {
            Item::Local(input) => (input.name.clone(), verify_one(input, quiet || json)),
            Item::Repo(gen) => {
                let (name, verdict) = verify_repo_one(&repo, &gen, quiet || json);
                checked_ids.push(gen.clone());
                // The pool database member, checked against the index's record.
                let verdict = verdict.and_then(|r| {
                    super::repo::check_pool_database(&repo, &gen)
                        .map(|()| r)
                        .map_err(|e| Verdict::Damaged(format!("{e:#}")))
                });
                if verdict.is_err() {
                    damaged_ids.push(gen.clone());
                }
                (name, verdict)
            }
        };
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
            Err(Verdict::NotAnArchive(e)) => {
                not_archives += 1;
                if !json {
                    eprintln!("lifeboat: error: {e}");
                }
            }
            Err(Verdict::Damaged(e)) => {
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
                Err(Verdict::NotAnArchive(e)) => serde_json::json!({
                    "archive": name, "ok": false, "not_an_archive": true, "error": e.to_string(),
                }),
                Err(Verdict::Damaged(e)) => {
                    serde_json::json!({ "archive": name, "ok": false, "error": e })
                }
            });
        }
    }
    if repo.repo.is_some() && !checked_ids.is_empty() {
        // The verdict stands without the record (a read-only key, say): said, not fatal.
        if let Err(e) = super::repo::record_verification(&repo, checked_ids, damaged_ids) {
            eprintln!("lifeboat: warning: {e:#}");
        }
    }
    if json {
        println!(
            "{}",
            serde_json::json!({ "ok": damaged + not_archives == 0, "archives": results })
        );
    }
    Ok(if not_archives > 0 {
        ExitCode::from(2)
    } else if damaged > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// What `verify` reads: an archive of the backup partition or a file, or a generation of a
/// repository.
enum Item {
    Local(Input),
    Repo(String),
}

/// A repository's generation through core's one verify loop ([`check`]): the tar stream
/// reassembled (every chunk's tag and id checked), against the meta.json its index records.
fn verify_repo_one(
    repo: &crate::cli::RepoArgs,
    gen: &str,
    quiet: bool,
) -> (String, Result<VerifyReport, Verdict>) {
    match super::repo::open_decoded(repo, gen, quiet) {
        Ok((d, bar)) => {
            let name = d.name.clone();
            let r = check(d, false);
            bar.finish();
            (name, r)
        }
        Err(e) => (
            format!("generation {gen}"),
            Err(Verdict::Damaged(
                match e.downcast_ref::<GenerationRefused>() {
                    Some(g) => g.to_string(),
                    None => format!("{e:#}"),
                },
            )),
        ),
    }
}

/// Why an archive did not verify.
enum Verdict {
    /// A file that is not a Lifeboat or tar archive at all (exit status 2).
    NotAnArchive(NotAnArchive),
    /// Damage found (exit status 1).
    Damaged(String),
}

fn verify_one(input: Input, quiet: bool) -> Result<VerifyReport, Verdict> {
    let bar = Bar::leaked(quiet, input.size);
    bar.set_message(&input.name);
    let result = match decode(input, bar) {
        Ok(d) => check(d, true),
        Err(e) => Err(match e.downcast::<NotAnArchive>() {
            Ok(n) => Verdict::NotAnArchive(n),
            // A generation that does not open as its meta.json records (no archive at all,
            // another codec, another manifest) is damage at rest, like any other.
            Err(e) => Verdict::Damaged(match e.downcast_ref::<GenerationRefused>() {
                Some(g) => g.to_string(),
                None => e.root_cause().to_string(),
            }),
        }),
    };
    bar.finish();
    result
}

/// Core's one verify loop over an opened archive; a generation is also checked against its
/// meta.json at the end (counts, trailer digest), as at its start by [`decode`].
fn check(mut d: Decoded, local: bool) -> Result<VerifyReport, Verdict> {
    let damaged = |e: &dyn std::fmt::Display| Verdict::Damaged(e.to_string());
    let report = verify_reader(&mut d.reader, d.codec, &mut |_| {}).map_err(|e| damaged(&e))?;
    if let Some(g) = &d.generation {
        g.check_end(&(&report).into()).map_err(|e| damaged(&e))?;
        // A local generation's pool database member (a repository's is checked by the
        // caller: its Generation has no directory here).
        if local {
            g.read_pool_database().map_err(|e| damaged(&e))?;
        }
    }
    Ok(report)
}
