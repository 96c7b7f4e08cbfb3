//! Copying a committed generation out of its store: into another store (a USB disk, a second
//! backup partition) or into a single archive file, verified before it counts.
//!
//! A copy into a store is written to the target's `staging/<id>/`, fsynced, dropped from the
//! page cache and read back from the disk: the archive is opened against the source's
//! meta.json ([`Generation::open_verified_reader`]: size, codec, kind, manifest), every entry
//! and checksum is read ([`verify_reader`]), the trailer digest and counts are compared
//! ([`Generation::check_end`]), and the BLAKE3 of the whole file must equal that of the bytes
//! read from the source. Only then is it committed by one rename, with a `copied` journal
//! record; the generation keeps its id (the time it was taken) unless the target holds another
//! generation under that id. A copy to a file goes to `F.partial`, is checked the same way and
//! renamed to `F`. Whatever fails (a damaged source, a full target, a disk pulled out), nothing
//! is left in the target but debris in `staging/` that the next writer removes.
//!
//! ```ignore
//! let src = Store::open_read_only(src_dir)?;
//! let dst = Store::open(dst_dir)?;
//! let lock = dst.lock("copy")?;
//! dst.remove_leftovers(&lock)?;
//! let done = copy::to_store(&src, &src.find("latest")?, &dst, &lock, &NoProgress)?;
//! let done = copy::to_file(&src.find("latest")?, Path::new("/mnt/host.xbk"), &NoProgress)?;
//! ```

use super::generation::Generation;
use super::layout::{self, GENERATIONS, STAGING};
use super::space::space_of;
use super::{fsync, JournalRecord, Staging, Store, StoreError, StoreLock};
use crate::archive::verify::verify_reader;
use crate::progress::{human_bytes, Progress};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The journal event of a generation copied into a store.
pub const COPIED: &str = "copied";

/// Room kept free beyond the archive's size (meta.json, directory blocks, the journal).
const MARGIN: u64 = 1 << 20;

/// Why a copy was refused or failed. Nothing is left in the target in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Reading or writing a store (the source's generation, the target's layout).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Source and target are the same store.
    #[error("the target {target} is the store the generation is copied from ({source_root}); copy to another device (--to-device) or a file (--to-file)")]
    SameStore {
        source_root: PathBuf,
        target: PathBuf,
    },
    /// Not enough room in the target.
    #[error("no space for a copy of generation {generation} on {}: {} needed, {} free; nothing was left there. Free space on it (`lifeboat list` shows the generations of a store) or use a larger disk", target.display(), human_bytes(*needed), human_bytes(*available))]
    NoSpace {
        generation: String,
        target: PathBuf,
        needed: u64,
        available: u64,
    },
    /// The source generation does not read as its meta.json records (the bytes written to
    /// the target are the bytes read from the source, and those failed verification).
    #[error("generation {generation} in the store at {} is damaged: {what}. It was not copied and nothing was left in the target; `lifeboat verify` checks the generations of that store", source_root.display())]
    SourceDamaged {
        generation: String,
        source_root: PathBuf,
        /// What is wrong, e.g. "checksum mismatch for 'etc/passwd': ...".
        what: String,
    },
    /// What was read back from the target is not what was written (a failing disk or cable).
    #[error("the copy of generation {generation} read back from {} is not what was written ({what}); it was removed. Check the target disk (dmesg, smartctl) and copy again", path.display())]
    WriteMismatch {
        generation: String,
        path: PathBuf,
        what: String,
    },
    /// The file to copy to exists and holds something else.
    #[error("{} exists and is not a copy of generation {generation}; it was left as it is. Remove it or choose another file name", path.display())]
    FileExists { generation: String, path: PathBuf },
    /// The file name given cannot take an archive (a directory, a device).
    #[error("{}: {why}", path.display())]
    BadFile { path: PathBuf, why: String },
    /// An I/O error on a file outside the stores.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl CopyError {
    /// True when the target ran out of space.
    pub fn is_no_space(&self) -> bool {
        matches!(self, CopyError::NoSpace { .. })
            || matches!(self, CopyError::Store(s) if s.is_no_space())
    }
}

