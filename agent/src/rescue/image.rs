//! The recovery image as a tree of paths, written as one sorted newc cpio and compressed.

use super::cpio::NewcWriter;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// What a regular file holds.
#[derive(Debug, Clone)]
pub enum Content {
    /// Read from this host file when the image is written.
    Host(PathBuf),
    /// Held in memory (decompressed modules, generated index files).
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone)]
pub enum Node {
    Dir {
        mode: u32,
    },
    File {
        mode: u32,
        content: Content,
        size: u64,
        source: String,
    },
    Symlink {
        target: String,
        source: String,
    },
    CharDev {
        mode: u32,
        major: u32,
        minor: u32,
    },
}

/// Paths in the image, without the leading `/`, kept sorted (a parent sorts before its
/// children, so the cpio creates directories before what they hold).
#[derive(Debug, Default)]
pub struct Image {
    nodes: BTreeMap<String, Node>,
}

/// `/a/./b/../c` -> `a/c` (lexically; the image has no symlinked directories).
pub fn image_key(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    parts.join("/")
}

impl Image {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn contains(&self, path: &str) -> bool {
        self.nodes.contains_key(&image_key(Path::new(path)))
    }

    pub fn nodes(&self) -> &BTreeMap<String, Node> {
        &self.nodes
    }

    /// `mkdir -p` with mode 0755 (an existing directory keeps its mode).
    pub fn dir(&mut self, path: &str) {
        self.dir_mode(path, 0o755);
    }

    pub fn dir_mode(&mut self, path: &str, mode: u32) {
        let key = image_key(Path::new(path));
        if key.is_empty() {
            return;
        }
        self.parents(&key);
        self.nodes.entry(key).or_insert(Node::Dir { mode });
    }

    fn parents(&mut self, key: &str) {
        let mut prefix = String::new();
        let parts: Vec<&str> = key.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            self.nodes
                .entry(prefix.clone())
                .or_insert(Node::Dir { mode: 0o755 });
        }
    }

    /// A file with in-memory content (replaces whatever was at the path).
    pub fn file_bytes(&mut self, path: &str, mode: u32, bytes: Vec<u8>, source: &str) {
        let key = image_key(Path::new(path));
        self.parents(&key);
        self.nodes.insert(
            key,
            Node::File {
                mode,
                size: bytes.len() as u64,
                content: Content::Bytes(bytes),
                source: source.to_string(),
            },
        );
    }

    /// A file copied from the host when the image is written.
    pub fn file_host(&mut self, path: &str, host: &Path, mode: u32) -> Result<()> {
        let meta =
            std::fs::metadata(host).with_context(|| format!("cannot read {}", host.display()))?;
        if !meta.is_file() {
            bail!("{} is not a regular file", host.display());
        }
        let key = image_key(Path::new(path));
        self.parents(&key);
        self.nodes.insert(
            key,
            Node::File {
                mode,
                size: meta.len(),
                content: Content::Host(host.to_path_buf()),
                source: host.display().to_string(),
            },
        );
        Ok(())
    }

    pub fn symlink(&mut self, path: &str, target: &str, source: &str) {
        let key = image_key(Path::new(path));
        self.parents(&key);
        self.nodes.insert(
            key,
            Node::Symlink {
                target: target.to_string(),
                source: source.to_string(),
            },
        );
    }

    pub fn char_dev(&mut self, path: &str, mode: u32, major: u32, minor: u32) {
        let key = image_key(Path::new(path));
        self.parents(&key);
        self.nodes.insert(key, Node::CharDev { mode, major, minor });
    }

    /// Copies a host file to the same path in the image. A symlink is kept as a symlink and its
    /// target is copied too (libfoo.so.2 -> libfoo.so.2.4); directories on the way are plain
    /// directories in the image.
    pub fn add_host_path(&mut self, host: &Path) -> Result<()> {
        let mut current = host.to_path_buf();
        for _ in 0..40 {
            let key = image_key(&current);
            if self.nodes.contains_key(&key) {
                return Ok(());
            }
            let meta = std::fs::symlink_metadata(&current)
                .with_context(|| format!("cannot read {}", current.display()))?;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&current)
                    .with_context(|| format!("cannot read the link {}", current.display()))?;
                self.symlink(
                    &key,
                    &target.to_string_lossy(),
                    &current.display().to_string(),
                );
                current = if target.is_absolute() {
                    target
                } else {
                    current.parent().unwrap_or(Path::new("/")).join(target)
                };
                current = PathBuf::from("/").join(image_key(&current));
            } else {
                return self.file_host(&key, &current, meta.permissions().mode() & 0o7777);
            }
        }
        bail!("{}: too many levels of symbolic links", host.display())
    }

    /// Writes the sorted newc archive.
    pub fn write_cpio<W: Write>(&self, out: W) -> Result<W> {
        let mut cpio = NewcWriter::new(out);
        for (path, node) in &self.nodes {
            match node {
                Node::Dir { mode } => cpio.dir(path, *mode)?,
                Node::File { mode, content, .. } => match content {
                    Content::Bytes(b) => cpio.file(path, *mode, b)?,
                    Content::Host(host) => {
                        let bytes = std::fs::read(host)
                            .with_context(|| format!("cannot read {}", host.display()))?;
                        cpio.file(path, *mode, &bytes)?
                    }
                },
                Node::Symlink { target, .. } => cpio.symlink(path, target)?,
                Node::CharDev { mode, major, minor } => {
                    cpio.char_dev(path, *mode, *major, *minor)?
                }
            }
        }
        Ok(cpio.finish()?)
    }

    /// One line per path: type, mode, size, path, source.
    pub fn listing(&self) -> String {
        let mut text = String::new();
        for (path, node) in &self.nodes {
            let line = match node {
                Node::Dir { mode } => format!("d {mode:04o} {:>10} /{path}\n", 0),
                Node::File {
                    mode, size, source, ..
                } => format!("f {mode:04o} {size:>10} /{path}\t{source}\n"),
                Node::Symlink { target, source } => {
                    format!(
                        "l 0777 {:>10} /{path} -> {target}\t{source}\n",
                        target.len()
                    )
                }
                Node::CharDev { mode, major, minor } => {
                    format!("c {mode:04o} {:>10} /{path} ({major},{minor})\n", 0)
                }
            };
            text.push_str(&line);
        }
        text
    }
}

