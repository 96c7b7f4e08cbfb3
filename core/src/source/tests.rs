//! Walker tests on temporary trees.
#![allow(clippy::unwrap_used)]

use super::walk::{Content, Emit, Item, WalkNotes, Walker};
use super::*;
use crate::archive::{Entry, EntryKind};
use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

type R<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Default)]
struct Collect(Vec<(Entry, Vec<u8>)>);

impl Emit for Collect {
    fn emit(&mut self, item: Item) -> std::io::Result<()> {
        let data = match item.content {
            Content::None => Vec::new(),
            Content::Memory(v) => v,
            Content::Spool(mut f) => {
                let mut v = Vec::new();
                f.read_to_end(&mut v)?;
                v
            }
            Content::Stream { file, layout, .. } => {
                let mut r = content::StreamReader::new(&file, &layout);
                let mut v = Vec::new();
                r.read_to_end(&mut v)?;
                v
            }
        };
        self.0.push((item.entry, data));
        Ok(())
    }
}

type Walked = (BTreeMap<Vec<u8>, (Entry, Vec<u8>)>, Vec<Vec<u8>>, WalkNotes);

fn walk(opts: &SourceOptions) -> R<Walked> {
    let cfg = opts.walk_config();
    let mut w = Walker::new(&cfg);
    let mut c = Collect::default();
    w.run(&mut c)?;
    let order = c.0.iter().map(|(e, _)| e.path.clone()).collect();
    let map =
        c.0.into_iter()
            .map(|(e, d)| (e.path.clone(), (e, d)))
            .collect();
    Ok((map, order, w.notes))
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn walks_every_kind_with_its_metadata() -> R<()> {
    let t = tempfile::tempdir()?;
    let r = t.path();
    std::fs::create_dir_all(r.join("d/sub"))?;
    std::fs::write(r.join("d/file"), b"content")?;
    std::fs::set_permissions(r.join("d/file"), std::fs::Permissions::from_mode(0o4755))?;
    std::fs::set_permissions(r.join("d/sub"), std::fs::Permissions::from_mode(0o1777))?;
    std::os::unix::fs::symlink("../nowhere", r.join("d/link"))?;
    std::fs::hard_link(r.join("d/file"), r.join("hard"))?;
    nix::unistd::mkfifo(
        &r.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )?;
    let _sock = std::os::unix::net::UnixListener::bind(r.join("sock"))?;
    let odd = r.join(OsStr::from_bytes(b"name-\xff\xfe"));
    std::fs::write(&odd, b"x")?;
    // Sparse: 1 MiB hole, 5 bytes, 1 MiB hole.
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(r.join("sparse"))?;
        f.write_at(b"hello", 1 << 20)?;
        f.set_len(2 << 20)?;
    }
    // mtime with nanoseconds.
    let ts = nix::sys::time::TimeSpec::new(1_600_000_000, 123_456_789);
    nix::sys::stat::utimensat(
        None,
        &r.join("d/file"),
        &ts,
        &ts,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )?;
    let have_xattr = xattr_set(&r.join("d/file"), "user.lifeboat", b"v1").is_ok();
    if is_root() {
        nix::sys::stat::mknod(
            &r.join("null"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )?;
    }

    let (m, order, notes) = walk(&SourceOptions::new(r))?;
    assert_eq!(order[0], b".");
    // Sorted and a directory before its contents.
    let pos = |p: &[u8]| order.iter().position(|o| o == p).unwrap();
    assert!(pos(b"d") < pos(b"d/file"));
    assert!(pos(b"d/file") < pos(b"d/link"));

    let (file, data) = &m[&b"d/file".to_vec()];
    assert_eq!(data, b"content");
    assert_eq!(file.mode, 0o4755);
    assert_eq!(file.mtime.secs, 1_600_000_000);
    assert_eq!(file.mtime.nanos, 123_456_789);
    assert_eq!(file.size, 7);
    assert_eq!(file.checksum, Some(*blake3::hash(b"content").as_bytes()));
    if have_xattr {
        assert!(file
            .xattrs
            .iter()
            .any(|(k, v)| k == b"user.lifeboat" && v == b"v1"));
    }
    assert_eq!(m[&b"d/sub".to_vec()].0.mode, 0o1777);
    assert_eq!(
        m[&b"d/link".to_vec()].0.kind,
        EntryKind::Symlink {
            target: b"../nowhere".to_vec()
        }
    );
    // The first path met is the file, the later one the link.
    assert_eq!(
        m[&b"hard".to_vec()].0.kind,
        EntryKind::HardLink {
            target: b"d/file".to_vec()
        }
    );
    assert_eq!(m[&b"fifo".to_vec()].0.kind, EntryKind::Fifo);
    assert!(!m.contains_key(b"sock".as_slice()));
    assert_eq!(notes.sockets_skipped, 1);
    assert_eq!(m[&b"name-\xff\xfe".to_vec()].1, b"x");
    let (sp, sdata) = &m[&b"sparse".to_vec()];
    match &sp.kind {
        EntryKind::File { sparse: Some(map) } => {
            assert_eq!(sdata.len() as u64, super::sparse::data_len(map));
            assert!(sdata.len() < (1 << 20));
        }
        k => return Err(format!("sparse file not detected: {k:?}").into()),
    }
    let mut logical = vec![0u8; 2 << 20];
    logical[1 << 20..(1 << 20) + 5].copy_from_slice(b"hello");
    let map = match &sp.kind {
        EntryKind::File { sparse } => sparse.clone(),
        _ => None,
    };
    let want = crate::archive::checksum::of_content(&logical, map.as_deref())?;
    assert_eq!(sp.checksum, Some(want));
    if is_root() {
        assert_eq!(
            m[&b"null".to_vec()].0.kind,
            EntryKind::CharDevice { major: 1, minor: 3 }
        );
    }
    assert!(notes.warnings.is_empty(), "{:?}", notes.warnings);
    Ok(())
}

fn xattr_set(p: &Path, name: &str, value: &[u8]) -> std::io::Result<()> {
    let cp = CString::new(p.as_os_str().as_bytes())?;
    let cn = CString::new(name)?;
    crate::sys::xattr::lset(&cp, &cn, value)
}

#[test]
fn excludes_apply_and_keep_the_directory() -> R<()> {
    let t = tempfile::tempdir()?;
    let r = t.path();
    for d in ["tmp/a", "var/crash/x", "var/log", "proc/1"] {
        std::fs::create_dir_all(r.join(d))?;
    }
    std::fs::write(r.join("tmp/.hidden"), b"")?;
    std::fs::write(r.join("var/log/audit.log"), b"")?;
    std::fs::write(r.join("var/log/messages"), b"m")?;
    std::fs::write(r.join("keep.pyc"), b"")?;
    let mut opts = SourceOptions::new(r);
    opts.excludes.push("*.pyc".into());
    let (m, _, _) = walk(&opts)?;
    let keys: Vec<String> = m
        .keys()
        .map(|k| String::from_utf8_lossy(k).into())
        .collect();
    assert_eq!(
        keys,
        [
            ".",
            "proc",
            "tmp",
            "var",
            "var/crash",
            "var/log",
            "var/log/messages"
        ]
    );
    Ok(())
}

#[test]
fn paths_longer_than_path_max() -> R<()> {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::Mode;
    let t = tempfile::tempdir()?;
    let name = "d".repeat(200);
    // 30 levels of 201 bytes: about 6000 bytes, beyond PATH_MAX (4096); built with dirfds.
    let mut fd = nix::fcntl::open(t.path(), OFlag::O_DIRECTORY, Mode::empty())?;
    for _ in 0..30 {
        nix::sys::stat::mkdirat(Some(fd), name.as_str(), Mode::from_bits_truncate(0o755))?;
        let next = openat(Some(fd), name.as_str(), OFlag::O_DIRECTORY, Mode::empty())?;
        nix::unistd::close(fd)?;
        fd = next;
    }
    let f = openat(
        Some(fd),
        "deep-file",
        OFlag::O_CREAT | OFlag::O_WRONLY,
        Mode::from_bits_truncate(0o644),
    )?;
    nix::unistd::write(unsafe { std::os::fd::BorrowedFd::borrow_raw(f) }, b"deep")?;
    nix::unistd::close(f)?;
    nix::unistd::close(fd)?;
    let (m, _, notes) = walk(&SourceOptions::new(t.path()))?;
    let deep = m
        .iter()
        .find(|(k, _)| k.ends_with(b"/deep-file"))
        .ok_or("deep file not found")?;
    assert!(deep.0.len() > 4096);
    assert_eq!(deep.1 .1, b"deep");
    assert!(notes.warnings.is_empty());
    // Clean up with dirfds too (remove_dir_all copes with long paths).
    std::fs::remove_dir_all(t.path().join(&name)).ok();
    Ok(())
}

#[test]
fn a_large_file_streams_with_the_same_checksum() -> R<()> {
    let t = tempfile::tempdir()?;
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(t.path().join("big"), &data)?;
    let mut opts = SourceOptions::new(t.path());
    opts.small_file_limit = 1 << 20;
    let (m, _, notes) = walk(&opts)?;
    let (e, d) = &m[&b"big".to_vec()];
    assert_eq!(d, &data);
    assert_eq!(e.checksum, Some(*blake3::hash(&data).as_bytes()));
    assert!(notes.changed_files.is_empty());
    Ok(())
}

#[test]
fn other_filesystems_are_empty_directories_unless_included() -> R<()> {
    if !is_root() {
        eprintln!("skipped: needs root to mount a tmpfs");
        return Ok(());
    }
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    let t = tempfile::tempdir()?;
    let r = t.path();
    std::fs::create_dir_all(r.join("var/log"))?;
    std::fs::create_dir_all(r.join("boot/efi"))?;
    std::fs::create_dir_all(r.join("srv"))?;
    // The directory under var/log has its own mode and time, which the backup must keep.
    std::fs::set_permissions(
        r.join("var/log"),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )?;
    let hidden_mtime = std::time::UNIX_EPOCH + std::time::Duration::new(1_234_567_890, 123_456_789);
    std::fs::File::open(r.join("var/log"))?.set_modified(hidden_mtime)?;
    let mut mounted = Vec::new();
    for d in ["var/log", "boot/efi", "srv"] {
        mount(
            Some("tmpfs"),
            &r.join(d),
            Some("tmpfs"),
            MsFlags::empty(),
            Some("mode=0750"),
        )?;
        mounted.push(r.join(d));
        std::fs::write(r.join(d).join("inside"), b"i")?;
    }
    let result = (|| -> R<()> {
        let mut opts = SourceOptions::new(r);
        let (m, _, notes) = walk(&opts)?;
        assert!(m.contains_key(b"var/log".as_slice()));
        // A skipped mount point carries the directory under it, not the mounted root.
        assert_eq!(m[&b"var/log".to_vec()].0.mode, 0o711);
        assert_eq!(m[&b"var/log".to_vec()].0.mtime.secs, 1_234_567_890);
        assert_eq!(m[&b"var/log".to_vec()].0.mtime.nanos, 123_456_789);
        // An included one (the ESP) is the mounted filesystem's root, restored onto it.
        assert_eq!(m[&b"boot/efi".to_vec()].0.mode, 0o750);
        assert!(!m.contains_key(b"var/log/inside".as_slice()));
        assert!(m.contains_key(b"boot/efi/inside".as_slice()));
        assert!(!m.contains_key(b"srv/inside".as_slice()));
        assert_eq!(notes.skipped_mounts, ["srv", "var/log"]);
        assert_eq!(predicted_skipped_mounts(&opts), ["srv", "var/log"]);
        opts.includes.push(r.join("var/log"));
        let (m, _, notes) = walk(&opts)?;
        assert!(m.contains_key(b"var/log/inside".as_slice()));
        assert_eq!(notes.skipped_mounts, ["srv"]);
        Ok(())
    })();
    for p in mounted {
        umount2(&p, MntFlags::MNT_DETACH)?;
    }
    result
}

#[test]
fn immutable_and_append_only_flags() -> R<()> {
    if !is_root() {
        return Ok(());
    }
    let t = tempfile::tempdir()?;
    let f = t.path().join("f");
    std::fs::write(&f, b"x")?;
    let ok = std::process::Command::new("chattr")
        .arg("+a")
        .arg(&f)
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("skipped: the temp filesystem has no inode flags");
        return Ok(());
    }
    let res = walk(&SourceOptions::new(t.path()));
    std::process::Command::new("chattr")
        .arg("-a")
        .arg(&f)
        .status()?;
    let (m, _, _) = res?;
    assert!(m[&b"f".to_vec()].0.flags.append_only);
    assert!(!m[&b"f".to_vec()].0.flags.immutable);
    Ok(())
}

