#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::archive::{EntryKind, Timestamp};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

fn entry(path: &str, kind: EntryKind) -> Entry {
    Entry {
        path: path.as_bytes().to_vec(),
        kind,
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: Timestamp {
            secs: 1_600_000_000,
            nanos: 123_456_789,
        },
        size: 0,
        xattrs: Vec::new(),
        flags: FileFlags::default(),
        checksum: None,
    }
}

fn file(path: &str, data: &[u8]) -> (Entry, Vec<u8>) {
    let mut e = entry(path, EntryKind::File { sparse: None });
    e.size = data.len() as u64;
    (e, data.to_vec())
}

fn opts(dir: &Path) -> RestoreOptions {
    let mut o = RestoreOptions::new(dir);
    o.preserve_owner = false;
    o.sync = false;
    o
}

struct Setup {
    _tmp: tempfile::TempDir,
    target: PathBuf,
    canary: PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    let canary = tmp.path().join("canary");
    fs::create_dir(&target).unwrap();
    fs::create_dir(&canary).unwrap();
    fs::write(canary.join("passwd"), b"root:x:0:0").unwrap();
    Setup {
        _tmp: tmp,
        target,
        canary,
    }
}

fn canary_untouched(s: &Setup) {
    let names: Vec<_> = fs::read_dir(&s.canary)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("passwd")]);
    assert_eq!(fs::read(s.canary.join("passwd")).unwrap(), b"root:x:0:0");
    assert_eq!(fs::metadata(s.canary.join("passwd")).unwrap().nlink(), 1);
}

