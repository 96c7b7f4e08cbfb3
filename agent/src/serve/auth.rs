//! Who a client of `lifeboat serve` is and what it may do: the name and role of its
//! certificate (CN and OU, issued by `lifeboat ca issue`), or of its token (`lifeboat token`).
//!
//! The tokens file has one line per token, `NAME ROLE BLAKE3-HEX` (the token itself is shown
//! once by `token add` and kept nowhere); it is read again for every request, so `token add`
//! and `token remove` take effect at once.

use crate::cli::{Command, Role, TokenCommand};
use anyhow::{bail, Context};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Default tokens file.
pub const TOKENS_FILE: &str = "/etc/lifeboat/serve-tokens";

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Backup => "backup",
            Role::Restore => "restore",
            Role::Admin => "admin",
            Role::Server => "server",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Backup, Role::Restore, Role::Admin, Role::Server]
            .into_iter()
            .find(|r| r.name() == s)
    }

    /// May a client of this role run `command`? A backup credential never restores.
    pub fn allows(self, command: &Command) -> bool {
        match (self, command) {
            (Role::Server, _) => false,
            (_, Command::HostBackup(_) | Command::List(_) | Command::Verify(_)) => true,
            (Role::Restore | Role::Admin, Command::HostRestore(_)) => true,
            _ => false,
        }
    }
}

/// A client that proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub role: Role,
    /// "certificate" or "token".
    pub via: &'static str,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} by {})", self.name, self.role.name(), self.via)
    }
}

/// The identity in a client certificate the server's verifier accepted (CN, and the role in
/// OU).
pub fn of_certificate(der: &[u8]) -> Result<Identity, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("the client certificate cannot be read: {e}"))?;
    let subject = cert.subject();
    let cn = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .ok_or("the client certificate has no common name")?;
    let ou = subject
        .iter_organizational_unit()
        .next()
        .and_then(|a| a.as_str().ok())
        .ok_or("the client certificate has no role (OU); issue it with `lifeboat ca issue`")?;
    let role = Role::parse(ou)
        .ok_or_else(|| format!("the client certificate's role {ou:?} is unknown"))?;
    Ok(Identity {
        name: cn.to_string(),
        role,
        via: "certificate",
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    role: Role,
    hash: blake3::Hash,
}

fn parse_tokens(text: &str, file: &Path) -> anyhow::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || {
            anyhow::anyhow!(
                "{}:{}: not `NAME ROLE BLAKE3-HEX`; fix or remove the line (lifeboat token \
                 remove NAME)",
                file.display(),
                n + 1
            )
        };
        let mut w = line.split_whitespace();
        let (Some(name), Some(role), Some(hash), None) = (w.next(), w.next(), w.next(), w.next())
        else {
            return Err(bad());
        };
        let role = Role::parse(role).ok_or_else(bad)?;
        let hash = blake3::Hash::from_hex(hash).map_err(|_| bad())?;
        out.push(Entry {
            name: name.to_string(),
            role,
            hash,
        });
    }
    Ok(out)
}

fn read_tokens(file: &Path) -> anyhow::Result<Vec<Entry>> {
    match std::fs::read_to_string(file) {
        Ok(t) => parse_tokens(&t, file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => {
            Err(e).with_context(|| format!("cannot read the tokens file '{}'", file.display()))
        }
    }
}

/// The identity a token stands for, if the tokens file has it (compared by hash; BLAKE3's
/// `Hash` compares in constant time).
pub fn of_token(file: &Path, token: &str) -> anyhow::Result<Option<Identity>> {
    let hash = blake3::hash(token.trim().as_bytes());
    Ok(read_tokens(file)?
        .into_iter()
        .find(|e| e.hash == hash)
        .map(|e| Identity {
            name: e.name,
            role: e.role,
            via: "token",
        }))
}

fn write_tokens(file: &Path, entries: &[Entry]) -> anyhow::Result<()> {
    let mut text = String::from(
        "# lifeboat serve tokens: NAME ROLE BLAKE3(token) (lifeboat token add|list|remove)\n",
    );
    for e in entries {
        text.push_str(&format!(
            "{} {} {}\n",
            e.name,
            e.role.name(),
            e.hash.to_hex()
        ));
    }
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create '{}'", dir.display()))?;
    }
    let tmp = file.with_extension("new");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write '{}'", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write '{}'", tmp.display()))?;
    std::fs::rename(&tmp, file)
        .with_context(|| format!("cannot rename '{}' to '{}'", tmp.display(), file.display()))
}

