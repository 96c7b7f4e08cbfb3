//! `host=H`: host-backup, host-restore, list and verify run on H over ssh, as `xe ... host=`
//! drives a pool member from a workstation. This is the one place that builds and runs the ssh
//! command.
//!
//! Lifeboat runs `ssh [-o OPT]... -T -- H lifeboat WORDS... [--file-name=-]`: the
//! administrator's OpenSSH access (ssh's config, keys and known_hosts are ssh's business). The
//! far side's version is checked first (`lifeboat --version`; a different major.minor is
//! refused). The archive goes over ssh's stdin (host-restore, verify file-name=F) or stdout
//! (host-backup), to or from the file named here; ssh's stderr (the far side's messages) is
//! passed through, and the far side's exit status becomes ours. A host-restore whose upload is
//! cut ends in a truncated archive on the far side, which host-restore never commits.

use crate::cli::{Cli, Command, RemoteArgs};
use crate::cmd::host_backup::{destination, Destination};
use crate::ui::Bar;
use anyhow::{bail, Context};
use clap::CommandFactory;
use lifeboat_core::progress::Progress;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The status ssh exits with when it failed itself (no connection, host key, authentication).
const SSH_FAILED: i32 = 255;
/// The status a POSIX shell gives for a command it cannot find.
const NOT_FOUND: i32 = 127;
const BUFFER: usize = 1 << 20;
/// How long the sender of an upload may take to finish after ssh has ended.
const SENDER_GRACE: Duration = Duration::from_secs(2);

/// Which way the archive goes.
pub(crate) enum Stream {
    /// Nothing but messages (list, verify of the far store).
    None,
    /// From this file to the far side's stdin (`-`: our stdin).
    Upload(PathBuf),
    /// From the far side's stdout to this file (`-`: our stdout).
    Download(PathBuf),
}

pub(crate) fn stream_of(command: &Command) -> Stream {
    match command {
        Command::HostBackup(a) => Stream::Download(a.file_name.clone()),
        Command::HostRestore(a) => a.file_name.clone().map_or(Stream::None, Stream::Upload),
        Command::Verify(a) => a
            .archive
            .file_name
            .clone()
            .map_or(Stream::None, Stream::Upload),
        _ => Stream::None,
    }
}

/// Runs `command` (given `host=H`) on H and returns the far side's exit status.
pub fn run(command: &Command, remote: &RemoteArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let host = remote.host.as_deref().unwrap_or_default();
    if host.is_empty() || host.starts_with('-') {
        bail!("host={host:?} is no host name: give host=NAME or host=USER@NAME");
    }
    let ssh = lifeboat_core::programs::find_program("ssh").context(
        "host= needs OpenSSH's ssh, which is not on PATH: install it (openssh-client) or run \
         the command on the host itself",
    )?;
    let stream = stream_of(command);
    let words = far_words_of_this_run(&stream)?;
    let line = shlex::try_join(std::iter::once("lifeboat").chain(words.iter().map(String::as_str)))
        .context("an argument cannot be passed through ssh (it holds a NUL byte)")?;
    // What cannot work is refused before anything is sent.
    let dest = match &stream {
        Stream::Download(f) => Some(destination(f)?),
        _ => None,
    };
    let ssh_cmd = |far: &str| {
        let mut c = std::process::Command::new(&ssh);
        for o in &remote.ssh_options {
            c.arg("-o").arg(o);
        }
        c.args(["-T", "--", host, far]);
        c
    };
    check_version(ssh_cmd("lifeboat --version"), host)?;
    let mut cmd = ssh_cmd(&line);
    let bar = Bar::leaked(quiet, None);
    let status = match (stream, dest) {
        (Stream::Download(_), Some(dest)) => download(cmd, dest, bar, host)?,
        (Stream::Upload(from), _) => upload(cmd, &from, bar, host)?,
        _ => cmd
            .stdin(Stdio::null())
            .status()
            .with_context(|| format!("cannot run {}", ssh.display()))?,
    };
    bar.finish();
    exit_of(status, host)
}

