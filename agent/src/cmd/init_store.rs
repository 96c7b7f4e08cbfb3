//! `lifeboat init-store`.

use crate::cli::Command;
use std::process::ExitCode;

pub fn run(_cmd: Command, _quiet: bool) -> anyhow::Result<ExitCode> {
    anyhow::bail!("'init-store' is not built yet")
}
