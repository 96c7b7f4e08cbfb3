//! An age identity on a USB stick (or the boot ISO, or another disk): what "Restore from
//! network" uses when the image carries none (repo.img without `identity.txt`), or on request.
//! Typically the repository's recovery key, which `lifeboat repo init` prints once for paper or
//! a stick. Each vfat, ext or iso9660 filesystem is mounted read-only (discovery's
//! [`mounts::mount_probe`]: an ext journal is not even replayed) and unmounted after; one already
//! mounted is read where it is. The key is read into memory only, never copied to a disk.

use crate::mounts;
use crate::probe::BlockDev;
use lifeboat_repo::crypto::{Identity, IdentityFile};
use std::path::Path;

/// The names looked at first, in this order; then any `*.txt` or `*.age` at the top level or
/// in `lifeboat/` whose content is an age identity.
pub const NAMES: [&str; 2] = ["lifeboat/identity.txt", "lifeboat-identity.txt"];

/// A file larger than this is not an identity (a plain one is one line, a protected one a
/// few hundred bytes).
const MAX_SIZE: u64 = 64 * 1024;

/// An identity found on a filesystem.
pub struct KeyFile {
    /// The device, e.g. "/dev/vdc1".
    pub dev: String,
    pub fstype: String,
    pub label: Option<String>,
    /// Its path on that filesystem, e.g. "lifeboat/identity.txt".
    pub path: String,
    /// Its content (in memory only).
    pub data: Vec<u8>,
    pub kind: IdentityFile,
}

impl KeyFile {
    /// "/dev/vdc1 (vfat, label KEYS): lifeboat/identity.txt"
    pub fn place(&self) -> String {
        let label = self
            .label
            .as_deref()
            .map(|l| format!(", label {l}"))
            .unwrap_or_default();
        format!("{} ({}{label}): {}", self.dev, self.fstype, self.path)
    }

    /// "protected by a passphrase" or "plain".
    pub fn describe_kind(&self) -> &'static str {
        match self.kind {
            IdentityFile::Plain => "plain",
            IdentityFile::Passphrase { .. } => "protected by a passphrase",
        }
    }
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyFile({})", self.place())
    }
}

/// What `data` is when it is an age identity: a plain one that parses, or a
/// passphrase-protected one.
pub fn identity_kind(data: &[u8]) -> Option<IdentityFile> {
    match IdentityFile::classify(data).ok()? {
        IdentityFile::Plain => {
            let text = std::str::from_utf8(data).ok()?;
            Identity::from_text(text).ok().map(|_| IdentityFile::Plain)
        }
        k => Some(k),
    }
}

/// The identities in the filesystem mounted at `root`: (path on it, content, kind), the
/// [`NAMES`] first, then the other `*.txt`/`*.age` files of the top level and of `lifeboat/`
/// by name.
pub fn in_dir(root: &Path) -> Vec<(String, Vec<u8>, IdentityFile)> {
    let mut paths: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
    for dir in ["", "lifeboat"] {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| {
                let l = n.to_ascii_lowercase();
                l.ends_with(".txt") || l.ends_with(".age")
            })
            .map(|n| {
                if dir.is_empty() {
                    n
                } else {
                    format!("{dir}/{n}")
                }
            })
            .filter(|p| !paths.iter().any(|q| q.eq_ignore_ascii_case(p)))
            .collect();
        names.sort();
        paths.extend(names);
    }
    paths
        .into_iter()
        .filter_map(|p| {
            let f = root.join(&p);
            let meta = std::fs::metadata(&f).ok()?;
            if !meta.is_file() || meta.len() > MAX_SIZE {
                return None;
            }
            let data = std::fs::read(&f).ok()?;
            let kind = identity_kind(&data)?;
            Some((p, data, kind))
        })
        .collect()
}

/// The filesystems that may hold a key file: vfat, ext and iso9660, on a partition or a disk
/// without partitions, never one leg of an md mirror (`legs`).
pub fn candidates<'a>(
    devs: &'a [BlockDev],
    legs: &std::collections::BTreeSet<String>,
) -> Vec<&'a BlockDev> {
    devs.iter()
        .filter(|d| matches!(d.fstype(), "vfat" | "iso9660") || d.fstype().starts_with("ext"))
        .filter(|d| !legs.contains(&d.name))
        .filter(|d| d.is_partition() || !devs.iter().any(|p| p.is_partition() && p.disk == d.name))
        .collect()
}

