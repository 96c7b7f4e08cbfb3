#![allow(clippy::unwrap_used, clippy::panic)]

use super::latest::is_this_host;
use super::*;
use crate::archive::disk_layout::{
    BootChain, DiskLayout, PartitionContent, PartitionLayout, UefiBootEntry,
};
use crate::archive::manifest::{
    DiskIdentity, FilesystemIdentity, MachineIdentity, Manifest, PartitionIdentity,
};
use crate::identity::devices::{BlockDev, FsInfo};

const GIB: u64 = 1 << 30;
const ROOT_PU: &str = "11111111-2222-3333-4444-000000000002";
const ESP_PU: &str = "11111111-2222-3333-4444-000000000001";
const ROOT_UUID: &str = "0a1b2c3d-0000-4000-8000-000000000001";
const MACHINE: &str = "4c4c4544-0000-1111-2222-333333333333";

fn fs(t: &str, label: Option<&str>, uuid: Option<&str>) -> Option<FsInfo> {
    Some(FsInfo {
        fstype: t.into(),
        label: label.map(Into::into),
        uuid: uuid.map(Into::into),
    })
}

fn disk(name: &str, serial: &str, size: u64) -> DeviceFacts {
    DeviceFacts::new(BlockDev {
        name: name.into(),
        disk: name.into(),
        size,
        model: Some("QEMU HARDDISK".into()),
        serial: Some(serial.into()),
        ..Default::default()
    })
}

fn part(
    disk: &DeviceFacts,
    n: u32,
    size: u64,
    partuuid: &str,
    fsinfo: Option<FsInfo>,
) -> DeviceFacts {
    let mut d = disk.dev.clone();
    d.name = format!("{}{n}", disk.dev.name);
    d.partno = Some(n);
    d.size = size;
    d.partuuid = Some(partuuid.into());
    d.fs = fsinfo;
    DeviceFacts::new(d)
}

/// sda: the recorded disk (ESP, root, the Lifeboat store holding the backup, a XenServer
/// backup partition, a mounted logs partition); sdb: a blank disk 25% larger; sdc + sdd: md
/// legs; sr0: the boot medium; sde: a disk with a partition labelled like the root.
fn devices() -> Vec<DeviceFacts> {
    let sda = disk("sda", "S1", 100 * GIB);
    let esp = part(
        &sda,
        1,
        GIB / 2,
        ESP_PU,
        fs("vfat", Some("ESP"), Some("ABCD-1234")),
    );
    let mut esp = esp;
    esp.dev.type_guid = Some(decide::ESP_TYPE.into());
    let root = part(
        &sda,
        2,
        18 * GIB,
        ROOT_PU,
        fs("ext4", Some("root-abc"), Some(ROOT_UUID)),
    );
    let mut store = part(
        &sda,
        3,
        20 * GIB,
        "pu-3",
        fs("ext4", Some("lifeboat"), Some("u3")),
    );
    store.holds = Some(Holds::LifeboatStore);
    let mut xen = part(
        &sda,
        4,
        18 * GIB,
        "pu-4",
        fs("ext3", Some("backup-abc"), Some("u4")),
    );
    xen.holds = Some(Holds::XenServerBackup);
    let mut logs = part(
        &sda,
        5,
        4 * GIB,
        "pu-5",
        fs("ext3", Some("logs-abc"), Some("u5")),
    );
    logs.mounts = vec!["/var/log".into()];
    let small = part(&sda, 6, GIB, "pu-6", None);
    let mut sdb = disk("sdb", "QM00002", 125 * GIB);
    sdb.blank = true;
    let mut sdc = disk("sdc", "S3", 100 * GIB);
    sdc.md_array = Some("a1b2c3d4:00000000:00000000:00000001".into());
    let sdc1 = part(&sdc, 1, 50 * GIB, "pu-c1", None);
    let mut sdd = disk("sdd", "S4", 100 * GIB);
    sdd.md_array = Some("a1b2c3d4:00000000:00000000:00000001".into());
    let mut sr0 = disk("sr0", "CD", GIB);
    sr0.dev.fs = fs("iso9660", Some("LIFEBOAT"), None);
    sr0.boot_medium = true;
    let sde = disk("sde", "S5", 50 * GIB);
    let sde1 = part(
        &sde,
        1,
        30 * GIB,
        "pu-e1",
        fs("ext4", Some("other"), Some("ue1")),
    );
    vec![
        sda, esp, root, store, xen, logs, small, sdb, sdc, sdc1, sdd, sr0, sde, sde1,
    ]
}

fn root_fs() -> FilesystemIdentity {
    FilesystemIdentity {
        fstype: "ext4".into(),
        uuid: Some(ROOT_UUID.into()),
        label: Some("root-abc".into()),
        size: 18 * GIB,
        block_size: 4096,
        inode_size: 256,
        inode_count: 1_179_648,
        inodes_used: 60_000,
        ..Default::default()
    }
}

fn esp_fs() -> FilesystemIdentity {
    FilesystemIdentity {
        fstype: "vfat".into(),
        uuid: Some("ABCD-1234".into()),
        label: Some("ESP".into()),
        size: GIB / 2,
        fat_bits: 32,
        cluster_size: 4096,
        ..Default::default()
    }
}

fn manifest() -> Manifest {
    let mut m = Manifest {
        hostname: "xs1".into(),
        created: "2026-11-30T02:00:00Z".into(),
        ..Default::default()
    };
    m.machine = MachineIdentity {
        product_uuid: Some(MACHINE.into()),
        ..Default::default()
    };
    m.source.filesystem = root_fs();
    m.source.partition = PartitionIdentity {
        partuuid: Some(ROOT_PU.into()),
        number: Some(2),
        size_bytes: 18 * GIB,
        ..Default::default()
    };
    m.source.disk = DiskIdentity {
        model: Some("QEMU HARDDISK".into()),
        serial: Some("S1".into()),
        size_bytes: 100 * GIB,
        ..Default::default()
    };
    m.source.esp = Some(esp_fs());
    m.source.esp_partition = Some(PartitionIdentity {
        partuuid: Some(ESP_PU.into()),
        ..Default::default()
    });
    m
}

