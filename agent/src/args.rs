//! xe-style arguments: `file-name=F` is accepted as well as `--file-name F`.
//!
//! A word `key=value` (a lower-case key of letters, digits and dashes) becomes `--key=value`
//! only where it stands as an option of its own and `key` is a long option of the command
//! being parsed. A word that is the value of the option before it (`--append
//! console=ttyS1,115200`) stays a value, and so does everything after `--`. A `key=value`
//! word whose key is no option of the command is refused as the user spelt it.

use clap::Command;
use std::ffi::OsString;

/// A `key=value` word whose key names no option of the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    /// The word as the user typed it, e.g. `bogus-key=1`.
    pub word: String,
    /// The command it was given to, e.g. `lifeboat host-backup`.
    pub command: String,
}

impl std::fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unexpected argument '{}': `{}` has no option named '{}' (see `{} --help`)",
            self.word,
            self.command,
            self.word.split_once('=').map_or("", |(k, _)| k),
            self.command
        )
    }
}

/// Rewrites the xe-style words of `args` (the program name first) for clap, which describes
/// the command line in `cli`.
pub fn normalize(
    cli: &Command,
    args: impl IntoIterator<Item = OsString>,
) -> Result<Vec<OsString>, UnknownKey> {
    let mut out = Vec::new();
    let mut args = args.into_iter();
    if let Some(program) = args.next() {
        out.push(program);
    }
    let mut sub: Option<&Command> = None;
    let mut command_name = cli.get_name().to_string();
    // The previous word was an option that takes a value in the next word.
    let mut value_next = false;
    let mut passthrough = false;
    for arg in args {
        if passthrough || value_next {
            value_next = false;
            out.push(arg);
            continue;
        }
        let Some(s) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if s == "--" {
            passthrough = true;
        } else if let Some(long) = s.strip_prefix("--") {
            value_next =
                !long.contains('=') && takes_value(cli, sub, |a| a.get_long() == Some(long));
        } else if let Some(shorts) = s.strip_prefix('-').filter(|r| !r.is_empty()) {
            // `-q`, or a cluster of short flags; the last one may take the next word.
            value_next = shorts.chars().last().is_some_and(|c| {
                shorts.len() == 1 && takes_value(cli, sub, |a| a.get_short() == Some(c))
            });
        } else if let Some((key, _)) = xe_pair(s) {
            if has_long(cli, sub, key) {
                out.push(OsString::from(format!("--{s}")));
                continue;
            }
            return Err(UnknownKey {
                word: s.to_string(),
                command: command_name,
            });
        } else if sub.is_none() {
            sub = cli.find_subcommand(s);
            if let Some(c) = sub {
                command_name = format!("{} {}", cli.get_name(), c.get_name());
            }
        }
        out.push(arg);
    }
    Ok(out)
}

/// `key` and `value` of a `key=value` word with an xe-style key.
fn xe_pair(s: &str) -> Option<(&str, &str)> {
    let (key, value) = s.split_once('=')?;
    let ok = key.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then_some((key, value))
}

/// The arguments in force: the subcommand's, then the top level's (global options).
fn arguments<'a>(
    cli: &'a Command,
    sub: Option<&'a Command>,
) -> impl Iterator<Item = &'a clap::Arg> {
    sub.into_iter()
        .flat_map(Command::get_arguments)
        .chain(cli.get_arguments())
}

fn has_long(cli: &Command, sub: Option<&Command>, key: &str) -> bool {
    arguments(cli, sub).any(|a| {
        a.get_long() == Some(key)
            || a.get_all_aliases()
                .is_some_and(|aliases| aliases.contains(&key))
    })
}

fn takes_value(cli: &Command, sub: Option<&Command>, matches: impl Fn(&clap::Arg) -> bool) -> bool {
    arguments(cli, sub)
        .find(|a| matches(a))
        .is_some_and(|a| a.get_action().takes_values())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn norm(v: &[&str]) -> Result<Vec<String>, UnknownKey> {
        let cli = crate::cli::Cli::command();
        normalize(&cli, v.iter().map(OsString::from)).map(|args| {
            args.into_iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect()
        })
    }

    #[test]
    fn xe_pairs_become_long_options() {
        assert_eq!(
            norm(&[
                "lifeboat",
                "host-backup",
                "file-name=/tmp/x.xbk",
                "--compress",
                "gzip"
            ])
            .unwrap(),
            [
                "lifeboat",
                "host-backup",
                "--file-name=/tmp/x.xbk",
                "--compress",
                "gzip"
            ]
        );
    }

    #[test]
    fn values_and_paths_are_left_alone() {
        assert_eq!(
            norm(&["lifeboat", "restore", "latest", "/a=b", "--", "x=y"]).unwrap(),
            ["lifeboat", "restore", "latest", "/a=b", "--", "x=y"]
        );
    }

    #[test]
    fn a_value_with_an_equals_sign_stays_a_value() {
        assert_eq!(
            norm(&[
                "lifeboat",
                "mkrescue",
                "--append",
                "console=ttyS1,115200",
                "--output",
                "out=dir",
                "pxe=/srv/tftp",
            ])
            .unwrap(),
            [
                "lifeboat",
                "mkrescue",
                "--append",
                "console=ttyS1,115200",
                "--output",
                "out=dir",
                "--pxe=/srv/tftp",
            ]
        );
        // The same with the value attached, and after a repeatable option.
        assert_eq!(
            norm(&["lifeboat", "host-backup", "--exclude", "a=b", "--append=x"]).unwrap(),
            ["lifeboat", "host-backup", "--exclude", "a=b", "--append=x"]
        );
    }

    #[test]
    fn a_flag_does_not_take_the_next_word() {
        assert_eq!(
            norm(&["lifeboat", "-q", "restore", "--force", "file-name=b.xbk"]).unwrap(),
            ["lifeboat", "-q", "restore", "--force", "--file-name=b.xbk"]
        );
        assert_eq!(
            norm(&["lifeboat", "verify", "--quiet", "file-name=b.xbk"]).unwrap(),
            ["lifeboat", "verify", "--quiet", "--file-name=b.xbk"]
        );
    }

    #[test]
    fn plan_takes_its_targets_xe_style() {
        assert_eq!(
            norm(&[
                "lifeboat",
                "plan",
                "latest",
                "target=PARTUUID=abc",
                "--json"
            ])
            .unwrap(),
            [
                "lifeboat",
                "plan",
                "latest",
                "--target=PARTUUID=abc",
                "--json"
            ]
        );
        assert_eq!(
            norm(&["lifeboat", "plan", "target-disk=/dev/sdb"]).unwrap(),
            ["lifeboat", "plan", "--target-disk=/dev/sdb"]
        );
        // A tag given as the value of --target stays a value.
        assert_eq!(
            norm(&["lifeboat", "plan", "--target", "LABEL=root-x"]).unwrap(),
            ["lifeboat", "plan", "--target", "LABEL=root-x"]
        );
    }

    #[test]
    fn an_unknown_key_is_reported_as_typed() {
        let err = norm(&["lifeboat", "host-backup", "bogus-key=1"]).unwrap_err();
        assert_eq!(err.word, "bogus-key=1");
        assert_eq!(err.command, "lifeboat host-backup");
        let msg = err.to_string();
        assert!(msg.contains("'bogus-key=1'"), "{msg}");
        assert!(!msg.contains("--bogus-key"), "{msg}");
        // An option of another command is unknown here too.
        let err = norm(&["lifeboat", "list", "target-dir=/mnt"]).unwrap_err();
        assert_eq!(err.word, "target-dir=/mnt");
    }
}
