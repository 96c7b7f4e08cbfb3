//! `write_backup`: the pipeline wired to the archive writer and the codec.

use super::{pipeline, BackupReport, SourceError, SourceOptions};
use crate::archive::writer::ArchiveWriter;
use crate::archive::Manifest;
use crate::progress::Progress;
use std::io::Write;

impl<W: Write> pipeline::EntrySink for ArchiveWriter<W> {
    fn append(
        &mut self,
        entry: &crate::archive::Entry,
        content: &mut dyn std::io::Read,
    ) -> Result<(), crate::archive::ArchiveError> {
        ArchiveWriter::append(self, entry, content)
    }
}

/// Walks `opts.root` and writes one compressed archive of it into `out`. `manifest` is
/// completed here (format and tool version, time and hostname when empty, excludes, includes,
/// skipped mount points, codec). Returns `out` (flushed) and what happened.
pub fn write_backup<W: Write>(
    opts: &SourceOptions,
    mut manifest: Manifest,
    out: W,
    progress: &dyn Progress,
) -> Result<(W, BackupReport), SourceError> {
    opts.check_spool()?;
    super::complete_manifest(opts, &mut manifest);
    progress.set_total(super::estimate_bytes(opts));
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        opts.threads
    };
    let enc =
        crate::codec::encoder(out, opts.codec, opts.level, threads).map_err(SourceError::Output)?;
    let mut writer = ArchiveWriter::new(enc, &manifest)?;
    let cfg = opts.walk_config();
    let notes = pipeline::run(&cfg, &mut writer, progress)?;
    let (enc, trailer) = writer.finish(notes.changed_files.clone(), notes.sockets_skipped)?;
    let mut out = enc.finish().map_err(SourceError::Output)?;
    out.flush().map_err(SourceError::Output)?;
    progress.finish();
    let mut warnings = notes.warnings;
    if notes.warnings_dropped > 0 {
        warnings.push(format!("... and {} more warnings", notes.warnings_dropped));
    }
    Ok((
        out,
        BackupReport {
            trailer,
            skipped_mounts: notes.skipped_mounts,
            changed_files: notes.changed_files,
            sockets_skipped: notes.sockets_skipped,
            warnings,
        },
    ))
}
