//! Compression codecs: zstd (default), gzip (what `xe host-backup` writes), xz, none; detected
//! from magic bytes when reading; compression uses every core.
//!
//! Contract: `Codec::{Zstd,Gzip,Xz,None}` with `name()`/`from_name()`; `detect(&[u8]) -> Codec`
//! (compression magic only); `decoder(reader) -> io::Result<(Codec, Box<dyn Read + Send>)>`
//! (peeks the first block of the tar stream, decompressed when the stream is compressed: it
//! must be a valid tar header, otherwise the error carries [`ArchiveError::NotAnArchive`], or
//! [`ArchiveError::Empty`] for an empty stream; `ArchiveError::from(io_error)` gets it back.
//! A compressed stream whose content is empty or starts with a zero block is handed on: the
//! archive reader says it holds no entry. A decompression error in that first block is
//! returned by the read that reaches it, not by `decoder`);
//! `encoder(writer, codec, level: Option<i32>, threads) -> io::Result<Encoder<W>>` where
//! `Encoder<W>: Write` and `finish(self) -> io::Result<W>`.
//!
//! - zstd: the zstd library's multithreaded compressor (`threads` workers), content checksum
//!   on, default level 2 (see `Codec::default_level`). Built without the legacy (pre-1.0)
//!   format decoders.
//! - gzip: the input is cut into 1 MiB chunks compressed in parallel, each as an independent
//!   gzip member, written in order: a valid multi-member gzip file that gzip, GNU tar and
//!   every zlib reader accept (like `pigz --independent`). Default level 6. At most
//!   `2 x threads` chunks are in flight, so memory stays bounded.
//! - xz: liblzma's multithreaded stream encoder, CRC64 check, default preset 6. Its memory is
//!   kept within [`XZ_ENCODER_BUDGET`] (and a quarter of RAM) so a backup stays under 128 MiB:
//!   it runs as many threads as fit, and when even one thread of the preset does not fit
//!   (preset 6 and up: one thread needs about 165 MiB), the dictionary is made smaller (for
//!   preset 6: 2 MiB, one thread), which costs some compression. Decoding is limited to
//!   [`XZ_DECODER_MEMLIMIT`], enough for every xz file Lifeboat writes and for `xz -9`.
//! - none: the tar stream as is.
//!
//! Errors propagate: a failed worker makes `write` or `finish` fail, never a short file.
//! `finish()` must be called; dropping an `Encoder` loses the end of the stream.
//!
//! [`decoder`] runs decompression in its own thread and hands 1 MiB chunks over a bounded
//! channel, so decompressing and extracting use two cores like `zstd -d | tar -x`.
//! [`decoder_inline`] does the same in the caller's thread, for borrowed readers.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};

/// A compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Zstd,
    Gzip,
    Xz,
    None,
}

impl Codec {
    pub const ALL: [Codec; 4] = [Codec::Zstd, Codec::Gzip, Codec::Xz, Codec::None];

    pub fn name(self) -> &'static str {
        match self {
            Codec::Zstd => "zstd",
            Codec::Gzip => "gzip",
            Codec::Xz => "xz",
            Codec::None => "none",
        }
    }

    /// Parses a codec name (`zstd`, `gzip`/`gz`, `xz`, `none`/`tar`).
    pub fn from_name(s: &str) -> Option<Codec> {
        match s.to_ascii_lowercase().as_str() {
            "zstd" | "zst" => Some(Codec::Zstd),
            "gzip" | "gz" => Some(Codec::Gzip),
            "xz" => Some(Codec::Xz),
            "none" | "tar" => Some(Codec::None),
            _ => None,
        }
    }

    /// The usual file name extension of a tar in this codec.
    pub fn extension(self) -> &'static str {
        match self {
            Codec::Zstd => "tar.zst",
            Codec::Gzip => "tar.gz",
            Codec::Xz => "tar.xz",
            Codec::None => "tar",
        }
    }

    pub fn default_level(self) -> i32 {
        match self {
            // Level 2 of the bundled libzstd (1.5.7) compresses within 1.5% of the size of the
            // zstd 1.5.4 CLI's level 3 (what `tar | zstd -3 -T0` gives on Debian 12) while taking
            // less time; its level 3 does more work than that CLI's. Measured by `make bench`.
            Codec::Zstd => 2,
            Codec::Gzip => 6,
            Codec::Xz => 6,
            Codec::None => 0,
        }
    }

    /// Valid levels, for messages and argument checks.
    pub fn level_range(self) -> (i32, i32) {
        match self {
            Codec::Zstd => (-7, 22),
            Codec::Gzip => (1, 9),
            Codec::Xz => (0, 9),
            Codec::None => (0, 0),
        }
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];

