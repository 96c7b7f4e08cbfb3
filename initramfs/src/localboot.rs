//! Booting the local disk from the recovery image: an unattended request already done boots the
//! restored root's own default GRUB entry by kexec (kernel, initrd and command line read from
//! its grub.cfg), so that a per-host PXE entry or a CD left in the drive never restores twice.

use crate::console::say;
use crate::kexec;
use crate::mounts;
use crate::probe::BlockDev;
use anyhow::{anyhow, Context, Result};
use std::path::{Path, PathBuf};

/// Where the restored root is mounted (read-only) to read its boot files.
const ROOT_DIR: &str = "/run/lifeboat/localroot";
/// Where its ESP is mounted when the grub.cfg is there (UEFI XenServer: EFI/xenserver).
const ESP_DIR: &str = "/run/lifeboat/localesp";

/// The grub.cfg files looked for in the root, in this order.
const ROOT_GRUB_CFGS: &[&str] = &["boot/grub/grub.cfg", "boot/grub2/grub.cfg"];

/// One GRUB menu entry, as far as a kexec needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub title: String,
    /// `--id`, when given.
    pub id: Option<String>,
    /// The `linux` line's kernel path and arguments.
    pub kernel: Option<(String, String)>,
    /// The `initrd` line's paths.
    pub initrds: Vec<String>,
    /// A `multiboot`/`multiboot2` entry (Xen): not a Linux kernel kexec can start.
    pub multiboot: Option<String>,
}

/// The entries of a grub.cfg (those of a submenu too, addressed as "N>M") and its default.
#[derive(Debug, Default)]
pub struct GrubCfg {
    /// (index path such as "0" or "2>1", title path such as "Advanced>Debian", entry).
    pub entries: Vec<(String, String, Entry)>,
    pub default: Option<String>,
}

