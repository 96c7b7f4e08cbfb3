//! The repository format on the local backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::backend::local::LocalBackend;
use crate::backend::{Backend, BackendError, ObjectInfo, Retention};
use crate::check::check;
use crate::chunking::ChunkerParams;
use crate::crypto::{FleetKey, Identity};
use crate::layout;
use crate::prune::{prune, select_keep, Keep};
use crate::push::{push_stream, PushOptions};
use crate::reader::RepoReader;
use crate::repository::{Keys, Repository};
use crate::testing::{meta, ReadOnly};
use rand::{Rng, SeedableRng};
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

const SMALL: ChunkerParams = ChunkerParams {
    min: 4096,
    avg: 16384,
    max: 65536,
};

fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v = vec![0u8; len];
    r.fill(&mut v[..]);
    v
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    repo: Repository,
    fleet: FleetKey,
    recovery: Identity,
}

fn fixture(grace: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let be = LocalBackend::create(&root).unwrap();
    let init = Repository::init(Box::new(be), SMALL, vec![], None, grace, None).unwrap();
    Fixture {
        _dir: dir,
        root,
        repo: init.repo,
        fleet: init.fleet,
        recovery: init.new_recovery.unwrap(),
    }
}

fn host(f: &Fixture) -> Keys {
    Keys {
        fleet: f.fleet.clone(),
        identity: Identity::generate(),
    }
}

fn read_back(repo: &Repository, keys: &Keys, gen: &str) -> std::io::Result<Vec<u8>> {
    let idx = repo
        .read_index(keys, &keys.host_id(), gen)
        .unwrap()
        .unwrap();
    let mut out = Vec::new();
    RepoReader::new(repo, &keys.fleet, &idx, 3).read_to_end(&mut out)?;
    Ok(out)
}

#[test]
fn round_trip_and_dedup_of_an_unchanged_generation() {
    let f = fixture(3600);
    let a = host(&f);
    let stream = data(1, 4 << 20);
    let r1 = push_stream(
        &f.repo,
        &a,
        meta("20261202T100000Z", "a"),
        &stream[..],
        PushOptions::default(),
    )
    .unwrap();
    assert_eq!(r1.stream_bytes, stream.len() as u64);
    assert_eq!(read_back(&f.repo, &a, "20261202T100000Z").unwrap(), stream);
    // The next generation: new manifest at the start, new trailer at the end.
    let mut next = stream.clone();
    next[..200].copy_from_slice(&data(2, 200));
    let n = next.len();
    next[n - 200..].copy_from_slice(&data(3, 200));
    let r2 = push_stream(
        &f.repo,
        &a,
        meta("20261203T100000Z", "a"),
        &next[..],
        PushOptions::default(),
    )
    .unwrap();
    let added = r2.uploaded_bytes + r2.index_bytes;
    let ratio = added as f64 / (r1.uploaded_bytes + r1.index_bytes) as f64;
    assert!(
        ratio < 0.02,
        "second generation added {added} bytes ({:.2}%)",
        ratio * 100.0
    );
    assert_eq!(read_back(&f.repo, &a, "20261203T100000Z").unwrap(), next);
    // The recovery key reads every generation, through the wrapped fleet key.
    let fleet = f.repo.fleet_from_recovery(&f.recovery).unwrap();
    let rk = Keys {
        fleet,
        identity: f.recovery_clone(),
    };
    let idx = f
        .repo
        .read_index(&rk, &a.host_id(), "20261203T100000Z")
        .unwrap()
        .unwrap();
    assert_eq!(idx.secret.host, "a");
    assert!(check(&f.repo, &a, true).unwrap().ok());
}

impl Fixture {
    fn recovery_clone(&self) -> Identity {
        Identity::from_text(&self.recovery.to_text()).unwrap()
    }
}

