//! Where the S3 access key and secret come from. Never the command line (`ps` shows it).
//!
//! In order: the file named by `credentials_file` in the configuration (explicit beats ambient);
//! `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`); the AWS shared
//! credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`). The profile is
//! `profile` from the configuration, else `AWS_PROFILE`, else `default`.

use std::path::{Path, PathBuf};

use rusty_s3::Credentials;

use crate::backend::{BackendError, S3Settings};

/// The credentials for `settings`, from the first place that has them.
pub fn load_credentials(settings: &S3Settings) -> Result<Credentials, BackendError> {
    let profile = settings
        .profile
        .clone()
        .or_else(|| std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty()))
        .unwrap_or_else(|| "default".to_string());
    if let Some(file) = &settings.credentials_file {
        return from_file(file, &profile)?.ok_or_else(|| missing(file, &profile));
    }
    if let (Ok(key), Ok(secret)) = (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
    ) {
        if !key.is_empty() && !secret.is_empty() {
            return Ok(match std::env::var("AWS_SESSION_TOKEN") {
                Ok(token) if !token.is_empty() => Credentials::new_with_token(key, secret, token),
                _ => Credentials::new(key, secret),
            });
        }
    }
    let shared = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".aws/credentials")));
    if let Some(file) = shared {
        if file.exists() || std::env::var_os("AWS_SHARED_CREDENTIALS_FILE").is_some() {
            if let Some(c) = from_file(&file, &profile)? {
                return Ok(c);
            }
        }
    }
    Err(BackendError::Denied {
        detail: format!(
            "no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, write \
             profile [{profile}] to ~/.aws/credentials (or AWS_SHARED_CREDENTIALS_FILE), or name \
             a file with credentials_file in [repository] of /etc/lifeboat/lifeboat.toml"
        ),
    })
}

fn missing(file: &Path, profile: &str) -> BackendError {
    BackendError::Denied {
        detail: format!(
            "{} has no profile [{profile}] with aws_access_key_id and aws_secret_access_key",
            file.display()
        ),
    }
}

/// Reads profile `profile` of an AWS INI credentials file; `None` when the profile or one of
/// its two keys is missing.
fn from_file(file: &Path, profile: &str) -> Result<Option<Credentials>, BackendError> {
    let text = std::fs::read_to_string(file).map_err(|source| BackendError::Io {
        path: file.display().to_string(),
        source,
    })?;
    Ok(parse(&text, profile))
}

fn parse(text: &str, profile: &str) -> Option<Credentials> {
    let mut current = String::new();
    let (mut key, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let section = section.trim();
            current = section
                .strip_prefix("profile ")
                .unwrap_or(section)
                .trim()
                .to_string();
            continue;
        }
        if current != profile {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().to_string();
        match name.trim() {
            "aws_access_key_id" => key = Some(value),
            "aws_secret_access_key" => secret = Some(value),
            "aws_session_token" => token = Some(value),
            _ => {}
        }
    }
    match (key, secret, token) {
        (Some(k), Some(s), Some(t)) if !t.is_empty() => Some(Credentials::new_with_token(k, s, t)),
        (Some(k), Some(s), _) => Some(Credentials::new(k, s)),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn profiles() {
        let text = "# c\n[default]\naws_access_key_id = A\naws_secret_access_key=B\n\n[profile other]\naws_access_key_id = C\naws_secret_access_key = D\naws_session_token = T\n";
        let d = parse(text, "default").unwrap();
        assert_eq!((d.key(), d.secret(), d.token()), ("A", "B", None));
        let o = parse(text, "other").unwrap();
        assert_eq!((o.key(), o.secret(), o.token()), ("C", "D", Some("T")));
        assert!(parse(text, "none").is_none());
        assert!(parse("[x]\naws_access_key_id = A\n", "x").is_none());
    }
}