/// The recorded whole disk: BIOS boot, ESP, root, swap, logs, store, local SR.
fn layout() -> DiskLayout {
    let p = |number, start: u64, size: u64, partuuid: &str, content, mountpoint: Option<&str>| {
        PartitionLayout {
            number,
            start_bytes: start,
            size_bytes: size,
            type_id: "0fc63daf-8483-4772-8e79-3d69d8477de4".into(),
            partuuid: partuuid.into(),
            name: None,
            attributes: 0,
            mbr_flags: 0,
            content,
            mountpoint: mountpoint.map(Into::into),
        }
    };
    let mib = 1u64 << 20;
    DiskLayout {
        kernel_name: Some("sda".into()),
        serial: Some("S1".into()),
        size_bytes: 100 * GIB,
        sector_size: 512,
        table_type: "gpt".into(),
        table_id: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
        partitions: vec![
            p(
                1,
                mib,
                mib,
                "pu-l1",
                PartitionContent::BiosBoot {
                    data: "KLUv".into(),
                    b3: "ab".repeat(32),
                },
                None,
            ),
            p(
                2,
                2 * mib,
                GIB / 2,
                ESP_PU,
                PartitionContent::Filesystem(esp_fs()),
                Some("/boot/efi"),
            ),
            p(
                3,
                GIB,
                18 * GIB,
                ROOT_PU,
                PartitionContent::Filesystem(root_fs()),
                Some("/"),
            ),
            p(
                4,
                19 * GIB,
                GIB,
                "pu-l4",
                PartitionContent::Swap {
                    uuid: Some("sw-u".into()),
                    label: Some("swap-abc".into()),
                },
                None,
            ),
            p(
                5,
                20 * GIB,
                4 * GIB,
                "pu-l5",
                PartitionContent::Filesystem(FilesystemIdentity {
                    fstype: "ext3".into(),
                    label: Some("logs-abc".into()),
                    ..Default::default()
                }),
                Some("/var/log"),
            ),
            p(
                6,
                24 * GIB,
                18 * GIB,
                "pu-l6",
                PartitionContent::LifeboatStore(FilesystemIdentity {
                    fstype: "ext4".into(),
                    label: Some("lifeboat".into()),
                    ..Default::default()
                }),
                None,
            ),
            p(
                7,
                42 * GIB,
                50 * GIB,
                "pu-l7",
                PartitionContent::LvmPv {
                    pv_uuid: Some("pv".into()),
                },
                None,
            ),
        ],
        boot: BootChain {
            mbr_boot_code: Some("eb63".into()),
            uefi_entries: vec![UefiBootEntry {
                number: 3,
                description: "XenServer".into(),
                partuuid: ESP_PU.into(),
                loader_path: "\\EFI\\xenserver\\grubx64.efi".into(),
                boot_order_position: Some(0),
                load_option: "01".into(),
            }],
        },
        ..Default::default()
    }
}

fn backup(m: Manifest) -> BackupFacts {
    BackupFacts {
        kind: BackupKind::Lifeboat,
        generation: Some("20261130T020000Z".into()),
        host: m.hostname.clone(),
        created: m.created.clone(),
        product_version: Some("8.2.1".into()),
        device: "sda3".into(),
        manifest: Some(m),
        system_files: None,
        content_bytes: 3 * GIB,
        entries: 55_000,
    }
}

fn this_machine() -> MachineIdentity {
    MachineIdentity {
        product_uuid: Some(MACHINE.into()),
        ..Default::default()
    }
}

fn run(b: &BackupFacts, devs: &[DeviceFacts], r: TargetRequest) -> Result<Plan, PlanError> {
    plan(b, devs, &r, &this_machine())
}

fn target(s: &str) -> TargetRequest {
    TargetRequest::Partition(s.into())
}

fn ids(p: &Plan) -> Vec<&str> {
    p.steps.iter().map(|s| s.id.as_str()).collect()
}

#[test]
fn mode_a_finds_the_recorded_root_and_esp() {
    let p = run(&backup(manifest()), &devices(), TargetRequest::Automatic).unwrap();
    assert_eq!(p.mode, Mode::RecordedDisk);
    assert_eq!(p.root_device, "/dev/sda2");
    assert_eq!(p.esp_device.as_deref(), Some("/dev/sda1"));
    assert_eq!(p.target_disk.serial.as_deref(), Some("S1"));
    assert_eq!(
        ids(&p),
        [
            "make-filesystem-p2",
            "make-filesystem-p1",
            "restore-root",
            "restore-esp",
            "set-final-identity"
        ]
    );
    // The root is made with a temporary identity; the final one is the manifest's.
    assert!(matches!(
        &p.steps[0].action,
        Action::MakeFilesystem { temporary_identity: true, fs, .. } if fs.uuid.as_deref() == Some(ROOT_UUID)
    ));
    assert!(p.steps[0].destroys.as_deref().unwrap().contains("root-abc"));
    assert_eq!(p.root_identity.label.as_deref(), Some("root-abc"));
    assert!(!p.needs_consent, "{:?}", p.identity_mismatches);
    assert!(p.checks.iter().any(|c| c.name == "inodes" && c.ok));
    // The same plan by hand, by any name of the partition.
    for name in [
        format!("PARTUUID={ROOT_PU}"),
        "sda2".into(),
        "/dev/sda2".into(),
        "LABEL=root-abc".into(),
    ] {
        let q = run(&backup(manifest()), &devices(), target(&name)).unwrap();
        assert_eq!(q.root_device, "/dev/sda2", "{name}");
        assert_eq!(ids(&q), ids(&p));
    }
    // A disk named with lifeboat.target= is searched for the root.
    let q = run(&backup(manifest()), &devices(), target("sda")).unwrap();
    assert_eq!(q.root_device, "/dev/sda2");
}

#[test]
fn the_partition_holding_this_backup_is_refused() {
    let e = run(&backup(manifest()), &devices(), target("sda3")).unwrap_err();
    assert_eq!(
        e,
        PlanError::HoldsThisBackup {
            device: "/dev/sda3".into()
        }
    );
    assert!(
        e.to_string()
            .contains("/dev/sda3 holds the backup being restored"),
        "{e}"
    );
}

#[test]
fn other_stores_and_xenserver_backups_are_refused() {
    let mut b = backup(manifest());
    b.device = "sde1".into();
    let e = run(&b, &devices(), target("sda3")).unwrap_err();
    assert!(
        matches!(&e, PlanError::HoldsOtherBackup { device, what } if device == "/dev/sda3" && what == "a Lifeboat store"),
        "{e}"
    );
    let e = run(&b, &devices(), target("LABEL=backup-abc")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/dev/sda4 holds a XenServer backup"),
        "{e}"
    );
}

