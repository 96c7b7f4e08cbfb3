//! The S3 backend against a real server: radosgw on a one-node Ceph cluster started by
//! tests/root/51-s3-backend.sh (scripts/s3-server.sh), which exports:
//!   LIFEBOAT_TEST_S3_ENDPOINT        http://127.0.0.1:PORT
//!   AWS_SHARED_CREDENTIALS_FILE      the S3 user's key and secret
//!   LIFEBOAT_TEST_S3_BUCKET          a plain bucket
//!   LIFEBOAT_TEST_S3_LOCK_BUCKET     a bucket created with Object Lock
//! The tests are #[ignore]d for a plain `cargo test` (no server there); the script runs them with
//! `--ignored`. Without the endpoint they fail under CI=true and say so elsewhere.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant, SystemTime};

use lifeboat_repo::backend::s3::{S3Backend, FIRST_BACKOFF, PART_SIZE};
use lifeboat_repo::backend::{Backend, BackendError, Retention, RetentionMode, S3Settings};

struct Server {
    endpoint: String,
    bucket: String,
    lock_bucket: String,
    small_bucket: String,
}

fn server() -> Option<Server> {
    match std::env::var("LIFEBOAT_TEST_S3_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => Some(Server {
            endpoint,
            bucket: std::env::var("LIFEBOAT_TEST_S3_BUCKET")
                .unwrap_or_else(|_| "lifeboat-test".into()),
            lock_bucket: std::env::var("LIFEBOAT_TEST_S3_LOCK_BUCKET")
                .unwrap_or_else(|_| "lifeboat-lock".into()),
            small_bucket: std::env::var("LIFEBOAT_TEST_S3_SMALL_BUCKET")
                .unwrap_or_else(|_| "lifeboat-small".into()),
        }),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("LIFEBOAT_TEST_S3_ENDPOINT is not set: run tests/root/51-s3-backend.sh")
        }
        _ => {
            eprintln!("SKIPPED: no S3 server (run tests/root/51-s3-backend.sh)");
            None
        }
    }
}

fn settings(s: &Server) -> S3Settings {
    S3Settings {
        endpoint: Some(s.endpoint.clone()),
        path_style: true,
        ..S3Settings::default()
    }
}

/// A prefix of this test run and test, so runs and tests never see each other's keys.
fn open(s: &Server, bucket: &str, test: &str) -> S3Backend {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let url = format!("s3://{bucket}/t{}-{nanos}/{test}", std::process::id());
    S3Backend::open(&url, &settings(s)).unwrap()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    let mut x = u32::from(seed) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
#[ignore = "needs a real S3 server: tests/root/51-s3-backend.sh"]
fn put_get_head_list_delete() {
    let Some(s) = server() else { return };
    let b = open(&s, &s.bucket, "basic");
    assert!(b.describe().contains("s3://"), "{}", b.describe());
    assert_eq!(b.head("a/one").unwrap(), None);
    assert!(matches!(b.get("a/one"), Err(BackendError::NotFound { key }) if key == "a/one"));
    b.put("a/one", b"first", None).unwrap();
    b.put("a/two", b"", None).unwrap();
    b.put("b/three", &pattern(1000, 3), None).unwrap();
    // A repeated put of the same bytes is harmless.
    b.put("a/one", b"first", None).unwrap();
    assert_eq!(b.get("a/one").unwrap(), b"first");
    assert_eq!(b.get("a/two").unwrap(), b"");
    assert_eq!(b.head("b/three").unwrap(), Some(1000));
    let listed = b.list("a/").unwrap();
    let keys: Vec<_> = listed.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["a/one", "a/two"]);
    assert_eq!(listed[0].size, 5);
    assert!(listed[0].modified.is_some());
    assert_eq!(b.list("").unwrap().len(), 3);
    b.delete("a/one").unwrap();
    b.delete("a/one").unwrap(); // a missing object is not an error
    assert_eq!(b.head("a/one").unwrap(), None);
    for k in ["a/two", "b/three"] {
        b.delete(k).unwrap();
    }
    assert!(b.list("").unwrap().is_empty());
}

#[test]
#[ignore = "needs a real S3 server: tests/root/51-s3-backend.sh"]
fn list_pages_with_continuation_tokens() {
    let Some(s) = server() else { return };
    let b = open(&s, &s.bucket, "paging").with_max_keys(7);
    let mut want: Vec<String> = (0..53).map(|i| format!("chunks/{i:04x}")).collect();
    for k in &want {
        b.put(k, k.as_bytes(), None).unwrap();
    }
    b.put("other/x", b"x", None).unwrap();
    want.sort();
    let got: Vec<String> = b
        .list("chunks/")
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        got, want,
        "8 pages of at most 7 keys, in key order, nothing twice"
    );
    assert_eq!(b.list("").unwrap().len(), 54);
    for k in want.iter().chain([&"other/x".to_string()]) {
        b.delete(k).unwrap();
    }
}

