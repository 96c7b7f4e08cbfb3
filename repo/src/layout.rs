//! The repository's objects and their formats.
//!
//! ```text
//! config                         JSON: format version, chunker sizes, fleet key check value,
//!                                recovery recipients (public keys), prune grace period
//! keys/fleet.age                 the fleet secret, age-encrypted to the recovery recipients
//! chunks/<2 hex>/<64 hex id>     one encrypted, compressed chunk (crypto.rs)
//! hosts/<32 hex>/<GEN>.index     one generation; written LAST: the generation exists when
//!                                its index does
//! hosts/<32 hex>/restores/<32 hex>  the restore journal the recovery image keeps for one
//!                                machine (restores.rs), sealed with the fleet key; bounded:
//!                                the records of the last 10 restores whole, and of older
//!                                ones only the restore-done of each unattended request
//!                                (lifeboat_core::store::journal::bounded)
//! prune/<time>-<rand>.marks      chunk ids found unreferenced by a prune run (phase one)
//! ```
//!
//! An index: `LBIDX1\n`, the length of the refs part (8 bytes, little endian), the refs part
//! (chunk ids, sealed with the fleet key: prune and check read it on any host), then the
//! secret part (chunk keys and the generation's meta.json, age-encrypted to the writing host
//! and the recovery recipients).

use crate::chunking::ChunkerParams;
use crate::RepoError;
use lifeboat_core::store::GenerationMeta;
use serde::{Deserialize, Serialize};

pub const CONFIG: &str = "config";
pub const FLEET_KEY: &str = "keys/fleet.age";
pub const CHUNKS: &str = "chunks/";
pub const HOSTS: &str = "hosts/";
pub const PRUNE: &str = "prune/";
pub const FORMAT: u32 = 1;
const INDEX_MAGIC: &[u8] = b"LBIDX1\n";

/// The `config` object (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    pub format: u32,
    pub chunker: ChunkerParams,
    /// [`crate::crypto::FleetKey::check_value`]: a wrong fleet key file is named at once.
    pub fleet_key_check: String,
    /// Every index is also encrypted to these (age1...).
    pub recovery_recipients: Vec<String>,
    /// A chunk marked unreferenced is deleted only by a prune run this long after the mark;
    /// a push that runs longer than this refuses to commit.
    pub grace_seconds: u64,
    /// With S3 Object Lock: every object of a generation (index, pool database, the chunks it
    /// uploads or reuses) is written or extended with COMPLIANCE retention of this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock_days: Option<u32>,
}

impl RepoConfig {
    /// The retention a push asks for now, when the repository is locked.
    pub fn retention(&self) -> Option<crate::backend::Retention> {
        self.object_lock_days.map(|d| crate::backend::Retention {
            until: std::time::SystemTime::now()
                + std::time::Duration::from_secs(u64::from(d) * 86_400),
            mode: crate::backend::RetentionMode::Compliance,
        })
    }
}

/// The key of a chunk object.
pub fn chunk_key(id: &str) -> String {
    format!("{CHUNKS}{}/{id}", &id[..2.min(id.len())])
}

/// The chunk id in a chunk object's key, when it is one.
pub fn chunk_id_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(CHUNKS)?;
    let (dir, id) = rest.split_once('/')?;
    (dir.len() == 2
        && id.len() == 64
        && id.starts_with(dir)
        && id.bytes().all(|b| b.is_ascii_hexdigit()))
    .then_some(id)
}

/// The key of a generation's index.
pub fn index_key(host_id: &str, generation: &str) -> String {
    format!("{HOSTS}{host_id}/{generation}.index")
}

/// (host id, generation) of an index key.
/// `hosts/<host id>/<GEN>.pooldb`: the generation's pool database dump, age-encrypted to the
/// writing host and the recovery recipients (like the index's secret part). Written before
/// the index, deleted after it.
pub fn pool_database_key(host_id: &str, generation: &str) -> String {
    format!("{HOSTS}{host_id}/{generation}.pooldb")
}

