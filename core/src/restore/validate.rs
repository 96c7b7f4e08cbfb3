//! The one validation of archive entries: every check the restore engine makes before it
//! writes an entry, applied in the same order by the restore ([`super::Extractor::apply`]) and
//! by [`crate::archive::verify`] (the agent's `verify`, the recovery image's verify step, the
//! read-back after a backup). So an archive that verifies restores, and one the restore would
//! refuse fails verification first, before anything is written.
//!
//! A [`Validator`] checks each entry on its own (path syntax, length and depth, name length,
//! file size, sparse map, xattr size, link target) and against the entries before it, which it
//! keeps as a compact tree of the names the archive creates ([`Tree`]):
//! - a parent component must be a directory (or not exist yet: it is then created), never a
//!   symbolic link or another non-directory made by an earlier entry;
//! - a non-directory cannot replace a directory that has contents;
//! - a hard link's target must be an earlier entry, not a directory, reached without a
//!   symbolic link.
//!
//! Memory is bounded per archive, not only per entry: the tree, the directory metadata the
//! restore keeps until the end (deepest directories last need their mode, owner, times, xattrs
//! and flags after their contents) and the pending ext flags are charged to one budget,
//! [`MEMORY_BUDGET`]. An archive that needs more is refused (by verify and restore alike);
//! the xattrs of directories are not spilled to disk.

use super::beneath::SafePath;
use crate::archive::{Entry, EntryKind};
use std::collections::HashMap;
use std::hash::BuildHasher;

/// Longest path accepted (bytes): paths longer than PATH_MAX are legal and kept, absurd ones
/// are a damaged or hostile archive.
pub const MAX_PATH_BYTES: usize = 256 * 1024;
/// Deepest path accepted (components).
pub const MAX_DEPTH: usize = 4096;
/// Longest name (one path component) accepted: NAME_MAX of every Linux filesystem a root is
/// restored onto (ext4, xfs, btrfs); a longer one cannot be created.
pub const MAX_NAME_BYTES: usize = 255;
/// Largest logical file size accepted: the archive reader's own limit (the largest file ext4
/// holds with 4 KiB blocks), so the reader, verify and restore refuse the same claims.
pub use crate::archive::checksum::MAX_LOGICAL_SIZE as MAX_FILE_SIZE;
/// Most data segments a sparse file may list (the reader's own limit).
pub use crate::archive::reader::MAX_SPARSE_SEGMENTS;
/// Most bytes of xattrs (names and values) one entry may carry.
pub const MAX_XATTR_BYTES: usize = 4 << 20;
/// Longest symbolic link target: PATH_MAX less its NUL (`symlink(2)` refuses 4,096 bytes).
pub const MAX_LINK_TARGET: usize = 4095;
/// Memory one restore may use for what it keeps across entries: the tree of names, the
/// deferred directory metadata (with the directories' xattrs) and the pending ext flags.
pub const MEMORY_BUDGET: usize = 64 << 20;

/// What a node of the tree costs (the node, its index slot, the hash table's slack).
const NODE_COST: usize = std::mem::size_of::<Node>() + 24;
/// What a deferred directory record costs besides its xattrs.
const DIR_RECORD_COST: usize = 160;
/// What each deferred xattr costs besides its name and value.
const XATTR_COST: usize = 64;
/// What a pending flags record costs.
const FLAGS_RECORD_COST: usize = 48;

/// The root of the tree (the target directory).
pub const ROOT: u32 = 0;
const NONE: u32 = u32::MAX;

/// Why an entry is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidKind {
    /// Restoring it could write outside the target (an escape through `..`, a symbolic link).
    Unsafe,
    /// A claim no real filesystem makes, or more than the restore can hold (a bomb, damage).
    Bomb,
}

/// An entry the restore would refuse, with the reason.
#[derive(Debug, Clone, thiserror::Error)]
#[error("refusing the archive entry '{path}': {reason}. The archive is damaged or hostile; nothing is restored from it")]
pub struct Invalid {
    pub path: String,
    pub reason: String,
    pub kind: InvalidKind,
}

/// What kind of object a node of the tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Dir,
    Symlink,
    /// A regular file, hard link, device node or fifo.
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    parent: u32,
    /// The next node whose (parent, name) hashes alike.
    next: u32,
    name_off: u32,
    name_len: u8,
    kind: NodeKind,
    /// A directory with at least one entry made in it.
    has_children: bool,
    depth: u16,
    /// Bytes charged to the budget for the deferred record of this node.
    charged: u32,
}

