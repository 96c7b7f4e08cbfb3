//! The machine: DMI identity (SMBIOS, from /sys/class/dmi/id) and physical NICs.

use crate::archive::manifest::MachineIdentity;
use std::fs;
use std::path::Path;

const DMI: &str = "/sys/class/dmi/id";
const NET: &str = "/sys/class/net";

fn dmi(field: &str) -> Option<String> {
    let raw = fs::read(Path::new(DMI).join(field)).ok()?;
    let s = String::from_utf8_lossy(&raw).trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// Reads this machine's identity. Fields the firmware does not provide are None (reading
/// product_uuid and product_serial needs root).
pub fn machine_identity() -> MachineIdentity {
    MachineIdentity {
        product_uuid: dmi("product_uuid").map(|u| u.to_ascii_lowercase()),
        product_serial: dmi("product_serial"),
        product_name: dmi("product_name"),
        sys_vendor: dmi("sys_vendor"),
        macs: physical_macs(),
    }
}

/// MAC addresses (lower case, sorted, unique) of interfaces backed by a device, i.e. not
/// bridges, bonds, VLANs, loopback or vifs.
pub fn physical_macs() -> Vec<String> {
    let mut macs: Vec<String> = fs::read_dir(NET)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().join("device").exists())
                .filter_map(|e| fs::read_to_string(e.path().join("address")).ok())
                .map(|a| a.trim().to_ascii_lowercase())
                .filter(|a| !a.is_empty() && a != "00:00:00:00:00:00")
                .collect()
        })
        .unwrap_or_default();
    macs.sort();
    macs.dedup();
    macs
}

/// This host's name: the kernel's for "/", else the root's /etc/hostname (falling back to
/// the kernel's).
pub fn hostname_of_root(root: &Path) -> String {
    let running = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    if root == Path::new("/") {
        return running;
    }
    fs::read_to_string(root.join("etc/hostname"))
        .ok()
        .and_then(|s| s.lines().next().map(|l| l.trim().to_string()))
        .filter(|s| !s.is_empty())
        .unwrap_or(running)
}
