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

/// Values firmware writes into SMBIOS when it has no real one (compared lower case, trimmed).
const PLACEHOLDERS: [&str; 24] = [
    "none",
    "not specified",
    "not applicable",
    "not available",
    "not present",
    "to be filled by o.e.m.",
    "to be filled by oem",
    "default string",
    "system serial number",
    "system product name",
    "chassis serial number",
    "base board serial number",
    "serial number",
    "serial",
    "0123456789",
    "1234567890",
    "123456789",
    "n/a",
    "na",
    "unknown",
    "invalid",
    "oem",
    "o.e.m.",
    "empty",
];

/// Placeholder UUIDs of common firmware (AMI's, in both byte orders Linux may show) and of
/// boards left unprogrammed.
const PLACEHOLDER_UUIDS: [&str; 3] = [
    "03000200-0400-0500-0006-000700080009",
    "00020003-0004-0005-0006-000700080009",
    "12345678-1234-5678-90ab-cddeefaabbcc",
];

/// True when `v` names no machine: empty, a firmware placeholder ("To Be Filled By O.E.M.",
/// "Default string", "System Serial Number", "Not Specified", ...), a placeholder UUID, or one
/// character repeated (all-zero or all-F UUIDs and MACs), separators (`-`, `:`, `.`, spaces)
/// not counted.
pub fn is_placeholder(v: &str) -> bool {
    let l = v.trim().to_ascii_lowercase();
    let mut chars = l.chars().filter(|c| !matches!(c, '-' | ':' | '.' | ' '));
    let one_char = match chars.next() {
        None => true,
        Some(first) => chars.all(|c| c == first),
    };
    one_char || PLACEHOLDERS.contains(&l.as_str()) || PLACEHOLDER_UUIDS.contains(&l.as_str())
}

/// `v` trimmed, or None when it is missing or names no machine ([`is_placeholder`]).
pub fn meaningful_value(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|v| !is_placeholder(v))
}

/// What of `id` tells machines apart: its product UUID and serial with firmware placeholders
/// taken as unknown (None), its MAC addresses without placeholders (all zeros). Every comparison of machines uses it on both sides: two machines
/// whose firmware both say "To Be Filled By O.E.M." are not the same machine, they are two
/// machines that cannot be told apart (a backup made before placeholders were known recorded
/// them in its manifest; it compares as one that records no identity).
pub fn meaningful(id: &MachineIdentity) -> MachineIdentity {
    MachineIdentity {
        product_uuid: meaningful_value(id.product_uuid.as_deref()).map(str::to_owned),
        product_serial: meaningful_value(id.product_serial.as_deref()).map(str::to_owned),
        macs: id
            .macs
            .iter()
            .filter_map(|m| meaningful_value(Some(m)).map(str::to_owned))
            .collect(),
        ..id.clone()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_placeholders_name_no_machine() {
        for p in [
            "To Be Filled By O.E.M.",
            " Default string ",
            "System Serial Number",
            "Not Specified",
            "0123456789",
            "00000000-0000-0000-0000-000000000000",
            "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
            "03000200-0400-0500-0006-000700080009",
            "00:00:00:00:00:00",
            "",
            "   ",
        ] {
            assert!(is_placeholder(p), "{p:?}");
        }
        for real in [
            "7a0c51e2-9d3b-4c8e-b1f6-2e4d8a9c0b17",
            "LB-1",
            "CZ1234ABCD",
            "99999999-0000-0000-0000-000000000000",
            "52:54:00:12:34:56",
        ] {
            assert!(!is_placeholder(real), "{real:?}");
        }
        let id = MachineIdentity {
            product_uuid: Some("03000200-0400-0500-0006-000700080009".into()),
            product_serial: Some(" CZ1234ABCD ".into()),
            product_name: Some("Default string".into()),
            ..Default::default()
        };
        let m = meaningful(&id);
        assert_eq!(m.product_uuid, None);
        assert_eq!(m.product_serial.as_deref(), Some("CZ1234ABCD"));
        assert_eq!(m.product_name, id.product_name);
    }
}
