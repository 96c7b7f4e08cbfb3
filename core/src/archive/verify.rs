//! Reads a whole archive and checks everything it can: every header, every checksum, the
//! manifest, the trailer, the compressed stream's own check, and every entry against the
//! restore's own rules ([`crate::restore::validate`]), so that whatever verifies restores and
//! whatever the restore would refuse fails here first. The one verify loop: the agent's
//! `verify`, the recovery image's verify step and the read-back after a backup all call it.

use std::io::Read;

use super::manifest::{Counts, Manifest, Trailer};
use super::reader::ArchiveReader;
use super::{ArchiveError, Entry, EntryKind};
use crate::codec::{self, Codec};
use crate::restore::validate::{Invalid, Validator};

/// What [`verify_stream`] found in a sound archive.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub codec: Codec,
    /// False for a plain tar archive (no checksums to check: only its structure was read).
    pub is_lifeboat: bool,
    pub manifest: Option<Manifest>,
    pub trailer: Option<Trailer>,
    /// Counts of the entries read.
    pub counts: Counts,
    /// Bytes of uncompressed tar stream.
    pub tar_bytes: u64,
}

/// What is wrong with an archive.
#[derive(Debug, thiserror::Error)]
pub enum VerifyCause {
    /// Damage the reader found (a checksum, a header, the trailer, the stream).
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// An entry the restore would refuse.
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

/// Why an archive failed verification, and where: `last_entry` is the last entry read before
/// the damage, named in the message when the cause itself names no entry (a decompression
/// error, a truncation: "in or after the archive entry X").
#[derive(Debug, thiserror::Error)]
#[error("{cause}{}", self.location())]
pub struct VerifyError {
    pub cause: VerifyCause,
    pub last_entry: Option<String>,
}

impl VerifyError {
    /// The reader's error, when the damage is one.
    pub fn archive(&self) -> Option<&ArchiveError> {
        match &self.cause {
            VerifyCause::Archive(a) => Some(a),
            VerifyCause::Invalid(_) => None,
        }
    }

    fn location(&self) -> String {
        match (&self.cause, &self.last_entry) {
            (VerifyCause::Archive(a), Some(after)) if !names_an_entry(a) => {
                format!(" (the damage is in or after the archive entry '{after}')")
            }
            _ => String::new(),
        }
    }
}

impl From<ArchiveError> for VerifyError {
    fn from(e: ArchiveError) -> Self {
        Self {
            cause: e.into(),
            last_entry: None,
        }
    }
}

/// The reader's error, for callers that only handle those (an entry the restore would refuse
/// becomes [`ArchiveError::Refused`]; the location is kept in the message).
impl From<VerifyError> for ArchiveError {
    fn from(e: VerifyError) -> Self {
        let location = e.location();
        match e.cause {
            VerifyCause::Archive(ArchiveError::Io(io)) if !location.is_empty() => {
                ArchiveError::Io(std::io::Error::new(io.kind(), format!("{io}{location}")))
            }
            VerifyCause::Archive(ArchiveError::Truncated(s)) => {
                ArchiveError::Truncated(format!("{s}{location}"))
            }
            VerifyCause::Archive(ArchiveError::Unsupported(s)) => {
                ArchiveError::Unsupported(format!("{s}{location}"))
            }
            VerifyCause::Archive(a) => a,
            VerifyCause::Invalid(i) => ArchiveError::Refused {
                path: i.path,
                reason: i.reason,
            },
        }
    }
}

/// True when the error's message names the entry it is about (so no location is added).
pub fn names_an_entry(e: &ArchiveError) -> bool {
    !matches!(
        e,
        ArchiveError::Io(_) | ArchiveError::Truncated(_) | ArchiveError::Unsupported(_)
    )
}

/// Decompresses (codec detected from the magic) and verifies a whole archive. The error
/// names the first damaged path.
pub fn verify_stream<R: Read + Send + 'static>(input: R) -> Result<VerifyReport, VerifyError> {
    let (codec, tar) = codec::decoder(input).map_err(ArchiveError::from)?;
    verify_tar(tar, codec)
}

/// Verifies an uncompressed tar stream (`codec` is only recorded in the report).
pub fn verify_tar<R: Read>(tar: R, codec: Codec) -> Result<VerifyReport, VerifyError> {
    verify_tar_with(tar, codec, &mut |_| {})
}