/// Throughput of the walker alone (reading, hashing): `LIFEBOAT_WALK_ROOT=/dir cargo test
/// --release -p lifeboat-core walker_speed -- --ignored --nocapture`.
#[test]
#[ignore]
fn walker_speed() -> R<()> {
    let Some(root) = std::env::var_os("LIFEBOAT_WALK_ROOT") else {
        return Ok(());
    };
    struct Count(u64, u64);
    impl Emit for Count {
        fn emit(&mut self, item: Item) -> std::io::Result<()> {
            self.0 += 1;
            if let Content::Memory(v) = &item.content {
                self.1 += v.len() as u64;
            }
            if let Content::Stream { file, layout, .. } = item.content {
                let mut r = content::StreamReader::new(&file, &layout);
                self.1 += std::io::copy(&mut r, &mut std::io::sink())?;
            }
            Ok(())
        }
    }
    let opts = SourceOptions::new(std::path::PathBuf::from(root));
    let cfg = opts.walk_config();
    let t = std::time::Instant::now();
    let mut c = Count(0, 0);
    Walker::new(&cfg).run(&mut c)?;
    let s = t.elapsed().as_secs_f64();
    eprintln!(
        "{} entries, {} MB in {s:.2} s: {:.0} MB/s",
        c.0,
        c.1 / 1_000_000,
        c.1 as f64 / 1e6 / s
    );
    Ok(())
}

