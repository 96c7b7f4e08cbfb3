//! Coldplug: load the modules the hardware asks for, then keep going as the loaded drivers
//! reveal more devices (a PCI driver reveals a virtio bus, which reveals disks), until the
//! block devices settle or a deadline passes.

use crate::console::{log_only, say};
use crate::kmod::ModuleDb;
use crate::uevent::UeventSocket;
use std::collections::BTreeSet;
use std::fs;
use std::time::{Duration, Instant};

/// Filesystems the discovery and the restore need, loaded whatever the hardware.
pub use lifeboat_core::kmod::RESCUE_FILESYSTEMS as FILESYSTEM_MODULES;

/// Every `modalias` below /sys/devices (symlinks are not followed).
pub fn device_modaliases() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![std::path::PathBuf::from("/sys/devices")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() && e.file_name() == "modalias" {
                if let Ok(s) = fs::read_to_string(e.path()) {
                    let s = s.trim();
                    if !s.is_empty() {
                        out.insert(s.to_string());
                    }
                }
            }
        }
    }
    out
}

/// Names in /sys/class/block (disks and partitions), sorted.
pub fn block_devices() -> BTreeSet<String> {
    fs::read_dir("/sys/class/block")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    !n.starts_with("loop") && !n.starts_with("ram") && !n.starts_with("zram")
                })
                .collect()
        })
        .unwrap_or_default()
}

pub struct Summary {
    /// Every module loaded, in order.
    pub loaded: Vec<String>,
    pub block_devices: BTreeSet<String>,
    pub settled: bool,
    pub elapsed: Duration,
    /// From the start until the last new device or module: the rest of `elapsed` was the
    /// quiet wait.
    pub busy: Duration,
}

/// Whether every device in `need` (kernel names) is in `blocks`.
pub fn all_present(need: &[String], blocks: &BTreeSet<String>) -> bool {
    need.iter().all(|n| blocks.contains(n))
}

/// Runs coldplug. `quiet_for`: how long no new device or module must be seen to call the
/// disks settled; `need`: devices that must be there too (a slow HBA shows its disks long
/// after the last module loaded); `max`: the deadline.
pub fn run(
    db: &mut ModuleDb,
    sock: Option<&UeventSocket>,
    quiet_for: Duration,
    need: &[String],
    max: Duration,
) -> Summary {
    let start = Instant::now();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut last_change = Instant::now();
    let mut last_report = Instant::now();
    let mut blocks = block_devices();
    let mut rescan = true;
    let mut loaded: Vec<String> = Vec::new();

    for m in FILESYSTEM_MODULES {
        if db.is_known(m) {
            loaded.extend(db.load(m));
        }
    }

    loop {
        if rescan {
            rescan = false;
            for alias in device_modaliases() {
                if !seen.insert(alias.clone()) {
                    continue;
                }
                for module in db.aliases.modules_for(&alias) {
                    let newly = db.load(&module);
                    if !newly.is_empty() {
                        log_only(&format!("coldplug: {alias} -> {}", newly.join(", ")));
                        loaded.extend(newly);
                        last_change = Instant::now();
                        rescan = true;
                    }
                }
            }
        }
        let events = match sock {
            Some(s) => s.wait(100),
            None => {
                std::thread::sleep(Duration::from_millis(100));
                Vec::new()
            }
        };
        for ev in &events {
            if ev.get("MODALIAS").is_some() || ev.action == "add" || ev.action == "bind" {
                rescan = true;
            }
            if ev.get("SUBSYSTEM") == Some("block") {
                log_only(&format!("uevent: {} {}", ev.action, ev.devpath));
                last_change = Instant::now();
            }
        }
        if sock.is_none() && last_change.elapsed() > Duration::from_millis(500) {
            rescan = true;
        }
        let now_blocks = block_devices();
        if now_blocks != blocks {
            blocks = now_blocks;
            last_change = Instant::now();
        }
        if last_change.elapsed() >= quiet_for && !rescan && all_present(need, &blocks) {
            return Summary {
                loaded,
                block_devices: blocks,
                settled: true,
                elapsed: start.elapsed(),
                busy: last_change.saturating_duration_since(start),
            };
        }
        if start.elapsed() >= max {
            return Summary {
                loaded,
                block_devices: blocks,
                settled: false,
                elapsed: start.elapsed(),
                busy: last_change.saturating_duration_since(start),
            };
        }
        if last_report.elapsed() >= Duration::from_secs(3) {
            last_report = Instant::now();
            let list: Vec<&str> = blocks.iter().map(String::as_str).collect();
            let missing: Vec<&str> = need
                .iter()
                .filter(|n| !blocks.contains(*n))
                .map(String::as_str)
                .collect();
            say(&format!(
                "Waiting for disks to settle ({} s of at most {} s): {} modules loaded, block devices so far: {}{}",
                start.elapsed().as_secs(),
                max.as_secs(),
                loaded.len(),
                if list.is_empty() { "none".to_string() } else { list.join(" ") },
                if missing.is_empty() {
                    String::new()
                } else {
                    format!("; waiting for {}", missing.join(" "))
                }
            ));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_named_disk_must_be_there() {
        let blocks: BTreeSet<String> = ["vda", "vda1"].iter().map(|s| s.to_string()).collect();
        assert!(all_present(&[], &blocks));
        assert!(all_present(&["vda1".into()], &blocks));
        assert!(!all_present(&["sdb".into()], &blocks));
    }
}
