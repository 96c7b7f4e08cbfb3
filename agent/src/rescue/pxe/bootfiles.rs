//! What the PXE tree and the ISO share: the boot files taken from Debian packages, the external
//! tools (grub-mkimage, xorriso, mkfs.vfat, mtools), the menu model and template filling.

use anyhow::Context;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Searched before the distribution directories for every boot file: lets an administrator
/// point the builder at their own syslinux/GRUB files.
pub const BOOTFILES_DIR_VAR: &str = "LIFEBOAT_BOOTFILES_DIR";
/// Menu timeout in seconds for every menu (default: 10 s, 3 s for unattended per-host menus).
pub const MENU_TIMEOUT_VAR: &str = "LIFEBOAT_MENU_TIMEOUT";

/// The header line of every file the builder writes from a template.
pub const GENERATED: &str = "Written by `lifeboat mkrescue`; edits are lost when it runs again.";

/// A boot loader file shipped by a distribution package.
#[derive(Debug)]
pub struct BootFile {
    pub name: &'static str,
    /// Directories searched in order: Debian/Ubuntu first, then Fedora and Arch layouts.
    pub dirs: &'static [&'static str],
    /// The Debian package that ships it.
    pub package: &'static str,
}

const SYSLINUX_BIOS_DIRS: &[&str] = &[
    "/usr/lib/syslinux/modules/bios",
    "/usr/share/syslinux",
    "/usr/lib/syslinux/bios",
];

pub const PXELINUX: BootFile = BootFile {
    name: "pxelinux.0",
    dirs: &[
        "/usr/lib/PXELINUX",
        "/usr/share/syslinux",
        "/usr/lib/syslinux/bios",
    ],
    package: "pxelinux",
};
pub const LDLINUX: BootFile = BootFile {
    name: "ldlinux.c32",
    dirs: SYSLINUX_BIOS_DIRS,
    package: "syslinux-common",
};
pub const MENU_C32: BootFile = BootFile {
    name: "menu.c32",
    dirs: SYSLINUX_BIOS_DIRS,
    package: "syslinux-common",
};
pub const LIBUTIL_C32: BootFile = BootFile {
    name: "libutil.c32",
    dirs: SYSLINUX_BIOS_DIRS,
    package: "syslinux-common",
};
pub const ISOLINUX_BIN: BootFile = BootFile {
    name: "isolinux.bin",
    dirs: &[
        "/usr/lib/ISOLINUX",
        "/usr/share/syslinux",
        "/usr/lib/syslinux/bios",
    ],
    package: "isolinux",
};
pub const ISOHDPFX_BIN: BootFile = BootFile {
    name: "isohdpfx.bin",
    dirs: &[
        "/usr/lib/ISOLINUX",
        "/usr/share/syslinux",
        "/usr/lib/syslinux/bios",
    ],
    package: "isolinux",
};

impl BootFile {
    /// The file's path, or an error that names the package to install.
    pub fn locate(&self) -> anyhow::Result<PathBuf> {
        let custom = std::env::var_os(BOOTFILES_DIR_VAR).map(PathBuf::from);
        let mut tried = Vec::new();
        for dir in custom
            .iter()
            .map(PathBuf::as_path)
            .chain(self.dirs.iter().map(Path::new))
        {
            let p = dir.join(self.name);
            if p.is_file() {
                return Ok(p);
            }
            tried.push(p.display().to_string());
        }
        anyhow::bail!(
            "{} not found at {}: apt-get install {} (or set {} to a directory that holds it)",
            self.name,
            tried.join(", "),
            self.package,
            BOOTFILES_DIR_VAR
        )
    }
}

/// The GRUB x86_64-efi module directory.
pub fn grub_dir() -> anyhow::Result<PathBuf> {
    let candidates = ["/usr/lib/grub/x86_64-efi", "/usr/share/grub2/x86_64-efi"];
    for c in candidates {
        if Path::new(c).join("linux.mod").is_file() {
            return Ok(PathBuf::from(c));
        }
    }
    anyhow::bail!(
        "the GRUB UEFI modules are not found at {}: apt-get install grub-efi-amd64-bin",
        candidates.join(" or ")
    )
}

/// The menu templates both the PXE tree and the ISO fill in.
pub const SYSLINUX_TEMPLATE: &str = include_str!("../../../../pxe/syslinux.cfg");
pub const GRUB_TEMPLATE: &str = include_str!("../../../../pxe/grub.cfg");

