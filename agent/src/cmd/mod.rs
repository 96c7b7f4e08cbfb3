//! One module per command; what they share is in [`common`].

use crate::cli::{Cli, Command};
use std::process::ExitCode;

mod backup;
mod common;
mod copy;
mod host_backup;
mod host_restore;
mod init_store;
mod list;
mod mkrescue;
mod plan;
mod repo;
mod restore;
mod verify;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Backup(args) => backup::run(args, quiet),
        Command::HostBackup(args) => host_backup::run(args, quiet),
        Command::HostRestore(args) => host_restore::run(args, quiet),
        Command::InitStore(args) => init_store::run(args, quiet),
        Command::List(args) => list::run(args, quiet),
        Command::Verify(args) => verify::run(args, quiet),
        Command::Restore(args) => restore::run(args, quiet),
        Command::Mkrescue(args) => mkrescue::run(args, quiet),
        Command::Plan(args) => plan::run(args, quiet),
        Command::Copy(args) => copy::run(args, quiet),
        Command::Repo(cmd) => repo::run(cmd, quiet),
        Command::Push(args) => repo::push(args, quiet),
    }
}
