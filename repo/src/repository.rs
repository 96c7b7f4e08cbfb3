//! A repository opened with its keys: the config read, the fleet key checked against it.

use crate::backend::{Backend, BackendError};
use crate::chunking::ChunkerParams;
use crate::crypto::{self, FleetKey, Identity};
use crate::layout::{self, Refs, RepoConfig, Secret};
use crate::RepoError;

/// Who is reading or writing: the fleet key and an age identity (a host's own, or the
/// recovery key).
pub struct Keys {
    pub fleet: FleetKey,
    pub identity: Identity,
}

impl Keys {
    /// This identity's opaque host id in the repository.
    pub fn host_id(&self) -> String {
        self.fleet.host_id(&self.identity.recipient())
    }
}

/// An open repository.
pub struct Repository {
    pub backend: std::sync::Arc<dyn Backend>,
    pub config: RepoConfig,
}

/// What `init` made.
pub struct Initialized {
    pub repo: Repository,
    pub fleet: FleetKey,
    /// The recovery identity when init made one (print it once, then forget it).
    pub new_recovery: Option<Identity>,
}

impl Repository {
    /// Writes a new repository's config and wrapped fleet key. Refuses a location that
    /// already holds a config.
    pub fn init(
        backend: Box<dyn Backend>,
        chunker: ChunkerParams,
        recovery_recipients: Vec<String>,
        fleet: Option<FleetKey>,
        grace_seconds: u64,
        object_lock_days: Option<u32>,
    ) -> Result<Initialized, RepoError> {
        chunker.check()?;
        if let Some(days) = object_lock_days {
            if days == 0 {
                return Err(RepoError::Format(
                    "--object-lock-days must be at least 1".to_string(),
                ));
            }
            if !backend.supports_retention()? {
                return Err(RepoError::Format(format!(
                    "{} has no S3 Object Lock, so generations cannot be retained for {days} days: \
                     create a bucket with Object Lock enabled (`aws s3api create-bucket \
                     --object-lock-enabled-for-bucket`) or leave out --object-lock-days",
                    backend.describe()
                )));
            }
        }
        if backend.head(layout::CONFIG)?.is_some() {
            return Err(RepoError::Format(format!(
                "{} already holds a repository (its config exists)",
                backend.describe()
            )));
        }
        let (recipients, new_recovery) = if recovery_recipients.is_empty() {
            let id = Identity::generate();
            (vec![id.recipient()], Some(id))
        } else {
            for r in &recovery_recipients {
                crypto::parse_recipient(r)?;
            }
            (recovery_recipients, None)
        };
        let fleet = fleet.unwrap_or_else(FleetKey::generate);
        let config = RepoConfig {
            format: layout::FORMAT,
            chunker,
            fleet_key_check: fleet.check_value(),
            recovery_recipients: recipients.clone(),
            grace_seconds,
            object_lock_days,
        };
        let wrapped = crypto::age_encrypt(&recipients, fleet.secret_bytes())?;
        backend.put(layout::FLEET_KEY, &wrapped, None)?;
        let json =
            serde_json::to_vec_pretty(&config).map_err(|e| RepoError::Format(e.to_string()))?;
        // The config last: a repository exists when its config does.
        backend.put(layout::CONFIG, &json, None)?;
        Ok(Initialized {
            repo: Repository {
                backend: backend.into(),
                config,
            },
            fleet,
            new_recovery,
        })
    }

    /// Opens a repository: reads and checks its config.
    pub fn open(backend: Box<dyn Backend>) -> Result<Self, RepoError> {
        let raw = match backend.get(layout::CONFIG) {
            Ok(r) => r,
            Err(BackendError::NotFound { .. }) => {
                return Err(RepoError::Format(format!(
                "{} holds no Lifeboat repository (no config): create one with `lifeboat repo init`",
                backend.describe()
            )))
            }
            Err(e) => return Err(e.into()),
        };
        let config: RepoConfig = serde_json::from_slice(&raw).map_err(|e| {
            RepoError::Damaged(format!("{}: config is not valid: {e}", backend.describe()))
        })?;
        if config.format != layout::FORMAT {
            return Err(RepoError::Format(format!(
                "{}: repository format {} (this lifeboat reads format {})",
                backend.describe(),
                config.format,
                layout::FORMAT
            )));
        }
        config.chunker.check()?;
        Ok(Repository {
            backend: backend.into(),
            config,
        })
    }

