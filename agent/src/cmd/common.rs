//! What several commands share, in one place: the store opened for writing or reading, the
//! archive a command reads (a generation or a file) and its decompression, the backup
//! source options and the pre-hook, "no space left" and page-cache dropping. Commands use
//! this module, never each other. (The progress bar is [`crate::ui`].)

use crate::cli::SourceArgs;
use crate::config::{self, BackupDevice};
use anyhow::{bail, Context, Result};
use lifeboat_core::archive::reader::ArchiveReader;
use lifeboat_core::archive::ArchiveError;
use lifeboat_core::codec::{self, Codec};
use lifeboat_core::io::ProgressReader;
use lifeboat_core::progress::Progress;
use lifeboat_core::source::SourceOptions;
use lifeboat_core::store::{self, Mounted, Store, StoreError, StoreLock};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// A store opened for writing: lock held, leftovers removed. Fields drop in order: the
/// lock is released before the filesystem is unmounted.
pub(crate) struct WritableStore {
    pub lock: StoreLock,
    pub store: Store,
    pub removed_leftovers: Vec<String>,
    /// Held for its Drop: unmounts what we mounted.
    #[allow(dead_code)]
    pub mounted: Mounted,
}

/// Mounts the backup device read-write, opens its store, takes the lock for `command`, and
/// removes what interrupted runs left in staging/ (saying so).
pub(crate) fn open_for_writing(
    dev: &BackupDevice,
    command: &str,
    quiet: bool,
) -> Result<WritableStore> {
    let mounted = store::mount_device(&dev.path, false)?;
    let store = Store::open(mounted.dir()).map_err(|e| match e {
        StoreError::NotAStore(_) => anyhow::anyhow!(
            "the backup device {} (from {}) holds no Lifeboat store; create one with \
             `lifeboat init-store --backup-device {}`",
            dev.path.display(),
            dev.source,
            dev.path.display()
        ),
        e => anyhow::Error::new(e)
            .context(format!("cannot open the store on {}", dev.path.display())),
    })?;
    let lock = store
        .lock(command)
        .with_context(|| format!("cannot lock the store on {}", dev.path.display()))?;
    let removed = store.remove_leftovers(&lock)?;
    if !quiet {
        for name in &removed {
            eprintln!(
                "lifeboat: removed '{name}' from {}/staging: left by an interrupted run (the committed generations are intact)",
                dev.path.display()
            );
        }
    }
    Ok(WritableStore {
        lock,
        store,
        removed_leftovers: removed,
        mounted,
    })
}

/// The store on the backup partition, mounted read-only while this lives.
pub(crate) struct ReadOnlyStore {
    pub store: Store,
    /// The device, for messages.
    pub device: String,
    pub mounted: Mounted,
}

/// Finds the backup partition (`--backup-device` or the usual places) and mounts it
/// read-only, whatever it holds (a Lifeboat store, a XenServer backup tree).
pub(crate) fn mount_read_only(device: Option<&Path>) -> Result<(BackupDevice, Mounted)> {
    let dev = config::find_backup_device(device, Path::new("/"))?;
    let mounted = store::mount_device(&dev.path, true)?;
    Ok((dev, mounted))
}

/// Finds the backup partition and opens its Lifeboat store read-only.
pub(crate) fn open_store(device: Option<&Path>) -> Result<ReadOnlyStore> {
    let (dev, mounted) = mount_read_only(device)?;
    if !Store::is_store(mounted.dir()) {
        bail!(
            "{} (from {}) holds no Lifeboat store; give file-name=F to use an archive file",
            dev.path.display(),
            dev.source
        );
    }
    let store = Store::open_read_only(mounted.dir())?;
    Ok(ReadOnlyStore {
        store,
        device: dev.path.display().to_string(),
        mounted,
    })
}