/// `hosts/<host id>/status`: the last `verify --repo` of that host's generations, sealed with
/// the fleet key (so `repo hosts` shows it for every host), replaced by every verify.
pub fn status_key(host_id: &str) -> String {
    format!("{HOSTS}{host_id}/status")
}

/// `hosts/<host id>/restores/<machine id>`: the journal of the restores of that host's
/// generations onto one machine ([`crate::restores`]), sealed with the fleet key like the
/// status, replaced whole by every append. Neither prune nor check reads or deletes it.
pub fn restore_journal_key(host_id: &str, machine_id: &str) -> String {
    format!("{HOSTS}{host_id}/restores/{machine_id}")
}

/// What the last `verify --repo` of a host found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyStatus {
    /// RFC 3339 UTC time of the verification.
    pub time: String,
    /// Generations read, and those found damaged.
    pub checked: Vec<String>,
    pub damaged: Vec<String>,
}

pub fn parse_index_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(HOSTS)?;
    let (host, file) = rest.split_once('/')?;
    let gen = file.strip_suffix(".index")?;
    (!host.is_empty() && !gen.is_empty() && !gen.contains('/')).then_some((host, gen))
}

/// The refs part of an index: what prune and check need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refs {
    pub generation: String,
    /// Bytes of the tar stream.
    pub stream_len: u64,
    /// Chunk ids in stream order (a chunk may repeat).
    pub ids: Vec<String>,
}

/// One chunk as the secret part records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkEntry {
    /// The chunk key, hex.
    pub key: String,
    /// Plaintext bytes.
    pub len: u64,
}

/// The secret part of an index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Secret {
    pub host: String,
    pub generation: String,
    /// The generation's meta.json as the repository holds it: the stream is uncompressed, so
    /// `codec` is "none" and `size` is the tar stream's length; `local_codec` is the original.
    pub meta: GenerationMeta,
    pub local_codec: String,
    /// RFC 3339 time of the push.
    pub pushed: String,
    pub chunks: Vec<ChunkEntry>,
}

/// Joins the two parts of an index.
pub fn encode_index(refs_sealed: &[u8], secret_age: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(INDEX_MAGIC.len() + 8 + refs_sealed.len() + secret_age.len());
    out.extend_from_slice(INDEX_MAGIC);
    out.extend_from_slice(&(refs_sealed.len() as u64).to_le_bytes());
    out.extend_from_slice(refs_sealed);
    out.extend_from_slice(secret_age);
    out
}

/// Splits an index into its two parts.
pub fn decode_index<'a>(key: &str, data: &'a [u8]) -> Result<(&'a [u8], &'a [u8]), RepoError> {
    let bad = || {
        RepoError::Damaged(format!(
            "{key}: not a Lifeboat index (damaged or truncated)"
        ))
    };
    let rest = data.strip_prefix(INDEX_MAGIC).ok_or_else(bad)?;
    if rest.len() < 8 {
        return Err(bad());
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&rest[..8]);
    let n = usize::try_from(u64::from_le_bytes(n)).map_err(|_| bad())?;
    let rest = &rest[8..];
    if n > rest.len() {
        return Err(bad());
    }
    Ok(rest.split_at(n))
}

/// JSON then zstd (indexes and marks).
pub fn pack<T: Serialize>(v: &T) -> Result<Vec<u8>, RepoError> {
    let json = serde_json::to_vec(v).map_err(|e| RepoError::Format(e.to_string()))?;
    zstd::bulk::compress(&json, 3).map_err(|e| RepoError::Format(format!("zstd: {e}")))
}

/// The reverse of [`pack`]; at most 256 MiB of JSON.
pub fn unpack<T: for<'de> Deserialize<'de>>(data: &[u8], what: &str) -> Result<T, RepoError> {
    let json = zstd::bulk::decompress(data, 256 << 20)
        .map_err(|e| RepoError::Damaged(format!("{what}: does not decompress: {e}")))?;
    serde_json::from_slice(&json).map_err(|e| RepoError::Damaged(format!("{what}: {e}")))
}
