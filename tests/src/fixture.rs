//! The fixture generator: builds, in a directory, every case the archive must keep (issue 2,
//! "The archive").
//!
//! | case (path under DIR) | needs |
//! |---|---|
//! | `files/` empty, small, 10 MiB, mode 0600 | - |
//! | `modes/` setuid, setgid, sticky dir, setgid dir, mode 0000 | - |
//! | `owners/` uid:gid 12345:54321 on a file, a dir, a symlink | root |
//! | `links/` relative, absolute, dangling, to a dir (each with its own mtime) | - |
//! | `hard/` three names of one file in two dirs, a lone file | - |
//! | `special/` char device 1:3, block device 7:0 | root |
//! | `special/fifo`, `special/socket` (a socket: backups skip it) | - |
//! | `xattrs/` user.* (text, binary), on a dir too; security.selinux on a file and a symlink | - |
//! | `xattrs/` trusted.*, security.capability (raw vfs_cap_data v2) | root |
//! | `xattrs/` system.posix_acl_access, system.posix_acl_default (raw ACL xattr format) | a fs with ACLs (ext4) |
//! | `sparse/` 64 MiB with two 4 KiB data blocks; data then a trailing hole | a fs with holes (ext4) |
//! | `long/` a path of 30 x 200-byte names (> PATH_MAX), made with openat | - |
//! | `names/` Latin-1 and invalid UTF-8 bytes, space, newline, UTF-8 | - |
//! | `flags/` immutable (with a hard link), append-only | root and ext2/3/4 |
//! | every entry (files, dirs, symlinks, the top) | mtime with nanoseconds, set last |
//!
//! Cases whose needs are not met are skipped and listed in the report.

use crate::sys;
use anyhow::{Context, Result};
use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

/// Sizes and switches of the fixture.
#[derive(Debug, Clone)]
pub struct FixtureOptions {
    pub big_file_bytes: u64,
    /// Size of `sparse/two-blocks`; 0: no sparse files at all.
    pub sparse_bytes: u64,
    /// Set immutable / append-only (root and ext2/3/4 only).
    pub flags: bool,
    /// Make `long/`, a path longer than PATH_MAX.
    pub long_path: bool,
}

impl Default for FixtureOptions {
    fn default() -> Self {
        Self {
            big_file_bytes: 10 << 20,
            sparse_bytes: 64 << 20,
            flags: true,
            long_path: true,
        }
    }
}

/// What was made and what was skipped (with why).
#[derive(Debug, Default)]
pub struct FixtureReport {
    pub made: Vec<String>,
    pub skipped: Vec<String>,
}

pub const ODD_UID: u32 = 12345;
pub const ODD_GID: u32 = 54321;
pub const LONG_DEPTH: usize = 30;
pub const LONG_NAME_LEN: usize = 200;

/// Deterministic pseudo-random bytes (BLAKE3 in XOF mode, seeded by `seed`).
pub fn pattern(seed: &str, len: u64) -> Vec<u8> {
    let mut out = vec![0u8; usize::try_from(len).unwrap_or(0)];
    blake3::Hasher::new()
        .update(seed.as_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

/// A raw `system.posix_acl_*` xattr value: version 2, then (tag, perm, id) entries, sorted.
pub fn acl_xattr(entries: &[(u16, u16, u32)]) -> Vec<u8> {
    let mut v = 2u32.to_le_bytes().to_vec();
    for &(tag, perm, id) in entries {
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&perm.to_le_bytes());
        v.extend_from_slice(&id.to_le_bytes());
    }
    v
}

const ACL_USER_OBJ: u16 = 0x01;
const ACL_USER: u16 = 0x02;
const ACL_GROUP_OBJ: u16 = 0x04;
const ACL_GROUP: u16 = 0x08;
const ACL_MASK: u16 = 0x10;
const ACL_OTHER: u16 = 0x20;
const NO_ID: u32 = u32::MAX;

/// A raw `security.capability` value: vfs_cap_data revision 2, effective, permitted
/// cap_net_raw (13) and cap_net_bind_service (10).
pub fn capability_xattr() -> Vec<u8> {
    let magic: u32 = 0x0200_0000 | 0x1; // VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE
    let permitted: u32 = (1 << 13) | (1 << 10);
    let mut v = Vec::new();
    for word in [magic, permitted, 0, 0, 0] {
        v.extend_from_slice(&word.to_le_bytes());
    }
    v
}

struct Builder<'a> {
    root: &'a Path,
    report: FixtureReport,
    root_user: bool,
}

