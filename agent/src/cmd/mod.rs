//! One module per command.

use crate::cli::{Cli, Command};
use std::process::ExitCode;

mod backup;
mod host_backup;
mod host_restore;
mod init_store;
mod list;
mod mkrescue;
mod restore;
mod verify;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let quiet = cli.quiet;
    match cli.command {
        c @ Command::Backup { .. } => backup::run(c, quiet),
        c @ Command::HostBackup { .. } => host_backup::run(c, quiet),
        c @ Command::HostRestore { .. } => host_restore::run(c, quiet),
        c @ Command::InitStore { .. } => init_store::run(c, quiet),
        c @ Command::List { .. } => list::run(c, quiet),
        c @ Command::Verify { .. } => verify::run(c, quiet),
        c @ Command::Restore { .. } => restore::run(c, quiet),
        Command::Mkrescue(args) => mkrescue::run(args, quiet),
    }
}
