//! Hostile archives that cost the restore memory or time out of proportion to their size
//! (issue 8, items 4 and 5): each is verified and restored in its own process, which must
//! finish within 10 s with a peak RSS under 128 MiB, and verify's verdict must equal the
//! restore's. Before one memory budget per restore, the directory entries were cloned with
//! their xattrs and their paths until the end (a 1.2 MiB archive took 418 MiB).

#![allow(clippy::expect_used, clippy::panic)]

use lifeboat_core::archive::writer::ArchiveWriter;
use lifeboat_core::archive::{Entry, EntryKind, FileFlags, Manifest, Timestamp};
use lifeboat_core::codec::{self, Codec};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(10);
const MAX_RSS_KIB: i64 = 128 * 1024;

fn entry(path: &[u8], kind: EntryKind) -> Entry {
    Entry {
        path: path.to_vec(),
        kind,
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime: Timestamp {
            secs: 1_600_000_000,
            nanos: 0,
        },
        size: 0,
        xattrs: Vec::new(),
        flags: FileFlags::default(),
        checksum: None,
    }
}

/// Writes `entries` (no regular files) as a zstd Lifeboat archive at `out`.
fn write(out: &Path, entries: impl Iterator<Item = Entry>) {
    let file = std::fs::File::create(out).expect("create the archive");
    let enc = codec::encoder(std::io::BufWriter::new(file), Codec::Zstd, Some(1), 2)
        .expect("zstd encoder");
    let mut w = ArchiveWriter::new(enc, &Manifest::default()).expect("writer");
    for e in entries {
        w.append(&e, &mut std::io::empty()).expect("append");
    }
    let (enc, _) = w.finish(Vec::new(), 0).expect("finish");
    let mut inner = enc.finish().expect("finish zstd");
    inner.flush().expect("flush");
}

/// Runs `lbtest-verdict ARGS`; returns its verdict line and peak RSS (KiB), panicking when it
/// runs longer than [`LIMIT`]. (Linux counts the test process's RSS at fork in the child's
/// peak, so the figure can only be too high, never too low.)
#[allow(clippy::zombie_processes)] // reaped by wait4, which also gives its peak memory
fn run(args: &[&std::ffi::OsStr], what: &str) -> (String, i64) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lbtest-verdict"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run lbtest-verdict");
    let pid = child.id() as libc::pid_t;
    let start = Instant::now();
    // SAFETY: zeroed rusage is a valid out value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let mut status = 0;
    loop {
        // SAFETY: pid is our child; status and ru are valid out pointers.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            break;
        }
        assert!(r == 0, "wait4: {}", std::io::Error::last_os_error());
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("{what}: still running after {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut out)
        .expect("read the verdict");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{what}: lbtest-verdict failed ({status}): {out}"
    );
    eprintln!(
        "{what}: {:.2} s, peak RSS {} KiB: {}",
        start.elapsed().as_secs_f64(),
        ru.ru_maxrss,
        out.chars().take(300).collect::<String>().trim()
    );
    (out.trim().to_string(), ru.ru_maxrss)
}

/// Verifies and restores `archive`: both within the limits, with the same verdict.
fn check(name: &str, archive: &Path, tmp: &Path) -> bool {
    let target = tmp.join(format!("{name}-target"));
    std::fs::create_dir(&target).expect("target");
    let (v, v_rss) = run(
        &["verify".as_ref(), archive.as_os_str()],
        &format!("{name}: verify"),
    );
    let (r, r_rss) = run(
        &["restore".as_ref(), archive.as_os_str(), target.as_os_str()],
        &format!("{name}: restore"),
    );
    assert!(v_rss < MAX_RSS_KIB, "{name}: verify peaked at {v_rss} KiB");
    assert!(r_rss < MAX_RSS_KIB, "{name}: restore peaked at {r_rss} KiB");
    assert_eq!(
        v == "ok",
        r == "ok",
        "{name}: verify said {v:?}, the restore {r:?}"
    );
    let _ = std::fs::remove_dir_all(&target);
    v == "ok"
}

/// The cases run one after the other (not as parallel tests): each process's time is its own.
#[test]
fn hostile_archives_stay_within_time_and_memory() {
    let tmp = tempfile::tempdir().expect("tempdir");

    // 300 directories with 900 KiB of xattrs each: 270 MB of directory metadata, refused
    // past the budget (the restore took 282 MiB before).
    let value = vec![b'x'; 900 << 10];
    let archive = tmp.path().join("xattr-dirs.tar.zst");
    write(
        &archive,
        std::iter::once(entry(b".", EntryKind::Dir)).chain((0..300).map(|i| {
            let mut e = entry(format!("d{i}").as_bytes(), EntryKind::Dir);
            e.xattrs = vec![(b"user.big".to_vec(), value.clone())];
            e
        })),
    );
    assert!(
        !check("xattr-dirs", &archive, tmp.path()),
        "accepted past the budget"
    );

    // 720 levels of 255-byte names: paths up to 184 KB, whose copies per directory took
    // O(depth²) memory (190 MiB for 800 levels before).
    let name = vec![b'n'; 255];
    let archive = tmp.path().join("deep-long.tar.zst");
    write(
        &archive,
        (1..=720).map(|depth| entry(&vec![name.as_slice(); depth].join(&b'/'), EntryKind::Dir)),
    );
    assert!(check("deep-long", &archive, tmp.path()), "refused");

    // One directory listed 24,000 times with 2 KiB of xattrs: held once.
    let value = vec![b'x'; 2 << 10];
    let archive = tmp.path().join("same-dir.tar.zst");
    write(
        &archive,
        (0..24_000).map(|_| {
            let mut e = entry(b"d", EntryKind::Dir);
            e.xattrs = vec![(b"user.x".to_vec(), value.clone())];
            e
        }),
    );
    assert!(check("same-dir", &archive, tmp.path()), "refused");
}
