//! The few XML answers S3 gives that `rusty-s3` does not parse (errors, versions, lock and
//! versioning configuration): flat element lookups are all they need.

/// Text of the first `<tag>...</tag>` in `body`, unescaped.
pub fn first(body: &[u8], tag: &str) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&close)? + start;
    Some(unescape(&text[start..end]))
}

/// The inner text of every `<tag>...</tag>` (not unescaped: feed them to [`first`]).
pub fn blocks(body: &[u8], tag: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = &text[..];
    while let Some(s) = rest.find(&open) {
        let after = &rest[s + open.len()..];
        let Some(e) = after.find(&close) else { break };
        out.push(after[..e].to_string());
        rest = &after[e + close.len()..];
    }
    out
}

/// The `<Code>` of an S3 error document, or "" when `body` is not one. Only an XML body (its
/// first non-blank byte is `<`) is looked into: every answer passes here, a GET's body is any
/// bytes (an encrypted chunk), and reading it as text took a third of `restore --repo`'s CPU.
pub fn error_code(body: &[u8]) -> String {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'<')
        || !body.windows(7).any(|w| w == b"<Error>")
    {
        return String::new();
    }
    first(body, "Code").unwrap_or_default()
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#34;", "\"")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_answers() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>a &amp; b</Message></Error>";
        assert_eq!(error_code(body), "NoSuchBucket");
        assert_eq!(first(body, "Message").as_deref(), Some("a & b"));
        assert_eq!(
            error_code(b"<ListBucketResult><Code>x</Code></ListBucketResult>"),
            ""
        );
    }

    #[test]
    fn a_binary_body_is_no_error() {
        // A chunk object whose bytes happen to hold an error's tags: not an answer to retry.
        let mut body = b"LBC1\x00\xff\xfe".to_vec();
        body.extend_from_slice(b"<Error><Code>SlowDown</Code></Error>");
        assert_eq!(error_code(&body), "");
        assert_eq!(
            error_code(b"  \n<Error><Code>SlowDown</Code></Error>"),
            "SlowDown"
        );
        assert_eq!(error_code(b""), "");
    }

    #[test]
    fn version_blocks() {
        let body = b"<R><Version><Key>a</Key><VersionId>1</VersionId></Version><DeleteMarker><Key>a</Key><VersionId>2</VersionId></DeleteMarker><Version><Key>ab</Key><VersionId>3</VersionId></Version></R>";
        let v = blocks(body, "Version");
        assert_eq!(v.len(), 2);
        assert_eq!(first(v[1].as_bytes(), "VersionId").as_deref(), Some("3"));
        assert_eq!(blocks(body, "DeleteMarker").len(), 1);
    }
}
