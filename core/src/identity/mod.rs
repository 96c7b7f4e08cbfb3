//! Identity of machines, disks, partitions and filesystems, and the XenServer inventory.
//! (Owned by the store work.)
