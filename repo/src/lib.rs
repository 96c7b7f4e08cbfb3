//! Lifeboat's off-host repository: generations of a host's archive stream, cut into
//! content-defined chunks, encrypted, deduplicated across generations and hosts, on any
//! S3-compatible object store (or a local directory, for tests and USB disks).
//!
//! Layering: [`backend`] moves whole objects (put/get/list/delete) and knows nothing of the
//! format; the format modules above it decide what the objects are.

pub mod backend;
