//! The kernel's uevent netlink socket (NETLINK_KOBJECT_UEVENT), opened before the coldplug walk
//! so a device that appears during the walk is not missed.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    bind, recv, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// One kernel uevent: the action, the device path and its KEY=VALUE properties.
#[derive(Debug, Clone, Default)]
pub struct Uevent {
    pub action: String,
    pub devpath: String,
    pub props: HashMap<String, String>,
}

impl Uevent {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.props.get(key).map(String::as_str)
    }

    /// Parses "ACTION@DEVPATH\0KEY=VALUE\0...". Messages from udev ("libudev" header) are
    /// ignored: there is no udev in this image.
    pub fn parse(buf: &[u8]) -> Option<Self> {
        let mut parts = buf.split(|&b| b == 0).filter(|p| !p.is_empty());
        let head = String::from_utf8_lossy(parts.next()?).into_owned();
        let (action, devpath) = head.split_once('@')?;
        let mut ev = Uevent {
            action: action.to_string(),
            devpath: devpath.to_string(),
            props: HashMap::new(),
        };
        for p in parts {
            let s = String::from_utf8_lossy(p);
            if let Some((k, v)) = s.split_once('=') {
                ev.props.insert(k.to_string(), v.to_string());
            }
        }
        Some(ev)
    }
}

pub struct UeventSocket {
    fd: OwnedFd,
}

impl UeventSocket {
    pub fn open() -> nix::Result<Self> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkKObjectUEvent,
        )?;
        // Kernel multicast group 1; a large buffer so a burst of events is not dropped.
        let _ = setsockopt(&fd, sockopt::RcvBuf, &(4 * 1024 * 1024));
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 1))?;
        Ok(Self { fd })
    }

    /// Waits up to `timeout_ms` for events and returns all that are queued.
    pub fn wait(&self, timeout_ms: u16) -> Vec<Uevent> {
        let mut out = Vec::new();
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, PollTimeout::from(timeout_ms)), Ok(n) if n > 0) {
            return out;
        }
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            if n == 0 {
                break;
            }
            if let Some(ev) = Uevent::parse(&buf[..n]) {
                out.push(ev);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_kernel_uevent() {
        let msg = b"add@/devices/pci0000:00/0000:00:04.0/virtio1/block/vda\0ACTION=add\0\
                    DEVPATH=/devices/pci0000:00/0000:00:04.0/virtio1/block/vda\0SUBSYSTEM=block\0\
                    DEVNAME=vda\0DEVTYPE=disk\0SEQNUM=1042\0";
        let ev = Uevent::parse(msg);
        assert!(ev.is_some());
        if let Some(ev) = ev {
            assert_eq!(ev.action, "add");
            assert_eq!(ev.get("SUBSYSTEM"), Some("block"));
            assert_eq!(ev.get("DEVNAME"), Some("vda"));
        }
    }
}
