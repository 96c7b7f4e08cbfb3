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
        entries_digest: None,
        pool_database: None,
    }
}

/// A new store in a temporary directory (kept while the first value lives), locked for a
/// backup.
fn new_store() -> (tempfile::TempDir, Store, StoreLock) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::create(tmp.path()).unwrap();
    let lock = store.lock("backup").unwrap();
    (tmp, store, lock)
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
    let h1 = crate::plan::ThisHost {
        hostname: "h1".into(),
        ..Default::default()
    };
    assert_eq!(store.latest_of(&h1).unwrap().id, g3.id);
    // Another host's generations are never "latest".
    let h2 = crate::plan::ThisHost {
        hostname: "h2".into(),
        ..Default::default()
    };
    let e = store.latest_of(&h2).unwrap_err().to_string();
    assert!(
        e.contains("other hosts' backups are restored only when chosen by hand"),
        "{e}"
    );
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
    let (_tmp, store, lock) = new_store();
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
    let (tmp, store, lock) = new_store();
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
    let (tmp, store, lock) = new_store();
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

/// A real generation: a Lifeboat archive of a small tree, written by the backup pipeline,
/// read back, and committed with the meta.json the agent's backup writes.
fn backup_generation(store: &Store, lock: &StoreLock, codec: crate::codec::Codec) -> Generation {
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir(src.path().join("etc")).unwrap();
    std::fs::write(src.path().join("etc/hostname"), b"host-a\n").unwrap();
    std::fs::write(src.path().join("etc/motd"), vec![b'm'; 5000]).unwrap();
    let mut opts = crate::source::SourceOptions::new(src.path());
    opts.codec = codec;
    opts.threads = 1;
    let staging = store
        .begin(lock, layout::ext_for_codec(codec.name()))
        .unwrap();
    let file = staging.create_archive().unwrap();
    let (file, report) = crate::source::write_backup(
        &opts,
        crate::archive::Manifest::default(),
        file,
        &crate::progress::NoProgress,
    )
    .unwrap();
    file.sync_all().unwrap();
    let size = file.metadata().unwrap().len();
    let read =
        crate::archive::verify::verify_stream(std::fs::File::open(staging.archive_path()).unwrap())
            .unwrap();
    let counts = &report.trailer.counts;
    let m = GenerationMeta {
        size,
        files: counts.files,
        entries: counts.entries,
        bytes: counts.bytes,
        codec: codec.name().into(),
        manifest: read.manifest.clone(),
        entries_digest: Some(report.trailer.entries_digest.clone()),
        ..meta("h1")
    };
    store.commit(lock, staging, m).unwrap()
}

/// Reads a generation the way every consumer does: open, check the start against meta.json,
/// read every entry, check the end.
fn read_generation(g: &Generation) -> Result<u64, StoreError> {
    let (codec, mut reader) = g.open_verified_reader(|f| f)?;
    let mut n = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while let Some(mut e) = reader.next_entry().map_err(|source| StoreError::Archive {
        generation: g.id.clone(),
        source,
    })? {
        n += 1;
        while std::io::Read::read(&mut e, &mut buf).unwrap() > 0 {}
    }
    g.check_reader_end(codec, &reader)?;
    Ok(n)
}

#[test]
fn a_sound_generation_reads_as_its_meta_says() {
    let (_tmp, store, lock) = new_store();
    for codec in crate::codec::Codec::ALL {
        let g = backup_generation(&store, &lock, codec);
        assert_eq!(read_generation(&g).unwrap(), g.meta.entries, "{codec:?}");
    }
}

#[test]
fn a_generation_with_its_first_block_zeroed_is_refused() {
    use std::os::unix::fs::FileExt;
    let (_tmp, store, lock) = new_store();
    for codec in crate::codec::Codec::ALL {
        let g = backup_generation(&store, &lock, codec);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(g.archive_path())
            .unwrap();
        f.write_all_at(&[0u8; 512], 0).unwrap();
        drop(f);
        let g = store.find(&g.id).unwrap();
        match read_generation(&g) {
            Err(e @ (StoreError::Mismatch { .. } | StoreError::Archive { .. })) => {
                let msg = e.to_string();
                assert!(msg.contains(&g.id), "{msg}");
                assert!(msg.contains("Do not restore it"), "{msg}");
            }
            other => panic!("{codec:?}: a zeroed generation read as {other:?}"),
        }
    }
}

