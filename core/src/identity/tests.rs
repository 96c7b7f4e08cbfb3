//! Partition tables and superblocks of images made by the real tools (sgdisk, sfdisk,
//! mkfs.ext4, mkfs.vfat) in temporary files. Skipped when a tool is missing (a failure
//! under CI: crate::testing).
#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;
use std::process::Command;

use crate::testing::{require, require_tool};

fn run(cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(st.success(), "{cmd}");
}

fn image(size_mib: u64) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    f.as_file().set_len(size_mib << 20).unwrap();
    f
}

#[test]
fn gpt_made_by_sgdisk() {
    if !require_tool("sgdisk") {
        return;
    }
    let img = image(64);
    let p = img.path().display();
    run(&format!(
        "sgdisk -U 11111111-2222-3333-4444-555555555555 \
         -n 1:2048:+8M -t 1:EF00 -c 1:'EFI system' -u 1:c0ffee00-0000-4000-8000-000000000001 \
         -n 2:0:+16M -t 2:8300 -c 2:root-abc -u 2:c0ffee00-0000-4000-8000-000000000002 \
         -n 4:0:+4M -t 4:8200 {p} >/dev/null"
    ));
    let t = read_partition_table(img.path()).unwrap().unwrap();
    assert_eq!(t.kind, TableKind::Gpt);
    assert_eq!(t.id, "11111111-2222-3333-4444-555555555555");
    assert_eq!(t.partitions.len(), 3);
    let esp = t.entry(1).unwrap();
    assert_eq!(esp.type_id, gpt::types::ESP);
    assert_eq!(esp.name.as_deref(), Some("EFI system"));
    assert_eq!(esp.partuuid, "c0ffee00-0000-4000-8000-000000000001");
    assert_eq!(esp.start_bytes, 2048 * 512);
    assert_eq!(esp.size_bytes, 8 << 20);
    let root = t.entry(2).unwrap();
    assert_eq!(root.type_id, gpt::types::LINUX_FS);
    assert_eq!(root.name.as_deref(), Some("root-abc"));
    assert_eq!(t.entry(4).unwrap().type_id, gpt::types::LINUX_SWAP);
    assert!(t.entry(3).is_none());

    // A damaged primary header: the backup one still gives the same table.
    use std::os::unix::fs::FileExt;
    img.as_file().write_all_at(b"XXXX", 512 + 24).unwrap();
    let t2 = read_partition_table(img.path()).unwrap().unwrap();
    assert_eq!(t2.partitions, t.partitions);
}

#[test]
fn mbr_made_by_sfdisk() {
    if !require_tool("sfdisk") {
        return;
    }
    let img = image(64);
    let p = img.path().display();
    run(&format!(
        "printf 'label: dos\\nlabel-id: 0xdeadbeef\\n,8M,83\\n,8M,82\\n,,5\\n,4M,83\\n,4M,c\\n' | sfdisk -q {p}"
    ));
    let t = read_partition_table(img.path()).unwrap().unwrap();
    assert_eq!(t.kind, TableKind::Dos);
    assert_eq!(t.id, "deadbeef");
    let nums: Vec<u32> = t.partitions.iter().map(|e| e.number).collect();
    assert_eq!(nums, [1, 2, 3, 5, 6]);
    assert_eq!(t.entry(1).unwrap().partuuid, "deadbeef-01");
    assert_eq!(t.entry(1).unwrap().type_id, "0x83");
    assert_eq!(t.entry(2).unwrap().type_id, "0x82");
    assert_eq!(t.entry(6).unwrap().partuuid, "deadbeef-06");
    assert_eq!(t.entry(6).unwrap().type_id, "0xc");
    assert_eq!(t.entry(5).unwrap().size_bytes, 4 << 20);
}