/// How the cpio is compressed, and how hard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Zstd { level: u32 },
    Xz { preset: u32 },
    None,
}

/// Which compressor, before its level is known (`mkrescue --compress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compressor {
    Zstd,
    Xz,
    None,
}

impl Compressor {
    /// The levels this compressor takes and its default: the smallest image, since an image
    /// is built once and loaded (over TFTP, from a USB stick) many times. zstd 19 of a 32 MB
    /// cpio takes about 25 s on two idle cores, level 12 about 2 s for 13 % more bytes.
    pub fn levels(self) -> Option<(u32, u32, u32)> {
        match self {
            Compressor::Zstd => Some((1, 19, 19)),
            Compressor::Xz => Some((0, 9, 9)),
            Compressor::None => None,
        }
    }

    /// The compression at `level` (the default when None); a level outside the compressor's
    /// range is refused with the range.
    pub fn at(self, level: Option<u32>) -> Result<Compression> {
        let name = match self {
            Compressor::Zstd => "zstd",
            Compressor::Xz => "xz",
            Compressor::None => "none",
        };
        let Some((lo, hi, default)) = self.levels() else {
            return match level {
                None => Ok(Compression::None),
                Some(l) => bail!(
                    "--level {l} was given with --compress none, which has no levels: drop --level or choose --compress zstd or xz"
                ),
            };
        };
        let level = level.unwrap_or(default);
        if !(lo..=hi).contains(&level) {
            bail!(
                "--level {level} is not a {name} level for the initramfs: {name} takes {lo} to {hi} (default {default}; higher is smaller and slower)"
            );
        }
        Ok(match self {
            Compressor::Zstd => Compression::Zstd { level },
            Compressor::Xz => Compression::Xz { preset: level },
            Compressor::None => Compression::None,
        })
    }
}

