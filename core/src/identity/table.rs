//! Partition tables read straight from a disk (GPT and MBR/DOS), with no udev or blkid:
//! the recovery image has neither.

use super::{gpt, mbr, IdentityError};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Which kind of partition table a disk carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    Gpt,
    Dos,
}

impl TableKind {
    /// "gpt" or "dos", as blkid's PTTYPE.
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Gpt => "gpt",
            TableKind::Dos => "dos",
        }
    }
}

/// One partition as its table describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEntry {
    /// 1-based partition number (the kernel's `sda<N>`).
    pub number: u32,
    pub start_bytes: u64,
    pub size_bytes: u64,
    /// GPT unique partition GUID (lower case) or MBR `<disk signature>-<nn>`.
    pub partuuid: String,
    /// GPT type GUID (lower case) or MBR type byte as "0x83".
    pub type_id: String,
    /// GPT partition name (PARTLABEL); None on MBR or when empty.
    pub name: Option<String>,
}

/// A disk's partition table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionTable {
    pub kind: TableKind,
    /// GPT disk GUID (lower case) or MBR disk signature as 8 hex digits.
    pub id: String,
    /// Logical sector size the table was found with.
    pub sector_size: u32,
    pub partitions: Vec<TableEntry>,
}

impl PartitionTable {
    /// The entry with this partition number.
    pub fn entry(&self, number: u32) -> Option<&TableEntry> {
        self.partitions.iter().find(|p| p.number == number)
    }
}

/// Random access to a disk or image (a `File`, or bytes in memory for tests).
pub trait ReadAt {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;
    fn size(&self) -> std::io::Result<u64>;
}

impl ReadAt for File {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.read_exact_at(buf, offset)
    }
    fn size(&self) -> std::io::Result<u64> {
        use std::io::{Seek, SeekFrom};
        // Block devices report 0 in metadata; seeking to the end works for both.
        let mut f = self;
        f.seek(SeekFrom::End(0))
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| short())?;
        let end = start.checked_add(buf.len()).ok_or_else(short)?;
        let src = self.get(start..end).ok_or_else(short)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.len() as u64)
    }
}

fn short() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "read beyond the end of the disk",
    )
}

/// Reads the partition table of a disk (or disk image). `Ok(None)` when it has none.
/// GPT wins over a protective MBR; a damaged primary GPT header falls back to the backup.
pub fn read_partition_table(dev: &Path) -> Result<Option<PartitionTable>, IdentityError> {
    let file = File::open(dev).map_err(|e| IdentityError::io(dev, e))?;
    parse_partition_table(&file).map_err(|e| IdentityError::io(dev, e))
}

/// Parses a partition table from any random-access source.
pub fn parse_partition_table<D: ReadAt + ?Sized>(
    disk: &D,
) -> std::io::Result<Option<PartitionTable>> {
    for sector in [512u32, 4096] {
        if let Some(t) = gpt::parse(disk, sector)? {
            return Ok(Some(t));
        }
    }
    mbr::parse(disk)
}

/// CRC-32 (IEEE 802.3, as GPT uses). Bitwise: the inputs are a few KiB, so no table is needed.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

pub(crate) fn le_u16(b: &[u8], off: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(off..off + 2) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

pub(crate) fn le_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(off..off + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

pub(crate) fn le_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
