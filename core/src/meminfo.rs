//! What `/proc/meminfo` says: one parser for every place that sizes its work by memory (xz's
//! encoder, the recovery image's scrypt check).

/// The field `name` (`MemTotal`, `MemAvailable`, ...) of the text of `/proc/meminfo`, in bytes.
pub fn field(meminfo: &str, name: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(':')?;
        let mut w = rest.split_whitespace();
        let n: u64 = w.next()?.parse().ok()?;
        match w.next() {
            Some("kB") | None => n.checked_mul(1024),
            _ => None,
        }
    })
}

/// The field `name` of this machine's `/proc/meminfo`, in bytes (None when it cannot be read).
pub fn read(name: &str) -> Option<u64> {
    field(&std::fs::read_to_string("/proc/meminfo").ok()?, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_in_bytes_and_a_prefix_is_not_a_field() {
        let m = "MemTotal:         503000 kB\nMemFree:  300000 kB\nMemAvailable:     400000 kB\n";
        assert_eq!(field(m, "MemTotal"), Some(503_000 * 1024));
        assert_eq!(field(m, "MemAvailable"), Some(400_000 * 1024));
        assert_eq!(field(m, "Mem"), None);
        assert_eq!(field("MemTotal: 1 MB\n", "MemTotal"), None);
        assert_eq!(field("", "MemTotal"), None);
    }
}
