//! The pax records of one member (its extended headers and the archive's global ones),
//! collected before the entry is built.

use super::super::acl;
use super::super::entry::Timestamp;
use super::super::pax;
use super::super::sparse::MAX_SPARSE_SEGMENTS;

/// Most extended attributes on one entry.
pub const MAX_XATTRS: usize = 65_536;

#[derive(Default)]
pub(super) struct PaxAttrs {
    pub path: Option<Vec<u8>>,
    pub linkpath: Option<Vec<u8>>,
    pub size: Option<u64>,
    pub uid: Option<u64>,
    pub gid: Option<u64>,
    pub mtime: Option<Timestamp>,
    pub comment: Option<pax::LifeboatComment>,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// GNU tar `--acls` text records (`SCHILY.acl.access`/`.default`): raw xattr name, text.
    pub acl_text: Vec<(&'static [u8], Vec<u8>)>,
    pub sparse_major: Option<u64>,
    pub sparse_name: Option<Vec<u8>>,
    pub sparse_size: Option<u64>,
    pub sparse_map: Vec<(u64, u64)>,
    pub sparse_offset: Option<u64>,
    pub sparse_seen: bool,
    /// The first record whose keyword this reader does not use (kept for Lifeboat archives,
    /// whose writer emits only known keywords: there an unknown one is damage).
    pub unknown_key: Option<Vec<u8>>,
}

impl PaxAttrs {
    pub fn apply(&mut self, key: &[u8], value: &[u8]) -> Result<(), String> {
        let num = |v: &[u8]| {
            pax::parse_decimal(v)
                .ok_or_else(|| format!("bad number in pax record {}", String::from_utf8_lossy(key)))
        };
        match key {
            b"path" => self.path = Some(value.to_vec()),
            b"linkpath" => self.linkpath = Some(value.to_vec()),
            b"size" => self.size = Some(num(value)?),
            b"uid" => self.uid = Some(num(value)?),
            b"gid" => self.gid = Some(num(value)?),
            b"mtime" => self.mtime = Some(pax::parse_time(value).ok_or("bad mtime in pax header")?),
            b"comment" => {
                if let Some(c) = pax::parse_lifeboat_comment(value)? {
                    self.comment = Some(c);
                }
            }
            b"GNU.sparse.major" => {
                self.sparse_major = Some(num(value)?);
                self.sparse_seen = true;
            }
            b"GNU.sparse.minor" => self.sparse_seen = true,
            // Names are taken as bytes whatever the charset says.
            b"hdrcharset" => {}
            b"GNU.sparse.name" => self.sparse_name = Some(value.to_vec()),
            b"GNU.sparse.realsize" | b"GNU.sparse.size" => {
                self.sparse_size = Some(num(value)?);
                self.sparse_seen = true;
            }
            b"GNU.sparse.numblocks" => {
                if num(value)? > MAX_SPARSE_SEGMENTS as u64 {
                    return Err("too many sparse segments".into());
                }
                self.sparse_seen = true;
            }
            b"GNU.sparse.offset" => {
                self.sparse_offset = Some(num(value)?);
                self.sparse_seen = true;
            }
            b"GNU.sparse.numbytes" => {
                let o = self
                    .sparse_offset
                    .take()
                    .ok_or("GNU.sparse.numbytes without offset")?;
                self.push_segment(o, num(value)?)?;
            }
            b"GNU.sparse.map" => {
                self.sparse_seen = true;
                let mut it = value.split(|&c| c == b',');
                while let Some(o) = it.next() {
                    if o.is_empty() {
                        break;
                    }
                    let l = it.next().ok_or("odd number of values in GNU.sparse.map")?;
                    self.push_segment(num(o)?, num(l)?)?;
                }
            }
            _ => {
                if let Some(xattr) = acl::xattr_for_pax_name(key) {
                    self.acl_text.retain(|(n, _)| *n != xattr);
                    self.acl_text.push((xattr, value.to_vec()));
                } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    if self.xattrs.len() >= MAX_XATTRS {
                        return Err("too many extended attributes".into());
                    }
                    self.xattrs.push((name.to_vec(), value.to_vec()));
                } else if self.unknown_key.is_none() {
                    self.unknown_key = Some(key.to_vec());
                }
            }
        }
        Ok(())
    }

    fn push_segment(&mut self, o: u64, l: u64) -> Result<(), String> {
        if self.sparse_map.len() >= MAX_SPARSE_SEGMENTS {
            return Err("too many sparse segments".into());
        }
        self.sparse_seen = true;
        self.sparse_map.push((o, l));
        Ok(())
    }

    /// Forgets what only makes sense per member (after applying global records).
    pub fn keep_global_only(&mut self) {
        self.path = None;
        self.linkpath = None;
        self.size = None;
        self.sparse_map.clear();
        self.sparse_seen = false;
        self.sparse_name = None;
    }
}
