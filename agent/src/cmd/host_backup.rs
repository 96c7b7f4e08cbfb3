//! `lifeboat host-backup file-name=F`: streams one archive of the live root to a file or to
//! stdout, like `xe host-backup`. A file is written as `F.partial` and renamed to `F` only when
//! the backup is complete, so a failed backup never leaves a plausible `F`. A character device
//! or a FIFO (`/dev/null`, a pipe) is written in place; a directory or a block device is
//! refused before anything runs: a node is never replaced by a file.
//!
//! Exit status: 0 complete, 1 complete but not consistent (files changed while read, or could
//! not be read; as GNU tar's 1), 2 error.

use super::common::{run_pre_hook, source_options};
use crate::cli::HostBackupArgs;
use anyhow::{bail, Context};
use lifeboat_core::archive::Manifest;
use lifeboat_core::source::{self, BackupReport, SourceOptions};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const OUT_BUFFER: usize = 1 << 20;

/// Where the archive goes (also where `host-backup host=H` puts what the far side sends).
pub(crate) enum Destination {
    Stdout,
    /// A regular file, written as `partial` and renamed to `dest` when complete.
    File {
        dest: PathBuf,
        partial: PathBuf,
    },
    /// An existing character device or FIFO, opened (not a terminal) and written in place.
    Node(PathBuf, File),
}

impl Destination {
    /// After a transfer into a file: renamed into place when `complete`, else removed (a
    /// half-received archive never takes the name). Other destinations need nothing.
    pub(crate) fn finish(&self, complete: bool) -> anyhow::Result<()> {
        if let Destination::File { dest, partial } = self {
            if complete {
                std::fs::rename(partial, dest).with_context(|| {
                    format!(
                        "cannot rename '{}' to '{}'",
                        partial.display(),
                        dest.display()
                    )
                })?;
            } else {
                let _ = std::fs::remove_file(partial);
            }
        }
        Ok(())
    }
}

/// Decides where the archive goes, refusing at once what cannot take it.
pub(crate) fn destination(file_name: &Path) -> anyhow::Result<Destination> {
    if file_name.as_os_str() == "-" {
        if std::io::stdout().is_terminal() {
            bail!(
                "refusing to write a compressed archive to a terminal: redirect stdout \
                 (file-name=- > backup.xbk) or give file-name=FILE"
            );
        }
        return Ok(Destination::Stdout);
    }
    let shown = file_name.display();
    let meta = match std::fs::metadata(file_name) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Destination::File {
                dest: file_name.to_path_buf(),
                partial: partial_path(file_name),
            })
        }
        Err(e) => return Err(e).with_context(|| format!("cannot look at '{shown}'")),
    };
    let kind = meta.file_type();
    if kind.is_dir() {
        bail!(
            "'{shown}' is a directory: file-name names the archive file to write, e.g. \
             file-name={}",
            file_name.join("host.xbk").display()
        );
    }
    if kind.is_block_device() {
        bail!(
            "'{shown}' is a block device: host-backup writes an archive file and will not \
             overwrite a disk or partition. Give a file on a mounted filesystem, or make the \
             partition a Lifeboat store (`lifeboat init-store --backup-device {shown}`) and \
             use `lifeboat backup`"
        );
    }
    if kind.is_char_device() || kind.is_fifo() {
        // Opening a FIFO waits for its reader.
        let file = OpenOptions::new()
            .write(true)
            .open(file_name)
            .with_context(|| format!("cannot open '{shown}' for writing"))?;
        if file.is_terminal() {
            bail!(
                "refusing to write a compressed archive to the terminal '{shown}': give \
                 file-name=FILE"
            );
        }
        return Ok(Destination::Node(file_name.to_path_buf(), file));
    }
    if !kind.is_file() {
        bail!("'{shown}' is neither a regular file, a character device nor a FIFO");
    }
    // A symbolic link to a file: the file is replaced, not the link.
    let dest =
        std::fs::canonicalize(file_name).with_context(|| format!("cannot resolve '{shown}'"))?;
    let partial = partial_path(&dest);
    Ok(Destination::File { dest, partial })
}

