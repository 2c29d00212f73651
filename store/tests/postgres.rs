//! `sink.postgres` against a throwaway PostgreSQL cluster (see
//! `common/pg.rs`; the test fails, it does not skip, when PostgreSQL's
//! server programs are missing).

mod common;

use common::pg::Cluster;
use common::{audio, chunks, embeddings, speakers, Sink};
use flow_engine::registry::Upstream;
use flow_engine::StageKind;
use flow_store::postgres::PostgresSinkKind;
use serde_json::json;

fn talk(sink: &Sink, name: &str) -> Vec<Upstream> {
    vec![
        audio(9.0),
        speakers(
            &[
                (0.0, 4.0, "Hello there.", Some("chaffee")),
                (4.0, 9.0, "It's all meat.", None),
            ],
            "identified",
        ),
        chunks(&[(
            0.0,
            9.0,
            "Hello there. It's all meat.",
            &["chaffee"],
            &[0, 1],
        )]),
        embeddings(sink.dir.path(), name, "chunks", &[vec![0.25, -1.5, 3.0]]),
    ]
}

fn counts(pg: &Cluster, schema: &str) -> Vec<String> {
    ["sources", "segments", "chunks", "embeddings"]
        .iter()
        .map(|t| pg.value(&format!("SELECT COUNT(*) FROM {schema}.{t}")))
        .collect()
}

/// The SQL type of `SCHEMA.embeddings.vector`, as `format_type` writes it.
fn vector_column(pg: &Cluster, schema: &str) -> String {
    pg.value(&format!(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
         WHERE attrelid = '{schema}.embeddings'::regclass AND attname = 'vector'"
    ))
}

#[test]
fn items_are_upserted_with_real_array_vectors() {
    let pg = Cluster::start();
    std::env::set_var("FLOW_TEST_PG_ARRAY", &pg.url);
    let config =
        json!({ "url_env": "FLOW_TEST_PG_ARRAY", "schema": "talks", "vectors": "real_array" });
    let mut sink = Sink::new(&PostgresSinkKind, config.clone());
    let written = sink.ok("a.wav", talk(&sink, "a"));
    assert_eq!(written["vectors"], "real[]");
    sink.ok("b.wav", talk(&sink, "b"));
    assert_eq!(counts(&pg, "talks"), ["2", "4", "2", "2"]);

    // Again, in this run and in the next: no duplicates.
    sink.ok("a.wav", talk(&sink, "a"));
    sink.next_run(&PostgresSinkKind, config);
    sink.ok("a.wav", talk(&sink, "a"));
    sink.finish();
    assert_eq!(counts(&pg, "talks"), ["2", "4", "2", "2"]);

    let rows = pg.query(
        "SELECT s.title, s.duration, s.status, g.text, g.speaker, g.avg_logprob
         FROM talks.sources s JOIN talks.segments g USING (item)
         WHERE item = 'a.wav' ORDER BY g.segment",
    );
    assert_eq!(
        rows,
        [
            ["a", "9", "complete", "Hello there.", "chaffee", "-0.25"],
            ["a", "9", "complete", "It's all meat.", "", "-0.25"],
        ]
    );
    assert_eq!(
        pg.query("SELECT speakers, segments FROM talks.chunks WHERE item = 'b.wav'"),
        [["{chaffee}", "{0,1}"]]
    );
    assert_eq!(vector_column(&pg, "talks"), "real[]");
    assert_eq!(
        pg.query("SELECT kind, dim, vector FROM talks.embeddings WHERE item = 'a.wav'"),
        [["chunks", "3", "{0.25,-1.5,3}"]]
    );
}

#[test]
fn vectors_use_pgvector_when_the_server_has_it() {
    let pg = Cluster::start();
    std::env::set_var("FLOW_TEST_PG_VECTOR", &pg.url);
    let available = pg.value("SELECT COUNT(*) FROM pg_available_extensions WHERE name = 'vector'");
    assert_eq!(
        available, "1",
        "pgvector is not installed for this PostgreSQL: `bash scripts/setup.sh` builds it from third_party/pgvector"
    );
    // `vectors: auto`, the default, enables the extension and uses it.
    let sink = Sink::new(
        &PostgresSinkKind,
        json!({ "url_env": "FLOW_TEST_PG_VECTOR" }),
    );
    let written = sink.ok("a.wav", talk(&sink, "a"));
    assert_eq!(written["vectors"], "vector");
    sink.ok("a.wav", talk(&sink, "a"));
    assert_eq!(counts(&pg, "public"), ["1", "2", "1", "1"]);
    assert_eq!(vector_column(&pg, "public"), "vector(3)");
    assert_eq!(
        pg.value("SELECT vector::text FROM embeddings"),
        "[0.25,-1.5,3]"
    );
    // pgvector's distance operator works on the stored column.
    assert_eq!(
        pg.value("SELECT (vector <=> '[0.25,-1.5,3]')::text FROM embeddings"),
        "0"
    );
}

#[test]
fn the_connection_string_never_shows_in_messages() {
    // Nothing listens there, so connecting fails; the message must not
    // carry the password or the URL.
    let url = "postgresql://flow:s3cret-pw@127.0.0.1:9/db?connect_timeout=2";
    std::env::set_var("FLOW_TEST_PG_SECRET", url);
    let sink = Sink::new(
        &PostgresSinkKind,
        json!({ "url_env": "FLOW_TEST_PG_SECRET" }),
    );
    let error = sink.run("a.wav", talk(&sink, "a")).unwrap_err();
    assert!(
        error.message.contains("cannot connect to PostgreSQL"),
        "{}",
        error.message
    );
    assert!(!error.message.contains("s3cret-pw"), "{}", error.message);

    // A variable that is not set stops the run before it starts.
    let spec: flow_engine::spec::StageSpec =
        serde_json::from_value(json!({ "uses": "sink.postgres" })).unwrap();
    let ctx = flow_engine::registry::BuildContext {
        stage_id: "pg",
        spec: &spec,
        workflow_dir: std::path::Path::new("."),
        state_dir: std::path::Path::new(".flow"),
        model_dir: None,
    };
    let built = PostgresSinkKind.build(&ctx, &json!({ "url_env": "FLOW_TEST_PG_UNSET" }));
    let error = built.err().unwrap();
    assert!(error.contains("`FLOW_TEST_PG_UNSET` is not set"), "{error}");
    let problems = PostgresSinkKind.check(&json!({ "schema": "a;drop" }));
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].path, ["schema"]);
}