/// What a copy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// The generation copied (its id in the source).
    pub generation: String,
    /// Its id in the target store (the same unless that id was taken by another generation;
    /// for a file, the source's).
    pub target_id: String,
    /// The archive written: `generations/<id>/backup.tar.*` in the target store, or the file.
    pub path: PathBuf,
    /// Bytes of the archive.
    pub size: u64,
    /// BLAKE3 of the archive file (hex).
    pub blake3: String,
    /// The target held this generation already; nothing was written.
    pub already: bool,
}

/// True when two generations are the same backup: the same archive by its recorded size,
/// codec, counts, digest, time and host.
fn same_backup(a: &Generation, b: &Generation) -> bool {
    let (a, b) = (&a.meta, &b.meta);
    (
        a.size,
        &a.codec,
        a.entries,
        a.files,
        a.bytes,
        &a.entries_digest,
        &a.created,
        &a.host,
    ) == (
        b.size,
        &b.codec,
        b.entries,
        b.files,
        b.bytes,
        &b.entries_digest,
        &b.created,
        &b.host,
    )
}

/// True when two directories are one (the same store, also through a second mount or a
/// bind mount of it).
fn same_dir(a: &Path, b: &Path) -> Result<bool, StoreError> {
    let ma = std::fs::metadata(a).map_err(|e| StoreError::io(a, e))?;
    let mb = std::fs::metadata(b).map_err(|e| StoreError::io(b, e))?;
    Ok((ma.dev(), ma.ino()) == (mb.dev(), mb.ino()))
}

/// Copies generation `generation` of `source` into the store `target` (opened for writing,
/// `lock` held, leftovers removed by the caller), verified before it is committed. A target
/// that holds the same backup already is left alone (`already`).
pub fn to_store(
    source: &Store,
    generation: &Generation,
    target: &Store,
    lock: &StoreLock,
    progress: &dyn Progress,
) -> Result<Copied, CopyError> {
    target.check_writable()?;
    if same_dir(source.root(), target.root())? {
        return Err(CopyError::SameStore {
            source_root: source.root().to_path_buf(),
            target: target.root().to_path_buf(),
        });
    }
    if let Some(there) = target
        .generations()?
        .into_iter()
        .find(|g| same_backup(g, generation))
    {
        return Ok(Copied {
            generation: generation.id.clone(),
            target_id: there.id.clone(),
            path: there.archive_path(),
            size: there.meta.size,
            blake3: String::new(),
            already: true,
        });
    }
    let needed = generation.meta.size + MARGIN;
    let space = target.space()?;
    if needed > space.available {
        return Err(CopyError::NoSpace {
            generation: generation.id.clone(),
            target: target.root().to_path_buf(),
            needed,
            available: space.available,
        });
    }
    let staging = begin_as(target, &generation.id, &generation.meta.archive)?;
    let written = write_verified(generation, source.root(), staging.archive_path(), progress);
    let (size, hash) = match written {
        Ok(w) => w,
        Err(e) => {
            staging.discard();
            return Err(no_space_in(e, generation, target.root()));
        }
    };
    let mut meta = generation.meta.clone();
    meta.archive = staging.archive_name();
    // The pool database goes along, checked against its record on both sides.
    if let Some(rec) = &generation.meta.pool_database {
        let copied = generation.read_pool_database().and_then(|d| match d {
            Some(d) => staging.write_pool_database(&d, rec),
            None => Ok(rec.clone()),
        });
        match copied {
            Ok(r) => meta.pool_database = Some(r),
            Err(e) => {
                staging.discard();
                return Err(no_space_in(e.into(), generation, target.root()));
            }
        }
    }
    let record = JournalRecord::new(COPIED)
        .generation(staging.id())
        .detail(&format!(
            "generation {} copied from the store of host '{}' ({} bytes, blake3 {hash})",
            generation.id, generation.meta.host, size
        ));
    let committed = target
        .commit_recorded(lock, staging, meta, record)
        .map_err(|e| no_space_in(e.into(), generation, target.root()))?;
    Ok(Copied {
        generation: generation.id.clone(),
        target_id: committed.id.clone(),
        path: committed.archive_path(),
        size,
        blake3: hash,
        already: false,
    })
}

