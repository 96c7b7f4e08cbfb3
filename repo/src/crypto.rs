//! Keys and encryption: the fleet secret (convergent chunk keys and opaque names), chunk
//! AEAD, and age for what only a host and the recovery key may read.
//!
//! - chunk key = BLAKE3 keyed with a key derived from the fleet secret, over the chunk's
//!   plaintext: the same content gives the same key on every host (deduplication);
//! - chunk id = BLAKE3 keyed with another derived key, over the chunk key: the object's name
//!   reveals nothing of the content without the fleet secret;
//! - chunk object = `LBC1` | 24-byte random nonce | XChaCha20-Poly1305(chunk key,
//!   zstd(plaintext)), the chunk id as associated data (an object moved under another name
//!   fails to open);
//! - the refs part of an index (chunk ids) is sealed with a key derived from the fleet secret
//!   (every host and prune read it); the secret part (chunk keys, meta) is age-encrypted to
//!   the writing host and the recovery recipients only.

use crate::RepoError;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::io::{Read, Write};

const CHUNK_MAGIC: &[u8; 4] = b"LBC1";
const SEALED_MAGIC: &[u8; 4] = b"LBS1";
const NONCE: usize = 24;
/// zstd level for chunks: fast, and most of the gain.
const ZSTD_LEVEL: i32 = 3;
/// The first line of a fleet key file.
const FLEET_KEY_HEADER: &str = "LIFEBOAT-FLEET-KEY-1";

/// The secret shared by the hosts of one fleet (never stored in plaintext in the repository).
#[derive(Clone)]
pub struct FleetKey {
    chunk: [u8; 32],
    id: [u8; 32],
    refs: [u8; 32],
    host: [u8; 32],
    machine: [u8; 32],
    check: [u8; 32],
    secret: [u8; 32],
}

impl std::fmt::Debug for FleetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FleetKey(..)")
    }
}

impl FleetKey {
    /// A new random fleet secret.
    pub fn generate() -> Self {
        Self::from_secret(rand::random())
    }

    fn from_secret(secret: [u8; 32]) -> Self {
        let d = |ctx: &str| blake3::derive_key(ctx, &secret);
        FleetKey {
            chunk: d("lifeboat repository 1 chunk key"),
            id: d("lifeboat repository 1 chunk id"),
            refs: d("lifeboat repository 1 index refs"),
            host: d("lifeboat repository 1 host id"),
            machine: d("lifeboat repository 1 machine id"),
            check: d("lifeboat repository 1 fleet key check"),
            secret,
        }
    }

    /// The key file's text (`LIFEBOAT-FLEET-KEY-1` then the secret in hex).
    pub fn to_text(&self) -> String {
        format!("{FLEET_KEY_HEADER}\n{}\n", hex::encode(self.secret))
    }

