//! Lifeboat's off-host repository: generations of a host's archive stream, cut into
//! content-defined chunks, encrypted, deduplicated across generations and hosts, on any
//! S3-compatible object store (or a local directory, for tests and USB disks).
//!
//! Layering: [`backend`] moves whole objects (put/get/list/delete) and knows nothing of the
//! format; the format modules above it decide what the objects are: [`layout`] (names and
//! formats), [`chunking`], [`crypto`], [`repository`] (config and keys), [`push`],
//! [`reader`], [`prune`], [`check`], [`restores`] (the recovery image's restore journal).
//!
//! # Keys
//!
//! - A **fleet key** (32 random bytes, a root-only file the administrator copies to each host
//!   of the fleet, as a restic password is distributed) derives the convergent chunk keys,
//!   the chunk ids, the host ids and the key sealing the index refs. It is also stored in the
//!   repository as `keys/fleet.age`, age-encrypted to the recovery recipients only, so the
//!   recovery key alone can restore any generation and write a new fleet key file.
//!   Enrollment by wrapping it to each host's recipient in the repository was not chosen: a
//!   new host needs an administrator's step either way, and a file per host is one more
//!   thing a broken-into host could replace.
//! - Each **host identity** (age X25519, a root-only file made on the host) reads the secret
//!   part of that host's indexes; the opaque host id is a keyed hash of its recipient.
//! - The **recovery key** (age X25519, printed once by `repo init`, kept offline) reads every
//!   index and the wrapped fleet key.
//!
//! # Trade-off: deduplication across hosts against confidentiality between hosts
//!
//! Chunks are encrypted convergently: the key of a chunk is a keyed hash (fleet key) of its
//! plaintext, so two hosts with the same file produce the same chunk object once. A host
//! broken into holds the fleet key and its own identity, NOT other hosts' identities: it
//! cannot open their indexes, so it cannot learn which chunks make up their generations nor
//! their keys; it can decrypt only a chunk whose plaintext it already has. What it CAN do:
//! confirm that some host holds a given content (compute the chunk id of a guessed
//! plaintext and look for the object) and, from the refs part of an index (sealed with the
//! fleet key, so prune can run on any host), learn which host's generation references that
//! chunk; a guessable small secret in a file aligned to a chunk is the risk (the classic
//! convergent-encryption confirmation attack). It can also delete objects (no Object Lock
//! yet). The object store without the fleet key sees only opaque ids, chunk and index sizes
//! and times: never plaintext, plaintext hashes, file names or single files' sizes (chunks
//! span files, and are compressed before encryption).

pub mod backend;
pub mod check;
pub mod chunking;
pub mod crypto;
pub mod layout;
pub mod prune;
pub mod push;
pub mod reader;
pub mod repository;
pub mod restores;
pub mod testing;

#[cfg(test)]
mod tests;

pub use repository::{Keys, Repository};

/// What went wrong with the repository (callers add the repository URL).
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The object store failed.
    #[error(transparent)]
    Backend(#[from] backend::BackendError),
    /// A key is missing, malformed or not this repository's.
    #[error("{0}")]
    Key(String),
    /// An object is damaged or not what its name says.
    #[error("{0}")]
    Damaged(String),
    /// The repository's format is not one this version reads, or a request is invalid.
    #[error("{0}")]
    Format(String),
    /// Reading the local stream failed.
    #[error("reading the generation failed: {0}")]
    Read(#[source] std::io::Error),
    /// The local generation did not verify (the store's error).
    #[error("{0}")]
    Local(Box<dyn std::error::Error + Send + Sync>),
    /// Another thread of the same push failed first (its error is returned instead).
    #[error("the push stopped")]
    Stopped,
}
