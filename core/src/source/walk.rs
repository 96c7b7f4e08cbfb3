//! The walker: visits a live root with directory descriptors only (openat, fstatat,
//! getdents), never building a full path, so trees deeper than PATH_MAX work. Names are sorted
//! per directory so that two backups of the same tree are identical. Symlinks are never
//! followed. It produces archive [`Entry`] values with their content ([`Item`]), in archive
//! order (a directory before what it holds).

use super::content::{self, ContentRead, LargeRead, Layout, Snapshot};
use super::exclude::Excludes;
use super::{flags, sparse};
use crate::archive::{Entry, EntryKind, FileFlags, Timestamp};
use crate::sys::{self, xattr};
use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The content that goes with an entry.
pub enum Content {
    None,
    /// The data bytes, read and hashed already.
    Memory(Vec<u8>),
    /// A large file to be read again (and hashed again) while it is written.
    Stream {
        file: File,
        layout: Layout,
        checksum: [u8; 32],
    },
    /// A consistent copy of a file that kept changing.
    Spool(File),
}

/// One entry ready for the archive.
pub struct Item {
    pub entry: Entry,
    pub content: Content,
    /// Bytes of the memory budget this item holds until it is written.
    pub held: u64,
}

/// Where the walker sends its items (the pipeline's channel, or a Vec in tests).
pub trait Emit {
    /// Blocks while too much is in flight. An error stops the walk (the writer is gone).
    fn emit(&mut self, item: Item) -> io::Result<()>;
    /// Reserves `bytes` of memory before a file is read into it.
    fn reserve(&mut self, _bytes: u64) {}
    /// A buffer to read a small file into (recycled from the writer when possible).
    fn buffer(&mut self) -> Vec<u8> {
        Vec::new()
    }
}

/// What the walk saw besides entries.
#[derive(Debug, Default, Clone)]
pub struct WalkNotes {
    pub skipped_mounts: Vec<String>,
    pub sockets_skipped: u64,
    pub changed_files: Vec<String>,
    pub warnings: Vec<String>,
    /// Warnings not kept because there were too many.
    pub warnings_dropped: u64,
}

const MAX_WARNINGS: usize = 1000;
/// Budget charged for a large file waiting in the channel (its descriptor, its read buffer).
const STREAM_COST: u64 = 1 << 20;

impl WalkNotes {
    fn warn(&mut self, msg: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(msg);
        } else {
            self.warnings_dropped += 1;
        }
    }
}

/// Walk settings.
pub struct WalkConfig {
    pub root: PathBuf,
    pub excludes: Excludes,
    /// Mount points below the root to descend into (relative paths).
    pub includes: Vec<Vec<u8>>,
    /// Where copies of changing large files are spooled (never on a filesystem being backed
    /// up; None: not spooled, see [`content::read_large`]).
    pub spool_dir: Option<PathBuf>,
    pub small_file_limit: u64,
}

struct Frame {
    dir: OwnedFd,
    rel: Vec<u8>,
    names: Vec<CString>,
    next: usize,
    dev: u64,
}

pub struct Walker<'a> {
    cfg: &'a WalkConfig,
    links: HashMap<(u64, u64), Vec<u8>>,
    pub notes: WalkNotes,
    proc_fd_ok: bool,
    /// The root filesystem without its mounts, for the metadata of skipped mount points.
    underlay: Option<super::underlay::Underlay>,
    /// Device of the root filesystem.
    root_dev: u64,
}

fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// Sorted names of a directory (without `.` and `..`), read with getdents on a duplicate of
/// `fd` so the caller keeps its descriptor for the *at calls.
fn read_names(fd: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    let dup = fd.try_clone_to_owned()?;
    let mut dir = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(dup))?;
    let mut names = Vec::new();
    for ent in dir.iter() {
        let ent = ent?;
        let n = ent.file_name();
        let b = n.to_bytes();
        if b == b"." || b == b".." {
            continue;
        }
        names.push(n.to_owned());
    }
    names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    if parent == b"." {
        return name.to_vec();
    }
    let mut p = Vec::with_capacity(parent.len() + 1 + name.len());
    p.extend_from_slice(parent);
    p.push(b'/');
    p.extend_from_slice(name);
    p
}

