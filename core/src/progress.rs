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

/// Human-readable bytes (binary units: "512 B", "1.5 KiB", "3.2 GiB"), for messages and
/// progress lines; the one size formatter of the agent and the recovery image.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
