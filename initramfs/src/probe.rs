//! Block devices as this image sees them: core's one list of disks and partitions
//! (`lifeboat_core::identity::devices`, the same code the agent resolves devices with), limited
//! to what coldplug saw (loop, ram and zram devices left out).

use lifeboat_core::identity::devices;
pub use lifeboat_core::identity::devices::BlockDev;

/// Every disk and partition the kernel knows (loop, ram and zram devices left out), with the
/// identity core reads from sysfs, the partition tables and the superblocks.
pub fn scan() -> Vec<BlockDev> {
    let wanted = crate::coldplug::block_devices();
    match devices::scan(|name| wanted.contains(name)) {
        Ok(devs) => devs,
        Err(e) => {
            crate::console::say(&format!("Warning: cannot list the disks: {e}"));
            Vec::new()
        }
    }
}
