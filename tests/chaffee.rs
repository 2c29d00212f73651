//! The first user's job, `flow run workflows/chaffee.yaml`, on a copy of
//! the bundled clips: every clip lands in the database with speakers and
//! vectors, `flow search` finds the clip a question is about, bad files
//! fail alone with their reasons, and runs killed with SIGKILL at random
//! points resume to the same database as an uninterrupted run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{flow, run_in, text};
use rusqlite::types::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const WORKFLOW: &str = "workflows/chaffee.yaml";
const CLIPS: [&str; 3] = ["ketones.wav", "oxalates.flac", "sleep-interview.mp3"];

/// A copy of the repository's workflow, voice profile and the bundled
/// `clips` in a temporary folder laid out like the repository.
fn workspace(clips: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(ROOT);
    let copy = |from: &str| {
        let to = dir.path().join(from);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root.join(from), to).unwrap();
    };
    copy(WORKFLOW);
    copy("examples/chaffee/voices/chaffee.json");
    for clip in clips {
        copy(&format!("examples/chaffee/media/{clip}"));
    }
    dir
}

fn database(dir: &Path) -> PathBuf {
    dir.join("out/chaffee/chaffee.db")
}

/// Every table's rows (without timestamps), ordered by key.
#[derive(Debug)]
struct Snapshot {
    tables: Vec<(String, Vec<Vec<Value>>)>,
}

const TABLES: [(&str, &str); 4] = [
    (
        "sources",
        "SELECT item, source, title, duration, status, reason, language, speaker_mode, segment_count, chunk_count, embedding_count FROM sources ORDER BY item",
    ),
    (
        "segments",
        "SELECT * FROM segments ORDER BY item, segment",
    ),
    ("chunks", "SELECT * FROM chunks ORDER BY item, chunk"),
    (
        "embeddings",
        "SELECT * FROM embeddings ORDER BY item, kind, row_index",
    ),
];

/// The rows of `dir`'s database, with `dir` written as `<workspace>` in
/// paths.
fn snapshot(dir: &Path) -> Snapshot {
    let prefix = dir.to_string_lossy().into_owned();
    let conn = rusqlite::Connection::open(database(dir)).unwrap();
    let tables = TABLES
        .iter()
        .map(|(name, sql)| {
            let mut stmt = conn.prepare(sql).unwrap();
            let width = stmt.column_count();
            let rows = stmt
                .query_map([], |row| {
                    (0..width)
                        .map(|i| {
                            row.get::<_, Value>(i).map(|v| match v {
                                Value::Text(t) => Value::Text(t.replace(&prefix, "<workspace>")),
                                v => v,
                            })
                        })
                        .collect()
                })
                .unwrap()
                .collect::<Result<Vec<Vec<Value>>, _>>()
                .unwrap();
            (name.to_string(), rows)
        })
        .collect();
    Snapshot { tables }
}

impl Snapshot {
    fn rows(&self, table: &str) -> &[Vec<Value>] {
        &self.tables.iter().find(|(t, _)| t == table).unwrap().1
    }
}

fn as_text(v: &Value) -> Option<&str> {
    match v {
        Value::Text(t) => Some(t),
        _ => None,
    }
}

fn vector(blob: &[u8]) -> Vec<f32> {
    blob.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// `got` equals `want`: the same rows, text and integers exactly, reals
/// within 1e-4 and vectors within 1e-5.
fn assert_same_database(want: &Snapshot, got: &Snapshot, context: &str) {
    for ((table, want_rows), (_, got_rows)) in want.tables.iter().zip(&got.tables) {
        assert_eq!(
            want_rows.len(),
            got_rows.len(),
            "{context}: table `{table}` has {} rows, the uninterrupted run {}",
            got_rows.len(),
            want_rows.len()
        );
        for (r, (w, g)) in want_rows.iter().zip(got_rows).enumerate() {
            for (c, (a, b)) in w.iter().zip(g).enumerate() {
                let same = match (a, b) {
                    (Value::Real(x), Value::Real(y)) => (x - y).abs() <= 1e-4,
                    (Value::Blob(x), Value::Blob(y)) => {
                        let (x, y) = (vector(x), vector(y));
                        x.len() == y.len() && x.iter().zip(&y).all(|(p, q)| (p - q).abs() <= 1e-5)
                    }
                    (x, y) => x == y,
                };
                assert!(
                    same,
                    "{context}: `{table}` row {r} column {c}: {b:?}, the uninterrupted run {a:?}"
                );
            }
        }
    }
}

/// The uninterrupted run: its folder, database and wall time.
struct Reference {
    dir: tempfile::TempDir,
    db: Snapshot,
    seconds: f64,
}

fn reference() -> &'static Reference {
    static REFERENCE: OnceLock<Reference> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let dir = workspace(&CLIPS);
        let started = Instant::now();
        let output = run_in(dir.path(), &["run", WORKFLOW]);
        let seconds = started.elapsed().as_secs_f64();
        let (stdout, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
        let db = snapshot(dir.path());
        eprintln!("uninterrupted run: {seconds:.1} s");
        Reference { dir, db, seconds }
    })
}

