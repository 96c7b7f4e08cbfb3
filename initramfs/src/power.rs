//! Reboot, power off, the rescue shell, and what PID 1 owes the system: reaping orphaned
//! processes and deciding what Ctrl-Alt-Del does.

use crate::console::say;
use anyhow::{Context, Result};
use nix::sys::reboot::{reboot, set_cad_enabled, RebootMode};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::fs::{File, OpenOptions};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// Reaps every child that has exited (orphans of the rescue shell and of the programs it ran
/// become PID 1's children). Returns how many were reaped. Called only where PID 1 waits for
/// the operator, when none of its own children is running (their statuses are waited for by
/// whoever started them).
pub fn reap_orphans() -> usize {
    let mut n = 0;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return n,
            Ok(_) => n += 1,
        }
    }
}

/// Set by the SIGINT handler: the kernel sends SIGINT to PID 1 on Ctrl-Alt-Del once
/// `reboot(RB_DISABLE_CAD)` is in force.
static CAD_PRESSED: AtomicBool = AtomicBool::new(false);
/// A restore is writing to the disk (from its journal record "restore-started" to
/// "restore-done").
static BUSY: AtomicBool = AtomicBool::new(false);
/// When Ctrl-Alt-Del was last pressed at the menu.
static LAST_CAD: Mutex<Option<Instant>> = Mutex::new(None);

/// How long a second Ctrl-Alt-Del at the menu confirms the reboot.
const CAD_CONFIRM: Duration = Duration::from_secs(10);

extern "C" fn on_sigint(_: libc::c_int) {
    CAD_PRESSED.store(true, Ordering::SeqCst);
}

/// Ctrl-Alt-Del no longer reboots at once: the kernel signals PID 1 instead. Returns what
/// failed, if anything.
pub fn take_over_ctrl_alt_del() -> Result<()> {
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(on_sigint),
        nix::sys::signal::SaFlags::SA_RESTART,
        nix::sys::signal::SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGINT, &action) }
        .context("cannot handle SIGINT")?;
    set_cad_enabled(false).context("cannot stop Ctrl-Alt-Del from rebooting at once")
}

/// What a Ctrl-Alt-Del does.
#[derive(Debug, PartialEq, Eq)]
pub enum CadAction {
    /// A restore is writing: ignored (with a message).
    Ignore,
    /// At the menu, the first press: it asks for a second one.
    Confirm,
    /// At the menu, a second press within CAD_CONFIRM.
    Reboot,
}

pub fn cad_action(busy: bool, previous: Option<Instant>, now: Instant) -> CadAction {
    if busy {
        CadAction::Ignore
    } else if previous.is_some_and(|p| now.saturating_duration_since(p) <= CAD_CONFIRM) {
        CadAction::Reboot
    } else {
        CadAction::Confirm
    }
}

/// Marks the span in which a reboot would leave a half-written disk.
pub struct Busy;

impl Busy {
    pub fn start() -> Self {
        BUSY.store(true, Ordering::SeqCst);
        Busy
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.store(false, Ordering::SeqCst);
    }
}

/// Handles a pending Ctrl-Alt-Del (cheap; called from progress updates too).
pub fn handle_ctrl_alt_del() {
    if !CAD_PRESSED.swap(false, Ordering::SeqCst) {
        return;
    }
    let now = Instant::now();
    let mut last = match LAST_CAD.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    match cad_action(BUSY.load(Ordering::SeqCst), *last, now) {
        CadAction::Ignore => say(
            "Ctrl-Alt-Del ignored: a restore is writing to the disk; rebooting now would leave a half-written root. Wait for it to finish.",
        ),
        CadAction::Confirm => {
            *last = Some(now);
            say("Ctrl-Alt-Del: press it again within 10 seconds to reboot.");
        }
        CadAction::Reboot => {
            *last = None;
            drop(last);
            let e = reboot_now(false);
            say(&e);
        }
    }
}

/// What PID 1 does while it waits for the operator: reap orphans, handle Ctrl-Alt-Del.
pub fn while_idle() {
    reap_orphans();
    handle_ctrl_alt_del();
}