/// Splits a line into words, honouring single and double quotes and backslashes.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut any = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '#') if !any => break,
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    any = true;
                }
            }
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (_, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// The value of `set default=...` or `default=...`.
fn default_of(w: &[String]) -> Option<String> {
    let rest = match w.first().map(String::as_str) {
        Some("set") => w.get(1)?,
        _ => w.first()?,
    };
    rest.strip_prefix("default=").map(str::to_string)
}

/// Parses a grub.cfg: top-level and submenu entries, and `set default`.
pub fn parse(cfg: &str) -> GrubCfg {
    let mut out = GrubCfg::default();
    // Open blocks: (is a menu entry/submenu, its index, its title).
    let mut stack: Vec<(bool, usize, String)> = Vec::new();
    // Entries counted at each submenu level.
    let mut counters: Vec<usize> = vec![0];
    let mut current: Option<Entry> = None;
    for raw in cfg.lines() {
        let w = words(raw.trim());
        let Some(first) = w.first().map(String::as_str) else {
            continue;
        };
        let opens = raw.trim_end().ends_with('{');
        match first {
            "menuentry" | "submenu" if opens => {
                let title = w.get(1).cloned().unwrap_or_default();
                let level = counters.len() - 1;
                let index = counters[level];
                counters[level] += 1;
                let id = w
                    .iter()
                    .position(|x| x == "--id" || x == "$menuentry_id_option")
                    .and_then(|i| w.get(i + 1))
                    .cloned()
                    .or_else(|| {
                        w.iter()
                            .find_map(|x| x.strip_prefix("--id=").map(str::to_string))
                    });
                stack.push((true, index, title.clone()));
                if first == "submenu" {
                    counters.push(0);
                } else {
                    current = Some(Entry {
                        title,
                        id,
                        kernel: None,
                        initrds: Vec::new(),
                        multiboot: None,
                    });
                }
            }
            "}" => {
                let Some((menu, _, _)) = stack.last().cloned() else {
                    continue;
                };
                if menu {
                    if let Some(e) = current.take() {
                        let entries: Vec<&(bool, usize, String)> =
                            stack.iter().filter(|s| s.0).collect();
                        let path = entries
                            .iter()
                            .map(|s| s.1.to_string())
                            .collect::<Vec<_>>()
                            .join(">");
                        let titles = entries
                            .iter()
                            .map(|s| s.2.clone())
                            .collect::<Vec<_>>()
                            .join(">");
                        out.entries.push((path, titles, e));
                    } else if counters.len() > 1 {
                        counters.pop();
                    }
                }
                stack.pop();
            }
            _ => {
                if opens {
                    // if/for/function blocks.
                    stack.push((false, 0, String::new()));
                }
                if let Some(e) = current.as_mut() {
                    match first {
                        "linux" | "linux16" | "linuxefi" => {
                            if let Some(k) = w.get(1) {
                                e.kernel = Some((k.clone(), w[2..].join(" ")));
                            }
                        }
                        "initrd" | "initrd16" | "initrdefi" => {
                            e.initrds.extend(w[1..].iter().cloned());
                        }
                        "multiboot" | "multiboot2" => {
                            e.multiboot = w.get(1).cloned();
                        }
                        _ => {}
                    }
                } else if stack.iter().all(|s| !s.0) {
                    if let Some(d) = default_of(&w) {
                        out.default = Some(d);
                    }
                }
            }
        }
    }
    out
}

impl GrubCfg {
    /// The entry GRUB boots by default: `set default` as an index ("0", "1>2"), a title, a
    /// title path or an id; `saved`/`${saved_entry}` take `saved` (from grubenv); the first
    /// entry otherwise, as GRUB does.
    pub fn default_entry(&self, saved: Option<&str>) -> Option<&Entry> {
        let want = match self.default.as_deref() {
            Some("saved" | "${saved_entry}" | "$saved_entry") => saved,
            other => other,
        };
        want.and_then(|d| {
            self.entries
                .iter()
                .find(|(path, titles, e)| {
                    path == d || titles == d || e.title == d || e.id.as_deref() == Some(d)
                })
                .map(|x| &x.2)
        })
        .or_else(|| self.entries.first().map(|x| &x.2))
    }
}

/// `saved_entry=...` of a grubenv file.
fn saved_entry(grubenv: &str) -> Option<String> {
    grubenv
        .lines()
        .find_map(|l| l.strip_prefix("saved_entry="))
        .map(str::to_string)
}

/// A path of grub.cfg inside the filesystem mounted at `dir` (a `(hd0,gpt1)` prefix dropped;
/// with a separate /boot, paths are relative to it: tried below boot/ too).
fn resolve(dir: &Path, path: &str) -> Result<PathBuf> {
    let p = match path.strip_prefix('(') {
        Some(rest) => rest.split_once(')').map(|x| x.1).unwrap_or(rest),
        None => path,
    };
    let rel = p.trim_start_matches('/');
    [dir.join(rel), dir.join("boot").join(rel)]
        .into_iter()
        .find(|c| c.is_file())
        .ok_or_else(|| anyhow!("{path} (from grub.cfg) is not in the restored root"))
}

/// What the local boot will start.
#[derive(Debug)]
pub struct Plan {
    pub title: String,
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub cmdline: String,
}

/// The kexec plan for the default entry of a grub.cfg whose files are below `dir`.
pub fn plan(dir: &Path, cfg_text: &str, saved: Option<&str>) -> Result<Plan> {
    let cfg = parse(cfg_text);
    let e = cfg
        .default_entry(saved)
        .ok_or_else(|| anyhow!("grub.cfg has no menu entry"))?;
    if let Some(mb) = &e.multiboot {
        return Err(anyhow!(
            "the default boot entry \"{}\" starts the Xen hypervisor ({mb}) through multiboot; the recovery image can only start a Linux kernel by kexec, not Xen",
            e.title
        ));
    }
    let (kernel, args) = e.kernel.clone().ok_or_else(|| {
        anyhow!(
            "the default boot entry \"{}\" has no `linux` line: it does not start a Linux kernel",
            e.title
        )
    })?;
    if e.initrds.len() > 1 {
        return Err(anyhow!(
            "the default boot entry \"{}\" loads {} initrds; kexec here takes one",
            e.title,
            e.initrds.len()
        ));
    }
    Ok(Plan {
        title: e.title.clone(),
        kernel: resolve(dir, &kernel)?,
        initrd: e.initrds.first().map(|i| resolve(dir, i)).transpose()?,
        cmdline: args,
    })
}

/// Finds the restored system's grub.cfg (the root's, else the ESP's EFI/*/grub.cfg) and makes
/// the plan. Leaves the root (and the ESP) mounted read-only.
fn find_plan(root: &BlockDev, esp: Option<&BlockDev>) -> Result<Plan> {
    let dir = Path::new(ROOT_DIR);
    mounts::mount_probe(&root.dev_path(), dir, root.fstype())
        .with_context(|| format!("cannot read the restored root {}", root.dev_path()))?;
    for c in ROOT_GRUB_CFGS {
        let p = dir.join(c);
        if let Ok(text) = std::fs::read_to_string(&p) {
            let env = p.with_file_name("grubenv");
            let saved = std::fs::read_to_string(env)
                .ok()
                .and_then(|t| saved_entry(&t));
            say(&format!("Boot menu: {} on {}", c, root.dev_path()));
            return plan(dir, &text, saved.as_deref());
        }
    }
    if let Some(esp) = esp {
        let edir = Path::new(ESP_DIR);
        mounts::mount_probe(&esp.dev_path(), edir, "vfat")
            .with_context(|| format!("cannot read the ESP {}", esp.dev_path()))?;
        let found = std::fs::read_dir(edir.join("EFI"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|d| d.path().join("grub.cfg"))
            .find(|p| p.is_file());
        if let Some(p) = found {
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            say(&format!("Boot menu: {} on {}", p.display(), esp.dev_path()));
            return plan(dir, &text, None);
        }
    }
    Err(anyhow!(
        "{} has no GRUB menu ({}){}",
        root.dev_path(),
        ROOT_GRUB_CFGS.join(", "),
        if esp.is_some() {
            ", nor its ESP (EFI/*/grub.cfg)"
        } else {
            ""
        }
    ))
}

/// Boots the restored root by kexec. Returns only on failure, with the reason.
pub fn boot(root: &BlockDev, esp: Option<&BlockDev>) -> anyhow::Error {
    let r = find_plan(root, esp).and_then(|p| {
        say(&format!(
            "Starting \"{}\": {} {}{}",
            p.title,
            p.kernel.display(),
            p.cmdline,
            p.initrd
                .as_ref()
                .map(|i| format!(" (initrd {})", i.display()))
                .unwrap_or_default()
        ));
        kexec::load(&p.kernel, p.initrd.as_deref(), &p.cmdline)
    });
    let _ = mounts::unmount(Path::new(ESP_DIR));
    let _ = mounts::unmount(Path::new(ROOT_DIR));
    match r {
        Ok(()) => kexec::jump(),
        Err(e) => e,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DEBIAN: &str = r#"
set default="0"
if [ x"${feature_menuentry_id}" = xy ]; then
  menuentry_id_option="--id"
else
  menuentry_id_option=""
fi
menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple-abc' {
	load_video
	insmod ext2
	search --no-floppy --fs-uuid --set=root abc
	echo	'Loading Linux 6.1.0-57-cloud-amd64 ...'
	linux	/boot/vmlinuz-6.1.0-57-cloud-amd64 root=UUID=abc ro console=ttyS0
	echo	'Loading initial ramdisk ...'
	initrd	/boot/initrd.img-6.1.0-57-cloud-amd64
}
submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-abc' {
	menuentry 'Debian GNU/Linux, with Linux 6.1.0-57-cloud-amd64 (recovery mode)' {
		linux	/boot/vmlinuz-6.1.0-57-cloud-amd64 root=UUID=abc ro single
		initrd	/boot/initrd.img-6.1.0-57-cloud-amd64
	}
}
"#;

    const XENSERVER: &str = r#"
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set default=0
set timeout=5
menuentry "XenServer" {
	search --label --set root root-abcdef
	multiboot2 /boot/xen.gz dom0_mem=2048M,max:2048M watchdog
	module2 /boot/vmlinuz-4.19-xen root=LABEL=root-abcdef ro
	module2 /boot/initrd-4.19-xen.img
}
menuentry "XenServer (Serial)" {
	multiboot2 /boot/xen.gz com1=115200,8n1 console=com1,vga
	module2 /boot/vmlinuz-4.19-xen root=LABEL=root-abcdef ro
}
"#;

    #[test]
    fn the_default_debian_entry_is_a_linux_kernel_with_its_initrd() {
        let cfg = parse(DEBIAN);
        assert_eq!(cfg.default.as_deref(), Some("0"));
        assert_eq!(cfg.entries.len(), 2, "{:?}", cfg.entries);
        let e = cfg.default_entry(None).unwrap();
        assert_eq!(e.title, "Debian GNU/Linux");
        assert_eq!(
            e.kernel,
            Some((
                "/boot/vmlinuz-6.1.0-57-cloud-amd64".into(),
                "root=UUID=abc ro console=ttyS0".into()
            ))
        );
        assert_eq!(e.initrds, vec!["/boot/initrd.img-6.1.0-57-cloud-amd64"]);
        // A submenu entry by index path, by title path, and by saved_entry.
        assert_eq!(cfg.entries[1].0, "1>0");
        let mut c2 = parse(DEBIAN);
        c2.default = Some("1>0".into());
        assert!(c2.default_entry(None).unwrap().title.contains("recovery"));
        c2.default = Some("saved".into());
        let saved = "Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-57-cloud-amd64 (recovery mode)";
        assert!(c2
            .default_entry(Some(saved))
            .unwrap()
            .title
            .contains("recovery"));
        assert_eq!(
            saved_entry("# GRUB Environment Block\nsaved_entry=gnulinux-simple-abc\n####"),
            Some("gnulinux-simple-abc".into())
        );
    }

    /// A fresh directory for one test.
    fn tempdir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("lifeboat-localboot-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_xen_entry_is_refused_with_the_reason() {
        let dir = tempdir("xen");
        let e = plan(&dir, XENSERVER, None).unwrap_err().to_string();
        assert!(
            e.contains("\"XenServer\" starts the Xen hypervisor (/boot/xen.gz)"),
            "{e}"
        );
    }

    #[test]
    fn the_plan_finds_the_files_in_the_root_or_a_separate_boot() {
        let d = tempdir("files");
        let dir = d.as_path();
        std::fs::create_dir_all(dir.join("boot")).unwrap();
        std::fs::write(dir.join("boot/vmlinuz-6.1.0-57-cloud-amd64"), b"k").unwrap();
        std::fs::write(dir.join("boot/initrd.img-6.1.0-57-cloud-amd64"), b"i").unwrap();
        let p = plan(dir, DEBIAN, None).unwrap();
        assert_eq!(p.kernel, dir.join("boot/vmlinuz-6.1.0-57-cloud-amd64"));
        assert_eq!(p.cmdline, "root=UUID=abc ro console=ttyS0");
        // A separate /boot: grub.cfg names /vmlinuz-...
        let sep =
            "menuentry 'x' {\n linux (hd0,gpt2)/vmlinuz-6.1.0-57-cloud-amd64 root=/dev/vda1\n}\n";
        let p = plan(dir, sep, None).unwrap();
        assert_eq!(p.initrd, None);
        assert_eq!(p.kernel, dir.join("boot/vmlinuz-6.1.0-57-cloud-amd64"));
        let missing = "menuentry 'x' {\n linux /boot/vmlinuz-none root=/dev/vda1\n}\n";
        let e = plan(dir, missing, None).unwrap_err().to_string();
        assert!(
            e.contains("/boot/vmlinuz-none (from grub.cfg) is not in the restored root"),
            "{e}"
        );
    }
}
