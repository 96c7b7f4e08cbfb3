//! `/etc/xensource-inventory`: the XenServer host's identity, written by the installer as
//! shell-style `KEY='value'` lines.
//!
//! Parsed by hand (a tiny subset of shell words: single quotes, double quotes with backslash
//! escapes, bare words, `#` comments, an optional `export`) because no crate parses
//! exactly this and the format is a few lines.

use std::collections::BTreeMap;
use std::path::Path;

/// Path of the inventory relative to a root.
pub const INVENTORY_PATH: &str = "etc/xensource-inventory";

/// The inventory's fields, by key.
pub type Inventory = BTreeMap<String, String>;

/// Parses the text of an inventory. Lines that are not `KEY=value` are ignored.
pub fn parse_inventory(text: &str) -> Inventory {
    let mut out = Inventory::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, rest)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim_end();
        let valid_key = !key.is_empty()
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !key.as_bytes()[0].is_ascii_digit();
        if !valid_key {
            continue;
        }
        if let Some(value) = parse_shell_word(rest) {
            out.insert(key.to_string(), value);
        }
    }
    out
}

/// Reads one shell word from the start of `s` (up to unquoted white space or `#`).
/// Returns None on an unterminated quote.
fn parse_shell_word(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    c => out.push(c),
                }
            },
            '"' => loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        c @ ('"' | '\\' | '$' | '`') => out.push(c),
                        '\n' => {}
                        c => {
                            out.push('\\');
                            out.push(c);
                        }
                    },
                    c => out.push(c),
                }
            },
            '\\' => {
                if let Some(c) = chars.next() {
                    out.push(c);
                }
            }
            c if c.is_whitespace() => break,
            '#' if out.is_empty() => break,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Reads `<root>/etc/xensource-inventory`; `Ok(None)` when the root has none.
pub fn read_inventory(root: &Path) -> std::io::Result<Option<Inventory>> {
    match std::fs::read(root.join(INVENTORY_PATH)) {
        Ok(bytes) => Ok(Some(parse_inventory(&String::from_utf8_lossy(&bytes)))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The major number of a version string such as "8.2.1" (8).
pub fn major_of(version: &str) -> Option<u32> {
    let digits: String = version
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// `PRODUCT_VERSION` of an inventory (falls back to `PLATFORM_VERSION`).
pub fn product_version(inv: &Inventory) -> Option<&str> {
    inv.get("PRODUCT_VERSION")
        .or_else(|| inv.get("PLATFORM_VERSION"))
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// Major product version of an inventory (`PRODUCT_VERSION='8.2.1'` -> 8).
pub fn product_major(inv: &Inventory) -> Option<u32> {
    product_version(inv).and_then(major_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_installer_format() {
        let text = "PRIMARY_DISK='/dev/disk/by-id/scsi-3600'\n\
                    # a comment\n\
                    PRODUCT_VERSION='8.2.1'\n\
                    BUILD_NUMBER=release/yangtze\n\
                    export QUOTED=\"a \\\"b\\\" c\" # trailing\n\
                    MIXED='it'\\''s'\n\
                    EMPTY=''\n\
                    not a pair\n\
                    1BAD='x'\n\
                    UNTERMINATED='x\n";
        let inv = parse_inventory(text);
        assert_eq!(inv["PRIMARY_DISK"], "/dev/disk/by-id/scsi-3600");
        assert_eq!(inv["PRODUCT_VERSION"], "8.2.1");
        assert_eq!(inv["BUILD_NUMBER"], "release/yangtze");
        assert_eq!(inv["QUOTED"], "a \"b\" c");
        assert_eq!(inv["MIXED"], "it's");
        assert_eq!(inv["EMPTY"], "");
        assert!(!inv.contains_key("1BAD"));
        assert!(!inv.contains_key("UNTERMINATED"));
        assert_eq!(product_major(&inv), Some(8));
    }

    #[test]
    fn major_versions() {
        assert_eq!(major_of("7.1.2"), Some(7));
        assert_eq!(major_of("10"), Some(10));
        assert_eq!(major_of("x"), None);
        let mut inv = Inventory::new();
        inv.insert("PLATFORM_VERSION".into(), "3.2.1".into());
        assert_eq!(product_major(&inv), Some(3));
    }
}
