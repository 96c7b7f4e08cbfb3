//! `lbtest-layout recreate MANIFEST.json DISK_INDEX DEV`: writes the partition table recorded
//! as `source.disks[DISK_INDEX]` in a Lifeboat manifest onto DEV (a blank disk or image) with
//! core's writer (`identity::gpt_write::write_table`), then the recorded BIOS boot partition
//! bytes (`identity::layout::bios_boot_bytes`) at their partition's offset: what the recovery
//! image's executor does for a new disk, so that tests/root/40-disk-layout.sh can compare the
//! result with the original disk.

use anyhow::{bail, Context, Result};
use lifeboat_core::archive::disk_layout::PartitionContent;
use lifeboat_core::archive::manifest::Manifest;
use lifeboat_core::identity::{gpt_write, layout};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

const USAGE: &str = "usage: lbtest-layout recreate MANIFEST.json DISK_INDEX DEV";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [cmd, manifest, index, dev] = args.as_slice() else {
        bail!("{USAGE}");
    };
    if cmd != "recreate" {
        bail!("{USAGE}");
    }
    let text =
        std::fs::read_to_string(manifest).with_context(|| format!("cannot read {manifest}"))?;
    let m: Manifest =
        serde_json::from_str(&text).with_context(|| format!("{manifest} is not a manifest"))?;
    let index: usize = index
        .parse()
        .with_context(|| format!("DISK_INDEX '{index}' is not a number"))?;
    let Some(disk) = m.source.disks.get(index) else {
        bail!(
            "{manifest} records {} disks, no disk {index}",
            m.source.disks.len()
        );
    };
    let dev = PathBuf::from(dev);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&dev)
        .with_context(|| format!("cannot open {}", dev.display()))?;
    gpt_write::write_table(&f, disk)
        .with_context(|| format!("cannot write the recorded table onto {}", dev.display()))?;
    for p in &disk.partitions {
        if let PartitionContent::BiosBoot { .. } = p.content {
            let bytes = layout::bios_boot_bytes(&p.content)
                .with_context(|| format!("partition {}", p.number))?;
            f.write_all_at(&bytes, p.start_bytes)
                .with_context(|| format!("writing partition {} of {}", p.number, dev.display()))?;
        }
    }
    f.sync_all()
        .with_context(|| format!("syncing {}", dev.display()))?;
    println!(
        "wrote a {} table with {} partitions onto {}",
        disk.table_type,
        disk.partitions.len(),
        dev.display()
    );
    Ok(())
}