#[test]
fn restores_kinds_and_metadata() {
    let s = setup();
    let mut ex = Extractor::new(&opts(&s.target)).unwrap();
    let mut root = entry(".", EntryKind::Dir);
    root.mode = 0o755;
    ex.apply(&root, &mut std::io::empty()).unwrap();
    let mut d = entry("d", EntryKind::Dir);
    d.mode = 0o555;
    d.mtime = Timestamp {
        secs: 1_500_000_000,
        nanos: 42,
    };
    ex.apply(&d, &mut std::io::empty()).unwrap();
    let (mut f, data) = file("d/f", b"hello");
    f.mode = 0o640;
    ex.apply(&f, &mut &data[..]).unwrap();
    let l = entry(
        "d/l",
        EntryKind::Symlink {
            target: b"f".to_vec(),
        },
    );
    ex.apply(&l, &mut std::io::empty()).unwrap();
    let h = entry(
        "d/h",
        EntryKind::HardLink {
            target: b"d/f".to_vec(),
        },
    );
    ex.apply(&h, &mut std::io::empty()).unwrap();
    let p = entry("d/p", EntryKind::Fifo);
    ex.apply(&p, &mut std::io::empty()).unwrap();
    // A parent missing from the archive is created.
    let (n, data) = file("x/y/z", b"deep");
    ex.apply(&n, &mut &data[..]).unwrap();
    // Sparse: 64 MiB with two 4 KiB data blocks.
    let mut sp = entry(
        "sparse",
        EntryKind::File {
            sparse: Some(vec![(0, 4096), (32 << 20, 4096)]),
        },
    );
    sp.size = 64 << 20;
    let seg = vec![7u8; 8192];
    ex.apply(&sp, &mut &seg[..]).unwrap();
    let report = ex.finish().unwrap();
    assert_eq!(
        (
            report.files,
            report.dirs,
            report.symlinks,
            report.hardlinks,
            report.fifos
        ),
        (3, 2, 1, 1, 1)
    );
    assert_eq!(report.created_parents, 2);

    let t = &s.target;
    assert_eq!(fs::read(t.join("d/f")).unwrap(), b"hello");
    let md = fs::symlink_metadata(t.join("d/f")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o640);
    assert_eq!((md.mtime(), md.mtime_nsec()), (1_600_000_000, 123_456_789));
    assert_eq!(md.nlink(), 2);
    let dm = fs::symlink_metadata(t.join("d")).unwrap();
    assert_eq!(dm.mode() & 0o7777, 0o555);
    assert_eq!((dm.mtime(), dm.mtime_nsec()), (1_500_000_000, 42));
    let lm = fs::symlink_metadata(t.join("d/l")).unwrap();
    assert!(lm.file_type().is_symlink());
    assert_eq!((lm.mtime(), lm.mtime_nsec()), (1_600_000_000, 123_456_789));
    assert_eq!(fs::read(t.join("x/y/z")).unwrap(), b"deep");
    let sm = fs::metadata(t.join("sparse")).unwrap();
    assert_eq!(sm.len(), 64 << 20);
    assert!(
        sm.blocks() * 512 < 1 << 20,
        "holes were filled: {} blocks",
        sm.blocks()
    );
    let sdata = fs::read(t.join("sparse")).unwrap();
    assert_eq!(&sdata[..4096], &seg[..4096]);
    assert!(sdata[4096..32 << 20].iter().all(|&b| b == 0));
    assert_eq!(
        fs::metadata(t).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    fs::set_permissions(t.join("d"), fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn replaces_files_and_keeps_directories() {
    let s = setup();
    fs::create_dir(s.target.join("keep")).unwrap();
    fs::write(s.target.join("keep/old"), b"old").unwrap();
    fs::write(s.target.join("f"), b"previous content").unwrap();
    std::os::unix::fs::symlink("/nonexistent", s.target.join("l")).unwrap();
    let mut ex = Extractor::new(&opts(&s.target)).unwrap();
    ex.apply(&entry("keep", EntryKind::Dir), &mut std::io::empty())
        .unwrap();
    let (f, data) = file("f", b"new");
    ex.apply(&f, &mut &data[..]).unwrap();
    let (l, data) = file("l", b"now a file");
    ex.apply(&l, &mut &data[..]).unwrap();
    ex.finish().unwrap();
    assert_eq!(fs::read(s.target.join("keep/old")).unwrap(), b"old");
    assert_eq!(fs::read(s.target.join("f")).unwrap(), b"new");
    assert_eq!(fs::read(s.target.join("l")).unwrap(), b"now a file");
}

fn refused(s: &Setup, entries: Vec<(Entry, Vec<u8>)>) -> String {
    let mut ex = Extractor::new(&opts(&s.target)).unwrap();
    for (e, data) in entries {
        if let Err(err) = ex.apply(&e, &mut &data[..]) {
            return err.to_string();
        }
    }
    panic!("the hostile archive was accepted");
}

#[test]
fn hostile_paths_are_refused() {
    let s = setup();
    let canary = s.canary.to_string_lossy().into_owned();
    let up = "../canary/x".to_string();
    let abs = format!("{canary}/x");
    for p in [&up, &abs, &"a//b".to_string()] {
        let msg = refused(&s, vec![file(p, b"evil")]);
        assert!(msg.contains(p.as_str()), "{msg}");
    }
    // A symbolic link the archive creates, then a file through it.
    let msg = refused(
        &s,
        vec![
            (
                entry(
                    "a",
                    EntryKind::Symlink {
                        target: canary.clone().into_bytes(),
                    },
                ),
                vec![],
            ),
            file("a/file", b"evil"),
        ],
    );
    assert!(
        msg.contains("a/file") && msg.contains("symbolic link"),
        "{msg}"
    );
    // A hard link out of the target.
    let msg = refused(
        &s,
        vec![(
            entry(
                "h",
                EntryKind::HardLink {
                    target: b"../canary/passwd".to_vec(),
                },
            ),
            vec![],
        )],
    );
    assert!(
        msg.contains("'h'") && msg.contains("../canary/passwd"),
        "{msg}"
    );
    // A symbolic link to a directory outside, then a hard link through it.
    let msg = refused(
        &s,
        vec![
            (
                entry(
                    "s",
                    EntryKind::Symlink {
                        target: canary.clone().into_bytes(),
                    },
                ),
                vec![],
            ),
            (
                entry(
                    "h2",
                    EntryKind::HardLink {
                        target: b"s/passwd".to_vec(),
                    },
                ),
                vec![],
            ),
        ],
    );
    assert!(msg.contains("h2") && msg.contains("symbolic link"), "{msg}");
    // A hard link to a symbolic link pointing outside links the symlink, not its target.
    let mut ex = Extractor::new(&opts(&s.target)).unwrap();
    let out = format!("{canary}/passwd");
    ex.apply(
        &entry(
            "s2",
            EntryKind::Symlink {
                target: out.into_bytes(),
            },
        ),
        &mut std::io::empty(),
    )
    .unwrap();
    ex.apply(
        &entry(
            "h3",
            EntryKind::HardLink {
                target: b"s2".to_vec(),
            },
        ),
        &mut std::io::empty(),
    )
    .unwrap();
    ex.finish().unwrap();
    assert!(fs::symlink_metadata(s.target.join("h3"))
        .unwrap()
        .file_type()
        .is_symlink());
    canary_untouched(&s);
}

#[test]
fn bombs_and_short_content_are_refused() {
    let s = setup();
    let mut big = entry(
        "big",
        EntryKind::File {
            sparse: Some(vec![(0, 1)]),
        },
    );
    big.size = 1 << 60;
    let msg = refused(&s, vec![(big, vec![0])]);
    assert!(msg.contains("'big'") && msg.contains("size"), "{msg}");
    let mut bad = entry(
        "bad",
        EntryKind::File {
            sparse: Some(vec![(100, 10), (50, 10)]),
        },
    );
    bad.size = 1000;
    assert!(refused(&s, vec![(bad, vec![0; 20])]).contains("sparse map"));
    let (mut short, _) = file("short", b"");
    short.size = 10;
    let msg = refused(&s, vec![(short, b"abc".to_vec())]);
    assert!(
        msg.contains("'short'") && msg.contains("7 bytes early"),
        "{msg}"
    );
    let (long, _) = file("long", b"ab");
    let msg = refused(&s, vec![(long, b"abc".to_vec())]);
    assert!(msg.contains("'long'"), "{msg}");
}

#[test]
fn content_errors_name_the_path() {
    struct Bad;
    impl std::io::Read for Bad {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "checksum mismatch",
            ))
        }
    }
    let s = setup();
    let mut ex = Extractor::new(&opts(&s.target)).unwrap();
    let (e, _) = file("etc/shadow", b"0123");
    let msg = ex.apply(&e, &mut Bad).err().unwrap().to_string();
    assert!(
        msg.contains("etc/shadow") && msg.contains("checksum mismatch"),
        "{msg}"
    );
}