#[test]
#[ignore = "needs a real S3 server: tests/root/51-s3-backend.sh"]
fn multipart_upload_of_a_large_object() {
    let Some(s) = server() else { return };
    let b = open(&s, &s.bucket, "multipart");
    // Three parts, the last one short.
    let data = pattern(2 * PART_SIZE + 12345, 7);
    b.put("big", &data, None).unwrap();
    assert!(b.incomplete_uploads("").unwrap().is_empty());
    assert_eq!(b.head("big").unwrap(), Some(data.len() as u64));
    assert!(
        b.get("big").unwrap() == data,
        "the object read back differs"
    );
    b.delete("big").unwrap();
}

#[test]
#[ignore = "needs a real S3 server: tests/root/51-s3-backend.sh"]
fn loopback_put_throughput() {
    let Some(s) = server() else { return };
    let b = open(&s, &s.bucket, "throughput");
    let size = 4 * PART_SIZE; // 64 MiB: multipart, as a push's large objects are
    let data = pattern(size, 9);
    let n = 4;
    let t = Instant::now();
    for i in 0..n {
        b.put(&format!("o{i}"), &data, None).unwrap();
    }
    let one = (n * size) as f64 / t.elapsed().as_secs_f64() / 1048576.0;
    let t = Instant::now();
    std::thread::scope(|sc| {
        for i in 0..n {
            let (b, data) = (&b, &data);
            sc.spawn(move || b.put(&format!("p{i}"), data, None).unwrap());
        }
    });
    let four = (n * size) as f64 / t.elapsed().as_secs_f64() / 1048576.0;
    println!(
        "S3 loopback PUT throughput ({n} x {} MiB objects): {one:.0} MiB/s on 1 thread, {four:.0} MiB/s on {n}",
        size >> 20
    );
    for i in 0..n {
        b.delete(&format!("o{i}")).unwrap();
        b.delete(&format!("p{i}")).unwrap();
    }
}

#[test]
#[ignore = "needs a real S3 server: tests/root/51-s3-backend.sh"]
fn wrong_secret_is_denied() {
    let Some(s) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    let real =
        std::fs::read_to_string(std::env::var("AWS_SHARED_CREDENTIALS_FILE").unwrap()).unwrap();
    let key = real
        .lines()
        .find_map(|l| l.strip_prefix("aws_access_key_id = "))
        .unwrap();
    std::fs::write(
        &file,
        format!("[default]\naws_access_key_id = {key}\naws_secret_access_key = wrong\n"),
    )
    .unwrap();
    let settings = S3Settings {
        credentials_file: Some(file.clone()),
        ..settings(&s)
    };
    let b = S3Backend::open(&format!("s3://{}/denied", s.bucket), &settings).unwrap();
    for r in [
        b.put("x", b"x", None).map(|_| ()),
        b.get("x").map(|_| ()),
        b.list("").map(|_| ()),
    ] {
        assert!(matches!(r, Err(BackendError::Denied { .. })), "{r:?}");
    }
    // An unknown access key too.
    std::fs::write(
        &file,
        "[default]\naws_access_key_id = NOSUCHKEY\naws_secret_access_key = x\n",
    )
    .unwrap();
    let b = S3Backend::open(&format!("s3://{}/denied", s.bucket), &settings).unwrap();
    let r = b.get("x");
    assert!(matches!(r, Err(BackendError::Denied { .. })), "{r:?}");
    let message = r.unwrap_err().to_string();
    assert!(message.contains("check the access key"), "{message}");
}

#[test]
#[ignore = "needs a real S3 server: tests/root/51-s3-backend.sh"]
fn missing_bucket() {
    let Some(s) = server() else { return };
    let b = S3Backend::open("s3://no-such-bucket-here/p", &settings(&s)).unwrap();
    for r in [
        b.put("x", b"x", None).map(|_| ()),
        b.get("x").map(|_| ()),
        b.head("x").map(|_| ()),
        b.list("").map(|_| ()),
    ] {
        assert!(
            matches!(&r, Err(BackendError::NoBucket { name }) if name == "no-such-bucket-here"),
            "{r:?}"
        );
    }
}

