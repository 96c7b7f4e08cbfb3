//! Reboot, power off, and the rescue shell.

use crate::console::say;
use nix::sys::reboot::{reboot, RebootMode};
use std::fs::OpenOptions;
use std::process::{Command, Stdio};

pub fn sync_all() {
    nix::unistd::sync();
}

/// Reboots (or powers off). Returns only if the kernel refused, with the reason.
pub fn reboot_now(power_off: bool) -> String {
    say(if power_off {
        "Powering off."
    } else {
        "Rebooting."
    });
    sync_all();
    let mode = if power_off {
        RebootMode::RB_POWER_OFF
    } else {
        RebootMode::RB_AUTOBOOT
    };
    match reboot(mode) {
        Ok(never) => match never {},
        Err(e) => format!(
            "the kernel refused to {}: {e}",
            if power_off { "power off" } else { "reboot" }
        ),
    }
}

pub fn shell_path() -> Option<&'static str> {
    ["/bin/sh", "/bin/busybox", "/usr/bin/sh"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// Runs the rescue shell on the console named `console` until it exits.
pub fn run_shell(console: &str) -> Result<(), String> {
    let sh = shell_path()
        .ok_or("this image has no shell (build it with `lifeboat mkrescue --shell`)")?;
    let dev = format!("/dev/{console}");
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&dev)
        .map_err(|e| format!("cannot open {dev}: {e}"))?;
    let (i, o, e) = (
        tty.try_clone().map_err(|e| e.to_string())?,
        tty.try_clone().map_err(|e| e.to_string())?,
        tty,
    );
    say(&format!("Rescue shell on {console}. Type `exit` to return to the menu. The log is /run/lifeboat/init.log."));
    let mut cmd = Command::new(sh);
    if sh.ends_with("busybox") {
        cmd.arg("sh");
    }
    cmd.env("PATH", "/sbin:/usr/sbin:/bin:/usr/bin")
        .env("HOME", "/root")
        .env("TERM", "linux")
        .env("PS1", "lifeboat# ")
        .stdin(Stdio::from(i))
        .stdout(Stdio::from(o))
        .stderr(Stdio::from(e));
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {sh}: {e}"))?;
    say(&format!("The shell exited ({status})."));
    Ok(())
}
