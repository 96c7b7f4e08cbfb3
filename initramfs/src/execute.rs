//! Runs a restore plan (`lifeboat_core::plan::Plan`) step by step: the partition table, the
//! filesystems with their recorded identity (the root under a temporary one until the end),
//! swap, the boot chain, the restore of the root (and ESP), the final identity, the UEFI boot
//! entries. Each step is announced with what it writes; the store's journal records
//! `restore-started` before the first and `restore-done` after the last.
//!
//! Every step can be repeated: the disk-level ones rewrite what they wrote, and the root (and
//! ESP) is always made again before it is filled. The store's journal records the plan's steps
//! and each one done, so an interrupted plan resumes on the next boot at the first step not
//! done (`crate::restore_flow`; core's plan finds the root under its temporary label, or the
//! disk it recreated, and must come out the same).

use crate::discover::{Backup, BackupKind};
use crate::mkfs::{self, ExtTools};
use crate::mounts;
use crate::progress_line::LineProgress;
use crate::{console::say, copytree, store_view};
use anyhow::{anyhow, bail, Context, Result};
use lifeboat_core::archive::disk_layout::{DiskLayout, PartitionContent, UefiBootEntry};
use lifeboat_core::archive::manifest::FilesystemIdentity;
use lifeboat_core::identity::table::ReadAt;
use lifeboat_core::identity::{efivars, gpt_write, layout, swap};
use lifeboat_core::plan::{render, Action, Mode, Plan, Step};
use lifeboat_core::progress::{human_bytes, Progress};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TARGET_DIR: &str = "/run/lifeboat/target";
const EFIVARS: &str = "/sys/firmware/efi/efivars";

/// What running the steps needs besides the plan.
pub struct Executor<'a> {
    pub plan: &'a Plan,
    pub backup: &'a Backup,
    pub tools: &'a ExtTools,
    /// The recorded Boot#### numbers and the numbers they were written under (another entry
    /// may hold the recorded number on this machine).
    boot_numbers: BTreeMap<u16, u16>,
    /// What the root restore reported.
    pub report: Option<String>,
}

impl<'a> Executor<'a> {
    pub fn new(plan: &'a Plan, backup: &'a Backup, tools: &'a ExtTools) -> Self {
        Executor {
            plan,
            backup,
            tools,
            boot_numbers: BTreeMap::new(),
            report: None,
        }
    }

    /// Runs the steps from index `start` (0: the first) in order, calling `done` after each one
    /// completes (the journal records it); the first failure stops the run, naming the step.
    /// A run that resumes at or before the root's restore but after its mkfs makes the root
    /// (and the ESP) again first: a half-filled filesystem is never filled again as it is.
    pub fn run_from(&mut self, start: usize, mut done: impl FnMut(&Step)) -> Result<()> {
        let n = self.plan.steps.len();
        let steps = &self.plan.steps;
        let restores_root = steps
            .iter()
            .skip(start)
            .any(|s| matches!(s.action, Action::RestoreRoot));
        // An md array a skipped step created was assembled read-only by discovery: writable
        // again before the steps that write through it.
        for (i, step) in steps.iter().enumerate().take(start) {
            if matches!(step.action, Action::CreateMdArray { .. }) {
                say(&format!(
                    "Step {}/{n} done before: the md array {} it created becomes writable again",
                    i + 1,
                    step.device
                ));
                crate::md::start_array(&step.device, &[], false).with_context(|| {
                    format!("step {}/{n} \"{}\" on {}", i + 1, step.id, step.device)
                })?;
            }
        }
        if restores_root {
            for (i, step) in steps.iter().enumerate().take(start) {
                if matches!(&step.action, Action::MakeFilesystem { role, .. } if role == "root" || role == "esp")
                {
                    say(&format!(
                        "Step {}/{n} again: {} ({}): the filesystem is made again before it is filled",
                        i + 1,
                        render::describe_action(&step.action),
                        step.device
                    ));
                    self.one(i, step)?;
                }
            }
        }
        for (i, step) in steps.iter().enumerate().skip(start) {
            say(&format!(
                "Step {}/{n}: {} ({})",
                i + 1,
                render::describe_action(&step.action),
                step.device
            ));
            self.one(i, step)?;
            done(step);
            crate::power::handle_ctrl_alt_del();
        }
        Ok(())
    }

    fn one(&mut self, i: usize, step: &Step) -> Result<()> {
        let n = self.plan.steps.len();
        self.step(step).with_context(|| {
            format!(
                "step {}/{n} \"{}\" on {} failed",
                i + 1,
                step.id,
                step.device
            )
        })
    }