pub fn shell_path() -> Option<&'static str> {
    ["/bin/sh", "/bin/busybox", "/usr/bin/sh"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// The tty behind /dev/console (the last of /sys/class/tty/console/active): /dev/console itself
/// cannot be a controlling terminal.
fn real_console(name: &str) -> String {
    if name != "console" {
        return name.to_string();
    }
    std::fs::read_to_string("/sys/class/tty/console/active")
        .ok()
        .and_then(|s| s.split_whitespace().last().map(str::to_string))
        .unwrap_or_else(|| name.to_string())
}

/// Runs `cmd` on the terminal `tty` as the leader of a new session whose controlling terminal
/// it is, in the foreground: job control works and Ctrl-C reaches what it runs.
pub fn on_terminal(cmd: &mut Command, tty: File) -> std::io::Result<()> {
    let (i, o) = (tty.try_clone()?, tty.try_clone()?);
    cmd.stdin(Stdio::from(i))
        .stdout(Stdio::from(o))
        .stderr(Stdio::from(tty));
    // SAFETY: between fork and exec the closure calls only async-signal-safe functions
    // (setsid, ioctl, tcsetpgrp, getpid) and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::ioctl(0, libc::TIOCSCTTY, 1) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::tcsetpgrp(0, libc::getpid()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

/// Runs the rescue shell on the console named `console` until it exits.
pub fn run_shell(console: &str) -> Result<()> {
    let sh = shell_path()
        .context("this image has no shell (build it with `lifeboat mkrescue --shell`)")?;
    let console = real_console(console);
    let dev = format!("/dev/{console}");
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&dev)
        .with_context(|| format!("cannot open {dev}"))?;
    say(&format!("Rescue shell on {console}. Type `exit` to return to the menu. The log is /run/lifeboat/init.log."));
    let mut cmd = Command::new(sh);
    if sh.ends_with("busybox") {
        cmd.arg("sh");
    }
    cmd.env("PATH", "/sbin:/usr/sbin:/bin:/usr/bin")
        .env("HOME", "/root")
        .env("TERM", "linux")
        .env("PS1", "lifeboat# ");
    on_terminal(&mut cmd, tty).with_context(|| format!("cannot use {dev} as a terminal"))?;
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {sh} on {dev}"))?;
    reap_orphans();
    say(&format!("The shell exited ({status})."));
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    /// Tests that start children (whose statuses `reap_orphans` would take) run one at a time.
    static CHILDREN: Mutex<()> = Mutex::new(());

    #[test]
    fn ctrl_alt_del_waits_for_the_restore_and_asks_at_the_menu() {
        let t0 = Instant::now();
        assert_eq!(cad_action(true, None, t0), CadAction::Ignore);
        assert_eq!(cad_action(true, Some(t0), t0), CadAction::Ignore);
        assert_eq!(cad_action(false, None, t0), CadAction::Confirm);
        let later = t0 + Duration::from_secs(3);
        assert_eq!(cad_action(false, Some(t0), later), CadAction::Reboot);
        let much_later = t0 + Duration::from_secs(60);
        assert_eq!(cad_action(false, Some(t0), much_later), CadAction::Confirm);
    }

    #[test]
    fn the_shell_owns_its_terminal() {
        let _g = CHILDREN.lock();
        let pty = nix::pty::openpty(None, None).unwrap();
        let slave = File::from(pty.slave);
        let mut master = File::from(pty.master);
        let mut cmd = Command::new("/bin/sh");
        // The process that execs cat is the one set up by on_terminal.
        cmd.args(["-c", "exec cat /proc/self/stat"]);
        on_terminal(&mut cmd, slave).unwrap();
        let status = cmd.status().unwrap();
        assert!(status.success());
        let mut out = vec![0u8; 4096];
        let n = master.read(&mut out).unwrap();
        let text = String::from_utf8_lossy(&out[..n]).to_string();
        let after = text.rsplit_once(')').unwrap().1;
        let f: Vec<i64> = after
            .split_whitespace()
            .skip(1)
            .take(5)
            .map(|x| x.parse().unwrap())
            .collect();
        let pid: i64 = text.split_whitespace().next().unwrap().parse().unwrap();
        // ppid pgrp session tty_nr tpgid
        let (pgrp, session, tty_nr, tpgid) = (f[1], f[2], f[3], f[4]);
        assert_eq!(session, pid, "the shell leads its own session: {text}");
        assert_eq!(pgrp, pid);
        assert_ne!(tty_nr, 0, "the shell has a controlling terminal: {text}");
        assert_eq!(tpgid, pgrp, "the shell is in the foreground: {text}");
        let _ = master.as_raw_fd();
    }

    #[test]
    fn orphans_are_reaped() {
        let _g = CHILDREN.lock();
        // Orphans come to the nearest subreaper: this test process plays PID 1.
        assert_eq!(
            unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) },
            0
        );
        let out = Command::new("/bin/sh")
            .args(["-c", "sleep 0.1 >/dev/null 2>&1 & echo $!"])
            .output()
            .unwrap();
        let orphan: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let stat = format!("/proc/{orphan}/stat");
        let zombie = |s: &str| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        };
        let t = Instant::now();
        while !std::fs::read_to_string(&stat).is_ok_and(|s| zombie(&s)) {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the orphan never exited"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(reap_orphans() >= 1);
        assert!(
            !std::path::Path::new(&stat).exists(),
            "the orphan is still a zombie"
        );
    }
}