    /// Parses a key file's text.
    pub fn from_text(text: &str) -> Result<Self, RepoError> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let bad = || {
            RepoError::Key(
                "not a Lifeboat fleet key (LIFEBOAT-FLEET-KEY-1 then 64 hex digits)".into(),
            )
        };
        if lines.next() != Some(FLEET_KEY_HEADER) {
            return Err(bad());
        }
        let raw = hex::decode(lines.next().ok_or_else(bad)?).map_err(|_| bad())?;
        let secret: [u8; 32] = raw.try_into().map_err(|_| bad())?;
        Ok(Self::from_secret(secret))
    }

    /// What the repository's config records to recognize this key (reveals nothing of it).
    pub fn check_value(&self) -> String {
        hex::encode(self.check)
    }

    /// The convergent key of a chunk.
    pub fn chunk_key(&self, plaintext: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(&self.chunk, plaintext).as_bytes()
    }

    /// The name of a chunk whose key is `key`.
    pub fn chunk_id(&self, key: &[u8; 32]) -> String {
        hex::encode(blake3::keyed_hash(&self.id, key).as_bytes())
    }

    /// A host's opaque id in the repository, from its age recipient.
    pub fn host_id(&self, recipient: &str) -> String {
        hex::encode(&blake3::keyed_hash(&self.host, recipient.as_bytes()).as_bytes()[..16])
    }

    /// A machine's opaque id in the repository (the name of its restore journal,
    /// [`crate::layout::restore_journal_key`]), from what identifies it
    /// ([`crate::restores::machine_key`]): the object store never sees a serial number.
    pub fn machine_id(&self, machine_key: &str) -> String {
        hex::encode(&blake3::keyed_hash(&self.machine, machine_key.as_bytes()).as_bytes()[..16])
    }

    /// Seals `plain` for every holder of the fleet key, bound to `context` (the object key).
    pub fn seal(&self, plain: &[u8], context: &str) -> Result<Vec<u8>, RepoError> {
        seal(&self.refs, SEALED_MAGIC, plain, context.as_bytes())
    }

    /// Opens what [`Self::seal`] sealed.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, RepoError> {
        open(&self.refs, SEALED_MAGIC, sealed, context.as_bytes()).ok_or_else(|| {
            RepoError::Damaged(format!(
                "{context}: its fleet-sealed part does not decrypt (damaged, or another fleet key)"
            ))
        })
    }

    /// The fleet secret as bytes, to wrap with age for the recovery recipients.
    pub fn secret_bytes(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The fleet key from the bytes [`Self::secret_bytes`] gave.
    pub fn from_bytes(b: &[u8]) -> Result<Self, RepoError> {
        let secret: [u8; 32] = b
            .try_into()
            .map_err(|_| RepoError::Key("the wrapped fleet secret is not 32 bytes".into()))?;
        Ok(Self::from_secret(secret))
    }
}

fn seal(key: &[u8; 32], magic: &[u8; 4], plain: &[u8], aad: &[u8]) -> Result<Vec<u8>, RepoError> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce: [u8; NONCE] = rand::random();
    let ct = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
        .map_err(|_| RepoError::Key("encryption failed".into()))?;
    let mut out = Vec::with_capacity(4 + NONCE + ct.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

fn open(key: &[u8; 32], magic: &[u8; 4], sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < 4 + NONCE || &sealed[..4] != magic {
        return None;
    }
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(
            XNonce::from_slice(&sealed[4..4 + NONCE]),
            Payload {
                msg: &sealed[4 + NONCE..],
                aad,
            },
        )
        .ok()
}

/// Compresses and encrypts one chunk under its key; `id` is bound as associated data.
pub fn encrypt_chunk(key: &[u8; 32], id: &str, plain: &[u8]) -> Result<Vec<u8>, RepoError> {
    let z = zstd::bulk::compress(plain, ZSTD_LEVEL)
        .map_err(|e| RepoError::Key(format!("zstd failed on chunk {id}: {e}")))?;
    seal(key, CHUNK_MAGIC, &z, id.as_bytes())
}

/// Decrypts and decompresses one chunk, checking its AEAD tag, its length (`len`, from the
/// index) and that its plaintext gives back `key` under the fleet key.
pub fn decrypt_chunk(
    fleet: &FleetKey,
    key: &[u8; 32],
    id: &str,
    len: u64,
    object: &[u8],
) -> Result<Vec<u8>, RepoError> {
    let damaged = |what: &str| RepoError::Damaged(format!("chunk {id}: {what}"));
    let z = open(key, CHUNK_MAGIC, object, id.as_bytes()).ok_or_else(|| {
        damaged("does not decrypt with its key (the object is damaged or is not this chunk)")
    })?;
    let cap = usize::try_from(len).map_err(|_| damaged("recorded length too large"))?;
    let plain = zstd::bulk::decompress(&z, cap)
        .map_err(|e| damaged(&format!("does not decompress: {e}")))?;
    if plain.len() as u64 != len {
        return Err(damaged(&format!(
            "holds {} bytes, the index records {len}",
            plain.len()
        )));
    }
    if fleet.chunk_key(&plain) != *key {
        return Err(damaged("its content does not match its key"));
    }
    Ok(plain)
}

/// A host's or the recovery key's age identity.
pub struct Identity(pub age::x25519::Identity);

impl Identity {
    /// A new identity.
    pub fn generate() -> Self {
        Identity(age::x25519::Identity::generate())
    }
    /// Parses `AGE-SECRET-KEY-1...` (comment lines starting with `#` are skipped).
    pub fn from_text(text: &str) -> Result<Self, RepoError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or_else(|| {
                RepoError::Key("no age identity (AGE-SECRET-KEY-1...) in the file".into())
            })?;
        line.parse::<age::x25519::Identity>()
            .map(Identity)
            .map_err(|e| RepoError::Key(format!("not an age X25519 identity: {e}")))
    }
    /// The identity's text, to write into a root-only file or print once.
    pub fn to_text(&self) -> String {
        use age::secrecy::ExposeSecret;
        self.0.to_string().expose_secret().to_string()
    }
    /// The public recipient (`age1...`).
    pub fn recipient(&self) -> String {
        self.0.to_public().to_string()
    }
}

