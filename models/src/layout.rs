//! Recognising how a model's files are laid out, and which file plays
//! which role, so stage kinds can load any of the layouts flow supports:
//!
//! | layout | files |
//! |---|---|
//! | CTranslate2 | `model.bin` + `config.json` (+ `tokenizer.json`, `vocabulary.txt`) |
//! | Hugging Face | `model.safetensors` + `config.json` + `tokenizer.json` |
//! | sentence-transformers | Hugging Face + `1_Pooling/config.json` or `modules.json` |
//! | safetensors | one `.safetensors` file (or a folder holding only one) |
//! | PyTorch | one `.pt`/`.pth`/`.ckpt` checkpoint (or a folder holding only one) |

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The layouts flow recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayoutKind {
    /// A CTranslate2 model folder (`model.bin` + `config.json`).
    CTranslate2,
    /// A Hugging Face folder (`model.safetensors` + `config.json` + `tokenizer.json`).
    HuggingFace,
    /// A sentence-transformers folder: Hugging Face plus a pooling module.
    SentenceTransformers,
    /// A single safetensors file.
    Safetensors,
    /// A single PyTorch checkpoint.
    PyTorch,
    /// None of the above.
    Unknown,
}

impl fmt::Display for LayoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LayoutKind::CTranslate2 => "CTranslate2",
            LayoutKind::HuggingFace => "Hugging Face",
            LayoutKind::SentenceTransformers => "sentence-transformers",
            LayoutKind::Safetensors => "safetensors",
            LayoutKind::PyTorch => "PyTorch checkpoint",
            LayoutKind::Unknown => "unknown layout",
        })
    }
}

/// What a file does for the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The weights.
    Weights,
    /// The model configuration (`config.json`).
    Config,
    /// The tokenizer (`tokenizer.json`).
    Tokenizer,
    /// A vocabulary (`vocabulary.txt`, `vocab.txt`).
    Vocabulary,
    /// The sentence-transformers pooling settings (`1_Pooling/config.json`).
    Pooling,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Weights => "weights",
            Role::Config => "config",
            Role::Tokenizer => "tokenizer",
            Role::Vocabulary => "vocabulary",
            Role::Pooling => "pooling",
        })
    }
}

/// A model's layout and the files that play a role in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelLayout {
    /// Which layout.
    pub kind: LayoutKind,
    /// The files with a role, in role order; other files are left out.
    pub files: Vec<(Role, PathBuf)>,
}

impl ModelLayout {
    /// The first file playing `role`.
    pub fn file(&self, role: Role) -> Option<&Path> {
        self.files
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, p)| p.as_path())
    }
}

impl fmt::Display for ModelLayout {
    /// `CTranslate2: weights model.bin, config config.json, …`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        for (i, (role, path)) in self.files.iter().enumerate() {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            let sep = if i == 0 { ": " } else { ", " };
            let shown = if *role == Role::Pooling {
                format!("1_Pooling/{name}")
            } else {
                name.into_owned()
            };
            write!(f, "{sep}{role} {shown}")?;
        }
        Ok(())
    }
}

/// Recognises the layout of `path`, a model folder or a single file.
pub fn describe(path: &Path) -> ModelLayout {
    if path.is_file() {
        return single_file(path);
    }
    let has = |name: &str| path.join(name).is_file();
    let mut files = Vec::new();
    let mut add = |role: Role, name: &str| {
        if has(name) {
            files.push((role, path.join(name)));
        }
    };
    let kind = if has("model.bin") && has("config.json") {
        add(Role::Weights, "model.bin");
        LayoutKind::CTranslate2
    } else if has("model.safetensors") && has("config.json") && has("tokenizer.json") {
        add(Role::Weights, "model.safetensors");
        if has("1_Pooling/config.json") || has("modules.json") {
            LayoutKind::SentenceTransformers
        } else {
            LayoutKind::HuggingFace
        }
    } else {
        let entries = weight_files(path);
        return match entries.as_slice() {
            [only] => single_file(only),
            _ => ModelLayout {
                kind: LayoutKind::Unknown,
                files: entries.into_iter().map(|p| (Role::Weights, p)).collect(),
            },
        };
    };
    add(Role::Config, "config.json");
    add(Role::Tokenizer, "tokenizer.json");
    add(Role::Vocabulary, "vocabulary.txt");
    add(Role::Vocabulary, "vocabulary.json");
    add(Role::Vocabulary, "vocab.txt");
    add(Role::Pooling, "1_Pooling/config.json");
    files.sort_by_key(|(role, _)| *role);
    ModelLayout { kind, files }
}

fn single_file(path: &Path) -> ModelLayout {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let kind = match ext {
        "safetensors" => LayoutKind::Safetensors,
        "pt" | "pth" | "ckpt" => LayoutKind::PyTorch,
        _ => LayoutKind::Unknown,
    };
    ModelLayout {
        kind,
        files: vec![(Role::Weights, path.to_path_buf())],
    }
}

/// The safetensors and PyTorch files directly in `dir`, sorted.
fn weight_files(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| matches!(e, "safetensors" | "pt" | "pth" | "ckpt"))
        })
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            let path = dir.path().join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
        }
        dir
    }

    #[test]
    fn ctranslate2_folders_are_recognised() {
        let dir = folder(&[
            "model.bin",
            "config.json",
            "tokenizer.json",
            "vocabulary.txt",
        ]);
        let layout = describe(dir.path());
        assert_eq!(layout.kind, LayoutKind::CTranslate2);
        assert_eq!(
            layout.file(Role::Weights),
            Some(dir.path().join("model.bin").as_path())
        );
        assert_eq!(
            layout.to_string(),
            "CTranslate2: weights model.bin, config config.json, tokenizer tokenizer.json, vocabulary vocabulary.txt"
        );
    }

    #[test]
    fn sentence_transformers_and_hugging_face_folders_are_told_apart() {
        let hf = folder(&["model.safetensors", "config.json", "tokenizer.json"]);
        assert_eq!(describe(hf.path()).kind, LayoutKind::HuggingFace);
        let st = folder(&[
            "model.safetensors",
            "config.json",
            "tokenizer.json",
            "vocab.txt",
            "1_Pooling/config.json",
        ]);
        let layout = describe(st.path());
        assert_eq!(layout.kind, LayoutKind::SentenceTransformers);
        assert_eq!(
            layout.file(Role::Pooling),
            Some(st.path().join("1_Pooling/config.json").as_path())
        );
        assert!(layout.file(Role::Vocabulary).is_some());
    }

    #[test]
    fn single_files_and_lone_checkpoints_are_recognised() {
        let dir = folder(&[
            "vad.safetensors",
            "enc/pretrained.pt",
            "enc/notes.txt",
            "x.onnx",
        ]);
        assert_eq!(
            describe(&dir.path().join("vad.safetensors")).kind,
            LayoutKind::Safetensors
        );
        assert_eq!(
            describe(&dir.path().join("enc/pretrained.pt")).kind,
            LayoutKind::PyTorch
        );
        assert_eq!(describe(&dir.path().join("enc")).kind, LayoutKind::PyTorch);
        assert_eq!(
            describe(&dir.path().join("x.onnx")).kind,
            LayoutKind::Unknown
        );
        assert_eq!(
            describe(&dir.path().join("missing")).kind,
            LayoutKind::Unknown
        );
    }
}
