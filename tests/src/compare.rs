//! The tree comparer: walks two trees side by side through dirfds (so paths longer than
//! PATH_MAX are reached) and reports every difference in what Lifeboat must keep: type,
//! content (BLAKE3), mode with setuid/setgid/sticky, numeric owner, mtime to the nanosecond
//! (directories and symlinks too), every xattr, the immutable / append-only flags, hard link
//! structure, sparseness (allocated space not much above the original's), device numbers and
//! symbolic link targets. Access times, directory sizes and inode numbers are not compared.

use crate::sys;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

#[derive(Debug, Default, Clone)]
pub struct CompareOptions {
    /// Relative paths (and everything beneath them) left out on both sides.
    pub ignore: Vec<Vec<u8>>,
    /// Report a socket of the first tree missing from the second (backups skip sockets, so by
    /// default a missing socket is expected).
    pub sockets_must_match: bool,
}

/// The outcome: every difference found, and how many entries were compared.
#[derive(Debug, Default)]
pub struct Comparison {
    pub differences: Vec<String>,
    pub entries: u64,
}

impl Comparison {
    pub fn is_same(&self) -> bool {
        self.differences.is_empty()
    }
}

/// What is compared about one object.
#[derive(Debug, PartialEq)]
struct Info {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: (i64, i64),
    size: u64,
    nlink: u64,
    rdev: (u32, u32),
    allocated: u64,
    ino: (u64, u64),
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    flags: Option<i32>,
    target: Option<Vec<u8>>,
    hash: Option<[u8; 32]>,
}

fn kind_of(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "file",
        libc::S_IFDIR => "directory",
        libc::S_IFLNK => "symlink",
        libc::S_IFCHR => "char device",
        libc::S_IFBLK => "block device",
        libc::S_IFIFO => "fifo",
        libc::S_IFSOCK => "socket",
        _ => "unknown",
    }
}

/// Reads everything about `name` in `dir` (`name` = "." for `dir` itself).
fn info(dir: RawFd, name: &[u8]) -> Result<(Info, Option<OwnedFd>)> {
    let st = sys::lstatat(dir, name)?;
    let kind = kind_of(st.st_mode);
    let mut sub = None;
    let mut flags = None;
    let mut hash = None;
    let mut target = None;
    let interesting = sys::FS_IMMUTABLE_FL | sys::FS_APPEND_FL;
    match kind {
        "file" => {
            let fd = sys::openat(
                dir,
                name,
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
                0,
            )?;
            flags = sys::get_flags(&fd).ok().map(|f| f & interesting);
            let mut file = std::fs::File::from(fd);
            let mut hasher = blake3::Hasher::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            hash = Some(*hasher.finalize().as_bytes());
        }
        "directory" => {
            let fd = sys::open_dir(dir, name)?;
            flags = sys::get_flags(&fd).ok().map(|f| f & interesting);
            sub = Some(fd);
        }
        "symlink" => target = Some(sys::readlinkat(dir, name)?),
        _ => {}
    }
    let info = Info {
        kind,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        mtime: (st.st_mtime, st.st_mtime_nsec),
        size: if kind == "directory" {
            0
        } else {
            st.st_size as u64
        },
        nlink: st.st_nlink,
        rdev: (libc::major(st.st_rdev), libc::minor(st.st_rdev)),
        allocated: st.st_blocks as u64 * 512,
        ino: (st.st_dev, st.st_ino),
        xattrs: sys::xattrs_at(dir, name)?,
        flags,
        target,
        hash,
    };
    Ok((info, sub))
}

struct Walker<'a> {
    opts: &'a CompareOptions,
    out: Comparison,
    links_a: HashMap<(u64, u64), Vec<u8>>,
    links_b: HashMap<(u64, u64), Vec<u8>>,
}

/// A path for a message: escaped, and shortened in the middle when very long.
fn show(path: &[u8]) -> String {
    if path.is_empty() {
        return ".".into();
    }
    if path.len() > 300 {
        let (head, tail) = (&path[..120], &path[path.len() - 120..]);
        return format!(
            "{}[...{} bytes...]{}",
            head.escape_ascii(),
            path.len() - 240,
            tail.escape_ascii()
        );
    }
    path.escape_ascii().to_string()
}

