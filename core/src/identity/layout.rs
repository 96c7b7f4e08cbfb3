//! The whole disks a backup records ([`DiskLayout`]): the disks of the root, of the ESP, of
//! `/var/log`, of active swap and of extra devices (the store's), each once (for an md array
//! or a device-mapper device: the disks of its members), with every
//! partition of each table, what it holds, where it was mounted, and the boot chain (MBR boot
//! code, BIOS boot partition bytes, the UEFI boot entries naming this disk).
//!
//! Best effort: what cannot be read is left out and said on stderr, never a failed backup.

use super::blockdev::{self, Disk};
use super::efivars;
use super::gpt::types;
use super::md::Window;
use super::table::{parse_partition_table, ReadAt, TableKind};
use super::{fs, gpt, lvm, mbr, md, swap, IdentityError};
use crate::archive::disk_layout::{BootChain, DiskLayout, PartitionContent, PartitionLayout};
use crate::archive::manifest::FilesystemIdentity;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// BIOS boot partitions larger than this are recorded without their bytes (GRUB's core.img
/// needs well under 1 MiB; XenServer makes them 1 MiB).
pub const MAX_BIOS_BOOT_BYTES: u64 = 8 << 20;

fn note(msg: &str) {
    eprintln!("lifeboat: disk layout: {msg}");
}

/// What a partition holds, from its own bytes (`type_id` is its table type).
pub fn content_of<D: ReadAt + ?Sized>(
    part: &D,
    type_id: &str,
) -> std::io::Result<PartitionContent> {
    if type_id == types::BIOS_BOOT {
        let len = part.size()?;
        if len <= MAX_BIOS_BOOT_BYTES {
            let mut bytes = vec![0u8; len as usize];
            part.read_at(0, &mut bytes)?;
            return bios_boot_content(&bytes);
        }
    }
    if let Some(m) = md::probe(part)? {
        return Ok(PartitionContent::MdMember(m));
    }
    if let Some(s) = swap::probe(part)? {
        return Ok(PartitionContent::Swap {
            uuid: s.uuid,
            label: s.label,
        });
    }
    if let Some(pv) = lvm::probe_pv_uuid(part)? {
        return Ok(PartitionContent::LvmPv {
            pv_uuid: (!pv.is_empty()).then_some(pv),
        });
    }
    Ok(match fs::probe_reader(part)? {
        Some(f) if matches!(f.fstype.as_str(), "ext2" | "ext3" | "ext4" | "vfat") => {
            PartitionContent::Filesystem(f)
        }
        Some(f) => PartitionContent::Other { fstype: f.fstype },
        None => PartitionContent::Unknown,
    })
}

/// A BIOS boot partition's bytes as recorded: zstd, then base64, with their BLAKE3.
pub fn bios_boot_content(bytes: &[u8]) -> std::io::Result<PartitionContent> {
    use base64::Engine;
    let packed = zstd::bulk::compress(bytes, 19)?;
    Ok(PartitionContent::BiosBoot {
        data: base64::engine::general_purpose::STANDARD.encode(packed),
        b3: blake3::hash(bytes).to_hex().to_string(),
    })
}

/// The bytes of a recorded BIOS boot partition, decoded and checked against their BLAKE3.
pub fn bios_boot_bytes(content: &PartitionContent) -> Result<Vec<u8>, IdentityError> {
    use base64::Engine;
    let bad = |msg: String| IdentityError::Layout {
        path: PathBuf::from("the recorded BIOS boot partition"),
        msg,
    };
    let PartitionContent::BiosBoot { data, b3 } = content else {
        return Err(bad(
            "this partition was not recorded as a BIOS boot partition".into(),
        ));
    };
    let packed = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| {
            bad(format!(
                "its bytes are not valid base64 ({e}): the manifest is damaged"
            ))
        })?;
    let mut bytes = Vec::new();
    zstd::stream::read::Decoder::new(packed.as_slice())
        .and_then(|mut d| d.read_to_end(&mut bytes))
        .map_err(|e| {
            bad(format!(
                "its bytes do not decompress ({e}): the manifest is damaged"
            ))
        })?;
    let got = blake3::hash(&bytes).to_hex().to_string();
    if &got != b3 {
        return Err(bad(format!(
            "its bytes have BLAKE3 {got}, the manifest records {b3}: the manifest is damaged"
        )));
    }
    Ok(bytes)
}