#[test]
fn a_compressed_generation_of_garbage_is_refused_where_it_is_opened() {
    use crate::archive::ArchiveError;
    use crate::codec::Codec;
    let (_tmp, store, lock) = new_store();
    let garbage = b"this is not a tar archive at all\n".repeat(1000);
    for codec in Codec::ALL {
        // A generation whose meta.json is right about its file (codec, size), but whose
        // content is no archive.
        let g = backup_generation(&store, &lock, codec);
        let mut e = crate::codec::encoder(Vec::new(), codec, None, 1).unwrap();
        e.write_all(&garbage).unwrap();
        let packed = e.finish().unwrap();
        std::fs::write(g.archive_path(), &packed).unwrap();
        let mut m = g.meta.clone();
        m.size = packed.len() as u64;
        std::fs::write(g.dir.join("meta.json"), serde_json::to_vec(&m).unwrap()).unwrap();
        let g = store.find(&g.id).unwrap();
        match g.open_verified_reader(|f| f) {
            Err(StoreError::Archive {
                generation,
                source: ArchiveError::NotAnArchive(what),
            }) => {
                assert_eq!(generation, g.id);
                if codec != Codec::None {
                    assert!(what.contains(codec.name()), "{codec}: {what}");
                }
            }
            Err(other) => panic!("{codec}: {other:?}"),
            Ok(_) => panic!("{codec}: a generation of garbage opened"),
        }
    }
}

#[test]
fn a_generation_that_reads_differently_from_its_meta_is_refused() {
    let (_tmp, store, lock) = new_store();
    let g = backup_generation(&store, &lock, crate::codec::Codec::Zstd);
    let rewrite = |edit: &dyn Fn(&mut GenerationMeta)| {
        let mut m = g.meta.clone();
        edit(&mut m);
        std::fs::write(g.dir.join("meta.json"), serde_json::to_vec(&m).unwrap()).unwrap();
        let g = store.find(&g.id).unwrap();
        match read_generation(&g) {
            Err(StoreError::Mismatch { generation, what }) => {
                assert_eq!(generation, g.id);
                what
            }
            other => panic!("expected a mismatch, got {other:?}"),
        }
    };
    assert!(rewrite(&|m| m.files += 1).contains("files"));
    assert!(rewrite(&|m| m.codec = "gzip".into()).contains("gzip"));
    assert!(rewrite(&|m| m.size += 1).contains("bytes"));
    assert!(rewrite(&|m| m.entries_digest = Some("00".into())).contains("digest"));
    assert!(rewrite(&|m| m.state = GenerationState::Unchecked).contains("plain tar"));
    assert!(rewrite(&|m| {
        if let Some(man) = &mut m.manifest {
            man.created = "2001-01-01T00:00:00Z".into();
        }
    })
    .contains("manifest"));
    // A plain tar of nothing (zero blocks) recorded as a Lifeboat generation: no archive at
    // all, refused with the generation named.
    let zeros = vec![0u8; 10240];
    std::fs::write(g.archive_path(), &zeros).unwrap();
    let mut m = g.meta.clone();
    m.codec = "none".into();
    m.size = 10240;
    std::fs::write(g.dir.join("meta.json"), serde_json::to_vec(&m).unwrap()).unwrap();
    let g = store.find(&g.id).unwrap();
    match read_generation(&g) {
        Err(e @ StoreError::Archive { .. }) => {
            assert!(e.to_string().contains(&g.id), "{e}");
        }
        other => panic!("an all-zero generation read as {other:?}"),
    }
}

#[test]
fn a_torn_journal_line_never_swallows_the_next_record() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::create(tmp.path()).unwrap();
    store
        .append_journal(&JournalRecord::new(events::BACKUP_COMMITTED).generation("g0"))
        .unwrap();
    // Power cut (or a full disk) in the middle of an append: no final newline.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(tmp.path().join("journal"))
        .unwrap();
    f.write_all(b"{\"time\":\"2026-11-22T03:").unwrap();
    drop(f);
    store
        .append_journal(
            &JournalRecord::new(events::RESTORE_STARTED)
                .generation("g1")
                .target("/dev/sda1"),
        )
        .unwrap();
    // The new record starts on a line of its own.
    let raw = std::fs::read_to_string(tmp.path().join("journal")).unwrap();
    assert!(raw.contains("03:\n{\"time\":"), "{raw}");
    let last = store.last_restore().unwrap().unwrap();
    assert_eq!(last.event, events::RESTORE_STARTED);
    assert_eq!(last.generation.as_deref(), Some("g1"));
    let j = store.journal_with_notes().unwrap();
    assert_eq!(j.records.len(), 2);
    assert_eq!(j.skipped.len(), 1, "{:?}", j.skipped);
    // A journal written by an older append: the torn record glued to the next one.
    let j = journal::parse(
        "{\"time\":\"2026-11-22T03:{\"time\":\"2026-11-22T04:00:00Z\",\"event\":\"restore-started\",\"generation\":\"g2\"}\n",
    );
    assert_eq!(j.records.len(), 1);
    assert_eq!(j.records[0].generation.as_deref(), Some("g2"));
    assert_eq!(j.skipped.len(), 1);
}