/// An archive to read: where it comes from, its size when known (for progress), and the
/// store's mount when it comes from a generation (kept mounted while it is read).
pub(crate) struct Input {
    pub source: Source,
    pub size: Option<u64>,
    pub name: String,
    /// Logical content bytes, when the store recorded them.
    pub content_bytes: Option<u64>,
    pub _mount: Option<Mounted>,
}

/// Where an archive comes from.
pub(crate) enum Source {
    /// A file or stdin: read as it is.
    Stream(Box<dyn Read + Send>),
    /// A committed generation: read only through
    /// [`store::Generation::open_verified_reader`], against its meta.json, as the recovery
    /// image reads it.
    Generation(Box<store::Generation>),
}

/// Opens `file_name` (`-` = stdin). A directory is refused here, before anything is read.
pub(crate) fn open_file(file_name: &Path) -> Result<Input> {
    if file_name == Path::new("-") {
        return Ok(Input {
            source: Source::Stream(Box::new(io::stdin())),
            size: None,
            name: "stdin".into(),
            content_bytes: None,
            _mount: None,
        });
    }
    if file_name.is_dir() {
        bail!(
            "{} is a directory, not an archive: give the backup file (file-name=FILE) or a \
             generation of the store",
            file_name.display()
        );
    }
    let f = File::open(file_name)
        .with_context(|| format!("cannot open the archive {}", file_name.display()))?;
    let size = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
    Ok(Input {
        source: Source::Stream(Box::new(f)),
        size,
        name: file_name.display().to_string(),
        content_bytes: None,
        _mount: None,
    })
}

/// The archive of a committed generation (`latest` or an id), to be read against its
/// meta.json (see [`decode`]).
pub(crate) fn open_generation(store: &Store, device: &str, id: &str) -> Result<Input> {
    let g = store.find(id)?;
    Ok(Input {
        size: Some(g.meta.size),
        name: format!("generation {} ({device})", g.id),
        content_bytes: Some(g.meta.bytes),
        source: Source::Generation(Box::new(g)),
        _mount: None,
    })
}

/// The archive a command names: a generation of the store, or a file.
pub(crate) fn select(
    generation: Option<&str>,
    file_name: Option<&Path>,
    device: Option<&Path>,
) -> Result<Input> {
    match (generation, file_name) {
        (None, Some(f)) => open_file(f),
        (Some(_), Some(_)) => bail!("give either a generation or file-name=F, not both"),
        (Some(g), None) => {
            let st = open_store(device)?;
            let mut input = open_generation(&st.store, &st.device, g)?;
            input._mount = Some(st.mounted);
            Ok(input)
        }
        (None, None) => {
            bail!("say what to restore: a generation id, 'latest', or file-name=F (- for stdin)")
        }
    }
}

/// A file that is neither a tar (plain or compressed) nor a Lifeboat archive: its first
/// block, once decompressed, is not a tar header (core's [`ArchiveError::NotAnArchive`]).
#[derive(Debug)]
pub(crate) struct NotAnArchive {
    pub name: String,
    /// What was found instead, e.g. "its first 512 bytes are not a tar header".
    pub found: String,
}

impl std::fmt::Display for NotAnArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is not a Lifeboat or tar archive: {} (a backup is a file written by `lifeboat \
             host-backup`, or a tar: .tar, .tar.gz, .tar.zst, .tar.xz)",
            self.name, self.found
        )
    }
}

impl std::error::Error for NotAnArchive {}

