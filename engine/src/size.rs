//! Byte sizes as written in workflow files: `512MiB`, `14GiB`, `1.5GB`.

use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A number of bytes, written in YAML as a number with a unit
/// (`KiB`, `MiB`, `GiB`, `TiB`, `KB`, `MB`, `GB`, `TB`, or `B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

const UNITS: &[(&str, u64)] = &[
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("TB", 1_000_000_000_000),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("KB", 1_000),
    ("B", 1),
];

/// Why a size could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SizeError {
    /// The text has no number in front of the unit.
    #[error("`{0}` is not a size: expected a number followed by a unit, like `512MiB`")]
    NotANumber(String),
    /// The unit is not one flow knows.
    #[error("unknown size unit `{unit}` in `{text}`: use KiB, MiB, GiB, TiB, KB, MB, GB, TB or B")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole value as written.
        text: String,
    },
    /// A plain number was given with no unit.
    #[error("`{0}` has no unit: write it as `{0}MiB`, `{0}GiB` or `{0}B`")]
    MissingUnit(String),
}

impl ByteSize {
    /// `n` gibibytes.
    pub const fn gib(n: u64) -> Self {
        Self(n << 30)
    }

    /// `n` mebibytes.
    pub const fn mib(n: u64) -> Self {
        Self(n << 20)
    }

    /// The number of bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = SizeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(split);
        let unit = unit.trim();
        let value: f64 = number
            .parse()
            .map_err(|_| SizeError::NotANumber(text.to_string()))?;
        if unit.is_empty() {
            return Err(SizeError::MissingUnit(text.to_string()));
        }
        let factor = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, f)| *f)
            .ok_or_else(|| SizeError::UnknownUnit {
                unit: unit.to_string(),
                text: text.to_string(),
            })?;
        Ok(Self((value * factor as f64).round() as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, factor) in &UNITS[..4] {
            if self.0 >= *factor {
                let value = self.0 as f64 / *factor as f64;
                return if value.fract() == 0.0 {
                    write!(f, "{value}{name}")
                } else {
                    write!(f, "{value:.2}{name}")
                };
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = crate::spec::StringOrNumber::deserialize(deserializer)?;
        raw.0.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9]+(\\.[0-9]+)?\\s*(TiB|GiB|MiB|KiB|TB|GB|MB|KB|B)$",
            "description": "A size with a unit: KiB, MiB, GiB, TiB (powers of 1024), KB, MB, GB, TB (powers of 1000) or B. Example: `14GiB`."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_and_decimal_units() {
        assert_eq!("14GiB".parse::<ByteSize>(), Ok(ByteSize::gib(14)));
        assert_eq!("200MiB".parse::<ByteSize>(), Ok(ByteSize::mib(200)));
        assert_eq!("1.5GB".parse::<ByteSize>(), Ok(ByteSize(1_500_000_000)));
        assert_eq!("64 KiB".parse::<ByteSize>(), Ok(ByteSize(65536)));
    }

    #[test]
    fn rejects_bad_units_with_a_reason() {
        let err = "12GiX".parse::<ByteSize>().unwrap_err();
        assert!(err.to_string().contains("unknown size unit `GiX`"));
        assert!(matches!(
            "12".parse::<ByteSize>(),
            Err(SizeError::MissingUnit(_))
        ));
        assert!(matches!(
            "GiB".parse::<ByteSize>(),
            Err(SizeError::NotANumber(_))
        ));
    }

    #[test]
    fn displays_round_trip() {
        for text in ["14GiB", "200MiB", "1.50GiB", "12B"] {
            let size: ByteSize = text.parse().unwrap();
            assert_eq!(size.to_string().parse::<ByteSize>().unwrap(), size);
        }
    }
}