#[test]
fn pruning_keeps_the_newest_verified_generation() {
    let (_tmp, store, lock) = new_store();
    let commit = |state: GenerationState| {
        let staging = store.begin(&lock, "zst").unwrap();
        staging.create_archive().unwrap();
        store
            .commit(&lock, staging, GenerationMeta { state, ..meta("h") })
            .unwrap()
    };
    let old_good = commit(GenerationState::Verified);
    let good = commit(GenerationState::Verified);
    let bad: Vec<Generation> = (0..3)
        .map(|i| {
            commit(if i % 2 == 0 {
                GenerationState::Inconsistent
            } else {
                GenerationState::Unchecked
            })
        })
        .collect();
    let newest = bad.last().unwrap();
    let removed = store.prune(&lock, 2, &newest.id).unwrap();
    assert_eq!(removed, vec![old_good.id.clone(), bad[0].id.clone()]);
    let left: Vec<String> = store
        .generations()
        .unwrap()
        .into_iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(
        left,
        vec![good.id.clone(), bad[1].id.clone(), bad[2].id.clone()]
    );
    // Still there with --keep 1.
    store.prune(&lock, 1, &newest.id).unwrap();
    let left: Vec<String> = store
        .generations()
        .unwrap()
        .into_iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(left, vec![good.id.clone(), newest.id.clone()]);
}

#[test]
fn no_space_is_a_typed_error_wherever_it_comes_from() {
    let tmp = tempfile::tempdir().unwrap();
    let enospc = || std::io::Error::from_raw_os_error(libc::ENOSPC);
    let e = StoreError::io(&tmp.path().join("generations"), enospc());
    match &e {
        StoreError::NoSpace {
            path, available, ..
        } => {
            assert_eq!(path, &tmp.path().join("generations"));
            assert!(*available > 0);
        }
        other => panic!("ENOSPC became {other:?}"),
    }
    assert!(e.is_no_space());
    assert!(
        e.to_string()
            .contains("no space left on the backup partition"),
        "{e}"
    );
    // The same question for the errors of a backup write, as a binary's error chain asks it.
    let source_err = crate::source::SourceError::Output(enospc());
    let archive_err =
        crate::source::SourceError::Archive(crate::archive::ArchiveError::Io(enospc()));
    assert!(space::is_no_space(&source_err));
    assert!(space::is_no_space(&archive_err));
    assert!(space::is_no_space(&enospc()));
    assert!(space::is_no_space(&e));
    let other = std::io::Error::from_raw_os_error(libc::EIO);
    assert!(!space::is_no_space(&other));
    assert!(!space::is_no_space(&StoreError::io(tmp.path(), other)));
}

#[test]
fn the_pool_database_is_a_checked_member_of_its_generation() {
    let (_tmp, store, lock) = new_store();
    let staging = store.begin(&lock, "zst").unwrap();
    staging.create_archive().unwrap();
    let dump = b"<?xml version=\"1.0\"?><database>pool</database>".to_vec();
    // As `xe pool-dump-database file-name=` writes it: then sealed (0600, fsynced, recorded).
    std::fs::write(staging.pool_database_path(), &dump).unwrap();
    let rec = staging.seal_pool_database().unwrap();
    assert_eq!(rec.size, dump.len() as u64);
    assert_eq!(rec.blake3, blake3::hash(&dump).to_hex().to_string());
    let g = store
        .commit(
            &lock,
            staging,
            GenerationMeta {
                pool_database: Some(rec.clone()),
                ..meta("h1")
            },
        )
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    let path = g.dir.join(layout::POOL_DATABASE);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // meta.json keeps the record; the dump reads back checked.
    let loaded = store.find(&g.id).unwrap();
    assert_eq!(loaded.meta.pool_database, Some(rec));
    assert_eq!(loaded.read_pool_database().unwrap(), Some(dump.clone()));
    assert_eq!(loaded.summary().pool_database, Some(dump.len() as u64));
    // One flipped byte (same size): damage, named.
    let mut bad = dump.clone();
    bad[10] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    let e = loaded.read_pool_database().unwrap_err().to_string();
    assert!(e.contains("pool database's BLAKE3"), "{e}");
    // Cut short: damage too.
    std::fs::write(&path, &dump[..5]).unwrap();
    let e = loaded.read_pool_database().unwrap_err().to_string();
    assert!(e.contains("holds 5 bytes"), "{e}");
    // A generation without one has none, and an empty dump is refused when sealed.
    let plain = write_generation(&store, &lock, b"x");
    assert_eq!(plain.read_pool_database().unwrap(), None);
    let staging = store.begin(&lock, "zst").unwrap();
    std::fs::write(staging.pool_database_path(), b"").unwrap();
    assert!(staging.seal_pool_database().is_err());
}