    fn step(&mut self, step: &Step) -> Result<()> {
        let dev = step.device.as_str();
        match &step.action {
            Action::CreateTable { table_id, .. } => {
                let layout = self.layout(table_id)?;
                unmount_all_of_disk(dev)?;
                gpt_write::write_table_to(Path::new(dev), layout)
                    .with_context(|| format!("cannot write the partition table of {dev}"))?;
                reread_partitions(dev)
            }
            Action::CreatePartition { number, .. } => wait_for_node(dev, *number),
            Action::MakeFilesystem {
                fs,
                temporary_identity,
                role,
            } => {
                mounts_released(dev)?;
                let fs = if *temporary_identity {
                    mkfs::partial_identity(fs)
                } else {
                    fs.clone()
                };
                say(&format!(
                    "Creating {} on {dev} (label {}{}) ...",
                    fs.fstype,
                    fs.label.as_deref().unwrap_or("none"),
                    if *temporary_identity {
                        " and a temporary UUID until the restore is complete"
                    } else {
                        ""
                    }
                ));
                make_fs(self.tools, &fs, dev)
                    .with_context(|| format!("cannot create the {role} filesystem on {dev}"))
            }
            Action::MakeEmptyFilesystem { fs, role } => {
                mounts_released(dev)?;
                make_fs(self.tools, fs, dev)
                    .with_context(|| format!("cannot recreate the {role} filesystem on {dev}"))
            }
            Action::MakeSwap { uuid, label } => {
                mounts_released(dev)?;
                let size = device_size(dev)?;
                let page =
                    swap::header(size, uuid.as_deref(), label.as_deref()).ok_or_else(|| {
                        anyhow!(
                            "cannot make swap on {dev}: {size} bytes, or a malformed recorded UUID"
                        )
                    })?;
                write_at(dev, 0, &page)
            }
            Action::LeaveEmpty { reason } => {
                say(&format!("  {dev} stays empty: {reason}"));
                Ok(())
            }
            Action::WriteBiosBoot { data, b3 } => {
                let bytes = layout::bios_boot_bytes(&PartitionContent::BiosBoot {
                    data: data.clone(),
                    b3: b3.clone(),
                })
                .context("the recorded BIOS boot partition does not decode")?;
                let size = device_size(dev)?;
                if bytes.len() as u64 > size {
                    bail!(
                        "the recorded BIOS boot code ({} bytes) does not fit {dev} ({size} bytes)",
                        bytes.len()
                    );
                }
                write_at(dev, 0, &bytes)
            }
            Action::RestoreRoot => {
                let report = self.restore_root(dev)?;
                say(&format!("  {report}"));
                self.report = Some(report);
                Ok(())
            }
            Action::RestoreEsp => {
                // The ESP was mounted at /boot/efi beneath the root while the root was restored:
                // its files came with it.
                say(&format!(
                    "  {dev}: the files of /boot/efi were restored with the root"
                ));
                Ok(())
            }
            Action::SetFinalIdentity { uuid, label } => {
                let fs = FilesystemIdentity {
                    uuid: uuid.clone(),
                    label: label.clone(),
                    ..self.plan.root_identity.clone()
                };
                say(&format!(
                    "Setting the recorded label ({}) and UUID ({}) on {dev} ...",
                    label.as_deref().unwrap_or("none"),
                    uuid.as_deref().unwrap_or("a new one")
                ));
                mkfs::set_final_identity(self.tools, &fs, dev).with_context(|| {
                    format!(
                        "{dev} holds the complete root under the temporary label {}: restore again, or set the label and UUID with tune2fs from the rescue shell",
                        mkfs::PARTIAL_LABEL
                    )
                })?;
                crate::power::sync_all();
                Ok(())
            }
            Action::SetUefiBootEntry { entry } => self.set_boot_entry(entry),
            Action::SetBootNext {
                number,
                description,
            } => self.set_boot_next(*number, description),
            Action::StartMdArray { legs, degraded, .. } => {
                crate::md::start_array(dev, legs, *degraded)
            }
            Action::CreateMdArray {
                array_uuid,
                name,
                level,
                metadata,
                members,
            } => {
                crate::md::create_array(dev, array_uuid, name.as_deref(), level, metadata, members)
            }
        }
    }

