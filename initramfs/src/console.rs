//! Every console named on the kernel command line (serial and VGA), driven at once: each line
//! is written to all of them (and to the log in /run), and input is read from whichever the
//! operator types on. Dumb serial consoles (IPMI SOL, QEMU `-nographic`) only need numbered
//! choices and Enter, so the line discipline stays canonical with echo.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, InputFlags, LocalFlags, OutputFlags, SetArg};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long one write may wait for a console that is not taking output (a serial line held
/// by flow control, a disconnected terminal). Past it the console is "stalled": later writes
/// try it once without waiting and drop what does not fit, so the other consoles and the
/// restore keep going.
const WRITE_WAIT: Duration = Duration::from_millis(100);

/// How often the consoles that hung up are opened again while none is left to read from.
const REOPEN_EVERY: Duration = Duration::from_secs(5);

struct Console {
    name: String,
    file: File,
    pending: Vec<u8>,
    /// Hung up (read gave EOF with POLLHUP, or EIO): neither read nor written any more.
    gone: bool,
    /// The last write timed out; bytes dropped since.
    stalled: bool,
    dropped: u64,
}

impl Console {
    fn new(name: &str, file: File) -> Self {
        Self {
            name: name.to_string(),
            file,
            pending: Vec::new(),
            gone: false,
            stalled: false,
            dropped: 0,
        }
    }

    /// Writes `buf`, waiting at most WRITE_WAIT (not at all while stalled) for the console to
    /// drain; what does not fit is dropped and counted.
    fn write_bounded(&mut self, buf: &[u8]) {
        if self.gone {
            return;
        }
        let deadline = Instant::now()
            + if self.stalled {
                Duration::ZERO
            } else {
                WRITE_WAIT
            };
        let mut rest = buf;
        while !rest.is_empty() {
            match self.file.write(rest) {
                Ok(0) => break,
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
                    let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLOUT)];
                    let _ = poll(&mut fds, PollTimeout::from(ms));
                }
                Err(_) => {
                    self.gone = true;
                    return;
                }
            }
        }
        if rest.is_empty() {
            if self.stalled && self.dropped > 0 {
                let note = format!(
                    "\n[{} bytes of output were not shown here: this console was not taking output]\n",
                    self.dropped
                );
                let _ = self.file.write(note.as_bytes());
            }
            self.stalled = false;
            self.dropped = 0;
        } else {
            self.stalled = true;
            self.dropped += rest.len() as u64;
        }
    }
}

/// A set of consoles written to together and read from whichever delivers a line first.
#[derive(Default)]
struct Consoles {
    list: Vec<Console>,
    last_reopen: Option<Instant>,
}

/// What one round of polling the consoles found.
enum Polled {
    Line(String, usize),
    Nothing,
    /// Every console hung up.
    NoConsole,
}

impl Consoles {
    fn write(&mut self, bytes: &[u8]) {
        for c in self.list.iter_mut() {
            c.write_bounded(bytes);
        }
    }

    fn buffered_line(&mut self) -> Option<(String, usize)> {
        for (i, c) in self.list.iter_mut().enumerate() {
            if let Some(pos) = c.pending.iter().position(|&b| b == b'\n' || b == b'\r') {
                let line: Vec<u8> = c.pending.drain(..=pos).collect();
                let text = String::from_utf8_lossy(&line[..pos]).into_owned();
                return Some((text, i));
            }
        }
        None
    }