#[test]
fn every_clip_is_transcribed_labelled_and_embedded() {
    let reference = reference();
    let db = &reference.db;
    let sources = db.rows("sources");
    let items: Vec<&str> = sources.iter().map(|r| as_text(&r[0]).unwrap()).collect();
    assert_eq!(items.len(), CLIPS.len(), "{items:?}");
    for clip in CLIPS {
        assert!(items.iter().any(|i| i.ends_with(clip)), "{items:?}");
    }
    for row in sources {
        assert_eq!(as_text(&row[4]), Some("complete"), "{row:?}");
    }
    let mode = |clip: &str| {
        sources
            .iter()
            .find(|r| as_text(&r[0]).unwrap().ends_with(clip))
            .map(|r| as_text(&r[7]).unwrap_or("").to_string())
            .unwrap()
    };
    assert_eq!(mode("ketones.wav"), "monologue");
    assert_eq!(mode("oxalates.flac"), "monologue");
    assert_ne!(mode("sleep-interview.mp3"), "monologue");

    // Whisper heard the words; the speakers are right.
    let segments = db.rows("segments");
    let said = |clip: &str| -> Vec<(String, Option<String>)> {
        segments
            .iter()
            .filter(|r| as_text(&r[0]).unwrap().ends_with(clip))
            .map(|r| {
                (
                    as_text(&r[4]).unwrap().to_lowercase(),
                    as_text(&r[5]).map(str::to_string),
                )
            })
            .collect()
    };
    let ketones = said("ketones.wav");
    let all: String = ketones.iter().map(|(t, _)| t.as_str()).collect();
    // espeak-ng's voice through Whisper tiny.en: "ketones" comes out as
    // "catones", but these words are heard.
    assert!(
        all.contains("insulin") && all.contains("fuel for the brain"),
        "{all}"
    );
    assert!(
        ketones.iter().all(|(_, s)| s.as_deref() == Some("chaffee")),
        "{ketones:?}"
    );
    let interview = said("sleep-interview.mp3");
    let host: Vec<&str> = interview
        .iter()
        .filter(|(_, s)| s.as_deref() == Some("chaffee"))
        .map(|(t, _)| t.as_str())
        .collect();
    let guest: Vec<&str> = interview
        .iter()
        .filter(|(_, s)| s.as_deref() != Some("chaffee"))
        .map(|(t, _)| t.as_str())
        .collect();
    assert!(
        host.iter().any(|t| t.contains("welcome back")),
        "host: {host:?}, guest: {guest:?}"
    );
    assert!(
        guest.iter().any(|t| t.contains("hours of bedtime")),
        "host: {host:?}, guest: {guest:?}"
    );
    assert!(!host.iter().any(|t| t.contains("bedtime")), "{host:?}");

    // Every chunk has its vector; subtitles were written.
    let chunks = db.rows("chunks").len();
    let vectors = db.rows("embeddings");
    assert!(chunks >= CLIPS.len());
    assert_eq!(vectors.len(), chunks);
    for row in vectors {
        let Value::Blob(b) = &row[5] else {
            panic!("{row:?}")
        };
        let v = vector(b);
        assert_eq!(v.len(), 384);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    let subtitles = reference.dir.path().join("out/chaffee/subtitles");
    for clip in CLIPS {
        let stem = Path::new(clip).file_stem().unwrap().to_string_lossy();
        for ext in ["srt", "vtt"] {
            let file = subtitles.join(format!("{stem}.{ext}"));
            let body = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert!(body.contains("-->"), "{}: {body}", file.display());
        }
    }
}

/// `(done, reused)` per stage, from the `stage ID: N done (M reused)` lines
/// that `flow run` writes to stderr.
fn stage_counts(stderr: &str) -> std::collections::BTreeMap<String, (usize, usize)> {
    stderr
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("stage ")?;
            let (id, rest) = rest.split_once(": ")?;
            let (done, rest) = rest.split_once(" done (")?;
            let (reused, _) = rest.split_once(" reused)")?;
            Some((id.to_string(), (done.parse().ok()?, reused.parse().ok()?)))
        })
        .collect()
}