/// The start of every age file (binary form; `-a` armors it, which [`age_file_bytes`] undoes).
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";
const AGE_ARMOR: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";

/// An identity file as it is stored: a plain `AGE-SECRET-KEY-1...` file, or one encrypted with a
/// passphrase (`age -p`, `rage -p`, binary or armored) whose scrypt work factor is `log_n`
/// (N = 2^log_n).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityFile {
    Plain,
    Passphrase { log_n: u8 },
}

impl IdentityFile {
    /// What `data` is: an age file must be a passphrase-encrypted one (an identity encrypted
    /// to recipients cannot be opened by a recovery image that has no other key).
    pub fn classify(data: &[u8]) -> Result<Self, RepoError> {
        if !data.starts_with(AGE_MAGIC) && !data.starts_with(AGE_ARMOR) {
            return Ok(IdentityFile::Plain);
        }
        let bin = age_file_bytes(data)?;
        let mut log_n = None;
        let mut others = Vec::new();
        for line in bin.split(|&b| b == b'\n').skip(1) {
            if line.starts_with(b"---") {
                break;
            }
            let Some(stanza) = line.strip_prefix(b"-> ") else {
                continue;
            };
            let text = String::from_utf8_lossy(stanza);
            let args: Vec<&str> = text.split(' ').collect();
            match args.as_slice() {
                ["scrypt", _salt, n] => {
                    let n: u8 = n
                        .parse()
                        .ok()
                        .filter(|n| (1..64).contains(n))
                        .ok_or_else(|| {
                            RepoError::Key(format!(
                                "the passphrase-protected identity has an invalid scrypt work factor '{n}'"
                            ))
                        })?;
                    log_n = Some(n);
                }
                // age adds random "grease" stanzas that name nothing.
                [tag, ..] if !tag.ends_with("-grease") => others.push(tag.to_string()),
                _ => {}
            }
        }
        match log_n {
            Some(log_n) => Ok(IdentityFile::Passphrase { log_n }),
            None => Err(RepoError::Key(format!(
                "the identity file is an age file encrypted to {} rather than with a passphrase: give the plain identity, or one protected with `age -p`",
                if others.is_empty() {
                    "nothing readable".to_string()
                } else {
                    format!("recipients ({})", others.join(", "))
                }
            ))),
        }
    }
}

/// The memory scrypt needs at work factor 2^log_n with age's r = 8: 128 * r * N bytes
/// (log_n 18: 256 MiB).
pub fn scrypt_memory(log_n: u8) -> u64 {
    1u64.checked_shl(u32::from(log_n) + 10).unwrap_or(u64::MAX)
}

/// The binary form of an age file, armored (`-a`) or not.
fn age_file_bytes(data: &[u8]) -> Result<Vec<u8>, RepoError> {
    let mut out = Vec::new();
    age::armor::ArmoredReader::new(data)
        .read_to_end(&mut out)
        .map_err(|e| RepoError::Key(format!("the identity file is a damaged age file: {e}")))?;
    Ok(out)
}

/// Why a passphrase did not open a passphrase-protected identity.
#[derive(Debug, thiserror::Error)]
pub enum PassphraseError {
    #[error("wrong passphrase")]
    Wrong,
    #[error("{0}")]
    Other(String),
}