/// Memory the xz decoder may use. Lifeboat's own xz streams need at most 10 MiB (a dictionary
/// of at most 8 MiB, see [`XZ_ENCODER_BUDGET`]); `xz -9` files need 65 MiB.
pub const XZ_DECODER_MEMLIMIT: u64 = 72 << 20;
/// Memory the xz encoder may use (all threads together).
pub const XZ_ENCODER_BUDGET: u64 = 80 << 20;

/// The codec of a stream from its compression magic (no magic: `Codec::None`; whether that
/// is a tar archive is for [`decoder`] to check).
pub fn detect(magic: &[u8]) -> Codec {
    if magic.starts_with(ZSTD_MAGIC) {
        Codec::Zstd
    } else if magic.starts_with(GZIP_MAGIC) {
        Codec::Gzip
    } else if magic.starts_with(XZ_MAGIC) {
        Codec::Xz
    } else {
        Codec::None
    }
}

/// The number of worker threads to use when the caller passes 0.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A reader with its first bytes put back in front.
type Peeked<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

/// Whether `block` is a tar header: its checksum is right and it has the ustar or GNU magic,
/// or (a v7 header, without magic) a name and octal mode and size fields.
pub fn is_tar_header(block: &[u8]) -> bool {
    use crate::archive::header::{self, BLOCK};
    let Ok(block) = <&[u8; BLOCK]>::try_from(block.get(..BLOCK).unwrap_or_default()) else {
        return false;
    };
    if !header::checksum_ok(block) {
        return false;
    }
    let magic = header::field(block, header::MAGIC);
    if magic.starts_with(b"ustar\0") || magic == header::GNU_MAGIC {
        return true;
    }
    magic.iter().all(|&b| b == 0)
        && !header::cstr(header::field(block, header::NAME)).is_empty()
        && header::parse_u64(header::field(block, header::MODE)).is_ok()
        && header::parse_u64(header::field(block, header::SIZE)).is_ok()
}

fn not_an_archive(e: crate::archive::ArchiveError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Reads until `buf` is full or the stream ends: the number of bytes read, and the error
/// that stopped it early, if one did.
fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (got, Some(e)),
        }
    }
    (got, None)
}

/// The first block of the stream as it comes (compression magic or a tar header), put back.
fn peek_magic<R: Read>(mut r: R) -> io::Result<(Codec, Peeked<R>)> {
    let mut magic = vec![0u8; crate::archive::header::BLOCK];
    let (got, err) = read_up_to(&mut r, &mut magic);
    if let Some(e) = err {
        return Err(e);
    }
    magic.truncate(got);
    let codec = detect(&magic);
    if codec == Codec::None {
        check_first_block(&magic, None)?;
    }
    Ok((codec, io::Cursor::new(magic).chain(r)))
}

