//! UEFI boot entries in efivarfs (`/sys/firmware/efi/efivars`): `Boot####` variables (4
//! bytes of attributes, then an `EFI_LOAD_OPTION`), `BootOrder` and `BootNext`, read and
//! written as efibootmgr does (an existing variable's immutable flag is cleared first).

use super::gpt::format_guid;
use super::IdentityError;
use crate::archive::disk_layout::UefiBootEntry;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// Where the kernel exposes the variables.
pub const EFIVARS_DIR: &str = "/sys/firmware/efi/efivars";
/// EFI_GLOBAL_VARIABLE: the vendor GUID of Boot####, BootOrder, BootNext.
pub const GLOBAL_GUID: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
/// NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS, as efibootmgr writes them.
pub const VAR_ATTRIBUTES: u32 = 0x7;

/// An `EFI_LOAD_OPTION`, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOption {
    /// LOAD_OPTION_ACTIVE = 1, ...
    pub attributes: u32,
    pub description: String,
    /// The partition the hard-drive media node names: GPT partition GUID (lower case) or MBR
    /// `<signature>-<nn>`.
    pub partuuid: Option<String>,
    /// The file path node's path, e.g. `\EFI\debian\shimx64.efi`.
    pub loader_path: Option<String>,
}

fn le16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}
fn le32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn utf16z(b: &[u8]) -> (String, usize) {
    let mut units = Vec::new();
    let mut i = 0;
    while let Some(u) = le16(b, i) {
        i += 2;
        if u == 0 {
            break;
        }
        units.push(u);
    }
    (String::from_utf16_lossy(&units), i)
}

/// Decodes an `EFI_LOAD_OPTION` (the variable's data without its 4 attribute bytes); None
/// when it is malformed.
pub fn parse_load_option(b: &[u8]) -> Option<LoadOption> {
    let attributes = le32(b, 0)?;
    let path_len = usize::from(le16(b, 4)?);
    let (description, used) = utf16z(b.get(6..)?);
    let dp = b.get(6 + used..6 + used + path_len)?;
    let mut opt = LoadOption {
        attributes,
        description,
        ..Default::default()
    };
    let mut i = 0;
    while i + 4 <= dp.len() {
        let (t, st) = (dp[i], dp[i + 1]);
        let len = usize::from(le16(dp, i + 2)?);
        if len < 4 || i + len > dp.len() {
            return None;
        }
        let node = &dp[i..i + len];
        match (t, st) {
            (0x7f, 0xff) => break,
            // Media / hard drive: number, start, size, signature, MBR type, signature type.
            (0x04, 0x01) if len >= 42 => {
                let sig = node.get(24..40)?;
                opt.partuuid = match node[41] {
                    2 => {
                        let mut g = [0u8; 16];
                        g.copy_from_slice(sig);
                        Some(format_guid(&g))
                    }
                    1 => Some(format!("{:08x}-{:02x}", le32(sig, 0)?, le32(node, 4)?)),
                    _ => None,
                };
            }
            // Media / file path.
            (0x04, 0x04) => {
                let (p, _) = utf16z(&node[4..]);
                opt.loader_path = Some(match opt.loader_path.take() {
                    Some(prev) => format!("{prev}{p}"),
                    None => p,
                });
            }
            _ => {}
        }
        i += len;
    }
    Some(opt)
}

fn var_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}-{GLOBAL_GUID}"))
}

/// A variable's data without its 4 attribute bytes; None when absent or unreadable.
fn read_var(dir: &Path, name: &str) -> Option<Vec<u8>> {
    let raw = std::fs::read(var_path(dir, name)).ok()?;
    raw.get(4..).map(<[u8]>::to_vec)
}

/// The `SecureBoot` variable: Some(true) when the firmware enforces Secure Boot, Some(false)
/// when it does not, None when the variable is absent (no UEFI, or firmware without it).
pub fn secure_boot(dir: &Path) -> Option<bool> {
    read_var(dir, "SecureBoot").and_then(|d| d.first().map(|&b| b == 1))
}

