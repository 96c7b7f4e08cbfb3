//! modules.alias parsing and modalias matching, used by coldplug in the recovery image.
//!
//! `modules.alias` lines read `alias PATTERN MODULE`; PATTERN is a shell glob (`*`, `?`,
//! `[...]` classes with `!`/`^` negation and ranges) matched against a device's whole modalias
//! string, the way kmod's `fnmatch(pattern, modalias, 0)` does. Written by hand (a few lines)
//! because the glob crates match paths, treating `/` and leading dots specially, which
//! modalias matching must not.

use super::normalize_name;
use std::collections::BTreeSet;

/// One `alias PATTERN MODULE` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub pattern: String,
    /// Module name as written in modules.alias (underscores, no `.ko`).
    pub module: String,
}

/// All aliases of a kernel, in file order.
#[derive(Debug, Clone, Default)]
pub struct AliasTable {
    aliases: Vec<Alias>,
}

impl AliasTable {
    /// Parses the text of a `modules.alias` file; lines that are not `alias P M` are ignored.
    pub fn parse(text: &str) -> Self {
        let aliases = text
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                match (words.next(), words.next(), words.next()) {
                    (Some("alias"), Some(pattern), Some(module)) => Some(Alias {
                        pattern: pattern.to_string(),
                        module: normalize_name(module),
                    }),
                    _ => None,
                }
            })
            .collect();
        Self { aliases }
    }

    /// A table from (pattern, module) pairs, e.g. the aliases of each module's `.modinfo`.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let aliases = pairs
            .into_iter()
            .map(|(pattern, module)| Alias {
                pattern,
                module: normalize_name(&module),
            })
            .collect();
        Self { aliases }
    }

    /// The first alias (in file order) whose pattern matches `text`.
    pub fn first_match(&self, text: &str) -> Option<&Alias> {
        self.aliases
            .iter()
            .find(|a| glob_match(a.pattern.as_bytes(), text.as_bytes()))
    }

    pub fn len(&self) -> usize {
        self.aliases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.aliases.is_empty()
    }

    /// The modules whose alias pattern matches `modalias`, sorted, without duplicates.
    pub fn modules_for(&self, modalias: &str) -> Vec<String> {
        let set: BTreeSet<&str> = self
            .aliases
            .iter()
            .filter(|a| glob_match(a.pattern.as_bytes(), modalias.as_bytes()))
            .map(|a| a.module.as_str())
            .collect();
        set.into_iter().map(str::to_string).collect()
    }
}

/// Shell-glob match of a whole string (fnmatch without flags).
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative matcher with backtracking to the last `*`.
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = match_class(pattern, p, text[t]) {
                        if matched {
                            p = next;
                            t += 1;
                            continue;
                        }
                    } else if text[t] == b'[' {
                        // An unterminated class is a literal '['.
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if pattern[p + 1] == text[t] {
                        p += 2;
                        t += 1;
                        continue;
                    }
                }
                c => {
                    if c == text[t] {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

/// Matches `c` against the class starting at `pattern[start] == b'['`. Returns whether it
/// matched and the index after the closing `]`, or None when the class is not terminated.
fn match_class(pattern: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(pattern.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let cur = *pattern.get(i)?;
        if cur == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if pattern.get(i + 1) == Some(&b'-') && pattern.get(i + 2).is_some_and(|&e| e != b']') {
            let end = *pattern.get(i + 2)?;
            if cur <= c && c <= end {
                matched = true;
            }
            i += 3;
        } else {
            if cur == c {
                matched = true;
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_fnmatch() {
        assert!(glob_match(
            b"pci:v00001AF4d*sv*sd*bc*sc*i*",
            b"pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"
        ));
        assert!(!glob_match(b"pci:v00008086d*", b"pci:v00001AF4d00001001"));
        assert!(glob_match(
            b"virtio:d00000002v*",
            b"virtio:d00000002v00001AF4"
        ));
        assert!(glob_match(b"a?c", b"abc"));
        assert!(!glob_match(b"a?c", b"ac"));
        assert!(glob_match(b"x[0-9]y", b"x5y"));
        assert!(!glob_match(b"x[!0-9]y", b"x5y"));
        assert!(glob_match(b"x[!0-9]y", b"xay"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"a*b*c", b"aXXbYYbZc"));
        assert!(!glob_match(b"a*b*c", b"aXXbYYbZ"));
        assert!(glob_match(b"acpi*:PNP0501:*", b"acpi:PNP0501:"));
    }

    #[test]
    fn table_finds_modules_for_a_modalias() {
        let t = AliasTable::parse(
            "# Aliases extracted from modules themselves.\n\
             alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci\n\
             alias virtio:d00000002v* virtio_blk\n\
             alias fs-ext4 ext4\n\
             alias virtio:d00000002v* virtio-blk\n",
        );
        assert_eq!(t.len(), 4);
        assert_eq!(
            t.modules_for("virtio:d00000002v00001AF4"),
            vec!["virtio_blk".to_string()]
        );
        assert_eq!(
            t.modules_for("pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"),
            vec!["virtio_pci".to_string()]
        );
        assert!(t.modules_for("usb:v1234").is_empty());
    }
}
