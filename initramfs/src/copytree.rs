//! Copies a XenServer backup partition's tree onto the new root with all its metadata (what
//! the installer does with `cp -a`, which this image does not carry): regular files (exactly
//! the holes of the original, found with SEEK_DATA/SEEK_HOLE by core's sparse map),
//! directories, symlinks, hardlinks, device nodes, fifos, numeric owners, modes with
//! setuid/setgid/sticky, nanosecond mtimes, every extended attribute, and the ext flags
//! immutable and append-only (read and set with core's flag code, at the end: an immutable
//! file can be neither hard linked nor given its times, an immutable directory no children).
//! Afterwards the copy is counted again: fewer entries in the new root than were found in the
//! tree is a failure.

use anyhow::{anyhow, Context, Result};
use lifeboat_core::archive::FileFlags;
use lifeboat_core::progress::Progress;
use lifeboat_core::restore::metadata::apply_flags;
use lifeboat_core::restore::Warnings;
use lifeboat_core::source::{flags, sparse};
use lifeboat_core::sys::xattr;
use nix::fcntl::AtFlags;
use nix::sys::stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, Gid, Uid};
use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs::{self, File};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Top-level names of a XenServer backup partition that are not part of the root.
pub const SKIP_TOP: &[&str] = &["lost+found", ".xen-backup-partition", ".xen-gpt.bin"];

#[derive(Default)]
pub struct CopyStats {
    /// Entries found in the tree (below its top, without SKIP_TOP).
    pub entries: u64,
    /// Entries made in the new root (hard links included).
    pub copied: u64,
    /// Sockets found and left behind (nothing to restore, as `cp -a` on a fresh boot).
    pub sockets: u64,
    /// Bytes of file data read (holes excluded).
    pub bytes: u64,
    /// Files and directories that got immutable / append-only.
    pub flagged: u64,
    /// Metadata the new root could not take (a flag refused), as the archive restore reports.
    pub warnings: Warnings,
}

impl CopyStats {
    /// The line shown after the copy.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} of {} entries copied, {} bytes of data, {} with ext flags",
            self.copied, self.entries, self.bytes, self.flagged
        );
        if self.sockets > 0 {
            s.push_str(&format!(", {} sockets left behind", self.sockets));
        }
        if self.warnings.count > 0 {
            s.push_str(&format!(
                "; {} warnings, first: {}",
                self.warnings.count,
                self.warnings.messages.first().cloned().unwrap_or_default()
            ));
        }
        s
    }
}

/// State of one copy: the stats, the first copy of each hard-linked inode, and the ext flags
/// set at the end.
struct Copy<'a> {
    progress: &'a dyn Progress,
    stats: CopyStats,
    links: HashMap<(u64, u64), PathBuf>,
    flags: Vec<(PathBuf, FileFlags)>,
}

fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| anyhow!("{}: NUL in path", p.display()))
}

fn copy_xattrs(src: &Path, dst: &Path) -> Result<()> {
    let s = cpath(src)?;
    let d = cpath(dst)?;
    // Attributes that cannot be read are left behind, as `cp -a` does.
    let Ok(attrs) = xattr::read_all(&xattr::Target::Path(&s)) else {
        return Ok(());
    };
    for (name, value) in attrs {
        let n = CString::new(name.as_slice())
            .map_err(|_| anyhow!("bad extended attribute name on {}", src.display()))?;
        xattr::lset(&d, &n, &value).map_err(|e| {
            anyhow!(
                "cannot set extended attribute {} on {}: {e}",
                String::from_utf8_lossy(&name),
                dst.display()
            )
        })?;
    }
    Ok(())
}

/// Copies a regular file's content: only its data segments when it has holes (the same holes
/// in the copy), the whole of it otherwise.
fn copy_file(src: &Path, dst: &Path, progress: &dyn Progress, stats: &mut CopyStats) -> Result<()> {
    let i = File::open(src).with_context(|| format!("cannot read {}", src.display()))?;
    let o = File::create(dst).with_context(|| format!("cannot create {}", dst.display()))?;
    let md = i
        .metadata()
        .with_context(|| format!("cannot read {}", src.display()))?;
    let len = md.len();
    // Only a file that allocates less than its size can have holes (core's walk does the same).
    let segments = if md.blocks().saturating_mul(512) < len {
        sparse::data_map(i.as_fd(), len)
            .with_context(|| format!("cannot map the holes of {}", src.display()))?
    } else {
        None
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut copy = |mut off: u64, seg_len: u64| -> Result<()> {
        let end = off + seg_len;
        while off < end {
            let want = usize::try_from(end - off)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let n = i
                .read_at(&mut buf[..want], off)
                .with_context(|| format!("cannot read {}", src.display()))?;
            if n == 0 {
                break; // the file shrank: its new end
            }
            o.write_all_at(&buf[..n], off)
                .with_context(|| format!("cannot write {}", dst.display()))?;
            off += n as u64;
            stats.bytes += n as u64;
            progress.advance(n as u64);
        }
        Ok(())
    };
    match &segments {
        Some(segs) => {
            for &(off, l) in segs {
                copy(off, l)?;
            }
        }
        None => copy(0, len)?,
    }
    o.set_len(len)
        .with_context(|| format!("cannot set the size of {}", dst.display()))?;
    Ok(())
}

/// The ext flags (immutable, append-only) of a regular file or directory of the tree.
fn read_flags(src: &Path, dir: bool) -> Result<FileFlags> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | if dir { libc::O_DIRECTORY } else { 0 })
        .open(src)
        .with_context(|| format!("cannot open {}", src.display()))?;
    flags::read(f.as_fd())
        .with_context(|| format!("cannot read the ext flags of {}", src.display()))
}

