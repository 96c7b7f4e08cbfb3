//! Small `Read`/`Write` adapters the pipelines are composed of.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counts the bytes that pass through a reader. The counter can be shared
/// ([`CountingReader::counter`]) to watch progress from another thread, e.g. while the reader
/// itself has moved into a decompression thread.
pub struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> CountingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            count: Arc::new(AtomicU64::new(0)),
        }
    }
    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
    /// The shared counter.
    pub fn counter(&self) -> Arc<AtomicU64> {
        self.count.clone()
    }
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Counts the bytes that pass through a writer.
pub struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> CountingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self { inner, count: 0 }
    }
    pub fn count(&self) -> u64 {
        self.count
    }
    pub fn get_ref(&self) -> &W {
        &self.inner
    }
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Sends a copy of everything read through to a writer (e.g. staging an upload to disk while
/// it is decompressed and verified).
pub struct TeeReader<R, W> {
    inner: R,
    copy: W,
}

impl<R: Read, W: Write> TeeReader<R, W> {
    pub fn new(inner: R, copy: W) -> Self {
        Self { inner, copy }
    }
    pub fn into_parts(self) -> (R, W) {
        (self.inner, self.copy)
    }
}

impl<R: Read, W: Write> Read for TeeReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Reports progress of the bytes passing through to a [`crate::progress::Progress`].
pub struct ProgressReader<'a, R> {
    inner: R,
    progress: &'a dyn crate::progress::Progress,
}

impl<'a, R: Read> ProgressReader<'a, R> {
    pub fn new(inner: R, progress: &'a dyn crate::progress::Progress) -> Self {
        Self { inner, progress }
    }
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_reader_shares_its_count() -> io::Result<()> {
        let data = b"lifeboat".repeat(1000);
        let mut r = CountingReader::new(&data[..]);
        let counter = r.counter();
        let mut out = Vec::new();
        r.read_to_end(&mut out)?;
        assert_eq!(r.count(), data.len() as u64);
        assert_eq!(counter.load(Ordering::Relaxed), data.len() as u64);
        Ok(())
    }

    #[test]
    fn tee_copies_what_is_read() -> io::Result<()> {
        let mut t = TeeReader::new(&b"abc"[..], Vec::new());
        let mut out = Vec::new();
        t.read_to_end(&mut out)?;
        let (_, copy) = t.into_parts();
        assert_eq!(copy, b"abc");
        Ok(())
    }
}
