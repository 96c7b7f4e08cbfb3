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
}
