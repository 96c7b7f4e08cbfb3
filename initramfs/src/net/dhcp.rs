//! An in-process DHCPv4 client (RFC 2131): DISCOVER, OFFER, REQUEST, ACK on one interface,
//! for the address, the netmask, the router and the DNS servers. Debian's kernels have no
//! `ip=dhcp`, and the recovery image has no other program for it.
//!
//! It speaks through an ordinary UDP socket on port 68, bound to the interface
//! (`SO_BINDTODEVICE`) with broadcast allowed: Linux sends a limited broadcast out of a bound
//! interface that has no address yet, and delivers the server's broadcast replies to it. The
//! broadcast flag asks servers to answer by broadcast (the interface has no address to
//! receive a unicast on).

use anyhow::{anyhow, bail, Context, Result};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

const MAGIC: [u8; 4] = [99, 130, 83, 99];
const DISCOVER: u8 = 1;
const OFFER: u8 = 2;
const REQUEST: u8 = 3;
const DECLINE_OR_NAK: [u8; 2] = [4, 6];
const ACK: u8 = 5;

/// What a server leased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub server: Ipv4Addr,
    pub lease_secs: Option<u32>,
}

/// A BOOTREQUEST of `kind` from `mac`, with the offer's address and server for a REQUEST.
pub fn request_packet(
    kind: u8,
    xid: u32,
    mac: [u8; 6],
    requested: Option<(Ipv4Addr, Ipv4Addr)>,
) -> Vec<u8> {
    let mut p = vec![0u8; 236];
    p[0] = 1; // BOOTREQUEST
    p[1] = 1; // Ethernet
    p[2] = 6;
    p[4..8].copy_from_slice(&xid.to_be_bytes());
    p[10..12].copy_from_slice(&0x8000u16.to_be_bytes()); // broadcast flag
    p[28..34].copy_from_slice(&mac);
    p.extend_from_slice(&MAGIC);
    p.extend_from_slice(&[53, 1, kind]);
    p.extend_from_slice(&[61, 7, 1]);
    p.extend_from_slice(&mac);
    if let Some((addr, server)) = requested {
        p.extend_from_slice(&[50, 4]);
        p.extend_from_slice(&addr.octets());
        p.extend_from_slice(&[54, 4]);
        p.extend_from_slice(&server.octets());
    }
    // Subnet mask, router, DNS, domain name, lease time, server id.
    p.extend_from_slice(&[55, 6, 1, 3, 6, 15, 51, 54]);
    p.push(255);
    if p.len() < 300 {
        p.resize(300, 0);
    }
    p
}

/// A server's reply: its message type and the lease it describes, if it is for `xid`/`mac`.
pub fn parse_reply(p: &[u8], xid: u32, mac: [u8; 6]) -> Option<(u8, Lease)> {
    if p.len() < 240 || p[0] != 2 || p[4..8] != xid.to_be_bytes() || p[28..34] != mac {
        return None;
    }
    if p[236..240] != MAGIC {
        return None;
    }
    let ip = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    let mut lease = Lease {
        address: ip(&p[16..20]),
        prefix: 24,
        router: None,
        dns: Vec::new(),
        server: ip(&p[20..24]),
        lease_secs: None,
    };
    let mut kind = None;
    let mut i = 240;
    while i < p.len() {
        let code = p[i];
        if code == 0 {
            i += 1;
            continue;
        }
        if code == 255 || i + 1 >= p.len() {
            break;
        }
        let len = usize::from(p[i + 1]);
        let Some(v) = p.get(i + 2..i + 2 + len) else {
            break;
        };
        match (code, len) {
            (53, 1) => kind = Some(v[0]),
            (1, 4) => lease.prefix = u32::from(ip(v)).leading_ones() as u8,
            (3, l) if l >= 4 => lease.router = Some(ip(v)),
            (6, l) if l >= 4 => lease.dns = v.chunks_exact(4).map(ip).collect(),
            (51, 4) => lease.lease_secs = Some(u32::from_be_bytes([v[0], v[1], v[2], v[3]])),
            (54, 4) => lease.server = ip(v),
            _ => {}
        }
        i += 2 + len;
    }
    Some((kind?, lease))
}

fn socket(iface: &str) -> Result<UdpSocket> {
    use nix::sys::socket::{setsockopt, sockopt};
    let s = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68))
        .context("cannot open the DHCP client's port 68")?;
    setsockopt(&s, sockopt::BindToDevice, &std::ffi::OsString::from(iface))
        .with_context(|| format!("cannot bind the DHCP socket to {iface}"))?;
    s.set_broadcast(true)
        .context("cannot allow broadcast on the DHCP socket")?;
    Ok(s)
}