#[test]
fn paths_longer_than_path_max() {
    let s = setup();
    let mut ex = Extractor::new(&opts(&s.target)).unwrap();
    let comp = "d".repeat(200);
    let mut path = String::new();
    for _ in 0..30 {
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(&comp);
        ex.apply(&entry(&path, EntryKind::Dir), &mut std::io::empty())
            .unwrap();
    }
    path.push_str("/file");
    assert!(path.len() > 4096);
    let (f, data) = file(&path, b"far");
    ex.apply(&f, &mut &data[..]).unwrap();
    let report = ex.finish().unwrap();
    assert_eq!(report.dirs, 30);
}

#[test]
fn errors_naming_no_entry_are_located() {
    use crate::archive::ArchiveError;
    let io = ArchiveError::Io(std::io::Error::other("incomplete frame"));
    let msg = locate(io, Some(b"etc/passwd")).to_string();
    assert!(
        msg.contains("incomplete frame") && msg.contains("after the archive entry 'etc/passwd'"),
        "{msg}"
    );
    let named = ArchiveError::ChecksumMismatch {
        path: "etc/shadow".into(),
    };
    let msg = locate(named, Some(b"etc/passwd")).to_string();
    assert!(
        msg.contains("etc/shadow") && !msg.contains("etc/passwd"),
        "{msg}"
    );
}

/// A plain ustar archive of empty regular files and hard links (name, typeflag, link target).
fn raw_tar(members: &[(&str, u8, &str)]) -> Vec<u8> {
    use crate::archive::header;
    let mut t = Vec::new();
    for (name, typeflag, link) in members {
        let mut b = [0u8; 512];
        b[..name.len()].copy_from_slice(name.as_bytes());
        header::put_u64(&mut b, header::MODE, 0o644);
        header::put_u64(&mut b, header::UID, 0);
        header::put_u64(&mut b, header::GID, 0);
        header::put_u64(&mut b, header::SIZE, 0);
        header::put_i64(&mut b, header::MTIME, 0);
        b[header::TYPEFLAG] = *typeflag;
        b[header::LINKNAME.0..header::LINKNAME.0 + link.len()].copy_from_slice(link.as_bytes());
        b[257..265].copy_from_slice(header::USTAR_MAGIC);
        header::set_checksum(&mut b);
        t.extend_from_slice(&b);
    }
    t.extend_from_slice(&[0u8; 1024]);
    t
}

