//! kexec: load a Linux kernel (and initrd) with kexec_file_load and jump into it, without the
//! firmware: how the recovery image boots the local disk when its unattended request is done.

use anyhow::{anyhow, Context, Result};
use nix::sys::reboot::{reboot, RebootMode};
use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// `KEXEC_FILE_NO_INITRAMFS` of linux/kexec.h.
const KEXEC_FILE_NO_INITRAMFS: libc::c_ulong = 0x4;

/// Loads `kernel` (a bzImage), `initrd` and `cmdline` as the kernel the next kexec jumps to.
pub fn load(kernel: &Path, initrd: Option<&Path>, cmdline: &str) -> Result<()> {
    let k = File::open(kernel).with_context(|| format!("cannot open {}", kernel.display()))?;
    let i = initrd
        .map(|p| File::open(p).with_context(|| format!("cannot open {}", p.display())))
        .transpose()?;
    let c = CString::new(cmdline).map_err(|_| anyhow!("the kernel command line holds a NUL"))?;
    let len = c.as_bytes_with_nul().len();
    let (ifd, flags) = match &i {
        Some(f) => (f.as_raw_fd(), 0),
        None => (-1, KEXEC_FILE_NO_INITRAMFS),
    };
    // SAFETY: the file descriptors are open for the call; the command line is a NUL-terminated
    // buffer of `len` bytes that outlives it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_kexec_file_load,
            k.as_raw_fd(),
            ifd,
            len as libc::c_ulong,
            c.as_ptr(),
            flags,
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        let why = match e.raw_os_error() {
            Some(libc::ENOSYS) => " (this kernel has no kexec_file_load: CONFIG_KEXEC_FILE)",
            Some(libc::ENOEXEC) => " (not a bzImage this kernel can load)",
            Some(libc::EPERM) => " (kexec is locked down, e.g. by Secure Boot)",
            Some(libc::EKEYREJECTED) => " (its signature was rejected)",
            _ => "",
        };
        return Err(anyhow!(
            "kexec_file_load of {} refused: {e}{why}",
            kernel.display()
        ));
    }
    Ok(())
}

/// Jumps into the kernel [`load`]ed. Returns only when the kernel refused, with the reason.
pub fn jump() -> anyhow::Error {
    nix::unistd::sync();
    match reboot(RebootMode::RB_KEXEC) {
        Ok(never) => match never {},
        Err(e) => anyhow!("the kernel refused to jump into the loaded kernel (kexec): {e}"),
    }
}
