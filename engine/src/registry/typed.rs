//! Stage kinds with typed settings: a kind declares its `with:` type once
//! and gets parsing, the JSON Schema, the settings help, every-problem
//! checks and its cache-key parameters from it.
//!
//! ```ignore
//! impl TypedKind for WordCountKind {
//!     type Config = WordCountConfig; // Deserialize + Serialize + JsonSchema + Settings
//!     fn name(&self) -> &'static str { "text.wordcount" }
//!     ...
//! }
//! registry.register(WordCountKind); // a `StageKind` through the blanket impl
//! ```

use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{parse_config, BuildContext, ConfigProblem, Ports, Resources, Stage, StageKind};
use crate::memory::MemoryEstimate;

/// A kind's `with:` settings type.
///
/// Every field is either *semantic* (it can change results, so it is part
/// of the cache key) or *operational* (batching, threads, windows per pass,
/// devices, precision where results are equal): list the operational ones
/// in [`Settings::OPERATIONAL`]. Keys are computed from the settings with
/// their defaults filled in, so `language: en` written out hashes like the
/// omitted default.
pub trait Settings: DeserializeOwned + Serialize + JsonSchema + Send + Sync + 'static {
    /// Top-level fields that never change results; they never enter the
    /// cache key.
    const OPERATIONAL: &'static [&'static str] = &[];

    /// The settings as they enter the cache key: override it to write out
    /// defaults that depend on other fields (`min: None` meaning 1100
    /// characters, say), so the written-out value keys alike.
    fn normalized(self) -> Self {
        self
    }
}

/// A stage kind with typed settings. The engine's [`StageKind`] is derived
/// from it, so it registers as any kind does.
pub trait TypedKind: Send + Sync + 'static {
    /// The `with:` settings.
    type Config: Settings;
    /// The name used in `uses:`.
    fn name(&self) -> &'static str;
    /// One line for `flow stages`.
    fn summary(&self) -> &'static str;
    /// The implementation version, part of every cache key: bump it when
    /// results would change.
    fn version(&self) -> u32;
    /// Problems the types cannot express (ranges, combinations), each at its
    /// path inside `with:`. Called only on settings that parsed.
    fn validate(&self, _config: &Self::Config) -> Vec<ConfigProblem> {
        Vec::new()
    }
    /// The ports of a stage with these settings.
    fn ports(&self, config: &Self::Config) -> Ports;
    /// The ports when `with:` does not parse and `Config` has no defaults
    /// (`flow stages` asks without settings). Default: none.
    fn unconfigured_ports(&self) -> Ports {
        Ports::default()
    }
    /// What the stage needs to run.
    fn resources(&self) -> Resources {
        Resources::default()
    }
    /// The stage's memory on its device, estimated from its settings (see
    /// [`StageKind::memory_estimate`]).
    fn memory_estimate(&self, _config: &Self::Config) -> MemoryEstimate {
        MemoryEstimate::default()
    }
    /// Builds the runnable stage.
    ///
    /// # Errors
    /// A message when the stage cannot be built (a missing model file, say).
    fn build(&self, ctx: &BuildContext<'_>, config: Self::Config)
        -> Result<Arc<dyn Stage>, String>;
}

/// The settings, parsed; on a parse error, the defaults (what `with: {}`
/// means), if the type has them.
fn parsed_or_default<T: Settings>(config: &serde_json::Value) -> Option<T> {
    parse_config(config)
        .ok()
        .or_else(|| parse_config(&serde_json::Value::Null).ok())
}

/// "`kind` takes a, b, c", from the schema's properties.
fn settings_help<T: Settings>(kind: &str) -> String {
    let schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default();
    let names: Vec<&str> = schema
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    if names.is_empty() {
        format!("`{kind}` takes no settings")
    } else {
        format!(
            "`{kind}` takes {} (`flow stages {kind}` describes them)",
            names.join(", "),
        )
    }
}