#[test]
fn a_mounted_filesystem_is_refused() {
    let e = run(&backup(manifest()), &devices(), target("sda5")).unwrap_err();
    assert_eq!(
        e.to_string().split(';').next().unwrap(),
        "/dev/sda5 is mounted at /var/log"
    );
    // The automatic choice is checked too: a mounted root is refused, not written.
    let mut devs = devices();
    devs[2].mounts = vec!["/".into()];
    let e = run(&backup(manifest()), &devs, TargetRequest::Automatic).unwrap_err();
    assert!(
        matches!(e, PlanError::Mounted { ref device, .. } if device == "/dev/sda2"),
        "{e}"
    );
    // So is a mounted ESP beside the root.
    let mut devs = devices();
    devs[1].mounts = vec!["/boot/efi".into()];
    let e = run(&backup(manifest()), &devs, TargetRequest::Automatic).unwrap_err();
    assert!(
        matches!(e, PlanError::Mounted { ref device, .. } if device == "/dev/sda1"),
        "{e}"
    );
}

#[test]
fn an_md_leg_is_refused_as_a_partition_or_a_disk() {
    let e = run(&backup(manifest()), &devices(), target("sdc1")).unwrap_err();
    assert!(
        matches!(&e, PlanError::MdLeg { device, .. } if device == "/dev/sdc"),
        "{e}"
    );
    assert!(
        e.to_string().contains("one leg of the md array a1b2c3d4"),
        "{e}"
    );
    let mut devs = devices();
    devs[9].md_array = Some("ffff:1".into());
    let e = run(&backup(manifest()), &devs, target("sdc1")).unwrap_err();
    assert!(
        matches!(&e, PlanError::MdLeg { device, .. } if device == "/dev/sdc1"),
        "{e}"
    );
    // A whole-disk leg with no filesystem seen on it is still refused as a leg.
    let e = run(&backup(manifest()), &devices(), target("sdd")).unwrap_err();
    assert!(
        matches!(&e, PlanError::MdLeg { device, .. } if device == "/dev/sdd"),
        "{e}"
    );
    let e = run(
        &backup(manifest()),
        &devices(),
        TargetRequest::Disk("sdd".into()),
    )
    .unwrap_err();
    assert!(
        matches!(&e, PlanError::MdLeg { device, .. } if device == "/dev/sdd"),
        "{e}"
    );
}

#[test]
fn the_boot_medium_is_refused() {
    let e = run(
        &backup(manifest()),
        &devices(),
        TargetRequest::Disk("sr0".into()),
    )
    .unwrap_err();
    assert_eq!(
        e,
        PlanError::BootMedium {
            device: "/dev/sr0".into()
        }
    );
}

#[test]
fn a_partition_too_small_for_the_filesystem_or_its_inodes_is_refused() {
    let e = run(&backup(manifest()), &devices(), target("sda6")).unwrap_err();
    assert!(
        matches!(e, PlanError::TooSmall { ref device, size, needed, .. }
        if device == "/dev/sda6" && size == GIB && needed == 18 * GIB),
        "{e}"
    );
    // No recorded size: the content decides; no recorded inode count: the entries do.
    let mut m = manifest();
    m.source.filesystem.size = 0;
    m.source.filesystem.inode_count = 0;
    m.source.filesystem.inodes_used = 0;
    let mut b = backup(m);
    b.content_bytes = GIB / 2;
    b.entries = 200_000;
    let e = run(&b, &devices(), target("sda6")).unwrap_err();
    assert_eq!(
        e,
        PlanError::TooFewInodes {
            device: "/dev/sda6".into(),
            available: 65_536,
            needed: 200_000
        }
    );
    b.entries = 60_000;
    assert_eq!(
        run(&b, &devices(), target("sda6")).unwrap().root_device,
        "/dev/sda6"
    );
}

#[test]
fn ambiguous_and_unknown_names_are_refused() {
    let mut devs = devices();
    devs[13].dev.fs = fs("ext4", Some("root-abc"), Some("ue1"));
    let e = run(&backup(manifest()), &devs, target("LABEL=root-abc")).unwrap_err();
    match &e {
        PlanError::Ambiguous { matches, .. } => {
            assert_eq!(matches.len(), 2);
            assert!(
                matches[0].starts_with("/dev/sda2 ") && matches[1].starts_with("/dev/sde1 "),
                "{matches:?}"
            );
        }
        e => panic!("{e}"),
    }
    assert!(e.to_string().contains("/dev/sde1"), "{e}");
    let e = run(
        &backup(manifest()),
        &devices(),
        target("PARTUUID=00000000-dead-beef-0000-000000000000"),
    )
    .unwrap_err();
    assert!(matches!(e, PlanError::NoSuchDevice { .. }), "{e}");
    // The automatic search refuses two partitions that both look like the root.
    let mut devs = devices();
    devs[13].dev.partuuid = Some(ROOT_PU.into());
    let e = run(&backup(manifest()), &devs, TargetRequest::Automatic).unwrap_err();
    assert!(matches!(e, PlanError::Ambiguous { .. }), "{e}");
    // A root found nowhere says what it looked for.
    let mut devs = devices();
    devs.retain(|d| d.dev.name != "sda2");
    let e = run(&backup(manifest()), &devs, TargetRequest::Automatic).unwrap_err();
    assert!(e.to_string().contains(ROOT_PU), "{e}");
}

#[test]
fn a_disk_serial_names_the_disk() {
    let mut b = backup(manifest());
    b.manifest.as_mut().unwrap().source.disks = vec![layout()];
    let p = run(&b, &devices(), TargetRequest::Disk("QM00002".into())).unwrap();
    assert_eq!(p.target_disk.kernel_name, "sdb");
    let p = run(
        &b,
        &devices(),
        TargetRequest::Disk("/dev/disk/by-id/ata-QEMU_HARDDISK_QM00002".into()),
    )
    .unwrap();
    assert_eq!(p.target_disk.kernel_name, "sdb");
}

