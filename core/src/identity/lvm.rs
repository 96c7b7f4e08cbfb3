//! LVM2 physical volume labels (`pvcreate`): the PV UUID, read directly.
//!
//! The label sits in one of the first four sectors: `LABELONE` at 0, its own sector number at
//! 8, then at 20 the offset of the PV header within the sector and at 24 `LVM2 001`. The PV
//! header starts with the 32-character PV UUID.

use super::table::{le_u32, ReadAt};

/// Reads an LVM2 PV label; `Ok(None)` when there is none. The UUID is formatted as `pvs`
/// prints it (6-4-4-4-4-4-6 characters).
pub fn probe_pv_uuid<D: ReadAt + ?Sized>(dev: &D) -> std::io::Result<Option<String>> {
    let len = dev.size()?;
    for sector in 0..4u64 {
        if len < (sector + 1) * 512 {
            break;
        }
        let mut s = [0u8; 512];
        dev.read_at(sector * 512, &mut s)?;
        if &s[0..8] != b"LABELONE" || &s[24..32] != b"LVM2 001" {
            continue;
        }
        let off = le_u32(&s, 20) as usize;
        let Some(raw) = s.get(off..off + 32) else {
            return Ok(Some(String::new()));
        };
        let raw = String::from_utf8_lossy(raw).into_owned();
        return Ok(Some(format_pv_uuid(&raw)));
    }
    Ok(None)
}

fn format_pv_uuid(raw: &str) -> String {
    let mut out = String::with_capacity(38);
    let mut pos = 0;
    for (i, n) in [6usize, 4, 4, 4, 4, 4, 6].into_iter().enumerate() {
        if i > 0 {
            out.push('-');
        }
        out.push_str(raw.get(pos..pos + n).unwrap_or(""));
        pos += n;
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hand_made_label() {
        let mut b = vec![0u8; 4096];
        b[512..520].copy_from_slice(b"LABELONE");
        b[512 + 20] = 32;
        b[512 + 24..512 + 32].copy_from_slice(b"LVM2 001");
        b[512 + 32..512 + 64].copy_from_slice(b"AbCdEf1234567890abcdefghijKLMNOP");
        assert_eq!(
            probe_pv_uuid(b.as_slice()).unwrap().as_deref(),
            Some("AbCdEf-1234-5678-90ab-cdef-ghij-KLMNOP")
        );
        b[512 + 24] = b'X';
        assert_eq!(probe_pv_uuid(b.as_slice()).unwrap(), None);
    }
}