/// Opens `input` for the archive reader, progress counted on the compressed bytes. A file is
/// decompressed by core's [`codec::decoder`], which refuses a stream that is neither a tar
/// nor a compressed tar ([`NotAnArchive`]). A generation is opened with
/// [`store::Generation::open_verified_reader`]: checked against its meta.json up to its
/// first entry (any failure is the store's error, naming the generation); after the last
/// entry the caller checks the end ([`store::Generation::check_reader_end`]).
pub(crate) fn decode(input: Input, progress: &'static dyn Progress) -> Result<Decoded> {
    let Input {
        source,
        name,
        content_bytes,
        _mount,
        ..
    } = input;
    let (codec, reader, generation) = match source {
        Source::Generation(g) => {
            let (codec, reader) = g
                .open_verified_reader(|f| ProgressReader::new(f, progress))
                .map_err(GenerationRefused)?;
            (codec, reader, Some(*g))
        }
        Source::Stream(stream) => {
            let counted = ProgressReader::new(stream, progress);
            match codec::decoder(counted).map_err(ArchiveError::from) {
                Ok((codec, tar)) => (codec, ArchiveReader::new(tar), None),
                Err(ArchiveError::NotAnArchive(found) | ArchiveError::Empty(found)) => {
                    return Err(NotAnArchive { name, found }.into())
                }
                Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot read {name}"))),
            }
        }
    };
    Ok(Decoded {
        codec,
        reader,
        name,
        content_bytes,
        generation,
        _mount,
    })
}

/// A generation that does not open as its meta.json records (no archive at all, another
/// codec or manifest, a file of another size), or cannot be opened: the store's error. Its
/// message already carries the cause, so the cause is not given again as a source (which
/// would print it twice in `error: a: b` chains).
#[derive(Debug)]
pub(crate) struct GenerationRefused(pub StoreError);

impl std::fmt::Display for GenerationRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for GenerationRefused {}

/// An archive opened for reading: the archive reader over the decompressed stream.
pub(crate) struct Decoded {
    pub codec: Codec,
    pub reader: ArchiveReader<Box<dyn Read + Send>>,
    pub name: String,
    pub content_bytes: Option<u64>,
    /// The generation read, to check against its meta.json after the last entry.
    pub generation: Option<store::Generation>,
    pub _mount: Option<Mounted>,
}

/// The backup source of `backup` and `host-backup`: the root (which must be a directory),
/// excludes, includes, codec and level.
pub(crate) fn source_options(args: &SourceArgs) -> Result<SourceOptions> {
    let root = std::fs::canonicalize(&args.root).with_context(|| {
        format!(
            "the root '{}' does not exist or cannot be read",
            args.root.display()
        )
    })?;
    if !root.is_dir() {
        bail!("the root {} is not a directory", root.display());
    }
    let mut opts = SourceOptions::new(root);
    if args.no_default_excludes {
        opts.excludes.clear();
    }
    opts.excludes.extend(args.excludes.iter().cloned());
    opts.includes = args.includes.clone();
    opts.codec = args.compress.codec();
    opts.level = args.level;
    opts.threads = args.threads.unwrap_or(0);
    Ok(opts)
}

/// Runs `--pre-hook` with /bin/sh; its output goes to stderr (stdout may be the archive or
/// the JSON summary). A failure stops the command before anything is written.
pub(crate) fn run_pre_hook(hook: &str) -> Result<()> {
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(hook)
        .stdout(io::stderr())
        .status()
        .with_context(|| format!("cannot run the pre-hook '{hook}' with /bin/sh"))?;
    if !status.success() {
        bail!("the pre-hook '{hook}' failed ({status}); no backup was written");
    }
    Ok(())
}

/// `xe` on PATH (a XenServer/XCP-ng host), if any.
pub(crate) fn find_xe() -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("xe"))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Runs `xe pool-dump-database file-name=DEST`; xe's output goes to stderr. A failure stops
/// the backup before anything is committed.
pub(crate) fn dump_pool_database(xe: &Path, dest: &Path) -> Result<()> {
    let status = std::process::Command::new(xe)
        .arg("pool-dump-database")
        .arg(format!("file-name={}", dest.display()))
        .stdout(io::stderr())
        .status()
        .with_context(|| format!("cannot run {} pool-dump-database", xe.display()))?;
    if !status.success() {
        bail!(
            "`{} pool-dump-database` failed ({status}); no backup was committed. Check that xapi \
             runs (`xe host-list`), or back up without the pool database: --no-pool-database",
            xe.display()
        );
    }
    if !dest.is_file() {
        bail!(
            "`{} pool-dump-database` succeeded but wrote no file {}; no backup was committed",
            xe.display(),
            dest.display()
        );
    }
    Ok(())
}

