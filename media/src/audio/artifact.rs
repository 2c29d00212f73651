//! The `audio` artifact: `audio.f32`, raw mono samples as little-endian
//! IEEE 754 `f32`, no header. The sample rate and length are in the
//! output's value (`sample_rate`, `samples`); the file's length is
//! `4 × samples` bytes.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

/// The name of the artifact file in an `audio` output.
pub const AUDIO_FILE: &str = "audio.f32";

/// Writes samples to an artifact as they come, through a buffer.
pub(crate) struct ArtifactWriter {
    out: BufWriter<File>,
    samples: u64,
}

impl ArtifactWriter {
    /// Creates (or truncates) the artifact at `path`.
    pub(crate) fn create(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            out: BufWriter::with_capacity(256 * 1024, File::create(path)?),
            samples: 0,
        })
    }

    /// Appends `samples`.
    pub(crate) fn write(&mut self, samples: &[f32]) -> std::io::Result<()> {
        for sample in samples {
            self.out.write_all(&sample.to_le_bytes())?;
        }
        self.samples += samples.len() as u64;
        Ok(())
    }

    /// Samples written so far.
    pub(crate) fn samples(&self) -> u64 {
        self.samples
    }

    /// Flushes the buffer and syncs the file; returns the sample count.
    pub(crate) fn finish(mut self) -> std::io::Result<u64> {
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        Ok(self.samples)
    }
}

/// Reads an `audio` artifact in chunks, without loading it whole.
///
/// ```no_run
/// let mut reader = flow_media::AudioReader::open("audio.f32".as_ref())?;
/// let mut chunk = vec![0.0f32; 16_000];
/// loop {
///     let n = reader.read(&mut chunk)?;
///     if n == 0 {
///         break;
///     }
///     // … use chunk[..n] …
/// }
/// # Ok::<_, std::io::Error>(())
/// ```
pub struct AudioReader {
    input: BufReader<File>,
    samples: u64,
    read: u64,
    bytes: Vec<u8>,
}

impl AudioReader {
    /// Opens the artifact at `path`.
    ///
    /// # Errors
    /// I/O errors, and `InvalidData` when the file's length is not a
    /// multiple of 4 bytes (not an `audio` artifact, or a damaged one).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len % 4 != 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "`{}` is {len} bytes, not a whole number of 4-byte f32 samples",
                    path.display()
                ),
            ));
        }
        Ok(Self {
            input: BufReader::with_capacity(256 * 1024, file),
            samples: len / 4,
            read: 0,
            bytes: Vec::new(),
        })
    }

    /// The number of samples in the artifact.
    pub fn len(&self) -> u64 {
        self.samples
    }

    /// Whether the artifact holds no samples.
    pub fn is_empty(&self) -> bool {
        self.samples == 0
    }

    /// Reads up to `out.len()` samples into `out`; returns how many were
    /// read, 0 at the end.
    ///
    /// # Errors
    /// I/O errors, and `UnexpectedEof` when the file shrank while reading.
    pub fn read(&mut self, out: &mut [f32]) -> std::io::Result<usize> {
        let n = out.len().min((self.samples - self.read) as usize);
        self.bytes.resize(n * 4, 0);
        self.input.read_exact(&mut self.bytes)?;
        for (sample, bytes) in out.iter_mut().zip(self.bytes.chunks_exact(4)) {
            *sample = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        self.read += n as u64;
        Ok(n)
    }
}

/// Reads a whole `audio` artifact (`audio.f32`) into memory.
///
/// # Errors
/// As [`AudioReader::open`] and [`AudioReader::read`].
pub fn read_audio(path: &Path) -> std::io::Result<Vec<f32>> {
    let mut reader = AudioReader::open(path)?;
    let mut samples = vec![0.0; reader.len() as usize];
    let mut at = 0;
    while at < samples.len() {
        let n = reader.read(&mut samples[at..])?;
        if n == 0 {
            break;
        }
        at += n;
    }
    samples.truncate(at);
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIO_FILE);
        let mut writer = ArtifactWriter::create(&path).unwrap();
        writer.write(&[0.5, -1.0]).unwrap();
        writer.write(&[0.25]).unwrap();
        assert_eq!(writer.finish().unwrap(), 3);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 12);
        assert_eq!(read_audio(&path).unwrap(), vec![0.5, -1.0, 0.25]);
        let mut reader = AudioReader::open(&path).unwrap();
        let mut chunk = [0.0; 2];
        assert_eq!(reader.read(&mut chunk).unwrap(), 2);
        assert_eq!(reader.read(&mut chunk).unwrap(), 1);
        assert_eq!(chunk[0], 0.25);
        assert_eq!(reader.read(&mut chunk).unwrap(), 0);
    }

    #[test]
    fn refuses_a_file_of_odd_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIO_FILE);
        std::fs::write(&path, [0u8; 5]).unwrap();
        let err = AudioReader::open(&path).err().unwrap();
        assert!(err.to_string().contains("not a whole number"), "{err}");
    }
}
