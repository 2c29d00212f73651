//! Decoding with symphonia, packet by packet, into a [`Pipeline`].

use std::fs::File;
use std::io::ErrorKind;
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CodecParameters, DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;
use symphonia::core::units::TimeBase;

use super::artifact::ArtifactWriter;
use super::resample::Pipeline;
use super::sniff::{self, Container};

/// What a finished decode found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decoded {
    /// Container and codec, such as `ogg/vorbis` or `flac`.
    pub source_format: String,
    /// The source's sample rate in Hz, when known.
    pub source_sample_rate: Option<u32>,
    /// The source's channel count, when known.
    pub source_channels: Option<u32>,
    /// Samples written at the target rate.
    pub samples: u64,
}

/// Why a decode did not finish.
#[derive(Debug)]
pub(crate) enum Failure {
    /// symphonia cannot read this container or codec: try `ffmpeg`.
    Unsupported(String),
    /// The file is damaged or unreadable: the reason, for the user.
    Failed(String),
}

/// Decodes `path` (recognised as `container`) to mono at `rate` Hz into
/// `writer`.
pub(crate) fn decode(
    path: &Path,
    container: Container,
    rate: u32,
    writer: ArtifactWriter,
) -> Result<Decoded, Failure> {
    let name = path.display();
    let file =
        File::open(path).map_err(|e| Failure::Failed(format!("cannot read `{name}`: {e}")))?;
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let options = FormatOptions {
        enable_gapless: true,
        ..Default::default()
    };
    let probed = symphonia::default::get_probe()
        .format(&hint, stream, &options, &MetadataOptions::default())
        .map_err(|e| match e {
            Error::Unsupported(_) => {
                Failure::Unsupported(format!("symphonia has no reader for {}", container.label()))
            }
            other => Failure::Failed(format!(
                "damaged {} file `{name}`: cannot read its header ({other})",
                container.label()
            )),
        })?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| Failure::Failed(format!("`{name}` has no audio track")))?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    let codec = symphonia::default::get_codecs()
        .get_codec(params.codec)
        .map_or("unknown", |d| d.short_name);
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|e| match e {
            Error::Unsupported(_) => Failure::Unsupported(format!(
                "symphonia cannot decode {codec} audio in {}",
                container.label()
            )),
            other => Failure::Failed(format!("cannot decode `{name}`: {other}")),
        })?;
    let source_format = if codec == container.short() {
        codec.to_string()
    } else {
        format!("{}/{codec}", container.short())
    };
    let mut state = State::new(&params, rate, writer, container)?;
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            Err(Error::IoError(e)) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(state.failure(e, &name.to_string())),
        };
        if packet.track_id() != track_id {
            continue;
        }
        state.check_gap(packet.ts(), packet.dur(), params.time_base)?;
        match decoder.decode(&packet) {
            Ok(buffer) => {
                let spec = *buffer.spec();
                let frames = buffer.frames();
                if frames == 0 {
                    continue;
                }
                let samples = state.samples(buffer.capacity(), spec);
                samples.copy_interleaved_ref(buffer);
                state.push(spec.rate, spec.channels.count())?;
            }
            Err(Error::IoError(e)) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(state.failure(e, &name.to_string())),
        }
    }
    if container == Container::Ogg && !sniff::ogg_ends_cleanly(path).unwrap_or(true) {
        return Err(Failure::Failed(format!(
            "truncated Ogg stream after {} (the file ends without its end-of-stream page)",
            state.at()
        )));
    }
    state.finish(&params, source_format)
}

/// The decode in progress: buffers, the pipeline (made at the first
/// decoded packet when the header has no sample rate), and counters.
struct State {
    container: Container,
    rate: u32,
    writer: Option<ArtifactWriter>,
    pipeline: Option<Pipeline>,
    source_rate: Option<u32>,
    channels: Option<u32>,
    buffer: Option<SampleBuffer<f32>>,
    mono: Vec<f32>,
    /// Source frames decoded so far.
    frames: u64,
    /// Where the next packet should start, in the track's time base.
    next_ts: Option<u64>,
}

/// The longest jump between packets taken for jitter rather than damage.
const GAP: f64 = 0.1;

impl State {
    fn new(
        params: &CodecParameters,
        rate: u32,
        writer: ArtifactWriter,
        container: Container,
    ) -> Result<Self, Failure> {
        let mut state = Self {
            container,
            rate,
            writer: Some(writer),
            pipeline: None,
            source_rate: params.sample_rate,
            channels: params.channels.map(|c| c.count() as u32),
            buffer: None,
            mono: Vec::new(),
            frames: 0,
            next_ts: None,
        };
        if let Some(source) = params.sample_rate {
            state.start(source)?;
        }
        Ok(state)
    }

    fn start(&mut self, source: u32) -> Result<(), Failure> {
        if let Some(writer) = self.writer.take() {
            self.pipeline =
                Some(Pipeline::new(source, self.rate, writer).map_err(Failure::Failed)?);
            self.source_rate = Some(source);
        }
        Ok(())
    }