    /// The recorded layout with this table id.
    fn layout(&self, table_id: &str) -> Result<&'a DiskLayout> {
        self.plan_layouts()
            .iter()
            .find(|l| l.table_id.eq_ignore_ascii_case(table_id))
            .ok_or_else(|| anyhow!("the backup records no disk with table id {table_id}"))
    }

    fn plan_layouts(&self) -> &'a [DiskLayout] {
        match &self.backup.kind {
            BackupKind::Lifeboat { manifest, .. } | BackupKind::Repo { manifest, .. } => {
                &manifest.source.disks
            }
            BackupKind::XenTree { .. } => &[],
        }
    }

    /// Mounts the root (and the ESP at /boot/efi beneath it), fills it from the backup, checks
    /// that everything the backup records was written, then syncs and unmounts.
    fn restore_root(&self, root: &str) -> Result<String> {
        let target = PathBuf::from(TARGET_DIR);
        let mut mounted = Mounted { dirs: Vec::new() };
        mounts::mount_fs(root, &target, &self.plan.root_identity.fstype, false)?;
        mounted.dirs.push(target.clone());
        if let Some(esp) = &self.plan.esp_device {
            let dir = target.join("boot/efi");
            mounts::mount_fs(esp, &dir, "vfat", false)?;
            mounted.dirs.push(dir);
        }
        let b = self.backup;
        let report = match &b.kind {
            BackupKind::Lifeboat { archive, .. } => {
                say("Extracting ...");
                let p = LineProgress::new("extract");
                p.set_total(Some(b.size));
                let r = store_view::extract(store_view::Source::File(archive), &target, &p);
                p.finish();
                r
            }
            BackupKind::Repo {
                session, remote, ..
            } => {
                say(&format!(
                    "Extracting from {} (streamed again, every chunk checked) ...",
                    session.url
                ));
                let p = LineProgress::new("extract");
                p.set_total(Some(b.size));
                let src = store_view::Source::Repo {
                    session,
                    generation: remote,
                };
                let r = store_view::extract(src, &target, &p);
                p.finish();
                r
            }
            BackupKind::XenTree { .. } => {
                say("Copying the XenServer backup tree ...");
                let p = LineProgress::new("copy");
                p.set_total(Some(b.size));
                let r = copytree::copy_tree(&b.mount, &target, &p).map(|s| s.summary());
                p.finish();
                r
            }
        };
        let report = report.with_context(|| {
            format!(
                "the restore stopped: {root} holds an INCOMPLETE root (label {}): do not boot it. Restore again from the menu",
                mkfs::PARTIAL_LABEL
            )
        })?;
        say("Syncing ...");
        mounted
            .release()
            .context("the restored root may not be fully written; restore again")?;
        crate::power::sync_all();
        Ok(report)
    }

    /// Writes the recorded boot entry under its recorded number, or under a free one when
    /// another entry holds that number here, and puts it at its recorded place in BootOrder.
    fn set_boot_entry(&mut self, e: &UefiBootEntry) -> Result<()> {
        let Some(dir) = efivars_dir()? else {
            say("  not booted by UEFI here: the firmware's boot entries cannot be written (choose the disk in the firmware's boot menu)");
            return Ok(());
        };
        let option = hex::decode(&e.load_option)
            .with_context(|| format!("the recorded entry Boot{:04X} is not hex", e.number))?;
        let existing = efivars::read_boot_entries(&dir);
        let number = match existing.iter().find(|x| x.number == e.number) {
            Some(x) if x.load_option.eq_ignore_ascii_case(&e.load_option) => e.number,
            Some(_) => efivars::first_free_boot_number(&dir)
                .ok_or_else(|| anyhow!("no free Boot#### number is left in the firmware"))?,
            None => e.number,
        };
        efivars::write_boot_entry(&dir, number, &option)?;
        let mut order: Vec<u16> = efivars::boot_order(&dir)
            .into_iter()
            .filter(|n| *n != number)
            .collect();
        let at = e
            .boot_order_position
            .map(|p| (p as usize).min(order.len()))
            .unwrap_or(order.len());
        order.insert(at, number);
        efivars::set_boot_order(&dir, &order)?;
        say(&format!(
            "  Boot{number:04X} \"{}\" ({}) at position {} of BootOrder",
            e.description,
            e.loader_path,
            at + 1
        ));
        self.boot_numbers.insert(e.number, number);
        Ok(())
    }

    fn set_boot_next(&self, recorded: u16, description: &str) -> Result<()> {
        let Some(dir) = efivars_dir()? else {
            say("  not booted by UEFI here: BootNext is not set");
            return Ok(());
        };
        // The number the entry was written under: by this run, or (a resumed run) found by
        // the recorded entry's bytes.
        let written = || {
            let entry = self.plan.steps.iter().find_map(|s| match &s.action {
                Action::SetUefiBootEntry { entry } if entry.number == recorded => Some(entry),
                _ => None,
            })?;
            efivars::read_boot_entries(&dir)
                .into_iter()
                .find(|x| x.load_option.eq_ignore_ascii_case(&entry.load_option))
                .map(|x| x.number)
        };
        let number = self
            .boot_numbers
            .get(&recorded)
            .copied()
            .or_else(written)
            .unwrap_or(recorded);
        if !efivars::boot_numbers(&dir).contains(&number) {
            say(&format!(
                "  the firmware has no Boot{number:04X} (\"{description}\"): BootNext is not set; choose the disk in the firmware's boot menu"
            ));
            return Ok(());
        }
        efivars::set_boot_next(&dir, number)?;
        say(&format!("  BootNext = Boot{number:04X} \"{description}\""));
        Ok(())
    }
}