    /// Checks that `fleet` is this repository's fleet key.
    pub fn check_fleet(&self, fleet: &FleetKey) -> Result<(), RepoError> {
        if fleet.check_value() != self.config.fleet_key_check {
            return Err(RepoError::Key(format!(
                "the fleet key is not the one of the repository at {}: give the fleet key file its `repo init` wrote",
                self.backend.describe()
            )));
        }
        Ok(())
    }

    /// The fleet key unwrapped with a recovery identity.
    pub fn fleet_from_recovery(&self, recovery: &Identity) -> Result<FleetKey, RepoError> {
        let wrapped = self.backend.get(layout::FLEET_KEY)?;
        let raw = crypto::age_decrypt(recovery, &wrapped, layout::FLEET_KEY)?.ok_or_else(|| {
            RepoError::Key(format!(
                "{} is not encrypted to this identity: it is not a recovery key of this repository",
                layout::FLEET_KEY
            ))
        })?;
        let fleet = FleetKey::from_bytes(&raw)?;
        self.check_fleet(&fleet)?;
        Ok(fleet)
    }

    /// The fleet key a host or a recovery image works with: the file `fleet_key_file` when it
    /// exists, else the repository's copy unwrapped with `identity` (a recovery key); checked
    /// against this repository either way.
    pub fn load_fleet(
        &self,
        fleet_key_file: &std::path::Path,
        identity: &Identity,
    ) -> Result<FleetKey, RepoError> {
        let fleet = match std::fs::read_to_string(fleet_key_file) {
            Ok(t) => FleetKey::from_text(&t).map_err(|e| {
                RepoError::Key(format!("the fleet key file {}: {e}", fleet_key_file.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.fleet_from_recovery(identity).map_err(|e| {
                    RepoError::Key(format!(
                        "no fleet key file {}, and the identity given is not a recovery key of {}: {e}",
                        fleet_key_file.display(),
                        self.backend.describe()
                    ))
                })?
            }
            Err(e) => {
                return Err(RepoError::Key(format!(
                    "cannot read the fleet key file {}: {e}",
                    fleet_key_file.display()
                )))
            }
        };
        self.check_fleet(&fleet).map_err(|e| {
            RepoError::Key(format!(
                "the fleet key file {}: {e}",
                fleet_key_file.display()
            ))
        })?;
        Ok(fleet)
    }

    /// Every generation in the repository: (host id, generation id, index size), by key.
    pub fn indexes(&self) -> Result<Vec<(String, String, u64)>, RepoError> {
        Ok(self
            .backend
            .list(layout::HOSTS)?
            .into_iter()
            .filter_map(|o| {
                layout::parse_index_key(&o.key).map(|(h, g)| (h.to_string(), g.to_string(), o.size))
            })
            .collect())
    }

    /// Reads the refs part of an index (any holder of the fleet key can).
    /// The pool database dump of a generation whose meta (from its index) records one,
    /// decrypted and checked against the record (size, BLAKE3); None when it has none.
    pub fn read_pool_database(
        &self,
        keys: &Keys,
        host_id: &str,
        gen: &str,
        meta: &lifeboat_core::store::GenerationMeta,
    ) -> Result<Option<Vec<u8>>, RepoError> {
        let Some(rec) = &meta.pool_database else {
            return Ok(None);
        };
        let key = layout::pool_database_key(host_id, gen);
        let sealed = match self.backend.get(&key) {
            Ok(d) => d,
            Err(BackendError::NotFound { .. }) => {
                return Err(RepoError::Damaged(format!(
                    "{key}: missing, but the index of generation {gen} records a pool database"
                )))
            }
            Err(e) => return Err(e.into()),
        };
        let data = crypto::age_decrypt(&keys.identity, &sealed, &key)?.ok_or_else(|| {
            RepoError::Key(format!(
                "{key} is not encrypted to this identity: give this host's key or the recovery key"
            ))
        })?;
        if let Some(why) = rec.mismatch(&data) {
            return Err(RepoError::Damaged(format!("{key}: {why}")));
        }
        Ok(Some(data))
    }

    /// Records a host's last verification ([`layout::status_key`]).
    pub fn write_status(
        &self,
        fleet: &FleetKey,
        host_id: &str,
        status: &layout::VerifyStatus,
    ) -> Result<(), RepoError> {
        let key = layout::status_key(host_id);
        let sealed = fleet.seal(&layout::pack(status)?, &key)?;
        self.backend.put(&key, &sealed, None)?;
        Ok(())
    }

    /// A host's last verification, if one was recorded.
    pub fn read_status(
        &self,
        fleet: &FleetKey,
        host_id: &str,
    ) -> Result<Option<layout::VerifyStatus>, RepoError> {
        let key = layout::status_key(host_id);
        match self.backend.get(&key) {
            Ok(d) => Ok(Some(layout::unpack(&fleet.open(&d, &key)?, &key)?)),
            Err(BackendError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub fn read_refs(&self, fleet: &FleetKey, host_id: &str, gen: &str) -> Result<Refs, RepoError> {
        let key = layout::index_key(host_id, gen);
        let data = self.backend.get(&key)?;
        let (refs, _) = layout::decode_index(&key, &data)?;
        let refs: Refs = layout::unpack(&fleet.open(refs, &key)?, &key)?;
        if refs.generation != gen {
            return Err(RepoError::Damaged(format!(
                "{key}: holds generation {}",
                refs.generation
            )));
        }
        Ok(refs)
    }

    /// Reads a whole index: `None` when its secret part is not encrypted to `keys.identity`.
    pub fn read_index(
        &self,
        keys: &Keys,
        host_id: &str,
        gen: &str,
    ) -> Result<Option<Index>, RepoError> {
        let key = layout::index_key(host_id, gen);
        let data = self.backend.get(&key)?;
        let (refs_part, secret_part) = layout::decode_index(&key, &data)?;
        let refs: Refs = layout::unpack(&keys.fleet.open(refs_part, &key)?, &key)?;
        let Some(secret) = crypto::age_decrypt(&keys.identity, secret_part, &key)? else {
            return Ok(None);
        };
        let secret: Secret = layout::unpack(&secret, &key)?;
        if refs.generation != gen
            || secret.generation != gen
            || refs.ids.len() != secret.chunks.len()
        {
            return Err(RepoError::Damaged(format!("{key}: its two parts disagree")));
        }
        let mut chunks = Vec::with_capacity(refs.ids.len());
        let mut total = 0u64;
        for (id, c) in refs.ids.iter().zip(&secret.chunks) {
            let k: [u8; 32] = hex::decode(&c.key)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| {
                    RepoError::Damaged(format!("{key}: a chunk key is not 32 bytes of hex"))
                })?;
            if keys.fleet.chunk_id(&k) != *id {
                return Err(RepoError::Damaged(format!(
                    "{key}: chunk {id} does not match its key"
                )));
            }
            total += c.len;
            chunks.push(ChunkRef {
                id: id.clone(),
                key: k,
                len: c.len,
            });
        }
        if total != refs.stream_len {
            return Err(RepoError::Damaged(format!(
                "{key}: chunk lengths do not add up to the stream"
            )));
        }
        Ok(Some(Index {
            host_id: host_id.to_string(),
            refs,
            secret,
            chunks,
        }))
    }
}

/// One chunk of a generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRef {
    pub id: String,
    pub key: [u8; 32],
    pub len: u64,
}

/// A generation's whole index.
#[derive(Debug, Clone)]
pub struct Index {
    pub host_id: String,
    pub refs: Refs,
    pub secret: Secret,
    pub chunks: Vec<ChunkRef>,
}
