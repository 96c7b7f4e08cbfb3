//! The Lifeboat protocol around the members: the manifest first, the trailer last, the counts
//! and the entries digest compared, and the rules for the end of any archive.

use std::io::Read;

use super::super::digest::{self, EntriesDigest};
use super::super::entry::{Entry, EntryKind};
use super::super::manifest::{Counts, Manifest, Trailer, FORMAT_MINOR, FORMAT_VERSION};
use super::super::ArchiveError;
use super::content::SparseSums;
use super::corrupt;
use super::input::BlockInput;
use super::member::{Layout, Padding};

/// Largest manifest or trailer accepted.
const MAX_META: u64 = 64 << 20;

pub(super) struct Protocol {
    pub is_lifeboat: bool,
    pub manifest: Option<Manifest>,
    manifest_digest: Option<String>,
    pub trailer: Option<Trailer>,
    pub counts: Counts,
    digest: EntriesDigest,
    /// What sparse files' checksums mean in this archive (from the manifest's version).
    pub sums: SparseSums,
}

impl Protocol {
    pub fn new() -> Self {
        Self {
            is_lifeboat: false,
            manifest: None,
            manifest_digest: None,
            trailer: None,
            counts: Counts::default(),
            digest: EntriesDigest::new(),
            sums: SparseSums::MapAndData,
        }
    }

    /// Counts a filesystem entry (and adds it to the digest of a Lifeboat archive).
    pub fn admit(&mut self, entry: &Entry) {
        if self.is_lifeboat {
            self.digest.add(entry);
        }
        digest::count(&mut self.counts, entry);
    }

    /// At the end-of-archive marker: an archive without entries is no backup, and a Lifeboat
    /// archive must have ended with its trailer.
    pub fn check_end(&self) -> Result<(), ArchiveError> {
        if self.is_lifeboat && self.trailer.is_none() {
            return Err(ArchiveError::Truncated(format!(
                "the archive ends after {} entries without its trailer",
                self.counts.entries
            )));
        }
        if self.counts.entries == 0 {
            return Err(ArchiveError::Empty(
                "it holds no entries before its end-of-archive blocks".into(),
            ));
        }
        Ok(())
    }

    pub fn read_manifest<R: Read>(
        &mut self,
        input: &mut BlockInput<R>,
        padding: &mut Padding,
        entry: &Entry,
        layout: &Layout,
    ) -> Result<(), ArchiveError> {
        if entry.path != super::super::manifest::MANIFEST_PATH.as_bytes() {
            return Err(corrupt(
                &entry.path,
                "the first entry is marked as Lifeboat's but is not the manifest",
            ));
        }
        self.is_lifeboat = true;
        padding.strict = true;
        let bytes = read_meta_content(input, padding, entry, layout)?;
        let m: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| corrupt(&entry.path, format!("the manifest is not valid: {e}")))?;
        if (m.format_version, m.format_minor) > (FORMAT_VERSION, FORMAT_MINOR) {
            return Err(ArchiveError::Unsupported(format!(
                "archive format {}.{} is newer than this Lifeboat understands ({FORMAT_VERSION}.{FORMAT_MINOR}); use a newer Lifeboat",
                m.format_version, m.format_minor,
            )));
        }
        self.sums = if m.format_minor >= 1 {
            SparseSums::MapAndData
        } else {
            SparseSums::Logical { holes_hashed: 0 }
        };
        self.manifest_digest = Some(blake3::hash(&bytes).to_hex().to_string());
        self.manifest = Some(m);
        Ok(())
    }

    pub fn read_trailer<R: Read>(
        &mut self,
        input: &mut BlockInput<R>,
        padding: &mut Padding,
        entry: &Entry,
        layout: &Layout,
    ) -> Result<(), ArchiveError> {
        let bytes = read_meta_content(input, padding, entry, layout)?;
        let t: Trailer = serde_json::from_slice(&bytes)
            .map_err(|e| corrupt(&entry.path, format!("the trailer is not valid: {e}")))?;
        let mut expect = t.counts.clone();
        expect.sockets_skipped = 0;
        if expect != self.counts {
            return Err(corrupt(
                &entry.path,
                format!(
                    "the archive holds {} entries ({} files, {} bytes) but the trailer records {} ({} files, {} bytes): entries are missing or were added",
                    self.counts.entries, self.counts.files, self.counts.bytes,
                    t.counts.entries, t.counts.files, t.counts.bytes
                ),
            ));
        }
        if t.entries_digest != self.digest.hex() {
            return Err(corrupt(
                &entry.path,
                "the headers' digest does not match the trailer: some entry's metadata was altered",
            ));
        }
        if Some(&t.manifest_digest) != self.manifest_digest.as_ref() {
            return Err(corrupt(
                &entry.path,
                "the manifest does not match the trailer",
            ));
        }
        self.counts.sockets_skipped = t.counts.sockets_skipped;
        self.trailer = Some(t);
        Ok(())
    }
}

/// The bytes of the manifest or trailer, checked against their checksum.
fn read_meta_content<R: Read>(
    input: &mut BlockInput<R>,
    padding: &mut Padding,
    entry: &Entry,
    layout: &Layout,
) -> Result<Vec<u8>, ArchiveError> {
    if !matches!(entry.kind, EntryKind::File { sparse: None }) {
        return Err(corrupt(
            &entry.path,
            "Lifeboat metadata is not a plain file",
        ));
    }
    if layout.stored > MAX_META {
        return Err(corrupt(
            &entry.path,
            "Lifeboat metadata is implausibly large",
        ));
    }
    let mut v = vec![0u8; layout.stored as usize];
    input.read_exact(&mut v, "Lifeboat metadata")?;
    padding.skip(input, layout.pad, &entry.path)?;
    let sum = entry
        .checksum
        .ok_or_else(|| corrupt(&entry.path, "the header carries no checksum"))?;
    if *blake3::hash(&v).as_bytes() != sum {
        return Err(ArchiveError::ChecksumMismatch {
            path: entry.display_path(),
        });
    }
    Ok(v)
}
