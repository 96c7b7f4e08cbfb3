//! One rule for "latest", everywhere: the newest backup of this host by the time it was taken
//! (the manifest's `created`). "This host" is the running machine's identity (product UUID,
//! else serial) when the backup records one and the machine reports it, else the host name.
//! Firmware placeholders ("To Be Filled By O.E.M.", an all-zero UUID, ...) are no identity:
//! two machines whose firmware write the same placeholder are not the same machine.
//! Other hosts' backups are restored only when chosen by hand (by generation id).

use crate::archive::manifest::MachineIdentity;
use crate::identity::machine;
use crate::store::Generation;

/// The machine asking for "latest".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThisHost {
    pub machine: MachineIdentity,
    pub hostname: String,
}

impl ThisHost {
    /// The running machine (DMI identity, which needs root, and the kernel's host name).
    pub fn running() -> Self {
        ThisHost {
            machine: machine::machine_identity(),
            hostname: machine::hostname_of_root(std::path::Path::new("/")),
        }
    }
}

/// What "latest" needs to know of a backup.
pub trait Dated {
    /// When it was taken (RFC 3339 UTC; compared as text, which orders such times).
    fn created(&self) -> &str;
    fn host(&self) -> &str;
    /// The machine it was taken on, when recorded.
    fn machine(&self) -> Option<&MachineIdentity>;
    /// How to name it in a message, e.g. "generation 20260101T000000Z of host1".
    fn label(&self) -> String;
}

impl Dated for Generation {
    fn created(&self) -> &str {
        &self.meta.created
    }
    fn host(&self) -> &str {
        &self.meta.host
    }
    fn machine(&self) -> Option<&MachineIdentity> {
        self.meta.manifest.as_ref().map(|m| &m.machine)
    }
    fn label(&self) -> String {
        format!(
            "generation {} of host '{}' taken {}",
            self.id, self.meta.host, self.meta.created
        )
    }
}

/// No backup of this host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LatestError {
    #[error("there is no backup to restore")]
    None,
    #[error("no backup here was taken on this host ({this}); other hosts' backups are restored only when chosen by hand: {}", .others.join("; "))]
    OtherHostsOnly { this: String, others: Vec<String> },
}

fn same(a: Option<&str>, b: Option<&str>) -> Option<bool> {
    let a = a.map(str::trim).filter(|s| !s.is_empty())?;
    let b = b.map(str::trim).filter(|s| !s.is_empty())?;
    Some(a.eq_ignore_ascii_case(b))
}

/// Why a backup counts as taken on this machine (core's one rule, [`match_reason`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThisHostMatch {
    /// The DMI product UUIDs are the same.
    ProductUuid,
    /// No UUID on one side; the DMI product serials are the same.
    ProductSerial,
    /// Neither UUID nor serial to compare; the backup recorded this NIC's MAC address.
    Mac(String),
    /// Nothing of the machine to compare; the host names are the same.
    HostName,
}

impl std::fmt::Display for ThisHostMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ThisHostMatch::ProductUuid => write!(f, "DMI UUID matches"),
            ThisHostMatch::ProductSerial => write!(f, "DMI serial number matches"),
            ThisHostMatch::Mac(m) => write!(f, "MAC address {m} matches"),
            ThisHostMatch::HostName => write!(f, "host name matches"),
        }
    }
}

/// Why `b` was taken on `this`, or None: by product UUID, else product serial (when both
/// sides have a meaningful one: then it decides; firmware placeholders such as "To Be Filled
/// By O.E.M." count as none, [`machine::meaningful`]), else a MAC address both record (a match
/// only: NICs are replaced), else by host name.
pub fn match_reason<T: Dated + ?Sized>(b: &T, this: &ThisHost) -> Option<ThisHostMatch> {
    if let Some(m) = b.machine() {
        let (m, here) = (machine::meaningful(m), machine::meaningful(&this.machine));
        if let Some(v) = same(m.product_uuid.as_deref(), here.product_uuid.as_deref()) {
            return v.then_some(ThisHostMatch::ProductUuid);
        }
        if let Some(v) = same(m.product_serial.as_deref(), here.product_serial.as_deref()) {
            return v.then_some(ThisHostMatch::ProductSerial);
        }
        if let Some(mac) = m.macs.iter().find(|a| {
            here.macs
                .iter()
                .any(|b| same(Some(a), Some(b)) == Some(true))
        }) {
            return Some(ThisHostMatch::Mac(mac.clone()));
        }
    }
    (same(Some(b.host()), Some(&this.hostname)) == Some(true)).then_some(ThisHostMatch::HostName)
}

/// True when `b` was taken on `this` ([`match_reason`]).
pub fn is_this_host<T: Dated + ?Sized>(b: &T, this: &ThisHost) -> bool {
    match_reason(b, this).is_some()
}

/// The newest backup of this host by the time it was taken; on equal times the later one in
/// `items` (stores list generations oldest first).
pub fn select_latest<'a, T: Dated>(items: &'a [T], this: &ThisHost) -> Result<&'a T, LatestError> {
    if items.is_empty() {
        return Err(LatestError::None);
    }
    let mut best: Option<&T> = None;
    for b in items.iter().filter(|b| is_this_host(*b, this)) {
        match best {
            Some(x) if b.created() < x.created() => {}
            _ => best = Some(b),
        }
    }
    best.ok_or_else(|| LatestError::OtherHostsOnly {
        this: describe(this),
        others: items.iter().map(Dated::label).collect(),
    })
}

fn describe(this: &ThisHost) -> String {
    let mut s = format!("host name '{}'", this.hostname);
    let here = machine::meaningful(&this.machine);
    if let Some(u) = here.product_uuid.as_deref() {
        s.push_str(&format!(", machine UUID {u}"));
    } else if let Some(sn) = here.product_serial.as_deref() {
        s.push_str(&format!(", machine serial {sn}"));
    }
    s
}