    /// Waits up to `wait_ms` for input on the live consoles. A console that hung up is marked
    /// gone (and said so on the others) instead of being polled again: a hung-up tty is always
    /// "ready", and polling it would spin.
    fn poll_once(&mut self, wait_ms: u16) -> Polled {
        if let Some(l) = self.buffered_line() {
            return Polled::Line(l.0, l.1);
        }
        let live: Vec<usize> = (0..self.list.len())
            .filter(|&i| !self.list[i].gone)
            .collect();
        if live.is_empty() {
            return Polled::NoConsole;
        }
        let revents: Vec<PollFlags> = {
            let mut fds: Vec<PollFd> = live
                .iter()
                .map(|&i| PollFd::new(self.list[i].file.as_fd(), PollFlags::POLLIN))
                .collect();
            match poll(&mut fds, PollTimeout::from(wait_ms)) {
                Ok(n) if n > 0 => fds
                    .iter()
                    .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                    .collect(),
                _ => return Polled::Nothing,
            }
        };
        let mut hung_up = Vec::new();
        for (&i, r) in live.iter().zip(revents) {
            let hup = r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL);
            let c = &mut self.list[i];
            if r.contains(PollFlags::POLLIN) {
                let mut buf = [0u8; 256];
                match c.file.read(&mut buf) {
                    // EOF: Ctrl-D on a live terminal (an empty line), or a hang-up.
                    Ok(0) if hup => c.gone = true,
                    Ok(0) => c.pending.push(b'\n'),
                    Ok(n) => c.pending.extend_from_slice(&buf[..n]),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                        ) => {}
                    Err(_) => c.gone = true,
                }
            } else if hup {
                c.gone = true;
            }
            if c.gone {
                hung_up.push(c.name.clone());
            }
        }
        for name in hung_up {
            let msg = format!("Console {name} hung up: it is no longer read or written.\n");
            self.write(msg.as_bytes());
        }
        match self.buffered_line() {
            Some((l, i)) => Polled::Line(l, i),
            None => Polled::Nothing,
        }
    }

    /// Opens the consoles that hung up again (a serial line plugged back in), at most every
    /// REOPEN_EVERY.
    fn reopen_gone(&mut self) {
        if self.last_reopen.is_some_and(|t| t.elapsed() < REOPEN_EVERY) {
            return;
        }
        self.last_reopen = Some(Instant::now());
        for c in self.list.iter_mut().filter(|c| c.gone) {
            if let Ok(file) = open_tty(&format!("/dev/{}", c.name)) {
                setup_tty(&file);
                *c = Console::new(&c.name, file);
            }
        }
    }

    /// Reads one line, up to `timeout` (None: forever). With no live console left it sleeps
    /// (trying to reopen them now and then) instead of spinning.
    fn read_line(&mut self, timeout: Option<Duration>) -> Option<(String, usize)> {
        let start = Instant::now();
        loop {
            match self.poll_once(200) {
                Polled::Line(l, i) => return Some((l, i)),
                Polled::Nothing => {}
                Polled::NoConsole => {
                    self.reopen_gone();
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
            if timeout.is_some_and(|t| start.elapsed() >= t) {
                return None;
            }
        }
    }
}

struct State {
    consoles: Consoles,
    log: Option<File>,
}

static STATE: Mutex<State> = Mutex::new(State {
    consoles: Consoles {
        list: Vec::new(),
        last_reopen: None,
    },
    log: None,
});

fn state() -> MutexGuard<'static, State> {
    // A panic while holding the lock must not silence the consoles.
    match STATE.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn open_tty(path: &str) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
}

/// Puts a tty into canonical mode with echo and CR/LF translation, keeping its speed.
fn setup_tty(file: &File) {
    if let Ok(mut t) = termios::tcgetattr(file.as_fd()) {
        t.input_flags |= InputFlags::ICRNL | InputFlags::IXON;
        t.input_flags &= !(InputFlags::INLCR | InputFlags::IGNCR);
        t.output_flags |= OutputFlags::OPOST | OutputFlags::ONLCR;
        t.local_flags |= LocalFlags::ICANON
            | LocalFlags::ECHO
            | LocalFlags::ECHOE
            | LocalFlags::ECHOK
            | LocalFlags::ISIG;
        let _ = termios::tcsetattr(file.as_fd(), SetArg::TCSANOW, &t);
    }
}