/// Waits until `deadline` for a reply of one of `kinds`; NAK ends the wait with an error.
fn receive(
    s: &UdpSocket,
    xid: u32,
    mac: [u8; 6],
    kinds: &[u8],
    deadline: Instant,
) -> Result<Option<Lease>> {
    let mut buf = [0u8; 1500];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        s.set_read_timeout(Some(left))?;
        let n = match s.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e).context("cannot receive DHCP replies"),
        };
        match parse_reply(&buf[..n], xid, mac) {
            Some((k, l)) if kinds.contains(&k) => return Ok(Some(l)),
            Some((k, l)) if DECLINE_OR_NAK.contains(&k) => {
                bail!("the DHCP server {} refused the request (NAK)", l.server)
            }
            _ => {}
        }
    }
}

/// Runs DISCOVER/OFFER/REQUEST/ACK on `iface` (link up, no address) for up to `total`.
pub fn obtain(iface: &str, mac: [u8; 6], total: Duration) -> Result<Lease> {
    let s = socket(iface)?;
    let dest = SocketAddrV4::new(Ipv4Addr::BROADCAST, 67);
    let end = Instant::now() + total;
    let mut xid = u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]) ^ std::process::id();
    let mut wait = Duration::from_secs(2);
    while Instant::now() < end {
        xid = xid.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        s.send_to(&request_packet(DISCOVER, xid, mac, None), dest)
            .with_context(|| format!("cannot send DHCPDISCOVER on {iface}"))?;
        let round = (Instant::now() + wait).min(end);
        wait = (wait * 2).min(Duration::from_secs(8));
        let Some(offer) = receive(&s, xid, mac, &[OFFER], round)? else {
            continue;
        };
        s.send_to(
            &request_packet(REQUEST, xid, mac, Some((offer.address, offer.server))),
            dest,
        )
        .with_context(|| format!("cannot send DHCPREQUEST on {iface}"))?;
        let round = (Instant::now() + Duration::from_secs(4)).min(end);
        if let Some(ack) = receive(&s, xid, mac, &[ACK], round)? {
            if ack.address.is_unspecified() {
                return Err(anyhow!(
                    "the DHCP server {} acknowledged no address",
                    ack.server
                ));
            }
            return Ok(ack);
        }
    }
    bail!(
        "no DHCP server answered on {iface} within {} s",
        total.as_secs()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    /// An ACK as QEMU's user network (slirp) sends it.
    fn ack(xid: u32) -> Vec<u8> {
        let mut p = vec![0u8; 236];
        p[0] = 2;
        p[1] = 1;
        p[2] = 6;
        p[4..8].copy_from_slice(&xid.to_be_bytes());
        p[16..20].copy_from_slice(&[10, 0, 2, 15]);
        p[28..34].copy_from_slice(&MAC);
        p.extend_from_slice(&MAGIC);
        p.extend_from_slice(&[53, 1, ACK, 0, 54, 4, 10, 0, 2, 2, 51, 4, 0, 1, 81, 128]);
        p.extend_from_slice(&[1, 4, 255, 255, 255, 0, 3, 4, 10, 0, 2, 2]);
        p.extend_from_slice(&[6, 8, 10, 0, 2, 3, 1, 1, 1, 1, 255]);
        p
    }

    #[test]
    fn a_request_names_the_offer_and_asks_for_router_and_dns() {
        let p = request_packet(
            REQUEST,
            7,
            MAC,
            Some((Ipv4Addr::new(10, 0, 2, 15), Ipv4Addr::new(10, 0, 2, 2))),
        );
        assert_eq!(p.len(), 300);
        assert_eq!(&p[236..240], &MAGIC);
        assert_eq!(&p[240..243], &[53, 1, REQUEST]);
        let opts = &p[240..];
        assert!(opts.windows(6).any(|w| w == [50, 4, 10, 0, 2, 15]));
        assert!(opts.windows(6).any(|w| w == [54, 4, 10, 0, 2, 2]));
        assert!(opts.windows(4).any(|w| w == [55, 6, 1, 3]));
        assert_eq!(p[10], 0x80, "broadcast flag");
    }

    #[test]
    fn an_ack_gives_address_mask_router_dns() {
        let (k, l) = parse_reply(&ack(9), 9, MAC).unwrap();
        assert_eq!(k, ACK);
        assert_eq!(l.address, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(l.prefix, 24);
        assert_eq!(l.router, Some(Ipv4Addr::new(10, 0, 2, 2)));
        assert_eq!(
            l.dns,
            vec![Ipv4Addr::new(10, 0, 2, 3), Ipv4Addr::new(1, 1, 1, 1)]
        );
        assert_eq!(l.server, Ipv4Addr::new(10, 0, 2, 2));
        assert_eq!(l.lease_secs, Some(86400));
    }

    #[test]
    fn replies_for_another_client_or_truncated_are_ignored() {
        assert!(parse_reply(&ack(9), 10, MAC).is_none());
        assert!(parse_reply(&ack(9), 9, [0; 6]).is_none());
        assert!(parse_reply(&ack(9)[..200], 9, MAC).is_none());
        let mut cut = ack(9);
        cut.truncate(250);
        // Options cut in the middle: what was read whole is kept, nothing panics.
        let _ = parse_reply(&cut, 9, MAC);
    }
}
