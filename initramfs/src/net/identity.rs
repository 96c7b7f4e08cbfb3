//! The age identity that opens this host's generations in the repository
//! (`/etc/lifeboat/repo/identity.txt`, from `mkrescue --repo-identity`): a plain
//! `AGE-SECRET-KEY-1...` file, or one protected with a passphrase (`age -p`, `rage -p`). The
//! passphrase is asked on the consoles (no echo), at most [`ATTEMPTS`] times, and only when the
//! memory scrypt needs at the file's work factor (2^log_n * 1 KiB: 256 MiB at log_n 18, what
//! age picks on a typical machine) is available: otherwise the image says how much it needs and
//! has, and does not try. Once opened, the identity is kept for the rest of the boot.

use crate::console::{flush_input, read_secret, say, write};
use anyhow::{anyhow, bail, Context, Result};
use lifeboat_core::progress::human_bytes;
use lifeboat_repo::crypto::{scrypt_memory, Identity, IdentityFile, PassphraseError};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// How many passphrases are tried before giving up (the menu entry can be chosen again).
pub const ATTEMPTS: u32 = 3;

/// `MemAvailable` of /proc/meminfo's text, in bytes.
pub fn mem_available(meminfo: &str) -> Option<u64> {
    lifeboat_core::meminfo::field(meminfo, "MemAvailable")
}

/// Whether scrypt at work factor 2^log_n fits in the memory `meminfo` says is available; the
/// error says how much is needed and how much there is.
pub fn memory_check(log_n: u8, meminfo: &str) -> Result<()> {
    let need = scrypt_memory(log_n);
    let Some(have) = mem_available(meminfo) else {
        bail!("cannot tell the free memory (no MemAvailable in /proc/meminfo), and the passphrase needs {} for scrypt (work factor 2^{log_n})", human_bytes(need));
    };
    if have < need {
        bail!(
            "not enough memory to try the passphrase: scrypt at the identity file's work factor 2^{log_n} needs {}, and {} is available. Boot this machine with more memory, or build the image with a plain identity file or one protected at a lower work factor",
            human_bytes(need),
            human_bytes(have)
        );
    }
    Ok(())
}

/// How one passphrase attempt went.
#[derive(Debug)]
pub enum Attempt<T> {
    Opened(T),
    Wrong,
    /// Nothing typed (no console, or an empty line): stop asking.
    Cancelled,
}

/// Asks up to [`ATTEMPTS`] times: `ask(n)` gives the n-th passphrase (None: cancelled),
/// `open` tries it. A wrong one is said with the attempts left; any other failure ends at once.
pub fn unlock<T>(
    mut ask: impl FnMut(u32) -> Option<String>,
    mut open: impl FnMut(&str) -> std::result::Result<T, PassphraseError>,
    mut tell: impl FnMut(&str),
) -> Result<Attempt<T>> {
    for n in 1..=ATTEMPTS {
        let Some(p) = ask(n).filter(|p| !p.is_empty()) else {
            return Ok(Attempt::Cancelled);
        };
        match open(&p) {
            Ok(t) => return Ok(Attempt::Opened(t)),
            Err(PassphraseError::Wrong) if n < ATTEMPTS => tell(&format!(
                "Wrong passphrase ({} attempt{} left).",
                ATTEMPTS - n,
                if ATTEMPTS - n == 1 { "" } else { "s" }
            )),
            Err(PassphraseError::Wrong) => tell("Wrong passphrase."),
            Err(PassphraseError::Other(e)) => return Err(anyhow!(e)),
        }
    }
    Ok(Attempt::Wrong)
}

/// The identity opened in this boot (by path), so that it is asked for once.
static OPENED: Mutex<Option<(PathBuf, Identity)>> = Mutex::new(None);

fn opened(path: &Path) -> Option<Identity> {
    let g = OPENED.lock().unwrap_or_else(|p| p.into_inner());
    g.as_ref()
        .filter(|(p, _)| p == path)
        .map(|(_, id)| Identity(id.0.clone()))
}

/// Whether [`load`] would need to ask for a passphrase (for discovery, which never asks).
pub fn needs_passphrase(path: &Path) -> bool {
    if opened(path).is_some() {
        return false;
    }
    std::fs::read(path)
        .ok()
        .and_then(|d| IdentityFile::classify(&d).ok())
        .is_some_and(|k| matches!(k, IdentityFile::Passphrase { .. }))
}

/// The identity in `path`: a plain key at once; a passphrase-protected one after the memory
/// check and the passphrase typed on a console.
pub fn load(path: &Path) -> Result<Identity> {
    if let Some(id) = opened(path) {
        return Ok(id);
    }
    let data = std::fs::read(path).with_context(|| {
        format!(
            "cannot read the age identity {} (build the image with `mkrescue --repo-identity FILE`)",
            path.display()
        )
    })?;
    open(&path.display().to_string(), &data)
}