/// Copies generation `generation` (of the store at `source_root`) into the file `dest`: the
/// archive as it is stored, byte for byte (what `lifeboat host-backup file-name=F` streams),
/// written to `dest.partial`, verified, then renamed. A `dest` that already holds exactly
/// this archive is left alone (`already`); one that holds anything else is refused.
pub fn to_file(
    generation: &Generation,
    source_root: &Path,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<Copied, CopyError> {
    let bad = |why: &str| CopyError::BadFile {
        path: dest.to_path_buf(),
        why: why.to_string(),
    };
    let io = |path: &Path, e: std::io::Error| CopyError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let Some(name) = dest.file_name() else {
        return Err(bad("not a file name: give the archive file to write"));
    };
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(bad(&format!(
            "its directory {} does not exist",
            parent.display()
        )));
    }
    match std::fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => {
            return Err(bad(
                "is a directory: give the name of the archive file to write in it",
            ))
        }
        Ok(m) if m.file_type().is_block_device() || m.file_type().is_char_device() => {
            return Err(bad(
                "is a device: copy into a store on it with --to-device, or name a file",
            ))
        }
        Ok(m) if m.is_file() => {
            let (len, hash) = hash_file(dest).map_err(|e| io(dest, e))?;
            let (_, source_hash) = hash_file(&generation.archive_path())
                .map_err(|e| StoreError::io(&generation.archive_path(), e))?;
            if len == generation.meta.size && hash == source_hash {
                return Ok(Copied {
                    generation: generation.id.clone(),
                    target_id: generation.id.clone(),
                    path: dest.to_path_buf(),
                    size: len,
                    blake3: hash.to_hex().to_string(),
                    already: true,
                });
            }
            return Err(CopyError::FileExists {
                generation: generation.id.clone(),
                path: dest.to_path_buf(),
            });
        }
        Ok(_) => return Err(bad("exists and is not a regular file")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(dest, e)),
    }
    let needed = generation.meta.size + MARGIN;
    let space = space_of(&parent)?;
    if needed > space.available {
        return Err(CopyError::NoSpace {
            generation: generation.id.clone(),
            target: parent,
            needed,
            available: space.available,
        });
    }
    let mut partial_name = name.to_os_string();
    partial_name.push(".partial");
    let partial = parent.join(partial_name);
    // A .partial of this name is the debris of an interrupted copy.
    match std::fs::remove_file(&partial) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&partial, e)),
    }
    let result =
        write_verified(generation, source_root, &partial, progress).and_then(|(size, hash)| {
            std::fs::rename(&partial, dest).map_err(|e| io(dest, e))?;
            fsync::fsync_dir(&parent).map_err(|e| io(&parent, e))?;
            Ok((size, hash))
        });
    match result {
        Ok((size, hash)) => Ok(Copied {
            generation: generation.id.clone(),
            target_id: generation.id.clone(),
            path: dest.to_path_buf(),
            size,
            blake3: hash,
            already: false,
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            let _ = fsync::fsync_dir(&parent);
            Err(no_space_in(e, generation, &parent))
        }
    }
}

