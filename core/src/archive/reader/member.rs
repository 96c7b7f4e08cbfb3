//! Member parsing: the headers in front of one filesystem object (pax extended and global
//! headers, GNU long names, volume labels) and the entry they describe; pax records are
//! collected by [`super::pax_attrs`], sparse maps read by [`super::sparse_maps`].

use std::io::Read;

use super::super::acl;
use super::super::checksum::MAX_LOGICAL_SIZE;
use super::super::digest;
use super::super::entry::{Entry, EntryKind, FileFlags, Timestamp};
use super::super::header::{self, BLOCK};
use super::super::pax;
use super::super::ArchiveError;
use super::input::BlockInput;
use super::pax_attrs::PaxAttrs;
use super::sparse_maps::{check_sparse, read_old_gnu_sparse, read_sparse_v1};
use super::{corrupt, refused};

/// Largest pax extended header accepted for one member (a 5000-byte path plus xattrs fits).
pub const MAX_PAX_HEADER: u64 = 1 << 20;
/// Largest GNU long name ('L'/'K') accepted.
pub const MAX_LONG_NAME: u64 = 1 << 20;
/// Largest sum of extended headers (pax, long names) in front of one member.
pub const MAX_EXTENDED_PER_MEMBER: u64 = 4 * MAX_PAX_HEADER;
/// Largest sum of pax global headers in an archive: their records apply to every later
/// member, so they are kept small.
pub const MAX_GLOBAL: u64 = 64 << 10;

/// Result of reading headers up to the next real member.
pub(super) enum Member {
    /// A zero block where a header was expected (the end-of-archive marker).
    End,
    /// The stream ended where a header was expected.
    Eof,
    Entry(Entry, Layout),
}

/// Where a member's stored content is.
pub(super) struct Layout {
    /// Bytes of content after the header (and after a 1.0 sparse map).
    pub stored: u64,
    pub pad: u64,
    /// The member carries a Lifeboat `comment`.
    pub lifeboat: bool,
}

/// How padding and other bytes the format fixes to zero are judged.
pub(super) struct Padding {
    /// A Lifeboat archive: every such byte must be zero.
    pub strict: bool,
    /// The first member is read: until then it is not known whether the archive is Lifeboat's.
    pub started: bool,
    /// Non-zero padding seen before the first member was known.
    pub dirty_first: bool,
}

impl Padding {
    pub fn skip<R: Read>(
        &mut self,
        input: &mut BlockInput<R>,
        n: u64,
        path: &[u8],
    ) -> Result<(), ArchiveError> {
        let at = input.offset();
        if input.skip(n, "padding")? || (!self.strict && self.started) {
            return Ok(());
        }
        if !self.started {
            // Judged once the first member tells whether this is a Lifeboat archive.
            self.dirty_first = true;
            return Ok(());
        }
        Err(corrupt(
            path,
            format!("non-zero bytes in the padding near tar offset {at} (the archive was altered)"),
        ))
    }
}

/// Parses members; keeps what lasts from one member to the next (pax global records).
#[derive(Default)]
pub(super) struct MemberParser {
    global: Vec<u8>,
    pax_buf: Vec<u8>,
}

impl MemberParser {
    /// Reads headers up to the next filesystem object and returns it, with the input
    /// positioned at its stored data. Unknown member types are skipped (a loop, so a run of
    /// them cannot exhaust the stack).
    pub fn next<R: Read>(
        &mut self,
        input: &mut BlockInput<R>,
        padding: &mut Padding,
    ) -> Result<Member, ArchiveError> {
        loop {
            if let Some(m) = self.one(input, padding)? {
                return Ok(m);
            }
        }
    }

