//! Coldplug: load the modules the hardware asks for, then keep going as the loaded drivers
//! reveal more devices (a PCI driver reveals a virtio bus, which reveals disks), until the
//! block devices settle or a deadline passes.

use crate::console::{log_only, say};
use crate::kmod::ModuleDb;
use crate::uevent::UeventSocket;
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
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

/// Disk drivers that have found every disk they drive by the time loading them returns: the
/// kernel waits for the asynchronous probes a module's init starts (libata's port probes, the
/// SCSI host scan, sd's disk probe) before finit_module(2) returns (`async_synchronize_full`
/// in `do_init_module`), and a virtio disk is added, its partition table read, in its probe.
/// Once coldplug has no module left to load, the disks of these drivers are all there.
const PROMPT_DISK_DRIVERS: &[&str] = &[
    "virtio_blk",
    "virtio_scsi",
    "ata_piix",
    "ata_generic",
    "pata_acpi",
    "ahci",
    "libahci",
    "libata",
    "scsi_mod",
    "scsi_common",
    "sd_mod",
    "sr_mod",
    "sg",
    "loop",
];

/// Where the drivers of disks, and of the buses disks hang on, are in the module tree.
const DISK_DRIVER_DIRS: &[&str] = &[
    "kernel/drivers/ata/",
    "kernel/drivers/scsi/",
    "kernel/drivers/block/",
    "kernel/drivers/nvme/",
    "kernel/drivers/usb/",
    "kernel/drivers/mmc/",
    "kernel/drivers/message/",
    "kernel/drivers/firewire/",
    "kernel/drivers/memstick/",
];

/// The disk drivers among `loaded` (module name, its path in the module tree) that may show
/// a disk after their module has loaded: USB (devices are enumerated by the hub thread, then
/// usb-storage waits `delay_use` before its scan), NVMe (namespaces are scanned in a work
/// queue), SAS/RAID HBAs that learn their disks from firmware events, SD cards, Xen's
/// frontends: every disk driver that is not in `PROMPT_DISK_DRIVERS`. Sorted.
pub fn late_disk_drivers<'a>(loaded: impl IntoIterator<Item = (&'a str, &'a Path)>) -> Vec<String> {
    let mut out: Vec<String> = loaded
        .into_iter()
        .filter(|(name, _)| !PROMPT_DISK_DRIVERS.contains(name))
        .filter(|(_, path)| {
            let p = path.to_string_lossy();
            DISK_DRIVER_DIRS.iter().any(|d| p.starts_with(d))
        })
        .map(|(name, _)| name.to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Buses whose disks come late although no module of theirs was loaded (their drivers are
/// built into the kernel): USB devices (`/sys/bus/usb/devices`), NVMe controllers
/// (`/sys/class/nvme`).
pub fn late_buses(sys: &Path) -> Vec<String> {
    let any = |dir: &str| {
        fs::read_dir(sys.join(dir))
            .map(|mut rd| rd.next().is_some())
            .unwrap_or(false)
    };
    [("usb", "bus/usb/devices"), ("nvme", "class/nvme")]
        .into_iter()
        .filter(|(_, dir)| any(dir))
        .map(|(name, _)| name.to_string())
        .collect()
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

    #[test]
    fn only_disk_drivers_that_find_disks_after_loading_count_as_late() {
        let loaded = [
            ("virtio_blk", "kernel/drivers/block/virtio_blk.ko"),
            ("virtio_pci", "kernel/drivers/virtio/virtio_pci.ko"),
            ("ata_piix", "kernel/drivers/ata/ata_piix.ko"),
            ("sd_mod", "kernel/drivers/scsi/sd_mod.ko"),
            ("sr_mod", "kernel/drivers/scsi/sr_mod.ko"),
            ("e1000", "kernel/drivers/net/ethernet/intel/e1000/e1000.ko"),
            ("vfat", "kernel/fs/fat/vfat.ko"),
        ];
        let prompt = loaded.iter().map(|(n, p)| (*n, Path::new(*p)));
        assert!(late_disk_drivers(prompt).is_empty());
        let late = [
            ("usb_storage", "kernel/drivers/usb/storage/usb-storage.ko"),
            ("xhci_pci", "kernel/drivers/usb/host/xhci-pci.ko"),
            ("nvme", "kernel/drivers/nvme/host/nvme.ko"),
            ("mpt3sas", "kernel/drivers/scsi/mpt3sas/mpt3sas.ko"),
            ("xen_blkfront", "kernel/drivers/block/xen-blkfront.ko"),
            ("ahci", "kernel/drivers/ata/ahci.ko"),
        ];
        let all = late
            .iter()
            .chain(loaded.iter())
            .map(|(n, p)| (*n, Path::new(*p)));
        assert_eq!(
            late_disk_drivers(all),
            ["mpt3sas", "nvme", "usb_storage", "xen_blkfront", "xhci_pci"]
        );
    }

    #[test]
    fn usb_devices_or_nvme_controllers_in_sysfs_count_as_late() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bus/usb/devices")).unwrap();
        std::fs::create_dir_all(dir.path().join("class/nvme")).unwrap();
        assert!(late_buses(dir.path()).is_empty());
        std::fs::create_dir_all(dir.path().join("bus/usb/devices/usb1")).unwrap();
        assert_eq!(late_buses(dir.path()), ["usb"]);
        std::fs::create_dir_all(dir.path().join("class/nvme/nvme0")).unwrap();
        assert_eq!(late_buses(dir.path()), ["usb", "nvme"]);
    }
}
