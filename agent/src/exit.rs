//! The exit statuses of every command, in one place (README: "Exit status").
//!
//! | status | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | complete but not consistent (a file kept changing while read), or damage found by `verify` |
//! | 2 | error: bad arguments, refused, not a Lifeboat or tar archive, anything else |
//! | 11 | the store is locked by another Lifeboat run (the message names it); try again later |
//! | 12 | `lifeboat serve` is busy (max_concurrent requests running); try again later |
//!
//! `status --check` has its own four, the monitoring plugins' (see `cmd::status`).

use lifeboat_core::store::StoreError;
use std::process::ExitCode;

/// Any error but those below (0 and 1 are the commands' own verdicts).
pub const ERROR: u8 = 2;
/// The backup store is locked by another run (restic uses 11 for "failed to lock" too).
pub const LOCKED: u8 = 11;
/// `lifeboat serve` refused a request because it already runs as many as it may.
pub const BUSY: u8 = 12;

/// The status a command that failed with `err` exits with.
pub fn of_error(err: &anyhow::Error) -> u8 {
    let locked = err.chain().any(|e| {
        matches!(
            e.downcast_ref::<StoreError>(),
            Some(StoreError::Busy { .. })
        )
    });
    if locked {
        LOCKED
    } else {
        ERROR
    }
}

/// The number behind an [`ExitCode`] (std keeps it private; codes compare equal by value).
pub fn number(code: ExitCode) -> u8 {
    (0..=u8::MAX)
        .find(|&n| ExitCode::from(n) == code)
        .unwrap_or(ERROR)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn a_held_lock_has_its_own_status_through_any_context() {
        let busy: Result<(), StoreError> = Err(StoreError::Busy {
            holder: "'lifeboat backup' (pid 1)".into(),
        });
        let err = busy
            .context("cannot lock the store on /dev/sdb2")
            .context("backup")
            .unwrap_err();
        assert_eq!(of_error(&err), LOCKED);
        let other = anyhow::anyhow!("no backup device");
        assert_eq!(of_error(&other), ERROR);
        let not_found: anyhow::Error = StoreError::NotFound("x".into()).into();
        assert_eq!(of_error(&not_found), ERROR);
    }

    #[test]
    fn exit_codes_read_back() {
        for n in [0, 1, 2, 3, 11, 12, 255] {
            assert_eq!(number(ExitCode::from(n)), n);
        }
        assert_eq!(number(ExitCode::SUCCESS), 0);
    }
}