struct Mounted {
    dirs: Vec<PathBuf>,
}

impl Mounted {
    fn release(&mut self) -> Result<()> {
        while let Some(d) = self.dirs.pop() {
            let _ = mounts::syncfs(&d);
            mounts::unmount(&d)?;
        }
        Ok(())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

fn make_fs(tools: &ExtTools, fs: &FilesystemIdentity, dev: &str) -> Result<()> {
    match fs.fstype.as_str() {
        t if t.starts_with("ext") => mkfs::make_ext(tools, fs, dev),
        "vfat" => mkfs::make_vfat(fs, dev),
        other => bail!("Lifeboat does not create {other} filesystems ({dev})"),
    }
}

/// Unmounts whatever this image mounted from `dev` (discovery probes read-only).
fn mounts_released(dev: &str) -> Result<()> {
    for dir in mounts::mounted_at(dev) {
        mounts::unmount(&dir)
            .with_context(|| format!("{dev} is in use and cannot be unmounted"))?;
    }
    Ok(())
}

/// Unmounts every partition of a disk this image mounted (a blank disk has none).
fn unmount_all_of_disk(disk: &str) -> Result<()> {
    let name = disk.trim_start_matches("/dev/");
    let parts = std::fs::read_dir(format!("/sys/class/block/{name}"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(name) && n != name)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for p in parts {
        mounts_released(&format!("/dev/{p}"))?;
    }
    mounts_released(disk)
}

fn device_size(dev: &str) -> Result<u64> {
    let f = File::open(dev).with_context(|| format!("cannot open {dev}"))?;
    ReadAt::size(&f).with_context(|| format!("cannot read the size of {dev}"))
}

/// Writes `bytes` at `offset` of a device and flushes them to it.
fn write_at(dev: &str, offset: u64, bytes: &[u8]) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .open(dev)
        .with_context(|| format!("cannot open {dev} for writing"))?;
    f.write_all_at(bytes, offset)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {} bytes at {offset} of {dev}", bytes.len()))
}

/// Asks the kernel to read the new partition table (a freshly written disk has nothing of it
/// mounted, so BLKRRPART succeeds; a few tries cover a udev-less kernel still busy with the
/// disk).
fn reread_partitions(disk: &str) -> Result<()> {
    let f = File::open(disk).with_context(|| format!("cannot open {disk}"))?;
    let mut last = None;
    for _ in 0..10 {
        match lifeboat_core::sys::reread_partitions(f.as_fd()) {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    match last {
        Some(e) => Err(e).with_context(|| {
            format!("the kernel did not take the new partition table of {disk}; reboot the recovery image to go on")
        }),
        None => Ok(()),
    }
}

/// Waits (up to 15 s) for the node of partition `number` after the table was written.
fn wait_for_node(dev: &str, number: u32) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if Path::new(dev).exists() && device_size(dev).is_ok_and(|s| s > 0) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!(
        "partition {number} ({dev}) did not appear within 15 s after the partition table was written"
    )
}

/// The efivarfs directory, mounted when the machine booted by UEFI; None on BIOS.
pub fn efivars_dir() -> Result<Option<PathBuf>> {
    if !Path::new("/sys/firmware/efi").exists() {
        return Ok(None);
    }
    let dir = PathBuf::from(EFIVARS);
    if !mounts::mounted_at("efivarfs").contains(&dir) {
        nix::mount::mount(
            Some("efivarfs"),
            &dir,
            Some("efivarfs"),
            nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
            None::<&str>,
        )
        .with_context(|| format!("cannot mount efivarfs on {EFIVARS}"))?;
    }
    Ok(Some(dir))
}

/// What a plan writes, for the confirmation question: every step that destroys something.
pub fn destroyed(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .filter_map(|s| s.destroys.as_ref().map(|d| format!("{}: {d}", s.device)))
        .collect()
}

/// A short line for the menu: what is overwritten, and how.
pub fn summary(plan: &Plan) -> String {
    match plan.mode {
        Mode::RecordedDisk => format!(
            "{}: {} ({} steps)",
            plan.root_device,
            plan.mode.describe(),
            plan.steps.len()
        ),
        Mode::BlankDisk => format!(
            "{} ({}, the whole disk: {})",
            plan.target_disk.dev_path,
            human_bytes(plan.target_disk.size_bytes),
            plan.mode.describe()
        ),
    }
}
