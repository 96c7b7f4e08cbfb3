//! The S3 backend: any S3-compatible store (Ceph RGW, MinIO, Garage, AWS S3) over HTTP(S).
//!
//! Requests are signed with SigV4 by `rusty-s3` (presigned, query-string authentication, so the
//! payload is not hashed: large parts stream without a second pass) and sent by `ureq` (blocking,
//! rustls on ring, no async runtime): both build into a static musl binary.
//!
//! - Credentials ([`credentials`]): never from the command line.
//! - Transient failures (connection refused or reset, timeouts, DNS, HTTP 5xx, 429, `SlowDown`)
//!   are retried [`ATTEMPTS`] times with exponential backoff from [`FIRST_BACKOFF`]; then
//!   network failures are [`BackendError::Unreachable`], naming the endpoint.
//! - Objects larger than [`PART_SIZE`] are written by a multipart upload; a failed upload is
//!   aborted so no parts linger (and bill) on the server.
//! - Object Lock: a put with [`Retention`] sends the lock headers and the `Content-MD5` S3
//!   requires for them; [`Backend::delete`] in a versioned bucket removes every version, and a
//!   version under retention is [`BackendError::Retained`].

mod credentials;
mod xml;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use md5::{Digest as _, Md5};
use rusty_s3::{Bucket, Credentials, Method, UrlStyle};
use ureq::http::HeaderMap;

use super::{Backend, BackendError, ObjectInfo, Retention, RetentionMode, S3Settings};

pub use credentials::load_credentials;

/// Objects above this size go up as a multipart upload of parts of this size (16 MiB: 625 parts
/// for a 10 GiB object, well under S3's 10,000; each part is retried on its own).
pub const PART_SIZE: usize = 16 << 20;
/// Tries per request, the first included.
pub const ATTEMPTS: u32 = 5;
/// The wait before the second try; it doubles for each further one (0.2 + 0.4 + 0.8 + 1.6 s).
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// How long a TCP connect may take before the try counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the server may take to start answering a request once it is sent.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);
/// Lifetime of each presigned request (signed right before it is sent).
const SIGNATURE_LIFETIME: u64 = 3600;
/// CA bundles tried, in order, when no `ca_file` is set (Debian/Ubuntu/Alpine, then
/// RHEL/CentOS/XenServer, then SUSE).
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
];

/// One repository in one bucket of an S3-compatible store.
pub struct S3Backend {
    agent: ureq::Agent,
    bucket: Bucket,
    credentials: Credentials,
    /// Key prefix of the repository inside the bucket: empty, or ends with `/`.
    prefix: String,
    endpoint: String,
    /// The bucket was seen to exist (a HEAD 404 then means "no such object").
    bucket_seen: AtomicBool,
    /// The answer of [`Backend::supports_retention`], asked once before the first retained put.
    lock_enabled: OnceLock<bool>,
    /// Whether the bucket keeps versions, asked once before the first delete.
    versioning: OnceLock<bool>,
    attempts: u32,
    max_keys: Option<usize>,
}

/// What one try of a request gave: an HTTP answer (any status), or a network failure.
enum Outcome {
    Answer {
        status: u16,
        headers: HeaderMap,
        body: Vec<u8>,
    },
    Network(String),
    /// A failure no retry can mend (an untrusted certificate, a bad URL): reported at once.
    Fatal(String),
}

