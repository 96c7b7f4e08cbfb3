//! Where the time to the menu goes: the kernel (until it ran us), the unpacking of the
//! initramfs inside that, coldplug (loading drivers until the last device appeared), the quiet
//! wait after it (settle), and discovery. Printed as one line when the menu is ready, so a
//! slow boot says which part was slow.
//!
//! The initramfs unpack time comes from the kernel's own log: `/dev/kmsg` records carry the
//! microseconds since boot at which "Trying to unpack rootfs image as initramfs" and
//! "Freeing initrd memory" were printed. Read by hand: the record format is one line
//! (`PRIORITY,SEQ,USEC,FLAGS;MESSAGE`), no crate reads it.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

/// What the kernel's log says about the time before we ran.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KernelLog {
    /// Seconds the kernel spent unpacking the initramfs, when both messages were found.
    pub unpack_secs: Option<f64>,
}

/// The time of a record (seconds since boot) and its message.
fn record(line: &str) -> Option<(f64, &str)> {
    let (head, msg) = line.split_once(';')?;
    let usec: u64 = head.split(',').nth(2)?.parse().ok()?;
    Some((usec as f64 / 1e6, msg))
}

/// Reads the unpack time out of `/dev/kmsg` records (one per line).
pub fn parse_kmsg(text: &str) -> KernelLog {
    let mut start = None;
    let mut end = None;
    for (t, msg) in text.lines().filter_map(record) {
        if start.is_none() && msg.contains("Trying to unpack rootfs image as initramfs") {
            start = Some(t);
        }
        if end.is_none() && msg.contains("Freeing initrd memory") {
            end = Some(t);
        }
    }
    KernelLog {
        unpack_secs: match (start, end) {
            (Some(s), Some(e)) if e >= s => Some(e - s),
            _ => None,
        },
    }
}

/// The kernel's log as it is now, read without waiting (`/dev/kmsg` blocks at its end; a
/// missing or unreadable one gives an empty log: the line then leaves the unpack time out).
pub fn read_kernel_log() -> KernelLog {
    let Ok(mut f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open("/dev/kmsg")
    else {
        return KernelLog::default();
    };
    let mut text = String::new();
    // Each read returns one record; EAGAIN at the end of the buffer, EPIPE when a record was
    // overwritten before we read it (skip it and go on).
    let mut buf = vec![0u8; 8192];
    for _ in 0..100_000 {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                text.push_str(&String::from_utf8_lossy(&buf[..n]));
                if !text.ends_with('\n') {
                    text.push('\n');
                }
            }
            Err(e) if e.raw_os_error() == Some(nix::libc::EPIPE) => continue,
            Err(_) => break,
        }
    }
    parse_kmsg(&text)
}

/// The parts of the time to the menu.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BootTimes {
    /// Seconds since the kernel started when we (PID 1) began.
    pub kernel_secs: f64,
    pub kernel_log: KernelLog,
    /// Loading drivers until the last device appeared.
    pub coldplug: Duration,
    /// The quiet wait after the last device appeared.
    pub settle: Duration,
    pub discovery: Duration,
    /// An unattended restore's wait for its backup and target to appear (`lifeboat.settle`).
    pub waited: Duration,
}

/// "Menu ready 4.2 s after the kernel started: kernel 2.1 s (initramfs unpacked in 0.6 s),
/// coldplug 0.9 s, settle 0.3 s, discovery 0.4 s." (and ", waited for the backup 19.1 s"
/// when an unattended restore waited for it; the rest is the unattended attempt's own).
pub fn line(total_secs: f64, t: &BootTimes) -> String {
    let unpack = t
        .kernel_log
        .unpack_secs
        .map(|u| format!(" (initramfs unpacked in {u:.1} s)"))
        .unwrap_or_default();
    let waited = if t.waited >= Duration::from_millis(50) {
        format!(", waited for the backup {:.1} s", t.waited.as_secs_f64())
    } else {
        String::new()
    };
    format!(
        "Menu ready {total_secs:.1} s after the kernel started: kernel {:.1} s{unpack}, coldplug {:.1} s, settle {:.1} s, discovery {:.1} s{waited}.",
        t.kernel_secs,
        t.coldplug.as_secs_f64(),
        t.settle.as_secs_f64(),
        t.discovery.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unpack_time_comes_from_the_kernel_log() {
        let log = "6,1,0,-;Linux version 6.1.0\n\
                   6,200,412345,-;Trying to unpack rootfs image as initramfs...\n\
                   6,201,500000,c;random line; with a semicolon\n\
                   6,260,1012345,-;Freeing initrd memory: 20480K\n\
                   garbage without fields\n";
        let k = parse_kmsg(log);
        let u = k.unpack_secs.unwrap_or(-1.0);
        assert!((u - 0.6).abs() < 1e-9, "{u}");
    }

    #[test]
    fn a_log_without_the_messages_leaves_the_unpack_time_out() {
        assert_eq!(parse_kmsg("6,1,10,-;hello\n").unpack_secs, None);
        let t = BootTimes {
            kernel_secs: 2.04,
            coldplug: Duration::from_millis(900),
            settle: Duration::from_millis(300),
            discovery: Duration::from_millis(420),
            ..BootTimes::default()
        };
        assert_eq!(
            line(4.26, &t),
            "Menu ready 4.3 s after the kernel started: kernel 2.0 s, coldplug 0.9 s, settle 0.3 s, discovery 0.4 s."
        );
        let t = BootTimes {
            waited: Duration::from_millis(19_140),
            ..t
        };
        assert_eq!(
            line(24.0, &t),
            "Menu ready 24.0 s after the kernel started: kernel 2.0 s, coldplug 0.9 s, settle 0.3 s, discovery 0.4 s, waited for the backup 19.1 s."
        );
    }
}
