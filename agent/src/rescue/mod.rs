//! The recovery image builder: module selection, ELF dependencies, cpio, PXE tree, ISO.