#[test]
fn two_hosts_share_chunks_but_not_indexes() {
    let f = fixture(3600);
    let (a, b) = (host(&f), host(&f));
    let stream = data(4, 2 << 20);
    let ra = push_stream(
        &f.repo,
        &a,
        meta("20261202T100000Z", "a"),
        &stream[..],
        PushOptions::default(),
    )
    .unwrap();
    let rb = push_stream(
        &f.repo,
        &b,
        meta("20261202T100000Z", "b"),
        &stream[..],
        PushOptions::default(),
    )
    .unwrap();
    assert!(ra.uploaded_chunks > 50);
    assert_eq!(rb.uploaded_chunks, 0, "host b stored again what host a had");
    assert_ne!(a.host_id(), b.host_id());
    // Host b holds the fleet key, but a's index is not encrypted to it.
    assert!(f
        .repo
        .read_index(&b, &a.host_id(), "20261202T100000Z")
        .unwrap()
        .is_none());
    // A different fleet key is refused at once.
    let other = Keys {
        fleet: FleetKey::generate(),
        identity: Identity::generate(),
    };
    assert!(push_stream(
        &f.repo,
        &other,
        meta("20261202T100000Z", "c"),
        &stream[..],
        PushOptions::default()
    )
    .is_err());
    let rep = check(&f.repo, &b, true).unwrap();
    assert!(rep.ok(), "{:?}", rep.damaged);
    assert_eq!(rep.not_readable, 1);
}

fn chunk_files(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for d in std::fs::read_dir(root.join("chunks")).unwrap() {
        for c in std::fs::read_dir(d.unwrap().path()).unwrap() {
            out.push(c.unwrap().path());
        }
    }
    out.sort();
    out
}

#[test]
fn flipped_and_deleted_chunks_are_named() {
    let f = fixture(3600);
    let a = host(&f);
    let stream = data(5, 1 << 20);
    push_stream(
        &f.repo,
        &a,
        meta("20261202T100000Z", "a"),
        &stream[..],
        PushOptions::default(),
    )
    .unwrap();
    let files = chunk_files(&f.root);
    let flipped = &files[0];
    let mut bytes = std::fs::read(flipped).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(flipped, bytes).unwrap();
    let deleted = &files[1];
    std::fs::remove_file(deleted).unwrap();
    let name = |p: &std::path::Path| p.file_name().unwrap().to_string_lossy().into_owned();
    // Without --read-data: the missing chunk only.
    let rep = check(&f.repo, &a, false).unwrap();
    assert_eq!(rep.damaged.len(), 1, "{:?}", rep.damaged);
    assert!(rep.damaged[0].contains(&name(deleted)) && rep.damaged[0].contains("missing"));
    let rep = check(&f.repo, &a, true).unwrap();
    assert_eq!(rep.damaged.len(), 2, "{:?}", rep.damaged);
    assert!(rep
        .damaged
        .iter()
        .any(|d| d.contains(&name(flipped)) && d.contains("does not decrypt")));
    // The reader stops at the first bad chunk and names it.
    let e = read_back(&f.repo, &a, "20261202T100000Z")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&name(flipped)) || e.contains(&name(deleted)),
        "{e}"
    );
}