impl S3Backend {
    /// Opens the repository at `s3://bucket/prefix` (no request is made yet). Credentials are
    /// read now ([`load_credentials`]); the endpoint defaults to AWS for the region.
    pub fn open(url: &str, settings: &S3Settings) -> Result<S3Backend, BackendError> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| BackendError::Other {
                key: url.to_string(),
                detail: "a repository URL starts with s3:// (s3://bucket/prefix)".to_string(),
            })?;
        let (bucket_name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket_name.len() < 3 {
            return Err(BackendError::Other {
                key: url.to_string(),
                detail: "the bucket name must have at least 3 characters (s3://bucket/prefix)"
                    .to_string(),
            });
        }
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        let region = settings
            .region
            .clone()
            .unwrap_or_else(|| "us-east-1".to_string());
        let endpoint = settings
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let parsed: url::Url = endpoint.parse().map_err(|e| BackendError::Other {
            key: endpoint.clone(),
            detail: format!("not a valid endpoint URL ({e}): give https://host[:port]"),
        })?;
        let style = if settings.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(parsed, style, bucket_name.to_string(), region).map_err(|e| {
            BackendError::Other {
                key: url.to_string(),
                detail: format!(
                    "cannot address bucket {bucket_name} at {endpoint} ({e}); an IP address as \
                     endpoint needs path_style = true"
                ),
            }
        })?;
        let credentials = load_credentials(settings)?;
        let agent = make_agent(settings.ca_file.as_deref())?;
        Ok(S3Backend {
            agent,
            bucket,
            credentials,
            prefix,
            endpoint,
            bucket_seen: AtomicBool::new(false),
            lock_enabled: OnceLock::new(),
            versioning: OnceLock::new(),
            attempts: ATTEMPTS,
            max_keys: None,
        })
    }

    /// Asks for at most `n` keys per list page (tests page through small listings with it).
    pub fn with_max_keys(mut self, n: usize) -> Self {
        self.max_keys = Some(n.max(1));
        self
    }

    /// Tries per request (at least 1); [`ATTEMPTS`] by default.
    pub fn with_attempts(mut self, n: u32) -> Self {
        self.attempts = n.max(1);
        self
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    fn sign(
        &self,
        method: Method,
        url: url::Url,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> url::Url {
        let now = jiff::Timestamp::now();
        let mut query = query.to_vec();
        query.sort_unstable();
        let mut headers = headers.to_vec();
        headers.sort_unstable();
        rusty_s3::signing::sign(
            &now,
            method,
            url,
            self.credentials.key(),
            self.credentials.secret(),
            self.credentials.token(),
            self.bucket.region(),
            SIGNATURE_LIFETIME,
            query.iter().copied(),
            headers.iter().copied(),
        )
    }

    /// One try: signs and sends the request, reads the whole answer.
    fn try_once(
        &self,
        method: Method,
        object: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Outcome {
        let base = match object {
            Some(key) => self.bucket.object_url(key),
            None => self.bucket.base_url().clone(),
        };
        let url = self.sign(method, base, query, headers);
        let mut builder = ureq::http::Request::builder()
            .method(method.to_str())
            .uri(url.as_str());
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let sent = match body {
            Some(data) => builder.body(data).map(|r| self.agent.run(r)),
            None => builder.body(()).map(|r| self.agent.run(r)),
        };
        let response = match sent {
            Ok(Ok(r)) => r,
            Ok(Err(
                e @ (ureq::Error::Rustls(_) | ureq::Error::Tls(_) | ureq::Error::BadUri(_)),
            )) => return Outcome::Fatal(describe_ureq(&e)),
            // rustls reports a failed handshake (an untrusted certificate) as InvalidData.
            Ok(Err(ureq::Error::Io(e))) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Outcome::Fatal(e.to_string())
            }
            Ok(Err(e)) => return Outcome::Network(describe_ureq(&e)),
            Err(e) => return Outcome::Network(format!("cannot build the request: {e}")),
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = if method == Method::Head {
            Vec::new()
        } else {
            match response
                .into_body()
                .with_config()
                .limit(u64::MAX)
                .read_to_vec()
            {
                Ok(b) => b,
                Err(e) => {
                    return Outcome::Network(format!("reading the answer: {}", describe_ureq(&e)))
                }
            }
        };
        Outcome::Answer {
            status,
            headers,
            body,
        }
    }

    /// Sends a request, retrying transient failures with exponential backoff. Returns the
    /// first non-transient answer (any status: callers map it), or the error after the last try.
    fn request(
        &self,
        method: Method,
        object: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<(u16, HeaderMap, Vec<u8>), BackendError> {
        let mut wait = FIRST_BACKOFF;
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            if attempt > 1 {
                std::thread::sleep(wait);
                wait = wait.saturating_mul(2);
            }
            match self.try_once(method, object, query, headers, body) {
                Outcome::Answer {
                    status,
                    headers,
                    body,
                } => {
                    let code = xml::error_code(&body);
                    let throttled = status == 429 || status == 503 || code == "SlowDown";
                    // 507 InsufficientStorage is not worth retrying: it is mapped to Full.
                    if (status >= 500 && status != 507 && status != 501) || throttled {
                        last = format!("HTTP {status} {code}");
                        continue;
                    }
                    return Ok((status, headers, body));
                }
                Outcome::Network(detail) => last = detail,
                Outcome::Fatal(detail) => {
                    return Err(BackendError::Unreachable {
                        endpoint: self.endpoint.clone(),
                        detail,
                    })
                }
            }
        }
        let key = object.unwrap_or("").to_string();
        if last.starts_with("HTTP ") {
            Err(BackendError::Other {
                key,
                detail: format!(
                    "{last} after {} tries: the server is overloaded or failing; try again later",
                    self.attempts
                ),
            })
        } else {
            Err(BackendError::Unreachable {
                endpoint: self.endpoint.clone(),
                detail: format!("{last}; {} tries", self.attempts),
            })
        }
    }

    /// Maps a non-success answer to the error it means.
    fn error(&self, key: &str, status: u16, body: &[u8]) -> BackendError {
        let code = xml::error_code(body);
        let message = xml::first(body, "Message").unwrap_or_default();
        let detail = if message.is_empty() {
            format!("HTTP {status} {code}")
        } else {
            format!("HTTP {status} {code}: {message}")
        };
        match code.as_str() {
            "QuotaExceeded" | "InsufficientStorage" | "EntityTooLarge" => {
                return BackendError::Full { detail }
            }
            "NoSuchBucket" => {
                return BackendError::NoBucket {
                    name: self.bucket.name().to_string(),
                }
            }
            "NoSuchKey" => {
                return BackendError::NotFound {
                    key: key.to_string(),
                }
            }
            "SignatureDoesNotMatch"
            | "InvalidAccessKeyId"
            | "AccessDenied"
            | "ExpiredToken"
            | "InvalidToken"
            | "RequestTimeTooSkewed" => return BackendError::Denied { detail },
            "NotImplemented" => {
                return BackendError::Unsupported {
                    what: format!("this request ({detail})"),
                }
            }
            _ => {}
        }
        match status {
            403 | 401 => BackendError::Denied { detail },
            507 => BackendError::Full { detail },
            _ => BackendError::Other {
                key: key.to_string(),
                detail,
            },
        }
    }

    /// Does the bucket exist? Remembered once it does.
    fn check_bucket(&self) -> Result<(), BackendError> {
        if self.bucket_seen.load(Ordering::Relaxed) {
            return Ok(());
        }
        let (status, _, body) = self.request(Method::Head, None, &[], &[], None)?;
        match status {
            200..=299 => {
                self.bucket_seen.store(true, Ordering::Relaxed);
                Ok(())
            }
            404 => Err(BackendError::NoBucket {
                name: self.bucket.name().to_string(),
            }),
            _ => Err(self.error("", status, &body)),
        }
    }

    fn lock_headers(retention: &Retention) -> Result<[(&'static str, String); 2], BackendError> {
        let until =
            jiff::Timestamp::try_from(retention.until).map_err(|e| BackendError::Other {
                key: String::new(),
                detail: format!("retention date out of range: {e}"),
            })?;
        let mode = match retention.mode {
            RetentionMode::Compliance => "COMPLIANCE",
            RetentionMode::Governance => "GOVERNANCE",
        };
        Ok([
            ("x-amz-object-lock-mode", mode.to_string()),
            (
                "x-amz-object-lock-retain-until-date",
                until
                    .round(jiff::Unit::Second)
                    .map_or_else(|_| until.to_string(), |t| t.to_string()),
            ),
        ])
    }

    fn put_single(
        &self,
        full: &str,
        data: &[u8],
        retention: Option<&Retention>,
    ) -> Result<(), BackendError> {
        let mut headers: Vec<(&str, String)> = Vec::new();
        if let Some(r) = retention {
            headers.extend(Self::lock_headers(r)?);
            headers.push(("content-md5", content_md5(data)));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _, body) = self.request(Method::Put, Some(full), &[], &headers, Some(data))?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(self.error(full, status, &body))
        }
    }

    fn put_multipart(
        &self,
        full: &str,
        data: &[u8],
        retention: Option<&Retention>,
    ) -> Result<(), BackendError> {
        let mut headers: Vec<(&str, String)> = Vec::new();
        if let Some(r) = retention {
            headers.extend(Self::lock_headers(r)?);
        }
        let hdrs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _, body) =
            self.request(Method::Post, Some(full), &[("uploads", "")], &hdrs, None)?;
        if !(200..300).contains(&status) {
            return Err(self.error(full, status, &body));
        }
        let upload_id = xml::first(&body, "UploadId").ok_or_else(|| BackendError::Other {
            key: full.to_string(),
            detail: "the answer to CreateMultipartUpload has no UploadId".to_string(),
        })?;
        let mut result = self.upload_parts(full, &upload_id, data, retention.is_some());
        if let (Ok(()), Some(r)) = (&result, retention) {
            // Ceph RGW 16 ignores the lock headers of CreateMultipartUpload: set the retention
            // of the completed object explicitly (harmless where the headers did apply).
            result = self.put_retention(full, r);
        }
        if result.is_err() {
            // Best effort: the error that matters is the upload's own.
            let _ = self.request(
                Method::Delete,
                Some(full),
                &[("uploadId", upload_id.as_str())],
                &[],
                None,
            );
        }
        result
    }

    /// PutObjectRetention on the latest version of `full`.
    fn put_retention(&self, full: &str, retention: &Retention) -> Result<(), BackendError> {
        let [(_, mode), (_, until)] = Self::lock_headers(retention)?;
        let body = format!(
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{mode}</Mode>\
             <RetainUntilDate>{until}</RetainUntilDate></Retention>"
        );
        let md5 = content_md5(body.as_bytes());
        let (status, _, answer) = self.request(
            Method::Put,
            Some(full),
            &[("retention", "")],
            &[("content-md5", md5.as_str())],
            Some(body.as_bytes()),
        )?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(self.error(full, status, &answer))
        }
    }

    fn upload_parts(
        &self,
        full: &str,
        upload_id: &str,
        data: &[u8],
        with_md5: bool,
    ) -> Result<(), BackendError> {
        let mut etags = Vec::new();
        for (index, part) in data.chunks(PART_SIZE).enumerate() {
            let number = (index + 1).to_string();
            let md5 = if with_md5 {
                Some(content_md5(part))
            } else {
                None
            };
            let mut headers = Vec::new();
            if let Some(m) = md5.as_deref() {
                headers.push(("content-md5", m));
            }
            let (status, answer_headers, body) = self.request(
                Method::Put,
                Some(full),
                &[("partNumber", number.as_str()), ("uploadId", upload_id)],
                &headers,
                Some(part),
            )?;
            if !(200..300).contains(&status) {
                return Err(self.error(full, status, &body));
            }
            let etag = answer_headers
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| BackendError::Other {
                    key: full.to_string(),
                    detail: format!("part {number} was stored without an ETag in the answer"),
                })?;
            etags.push(etag.to_string());
        }
        let mut complete = String::from("<CompleteMultipartUpload>");
        for (index, etag) in etags.iter().enumerate() {
            complete.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                index + 1,
                xml::escape(etag)
            ));
        }
        complete.push_str("</CompleteMultipartUpload>");
        let (status, _, body) = self.request(
            Method::Post,
            Some(full),
            &[("uploadId", upload_id)],
            &[],
            Some(complete.as_bytes()),
        )?;
        // CompleteMultipartUpload can fail inside a 200 answer (an <Error> body).
        if !(200..300).contains(&status) || !xml::error_code(&body).is_empty() {
            return Err(self.error(full, status, &body));
        }
        Ok(())
    }

    /// Multipart uploads begun and neither completed nor aborted under `prefix` (relative keys):
    /// parts a killed upload left on the server, which the store keeps (and bills) until
    /// they are aborted. One page (up to 1000): enough to tell whether any linger.
    pub fn incomplete_uploads(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        let full = self.full_key(prefix);
        let (status, _, body) = self.request(
            Method::Get,
            None,
            &[("prefix", full.as_str()), ("uploads", "")],
            &[],
            None,
        )?;
        if !(200..300).contains(&status) {
            return Err(self.error(prefix, status, &body));
        }
        Ok(xml::blocks(&body, "Upload")
            .iter()
            .filter_map(|u| xml::first(u.as_bytes(), "Key"))
            .map(|k| k.strip_prefix(&self.prefix).unwrap_or(&k).to_string())
            .collect())
    }

    /// Version ids (delete markers included) of exactly `full`, in a versioned bucket.
    fn versions(&self, full: &str) -> Result<Vec<String>, BackendError> {
        let mut ids = Vec::new();
        let mut key_marker = String::new();
        let mut version_marker = String::new();
        loop {
            let mut query = vec![("prefix", full), ("versions", "")];
            if !key_marker.is_empty() {
                query.push(("key-marker", key_marker.as_str()));
                query.push(("version-id-marker", version_marker.as_str()));
            }
            let (status, _, body) = self.request(Method::Get, None, &query, &[], None)?;
            if !(200..300).contains(&status) {
                return Err(self.error(full, status, &body));
            }
            for entry in xml::blocks(&body, "Version")
                .into_iter()
                .chain(xml::blocks(&body, "DeleteMarker"))
            {
                if xml::first(entry.as_bytes(), "Key").as_deref() == Some(full) {
                    if let Some(id) = xml::first(entry.as_bytes(), "VersionId") {
                        ids.push(id);
                    }
                }
            }
            if xml::first(&body, "IsTruncated").as_deref() != Some("true") {
                return Ok(ids);
            }
            key_marker = xml::first(&body, "NextKeyMarker").unwrap_or_default();
            version_marker = xml::first(&body, "NextVersionIdMarker").unwrap_or_default();
            if key_marker.is_empty() {
                return Ok(ids);
            }
        }
    }

    /// Whether the bucket keeps versions (Enabled or Suspended): then a plain DELETE only adds a
    /// delete marker and the bytes stay.
    fn versioned(&self) -> Result<bool, BackendError> {
        if let Some(v) = self.versioning.get() {
            return Ok(*v);
        }
        let (status, _, body) =
            self.request(Method::Get, None, &[("versioning", "")], &[], None)?;
        if !(200..300).contains(&status) {
            return Err(self.error("", status, &body));
        }
        let v = xml::first(&body, "Status").is_some();
        Ok(*self.versioning.get_or_init(|| v))
    }
}