fn tokens_file(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(f) = given {
        return Ok(f);
    }
    let cfg = crate::config::load()?;
    Ok(cfg
        .serve
        .and_then(|s| s.tokens)
        .unwrap_or_else(|| PathBuf::from(TOKENS_FILE)))
}

/// `lifeboat token add|list|remove`.
pub fn run(cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TokenCommand::Add {
            name,
            role,
            tokens_file: f,
        } => {
            let file = tokens_file(f)?;
            if role == Role::Server {
                bail!("--role server is for the server's certificate; a token's role is backup, restore or admin");
            }
            if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                bail!("token name {name:?} must be one word without spaces");
            }
            let mut entries = read_tokens(&file)?;
            if entries.iter().any(|e| e.name == name) {
                bail!(
                    "'{}' already has a token named {name}: remove it first (lifeboat token remove {name})",
                    file.display()
                );
            }
            let secret: [u8; 32] = rand::random();
            let token = format!("lbt_{}", hex::encode(secret));
            entries.push(Entry {
                name: name.clone(),
                role,
                hash: blake3::hash(token.as_bytes()),
            });
            write_tokens(&file, &entries)?;
            eprintln!(
                "lifeboat: token {name} ({}) added to '{}'; it is shown once, below: keep it in a file \
                 (mode 600) and give token-file=FILE",
                role.name(),
                file.display()
            );
            println!("{token}");
        }
        TokenCommand::List { tokens_file: f } => {
            let file = tokens_file(f)?;
            for e in read_tokens(&file)? {
                println!("{} {}", e.name, e.role.name());
            }
        }
        TokenCommand::Remove {
            name,
            tokens_file: f,
        } => {
            let file = tokens_file(f)?;
            let mut entries = read_tokens(&file)?;
            let before = entries.len();
            entries.retain(|e| e.name != name);
            if entries.len() == before {
                bail!(
                    "'{}' has no token named {name} (lifeboat token list)",
                    file.display()
                );
            }
            write_tokens(&file, &entries)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser;

    fn command(words: &[&str]) -> Command {
        let mut all = vec!["lifeboat"];
        all.extend_from_slice(words);
        crate::cli::Cli::try_parse_from(all).unwrap().command
    }

    #[test]
    fn a_backup_credential_never_restores() {
        let restore = command(&["host-restore", "--file-name=-"]);
        let backup = command(&["host-backup", "--file-name=-"]);
        let list = command(&["list"]);
        assert!(!Role::Backup.allows(&restore));
        assert!(Role::Backup.allows(&backup) && Role::Backup.allows(&list));
        assert!(Role::Restore.allows(&restore) && Role::Admin.allows(&restore));
        assert!(!Role::Server.allows(&list));
        assert!(!Role::Admin.allows(&command(&["backup"])));
    }

    #[test]
    fn tokens_are_found_by_hash_and_bad_lines_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tokens");
        let e = Entry {
            name: "pool1".into(),
            role: Role::Backup,
            hash: blake3::hash(b"lbt_secret"),
        };
        write_tokens(&f, &[e]).unwrap();
        let id = of_token(&f, "lbt_secret\n").unwrap().unwrap();
        assert_eq!((id.name.as_str(), id.role), ("pool1", Role::Backup));
        assert!(of_token(&f, "lbt_other").unwrap().is_none());
        assert!(!std::fs::read_to_string(&f).unwrap().contains("lbt_secret"));
        std::fs::write(&f, "x admin nothex\n").unwrap();
        assert!(of_token(&f, "a").is_err());
    }
}