/// A backend that fails every put after `left` of them (a push killed midway), and runs
/// `before_index` once just before an index is written (a concurrent prune).
struct Faulty {
    inner: LocalBackend,
    left: AtomicUsize,
    before_index: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Backend for Faulty {
    fn put(&self, key: &str, data: &[u8], r: Option<Retention>) -> Result<(), BackendError> {
        if key.ends_with(".index") {
            if let Some(hook) = self.before_index.lock().unwrap().take() {
                hook();
            }
        }
        if self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_err()
        {
            return Err(BackendError::Unreachable {
                endpoint: "test".into(),
                detail: "killed".into(),
            });
        }
        self.inner.put(key, data, r)
    }
    fn get(&self, key: &str) -> Result<Vec<u8>, BackendError> {
        self.inner.get(key)
    }
    fn head(&self, key: &str) -> Result<Option<u64>, BackendError> {
        self.inner.head(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BackendError> {
        self.inner.list(prefix)
    }
    fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.inner.delete(key)
    }
    fn extend_retention(&self, key: &str, r: Retention) -> Result<(), BackendError> {
        self.inner.extend_retention(key, r)
    }
    fn supports_retention(&self) -> Result<bool, BackendError> {
        Ok(false)
    }
    fn describe(&self) -> String {
        "faulty".into()
    }
}

fn faulty(f: &Fixture, left: usize) -> (Repository, Arc<Faulty>) {
    let fb = Arc::new(Faulty {
        inner: LocalBackend::open(&f.root).unwrap(),
        left: AtomicUsize::new(left),
        before_index: Mutex::new(None),
    });
    let repo = Repository {
        backend: fb.clone(),
        config: f.repo.config.clone(),
    };
    (repo, fb)
}

#[test]
fn a_killed_push_leaves_a_consistent_repository() {
    let f = fixture(0);
    let a = host(&f);
    let stream = data(6, 2 << 20);
    let (repo, _) = faulty(&f, 20);
    assert!(push_stream(
        &repo,
        &a,
        meta("20261202T100000Z", "a"),
        &stream[..],
        PushOptions::default()
    )
    .is_err());
    assert!(
        f.repo.indexes().unwrap().is_empty(),
        "a killed push committed"
    );
    assert!(!chunk_files(&f.root).is_empty());
    assert!(check(&f.repo, &a, true).unwrap().ok());
    // Orphans are marked, then removed by the next run past the grace period (0 here).
    let p1 = prune(&f.repo, &f.fleet, Keep::default(), SystemTime::now()).unwrap();
    assert_eq!(p1.marked as usize, chunk_files(&f.root).len());
    let p2 = prune(
        &f.repo,
        &f.fleet,
        Keep::default(),
        SystemTime::now() + Duration::from_secs(1),
    )
    .unwrap();
    assert_eq!(p2.deleted, p1.marked);
    assert!(chunk_files(&f.root).is_empty());
    // A push run again from the start completes.
    let f2 = fixture(3600);
    let (repo, _) = faulty(&f2, 20);
    let a2 = host(&f2);
    assert!(push_stream(
        &repo,
        &a2,
        meta("20261202T100000Z", "a"),
        &stream[..],
        PushOptions::default()
    )
    .is_err());
    let r = push_stream(
        &f2.repo,
        &a2,
        meta("20261202T100000Z", "a"),
        &stream[..],
        PushOptions::default(),
    )
    .unwrap();
    assert!(
        r.uploaded_chunks < r.chunks,
        "the restart uploaded everything again"
    );
    assert_eq!(
        read_back(&f2.repo, &a2, "20261202T100000Z").unwrap(),
        stream
    );
}

#[test]
fn prune_while_another_host_pushes_the_same_chunks() {
    let f = fixture(2);
    let (a, b) = (host(&f), host(&f));
    let stream = data(7, 1 << 20);
    push_stream(
        &f.repo,
        &a,
        meta("20261201T100000Z", "a"),
        &stream[..],
        PushOptions::default(),
    )
    .unwrap();
    push_stream(
        &f.repo,
        &a,
        meta("20261202T100000Z", "a"),
        &data(8, 1 << 20)[..],
        PushOptions::default(),
    )
    .unwrap();
    // Host a forgets its first generation: its chunks are marked.
    let keep1 = Keep {
        last: 1,
        ..Keep::default()
    };
    let marked_at = std::time::Instant::now();
    let p1 = prune(&f.repo, &f.fleet, keep1, SystemTime::now()).unwrap();
    assert_eq!(p1.forgotten.len(), 1);
    assert!(p1.marked > 0);
    // Host b pushes the same content, starting after the mark; just before its index is
    // written, the grace period (2 s) has passed and prune runs its delete phase.
    std::thread::sleep(Duration::from_millis(1500));
    let (repo, fb) = faulty(&f, usize::MAX);
    let (prepo, fleet) = (
        Repository {
            backend: f.repo.backend.clone(),
            config: f.repo.config.clone(),
        },
        f.fleet.clone(),
    );
    let deleted = Arc::new(AtomicUsize::new(usize::MAX));
    let d2 = deleted.clone();
    *fb.before_index.lock().unwrap() = Some(Box::new(move || {
        let ripe = Duration::from_millis(2100);
        std::thread::sleep(ripe.saturating_sub(marked_at.elapsed()));
        let p = prune(&prepo, &fleet, keep1, SystemTime::now()).unwrap();
        d2.store(p.deleted as usize, Ordering::SeqCst);
    }));
    let r = push_stream(
        &repo,
        &b,
        meta("20261202T110000Z", "b"),
        &stream[..],
        PushOptions::default(),
    )
    .unwrap();
    let back = read_back(&f.repo, &b, "20261202T110000Z");
    assert!(
        back.is_ok(),
        "host b's new generation lost chunks to prune: {back:?}"
    );
    assert_eq!(back.unwrap(), stream);
    assert_eq!(
        deleted.load(Ordering::SeqCst),
        0,
        "prune deleted chunks host b had uploaded again"
    );
    assert_eq!(r.reuploaded_marked, r.uploaded_chunks);
    assert!(r.uploaded_chunks > 0);
    assert!(check(&f.repo, &b, true).unwrap().ok());
}

#[test]
fn keep_rules() {
    let ids: Vec<String> = [
        "20261101T010000Z",
        "20261115T010000Z",
        "20261130T010000Z",
        "20261201T010000Z",
        "20261201T020000Z",
        "20261202T010000Z",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let k = select_keep(
        &ids,
        Keep {
            last: 1,
            ..Keep::default()
        },
    );
    assert_eq!(k.len(), 1);
    assert!(k.contains("20261202T010000Z"));
    let k = select_keep(
        &ids,
        Keep {
            daily: 2,
            ..Keep::default()
        },
    );
    assert!(k.contains("20261202T010000Z") && k.contains("20261201T020000Z") && k.len() == 2);
    let k = select_keep(
        &ids,
        Keep {
            monthly: 2,
            ..Keep::default()
        },
    );
    assert!(k.contains("20261202T010000Z") && k.contains("20261130T010000Z") && k.len() == 2);
    // 2026-11-30 is a Monday: its week also holds Dec 1 and 2.
    let k = select_keep(
        &ids,
        Keep {
            weekly: 2,
            ..Keep::default()
        },
    );
    assert!(k.contains("20261202T010000Z") && k.contains("20261115T010000Z") && k.len() == 2);
    assert_eq!(layout::chunk_id_of("chunks/ab/ab"), None);
}

#[test]
fn object_lock_refused_where_the_store_has_none() {
    let dir = tempfile::tempdir().unwrap();
    let be = LocalBackend::create(&dir.path().join("repo")).unwrap();
    let err = Repository::init(Box::new(be), SMALL, vec![], None, 60, Some(7))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("has no S3 Object Lock"), "{err}");
    assert!(!dir.path().join("repo/config").exists());
}

#[test]
fn config_without_object_lock_reads_as_before() {
    let f = fixture(60);
    let raw = std::fs::read_to_string(f.root.join("config")).unwrap();
    assert!(!raw.contains("object_lock_days"), "{raw}");
    assert!(f.repo.config.retention().is_none());
}

#[test]
fn the_restore_journal_is_appended_sealed_and_survives_prune_and_check() {
    use crate::restores;
    use lifeboat_core::store::journal::StepRef;
    use lifeboat_core::store::journal::{request_done, unfinished_plan};
    use lifeboat_core::store::{events, JournalRecord};
    let f = fixture(60);
    let a = host(&f);
    let h = a.host_id();
    let gen = "20261203T090000Z";
    for (g, seed) in [(gen, 11), ("20261204T090000Z", 12)] {
        push_stream(
            &f.repo,
            &a,
            meta(g, "a"),
            &data(seed, 1 << 20)[..],
            PushOptions::default(),
        )
        .unwrap();
    }
    let machine =
        restores::machine_key(Some("7A0C51E2-9D3B-4C8E-B1F6-2E4D8A9C0B17"), None, None).unwrap();
    // Nothing yet: an empty journal; appending nothing writes it (the writability probe).
    assert!(restores::read(&f.repo, &f.fleet, &h, &machine)
        .unwrap()
        .is_empty());
    assert_eq!(
        restores::append(&f.repo, &f.fleet, &h, &machine, &[]).unwrap(),
        0
    );
    let steps = vec![StepRef {
        id: "restore-root".into(),
        device: "/dev/vda1".into(),
    }];
    let started = JournalRecord::new(events::RESTORE_STARTED)
        .generation(gen)
        .target("/dev/vda1")
        .request("20261203-0900-d1s4");
    let plan = JournalRecord::new(events::PLAN_RECORDED)
        .generation(gen)
        .target("/dev/vda")
        .steps(steps.clone());
    for (n, r) in [&started, &plan].into_iter().enumerate() {
        assert_eq!(
            restores::append(&f.repo, &f.fleet, &h, &machine, std::slice::from_ref(r)).unwrap(),
            n + 1
        );
    }
    let back = restores::read(&f.repo, &f.fleet, &h, &machine).unwrap();
    assert_eq!(back, vec![started.clone(), plan.clone()]);
    let p = unfinished_plan(&back).unwrap();
    assert_eq!((p.first_not_done(), p.steps), (0, steps));
    // Another machine has a journal of its own.
    let other = restores::machine_key(None, Some("LB-OTHER"), None).unwrap();
    assert!(restores::read(&f.repo, &f.fleet, &h, &other)
        .unwrap()
        .is_empty());

    // Sealed: the object's name and bytes show no generation, device, request or machine.
    let key = restores::key(&f.fleet, &h, &machine);
    assert!(key.starts_with(&format!("hosts/{h}/restores/")), "{key}");
    assert!(!key.to_ascii_lowercase().contains("7a0c51e2"), "{key}");
    let raw = std::fs::read(f.root.join(&key)).unwrap();
    let text = String::from_utf8_lossy(&raw);
    for plain in [
        gen,
        "20261203-0900-d1s4",
        "/dev/vda",
        "restore-started",
        "7a0c51e2",
    ] {
        assert!(!text.contains(plain), "{plain} in the stored journal");
    }
    // (zstd alone hides those strings too: the bytes must not even decompress without the key.)
    assert!(
        layout::unpack::<serde_json::Value>(&raw, &key).is_err(),
        "the stored journal is not encrypted"
    );

    // Prune (forgetting the generation restored) and check leave it alone.
    let done = JournalRecord::new(events::RESTORE_DONE)
        .generation(gen)
        .request("20261203-0900-d1s4");
    restores::append(&f.repo, &f.fleet, &h, &machine, &[done]).unwrap();
    let report = check(&f.repo, &a, true).unwrap();
    assert!(report.ok(), "{:?}", report.damaged);
    let keep = Keep {
        last: 1,
        ..Keep::default()
    };
    let p = prune(&f.repo, &f.fleet, keep, SystemTime::now()).unwrap();
    assert_eq!(p.forgotten.len(), 1);
    assert!(p.marked > 0);
    assert_eq!(f.repo.indexes().unwrap().len(), 1);
    let back = restores::read(&f.repo, &f.fleet, &h, &machine).unwrap();
    assert!(request_done(&back, "20261203-0900-d1s4").is_some());
    assert!(check(&f.repo, &a, false).unwrap().ok());

    // A read-only credential: read works, the write is refused as Denied.
    let ro = Repository {
        backend: Arc::new(ReadOnly(LocalBackend::open(&f.root).unwrap())),
        config: f.repo.config.clone(),
    };
    assert_eq!(
        restores::read(&ro, &f.fleet, &h, &machine).unwrap().len(),
        3
    );
    let e = restores::append(&ro, &f.fleet, &h, &machine, &[]).unwrap_err();
    assert!(
        matches!(e, crate::RepoError::Backend(BackendError::Denied { .. })),
        "{e:?}"
    );

    // Damaged: one byte flipped, or another fleet key: named, with what to do.
    let mut bad = raw.clone();
    let n = bad.len() / 2;
    bad[n] ^= 0x40;
    std::fs::write(f.root.join(&key), &bad).unwrap();
    for fleet in [&f.fleet, &FleetKey::generate()] {
        let key = restores::key(fleet, &h, &machine);
        if fleet.check_value() != f.fleet.check_value() {
            std::fs::write(f.root.join(&key), &raw).unwrap();
        }
        let e = restores::read(&f.repo, fleet, &h, &machine).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, crate::RepoError::Damaged(_)), "{e:?}");
        assert!(
            msg.contains(&format!("the restore journal {key} is damaged"))
                && msg.contains("remove that object"),
            "{msg}"
        );
        // An append never replaces a journal it cannot read.
        assert!(restores::append(&f.repo, fleet, &h, &machine, &[]).is_err());
    }
}

