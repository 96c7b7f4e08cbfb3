//! One writer at a time: an exclusive `flock` on the store's `lock` file, released by the
//! kernel when the holder exits (even by kill -9). The file's content names the holder so a
//! second run can say who it is waiting for.

use super::StoreError;
use crate::identity::clock;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Who holds the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub command: String,
    pub started: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "'lifeboat {}' (pid {} on {}, started {})",
            self.command, self.pid, self.host, self.started
        )
    }
}

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct StoreLock {
    _lock: Flock<File>,
    pub holder: Holder,
}

/// Takes the lock without waiting; `StoreError::Busy` names the current holder.
pub fn acquire(path: &Path, command: &str) -> Result<StoreLock, StoreError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| StoreError::io(path, e))?;
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((mut file, errno)) => {
            if errno == nix::errno::Errno::EWOULDBLOCK {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = serde_json::from_str::<Holder>(text.trim())
                    .map(|h| h.to_string())
                    .unwrap_or_else(|_| "another process".to_string());
                return Err(StoreError::Busy { holder });
            }
            return Err(StoreError::io(path, errno.into()));
        }
    };
    let holder = Holder {
        pid: std::process::id(),
        host: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        command: command.to_string(),
        started: clock::now_rfc3339(),
    };
    let text = serde_json::to_string(&holder).unwrap_or_default();
    let write = |f: &mut File| -> std::io::Result<()> {
        f.set_len(0)?;
        f.seek(SeekFrom::Start(0))?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_data()
    };
    write(&mut lock).map_err(|e| StoreError::io(path, e))?;
    Ok(StoreLock {
        _lock: lock,
        holder,
    })
}