/// Refuses a stream whose first block of tar data is not a tar header: the stream as it is
/// (`compressed` None) or the whole content of a compressed stream. In a compressed stream an
/// empty or all-zero first block is left to the archive reader (an archive with no entry: it
/// says so).
fn check_first_block(block: &[u8], compressed: Option<Codec>) -> io::Result<()> {
    use crate::archive::ArchiveError;
    let zeros = block.iter().all(|&b| b == 0);
    if is_tar_header(block) || (compressed.is_some() && zeros) {
        return Ok(());
    }
    let what = match compressed {
        // The decompressor ended cleanly before a whole block: the content is that short.
        Some(c) if block.len() < crate::archive::header::BLOCK => format!(
            "its {c}-compressed content is {} bytes long, less than one tar header",
            block.len()
        ),
        Some(c) => format!("the first 512 bytes of its {c}-compressed content are not a tar header"),
        None if block.is_empty() => {
            return Err(not_an_archive(ArchiveError::Empty(
                "it is 0 bytes long".into(),
            )))
        }
        None if zeros => "it starts with zeros where a tar header or a compression magic belongs (its beginning was erased?)".into(),
        None => "it starts with neither zstd, gzip or xz magic bytes nor a valid tar header".into(),
    };
    Err(not_an_archive(ArchiveError::NotAnArchive(what)))
}

/// A decompressed stream with its first block read ahead and checked (see
/// [`check_first_block`]). An error while reading that block is not reported here but where
/// it would have been without the look-ahead: by the read that reaches it, after the bytes
/// before it, so that the archive reader can say in which entry the damage is.
fn peek_tar<'a>(codec: Codec, mut d: Box<dyn Read + Send + 'a>) -> io::Result<PeekedTar<'a>> {
    let mut first = vec![0u8; crate::archive::header::BLOCK];
    let (got, err) = read_up_to(&mut d, &mut first);
    first.truncate(got);
    if err.is_none() {
        check_first_block(&first, Some(codec))?;
    }
    Ok(io::Cursor::new(first).chain(Deferred { err, inner: d }))
}

type PeekedTar<'a> = io::Chain<io::Cursor<Vec<u8>>, Deferred<'a>>;

/// The rest of a stream after the look-ahead: the error the look-ahead met, if it met one
/// (and then the same kind of error again), else the stream itself.
struct Deferred<'a> {
    err: Option<io::Error>,
    inner: Box<dyn Read + Send + 'a>,
}

impl Read for Deferred<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.err {
            None => self.inner.read(buf),
            Some(e) => {
                let again = io::Error::new(e.kind(), e.to_string());
                Err(std::mem::replace(e, again))
            }
        }
    }
}

/// Detects the codec and decompresses in the caller's thread.
pub fn decoder_inline<'a, R: Read + Send + 'a>(
    reader: R,
) -> io::Result<(Codec, Box<dyn Read + Send + 'a>)> {
    let (codec, r) = peek_magic(reader)?;
    let d: Box<dyn Read + Send + 'a> = match codec {
        Codec::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
        Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(
            io::BufReader::with_capacity(256 * 1024, r),
        )),
        Codec::Xz => {
            let stream = xz2::stream::Stream::new_stream_decoder(
                XZ_DECODER_MEMLIMIT,
                xz2::stream::CONCATENATED,
            )
            .map_err(io::Error::from)?;
            Box::new(XzLimited(xz2::read::XzDecoder::new_stream(
                io::BufReader::with_capacity(256 * 1024, r),
                stream,
            )))
        }
        Codec::None => return Ok((codec, Box::new(r))),
    };
    Ok((codec, Box::new(peek_tar(codec, d)?)))
}

/// The xz decoder, with a clear error when a stream needs more than [`XZ_DECODER_MEMLIMIT`].
struct XzLimited<R: Read>(xz2::read::XzDecoder<R>);

impl<R: Read> Read for XzLimited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            let over = e
                .get_ref()
                .and_then(|i| i.downcast_ref::<xz2::stream::Error>())
                .is_some_and(|x| *x == xz2::stream::Error::MemLimit);
            if over {
                io::Error::other(format!(
                    "the xz stream needs more than {} MiB of memory to decompress (its dictionary is larger than any Lifeboat or `xz -9` writes); recompress it with a lower xz level or zstd",
                    XZ_DECODER_MEMLIMIT >> 20
                ))
            } else {
                e
            }
        })
    }
}