#[test]
fn absolute_members_are_refused_not_made_relative() {
    let s = setup();
    let canary = s.canary.to_string_lossy().into_owned();
    let abs = format!("{canary}/escaped");
    let abs_passwd = format!("{canary}/passwd");
    let rel = abs.trim_start_matches('/').to_string();
    for (tar, name) in [
        (
            raw_tar(&[("./ok", b'0', ""), (&abs, b'0', "")]),
            abs.as_str(),
        ),
        (raw_tar(&[("./h", b'1', &abs_passwd)]), "./h"),
    ] {
        let mut r = crate::archive::reader::ArchiveReader::new(&tar[..]);
        let err = match extract(&mut r, &opts(&s.target), &crate::progress::NoProgress) {
            Ok(_) => panic!("an absolute member was restored"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("refusing the archive entry") && err.contains(name),
            "{err}"
        );
        assert!(err.contains("absolute"), "{err}");
        // Nothing written for it: neither at the absolute path nor made relative.
        canary_untouched(&s);
        assert!(!s.target.join(&rel).exists());
        assert!(!s.target.join("h").exists());
    }
    // `./` names restore.
    let tar = raw_tar(&[("./etc/", b'5', ""), ("./etc/x", b'0', "")]);
    let mut r = crate::archive::reader::ArchiveReader::new(&tar[..]);
    extract(&mut r, &opts(&s.target), &crate::progress::NoProgress).unwrap();
    assert!(s.target.join("etc/x").is_file());
}

/// A Lifeboat archive (uncompressed) of `entries`, written by the project's writer.
fn lifeboat_tar(entries: &[(Entry, Vec<u8>)]) -> Vec<u8> {
    use crate::archive::writer::ArchiveWriter;
    let mut w = ArchiveWriter::new(Vec::new(), &crate::archive::Manifest::default()).unwrap();
    for (e, c) in entries {
        let mut e = e.clone();
        if e.is_file() {
            e.checksum = Some(*blake3::hash(c).as_bytes());
        }
        w.append(&e, &mut &c[..]).unwrap();
    }
    w.finish(Vec::new(), 0).unwrap().0
}

/// Verify's verdict and restore's verdict on `tar` (restored into a fresh target).
fn verdicts(tar: &[u8]) -> (Result<u64, String>, Result<RestoreReport, String>, Setup) {
    use crate::archive::verify::verify_tar;
    let verified = verify_tar(tar, crate::codec::Codec::None)
        .map(|r| r.counts.entries)
        .map_err(|e| e.to_string());
    let s = setup();
    let mut reader = crate::archive::reader::ArchiveReader::new(tar);
    let restored = extract(&mut reader, &opts(&s.target), &crate::progress::NoProgress)
        .map_err(|e| e.to_string());
    canary_untouched(&s);
    (verified, restored, s)
}

fn dirs_path(depth: usize) -> String {
    vec!["d"; depth].join("/")
}

#[test]
fn verify_refuses_a_tree_deeper_than_restore_accepts() {
    // Down to 4,100 levels: the restore refuses the 4,097th, so verify must (it said "sound"
    // before). (Only the deepest levels are listed, the others are implied: a tree listing
    // every level costs O(depth²) path bytes, which only slows the test.)
    let entries: Vec<_> = (4090..=4100)
        .map(|depth| (entry(&dirs_path(depth), EntryKind::Dir), Vec::new()))
        .collect();
    let (verified, restored, _s) = verdicts(&lifeboat_tar(&entries));
    let verify_msg = verified.expect_err("verify accepted a 4,100-deep tree");
    let restore_msg = restored.expect_err("restore accepted a 4,100-deep tree");
    let deepest = dirs_path(4097);
    for msg in [&verify_msg, &restore_msg] {
        assert!(
            msg.contains(&format!("'{deepest}'")) && msg.contains("4097 directories deep"),
            "{msg}"
        );
    }
    // 4,096 levels are accepted by both and restored, with the metadata of the listed levels
    // set after their contents (one linear walk of the tree).
    let mut entries: Vec<_> = (1..=16)
        .map(|k| {
            let mut e = entry(&dirs_path(k * 256), EntryKind::Dir);
            e.mode = 0o750;
            (e, Vec::new())
        })
        .collect();
    entries.push(file(&format!("{}/f", dirs_path(4095)), b"deep"));
    let (verified, restored, s) = verdicts(&lifeboat_tar(&entries));
    assert_eq!(verified, Ok(17));
    let report = restored.unwrap();
    assert_eq!((report.dirs, report.files), (16, 1));
    // (PATH_MAX limits what std can name: check levels up to 1,792.)
    for k in 1..=7 {
        let meta = fs::symlink_metadata(s.target.join(dirs_path(k * 256))).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            0o750,
            "level {}",
            k * 256
        );
        assert_eq!(meta.mtime(), 1_600_000_000, "level {}", k * 256);
    }
}

