//! Reads a whole archive and checks everything it can: every header, every checksum, the
//! manifest, the trailer, and the compressed stream's own check.

use std::io::Read;

use super::manifest::{Counts, Manifest, Trailer};
use super::reader::ArchiveReader;
use super::ArchiveError;
use crate::codec::{self, Codec};

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

/// Decompresses (codec detected from the magic) and verifies a whole archive. The error
/// names the first damaged path.
pub fn verify_stream<R: Read + Send + 'static>(input: R) -> Result<VerifyReport, ArchiveError> {
    let (codec, tar) = codec::decoder(input)?;
    verify_tar(tar, codec)
}

/// Verifies an uncompressed tar stream (`codec` is only recorded in the report).
pub fn verify_tar<R: Read>(tar: R, codec: Codec) -> Result<VerifyReport, ArchiveError> {
    let mut reader = ArchiveReader::new(tar);
    let mut buf = vec![0u8; 256 * 1024];
    while let Some(mut e) = reader.next_entry()? {
        loop {
            let n = e.read(&mut buf)?;
            if n == 0 {
                break;
            }
        }
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