#[test]
fn the_restore_journal_stays_bounded_and_keeps_resume_and_run_once() {
    use crate::restores;
    use lifeboat_core::store::journal::{request_done, unfinished_plan, StepRef, KEEP_RESTORES};
    use lifeboat_core::store::{events, JournalRecord};
    let f = fixture(60);
    let h = host(&f).host_id();
    let machine = restores::machine_key(None, Some("LB-1"), None).unwrap();
    let key = restores::key(&f.fleet, &h, &machine);
    let steps = vec![StepRef {
        id: "restore-root".into(),
        device: "/dev/vda1".into(),
    }];
    let mut sizes = Vec::new();
    // 60 restores as the image journals them, one append per record; every fifth for an
    // unattended request; the last one cut by a power failure after its plan.
    for n in 0..60 {
        let g = format!("2026120{}T{:02}0000Z", n / 24 % 10, n % 24);
        let request = format!("req-{n}");
        let mut recs = vec![
            JournalRecord::new(events::RESTORE_STARTED).generation(&g),
            JournalRecord::new(events::PLAN_RECORDED)
                .generation(&g)
                .steps(steps.clone()),
        ];
        if n < 59 {
            recs.push(JournalRecord::new(events::STEP_DONE).step("restore-root"));
            let done = JournalRecord::new(events::RESTORE_DONE).generation(&g);
            recs.push(if n % 5 == 0 {
                done.request(&request)
            } else {
                done
            });
        }
        for r in &recs {
            restores::append(&f.repo, &f.fleet, &h, &machine, std::slice::from_ref(r)).unwrap();
        }
        sizes.push(std::fs::metadata(f.root.join(&key)).unwrap().len());
    }
    let back = restores::read(&f.repo, &f.fleet, &h, &machine).unwrap();
    // The last ten restores' records (50 to 59, the last cut after two) and the restore-done
    // of the ten older requests (0, 5, ... 45), no more.
    assert_eq!(back.len(), (KEEP_RESTORES - 1) * 4 + 2 + 10, "{back:#?}");
    // The object stopped growing but for one small record per request.
    let (at_20, last) = (sizes[19], sizes[59]);
    assert!(
        last < at_20 + 2048,
        "{at_20} bytes after 20 restores, {last} after 60"
    );
    // Resume: the interrupted restore reads as unfinished at its first step.
    let p = unfinished_plan(&back).unwrap();
    assert_eq!(p.generation.as_deref(), Some("20261202T110000Z"));
    assert_eq!((p.first_not_done(), p.steps), (0, steps));
    // Run-once: every request done, the first one too, is still done; one never made is not.
    for n in (0..60).step_by(5) {
        assert!(
            request_done(&back, &format!("req-{n}")).is_some(),
            "req-{n}"
        );
    }
    assert!(request_done(&back, "req-1").is_none());
}
