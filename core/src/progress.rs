//! Progress reporting, decoupled from how it is shown (a bar on a terminal in the agent, a
//! line on the consoles in the recovery image, nothing in scripts and `--json`).

/// Receives progress of a long operation, in bytes.
pub trait Progress: Sync {
    /// The total, when known (None: unknown, e.g. reading from stdin).
    fn set_total(&self, _total: Option<u64>) {}
    /// `n` more bytes were processed.
    fn advance(&self, _n: u64) {}
    /// What is being worked on now (a phase, or a path).
    fn set_message(&self, _msg: &str) {}
    /// The operation ended.
    fn finish(&self) {}
}

/// Shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
