//! A kernel module's own metadata: the NUL-separated `key=value` strings of its `.modinfo` ELF
//! section (what `modinfo` prints), and reading a module file whatever its compression.

use super::{normalize_name, KmodError};
use goblin::elf::section_header::SectionHeader;
use goblin::elf::Elf;
use std::io::Read;
use std::path::Path;

/// What a module says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModInfo {
    /// `name=` (normalized: `-` becomes `_`); empty when the module does not say.
    pub name: String,
    /// `depends=`: modules whose symbols it uses (normalized names).
    pub depends: Vec<String>,
    /// `softdep=` "pre:" names (modules or aliases to load before).
    pub softdep_pre: Vec<String>,
    /// `softdep=` "post:" names (to load after).
    pub softdep_post: Vec<String>,
    /// `alias=` patterns (shell globs matched against device modaliases).
    pub aliases: Vec<String>,
    /// `firmware=` files, relative to /lib/firmware.
    pub firmware: Vec<String>,
    /// `vermagic=` (starts with the kernel release).
    pub vermagic: Option<String>,
}

impl ModInfo {
    /// Reads the `.modinfo` section of an uncompressed module (ELF relocatable object).
    pub fn from_elf(bytes: &[u8]) -> Result<Self, KmodError> {
        let section = modinfo_section(bytes)?;
        Ok(Self::from_strings(section))
    }

    /// Parses NUL-separated `key=value` strings, as found in `.modinfo`.
    pub fn from_strings(data: &[u8]) -> Self {
        let mut info = ModInfo::default();
        for raw in data.split(|b| *b == 0) {
            let Ok(text) = std::str::from_utf8(raw) else {
                continue;
            };
            let Some((key, value)) = text.split_once('=') else {
                continue;
            };
            info.add(key, value);
        }
        info
    }

    /// Adds one `key=value` pair.
    pub fn add(&mut self, key: &str, value: &str) {
        match key {
            "name" => self.name = normalize_name(value),
            "depends" => self.depends.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(normalize_name),
            ),
            "softdep" => {
                let (pre, post) = parse_softdep(value);
                self.softdep_pre.extend(pre);
                self.softdep_post.extend(post);
            }
            "alias" => self.aliases.push(value.to_string()),
            "firmware" => self.firmware.push(value.to_string()),
            "vermagic" => self.vermagic = Some(value.trim().to_string()),
            _ => {}
        }
    }

    /// The kernel release the module was built for (first word of `vermagic`).
    pub fn kernel_release(&self) -> Option<&str> {
        self.vermagic.as_deref()?.split_whitespace().next()
    }
}

/// Splits a softdep value "pre: a b post: c" into its pre and post names. Names that come
/// before any "pre:"/"post:" keyword count as "pre" (depmod accepts that too).
pub fn parse_softdep(value: &str) -> (Vec<String>, Vec<String>) {
    let mut pre = Vec::new();
    let mut post = Vec::new();
    let mut in_post = false;
    for word in value.split_whitespace() {
        match word {
            "pre:" => in_post = false,
            "post:" => in_post = true,
            name if in_post => post.push(name.to_string()),
            name => pre.push(name.to_string()),
        }
    }
    (pre, post)
}

/// The bytes of the `.modinfo` section of an ELF object.
fn modinfo_section(bytes: &[u8]) -> Result<&[u8], KmodError> {
    let malformed = |why: String| KmodError::Elf(why);
    let header = Elf::parse_header(bytes).map_err(|e| malformed(e.to_string()))?;
    let is_64 = header.e_ident[goblin::elf::header::EI_CLASS] == goblin::elf::header::ELFCLASS64;
    let little = header.e_ident[goblin::elf::header::EI_DATA] == goblin::elf::header::ELFDATA2LSB;
    let container = if is_64 {
        goblin::container::Container::Big
    } else {
        goblin::container::Container::Little
    };
    let ctx = goblin::container::Ctx::new(container, goblin::container::Endian::from(little));
    let sections =
        SectionHeader::parse(bytes, header.e_shoff as usize, header.e_shnum as usize, ctx)
            .map_err(|e| malformed(e.to_string()))?;
    let names = sections
        .get(header.e_shstrndx as usize)
        .and_then(|s| section_bytes(bytes, s))
        .ok_or_else(|| malformed("no section name table".into()))?;
    for section in &sections {
        let name = names
            .get(section.sh_name..)
            .and_then(|rest| rest.split(|b| *b == 0).next())
            .unwrap_or_default();
        if name == b".modinfo" {
            return section_bytes(bytes, section)
                .ok_or_else(|| malformed(".modinfo lies outside the file".into()));
        }
    }
    Err(KmodError::NoModinfo)
}

fn section_bytes<'a>(bytes: &'a [u8], section: &SectionHeader) -> Option<&'a [u8]> {
    let start = usize::try_from(section.sh_offset).ok()?;
    let len = usize::try_from(section.sh_size).ok()?;
    bytes.get(start..start.checked_add(len)?)
}

/// How a module (or firmware) file is compressed, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileCompression {
    None,
    Xz,
    Zstd,
    Gzip,
}

impl FileCompression {
    pub fn of(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some("xz") => Self::Xz,
            Some("zst") => Self::Zstd,
            Some("gz") => Self::Gzip,
            _ => Self::None,
        }
    }
}

/// The module name a file stands for: `dm-mod.ko.xz` -> `dm_mod`.
pub fn module_name_of(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let stem = file
        .strip_suffix(".xz")
        .or_else(|| file.strip_suffix(".zst"))
        .or_else(|| file.strip_suffix(".gz"))
        .unwrap_or(file);
    stem.strip_suffix(".ko").map(normalize_name)
}