impl Backend for S3Backend {
    fn put(
        &self,
        key: &str,
        data: &[u8],
        retention: Option<Retention>,
    ) -> Result<(), BackendError> {
        let full = self.full_key(key);
        if retention.is_some() {
            let enabled = match self.lock_enabled.get() {
                Some(e) => *e,
                None => {
                    let e = self.supports_retention()?;
                    *self.lock_enabled.get_or_init(|| e)
                }
            };
            if !enabled {
                return Err(BackendError::Unsupported {
                    what: format!(
                        "Object Lock retention in bucket {} (create the bucket with Object Lock \
                         enabled, or write without retention)",
                        self.bucket.name()
                    ),
                });
            }
        }
        if data.len() > PART_SIZE {
            self.put_multipart(&full, data, retention.as_ref())
        } else {
            self.put_single(&full, data, retention.as_ref())
        }
        .map_err(|e| relative(e, &self.prefix))
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, BackendError> {
        let full = self.full_key(key);
        let (status, _, body) = self.request(Method::Get, Some(&full), &[], &[], None)?;
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(relative(self.error(&full, status, &body), &self.prefix))
        }
    }

    fn head(&self, key: &str) -> Result<Option<u64>, BackendError> {
        let full = self.full_key(key);
        let (status, headers, body) = self.request(Method::Head, Some(&full), &[], &[], None)?;
        match status {
            200..=299 => {
                self.bucket_seen.store(true, Ordering::Relaxed);
                let size = headers
                    .get("content-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| BackendError::Other {
                        key: key.to_string(),
                        detail: "HEAD answered without a Content-Length".to_string(),
                    })?;
                Ok(Some(size))
            }
            // A HEAD answer has no body to tell a missing key from a missing bucket.
            404 => self.check_bucket().map(|()| None),
            _ => Err(relative(self.error(&full, status, &body), &self.prefix)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BackendError> {
        let full = self.full_key(prefix);
        let max_keys = self.max_keys.map(|n| n.to_string());
        let mut token: Option<String> = None;
        let mut out = Vec::new();
        loop {
            let mut query = vec![("list-type", "2"), ("prefix", full.as_str())];
            if let Some(t) = token.as_deref() {
                query.push(("continuation-token", t));
            }
            if let Some(m) = max_keys.as_deref() {
                query.push(("max-keys", m));
            }
            let (status, _, body) = self.request(Method::Get, None, &query, &[], None)?;
            if !(200..300).contains(&status) {
                return Err(self.error(prefix, status, &body));
            }
            self.bucket_seen.store(true, Ordering::Relaxed);
            for item in xml::blocks(&body, "Contents") {
                let item = item.as_bytes();
                let Some(full_key) = xml::first(item, "Key") else {
                    continue;
                };
                let Some(key) = full_key.strip_prefix(&self.prefix) else {
                    continue;
                };
                out.push(ObjectInfo {
                    key: key.to_string(),
                    size: xml::first(item, "Size")
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0),
                    modified: xml::first(item, "LastModified")
                        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                        .map(SystemTime::from),
                });
            }
            let truncated = xml::first(&body, "IsTruncated").as_deref() == Some("true");
            match xml::first(&body, "NextContinuationToken") {
                Some(t) if truncated && !t.is_empty() => token = Some(t),
                _ if truncated => {
                    return Err(BackendError::Other {
                        key: prefix.to_string(),
                        detail: "a truncated listing without a continuation token".to_string(),
                    })
                }
                _ => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<(), BackendError> {
        let full = self.full_key(key);
        if self.versioned()? {
            for id in self.versions(&full)? {
                let (status, _, body) = self.request(
                    Method::Delete,
                    Some(&full),
                    &[("versionId", id.as_str())],
                    &[],
                    None,
                )?;
                if (200..300).contains(&status) || status == 404 {
                    continue;
                }
                if status == 403 && xml::error_code(&body) == "AccessDenied" {
                    return Err(self.retained(key, &full, &id));
                }
                return Err(relative(self.error(&full, status, &body), &self.prefix));
            }
            return Ok(());
        }
        let (status, _, body) = self.request(Method::Delete, Some(&full), &[], &[], None)?;
        if (200..300).contains(&status) || status == 404 && xml::error_code(&body) == "NoSuchKey" {
            Ok(())
        } else {
            Err(relative(self.error(&full, status, &body), &self.prefix))
        }
    }

    fn extend_retention(&self, key: &str, retention: Retention) -> Result<(), BackendError> {
        let full = self.full_key(key);
        match self.put_retention(&full, &retention) {
            Ok(()) => Ok(()),
            // COMPLIANCE retention cannot be shortened: refused when the object is already
            // retained longer (another host's later push, or clocks apart), which is fine.
            Err(e @ BackendError::Denied { .. }) => {
                let (status, headers, _) =
                    self.request(Method::Head, Some(&full), &[], &[], None)?;
                let current = headers
                    .get("x-amz-object-lock-retain-until-date")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<jiff::Timestamp>().ok())
                    .map(SystemTime::from);
                match current {
                    Some(t) if (200..300).contains(&status) && t >= retention.until => Ok(()),
                    _ => Err(relative(e, &self.prefix)),
                }
            }
            Err(e) => Err(relative(e, &self.prefix)),
        }
    }

    fn supports_retention(&self) -> Result<bool, BackendError> {
        let (status, _, body) =
            self.request(Method::Get, None, &[("object-lock", "")], &[], None)?;
        match status {
            200..=299 => Ok(xml::first(&body, "ObjectLockEnabled").as_deref() == Some("Enabled")),
            // ObjectLockConfigurationNotFoundError, or a store without Object Lock at all.
            404 if xml::error_code(&body) != "NoSuchBucket" => Ok(false),
            501 => Ok(false),
            _ => Err(self.error("", status, &body)),
        }
    }

    fn describe(&self) -> String {
        format!(
            "s3://{}/{} at {}",
            self.bucket.name(),
            self.prefix.trim_end_matches('/'),
            self.endpoint
        )
    }
}

impl S3Backend {
    /// The error for a version the store refused to delete: its retention date when HEAD says.
    fn retained(&self, key: &str, full: &str, version: &str) -> BackendError {
        let until = match self.request(
            Method::Head,
            Some(full),
            &[("versionId", version)],
            &[],
            None,
        ) {
            Ok((_, headers, _)) => headers
                .get("x-amz-object-lock-retain-until-date")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("a date the store did not give")
                .to_string(),
            Err(_) => "a date the store did not give".to_string(),
        };
        BackendError::Retained {
            key: key.to_string(),
            until,
        }
    }
}

/// Keys in errors are relative to the repository, as callers name them.
fn relative(e: BackendError, prefix: &str) -> BackendError {
    match e {
        BackendError::NotFound { key } => BackendError::NotFound {
            key: key.strip_prefix(prefix).unwrap_or(&key).to_string(),
        },
        BackendError::Other { key, detail } => BackendError::Other {
            key: key.strip_prefix(prefix).unwrap_or(&key).to_string(),
            detail,
        },
        other => other,
    }
}

fn content_md5(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(data))
}

fn describe_ureq(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => format!("{io}"),
        ureq::Error::HostNotFound => "host name not found (DNS)".to_string(),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        other => other.to_string(),
    }
}

/// The HTTP client: connect timeout, TLS with the system CA bundle (or `ca_file` added to it).
fn make_agent(ca_file: Option<&std::path::Path>) -> Result<ureq::Agent, BackendError> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let mut pems: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let system = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(SYSTEM_CA_BUNDLES.iter().map(PathBuf::from))
        .find(|p| p.is_file());
    if let Some(path) = system {
        let data = std::fs::read(&path).map_err(|source| BackendError::Io {
            path: path.display().to_string(),
            source,
        })?;
        pems.push((path, data));
    }
    if let Some(path) = ca_file {
        let data = std::fs::read(path).map_err(|source| BackendError::Io {
            path: path.display().to_string(),
            source,
        })?;
        pems.push((path.to_path_buf(), data));
    }
    let roots = if pems.is_empty() {
        // No bundle on this system (a bare recovery image): the Mozilla roots built in.
        RootCerts::WebPki
    } else {
        let mut certs = Vec::new();
        for (path, data) in &pems {
            for item in ureq::tls::parse_pem(data) {
                match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c.to_owned()),
                    Ok(_) => {}
                    Err(e) => {
                        return Err(BackendError::Other {
                            key: path.display().to_string(),
                            detail: format!("not a PEM certificate bundle: {e}"),
                        })
                    }
                }
            }
        }
        let certs: Vec<Certificate<'static>> = certs;
        RootCerts::new_with_certs(&certs)
    };
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_recv_response(Some(RESPONSE_TIMEOUT))
        .max_idle_connections_per_host(16)
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .build();
    Ok(config.into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn settings(dir: &std::path::Path) -> S3Settings {
        let file = dir.join("credentials");
        std::fs::write(
            &file,
            "[default]\naws_access_key_id = K\naws_secret_access_key = S\n",
        )
        .unwrap();
        S3Settings {
            endpoint: Some("http://127.0.0.1:9/".to_string()),
            path_style: true,
            credentials_file: Some(file),
            ..S3Settings::default()
        }
    }

    #[test]
    fn urls() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let b = S3Backend::open("s3://bucket/a/b/", &s).unwrap();
        assert_eq!(b.describe(), "s3://bucket/a/b at http://127.0.0.1:9");
        assert_eq!(b.full_key("x"), "a/b/x");
        let b = S3Backend::open("s3://bucket", &s).unwrap();
        assert_eq!(b.full_key("x"), "x");
        for bad in ["http://bucket/p", "s3://ab/p", "bucket/p"] {
            assert!(S3Backend::open(bad, &s).is_err(), "{bad}");
        }
        // Virtual-hosted style cannot put a bucket in front of an IP address.
        let vhost = S3Settings {
            path_style: false,
            ..s.clone()
        };
        assert!(S3Backend::open("s3://bucket/p", &vhost).is_err());
        // A missing credentials file is named.
        let missing = S3Settings {
            credentials_file: Some(dir.path().join("nope")),
            ..s
        };
        let e = S3Backend::open("s3://bucket/p", &missing).err().unwrap();
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn error_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let b = S3Backend::open("s3://bucket/p/", &settings(dir.path())).unwrap();
        let body = |code: &str| format!("<Error><Code>{code}</Code><Message>m</Message></Error>");
        let map = |status, code: &str| b.error("p/k", status, body(code).as_bytes());
        assert!(matches!(
            map(403, "QuotaExceeded"),
            BackendError::Full { .. }
        ));
        assert!(matches!(
            map(403, "SignatureDoesNotMatch"),
            BackendError::Denied { .. }
        ));
        assert!(matches!(
            map(403, "InvalidAccessKeyId"),
            BackendError::Denied { .. }
        ));
        assert!(
            matches!(map(404, "NoSuchBucket"), BackendError::NoBucket { name } if name == "bucket")
        );
        assert!(matches!(map(507, ""), BackendError::Full { .. }));
        assert!(matches!(
            relative(map(404, "NoSuchKey"), "p/"),
            BackendError::NotFound { key } if key == "k"
        ));
        assert!(matches!(
            map(400, "InvalidRequest"),
            BackendError::Other { .. }
        ));
    }

    #[test]
    fn unreachable_endpoint_is_named_after_bounded_retries() {
        let dir = tempfile::tempdir().unwrap();
        // Port 9 (discard) on loopback: nothing listens there.
        let b = S3Backend::open("s3://bucket/p", &settings(dir.path()))
            .unwrap()
            .with_attempts(2);
        let t = std::time::Instant::now();
        let e = b.get("k").err().unwrap();
        assert!(
            matches!(&e, BackendError::Unreachable { endpoint, .. } if endpoint == "http://127.0.0.1:9"),
            "{e:?}"
        );
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