/// The names an archive creates, one node per distinct path, names stored once.
pub struct Tree {
    nodes: Vec<Node>,
    names: Vec<u8>,
    index: HashMap<u64, u32>,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

impl Tree {
    pub fn new() -> Self {
        Self {
            nodes: vec![Node {
                parent: NONE,
                next: NONE,
                name_off: 0,
                name_len: 0,
                kind: NodeKind::Dir,
                has_children: false,
                depth: 0,
                charged: 0,
            }],
            names: Vec::new(),
            index: HashMap::new(),
            hasher: Default::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn kind(&self, node: u32) -> NodeKind {
        self.nodes[node as usize].kind
    }

    pub fn parent(&self, node: u32) -> Option<u32> {
        let p = self.nodes[node as usize].parent;
        (p != NONE).then_some(p)
    }

    pub fn name(&self, node: u32) -> &[u8] {
        let n = &self.nodes[node as usize];
        let off = n.name_off as usize;
        &self.names[off..off + n.name_len as usize]
    }

    pub fn depth(&self, node: u32) -> usize {
        self.nodes[node as usize].depth as usize
    }

    /// The path of `node` for messages, built only when it is printed.
    pub fn path_of(&self, node: u32) -> NodePath<'_> {
        NodePath { tree: self, node }
    }

    /// The path of `node` for messages (`.` for the root).
    pub fn display(&self, node: u32) -> String {
        let mut comps = Vec::new();
        let mut n = node;
        while let Some(p) = self.parent(n) {
            comps.push(self.name(n));
            n = p;
        }
        if comps.is_empty() {
            return ".".into();
        }
        comps.reverse();
        String::from_utf8_lossy(&comps.join(&b'/')).into_owned()
    }

    fn key(&self, parent: u32, name: &[u8]) -> u64 {
        self.hasher.hash_one((parent, name))
    }

    pub fn lookup(&self, parent: u32, name: &[u8]) -> Option<u32> {
        let mut n = *self.index.get(&self.key(parent, name))?;
        while n != NONE {
            if self.nodes[n as usize].parent == parent && self.name(n) == name {
                return Some(n);
            }
            n = self.nodes[n as usize].next;
        }
        None
    }

    /// Adds `name` (at most [`MAX_NAME_BYTES`]) in the directory `parent`.
    fn insert(&mut self, parent: u32, name: &[u8], kind: NodeKind) -> u32 {
        let id = self.nodes.len() as u32;
        let key = self.key(parent, name);
        let next = self.index.insert(key, id).unwrap_or(NONE);
        let depth = self.nodes[parent as usize].depth.saturating_add(1);
        self.nodes.push(Node {
            parent,
            next,
            name_off: self.names.len() as u32,
            name_len: name.len().min(MAX_NAME_BYTES) as u8,
            kind,
            has_children: false,
            depth,
            charged: 0,
        });
        self.names.extend_from_slice(name);
        self.nodes[parent as usize].has_children = true;
        id
    }

    /// Children of every node, for a walk of the tree: `kids[start[n]..start[n + 1]]`.
    pub fn children(&self) -> (Vec<u32>, Vec<u32>) {
        let n = self.nodes.len();
        let mut start = vec![0u32; n + 1];
        for node in &self.nodes[1..] {
            start[node.parent as usize + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut kids = vec![0u32; n.saturating_sub(1)];
        for (id, node) in self.nodes.iter().enumerate().skip(1) {
            let slot = &mut fill[node.parent as usize];
            kids[*slot as usize] = id as u32;
            *slot += 1;
        }
        (start, kids)
    }

    fn bytes(&self) -> usize {
        self.nodes.len() * NODE_COST + self.names.len()
    }
}

/// The path of a node, displayed on demand (see [`Tree::path_of`]).
pub struct NodePath<'a> {
    tree: &'a Tree,
    node: u32,
}

impl std::fmt::Display for NodePath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.tree.display(self.node))
    }
}

/// An entry that passed: its checked path and its node in the tree.
#[derive(Debug)]
pub struct Checked {
    pub path: SafePath,
    pub node: u32,
    /// For a hard link: the checked target.
    pub link_target: Option<(SafePath, u32)>,
}

/// Checks entries in archive order; see the module documentation.
#[derive(Default)]
pub struct Validator {
    tree: Tree,
    /// Bytes charged to [`MEMORY_BUDGET`] by deferred records.
    deferred: usize,
    /// The components and nodes of the last path resolved (archives come in tree order).
    last: Vec<(Vec<u8>, u32)>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Memory charged so far to [`MEMORY_BUDGET`].
    pub fn used(&self) -> usize {
        self.tree.bytes() + self.deferred
    }