impl<K: TypedKind> StageKind for K {
    fn name(&self) -> &'static str {
        TypedKind::name(self)
    }

    fn summary(&self) -> &'static str {
        TypedKind::summary(self)
    }

    fn version(&self) -> u32 {
        TypedKind::version(self)
    }

    fn config_schema(&self) -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(K::Config)).unwrap_or_default()
    }

    fn check(&self, config: &serde_json::Value) -> Vec<ConfigProblem> {
        match parse_config::<K::Config>(config) {
            Ok(parsed) => TypedKind::validate(self, &parsed),
            Err(first) => {
                let help = settings_help::<K::Config>(TypedKind::name(self));
                every_problem::<K::Config>(config, first)
                    .into_iter()
                    .map(|p| p.help(help.clone()))
                    .collect()
            }
        }
    }

    fn ports(&self, config: &serde_json::Value) -> Ports {
        parsed_or_default::<K::Config>(config)
            .map_or_else(|| self.unconfigured_ports(), |c| TypedKind::ports(self, &c))
    }

    fn resources(&self) -> Resources {
        TypedKind::resources(self)
    }

    fn memory_estimate(&self, config: &serde_json::Value) -> MemoryEstimate {
        parsed_or_default::<K::Config>(config)
            .map(|c| TypedKind::memory_estimate(self, &c))
            .unwrap_or_default()
    }

    fn semantic_params(&self, config: &serde_json::Value) -> serde_json::Value {
        semantic::<K::Config>(config)
    }

    fn build(
        &self,
        ctx: &BuildContext<'_>,
        config: &serde_json::Value,
    ) -> Result<Arc<dyn Stage>, String> {
        let config = parse_config::<K::Config>(config).map_err(|p| p.message)?;
        TypedKind::build(self, ctx, config)
    }
}

/// The cache-key parameters of `config`: parsed with defaults filled in,
/// operational fields removed. Settings that do not parse (a run never gets
/// that far) key as written.
pub fn semantic<T: Settings>(config: &serde_json::Value) -> serde_json::Value {
    let Ok(parsed) = parse_config::<T>(config) else {
        return config.clone();
    };
    let mut value = serde_json::to_value(parsed.normalized()).unwrap_or_else(|_| config.clone());
    if let Some(map) = value.as_object_mut() {
        for key in T::OPERATIONAL {
            map.remove(*key);
        }
    }
    value
}

/// Every problem in `config`, not only the first serde meets: each
/// top-level key is parsed on its own (so a wrong type in one key does not
/// hide another's), then the keys without problems together, for what no
/// single key shows (a missing required field). `first` is the
/// whole-mapping error, kept when nothing more precise is found.
fn every_problem<T: DeserializeOwned>(
    config: &serde_json::Value,
    first: ConfigProblem,
) -> Vec<ConfigProblem> {
    let Some(map) = config.as_object() else {
        return vec![first];
    };
    let mut problems = Vec::new();
    let mut rest = map.clone();
    for (key, value) in map {
        let alone = serde_json::Value::Object([(key.clone(), value.clone())].into_iter().collect());
        if let Err(problem) = parse_config::<T>(&alone) {
            // Alone, a valid key can still fail on another, required one.
            let named = format!("`{key}`");
            if problem.path.first() == Some(key) || problem.message.contains(&named) {
                problems.push(problem);
                rest.remove(key);
            }
        }
    }
    if let Err(problem) = parse_config::<T>(&serde_json::Value::Object(rest)) {
        if !problems.contains(&problem) {
            problems.push(problem);
        }
    }
    if problems.is_empty() {
        problems.push(first);
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Demo {
        #[serde(default = "en")]
        language: String,
        #[serde(default)]
        threshold: f64,
        #[serde(default = "eight")]
        max_batch: usize,
    }
    fn en() -> String {
        "en".into()
    }
    fn eight() -> usize {
        8
    }
    impl Settings for Demo {
        const OPERATIONAL: &'static [&'static str] = &["max_batch"];
    }

    #[derive(Debug, Serialize, Deserialize, JsonSchema)]
    struct Needs {
        model: String,
        #[serde(default)]
        top: usize,
    }

    #[test]
    fn defaults_written_out_and_operational_fields_key_alike() {
        let omitted = semantic::<Demo>(&serde_json::Value::Null);
        assert_eq!(omitted, semantic::<Demo>(&json!({"language": "en"})));
        assert_eq!(omitted, semantic::<Demo>(&json!({"max_batch": 64})));
        assert_ne!(omitted, semantic::<Demo>(&json!({"language": "de"})));
        assert_ne!(omitted, semantic::<Demo>(&json!({"threshold": 0.5})));
    }

    #[test]
    fn every_wrong_key_is_reported_at_its_path() {
        let config = json!({"language": 3, "threshold": "high", "colour": "red"});
        let first = parse_config::<Demo>(&config).unwrap_err();
        let problems = every_problem::<Demo>(&config, first);
        let paths: Vec<String> = problems.iter().map(|p| p.path.join(".")).collect();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(paths.contains(&"language".to_string()), "{paths:?}");
        assert!(paths.contains(&"threshold".to_string()), "{paths:?}");
        assert!(
            problems.iter().any(|p| p.message.contains("colour")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_missing_required_field_is_reported_with_the_other_problems() {
        let config = json!({"top": "many"});
        let first = parse_config::<Needs>(&config).unwrap_err();
        let problems = every_problem::<Needs>(&config, first);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].path, vec!["top".to_string()]);
        assert!(problems[1].message.contains("missing field `model`"));
    }
}
