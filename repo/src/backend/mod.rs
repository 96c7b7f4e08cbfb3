//! Object storage: the one interface the repository format is written against.
//!
//! A backend stores whole objects under `/`-separated keys relative to the repository's
//! prefix. It never relies on conditional writes (Garage ignores `If-None-Match`): the format
//! writes every object under a content-derived name or once per generation, so a repeated put
//! of the same key with the same bytes is harmless, and commits by writing an index last.

pub mod local;

use std::time::SystemTime;

pub mod s3;
/// Opens the repository a URL names: a local path (absolute or relative) or `file:///path`
/// or `s3://bucket/prefix` (reached as `s3` says).
pub fn open(url: &str, s3: &S3Settings) -> Result<Box<dyn Backend>, BackendError> {
    if url.starts_with("s3://") {
        return Ok(Box::new(s3::S3Backend::open(url, s3)?));
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    if path.contains("://") {
        return Err(BackendError::Unsupported {
            what: format!(
                "the repository URL {url} (give a directory, file:///DIR or s3://BUCKET/PREFIX)"
            ),
        });
    }
    Ok(Box::new(local::LocalBackend::open(std::path::Path::new(
        path,
    ))?))
}

/// [`open`], creating a local directory when it is missing (for `lifeboat repo init`).
pub fn create(url: &str, s3: &S3Settings) -> Result<Box<dyn Backend>, BackendError> {
    let path = url.strip_prefix("file://").unwrap_or(url);
    if !path.contains("://") {
        return Ok(Box::new(local::LocalBackend::create(
            std::path::Path::new(path),
        )?));
    }
    open(url, s3)
}

/// What went wrong talking to the object store. Every variant names what to do next in its
/// message; callers add the repository URL.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The object does not exist.
    #[error("object {key} does not exist")]
    NotFound { key: String },
    /// Credentials were refused (wrong key or secret, expired token, no permission).
    #[error(
        "the object store refused the credentials ({detail}): check the access key and secret"
    )]
    Denied { detail: String },
    /// The bucket (or the local repository directory) does not exist.
    #[error("bucket or repository {name} does not exist: create it, or run `lifeboat repo init`")]
    NoBucket { name: String },
    /// The store is out of space or over quota.
    #[error("the object store is full or over quota ({detail}): free space or raise the quota")]
    Full { detail: String },
    /// The store cannot be reached (DNS, connection refused, TLS, timeout) after retries.
    #[error("the object store at {endpoint} cannot be reached ({detail}): check the endpoint and the network")]
    Unreachable { endpoint: String, detail: String },
    /// The store does not support an operation asked for (for example Object Lock).
    #[error("the object store does not support {what}")]
    Unsupported { what: String },
    /// An object is locked (Object Lock retention) and cannot be deleted or overwritten yet.
    #[error("object {key} is under retention until {until}: it cannot be deleted yet")]
    Retained { key: String, until: String },
    /// Anything else the store answered, with its status and message.
    #[error("the object store failed on {key}: {detail}")]
    Other { key: String, detail: String },
    /// A local I/O error (local-directory backend, or reading a credentials file).
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl BackendError {
    /// Worth retrying with backoff (network errors, 5xx, throttling)?
    pub fn is_transient(&self) -> bool {
        matches!(self, BackendError::Unreachable { .. })
    }
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Key relative to the repository prefix.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time as the store reports it.
    pub modified: Option<SystemTime>,
}

/// Object Lock retention asked for on a put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Until when the object cannot be deleted or overwritten.
    pub until: SystemTime,
    /// COMPLIANCE (nobody can shorten it) or GOVERNANCE (a privileged user can).
    pub mode: RetentionMode,
}

/// S3 Object Lock modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionMode {
    Compliance,
    Governance,
}

/// An object store holding one repository (bucket plus prefix, or a directory).
///
/// Implementations retry transient failures with backoff themselves and return
/// [`BackendError::Unreachable`] only when retries are exhausted. They are `Send + Sync`:
/// uploads and downloads run on several threads at once.
pub trait Backend: Send + Sync {
    /// Writes `data` as the whole object `key` (multipart above the backend's part size).
    /// With `retention`, the object is written under Object Lock, or the call fails with
    /// [`BackendError::Unsupported`].
    fn put(&self, key: &str, data: &[u8], retention: Option<Retention>)
        -> Result<(), BackendError>;
    /// Extends the retention of an existing object to at least `retention.until` (a chunk a
    /// new generation reuses); an object already retained longer is left as it is.
    fn extend_retention(&self, key: &str, retention: Retention) -> Result<(), BackendError>;
    /// Reads the whole object.
    fn get(&self, key: &str) -> Result<Vec<u8>, BackendError>;
    /// The object's size, or `None` when it does not exist.
    fn head(&self, key: &str) -> Result<Option<u64>, BackendError>;
    /// Every object whose key starts with `prefix`, in key order (all pages).
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BackendError>;
    /// Deletes the object; deleting a missing object is not an error.
    fn delete(&self, key: &str) -> Result<(), BackendError>;
    /// Whether puts with [`Retention`] are possible here (bucket created with Object Lock).
    fn supports_retention(&self) -> Result<bool, BackendError>;
    /// The repository's location for messages (`s3://bucket/prefix at https://endpoint`).
    fn describe(&self) -> String;
}

/// How to reach an S3-compatible store: the `[repository]` table of
/// `/etc/lifeboat/lifeboat.toml` beside `url = "s3://bucket/prefix"`, or command-line options.
/// Credentials never come from here directly: from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`,
/// an AWS credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`, profile
/// `AWS_PROFILE` or `profile`), or the file named by `credentials_file` (same INI format).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// `https://host:port` (or `http://` on a trusted network); default AWS for the region.
    pub endpoint: Option<String>,
    /// Signing region; default `us-east-1` (what Ceph RGW, MinIO and Garage accept by default).
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`) instead of virtual-hosted
    /// (`bucket.endpoint/key`); most self-hosted stores want it.
    #[serde(default)]
    pub path_style: bool,
    /// An AWS-style credentials file to read instead of the default places.
    pub credentials_file: Option<std::path::PathBuf>,
    /// Profile in the credentials file (default `AWS_PROFILE`, else `default`).
    pub profile: Option<String>,
    /// A PEM file of CA certificates trusted beside the system's bundle (a private CA in front
    /// of the store; `mkrescue --repo-ca` bakes the same file into the recovery image).
    pub ca_file: Option<std::path::PathBuf>,
}
