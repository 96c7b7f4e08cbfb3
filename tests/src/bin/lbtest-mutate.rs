//! `lbtest-mutate SEED FIRST COUNT WORKDIR`: runs mutation cases FIRST..FIRST+COUNT of SEED
//! (see `lifeboat_tests::mutation`), one line per case: `start I` before it, then `ok I ...`
//! or `FAIL I ...`; at the end `maxrss KIB` (this process's peak). Exit 1 when a case failed.
//! The driver (`tests/tests/mutation.rs`) bounds each case's time and the memory.

use anyhow::{bail, Context, Result};
use lifeboat_tests::mutation::{base_archives, make_case, run_case};
use std::io::Write;
use std::path::PathBuf;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [seed, first, count, work] = args.as_slice() else {
        bail!("usage: lbtest-mutate SEED FIRST COUNT WORKDIR");
    };
    let seed: u64 = seed.parse().context("SEED")?;
    let first: u64 = first.parse().context("FIRST")?;
    let count: u64 = count.parse().context("COUNT")?;
    let work = PathBuf::from(work);
    std::fs::create_dir_all(&work)?;
    let bases = base_archives(&work, seed)?;
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for i in first..first + count {
        let case = make_case(&bases, seed, i)?;
        writeln!(out, "start {i} {} {}", case.codec.name(), case.what)?;
        out.flush()?;
        let o = run_case(&case, &work)?;
        let verdict = |r: &Result<(), String>| match r {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("error ({e})"),
        };
        if o.failures.is_empty() {
            writeln!(
                out,
                "ok {i} verify={} restore={}",
                match (&o.verify, o.plain) {
                    (Ok(()), false) => "ok",
                    (Ok(()), true) => "ok-plain-tar",
                    (Err(_), _) => "error",
                },
                if o.restore.is_ok() { "ok" } else { "error" }
            )?;
        } else {
            failed += 1;
            writeln!(
                out,
                "FAIL {i} [{} {}]: {} | verify: {} | restore: {}",
                case.codec.name(),
                case.what,
                o.failures.join("; "),
                verdict(&o.verify),
                verdict(&o.restore)
            )?;
        }
        out.flush()?;
    }
    // SAFETY: getrusage fills the struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    writeln!(out, "maxrss {}", ru.ru_maxrss)?;
    out.flush()?;
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}