/// Detects the codec and decompresses in a background thread (see the module doc).
pub fn decoder<R: Read + Send + 'static>(reader: R) -> io::Result<(Codec, Box<dyn Read + Send>)> {
    let (codec, inner) = decoder_inline(reader)?;
    Ok((codec, Box::new(ThreadedReader::spawn(inner)?)))
}

const CHUNK: usize = 1024 * 1024;

enum Piece {
    Data(Vec<u8>),
    Err(io::Error),
    End,
}

/// Reads from a reader in a thread, handing over chunks through a bounded channel.
struct ThreadedReader {
    rx: Receiver<Piece>,
    recycle: Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    finished: bool,
    handle: Option<JoinHandle<()>>,
}

impl ThreadedReader {
    fn spawn(mut inner: Box<dyn Read + Send>) -> io::Result<Self> {
        let (tx, rx) = bounded::<Piece>(4);
        let (recycle, spare) = bounded::<Vec<u8>>(8);
        let handle = std::thread::Builder::new()
            .name("lifeboat-decompress".into())
            .spawn(move || loop {
                let mut buf = spare.try_recv().unwrap_or_default();
                buf.resize(CHUNK, 0);
                let (got, err) = read_up_to(&mut inner, &mut buf);
                buf.truncate(got);
                if got > 0 && tx.send(Piece::Data(buf)).is_err() {
                    return;
                }
                if let Some(e) = err {
                    let _ = tx.send(Piece::Err(e));
                    return;
                }
                if got < CHUNK {
                    let _ = tx.send(Piece::End);
                    return;
                }
            })?;
        Ok(Self {
            rx,
            recycle,
            cur: Vec::new(),
            pos: 0,
            finished: false,
            handle: Some(handle),
        })
    }
}

impl Read for ThreadedReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.finished {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Piece::Data(d)) => {
                    let old = std::mem::replace(&mut self.cur, d);
                    let _ = self.recycle.try_send(old);
                    self.pos = 0;
                }
                Ok(Piece::Err(e)) => {
                    self.finished = true;
                    return Err(e);
                }
                Ok(Piece::End) => {
                    self.finished = true;
                    if let Some(h) = self.handle.take() {
                        let _ = h.join();
                    }
                }
                Err(_) => {
                    self.finished = true;
                    return Err(io::Error::other(
                        "the decompression thread stopped unexpectedly",
                    ));
                }
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A quarter of the machine's RAM (512 MiB when it cannot be read).
fn xz_memory_budget() -> u64 {
    crate::meminfo::read("MemTotal").map_or(512 << 20, |total| total / 4)
}

/// The xz encoder within [`XZ_ENCODER_BUDGET`] and a quarter of RAM: as many threads as fit
/// (like `xz -T0`), and a smaller dictionary when one thread of the preset does not fit.
fn xz_encoder(preset: u32, threads: u32) -> io::Result<xz2::stream::Stream> {
    xz_builder(preset, threads)?
        .encoder()
        .map_err(io::Error::other)
}

fn xz_builder(preset: u32, threads: u32) -> io::Result<xz2::stream::MtStreamBuilder> {
    let budget = xz_memory_budget().min(XZ_ENCODER_BUDGET);
    let mut opts = xz2::stream::LzmaOptions::new_preset(preset).map_err(io::Error::from)?;
    // The presets' dictionary sizes (liblzma's documented table).
    const PRESET_DICT: [u32; 10] = [
        256 << 10,
        1 << 20,
        2 << 20,
        4 << 20,
        4 << 20,
        8 << 20,
        8 << 20,
        16 << 20,
        32 << 20,
        64 << 20,
    ];
    let mut dict = PRESET_DICT[preset.min(9) as usize];
    let mut b = xz2::stream::MtStreamBuilder::new();
    b.check(xz2::stream::Check::Crc64);
    loop {
        let mut filters = xz2::stream::Filters::new();
        filters.lzma2(&opts);
        b.filters(filters);
        let mut t = threads.max(1);
        while t > 1 && b.threads(t).memusage() > budget {
            t -= 1;
        }
        b.threads(t);
        if b.memusage() <= budget || dict <= 1 << 20 {
            return Ok(b);
        }
        dict /= 2;
        opts = xz2::stream::LzmaOptions::new_preset(preset).map_err(io::Error::from)?;
        opts.dict_size(dict);
    }
}