#[test]
fn batching_knobs_and_written_defaults_reuse_every_result() {
    let dir = workspace(&["ketones.wav"]);
    let run = |sets: &[&str]| {
        let mut args = vec!["run", WORKFLOW];
        for set in sets {
            args.extend(["--set", set]);
        }
        let output = run_in(dir.path(), &args);
        let (stdout, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
        stage_counts(&stderr)
    };
    let first = run(&[]);
    assert_eq!(first["asr"], (1, 0), "{first:?}");

    // Windows per pass, texts per pass and a default written out: the
    // same results, so none is computed again.
    let same = run(&[
        "stages.asr.with.max_windows=2",
        "stages.asr.with.language=en",
        "stages.embed.with.max_batch=4",
        "stages.chunk.with.split_on_speaker=false",
    ]);
    for (stage, (done, reused)) in &same {
        if !["database", "subtitles"].contains(&stage.as_str()) {
            assert_eq!((*done, *reused), (1, 1), "{stage}: {same:?}");
        }
    }

    // A different language recomputes the transcript and what follows it,
    // not the speech regions before it.
    let language = run(&["stages.asr.with.language=de"]);
    assert_eq!(language["vad"], (1, 1), "{language:?}");
    assert_eq!(language["asr"], (1, 0), "{language:?}");
    assert_eq!(language["chunk"], (1, 0), "{language:?}");

    // So does a threshold, from its stage on.
    let threshold = run(&["stages.vad.with.threshold=0.6"]);
    assert_eq!(threshold["decode"], (1, 1), "{threshold:?}");
    assert_eq!(threshold["vad"], (1, 0), "{threshold:?}");
    assert_eq!(threshold["asr"], (1, 0), "{threshold:?}");
}

#[test]
fn search_finds_the_clip_a_question_is_about() {
    let dir = reference().dir.path();
    for (question, clip) in [
        ("Which foods are high in oxalates?", "oxalates.flac"),
        (
            "How many hours of sleep do adults need?",
            "sleep-interview.mp3",
        ),
        (
            "What fuel does the brain use when insulin is low?",
            "ketones.wav",
        ),
    ] {
        let output = run_in(dir, &["search", question, "-w", WORKFLOW, "-k", "1"]);
        let (stdout, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        let first = stdout.lines().next().unwrap_or("");
        assert!(first.starts_with("1. "), "{stdout}");
        assert!(first.contains(clip), "`{question}` → {stdout}");
    }
}

#[test]
fn bad_files_fail_alone_with_their_reasons() {
    let reference = reference();
    let dir = workspace(&["ketones.wav"]);
    let media = dir.path().join("examples/chaffee/media");
    // A FLAC file cut off after its header, an empty file, and text named
    // like an MP3.
    let flac = std::fs::read(Path::new(ROOT).join("examples/chaffee/media/oxalates.flac")).unwrap();
    let mut broken = flac[..flac.len().min(2000)].to_vec();
    broken.extend((0..4000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    std::fs::write(media.join("broken.flac"), broken).unwrap();
    std::fs::write(media.join("empty.mp3"), b"").unwrap();
    std::fs::write(media.join("notes.mp3"), "These are my notes, not audio.\n").unwrap();

    let output = run_in(dir.path(), &["run", WORKFLOW]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");

    let output = run_in(dir.path(), &["status", "-w", WORKFLOW]);
    let (status, _) = text(&output);
    assert!(status.contains("failed items:"), "{status}");
    for bad in ["broken.flac", "empty.mp3", "notes.mp3"] {
        let line = status
            .lines()
            .find(|l| l.trim_start().starts_with(bad) && l.contains("in `decode`: "))
            .unwrap_or_else(|| panic!("no failure listed for {bad}:\n{status}"));
        assert!(line.len() > bad.len() + 20, "a reason for {bad}: {line}");
    }

    // The good clip went all the way, as in the run without bad files.
    let got = snapshot(dir.path());
    // Failed items have no `sources` row (`flow status` has them).
    let sources = got.rows("sources");
    assert_eq!(sources.len(), 1, "{sources:?}");
    assert!(as_text(&sources[0][0]).unwrap().ends_with("ketones.wav"));
    assert_eq!(as_text(&sources[0][4]), Some("complete"));
    let want_segments = reference
        .db
        .rows("segments")
        .iter()
        .filter(|r| as_text(&r[0]).unwrap().ends_with("ketones.wav"))
        .count();
    let got_segments = got
        .rows("segments")
        .iter()
        .filter(|r| as_text(&r[0]).unwrap().ends_with("ketones.wav"))
        .count();
    assert_eq!(got_segments, want_segments);
}

/// A small seeded generator for the kill points.
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn spawn(dir: &Path, args: &[&str]) -> std::process::Child {
    let mut cmd: Command = flow();
    cmd.current_dir(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Whether `flow status` shows an unfinished run.
fn interrupted(dir: &Path) -> bool {
    let output = run_in(dir, &["status", "-w", WORKFLOW]);
    output.status.success() && text(&output).0.contains("unfinished")
}

#[test]
fn runs_killed_at_random_points_resume_to_the_same_database() {
    let reference = reference();
    let seed = std::env::var("FLOW_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("kill points seeded with FLOW_CHAOS_SEED={seed}");
    let mut rng = SplitMix(seed);
    // Kill points fall anywhere from start-up to about half of an
    // uninterrupted run. When the killed runs finish the job before ten
    // kills, its database is checked and the job starts again from nothing.
    let longest = (reference.seconds * 0.5).max(1.0);
    let mut kills = 0;
    let mut finished = 0;
    while kills < 10 {
        let dir = workspace(&CLIPS);
        let mut first = true;
        loop {
            // `flow resume` continues the killed run; a run killed before
            // it was recorded is started again with `flow run`.
            let args: &[&str] = if !first && interrupted(dir.path()) {
                &["resume", "-w", WORKFLOW]
            } else {
                &["run", WORKFLOW]
            };
            first = false;
            let mut child = spawn(dir.path(), args);
            let wait = Duration::from_secs_f64(0.3 + rng.next() * longest);
            std::thread::sleep(wait);
            match child.try_wait().unwrap() {
                Some(status) => {
                    assert_eq!(status.code(), Some(0), "a resumed run failed");
                    break;
                }
                None if kills < 10 => {
                    child.kill().unwrap(); // SIGKILL
                    child.wait().unwrap();
                    kills += 1;
                    eprintln!("kill {kills} after {:.1} s", wait.as_secs_f64());
                }
                None => {
                    let status = child.wait().unwrap();
                    assert_eq!(status.code(), Some(0), "the last resume failed");
                    break;
                }
            }
        }
        finished += 1;
        let got = snapshot(dir.path());
        assert_same_database(
            &reference.db,
            &got,
            &format!("job {finished} (after {kills} kills in all, seed {seed})"),
        );
    }
}

#[test]
fn its_policies_fit_a_16_gb_card() {
    let output = run_in(
        Path::new(ROOT),
        &["plan", WORKFLOW, "--device", "cuda:0=16GiB"],
    );
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    for stage in ["vad", "asr", "voices", "embed"] {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(stage))
            .unwrap_or_else(|| panic!("no plan line for `{stage}`:\n{stdout}"));
        assert!(line.contains("cuda:0"), "`{stage}` not on the card: {line}");
    }
    let peak = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("cuda:0"))
        .unwrap();
    assert!(peak.contains("total  16.0 GiB"), "{peak}");
}