/// Looks at every candidate filesystem of this machine now; `log` hears what could not be
/// read (for the console).
pub fn search(mut log: impl FnMut(&str)) -> Vec<KeyFile> {
    let devs = crate::probe::scan();
    let legs: std::collections::BTreeSet<String> = devs
        .iter()
        .filter(|d| lifeboat_core::plan::md::probe_md(Path::new(&d.dev_path())).is_some())
        .map(|d| d.name.clone())
        .collect();
    let mut out = Vec::new();
    for d in candidates(&devs, &legs) {
        let dev = d.dev_path();
        let (dir, ours) = match mounts::mounted_at(&dev).into_iter().next() {
            Some(dir) => (dir, false),
            None => {
                let dir = mounts::mount_dir(&format!("key-{}", d.name));
                if let Err(e) = mounts::mount_probe(&dev, &dir, d.fstype()) {
                    log(&format!("{e:#}"));
                    continue;
                }
                (dir, true)
            }
        };
        for (path, data, kind) in in_dir(&dir) {
            out.push(KeyFile {
                dev: dev.clone(),
                fstype: d.fstype().to_string(),
                label: d.fs.as_ref().and_then(|f| f.label.clone()),
                path,
                data,
                kind,
            });
        }
        if ours {
            if let Err(e) = mounts::unmount(&dir) {
                log(&format!("{e:#}"));
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_found_by_name_then_by_content() {
        let d = tempfile::tempdir().unwrap();
        let id = Identity::generate();
        let locked = lifeboat_repo::crypto::protect_identity(&id.to_text(), "pw", 10).unwrap();
        std::fs::create_dir(d.path().join("lifeboat")).unwrap();
        std::fs::write(d.path().join("lifeboat/identity.txt"), id.to_text()).unwrap();
        std::fs::write(d.path().join("recovery.age"), &locked).unwrap();
        std::fs::write(d.path().join("notes.txt"), "not a key\n").unwrap();
        std::fs::write(d.path().join("lifeboat/other.TXT"), id.to_text()).unwrap();
        std::fs::create_dir(d.path().join("deep")).unwrap();
        std::fs::write(d.path().join("deep/key.txt"), id.to_text()).unwrap();
        let found: Vec<(String, IdentityFile)> = in_dir(d.path())
            .into_iter()
            .map(|(p, _, k)| (p, k))
            .collect();
        assert_eq!(
            found,
            [
                ("lifeboat/identity.txt".to_string(), IdentityFile::Plain),
                (
                    "recovery.age".to_string(),
                    IdentityFile::Passphrase { log_n: 10 }
                ),
                ("lifeboat/other.TXT".to_string(), IdentityFile::Plain),
            ]
        );
        assert!(identity_kind(b"AGE-SECRET-KEY-1 nonsense").is_none());
        let k = KeyFile {
            dev: "/dev/vdc1".into(),
            fstype: "vfat".into(),
            label: Some("KEYS".into()),
            path: "lifeboat/identity.txt".into(),
            data: vec![],
            kind: IdentityFile::Plain,
        };
        assert_eq!(
            k.place(),
            "/dev/vdc1 (vfat, label KEYS): lifeboat/identity.txt"
        );
    }

    #[test]
    fn candidates_are_filesystems_a_key_can_be_on() {
        use lifeboat_core::identity::devices::FsInfo;
        let dev = |name: &str, disk: &str, part: Option<u32>, fs: Option<&str>| BlockDev {
            name: name.into(),
            disk: disk.into(),
            partno: part,
            fs: fs.map(|t| FsInfo {
                fstype: t.into(),
                uuid: None,
                label: None,
            }),
            ..Default::default()
        };
        let devs = vec![
            dev("vda", "vda", None, None),
            dev("vda1", "vda", Some(1), Some("ext4")),
            dev("vda2", "vda", Some(2), Some("swap")),
            dev("sda", "sda", None, Some("vfat")),
            dev("sr0", "sr0", None, Some("iso9660")),
            dev("vdb1", "vdb", Some(1), Some("linux_raid_member")),
            dev("vdc1", "vdc", Some(1), Some("ext4")),
        ];
        let legs = ["vdc1".to_string()].into_iter().collect();
        let names: Vec<&str> = candidates(&devs, &legs)
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(names, ["vda1", "sda", "sr0"]);
    }
}
