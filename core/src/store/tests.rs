#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;
use std::io::Write;

fn meta(host: &str) -> GenerationMeta {
    GenerationMeta {
        id: String::new(),
        created: clock::now_rfc3339(),
        committed: String::new(),
        origin: Origin::Backup,
        host: host.into(),
        product_version: Some("8.2.1".into()),
        size: 3,
        files: 1,
        entries: 2,
        bytes: 3,
        codec: "zstd".into(),
        archive: String::new(),
        state: GenerationState::Verified,
        changed_files: Vec::new(),
        manifest: None,
    }
}

fn write_generation(store: &Store, lock: &StoreLock, content: &[u8]) -> Generation {
    let staging = store.begin(lock, "zst").unwrap();
    let mut f = staging.create_archive().unwrap();
    f.write_all(content).unwrap();
    f.sync_all().unwrap();
    store.commit(lock, staging, meta("h1")).unwrap()
}

#[test]
fn create_commit_list_prune() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(matches!(
        Store::open(tmp.path()),
        Err(StoreError::NotAStore(_))
    ));
    let store = Store::create(tmp.path()).unwrap();
    assert!(Store::is_store(tmp.path()));
    let lock = store.lock("backup").unwrap();
    let g1 = write_generation(&store, &lock, b"one");
    let g2 = write_generation(&store, &lock, b"two");
    let g3 = write_generation(&store, &lock, b"three");
    assert!(
        g1.id < g2.id && g2.id < g3.id,
        "{} {} {}",
        g1.id,
        g2.id,
        g3.id
    );
    let gens = store.generations().unwrap();
    assert_eq!(gens.len(), 3);
    assert_eq!(std::fs::read(gens[2].archive_path()).unwrap(), b"three");
    assert_eq!(gens[2].meta.archive, "backup.tar.zst");
    assert_eq!(store.latest().unwrap().unwrap().id, g3.id);
    assert_eq!(store.find("latest").unwrap().id, g3.id);
    assert!(store.find("20000101T000000Z").is_err());
    // Files are private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(g3.archive_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let removed = store.prune(&lock, 1, &g3.id).unwrap();
    assert_eq!(removed, vec![g1.id.clone(), g2.id.clone()]);
    let gens = store.generations().unwrap();
    assert_eq!(gens.len(), 1);
    assert_eq!(gens[0].id, g3.id);
    // Never the protected one, even with keep 0.
    assert!(store.prune(&lock, 0, &g3.id).unwrap().is_empty());
    let events: Vec<String> = store
        .journal()
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .collect();
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == events::BACKUP_COMMITTED)
            .count(),
        3
    );
    assert_eq!(events.iter().filter(|e| *e == events::PRUNED).count(), 2);
}

#[test]
fn second_writer_is_told_who_holds_the_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::create(tmp.path()).unwrap();
    let lock = store.lock("backup").unwrap();
    match store.lock("host-restore") {
        Err(StoreError::Busy { holder }) => {
            assert!(holder.contains("lifeboat backup"), "{holder}");
            assert!(holder.contains(&std::process::id().to_string()), "{holder}");
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    drop(lock);
    assert!(store.lock("host-restore").is_ok());
}

#[test]
fn interrupted_staging_is_removed_and_never_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::create(tmp.path()).unwrap();
    let lock = store.lock("backup").unwrap();
    let good = write_generation(&store, &lock, b"good");
    // A crashed run: a staging dir left behind (simulated with mem::forget: no Drop).
    let staging = store.begin(&lock, "zst").unwrap();
    let mut f = staging.create_archive().unwrap();
    f.write_all(b"half").unwrap();
    let leftover = staging.id().to_string();
    std::mem::forget(staging);
    assert_eq!(store.generations().unwrap().len(), 1);
    let removed = store.remove_leftovers(&lock).unwrap();
    assert_eq!(removed, vec![leftover]);
    assert_eq!(
        std::fs::read_dir(tmp.path().join("staging"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(store.latest().unwrap().unwrap().id, good.id);
    // A staging dropped on an error path removes itself.
    let staging = store.begin(&lock, "zst").unwrap();
    let dir = staging.dir().to_path_buf();
    drop(staging);
    assert!(!dir.exists());
}

#[test]
fn read_only_store_refuses_writes() {
    let tmp = tempfile::tempdir().unwrap();
    Store::create(tmp.path()).unwrap();
    let ro = Store::open_read_only(tmp.path()).unwrap();
    assert!(matches!(ro.lock("backup"), Err(StoreError::ReadOnly(_))));
    assert!(ro.generations().unwrap().is_empty());
}

#[test]
fn journal_survives_a_torn_line_and_reports_the_last_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::create(tmp.path()).unwrap();
    store
        .append_journal(
            &JournalRecord::new(events::RESTORE_STARTED)
                .generation("g")
                .target("/dev/sda2"),
        )
        .unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(tmp.path().join("journal"))
        .unwrap();
    f.write_all(b"{\"time\":\"2026-").unwrap();
    let last = store.last_restore().unwrap().unwrap();
    assert_eq!(last.event, events::RESTORE_STARTED);
    assert_eq!(last.target.as_deref(), Some("/dev/sda2"));
}

#[test]
fn xenserver_tree_is_listed() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("etc")).unwrap();
    std::fs::write(
        tmp.path().join("etc/xensource-inventory"),
        "PRODUCT_VERSION='7.1.2'\nINSTALLATION_UUID='abc'\n",
    )
    .unwrap();
    assert!(list_backups(tmp.path()).unwrap().is_empty());
    std::fs::write(tmp.path().join(".xen-backup-partition"), "").unwrap();
    let rows = list_backups(tmp.path()).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].kind, "xenserver-tree");
    assert_eq!(rows[0].product_version.as_deref(), Some("7.1.2"));
}

#[test]
fn ids_sort_by_time_then_suffix() {
    assert!(layout::is_id("20261122T031500Z"));
    assert!(layout::is_id("20261122T031500Z-02"));
    assert!(!layout::is_id("pruned-20261122T031500Z"));
    let mut ids = vec![
        "20261122T031500Z-10",
        "20261122T031500Z-02",
        "20261122T031500Z",
        "20261121T000000Z",
    ];
    ids.sort_by_key(|i| layout::id_sort_key(i));
    assert_eq!(
        ids,
        [
            "20261121T000000Z",
            "20261122T031500Z",
            "20261122T031500Z-02",
            "20261122T031500Z-10"
        ]
    );
}

#[test]
fn ids_never_go_back_in_time() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::create(tmp.path()).unwrap();
    let lock = store.lock("backup").unwrap();
    // A generation from the future (a clock that was ahead).
    let future = tmp.path().join("generations/29991231T235959Z");
    std::fs::create_dir_all(&future).unwrap();
    let mut m = meta("h");
    m.id = "29991231T235959Z".into();
    m.archive = "backup.tar.zst".into();
    std::fs::write(future.join("meta.json"), serde_json::to_vec(&m).unwrap()).unwrap();
    let g = write_generation(&store, &lock, b"now");
    assert_eq!(g.id, "29991231T235959Z-02");
    assert_eq!(store.latest().unwrap().unwrap().id, g.id);
}
