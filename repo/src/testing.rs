//! Helpers for the tests of this crate and of the crates that use it (as `lifeboat_core::testing`
//! is for core).

use crate::backend::local::LocalBackend;
use crate::backend::{Backend, BackendError, ObjectInfo, Retention};
use crate::chunking::ChunkerParams;
use crate::repository::{Initialized, Repository};
use crate::RepoError;
use lifeboat_core::store::{GenerationMeta, GenerationState, Origin};

/// The meta.json of a small verified generation `id` of `host`, for a push in a test.
pub fn meta(id: &str, host: &str) -> GenerationMeta {
    GenerationMeta {
        id: id.into(),
        created: "2026-12-02T10:00:00Z".into(),
        committed: "2026-12-02T10:00:01Z".into(),
        origin: Origin::Backup,
        host: host.into(),
        product_version: None,
        size: 0,
        files: 1,
        entries: 1,
        bytes: 1,
        codec: "zstd".into(),
        archive: "archive.tar.zst".into(),
        state: GenerationState::Verified,
        changed_files: vec![],
        manifest: None,
        entries_digest: None,
        pool_database: None,
    }
}

/// A new directory repository at `root` with the default chunker, a recovery key made by init
/// and a 60 s prune grace period.
pub fn init_local(root: &std::path::Path) -> Result<Initialized, RepoError> {
    Repository::init(
        Box::new(LocalBackend::create(root)?),
        ChunkerParams::default(),
        vec![],
        None,
        60,
        None,
    )
}

/// A backend whose every write is refused as S3 refuses a read-only credential's (reads go to
/// the backend inside).
pub struct ReadOnly<B: Backend>(pub B);

impl<B: Backend> Backend for ReadOnly<B> {
    fn put(&self, key: &str, _: &[u8], _: Option<Retention>) -> Result<(), BackendError> {
        Err(BackendError::Denied {
            detail: format!("AccessDenied on PUT {key}"),
        })
    }
    fn get(&self, key: &str) -> Result<Vec<u8>, BackendError> {
        self.0.get(key)
    }
    fn head(&self, key: &str) -> Result<Option<u64>, BackendError> {
        self.0.head(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BackendError> {
        self.0.list(prefix)
    }
    fn delete(&self, key: &str) -> Result<(), BackendError> {
        Err(BackendError::Denied {
            detail: format!("AccessDenied on DELETE {key}"),
        })
    }
    fn extend_retention(&self, key: &str, _: Retention) -> Result<(), BackendError> {
        Err(BackendError::Denied {
            detail: format!("AccessDenied on PutObjectRetention {key}"),
        })
    }
    fn supports_retention(&self) -> Result<bool, BackendError> {
        Ok(false)
    }
    fn describe(&self) -> String {
        format!("{} (read-only)", self.0.describe())
    }
}