/// Run by the script after it stopped the server: the old endpoint refuses connections.
#[test]
#[ignore = "run by tests/root/51-s3-backend.sh after it stops the server"]
fn stopped_server_is_unreachable() {
    let Some(s) = server() else { return };
    let b = open(&s, &s.bucket, "stopped");
    let t = Instant::now();
    let r = b.put("x", b"x", None);
    let took = t.elapsed();
    match r {
        Err(BackendError::Unreachable { endpoint, detail }) => {
            assert_eq!(endpoint, s.endpoint);
            println!("unreachable after {took:?}: {detail}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(
        took < Duration::from_secs(10),
        "bounded retries took {took:?}"
    );
    let r = b.list("");
    assert!(matches!(r, Err(BackendError::Unreachable { .. })), "{r:?}");
}

#[test]
#[ignore = "needs a real S3 server: tests/root/51-s3-backend.sh"]
fn object_lock_retention() {
    let Some(s) = server() else { return };
    let plain = open(&s, &s.bucket, "nolock");
    assert!(!plain.supports_retention().unwrap());
    let retention = Retention {
        until: SystemTime::now() + Duration::from_secs(3600),
        mode: RetentionMode::Compliance,
    };
    let r = plain.put("x", b"x", Some(retention));
    assert!(matches!(r, Err(BackendError::Unsupported { .. })), "{r:?}");

    let b = open(&s, &s.lock_bucket, "lock");
    assert!(b.supports_retention().unwrap());
    b.put("index/1", b"generation one", Some(retention))
        .unwrap();
    let big = pattern(PART_SIZE + 1000, 5);
    b.put("index/big", &big, Some(retention)).unwrap();
    for key in ["index/1", "index/big"] {
        let r = b.delete(key);
        assert!(
            matches!(&r, Err(BackendError::Retained { key: k, .. }) if k == key),
            "{r:?}"
        );
    }
    assert_eq!(b.get("index/1").unwrap(), b"generation one");
    assert!(b.get("index/big").unwrap() == big);
    // Without retention, delete in the versioned bucket removes every version.
    b.put("free", b"v1", None).unwrap();
    b.put("free", b"v2", None).unwrap();
    b.delete("free").unwrap();
    assert_eq!(b.head("free").unwrap(), None);
    let keys: Vec<String> = b.list("").unwrap().into_iter().map(|o| o.key).collect();
    assert_eq!(keys, ["index/1", "index/big"]);
}

#[test]
#[ignore = "needs a real S3 server: tests/root/51-s3-backend.sh"]
fn full_store_and_no_lingering_parts() {
    let Some(s) = server() else { return };
    // lifeboat-small has a bucket quota of 1 MiB.
    let b = open(&s, &s.small_bucket, "full");
    b.put("small", b"fits", None).unwrap();
    let r = b.put("single", &pattern(2 << 20, 1), None);
    assert!(matches!(r, Err(BackendError::Full { .. })), "{r:?}");
    // A multipart upload refused at its first part is aborted: no parts stay behind.
    let r = b.put("multi", &pattern(PART_SIZE + 1, 2), None);
    assert!(matches!(r, Err(BackendError::Full { .. })), "{r:?}");
    assert_eq!(b.incomplete_uploads("").unwrap(), Vec::<String>::new());
    assert_eq!(b.head("multi").unwrap(), None);
    assert_eq!(b.get("small").unwrap(), b"fits");
    b.delete("small").unwrap();
}

#[test]
#[ignore = "needs a real S3 server: tests/root/51-s3-backend.sh"]
fn https_with_an_extra_ca_file() {
    let Some(s) = server() else { return };
    let endpoint = std::env::var("LIFEBOAT_TEST_S3_HTTPS_ENDPOINT").unwrap();
    let ca = std::env::var("LIFEBOAT_TEST_S3_CA_FILE").unwrap();
    let url = format!("s3://{}/tls-{}", s.bucket, std::process::id());
    let with_ca = S3Settings {
        endpoint: Some(endpoint.clone()),
        ca_file: Some(ca.into()),
        ..settings(&s)
    };
    let b = S3Backend::open(&url, &with_ca).unwrap();
    b.put("over-tls", b"secret bytes", None).unwrap();
    assert_eq!(b.get("over-tls").unwrap(), b"secret bytes");
    b.delete("over-tls").unwrap();
    // Without the CA the server's certificate is not trusted: refused, and the endpoint named.
    let without = S3Settings {
        endpoint: Some(endpoint.clone()),
        ..settings(&s)
    };
    let b = S3Backend::open(&url, &without).unwrap();
    let t = Instant::now();
    match b.get("over-tls") {
        Err(BackendError::Unreachable {
            endpoint: e,
            detail,
        }) => {
            println!("untrusted certificate: {detail}");
            assert!(
                t.elapsed() < FIRST_BACKOFF,
                "a certificate error is not retried"
            );
            assert_eq!(e, endpoint);
            assert!(
                detail.contains("certificate") || detail.contains("Unknown"),
                "{detail}"
            );
        }
        other => panic!("expected an untrusted certificate, got {other:?}"),
    }
}