/// Compresses the archive. The same input always gives the same output: zstd runs with worker
/// threads whose output does not depend on their number; xz is single-threaded.
pub fn compress(data: &[u8], how: Compression) -> Result<Vec<u8>> {
    match how {
        Compression::None => Ok(data.to_vec()),
        Compression::Zstd { level } => {
            let level = i32::try_from(level).context("zstd level out of range")?;
            let mut enc = zstd::stream::write::Encoder::new(Vec::new(), level)?;
            enc.multithread(4)?;
            enc.include_checksum(true)?;
            enc.write_all(data)?;
            Ok(enc.finish()?)
        }
        Compression::Xz { preset } => {
            // The kernel's xz decoder accepts only the CRC32 check (or none); a 16 MiB
            // dictionary keeps the memory it needs while unpacking small.
            let mut opts = xz2::stream::LzmaOptions::new_preset(preset)?;
            opts.dict_size(16 << 20);
            let mut filters = xz2::stream::Filters::new();
            filters.lzma2(&opts);
            let stream =
                xz2::stream::Stream::new_stream_encoder(&filters, xz2::stream::Check::Crc32)?;
            let mut enc = xz2::write::XzEncoder::new_stream(Vec::new(), stream);
            enc.write_all(data)?;
            Ok(enc.finish()?)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_relative_and_lexical() {
        assert_eq!(image_key(Path::new("/lib/x/../y/./z")), "lib/y/z");
        assert_eq!(image_key(Path::new("sbin/mke2fs")), "sbin/mke2fs");
    }

    #[test]
    fn symlinks_are_kept_and_followed() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("libx.so.2.4");
        std::fs::write(&real, b"lib").unwrap();
        std::os::unix::fs::symlink("libx.so.2.4", dir.path().join("libx.so.2")).unwrap();
        let mut image = Image::new();
        image.add_host_path(&dir.path().join("libx.so.2")).unwrap();
        let base = image_key(dir.path());
        assert!(matches!(
            image.nodes().get(&format!("{base}/libx.so.2")),
            Some(Node::Symlink { target, .. }) if target == "libx.so.2.4"
        ));
        assert!(matches!(
            image.nodes().get(&format!("{base}/libx.so.2.4")),
            Some(Node::File { size: 3, .. })
        ));
    }

    #[test]
    fn a_level_is_the_compressors_own_and_the_default_is_the_smallest_image() {
        assert_eq!(
            Compressor::Zstd.at(None).unwrap(),
            Compression::Zstd { level: 19 }
        );
        assert_eq!(
            Compressor::Zstd.at(Some(9)).unwrap(),
            Compression::Zstd { level: 9 }
        );
        assert_eq!(
            Compressor::Xz.at(None).unwrap(),
            Compression::Xz { preset: 9 }
        );
        let e = Compressor::Zstd.at(Some(22)).unwrap_err().to_string();
        assert!(e.contains("zstd takes 1 to 19 (default 19"), "{e}");
        let e = Compressor::Xz.at(Some(10)).unwrap_err().to_string();
        assert!(e.contains("xz takes 0 to 9"), "{e}");
        let e = Compressor::None.at(Some(3)).unwrap_err().to_string();
        assert!(e.contains("--compress none, which has no levels"), "{e}");
        assert_eq!(Compressor::None.at(None).unwrap(), Compression::None);
    }

    #[test]
    fn compression_is_reproducible_and_xz_uses_crc32() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for how in [
            Compression::Zstd { level: 19 },
            Compression::Zstd { level: 3 },
            Compression::Xz { preset: 9 },
            Compression::None,
        ] {
            assert_eq!(compress(&data, how).unwrap(), compress(&data, how).unwrap());
        }
        let xz = compress(&data, Compression::Xz { preset: 9 }).unwrap();
        // Stream header flags: byte 7 is the check type, 0x01 = CRC32.
        assert_eq!(&xz[..6], b"\xfd7zXZ\0");
        assert_eq!(xz[7], 0x01);
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut xz2::read::XzDecoder::new(&xz[..]), &mut back).unwrap();
        assert_eq!(back, data);
    }
}
