//! `sink.files`: each item's results as a JSON file under a folder.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use flow_engine::registry::{
    BuildContext, Ports, Resources, Settings, Stage, StageError, StageInput, StageOutput, TypedKind,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings of a `sink.files` stage.
///
/// ```yaml
/// with: { dir: out, copy_files: true }
/// ```
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilesSinkConfig {
    /// The folder to write to, relative to the workflow file. Each item gets
    /// `DIR/ITEM_ID.json`.
    pub dir: PathBuf,
    /// Also copy the upstream files to `DIR/ITEM_ID/STAGE/` (default false).
    #[serde(default)]
    pub copy_files: bool,
}

/// The `sink.files` stage kind.
pub struct FilesSinkKind;

impl Settings for FilesSinkConfig {}

impl TypedKind for FilesSinkKind {
    type Config = FilesSinkConfig;

    fn name(&self) -> &'static str {
        "sink.files"
    }

    fn summary(&self) -> &'static str {
        "Write each item's upstream results as JSON (and optionally their files) under a folder"
    }

    fn version(&self) -> u32 {
        1
    }

    fn ports(&self, _config: &FilesSinkConfig) -> Ports {
        Ports::default()
    }

    fn resources(&self) -> Resources {
        Resources {
            always_run: true,
            ..Resources::default()
        }
    }

    fn build(
        &self,
        ctx: &BuildContext<'_>,
        config: FilesSinkConfig,
    ) -> Result<Arc<dyn Stage>, String> {
        Ok(Arc::new(FilesSink {
            dir: ctx.workflow_dir.join(&config.dir),
            copy_files: config.copy_files,
        }))
    }
}

struct FilesSink {
    dir: PathBuf,
    copy_files: bool,
}

impl Stage for FilesSink {
    fn run(&self, input: &StageInput) -> Result<StageOutput, StageError> {
        let io = |what: &str, path: &Path, e: std::io::Error| {
            StageError::failed(format!("cannot {what} `{}`: {e}", path.display()))
        };
        let relative = safe_relative(&input.item.id);
        let json_path = self.dir.join(format!("{}.json", relative.display()));
        let parent = json_path.parent().unwrap_or(&self.dir).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(|e| io("create", &parent, e))?;
        let mut results = serde_json::Map::new();
        for upstream in &input.upstream {
            let mut outputs = upstream.outputs.clone();
            if self.copy_files {
                let target = self.dir.join(&relative).join(&upstream.stage);
                std::fs::create_dir_all(&target).map_err(|e| io("create", &target, e))?;
                for output in &mut outputs {
                    for file in &mut output.files {
                        let name = file.file_name().map(PathBuf::from).unwrap_or_default();
                        let copy = target.join(name);
                        std::fs::copy(&*file, &copy).map_err(|e| io("copy", file, e))?;
                        *file = copy;
                    }
                }
            }
            results.insert(
                upstream.stage.clone(),
                serde_json::to_value(outputs).unwrap_or_default(),
            );
        }
        let document = serde_json::json!({
            "item": input.item.id,
            "source": input.item.source,
            "results": results,
        });
        let text = serde_json::to_string_pretty(&document).unwrap_or_default();
        let temp = json_path.with_extension("json.partial");
        std::fs::write(&temp, text).map_err(|e| io("write", &temp, e))?;
        std::fs::rename(&temp, &json_path).map_err(|e| io("write", &json_path, e))?;
        Ok(StageOutput::default())
    }
}

/// An item id as a relative path that stays inside a sink's folder:
/// characters other than letters, digits and `._-/` become `_`, and `..`
/// or root components are dropped. Shared by every sink that writes a file
/// per item.
pub fn safe_relative(id: &str) -> PathBuf {
    let cleaned: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-/".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    Path::new(&cleaned)
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_ids_stay_inside_the_folder() {
        assert_eq!(safe_relative("media/a.wav"), PathBuf::from("media/a.wav"));
        assert_eq!(
            safe_relative("../../etc/passwd"),
            PathBuf::from("etc/passwd")
        );
        assert_eq!(
            safe_relative("https://x.org/a b.mp3"),
            PathBuf::from("https_/x.org/a_b.mp3")
        );
    }
}
