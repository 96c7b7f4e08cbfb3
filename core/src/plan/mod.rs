//! The restore plan: computed before anything is written, from the backup and the disks found,
//! with the safety rules. The recovery image calls [`plan`] with what discovery found and gets
//! either a [`Plan`] (shown with [`render`], journalled, executed step by step) or a
//! [`PlanError`] that explains itself; `lifeboat plan` prints the same as a dry run.
//!
//! - [`model`]: [`Plan`], [`Mode`], [`Step`] with its [`Action`] and a stable id, [`Check`].
//! - [`facts`]: what the plan is computed from: [`BackupFacts`], [`DeviceFacts`],
//!   [`TargetRequest`].
//! - [`decide`]: [`plan`], pure (no I/O).
//! - [`safety`]: the rules each written device passes.
//! - [`identity`]: the root's final identity from the manifest, or the backup's own fstab,
//!   grub.cfg and inventory ([`identity_from_system_files`]).
//! - [`latest`]: the one rule for "latest" ([`select_latest`]).
//! - [`md`]: md RAID members recognised from their superblocks.
//! - [`render`]: the plan as lines for a person.

pub mod decide;
pub mod error;
pub mod facts;
pub mod identity;
pub mod latest;
pub mod md;
pub mod model;
pub mod render;
pub mod safety;

pub use decide::plan;
pub use error::PlanError;
pub use facts::{BackupFacts, BackupKind, DeviceFacts, Holds, SystemFiles, TargetRequest};
pub use identity::{identity_from_system_files, root_identity, RootIdentity};
pub use latest::{select_latest, Dated, LatestError, ThisHost};
pub use model::{Action, Check, Mode, Plan, Step};
pub use render::render;

#[cfg(test)]
mod tests;
