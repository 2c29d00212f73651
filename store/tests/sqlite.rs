//! `sink.sqlite` on items built as the executor builds them, and the
//! search API over what it wrote.

mod common;

use common::{audio, chunks, embeddings, speakers, transcript, Sink};
use flow_engine::registry::Upstream;
use flow_store::sqlite::SqliteSinkKind;
use rusqlite::Connection;
use serde_json::json;

fn counts(db: &Connection) -> [i64; 4] {
    ["sources", "segments", "chunks", "embeddings"].map(|t| {
        db.query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))
            .unwrap()
    })
}

/// A talk: three segments with speakers, two chunks, a vector per chunk.
fn talk(sink: &Sink, name: &str) -> Vec<Upstream> {
    vec![
        audio(12.5),
        speakers(
            &[
                (0.0, 4.2, "Hello there.", Some("chaffee")),
                (4.2, 8.0, "Meat is the best food.", Some("chaffee")),
                (8.0, 12.0, "Really?", Some("SPEAKER_1")),
            ],
            "identified",
        ),
        chunks(&[
            (
                0.0,
                8.0,
                "Hello there. Meat is the best food.",
                &["chaffee"],
                &[0, 1],
            ),
            (8.0, 12.0, "Really?", &["SPEAKER_1"], &[2]),
        ]),
        embeddings(
            sink.dir.path(),
            name,
            "chunks",
            &[vec![1.0, 0.0, 0.0, 0.0], vec![0.0, 1.0, 0.0, 0.0]],
        ),
    ]
}