#[test]
fn mode_b_recreates_the_whole_layout_on_a_blank_disk() {
    let mut b = backup(manifest());
    b.manifest.as_mut().unwrap().source.disks = vec![layout()];
    let p = run(&b, &devices(), TargetRequest::Disk("sdb".into())).unwrap();
    assert_eq!(p.mode, Mode::BlankDisk);
    assert_eq!(p.root_device, "/dev/sdb3");
    assert_eq!(p.esp_device.as_deref(), Some("/dev/sdb2"));
    assert_eq!(
        ids(&p),
        [
            "create-table",
            "create-partition-p1",
            "create-partition-p2",
            "create-partition-p3",
            "create-partition-p4",
            "create-partition-p5",
            "create-partition-p6",
            "create-partition-p7",
            "write-bios-boot-p1",
            "make-filesystem-p2",
            "make-filesystem-p3",
            "make-swap-p4",
            "make-empty-filesystem-p5",
            "make-empty-filesystem-p6",
            "leave-empty-p7",
            "restore-root",
            "restore-esp",
            "set-final-identity",
            "set-uefi-boot-entry-0003",
            "set-boot-next",
        ]
    );
    assert!(
        matches!(&p.steps[0].action, Action::CreateTable { table_id, mbr_boot_code: true, .. } if table_id == "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
    );
    assert!(
        matches!(&p.steps[3].action, Action::CreatePartition { start_bytes, partuuid, .. } if *start_bytes == GIB && partuuid == ROOT_PU)
    );
    // FAT32 stays FAT32 with its cluster size.
    assert!(
        matches!(&p.steps[9].action, Action::MakeFilesystem { fs, temporary_identity: false, .. } if fs.fat_bits == 32 && fs.cluster_size == 4096)
    );
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("VM data is not part of a dom0 backup")),
        "{:?}",
        p.notes
    );
    assert!(!p.needs_consent);
    // Stable ids: the same inputs give the same plan.
    assert_eq!(
        run(&b, &devices(), TargetRequest::Disk("sdb".into())).unwrap(),
        p
    );
    // nvme and loop disks name their partitions with a p.
    assert_eq!(decide::partition_name("nvme0n1", 3), "nvme0n1p3");
    assert_eq!(decide::partition_name("loop7", 3), "loop7p3");
}

#[test]
fn mode_b_only_onto_a_blank_disk_large_enough_with_a_recorded_layout() {
    let b = backup(manifest());
    // No recorded layout (an archive from before it was recorded).
    let e = run(&b, &devices(), TargetRequest::Disk("sdb".into())).unwrap_err();
    assert_eq!(
        e,
        PlanError::NoDiskLayout {
            device: "/dev/sdb".into()
        }
    );
    assert!(
        e.to_string()
            .contains("this backup did not record its disk layout"),
        "{e}"
    );
    let mut b = backup(manifest());
    b.manifest.as_mut().unwrap().source.disks = vec![layout()];
    let e = run(&b, &devices(), TargetRequest::Disk("sde".into())).unwrap_err();
    assert!(
        matches!(&e, PlanError::DiskNotBlank { device, found } if device == "/dev/sde" && found.contains("/dev/sde1")),
        "{e}"
    );
    let mut devs = devices();
    devs[12].blank = true;
    devs.retain(|d| d.dev.name != "sde1");
    let e = run(&b, &devs, TargetRequest::Disk("sde".into())).unwrap_err();
    assert_eq!(
        e,
        PlanError::DiskTooSmall {
            device: "/dev/sde".into(),
            size: 50 * GIB,
            needed: 100 * GIB
        }
    );
    let e = run(&b, &devices(), TargetRequest::Disk("sda2".into())).unwrap_err();
    assert_eq!(
        e,
        PlanError::NotADisk {
            device: "/dev/sda2".into()
        }
    );
    // A whole disk given as the root partition: a blank one is no partition; one with
    // partitions is searched for the root.
    let e = run(&b, &devices(), target("sdb")).unwrap_err();
    assert_eq!(
        e,
        PlanError::NotAPartition {
            device: "/dev/sdb".into()
        }
    );
    let e = run(&b, &devices(), target("sde")).unwrap_err();
    assert!(matches!(e, PlanError::RootNotFound { .. }), "{e}");
    // An md member in the layout is not recreated (yet): refused, not half done.
    let mut l = layout();
    l.partitions[4].content = PartitionContent::MdMember(Default::default());
    b.manifest.as_mut().unwrap().source.disks = vec![l];
    let e = run(&b, &devices(), TargetRequest::Disk("sdb".into())).unwrap_err();
    assert!(matches!(e, PlanError::Unsupported { .. }), "{e}");
}

#[test]
fn another_machine_needs_consent() {
    let b = backup(manifest());
    let other = MachineIdentity {
        product_uuid: Some("99999999-0000-0000-0000-000000000000".into()),
        ..Default::default()
    };
    let p = plan(&b, &devices(), &TargetRequest::Automatic, &other).unwrap();
    assert!(p.needs_consent);
    assert_eq!(
        p.identity_mismatches,
        [format!(
            "machine UUID: backup {MACHINE}, this machine 99999999-0000-0000-0000-000000000000"
        )]
    );
    // Another disk in mode (a): its serial and size differ.
    let mut devs = devices();
    devs[12].dev.size = 60 * GIB;
    devs[13].dev.size = 30 * GIB;
    let p = run(&b, &devs, target("sde1")).unwrap();
    assert!(p.needs_consent);
    assert!(
        p.identity_mismatches
            .iter()
            .any(|m| m == "disk serial: backup S1, /dev/sde S5"),
        "{:?}",
        p.identity_mismatches
    );
    let lines = render(&p).join("\n");
    assert!(
        lines.contains("WARNING: this backup was taken on another machine or disk"),
        "{lines}"
    );
}

const XS_FSTAB: &str = "LABEL=root-xyz    /         ext3     defaults   1  1\nLABEL=swap-xyz  swap  swap  defaults 0 0\nLABEL=logs-xyz    /var/log         ext3     defaults   0  2\n";
const XS_GRUB: &str = "menuentry 'XCP-ng' {\n\tmultiboot2 /boot/xen.gz dom0_mem=2048M\n\tmodule2 /boot/vmlinuz-4.19-xen root=LABEL=root-xyz ro nolvm hpet=disable\n\tmodule2 /boot/initrd-4.19-xen.img\n}\n";
const XS_INV: &str =
    "PRODUCT_VERSION='8.2.1'\nINSTALLATION_UUID='0b4c9b2e-0000-4000-8000-000000000001'\n";

