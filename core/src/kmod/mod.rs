//! Kernel module metadata: modules.dep, modules.alias, softdeps, modinfo, decompression.
//! (Owned by the recovery-image builder work.)