/// GRUB modules every Lifeboat EFI image has built in: the menu, the kernel loader, serial and
/// VGA consoles, power commands. Each image adds the ones for its medium.
const GRUB_COMMON_MODULES: &[&str] = &[
    "normal",
    "configfile",
    "linux",
    "echo",
    "test",
    "true",
    "sleep",
    "minicmd",
    "serial",
    "terminal",
    "terminfo",
    "gzio",
    "halt",
    "reboot",
    "efi_gop",
    "efi_uga",
    "all_video",
];

/// Builds a GRUB EFI image with the common modules and `extra_modules` built in, `prefix` as
/// its $prefix (empty: the directory it was loaded from) and an optional embedded early config.
pub fn grub_mkimage(
    out: &Path,
    prefix: &str,
    early_config: Option<&Path>,
    extra_modules: &[&str],
) -> anyhow::Result<()> {
    let dir = grub_dir()?;
    let mut cmd = Command::new(tool("grub-mkimage", "grub-common")?);
    cmd.arg("--format=x86_64-efi")
        .arg("--directory")
        .arg(&dir)
        .arg("--output")
        .arg(out)
        .arg(format!("--prefix={prefix}"));
    if let Some(c) = early_config {
        cmd.arg("--config").arg(c);
    }
    cmd.args(GRUB_COMMON_MODULES).args(extra_modules);
    run(&mut cmd)
}

/// Finds a build tool ([`lifeboat_core::programs::find_program`]), naming the Debian package that
/// provides it when it is missing.
pub fn tool(name: &str, package: &str) -> anyhow::Result<PathBuf> {
    lifeboat_core::programs::find_program(name).ok_or_else(|| {
        anyhow::anyhow!(
            "{name} is not installed (not in /sbin, /usr/sbin, /bin, /usr/bin nor on PATH): \
             apt-get install {package}"
        )
    })
}

/// Runs a command; on failure the error carries the command line and its stderr.
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {shown}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        anyhow::bail!("{shown} failed ({}):\n{}", out.status, tail.join("\n"));
    }
    Ok(())
}

/// Copies a file; copying a file onto itself (the PXE tree is mkrescue's output directory)
/// does nothing.
pub fn copy_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let (Ok(a), Ok(b)) = (fs::canonicalize(from), fs::canonicalize(to)) {
        if a == b {
            return Ok(());
        }
    }
    fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// A MAC address as pxelinux and GRUB name per-host files: lower case, dashes
/// (`52-54-00-12-34-56`). Accepts colons, dashes, dots or no separators.
pub fn normalize_mac(mac: &str) -> anyhow::Result<String> {
    let hex: String = mac
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        anyhow::bail!("'{mac}' is not a MAC address: give six hex bytes such as 52:54:00:12:34:56");
    }
    let hex = hex.to_ascii_lowercase();
    let mut out = String::with_capacity(17);
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        if i > 0 {
            out.push('-');
        }
        out.push_str(&String::from_utf8_lossy(pair));
    }
    Ok(out)
}

/// The kernel command line of every entry: serial and VGA consoles (lifeboat-init writes to
/// both; the last one is /dev/console), then the administrator's extra arguments.
pub fn kernel_cmdline(extra: Option<&str>) -> String {
    let mut s = String::from("console=ttyS0,115200 console=tty0");
    if let Some(e) = extra.map(str::trim).filter(|e| !e.is_empty()) {
        s.push(' ');
        s.push_str(e);
    }
    s
}

/// Which entry boots when the timeout runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MenuDefault {
    /// "Restore from backup": interactive, asks before writing anything.
    Restore,
    /// "Restore from backup (unattended)": only in per-host configs.
    Unattended,
}

impl MenuDefault {
    /// The label/id of the entry in every template.
    pub fn label(self) -> &'static str {
        match self {
            MenuDefault::Restore => "restore",
            MenuDefault::Unattended => "unattended",
        }
    }
}

/// The menu timeout: LIFEBOAT_MENU_TIMEOUT seconds if set, else 10 s (3 s when the default
/// entry is the unattended restore of a per-host config).
pub fn menu_timeout(default: MenuDefault) -> u32 {
    let fallback = match default {
        MenuDefault::Restore => 10,
        MenuDefault::Unattended => 3,
    };
    std::env::var(MENU_TIMEOUT_VAR)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(fallback)
}

/// A boot menu, loader independent.
#[derive(Debug, Clone)]
pub struct Menu {
    pub title: String,
    /// The kernel command line shared by every entry.
    pub append: String,
    pub timeout_secs: u32,
    pub default: MenuDefault,
    /// What the unattended entry does ([`Unattended`]).
    pub unattended: Unattended,
}