#[test]
fn verify_applies_every_rule_of_the_restore() {
    let link = |path: &str, target: &str| {
        (
            entry(
                path,
                EntryKind::HardLink {
                    target: target.as_bytes().to_vec(),
                },
            ),
            Vec::new(),
        )
    };
    let symlink = |path: &str, target: &str| {
        (
            entry(
                path,
                EntryKind::Symlink {
                    target: target.as_bytes().to_vec(),
                },
            ),
            Vec::new(),
        )
    };
    let dir = |path: &str| (entry(path, EntryKind::Dir), Vec::new());
    let long = "n".repeat(256);
    type Case<'a> = (&'a str, Vec<(Entry, Vec<u8>)>, &'a str);
    let cases: Vec<Case> = vec![
        ("missing link target", vec![link("h", "nowhere")], "'h'"),
        (
            "link target later in the archive",
            vec![link("h", "f"), file("f", b"x")],
            "'h'",
        ),
        (
            "link to a directory",
            vec![dir("d"), link("h", "d")],
            "is a directory",
        ),
        (
            "link through a symbolic link",
            vec![
                dir("d"),
                file("d/f", b"x"),
                symlink("s", "d"),
                link("h", "s/f"),
            ],
            "symbolic link",
        ),
        (
            "file through a symbolic link",
            vec![symlink("s", "/tmp"), file("s/f", b"x")],
            "symbolic link",
        ),
        (
            "file beneath a file",
            vec![file("f", b"x"), file("f/g", b"y")],
            "not a directory",
        ),
        (
            "file over a non-empty directory",
            vec![dir("d"), file("d/f", b"x"), file("d", b"y")],
            "already put entries in",
        ),
        (
            "name longer than a filesystem takes",
            vec![file(&long, b"x")],
            "255",
        ),
        ("empty symbolic link target", vec![symlink("s", "")], "'s'"),
        (
            "symbolic link target of 4,096 bytes",
            vec![symlink("s", &"t".repeat(4096))],
            "4096 bytes long",
        ),
    ];
    for (what, entries, expect) in cases {
        let (verified, restored, _s) = verdicts(&lifeboat_tar(&entries));
        let v = verified
            .err()
            .unwrap_or_else(|| panic!("{what}: verify accepted it"));
        let r = restored
            .err()
            .unwrap_or_else(|| panic!("{what}: restore accepted it"));
        assert!(v.contains(expect), "{what}: verify said {v}");
        assert!(v.contains("refusing the archive entry"), "{what}: {v}");
        assert!(r.contains("refusing the archive entry"), "{what}: {r}");
    }
    // What the restore does accept, verify accepts: links to earlier files and symlinks,
    // an empty directory replaced, directories listed twice.
    let ok = vec![
        dir("d"),
        file("d/f", b"x"),
        link("d/h", "d/f"),
        symlink("s", "d"),
        link("t", "s"),
        dir("e"),
        file("e", b"now a file"),
        dir("d"),
        file("d/f", b"again"),
    ];
    let (verified, restored, s) = verdicts(&lifeboat_tar(&ok));
    assert_eq!(verified, Ok(ok.len() as u64));
    let r = restored.unwrap();
    assert_eq!((r.files, r.dirs, r.hardlinks, r.symlinks), (3, 3, 2, 1));
    assert_eq!(fs::read(s.target.join("e")).unwrap(), b"now a file");
}

#[test]
fn verify_errors_name_the_last_entry() {
    use crate::archive::verify::verify_tar;
    let tar = lifeboat_tar(&[file("a", b"1"), file("b", b"2"), file("c", b"3")]);
    // Cut inside the third member's header: no entry is named by the reader's error.
    let cut = tar.len() - 512 * 6;
    let e = verify_tar(&tar[..cut], crate::codec::Codec::None).expect_err("truncation accepted");
    assert!(e.last_entry.is_some(), "{e}");
    assert!(
        e.to_string().contains("in or after the archive entry"),
        "{e}"
    );
}

fn is_immutable(path: &Path) -> bool {
    use std::os::fd::AsFd;
    let f = fs::File::open(path).unwrap();
    sys::get_flags(f.as_fd()).unwrap() & sys::FS_IMMUTABLE_FL != 0
}

fn clear_immutable(path: &Path) {
    use std::os::fd::AsFd;
    let f = fs::File::open(path).unwrap();
    let flags = sys::get_flags(f.as_fd()).unwrap();
    sys::set_flags(f.as_fd(), flags & !sys::FS_IMMUTABLE_FL).unwrap();
}

