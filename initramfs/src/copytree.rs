//! Copies a XenServer backup partition's tree onto the new root with all its metadata (what
//! the installer does with `cp -a`, which this image does not carry): regular files (holes
//! kept), directories, symlinks, hardlinks, device nodes, fifos, numeric owners, modes with
//! setuid/setgid/sticky, nanosecond mtimes and every extended attribute.

use anyhow::{anyhow, Context, Result};
use lifeboat_core::progress::Progress;
use lifeboat_core::sys::xattr;
use nix::fcntl::AtFlags;
use nix::sys::stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, Gid, Uid};
use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// Top-level names of a XenServer backup partition that are not part of the root.
pub const SKIP_TOP: &[&str] = &["lost+found", ".xen-backup-partition", ".xen-gpt.bin"];

#[derive(Default)]
pub struct CopyStats {
    pub entries: u64,
    pub bytes: u64,
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

fn copy_file(src: &Path, dst: &Path, progress: &dyn Progress, stats: &mut CopyStats) -> Result<()> {
    let mut i = File::open(src).with_context(|| format!("cannot read {}", src.display()))?;
    let mut o = File::create(dst).with_context(|| format!("cannot create {}", dst.display()))?;
    let len = i.metadata().map(|m| m.len()).unwrap_or(0);
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    loop {
        let n = i
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", src.display()))?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().all(|&b| b == 0) {
            // Keep holes: seek over blocks of zeros.
            o.seek(SeekFrom::Current(n as i64))
                .with_context(|| format!("{}", dst.display()))?;
        } else {
            o.write_all(&buf[..n])
                .with_context(|| format!("cannot write {}", dst.display()))?;
        }
        pos += n as u64;
        stats.bytes += n as u64;
        progress.advance(n as u64);
    }
    o.set_len(len.max(pos))
        .with_context(|| format!("{}", dst.display()))?;
    Ok(())
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
/// at the top.
pub fn copy_tree(src: &Path, dst: &Path, progress: &dyn Progress) -> Result<CopyStats> {
    let mut stats = CopyStats::default();
    let mut links: HashMap<(u64, u64), std::path::PathBuf> = HashMap::new();
    copy_dir(src, dst, true, progress, &mut stats, &mut links)?;
    let md = fs::symlink_metadata(src).with_context(|| format!("{}", src.display()))?;
    set_meta(dst, &md, false)?;
    copy_xattrs(src, dst)?;
    Ok(stats)
}

fn copy_dir(
    src: &Path,
    dst: &Path,
    top: bool,
    progress: &dyn Progress,
    stats: &mut CopyStats,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> Result<()> {
    let rd = fs::read_dir(src).with_context(|| format!("cannot list {}", src.display()))?;
    let mut names: Vec<_> = rd.flatten().map(|e| e.file_name()).collect();
    names.sort();
    for name in names {
        if top && SKIP_TOP.iter().any(|s| OsStr::new(s) == name) {
            continue;
        }
        let s = src.join(&name);
        let d = dst.join(&name);
        let md = fs::symlink_metadata(&s).with_context(|| format!("{}", s.display()))?;
        let ft = md.file_type();
        stats.entries += 1;
        if !ft.is_dir() && md.nlink() > 1 {
            if let Some(first) = links.get(&(md.dev(), md.ino())) {
                fs::hard_link(first, &d).with_context(|| format!("cannot link {}", d.display()))?;
                continue;
            }
            links.insert((md.dev(), md.ino()), d.clone());
        }
        if ft.is_dir() {
            match fs::create_dir(&d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(anyhow!("cannot create {}: {e}", d.display())),
            }
            copy_dir(&s, &d, false, progress, stats, links)?;
        } else if ft.is_file() {
            copy_file(&s, &d, progress, stats)?;
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
            continue; // sockets: nothing to restore
        }
        set_meta(&d, &md, ft.is_symlink())?;
        copy_xattrs(&s, &d)?;
    }
    Ok(())
}