fn lossy(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

fn base_entry(path: Vec<u8>, st: &libc::stat, kind: EntryKind) -> Entry {
    Entry {
        path,
        kind,
        mode: st.st_mode & 0o7777,
        uid: u64::from(st.st_uid),
        gid: u64::from(st.st_gid),
        mtime: Timestamp {
            secs: st.st_mtime,
            nanos: st.st_mtime_nsec.clamp(0, 999_999_999) as u32,
        },
        size: 0,
        xattrs: Vec::new(),
        flags: FileFlags::default(),
        checksum: None,
    }
}

impl<'a> Walker<'a> {
    pub fn new(cfg: &'a WalkConfig) -> Self {
        Self {
            cfg,
            links: HashMap::new(),
            notes: WalkNotes::default(),
            proc_fd_ok: std::path::Path::new("/proc/self/fd").is_dir(),
            underlay: None,
            root_dev: 0,
        }
    }

    /// Walks the whole root, sending every item to `out`.
    pub fn run(&mut self, out: &mut dyn Emit) -> Result<(), super::SourceError> {
        sys::raise_fd_limit();
        let root_err = |source: io::Error| super::SourceError::Root {
            path: self.cfg.root.clone(),
            source,
        };
        // The root itself may be reached through a symlink (e.g. --root /mnt/link).
        let root = sys::open_dir_path(&self.cfg.root).map_err(root_err)?;
        let st = sys::fstat(root.as_fd()).map_err(root_err)?;
        self.root_dev = st.st_dev;
        self.underlay = super::underlay::Underlay::open(&self.cfg.root);
        let mut entry = base_entry(b".".to_vec(), &st, EntryKind::Dir);
        self.fill_fd_meta(&mut entry, root.as_fd());
        let names = read_names(root.as_fd()).map_err(root_err)?;
        out.emit(Item {
            entry,
            content: Content::None,
            held: 0,
        })
        .map_err(super::SourceError::Output)?;
        let mut stack = vec![Frame {
            dir: root,
            rel: b".".to_vec(),
            names,
            next: 0,
            dev: st.st_dev,
        }];
        while let Some(top) = stack.last_mut() {
            if top.next >= top.names.len() {
                stack.pop();
                continue;
            }
            let name = std::mem::take(&mut top.names[top.next]);
            top.next += 1;
            let (dirfd, dev) = (top.dir.as_fd(), top.dev);
            let rel = join(&top.rel, name.as_bytes());
            if let Some(frame) = self.visit(dirfd, dev, &name, rel, out)? {
                stack.push(frame);
            }
        }
        Ok(())
    }

    fn fill_fd_meta(&mut self, entry: &mut Entry, fd: BorrowedFd<'_>) {
        match xattr::read_all(&xattr::Target::Fd(fd)) {
            Ok(x) => entry.xattrs = x,
            Err(e) => self.notes.warn(format!(
                "{}: cannot read extended attributes ({e}); archived without them",
                entry.display_path()
            )),
        }
        match flags::read(fd) {
            Ok(f) => entry.flags = f,
            Err(e) => self.notes.warn(format!(
                "{}: cannot read inode flags ({e}); archived without them",
                entry.display_path()
            )),
        }
    }

    fn fill_path_meta(&mut self, entry: &mut Entry, dirfd: BorrowedFd<'_>, name: &CStr) {
        if !self.proc_fd_ok {
            return;
        }
        let Ok(p) = xattr::proc_path(dirfd, name.to_bytes()) else {
            return;
        };
        match xattr::read_all(&xattr::Target::Path(&p)) {
            Ok(x) => entry.xattrs = x,
            Err(e) => self.notes.warn(format!(
                "{}: cannot read extended attributes ({e}); archived without them",
                entry.display_path()
            )),
        }
    }

    /// Visits one name of a directory; returns a frame when it is a directory to descend into.
    fn visit(
        &mut self,
        dirfd: BorrowedFd<'_>,
        parent_dev: u64,
        name: &CStr,
        rel: Vec<u8>,
        out: &mut dyn Emit,
    ) -> Result<Option<Frame>, super::SourceError> {
        if self.cfg.excludes.is_excluded(&rel) {
            return Ok(None);
        }
        let st = match sys::stat_at(dirfd, name) {
            Ok(st) => st,
            Err(e) if errno_of(&e) == libc::ENOENT => return Ok(None),
            Err(e) => {
                self.notes
                    .warn(format!("{}: cannot stat ({e}); not archived", lossy(&rel)));
                return Ok(None);
            }
        };
        let fmt = st.st_mode & libc::S_IFMT;
        let emit =
            |out: &mut dyn Emit, item: Item| out.emit(item).map_err(super::SourceError::Output);
        match fmt {
            libc::S_IFSOCK => {
                self.notes.sockets_skipped += 1;
                Ok(None)
            }
            libc::S_IFDIR => self.visit_dir(dirfd, parent_dev, name, rel, out),
            _ => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(target) = self.links.get(&key) {
                        let entry = base_entry(
                            rel,
                            &st,
                            EntryKind::HardLink {
                                target: target.clone(),
                            },
                        );
                        emit(
                            out,
                            Item {
                                entry,
                                content: Content::None,
                                held: 0,
                            },
                        )?;
                        return Ok(None);
                    }
                }
                let item = match fmt {
                    libc::S_IFREG => match self.read_file(dirfd, name, rel.clone(), out) {
                        Ok(Some(item)) => item,
                        Ok(None) => return Ok(None),
                        Err(e) => {
                            self.notes
                                .warn(format!("{}: cannot read ({e}); not archived", lossy(&rel)));
                            return Ok(None);
                        }
                    },
                    libc::S_IFLNK => {
                        let target = match nix::fcntl::readlinkat(Some(dirfd.as_raw_fd()), name) {
                            Ok(t) => t,
                            Err(nix::errno::Errno::ENOENT) => return Ok(None),
                            Err(e) => {
                                self.notes.warn(format!(
                                    "{}: cannot read the link ({e}); not archived",
                                    lossy(&rel)
                                ));
                                return Ok(None);
                            }
                        };
                        let mut entry = base_entry(
                            rel.clone(),
                            &st,
                            EntryKind::Symlink {
                                target: target.as_bytes().to_vec(),
                            },
                        );
                        self.fill_path_meta(&mut entry, dirfd, name);
                        Item {
                            entry,
                            content: Content::None,
                            held: 0,
                        }
                    }
                    libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => {
                        let (major, minor) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
                        let kind = match fmt {
                            libc::S_IFCHR => EntryKind::CharDevice { major, minor },
                            libc::S_IFBLK => EntryKind::BlockDevice { major, minor },
                            _ => EntryKind::Fifo,
                        };
                        let mut entry = base_entry(rel.clone(), &st, kind);
                        self.fill_path_meta(&mut entry, dirfd, name);
                        Item {
                            entry,
                            content: Content::None,
                            held: 0,
                        }
                    }
                    _ => {
                        self.notes.warn(format!(
                            "{}: unknown file type {fmt:o}; not archived",
                            lossy(&rel)
                        ));
                        return Ok(None);
                    }
                };
                emit(out, item)?;
                if st.st_nlink > 1 {
                    self.links.insert(key, rel);
                }
                Ok(None)
            }
        }
    }

    fn visit_dir(
        &mut self,
        dirfd: BorrowedFd<'_>,
        parent_dev: u64,
        name: &CStr,
        rel: Vec<u8>,
        out: &mut dyn Emit,
    ) -> Result<Option<Frame>, super::SourceError> {
        let fd = match sys::open_noatime(dirfd, name, libc::O_RDONLY | libc::O_DIRECTORY) {
            Ok(fd) => fd,
            Err(e) if matches!(errno_of(&e), libc::ENOENT | libc::ENOTDIR) => return Ok(None),
            Err(e) => {
                self.notes.warn(format!(
                    "{}: cannot open the directory ({e}); not archived",
                    lossy(&rel)
                ));
                return Ok(None);
            }
        };
        let st = match sys::fstat(fd.as_fd()) {
            Ok(st) => st,
            Err(e) => {
                self.notes
                    .warn(format!("{}: cannot stat ({e}); not archived", lossy(&rel)));
                return Ok(None);
            }
        };
        let mut entry = base_entry(rel.clone(), &st, EntryKind::Dir);
        self.fill_fd_meta(&mut entry, fd.as_fd());
        let descend = if st.st_dev == parent_dev || self.cfg.includes.contains(&rel) {
            true
        } else {
            if !self.cfg.excludes.contents_excluded(&rel) {
                self.notes.skipped_mounts.push(lossy(&rel));
            }
            if parent_dev == self.root_dev {
                self.use_hidden_directory(&mut entry, &rel);
            }
            false
        };
        out.emit(Item {
            entry,
            content: Content::None,
            held: 0,
        })
        .map_err(super::SourceError::Output)?;
        if !descend {
            return Ok(None);
        }
        let names = match read_names(fd.as_fd()) {
            Ok(n) => n,
            Err(e) => {
                self.notes.warn(format!(
                    "{}: cannot list the directory ({e}); archived empty",
                    lossy(&rel)
                ));
                return Ok(None);
            }
        };
        Ok(Some(Frame {
            dir: fd,
            rel,
            names,
            next: 0,
            dev: st.st_dev,
        }))
    }

    /// Gives a skipped mount point the metadata of the directory under it in the root
    /// filesystem (see [`super::underlay`]); keeps the entry as it is when that is not visible.
    fn use_hidden_directory(&mut self, entry: &mut Entry, rel: &[u8]) {
        let Some(under) = self.underlay.as_ref() else {
            return;
        };
        let Ok(path) = CString::new(rel) else {
            return;
        };
        let Ok(fd) = sys::open_noatime(under.fd(), &path, libc::O_RDONLY | libc::O_DIRECTORY)
        else {
            return;
        };
        let Ok(st) = sys::fstat(fd.as_fd()) else {
            return;
        };
        if st.st_dev != self.root_dev {
            return;
        }
        let mut hidden = base_entry(rel.to_vec(), &st, EntryKind::Dir);
        self.fill_fd_meta(&mut hidden, fd.as_fd());
        *entry = hidden;
    }

    fn read_file(
        &mut self,
        dirfd: BorrowedFd<'_>,
        name: &CStr,
        rel: Vec<u8>,
        out: &mut dyn Emit,
    ) -> io::Result<Option<Item>> {
        let fd = match sys::open_noatime(dirfd, name, libc::O_RDONLY | libc::O_NONBLOCK) {
            Ok(fd) => fd,
            Err(e) if errno_of(&e) == libc::ENOENT => return Ok(None),
            Err(e) => return Err(e),
        };
        let st = sys::fstat(fd.as_fd())?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            // Replaced by something else between the stat and the open.
            return Ok(None);
        }
        let file = File::from(fd);
        let mut entry = base_entry(rel, &st, EntryKind::File { sparse: None });
        self.fill_fd_meta(&mut entry, file.as_fd());
        let layout_of = |f: &File, s: &Snapshot| -> io::Result<Layout> {
            let sparse = if s.blocks.saturating_mul(512) < s.size {
                sparse::data_map(f.as_fd(), s.size)?
            } else {
                None
            };
            Ok(Layout {
                size: s.size,
                sparse,
            })
        };
        let first = Snapshot::from_stat(&st);
        let first_len = layout_of(&file, &first)?.data_len();
        let limit = self.cfg.small_file_limit;
        // Memory for a small file is reserved before it is read; a small file that grows
        // while it is read takes the large path and never holds more than this.
        // An open large file waiting in the channel costs a descriptor: count it against
        // the budget so only a few wait at a time.
        let mut reserved = if first_len <= limit {
            first_len
        } else {
            STREAM_COST
        };
        out.reserve(reserved);
        let read = content::read_content(
            &file,
            first,
            first_len,
            limit,
            || out.buffer(),
            self.cfg.spool_dir.as_deref(),
            layout_of,
        )?;
        if matches!(read, ContentRead::Large(_)) && reserved < STREAM_COST {
            out.reserve(STREAM_COST - reserved);
            reserved = STREAM_COST;
        }
        let (content, layout, checksum, snapshot, changed, held) = match read {
            ContentRead::Small(r) => {
                // Account for the buffer's real size (a recycled buffer may be larger).
                let held = r.data.capacity() as u64;
                if held > first_len {
                    out.reserve(held - first_len);
                }
                (
                    Content::Memory(r.data),
                    r.layout,
                    r.checksum,
                    r.snapshot,
                    r.changed,
                    held.max(first_len),
                )
            }
            ContentRead::Large(LargeRead::Stream {
                checksum,
                layout,
                snapshot,
            }) => (
                Content::Stream {
                    file,
                    layout: layout.clone(),
                    checksum,
                },
                layout,
                checksum,
                snapshot,
                false,
                reserved,
            ),
            ContentRead::Large(LargeRead::Spooled {
                spool,
                checksum,
                layout,
                snapshot,
            }) => (
                Content::Spool(spool),
                layout,
                checksum,
                snapshot,
                true,
                reserved,
            ),
        };
        entry.size = layout.size;
        entry.kind = EntryKind::File {
            sparse: layout.sparse,
        };
        entry.checksum = Some(checksum);
        entry.mtime = Timestamp {
            secs: snapshot.mtime.0,
            nanos: snapshot.mtime.1.clamp(0, 999_999_999) as u32,
        };
        if changed {
            self.notes.changed_files.push(entry.display_path());
        }
        Ok(Some(Item {
            entry,
            content,
            held,
        }))
    }
}

/// A path for messages from raw bytes.
pub fn display(p: &[u8]) -> String {
    OsStr::from_bytes(p).to_string_lossy().into_owned()
}