impl Identity {
    /// Opens a passphrase-protected identity file (`age -p`): scrypt at the file's work factor
    /// `log_n` (taken from [`IdentityFile::classify`]: its memory was checked by the caller),
    /// then the `AGE-SECRET-KEY-1...` inside.
    pub fn from_passphrase_file(
        data: &[u8],
        passphrase: &str,
        log_n: u8,
    ) -> Result<Self, PassphraseError> {
        let other = |e: &dyn std::fmt::Display| PassphraseError::Other(e.to_string());
        let bin = age_file_bytes(data).map_err(|e| other(&e))?;
        let dec = age::Decryptor::new_buffered(&bin[..])
            .map_err(|e| other(&format!("the identity file is not an age file: {e}")))?;
        let mut id =
            age::scrypt::Identity::new(age::secrecy::SecretString::from(passphrase.to_string()));
        id.set_max_work_factor(log_n);
        let mut r = match dec.decrypt(std::iter::once(&id as &dyn age::Identity)) {
            Ok(r) => r,
            Err(age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys) => {
                return Err(PassphraseError::Wrong)
            }
            Err(e) => return Err(other(&format!("the identity file: {e}"))),
        };
        let mut plain = Vec::new();
        r.read_to_end(&mut plain)
            .map_err(|e| other(&format!("the identity file is damaged: {e}")))?;
        let text = String::from_utf8(plain)
            .map_err(|_| other(&"the passphrase-protected file does not hold an age identity"))?;
        Identity::from_text(&text).map_err(|e| other(&e))
    }
}

/// Encrypts an identity's text with a passphrase at work factor 2^log_n, as `age -p` does
/// (for tests and tools; age and rage choose log_n by timing, 18 on a typical machine).
pub fn protect_identity(text: &str, passphrase: &str, log_n: u8) -> Result<Vec<u8>, RepoError> {
    if !(1..64).contains(&log_n) {
        return Err(RepoError::Key(format!(
            "scrypt work factor {log_n} is not in 1..=63"
        )));
    }
    let mut r =
        age::scrypt::Recipient::new(age::secrecy::SecretString::from(passphrase.to_string()));
    r.set_work_factor(log_n);
    let enc = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient))
        .map_err(|e| RepoError::Key(format!("age: {e}")))?;
    let mut out = Vec::new();
    let io = |e: std::io::Error| RepoError::Key(format!("age: {e}"));
    let mut w = enc.wrap_output(&mut out).map_err(io)?;
    w.write_all(text.as_bytes()).map_err(io)?;
    w.finish().map_err(io)?;
    Ok(out)
}

/// Parses an age X25519 recipient (`age1...`).
pub fn parse_recipient(text: &str) -> Result<age::x25519::Recipient, RepoError> {
    text.trim().parse::<age::x25519::Recipient>().map_err(|e| {
        RepoError::Key(format!(
            "'{}' is not an age X25519 recipient (age1...): {e}",
            text.trim()
        ))
    })
}

/// Encrypts `plain` with age to every recipient given.
pub fn age_encrypt(recipients: &[String], plain: &[u8]) -> Result<Vec<u8>, RepoError> {
    let parsed = recipients
        .iter()
        .map(|r| parse_recipient(r))
        .collect::<Result<Vec<_>, _>>()?;
    let enc = age::Encryptor::with_recipients(parsed.iter().map(|r| r as &dyn age::Recipient))
        .map_err(|e| RepoError::Key(format!("age: {e}")))?;
    let mut out = Vec::new();
    let io = |e: std::io::Error| RepoError::Key(format!("age: {e}"));
    let mut w = enc.wrap_output(&mut out).map_err(io)?;
    w.write_all(plain).map_err(io)?;
    w.finish().map_err(io)?;
    Ok(out)
}

