//! The restore: verify first (nothing is written before its verdict), compute core's plan again
//! with what the verified backup holds, show it, ask (or take `lifeboat.yes`), consent for
//! another machine, then run it step by step (`crate::execute`) between the journal's
//! `restore-started` and `restore-done`.

use crate::cmdline::Options;
use crate::console::{flush_input, read_line, say};
use crate::discover::{self, Backup, BackupKind, Discovery};
use crate::execute::{self, Executor};
use crate::mkfs;
use crate::mounts;
use crate::probe::BlockDev;
use crate::progress_line::LineProgress;
use crate::store_view;
use anyhow::{anyhow, Context, Result};
use lifeboat_core::archive::verify::SmallFiles;
use lifeboat_core::plan::{self, BackupKind as PlanKind, Plan, SystemFiles};
use lifeboat_core::progress::human_bytes;
use lifeboat_core::progress::Progress;
use lifeboat_core::store::journal::unfinished_plan;
use lifeboat_core::store::{events, JournalRecord};
use std::time::Duration;

pub fn describe_dev(d: &BlockDev) -> String {
    let mut s = format!("{} ({}", d.dev_path(), human_bytes(d.size));
    if let Some(l) = d.label() {
        s.push_str(&format!(", label {l}"));
    }
    if !d.fstype().is_empty() {
        s.push_str(&format!(", {}", d.fstype()));
    }
    s.push(')');
    s
}

pub fn describe_disk(devs: &[BlockDev], disk: &str) -> String {
    match devs.iter().find(|d| d.name == disk) {
        Some(d) => format!(
            "disk /dev/{disk}: model {}, serial {}, {}{}",
            d.model.as_deref().unwrap_or("unknown"),
            d.serial.as_deref().unwrap_or("unknown"),
            human_bytes(d.size),
            if d.removable { ", removable" } else { "" }
        ),
        None => format!("disk /dev/{disk}"),
    }
}

/// The screen lines of a failed restore or verify: what was not done and what to do, then
/// every cause down to the first (the device, the program, the kernel's error).
pub fn failure_lines(title: &str, e: &anyhow::Error) -> Vec<String> {
    let mut out = vec![format!("{title}: {e}")];
    out.extend(e.chain().skip(1).map(|c| format!("  because: {c}")));
    out
}

/// Asks for an explicit "yes" on any console. `false` on anything else.
pub fn ask_yes(question: &str) -> bool {
    flush_input();
    say(question);
    say("Type yes and press Enter to continue, anything else to go back:");
    matches!(read_line(None), Some((l, _)) if l.eq_ignore_ascii_case("yes"))
}

/// How confirmations are obtained.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    /// Ask on the consoles.
    Ask,
    /// `lifeboat.yes`: the restore itself is confirmed; an identity mismatch still needs
    /// `lifeboat.allow-other-host`.
    Unattended,
}

/// Reads the whole backup and checks it. Nothing is written anywhere.
/// For a Lifeboat generation, the files `files` names are kept as they are read.
pub fn verify(b: &Backup, files: &mut SmallFiles) -> Result<String> {
    match &b.kind {
        BackupKind::Lifeboat { archive, .. } => {
            say(&format!(
                "Verifying {} (every checksum, the trailer) ...",
                archive.display()
            ));
            let p = LineProgress::new("verify");
            p.set_total(Some(b.size));
            let r = store_view::verify(store_view::Source::File(archive), &p, files);
            p.finish();
            r
        }
        BackupKind::Repo {
            session, remote, ..
        } => {
            say(&format!(
                "Verifying generation {} from {} (every chunk fetched and checked, every checksum, the trailer; nothing is written) ...",
                remote.id, session.url
            ));
            let p = LineProgress::new("verify");
            p.set_total(Some(b.size));
            let src = store_view::Source::Repo {
                session,
                generation: remote,
            };
            let r = store_view::verify(src, &p, files);
            p.finish();
            r
        }
        BackupKind::XenTree { inventory } => {
            for f in ["etc/xensource-inventory", "etc/fstab"] {
                if !b.mount.join(f).exists() {
                    return Err(anyhow!(
                        "{} has no {f}: it is not a complete XenServer backup",
                        b.device.dev_path()
                    ));
                }
            }
            Ok(format!(
                "XenServer backup partition {} with product {} (installation {}); XenServer trees carry no checksums",
                b.device.dev_path(),
                b.product_version,
                inventory.get("INSTALLATION_UUID").map(String::as_str).unwrap_or("unknown")
            ))
        }
    }
}

