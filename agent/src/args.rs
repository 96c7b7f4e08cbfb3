//! xe-style arguments: `file-name=F` is accepted as well as `--file-name F`.

use std::ffi::OsString;

/// Rewrites `key=value` words (a lower-case key of letters, digits and dashes, not starting
/// with `-`) into `--key=value`, so that clap sees one syntax. Everything after `--` is left
/// alone.
pub fn normalize(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut passthrough = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || passthrough {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            passthrough = true;
            out.push(arg);
            continue;
        }
        match arg.to_str() {
            Some(s) if is_xe_pair(s) => out.push(OsString::from(format!("--{s}"))),
            _ => out.push(arg),
        }
    }
    out
}

fn is_xe_pair(s: &str) -> bool {
    let Some((key, _)) = s.split_once('=') else {
        return false;
    };
    !key.is_empty()
        && key.as_bytes()[0].is_ascii_lowercase()
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(v: &[&str]) -> Vec<String> {
        normalize(v.iter().map(OsString::from))
            .into_iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn xe_pairs_become_long_options() {
        assert_eq!(
            norm(&[
                "lifeboat",
                "host-backup",
                "file-name=/tmp/x.xbk",
                "--compress",
                "gzip"
            ]),
            [
                "lifeboat",
                "host-backup",
                "--file-name=/tmp/x.xbk",
                "--compress",
                "gzip"
            ]
        );
    }

    #[test]
    fn values_and_paths_are_left_alone() {
        assert_eq!(
            norm(&["lifeboat", "restore", "latest", "/a=b", "--", "x=y"]),
            ["lifeboat", "restore", "latest", "/a=b", "--", "x=y"]
        );
    }
}