#[test]
fn identity_from_a_xenserver_trees_own_files() {
    let id = identity_from_system_files(Some(XS_FSTAB), Some(XS_GRUB), Some(XS_INV)).unwrap();
    assert_eq!(id.fs.label.as_deref(), Some("root-xyz"));
    assert_eq!(id.fs.uuid, None);
    assert_eq!(id.fs.fstype, "ext3");
    assert!(
        id.source.contains("etc/fstab (LABEL=root-xyz for /)"),
        "{}",
        id.source
    );
    // grub.cfg alone gives the UUID when fstab mounts / by a device name.
    let id = identity_from_system_files(
        Some("/dev/sda1 / ext4 defaults 0 1\n"),
        Some("linux /vmlinuz root=UUID=ABCDEF01-0000-4000-8000-000000000002 ro\n"),
        None,
    )
    .unwrap();
    assert_eq!(
        id.fs.uuid.as_deref(),
        Some("abcdef01-0000-4000-8000-000000000002")
    );
    assert_eq!(id.fs.fstype, "ext4");
    // Refusals, with the reason.
    let e = identity_from_system_files(None, Some(XS_GRUB), Some(XS_INV)).unwrap_err();
    assert!(e.to_string().contains("the backup has no etc/fstab"), "{e}");
    let e = identity_from_system_files(Some("/dev/sda1 / ext3 defaults 0 1\n"), None, Some(XS_INV))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("mounts / by /dev/sda1, not LABEL= or UUID="),
        "{e}"
    );
    let e = identity_from_system_files(
        Some(XS_FSTAB),
        Some("module2 /boot/vmlinuz root=LABEL=root-other ro\n"),
        None,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("LABEL=root-xyz but grub.cfg boots root=LABEL=root-other"),
        "{e}"
    );
    let e = identity_from_system_files(Some("# nothing\n"), None, None).unwrap_err();
    assert!(e.to_string().contains("no line for /"), "{e}");
}

#[test]
fn a_xenserver_tree_restores_onto_the_partition_with_its_own_label() {
    let mut devs = devices();
    devs[2].dev.fs = fs("ext3", Some("root-xyz"), Some("whatever"));
    let b = BackupFacts {
        kind: BackupKind::XenServerTree,
        generation: None,
        host: "xs1".into(),
        created: "2026-11-30T02:00:00Z".into(),
        product_version: Some("8.2.1".into()),
        device: "sda4".into(),
        manifest: None,
        system_files: Some(SystemFiles {
            fstab: Some(XS_FSTAB.into()),
            grub_cfg: Some(XS_GRUB.into()),
            inventory: Some(XS_INV.into()),
        }),
        content_bytes: GIB,
        entries: 40_000,
    };
    let p = run(&b, &devs, TargetRequest::Automatic).unwrap();
    assert_eq!(p.root_device, "/dev/sda2");
    assert_eq!(p.root_identity.label.as_deref(), Some("root-xyz"));
    // The final identity comes from the backup, whatever the target says now: after an
    // interrupted restore the target is labelled lifeboat-partial and still found.
    devs[2].dev.fs = fs("ext3", Some(model::PARTIAL_LABEL), Some("random"));
    let p = run(&b, &devs, TargetRequest::Automatic).unwrap();
    assert_eq!(p.root_device, "/dev/sda2");
    assert!(
        matches!(&p.steps.last().unwrap().action, Action::SetFinalIdentity { label, .. } if label.as_deref() == Some("root-xyz"))
    );
    // A wiped root (no signature) in XenServer's layout: partition 1 of the backup's disk,
    // never one that holds something else (here sda1 is the ESP: refused, not written).
    let e = run(&b, &wiped(&devs, 2), TargetRequest::Automatic).unwrap_err();
    assert!(matches!(e, PlanError::RootNotFound { .. }), "{e}");
    let mut xs = wiped(&devs, 2);
    xs[1].dev.fs = None;
    xs[1].dev.size = 18 * GIB;
    let p = run(&b, &xs, TargetRequest::Automatic).unwrap();
    assert_eq!(p.root_device, "/dev/sda1");
    assert_eq!(p.root_identity.label.as_deref(), Some("root-xyz"));
    // Without its files the identity cannot be decided: refused.
    let b = BackupFacts {
        system_files: None,
        kind: BackupKind::PlainTar,
        ..b
    };
    let e = run(&b, &devs, TargetRequest::Automatic).unwrap_err();
    assert!(matches!(e, PlanError::NoIdentity { .. }), "{e}");
    // And mode (b) needs a recorded layout.
    let b = BackupFacts {
        system_files: Some(SystemFiles {
            fstab: Some(XS_FSTAB.into()),
            ..Default::default()
        }),
        ..b
    };
    let e = run(&b, &devs, TargetRequest::Disk("sdb".into())).unwrap_err();
    assert_eq!(
        e,
        PlanError::NoDiskLayout {
            device: "/dev/sdb".into()
        }
    );
}

/// `devs` with the filesystem of entry `i` wiped.
fn wiped(devs: &[DeviceFacts], i: usize) -> Vec<DeviceFacts> {
    let mut d = devs.to_vec();
    d[i].dev.fs = None;
    d
}

#[derive(Debug)]
struct B(&'static str, &'static str);
impl Dated for B {
    fn created(&self) -> &str {
        self.0
    }
    fn host(&self) -> &str {
        self.1
    }
    fn machine(&self) -> Option<&MachineIdentity> {
        None
    }
    fn label(&self) -> String {
        format!("{} of {}", self.0, self.1)
    }
}

#[derive(Debug)]
struct M(&'static str, &'static str, MachineIdentity);
impl Dated for M {
    fn created(&self) -> &str {
        self.0
    }
    fn host(&self) -> &str {
        self.1
    }
    fn machine(&self) -> Option<&MachineIdentity> {
        Some(&self.2)
    }
    fn label(&self) -> String {
        self.0.into()
    }
}

