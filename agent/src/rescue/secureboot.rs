//! Secure Boot media (`mkrescue --secure-boot`): Debian's signed boot chain instead of a GRUB
//! image made here (which no firmware would trust).
//!
//! ```text
//! firmware (db: Microsoft UEFI CA) -> shim (shim-signed, signed by Microsoft)
//!   -> GRUB (grub-efi-amd64-signed, signed by Debian: shim trusts Debian's CA built into it)
//!     -> the kernel (linux-image-*-amd64, signed by Debian; GRUB asks shim to verify it)
//!       -> modules (signed by Debian's per-build key, checked by the kernel in lockdown)
//! ```
//! Media: shim as `EFI/BOOT/BOOTX64.EFI`, `gcdx64.efi` as `EFI/BOOT/grubx64.efi` (shim loads
//! the file of that name beside itself), `mmx64.efi` (MokManager) beside them. Network:
//! shim as `bootx64.efi`, `grubnetx64.efi` as `grubx64.efi`. Nothing here re-signs or alters a
//! signed file: they are copied byte for byte, and the modules keep their appended signatures
//! (the image builder decompresses `.ko.xz`/`.ko.zst`, which keeps the signature; it never
//! strips).
//!
//! The prefixes are baked into Debian's signed images (their signature covers them): `gcdx64.efi`
//! reads `/boot/grub/grub.cfg` on the device it was loaded from (after `/boot/grub/x86_64-efi/
//! grub.cfg`), `grubnetx64.efi` reads `/grub/grub.cfg` from the TFTP server's root.

use anyhow::Context;
use std::path::{Path, PathBuf};

/// A directory holding `shimx64.efi mmx64.efi gcdx64.efi grubnetx64.efi` (what
/// scripts/fetch-signed.sh writes), searched when `--signed-dir` is not given.
pub const SIGNED_DIR_VAR: &str = "LIFEBOAT_SIGNED_DIR";

/// The names on the media, fixed by shim (it loads `grubx64.efi` and `mmx64.efi` from its own
/// directory).
pub const SHIM_MEDIA_NAME: &str = "BOOTX64.EFI";
pub const GRUB_NAME: &str = "grubx64.efi";
pub const MOKMANAGER_NAME: &str = "mmx64.efi";

/// The magic at the end of a signed kernel module (scripts/sign-file in the kernel tree).
const MODULE_SIG_MAGIC: &[u8] = b"~Module signature appended~\n";

/// One signed file: its name in a flat directory, and where its Debian package installs it.
struct Signed {
    flat: &'static str,
    installed: &'static str,
    package: &'static str,
}

const SHIM: Signed = Signed {
    flat: "shimx64.efi",
    installed: "/usr/lib/shim/shimx64.efi.signed",
    package: "shim-signed",
};
const MOKMANAGER: Signed = Signed {
    flat: "mmx64.efi",
    installed: "/usr/lib/shim/mmx64.efi.signed",
    package: "shim-helpers-amd64-signed",
};
const GRUB_CD: Signed = Signed {
    flat: "gcdx64.efi",
    installed: "/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed",
    package: "grub-efi-amd64-signed",
};
const GRUB_NET: Signed = Signed {
    flat: "grubnetx64.efi",
    installed: "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed",
    package: "grub-efi-amd64-signed",
};

/// The signed boot loaders, found and checked.
#[derive(Debug, Clone)]
pub struct SignedLoaders {
    pub shim: PathBuf,
    pub mokmanager: PathBuf,
    /// GRUB for CD/USB media (`gcdx64.efi`).
    pub grub_cd: PathBuf,
    /// GRUB for network boot (`grubnetx64.efi`).
    pub grub_net: PathBuf,
}

impl SignedLoaders {
    /// Looks in `dir` (flat names), else in $LIFEBOAT_SIGNED_DIR, else where the Debian packages
    /// install them; every file must carry an Authenticode signature.
    pub fn locate(dir: Option<&Path>) -> anyhow::Result<Self> {
        let env = std::env::var_os(SIGNED_DIR_VAR).map(PathBuf::from);
        let dir = dir.map(Path::to_path_buf).or(env);
        let find = |s: &Signed| -> anyhow::Result<PathBuf> {
            let path = match &dir {
                Some(d) => d.join(s.flat),
                None => PathBuf::from(s.installed),
            };
            if !path.is_file() {
                anyhow::bail!(
                    "{} not found at {}: run `make signed` (scripts/fetch-signed.sh DIR) and pass \
                     --signed-dir DIR, or apt-get install {}",
                    s.flat,
                    path.display(),
                    s.package
                );
            }
            require_authenticode(&path)?;
            Ok(path)
        };
        Ok(Self {
            shim: find(&SHIM)?,
            mokmanager: find(&MOKMANAGER)?,
            grub_cd: find(&GRUB_CD)?,
            grub_net: find(&GRUB_NET)?,
        })
    }
}

