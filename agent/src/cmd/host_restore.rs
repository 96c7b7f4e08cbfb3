//! `lifeboat host-restore`.

use crate::cli::Command;
use std::process::ExitCode;

pub fn run(_cmd: Command, _quiet: bool) -> anyhow::Result<ExitCode> {
    anyhow::bail!("'host-restore' is not built yet")
}
