//! Block devices as this image sees them: disks and partitions from /sys/class/block, with the
//! GPT/MBR identity of each partition (PARTUUID, name, type) and the filesystem signature of
//! each (ext2/3/4, vfat, iso9660: type, UUID, label). Small hand-written parsers: the image has
//! no blkid, and these few fixed offsets are all the restore needs.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsInfo {
    /// "ext2", "ext3", "ext4", "vfat", "iso9660"
    pub fstype: String,
    pub uuid: Option<String>,
    pub label: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct BlockDev {
    /// Kernel name, e.g. "vda2".
    pub name: String,
    /// The whole disk's kernel name (itself for a disk).
    pub disk: String,
    pub partno: Option<u32>,
    pub size: u64,
    pub removable: bool,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub partuuid: Option<String>,
    pub partname: Option<String>,
    pub type_guid: Option<String>,
    pub fs: Option<FsInfo>,
}

impl BlockDev {
    pub fn dev_path(&self) -> String {
        format!("/dev/{}", self.name)
    }
    pub fn is_partition(&self) -> bool {
        self.partno.is_some()
    }
    pub fn fstype(&self) -> &str {
        self.fs.as_ref().map(|f| f.fstype.as_str()).unwrap_or("")
    }
    pub fn label(&self) -> Option<&str> {
        self.fs.as_ref().and_then(|f| f.label.as_deref())
    }
    pub fn fs_uuid(&self) -> Option<&str> {
        self.fs.as_ref().and_then(|f| f.uuid.as_deref())
    }
}

