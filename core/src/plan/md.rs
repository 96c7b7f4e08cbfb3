//! md RAID membership for the safety rule "never write one leg of an array": read from the
//! member's own superblock (metadata 0.90, 1.0, 1.1, 1.2) by core's one md parser,
//! [`crate::identity::md`], so that a leg is recognised whether or not its array is assembled.

use std::fs::File;
use std::path::Path;

/// "ARRAY-UUID (metadata VERSION)" when the device is an md member, as the plan's facts and
/// its refusal name it; None when it is not (or cannot be read).
pub fn probe_md(path: &Path) -> Option<String> {
    let f = File::open(path).ok()?;
    let m = crate::identity::md::probe(&f).ok()??;
    Some(format!("{} (metadata {})", m.array_uuid, m.metadata))
}
