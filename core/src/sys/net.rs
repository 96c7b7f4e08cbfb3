//! Network interface configuration for the recovery image: link up, an IPv4 address with its
//! netmask, a default route. The classic `SIOC*` ioctls on an `AF_INET` datagram socket (what
//! `ifconfig` and `route` use; enough for one address and one gateway, no netlink needed).
//! Each `unsafe` block is one ioctl on a request struct this module owns.

use std::ffi::CString;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn control_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; the descriptor is owned at once.
    let fd =
        check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not an interface name"),
        ));
    }
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in r.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    Ok(r)
}

fn sockaddr_in(a: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(a).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size (16 bytes) and sockaddr is plain data.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

/// The netmask of a prefix length (24 -> 255.255.255.0).
pub fn netmask(prefix: u8) -> Ipv4Addr {
    match prefix {
        0 => Ipv4Addr::UNSPECIFIED,
        p if p >= 32 => Ipv4Addr::BROADCAST,
        p => Ipv4Addr::from(u32::MAX << (32 - u32::from(p))),
    }
}

/// Sets `IFF_UP` on the interface `name`.
pub fn link_up(name: &str) -> io::Result<()> {
    let s = control_socket()?;
    let mut r = ifreq(name)?;
    // SAFETY: SIOCGIFFLAGS writes the flags into the ifreq this function owns.
    check(unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut r) })?;
    // SAFETY: the union's flags member was just written by the kernel.
    unsafe { r.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads the ifreq.
    check(unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS as _, &r) }).map(|_| ())
}

/// Gives the interface `name` the address `addr/prefix` (replacing its IPv4 address).
pub fn set_address(name: &str, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
    let s = control_socket()?;
    let mut r = ifreq(name)?;
    r.ifr_ifru.ifru_addr = sockaddr_in(addr);
    // SAFETY: SIOCSIFADDR reads the ifreq.
    check(unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCSIFADDR as _, &r) })?;
    let mut r = ifreq(name)?;
    r.ifr_ifru.ifru_netmask = sockaddr_in(netmask(prefix));
    // SAFETY: SIOCSIFNETMASK reads the ifreq.
    check(unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCSIFNETMASK as _, &r) }).map(|_| ())
}

/// The kernel's `struct rtentry` (linux/route.h); libc has it for musl only.
#[repr(C)]
struct RtEntry {
    rt_pad1: libc::c_ulong,
    rt_dst: libc::sockaddr,
    rt_gateway: libc::sockaddr,
    rt_genmask: libc::sockaddr,
    rt_flags: libc::c_ushort,
    rt_pad2: libc::c_short,
    rt_pad3: libc::c_ulong,
    rt_pad4: *mut libc::c_void,
    rt_metric: libc::c_short,
    rt_dev: *mut libc::c_char,
    rt_mtu: libc::c_ulong,
    rt_window: libc::c_ulong,
    rt_irtt: libc::c_ushort,
}

const RTF_UP: libc::c_ushort = 0x0001;
const RTF_GATEWAY: libc::c_ushort = 0x0002;

/// Adds the default route through `gateway` on the interface `name`. An existing identical
/// route is not an error.
pub fn add_default_route(name: &str, gateway: Ipv4Addr) -> io::Result<()> {
    let s = control_socket()?;
    let dev = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut rt = RtEntry {
        rt_pad1: 0,
        rt_dst: sockaddr_in(Ipv4Addr::UNSPECIFIED),
        rt_gateway: sockaddr_in(gateway),
        rt_genmask: sockaddr_in(Ipv4Addr::UNSPECIFIED),
        rt_flags: RTF_UP | RTF_GATEWAY,
        rt_pad2: 0,
        rt_pad3: 0,
        rt_pad4: std::ptr::null_mut(),
        rt_metric: 0,
        rt_dev: dev.as_ptr() as *mut libc::c_char,
        rt_mtu: 0,
        rt_window: 0,
        rt_irtt: 0,
    };
    // SAFETY: SIOCADDRT reads the rtentry; `dev` outlives the call.
    match check(unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCADDRT as _, &mut rt) }) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmasks() {
        assert_eq!(netmask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(netmask(0), Ipv4Addr::UNSPECIFIED);
        assert_eq!(netmask(32), Ipv4Addr::BROADCAST);
        assert_eq!(netmask(20), Ipv4Addr::new(255, 255, 240, 0));
    }

    #[test]
    fn bad_interface_names_are_refused() {
        assert!(link_up("").is_err());
        assert!(link_up("a-name-far-too-long-for-linux").is_err());
    }
}