    fn one<R: Read>(
        &mut self,
        input: &mut BlockInput<R>,
        padding: &mut Padding,
    ) -> Result<Option<Member>, ArchiveError> {
        let mut attrs = PaxAttrs::default();
        if !self.global.is_empty() {
            pax::parse_records(&self.global, |k, v| attrs.apply(k, v))
                .map_err(|e| corrupt(b"", format!("bad pax global header: {e}")))?;
            attrs.keep_global_only();
        }
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut had_pax = false;
        // Bytes of extended headers (pax, long names) read for this member: bounded so a run
        // of headers cannot pile up memory.
        let mut ext_total = 0u64;
        let block = loop {
            let pending = had_pax || long_name.is_some() || long_link.is_some();
            let Some(block) = input.read_block()? else {
                if pending {
                    return Err(input.truncated("extended headers"));
                }
                return Ok(Some(Member::Eof));
            };
            if block.iter().all(|&b| b == 0) {
                if pending {
                    return Err(corrupt(b"", "extended header not followed by an entry"));
                }
                return Ok(Some(Member::End));
            }
            let raw_name = header::cstr(header::field(&block, header::NAME));
            if !header::checksum_ok(&block) {
                return Err(corrupt(
                    raw_name,
                    format!(
                        "header checksum mismatch at tar offset {}",
                        input.offset() - BLOCK as u64
                    ),
                ));
            }
            let size = header::parse_u64(header::field(&block, header::SIZE))
                .map_err(|e| corrupt(raw_name, format!("bad size field: {e}")))?;
            let typeflag = block[header::TYPEFLAG];
            if matches!(typeflag, b'x' | b'g' | b'L' | b'K') {
                ext_total = ext_total.saturating_add(size);
                if ext_total > MAX_EXTENDED_PER_MEMBER {
                    return Err(corrupt(
                        raw_name,
                        format!(
                            "extended headers of {ext_total} bytes before one entry: exceeds the {MAX_EXTENDED_PER_MEMBER} bytes allowed"
                        ),
                    ));
                }
            }
            match typeflag {
                b'x' => {
                    if size > MAX_PAX_HEADER {
                        return Err(corrupt(
                            raw_name,
                            format!("pax header of {size} bytes exceeds the {MAX_PAX_HEADER} bytes allowed"),
                        ));
                    }
                    let mut data = std::mem::take(&mut self.pax_buf);
                    data.clear();
                    data.resize(size as usize, 0);
                    let r = input.read_exact(&mut data, "a pax header");
                    let r = r.and_then(|()| padding.skip(input, header::padding(size), raw_name));
                    let r = r.and_then(|()| {
                        pax::parse_records(&data, |k, v| attrs.apply(k, v))
                            .map_err(|e| corrupt(raw_name, format!("bad pax header: {e}")))
                    });
                    self.pax_buf = data;
                    r?;
                    had_pax = true;
                }
                b'g' => {
                    if self.global.len() as u64 + size > MAX_GLOBAL {
                        return Err(corrupt(
                            raw_name,
                            format!(
                                "pax global headers of more than {MAX_GLOBAL} bytes in all (their records apply to every member)"
                            ),
                        ));
                    }
                    let data = read_small(input, size, MAX_GLOBAL, "a pax global header")?;
                    pax::parse_records(&data, |k, v| attrs.apply(k, v))
                        .map_err(|e| corrupt(raw_name, format!("bad pax global header: {e}")))?;
                    attrs.keep_global_only();
                    self.global.extend_from_slice(&data);
                }
                b'L' => {
                    let mut v = read_small(input, size, MAX_LONG_NAME, "a GNU long name")?;
                    v.truncate(header::cstr(&v).len());
                    long_name = Some(v);
                }
                b'K' => {
                    let mut v = read_small(input, size, MAX_LONG_NAME, "a GNU long link")?;
                    v.truncate(header::cstr(&v).len());
                    long_link = Some(v);
                }
                b'V' => {
                    // Volume label: not a file.
                    input.skip(size + header::padding(size), "a volume label")?;
                    attrs = PaxAttrs::default();
                    long_name = None;
                    long_link = None;
                    had_pax = false;
                }
                b'M' => {
                    return Err(ArchiveError::Unsupported(
                        "multi-volume GNU tar archives are not supported".into(),
                    ))
                }
                _ => break block,
            }
        };
        build_entry(input, &block, attrs, long_name, long_link, padding.strict)
    }
}