#[test]
fn ext4_superblock_made_by_mkfs() {
    if !require_tool("mkfs.ext4") {
        return;
    }
    let img = image(32);
    let p = img.path().display();
    run(&format!(
        "mkfs.ext4 -q -F -L root-xyz -U 0a0b0c0d-1111-2222-3333-444455556666 -b 4096 -I 256 \
         -O metadata_csum,64bit,^huge_file {p}"
    ));
    let fs = probe(img.path()).unwrap().unwrap();
    assert_eq!(fs.fstype, "ext4");
    assert_eq!(fs.label.as_deref(), Some("root-xyz"));
    assert_eq!(
        fs.uuid.as_deref(),
        Some("0a0b0c0d-1111-2222-3333-444455556666")
    );
    assert_eq!(fs.block_size, 4096);
    assert_eq!(fs.inode_size, 256);
    assert_eq!(fs.size, 32 << 20);
    for f in [
        "has_journal",
        "extent",
        "flex_bg",
        "64bit",
        "metadata_csum",
        "dir_index",
    ] {
        assert!(
            fs.features.iter().any(|x| x == f),
            "missing {f} in {:?}",
            fs.features
        );
    }
    assert!(!fs.features.iter().any(|x| x == "huge_file"));
    // dumpe2fs: "Inode count" and count - "Free inodes" (11 reserved inodes in use).
    let out = Command::new("dumpe2fs")
        .args(["-h"])
        .arg(img.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(fs.inode_count, field("Inode count:"));
    assert_eq!(
        fs.inodes_used,
        field("Inode count:") - field("Free inodes:")
    );
    assert_eq!(fs.inodes_used, 11);

    run(&format!("mkfs.ext3 -q -F -L old {p}"));
    let fs = probe(img.path()).unwrap().unwrap();
    assert_eq!(fs.fstype, "ext3");
    run(&format!("mkfs.ext2 -q -F {p}"));
    let fs = probe(img.path()).unwrap().unwrap();
    assert_eq!(fs.fstype, "ext2");
    assert_eq!(fs.label, None);
}

#[test]
fn vfat_boot_sector_made_by_mkfs() {
    if !require_tool("mkfs.vfat") {
        return;
    }
    let img = image(64);
    let p = img.path().display();
    run(&format!(
        "mkfs.vfat -F 32 -n BOOT-ABC -i 1234ABCD {p} >/dev/null"
    ));
    let fs = probe(img.path()).unwrap().unwrap();
    assert_eq!(fs.fstype, "vfat");
    assert_eq!(fs.uuid.as_deref(), Some("1234-ABCD"));
    assert_eq!(fs.label.as_deref(), Some("BOOT-ABC"));
    assert_eq!(fs.fat_bits, 32);
    assert_eq!(fs.cluster_size, 512);
    run(&format!("mkfs.vfat -F 16 -i 0000BEEF {p} >/dev/null"));
    let fs = probe(img.path()).unwrap().unwrap();
    assert_eq!(fs.uuid.as_deref(), Some("0000-BEEF"));
    assert_eq!(fs.label, None);
    assert_eq!(fs.fat_bits, 16);
    run(&format!("mkfs.vfat -F 32 -s 8 -S 512 {p} >/dev/null"));
    let fs = probe(img.path()).unwrap().unwrap();
    assert_eq!((fs.fat_bits, fs.cluster_size), (32, 4096));
    let small = image(2);
    run(&format!(
        "mkfs.vfat -F 12 {} >/dev/null",
        small.path().display()
    ));
    assert_eq!(probe(small.path()).unwrap().unwrap().fat_bits, 12);
}

#[test]
fn other_signatures_and_empty_devices() {
    let img = image(1);
    assert!(probe(img.path()).unwrap().is_none());
    if require_tool("mkswap") {
        run(&format!("mkswap -q {} >/dev/null", img.path().display()));
        assert_eq!(probe(img.path()).unwrap().unwrap().fstype, "swap");
    }
}

/// The manifest of a loop-mounted partition names the loop disk, the GPT entry and the
/// filesystem (root only; skipped otherwise).
#[test]
fn manifest_of_a_loop_mounted_root() {
    if !require(
        nix::unistd::Uid::effective().is_root(),
        "needs root (loop devices)",
    ) || !require_tool("losetup")
        || !require_tool("sgdisk")
    {
        return;
    }
    let img = image(64);
    let p = img.path().display();
    run(&format!(
        "sgdisk -n 1:2048:+32M -c 1:root-test -u 1:c0ffee00-0000-4000-8000-0000000000aa {p} >/dev/null"
    ));
    let out = Command::new("losetup")
        .args(["--find", "--show", "--partscan"])
        .arg(img.path())
        .output()
        .unwrap();
    let loopdev = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(!loopdev.is_empty());
    let mnt = tempfile::tempdir().unwrap();
    let m = mnt.path().display();
    let result = std::panic::catch_unwind(|| {
        run(&format!("[ -e {loopdev}p1 ] || partx -a {loopdev}; mkfs.ext4 -q -F -L root-test {loopdev}p1 && mount {loopdev}p1 {m}"));
        std::fs::create_dir_all(mnt.path().join("etc")).unwrap();
        std::fs::write(
            mnt.path().join("etc/xensource-inventory"),
            "PRODUCT_VERSION='8.2.1'\n",
        )
        .unwrap();
        let man = manifest_for_root(mnt.path());
        run(&format!("umount {m}"));
        man
    });
    run(&format!("losetup -d {loopdev}"));
    let man = result.unwrap();
    assert_eq!(man.inventory["PRODUCT_VERSION"], "8.2.1");
    assert_eq!(man.source.filesystem.fstype, "ext4");
    assert_eq!(man.source.filesystem.label.as_deref(), Some("root-test"));
    assert_eq!(man.source.partition.name.as_deref(), Some("root-test"));
    assert_eq!(
        man.source.partition.partuuid.as_deref(),
        Some("c0ffee00-0000-4000-8000-0000000000aa")
    );
    assert_eq!(man.source.partition.number, Some(1));
    assert_eq!(man.source.disk.size_bytes, 64 << 20);
    assert_eq!(man.source.disk.table_type.as_deref(), Some("gpt"));
    assert!(man
        .source
        .disk
        .kernel_name
        .as_deref()
        .unwrap()
        .starts_with("loop"));
    assert!(man.created.ends_with('Z'));
    // The whole disk: its one partition, an ext4 mounted at the root.
    assert_eq!(man.source.disks.len(), 1);
    let d = &man.source.disks[0];
    assert_eq!((d.table_type.as_str(), d.size_bytes), ("gpt", 64 << 20));
    assert_eq!(d.kernel_name, man.source.disk.kernel_name);
    assert_eq!(d.partitions.len(), 1);
    let p = &d.partitions[0];
    assert_eq!(p.partuuid, "c0ffee00-0000-4000-8000-0000000000aa");
    assert_eq!(p.mountpoint.as_deref(), Some("/"));
    let crate::archive::disk_layout::PartitionContent::Filesystem(fs) = &p.content else {
        panic!("{:?}", p.content)
    };
    assert_eq!(fs.label.as_deref(), Some("root-test"));
    assert!(fs.inodes_used >= 11 && fs.inode_count > fs.inodes_used);
}

/// On whatever this host is (container, VM, overlay root), the manifest is filled as far as
/// it can be and never fails.
#[test]
fn manifest_of_this_host_is_best_effort() {
    let m = manifest_for_root(std::path::Path::new("/"));
    eprintln!("{}", serde_json::to_string_pretty(&m).unwrap());
    assert!(!m.hostname.is_empty());
    assert_eq!(m.format_version, crate::archive::manifest::FORMAT_VERSION);
    // Every disk sysfs lists has a device node name and a size.
    for d in list_disks().unwrap() {
        assert!(d.dev_path.starts_with("/dev"));
        assert!(d.size_bytes > 0);
    }
}

#[test]
fn by_id_names_match_serials_and_wwns() {
    use blockdev::by_id_matches;
    assert!(by_id_matches(
        "ata-QEMU_HARDDISK_QM00001",
        Some("QM00001"),
        None
    ));
    assert!(by_id_matches(
        "nvme-eui.0025388b91b23c10",
        None,
        Some("eui.0025388b91b23c10")
    ));
    assert!(by_id_matches(
        "wwn-0x5000c500a1b2c3d4",
        None,
        Some("naa.5000c500a1b2c3d4")
    ));
    assert!(by_id_matches(
        "scsi-35000c500a1b2c3d4",
        None,
        Some("naa.5000c500a1b2c3d4")
    ));
    assert!(!by_id_matches(
        "ata-QEMU_HARDDISK_QM00002",
        Some("QM00001"),
        None
    ));
    assert!(
        !by_id_matches("ata-X_1", Some("1"), None),
        "too short to be trusted"
    );
}

fn dev(name: &str, disk: &str, partno: Option<u32>) -> devices::BlockDev {
    devices::BlockDev {
        name: name.into(),
        disk: disk.into(),
        partno,
        serial: Some("LBDISK0001".into()),
        wwn: Some("naa.5000c500a1b2c3d4".into()),
        ..Default::default()
    }
}

#[test]
fn one_way_to_name_a_device() {
    let mut root = dev("sda2", "sda", Some(2));
    root.partuuid = Some("0A1B2C3D-0000-4000-8000-000000000002".into());
    root.partlabel = Some("root".into());
    root.fs = Some(devices::FsInfo {
        fstype: "ext4".into(),
        uuid: Some("11111111-2222-4333-8444-555555555555".into()),
        label: Some("root-abc".into()),
    });
    let devs = vec![dev("sda", "sda", None), dev("sda1", "sda", Some(1)), root];
    let names = |spec: &str| -> Vec<String> {
        devices::find(&devs, spec)
            .into_iter()
            .map(|d| d.name.clone())
            .collect()
    };
    for spec in [
        "sda2",
        "/dev/sda2",
        "PARTUUID=0a1b2c3d-0000-4000-8000-000000000002",
        "PARTLABEL=root",
        "UUID=11111111-2222-4333-8444-555555555555",
        "LABEL=root-abc",
        "LABEL=\"root-abc\"",
        "/dev/disk/by-id/scsi-SATA_QEMU_HARDDISK_LBDISK0001-part2",
        "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4-part2",
    ] {
        assert_eq!(names(spec), ["sda2"], "{spec}");
    }
    assert_eq!(names("/dev/disk/by-id/ata-QEMU_LBDISK0001"), ["sda"]);
    assert!(names("LABEL=root-xyz").is_empty());
    assert!(names("/dev/sdb").is_empty());
    assert!(names("/dev/disk/by-id/ata-OTHER_SERIAL-part2").is_empty());
    // A partition's tags never name its disk.
    assert!(names("PARTUUID=").is_empty());
    assert_eq!(devices::find(&devs, "/dev/cciss/c0d0").len(), 0);
}

fn sh_out(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A GPT made by sgdisk (names, attributes, a BIOS boot partition with bytes, MBR boot code),
/// recorded, then written by `gpt_write` onto a blank image 25% larger: the same table as
/// parsed and as `sgdisk -p`/`-i` show it apart from the disk size, `sgdisk -v` finds no
/// problem, and a disk too small is refused.
#[test]
fn gpt_recorded_and_written_onto_a_larger_disk() {
    if !require_tool("sgdisk") {
        return;
    }
    let old = image(64);
    let o = old.path().display();
    run(&format!(
        "sgdisk -U 11111111-2222-3333-4444-555555555555 \
         -n 1:2048:+1M -t 1:EF02 -c 1:bios -u 1:c0ffee00-0000-4000-8000-000000000001 -A 1:set:2 \
         -n 2:0:+16M -t 2:EF00 -c 2:'EFI system' -u 2:c0ffee00-0000-4000-8000-000000000002 \
         -n 3:0:+16M -t 3:8300 -c 3:root -u 3:c0ffee00-0000-4000-8000-000000000003 -A 3:set:63 \
         -n 5:0:+4M -t 5:8200 -n 6:0:0 -t 6:8E00 {o} >/dev/null \
         && printf 'GRUB core bytes' | dd of={o} bs=512 seek=2048 conv=notrunc status=none \
         && printf '\\353\\143\\220boot code' | dd of={o} conv=notrunc status=none"
    ));
    let rec = layout::table_layout(old.as_file()).unwrap().unwrap();
    assert_eq!(rec.table_type, "gpt");
    assert_eq!(rec.partitions.len(), 5);
    assert_eq!(rec.partitions[0].attributes, 1 << 2);
    assert_eq!(rec.partitions[2].attributes, 1 << 63);
    assert!(rec
        .boot
        .mbr_boot_code
        .as_deref()
        .unwrap()
        .starts_with("eb6390"));
    let bios = layout::bios_boot_bytes(&rec.partitions[0].content).unwrap();
    assert_eq!(bios.len(), 1 << 20);
    assert!(bios.starts_with(b"GRUB core bytes"));

    let new = image(80);
    let n = new.path().display();
    gpt_write::write_table_to(new.path(), &rec).unwrap();
    let (t_old, t_new) = (
        read_partition_table(old.path()).unwrap().unwrap(),
        read_partition_table(new.path()).unwrap().unwrap(),
    );
    assert_eq!(t_old, t_new);
    assert_eq!(
        gpt::read_attributes(old.as_file(), 512).unwrap(),
        gpt::read_attributes(new.as_file(), 512).unwrap()
    );
    let v = sh_out(&format!("sgdisk -v {n}"));
    assert!(v.contains("No problems found"), "{v}");
    let table = |p: &str| -> Vec<String> {
        sh_out(&format!("sgdisk -p {p}"))
            .lines()
            .filter(|l| !l.starts_with("Disk ") || l.contains("identifier"))
            .filter(|l| !l.contains("last usable") && !l.contains("Total free space"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(table(&o.to_string()), table(&n.to_string()));
    for i in [1, 2, 3, 5, 6] {
        assert_eq!(
            sh_out(&format!("sgdisk -i {i} {o}")),
            sh_out(&format!("sgdisk -i {i} {n}"))
        );
    }
    let mut code = [0u8; 440];
    use std::os::unix::fs::FileExt;
    new.as_file().read_exact_at(&mut code, 0).unwrap();
    assert!(code.starts_with(b"\xeb\x63\x90boot code"));

    // A disk smaller than the last partition's end plus the backup table: refused.
    let small = image(63);
    let err = gpt_write::write_table_to(small.path(), &rec)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("partition 6") && err.contains("at least as large"),
        "{err}"
    );
    assert!(read_partition_table(small.path()).unwrap().is_none());
}

/// An MBR with a bootable primary, an extended partition and two logicals, made by sfdisk,
/// recorded and written onto a larger image: `sfdisk -d` shows the same table.
#[test]
fn mbr_recorded_and_written_onto_a_larger_disk() {
    if !require_tool("sfdisk") {
        return;
    }
    let old = image(64);
    let o = old.path().display();
    run(&format!(
        "printf 'label: dos\\nlabel-id: 0xdeadbeef\\n,8M,83,*\\n,8M,82\\n,,5\\n,4M,83\\n,4M,c\\n' | sfdisk -q {o}"
    ));
    let rec = layout::table_layout(old.as_file()).unwrap().unwrap();
    assert_eq!(rec.partitions[0].mbr_flags, 0x80);
    let new = image(80);
    let n = new.path().display();
    gpt_write::write_table_to(new.path(), &rec).unwrap();
    assert_eq!(
        read_partition_table(old.path()).unwrap(),
        read_partition_table(new.path()).unwrap()
    );
    let dump = |p: &str| -> String {
        // sfdisk names partitions PATHpN when the path ends in a digit, PATHN otherwise: the
        // temporary files' names decide, so both spellings become DISKN.
        sh_out(&format!("sfdisk -d {p}"))
            .replace(p, "DISK")
            .replace("DISKp", "DISK")
            .lines()
            .filter(|l| !l.starts_with("last-lba"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(dump(&o.to_string()), dump(&n.to_string()));
}