/// The partition table of a disk (or image) with each partition's content and the MBR boot
/// code; no sysfs names, mount points or UEFI entries (see [`record_disks`]). `Ok(None)`
/// when it has no partition table.
pub fn table_layout<D: ReadAt + ?Sized>(disk: &D) -> std::io::Result<Option<DiskLayout>> {
    let Some(table) = parse_partition_table(disk)? else {
        return Ok(None);
    };
    let size = disk.size()?;
    let (attrs, flags) = match table.kind {
        TableKind::Gpt => (
            gpt::read_attributes(disk, table.sector_size)?,
            BTreeMap::new(),
        ),
        TableKind::Dos => (BTreeMap::new(), mbr::boot_flags(disk)?),
    };
    let mut partitions = Vec::new();
    for e in &table.partitions {
        let win = Window {
            inner: disk,
            offset: e.start_bytes,
            len: e.size_bytes.min(size.saturating_sub(e.start_bytes)),
        };
        let extended = matches!(e.type_id.as_str(), "0x5" | "0xf" | "0x85");
        let content = if extended {
            PartitionContent::Unknown
        } else {
            match content_of(&win, &e.type_id) {
                Ok(c) => c,
                Err(err) => {
                    note(&format!(
                        "partition {}: cannot read its content: {err}",
                        e.number
                    ));
                    PartitionContent::Unknown
                }
            }
        };
        partitions.push(PartitionLayout {
            number: e.number,
            start_bytes: e.start_bytes,
            size_bytes: e.size_bytes,
            type_id: e.type_id.clone(),
            partuuid: e.partuuid.clone(),
            name: e.name.clone(),
            attributes: attrs.get(&e.number).copied().unwrap_or(0),
            mbr_flags: flags.get(&e.number).copied().unwrap_or(0),
            content,
            mountpoint: None,
        });
    }
    let mut code = [0u8; 440];
    disk.read_at(0, &mut code)?;
    Ok(Some(DiskLayout {
        size_bytes: size,
        sector_size: table.sector_size,
        table_type: table.kind.name().to_string(),
        table_id: table.id.clone(),
        partitions,
        boot: BootChain {
            mbr_boot_code: code.iter().any(|&b| b != 0).then(|| hex::encode(code)),
            uefi_entries: Vec::new(),
        },
        ..Default::default()
    }))
}

/// One line of /proc/self/mountinfo: device number, root within the filesystem, mount point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub major: u32,
    pub minor: u32,
    pub fs_root: String,
    pub mount_point: PathBuf,
    pub read_only: bool,
}

/// Undoes the octal escapes of mountinfo, /proc/swaps and fstab (`\040` for a space).
pub(crate) fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses /proc/self/mountinfo text (the one parser: `store::mount` uses it too).
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let (maj, min) = f.get(2)?.split_once(':')?;
            Some(MountInfo {
                major: maj.parse().ok()?,
                minor: min.parse().ok()?,
                fs_root: unescape(f.get(3)?),
                mount_point: PathBuf::from(unescape(f.get(4)?)),
                read_only: f.get(5)?.split(',').any(|o| o == "ro"),
            })
        })
        .collect()
}

/// `mount_point` as the backed-up system sees it: relative to `root` ("/" for root itself),
/// None when it is outside `root`.
fn relative_to_root(root: &Path, mount_point: &Path) -> Option<String> {
    let rel = mount_point.strip_prefix(root).ok()?;
    Some(format!("/{}", rel.display()))
}

/// One fstab entry: what it names (`UUID=`, `LABEL=`, `PARTUUID=`, `PARTLABEL=` or a path)
/// and where it mounts.
fn parse_fstab(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((unescape(f.next()?), unescape(f.next()?)))
        })
        .collect()
}

