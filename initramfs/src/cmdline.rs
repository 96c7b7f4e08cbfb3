//! The kernel command line: consoles and the `lifeboat.*` options of an unattended restore.

/// What to do after a restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    Reboot,
    Poweroff,
    Shell,
    Menu,
}

impl After {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "reboot" => Some(Self::Reboot),
            "poweroff" | "halt" => Some(Self::Poweroff),
            "shell" => Some(Self::Shell),
            "menu" => Some(Self::Menu),
            _ => None,
        }
    }
}

/// Options read from /proc/cmdline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Device names of every `console=` in order, e.g. ["tty0", "ttyS0"] (options after ',' dropped).
    pub consoles: Vec<String>,
    /// `lifeboat.restore=latest|GEN`: restore without the menu.
    pub restore: Option<String>,
    /// `lifeboat.yes`: no confirmation question.
    pub yes: bool,
    /// `lifeboat.after=...`.
    pub after: Option<After>,
    /// `lifeboat.target=DEV`: the partition (or disk) to restore to.
    pub target: Option<String>,
    /// `lifeboat.disk=ID`: a blank disk (serial, WWN, by-id or kernel name) to recreate the
    /// backup's whole recorded disk layout on, then restore.
    pub disk: Option<String>,
    /// `lifeboat.allow-other-host`: accept a machine or disk identity mismatch.
    pub allow_other_host: bool,
    /// `lifeboat.request=ID`: the request an unattended restore runs for (made by `lifeboat
    /// mkrescue`). A request already done in the store's journal is not restored again: the
    /// local disk boots instead.
    pub request: Option<String>,
    /// `lifeboat.restart-plan`: run the plan from its first step even when the store's journal
    /// holds an unfinished plan of the same generation that differs from it.
    pub restart_plan: bool,
    /// `lifeboat.settle=SECONDS`: longest wait for disks (default 20).
    pub settle_max_secs: Option<u64>,
    /// `lifeboat.repo=URL`: restore from this repository (network brought up first); its keys
    /// come from the image (`mkrescue --repo-*`).
    pub repo: Option<String>,
    /// `lifeboat.ip=ADDR/PREFIX:GATEWAY:DNS` (or `dhcp`, the default) for the network.
    pub ip: Option<String>,
    /// Unknown `lifeboat.*` words, reported once at boot.
    pub unknown: Vec<String>,
}

/// Splits a command line into words, honouring double quotes as the kernel does.
fn words(cmdline: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in cmdline.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A request id: 1 to 64 ASCII letters, digits, '-', '_' or '.'.
fn is_request_id(v: &str) -> bool {
    (1..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub fn parse(cmdline: &str) -> Options {
    let mut o = Options::default();
    for w in words(cmdline) {
        let (key, value) = match w.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (w.as_str(), None),
        };
        match (key, value) {
            ("console", Some(v)) => {
                let name = v
                    .split(',')
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("/dev/");
                if !name.is_empty() && !o.consoles.iter().any(|c| c == name) {
                    o.consoles.push(name.to_string());
                } else if let Some(pos) = o.consoles.iter().position(|c| c == name) {
                    // The last console= is /dev/console: keep the order of last appearance.
                    let n = o.consoles.remove(pos);
                    o.consoles.push(n);
                }
            }
            ("lifeboat.restore", v) => o.restore = Some(v.unwrap_or("latest").to_string()),
            ("lifeboat.yes", None) => o.yes = true,
            ("lifeboat.yes", Some(v)) => o.yes = !matches!(v, "0" | "no" | "false"),
            ("lifeboat.after", Some(v)) => match After::parse(v) {
                Some(a) => o.after = Some(a),
                None => o.unknown.push(w.clone()),
            },
            ("lifeboat.target", Some(v)) if !v.is_empty() => o.target = Some(v.to_string()),
            ("lifeboat.disk", Some(v)) if !v.is_empty() => o.disk = Some(v.to_string()),
            ("lifeboat.allow-other-host" | "lifeboat.allow_other_host", _) => {
                o.allow_other_host = !matches!(value, Some("0" | "no" | "false"))
            }
            ("lifeboat.restart-plan", None) => o.restart_plan = true,
            ("lifeboat.request", Some(v)) if is_request_id(v) => o.request = Some(v.to_string()),
            ("lifeboat.repo", Some(v)) if !v.is_empty() => o.repo = Some(v.to_string()),
            ("lifeboat.ip", Some(v)) if !v.is_empty() => o.ip = Some(v.to_string()),
            ("lifeboat.settle", Some(v)) => match v.parse() {
                Ok(s) => o.settle_max_secs = Some(s),
                Err(_) => o.unknown.push(w.clone()),
            },
            (k, _) if k.starts_with("lifeboat.") => o.unknown.push(w.clone()),
            _ => {}
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unattended_restore() {
        let o = parse(
            "BOOT_IMAGE=x console=tty0 console=ttyS0,115200n8 quiet lifeboat.restore=latest \
             lifeboat.yes lifeboat.after=poweroff lifeboat.target=/dev/sda3 lifeboat.allow-other-host lifeboat.request=20261202-0740-a1b2 lifeboat.disk=S3Z8NB0K",
        );
        assert_eq!(o.consoles, vec!["tty0".to_string(), "ttyS0".to_string()]);
        assert_eq!(o.restore.as_deref(), Some("latest"));
        assert!(o.yes && o.allow_other_host);
        assert_eq!(o.after, Some(After::Poweroff));
        assert_eq!(o.disk.as_deref(), Some("S3Z8NB0K"));
        assert_eq!(o.target.as_deref(), Some("/dev/sda3"));
        assert_eq!(o.request.as_deref(), Some("20261202-0740-a1b2"));
        assert!(o.unknown.is_empty());
    }

    #[test]
    fn a_malformed_request_is_reported_not_used() {
        let o = parse("lifeboat.request= lifeboat.request=a/b");
        assert_eq!(o.request, None);
        assert_eq!(o.unknown.len(), 2, "{:?}", o.unknown);
    }

    #[test]
    fn repository_and_address() {
        let o = parse("lifeboat.repo=s3://lb/fleet lifeboat.ip=192.0.2.10/24:192.0.2.1:");
        assert_eq!(o.repo.as_deref(), Some("s3://lb/fleet"));
        assert_eq!(o.ip.as_deref(), Some("192.0.2.10/24:192.0.2.1:"));
        assert!(o.unknown.is_empty());
        let o = parse("lifeboat.repo= lifeboat.ip");
        assert_eq!((o.repo, o.ip), (None, None));
        assert_eq!(o.unknown.len(), 2);
    }

    #[test]
    fn defaults_to_the_menu() {
        let o = parse("console=ttyS0 lifeboat.after=explode");
        assert_eq!(o.restore, None);
        assert!(!o.yes);
        assert_eq!(o.unknown, vec!["lifeboat.after=explode".to_string()]);
    }
}