/// The identity in `data` (named `name` on the console: a file, or where a key file was
/// found), asking for its passphrase when it has one; kept for the rest of the boot.
pub fn open(name: &str, data: &[u8]) -> Result<Identity> {
    let key = PathBuf::from(name);
    if let Some(id) = opened(&key) {
        return Ok(id);
    }
    let log_n = match IdentityFile::classify(data).with_context(|| name.to_string())? {
        IdentityFile::Plain => {
            let text = String::from_utf8_lossy(data);
            return Identity::from_text(&text).with_context(|| name.to_string());
        }
        IdentityFile::Passphrase { log_n } => log_n,
    };
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    memory_check(log_n, &meminfo)
        .with_context(|| format!("the identity {name} is protected by a passphrase"))?;
    say(&format!(
        "The repository identity {name} is protected by a passphrase (scrypt work factor 2^{log_n}: {} of the {} available).",
        human_bytes(scrypt_memory(log_n)),
        human_bytes(mem_available(&meminfo).unwrap_or(0))
    ));
    let ask = |n: u32| {
        flush_input();
        write(&format!(
            "Passphrase for the repository identity (attempt {n} of {ATTEMPTS}, not shown): "
        ));
        read_secret()
    };
    let took = std::cell::Cell::new(0.0);
    let open = |p: &str| {
        say("Checking the passphrase ...");
        let t = std::time::Instant::now();
        let r = Identity::from_passphrase_file(data, p, log_n);
        took.set(t.elapsed().as_secs_f64());
        r
    };
    match unlock(ask, open, say)? {
        Attempt::Opened(id) => {
            say(&format!(
                "Passphrase accepted (scrypt 2^{log_n}: {:.1} s).",
                took.get()
            ));
            let mut g = OPENED.lock().unwrap_or_else(|p| p.into_inner());
            *g = Some((key, Identity(id.0.clone())));
            Ok(id)
        }
        Attempt::Wrong => bail!(
            "{ATTEMPTS} wrong passphrases for the identity {name}: it stays locked. Choose \"Restore from network\" to try again"
        ),
        Attempt::Cancelled => bail!("no passphrase was typed for the identity {name}: it stays locked"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MEMINFO: &str = "MemTotal:         503000 kB\nMemFree:          300000 kB\nMemAvailable:     %AVAIL% kB\nBuffers:               0 kB\n";

    fn meminfo(kib: u64) -> String {
        MEMINFO.replace("%AVAIL%", &kib.to_string())
    }

    #[test]
    fn memory_is_checked_against_the_work_factor_of_the_header() {
        assert_eq!(mem_available(&meminfo(400_000)), Some(400_000 * 1024));
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
        // log_n 18: 256 MiB.
        memory_check(18, &meminfo(300 * 1024)).unwrap();
        let e = memory_check(18, &meminfo(200 * 1024))
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs 256.0 MiB"), "{e}");
        assert!(e.contains("200.0 MiB is available"), "{e}");
        memory_check(16, &meminfo(200 * 1024)).unwrap();
        assert!(memory_check(10, "no such line\n").is_err());
    }

    #[test]
    fn three_attempts_a_wrong_one_said_with_what_is_left() {
        let typed = ["wrong", "right"];
        let mut told = Vec::new();
        let mut asked = 0;
        let r = unlock(
            |n| {
                asked = n;
                typed.get(n as usize - 1).map(|s| s.to_string())
            },
            |p| {
                if p == "right" {
                    Ok(7)
                } else {
                    Err(PassphraseError::Wrong)
                }
            },
            |m| told.push(m.to_string()),
        )
        .unwrap();
        assert!(matches!(r, Attempt::Opened(7)));
        assert_eq!(asked, 2);
        assert_eq!(
            told,
            vec!["Wrong passphrase (2 attempts left).".to_string()]
        );

        let mut told = Vec::new();
        let mut tries = 0;
        let r = unlock(
            |_| Some("nope".into()),
            |_| -> std::result::Result<(), _> {
                tries += 1;
                Err(PassphraseError::Wrong)
            },
            |m| told.push(m.to_string()),
        )
        .unwrap();
        assert!(matches!(r, Attempt::Wrong));
        assert_eq!(tries, ATTEMPTS);
        assert_eq!(told.last().unwrap(), "Wrong passphrase.");

        // A damaged file ends at once; an empty line cancels.
        let e = unlock(
            |_| Some("x".into()),
            |_| -> std::result::Result<(), _> { Err(PassphraseError::Other("damaged".into())) },
            |_| {},
        );
        assert!(e.is_err());
        let r = unlock(
            |_| Some(String::new()),
            |_| -> std::result::Result<(), _> { unreachable!() },
            |_| {},
        )
        .unwrap();
        assert!(matches!(r, Attempt::Cancelled));
    }

    #[test]
    fn a_passphrase_file_is_opened_and_a_plain_one_read_as_before() {
        let d = tempfile::tempdir().unwrap();
        let id = Identity::generate();
        let plain = d.path().join("plain.txt");
        std::fs::write(&plain, id.to_text()).unwrap();
        assert!(!needs_passphrase(&plain));
        assert_eq!(load(&plain).unwrap().recipient(), id.recipient());
        let locked = d.path().join("locked.age");
        std::fs::write(
            &locked,
            lifeboat_repo::crypto::protect_identity(&id.to_text(), "pw", 10).unwrap(),
        )
        .unwrap();
        assert!(needs_passphrase(&locked));
    }
}