#[test]
fn write_backup_round_trips_through_the_archive_reader() -> R<()> {
    use crate::archive::reader::ArchiveReader;
    let t = tempfile::tempdir()?;
    let r = t.path();
    std::fs::create_dir_all(r.join("etc"))?;
    std::fs::create_dir_all(r.join("tmp"))?;
    std::fs::write(r.join("tmp/scratch"), b"gone")?;
    std::fs::write(r.join("etc/hosts"), b"127.0.0.1 localhost\n")?;
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i * 7 % 253) as u8).collect();
    std::fs::write(r.join("big"), &big)?;
    std::fs::hard_link(r.join("big"), r.join("big2"))?;
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(r.join("sparse"))?;
        f.write_at(b"tail", 3 << 20)?;
    }
    let _sock = std::os::unix::net::UnixListener::bind(r.join("sock"))?;
    for codec in [crate::codec::Codec::None, crate::codec::Codec::Zstd] {
        let mut opts = SourceOptions::new(r);
        opts.codec = codec;
        opts.small_file_limit = 1 << 20; // "big" takes the two-pass path
        let (out, report) = write_backup(
            &opts,
            crate::archive::Manifest::default(),
            Vec::new(),
            &crate::progress::NoProgress,
        )?;
        assert_eq!(report.sockets_skipped, 1);
        assert!(report.changed_files.is_empty());
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert_eq!(report.exit_code(), 0);
        let (_, tar) = crate::codec::decoder(std::io::Cursor::new(out))?;
        let mut reader = ArchiveReader::new(tar);
        let mut seen = BTreeMap::new();
        while let Some(mut e) = reader.next_entry()? {
            let mut data = Vec::new();
            e.read_to_end(&mut data)?;
            seen.insert(e.entry.path.clone(), (e.entry.clone(), data));
        }
        assert!(reader.is_lifeboat());
        let m = reader.manifest().ok_or("no manifest")?;
        assert_eq!(m.codec, codec.name());
        assert!(m.excludes.iter().any(|e| e == "tmp/*"));
        assert_eq!(seen[b"big".as_slice()].1, big);
        assert_eq!(seen[b"etc/hosts".as_slice()].1, b"127.0.0.1 localhost\n");
        assert!(seen.contains_key(b"tmp".as_slice()));
        assert!(!seen.contains_key(b"tmp/scratch".as_slice()));
        assert!(matches!(
            seen[b"big2".as_slice()].0.kind,
            EntryKind::HardLink { .. }
        ));
        assert!(matches!(
            seen[b"sparse".as_slice()].0.kind,
            EntryKind::File { sparse: Some(_) }
        ));
        let trailer = reader.trailer().ok_or("no trailer")?;
        assert_eq!(trailer.counts.sockets_skipped, 1);
    }
    Ok(())
}

