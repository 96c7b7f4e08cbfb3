//! Kernel module metadata for the recovery image: dependencies (modules.dep or the modules'
//! own `.modinfo`), softdeps, firmware, decompression (owned by the image-builder work), and
//! alias matching for coldplug (`alias`, owned by the recovery-init work).

pub mod alias;