#[test]
fn latest_is_the_newest_backup_of_this_host_by_time_taken() {
    let this = ThisHost {
        machine: this_machine(),
        hostname: "xs1".into(),
    };
    let items = [
        B("2026-11-30T02:00:00Z", "xs1"),
        // Newer, but another host's (a USB stick from elsewhere).
        B("2026-12-01T02:00:00Z", "xs2"),
        // Listed last but taken earlier.
        B("2026-11-29T02:00:00Z", "xs1"),
    ];
    assert_eq!(
        select_latest(&items, &this).unwrap().0,
        "2026-11-30T02:00:00Z"
    );
    let e = select_latest(&items[1..2], &this).unwrap_err();
    assert!(
        e.to_string()
            .contains("only when chosen by hand: 2026-12-01T02:00:00Z of xs2"),
        "{e}"
    );
    assert_eq!(
        select_latest::<B>(&[], &this).unwrap_err(),
        LatestError::None
    );
    // The machine identity wins over the host name when both sides have it.
    let other = MachineIdentity {
        product_uuid: Some("99999999-0000-0000-0000-000000000000".into()),
        ..Default::default()
    };
    let items = [
        M("2026-11-30T02:00:00Z", "renamed", this_machine()),
        M("2026-12-01T02:00:00Z", "xs1", other),
    ];
    assert_eq!(select_latest(&items, &this).unwrap().1, "renamed");
    // A machine that cannot read its identity falls back to the host name.
    let blind = ThisHost {
        machine: MachineIdentity::default(),
        hostname: "xs1".into(),
    };
    assert_eq!(select_latest(&items, &blind).unwrap().1, "xs1");
    // Why: the UUID, else the serial, else a MAC both record, else the host name.
    use crate::plan::latest::{match_reason, ThisHostMatch};
    assert_eq!(
        match_reason(&items[0], &this),
        Some(ThisHostMatch::ProductUuid)
    );
    assert_eq!(match_reason(&items[1], &this), None);
    let nic = |macs: &[&str]| MachineIdentity {
        macs: macs.iter().map(|m| m.to_string()).collect(),
        ..Default::default()
    };
    let by_mac = ThisHost {
        machine: nic(&["52:54:00:12:34:56", "52:54:00:aa:bb:cc"]),
        hostname: String::new(),
    };
    let b = M("2026-11-30T02:00:00Z", "xs9", nic(&["52:54:00:AA:BB:CC"]));
    let why = match_reason(&b, &by_mac).unwrap();
    assert_eq!(why.to_string(), "MAC address 52:54:00:AA:BB:CC matches");
    assert_eq!(
        match_reason(
            &M("2026-11-30T02:00:00Z", "xs9", nic(&["52:54:00:00:00:01"])),
            &by_mac
        ),
        None
    );
    assert_eq!(match_reason(&items[0], &blind), None);
    assert_eq!(
        match_reason(&items[1], &blind).unwrap().to_string(),
        "host name matches"
    );
}

fn dmi(uuid: &str, serial: &str) -> MachineIdentity {
    MachineIdentity {
        product_uuid: Some(uuid.into()),
        product_serial: Some(serial.into()),
        ..Default::default()
    }
}

const AMI_UUID: &str = "03000200-0400-0500-0006-000700080009";
const OEM: &str = "To Be Filled By O.E.M.";

#[test]
fn firmware_placeholders_do_not_make_two_machines_one() {
    // Two boards whose firmware both say "To Be Filled By O.E.M." (and the AMI placeholder
    // UUID): the other machine's backup, newer, is not this host's. The image knows no host
    // name, so nothing says it is this machine's.
    let this = ThisHost {
        machine: dmi(AMI_UUID, OEM),
        hostname: String::new(),
    };
    let other = M("2026-12-01T02:00:00Z", "xs2", dmi(AMI_UUID, OEM));
    assert!(!is_this_host(&other, &this));
    let e = select_latest(std::slice::from_ref(&other), &this).unwrap_err();
    assert!(matches!(e, LatestError::OtherHostsOnly { .. }), "{e}");
    // With a host name the placeholders are no identity and the host name decides.
    let named = ThisHost {
        hostname: "xs1".into(),
        ..this.clone()
    };
    assert!(!is_this_host(&other, &named));
    let mine = M("2026-11-30T02:00:00Z", "xs1", dmi(AMI_UUID, OEM));
    assert!(is_this_host(&mine, &named));
    assert!(!e.to_string().contains(AMI_UUID), "{e}");

    // A placeholder UUID but a real serial, equal: the same machine, by its serial; a real,
    // different serial: another machine.
    let this = ThisHost {
        machine: dmi("00000000-0000-0000-0000-000000000000", "CZ1234ABCD"),
        hostname: String::new(),
    };
    assert!(is_this_host(
        &M(
            "t",
            "xs1",
            dmi("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", "CZ1234ABCD")
        ),
        &this
    ));
    assert!(!is_this_host(
        &M(
            "t",
            "xs1",
            dmi("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", "CZ9999ZZZZ")
        ),
        &this
    ));

    // A placeholder on one side only: the backup's UUID (recorded before a firmware update
    // gave the board a real one), the serial decides.
    let this = ThisHost {
        machine: dmi(MACHINE, "CZ1234ABCD"),
        hostname: String::new(),
    };
    assert!(is_this_host(
        &M("t", "xs1", dmi(AMI_UUID, "CZ1234ABCD")),
        &this
    ));
    assert!(!is_this_host(&M("t", "xs1", dmi(AMI_UUID, OEM)), &this));
    // ... or this machine's: its placeholder matches nothing, not even the same placeholder.
    let this = ThisHost {
        machine: dmi(AMI_UUID, "Default string"),
        hostname: String::new(),
    };
    assert!(!is_this_host(
        &M("t", "xs1", dmi(AMI_UUID, "Default string")),
        &this
    ));
}

#[test]
fn placeholders_are_unknown_in_the_identity_check() {
    // The backup recorded placeholders only: nothing to compare (as for a backup that records
    // no machine), the disk checks decide.
    let mut b = backup(manifest());
    b.manifest.as_mut().unwrap().machine = dmi(AMI_UUID, OEM);
    let p = plan(
        &b,
        &devices(),
        &TargetRequest::Automatic,
        &dmi(AMI_UUID, OEM),
    )
    .unwrap();
    assert_eq!(p.identity_mismatches, Vec::<String>::new());
    // A placeholder UUID and the same real serial: the same machine, no consent asked.
    b.manifest.as_mut().unwrap().machine = dmi(AMI_UUID, "CZ1234ABCD");
    let p = plan(
        &b,
        &devices(),
        &TargetRequest::Automatic,
        &dmi(MACHINE, "CZ1234ABCD"),
    )
    .unwrap();
    assert!(!p.needs_consent, "{:?}", p.identity_mismatches);
    // A real serial recorded, this machine reports a placeholder: unknown, consent.
    let p = plan(
        &b,
        &devices(),
        &TargetRequest::Automatic,
        &dmi(MACHINE, OEM),
    )
    .unwrap();
    assert!(p.needs_consent);
    assert_eq!(
        p.identity_mismatches,
        ["machine serial: backup CZ1234ABCD, this machine unknown"]
    );
}

