//! Fault injection: `FLOW_FAULTS=oom:STAGE@N` makes the N-th batch attempt
//! of STAGE on a device fail with an out-of-memory error, so the recovery
//! ladder can be exercised without a GPU (and by users, to see what their
//! workflow does). Several faults are separated by commas; `@N-M` covers
//! attempts N to M, `@*` every attempt. Attempts count retries too.

/// The attempts a fault covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempts {
    Range(u64, u64),
    Every,
}

/// Parsed `FLOW_FAULTS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    oom: Vec<(String, Attempts)>,
}

impl Faults {
    /// Reads `FLOW_FAULTS` (nothing when unset).
    ///
    /// # Errors
    /// A message naming the entry that cannot be read.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("FLOW_FAULTS") {
            Ok(text) => Self::parse(&text),
            Err(_) => Ok(Self::default()),
        }
    }

    /// Parses `oom:STAGE@N[,oom:STAGE@N-M][,oom:STAGE@*]`.
    ///
    /// # Errors
    /// A message naming the entry that cannot be read.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut oom = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || {
                format!("FLOW_FAULTS: cannot read `{entry}`: write `oom:STAGE@N`, `oom:STAGE@N-M` or `oom:STAGE@*`")
            };
            let rest = entry.strip_prefix("oom:").ok_or_else(bad)?;
            let (stage, at) = rest.rsplit_once('@').ok_or_else(bad)?;
            let attempts = if at == "*" {
                Attempts::Every
            } else if let Some((a, b)) = at.split_once('-') {
                let a = a.parse().map_err(|_| bad())?;
                let b = b.parse().map_err(|_| bad())?;
                Attempts::Range(a, b)
            } else {
                let n = at.parse().map_err(|_| bad())?;
                Attempts::Range(n, n)
            };
            if stage.is_empty() {
                return Err(bad());
            }
            oom.push((stage.to_string(), attempts));
        }
        Ok(Self { oom })
    }

    /// Whether attempt `n` (1-based) of `stage` must fail with an OOM.
    pub fn oom(&self, stage: &str, n: u64) -> bool {
        self.oom.iter().any(|(s, a)| {
            s == stage
                && match *a {
                    Attempts::Every => true,
                    Attempts::Range(lo, hi) => (lo..=hi).contains(&n),
                }
        })
    }

    /// The stage ids named.
    pub fn stages(&self) -> impl Iterator<Item = &str> {
        self.oom.iter().map(|(s, _)| s.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let f = Faults::parse("oom:asr@3, oom:embed@2-4,oom:diar@*").unwrap();
        assert!(f.oom("asr", 3) && !f.oom("asr", 4));
        assert!(f.oom("embed", 2) && f.oom("embed", 4) && !f.oom("embed", 5));
        assert!(f.oom("diar", 1) && f.oom("diar", 99));
        assert!(!f.oom("other", 3));
        assert!(Faults::parse("oops").is_err());
        assert!(Faults::parse("oom:asr@x").is_err());
        assert_eq!(Faults::parse("").unwrap(), Faults::default());
    }
}
