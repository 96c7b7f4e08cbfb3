//! Runs a reader (typically the decompressor) on its own thread and hands its output over in
//! big buffers through a bounded channel, so decompression and extraction overlap on two cores
//! while memory stays bounded (`depth` buffers of `chunk` bytes, recycled).

use crossbeam_channel::{bounded, Receiver, Sender};
use std::io::{self, Read};
use std::thread::JoinHandle;

pub struct ReadAhead {
    rx: Receiver<io::Result<Vec<u8>>>,
    recycle: Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
    _thread: Option<JoinHandle<()>>,
}

/// Default: 1 MiB buffers, 8 in flight.
pub const CHUNK: usize = 1 << 20;
pub const DEPTH: usize = 8;

impl ReadAhead {
    pub fn spawn<R: Read + Send + 'static>(inner: R) -> io::Result<Self> {
        Self::with_sizes(inner, CHUNK, DEPTH)
    }

    pub fn with_sizes<R: Read + Send + 'static>(
        mut inner: R,
        chunk: usize,
        depth: usize,
    ) -> io::Result<Self> {
        let (tx, rx) = bounded::<io::Result<Vec<u8>>>(depth);
        let (recycle, recycled) = bounded::<Vec<u8>>(depth + 2);
        let thread = std::thread::Builder::new()
            .name("lifeboat-readahead".into())
            .spawn(move || loop {
                let mut buf = recycled.try_recv().unwrap_or_default();
                buf.resize(chunk, 0);
                let mut filled = 0;
                let mut result = Ok(());
                while filled < chunk {
                    match inner.read(&mut buf[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                }
                buf.truncate(filled);
                let end = filled == 0 || result.is_err();
                if filled > 0 && tx.send(Ok(buf)).is_err() {
                    return;
                }
                if let Err(e) = result {
                    let _ = tx.send(Err(e));
                    return;
                }
                if end {
                    let _ = tx.send(Ok(Vec::new()));
                    return;
                }
            })?;
        Ok(Self {
            rx,
            recycle,
            cur: Vec::new(),
            pos: 0,
            done: false,
            _thread: Some(thread),
        })
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.cur.len() {
            if self.done || out.is_empty() {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(buf)) if buf.is_empty() => {
                    self.done = true;
                    return Ok(0);
                }
                Ok(Ok(buf)) => {
                    let old = std::mem::replace(&mut self.cur, buf);
                    let _ = self.recycle.try_send(old);
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the decompression thread stopped",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_everything_through_in_order() -> io::Result<()> {
        let data: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
        let mut r = ReadAhead::with_sizes(io::Cursor::new(data.clone()), 4096, 3)?;
        let mut out = Vec::new();
        r.read_to_end(&mut out)?;
        assert_eq!(out, data);
        Ok(())
    }

    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::InvalidData, "bad block"))
        }
    }

    #[test]
    fn passes_errors_through() -> io::Result<()> {
        let mut r = ReadAhead::spawn(Failing)?;
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("bad block"));
        Ok(())
    }
}