fn fs_of(c: &PartitionContent) -> Option<&FilesystemIdentity> {
    match c {
        PartitionContent::Filesystem(f)
        | PartitionContent::LifeboatStore(f)
        | PartitionContent::XenServerBackup(f) => Some(f),
        PartitionContent::MdMember(m) => m.filesystem.as_ref(),
        _ => None,
    }
}

/// The fstab mount point of a partition, matched by UUID=, LABEL=, PARTUUID= or PARTLABEL=.
fn fstab_mountpoint(fstab: &[(String, String)], p: &PartitionLayout) -> Option<String> {
    let (uuid, label) = match &p.content {
        PartitionContent::Swap { uuid, label } => (uuid.clone(), label.clone()),
        c => fs_of(c)
            .map(|f| (f.uuid.clone(), f.label.clone()))
            .unwrap_or_default(),
    };
    fstab.iter().find_map(|(spec, mp)| {
        let (k, v) = spec.split_once('=')?;
        let v = v.trim_matches('"');
        let hit = match k {
            "UUID" => uuid.as_deref().is_some_and(|u| u.eq_ignore_ascii_case(v)),
            "LABEL" => label.as_deref() == Some(v),
            "PARTUUID" => p.partuuid.eq_ignore_ascii_case(v),
            "PARTLABEL" => p.name.as_deref() == Some(v),
            _ => false,
        };
        // "none"/"swap" are not mount points.
        (hit && mp.starts_with('/')).then(|| mp.clone())
    })
}

/// Kernel names of the devices whose disks are recorded: those of `root`, `root/boot/efi`
/// and `root/var/log` (when separate mounts), of active swap (when `root` is `/`) and the
/// extra devices.
fn source_devices(root: &Path, extra: &[PathBuf]) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(Some(n)) = blockdev::name_of_dir(root) {
        names.push(n);
    }
    for sub in ["boot/efi", "var/log"] {
        let dir = root.join(sub);
        if super::is_separate_mount(root, &dir) {
            match blockdev::name_of_dir(&dir) {
                Ok(Some(n)) => names.push(n),
                Ok(None) => {}
                Err(e) => note(&format!("{}: {e}", dir.display())),
            }
        }
    }
    if root == Path::new("/") {
        if let Ok(text) = std::fs::read_to_string("/proc/swaps") {
            for line in text.lines().skip(1) {
                let Some(dev) = line.split_whitespace().next() else {
                    continue;
                };
                if let Ok(n) = blockdev::name_of_device(Path::new(&unescape(dev))) {
                    names.push(n);
                }
            }
        }
    }
    for dev in extra {
        match blockdev::name_of_device(dev) {
            Ok(n) => names.push(n),
            Err(e) => note(&format!("{}: {e}", dev.display())),
        }
    }
    names
}