/// `BootOrder` as numbers (empty when absent).
pub fn boot_order(dir: &Path) -> Vec<u16> {
    read_var(dir, "BootOrder")
        .map(|d| {
            d.chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect()
        })
        .unwrap_or_default()
}

/// The numbers of the `Boot####` variables present, sorted.
pub fn boot_numbers(dir: &Path) -> Vec<u16> {
    let suffix = format!("-{GLOBAL_GUID}");
    let mut out: Vec<u16> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let hex = name.strip_prefix("Boot")?.strip_suffix(&suffix)?;
                    (hex.len() == 4)
                        .then(|| u16::from_str_radix(hex, 16).ok())
                        .flatten()
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_unstable();
    out
}

/// Every readable `Boot####` entry of `dir` (normally [`EFIVARS_DIR`]) with its position in
/// `BootOrder`; entries that cannot be decoded are left out.
pub fn read_boot_entries(dir: &Path) -> Vec<UefiBootEntry> {
    let order = boot_order(dir);
    boot_numbers(dir)
        .into_iter()
        .filter_map(|n| {
            let data = read_var(dir, &format!("Boot{n:04X}"))?;
            let opt = parse_load_option(&data)?;
            Some(UefiBootEntry {
                number: n,
                description: opt.description,
                partuuid: opt.partuuid.unwrap_or_default(),
                loader_path: opt.loader_path.unwrap_or_default(),
                boot_order_position: order.iter().position(|&o| o == n).map(|p| p as u32),
                load_option: hex::encode(&data),
            })
        })
        .collect()
}

/// The lowest `Boot####` number not in use.
pub fn first_free_boot_number(dir: &Path) -> Option<u16> {
    let used = boot_numbers(dir);
    (0..=u16::MAX).find(|n| used.binary_search(n).is_err())
}

/// Writes one variable (attributes then data in a single write, as efivarfs requires),
/// clearing the immutable flag efivarfs sets on existing variables first.
fn write_var(dir: &Path, name: &str, data: &[u8]) -> Result<(), IdentityError> {
    let path = var_path(dir, name);
    if let Ok(f) = std::fs::File::open(&path) {
        if let Ok(flags) = crate::sys::get_flags(f.as_fd()) {
            if flags & crate::sys::FS_IMMUTABLE_FL != 0 {
                crate::sys::set_flags(f.as_fd(), flags & !crate::sys::FS_IMMUTABLE_FL)
                    .map_err(|e| IdentityError::io(&path, e))?;
            }
        }
    }
    let mut buf = Vec::with_capacity(4 + data.len());
    buf.extend_from_slice(&VAR_ATTRIBUTES.to_le_bytes());
    buf.extend_from_slice(data);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| IdentityError::io(&path, e))?;
    f.write_all(&buf).map_err(|e| IdentityError::io(&path, e))
}

/// Writes `Boot####` with this `EFI_LOAD_OPTION` (as recorded in
/// [`UefiBootEntry::load_option`], decoded from hex).
pub fn write_boot_entry(dir: &Path, number: u16, load_option: &[u8]) -> Result<(), IdentityError> {
    if parse_load_option(load_option).is_none() {
        return Err(IdentityError::Layout {
            path: var_path(dir, &format!("Boot{number:04X}")),
            msg: "the recorded load option is malformed; the boot entry was not written".into(),
        });
    }
    write_var(dir, &format!("Boot{number:04X}"), load_option)
}

/// Writes `BootOrder`.
pub fn set_boot_order(dir: &Path, order: &[u16]) -> Result<(), IdentityError> {
    let data: Vec<u8> = order.iter().flat_map(|n| n.to_le_bytes()).collect();
    write_var(dir, "BootOrder", &data)
}