/// Opens the consoles named on the command line (by device name, e.g. `ttyS0`, `tty0`), or
/// /dev/console when none is named or none opens. Returns the names of those that failed.
pub fn init(names: &[String]) -> Vec<String> {
    let mut failed = Vec::new();
    let mut consoles = Vec::new();
    for name in names {
        match open_tty(&format!("/dev/{name}")) {
            Ok(file) => {
                setup_tty(&file);
                consoles.push(Console::new(name, file));
            }
            Err(e) => failed.push(format!("{name} ({e})")),
        }
    }
    if consoles.is_empty() {
        if let Ok(file) = open_tty("/dev/console") {
            setup_tty(&file);
            consoles.push(Console::new("console", file));
        }
    }
    let mut st = state();
    st.consoles.list = consoles;
    failed
}

/// Starts copying every line into `path` too (the log in /run, readable from the shell).
pub fn set_log(path: &str) {
    if let Ok(f) = OpenOptions::new().create(true).append(true).open(path) {
        state().log = Some(f);
    }
}

pub fn names() -> Vec<String> {
    state()
        .consoles
        .list
        .iter()
        .map(|c| c.name.clone())
        .collect()
}

/// Writes raw text to every console and the log (no newline added).
pub fn write(text: &str) {
    let mut st = state();
    let bytes = text.as_bytes();
    if st.consoles.list.is_empty() {
        let _ = std::io::stderr().write_all(bytes);
    }
    st.consoles.write(bytes);
    if let Some(log) = st.log.as_mut() {
        let _ = log.write_all(bytes);
    }
}

/// Writes one line to every console.
pub fn say(line: &str) {
    let mut s = String::with_capacity(line.len() + 1);
    s.push_str(line);
    s.push('\n');
    write(&s);
}

/// Says `line` unless this boot said it already (then it goes to the log file only), and tells
/// which. Discovery runs more than once (after the short and the full quiet wait, after a
/// rescan): the same repository finding need not fill the screen each time.
pub fn say_once(line: &str) -> bool {
    static SAID: Mutex<std::collections::BTreeSet<String>> =
        Mutex::new(std::collections::BTreeSet::new());
    let fresh = SAID
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(line.to_string());
    if fresh {
        say(line);
    } else {
        log_only(line);
    }
    fresh
}

/// Writes to the log file only (details that would clutter the screen).
pub fn log_only(line: &str) {
    let mut st = state();
    if let Some(log) = st.log.as_mut() {
        let _ = writeln!(log, "{line}");
    }
}

/// Drops input typed before a question was asked (so stray keys do not answer it).
pub fn flush_input() {
    let mut st = state();
    for c in st.consoles.list.iter_mut().filter(|c| !c.gone) {
        let _ = termios::tcflush(c.file.as_fd(), termios::FlushArg::TCIFLUSH);
        c.pending.clear();
    }
}

/// Reads one line from whichever console delivers one first. `timeout_ms` None waits forever.
/// Returns the line (trimmed) and the index of the console it came from. While it waits, PID 1
/// reaps orphaned processes and handles Ctrl-Alt-Del.
pub fn read_line(timeout_ms: Option<u64>) -> Option<(String, usize)> {
    let timeout = timeout_ms.map(Duration::from_millis);
    let start = Instant::now();
    loop {
        // The lock is taken per round so that other threads (progress lines) can still write.
        let r = state().consoles.read_line(Some(Duration::from_millis(200)));
        crate::power::while_idle();
        if let Some((l, c)) = r {
            return Some((l.trim().to_string(), c));
        }
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            return None;
        }
    }
}

