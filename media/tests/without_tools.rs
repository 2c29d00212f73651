//! What `audio.decode` and `media.fetch` say when `ffmpeg` or `yt-dlp` is
//! missing. One test, alone in its binary, because it empties `PATH`.

mod common;

use common::{s, sh, Harness};
use flow_media::{AudioDecodeKind, MediaFetchKind};

#[test]
fn missing_programs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("tone.wav");
    let opus = dir.path().join("tone.opus");
    sh(
        "sox",
        &[
            "-n",
            "-r",
            "48000",
            "-c",
            "1",
            s(&wav),
            "synth",
            "1",
            "sine",
            "440",
        ],
    );
    sh(
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "error",
            "-i",
            s(&wav),
            "-c:a",
            "libopus",
            s(&opus),
        ],
    );

    let empty = tempfile::tempdir().unwrap();
    std::env::set_var("PATH", empty.path());

    let decode = Harness::new(&AudioDecodeKind, serde_json::Value::Null);
    assert_eq!(
        decode.fail(s(&opus)),
        "format `Ogg/Opus` needs ffmpeg, which is not on PATH (symphonia has no opus decoder); install ffmpeg (scripts/setup.sh does)"
    );
    // What symphonia reads needs no program.
    assert!(decode.run(s(&wav)).0.is_ok());

    let fetch = Harness::new(&MediaFetchKind, serde_json::Value::Null);
    assert_eq!(
        fetch.fail("https://www.youtube.com/watch?v=abc"),
        "`https://www.youtube.com/watch?v=abc` is a video page: fetching it needs yt-dlp, which is not on PATH; install yt-dlp or give a direct media URL"
    );
}
