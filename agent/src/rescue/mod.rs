//! The recovery image builder: module selection, ELF dependencies, cpio (owned by the
//! image-builder work); PXE tree and ISO (`pxe`, `iso`, owned by the boot-media work).

pub mod iso;
pub mod pxe;