/// A staging directory in `target` for a copy of generation `id`, under that id when it is
/// free in the target, else under `id-NN`.
fn begin_as(target: &Store, id: &str, archive: &str) -> Result<Staging, StoreError> {
    let taken = |id: &str| {
        target.root.join(GENERATIONS).join(id).exists()
            || target.root.join(STAGING).join(id).exists()
    };
    let base = layout::id_sort_key(id).0;
    let chosen = if !taken(id) {
        id.to_string()
    } else {
        (2..100)
            .map(|n| format!("{base}-{n:02}"))
            .find(|c| !taken(c))
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "no free id for generation {id} in the store at {}",
                    target.root.display()
                ))
            })?
    };
    let archive = if archive.is_empty() || archive.contains('/') {
        layout::archive_name("")
    } else {
        archive.to_string()
    };
    let dir = target.root.join(STAGING).join(&chosen);
    fsync::ensure_dir(&dir).map_err(|e| StoreError::io(&dir, e))?;
    let staging_dir = target.root.join(STAGING);
    fsync::fsync_dir(&staging_dir).map_err(|e| StoreError::io(&staging_dir, e))?;
    Ok(Staging {
        archive: dir.join(archive),
        id: chosen,
        dir,
        done: false,
    })
}

/// Writes the generation's archive to `dest` (a new file), fsyncs it, and checks what is on
/// the disk: the same bytes as were read (BLAKE3), and, read through the archive reader
/// against the source's meta.json, every checksum, the trailer and the counts. Returns the
/// size and the BLAKE3 (hex).
fn write_verified(
    generation: &Generation,
    source_root: &Path,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<(u64, String), CopyError> {
    let mut src = generation.open_archive()?;
    let src_path = generation.archive_path();
    let out = fsync::create_private(dest).map_err(|e| StoreError::io(dest, e))?;
    progress.set_total(Some(generation.meta.size));
    progress.set_message(&format!("copying generation {}", generation.id));
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut written = 0u64;
    let mut w = &out;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StoreError::io(&src_path, e).into()),
        };
        w.write_all(&buf[..n])
            .map_err(|e| StoreError::io(dest, e))?;
        hasher.update(&buf[..n]);
        written += n as u64;
        progress.advance(n as u64);
    }
    out.sync_all().map_err(|e| StoreError::io(dest, e))?;
    drop_cache(&out);
    drop(out);
    let expected = hasher.finalize();
    if written != generation.meta.size {
        return Err(CopyError::SourceDamaged {
            generation: generation.id.clone(),
            source_root: source_root.to_path_buf(),
            what: format!(
                "meta.json records an archive of {} bytes, {written} were read",
                generation.meta.size
            ),
        });
    }

    // Read back from the disk.
    let (len, on_disk) = hash_file(dest).map_err(|e| StoreError::io(dest, e))?;
    if len != written || on_disk != expected {
        return Err(CopyError::WriteMismatch {
            generation: generation.id.clone(),
            path: dest.to_path_buf(),
            what: format!(
                "{written} bytes with BLAKE3 {} were written, {len} bytes with BLAKE3 {} read back",
                expected.to_hex(),
                on_disk.to_hex()
            ),
        });
    }
    // The same bytes as the source's: their verification is the source's.
    let damaged = |e: StoreError| match e {
        // Not the archive: reading or writing the copy itself failed.
        e @ (StoreError::Io { .. } | StoreError::NoSpace { .. }) => CopyError::Store(e),
        StoreError::Mismatch { what, .. } => CopyError::SourceDamaged {
            generation: generation.id.clone(),
            source_root: source_root.to_path_buf(),
            what,
        },
        StoreError::Archive { source, .. } => CopyError::SourceDamaged {
            generation: generation.id.clone(),
            source_root: source_root.to_path_buf(),
            what: source.to_string(),
        },
        other => CopyError::SourceDamaged {
            generation: generation.id.clone(),
            source_root: source_root.to_path_buf(),
            what: other.to_string(),
        },
    };
    let copy = Generation {
        id: generation.id.clone(),
        dir: dest
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
        meta: {
            let mut m = generation.meta.clone();
            m.archive = dest
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            m
        },
    };
    progress.set_total(Some(generation.meta.bytes));
    progress.set_message(&format!("verifying the copy of {}", generation.id));
    let (codec, mut reader) = copy.open_verified_reader(|f| f).map_err(damaged)?;
    let report =
        verify_reader(&mut reader, codec, &mut |e| progress.advance(e.size)).map_err(|e| {
            damaged(StoreError::Archive {
                generation: generation.id.clone(),
                source: e.into(),
            })
        })?;
    copy.check_end(&(&report).into()).map_err(damaged)?;
    // The compressed stream's own end (its checksum) after the tar's.
    std::io::copy(&mut reader.into_inner(), &mut std::io::sink()).map_err(|e| {
        damaged(StoreError::Archive {
            generation: generation.id.clone(),
            source: e.into(),
        })
    })?;
    progress.finish();
    Ok((written, expected.to_hex().to_string()))
}

