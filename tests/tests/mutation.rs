//! The mutation test (issue 8): real archives mutated in their structure and bytes, in every
//! codec, each verified and restored by the core engine (see `lifeboat_tests::mutation`). The
//! cases run in `lbtest-mutate` worker processes so that a panic, a hang or a runaway
//! allocation is seen and named, not fatal to the test harness:
//! - no panic: a worker that dies names the case it was running;
//! - no hang: each case must finish within [`CASE_SECONDS`];
//! - bounded memory: each worker's peak RSS stays under [`MAX_RSS_KIB`] (and its address space
//!   is capped so that a bomb fails fast instead of swapping the machine);
//! - nothing written outside the target, and verify's verdict equals restore's (checked by the
//!   worker for each case).
//!
//! `LIFEBOAT_MUTATIONS=N` sets the number of cases (default 2000), `LIFEBOAT_MUTATION_SEED=S`
//! replays a seed (printed at the start); one case alone: `lbtest-mutate S I 1 DIR`.

#![allow(clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEFAULT_CASES: u64 = 2000;
const WORKERS: u64 = 2;
/// Longest a single case may take (verify and restore of a small archive).
const CASE_SECONDS: u64 = 10;
/// Peak resident memory a worker may reach.
const MAX_RSS_KIB: u64 = 128 * 1024;
/// Address space a worker may map.
const MAX_AS_BYTES: u64 = 2 << 30;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

struct Worker {
    child: Child,
    /// The case running and since when.
    current: Option<(String, Instant)>,
    maxrss: Option<u64>,
    done: bool,
}

fn spawn(seed: u64, first: u64, count: u64, work: &std::path::Path) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lbtest-mutate"));
    cmd.arg(seed.to_string())
        .arg(first.to_string())
        .arg(count.to_string())
        .arg(work)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: MAX_AS_BYTES,
                rlim_max: MAX_AS_BYTES,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

#[test]
fn mutated_archives_verify_as_they_restore() {
    let seed = env_u64("LIFEBOAT_MUTATION_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let cases = env_u64("LIFEBOAT_MUTATIONS").unwrap_or(DEFAULT_CASES);
    eprintln!(
        "mutation test: seed {seed}, {cases} cases (replay: LIFEBOAT_MUTATION_SEED={seed} LIFEBOAT_MUTATIONS={cases})"
    );
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let (tx, rx) = mpsc::channel::<(usize, Option<String>)>();
    let mut workers = Vec::new();
    let per = cases.div_ceil(WORKERS);
    for w in 0..WORKERS {
        let first = w * per;
        let count = per.min(cases.saturating_sub(first));
        let mut child = spawn(seed, first, count, &tmp.path().join(format!("w{w}")))
            .expect("cannot run lbtest-mutate");
        let out = child.stdout.take().expect("piped stdout");
        let tx = tx.clone();
        let id = workers.len();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send((id, Some(line))).is_err() {
                    return;
                }
            }
            let _ = tx.send((id, None));
        });
        workers.push(Worker {
            child,
            current: None,
            maxrss: None,
            done: false,
        });
    }
    drop(tx);
    let mut failures = Vec::new();
    let mut ran = 0u64;
    let (mut verified, mut plain, mut refused) = (0u64, 0u64, 0u64);
    while workers.iter().any(|w| !w.done) {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok((id, Some(line))) => {
                let w = &mut workers[id];
                if let Some(rest) = line.strip_prefix("start ") {
                    w.current = Some((rest.to_string(), Instant::now()));
                } else if let Some(kib) = line.strip_prefix("maxrss ") {
                    w.maxrss = kib.trim().parse().ok();
                } else {
                    w.current = None;
                    ran += 1;
                    if line.starts_with("FAIL") {
                        failures.push(line);
                    } else if line.contains("verify=ok-plain-tar") {
                        plain += 1;
                    } else if line.contains("verify=ok") {
                        verified += 1;
                    } else {
                        refused += 1;
                    }
                }
            }
            Ok((id, None)) => workers[id].done = true,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        for w in &mut workers {
            if let Some((case, since)) = &w.current {
                if since.elapsed() > Duration::from_secs(CASE_SECONDS) {
                    let case = case.clone();
                    for w in &mut workers {
                        let _ = w.child.kill();
                        let _ = w.child.wait();
                    }
                    panic!(
                        "case {case} did not finish within {CASE_SECONDS} s (a hang); seed {seed}"
                    );
                }
            }
        }
    }
    for w in &mut workers {
        let status = w.child.wait().expect("wait for lbtest-mutate");
        let mut err = String::new();
        if let Some(mut e) = w.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        if let Some((case, _)) = &w.current {
            panic!(
                "the worker died ({status}) during case {case}; seed {seed}:\n{}",
                err.chars().take(4000).collect::<String>()
            );
        }
        match w.maxrss {
            Some(kib) => assert!(
                kib < MAX_RSS_KIB,
                "a worker's peak RSS was {kib} KiB (limit {MAX_RSS_KIB}); seed {seed}"
            ),
            None => panic!("a worker ended ({status}) without a report; seed {seed}:\n{err}"),
        }
    }
    eprintln!(
        "mutation test: {ran} cases, {verified} verified and restored, {plain} read as plain tar and restored, {refused} refused by both; peak RSS {:?} KiB",
        workers.iter().map(|w| w.maxrss).collect::<Vec<_>>()
    );
    assert_eq!(ran, cases, "not every case ran; seed {seed}");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases broke a promise (seed {seed}):\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