pub fn run(args: HostBackupArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let HostBackupArgs {
        file_name,
        source,
        json,
        remote: _,
    } = args;
    let dest = destination(&file_name)?;
    let to_stdout = matches!(dest, Destination::Stdout);
    let mut opts = source_options(&source)?;
    if let Some(hook) = &source.pre_hook {
        run_pre_hook(hook)?;
    }
    let bar = crate::ui::Bar::new(quiet);
    let manifest = lifeboat_core::identity::manifest_for_root(&opts.root);
    let (report, written) = match dest {
        Destination::Stdout => {
            let out = BufWriter::with_capacity(OUT_BUFFER, std::io::stdout().lock());
            let (mut out, report) = source::write_backup(&opts, manifest, out, &bar)?;
            out.flush().context("writing the archive to stdout")?;
            (report, None)
        }
        Destination::Node(node, file) => {
            let out = BufWriter::with_capacity(OUT_BUFFER, file);
            let (mut out, report) = source::write_backup(&opts, manifest, out, &bar)?;
            out.flush()
                .with_context(|| format!("writing the archive to '{}'", node.display()))?;
            (report, None)
        }
        Destination::File { dest, partial } => {
            exclude_own_output(&mut opts, &partial);
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&partial)
                .with_context(|| {
                    format!(
                        "cannot create '{}' (is the directory there and writable?)",
                        partial.display()
                    )
                })?;
            let result = write_file(&opts, manifest, file, &bar, &partial, &dest);
            if result.is_err() {
                let _ = std::fs::remove_file(&partial);
            }
            let (report, size) = result?;
            (report, Some(size))
        }
    };
    lifeboat_core::progress::Progress::finish(&bar);
    print_notes(&report, quiet);
    if json && !to_stdout {
        let summary = serde_json::json!({
            "file": file_name,
            "archive_bytes": written,
            "codec": opts.codec.name(),
            "consistent": report.changed_files.is_empty(),
            "skipped_mounts": report.skipped_mounts,
            "changed_files": report.changed_files,
            "sockets_skipped": report.sockets_skipped,
            "warnings": report.warnings,
            "trailer": report.trailer,
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    Ok(ExitCode::from(report.exit_code()))
}

fn write_file(
    opts: &SourceOptions,
    manifest: Manifest,
    file: File,
    bar: &crate::ui::Bar,
    partial: &Path,
    dest: &Path,
) -> anyhow::Result<(BackupReport, u64)> {
    let out = BufWriter::with_capacity(OUT_BUFFER, file);
    let (out, report) = source::write_backup(opts, manifest, out, bar)?;
    let file = out
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing '{}'", partial.display()))?;
    file.sync_all().with_context(|| {
        format!(
            "syncing '{}' (is the disk full or failing?)",
            partial.display()
        )
    })?;
    let size = file.metadata()?.len();
    drop(file);
    std::fs::rename(partial, dest)
        .with_context(|| format!("renaming '{}' to '{}'", partial.display(), dest.display()))?;
    if let Some(dir) = dest.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok((report, size))
}

pub(crate) fn partial_path(dest: &Path) -> PathBuf {
    let mut p = dest.as_os_str().to_os_string();
    p.push(".partial");
    PathBuf::from(p)
}

/// When the archive is written below the root being backed up, it must not archive itself.
fn exclude_own_output(opts: &mut SourceOptions, partial: &Path) {
    let Some(name) = partial.file_name() else {
        return;
    };
    let parent = match partial.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(parent) = std::fs::canonicalize(parent) else {
        return;
    };
    if let Ok(rel) = parent.strip_prefix(&opts.root) {
        let rel = rel.join(name);
        let pat = String::from_utf8_lossy(rel.as_os_str().as_bytes()).into_owned();
        opts.excludes.push(format!("/{pat}"));
    }
}

fn print_notes(report: &BackupReport, quiet: bool) {
    for m in &report.skipped_mounts {
        eprintln!(
            "lifeboat: note: '/{m}' is another filesystem: archived as an empty directory \
             (add --include /{m} to back it up)"
        );
    }
    if report.sockets_skipped > 0 && !quiet {
        eprintln!(
            "lifeboat: note: {} socket(s) skipped (tar cannot carry sockets; programs recreate them)",
            report.sockets_skipped
        );
    }
    for w in &report.warnings {
        eprintln!("lifeboat: warning: {w}");
    }
    if !report.changed_files.is_empty() {
        eprintln!(
            "lifeboat: warning: {} file(s) changed while being read; the backup is complete \
             but not consistent:",
            report.changed_files.len()
        );
        for f in &report.changed_files {
            eprintln!("  /{f}");
        }
    }
}
