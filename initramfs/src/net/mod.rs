//! Network for a restore from the repository: only when one is asked for (`lifeboat.repo=`
//! on the command line, or a repository configuration in the image, `mkrescue --repo-config`).
//! Each Ethernet interface with a carrier is tried in turn: the static `lifeboat.ip=` form
//! (`ADDR/PREFIX:GATEWAY:DNS`, the last two may be empty) on the first, else DHCP
//! ([`dhcp`]); the resolver's servers go to /etc/resolv.conf.

pub mod dhcp;
pub mod identity;
pub mod iface;
pub mod keyfile;
pub mod repo;

use crate::console::say;
use anyhow::{anyhow, bail, Context, Result};
use std::net::Ipv4Addr;
use std::time::Duration;

/// `lifeboat.ip=ADDR/PREFIX:GATEWAY:DNS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Static {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
}

/// Parses the static form; `dhcp` (or nothing) means DHCP and gives None.
pub fn parse_ip(s: &str) -> Result<Option<Static>> {
    if s.is_empty() || s == "dhcp" {
        return Ok(None);
    }
    let mut parts = s.split(':');
    let cidr = parts.next().unwrap_or("");
    let (a, p) = cidr
        .split_once('/')
        .ok_or_else(|| anyhow!("lifeboat.ip={s}: write ADDR/PREFIX:GATEWAY:DNS"))?;
    let address: Ipv4Addr = a
        .parse()
        .map_err(|_| anyhow!("lifeboat.ip={s}: {a} is not an IPv4 address"))?;
    let prefix: u8 = p
        .parse()
        .ok()
        .filter(|p| *p <= 32)
        .ok_or_else(|| anyhow!("lifeboat.ip={s}: {p} is not a prefix length 0-32"))?;
    let opt = |x: Option<&str>| -> Result<Option<Ipv4Addr>> {
        match x.filter(|x| !x.is_empty()) {
            None => Ok(None),
            Some(x) => x
                .parse()
                .map(Some)
                .map_err(|_| anyhow!("lifeboat.ip={s}: {x} is not an IPv4 address")),
        }
    };
    let gateway = opt(parts.next())?;
    let dns = opt(parts.next())?.into_iter().collect();
    if parts.next().is_some() {
        bail!("lifeboat.ip={s}: write ADDR/PREFIX:GATEWAY:DNS");
    }
    Ok(Some(Static {
        address,
        prefix,
        gateway,
        dns,
    }))
}

/// The configuration an interface got.
#[derive(Debug, Clone)]
pub struct Configured {
    pub iface: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub how: &'static str,
}

/// /etc/resolv.conf for `dns`.
pub fn resolv_conf(dns: &[Ipv4Addr]) -> String {
    dns.iter().map(|d| format!("nameserver {d}\n")).collect()
}

static UP: std::sync::Mutex<Option<std::result::Result<Configured, String>>> =
    std::sync::Mutex::new(None);

/// [`bring_up`] once per boot (discovery runs again after every menu action); the outcome is
/// shown when it happens. With `again`, a failure is tried again (the operator chose "Restore
/// from network", perhaps after plugging the cable in).
pub fn ensure_up(ip: Option<&str>, again: bool) -> std::result::Result<Configured, String> {
    let mut up = UP.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = up.as_ref() {
        if r.is_ok() || !again {
            return r.clone();
        }
    }
    let r = {
        say("Bringing up the network for the repository ...");
        match bring_up(ip) {
            Ok(c) => {
                say(&format!(
                    "Network: {} {}/{} via {} ({}), DNS {}",
                    c.iface,
                    c.address,
                    c.prefix,
                    c.gateway
                        .map(|g| g.to_string())
                        .unwrap_or_else(|| "-".into()),
                    c.how,
                    if c.dns.is_empty() {
                        "-".to_string()
                    } else {
                        c.dns
                            .iter()
                            .map(|d| d.to_string())
                            .collect::<Vec<_>>()
                            .join(" ")
                    }
                ));
                Ok(c)
            }
            Err(e) => {
                let m = format!("{e:#}");
                say(&format!("NETWORK NOT UP: {m}"));
                Err(m)
            }
        }
    };
    *up = Some(r.clone());
    r
}

/// Brings up the network: loopback, then the first Ethernet interface with a carrier that
/// gets an address (static, else DHCP).
pub fn bring_up(ip: Option<&str>) -> Result<Configured> {
    let fixed = parse_ip(ip.unwrap_or(""))?;
    if let Err(e) = iface::loopback_up() {
        say(&format!("Warning: {e:#}"));
    }
    // A driver loaded by coldplug may register its interface a moment later.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    let mut all = iface::ethernet();
    while all.is_empty() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(250));
        all = iface::ethernet();
    }
    if all.is_empty() {
        bail!("no Ethernet interface: the image has no driver for this machine's network card (rebuild it with `lifeboat mkrescue --generic` on the generic kernel)");
    }
    let mut errors = Vec::new();
    for i in &all {
        match iface::up_with_carrier(i, Duration::from_secs(10)) {
            Ok(true) => {}
            Ok(false) => {
                errors.push(format!("{}: no carrier (cable?)", i.name));
                continue;
            }
            Err(e) => {
                errors.push(format!("{e:#}"));
                continue;
            }
        }
        let c = match &fixed {
            Some(s) => Configured {
                iface: i.name.clone(),
                address: s.address,
                prefix: s.prefix,
                gateway: s.gateway,
                dns: s.dns.clone(),
                how: "lifeboat.ip",
            },
            None => {
                say(&format!("Asking for an address by DHCP on {} ...", i.name));
                match dhcp::obtain(&i.name, i.mac, Duration::from_secs(30)) {
                    Ok(l) => Configured {
                        iface: i.name.clone(),
                        address: l.address,
                        prefix: l.prefix,
                        gateway: l.router,
                        dns: l.dns,
                        how: "DHCP",
                    },
                    Err(e) => {
                        errors.push(format!("{e:#}"));
                        continue;
                    }
                }
            }
        };
        iface::configure(i, c.address, c.prefix, c.gateway)?;
        if !c.dns.is_empty() {
            std::fs::create_dir_all("/etc").context("cannot create /etc")?;
            std::fs::write("/etc/resolv.conf", resolv_conf(&c.dns))
                .context("cannot write /etc/resolv.conf")?;
        }
        return Ok(c);
    }
    Err(anyhow!(
        "no network interface got an address: {}",
        errors.join("; ")
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn static_forms() {
        assert_eq!(parse_ip("dhcp").unwrap(), None);
        let s = parse_ip("192.0.2.10/24:192.0.2.1:192.0.2.53")
            .unwrap()
            .unwrap();
        assert_eq!(s.address, Ipv4Addr::new(192, 0, 2, 10));
        assert_eq!(s.prefix, 24);
        assert_eq!(s.gateway, Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(s.dns, vec![Ipv4Addr::new(192, 0, 2, 53)]);
        let s = parse_ip("10.1.2.3/16").unwrap().unwrap();
        assert_eq!((s.gateway, s.dns.len()), (None, 0));
        assert!(parse_ip("10.1.2.3").is_err());
        assert!(parse_ip("10.1.2.3/33").is_err());
        assert!(parse_ip("10.1.2/24").is_err());
        assert!(parse_ip("10.1.2.3/24:x").is_err());
    }

    #[test]
    fn resolver() {
        assert_eq!(
            resolv_conf(&[Ipv4Addr::new(10, 0, 2, 3)]),
            "nameserver 10.0.2.3\n"
        );
    }
}