/// [`verify_tar`], calling `each` after every entry is read and checked (for progress).
pub fn verify_tar_with<R: Read>(
    tar: R,
    codec: Codec,
    each: &mut dyn FnMut(&Entry),
) -> Result<VerifyReport, VerifyError> {
    verify_reader(&mut ArchiveReader::new(tar), codec, each)
}

/// The verify loop itself, on a reader the caller opened (e.g. a store generation opened
/// against its meta.json, with its manifest already read): reads every remaining entry to its
/// end and checks it; the report covers the whole archive.
pub fn verify_reader<R: Read>(
    reader: &mut ArchiveReader<R>,
    codec: Codec,
    each: &mut dyn FnMut(&Entry),
) -> Result<VerifyReport, VerifyError> {
    verify_reader_collecting(reader, codec, each, &mut SmallFiles::new(&[]))
}

/// The largest file [`SmallFiles`] keeps (a fstab, a grub.cfg, an inventory are a few KiB).
pub const SMALL_FILE_MAX: u64 = 1 << 20;

/// Named small regular files of an archive, collected while it is verified (the archive is
/// read once): e.g. `etc/fstab`, `boot/grub/grub.cfg` and `etc/xensource-inventory`, which
/// give the root's identity when the backup records none (`crate::plan::identity`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmallFiles {
    /// The archive paths wanted (no leading `./`).
    pub wanted: Vec<String>,
    /// Each wanted path found as a regular file of at most [`SMALL_FILE_MAX`] bytes (hard
    /// links and symlinks are not followed), with its content.
    pub found: std::collections::BTreeMap<String, Vec<u8>>,
}

impl SmallFiles {
    pub fn new(wanted: &[&str]) -> Self {
        SmallFiles {
            wanted: wanted
                .iter()
                .map(|w| w.trim_start_matches("./").to_string())
                .collect(),
            found: Default::default(),
        }
    }
    /// The content of `path` as text (lossy), when it was found.
    pub fn text(&self, path: &str) -> Option<String> {
        self.found
            .get(path)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
    fn wants(&self, e: &Entry) -> Option<String> {
        if !matches!(e.kind, EntryKind::File { sparse: None }) || e.size > SMALL_FILE_MAX {
            return None;
        }
        let p = std::str::from_utf8(&e.path).ok()?;
        self.wanted.iter().any(|w| w == p).then(|| p.to_string())
    }
}

/// [`verify_tar`] that also collects the named small files (see [`SmallFiles`]): one read of
/// the archive both verifies it and returns those files' contents.
pub fn verify_tar_collecting<R: Read>(
    tar: R,
    codec: Codec,
    files: &mut SmallFiles,
) -> Result<VerifyReport, VerifyError> {
    verify_reader_collecting(&mut ArchiveReader::new(tar), codec, &mut |_| {}, files)
}

/// [`verify_reader`], keeping the content of the files `files` names.
pub fn verify_reader_collecting<R: Read>(
    reader: &mut ArchiveReader<R>,
    codec: Codec,
    each: &mut dyn FnMut(&Entry),
    files: &mut SmallFiles,
) -> Result<VerifyReport, VerifyError> {
    let mut validator = Validator::new();
    // The raw path of the last entry read (made printable only for an error).
    let mut last: Option<Vec<u8>> = None;
    let mut buf = vec![0u8; 256 * 1024];
    let at = |cause: VerifyCause, last: &Option<Vec<u8>>| VerifyError {
        cause,
        last_entry: last
            .as_ref()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
    };
    loop {
        let mut e = match reader.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(err) => return Err(at(err.into(), &last)),
        };
        let l = last.get_or_insert_with(Vec::new);
        l.clear();
        l.extend_from_slice(&e.entry.path);
        if let Err(invalid) = validator.check(&e.entry) {
            return Err(at(invalid.into(), &last));
        }
        let keep = files.wants(&e.entry);
        let mut kept = Vec::new();
        loop {
            match e.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if keep.is_some() {
                        kept.extend_from_slice(&buf[..n]);
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(at(ArchiveError::from(err).into(), &last)),
            }
        }
        if let Some(path) = keep {
            files.found.insert(path, kept);
        }
        each(&e.entry);
    }
    Ok(VerifyReport {
        codec,
        is_lifeboat: reader.is_lifeboat(),
        manifest: reader.manifest().cloned(),
        trailer: reader.trailer().cloned(),
        counts: reader.counts().clone(),
        tar_bytes: reader.position(),
    })
}
