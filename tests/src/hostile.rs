//! Hostile archives, written with raw ustar headers (the `tar` crate refuses to write `..` and
//! such, which is the point here): each tries to write outside the restore target, into a
//! canary directory whose absolute path is given.

use anyhow::Result;
use std::path::Path;

/// One ustar header block (512 bytes) for `name` (≤ 100 bytes) with type `kind`.
fn header(name: &[u8], kind: u8, size: u64, link: &[u8], mode: u32) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    let put = |h: &mut Vec<u8>, off: usize, len: usize, v: &[u8]| {
        let n = v.len().min(len);
        h[off..off + n].copy_from_slice(&v[..n]);
    };
    put(&mut h, 0, 100, name);
    put(&mut h, 100, 8, format!("{mode:07o}\0").as_bytes());
    put(&mut h, 108, 8, b"0000000\0");
    put(&mut h, 116, 8, b"0000000\0");
    put(&mut h, 124, 12, format!("{size:011o}\0").as_bytes());
    put(&mut h, 136, 12, b"13000000000\0");
    put(&mut h, 148, 8, b"        ");
    h[156] = kind;
    put(&mut h, 157, 100, link);
    put(&mut h, 257, 6, b"ustar\0");
    put(&mut h, 263, 2, b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    put(&mut h, 148, 8, format!("{sum:06o}\0 ").as_bytes());
    h
}

/// Builds a tar from (name, type, content or link target).
pub struct TarBuilder {
    out: Vec<u8>,
}

impl Default for TarBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TarBuilder {
    pub fn new() -> Self {
        Self { out: Vec::new() }
    }
    pub fn file(mut self, name: &str, data: &[u8]) -> Self {
        self.out
            .extend(header(name.as_bytes(), b'0', data.len() as u64, b"", 0o644));
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
        self
    }
    /// A pax extended header ('x') with `key=value` records, applying to the next member.
    pub fn pax(mut self, records: &[(&str, &str)]) -> Self {
        let mut body = Vec::new();
        for (k, v) in records {
            let rest = format!(" {k}={v}\n");
            // The length counts its own digits.
            let mut len = rest.len() + 1;
            while format!("{len}").len() + rest.len() != len {
                len += 1;
            }
            body.extend_from_slice(format!("{len}{rest}").as_bytes());
        }
        self.out
            .extend(header(b"PaxHeaders/x", b'x', body.len() as u64, b"", 0o644));
        let pad = (512 - body.len() % 512) % 512;
        self.out.extend_from_slice(&body);
        self.out.extend(std::iter::repeat_n(0u8, pad));
        self
    }
    pub fn dir(mut self, name: &str) -> Self {
        self.out
            .extend(header(name.as_bytes(), b'5', 0, b"", 0o755));
        self
    }
    pub fn symlink(mut self, name: &str, target: &str) -> Self {
        self.out
            .extend(header(name.as_bytes(), b'2', 0, target.as_bytes(), 0o777));
        self
    }
    pub fn hardlink(mut self, name: &str, target: &str) -> Self {
        self.out
            .extend(header(name.as_bytes(), b'1', 0, target.as_bytes(), 0o644));
        self
    }
    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend(std::iter::repeat_n(0u8, 1024));
        self.out
    }
}

/// One hostile archive.
pub struct Case {
    pub name: &'static str,
    /// What it tries.
    pub what: &'static str,
    pub tar: Vec<u8>,
    pub expect: Expect,
}

/// What a safe restore does with a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Refused with an error naming the entry.
    Refused,
    /// Restored, harmlessly, inside the target.
    Harmless,
}

/// Every hostile case. `canary` is an absolute directory
/// outside the target, holding a file `passwd`.
pub fn cases(canary: &Path) -> Vec<Case> {
    let c = canary.display().to_string();
    let refused = |(name, what, tar): (&'static str, &'static str, Vec<u8>)| Case {
        name,
        what,
        tar,
        expect: Expect::Refused,
    };
    let mut all: Vec<Case> = [
        (
            "dotdot",
            "a file at ../",
            TarBuilder::new()
                .file("ok", b"fine")
                .file("../escaped", b"evil")
                .finish(),
        ),
        (
            "dotdot-nested",
            "a file at a/../../",
            TarBuilder::new()
                .dir("a/")
                .file("a/../../escaped", b"evil")
                .finish(),
        ),
        (
            "absolute",
            "a file at an absolute path",
            TarBuilder::new()
                .file(&format!("{c}/escaped"), b"evil")
                .finish(),
        ),
        (
            "symlink-then-file",
            "a symlink to the canary, then a file through it",
            TarBuilder::new()
                .symlink("a", &c)
                .file("a/escaped", b"evil")
                .finish(),
        ),
        (
            "symlink-relative-then-file",
            "a symlink climbing out with ../, then a file through it",
            TarBuilder::new()
                .dir("d/")
                .symlink("d/up", "../../../../../../../../../..")
                .file("d/up/tmp/escaped", b"evil")
                .finish(),
        ),
        (
            "symlink-then-dir",
            "a symlink to the canary, then a directory through it",
            TarBuilder::new().symlink("a", &c).dir("a/sub/").finish(),
        ),
        (
            "hardlink-dotdot",
            "a hard link to ../../etc/passwd",
            TarBuilder::new().hardlink("h", "../../etc/passwd").finish(),
        ),
        (
            "hardlink-absolute",
            "a hard link to the canary's passwd by absolute path",
            TarBuilder::new()
                .hardlink("h", &format!("{c}/passwd"))
                .finish(),
        ),
        (
            "symlink-then-hardlink",
            "a symlink to the canary, then a hard link through it",
            TarBuilder::new()
                .symlink("s", &c)
                .hardlink("h", "s/passwd")
                .finish(),
        ),
    ]
    .into_iter()
    .map(refused)
    .collect();
    // A sparse file (pax GNU sparse 1.0) claiming 1 EiB with one 4 KiB data block: refused
    // before anything is allocated.
    let mut data = b"1\n0\n4096\n".to_vec();
    data.resize(512, 0);
    data.extend(std::iter::repeat_n(b'x', 4096));
    let eib = (1u64 << 60).to_string();
    all.push(Case {
        name: "sparse-bomb",
        what: "a sparse file claiming 1 EiB",
        tar: TarBuilder::new()
            .pax(&[
                ("GNU.sparse.major", "1"),
                ("GNU.sparse.minor", "0"),
                ("GNU.sparse.name", "bomb"),
                ("GNU.sparse.realsize", &eib),
            ])
            .file("GNUSparseFile.0/bomb", &data)
            .finish(),
        expect: Expect::Refused,
    });
    all.push(Case {
        name: "symlink-then-same-name-file",
        what: "a symlink to the canary's passwd, then a file of the same name: the file replaces the link",
        tar: TarBuilder::new().symlink("x", &format!("{c}/passwd")).file("x", b"harmless").finish(),
        expect: Expect::Harmless,
    });
    all
}

/// Writes every case as `<dir>/<refused|accepted>-<name>.tar` (see [`Expect`]). Absolute
/// names and hard link targets are `refused-` (never made relative as GNU tar does).
pub fn write_all(dir: &Path, canary: &Path) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut names = Vec::new();
    for case in cases(canary) {
        let prefix = match case.expect {
            Expect::Refused => "refused-",
            Expect::Harmless => "accepted-",
        };
        let name = format!("{prefix}{}", case.name);
        std::fs::write(dir.join(format!("{name}.tar")), case.tar)?;
        names.push(name);
    }
    Ok(names)
}
