//! Validated identifiers for stages and models.

use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize};

/// A stage id or model name: a letter or `_`, then letters, digits, `_` or `-`
/// (at most 64 characters). Dots are reserved: `--set stages.ID.KEY=...` and
/// `{input.ID}` use them as separators.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Ident(String);

/// Why an identifier was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a valid id: start with a letter or `_`, then use letters, digits, `_` or `-` (at most 64 characters)")]
pub struct IdentError(pub String);

impl Ident {
    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Ident {
    type Err = IdentError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut chars = text.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if first_ok && rest_ok && text.len() <= 64 {
            Ok(Self(text.to_string()))
        } else {
            Err(IdentError(text.to_string()))
        }
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Ident {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Ident {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Ident {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Ident {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Ident".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[A-Za-z_][A-Za-z0-9_-]{0,63}$",
            "description": "An id: a letter or `_`, then letters, digits, `_` or `-`."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_usual_ids_and_rejects_dots() {
        assert!("asr".parse::<Ident>().is_ok());
        assert!("speaker_embed-2".parse::<Ident>().is_ok());
        assert!("stage.one".parse::<Ident>().is_err());
        assert!("1st".parse::<Ident>().is_err());
        assert!("".parse::<Ident>().is_err());
    }
}
