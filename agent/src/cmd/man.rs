//! `lifeboat man DIR` and `lifeboat completions SHELL`: the man pages (section 8) and the
//! shell completions, generated from the clap definitions, so they cannot drift from
//! `lifeboat help COMMAND`. Both are hidden from `--help`: `make dist` runs them for the
//! packages, which install the results.

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The section every page ends with: the table of [`crate::exit`] (and README's).
const EXIT_STATUS: &str = r#".SH "EXIT STATUS"
.TP
0
Done.
.TP
1
Complete but not consistent (a file kept changing while it was read), or damage found by
\fBverify\fR.
.TP
2
Error: bad arguments, a refusal, a file that is not a Lifeboat or tar archive, anything else.
.TP
11
The backup store is locked by another Lifeboat run (named in the message); run again later.
.TP
12
\fBlifeboat serve\fR is busy (max_concurrent requests running); run again later.
.PP
\fBstatus \-\-check\fR exits as monitoring plugins do: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
"#;

/// Every page: `lifeboat.8` and one `lifeboat-COMMAND.8` per visible command, as (file
/// name, roff text).
pub fn pages() -> Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    let subs: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    for c in std::iter::once(cmd).chain(subs) {
        let man = clap_mangen::Man::new(c)
            .section("8")
            .manual("Lifeboat")
            .source(format!("lifeboat {}", env!("CARGO_PKG_VERSION")));
        let mut text = Vec::new();
        man.render(&mut text)
            .with_context(|| format!("cannot render the man page {}", man.get_filename()))?;
        text.extend_from_slice(EXIT_STATUS.as_bytes());
        out.push((man.get_filename(), text));
    }
    Ok(out)
}

pub fn run_man(args: ManArgs, quiet: bool) -> Result<ExitCode> {
    write_pages(&args.dir, quiet)?;
    Ok(ExitCode::SUCCESS)
}

fn write_pages(dir: &Path, quiet: bool) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    for (name, text) in pages()? {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        if !quiet {
            println!("{}", path.display());
        }
        written.push(path);
    }
    Ok(written)
}

pub fn run_completions(args: CompletionsArgs) -> Result<ExitCode> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "lifeboat", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::collections::BTreeSet;

    /// Every `--long-option` named in a text.
    fn options(text: &str) -> BTreeSet<String> {
        let mut set = BTreeSet::new();
        let bytes = text.as_bytes();
        let mut i = 0;
        while let Some(at) = text[i..].find("--") {
            let start = i + at;
            let mut end = start + 2;
            while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'-') {
                end += 1;
            }
            if end > start + 2 && (start == 0 || !bytes[start - 1].is_ascii_alphanumeric()) {
                set.insert(text[start..end].trim_end_matches('-').to_string());
            }
            i = end;
        }
        set
    }

    /// What `lifeboat help COMMAND` prints.
    fn help(command: &str) -> String {
        match Cli::try_parse_from(["lifeboat", "help", command]) {
            Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => e.render().to_string(),
            other => panic!("lifeboat help {command}: {other:?}"),
        }
    }

    #[test]
    fn help_and_the_man_page_list_the_same_options() {
        let pages = pages().unwrap();
        let names: Vec<_> = pages.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"lifeboat.8"), "{names:?}");
        assert!(names.contains(&"lifeboat-backup.8"), "{names:?}");
        assert!(
            !names.contains(&"lifeboat-man.8"),
            "hidden commands have no page"
        );
        let cmd = Cli::command();
        let mut checked = 0;
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let name = sub.get_name();
            let page = &pages
                .iter()
                .find(|(n, _)| *n == format!("lifeboat-{name}.8"))
                .unwrap_or_else(|| panic!("no man page for {name}"))
                .1;
            // roff writes a dash as `\-`, words in \fB...\fR.
            // The options, not the exit status section every page ends with.
            let text = String::from_utf8(page.clone()).unwrap();
            let options_part = text.split(".SH \"EXIT STATUS\"").next().unwrap();
            let mut roff = options_part.replace("\\-", "-");
            for font in ["\\fB", "\\fI", "\\fR"] {
                roff = roff.replace(font, " ");
            }
            let in_man = options(&roff);
            let in_help = options(&help(name));
            assert_eq!(
                in_man, in_help,
                "lifeboat help {name} and its man page differ"
            );
            assert!(in_help.contains("--help"), "{name}: {in_help:?}");
            checked += 1;
        }
        assert!(checked >= 12, "only {checked} commands checked");
        let backup = options(&help("backup"));
        for o in ["--keep", "--backup-device", "--exclude", "--pre-hook"] {
            assert!(backup.contains(o), "{backup:?}");
        }
    }

    #[test]
    fn pages_are_written_and_completions_name_the_commands() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_pages(dir.path(), true).unwrap();
        assert!(written.iter().any(|p| p.ends_with("lifeboat-status.8")));
        let page = std::fs::read_to_string(dir.path().join("lifeboat-backup.8")).unwrap();
        assert!(page.contains(".SH \"EXIT STATUS\"\n.TP\n0\n"), "{page}");
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "lifeboat", &mut out);
            let text = String::from_utf8(out).unwrap();
            for word in ["host-backup", "install-units", "--backup-device"] {
                assert!(text.contains(word), "{shell}: no {word}");
            }
        }
    }
}