impl Builder<'_> {
    fn p(&self, rel: &str) -> std::path::PathBuf {
        self.root.join(rel)
    }
    fn dir(&self, rel: &str) -> Result<()> {
        fs::create_dir_all(self.p(rel)).with_context(|| format!("mkdir {rel}"))
    }
    fn file(&self, rel: &str, data: &[u8], mode: u32) -> Result<()> {
        let path = self.p(rel);
        fs::write(&path, data).with_context(|| format!("write {rel}"))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .with_context(|| format!("chmod {rel}"))
    }
    fn made(&mut self, what: &str) {
        self.report.made.push(what.to_string());
    }
    fn skip(&mut self, what: &str, why: &str) {
        self.report.skipped.push(format!("{what}: {why}"));
    }
    fn needs_root(&mut self, what: &str) -> bool {
        if !self.root_user {
            self.skip(what, "needs root");
        }
        self.root_user
    }
    /// Sets an xattr; a refusal by the filesystem or kernel becomes a skipped case.
    fn xattr(&mut self, rel: &str, name: &str, value: &[u8]) -> Result<()> {
        let path = self.p(rel);
        let parent = path.parent().context("no parent")?;
        let dirfd = sys::open_path_dir(parent)?;
        let base = path.file_name().context("no name")?.as_bytes();
        match sys::set_xattr_at(dirfd.as_raw_fd(), base, name, value) {
            Ok(()) => self.made(&format!("xattr {name} on {rel}")),
            Err(e) => self.skip(&format!("xattr {name} on {rel}"), &e.to_string()),
        }
        Ok(())
    }
}