/// Reads a file and decompresses it by its extension (`.xz`, `.zst`, `.gz`, else as is).
pub fn read_decompressed(path: &Path) -> Result<Vec<u8>, KmodError> {
    let io_err = |source| KmodError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let mut out = Vec::new();
    match FileCompression::of(path) {
        FileCompression::None => std::io::BufReader::new(file).read_to_end(&mut out),
        FileCompression::Xz => xz2::read::XzDecoder::new_multi_decoder(file).read_to_end(&mut out),
        FileCompression::Zstd => {
            zstd::stream::read::Decoder::new(file).and_then(|mut d| d.read_to_end(&mut out))
        }
        FileCompression::Gzip => flate2::read::MultiGzDecoder::new(file).read_to_end(&mut out),
    }
    .map_err(io_err)?;
    Ok(out)
}

/// A minimal ELF64 relocatable object holding only a `.modinfo` section with these
/// `key=value` pairs: enough for everything here to treat it as a module. For tests (here and
/// in the image builder) that need a module tree without a real kernel.
pub fn synthetic_module(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut modinfo = Vec::new();
    for (k, v) in pairs {
        modinfo.extend_from_slice(format!("{k}={v}").as_bytes());
        modinfo.push(0);
    }
    let names = b"\0.modinfo\0.shstrtab\0";
    let modinfo_off = 64u64;
    let names_off = modinfo_off + modinfo.len() as u64;
    let shoff = (names_off + names.len() as u64).next_multiple_of(8);
    let mut out = Vec::new();
    out.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    out.extend_from_slice(&1u16.to_le_bytes()); // ET_REL
    out.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // entry
    out.extend_from_slice(&0u64.to_le_bytes()); // phoff
    out.extend_from_slice(&shoff.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // flags
    for v in [64u16, 0, 0, 64, 3, 2] {
        out.extend_from_slice(&v.to_le_bytes()); // ehsize, phentsize, phnum, shentsize, shnum, shstrndx
    }
    out.extend_from_slice(&modinfo);
    out.extend_from_slice(names);
    out.resize(shoff as usize, 0);
    let section = |out: &mut Vec<u8>, name: u32, kind: u32, off: u64, size: u64| {
        out.extend_from_slice(&name.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        for v in [0u64, 0, off, size] {
            out.extend_from_slice(&v.to_le_bytes()); // flags, addr, offset, size
        }
        out.extend_from_slice(&[0u8; 8]); // link, info
        out.extend_from_slice(&1u64.to_le_bytes()); // addralign
        out.extend_from_slice(&0u64.to_le_bytes()); // entsize
    };
    section(&mut out, 0, 0, 0, 0);
    section(&mut out, 1, 1, modinfo_off, modinfo.len() as u64); // PROGBITS
    section(&mut out, 10, 3, names_off, names.len() as u64); // STRTAB
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_modinfo_strings() {
        let data = b"alias=fs-vfat\0depends=fat,nls-base\0softdep=pre: crc32c post: x y\0\
name=vfat\0vermagic=6.1.0-56-cloud-amd64 SMP mod_unload \0firmware=a/b.bin\0";
        let info = ModInfo::from_strings(data);
        assert_eq!(info.name, "vfat");
        assert_eq!(info.depends, ["fat", "nls_base"]);
        assert_eq!(info.softdep_pre, ["crc32c"]);
        assert_eq!(info.softdep_post, ["x", "y"]);
        assert_eq!(info.aliases, ["fs-vfat"]);
        assert_eq!(info.firmware, ["a/b.bin"]);
        assert_eq!(info.kernel_release(), Some("6.1.0-56-cloud-amd64"));
    }

    #[test]
    fn reads_a_synthetic_module() {
        let bytes = synthetic_module(&[("name", "a-b"), ("depends", "c"), ("firmware", "x.bin")]);
        let info = ModInfo::from_elf(&bytes).unwrap();
        assert_eq!(info.name, "a_b");
        assert_eq!(info.depends, ["c"]);
        assert_eq!(info.firmware, ["x.bin"]);
        assert!(matches!(
            ModInfo::from_elf(b"not elf"),
            Err(KmodError::Elf(_))
        ));
    }

    #[test]
    fn names_modules_from_files() {
        assert_eq!(
            module_name_of(Path::new("a/dm-mod.ko.xz")).as_deref(),
            Some("dm_mod")
        );
        assert_eq!(module_name_of(Path::new("x.ko")).as_deref(), Some("x"));
        assert_eq!(module_name_of(Path::new("x.txt")), None);
    }

    #[test]
    fn decompresses_every_format() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let data = b"\x7fELF pretend module".repeat(100);
        let xz = dir.path().join("m.ko.xz");
        let mut enc = xz2::write::XzEncoder::new(std::fs::File::create(&xz).unwrap(), 6);
        enc.write_all(&data).unwrap();
        enc.finish().unwrap();
        let zst = dir.path().join("m.ko.zst");
        std::fs::write(&zst, zstd::encode_all(&data[..], 3).unwrap()).unwrap();
        let gz = dir.path().join("m.ko.gz");
        let mut enc =
            flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), Default::default());
        enc.write_all(&data).unwrap();
        enc.finish().unwrap();
        let plain = dir.path().join("m.ko");
        std::fs::write(&plain, &data).unwrap();
        for p in [xz, zst, gz, plain] {
            assert_eq!(read_decompressed(&p).unwrap(), data, "{}", p.display());
        }
    }
}