/// A compressing writer; call [`Encoder::finish`] at the end.
pub struct Encoder<W: Write> {
    kind: Kind<W>,
}

enum Kind<W: Write> {
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Gzip(ParallelGzip<W>),
    Xz(xz2::write::XzEncoder<W>),
    None(W),
}

/// Wraps `writer` in a compressor. `level` None = the codec's default; `threads` 0 = all
/// cores.
pub fn encoder<W: Write>(
    writer: W,
    codec: Codec,
    level: Option<i32>,
    threads: usize,
) -> io::Result<Encoder<W>> {
    let threads = if threads == 0 {
        default_threads()
    } else {
        threads
    };
    let level = level.unwrap_or(codec.default_level());
    let (lo, hi) = codec.level_range();
    if codec != Codec::None && !(lo..=hi).contains(&level) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{codec} level {level} is out of range ({lo}..={hi})"),
        ));
    }
    let kind = match codec {
        Codec::Zstd => {
            let mut e = zstd::stream::write::Encoder::new(writer, level)?;
            e.include_checksum(true)?;
            if threads > 1 {
                e.multithread(threads as u32)?;
            }
            Kind::Zstd(e)
        }
        Codec::Gzip => Kind::Gzip(ParallelGzip::new(writer, level as u32, threads)?),
        Codec::Xz => {
            let stream = xz_encoder(level as u32, threads as u32)?;
            Kind::Xz(xz2::write::XzEncoder::new_stream(writer, stream))
        }
        Codec::None => Kind::None(writer),
    };
    Ok(Encoder { kind })
}

