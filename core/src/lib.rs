//! Lifeboat's engine, shared by the dom0 agent (`lifeboat`) and the recovery image's PID 1
//! (`lifeboat-init`).
//!
//! The modules follow the data flow, from a live root to a restored one:
//! - [`source`] walks a live root and produces archive entries (one filesystem, excludes,
//!   xattrs, ext flags, sparse maps, hardlinks, change detection);
//! - [`archive`] writes and reads the pax archive with its manifest, per-file checksums and
//!   trailer; [`codec`] wraps it in zstd, gzip, xz or nothing;
//! - [`store`] keeps generations in the backup partition, committed atomically;
//! - [`restore`] extracts an archive beneath a target directory, refusing escapes;
//! - [`identity`] reads machines, disks, partitions, filesystems and the XenServer inventory;
//! - [`plan`] decides a restore before anything is written (target, steps, safety rules);
//! - [`kmod`] reads kernel module metadata (dependencies, aliases) for the recovery image;
//! - [`programs`] finds the external programs run or copied into the recovery image;
//! - [`sys`] is the one system-call layer (the `*at` calls, xattrs, inode flags, holes);
//! - [`io`] holds the small `Read`/`Write` adapters the pipelines are built from.

pub mod archive;
pub mod clock;
pub mod codec;
pub mod identity;
pub mod io;
pub mod kmod;
pub mod meminfo;
pub mod plan;
pub mod programs;
pub mod progress;
pub mod restore;
pub mod source;
pub mod store;
pub mod sys;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

/// Version of this build, recorded in every manifest.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