/// The unattended entry: restore the latest generation without asking, once per request
/// (`lifeboat.request=ID`, made when the medium is written: the recovery image journals it
/// with the restore, and a later boot with a request already done starts the local disk), then
/// reboot (PXE) or power off (ISO/USB: rebooting would start the medium again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unattended {
    pub request: String,
    pub power_off: bool,
}

impl Unattended {
    /// The kernel command line words of the unattended entry.
    pub fn args(&self) -> String {
        format!(
            "lifeboat.restore=latest lifeboat.yes lifeboat.after={} lifeboat.request={}",
            if self.power_off { "poweroff" } else { "reboot" },
            self.request
        )
    }
    /// How its help text says what follows the restore.
    pub fn after(&self) -> &'static str {
        if self.power_off {
            "powers off"
        } else {
            "reboots"
        }
    }
}

/// A fresh request id for the unattended entries of one `mkrescue` run: the UTC time and 32
/// random bits, e.g. `20261202T074512Z-9f3a61c2`.
pub fn new_request_id() -> anyhow::Result<String> {
    let mut r = [0u8; 4];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut r))
        .context("cannot read /dev/urandom for the unattended request id")?;
    Ok(format!(
        "{}-{:02x}{:02x}{:02x}{:02x}",
        lifeboat_core::clock::UtcTime::now().compact(),
        r[0],
        r[1],
        r[2],
        r[3]
    ))
}

/// The initrds every entry of a medium loads, in order, as its boot loader names them: the
/// recovery image, then the repository's files (`repo.img`, with `mkrescue --repo-*`: the
/// kernel unpacks it over the first). [`Menu::fill`] writes each loader's syntax from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Initrds(pub Vec<String>);

