//! A repository in a local directory (tests, USB disks, NFS mounts). Every object is written
//! to a temporary name beside its place, fsynced, renamed over its key and the directory
//! fsynced: a crash leaves either the whole object or none (a `.tmp-*` leftover at worst,
//! which listing skips).

use super::{Backend, BackendError, ObjectInfo, Retention};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Prefix of temporary files; never a key (keys never start with a dot).
const TMP: &str = ".tmp-";

/// A repository directory.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    /// The repository in `root`, which must exist (created by `lifeboat repo init`).
    pub fn open(root: &Path) -> Result<Self, BackendError> {
        if !root.is_dir() {
            return Err(BackendError::NoBucket {
                name: root.display().to_string(),
            });
        }
        Ok(LocalBackend {
            root: root.to_path_buf(),
        })
    }

    /// Creates `root` (and its parents) when missing, then opens it.
    pub fn create(root: &Path) -> Result<Self, BackendError> {
        fs::create_dir_all(root).map_err(|e| io_err(root, e))?;
        Self::open(root)
    }

    fn path(&self, key: &str) -> Result<PathBuf, BackendError> {
        // Keys are the format's own names; refuse anything that could leave the directory.
        if key.is_empty()
            || key.starts_with('/')
            || key
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == ".." || c.starts_with('.'))
        {
            return Err(BackendError::Other {
                key: key.to_string(),
                detail: "not a valid object key".into(),
            });
        }
        Ok(self.root.join(key))
    }
}

fn io_err(path: &Path, source: io::Error) -> BackendError {
    if source.raw_os_error() == Some(libc_enospc()) {
        return BackendError::Full {
            detail: format!("{}: {source}", path.display()),
        };
    }
    BackendError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// ENOSPC without a libc dependency (28 on every Linux architecture).
fn libc_enospc() -> i32 {
    28
}

fn fsync_dir(dir: &Path) -> Result<(), BackendError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

impl Backend for LocalBackend {
    fn put(
        &self,
        key: &str,
        data: &[u8],
        retention: Option<Retention>,
    ) -> Result<(), BackendError> {
        if retention.is_some() {
            return Err(BackendError::Unsupported {
                what: "retention (Object Lock) in a local directory".into(),
            });
        }
        let path = self.path(key)?;
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        let tmp = dir.join(format!(
            "{TMP}{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&path, e));
        }
        fsync_dir(&dir)
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, BackendError> {
        let path = self.path(key)?;
        fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => BackendError::NotFound {
                key: key.to_string(),
            },
            _ => io_err(&path, e),
        })
    }

    fn head(&self, key: &str) -> Result<Option<u64>, BackendError> {
        let path = self.path(key)?;
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path, e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BackendError> {
        // Walk only the directory the prefix lies in, then filter by the whole prefix.
        let start = match prefix.rfind('/') {
            Some(i) => self.root.join(&prefix[..i]),
            None => self.root.clone(),
        };
        let mut out = Vec::new();
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&dir, e)),
            };
            for ent in rd {
                let ent = ent.map_err(|e| io_err(&dir, e))?;
                let name = ent.file_name();
                let Some(name) = name.to_str() else { continue };
                if name.starts_with('.') {
                    continue;
                }
                let path = ent.path();
                let meta = ent.metadata().map_err(|e| io_err(&path, e))?;
                if meta.is_dir() {
                    stack.push(path);
                    continue;
                }
                let Ok(rel) = path.strip_prefix(&self.root) else {
                    continue;
                };
                let key = rel.to_string_lossy().into_owned();
                if key.starts_with(prefix) {
                    out.push(ObjectInfo {
                        key,
                        size: meta.len(),
                        modified: meta.modified().ok(),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<(), BackendError> {
        let path = self.path(key)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path, e)),
        }
    }

    fn extend_retention(&self, _key: &str, _retention: Retention) -> Result<(), BackendError> {
        Err(BackendError::Unsupported {
            what: "retention (Object Lock) in a local directory".into(),
        })
    }

    fn supports_retention(&self) -> Result<bool, BackendError> {
        Ok(false)
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}
