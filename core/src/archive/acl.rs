//! POSIX ACLs in two forms: the raw `system.posix_acl_access` / `system.posix_acl_default`
//! xattr value the kernel hands out (what Lifeboat stores and restores), and the text form
//! GNU tar's `--acls` reads and writes in `SCHILY.acl.access` / `SCHILY.acl.default` pax
//! records (one `tag:qualifier:perms` entry per line, e.g. `user::rw-\nuser:1000:r--\n...`).
//!
//! Written by hand: the conversion is a few lines of a stable kernel format (header version 2,
//! then 8-byte entries of tag u16, perm u16, id u32, little-endian), while libacl would be a
//! C dependency of a static binary.

/// Raw xattr name of the access ACL.
pub const XATTR_ACCESS: &[u8] = b"system.posix_acl_access";
/// Raw xattr name of a directory's default ACL.
pub const XATTR_DEFAULT: &[u8] = b"system.posix_acl_default";
/// GNU tar's pax record for the access ACL.
pub const PAX_ACCESS: &[u8] = b"SCHILY.acl.access";
/// GNU tar's pax record for the default ACL.
pub const PAX_DEFAULT: &[u8] = b"SCHILY.acl.default";

const VERSION: u32 = 2;
const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const GROUP: u16 = 0x08;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;
/// Most entries accepted in one ACL (ext4 holds far fewer).
const MAX_ENTRIES: usize = 65_536;

/// The pax record name GNU tar uses for a raw ACL xattr name, if it is one.
pub fn pax_name_for_xattr(xattr: &[u8]) -> Option<&'static [u8]> {
    match xattr {
        XATTR_ACCESS => Some(PAX_ACCESS),
        XATTR_DEFAULT => Some(PAX_DEFAULT),
        _ => None,
    }
}

/// The raw xattr name for a GNU tar ACL pax record name, if it is one.
pub fn xattr_for_pax_name(key: &[u8]) -> Option<&'static [u8]> {
    match key {
        PAX_ACCESS => Some(XATTR_ACCESS),
        PAX_DEFAULT => Some(XATTR_DEFAULT),
        _ => None,
    }
}

/// The text form (numeric ids, each entry followed by `\n`, as GNU tar writes it) of a raw
/// ACL xattr value; `None` when the value is not a well-formed version 2 ACL.
pub fn xattr_to_text(raw: &[u8]) -> Option<Vec<u8>> {
    let (head, body) = raw.split_first_chunk::<4>()?;
    if u32::from_le_bytes(*head) != VERSION || body.len() % 8 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 2);
    for e in body.chunks_exact(8) {
        let tag = u16::from_le_bytes([e[0], e[1]]);
        let perm = u16::from_le_bytes([e[2], e[3]]);
        let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
        let (name, qualified) = match tag {
            USER_OBJ => ("user", false),
            USER => ("user", true),
            GROUP_OBJ => ("group", false),
            GROUP => ("group", true),
            MASK => ("mask", false),
            OTHER => ("other", false),
            _ => return None,
        };
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        if qualified {
            out.extend_from_slice(id.to_string().as_bytes());
        }
        out.push(b':');
        for (bit, c) in [(4, b'r'), (2, b'w'), (1, b'x')] {
            out.push(if perm & bit != 0 { c } else { b'-' });
        }
        out.push(b'\n');
    }
    Some(out)
}

