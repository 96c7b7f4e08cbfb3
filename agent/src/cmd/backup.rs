//! `lifeboat backup`.

use crate::cli::Command;
use std::process::ExitCode;

pub fn run(_cmd: Command, _quiet: bool) -> anyhow::Result<ExitCode> {
    anyhow::bail!("'backup' is not built yet")
}
