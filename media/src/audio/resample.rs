//! Streaming mono resampling with rubato's synchronous FFT resampler, and
//! the pipeline mono samples go through on their way to the artifact.

use rubato::{FftFixedIn, Resampler};

use super::artifact::ArtifactWriter;

/// Input frames per resampler call.
const CHUNK: usize = 1024;

/// Resamples a mono stream chunk by chunk. The output is aligned with the
/// input (the resampler's delay is dropped) and has exactly
/// `round(input × to / from)` samples once [`StreamResampler::finish`] ran.
pub(crate) struct StreamResampler {
    inner: FftFixedIn<f32>,
    from: u32,
    to: u32,
    pending: Vec<f32>,
    output: Vec<Vec<f32>>,
    /// Output frames still to drop (the resampler's delay).
    skip: usize,
    consumed: u64,
    emitted: u64,
}

impl StreamResampler {
    /// A resampler from `from` Hz to `to` Hz.
    pub(crate) fn new(from: u32, to: u32) -> Result<Self, String> {
        let inner = FftFixedIn::<f32>::new(from as usize, to as usize, CHUNK, 2, 1)
            .map_err(|e| format!("cannot resample from {from} Hz to {to} Hz: {e}"))?;
        let output = inner.output_buffer_allocate(true);
        let skip = inner.output_delay();
        Ok(Self {
            inner,
            from,
            to,
            pending: Vec::with_capacity(2 * CHUNK),
            output,
            skip,
            consumed: 0,
            emitted: 0,
        })
    }

    /// Feeds `samples`; writes whatever output is ready to `out`.
    pub(crate) fn push(&mut self, samples: &[f32], out: &mut ArtifactWriter) -> Result<(), String> {
        self.pending.extend_from_slice(samples);
        self.consumed += samples.len() as u64;
        let mut start = 0;
        while self.pending.len() - start >= self.inner.input_frames_next() {
            let need = self.inner.input_frames_next();
            let chunk = [&self.pending[start..start + need]];
            let (used, produced) = self
                .inner
                .process_into_buffer(&chunk, &mut self.output, None)
                .map_err(|e| format!("resampling failed: {e}"))?;
            start += used;
            self.emit(produced, None, out)?;
        }
        self.pending.drain(..start);
        Ok(())
    }

    /// Flushes the resampler and writes the rest of the output.
    pub(crate) fn finish(mut self, out: &mut ArtifactWriter) -> Result<(), String> {
        let expected = self.expected();
        // rubato reads an empty input as "no room" rather than "no frames":
        // pass `None` then.
        let mut input = Some(std::mem::take(&mut self.pending)).filter(|p| !p.is_empty());
        while self.emitted < expected {
            let wave = input.take().map(|samples| [samples]);
            let (_, produced) = self
                .inner
                .process_partial_into_buffer(wave.as_ref().map(|w| &w[..]), &mut self.output, None)
                .map_err(|e| format!("resampling failed: {e}"))?;
            self.emit(produced, Some(expected), out)?;
        }
        Ok(())
    }

    /// Output samples for all the input so far.
    fn expected(&self) -> u64 {
        (self.consumed * u64::from(self.to) + u64::from(self.from) / 2) / u64::from(self.from)
    }

    fn emit(
        &mut self,
        produced: usize,
        limit: Option<u64>,
        out: &mut ArtifactWriter,
    ) -> Result<(), String> {
        let skip = self.skip.min(produced);
        self.skip -= skip;
        let mut ready = &self.output[0][skip..produced];
        if let Some(limit) = limit {
            let room = (limit - self.emitted).min(ready.len() as u64) as usize;
            ready = &ready[..room];
        }
        self.emitted += ready.len() as u64;
        out.write(ready)
            .map_err(|e| format!("cannot write the audio artifact: {e}"))
    }
}

/// Where decoded mono samples go: straight to the artifact when the rates
/// match, through a [`StreamResampler`] otherwise.
pub(crate) struct Pipeline {
    resampler: Option<StreamResampler>,
    writer: ArtifactWriter,
}

impl Pipeline {
    /// A pipeline from `from` Hz to `to` Hz into `writer`.
    pub(crate) fn new(from: u32, to: u32, writer: ArtifactWriter) -> Result<Self, String> {
        let resampler = if from == to {
            None
        } else {
            Some(StreamResampler::new(from, to)?)
        };
        Ok(Self { resampler, writer })
    }

    /// Feeds mono samples at the source rate.
    pub(crate) fn push(&mut self, samples: &[f32]) -> Result<(), String> {
        match &mut self.resampler {
            Some(resampler) => resampler.push(samples, &mut self.writer),
            None => self
                .writer
                .write(samples)
                .map_err(|e| format!("cannot write the audio artifact: {e}")),
        }
    }

    /// Flushes everything; returns the number of samples written.
    pub(crate) fn finish(mut self) -> Result<u64, String> {
        if let Some(resampler) = self.resampler.take() {
            resampler.finish(&mut self.writer)?;
        }
        self.writer
            .finish()
            .map_err(|e| format!("cannot write the audio artifact: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::artifact::{read_audio, ArtifactWriter};
    use super::*;

    fn resample(input: &[f32], from: u32, to: u32, piece: usize) -> Vec<f32> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.f32");
        let mut pipeline = Pipeline::new(from, to, ArtifactWriter::create(&path).unwrap()).unwrap();
        for part in input.chunks(piece) {
            pipeline.push(part).unwrap();
        }
        let n = pipeline.finish().unwrap();
        let out = read_audio(&path).unwrap();
        assert_eq!(out.len() as u64, n);
        out
    }

    #[test]
    fn keeps_the_length_and_the_timing_of_a_sine() {
        let from = 22050;
        let to = 16000;
        let tone = |rate: u32, n: usize| -> Vec<f32> {
            (0..n)
                .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin() * 0.5)
                .collect()
        };
        let input = tone(from, 22050 * 2 + 17);
        let out = resample(&input, from, to, 333);
        assert_eq!(out.len(), ((22050 * 2 + 17) * 16000 + 11025) / 22050);
        let reference = tone(to, out.len());
        // Away from the edges, the output is the same tone, in phase.
        let worst = out[400..out.len() - 400]
            .iter()
            .zip(&reference[400..])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 0.01, "largest difference {worst}");
    }

    #[test]
    fn passes_equal_rates_through_unchanged() {
        let input: Vec<f32> = (0..5000).map(|i| (i as f32 * 0.37).sin()).collect();
        assert_eq!(resample(&input, 16000, 16000, 777), input);
    }

    #[test]
    fn handles_input_that_fills_whole_chunks() {
        let out = resample(&[0.1; 2 * CHUNK], 22050, 16000, 2 * CHUNK);
        assert_eq!(out.len(), (2 * CHUNK * 16000 + 11025) / 22050);
    }

    #[test]
    fn handles_input_shorter_than_a_chunk() {
        let out = resample(&[0.1; 10], 44100, 16000, 10);
        assert_eq!(out.len(), 4);
    }
}
