//! `lbtest-store set-identity STORE_ROOT --machine-uuid U --machine-serial S --disk-serial S
//! --disk-size BYTES --disk-name NAME --table gpt|dos --partuuid P --partition N`: sets the
//! recorded machine, disk and partition identity of every generation of the store mounted at
//! STORE_ROOT, through core's own store types (a schema change breaks this build, not the
//! tests). The QEMU tests back up on the test machine and restore in a guest: this makes the
//! backup look as if it had been taken in that guest.

use anyhow::{bail, Context, Result};
use lifeboat_core::store::Store;
use std::collections::BTreeMap;
use std::path::PathBuf;

const USAGE: &str =
    "usage: lbtest-store set-identity STORE_ROOT --machine-uuid U --machine-serial S \
--disk-serial S --disk-size BYTES --disk-name NAME --table gpt|dos --partuuid P --partition N";

const KEYS: [&str; 8] = [
    "--machine-uuid",
    "--machine-serial",
    "--disk-serial",
    "--disk-size",
    "--disk-name",
    "--table",
    "--partuuid",
    "--partition",
];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [cmd, root, rest @ ..] = args.as_slice() else {
        bail!("{USAGE}");
    };
    if cmd != "set-identity" {
        bail!("unknown subcommand {cmd:?}\n{USAGE}");
    }
    let mut opts = BTreeMap::new();
    let mut it = rest.iter();
    while let Some(k) = it.next() {
        if !KEYS.contains(&k.as_str()) {
            bail!("unknown option {k:?}\n{USAGE}");
        }
        let v = it
            .next()
            .with_context(|| format!("{k} needs a value\n{USAGE}"))?;
        opts.insert(k.as_str(), v.clone());
    }
    let get = |k: &str| -> Result<String> {
        opts.get(k)
            .cloned()
            .with_context(|| format!("{k} is required\n{USAGE}"))
    };
    let root = PathBuf::from(root);
    let store =
        Store::open(&root).with_context(|| format!("opening the store at {}", root.display()))?;
    let gens = store.generations()?;
    if gens.is_empty() {
        bail!("the store at {} has no generation", root.display());
    }
    for g in gens {
        let mut meta = g.meta;
        let Some(m) = meta.manifest.as_mut() else {
            bail!("generation {} has no manifest", g.id);
        };
        m.machine.product_uuid = Some(get("--machine-uuid")?);
        m.machine.product_serial = Some(get("--machine-serial")?);
        let disk = &mut m.source.disk;
        disk.serial = Some(get("--disk-serial")?);
        disk.size_bytes = get("--disk-size")?.parse().context("--disk-size")?;
        disk.kernel_name = Some(get("--disk-name")?);
        disk.table_type = Some(get("--table")?);
        let part = &mut m.source.partition;
        part.partuuid = Some(get("--partuuid")?.to_lowercase());
        part.number = Some(get("--partition")?.parse().context("--partition")?);
        let path = g.dir.join(lifeboat_core::store::layout::META);
        let text = serde_json::to_vec_pretty(&meta)?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("{}: identity set", path.display());
    }
    Ok(())
}