/// The words the far side runs for this invocation (whatever the transport): our own command
/// line, normalised as the parser reads it, then `far_words`.
pub(crate) fn far_words_of_this_run(stream: &Stream) -> anyhow::Result<Vec<String>> {
    let local = crate::args::normalize(&Cli::command(), std::env::args_os())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let local = local
        .into_iter()
        .skip(1)
        .map(|w| {
            w.into_string()
                .map_err(|w| anyhow::anyhow!("argument {w:?} is not UTF-8: host= cannot pass it"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(far_words(&local, !matches!(stream, Stream::None)))
}

/// The words the far side runs: ours without host=, ssh-option= and file-name= (the archive
/// streams through ssh: `--file-name=-` when `stream`).
pub(crate) fn far_words(local: &[String], stream: bool) -> Vec<String> {
    const LOCAL_ONLY: [&str; 8] = [
        "--host",
        "--ssh-option",
        "--file-name",
        "--transport",
        "--ca",
        "--cert",
        "--key",
        "--token-file",
    ];
    let mut out = Vec::new();
    let mut skip_next = false;
    for w in local {
        if skip_next {
            skip_next = false;
            continue;
        }
        if LOCAL_ONLY.contains(&w.as_str()) {
            skip_next = true;
            continue;
        }
        if LOCAL_ONLY
            .iter()
            .any(|o| w.strip_prefix(o).is_some_and(|r| r.starts_with('=')))
        {
            continue;
        }
        out.push(w.clone());
    }
    if stream {
        out.push("--file-name=-".to_string());
    }
    out
}

/// Refuses a far side whose `lifeboat --version` is not our major.minor.
fn check_version(mut cmd: std::process::Command, host: &str) -> anyhow::Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run ssh")?;
    match out.status.code() {
        Some(0) => {}
        Some(NOT_FOUND) => bail!(
            "{host} has no `lifeboat` on the PATH of ssh commands (the far shell's message is \
             above): install the same Lifeboat version there"
        ),
        Some(SSH_FAILED) | None => {
            exit_of(out.status, host)?;
        }
        Some(_) => bail!(
            "`lifeboat --version` failed on {host} ({}): is Lifeboat installed there?",
            out.status
        ),
    }
    let theirs = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let ours = env!("CARGO_PKG_VERSION");
    let far = theirs.strip_prefix("lifeboat ").unwrap_or(&theirs);
    if major_minor(far).is_none() || major_minor(far) != major_minor(ours) {
        bail!(
            "{host} runs Lifeboat {far:?} and this is Lifeboat {ours}: the major.minor \
             versions must match (the archive and arguments may differ); install Lifeboat \
             {ours} on {host} or run this command with the version {host} has"
        );
    }
    Ok(())
}

pub(crate) fn major_minor(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Our exit status from ssh's: the far command's own, or an error when ssh failed or died.
fn exit_of(status: ExitStatus, host: &str) -> anyhow::Result<ExitCode> {
    match status.code() {
        Some(SSH_FAILED) => bail!(
            "ssh to {host} failed (status 255): it could not connect, the host key was refused \
             or authentication failed; ssh's own message is above (check that `ssh {host} true` \
             works, with the same ssh-option= settings)"
        ),
        Some(n) => Ok(ExitCode::from(
            u8::try_from(n).unwrap_or(crate::exit::ERROR),
        )),
        None => bail!(
            "ssh to {host} was ended by a signal ({status}) before the far command finished: \
             nothing it was sending can be trusted; run the command again"
        ),
    }
}

/// Copies `from` to `to`, counting on `bar`.
pub(crate) fn pump(mut from: impl Read, mut to: impl Write, bar: &Bar) -> std::io::Result<u64> {
    let mut buf = vec![0u8; BUFFER];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
        bar.advance(n as u64);
    }
    to.flush()?;
    Ok(total)
}

/// host-backup host=H: the far side's stdout into `dest` (a file is written beside and renamed
/// into place only when the far side exits 0 or 1, as host-backup does locally).
fn download(
    mut cmd: std::process::Command,
    dest: Destination,
    bar: &Bar,
    host: &str,
) -> anyhow::Result<ExitStatus> {
    bar.set_total(None);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run ssh")?;
    let out: ChildStdout = child.stdout.take().context("ssh has no stdout pipe")?;
    let from = format!("the archive from {host}");
    let copied = match &dest {
        Destination::Stdout => pump(out, std::io::stdout().lock(), bar)
            .with_context(|| format!("copying {from} to stdout")),
        Destination::Node(node, file) => {
            pump(out, file, bar).with_context(|| format!("copying {from} to '{}'", node.display()))
        }
        Destination::File { partial, .. } => File::create(partial)
            .with_context(|| format!("cannot create '{}'", partial.display()))
            .and_then(|f| {
                pump(out, &f, bar)
                    .and_then(|n| f.sync_all().map(|()| n))
                    .with_context(|| format!("copying {from} to '{}'", partial.display()))
            }),
    };
    let status = child.wait().context("waiting for ssh")?;
    let complete = copied.is_ok() && matches!(status.code(), Some(0 | 1));
    dest.finish(complete)?;
    copied?;
    Ok(status)
}

/// host-restore / verify file-name=F host=H: `from` into the far side's stdin.
fn upload(
    mut cmd: std::process::Command,
    from: &Path,
    bar: &'static Bar,
    host: &str,
) -> anyhow::Result<ExitStatus> {
    let input: Box<dyn Read + Send> = if from.as_os_str() == "-" {
        bar.set_total(None);
        Box::new(std::io::stdin())
    } else {
        let f = File::open(from)
            .with_context(|| format!("cannot open the archive '{}'", from.display()))?;
        bar.set_total(f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len()));
        Box::new(f)
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .spawn()
        .context("cannot run ssh")?;
    let stdin = child.stdin.take().context("ssh has no stdin pipe")?;
    let sender = std::thread::spawn(move || pump(input, stdin, bar));
    let status = child.wait().context("waiting for ssh")?;
    // Once ssh has ended, the sender may still wait for input that is no longer wanted (a
    // FIFO whose writer stalls): it is left behind, and the upload counts as incomplete.
    let deadline = Instant::now() + SENDER_GRACE;
    while !sender.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if !sender.is_finished() {
        if status.success() {
            bail!(
                "{host} finished before '{}' was sent in full: the far side's verdict does not \
                 cover all of it",
                from.display()
            );
        }
        return Ok(status);
    }
    match sender.join() {
        Ok(Ok(_)) => {}
        // The far side stopped reading: its status and message say why.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Ok(Err(e)) if status.success() => {
            return Err(e).with_context(|| format!("sending '{}' to {host}", from.display()))
        }
        Ok(Err(e)) => eprintln!(
            "lifeboat: error: sending '{}' to {host}: {e}",
            from.display()
        ),
        Err(_) => bail!("the thread sending '{}' to {host} failed", from.display()),
    }
    Ok(status)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_far_side_gets_our_words_without_the_local_ones() {
        let local = words(&[
            "host-restore",
            "--host=dom0",
            "--ssh-option",
            "Port=2222",
            "--file-name=/tmp/x.xbk",
            "--force",
        ]);
        assert_eq!(
            far_words(&local, true),
            words(&["host-restore", "--force", "--file-name=-"])
        );
        let local = words(&["-q", "list", "--host", "dom0", "--json"]);
        assert_eq!(far_words(&local, false), words(&["-q", "list", "--json"]));
    }

    #[test]
    fn versions_compare_by_major_and_minor() {
        assert_eq!(major_minor("0.1.7"), Some((0, 1)));
        assert_eq!(major_minor("1.2"), Some((1, 2)));
        assert_eq!(major_minor("x"), None);
    }
}
