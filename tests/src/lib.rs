//! Test tools shared by the integration tests, the shell-level root tests and the QEMU tests:
//!
//! - [`fixture`] (binary `lbtest-fixture DIR`): builds every case Lifeboat must keep; which
//!   cases need root and ext4 is in its module doc; skipped cases are reported;
//! - [`compare`] (binary `lbtest-compare A B [--ignore PATH]...`): compares two trees on every
//!   property the archive keeps, prints each difference, exits 1 when there is any;
//! - [`hostile`] (binary `lbtest-hostile DIR CANARY`): tar archives that try to escape the
//!   restore target;
//! - [`backup`] (binary `lbtest-backup ROOT OUT [codec]`): an archive made with the library;
//! - [`image`]: loop-mounted filesystem images for root tests.
//!
//! Integration tests: `tests/tests/*.rs` (the root-only ones skip without root); shell tests
//! through the CLI: `tests/root/1x-restore-*.sh` (sourcing `tests/root/restore-lib.bash`).

pub mod backup;
pub mod compare;
pub mod fixture;
pub mod hostile;
pub mod image;
pub mod mutation;
pub mod sys;