    /// Checks `entry` against the limits and the entries before it, and records it.
    pub fn check(&mut self, entry: &Entry) -> Result<Checked, Invalid> {
        let invalid = |kind, reason: String| Invalid {
            path: entry.display_path(),
            reason,
            kind,
        };
        let path = SafePath::parse(&entry.path).map_err(|r| invalid(InvalidKind::Unsafe, r))?;
        check_limits(entry).map_err(|r| invalid(InvalidKind::Bomb, r))?;
        check_names(&path).map_err(|r| invalid(InvalidKind::Bomb, r))?;
        let Some(name) = path.name() else {
            if entry.kind != EntryKind::Dir {
                return Err(invalid(
                    InvalidKind::Unsafe,
                    "the archive's root must be a directory".into(),
                ));
            }
            self.charge(ROOT, entry)
                .map_err(|r| invalid(InvalidKind::Bomb, r))?;
            return Ok(Checked {
                path,
                node: ROOT,
                link_target: None,
            });
        };
        let link_target = match &entry.kind {
            EntryKind::HardLink { target } => {
                Some(self.check_link_target(&path, target).map_err(|r| {
                    invalid(
                        InvalidKind::Unsafe,
                        format!(
                            "its hard link target '{}' {r}",
                            String::from_utf8_lossy(target)
                        ),
                    )
                })?)
            }
            _ => None,
        };
        let parent = self
            .resolve(path.parent(), true)
            .map_err(|r| invalid(InvalidKind::Unsafe, r))?;
        let kind = match entry.kind {
            EntryKind::Dir => NodeKind::Dir,
            EntryKind::Symlink { .. } => NodeKind::Symlink,
            _ => NodeKind::Other,
        };
        let node = match self.tree.lookup(parent, name) {
            None => self.tree.insert(parent, name, kind),
            Some(n) => {
                let old = self.tree.nodes[n as usize];
                if old.kind == NodeKind::Dir && kind != NodeKind::Dir && old.has_children {
                    return Err(invalid(
                        InvalidKind::Bomb,
                        "it would replace a directory the archive has already put entries in"
                            .into(),
                    ));
                }
                if old.kind != kind {
                    self.forget_last(n);
                }
                self.tree.nodes[n as usize].kind = kind;
                n
            }
        };
        self.charge(node, entry)
            .map_err(|r| invalid(InvalidKind::Bomb, r))?;
        Ok(Checked {
            path,
            node,
            link_target,
        })
    }

    /// Charges the deferred record `entry` leaves at `node` (replacing the node's previous
    /// record) and checks the budget.
    fn charge(&mut self, node: u32, entry: &Entry) -> Result<(), String> {
        let cost = match &entry.kind {
            EntryKind::Dir => {
                DIR_RECORD_COST
                    + entry
                        .xattrs
                        .iter()
                        .map(|(n, v)| XATTR_COST + n.len() + v.len())
                        .sum::<usize>()
            }
            EntryKind::File { .. } if !entry.flags.is_empty() => FLAGS_RECORD_COST,
            _ => 0,
        };
        let n = &mut self.tree.nodes[node as usize];
        self.deferred = self.deferred - n.charged as usize + cost;
        // A single entry's cost is bounded by MAX_XATTR_BYTES, far below u32::MAX.
        n.charged = u32::try_from(cost).unwrap_or(u32::MAX);
        if self.used() > MEMORY_BUDGET {
            return Err(format!(
                "restoring the archive up to it needs more than {} MiB of memory for its \
                 {} paths and the metadata of its directories (set after their contents), \
                 more than a restore may use",
                MEMORY_BUDGET >> 20,
                self.tree.len()
            ));
        }
        Ok(())
    }

