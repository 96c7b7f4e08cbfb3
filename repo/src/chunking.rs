//! Content-defined chunking of a generation's UNCOMPRESSED tar stream (FastCDC 2020).
//!
//! Cut points depend on the bytes around them, not on offsets: a file inserted or grown
//! shifts only the chunks around it, and an unchanged file's bytes chunk the same way in
//! every generation and on every host built from the same image.
//!
//! Default sizes: min 256 KiB, average 1 MiB, max 4 MiB. Every chunk is one object, so the
//! average sets the number of PUTs (a 2 GiB control domain is about 2,000 objects: a minute
//! at a few parallel uploads even at 50 ms a request) against the dedup grain (an unchanged
//! file is found again when it spans whole chunks; the archive's manifest and trailer, which
//! change every generation, cost one chunk each at the start and end). restic uses the same
//! 1 MiB average, Proxmox Backup Server 4 MiB. The max bounds memory: a few chunks in flight
//! per upload thread stay far below the 128 MiB budget. A repository records its sizes in
//! its config; tests use smaller ones.

use crate::RepoError;
use serde::{Deserialize, Serialize};

/// The chunker's sizes, recorded in the repository config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    pub min: u32,
    pub avg: u32,
    pub max: u32,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            min: 256 << 10,
            avg: 1 << 20,
            max: 4 << 20,
        }
    }
}

impl ChunkerParams {
    /// Refuses sizes FastCDC does not accept (it would panic on them).
    pub fn check(&self) -> Result<(), RepoError> {
        use fastcdc::v2020::{
            AVERAGE_MAX, AVERAGE_MIN, MAXIMUM_MAX, MAXIMUM_MIN, MINIMUM_MAX, MINIMUM_MIN,
        };
        let ok = (MINIMUM_MIN..=MINIMUM_MAX).contains(&self.min)
            && (AVERAGE_MIN..=AVERAGE_MAX).contains(&self.avg)
            && (MAXIMUM_MIN..=MAXIMUM_MAX).contains(&self.max)
            && self.min <= self.avg
            && self.avg <= self.max;
        if ok {
            Ok(())
        } else {
            Err(RepoError::Format(format!(
                "chunker sizes min {} avg {} max {} are out of FastCDC's ranges",
                self.min, self.avg, self.max
            )))
        }
    }

    /// Cuts `input` into chunks, calling `each` with every chunk's bytes in order.
    pub fn chunk<R: std::io::Read>(
        &self,
        input: R,
        each: &mut dyn FnMut(Vec<u8>) -> Result<(), RepoError>,
    ) -> Result<(), RepoError> {
        self.check()?;
        let cdc = fastcdc::v2020::StreamCDC::new(input, self.min, self.avg, self.max);
        for c in cdc {
            match c {
                Ok(c) => each(c.data)?,
                Err(fastcdc::v2020::Error::IoError(e)) => return Err(RepoError::Read(e)),
                Err(fastcdc::v2020::Error::Empty) => break,
                Err(fastcdc::v2020::Error::Other(e)) => {
                    return Err(RepoError::Read(std::io::Error::other(e)))
                }
            }
        }
        Ok(())
    }
}
