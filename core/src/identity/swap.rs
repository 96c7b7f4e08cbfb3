//! The Linux swap header (`mkswap`): UUID and label, read directly.
//!
//! The header is the first page: `SWAPSPACE2` in its last 10 bytes, and at offset 1024
//! version, last page, bad page count, the UUID (16 bytes) and the label (16 bytes).

use super::extfs::{c_string, format_uuid};
use super::table::ReadAt;

/// Page sizes a swap area may have been made with (x86: 4096; arm64/ppc64: up to 64 KiB).
const PAGE_SIZES: [u64; 4] = [4096, 8192, 16384, 65536];

/// A swap area's identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwapInfo {
    pub uuid: Option<String>,
    pub label: Option<String>,
    /// The page size it was made with.
    pub page_size: u32,
}

/// Reads a swap header; None when there is none (or only the old `SWAP-SPACE` v0 one, which
/// has no UUID or label: it is reported with neither).
pub fn probe<D: ReadAt + ?Sized>(dev: &D) -> std::io::Result<Option<SwapInfo>> {
    let len = dev.size()?;
    for page in PAGE_SIZES {
        if len < page {
            break;
        }
        let mut magic = [0u8; 10];
        dev.read_at(page - 10, &mut magic)?;
        if &magic == b"SWAP-SPACE" {
            return Ok(Some(SwapInfo {
                page_size: page as u32,
                ..Default::default()
            }));
        }
        if &magic != b"SWAPSPACE2" {
            continue;
        }
        let mut hdr = [0u8; 44];
        dev.read_at(1024, &mut hdr)?;
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&hdr[12..28]);
        return Ok(Some(SwapInfo {
            uuid: (uuid != [0u8; 16]).then(|| format_uuid(&uuid)),
            label: c_string(&hdr[28..44]),
            page_size: page as u32,
        }));
    }
    Ok(None)
}

/// The first page of a new swap area of `size` bytes with this UUID and label (x86's 4 KiB
/// pages), as `mkswap -U UUID -L LABEL` writes it. Written here because a restore recreates the
/// recorded swap from the recovery image, which carries no util-linux; the format is the one
/// [`probe`] reads. None when `size` is under 10 pages or the UUID is not 32 hex digits.
pub fn header(size: u64, uuid: Option<&str>, label: Option<&str>) -> Option<Vec<u8>> {
    const PAGE: u64 = 4096;
    let pages = size / PAGE;
    if pages < 10 {
        return None;
    }
    let last_page = u32::try_from(pages - 1).ok()?;
    let mut page = vec![0u8; PAGE as usize];
    page[1024..1028].copy_from_slice(&1u32.to_le_bytes());
    page[1028..1032].copy_from_slice(&last_page.to_le_bytes());
    // nr_badpages stays 0.
    if let Some(u) = uuid {
        let hex: String = u.chars().filter(|c| *c != '-').collect();
        let bytes = hex::decode(hex).ok()?;
        if bytes.len() != 16 {
            return None;
        }
        page[1036..1052].copy_from_slice(&bytes);
    }
    if let Some(l) = label {
        let b = l.as_bytes();
        let n = b.len().min(15);
        page[1052..1052 + n].copy_from_slice(&b[..n]);
    }
    page[PAGE as usize - 10..].copy_from_slice(b"SWAPSPACE2");
    Some(page)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testing::require_tool;

    #[test]
    fn hand_made_header() {
        let mut b = vec![0u8; 8192];
        b[4086..4096].copy_from_slice(b"SWAPSPACE2");
        b[1024] = 1;
        b[1036..1052].copy_from_slice(&[0x11; 16]);
        b[1052..1056].copy_from_slice(b"swp1");
        let s = probe(b.as_slice()).unwrap().unwrap();
        assert_eq!(
            s.uuid.as_deref(),
            Some("11111111-1111-1111-1111-111111111111")
        );
        assert_eq!(s.label.as_deref(), Some("swp1"));
        assert_eq!(s.page_size, 4096);
        b[4086..4096].fill(0);
        assert!(probe(b.as_slice()).unwrap().is_none());
    }

    #[test]
    fn made_by_mkswap() {
        if !require_tool("mkswap") {
            return;
        }
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().set_len(4 << 20).unwrap();
        let st = std::process::Command::new("mkswap")
            .args([
                "-q",
                "-L",
                "swap-a",
                "-U",
                "5a5a5a5a-1234-4321-8888-0123456789ab",
            ])
            .arg(f.path())
            .status()
            .unwrap();
        assert!(st.success());
        let s = probe(f.as_file()).unwrap().unwrap();
        assert_eq!(
            s.uuid.as_deref(),
            Some("5a5a5a5a-1234-4321-8888-0123456789ab")
        );
        assert_eq!(s.label.as_deref(), Some("swap-a"));
    }

    #[test]
    fn header_is_what_mkswap_writes() {
        if !require_tool("mkswap") {
            return;
        }
        let size = 4u64 << 20;
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().set_len(size).unwrap();
        let uuid = "5a5a5a5a-1234-4321-8888-0123456789ab";
        let st = std::process::Command::new("mkswap")
            .args(["-q", "-L", "swap-a", "-U", uuid])
            .arg(f.path())
            .status()
            .unwrap();
        assert!(st.success());
        let mut theirs = vec![0u8; 4096];
        std::os::unix::fs::FileExt::read_exact_at(f.as_file(), &mut theirs, 0).unwrap();
        let ours = header(size, Some(uuid), Some("swap-a")).unwrap();
        assert_eq!(ours, theirs, "the first page differs from mkswap's");
        let s = probe(ours.as_slice()).unwrap().unwrap();
        assert_eq!(s.uuid.as_deref(), Some(uuid));
        assert!(header(size, Some("not-a-uuid"), None).is_none());
        assert!(header(4096 * 9, None, None).is_none());
    }
}