/// The disks under a block device: its own disk, or for an md array or device-mapper device
/// (`slaves/` in sysfs, e.g. a RAID1 root) the disks of its members.
fn physical_disks(name: &str, depth: u32) -> Vec<String> {
    let disk = blockdev::parent_disk(name)
        .map(|(d, _)| d)
        .unwrap_or_else(|| name.to_string());
    let slaves_dir = Path::new("/sys/block").join(&disk).join("slaves");
    let slaves: Vec<String> = std::fs::read_dir(&slaves_dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if slaves.is_empty() || depth > 4 {
        return vec![disk];
    }
    let mut slaves = slaves;
    slaves.sort();
    slaves
        .iter()
        .flat_map(|s| physical_disks(s, depth + 1))
        .collect()
}

/// The device number of a holder (md, dm) of a partition, from sysfs.
fn holder_devnum(name: &str) -> Option<(u32, u32)> {
    let text =
        std::fs::read_to_string(Path::new("/sys/class/block").join(name).join("dev")).ok()?;
    let (a, b) = text.trim().split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn by_id_names(disk: &Disk) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir("/dev/disk/by-id")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| {
                    std::fs::canonicalize(e.path()).ok().as_deref() == Some(disk.dev_path.as_path())
                })
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The whole disks of the system under `root` (see the module documentation), each once.
/// `extra_devices` are recorded too (the backup command passes the store's device).
pub fn record_disks(root: &Path, extra_devices: &[PathBuf]) -> Vec<DiskLayout> {
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let mut disks: Vec<String> = Vec::new();
    for name in source_devices(&root, extra_devices) {
        for disk in physical_disks(&name, 0) {
            if !disks.contains(&disk) {
                disks.push(disk);
            }
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| parse_mountinfo(&t))
        .unwrap_or_default();
    let fstab = std::fs::read_to_string(root.join("etc/fstab"))
        .map(|t| parse_fstab(&t))
        .unwrap_or_default();
    let uefi = efivars::read_boot_entries(Path::new(efivars::EFIVARS_DIR));
    disks
        .iter()
        .filter_map(
            |name| match record_disk(name, &root, &mounts, &fstab, &uefi) {
                Ok(Some(d)) => Some(d),
                // A store on a whole disk (an extra device given as the disk itself) has no
                // layout to record: nothing to say.
                Ok(None) if is_extra_whole_disk(name, extra_devices) => None,
                Ok(None) => {
                    note(&format!(
                        "{name} has no partition table: its layout is not recorded"
                    ));
                    None
                }
                Err(e) => {
                    note(&format!("{name}: {e}: its layout is not recorded"));
                    None
                }
            },
        )
        .collect()
}

/// Whether the disk `name` is one of `extra_devices` itself (not a partition of it).
fn is_extra_whole_disk(name: &str, extra_devices: &[PathBuf]) -> bool {
    extra_devices.iter().any(|p| {
        let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        p.file_name().is_some_and(|f| f == name)
    })
}

fn record_disk(
    name: &str,
    root: &Path,
    mounts: &[MountInfo],
    fstab: &[(String, String)],
    uefi: &[crate::archive::disk_layout::UefiBootEntry],
) -> Result<Option<DiskLayout>, IdentityError> {
    let disk = blockdev::disk(name)?;
    let file =
        std::fs::File::open(&disk.dev_path).map_err(|e| IdentityError::io(&disk.dev_path, e))?;
    let Some(mut layout) = table_layout(&file).map_err(|e| IdentityError::io(&disk.dev_path, e))?
    else {
        return Ok(None);
    };
    layout.kernel_name = Some(disk.name.clone());
    layout.model = disk.model.clone();
    layout.serial = disk.serial.clone();
    layout.wwn = disk.wwn.clone();
    layout.by_id = by_id_names(&disk);
    for p in layout.partitions.iter_mut() {
        let Some(sys) = disk.partitions.iter().find(|s| s.number == p.number) else {
            continue;
        };
        // The partition itself, or the md array it is a member of (its holder).
        let mut devnums = vec![(sys.major, sys.minor)];
        devnums.extend(sys.holders.iter().filter_map(|h| holder_devnum(h)));
        let here: Vec<&MountInfo> = mounts
            .iter()
            .filter(|m| devnums.contains(&(m.major, m.minor)) && m.fs_root == "/")
            .collect();
        // A store or XenServer backup, wherever it is mounted (the backup command mounts the
        // store under /run).
        if let PartitionContent::Filesystem(f) = &p.content {
            for m in &here {
                if crate::store::Store::is_store(&m.mount_point) {
                    p.content = PartitionContent::LifeboatStore(f.clone());
                    break;
                }
                if m.mount_point
                    .join(crate::store::layout::XEN_MARKER)
                    .exists()
                {
                    p.content = PartitionContent::XenServerBackup(f.clone());
                    break;
                }
            }
        }
        // Lifeboat's own private mounts (a store opened by this backup) are not the system's.
        let private = [
            PathBuf::from("/run/lifeboat"),
            std::env::temp_dir().join("lifeboat"),
        ];
        p.mountpoint = here
            .iter()
            .filter(|m| !private.iter().any(|d| m.mount_point.starts_with(d)))
            .filter_map(|m| relative_to_root(root, &m.mount_point))
            .min_by_key(|s| s.len())
            .or_else(|| fstab_mountpoint(fstab, p));
    }
    layout.boot.uefi_entries = uefi
        .iter()
        .filter(|e| {
            layout
                .partitions
                .iter()
                .any(|p| !e.partuuid.is_empty() && p.partuuid.eq_ignore_ascii_case(&e.partuuid))
        })
        .cloned()
        .collect();
    Ok(Some(layout))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn mountinfo_lines() {
        let m = parse_mountinfo(
            "36 35 259:3 / /mnt/my\\040root rw,relatime shared:1 - ext4 /dev/nvme0n1p3 rw\n\
             40 36 259:3 /sub /bind rw - ext4 /dev/nvme0n1p3 rw\n",
        );
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].major, m[0].minor), (259, 3));
        assert_eq!(m[0].mount_point, Path::new("/mnt/my root"));
        assert_eq!(m[1].fs_root, "/sub");
        assert_eq!(
            relative_to_root(
                Path::new("/mnt/my root"),
                Path::new("/mnt/my root/boot/efi")
            )
            .as_deref(),
            Some("/boot/efi")
        );
        assert_eq!(
            relative_to_root(Path::new("/mnt/r"), Path::new("/mnt/r")).as_deref(),
            Some("/")
        );
        assert_eq!(
            relative_to_root(Path::new("/mnt/r"), Path::new("/run/x")),
            None
        );
    }

    #[test]
    fn fstab_matches_by_uuid_label_and_partuuid() {
        let fstab = parse_fstab(
            "# comment\nLABEL=root-xs / ext4 defaults 1 1\n\
             UUID=AAAA-BBBB /boot/efi vfat defaults 0 2\n\
             PARTUUID=c0ffee00-0000-4000-8000-000000000005 /var/log ext4 defaults 0 2\n\
             UUID=5a5a5a5a-0000-4000-8000-000000000006 none swap sw 0 0\n",
        );
        let part = |uuid: &str, label: Option<&str>, partuuid: &str| PartitionLayout {
            partuuid: partuuid.into(),
            content: PartitionContent::Filesystem(FilesystemIdentity {
                uuid: Some(uuid.into()),
                label: label.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mp = |p: &PartitionLayout| fstab_mountpoint(&fstab, p);
        assert_eq!(mp(&part("x", Some("root-xs"), "p1")).as_deref(), Some("/"));
        assert_eq!(
            mp(&part("aaaa-bbbb", None, "p2")).as_deref(),
            Some("/boot/efi")
        );
        assert_eq!(
            mp(&part("y", None, "C0FFEE00-0000-4000-8000-000000000005")).as_deref(),
            Some("/var/log")
        );
        let swap = PartitionLayout {
            content: PartitionContent::Swap {
                uuid: Some("5a5a5a5a-0000-4000-8000-000000000006".into()),
                label: None,
            },
            ..Default::default()
        };
        assert_eq!(mp(&swap), None);
        assert_eq!(mp(&part("z", None, "p9")), None);
    }

    #[test]
    fn bios_boot_bytes_round_trip_and_damage() {
        let bytes: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let c = bios_boot_content(&bytes).unwrap();
        assert_eq!(bios_boot_bytes(&c).unwrap(), bytes);
        let PartitionContent::BiosBoot { data, .. } = &c else {
            unreachable!()
        };
        let other = bios_boot_content(b"other").unwrap();
        let PartitionContent::BiosBoot { b3, .. } = other else {
            unreachable!()
        };
        let damaged = PartitionContent::BiosBoot {
            data: data.clone(),
            b3,
        };
        let err = bios_boot_bytes(&damaged).unwrap_err().to_string();
        assert!(err.contains("BLAKE3"), "{err}");
        assert!(bios_boot_bytes(&PartitionContent::Unknown).is_err());
    }
}
