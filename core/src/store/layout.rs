//! The on-disk layout of a Lifeboat store, at the root of the backup partition's filesystem:
//!
//! ```text
//! .lifeboat-store            marker, JSON {"format":1,"created":"...","tool_version":"..."}
//! generations/<id>/          committed generations, one directory each:
//!     backup.tar.<ext>       the archive (ext: zst, gz, xz, or none for plain "backup.tar")
//!     meta.json              GenerationMeta: id, times, host, product version, size, files,
//!                            entries, bytes, codec, state, the archive's manifest and its
//!                            trailer's entries digest; every reader checks the archive
//!                            against it (Generation::open_verified_reader, check_end)
//!     pool-database          `xe pool-dump-database` output (0600), when meta.json records
//!                            one (pool_database: size, BLAKE3)
//! staging/<id>/              a generation being written (same content); anything here is
//!                            work in progress or debris of an interrupted run, removed by
//!                            the next writer
//! journal                    JSON lines, appended and fsynced (backup-committed,
//!                            restore-started, restore-done, ...); each record starts on a
//!                            fresh line, a torn line is skipped. Never rewritten, so never
//!                            trimmed: the agent and the recovery image append to it with
//!                            O_APPEND, and a rewrite could lose a line appended meanwhile
//!                            (it grows by a short line per backup and per pruned
//!                            generation, a few lines per restore). The repository's
//!                            restore journal, rewritten whole at every append anyway,
//!                            keeps what journal::bounded keeps.
//! lock                       flock()ed by the one writer; its content names the holder
//! ```
//!
//! Ids are UTC times, `20261122T031500Z`, with `-02`, `-03`... when one is taken, so that
//! sorting them sorts by time. A generation exists exactly when `generations/<id>/` exists: it
//! gets there by one rename of a fully written, fsynced and verified staging directory.
//! Files are created 0600, directories 0700.

use serde::{Deserialize, Serialize};

pub const MARKER: &str = ".lifeboat-store";
pub const GENERATIONS: &str = "generations";
pub const STAGING: &str = "staging";
pub const JOURNAL: &str = "journal";
pub const LOCK: &str = "lock";
pub const META: &str = "meta.json";
/// The pool database dump beside the archive (`xe pool-dump-database`), when there is one.
pub const POOL_DATABASE: &str = "pool-database";
/// Archive file name without the codec extension.
pub const ARCHIVE_STEM: &str = "backup.tar";
/// Version of this layout.
pub const STORE_FORMAT: u32 = 1;
/// Marker of a XenServer backup partition (`xe host-backup`/installer layout).
pub const XEN_MARKER: &str = ".xen-backup-partition";

/// Content of the marker file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub format: u32,
    pub created: String,
    #[serde(default)]
    pub tool_version: String,
}

/// File name of the archive for a codec's extension ("zst", "gz", "xz", "" for none).
pub fn archive_name(ext: &str) -> String {
    if ext.is_empty() {
        ARCHIVE_STEM.to_string()
    } else {
        format!("{ARCHIVE_STEM}.{ext}")
    }
}

/// The file extension for a codec name ("zstd" -> "zst").
pub fn ext_for_codec(codec: &str) -> &'static str {
    match codec {
        "zstd" => "zst",
        "gzip" => "gz",
        "xz" => "xz",
        _ => "",
    }
}

/// Orders ids by time, then by their numeric suffix.
pub fn id_sort_key(id: &str) -> (String, u32) {
    match id.split_once('-') {
        Some((base, n)) => (base.to_string(), n.parse().unwrap_or(0)),
        None => (id.to_string(), 0),
    }
}

/// True for names that look like generation ids (so stray files are ignored).
pub fn is_id(name: &str) -> bool {
    let base = name.split('-').next().unwrap_or("");
    base.len() == 16
        && base.as_bytes()[8] == b'T'
        && base.ends_with('Z')
        && base
            .bytes()
            .enumerate()
            .all(|(i, b)| i == 8 || i == 15 || b.is_ascii_digit())
}
