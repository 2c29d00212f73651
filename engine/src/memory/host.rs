//! Host memory: total and available RAM, and this process's resident size.

/// Host RAM as the kernel reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct HostMemory {
    /// Installed RAM, bytes.
    pub total: u64,
    /// RAM available to new work (`MemAvailable`), bytes.
    pub available: u64,
}

/// Reads `/proc/meminfo`; zeros where it is missing (not Linux).
pub fn host_memory() -> HostMemory {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    HostMemory {
        total: meminfo_field(&text, "MemTotal:"),
        available: meminfo_field(&text, "MemAvailable:"),
    }
}

/// This process's resident set size in bytes (0 where unknown).
pub fn rss() -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    meminfo_field(&text, "VmRSS:")
}

/// A `Name:   1234 kB` line's value in bytes.
fn meminfo_field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kib_fields() {
        let text = "MemTotal:       24576000 kB\nMemAvailable:   1000 kB\n";
        assert_eq!(meminfo_field(text, "MemTotal:"), 24_576_000 * 1024);
        assert_eq!(meminfo_field(text, "MemAvailable:"), 1_024_000);
        assert_eq!(meminfo_field(text, "Nope:"), 0);
    }

    #[test]
    fn this_machine_has_memory() {
        let host = host_memory();
        assert!(host.total > 0 && host.available <= host.total);
        assert!(rss() > 0);
    }
}