fn show_xattrs(x: &[(Vec<u8>, Vec<u8>)]) -> String {
    let parts: Vec<String> = x
        .iter()
        .map(|(n, v)| {
            let val = if v.len() > 40 {
                format!("{} bytes", v.len())
            } else {
                v.escape_ascii().to_string()
            };
            format!("{}={}", n.escape_ascii(), val)
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

impl Walker<'_> {
    fn diff(&mut self, path: &[u8], what: String) {
        self.out.differences.push(format!("{}: {what}", show(path)));
    }

    fn ignored(&self, path: &[u8]) -> bool {
        self.opts.ignore.iter().any(|i| i.as_slice() == path)
    }

    fn skipped_socket(&self, dir: RawFd, name: &[u8]) -> bool {
        !self.opts.sockets_must_match
            && sys::lstatat(dir, name).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFSOCK)
    }

    fn node(&mut self, path: &[u8], a: &Info, b: &Info) {
        self.out.entries += 1;
        if a.kind != b.kind {
            self.diff(path, format!("type {} != {}", a.kind, b.kind));
            return;
        }
        if a.mode != b.mode {
            self.diff(path, format!("mode {:04o} != {:04o}", a.mode, b.mode));
        }
        if (a.uid, a.gid) != (b.uid, b.gid) {
            self.diff(
                path,
                format!("owner {}:{} != {}:{}", a.uid, a.gid, b.uid, b.gid),
            );
        }
        if a.mtime != b.mtime {
            self.diff(
                path,
                format!(
                    "mtime {}.{:09} != {}.{:09}",
                    a.mtime.0, a.mtime.1, b.mtime.0, b.mtime.1
                ),
            );
        }
        if a.xattrs != b.xattrs {
            self.diff(
                path,
                format!(
                    "xattrs {} != {}",
                    show_xattrs(&a.xattrs),
                    show_xattrs(&b.xattrs)
                ),
            );
        }
        if a.flags.unwrap_or(0) != b.flags.unwrap_or(0) {
            self.diff(
                path,
                format!(
                    "flags (immutable=0x10, append=0x20) {:#x} != {:#x}",
                    a.flags.unwrap_or(0),
                    b.flags.unwrap_or(0)
                ),
            );
        }
        if a.kind == "directory" {
            return;
        }
        if a.size != b.size {
            self.diff(path, format!("size {} != {}", a.size, b.size));
        }
        if a.hash != b.hash {
            self.diff(path, "content differs".into());
        }
        if a.target != b.target {
            let t = |x: &Option<Vec<u8>>| x.as_deref().map(show).unwrap_or_default();
            self.diff(
                path,
                format!("symlink target '{}' != '{}'", t(&a.target), t(&b.target)),
            );
        }
        if matches!(a.kind, "char device" | "block device") && a.rdev != b.rdev {
            self.diff(
                path,
                format!(
                    "device {}:{} != {}:{}",
                    a.rdev.0, a.rdev.1, b.rdev.0, b.rdev.1
                ),
            );
        }
        if a.nlink != b.nlink {
            self.diff(path, format!("link count {} != {}", a.nlink, b.nlink));
        }
        if a.nlink > 1 || b.nlink > 1 {
            let fa = self
                .links_a
                .entry(a.ino)
                .or_insert_with(|| path.to_vec())
                .clone();
            let fb = self
                .links_b
                .entry(b.ino)
                .or_insert_with(|| path.to_vec())
                .clone();
            if fa != fb {
                self.diff(
                    path,
                    format!("hard link to '{}' != to '{}'", show(&fa), show(&fb)),
                );
            }
        }
        if a.kind == "file" {
            let slack = (a.allocated / 4).max(256 << 10);
            if b.allocated > a.allocated + slack {
                self.diff(
                    path,
                    format!(
                        "allocates {} bytes, the original {} (holes filled?)",
                        b.allocated, a.allocated
                    ),
                );
            }
        }
    }

    fn dir(&mut self, a: &OwnedFd, b: &OwnedFd, rel: &[u8]) -> Result<()> {
        let names_a = sys::list_dir(a)?;
        let names_b = sys::list_dir(b)?;
        let (mut i, mut j) = (0, 0);
        while i < names_a.len() || j < names_b.len() {
            let (na, nb) = (names_a.get(i), names_b.get(j));
            let name = match (na, nb) {
                (Some(x), Some(y)) if x == y => {
                    i += 1;
                    j += 1;
                    x.clone()
                }
                (Some(x), y) if y.is_none_or(|y| x < y) => {
                    i += 1;
                    let p = join(rel, x);
                    if !self.ignored(&p) && !self.skipped_socket(a.as_raw_fd(), x) {
                        self.diff(&p, "missing in the second tree".into());
                    }
                    continue;
                }
                (_, Some(y)) => {
                    j += 1;
                    let p = join(rel, y);
                    if !self.ignored(&p) {
                        self.diff(&p, "only in the second tree".into());
                    }
                    continue;
                }
                _ => break,
            };
            let p = join(rel, &name);
            if self.ignored(&p) {
                continue;
            }
            let (ia, sa) =
                info(a.as_raw_fd(), &name).with_context(|| format!("first tree: {}", show(&p)))?;
            let (ib, sb) =
                info(b.as_raw_fd(), &name).with_context(|| format!("second tree: {}", show(&p)))?;
            self.node(&p, &ia, &ib);
            if let (Some(sa), Some(sb)) = (sa, sb) {
                self.dir(&sa, &sb, &p)?;
            }
        }
        Ok(())
    }
}

fn join(rel: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = rel.to_vec();
    if !p.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// Compares the trees `a` (the original) and `b` (the copy), tops included.
pub fn compare(a: &Path, b: &Path, opts: &CompareOptions) -> Result<Comparison> {
    let fa = sys::open_path_dir(a)?;
    let fb = sys::open_path_dir(b)?;
    let mut w = Walker {
        opts,
        out: Comparison::default(),
        links_a: HashMap::new(),
        links_b: HashMap::new(),
    };
    let (ia, _) = info(fa.as_raw_fd(), b".")?;
    let (ib, _) = info(fb.as_raw_fd(), b".")?;
    w.node(b"", &ia, &ib);
    w.dir(&fa, &fb, b"")?;
    Ok(w.out)
}