#[test]
fn deferred_flags_follow_the_object_not_the_path() {
    assert!(
        sys::is_root(),
        "this test sets the immutable flag: run it as root (CAP_LINUX_IMMUTABLE)"
    );
    let (mut first, data) = file("x", b"first");
    first.flags.immutable = true;
    let (second, data2) = file("x", b"second");
    let (verified, restored, s) = verdicts(&lifeboat_tar(&[
        (first.clone(), data.clone()),
        (second.clone(), data2.clone()),
    ]));
    verified.unwrap();
    let r = restored.unwrap();
    assert_eq!(r.warnings.count, 0, "{:?}", r.warnings.messages);
    let x = s.target.join("x");
    assert_eq!(fs::read(&x).unwrap(), b"second");
    let immutable = is_immutable(&x);
    if immutable {
        clear_immutable(&x);
    }
    assert!(
        !immutable,
        "the second x inherited the first one's immutable flag"
    );
    // The other way round, the flag is kept.
    let (_, restored, s) = verdicts(&lifeboat_tar(&[(second, data2), (first, data)]));
    restored.unwrap();
    let x = s.target.join("x");
    assert!(is_immutable(&x));
    clear_immutable(&x);
}

#[test]
fn directory_metadata_is_charged_to_one_budget() {
    use validate::MEMORY_BUDGET;
    // Directories whose xattrs together exceed the budget: refused by verify and restore,
    // before their metadata is held.
    let value = vec![b'v'; 512 << 10];
    let n = MEMORY_BUDGET / value.len() + 2;
    let entries: Vec<_> = (0..n)
        .map(|i| {
            let mut e = entry(&format!("d{i}"), EntryKind::Dir);
            e.xattrs = vec![(b"user.big".to_vec(), value.clone())];
            (e, Vec::new())
        })
        .collect();
    let (verified, restored, _s) = verdicts(&lifeboat_tar(&entries));
    let v = verified.expect_err("verify accepted it");
    let r = restored.expect_err("restore accepted it");
    for msg in [v, r] {
        assert!(msg.contains("MiB of memory"), "{msg}");
    }
    // The same directory listed many times is held once.
    let entries: Vec<_> = (0..n)
        .map(|_| {
            let mut e = entry("d", EntryKind::Dir);
            e.xattrs = vec![(b"user.big".to_vec(), value.clone())];
            (e, Vec::new())
        })
        .collect();
    let (verified, restored, _s) = verdicts(&lifeboat_tar(&entries));
    verified.unwrap();
    restored.unwrap();
}

/// Through [`extract`]'s two threads: files of 0 bytes, exactly one chunk, and several chunks
/// plus a tail come out whole; a damaged byte in the third chunk of a large file stops the
/// restore with the checksum error naming that file, and nothing after it is written.
#[test]
fn the_writer_thread_writes_every_chunk_and_stops_at_a_mismatch() {
    use super::pipe::CHUNK;
    let big: Vec<u8> = (0..3 * CHUNK + 12345)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let one: Vec<u8> = (0..CHUNK).map(|i| (i % 13) as u8).collect();
    let entries = vec![
        (entry("d", EntryKind::Dir), Vec::new()),
        file("d/empty", b""),
        file("d/one", &one),
        file("d/big", &big),
        file("d/after", b"after"),
    ];
    let tar = lifeboat_tar(&entries);
    let (verified, restored, s) = verdicts(&tar);
    assert!(verified.is_ok(), "{verified:?}");
    let report = restored.unwrap();
    assert_eq!(report.files, 4);
    assert_eq!(std::fs::read(s.target.join("d/big")).unwrap(), big);
    assert_eq!(std::fs::read(s.target.join("d/one")).unwrap(), one);
    assert_eq!(std::fs::read(s.target.join("d/empty")).unwrap(), b"");
    assert_eq!(std::fs::read(s.target.join("d/after")).unwrap(), b"after");

    // Damage one byte of the big file's third chunk (found by its content).
    let mut bad = tar.clone();
    let at = bad
        .windows(64)
        .position(|w| w == &big[2 * CHUNK + 100..2 * CHUNK + 164])
        .unwrap();
    bad[at] ^= 0xff;
    let (_, restored, s) = verdicts(&bad);
    let msg = restored.err().unwrap();
    assert!(msg.contains("d/big") && msg.contains("checksum"), "{msg}");
    assert!(!s.target.join("d/after").exists());
}