    /// The interleaved buffer for a packet of `capacity` frames.
    fn samples(
        &mut self,
        capacity: usize,
        spec: symphonia::core::audio::SignalSpec,
    ) -> &mut SampleBuffer<f32> {
        let fits = self
            .buffer
            .as_ref()
            .is_some_and(|b| b.capacity() >= capacity * spec.channels.count());
        if !fits {
            self.buffer = Some(SampleBuffer::new(capacity as u64, spec));
        }
        self.buffer
            .get_or_insert_with(|| SampleBuffer::new(capacity as u64, spec))
    }

    /// Downmixes the decoded buffer and feeds it on.
    fn push(&mut self, rate: u32, channels: usize) -> Result<(), Failure> {
        if self.pipeline.is_none() {
            self.start(rate)?;
        }
        if self.source_rate != Some(rate) {
            return Err(Failure::Failed(format!(
                "the sample rate changes from {} Hz to {rate} Hz at {}; decode it with ffmpeg first",
                self.source_rate.unwrap_or_default(),
                self.at()
            )));
        }
        self.channels.get_or_insert(channels as u32);
        let Some(buffer) = &self.buffer else {
            return Ok(());
        };
        let interleaved = buffer.samples();
        self.mono.clear();
        if channels == 1 {
            self.mono.extend_from_slice(interleaved);
        } else {
            let scale = 1.0 / channels as f32;
            self.mono.extend(
                interleaved
                    .chunks_exact(channels)
                    .map(|frame| frame.iter().sum::<f32>() * scale),
            );
        }
        self.frames += self.mono.len() as u64;
        match &mut self.pipeline {
            Some(pipeline) => pipeline.push(&self.mono).map_err(Failure::Failed),
            None => Ok(()),
        }
    }

    /// Fails when a packet starts well after the previous one ended: the
    /// demuxer skipped damaged data in between.
    fn check_gap(&mut self, ts: u64, dur: u64, base: Option<TimeBase>) -> Result<(), Failure> {
        let Some(base) = base.filter(|b| b.denom > 0) else {
            return Ok(());
        };
        let secs = |units: u64| units as f64 * f64::from(base.numer) / f64::from(base.denom);
        if let Some(next) = self.next_ts {
            let missing = secs(ts.saturating_sub(next));
            if missing > GAP {
                return Err(Failure::Failed(format!(
                    "damaged {} stream: {missing:.1} s of audio missing at {:.1} s",
                    self.container.label(),
                    secs(next)
                )));
            }
        }
        self.next_ts = Some(ts + dur);
        Ok(())
    }

    /// The time decoded so far, as `2.1 s`.
    fn at(&self) -> String {
        seconds(self.frames, self.source_rate)
    }

    /// The reason for an error met after `self.frames` frames.
    fn failure(&self, error: Error, name: &str) -> Failure {
        let label = self.container.label();
        Failure::Failed(match error {
            Error::IoError(e) => format!("reading `{name}` failed at {}: {e}", self.at()),
            Error::DecodeError(reason) if self.frames == 0 => {
                format!("corrupt {label} stream in `{name}`: no audio could be decoded ({reason})")
            }
            Error::DecodeError(reason) => {
                format!("corrupt {label} stream after {}: {reason}", self.at())
            }
            Error::ResetRequired => format!(
                "the {label} stream changes its format at {} (chained streams are not supported)",
                self.at()
            ),
            other => format!("decoding `{name}` failed at {}: {other}", self.at()),
        })
    }

    fn finish(self, params: &CodecParameters, source_format: String) -> Result<Decoded, Failure> {
        let label = self.container.label();
        if let (Some(expected), Some(rate)) = (params.n_frames, self.source_rate) {
            // Allow a little slack for encoder delay and padding.
            let slack = u64::from(rate) / 10;
            if self.frames + slack < expected {
                return Err(Failure::Failed(format!(
                    "truncated {label} stream after {} (its header says {})",
                    self.at(),
                    seconds(expected, self.source_rate)
                )));
            }
        }
        let Some(pipeline) = self.pipeline else {
            return Err(Failure::Failed(format!(
                "the {label} stream has no audio (no sample rate in its header and no decodable packet)"
            )));
        };
        let samples = pipeline.finish().map_err(Failure::Failed)?;
        Ok(Decoded {
            source_format,
            source_sample_rate: self.source_rate,
            source_channels: self.channels,
            samples,
        })
    }
}

/// `frames` at `rate` as seconds with one decimal, like `2.1 s`.
pub(crate) fn seconds(frames: u64, rate: Option<u32>) -> String {
    match rate {
        Some(rate) if rate > 0 => format!("{:.1} s", frames as f64 / f64::from(rate)),
        _ => format!("{frames} frames"),
    }
}
