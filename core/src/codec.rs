//! Compression codecs: zstd (default), gzip (what `xe host-backup` writes), xz, none; detected
//! from magic bytes when reading; compression uses every core.
//!
//! Contract: `Codec::{Zstd,Gzip,Xz,None}` with `name()`/`from_name()`; `detect(&[u8]) -> Codec`;
//! `decoder(reader) -> io::Result<(Codec, Box<dyn Read + Send>)>` (peeks the magic);
//! `encoder(writer, codec, level: Option<i32>, threads) -> io::Result<Encoder<W>>` where
//! `Encoder<W>: Write` and `finish(self) -> io::Result<W>`. (Owned by the archive-format work.)
