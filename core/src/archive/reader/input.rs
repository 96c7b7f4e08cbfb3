//! Block input: one buffer over the tar stream with one way to take bytes from it
//! ([`BlockInput::advance`]); everything else (headers, content, padding, the end of the
//! archive) is built on it.

use std::io::{self, Read};

use super::super::header::BLOCK;
use super::super::ArchiveError;

const BUF_SIZE: usize = 256 * 1024;
/// A tar record (20 blocks): after the end-of-archive blocks, zeros up to this much more are
/// padding; anything else is trailing data.
pub const RECORD: u64 = 20 * BLOCK as u64;

pub(super) struct BlockInput<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// Tar stream offset of `buf[pos]`.
    offset: u64,
}

impl<R: Read> BlockInput<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            buf: vec![0u8; BUF_SIZE].into_boxed_slice(),
            pos: 0,
            end: 0,
            offset: 0,
        }
    }

    /// Bytes of tar stream consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Takes up to `max` bytes, refilling the buffer when it is empty; an empty slice only at
    /// the end of the stream (or when `max` is 0).
    pub fn advance(&mut self, max: u64) -> Result<&[u8], ArchiveError> {
        if self.pos == self.end {
            let n = loop {
                match self.inner.read(&mut self.buf[..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(self.io_err(e)),
                }
            };
            self.pos = 0;
            self.end = n;
        }
        let k = ((self.end - self.pos) as u64).min(max) as usize;
        let start = self.pos;
        self.pos += k;
        self.offset += k as u64;
        Ok(&self.buf[start..start + k])
    }

    /// Reads some bytes into `out` (0 at the end of the stream). A large read with nothing
    /// buffered goes straight from the stream into `out`, without a copy.
    pub fn read_into(&mut self, out: &mut [u8]) -> Result<usize, ArchiveError> {
        if self.pos == self.end && out.len() >= BUF_SIZE / 4 {
            loop {
                match self.inner.read(out) {
                    Ok(n) => {
                        self.offset += n as u64;
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(self.io_err(e)),
                }
            }
        }
        let data = self.advance(out.len() as u64)?;
        let n = data.len();
        out[..n].copy_from_slice(data);
        Ok(n)
    }

    /// Fills `out`; the stream ending first is truncation inside `what`.
    pub fn read_exact(&mut self, out: &mut [u8], what: &str) -> Result<(), ArchiveError> {
        let mut got = 0;
        while got < out.len() {
            let n = self.read_into(&mut out[got..])?;
            if n == 0 {
                return Err(self.truncated(what));
            }
            got += n;
        }
        Ok(())
    }

    /// One header block; `None` when the stream ends exactly here.
    pub fn read_block(&mut self) -> Result<Option<[u8; BLOCK]>, ArchiveError> {
        let mut b = [0u8; BLOCK];
        let first = self.read_into(&mut b)?;
        if first == 0 {
            return Ok(None);
        }
        self.read_exact(&mut b[first..], "a header")?;
        Ok(Some(b))
    }

    /// Skips `n` bytes; returns whether they were all zeros.
    pub fn skip(&mut self, mut n: u64, what: &str) -> Result<bool, ArchiveError> {
        let mut zeros = true;
        while n > 0 {
            let data = self.advance(n)?;
            if data.is_empty() {
                return Err(self.truncated(what));
            }
            zeros = zeros && data.iter().all(|&b| b == 0);
            n -= data.len() as u64;
        }
        Ok(zeros)
    }

    /// After the first end-of-archive block: the second one, then at most one record of zero
    /// padding, then the end of the stream (which also lets a decompressor check its own end).
    pub fn expect_end(&mut self) -> Result<(), ArchiveError> {
        match self.read_block()? {
            None => {
                return Err(ArchiveError::Truncated(format!(
                    "the stream ends after a single end-of-archive block at tar offset {}",
                    self.offset
                )))
            }
            Some(b) if b.iter().any(|&c| c != 0) => {
                return Err(self.trailing(self.offset - BLOCK as u64));
            }
            Some(_) => {}
        }
        let mut padding = RECORD;
        loop {
            let at = self.offset;
            let data = self.advance(padding.max(1))?;
            if data.is_empty() {
                return Ok(());
            }
            if padding == 0 || data.iter().any(|&b| b != 0) {
                return Err(self.trailing(at));
            }
            padding -= data.len() as u64;
        }
    }

    fn trailing(&self, at: u64) -> ArchiveError {
        ArchiveError::TrailingData(format!(
            "at tar offset {at}, after the end-of-archive blocks, there is more than zero padding (another archive appended, or garbage)"
        ))
    }

    pub fn truncated(&self, what: &str) -> ArchiveError {
        ArchiveError::Truncated(format!(
            "the stream ends inside {what} at tar offset {}",
            self.offset
        ))
    }

    fn io_err(&self, e: io::Error) -> ArchiveError {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ArchiveError::Truncated(format!(
                "the compressed stream ends early at tar offset {} ({e})",
                self.offset
            ))
        } else {
            ArchiveError::from(e)
        }
    }
}