/// Writes `BootNext` (the entry the firmware boots once, next time).
pub fn set_boot_next(dir: &Path, number: u16) -> Result<(), IdentityError> {
    write_var(dir, "BootNext", &number.to_le_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A load option as efibootmgr builds it: active, "debian", HD(1,GPT,guid,...) then
    /// File(\EFI\debian\shimx64.efi), end node.
    pub(crate) fn sample(guid: &str, path: &str) -> Vec<u8> {
        let mut dp = Vec::new();
        let mut hd = vec![0x04, 0x01, 42, 0];
        hd.extend_from_slice(&1u32.to_le_bytes());
        hd.extend_from_slice(&2048u64.to_le_bytes());
        hd.extend_from_slice(&1_048_576u64.to_le_bytes());
        hd.extend_from_slice(&super::super::gpt_write::parse_guid(guid).unwrap());
        hd.extend_from_slice(&[2, 2]);
        dp.extend_from_slice(&hd);
        let p: Vec<u8> = path
            .encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect();
        dp.extend_from_slice(&[0x04, 0x04]);
        dp.extend_from_slice(&((4 + p.len()) as u16).to_le_bytes());
        dp.extend_from_slice(&p);
        dp.extend_from_slice(&[0x7f, 0xff, 4, 0]);
        let mut o = Vec::new();
        o.extend_from_slice(&1u32.to_le_bytes());
        o.extend_from_slice(&(dp.len() as u16).to_le_bytes());
        o.extend(
            "debian"
                .encode_utf16()
                .chain([0])
                .flat_map(u16::to_le_bytes),
        );
        o.extend_from_slice(&dp);
        o
    }

    #[test]
    fn parses_a_gpt_load_option() {
        let g = "0ec0d3f5-7c5c-4a3a-9d5e-1234567890ab";
        let o = parse_load_option(&sample(g, "\\EFI\\debian\\shimx64.efi")).unwrap();
        assert_eq!(o.attributes, 1);
        assert_eq!(o.description, "debian");
        assert_eq!(o.partuuid.as_deref(), Some(g));
        assert_eq!(o.loader_path.as_deref(), Some("\\EFI\\debian\\shimx64.efi"));
        let mut bad = sample(g, "\\x");
        bad[4] = 0xff;
        assert!(parse_load_option(&bad).is_none());
    }

    #[test]
    fn reads_and_writes_a_variables_directory() {
        let d = tempfile::tempdir().unwrap();
        let g = "0ec0d3f5-7c5c-4a3a-9d5e-1234567890ab";
        assert_eq!(first_free_boot_number(d.path()), Some(0));
        write_boot_entry(d.path(), 0, &sample(g, "\\EFI\\a.efi")).unwrap();
        write_boot_entry(d.path(), 3, &sample(g, "\\EFI\\b.efi")).unwrap();
        set_boot_order(d.path(), &[3, 0]).unwrap();
        set_boot_next(d.path(), 3).unwrap();
        assert_eq!(first_free_boot_number(d.path()), Some(1));
        let raw = std::fs::read(d.path().join(format!("BootNext-{GLOBAL_GUID}"))).unwrap();
        assert_eq!(raw, [7, 0, 0, 0, 3, 0]);
        let e = read_boot_entries(d.path());
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].number, e[0].boot_order_position), (0, Some(1)));
        assert_eq!((e[1].number, e[1].boot_order_position), (3, Some(0)));
        assert_eq!(e[1].loader_path, "\\EFI\\b.efi");
        assert_eq!(e[1].partuuid, g);
        assert_eq!(
            hex::decode(&e[1].load_option).unwrap(),
            sample(g, "\\EFI\\b.efi")
        );
        assert!(write_boot_entry(d.path(), 4, &[1, 2]).is_err());
    }

    #[test]
    fn secure_boot_variable() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(secure_boot(d.path()), None);
        let p = d.path().join(format!("SecureBoot-{GLOBAL_GUID}"));
        std::fs::write(&p, [6, 0, 0, 0, 1]).unwrap();
        assert_eq!(secure_boot(d.path()), Some(true));
        std::fs::write(&p, [6, 0, 0, 0, 0]).unwrap();
        assert_eq!(secure_boot(d.path()), Some(false));
    }
}