#[test]
fn a_plan_is_json_and_lines_for_a_person() {
    let mut b = backup(manifest());
    b.manifest.as_mut().unwrap().source.disks = vec![layout()];
    let p = run(&b, &devices(), TargetRequest::Disk("sdb".into())).unwrap();
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.contains("\"mode\":\"blank-disk\""), "{json}");
    assert!(json.contains("\"kind\":\"create_table\""), "{json}");
    let back: Plan = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
    let lines = render(&p);
    assert!(
        lines[0].starts_with("Restore plan: recreate the whole recorded disk layout"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l == "      ERASES what is on /dev/sdb now: nothing (a blank disk)"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("/dev/sdb7: leave empty, never formatted")),
        "{lines:?}"
    );
    let p = run(&b, &devices(), TargetRequest::Automatic).unwrap();
    let lines = render(&p);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("ERASES what is on /dev/sda2 now: ext4 labelled root-abc")),
        "{lines:?}"
    );
    // Mode (a) with a recorded layout boots the restored disk next.
    assert_eq!(p.steps.last().unwrap().id, "set-boot-next");
    // Resuming: the steps a journal records as done are skipped.
    let done = vec![
        "make-filesystem-p2".to_string(),
        "make-filesystem-p1".to_string(),
    ];
    assert_eq!(p.remaining(&done).next().unwrap().id, "restore-root");
}

#[test]
fn small_files_are_collected_while_verifying() {
    use crate::archive::entry::{Entry, EntryKind, FileFlags, Timestamp};
    use crate::archive::verify::{verify_tar, verify_tar_collecting, SmallFiles};
    use crate::archive::writer::ArchiveWriter;
    use crate::codec::Codec;
    let file = |path: &str, content: &[u8]| Entry {
        path: path.as_bytes().to_vec(),
        kind: EntryKind::File { sparse: None },
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: Timestamp {
            secs: 1_700_000_000,
            nanos: 0,
        },
        size: content.len() as u64,
        xattrs: vec![],
        flags: FileFlags::default(),
        checksum: Some(*blake3::hash(content).as_bytes()),
    };
    let mut dir = file("etc", b"");
    dir.kind = EntryKind::Dir;
    dir.checksum = None;
    let mut w = ArchiveWriter::new(Vec::new(), &manifest()).unwrap();
    w.append(&dir, &mut &b""[..]).unwrap();
    for (p, c) in [
        ("etc/fstab", XS_FSTAB.as_bytes()),
        ("etc/hosts", b"127.0.0.1 x\n"),
        ("etc/xensource-inventory", XS_INV.as_bytes()),
    ] {
        w.append(&file(p, c), &mut &c[..]).unwrap();
    }
    let (tar, _) = w.finish(vec![], 0).unwrap();
    let mut files = SmallFiles::new(&[facts::FSTAB, facts::GRUB_CFG, facts::INVENTORY]);
    let r = verify_tar_collecting(&tar[..], Codec::None, &mut files).unwrap();
    assert_eq!(r.counts, verify_tar(&tar[..], Codec::None).unwrap().counts);
    assert_eq!(files.found.len(), 2);
    assert_eq!(files.text("etc/fstab").as_deref(), Some(XS_FSTAB));
    assert_eq!(files.text(facts::GRUB_CFG), None);
    let id = identity_from_system_files(
        files.text(facts::FSTAB).as_deref(),
        files.text(facts::GRUB_CFG).as_deref(),
        files.text(facts::INVENTORY).as_deref(),
    )
    .unwrap();
    assert_eq!(id.fs.label.as_deref(), Some("root-xyz"));
}

#[test]
fn facts_from_a_scan_know_the_boot_medium_and_blank_disks() {
    let devs: Vec<BlockDev> = devices().into_iter().map(|d| d.dev).collect();
    let f = facts::from_scan(&devs);
    let by = |n: &str| f.iter().find(|d| d.dev.name == n).unwrap();
    assert!(by("sr0").boot_medium && !by("sda").boot_medium);
    assert!(by("sdb").blank && by("sdd").blank);
    assert!(!by("sda").blank && !by("sdc").blank && !by("sr0").blank && !by("sda2").blank);
}

// md RAID1 (issue 9 item 5): the root on an array of two legs, metadata 1.0, one leg on
// each of two disks; the backup on a third disk.

const MD_UUID: &str = "a1b2c3d4:11111111:22222222:33333333";

fn md_manifest() -> Manifest {
    let mut m = manifest();
    m.source.partition = PartitionIdentity::default();
    m.source.esp = None;
    m.source.esp_partition = None;
    let mib = 1u64 << 20;
    let leg = |disk: &str, table: &str, role: u32| DiskLayout {
        kernel_name: Some(disk.into()),
        size_bytes: 20 * GIB,
        sector_size: 512,
        table_type: "gpt".into(),
        table_id: table.into(),
        partitions: vec![
            PartitionLayout {
                number: 1,
                start_bytes: mib,
                size_bytes: mib,
                type_id: crate::identity::gpt::types::BIOS_BOOT.into(),
                partuuid: format!("{table}-1"),
                content: PartitionContent::BiosBoot {
                    data: "KLUv".into(),
                    b3: "ab".repeat(32),
                },
                ..Default::default()
            },
            PartitionLayout {
                number: 2,
                start_bytes: 2 * mib,
                size_bytes: 19 * GIB,
                type_id: "a19d880f-05fc-4d3b-a006-743f0f84911e".into(),
                partuuid: format!("{table}-2"),
                content: PartitionContent::MdMember(crate::archive::disk_layout::MdMember {
                    array_uuid: MD_UUID.into(),
                    name: Some("xs1:root".into()),
                    level: "raid1".into(),
                    metadata: "1.0".into(),
                    raid_disks: 2,
                    role: Some(role),
                    filesystem: Some(root_fs()),
                }),
                mountpoint: Some("/".into()),
                ..Default::default()
            },
        ],
        boot: BootChain {
            mbr_boot_code: Some("eb63".into()),
            uefi_entries: vec![],
        },
        ..Default::default()
    };
    m.source.disks = vec![
        leg("vda", "aaaaaaaa-0000-0000-0000-00000000000a", 0),
        leg("vdb", "bbbbbbbb-0000-0000-0000-00000000000b", 1),
    ];
    m
}

fn md_backup() -> BackupFacts {
    BackupFacts {
        device: "vdc1".into(),
        ..backup(md_manifest())
    }
}