/// An error that is, at bottom, "no space left" becomes [`CopyError::NoSpace`] for `target`.
fn no_space_in(e: CopyError, generation: &Generation, target: &Path) -> CopyError {
    let io_full =
        matches!(&e, CopyError::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC));
    if e.is_no_space() || io_full {
        let available = space_of(target).map(|s| s.available).unwrap_or(0);
        return CopyError::NoSpace {
            generation: generation.id.clone(),
            target: target.to_path_buf(),
            needed: generation.meta.size + MARGIN,
            available,
        };
    }
    e
}

fn hash_file(path: &Path) -> std::io::Result<(u64, blake3::Hash)> {
    let mut f = File::open(path)?;
    drop_cache(&f);
    let mut h = blake3::Hasher::new();
    let n = std::io::copy(&mut f, &mut h)?;
    Ok((n, h.finalize()))
}

/// Drops a file's pages from the page cache, so reading it back reads the disk.
fn drop_cache(file: &File) {
    let _ = nix::fcntl::posix_fadvise(
        file.as_raw_fd(),
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::codec::Codec;
    use crate::progress::NoProgress;
    use crate::store::{GenerationMeta, GenerationState, Origin};

    /// A real generation of a small tree, committed as the agent's backup commits one.
    fn backup(store: &Store, lock: &StoreLock, codec: Codec) -> Generation {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir(src.path().join("etc")).unwrap();
        std::fs::write(src.path().join("etc/hostname"), b"host-a\n").unwrap();
        std::fs::write(src.path().join("etc/motd"), vec![b'm'; 50_000]).unwrap();
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
            &NoProgress,
        )
        .unwrap();
        file.sync_all().unwrap();
        let read =
            crate::archive::verify::verify_stream(File::open(staging.archive_path()).unwrap())
                .unwrap();
        let c = &report.trailer.counts;
        let meta = GenerationMeta {
            id: String::new(),
            created: crate::identity::clock::now_rfc3339(),
            committed: String::new(),
            origin: Origin::Backup,
            host: "host-a".into(),
            product_version: None,
            size: file.metadata().unwrap().len(),
            files: c.files,
            entries: c.entries,
            bytes: c.bytes,
            codec: codec.name().into(),
            archive: String::new(),
            state: GenerationState::Verified,
            changed_files: Vec::new(),
            manifest: read.manifest,
            entries_digest: Some(report.trailer.entries_digest.clone()),
            pool_database: None,
        };
        store.commit(lock, staging, meta).unwrap()
    }

    fn stores() -> (tempfile::TempDir, Store, tempfile::TempDir, Store) {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let sa = Store::create(a.path()).unwrap();
        let sb = Store::create(b.path()).unwrap();
        (a, sa, b, sb)
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_copy_is_the_same_archive_committed_under_the_same_id() {
        let (_a, src, _b, dst) = stores();
        let src_lock = src.lock("backup").unwrap();
        let lock = dst.lock("copy").unwrap();
        for codec in Codec::ALL {
            let g = backup(&src, &src_lock, codec);
            let done = to_store(&src, &g, &dst, &lock, &NoProgress).unwrap();
            assert!(!done.already);
            assert_eq!(done.target_id, g.id);
            let copied = dst.find(&g.id).unwrap();
            assert_eq!(
                std::fs::read(copied.archive_path()).unwrap(),
                std::fs::read(g.archive_path()).unwrap(),
                "{codec:?}"
            );
            assert_eq!(copied.meta.entries_digest, g.meta.entries_digest);
            assert_eq!(copied.meta.origin, g.meta.origin);
            // Twice: already there, nothing written.
            let again = to_store(&src, &g, &dst, &lock, &NoProgress).unwrap();
            assert!(again.already);
            assert_eq!(again.target_id, g.id);
        }
        assert_eq!(dst.generations().unwrap().len(), Codec::ALL.len());
        let copied: Vec<_> = dst
            .journal()
            .unwrap()
            .into_iter()
            .filter(|r| r.event == COPIED)
            .collect();
        assert_eq!(copied.len(), Codec::ALL.len());
        assert!(listing(&dst.root().join(STAGING)).is_empty());
    }

    #[test]
    fn a_damaged_source_leaves_nothing_in_the_target() {
        let (_a, src, _b, dst) = stores();
        let src_lock = src.lock("backup").unwrap();
        let g = backup(&src, &src_lock, Codec::None);
        // One flipped byte in the middle of the archive (file content: its checksum fails).
        let path = g.archive_path();
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.windows(4).position(|w| w == b"mmmm").unwrap() + 100;
        bytes[at] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let lock = dst.lock("copy").unwrap();
        let err = to_store(&src, &g, &dst, &lock, &NoProgress).unwrap_err();
        assert!(
            matches!(err, CopyError::SourceDamaged { .. }),
            "{err:?}: {err}"
        );
        assert!(err.to_string().contains("is damaged"), "{err}");
        assert!(dst.generations().unwrap().is_empty());
        assert!(listing(&dst.root().join(STAGING)).is_empty());
        let out = tempfile::tempdir().unwrap();
        let f = out.path().join("g.xbk");
        let err = to_file(&g, src.root(), &f, &NoProgress).unwrap_err();
        assert!(matches!(err, CopyError::SourceDamaged { .. }), "{err}");
        assert!(listing(out.path()).is_empty(), "{:?}", listing(out.path()));
    }

    #[test]
    fn the_same_store_is_refused() {
        let (a, src, _b, _dst) = stores();
        let lock0 = src.lock("backup").unwrap();
        let g = backup(&src, &lock0, Codec::Zstd);
        drop(lock0);
        let same = Store::open(a.path()).unwrap();
        let lock = same.lock("copy").unwrap();
        let err = to_store(&src, &g, &same, &lock, &NoProgress).unwrap_err();
        assert!(matches!(err, CopyError::SameStore { .. }), "{err}");
    }

    #[test]
    fn a_file_copy_is_the_stored_archive_and_a_different_file_is_kept() {
        let (_a, src, _b, _dst) = stores();
        let lock = src.lock("backup").unwrap();
        let g = backup(&src, &lock, Codec::Zstd);
        let out = tempfile::tempdir().unwrap();
        let f = out.path().join("host.xbk");
        let done = to_file(&g, src.root(), &f, &NoProgress).unwrap();
        assert!(!done.already);
        assert_eq!(
            std::fs::read(&f).unwrap(),
            std::fs::read(g.archive_path()).unwrap()
        );
        assert_eq!(listing(out.path()), ["host.xbk"]);
        assert!(to_file(&g, src.root(), &f, &NoProgress).unwrap().already);
        std::fs::write(&f, b"something else").unwrap();
        let err = to_file(&g, src.root(), &f, &NoProgress).unwrap_err();
        assert!(matches!(err, CopyError::FileExists { .. }), "{err}");
        assert_eq!(std::fs::read(&f).unwrap(), b"something else");
        let err = to_file(&g, src.root(), out.path(), &NoProgress).unwrap_err();
        assert!(matches!(err, CopyError::BadFile { .. }), "{err}");
    }
}