/// Builds the fixture in `dir` (created if missing; should be empty).
pub fn build(dir: &Path, opts: &FixtureOptions) -> Result<FixtureReport> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut b = Builder {
        root: dir,
        report: FixtureReport::default(),
        root_user: sys::is_root(),
    };

    // Regular files.
    b.dir("files")?;
    b.file("files/empty", b"", 0o644)?;
    b.file("files/small", b"hello, lifeboat\n", 0o644)?;
    b.file("files/big", &pattern("big", opts.big_file_bytes), 0o644)?;
    b.file("files/private", b"secret\n", 0o600)?;
    b.made("files: empty, small, big, mode 0600");

    // Modes.
    b.dir("modes")?;
    b.file("modes/setuid", b"#!/bin/sh\n", 0o4755)?;
    b.file("modes/setgid", b"#!/bin/sh\n", 0o2755)?;
    b.file("modes/none", b"no access\n", 0o000)?;
    b.dir("modes/sticky-dir")?;
    fs::set_permissions(b.p("modes/sticky-dir"), fs::Permissions::from_mode(0o1777))?;
    b.dir("modes/setgid-dir")?;
    fs::set_permissions(b.p("modes/setgid-dir"), fs::Permissions::from_mode(0o2775))?;
    b.made("modes: setuid, setgid, sticky dir, setgid dir, 0000");

    // Symbolic links (their mtimes are set in the final pass).
    b.dir("links")?;
    symlink("../files/small", b.p("links/relative"))?;
    symlink("/etc/hostname", b.p("links/absolute"))?;
    symlink("does/not/exist", b.p("links/dangling"))?;
    symlink("../files", b.p("links/to-dir"))?;
    b.made("links: relative, absolute, dangling, to a dir");

    // Hard links: one file, three names, in two directories.
    b.dir("hard/sub")?;
    b.file("hard/a", b"one inode, three names\n", 0o644)?;
    fs::hard_link(b.p("hard/a"), b.p("hard/b"))?;
    fs::hard_link(b.p("hard/a"), b.p("hard/sub/c"))?;
    b.file("hard/single", b"alone\n", 0o644)?;
    b.made("hard links: 3 names in 2 dirs");

    // Owners.
    if b.needs_root("owners 12345:54321") {
        b.dir("owners/dir")?;
        b.file("owners/file", b"owned by nobody we know\n", 0o640)?;
        symlink("file", b.p("owners/link"))?;
        let d = sys::open_path_dir(&b.p("owners"))?;
        for name in ["dir", "file", "link"] {
            sys::fchownat_nofollow(d.as_raw_fd(), name.as_bytes(), ODD_UID, ODD_GID)?;
        }
        b.made("owners 12345:54321 on a file, a dir, a symlink");
    }

    // Special files.
    b.dir("special")?;
    let sd = sys::open_path_dir(&b.p("special"))?;
    if b.needs_root("device nodes") {
        sys::mknodat(
            sd.as_raw_fd(),
            b"chr",
            libc::S_IFCHR | 0o620,
            libc::makedev(1, 3),
        )?;
        sys::mknodat(
            sd.as_raw_fd(),
            b"blk",
            libc::S_IFBLK | 0o660,
            libc::makedev(7, 0),
        )?;
        sys::fchmodat(sd.as_raw_fd(), b"chr", 0o620)?;
        sys::fchmodat(sd.as_raw_fd(), b"blk", 0o660)?;
        b.made("char device 1:3, block device 7:0");
    }
    sys::mknodat(sd.as_raw_fd(), b"fifo", libc::S_IFIFO | 0o644, 0).context("mkfifo")?;
    sys::fchmodat(sd.as_raw_fd(), b"fifo", 0o644)?;
    b.made("fifo");
    match std::os::unix::net::UnixListener::bind(b.p("special/socket")) {
        Ok(l) => {
            drop(l);
            b.made("socket (a backup skips it)");
        }
        Err(e) => b.skip("socket", &e.to_string()),
    }

    // Extended attributes.
    b.dir("xattrs/dir")?;
    b.file("xattrs/user", b"user xattrs\n", 0o644)?;
    b.xattr("xattrs/user", "user.comment", b"kept by lifeboat")?;
    b.xattr("xattrs/user", "user.binary", &[0, 1, 2, 0xfe, 0xff])?;
    b.xattr("xattrs/dir", "user.dir", b"on a directory")?;
    b.file("xattrs/selinux", b"labelled\n", 0o644)?;
    b.xattr(
        "xattrs/selinux",
        "security.selinux",
        b"system_u:object_r:etc_t:s0\0",
    )?;
    symlink("selinux", b.p("xattrs/selinux-link"))?;
    b.xattr(
        "xattrs/selinux-link",
        "security.selinux",
        b"system_u:object_r:etc_t:s0\0",
    )?;
    b.file("xattrs/acl", b"acl\n", 0o644)?;
    let access = acl_xattr(&[
        (ACL_USER_OBJ, 6, NO_ID),
        (ACL_USER, 7, ODD_UID),
        (ACL_GROUP_OBJ, 4, NO_ID),
        (ACL_GROUP, 5, ODD_GID),
        (ACL_MASK, 7, NO_ID),
        (ACL_OTHER, 4, NO_ID),
    ]);
    b.xattr("xattrs/acl", "system.posix_acl_access", &access)?;
    b.dir("xattrs/acl-dir")?;
    let default = acl_xattr(&[
        (ACL_USER_OBJ, 7, NO_ID),
        (ACL_USER, 5, ODD_UID),
        (ACL_GROUP_OBJ, 5, NO_ID),
        (ACL_MASK, 5, NO_ID),
        (ACL_OTHER, 5, NO_ID),
    ]);
    b.xattr("xattrs/acl-dir", "system.posix_acl_default", &default)?;
    b.xattr("xattrs/acl-dir", "system.posix_acl_access", &access)?;
    if b.needs_root("trusted.* and security.capability") {
        b.file("xattrs/trusted", b"trusted\n", 0o644)?;
        b.xattr("xattrs/trusted", "trusted.lifeboat", b"only root sees this")?;
        b.file("xattrs/capability", b"\x7fELF pretend\n", 0o755)?;
        b.xattr(
            "xattrs/capability",
            "security.capability",
            &capability_xattr(),
        )?;
    }

    // Sparse files.
    if opts.sparse_bytes > 0 {
        b.dir("sparse")?;
        make_sparse(
            &b.p("sparse/two-blocks"),
            opts.sparse_bytes,
            &[0, opts.sparse_bytes / 2],
        )?;
        make_sparse(&b.p("sparse/trailing-hole"), 1 << 20, &[0])?;
        b.made("sparse files");
    }

    // A path longer than PATH_MAX.
    if opts.long_path {
        b.dir("long")?;
        make_long_path(&b.p("long"))?;
        b.made("a path longer than PATH_MAX");
    }

    // Names that are not UTF-8, and other odd names.
    b.dir("names")?;
    let nd = sys::open_path_dir(&b.p("names"))?;
    write_at(nd.as_raw_fd(), b"latin1-\xe9t\xe9", b"latin-1 name\n")?;
    sys::mkdirat(nd.as_raw_fd(), b"dir-\xff\xfe", 0o755)?;
    let inner = sys::open_dir(nd.as_raw_fd(), b"dir-\xff\xfe")?;
    write_at(inner.as_raw_fd(), b"inner", b"inside a non-UTF-8 dir\n")?;
    write_at(nd.as_raw_fd(), b"with space", b"space\n")?;
    write_at(nd.as_raw_fd(), b"new\nline", b"newline\n")?;
    write_at(nd.as_raw_fd(), "utf8-ünïcødé".as_bytes(), b"utf-8\n")?;
    b.made("non-UTF-8 and odd names");

    // Flags are made now, set after the times.
    let mut flagged = Vec::new();
    if opts.flags && b.needs_root("immutable / append-only flags") {
        b.dir("flags")?;
        b.file("flags/immutable", b"cannot change\n", 0o644)?;
        b.file("flags/append-only", b"log line\n", 0o644)?;
        // An immutable file with a second name: a restore must link it before making it
        // immutable (an immutable inode cannot be linked).
        fs::hard_link(b.p("flags/immutable"), b.p("flags/immutable-link"))?;
        flagged.push(("flags/immutable", sys::FS_IMMUTABLE_FL));
        flagged.push(("flags/append-only", sys::FS_APPEND_FL));
    }

    // Every mtime, with nanoseconds, deepest first so directories keep theirs.
    let top = sys::open_path_dir(dir)?;
    set_times(top.as_raw_fd(), b"")?;
    let (s, ns) = time_for(b"");
    let c = sys::cstr(dir.as_os_str().as_bytes())?;
    let ts = [
        libc::timespec {
            tv_sec: s as _,
            tv_nsec: ns as _,
        },
        libc::timespec {
            tv_sec: s as _,
            tv_nsec: ns as _,
        },
    ];
    // SAFETY: valid C string and timespec array.
    if unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), ts.as_ptr(), 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("set the mtime of the fixture's top");
    }
    b.made("mtimes with nanoseconds on every entry");

    for (rel, flag) in flagged {
        let f = sys::openat(
            libc::AT_FDCWD,
            b.p(rel).as_os_str().as_bytes(),
            libc::O_RDONLY,
            0,
        )?;
        let r = sys::get_flags(&f).and_then(|cur| sys::set_flags(&f, cur | flag));
        match r {
            Ok(()) => b.made(&format!("flag on {rel}")),
            Err(e) => b.skip(&format!("flag on {rel}"), &format!("{e} (needs ext2/3/4)")),
        }
    }
    Ok(b.report)
}

