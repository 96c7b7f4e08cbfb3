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

struct Console {
    name: String,
    file: File,
    pending: Vec<u8>,
}

struct State {
    consoles: Vec<Console>,
    log: Option<File>,
}

static STATE: Mutex<State> = Mutex::new(State {
    consoles: Vec::new(),
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
                consoles.push(Console {
                    name: name.clone(),
                    file,
                    pending: Vec::new(),
                });
            }
            Err(e) => failed.push(format!("{name} ({e})")),
        }
    }
    if consoles.is_empty() {
        if let Ok(file) = open_tty("/dev/console") {
            setup_tty(&file);
            consoles.push(Console {
                name: "console".into(),
                file,
                pending: Vec::new(),
            });
        }
    }
    let mut st = state();
    st.consoles = consoles;
    failed
}

/// Starts copying every line into `path` too (the log in /run, readable from the shell).
pub fn set_log(path: &str) {
    if let Ok(f) = OpenOptions::new().create(true).append(true).open(path) {
        state().log = Some(f);
    }
}

pub fn names() -> Vec<String> {
    state().consoles.iter().map(|c| c.name.clone()).collect()
}

fn write_all_nonblocking(file: &mut File, mut buf: &[u8]) {
    // The consoles are non-blocking (for polling input); a slow serial line returns EAGAIN,
    // so wait for it briefly instead of dropping text. Give up after ~2 s of no progress.
    let mut stalls = 0;
    while !buf.is_empty() {
        match file.write(buf) {
            Ok(0) => return,
            Ok(n) => {
                buf = &buf[n..];
                stalls = 0;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                stalls += 1;
                if stalls > 200 {
                    return;
                }
                let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::from(10u8));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Writes raw text to every console and the log (no newline added).
pub fn write(text: &str) {
    let mut st = state();
    let bytes = text.as_bytes();
    if st.consoles.is_empty() {
        let _ = std::io::stderr().write_all(bytes);
    }
    for c in st.consoles.iter_mut() {
        write_all_nonblocking(&mut c.file, bytes);
    }
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
    for c in st.consoles.iter_mut() {
        let _ = termios::tcflush(c.file.as_fd(), termios::FlushArg::TCIFLUSH);
        c.pending.clear();
    }
}

/// Reads one line from whichever console delivers one first. `timeout_ms` None waits forever.
/// Returns the line (trimmed) and the index of the console it came from.
pub fn read_line(timeout_ms: Option<u64>) -> Option<(String, usize)> {
    let start = std::time::Instant::now();
    loop {
        let mut st = state();
        if st.consoles.is_empty() {
            drop(st);
            std::thread::sleep(std::time::Duration::from_millis(500));
            return None;
        }
        // A line already buffered?
        for (i, c) in st.consoles.iter_mut().enumerate() {
            if let Some(pos) = c.pending.iter().position(|&b| b == b'\n' || b == b'\r') {
                let line: Vec<u8> = c.pending.drain(..=pos).collect();
                let text = String::from_utf8_lossy(&line).trim().to_string();
                return Some((text, i));
            }
        }
        let ready: Vec<usize> = {
            let mut fds: Vec<PollFd> = st
                .consoles
                .iter()
                .map(|c| PollFd::new(c.file.as_fd(), PollFlags::POLLIN))
                .collect();
            match poll(&mut fds, PollTimeout::from(200u8)) {
                Ok(n) if n > 0 => fds
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.revents().is_some_and(|r| r.contains(PollFlags::POLLIN)))
                    .map(|(i, _)| i)
                    .collect(),
                _ => Vec::new(),
            }
        };
        for i in ready {
            if let Some(c) = st.consoles.get_mut(i) {
                let mut buf = [0u8; 256];
                if let Ok(n) = c.file.read(&mut buf) {
                    c.pending.extend_from_slice(&buf[..n]);
                }
            }
        }
        drop(st);
        if let Some(t) = timeout_ms {
            if start.elapsed().as_millis() as u64 >= t {
                return None;
            }
        }
    }
}