fn set_meta(dst: &Path, md: &fs::Metadata, is_link: bool) -> Result<()> {
    fchownat(
        None,
        dst,
        Some(Uid::from_raw(md.uid())),
        Some(Gid::from_raw(md.gid())),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .with_context(|| format!("cannot set owner of {}", dst.display()))?;
    if !is_link {
        fs::set_permissions(
            dst,
            std::os::unix::fs::PermissionsExt::from_mode(md.mode() & 0o7777),
        )
        .with_context(|| format!("cannot set mode of {}", dst.display()))?;
    }
    let at = TimeSpec::new(md.atime(), md.atime_nsec());
    let mt = TimeSpec::new(md.mtime(), md.mtime_nsec());
    utimensat(None, dst, &at, &mt, UtimensatFlags::NoFollowSymlink)
        .with_context(|| format!("cannot set times of {}", dst.display()))
}

/// Copies the tree below `src` into `dst` (an existing directory), skipping SKIP_TOP names
/// at the top, then counts the new root: fewer entries than were found is an error with the
/// numbers.
pub fn copy_tree(src: &Path, dst: &Path, progress: &dyn Progress) -> Result<CopyStats> {
    let mut c = Copy {
        progress,
        stats: CopyStats::default(),
        links: HashMap::new(),
        flags: Vec::new(),
    };
    c.copy_dir(src, dst, true)?;
    let md = fs::symlink_metadata(src).with_context(|| format!("{}", src.display()))?;
    set_meta(dst, &md, false)?;
    copy_xattrs(src, dst)?;
    let top = read_flags(src, true)?;
    if !top.is_empty() {
        c.flags.push((dst.to_path_buf(), top));
    }
    // The flags last, children before their directory (the order they were found in).
    let mut stats = c.stats;
    for (path, f) in c.flags {
        let fd = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .with_context(|| format!("cannot open {} to set its flags", path.display()))?;
        apply_flags(fd.as_fd(), f, &path.display(), &mut stats.warnings).with_context(|| {
            format!(
                "cannot set the flags (immutable/append-only) of {}",
                path.display()
            )
        })?;
        stats.flagged += 1;
    }
    let found_in_copy = count_entries(dst)?;
    check_counts(stats.entries, stats.copied, stats.sockets, found_in_copy)?;
    Ok(stats)
}

/// Entries below `dir` (without the SKIP_TOP names at its top: the new root's own lost+found).
pub fn count_entries(dir: &Path) -> Result<u64> {
    fn walk(dir: &Path, top: bool, n: &mut u64) -> Result<()> {
        for e in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let e = e.with_context(|| format!("cannot list {}", dir.display()))?;
            if top && SKIP_TOP.iter().any(|s| OsStr::new(s) == e.file_name()) {
                continue;
            }
            *n += 1;
            let ft = e
                .file_type()
                .with_context(|| format!("{}", e.path().display()))?;
            if ft.is_dir() {
                walk(&e.path(), false, n)?;
            }
        }
        Ok(())
    }
    let mut n = 0;
    walk(dir, true, &mut n)?;
    Ok(n)
}

/// The copy is complete when every entry found was made (sockets aside) and the new root,
/// counted again, holds them all.
pub fn check_counts(found: u64, copied: u64, sockets: u64, in_copy: u64) -> Result<()> {
    let want = found.saturating_sub(sockets);
    if copied < want || in_copy < want {
        return Err(anyhow!(
            "the XenServer backup tree has {found} entries{}, {copied} were copied and the new root holds {in_copy}",
            if sockets > 0 {
                format!(" ({sockets} of them sockets, not copied)")
            } else {
                String::new()
            }
        ));
    }
    Ok(())
}