/// The PE/COFF certificate table (data directory 4) of an EFI binary or kernel: `Some(size)`
/// when the file is a PE32+ image, `None` when it is not one.
pub fn certificate_table_size(bytes: &[u8]) -> Option<u32> {
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if bytes.get(0..2) != Some(b"MZ") {
        return None;
    }
    let pe = u32_at(0x3c)? as usize;
    if bytes.get(pe..pe + 4) != Some(b"PE\0\0") {
        return None;
    }
    let optional = pe + 24;
    // PE32+ (0x20b): the data directories start 112 bytes into the optional header.
    if u16_at(optional)? != 0x20b {
        return None;
    }
    let count = u32_at(optional + 108)?;
    if count < 5 {
        return Some(0);
    }
    let security = optional + 112 + 4 * 8;
    let (offset, size) = (u32_at(security)?, u32_at(security + 4)?);
    if offset == 0 || (offset as usize).saturating_add(size as usize) > bytes.len() {
        return Some(0);
    }
    Some(size)
}

/// Fails unless `path` is a PE image with an Authenticode signature (a certificate table).
/// Whether the firmware or shim will trust that signature is theirs to decide at boot; this
/// catches the unsigned kernel or loader that would certainly be refused.
pub fn require_authenticode(path: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    match certificate_table_size(&bytes) {
        None => anyhow::bail!(
            "{} is not a PE/EFI image: Secure Boot firmware cannot start it",
            path.display()
        ),
        Some(0) => anyhow::bail!(
            "{} carries no signature: Secure Boot would refuse it (use Debian's signed \
             linux-image-*-amd64 kernel, not an -unsigned one, or build without --secure-boot)",
            path.display()
        ),
        Some(_) => Ok(()),
    }
}

/// Whether a (decompressed) kernel module ends with the appended signature.
pub fn module_signed(bytes: &[u8]) -> bool {
    bytes.ends_with(MODULE_SIG_MAGIC)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A minimal PE32+ header with a certificate table of `cert` bytes at the end.
    fn pe(cert: u32) -> Vec<u8> {
        let mut b = vec![0u8; 0x400];
        b[0..2].copy_from_slice(b"MZ");
        b[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        b[0x80..0x84].copy_from_slice(b"PE\0\0");
        let opt = 0x80 + 24;
        b[opt..opt + 2].copy_from_slice(&0x20bu16.to_le_bytes());
        b[opt + 108..opt + 112].copy_from_slice(&16u32.to_le_bytes());
        let sec = opt + 112 + 32;
        if cert > 0 {
            b[sec..sec + 4].copy_from_slice(&0x300u32.to_le_bytes());
            b[sec + 4..sec + 8].copy_from_slice(&cert.to_le_bytes());
        }
        b
    }

    #[test]
    fn certificate_table_is_read() {
        assert_eq!(certificate_table_size(&pe(0x100)), Some(0x100));
        assert_eq!(certificate_table_size(&pe(0)), Some(0));
        // Pointing past the end of the file: no usable signature.
        assert_eq!(certificate_table_size(&pe(0x200)), Some(0));
        assert_eq!(certificate_table_size(b"\x7fELF"), None);
        assert_eq!(certificate_table_size(&[]), None);
    }

    #[test]
    fn unsigned_kernel_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let signed = dir.path().join("signed");
        let unsigned = dir.path().join("unsigned");
        std::fs::write(&signed, pe(0x100)).unwrap();
        std::fs::write(&unsigned, pe(0)).unwrap();
        require_authenticode(&signed).unwrap();
        let err = require_authenticode(&unsigned).unwrap_err().to_string();
        assert!(err.contains("carries no signature"), "{err}");
    }

    #[test]
    fn module_signature_magic() {
        let mut m = b"\x7fELF...".to_vec();
        assert!(!module_signed(&m));
        m.extend_from_slice(MODULE_SIG_MAGIC);
        assert!(module_signed(&m));
    }

    /// Debian's real files, when scripts/fetch-signed.sh has run (CI: `make signed`).
    #[test]
    fn debian_signed_loaders_and_kernel_are_signed() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../build");
        let dir = root.join("signed");
        if !lifeboat_core::testing::require(
            dir.join("shimx64.efi").is_file(),
            "build/signed missing: make signed",
        ) {
            return;
        }
        let l = SignedLoaders::locate(Some(&dir)).unwrap();
        assert!(l.shim.ends_with("shimx64.efi"));
        let kernel = root.join("kernel/vmlinuz");
        if kernel.exists() {
            require_authenticode(&kernel).unwrap();
        }
    }
}