impl<W: Write> Encoder<W> {
    /// Flushes everything and ends the compressed stream; returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self.kind {
            Kind::Zstd(e) => {
                let mut w = e.finish()?;
                w.flush()?;
                Ok(w)
            }
            Kind::Gzip(g) => g.finish(),
            Kind::Xz(e) => {
                let mut w = e.finish()?;
                w.flush()?;
                Ok(w)
            }
            Kind::None(mut w) => {
                w.flush()?;
                Ok(w)
            }
        }
    }

    pub fn get_ref(&self) -> &W {
        match &self.kind {
            Kind::Zstd(e) => e.get_ref(),
            Kind::Gzip(g) => &g.out,
            Kind::Xz(e) => e.get_ref(),
            Kind::None(w) => w,
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.kind {
            Kind::Zstd(e) => e.write(buf),
            Kind::Gzip(g) => g.write(buf),
            Kind::Xz(e) => e.write(buf),
            Kind::None(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.kind {
            Kind::Zstd(e) => e.write_all(buf),
            Kind::Gzip(g) => g.write_all(buf),
            Kind::Xz(e) => e.write_all(buf),
            Kind::None(w) => w.write_all(buf),
        }
    }

    /// Flushes buffered output that is already compressed; it does not end the stream.
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.kind {
            Kind::Zstd(e) => e.flush(),
            Kind::Gzip(g) => g.out.flush(),
            Kind::Xz(e) => e.get_mut().flush(),
            Kind::None(w) => w.flush(),
        }
    }
}

/// A worker's answer: the compressed member and the input buffer, handed back for reuse.
type GzDone = io::Result<(Vec<u8>, Vec<u8>)>;
type GzJob = (Vec<u8>, Sender<GzDone>);

/// Parallel gzip: independent members compressed by worker threads, written in order by the
/// caller's thread.
struct ParallelGzip<W: Write> {
    out: W,
    chunk: Vec<u8>,
    jobs: Option<Sender<GzJob>>,
    queue: VecDeque<Receiver<GzDone>>,
    spare: Vec<Vec<u8>>,
    max_in_flight: usize,
    members: u64,
    workers: Vec<JoinHandle<()>>,
}

impl<W: Write> ParallelGzip<W> {
    fn new(out: W, level: u32, threads: usize) -> io::Result<Self> {
        let (tx, rx) = bounded::<GzJob>(threads * 2);
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            let rx: Receiver<GzJob> = rx.clone();
            workers.push(
                std::thread::Builder::new()
                    .name(format!("lifeboat-gzip-{i}"))
                    .spawn(move || {
                        while let Ok((input, reply)) = rx.recv() {
                            let mut enc = flate2::write::GzEncoder::new(
                                Vec::with_capacity(input.len() / 2 + 1024),
                                flate2::Compression::new(level),
                            );
                            let r = enc.write_all(&input).and_then(|_| enc.finish());
                            let _ = reply.send(r.map(|v| (v, input)));
                        }
                    })?,
            );
        }
        Ok(Self {
            out,
            chunk: Vec::with_capacity(CHUNK),
            jobs: Some(tx),
            queue: VecDeque::new(),
            spare: Vec::new(),
            max_in_flight: threads * 2 + 1,
            members: 0,
            workers,
        })
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.chunk.len());
        self.chunk.extend_from_slice(&buf[..n]);
        if self.chunk.len() == CHUNK {
            self.submit()?;
        }
        Ok(n)
    }

    fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.write(buf)?;
            buf = &buf[n..];
        }
        Ok(())
    }

    fn submit(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        while self.queue.len() >= self.max_in_flight {
            self.write_oldest()?;
        }
        let next = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(CHUNK));
        let input = std::mem::replace(&mut self.chunk, next);
        let (reply_tx, reply_rx) = bounded(1);
        let jobs = self.jobs.as_ref().ok_or_else(worker_gone)?;
        jobs.send((input, reply_tx)).map_err(|_| worker_gone())?;
        self.queue.push_back(reply_rx);
        // Write whatever is already done, without waiting.
        while let Some(front) = self.queue.front() {
            if front.is_empty() {
                break;
            }
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(rx) = self.queue.pop_front() else {
            return Ok(());
        };
        let (compressed, mut input) = rx.recv().map_err(|_| worker_gone())??;
        self.out.write_all(&compressed)?;
        self.members += 1;
        input.clear();
        if self.spare.len() < 2 {
            self.spare.push(input);
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<W> {
        self.submit()?;
        while !self.queue.is_empty() {
            self.write_oldest()?;
        }
        if self.members == 0 {
            // An empty input still makes a valid gzip file: one empty member.
            let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            self.out.write_all(&enc.finish()?)?;
        }
        self.jobs = None;
        for w in self.workers.drain(..) {
            w.join()
                .map_err(|_| io::Error::other("a gzip worker thread panicked"))?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

fn worker_gone() -> io::Error {
    io::Error::other("a gzip compression worker stopped unexpectedly")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn sample(n: usize) -> Vec<u8> {
        // Compressible but not trivial.
        let mut v = Vec::with_capacity(n);
        let mut x: u32 = 12345;
        while v.len() < n {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let word = (x >> 16) % 64;
            v.extend_from_slice(format!("word{word} ").as_bytes());
        }
        v.truncate(n);
        v
    }

    /// `sample(n)` behind a valid tar header, so that an uncompressed stream is recognised.
    fn tar_sample(n: usize) -> Vec<u8> {
        use crate::archive::header;
        let mut b = [0u8; header::BLOCK];
        b[..4].copy_from_slice(b"./x\0");
        header::put_u64(&mut b, header::MODE, 0o644);
        header::put_u64(&mut b, header::SIZE, n as u64);
        b[header::TYPEFLAG] = b'0';
        b[header::MAGIC.0..header::MAGIC.0 + 8].copy_from_slice(header::USTAR_MAGIC);
        header::set_checksum(&mut b);
        let mut v = b.to_vec();
        v.extend_from_slice(&sample(n));
        v
    }

    fn compress(c: Codec, data: &[u8], threads: usize) -> io::Result<Vec<u8>> {
        let mut e = encoder(Vec::new(), c, None, threads)?;
        // Odd write sizes cross chunk boundaries.
        for part in data.chunks(77_777) {
            e.write_all(part)?;
        }
        e.finish()
    }

    #[test]
    fn each_codec_round_trips_and_is_detected() -> TestResult {
        for c in Codec::ALL {
            let data = tar_sample(if c == Codec::Xz { 300_000 } else { 3 << 20 });
            let packed = compress(c, &data, 2)?;
            assert_eq!(detect(&packed), c);
            if c != Codec::None {
                assert!(packed.len() < data.len() / 2, "{c} did not compress");
            }
            for threaded in [true, false] {
                let (got, mut r) = if threaded {
                    decoder(io::Cursor::new(packed.clone()))?
                } else {
                    decoder_inline(&packed[..])?
                };
                assert_eq!(got, c);
                let mut back = Vec::new();
                r.read_to_end(&mut back)?;
                assert!(back == data, "{c} round trip differs");
            }
            assert_eq!(Codec::from_name(c.name()), Some(c));
        }
        Ok(())
    }

    #[test]
    fn empty_input_makes_valid_streams() -> TestResult {
        for c in [Codec::Zstd, Codec::Gzip, Codec::Xz] {
            let packed = compress(c, b"", 2)?;
            let (_, mut r) = decoder_inline(&packed[..])?;
            let mut back = Vec::new();
            r.read_to_end(&mut back)?;
            assert!(back.is_empty(), "{c}");
        }
        Ok(())
    }

    #[test]
    fn parallel_gzip_is_read_by_gzip() -> TestResult {
        if !crate::testing::require_tool("gzip") {
            return Ok(());
        }
        let data = sample(5 << 20);
        let packed = compress(Codec::Gzip, &data, 3)?;
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("x.gz");
        std::fs::write(&p, &packed)?;
        let o = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(&p)
            .output()?;
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(o.stdout == data, "gzip -dc gave different bytes");
        Ok(())
    }

    #[test]
    fn zstd_frames_carry_a_checksum() -> TestResult {
        let packed = compress(Codec::Zstd, &sample(1 << 20), 2)?;
        // Frame header descriptor: bit 2 = content checksum flag.
        assert_eq!(packed[4] & 0b100, 0b100);
        Ok(())
    }

    /// A writer that fails after `left` bytes.
    struct Failing {
        left: usize,
    }
    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::Error::other("disk full"));
            }
            let n = buf.len().min(self.left);
            self.left -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_errors_propagate() -> TestResult {
        let data = sample(4 << 20);
        for c in Codec::ALL {
            let r = (|| -> io::Result<Failing> {
                let mut e = encoder(Failing { left: 1000 }, c, Some(c.level_range().0), 2)?;
                e.write_all(&data)?;
                e.finish()
            })();
            assert!(r.is_err(), "{c}: a failing output was not reported");
        }
        Ok(())
    }

    #[test]
    fn truncated_streams_are_errors() -> TestResult {
        let data = tar_sample(2 << 20);
        for c in [Codec::Zstd, Codec::Gzip] {
            let packed = compress(c, &data, 2)?;
            let cut = &packed[..packed.len() - 10];
            let (_, mut r) = decoder(io::Cursor::new(cut.to_vec()))?;
            let mut back = Vec::new();
            assert!(
                r.read_to_end(&mut back).is_err(),
                "{c}: truncation not reported"
            );
        }
        Ok(())
    }

    #[test]
    fn xz_encoder_fits_the_memory_budget() -> TestResult {
        for preset in [0, 6, 9] {
            let used = xz_builder(preset, 8)?.memusage();
            assert!(
                used <= XZ_ENCODER_BUDGET,
                "preset {preset}: {} MiB",
                used >> 20
            );
        }
        // Our own output decodes within the decoder's limit.
        let data = tar_sample(1 << 20);
        let packed = compress(Codec::Xz, &data, 2)?;
        let (_, mut r) = decoder_inline(&packed[..])?;
        let mut back = Vec::new();
        r.read_to_end(&mut back)?;
        assert!(back == data);
        Ok(())
    }

    #[test]
    fn xz_streams_needing_too_much_memory_are_refused() -> TestResult {
        // A real stream whose LZMA2 dictionary property is raised to 512 MiB (the block
        // header's CRC32 fixed up): the decoder must refuse it, with a clear message.
        let mut packed = compress(Codec::Xz, &tar_sample(100_000), 1)?;
        let hdr = 12; // after the stream header
        let size = (packed[hdr] as usize + 1) * 4;
        let filter = packed[hdr..hdr + size]
            .windows(2)
            .position(|w| w == [0x21, 0x01])
            .ok_or("no LZMA2 filter in the block header")?;
        packed[hdr + filter + 2] = 34; // 2 << 28 = 512 MiB
        let mut crc = flate2::Crc::new();
        crc.update(&packed[hdr..hdr + size - 4]);
        packed[hdr + size - 4..hdr + size].copy_from_slice(&crc.sum().to_le_bytes());
        let (_, mut r) = decoder_inline(&packed[..])?;
        let mut back = Vec::new();
        let err = r.read_to_end(&mut back).err().ok_or("decoded anyway")?;
        assert!(err.to_string().contains("MiB of memory"), "{err}");
        Ok(())
    }

    #[test]
    fn streams_that_are_not_archives_are_refused() {
        use crate::archive::ArchiveError;
        for (what, bytes) in [
            ("zeros", vec![0u8; 100_000]),
            (
                "text",
                b"hello, this is not an archive at all\n".repeat(100),
            ),
            ("short", b"x".to_vec()),
        ] {
            // The same refusal, when the stream is opened, whether or not it is compressed
            // (zeros inside a compressed stream are an empty archive: the reader says so).
            for c in Codec::ALL {
                if what == "zeros" && c != Codec::None {
                    assert!(decoder(io::Cursor::new(compress(c, &bytes, 1).unwrap())).is_ok());
                    continue;
                }
                let packed = compress(c, &bytes, 1).unwrap();
                match decoder(io::Cursor::new(packed))
                    .map(|_| ())
                    .map_err(ArchiveError::from)
                {
                    Err(ArchiveError::NotAnArchive(m))
                        if c == Codec::None || m.contains(c.name()) => {}
                    other => panic!("{what} ({c}): {other:?}"),
                }
            }
        }
        assert!(matches!(
            decoder_inline(&b""[..])
                .map(|_| ())
                .map_err(ArchiveError::from),
            Err(ArchiveError::Empty(_))
        ));
    }

    #[test]
    fn an_error_in_the_first_block_is_reported_where_it_is_read() -> TestResult {
        // Cut so early that the decompressor fails before a whole block came out: opening
        // succeeds, the read that reaches the cut fails (after the bytes before it).
        for c in [Codec::Zstd, Codec::Gzip, Codec::Xz] {
            let packed = compress(c, &tar_sample(100_000), 1)?;
            let (_, mut r) = decoder(io::Cursor::new(packed[..40].to_vec()))?;
            let mut back = Vec::new();
            assert!(
                r.read_to_end(&mut back).is_err(),
                "{c}: the cut was not reported"
            );
            let (_, mut r) = decoder_inline(&packed[..40])?;
            assert!(
                r.read_to_end(&mut back).is_err(),
                "{c}: the cut was not reported"
            );
            assert!(
                r.read(&mut [0u8; 16]).is_err(),
                "{c}: a read after the error succeeded"
            );
        }
        Ok(())
    }

    #[test]
    fn bad_levels_are_refused() {
        assert!(encoder(Vec::new(), Codec::Gzip, Some(12), 1).is_err());
        assert!(encoder(Vec::new(), Codec::Zstd, Some(23), 1).is_err());
    }
}