/// Decrypts an age file with `identity`; `None` when it is not encrypted to it.
pub fn age_decrypt(
    identity: &Identity,
    data: &[u8],
    what: &str,
) -> Result<Option<Vec<u8>>, RepoError> {
    let dec = age::Decryptor::new(data)
        .map_err(|e| RepoError::Damaged(format!("{what}: not an age file: {e}")))?;
    match dec.decrypt(std::iter::once(&identity.0 as &dyn age::Identity)) {
        Ok(mut r) => {
            let mut out = Vec::new();
            r.read_to_end(&mut out)
                .map_err(|e| RepoError::Damaged(format!("{what}: {e}")))?;
            Ok(Some(out))
        }
        Err(age::DecryptError::NoMatchingKeys) => Ok(None),
        Err(e) => Err(RepoError::Damaged(format!("{what}: {e}"))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod passphrase_tests {
    use super::*;

    #[test]
    fn a_passphrase_protected_identity_is_recognised_and_opened() {
        let id = Identity::generate();
        let text = format!("# created: test\n{}\n", id.to_text());
        let file = protect_identity(&text, "correct horse", 10).unwrap();
        assert!(file.starts_with(AGE_MAGIC));
        assert_eq!(
            IdentityFile::classify(&file).unwrap(),
            IdentityFile::Passphrase { log_n: 10 }
        );
        assert!(matches!(
            Identity::from_passphrase_file(&file, "wrong", 10),
            Err(PassphraseError::Wrong)
        ));
        let opened = Identity::from_passphrase_file(&file, "correct horse", 10).unwrap();
        assert_eq!(opened.recipient(), id.recipient());
        // A plain key file is one, and an identity encrypted to a recipient is refused.
        assert_eq!(
            IdentityFile::classify(text.as_bytes()).unwrap(),
            IdentityFile::Plain
        );
        let to_key = age_encrypt(&[Identity::generate().recipient()], text.as_bytes()).unwrap();
        let err = IdentityFile::classify(&to_key).unwrap_err().to_string();
        assert!(err.contains("recipients (X25519)"), "{err}");
    }

    #[test]
    fn an_armored_file_is_read_too() {
        let id = Identity::generate();
        let bin = protect_identity(&id.to_text(), "pw", 9).unwrap();
        let mut armored = Vec::new();
        {
            let mut w = age::armor::ArmoredWriter::wrap_output(
                &mut armored,
                age::armor::Format::AsciiArmor,
            )
            .unwrap();
            w.write_all(&bin).unwrap();
            w.finish().unwrap();
        }
        assert!(armored.starts_with(AGE_ARMOR));
        assert_eq!(
            IdentityFile::classify(&armored).unwrap(),
            IdentityFile::Passphrase { log_n: 9 }
        );
        let opened = Identity::from_passphrase_file(&armored, "pw", 9).unwrap();
        assert_eq!(opened.recipient(), id.recipient());
    }

    #[test]
    fn the_work_factor_in_the_header_is_what_decides_the_memory() {
        assert_eq!(scrypt_memory(18), 256 << 20);
        assert_eq!(scrypt_memory(10), 1 << 20);
        // A header naming a work factor out of range is refused before any scrypt.
        let bad = b"age-encryption.org/v1\n-> scrypt c2FsdHNhbHRzYWx0c2FsdA 99\nAAAA\n--- x\n";
        assert!(IdentityFile::classify(bad).is_err());
        let good = b"age-encryption.org/v1\n-> scrypt c2FsdHNhbHRzYWx0c2FsdA 18\nAAAA\n--- x\n";
        assert_eq!(
            IdentityFile::classify(good).unwrap(),
            IdentityFile::Passphrase { log_n: 18 }
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod age_cli_tests {
    use super::*;

    /// Made by Go's `age -p` 1.1.1 (Debian's package) from `age-keygen` output, passphrase
    /// "lifeboat fixture": the format administrators bring, at age's own work factor 2^18.
    const FILE: &[u8] = include_bytes!("testdata/age-p-identity.age");
    const RECIPIENT: &str = "age1cynfkq2w5043qcx2np3783mdz90k03fzl9rstp0ahj27l9gtjcys4ea7rv";

    #[test]
    fn a_file_made_by_age_p_opens() {
        assert_eq!(
            IdentityFile::classify(FILE).unwrap(),
            IdentityFile::Passphrase { log_n: 18 }
        );
        let id = Identity::from_passphrase_file(FILE, "lifeboat fixture", 18).unwrap();
        assert_eq!(id.recipient(), RECIPIENT);
    }
}