#[test]
fn rerunning_an_item_leaves_the_same_rows() {
    let config = json!({ "path": "out/talks.db" });
    let mut sink = Sink::new(&SqliteSinkKind, config.clone());
    let written = sink.ok("media/a.wav", talk(&sink, "a"));
    assert_eq!(written["segments"], 3);
    assert_eq!(written["embeddings"], 2);
    sink.ok("media/b.wav", talk(&sink, "b"));
    let db = Connection::open(sink.path("out/talks.db")).unwrap();
    assert_eq!(counts(&db), [2, 6, 4, 4]);

    // The same item again in this run, then in a new run (a resumed or
    // repeated `flow run`): the same rows, not more.
    sink.ok("media/a.wav", talk(&sink, "a"));
    sink.next_run(&SqliteSinkKind, config);
    sink.ok("media/a.wav", talk(&sink, "a"));
    sink.ok("media/b.wav", talk(&sink, "b"));
    sink.finish();
    assert_eq!(counts(&db), [2, 6, 4, 4]);

    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn rows_hold_what_the_stages_produced() {
    let sink = Sink::new(&SqliteSinkKind, json!({}));
    sink.ok("media/talk one.wav", talk(&sink, "a"));
    sink.finish();
    // Default path: out/<stage id>.db.
    let db = Connection::open(sink.path("out/sink.db")).unwrap();
    let source: (String, String, f64, String, String, i64) = db
        .query_row(
            "SELECT source, title, duration, status, speaker_mode, segment_count FROM sources WHERE item = 'media/talk one.wav'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .unwrap();
    assert_eq!(
        source,
        (
            "/data/media/talk one.wav".into(),
            "talk one".into(),
            12.5,
            "complete".into(),
            "identified".into(),
            3
        )
    );
    let seg: (f64, f64, String, String, f64, f64, f64, f64) = db
        .query_row(
            "SELECT start_s, end_s, text, speaker, speaker_confidence, avg_logprob, no_speech_prob, compression_ratio
             FROM segments WHERE segment = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)),
        )
        .unwrap();
    assert_eq!(
        seg,
        (
            4.2,
            8.0,
            "Meat is the best food.".into(),
            "chaffee".into(),
            0.9,
            -0.25,
            0.02,
            1.4
        )
    );
    let chunk: (String, String, String) = db
        .query_row(
            "SELECT text, speakers, segments FROM chunks WHERE chunk = 0",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        chunk,
        (
            "Hello there. Meat is the best food.".into(),
            r#"["chaffee"]"#.into(),
            "[0,1]".into()
        )
    );
    let (kind, model, dim, blob): (String, String, i64, Vec<u8>) = db
        .query_row(
            "SELECT kind, model, dim, vector FROM embeddings WHERE row_index = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    let vector: Vec<f32> = blob
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(
        (kind.as_str(), model.as_str(), dim),
        ("chunks", "minilm", 4)
    );
    assert_eq!(vector, [0.0, 1.0, 0.0, 0.0]);
}

#[test]
fn reprocessing_an_item_replaces_its_rows_only() {
    let sink = Sink::new(&SqliteSinkKind, json!({ "path": "db.sqlite" }));
    sink.ok("a.wav", talk(&sink, "a"));
    sink.ok("b.wav", talk(&sink, "b"));
    // `a.wav` changed: now a plain transcript of one segment, no chunks.
    sink.ok("a.wav", vec![transcript(&[(0.0, 3.0, "Shorter now.")])]);
    let db = Connection::open(sink.path("db.sqlite")).unwrap();
    assert_eq!(counts(&db), [2, 4, 2, 2]);
    let (text, speaker): (String, Option<String>) = db
        .query_row(
            "SELECT text, speaker FROM segments WHERE item = 'a.wav'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((text.as_str(), speaker), ("Shorter now.", None));
}

#[test]
fn degraded_and_missing_transcripts_are_recorded() {
    let sink = Sink::new(&SqliteSinkKind, json!({}));
    let degraded = speakers(&[(0.0, 2.0, "Hi.", None)], "degraded");
    sink.ok("x.wav", vec![audio(2.0), degraded]);
    // The transcription stage was given up (`fallback: skip`): only audio.
    let written = sink.ok("y.wav", vec![audio(3.0)]);
    assert_eq!(written["status"], "no_transcript");
    let db = Connection::open(sink.path("out/sink.db")).unwrap();
    let rows: Vec<(String, String, Option<String>, f64)> = db
        .prepare("SELECT item, status, reason, duration FROM sources ORDER BY item")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        [
            (
                "x.wav".into(),
                "degraded".into(),
                Some("no voice profile `chaffee`".into()),
                2.0
            ),
            ("y.wav".into(), "no_transcript".into(), None, 3.0),
        ]
    );
}

#[test]
fn vectors_that_do_not_match_the_chunks_fail_the_item() {
    let sink = Sink::new(&SqliteSinkKind, json!({}));
    let mut up = talk(&sink, "a");
    up[3] = embeddings(sink.dir.path(), "one", "chunks", &[vec![1.0, 0.0]]);
    let error = sink.run("a.wav", up).unwrap_err();
    assert!(
        error
            .message
            .contains("1 rows of chunks but the item has 2 chunks"),
        "{}",
        error.message
    );
}

#[test]
fn items_written_from_several_threads_are_all_stored() {
    let sink = Sink::new(&SqliteSinkKind, json!({}));
    std::thread::scope(|s| {
        for t in 0..4 {
            let sink = &sink;
            s.spawn(move || {
                for i in 0..3 {
                    let name = format!("t{t}-{i}");
                    sink.ok(&format!("{name}.wav"), talk(sink, &name));
                }
            });
        }
    });
    let db = Connection::open(sink.path("out/sink.db")).unwrap();
    assert_eq!(counts(&db), [12, 36, 24, 24]);
}

#[test]
fn nearest_ranks_chunks_and_segments_by_cosine() {
    let sink = Sink::new(&SqliteSinkKind, json!({}));
    sink.ok("a.wav", talk(&sink, "a"));
    // `b.wav` embeds its segments (no chunks).
    let b = vec![
        transcript(&[(0.0, 2.0, "Fish is fine."), (2.0, 5.0, "Plants are not.")]),
        embeddings(
            sink.dir.path(),
            "b",
            "segments",
            &[vec![0.6, 0.8, 0.0, 0.0], vec![0.0, 0.0, 0.0, 2.0]],
        ),
    ];
    sink.ok("b.wav", b);
    sink.finish();

    let index = flow_store::open(&sink.path("out/sink.db")).unwrap();
    assert_eq!(index.embedding_count().unwrap(), 4);
    let hits = index.nearest(&[0.0, 2.0, 0.0, 0.1], 3).unwrap();
    let order: Vec<(&str, &str, i64)> = hits
        .iter()
        .map(|h| (h.item.as_str(), h.kind.as_str(), h.index))
        .collect();
    assert_eq!(
        order,
        [
            ("a.wav", "chunks", 1),
            ("b.wav", "segments", 0),
            ("b.wav", "segments", 1)
        ]
    );
    let best = &hits[0];
    assert_eq!(
        (
            best.start,
            best.end,
            best.speaker.as_deref(),
            best.text.as_str()
        ),
        (8.0, 12.0, Some("SPEAKER_1"), "Really?")
    );
    assert!((best.score - 0.99875).abs() < 1e-4, "{}", best.score);
    assert_eq!(hits[1].text, "Fish is fine.");
    assert_eq!(hits[1].speaker, None);
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));

    assert_eq!(index.nearest(&[1.0, 0.0, 0.0, 0.0], 10).unwrap().len(), 4);
    let error = index.nearest(&[1.0, 0.0], 3).unwrap_err().to_string();
    assert!(
        error.contains("4 dimensions but the query has 2"),
        "{error}"
    );
    let missing = flow_store::open(&sink.path("out/none.db")).err().unwrap();
    assert!(matches!(missing, flow_store::StoreError::Missing(_)));
}

#[test]
fn rows_of_a_table_are_stored_as_one_chunk_each() {
    let sink = Sink::new(&SqliteSinkKind, json!({}));
    let table = sink.path("corpus.jsonl");
    let second = "{\"key\": \"k2\", \"body\": \"Ketones rise during a fast.\"}\n";
    let first = "{\"key\": \"k1\", \"body\": \"Red meat has iron.\"}\n";
    std::fs::write(&table, format!("{first}{second}")).unwrap();
    let row = flow_engine::items::Item {
        id: "k2".into(),
        source: table.display().to_string(),
        fingerprint: "row:1".into(),
        error: None,
        row: Some(flow_engine::items::RowRef {
            offset: first.len() as u64,
            field: "body".into(),
        }),
    };
    let vectors = embeddings(sink.dir.path(), "k2", "rows", &[vec![0.5, 0.5]]);
    let out = sink.run_item(row, vec![vectors]).unwrap();
    assert_eq!(out.outputs[0].value.as_ref().unwrap()["status"], "complete");
    sink.finish();
    let hits = flow_store::open(&sink.path("out/sink.db"))
        .unwrap()
        .nearest(&[1.0, 1.0], 1)
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(
        (hits[0].item.as_str(), hits[0].text.as_str()),
        ("k2", "Ketones rise during a fast.")
    );
    assert!((hits[0].score - 1.0).abs() < 1e-6);
}
