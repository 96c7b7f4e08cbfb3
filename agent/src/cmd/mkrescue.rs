//! `lifeboat mkrescue`.

use crate::cli::MkrescueArgs;
use std::process::ExitCode;

pub fn run(_args: MkrescueArgs, _quiet: bool) -> anyhow::Result<ExitCode> {
    anyhow::bail!("'mkrescue' is not built yet")
}
