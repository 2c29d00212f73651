//! What a file looks like, from its first bytes: which media container (and
//! for Ogg and Matroska, which codec), or what else it is, for error
//! messages that say why a file cannot be decoded.

use std::io::Read;
use std::path::Path;

/// Bytes read from the start of a file to recognise it.
const HEAD: usize = 4096;

/// A recognised media container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Container {
    Wav,
    Aiff,
    Flac,
    Mp3,
    Adts,
    Ogg,
    Mp4,
    Matroska,
    WebM,
    Caf,
    Asf,
    Amr,
    Avi,
    Flv,
    MpegTs,
    MpegPs,
    Ac3,
    WavPack,
    Ape,
    Au,
}

impl Container {
    /// The container's usual name, as users know it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Wav => "WAV",
            Self::Aiff => "AIFF",
            Self::Flac => "FLAC",
            Self::Mp3 => "MP3",
            Self::Adts => "AAC (ADTS)",
            Self::Ogg => "Ogg",
            Self::Mp4 => "MP4",
            Self::Matroska => "Matroska",
            Self::WebM => "WebM",
            Self::Caf => "CAF",
            Self::Asf => "ASF (WMA/WMV)",
            Self::Amr => "AMR",
            Self::Avi => "AVI",
            Self::Flv => "FLV",
            Self::MpegTs => "MPEG-TS",
            Self::MpegPs => "MPEG-PS",
            Self::Ac3 => "AC-3",
            Self::WavPack => "WavPack",
            Self::Ape => "Monkey's Audio",
            Self::Au => "Sun AU",
        }
    }

    /// A short lower-case name for `source_format`.
    pub(crate) fn short(self) -> &'static str {
        match self {
            Self::Wav => "wav",
            Self::Aiff => "aiff",
            Self::Flac => "flac",
            Self::Mp3 => "mp3",
            Self::Adts => "adts",
            Self::Ogg => "ogg",
            Self::Mp4 => "mp4",
            Self::Matroska => "matroska",
            Self::WebM => "webm",
            Self::Caf => "caf",
            Self::Asf => "asf",
            Self::Amr => "amr",
            Self::Avi => "avi",
            Self::Flv => "flv",
            Self::MpegTs => "mpegts",
            Self::MpegPs => "mpegps",
            Self::Ac3 => "ac3",
            Self::WavPack => "wavpack",
            Self::Ape => "ape",
            Self::Au => "au",
        }
    }
}

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sniffed {
    /// Zero bytes.
    Empty,
    /// A media container, with the codec when the header names it
    /// (`opus`, `vorbis`, `flac`, `speex` in Ogg; `opus` in Matroska/WebM).
    Media {
        container: Container,
        codec: Option<&'static str>,
    },
    /// Not media; a description such as `plain text (starts with "hello")`.
    Other(String),
}

impl Sniffed {
    /// The container and codec, as in `Ogg/Opus`.
    pub(crate) fn media_label(&self) -> String {
        match self {
            Self::Media {
                container,
                codec: Some(codec),
            } => format!("{}/{}", container.label(), codec_label(codec)),
            Self::Media { container, .. } => container.label().to_string(),
            Self::Empty => "empty".to_string(),
            Self::Other(what) => what.clone(),
        }
    }
}

fn codec_label(codec: &str) -> &str {
    match codec {
        "opus" => "Opus",
        "vorbis" => "Vorbis",
        "flac" => "FLAC",
        "speex" => "Speex",
        other => other,
    }
}

/// Reads the start of `path` and says what it is.
///
/// # Errors
/// I/O errors opening or reading the file.
pub(crate) fn sniff_file(path: &Path) -> std::io::Result<Sniffed> {
    let mut head = Vec::with_capacity(HEAD);
    std::fs::File::open(path)?
        .take(HEAD as u64)
        .read_to_end(&mut head)?;
    Ok(sniff(&head))
}

/// Says what `head`, the start of a file, is.
pub(crate) fn sniff(head: &[u8]) -> Sniffed {
    if head.is_empty() {
        return Sniffed::Empty;
    }
    if let Some(container) = container(head) {
        let codec = match container {
            Container::Ogg => ogg_codec(head),
            Container::Matroska | Container::WebM => contains(head, b"A_OPUS")
                .then_some("opus")
                .or_else(|| contains(head, b"A_VORBIS").then_some("vorbis")),
            _ => None,
        };
        return Sniffed::Media { container, codec };
    }
    Sniffed::Other(describe_other(head))
}

fn container(h: &[u8]) -> Option<Container> {
    let at = |offset: usize, magic: &[u8]| h.get(offset..offset + magic.len()) == Some(magic);
    Some(
        if at(0, b"RIFF") && at(8, b"WAVE") || at(0, b"RF64") || at(0, b"BW64") {
            Container::Wav
        } else if at(0, b"RIFF") && at(8, b"AVI ") {
            Container::Avi
        } else if at(0, b"FORM") && (at(8, b"AIFF") || at(8, b"AIFC")) {
            Container::Aiff
        } else if at(0, b"fLaC") {
            Container::Flac
        } else if at(0, b"OggS") {
            Container::Ogg
        } else if at(4, b"ftyp") {
            Container::Mp4
        } else if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
            if contains(&h[..h.len().min(64)], b"webm") {
                Container::WebM
            } else {
                Container::Matroska
            }
        } else if at(0, b"caff") {
            Container::Caf
        } else if at(0, &[0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11]) {
            Container::Asf
        } else if at(0, b"#!AMR") {
            Container::Amr
        } else if at(0, b"FLV\x01") {
            Container::Flv
        } else if at(0, b"wvpk") {
            Container::WavPack
        } else if at(0, b"MAC ") {
            Container::Ape
        } else if at(0, b".snd") {
            Container::Au
        } else if at(0, &[0x00, 0x00, 0x01, 0xBA]) {
            Container::MpegPs
        } else if h[0] == 0x47 && h.len() > 376 && h[188] == 0x47 && h[376] == 0x47 {
            Container::MpegTs
        } else if at(0, b"ID3") || mpeg_audio_sync(h) {
            Container::Mp3
        } else if h.len() >= 2 && h[0] == 0xFF && h[1] & 0xF6 == 0xF0 {
            Container::Adts
        } else if at(0, &[0x0B, 0x77]) {
            Container::Ac3
        } else {
            return None;
        },
    )
}