/// Counts the heap bytes the current thread holds while [`alloc_meter::peak_of`] runs (the
/// other threads of the test binary are not counted).
mod alloc_meter {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static ON: Cell<bool> = const { Cell::new(false) };
        static NOW: Cell<i64> = const { Cell::new(0) };
        static PEAK: Cell<i64> = const { Cell::new(0) };
    }

    fn note(delta: i64) {
        let _ = ON.try_with(|on| {
            if on.get() {
                let now = NOW.with(|n| {
                    n.set(n.get() + delta);
                    n.get()
                });
                PEAK.with(|p| p.set(p.get().max(now)));
            }
        });
    }

    pub struct Meter;

    // SAFETY: every call is forwarded to the system allocator unchanged.
    unsafe impl GlobalAlloc for Meter {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            note(l.size() as i64);
            // SAFETY: same contract as ours.
            unsafe { System.alloc(l) }
        }
        unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
            note(l.size() as i64);
            // SAFETY: same contract as ours.
            unsafe { System.alloc_zeroed(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            note(-(l.size() as i64));
            // SAFETY: same contract as ours.
            unsafe { System.dealloc(p, l) }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
            note(new as i64 - l.size() as i64);
            // SAFETY: same contract as ours.
            unsafe { System.realloc(p, l, new) }
        }
    }

    #[global_allocator]
    static METER: Meter = Meter;

    /// Runs `f` and returns its result with the peak of heap bytes this thread held.
    pub fn peak_of<T>(f: impl FnOnce() -> T) -> (T, u64) {
        NOW.with(|n| n.set(0));
        PEAK.with(|p| p.set(0));
        ON.with(|o| o.set(true));
        let r = f();
        ON.with(|o| o.set(false));
        (r, PEAK.with(|p| p.get()).max(0) as u64)
    }
}

