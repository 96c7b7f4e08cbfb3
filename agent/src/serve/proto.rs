//! The framed protocol of `lifeboat serve`, inside TLS. Every frame is one kind byte, a
//! big-endian u32 length and that many bytes. The client sends a [`Request`] frame, then
//! (host-restore, verify of an upload) the archive in `DATA` frames and `END` once it was sent
//! in full; the server answers with `STDERR` (the far messages), `DATA` (the far stdout: the
//! archive of host-backup, list's output) and one final `STATUS` ([`Status`]: the exit code
//! and a message). An upload without `END` is cut: the far command sees it truncated and
//! commits nothing.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const REQUEST: u8 = 1;
pub const DATA: u8 = 2;
pub const END: u8 = 3;
pub const STDERR: u8 = 4;
pub const STATUS: u8 = 5;
/// The largest frame either side accepts (a request, a chunk of the archive).
pub const MAX_FRAME: usize = 1 << 20;
/// The size of the archive chunks sent.
pub const CHUNK: usize = 256 << 10;

/// What the client asks for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Request {
    /// The client's Lifeboat version (major.minor must match the server's).
    pub version: String,
    /// The words of the command, as `lifeboat` takes them (`--file-name=-` when the archive
    /// streams).
    pub words: Vec<String>,
    /// A token of `lifeboat token add`, when the client has no certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// How the far command ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    pub code: u8,
    pub message: String,
}

/// A protocol error: the peer sent what this protocol does not allow.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("a frame of {0} bytes is larger than the {MAX_FRAME} bytes allowed")]
    TooLarge(usize),
    #[error("malformed {what}: {err}")]
    Json {
        what: &'static str,
        err: serde_json::Error,
    },
}

pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    kind: u8,
    payload: &[u8],
) -> std::io::Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame too large"))?;
    let mut head = [0u8; 5];
    head[0] = kind;
    head[1..].copy_from_slice(&len.to_be_bytes());
    w.write_all(&head).await?;
    w.write_all(payload).await?;
    Ok(())
}

/// The next frame, or None at a clean end of the stream (between frames).
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
) -> Result<Option<(u8, Vec<u8>)>, ProtoError> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head[..1]).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    r.read_exact(&mut head[1..]).await?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_FRAME {
        return Err(ProtoError::TooLarge(len));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    Ok(Some((head[0], payload)))
}

pub fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail; an empty object is sent if it ever did.
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

pub fn from_json<'a, T: Deserialize<'a>>(what: &'static str, b: &'a [u8]) -> Result<T, ProtoError> {
    serde_json::from_slice(b).map_err(|err| ProtoError::Json { what, err })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_oversized_ones_are_refused() {
        let mut buf = Vec::new();
        let req = Request {
            version: "0.1.0".into(),
            words: vec!["list".into(), "--json".into()],
            token: None,
        };
        write_frame(&mut buf, REQUEST, &to_json(&req))
            .await
            .unwrap();
        write_frame(&mut buf, DATA, b"abc").await.unwrap();
        let mut r = buf.as_slice();
        let (k, p) = read_frame(&mut r).await.unwrap().unwrap();
        assert_eq!(k, REQUEST);
        assert_eq!(from_json::<Request>("request", &p).unwrap(), req);
        assert_eq!(
            read_frame(&mut r).await.unwrap().unwrap(),
            (DATA, b"abc".to_vec())
        );
        assert!(read_frame(&mut r).await.unwrap().is_none());
        let mut big = vec![DATA];
        big.extend_from_slice(&(MAX_FRAME as u32 + 1).to_be_bytes());
        assert!(matches!(
            read_frame(&mut big.as_slice()).await,
            Err(ProtoError::TooLarge(_))
        ));
        // A frame cut in its middle is an error, not a clean end.
        let mut cut = buf[..buf.len() - 1].to_vec();
        cut.drain(..0);
        let mut r = cut.as_slice();
        read_frame(&mut r).await.unwrap();
        assert!(read_frame(&mut r).await.is_err());
    }
}
