//! The machine's Ethernet interfaces (from /sys/class/net), brought up through core's syscall
//! layer (`lifeboat_core::sys::net`).

use anyhow::{Context, Result};
use lifeboat_core::sys::net as sys;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

const CLASS: &str = "/sys/class/net";

/// An Ethernet interface: its kernel name and MAC address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    pub name: String,
    pub mac: [u8; 6],
}

/// Parses `52:54:00:12:34:56`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Every Ethernet interface (ARPHRD_ETHER, with a MAC), sorted by name.
pub fn ethernet() -> Vec<Iface> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(CLASS) else {
        return out;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        let read = |f: &str| std::fs::read_to_string(p.join(f)).unwrap_or_default();
        if read("type").trim() != "1" || name == "lo" {
            continue;
        }
        if let Some(mac) = parse_mac(&read("address")) {
            if mac != [0; 6] {
                out.push(Iface { name, mac });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Sets the link up and waits up to `wait` for a carrier. Returns whether one came.
pub fn up_with_carrier(i: &Iface, wait: Duration) -> Result<bool> {
    sys::link_up(&i.name).with_context(|| format!("cannot set {} up", i.name))?;
    let end = Instant::now() + wait;
    let carrier = Path::new(CLASS).join(&i.name).join("carrier");
    loop {
        if std::fs::read_to_string(&carrier).is_ok_and(|c| c.trim() == "1") {
            return Ok(true);
        }
        if Instant::now() >= end {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The address, its netmask and the default route.
pub fn configure(i: &Iface, addr: Ipv4Addr, prefix: u8, gateway: Option<Ipv4Addr>) -> Result<()> {
    sys::set_address(&i.name, addr, prefix)
        .with_context(|| format!("cannot give {} the address {addr}/{prefix}", i.name))?;
    if let Some(gw) = gateway {
        sys::add_default_route(&i.name, gw)
            .with_context(|| format!("cannot add the default route via {gw} on {}", i.name))?;
    }
    Ok(())
}

/// The loopback interface (the resolver and local tools expect it).
pub fn loopback_up() -> Result<()> {
    sys::link_up("lo").context("cannot set lo up")?;
    sys::set_address("lo", Ipv4Addr::LOCALHOST, 8).context("cannot give lo 127.0.0.1/8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("52:54:00:12:34:56\n"),
            Some([0x52, 0x54, 0, 0x12, 0x34, 0x56])
        );
        assert_eq!(parse_mac("52:54:00:12:34"), None);
        assert_eq!(parse_mac("52:54:00:12:34:56:78"), None);
        assert_eq!(parse_mac("zz:54:00:12:34:56"), None);
    }
}