fn read_sys(path: &Path) -> Option<String> {
    fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn read_at(file: &mut File, offset: u64, len: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.seek(SeekFrom::Start(offset)).ok()?;
    file.read_exact(&mut buf).ok()?;
    Some(buf)
}

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn le64(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// A GPT GUID (mixed endian on disk) as lower-case text.
pub fn guid_string(b: &[u8]) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        le32(b, 0),
        le16(b, 4),
        le16(b, 6),
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}

fn uuid_string(b: &[u8]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn text_field(b: &[u8]) -> Option<String> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let s = String::from_utf8_lossy(&b[..end]).trim_end().to_string();
    (!s.is_empty()).then_some(s)
}

/// Reads the filesystem signature at the start of a device.
pub fn probe_fs(path: &Path) -> Option<FsInfo> {
    let mut f = File::open(path).ok()?;
    if let Some(sb) = read_at(&mut f, 1024, 1024) {
        if le16(&sb, 0x38) == 0xEF53 {
            let compat = le32(&sb, 0x5C);
            let incompat = le32(&sb, 0x60);
            let ro_compat = le32(&sb, 0x64);
            let ext4_incompat = 0x40 | 0x80 | 0x200 | 0x400 | 0x10000;
            let ext4_ro = 0x8 | 0x10 | 0x20 | 0x40 | 0x400;
            let fstype = if incompat & ext4_incompat != 0 || ro_compat & ext4_ro != 0 {
                "ext4"
            } else if compat & 0x4 != 0 {
                "ext3"
            } else {
                "ext2"
            };
            return Some(FsInfo {
                fstype: fstype.into(),
                uuid: Some(uuid_string(&sb[0x68..0x78])),
                label: text_field(&sb[0x78..0x88]),
            });
        }
    }
    if let Some(iso) = read_at(&mut f, 32769, 5) {
        if &iso == b"CD001" {
            return Some(FsInfo {
                fstype: "iso9660".into(),
                uuid: None,
                label: None,
            });
        }
    }
    let bs = read_at(&mut f, 0, 512)?;
    if bs[510] == 0x55 && bs[511] == 0xAA {
        let (id_off, label_off) = if &bs[82..87] == b"FAT32" {
            (67, 71)
        } else if &bs[54..59] == b"FAT16" || &bs[54..59] == b"FAT12" {
            (39, 43)
        } else {
            return None;
        };
        let id = le32(&bs, id_off);
        let label = text_field(&bs[label_off..label_off + 11]).filter(|l| l != "NO NAME");
        return Some(FsInfo {
            fstype: "vfat".into(),
            uuid: Some(format!("{:04X}-{:04X}", id >> 16, id & 0xffff)),
            label,
        });
    }
    None
}

#[derive(Debug, Clone, Default)]
pub struct PartEntry {
    pub number: u32,
    pub partuuid: String,
    pub type_guid: String,
    pub name: Option<String>,
}

/// Reads a disk's partition table (GPT, else MBR primary partitions).
pub fn read_partition_table(path: &Path, sector: u64) -> Vec<PartEntry> {
    let Ok(mut f) = File::open(path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(hdr) = read_at(&mut f, sector, 92) {
        if &hdr[0..8] == b"EFI PART" {
            let lba = le64(&hdr, 72);
            let count = le32(&hdr, 80).min(1024) as usize;
            let size = le32(&hdr, 84) as usize;
            if size >= 128 {
                if let Some(table) = read_at(&mut f, lba * sector, count * size) {
                    for i in 0..count {
                        let e = &table[i * size..i * size + 128];
                        if e[0..16].iter().all(|&b| b == 0) {
                            continue;
                        }
                        let units: Vec<u16> = (0..36)
                            .map(|k| le16(e, 56 + 2 * k))
                            .take_while(|&u| u != 0)
                            .collect();
                        let name = String::from_utf16_lossy(&units);
                        out.push(PartEntry {
                            number: i as u32 + 1,
                            partuuid: guid_string(&e[16..32]),
                            type_guid: guid_string(&e[0..16]),
                            name: (!name.is_empty()).then_some(name),
                        });
                    }
                }
                return out;
            }
        }
    }
    if let Some(mbr) = read_at(&mut f, 0, 512) {
        if mbr[510] == 0x55 && mbr[511] == 0xAA {
            let sig = le32(&mbr, 440);
            for i in 0..4 {
                let t = mbr[446 + 16 * i + 4];
                if t != 0 {
                    out.push(PartEntry {
                        number: i as u32 + 1,
                        partuuid: format!("{sig:08x}-{:02x}", i + 1),
                        type_guid: format!("0x{t:02x}"),
                        name: None,
                    });
                }
            }
        }
    }
    out
}

/// Every disk and partition the kernel knows (loop, ram and zram devices left out).
pub fn scan() -> Vec<BlockDev> {
    let mut devs = Vec::new();
    let names = crate::coldplug::block_devices();
    let mut tables: std::collections::HashMap<String, Vec<PartEntry>> = Default::default();
    for name in names {
        let sys = Path::new("/sys/class/block").join(&name);
        let partno = read_sys(&sys.join("partition")).and_then(|s| s.parse().ok());
        let disk = if partno.is_some() {
            fs::canonicalize(&sys)
                .ok()
                .and_then(|p| {
                    p.parent()
                        .and_then(|d| d.file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                })
                .unwrap_or_else(|| name.clone())
        } else {
            name.clone()
        };
        let dsys = Path::new("/sys/class/block").join(&disk);
        let sectors: u64 = read_sys(&sys.join("size"))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let size = sectors * 512;
        if size == 0 {
            continue; // empty CD drive, absent medium
        }
        let mut d = BlockDev {
            name: name.clone(),
            disk: disk.clone(),
            partno,
            size,
            removable: read_sys(&dsys.join("removable")).as_deref() == Some("1"),
            model: read_sys(&dsys.join("device/model")),
            serial: read_sys(&dsys.join("serial"))
                .or_else(|| read_sys(&dsys.join("device/serial")))
                .or_else(|| {
                    read_sys(&dsys.join("device/vpd_pg80"))
                        .map(|s| s.trim_matches(|c: char| !c.is_ascii_graphic()).to_string())
                }),
            ..Default::default()
        };
        if let Some(n) = partno {
            let sector: u64 = read_sys(&dsys.join("queue/logical_block_size"))
                .and_then(|s| s.parse().ok())
                .unwrap_or(512);
            let table = tables.entry(disk.clone()).or_insert_with(|| {
                read_partition_table(Path::new(&format!("/dev/{disk}")), sector)
            });
            if let Some(e) = table.iter().find(|e| e.number == n) {
                d.partuuid = Some(e.partuuid.clone());
                d.type_guid = Some(e.type_guid.clone());
                d.partname = e.name.clone();
            }
        }
        d.fs = probe_fs(Path::new(&d.dev_path()));
        devs.push(d);
    }
    devs
}

/// Human form of a byte count (GiB with one decimal, or MiB).
pub fn human_size(bytes: u64) -> String {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    let b = bytes as f64;
    if b >= GIB {
        format!("{:.1} GiB", b / GIB)
    } else {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_gpt_guids() {
        // EFI system partition type GUID as stored on disk.
        let raw = [
            0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e,
            0xc9, 0x3b,
        ];
        assert_eq!(guid_string(&raw), "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
    }
}