/// The waits before the further tries of a `restore-done` write to the repository (each try
/// is the backend's own retried request): run-once of an unattended request rests on that one
/// record, so a network drop of some seconds at the end of a restore must not lose it.
const DONE_RETRY_WAITS: [Duration; 3] = [
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
];

/// Runs `write` until it succeeds, waiting `waits[i]` (with `sleep`) before try `i + 2`, and
/// saying so; the last error, with the number of tries, when every try failed.
fn with_retries(
    waits: &[Duration],
    mut sleep: impl FnMut(Duration),
    mut write: impl FnMut() -> Result<()>,
) -> Result<()> {
    let mut tries = 1;
    loop {
        let e = match write() {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let Some(&wait) = waits.get(tries - 1) else {
            return Err(e.context(format!("{tries} tries failed")));
        };
        say(&format!(
            "The restore journal was not written ({e:#}): trying again in {} s ...",
            wait.as_secs()
        ));
        sleep(wait);
        tries += 1;
    }
}

/// Appends `rec` (with the backup's journal id: the generation, or `xenserver-tree@<time>`)
/// to the journal of the partition holding `b` (the store's; a XenServer backup partition's
/// `lost+found/lifeboat-journal`), remounting it read-write for the write, or to this machine's
/// restore journal in the repository. Whether it was written: a partition's journal that fails
/// is a warning; the repository's, once refused, is not tried again in this boot, and the
/// restore goes on without resume.
fn journal(b: &Backup, rec: JournalRecord) -> bool {
    let event = rec.event.clone();
    let rec = rec.generation(&b.journal_id());
    if let BackupKind::Repo { session, .. } = &b.kind {
        if session.journal_off().is_some() {
            return false;
        }
        let r = if event == events::RESTORE_DONE {
            with_retries(&DONE_RETRY_WAITS, std::thread::sleep, || {
                b.append_journal(&rec)
            })
        } else {
            b.append_journal(&rec)
        };
        return match r {
            Ok(()) => true,
            Err(e) => {
                say(&format!(
                    "RESTORE JOURNAL NOT WRITTEN (\"{event}\"): {e:#}."
                ));
                if event == events::RESTORE_DONE {
                    say("The restore is complete, but the journal does not say so: an unattended lifeboat.request= entry would restore again at its next boot. Remove that boot entry (or make a new medium with `lifeboat mkrescue`) before booting it again.");
                } else {
                    say("No journal: an interrupted restore starts again from its first step.");
                }
                session.stop_journal(format!("{e:#}"));
                false
            }
        };
    }
    let r = mounts::remount(&b.mount, false).and_then(|()| b.append_journal(&rec));
    let _ = mounts::syncfs(&b.mount);
    let _ = mounts::remount(&b.mount, true);
    if let Err(e) = r {
        say(&format!(
            "Warning: could not write \"{event}\" to the restore journal on {}: {e:#}",
            b.device.dev_path()
        ));
        return false;
    }
    true
}

/// A journal record of `event` for the restore onto `target`, with the unattended request.
fn record(event: &str, target: &str, opts: &Options) -> JournalRecord {
    let r = JournalRecord::new(event).target(target);
    match opts.request.as_deref() {
        Some(q) => r.request(q),
        None => r,
    }
}

/// Where the run of `plan` starts: after the steps an unfinished run of the same plan recorded
/// as done in the restore journal of the partition holding `b` (None: from the first step,
/// recording the plan first). An unfinished plan of the same backup that differs from this one
/// is refused, unless `lifeboat.restart-plan` is set.
fn resume_point(b: &Backup, plan: &Plan, opts: &Options, nothing: &str) -> Result<Option<usize>> {
    let generation = b.journal_id();
    let recorded = match b.journal_records() {
        Ok(r) => match unfinished_plan(&r) {
            Some(p) => p,
            None => return Ok(None),
        },
        Err(e) => {
            say(&format!(
                "Warning: the restore journal cannot be read ({e:#}): the plan runs from its first step"
            ));
            return Ok(None);
        }
    };
    if recorded.generation.as_deref() != Some(generation.as_str()) {
        say(&format!(
            "The unfinished restore in the journal was of {}: this restore of {generation} runs from its first step.",
            recorded.generation.as_deref().unwrap_or("(unknown)")
        ));
        return Ok(None);
    }
    match plan.resume_at(&recorded) {
        Ok(k) => {
            let n = plan.steps.len();
            match plan.steps.get(k) {
                Some(s) => say(&format!(
                    "Resuming at step {}/{n} ({} on {}): {} records step{} before it as done.",
                    k + 1,
                    s.id,
                    s.device,
                    b.journal_place(),
                    if k == 1 { "" } else { "s" }
                )),
                None => say(&format!(
                    "Resuming at step {}/{n}: {} records every step as done; only the end is recorded.",
                    n,
                    b.journal_place()
                )),
            }
            Ok(Some(k))
        }
        Err(e) if opts.restart_plan => {
            say(&format!(
                "{e}. lifeboat.restart-plan is set: the plan runs from its first step."
            ));
            Ok(None)
        }
        Err(e) => Err(anyhow!(
            "refused: {e}. The disks are not as the interrupted restore left them, so its finished steps cannot be trusted. {nothing}. Check the disks, then boot with lifeboat.restart-plan to run the plan computed now from its first step"
        )),
    }
}

/// The whole restore of `b`. Returns a summary on success; every error says what was touched.
pub fn restore(b: &Backup, d: &Discovery, opts: &Options, confirm: Confirm) -> Result<String> {
    let nothing = match &b.plan {
        Ok(p) => format!("Nothing was written to {}", p.root_device),
        Err(_) => "Nothing was written".to_string(),
    };
    say("");
    say(&format!(
        "Restore {} backup of {} taken {}",
        b.kind_name(),
        b.host,
        b.time
    ));
    match &b.kind {
        BackupKind::Repo { session, .. } => say(&format!("  from the repository {}", session.url)),
        _ => say(&format!("  from {}", describe_dev(&b.device))),
    }

    // 1. Verify: nothing destructive before this succeeds.
    // A backup without a recorded identity takes it from its own fstab and grub.cfg (as
    // XenServer's installer does), collected while it is verified.
    let mut files = SmallFiles::new(&SystemFiles::PATHS);
    let summary = verify(b, &mut files).with_context(|| {
        format!(
            "the backup failed verification. {nothing}. Choose another generation, or run `lifeboat verify` on the host to find the damage"
        )
    })?;
    say(&format!("Verified: {summary}"));

    // 2. The plan, again: a staged `xe host-backup` generation takes its identity from its own
    // fstab and grub.cfg, read during verification.
    let mut facts = b.facts.clone();
    if facts.kind == PlanKind::PlainTar {
        facts.system_files = Some(SystemFiles::read(|p| files.text(p)));
    }
    let plan: Plan = discover::plan_for(&facts, &d.facts, opts, b.interrupted)
        .map_err(|e| anyhow!("refused: {e}"))
        .with_context(|| format!("{nothing}."))?;
    say("");
    for l in plan::render(&plan) {
        say(&l);
    }
    let nothing = format!("nothing was written to {}", plan.target_disk.dev_path);
    say(&format!("LIFEBOAT-PLAN {}", plan_json(&plan)));
    let resume = resume_point(b, &plan, opts, &nothing)?;

    // 3. Another machine or disk: explicit consent.
    if plan.needs_consent {
        say("");
        say("WARNING: this backup was taken on another machine or disk:");
        for m in &plan.identity_mismatches {
            say(&format!("  - {m}"));
        }
        say("Restoring a host's root onto another machine clones its identity: two hosts with the");
        say("same installation and control-domain UUIDs in one pool corrupt the pool database, and the");
        say("wrong disk may be overwritten. Restore onto other hardware only to replace the original.");
        if opts.allow_other_host {
            say("lifeboat.allow-other-host is set: continuing.");
        } else if confirm == Confirm::Unattended {
            return Err(anyhow!(
                "refused: identity mismatch and no lifeboat.allow-other-host on the kernel command line. Nothing was written to {}.",
                plan.root_device
            ));
        } else if !ask_yes("Restore onto this machine anyway?") {
            return Err(anyhow!("cancelled: {nothing}"));
        }
    }

    // 4. Confirmation, naming what is destroyed.
    if confirm == Confirm::Ask {
        let lost = execute::destroyed(&plan);
        let question = if lost.is_empty() {
            format!("The steps above will write {}.", plan.target_disk.dev_path)
        } else {
            format!(
                "These will be ERASED and replaced by this backup:\n  {}",
                lost.join("\n  ")
            )
        };
        if !ask_yes(&question) {
            return Err(anyhow!("cancelled: {nothing}"));
        }
    }

    // The programs the restore runs, found before anything is written.
    let tools = mkfs::ext_tools().with_context(|| nothing.clone())?;

    // 5. Journal the start (the next boot of this image finishes an interrupted restore) and
    // the plan's steps, each one as it is done: an interrupted plan resumes at the first step
    // not done. From here to "restore-done", Ctrl-Alt-Del is ignored.
    let _busy = crate::power::Busy::start();
    let started = journal(
        b,
        record(events::RESTORE_STARTED, &plan.root_device, opts).detail(&match resume {
            Some(k) => format!("resuming at step {}", k + 1),
            None => "from the first step".into(),
        }),
    );
    if let (false, BackupKind::Repo { .. }, Some(request)) = (started, &b.kind, &opts.request) {
        // Run-once is the journal's record of the request: without it this entry would
        // restore again at every boot.
        return Err(anyhow!(
            "refused: lifeboat.request={request} runs only with a restore journal, and the repository's could not be written. {nothing}"
        ));
    }
    if resume.is_none() {
        journal(
            b,
            record(events::PLAN_RECORDED, &plan.target_disk.dev_path, opts).steps(plan.step_refs()),
        );
    }
    let mut run = Executor::new(&plan, b, &tools);
    run.run_from(resume.unwrap_or(0), |s| {
        journal(b, JournalRecord::new(events::STEP_DONE).step(&s.id));
    })?;
    if started {
        say(&format!(
            "Recording restore-done in {} ...",
            b.journal_place()
        ));
    }
    journal(b, record(events::RESTORE_DONE, &plan.root_device, opts));
    Ok(format!(
        "Restored {} onto {}: {}",
        b.host,
        plan.root_device,
        run.report.as_deref().unwrap_or("done")
    ))
}

/// The plan as one line of JSON (what `lifeboat plan --json` prints for it), for a test or a
/// log reader to compare with the dry run.
fn plan_json(plan: &Plan) -> String {
    plan.public_json().to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_chain_reaches_the_screen() {
        let e = mounts::unmount(std::path::Path::new("/nonexistent/lifeboat-test"))
            .context("the restored root may not be fully written; restore again")
            .unwrap_err();
        let lines = failure_lines("RESTORE NOT DONE", &e);
        assert_eq!(
            lines[0],
            "RESTORE NOT DONE: the restored root may not be fully written; restore again"
        );
        assert_eq!(
            lines[1],
            "  because: cannot unmount /nonexistent/lifeboat-test"
        );
        assert!(lines[2].starts_with("  because: ENOENT"), "{lines:?}");
    }

    #[test]
    fn a_failed_journal_write_is_tried_again_after_waits_then_given_up() {
        let waits = [Duration::from_secs(2), Duration::from_secs(5)];
        // A drop of two tries: the third writes it.
        let (mut slept, mut tries) = (Vec::new(), 0);
        let r = with_retries(
            &waits,
            |d| slept.push(d),
            || {
                tries += 1;
                if tries < 3 {
                    Err(anyhow!("connection reset"))
                } else {
                    Ok(())
                }
            },
        );
        assert!(r.is_ok());
        assert_eq!((tries, slept), (3, waits.to_vec()));
        // Down for good: every try made, the last error told with their number.
        let (mut slept, mut tries) = (Vec::new(), 0);
        let e = with_retries(
            &waits,
            |d| slept.push(d),
            || {
                tries += 1;
                Err(anyhow!("connection refused"))
            },
        )
        .unwrap_err();
        assert_eq!((tries, slept), (3, waits.to_vec()));
        assert_eq!(format!("{e:#}"), "3 tries failed: connection refused");
        // Written at once: no wait.
        let mut slept = Vec::new();
        assert!(with_retries(&waits, |d| slept.push(d), || Ok(())).is_ok());
        assert!(slept.is_empty());
    }
}
