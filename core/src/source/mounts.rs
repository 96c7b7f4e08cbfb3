//! Mount points below a root, from /proc/self/mountinfo: the manifest names the mount points
//! a backup skips before the walk starts (the walk itself reports what it met).

use super::exclude::Excludes;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Decodes the octal escapes (`\040` for a space) of a mountinfo path.
fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\'
            && i + 3 < s.len()
            && s[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (s[i + 1] - b'0') as u32 * 64
                + (s[i + 2] - b'0') as u32 * 8
                + (s[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// Mount points (relative to `root`) of `mountinfo` text strictly below `root`.
pub fn below(mountinfo: &[u8], root: &[u8]) -> Vec<Vec<u8>> {
    let root = if root == b"/" {
        &b""[..]
    } else {
        root.strip_suffix(b"/").unwrap_or(root)
    };
    let mut out = Vec::new();
    for line in mountinfo.split(|&b| b == b'\n') {
        let Some(mp) = line.split(|&b| b == b' ').nth(4) else {
            continue;
        };
        let mp = unescape(mp);
        if let Some(rest) = mp.strip_prefix(root) {
            if let Some(rel) = rest.strip_prefix(b"/") {
                if !rel.is_empty() && !out.iter().any(|o: &Vec<u8>| o == rel) {
                    out.push(rel.to_vec());
                }
            }
        }
    }
    out.sort();
    out
}

/// The mount points below `root` that are neither included nor inside an excluded or
/// already skipped place: what the walk will archive as empty directories.
pub fn skipped_below(root: &Path, excludes: &Excludes, includes: &[Vec<u8>]) -> Vec<String> {
    let Ok(info) = std::fs::read("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let mut skipped: Vec<Vec<u8>> = Vec::new();
    for rel in below(&info, root.as_os_str().as_bytes()) {
        if includes.contains(&rel) {
            continue;
        }
        // Excluded itself or below something excluded or skipped: never reached.
        let mut hidden = false;
        for (i, &b) in rel.iter().enumerate() {
            if b == b'/' {
                let anc = &rel[..i];
                if excludes.is_excluded(anc) || skipped.iter().any(|s| s == anc) {
                    hidden = true;
                    break;
                }
            }
        }
        if hidden || excludes.is_excluded(&rel) || excludes.contents_excluded(&rel) {
            continue;
        }
        skipped.push(rel);
    }
    skipped
        .iter()
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_below_a_root() {
        let info = b"22 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
23 22 8:5 / /var/log rw - ext3 /dev/sda5 rw\n\
24 22 8:4 / /boot/efi rw - vfat /dev/sda4 rw\n\
25 22 0:5 / /my\\040dir rw - tmpfs tmpfs rw\n\
26 22 0:6 / /rootfoo rw - tmpfs tmpfs rw\n";
        assert_eq!(
            below(info, b"/"),
            vec![
                b"boot/efi".to_vec(),
                b"my dir".to_vec(),
                b"rootfoo".to_vec(),
                b"var/log".to_vec()
            ]
        );
        assert_eq!(below(info, b"/var"), vec![b"log".to_vec()]);
        assert!(below(info, b"/root").is_empty());
    }
}