/// The raw xattr value of an ACL in text form (entries separated by newlines or commas,
/// `u`/`g`/`m`/`o` abbreviations, `#` comments; qualifiers numeric, or names resolved with
/// `resolve(is_group, name)` as GNU tar resolves them on the extracting host). `None` when the
/// text is malformed or a name cannot be resolved.
pub fn text_to_xattr(text: &[u8], resolve: impl Fn(bool, &str) -> Option<u32>) -> Option<Vec<u8>> {
    let mut entries: Vec<(u16, u32, u16)> = Vec::new();
    for item in text.split(|&c| c == b'\n' || c == b',') {
        let item = match item.iter().position(|&c| c == b'#') {
            Some(i) => &item[..i],
            None => item,
        };
        let item = std::str::from_utf8(item).ok()?.trim();
        if item.is_empty() {
            continue;
        }
        let mut parts = item.split(':');
        let (tag_s, qual, perms) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || entries.len() >= MAX_ENTRIES {
            return None;
        }
        let qual = qual.trim();
        let tag = match (tag_s.trim(), qual.is_empty()) {
            ("user" | "u", true) => USER_OBJ,
            ("user" | "u", false) => USER,
            ("group" | "g", true) => GROUP_OBJ,
            ("group" | "g", false) => GROUP,
            ("mask" | "m", true) => MASK,
            ("other" | "o", true) => OTHER,
            _ => return None,
        };
        let id = if qual.is_empty() {
            u32::MAX
        } else if qual.bytes().all(|c| c.is_ascii_digit()) {
            qual.parse().ok()?
        } else {
            resolve(tag == GROUP, qual)?
        };
        let mut perm = 0u16;
        for c in perms.trim().bytes() {
            perm |= match c {
                b'r' => 4,
                b'w' => 2,
                b'x' => 1,
                b'-' => 0,
                _ => return None,
            };
        }
        entries.push((tag, id, perm));
    }
    if entries.is_empty() {
        return None;
    }
    // The kernel wants entries ordered by tag, then id.
    entries.sort_by_key(|&(tag, id, _)| (tag, id));
    let mut out = Vec::with_capacity(4 + entries.len() * 8);
    out.extend_from_slice(&VERSION.to_le_bytes());
    for (tag, id, perm) in entries {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    Some(out)
}

/// Resolves a user or group name with the local account database (the host extracting the
/// archive, as GNU tar does).
pub fn resolve_local(is_group: bool, name: &str) -> Option<u32> {
    if is_group {
        nix::unistd::Group::from_name(name)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw())
    } else {
        nix::unistd::User::from_name(name)
            .ok()
            .flatten()
            .map(|u| u.uid.as_raw())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(entries: &[(u16, u16, u32)]) -> Vec<u8> {
        let mut v = VERSION.to_le_bytes().to_vec();
        for &(t, p, i) in entries {
            v.extend_from_slice(&t.to_le_bytes());
            v.extend_from_slice(&p.to_le_bytes());
            v.extend_from_slice(&i.to_le_bytes());
        }
        v
    }

    #[test]
    fn converts_both_ways() {
        let a = raw(&[
            (USER_OBJ, 6, u32::MAX),
            (USER, 4, 1000),
            (GROUP_OBJ, 4, u32::MAX),
            (GROUP, 6, 27),
            (MASK, 6, u32::MAX),
            (OTHER, 4, u32::MAX),
        ]);
        let text = xattr_to_text(&a);
        assert_eq!(
            text.as_deref(),
            Some(
                &b"user::rw-\nuser:1000:r--\ngroup::r--\ngroup:27:rw-\nmask::rw-\nother::r--\n"[..]
            )
        );
        let back = text.and_then(|t| text_to_xattr(&t, |_, _| None));
        assert_eq!(back.as_deref(), Some(&a[..]));
        // GNU tar's form with names, commas, abbreviations and comments, out of order.
        let names = |g: bool, n: &str| match (g, n) {
            (false, "alice") => Some(1000),
            (true, "sudo") => Some(27),
            _ => None,
        };
        let gnu = b"user::rw-\ngroup:sudo:rw-\nuser:alice:r--,g::r--\nm::rw- #effective\no::r--\n";
        assert_eq!(text_to_xattr(gnu, names).as_deref(), Some(&a[..]));
        // Unknown names, garbage and bad raw values are not converted.
        assert_eq!(text_to_xattr(b"user:nobody-here:r--\n", names), None);
        assert_eq!(text_to_xattr(b"user::rwz\n", names), None);
        assert_eq!(text_to_xattr(b"", names), None);
        assert_eq!(xattr_to_text(&[1, 0, 0, 0]), None);
        assert_eq!(xattr_to_text(&a[..a.len() - 1]), None);
    }
}