fn write_at(dir: RawFd, name: &[u8], data: &[u8]) -> Result<()> {
    let fd = sys::openat(
        dir,
        name,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
        0o644,
    )?;
    let mut f = fs::File::from(fd);
    f.write_all(data)?;
    Ok(())
}

fn make_sparse(path: &Path, size: u64, data_at: &[u64]) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let f = fs::File::create(path)?;
    for &off in data_at {
        f.write_all_at(&pattern(&format!("sparse-{off}"), 4096), off)?;
    }
    f.set_len(size)?;
    Ok(())
}

fn make_long_path(base: &Path) -> Result<()> {
    let mut cur: OwnedFd = sys::open_path_dir(base)?;
    for i in 0..LONG_DEPTH {
        let name = format!("{i:02}-{}", "d".repeat(LONG_NAME_LEN - 3));
        sys::mkdirat(cur.as_raw_fd(), name.as_bytes(), 0o755)?;
        cur = sys::open_dir(cur.as_raw_fd(), name.as_bytes())?;
    }
    write_at(
        cur.as_raw_fd(),
        b"file-at-the-bottom",
        b"more than PATH_MAX from the top\n",
    )
}

/// A deterministic mtime per relative path: seconds in 2017..2020, nanoseconds never zero.
pub fn time_for(rel: &[u8]) -> (i64, u32) {
    let h = blake3::hash(rel);
    let b = h.as_bytes();
    let secs =
        1_500_000_000 + i64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) % 100_000_000);
    let nanos = 1 + u32::from_le_bytes([b[4], b[5], b[6], b[7]]) % 999_999_998;
    (secs, nanos)
}

fn set_times(dir: RawFd, rel: &[u8]) -> Result<()> {
    let fd = sys::openat(dir, b".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    for name in sys::list_dir(&fd)? {
        let mut child = rel.to_vec();
        if !child.is_empty() {
            child.push(b'/');
        }
        child.extend_from_slice(&name);
        let st = sys::lstatat(dir, &name)?;
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            let sub = sys::open_dir(dir, &name)?;
            set_times(sub.as_raw_fd(), &child)?;
        }
        let (s, ns) = time_for(&child);
        sys::set_mtime_at(dir, &name, s, ns)
            .with_context(|| format!("set the mtime of {}", child.escape_ascii()))?;
    }
    Ok(())
}