    /// Resolves the directory `dirs`, creating missing ones when `create`; each component must
    /// be a directory.
    fn resolve(&mut self, dirs: &[Vec<u8>], create: bool) -> Result<u32, String> {
        let common = self
            .last
            .iter()
            .zip(dirs)
            .take_while(|((l, _), d)| l == *d)
            .count();
        self.last.truncate(common);
        let mut node = self.last.last().map_or(ROOT, |l| l.1);
        // The cached nodes may have changed kind since: check them all (cheap).
        for (i, (_, n)) in self.last.iter().enumerate() {
            if self.tree.kind(*n) != NodeKind::Dir {
                let r = not_a_dir(&self.tree, *n, &dirs[..=i]);
                self.last.truncate(i);
                return Err(r);
            }
        }
        for (i, name) in dirs.iter().enumerate().skip(common) {
            node = match self.tree.lookup(node, name) {
                Some(n) if self.tree.kind(n) == NodeKind::Dir => n,
                Some(n) => return Err(not_a_dir(&self.tree, n, &dirs[..=i])),
                None if create => self.tree.insert(node, name, NodeKind::Dir),
                None => {
                    return Err(format!(
                        "does not exist: '{}' is not an earlier entry of the archive",
                        display(&dirs[..=i])
                    ))
                }
            };
            self.last.push((name.clone(), node));
        }
        Ok(node)
    }

    /// Drops the cached resolution through `node` (it changed kind).
    fn forget_last(&mut self, node: u32) {
        if let Some(i) = self.last.iter().position(|l| l.1 == node) {
            self.last.truncate(i);
        }
    }

    fn check_link_target(
        &mut self,
        path: &SafePath,
        target: &[u8],
    ) -> Result<(SafePath, u32), String> {
        let tpath = SafePath::parse(target).map_err(|r| format!("is refused: {r}"))?;
        check_names(&tpath).map_err(|r| format!("is refused: {r}"))?;
        let Some(tname) = tpath.name() else {
            return Err("is the target directory itself".into());
        };
        if tpath == *path {
            return Err("is the link itself".into());
        }
        let tparent = self
            .resolve(tpath.parent(), false)
            .map_err(|r| format!("is refused: {r}"))?;
        match self.tree.lookup(tparent, tname) {
            None => Err("does not exist (it must be an earlier entry of the archive)".into()),
            Some(n) if self.tree.kind(n) == NodeKind::Dir => {
                Err("is a directory (a directory cannot be hard linked)".into())
            }
            Some(n) => Ok((tpath, n)),
        }
    }
}

fn display(comps: &[Vec<u8>]) -> String {
    String::from_utf8_lossy(&comps.join(&b'/')).into_owned()
}

fn not_a_dir(tree: &Tree, node: u32, so_far: &[Vec<u8>]) -> String {
    let what = match tree.kind(node) {
        NodeKind::Symlink => "a symbolic link",
        _ => "not a directory",
    };
    format!(
        "its parent '{}' is {what} (made by an earlier entry); refusing to write through it",
        display(so_far)
    )
}

/// Every component must fit a Linux filesystem's name limit.
fn check_names(path: &SafePath) -> Result<(), String> {
    match path.comps.iter().find(|c| c.len() > MAX_NAME_BYTES) {
        Some(c) => Err(format!(
            "a name in its path is {} bytes long (more than the {MAX_NAME_BYTES} a filesystem accepts)",
            c.len()
        )),
        None => Ok(()),
    }
}

/// Refuses entries whose claims no real filesystem makes (a bomb, or damage).
fn check_limits(entry: &Entry) -> Result<(), String> {
    if entry.size > MAX_FILE_SIZE {
        return Err(format!(
            "it claims a size of {} bytes, more than the {MAX_FILE_SIZE} accepted",
            entry.size
        ));
    }
    if let EntryKind::File {
        sparse: Some(segments),
    } = &entry.kind
    {
        if segments.len() > MAX_SPARSE_SEGMENTS {
            return Err(format!("it lists {} sparse segments", segments.len()));
        }
        let mut end = 0u64;
        for &(offset, len) in segments {
            let seg_end = offset
                .checked_add(len)
                .ok_or("a sparse segment overflows")?;
            if offset < end || seg_end > entry.size {
                return Err(format!(
                    "its sparse map is invalid (segment {offset}+{len} in a file of {} bytes)",
                    entry.size
                ));
            }
            end = seg_end;
        }
    }
    let xattr_bytes: usize = entry.xattrs.iter().map(|(n, v)| n.len() + v.len()).sum();
    if xattr_bytes > MAX_XATTR_BYTES {
        return Err(format!(
            "it carries {xattr_bytes} bytes of extended attributes"
        ));
    }
    match &entry.kind {
        EntryKind::Symlink { target } if target.len() > MAX_LINK_TARGET => {
            Err(format!("its link target is {} bytes long", target.len()))
        }
        EntryKind::Symlink { target } if target.is_empty() => {
            Err("its symbolic link target is empty".into())
        }
        EntryKind::Symlink { target } if target.contains(&0) => {
            Err("the symbolic link's target contains a NUL byte".into())
        }
        _ => Ok(()),
    }
}