impl Initrds {
    /// pxelinux/isolinux: `INITRD a,b`.
    pub fn syslinux(&self) -> String {
        self.0.join(",")
    }
    /// GRUB: `initrd a b`.
    pub fn grub(&self) -> String {
        self.0.join(" ")
    }
    /// iPXE: one `initrd` command per file.
    pub fn ipxe_lines(&self) -> String {
        self.0
            .iter()
            .map(|i| format!("initrd {i}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
    /// iPXE's kernel arguments naming them (UEFI's kernel stub loads the `initrd=` files).
    pub fn ipxe_args(&self) -> String {
        self.0
            .iter()
            .map(|i| format!("initrd={}", i.rsplit('/').next().unwrap_or(i)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Menu {
    /// Fills a template from `pxe/`: the common placeholders (the initrds in every loader's
    /// syntax: `INITRDS_COMMA`, `INITRDS_SPACE`, `INITRD_LINES`, `INITRD_ARGS`) plus `extra`.
    pub fn fill(
        &self,
        template: &str,
        kernel: &str,
        initrds: &Initrds,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        // syslinux: TIMEOUT 0 waits forever, so at least 1/10 s; iPXE likewise.
        let ds = (self.timeout_secs * 10).max(1).to_string();
        let ms = (self.timeout_secs * 1000).max(100).to_string();
        let secs = self.timeout_secs.to_string();
        let unattended = self.unattended.args();
        let (comma, space, lines, args) = (
            initrds.syslinux(),
            initrds.grub(),
            initrds.ipxe_lines(),
            initrds.ipxe_args(),
        );
        let mut vars: Vec<(&str, &str)> = vec![
            ("GENERATED", GENERATED),
            ("TITLE", &self.title),
            ("KERNEL", kernel),
            ("INITRDS_COMMA", &comma),
            ("INITRDS_SPACE", &space),
            ("INITRD_LINES", &lines),
            ("INITRD_ARGS", &args),
            ("APPEND", &self.append),
            ("DEFAULT", self.default.label()),
            ("TIMEOUT_SECONDS", &secs),
            ("TIMEOUT_DECISECONDS", &ds),
            ("TIMEOUT_MILLISECONDS", &ms),
            ("UNATTENDED", &unattended),
            ("UNATTENDED_AFTER", self.unattended.after()),
        ];
        vars.extend_from_slice(extra);
        fill_template(template, &vars)
    }
}

/// Replaces every `@NAME@` in `template`. Hand-written because the templates are tiny and a
/// template engine would bring its own syntax into boot loader configs, which use `$`, `{}` and
/// `%` themselves. An unknown placeholder is an error, not a silent hole in a boot menu.
pub fn fill_template(template: &str, vars: &[(&str, &str)]) -> anyhow::Result<String> {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find('@') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('@') {
            let name = &after[..name_len];
            let value = vars
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| *v)
                .ok_or_else(|| anyhow::anyhow!("boot menu template: no value for @{name}@"))?;
            out.push_str(value);
            rest = &after[name_len + 1..];
        } else {
            out.push('@');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A short content id (hex) of the files, e.g. to name a marker file unique to one ISO.
pub fn content_id(files: &[&Path], salt: &str) -> anyhow::Result<String> {
    let mut h = blake3::Hasher::new();
    h.update(salt.as_bytes());
    for f in files {
        let mut r = fs::File::open(f).with_context(|| format!("cannot read {}", f.display()))?;
        std::io::copy(&mut r, &mut h).with_context(|| format!("cannot read {}", f.display()))?;
    }
    let mut s = String::new();
    for b in &h.finalize().as_bytes()[..8] {
        let _ = write!(s, "{b:02x}");
    }
    Ok(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_normalized_for_pxelinux_and_grub() {
        assert_eq!(
            normalize_mac("52:54:00:AB:cd:01").unwrap(),
            "52-54-00-ab-cd-01"
        );
        assert_eq!(
            normalize_mac("5254.00ab.cd01").unwrap(),
            "52-54-00-ab-cd-01"
        );
        assert_eq!(normalize_mac("525400ABCD01").unwrap(), "52-54-00-ab-cd-01");
        assert!(normalize_mac("52:54:00:ab:cd").is_err());
        assert!(normalize_mac("52:54:00:ab:cd:zz").is_err());
    }

    #[test]
    fn templates_fill_known_placeholders_and_refuse_unknown_ones() {
        let t = "a @X@ b foo@bar.com @Y_Z@@X@ @@";
        let got = fill_template(t, &[("X", "1"), ("Y_Z", "2")]).unwrap();
        assert_eq!(got, "a 1 b foo@bar.com 21 @@");
        let err = fill_template("@NOPE@", &[]).unwrap_err();
        assert!(err.to_string().contains("@NOPE@"));
    }

    #[test]
    fn missing_boot_file_names_the_package() {
        let f = BootFile {
            name: "no-such-file.c32",
            dirs: &["/nonexistent"],
            package: "syslinux-common",
        };
        let err = f.locate().unwrap_err().to_string();
        assert!(err.contains("apt-get install syslinux-common"), "{err}");
        assert!(err.contains("/nonexistent/no-such-file.c32"), "{err}");
    }

    #[test]
    fn cmdline_has_both_consoles_and_the_extra_arguments() {
        assert_eq!(kernel_cmdline(None), "console=ttyS0,115200 console=tty0");
        assert_eq!(
            kernel_cmdline(Some(" lifeboat.target=/dev/sda2 ")),
            "console=ttyS0,115200 console=tty0 lifeboat.target=/dev/sda2"
        );
    }

    #[test]
    fn the_unattended_entry_restores_once_then_reboots_or_powers_off() {
        let id = new_request_id().unwrap();
        let (time, rand) = id.split_once('-').unwrap();
        assert!(time.ends_with('Z') && rand.len() == 8, "{id}");
        assert_ne!(id, new_request_id().unwrap());
        let mut menu = Menu {
            title: "t".into(),
            append: kernel_cmdline(None),
            timeout_secs: 1,
            default: MenuDefault::Unattended,
            unattended: Unattended {
                request: id.clone(),
                power_off: false,
            },
        };
        let pxe = menu
            .fill(
                SYSLINUX_TEMPLATE,
                "k",
                &Initrds(vec!["i".into()]),
                &[("LOCALBOOT", "0")],
            )
            .unwrap();
        assert!(pxe.contains(&format!(
            "APPEND console=ttyS0,115200 console=tty0 lifeboat.restore=latest lifeboat.yes lifeboat.after=reboot lifeboat.request={id}\n"
        )), "{pxe}");
        assert!(pxe.contains("WITHOUT ASKING, then reboots."), "{pxe}");
        // The ISO/USB entry: a medium left in would boot the image again after a reboot.
        menu.unattended.power_off = true;
        let iso = menu
            .fill(GRUB_TEMPLATE, "k", &Initrds(vec!["i".into()]), &[])
            .unwrap();
        assert!(
            iso.contains(&format!(
                "lifeboat.yes lifeboat.after=poweroff lifeboat.request={id}\n"
            )),
            "{iso}"
        );
        assert!(!iso.contains("after=reboot"), "{iso}");
    }
}