#[test]
fn a_small_file_that_grows_while_read_is_streamed_in_bounded_memory() -> R<()> {
    use content::{ContentRead, LargeRead, Layout, Snapshot};
    let t = tempfile::tempdir()?;
    let p = t.path().join("growing.log");
    std::fs::write(&p, vec![b'a'; 100 << 10])?;
    let f = std::fs::File::open(&p)?;
    let first = Snapshot::of(&f)?;
    const GROWN: u64 = 256 << 20;
    let mut calls = 0;
    let (read, peak) = alloc_meter::peak_of(|| {
        content::read_content(&f, first, first.size, 8 << 20, Vec::new, None, |_, s| {
            calls += 1;
            if calls == 1 {
                // Between the size check and the read: 100 KiB becomes 256 MiB.
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&p)?
                    .set_len(GROWN)?;
            }
            Ok(Layout {
                size: s.size,
                sparse: None,
            })
        })
    });
    match read? {
        ContentRead::Large(LargeRead::Stream { layout, .. }) => assert_eq!(layout.size, GROWN),
        ContentRead::Large(LargeRead::Spooled { .. }) => {
            return Err("spooled without a spool".into())
        }
        ContentRead::Small(r) => {
            return Err(format!("read {} bytes into memory", r.data.len()).into())
        }
    }
    assert!(
        peak < 4 << 20,
        "reading a file that grew to {GROWN} bytes allocated {peak} bytes"
    );
    Ok(())
}

