//! Helpers for the tests of this crate and of the crates that use it (as `lifeboat_core::testing`
//! is for core).

use crate::backend::{Backend, BackendError, ObjectInfo, Retention};

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