/// vda2 + vdb2: the legs (each shows the root's ext4 too: metadata 1.0 keeps the data at
/// offset 0), md0: the assembled array, vdc1: the store holding the backup.
fn md_devices(legs: &[&str], assembled: bool) -> Vec<DeviceFacts> {
    let mut out = Vec::new();
    for name in ["vda", "vdb"] {
        let d = disk(name, &format!("S-{name}"), 20 * GIB);
        if legs.contains(&name) {
            let mut p = part(
                &d,
                2,
                19 * GIB,
                &format!("pu-{name}2"),
                fs("ext4", Some("root-abc"), Some(ROOT_UUID)),
            );
            p.md_array = Some(format!("{MD_UUID} (metadata 1.0)"));
            out.push(d);
            out.push(p);
        } else {
            out.push(d);
        }
    }
    if assembled {
        let mut md0 = disk("md0", "", 19 * GIB);
        md0.dev.serial = None;
        md0.dev.model = None;
        md0.dev.fs = fs("ext4", Some("root-abc"), Some(ROOT_UUID));
        out.push(md0);
    }
    let vdc = disk("vdc", "S-vdc", 10 * GIB);
    let mut store = part(
        &vdc,
        1,
        10 * GIB,
        "pu-c1",
        fs("ext4", Some("lifeboat"), Some("uc1")),
    );
    store.holds = Some(Holds::LifeboatStore);
    out.push(vdc);
    out.push(store);
    out
}

#[test]
fn md_root_is_restored_through_the_array_never_a_leg() {
    let p = run(
        &md_backup(),
        &md_devices(&["vda", "vdb"], true),
        TargetRequest::Automatic,
    )
    .unwrap();
    assert_eq!(p.mode, Mode::RecordedDisk);
    assert_eq!(p.root_device, "/dev/md0");
    assert_eq!(
        ids(&p),
        [
            "start-md-array",
            "make-filesystem-md0",
            "restore-root",
            "set-final-identity"
        ]
    );
    match &p.steps[0].action {
        Action::StartMdArray {
            array_uuid,
            legs,
            degraded,
            raid_disks,
        } => {
            assert_eq!(array_uuid, MD_UUID);
            assert_eq!(legs, &["/dev/vda2", "/dev/vdb2"]);
            assert_eq!((*degraded, *raid_disks), (false, 2));
        }
        a => panic!("{a:?}"),
    }
    assert!(p.steps.iter().all(|s| !s.device.starts_with("/dev/vd")));
    // Naming a leg by hand is refused as a leg.
    let e = run(
        &md_backup(),
        &md_devices(&["vda", "vdb"], true),
        target("vdb2"),
    )
    .unwrap_err();
    assert!(matches!(e, PlanError::MdLeg { .. }), "{e}");
}

#[test]
fn md_root_with_one_leg_is_degraded_and_said_so() {
    let p = run(
        &md_backup(),
        &md_devices(&["vdb"], true),
        TargetRequest::Automatic,
    )
    .unwrap();
    assert_eq!(p.root_device, "/dev/md0");
    assert!(matches!(
        &p.steps[0].action,
        Action::StartMdArray { degraded: true, legs, .. } if legs == &["/dev/vdb2"]
    ));
    assert!(
        p.notes.iter().any(|n| n.contains("DEGRADED")),
        "{:?}",
        p.notes
    );
    assert!(render(&p).iter().any(|l| l.contains("DEGRADED")));
}

#[test]
fn md_root_not_assembled_is_refused_not_written_through_a_leg() {
    let e = run(
        &md_backup(),
        &md_devices(&["vda", "vdb"], false),
        TargetRequest::Automatic,
    )
    .unwrap_err();
    assert!(matches!(e, PlanError::MdNotAssembled { .. }), "{e}");
    assert!(e.to_string().contains("/dev/vda2, /dev/vdb2"), "{e}");
}

#[test]
fn md_root_on_two_blank_disks_recreates_the_array() {
    let mut devs = md_devices(&[], false);
    for name in ["vdd", "vde"] {
        let mut d = disk(name, &format!("S-{name}"), 25 * GIB);
        d.blank = true;
        devs.push(d);
    }
    let p = run(&md_backup(), &devs, TargetRequest::Disk("vdd,vde".into())).unwrap();
    assert_eq!(p.mode, Mode::BlankDisk);
    assert_eq!(p.root_device, "/dev/md0");
    assert_eq!(
        ids(&p),
        [
            "create-table",
            "create-partition-p1",
            "create-partition-p2",
            "create-table-d2",
            "create-partition-d2-p1",
            "create-partition-d2-p2",
            "create-md-array",
            "make-filesystem-md",
            "write-bios-boot-p1",
            "write-bios-boot-d2-p1",
            "restore-root",
            "set-final-identity"
        ]
    );
    let s = p.step("create-md-array").unwrap();
    assert_eq!(s.device, "/dev/md0");
    assert_eq!(
        s.action,
        Action::CreateMdArray {
            array_uuid: MD_UUID.into(),
            name: Some("xs1:root".into()),
            level: "raid1".into(),
            metadata: "1.0".into(),
            members: vec!["/dev/vdd2".into(), "/dev/vde2".into()],
        }
    );
    // The second recorded disk goes to the second disk named.
    assert_eq!(p.step("create-table-d2").unwrap().device, "/dev/vde");
    // The legs get no filesystem of their own.
    assert!(p
        .steps
        .iter()
        .all(|s| !matches!(s.action, Action::MakeFilesystem { .. }) || s.device == "/dev/md0"));
    // One disk for two recorded ones: refused, saying how to name both.
    let e = run(&md_backup(), &devs, TargetRequest::Disk("vdd".into())).unwrap_err();
    assert_eq!(
        e,
        PlanError::MdDiskCount {
            needed: 2,
            named: 1
        }
    );
    assert!(e.to_string().contains("lifeboat.disk=DISK1,DISK2"));
}

#[test]
fn the_printed_plan_names_recorded_bytes_but_never_prints_them() {
    let mut b = backup(manifest());
    b.manifest.as_mut().unwrap().source.disks = vec![layout()];
    let p = run(&b, &devices(), TargetRequest::Disk("sdb".into())).unwrap();
    let printed = p.public_json();
    let step = printed["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "write-bios-boot-p1")
        .unwrap();
    assert_eq!(step["action"]["b3"], "ab".repeat(32));
    assert!(!printed.to_string().contains("\"KLUv\""));
    assert_eq!(step["action"]["data"], "(4 bytes of base64, not printed)");
    // The plan itself (what the journal and the executor use) keeps the bytes.
    assert!(matches!(&p.step("write-bios-boot-p1").unwrap().action,
        Action::WriteBiosBoot { data, .. } if data == "KLUv"));
}