#[test]
fn copies_of_changing_files_are_never_spooled_on_the_source() -> R<()> {
    use std::os::unix::fs::MetadataExt;
    let t = tempfile::tempdir()?;
    let root = t.path().join("root");
    std::fs::create_dir_all(root.join("var/spool"))?;
    let root_dev = std::fs::metadata(&root)?.dev();
    // The default spools nowhere on the source (the temp dir may be the root itself).
    let opts = SourceOptions::new(&root);
    opts.check_spool()?;
    if let Some(dir) = opts.walk_config().spool_dir {
        assert_ne!(std::fs::metadata(dir)?.dev(), root_dev);
    }
    // A spool directory on the filesystem being backed up is refused, before anything is read.
    let mut opts = SourceOptions::new(&root);
    opts.spool_dir = Some(root.join("var/spool"));
    let mut out = Vec::new();
    match write_backup(
        &opts,
        crate::archive::Manifest::default(),
        &mut out,
        &crate::progress::NoProgress,
    ) {
        Err(SourceError::SpoolOnSource { dir, .. }) => assert_eq!(dir, root.join("var/spool")),
        Err(e) => return Err(format!("unexpected error: {e}").into()),
        Ok(_) => return Err("a spool on the source was accepted".into()),
    }
    assert!(out.is_empty());
    // Anywhere else on the same filesystem is the same filesystem.
    opts.spool_dir = Some(t.path().to_path_buf());
    assert!(matches!(
        opts.check_spool(),
        Err(SourceError::SpoolOnSource { .. })
    ));
    // Another filesystem is fine.
    let shm = Path::new("/dev/shm");
    if std::fs::metadata(shm).is_ok_and(|m| m.dev() != root_dev) {
        opts.spool_dir = Some(shm.to_path_buf());
        opts.check_spool()?;
    }
    Ok(())
}

#[test]
fn the_estimate_of_a_subdirectory_root_is_what_is_under_it() -> R<()> {
    let t = tempfile::tempdir()?;
    let root = t.path().join("srv/data");
    std::fs::create_dir_all(root.join("tmp"))?;
    std::fs::write(root.join("a"), vec![1u8; 3000])?;
    std::fs::write(root.join("b"), vec![2u8; 5000])?;
    // Excluded by the defaults: not counted.
    std::fs::write(root.join("tmp/big"), vec![3u8; 4 << 20])?;
    std::fs::hard_link(root.join("b"), root.join("b2"))?;
    let opts = SourceOptions::new(&root);
    let est = estimate_bytes(&opts).ok_or("no estimate")?;
    let fs_used = crate::store::space::space_of(&root)?.used;
    // Two small files, a hard link, two directories: far less than the filesystem holds.
    assert!(est >= 8000, "{est}");
    assert!(
        est < 1 << 20,
        "estimated {est} bytes for two small files (the filesystem has {fs_used} used)"
    );
    Ok(())
}