/// Reads a secret (a passphrase) from whichever console delivers a line first, with echo off
/// on every console meanwhile (the newline still shows); the line is kept as typed, spaces
/// included (only the line end is dropped). None when no console delivers one.
pub fn read_secret() -> Option<String> {
    let saved: Vec<Option<termios::Termios>> = {
        let st = state();
        st.consoles
            .list
            .iter()
            .map(|c| {
                let t = termios::tcgetattr(c.file.as_fd()).ok()?;
                let mut quiet = t.clone();
                quiet.local_flags &= !(LocalFlags::ECHO | LocalFlags::ECHOE | LocalFlags::ECHOK);
                quiet.local_flags |= LocalFlags::ECHONL;
                termios::tcsetattr(c.file.as_fd(), SetArg::TCSANOW, &quiet).ok()?;
                Some(t)
            })
            .collect()
    };
    let mut line = None;
    while line.is_none() {
        let r = state().consoles.read_line(Some(Duration::from_millis(200)));
        crate::power::while_idle();
        if let Some((l, _)) = r {
            line = Some(l);
        } else if state().consoles.list.iter().all(|c| c.gone) {
            break;
        }
    }
    let st = state();
    for (c, t) in st.consoles.list.iter().zip(saved) {
        if let Some(t) = t {
            let _ = termios::tcsetattr(c.file.as_fd(), SetArg::TCSANOW, &t);
        }
    }
    line
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::fd::OwnedFd;

    /// A pseudo-terminal: the console end opened as the image opens consoles (non-blocking),
    /// the terminal end, and the slave fd that keeps it open.
    fn pty() -> (File, File, OwnedFd) {
        let p = nix::pty::openpty(None, None).unwrap();
        let path = nix::unistd::ttyname(p.slave.as_fd()).unwrap();
        let console = open_tty(path.to_str().unwrap()).unwrap();
        setup_tty(&console);
        (console, File::from(p.master), p.slave)
    }

    fn cpu_time() -> Duration {
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) }, 0);
        let t = |tv: libc::timeval| {
            Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
        };
        t(u.ru_utime) + t(u.ru_stime)
    }

    #[test]
    fn a_finding_said_again_goes_to_the_log_only() {
        let line = "Repository s3://b/p: 2 generations of this host (test of say_once)";
        assert!(say_once(line), "the first time is said");
        assert!(!say_once(line), "the second time is not");
        assert!(
            say_once(&line.replace('2', "3")),
            "a changed finding is said"
        );
    }

    #[test]
    fn a_hung_up_console_is_dropped_and_reading_does_not_spin() {
        let (file, mut master, slave) = pty();
        drop(slave);
        let mut cs = Consoles {
            list: vec![Console::new("pts-test", file)],
            last_reopen: None,
        };
        master.write_all(b"2\n").unwrap();
        assert_eq!(
            cs.read_line(Some(Duration::from_secs(5))).map(|l| l.0),
            Some("2".to_string())
        );
        // The terminal hangs up (the serial cable is pulled, the SOL session ends).
        drop(master);
        let cpu0 = cpu_time();
        assert_eq!(cs.read_line(Some(Duration::from_secs(2))), None);
        let used = cpu_time() - cpu0;
        assert!(cs.list[0].gone, "the hung-up console is still read");
        assert!(
            used < Duration::from_millis(300),
            "waiting 2 s on a hung-up console used {used:?} of CPU"
        );
    }

    #[test]
    fn a_console_that_does_not_drain_does_not_hold_up_the_others() {
        // A console whose other end never reads (a serial line held by flow control) and
        // one that drains.
        let (stuck, _stuck_master, _s1) = pty();
        let (live_file, mut live_master, _s2) = pty();
        let mut cs = Consoles {
            list: vec![
                Console::new("stuck", stuck),
                Console::new("live", live_file),
            ],
            last_reopen: None,
        };
        let line = format!("{}\n", "x".repeat(1000));
        let start = Instant::now();
        let mut got = 0usize;
        // ONLCR: each "\n" arrives as "\r\n".
        let mut buf = vec![0u8; line.len() + 1];
        for _ in 0..300 {
            cs.write(line.as_bytes());
            // The live console's reader keeps up.
            live_master.read_exact(&mut buf).unwrap();
            got += buf.len();
        }
        let took = start.elapsed();
        assert!(cs.list[0].stalled && cs.list[0].dropped > 0);
        assert_eq!(got, 300 * (line.len() + 1), "the live console lost output");
        assert!(
            took < Duration::from_secs(10),
            "300 lines took {took:?}: the stuck console held every line up"
        );
    }
}
