//! The archive's model of one filesystem object, shared by the writer, the reader, the
//! backup source and the restore engine.

/// A point in time with nanosecond precision (seconds since the epoch, may be negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

/// The ext2/3/4 inode flags that GNU tar loses and Lifeboat keeps (`chattr +i`, `chattr +a`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileFlags {
    pub immutable: bool,
    pub append_only: bool,
}

impl FileFlags {
    pub fn is_empty(&self) -> bool {
        !self.immutable && !self.append_only
    }
}

/// What kind of object an entry is, with what only that kind carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// Regular file; content follows the header. `sparse` lists the data segments
    /// `(offset, length)` when the file has holes; the content stream then carries only
    /// those segments, in order.
    File {
        sparse: Option<Vec<(u64, u64)>>,
    },
    Dir,
    /// Symbolic link to `target` (raw bytes, never resolved by the restore engine).
    Symlink {
        target: Vec<u8>,
    },
    /// Hard link to an earlier entry's path (relative to the archive root, normalised like
    /// `Entry::path`; never absolute).
    HardLink {
        target: Vec<u8>,
    },
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
}

/// Everything Lifeboat keeps about one object.
///
/// `path` is relative to the archive root, as raw bytes (names need not be UTF-8), without a
/// leading `./`, components separated by `/`; the root directory itself is `.`. Never
/// absolute: the reader refuses members whose name (or hard link target) starts with `/`
/// ([`super::ArchiveError::Refused`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: Vec<u8>,
    pub kind: EntryKind,
    /// Permission bits including setuid, setgid and sticky (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: Timestamp,
    /// Logical size of a regular file (holes included); 0 for other kinds.
    pub size: u64,
    /// Every extended attribute, name and raw value, sorted by name.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    pub flags: FileFlags,
    /// The checksum of a regular file (see [`super::checksum`]: BLAKE3 of its content; of a
    /// sparse file, of its size, map and data).
    pub checksum: Option<[u8; 32]>,
}

impl Entry {
    /// A display form of the path for messages (lossy for non-UTF-8 names).
    pub fn display_path(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }

    pub fn is_file(&self) -> bool {
        matches!(self.kind, EntryKind::File { .. })
    }
}