impl Copy<'_> {
    fn copy_dir(&mut self, src: &Path, dst: &Path, top: bool) -> Result<()> {
        let rd = fs::read_dir(src).with_context(|| format!("cannot list {}", src.display()))?;
        let mut names = Vec::new();
        for e in rd {
            names.push(
                e.with_context(|| format!("cannot list {}", src.display()))?
                    .file_name(),
            );
        }
        names.sort();
        for name in names {
            if top && SKIP_TOP.iter().any(|s| OsStr::new(s) == name) {
                continue;
            }
            let s = src.join(&name);
            let d = dst.join(&name);
            let md = fs::symlink_metadata(&s).with_context(|| format!("{}", s.display()))?;
            let ft = md.file_type();
            self.stats.entries += 1;
            if !ft.is_dir() && md.nlink() > 1 {
                if let Some(first) = self.links.get(&(md.dev(), md.ino())) {
                    fs::hard_link(first, &d)
                        .with_context(|| format!("cannot link {}", d.display()))?;
                    self.stats.copied += 1;
                    continue;
                }
                if !ft.is_socket() {
                    self.links.insert((md.dev(), md.ino()), d.clone());
                }
            }
            if ft.is_dir() {
                match fs::create_dir(&d) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(anyhow!("cannot create {}: {e}", d.display())),
                }
                self.copy_dir(&s, &d, false)?;
            } else if ft.is_file() {
                copy_file(&s, &d, self.progress, &mut self.stats)?;
            } else if ft.is_symlink() {
                let t = fs::read_link(&s).with_context(|| format!("{}", s.display()))?;
                std::os::unix::fs::symlink(&t, &d)
                    .with_context(|| format!("cannot create {}", d.display()))?;
            } else if ft.is_block_device() || ft.is_char_device() || ft.is_fifo() {
                let kind = if ft.is_block_device() {
                    SFlag::S_IFBLK
                } else if ft.is_char_device() {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFIFO
                };
                mknod(
                    &d,
                    kind,
                    Mode::from_bits_truncate(md.mode() & 0o7777),
                    md.rdev(),
                )
                .with_context(|| format!("cannot create {}", d.display()))?;
            } else {
                self.stats.sockets += 1; // sockets: nothing to restore
                continue;
            }
            self.stats.copied += 1;
            set_meta(&d, &md, ft.is_symlink())?;
            copy_xattrs(&s, &d)?;
            if ft.is_dir() || ft.is_file() {
                let f = read_flags(&s, ft.is_dir())?;
                if !f.is_empty() {
                    self.flags.push((d, f));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_with_fewer_entries_than_the_tree_is_a_failure_with_the_numbers() {
        check_counts(10, 10, 0, 10).unwrap();
        // Sockets are not copied and not missed.
        check_counts(10, 9, 1, 9).unwrap();
        let e = check_counts(10, 10, 0, 0).unwrap_err().to_string();
        assert_eq!(
            e,
            "the XenServer backup tree has 10 entries, 10 were copied and the new root holds 0"
        );
        let e = check_counts(10, 7, 1, 7).unwrap_err().to_string();
        assert_eq!(
            e,
            "the XenServer backup tree has 10 entries (1 of them sockets, not copied), 7 were copied and the new root holds 7"
        );
    }

    #[test]
    fn the_copy_keeps_holes_and_counts_every_entry() {
        let base = std::env::temp_dir().join(format!("lifeboat-copytree-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let (src, dst) = (base.join("src"), base.join("dst"));
        fs::create_dir_all(src.join("lost+found")).unwrap();
        fs::create_dir_all(src.join("etc/sub")).unwrap();
        fs::create_dir_all(&dst).unwrap();
        fs::write(src.join("etc/hostname"), b"host\n").unwrap();
        fs::hard_link(src.join("etc/hostname"), src.join("etc/sub/link")).unwrap();
        std::os::unix::fs::symlink("hostname", src.join("etc/sym")).unwrap();
        // 8 MiB with 4 KiB of data at 1 MiB + 3 KiB (inside a block of zeros the old copy wrote).
        let f = File::create(src.join("sparse")).unwrap();
        f.write_all_at(&[7u8; 4096], (1 << 20) + 3072).unwrap();
        f.set_len(8 << 20).unwrap();
        drop(f);
        let p = lifeboat_core::progress::NoProgress;
        let st = copy_tree(&src, &dst, &p).unwrap();
        // etc, etc/sub, hostname, link, sym, sparse (lost+found skipped).
        assert_eq!((st.entries, st.copied), (6, 6), "{}", st.summary());
        assert_eq!(count_entries(&dst).unwrap(), 6);
        let a = fs::metadata(src.join("sparse")).unwrap();
        let b = fs::metadata(dst.join("sparse")).unwrap();
        assert_eq!(b.len(), 8 << 20);
        if a.blocks() * 512 < a.len() {
            // The filesystem keeps holes: the copy allocates no more than the original.
            assert!(
                b.blocks() <= a.blocks(),
                "{} > {} blocks",
                b.blocks(),
                a.blocks()
            );
        }
        assert_eq!(
            fs::read(dst.join("sparse")).unwrap(),
            fs::read(src.join("sparse")).unwrap()
        );
        assert_eq!(
            fs::metadata(dst.join("etc/sub/link")).unwrap().ino(),
            fs::metadata(dst.join("etc/hostname")).unwrap().ino()
        );
        fs::remove_dir_all(&base).unwrap();
    }
}