/// Drops a written file's pages from the page cache, so that reading it back checks what
/// is on the disk rather than what is in memory.
pub(crate) fn drop_cache(file: &File) {
    let _ = nix::fcntl::posix_fadvise(
        file.as_raw_fd(),
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    );
}

/// True when an error, anywhere in its chain, is "no space left on device" (ENOSPC), as a
/// typed error (core's `store::space::is_no_space`): an `io::Error` (also one carried inside
/// another), the store's, the backup source's or the archive writer's.
pub(crate) fn is_no_space(e: &anyhow::Error) -> bool {
    e.chain().any(store::space::is_no_space)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use lifeboat_core::archive::header::BLOCK;
    use lifeboat_core::source::SourceError;
    use std::io::Write;

    fn input(bytes: Vec<u8>) -> Input {
        Input {
            source: Source::Stream(Box::new(io::Cursor::new(bytes))),
            size: None,
            name: "test.xbk".into(),
            content_bytes: None,
            _mount: None,
        }
    }

    fn verdict(bytes: Vec<u8>) -> Result<Vec<u8>, String> {
        match decode(input(bytes), crate::ui::Bar::leaked(true, None)) {
            Ok(d) => {
                let mut all = Vec::new();
                d.reader.into_inner().read_to_end(&mut all).unwrap();
                Ok(all)
            }
            Err(e) => Err(e.downcast::<NotAnArchive>().unwrap().to_string()),
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// One ustar header for a file `hello` of `size` bytes, with its checksum.
    fn tar_header() -> Vec<u8> {
        let mut h = vec![0u8; BLOCK];
        h[..5].copy_from_slice(b"hello");
        h[100..107].copy_from_slice(b"0000644");
        h[124..135].copy_from_slice(b"00000000000");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    #[test]
    fn a_tar_passes_whole_and_noise_is_not_an_archive() {
        let mut tar = tar_header();
        tar.extend_from_slice(&[0u8; 2 * BLOCK]);
        assert_eq!(verdict(tar.clone()).unwrap(), tar);
        assert_eq!(verdict(gzip(&tar)).unwrap(), tar);
        assert!(verdict(Vec::new()).is_err(), "an empty file is no archive");

        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i * 7919 % 251) as u8 ^ 0x5a)
            .collect();
        let msg = verdict(noise.clone()).unwrap_err();
        assert!(
            msg.contains("test.xbk is not a Lifeboat or tar archive"),
            "{msg}"
        );
        let msg = verdict(gzip(&noise)).unwrap_err();
        assert!(msg.contains("gzip-compressed content"), "{msg}");
        let msg = verdict(b"hello".to_vec()).unwrap_err();
        assert!(msg.contains("not a Lifeboat or tar archive"), "{msg}");
    }

    fn enospc() -> io::Error {
        io::Error::from_raw_os_error(libc::ENOSPC)
    }

    #[test]
    fn no_space_is_found_by_type_at_any_depth() {
        assert!(is_no_space(
            &anyhow::Error::new(enospc()).context("writing")
        ));
        assert!(is_no_space(&anyhow::Error::new(SourceError::Output(
            enospc()
        ))));
        assert!(is_no_space(&anyhow::Error::new(SourceError::Archive(
            ArchiveError::Io(enospc())
        ))));
        assert!(is_no_space(&anyhow::Error::new(io::Error::other(enospc()))));
        assert!(is_no_space(&anyhow::Error::new(StoreError::Io {
            path: "/x".into(),
            source: enospc(),
        })));
        // The words alone are not enough: only the error code counts.
        assert!(!is_no_space(&anyhow::anyhow!(
            "No space left on device (os error 28)"
        )));
        assert!(!is_no_space(&anyhow::Error::new(
            io::Error::from_raw_os_error(libc::EIO)
        )));
    }
}