fn read_small<R: Read>(
    input: &mut BlockInput<R>,
    size: u64,
    max: u64,
    what: &str,
) -> Result<Vec<u8>, ArchiveError> {
    if size > max {
        return Err(corrupt(
            b"",
            format!("{what} of {size} bytes is larger than the {max} bytes allowed"),
        ));
    }
    let mut v = vec![0u8; size as usize];
    input.read_exact(&mut v, what)?;
    input.skip(header::padding(size), what)?;
    Ok(v)
}

fn build_entry<R: Read>(
    input: &mut BlockInput<R>,
    block: &[u8; BLOCK],
    mut attrs: PaxAttrs,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    in_lifeboat: bool,
) -> Result<Option<Member>, ArchiveError> {
    let magic = header::field(block, header::MAGIC);
    let is_ustar = &magic[..6] == b"ustar\0";
    let raw_path: Vec<u8> = if let Some(p) = attrs.sparse_name.take() {
        p
    } else if let Some(p) = attrs.path.take() {
        p
    } else if let Some(p) = long_name {
        p
    } else {
        let name = header::cstr(header::field(block, header::NAME));
        let prefix = header::cstr(header::field(block, header::PREFIX));
        if is_ustar && !prefix.is_empty() {
            let mut p = prefix.to_vec();
            p.push(b'/');
            p.extend_from_slice(name);
            p
        } else {
            name.to_vec()
        }
    };
    if raw_path.starts_with(b"/") {
        return Err(refused_absolute(&raw_path, "its name is absolute"));
    }
    let ends_with_slash = raw_path.ends_with(b"/");
    let path = digest::normalize(&raw_path).to_vec();
    // Lifeboat's writer emits only the keywords read above: another one is a damaged keyword
    // (GNU tar and bsdtar archives carry atime, ctime, charset ... and read as before).
    if in_lifeboat {
        if let Some(k) = &attrs.unknown_key {
            return Err(corrupt(
                &path,
                format!(
                    "its pax header has the record {:?}, which Lifeboat never writes: the header is damaged",
                    String::from_utf8_lossy(k)
                ),
            ));
        }
    }
    let num = |f: (usize, usize), what: &str| {
        header::parse_u64(header::field(block, f))
            .map_err(|e| corrupt(&path, format!("bad {what} field: {e}")))
    };
    let mode = num(header::MODE, "mode")? as u32 & 0o7777;
    let uid = match attrs.uid {
        Some(v) => v,
        None => num(header::UID, "uid")?,
    };
    let gid = match attrs.gid {
        Some(v) => v,
        None => num(header::GID, "gid")?,
    };
    let size = match attrs.size {
        Some(v) => v,
        None => num(header::SIZE, "size")?,
    };
    let mtime = match attrs.mtime {
        Some(t) => t,
        None => Timestamp {
            secs: header::parse_i64(header::field(block, header::MTIME))
                .map_err(|e| corrupt(&path, format!("bad mtime field: {e}")))?,
            nanos: 0,
        },
    };
    let link = || -> Vec<u8> {
        if let Some(l) = attrs.linkpath.clone() {
            l
        } else if let Some(l) = long_link.clone() {
            l
        } else {
            header::cstr(header::field(block, header::LINKNAME)).to_vec()
        }
    };
    let pad = header::padding(size);
    let mut stored = size;
    let mut logical = 0u64;
    let typeflag = block[header::TYPEFLAG];
    let kind = match typeflag {
        b'0' | 0 | b'7' if ends_with_slash && typeflag != b'7' => EntryKind::Dir,
        b'0' | 0 | b'7' => {
            if attrs.sparse_seen {
                let realsize = attrs
                    .sparse_size
                    .ok_or_else(|| corrupt(&path, "sparse file without its real size"))?;
                check_logical_size(&path, realsize)?;
                let map = if attrs.sparse_major == Some(1) {
                    let (map, used) = read_sparse_v1(input, &path, size, in_lifeboat)?;
                    stored = size - used;
                    map
                } else {
                    std::mem::take(&mut attrs.sparse_map)
                };
                let map = check_sparse(&path, &map, realsize, stored)?;
                logical = realsize;
                EntryKind::File { sparse: Some(map) }
            } else {
                check_logical_size(&path, size)?;
                logical = size;
                EntryKind::File { sparse: None }
            }
        }
        b'S' => {
            let realsize = header::parse_u64(header::field(block, header::GNU_REALSIZE))
                .map_err(|e| corrupt(&path, format!("bad sparse real size: {e}")))?;
            check_logical_size(&path, realsize)?;
            let map = read_old_gnu_sparse(input, &path, block)?;
            let map = check_sparse(&path, &map, realsize, stored)?;
            logical = realsize;
            EntryKind::File { sparse: Some(map) }
        }
        b'1' => {
            let target = link();
            if target.starts_with(b"/") {
                return Err(refused_absolute(
                    &raw_path,
                    &format!(
                        "its hard link target '{}' is absolute",
                        String::from_utf8_lossy(&target)
                    ),
                ));
            }
            EntryKind::HardLink {
                target: digest::normalize(&target).to_vec(),
            }
        }
        b'2' => EntryKind::Symlink { target: link() },
        b'3' | b'4' => {
            let major = num(header::DEVMAJOR, "device major")?;
            let minor = num(header::DEVMINOR, "device minor")?;
            let (major, minor) = (
                u32::try_from(major).map_err(|_| corrupt(&path, "device major too large"))?,
                u32::try_from(minor).map_err(|_| corrupt(&path, "device minor too large"))?,
            );
            if typeflag == b'3' {
                EntryKind::CharDevice { major, minor }
            } else {
                EntryKind::BlockDevice { major, minor }
            }
        }
        b'5' | b'D' => EntryKind::Dir,
        b'6' => EntryKind::Fifo,
        _ => {
            // Unknown member types (e.g. old 'N' rename records) are skipped.
            input.skip(size + pad, "an unknown member")?;
            return Ok(None);
        }
    };
    let (checksum, flags, lifeboat) = match attrs.comment {
        Some(c) => (c.checksum, c.flags, true),
        None => (None, FileFlags::default(), false),
    };
    // GNU tar `--acls` archives carry ACLs only as text: convert them to the raw xattrs
    // Lifeboat restores. In Lifeboat archives the raw xattrs are authoritative (and covered by
    // the digest): the derived text records are ignored.
    if !in_lifeboat && !lifeboat {
        for (xattr, text) in std::mem::take(&mut attrs.acl_text) {
            if attrs.xattrs.iter().any(|(n, _)| n == xattr) {
                continue;
            }
            if let Some(raw) = acl::text_to_xattr(&text, acl::resolve_local) {
                attrs.xattrs.push((xattr.to_vec(), raw));
                attrs.xattrs.sort_by(|a, b| a.0.cmp(&b.0));
            }
        }
    }
    let is_file = matches!(kind, EntryKind::File { .. });
    let entry = Entry {
        path,
        kind,
        mode,
        uid,
        gid,
        mtime,
        size: if is_file { logical } else { 0 },
        xattrs: attrs.xattrs,
        flags,
        checksum: if is_file { checksum } else { None },
    };
    Ok(Some(Member::Entry(
        entry,
        Layout {
            stored,
            pad,
            lifeboat,
        },
    )))
}

/// A file larger than any target filesystem holds is refused before anything is read or
/// hashed for it.
fn check_logical_size(path: &[u8], size: u64) -> Result<(), ArchiveError> {
    if size > MAX_LOGICAL_SIZE {
        return Err(refused(
            path,
            format!(
                "it claims a size of {size} bytes, more than the {MAX_LOGICAL_SIZE} bytes (16 TiB less 4 KiB, ext4's limit) a restored file can have"
            ),
        ));
    }
    Ok(())
}

/// An absolute name or hard link target: refused rather than made relative as GNU tar does
/// (a restore must never be steered to a path the archive chose outside its target).
fn refused_absolute(path: &[u8], what: &str) -> ArchiveError {
    refused(
        path,
        format!(
            "{what}; Lifeboat does not restore absolute paths (archive members must be relative, e.g. './etc/hosts')"
        ),
    )
}
