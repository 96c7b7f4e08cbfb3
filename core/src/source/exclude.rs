//! Exclude patterns: shell-style globs (`*`, `?`) matched against the path relative to the
//! root, as raw bytes.
//!
//! Rules (chosen to read like `xe host-backup`'s tar excludes):
//! - a pattern containing `/` is matched against the whole relative path (`tmp/*` matches
//!   `tmp/x` and `tmp/.x` but not `tmp` itself, so the directory is kept and emptied);
//! - a pattern without `/` is matched against the last component only (`*.pyc` anywhere);
//! - `*` matches any run of bytes, including `/` and leading dots; `?` matches one byte;
//! - a leading `/` or `./` is ignored; everything below an excluded directory is excluded too
//!   (the walker does not descend into it).
//!
//! Written by hand because the glob crates match `str`/`Path` with filesystem semantics and
//! our names are arbitrary bytes; the matcher is twenty lines.

/// One compiled exclude pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    glob: Vec<u8>,
    basename_only: bool,
}

impl Pattern {
    pub fn new(text: &str) -> Self {
        let mut glob = text.as_bytes();
        while let Some(rest) = glob.strip_prefix(b"/").or_else(|| glob.strip_prefix(b"./")) {
            glob = rest;
        }
        let glob = glob.to_vec();
        let basename_only = !glob.contains(&b'/');
        Self {
            text: text.to_string(),
            glob,
            basename_only,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `rel` (relative path, no leading `/`) is excluded by this pattern.
    pub fn matches(&self, rel: &[u8]) -> bool {
        if self.basename_only {
            let base = match rel.iter().rposition(|&b| b == b'/') {
                Some(i) => &rel[i + 1..],
                None => rel,
            };
            glob_match(&self.glob, base)
        } else {
            glob_match(&self.glob, rel)
        }
    }
}

/// A set of patterns.
#[derive(Debug, Clone, Default)]
pub struct Excludes {
    patterns: Vec<Pattern>,
}

impl Excludes {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Self {
        Self {
            patterns: patterns.iter().map(|p| Pattern::new(p.as_ref())).collect(),
        }
    }

    pub fn is_excluded(&self, rel: &[u8]) -> bool {
        self.patterns.iter().any(|p| p.matches(rel))
    }

    /// Whether the contents of directory `rel` are excluded as a whole (e.g. `tmp` under
    /// `tmp/*`): used to stay quiet about mount points whose contents we would drop anyway.
    pub fn contents_excluded(&self, rel: &[u8]) -> bool {
        let mut probe = rel.to_vec();
        probe.extend_from_slice(b"/\x01lifeboat-probe");
        self.is_excluded(&probe)
    }
}

/// Iterative glob matcher with single-star backtracking (linear in practice, no recursion).
fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p] == s[i]) {
            p += 1;
            i += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some((p, i));
            p += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::default_excludes;

    fn defaults() -> Excludes {
        Excludes::new(&default_excludes())
    }

    #[test]
    fn tmp_contents_go_but_tmp_stays() {
        let e = defaults();
        assert!(!e.is_excluded(b"tmp"));
        assert!(e.is_excluded(b"tmp/x"));
        assert!(e.is_excluded(b"tmp/.X11-unix"));
        assert!(!e.is_excluded(b"var/tmp"));
        assert!(!e.is_excluded(b"tmpfoo"));
    }

    #[test]
    fn xe_host_backup_defaults() {
        let e = defaults();
        assert!(e.is_excluded(b"var/crash/2024-01-01"));
        assert!(!e.is_excluded(b"var/crash"));
        assert!(e.is_excluded(b"var/log/audit"));
        assert!(e.is_excluded(b"var/log/audit.log.1"));
        assert!(!e.is_excluded(b"var/log/messages"));
        assert!(e.is_excluded(b"var/xsconfig/foo"));
        assert!(e.is_excluded(b"var/xapi/0b0e8e34-3f2d-4d7c-9c61-1f1f0d7c0a11"));
        assert!(!e.is_excluded(b"var/xapi/state.db"));
        assert!(!e.is_excluded(b"var/xapi"));
        for d in ["proc", "sys", "dev", "run"] {
            assert!(!e.is_excluded(d.as_bytes()));
            assert!(e.is_excluded(format!("{d}/x").as_bytes()));
            assert!(e.contents_excluded(d.as_bytes()));
        }
        assert!(!e.contents_excluded(b"var/log"));
        assert!(!e.contents_excluded(b"boot/efi"));
    }

    #[test]
    fn user_patterns() {
        let e = Excludes::new(&["*.pyc", "/opt/cache/*", "home/?ob"]);
        assert!(e.is_excluded(b"usr/lib/python3/x.pyc"));
        assert!(e.is_excluded(b"a.pyc"));
        assert!(!e.is_excluded(b"usr/lib/x.py"));
        assert!(e.is_excluded(b"opt/cache/a/b"));
        assert!(!e.is_excluded(b"opt/cache"));
        assert!(e.is_excluded(b"home/bob"));
        assert!(!e.is_excluded(b"home/bobby"));
        // Non-UTF-8 names match byte for byte.
        let e = Excludes::new(&["data/*"]);
        assert!(e.is_excluded(b"data/\xff\xfe"));
    }

    #[test]
    fn glob_edge_cases() {
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"a*b*c", b"axxbyyc"));
        assert!(!glob_match(b"a*b*c", b"axxbyy"));
        assert!(glob_match(b"**", b"abc"));
        assert!(!glob_match(b"?", b""));
        assert!(glob_match(b"a?c", b"abc"));
    }
}
