//! `lbtest-backup ROOT OUT [zstd|gzip|xz|none]`: writes an archive of ROOT with the library
//! (walker, archive writer, codec), for shell tests that run before `lifeboat host-backup`
//! exists or need an archive made independently of it.

use anyhow::{bail, Context, Result};
use lifeboat_core::codec::Codec;
use std::path::PathBuf;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (root, out, codec) = match args.as_slice() {
        [r, o] => (r, o, "zstd"),
        [r, o, c] => (r, o, c.as_str()),
        _ => bail!("usage: lbtest-backup ROOT OUT [zstd|gzip|xz|none]"),
    };
    let codec = Codec::from_name(codec).context("unknown codec")?;
    lifeboat_tests::backup::backup_tree(&PathBuf::from(root), &PathBuf::from(out), codec)
}
