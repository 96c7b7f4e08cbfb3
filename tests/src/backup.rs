//! A backup made with the library (walker + archive writer + codec), for tests that need an
//! archive of a tree without going through `lifeboat host-backup`.

use anyhow::{Context, Result};
use lifeboat_core::archive::writer::ArchiveWriter;
use lifeboat_core::archive::{ArchiveError, Entry, Manifest};
use lifeboat_core::codec::{self, Codec};
use lifeboat_core::progress::NoProgress;
use lifeboat_core::source::pipeline::{self, EntrySink};
use lifeboat_core::source::SourceOptions;
use std::io::{Read, Write};
use std::path::Path;

struct Sink<W: Write>(ArchiveWriter<W>);

impl<W: Write> EntrySink for Sink<W> {
    fn append(&mut self, entry: &Entry, content: &mut dyn Read) -> Result<(), ArchiveError> {
        self.0.append(entry, content)
    }
}

/// Writes an archive of `root` (xe host-backup's default excludes) to `out`, compressed with
/// `codec`.
pub fn backup_tree(root: &Path, out: &Path, codec: Codec) -> Result<()> {
    let file =
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let enc = codec::encoder(
        std::io::BufWriter::with_capacity(1 << 20, file),
        codec,
        None,
        0,
    )?;
    let manifest = Manifest {
        format_version: lifeboat_core::archive::manifest::FORMAT_VERSION,
        tool_version: lifeboat_core::VERSION.to_string(),
        hostname: "lbtest".into(),
        codec: codec.name().into(),
        ..Manifest::default()
    };
    let mut sink = Sink(ArchiveWriter::new(enc, &manifest)?);
    let opts = SourceOptions::new(root);
    let notes = pipeline::run(&opts.walk_config(), &mut sink, &NoProgress)?;
    let (enc, _trailer) = sink.0.finish(notes.changed_files, notes.sockets_skipped)?;
    let mut buf = enc.finish()?;
    buf.flush()?;
    Ok(())
}
