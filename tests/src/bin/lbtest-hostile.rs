//! `lbtest-hostile DIR CANARY`: writes hostile tar archives into DIR (`refused-*.tar` must be
//! refused by `lifeboat restore`, absolute names included, `accepted-*.tar` restored
//! harmlessly), each trying to write into the absolute directory CANARY.

use anyhow::{bail, Result};
use std::path::PathBuf;

fn main() -> Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [dir, canary] = args.as_slice() else {
        bail!("usage: lbtest-hostile DIR CANARY")
    };
    if !canary.is_absolute() {
        bail!("CANARY must be an absolute path");
    }
    for name in lifeboat_tests::hostile::write_all(dir, canary)? {
        println!("{name}.tar");
    }
    Ok(())
}