/// An MPEG audio frame header at the start: sync, a valid version, layer,
/// bitrate and sample rate.
fn mpeg_audio_sync(h: &[u8]) -> bool {
    h.len() >= 4
        && h[0] == 0xFF
        && h[1] & 0xE0 == 0xE0
        && h[1] & 0x18 != 0x08
        && h[1] & 0x06 != 0
        && h[2] & 0xF0 != 0xF0
        && h[2] & 0x0C != 0x0C
}

fn ogg_codec(h: &[u8]) -> Option<&'static str> {
    if contains(h, b"OpusHead") {
        Some("opus")
    } else if contains(h, b"\x01vorbis") {
        Some("vorbis")
    } else if contains(h, b"\x7fFLAC") {
        Some("flac")
    } else if contains(h, b"Speex   ") {
        Some("speex")
    } else {
        None
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Describes a file that is not media: text, a known non-media format, or
/// binary data, quoting its start.
fn describe_other(h: &[u8]) -> String {
    let known: &[(&[u8], &str)] = &[
        (b"%PDF", "a PDF document"),
        (b"\x89PNG", "a PNG image"),
        (b"\xFF\xD8\xFF", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"PK\x03\x04", "a ZIP archive"),
        (b"\x1F\x8B", "a gzip archive"),
        (b"\x7FELF", "an ELF executable"),
    ];
    if let Some((_, what)) = known.iter().find(|(magic, _)| h.starts_with(magic)) {
        return (*what).to_string();
    }
    let text_part = match std::str::from_utf8(h) {
        Ok(text) => Some(text),
        // The head may end inside a multi-byte character.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&h[..e.valid_up_to()]).ok(),
        Err(_) => None,
    };
    if let Some(text) = text_part.filter(|t| looks_like_text(t)) {
        let trimmed = text.trim_start();
        let lower: String = trimmed.chars().take(64).collect::<String>().to_lowercase();
        let kind = if lower.starts_with("<!doctype html") || lower.starts_with("<html") {
            "an HTML page"
        } else if lower.starts_with("<?xml") {
            "an XML document"
        } else if trimmed.starts_with('{') || trimmed.starts_with('[') {
            "JSON or other text"
        } else {
            "plain text"
        };
        return format!("{kind} (starts with {:?})", quote(trimmed));
    }
    let bytes: Vec<String> = h.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!(
        "unrecognised binary data (starts with bytes {})",
        bytes.join(" ")
    )
}

fn looks_like_text(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t' | '\x0C'))
}

/// The first line of `text`, at most 40 characters.
fn quote(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    let mut quoted: String = line.chars().take(40).collect();
    if line.chars().count() > 40 {
        quoted.push('…');
    }
    quoted
}

/// Whether the Ogg file at `path` ends with a complete page flagged
/// end-of-stream, as a whole Ogg file does and a cut one does not.
///
/// # Errors
/// I/O errors reading the file.
pub(crate) fn ogg_ends_cleanly(path: &Path) -> std::io::Result<bool> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    // A page is at most 27 + 255 + 255 × 255 bytes.
    let start = len.saturating_sub(27 + 255 + 255 * 255);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let Some(at) = (0..tail.len().saturating_sub(27))
        .rev()
        .find(|&i| tail[i..].starts_with(b"OggS"))
    else {
        return Ok(false);
    };
    let page = &tail[at..];
    let segments = usize::from(page[26]);
    let Some(table) = page.get(27..27 + segments) else {
        return Ok(false);
    };
    let body: usize = table.iter().map(|&n| usize::from(n)).sum();
    Ok(page[5] & 0x04 != 0 && page.len() == 27 + segments + body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_containers_and_ogg_codecs() {
        let mut ogg = b"OggS".to_vec();
        ogg.extend_from_slice(&[0; 24]);
        ogg.extend_from_slice(b"OpusHead");
        assert_eq!(
            sniff(&ogg),
            Sniffed::Media {
                container: Container::Ogg,
                codec: Some("opus")
            }
        );
        assert_eq!(sniff(&ogg).media_label(), "Ogg/Opus");
        let wav = b"RIFF\0\0\0\0WAVEfmt ";
        assert!(matches!(
            sniff(wav),
            Sniffed::Media {
                container: Container::Wav,
                ..
            }
        ));
        assert!(matches!(
            sniff(&[0xFF, 0xFB, 0x90, 0x64]),
            Sniffed::Media {
                container: Container::Mp3,
                ..
            }
        ));
    }

    #[test]
    fn describes_what_is_not_media() {
        assert_eq!(sniff(b""), Sniffed::Empty);
        assert_eq!(
            sniff(b"hello world\nsecond line"),
            Sniffed::Other("plain text (starts with \"hello world\")".to_string())
        );
        assert_eq!(
            sniff(b"<!DOCTYPE html><html>"),
            Sniffed::Other("an HTML page (starts with \"<!DOCTYPE html><html>\")".to_string())
        );
        assert_eq!(
            sniff(&[0x13, 0x00, 0x9a, 0x42, 0x01]),
            Sniffed::Other(
                "unrecognised binary data (starts with bytes 13 00 9a 42 01)".to_string()
            )
        );
    }
}
