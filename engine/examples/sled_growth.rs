//! Peak RSS of sled alone, writing the state records of `ROWS` rows the
//! way the store once did: per row an item record, and for each of two
//! stages a result (random hash key), a state and a `latest` entry; a
//! flush every 2 000 rows; an 8 MiB cache. With `batched`, the items go in
//! first through `apply_batch` in batches of 2 000 (as the item list once
//! did), with `inserted` one by one.
//!
//! `cargo run --release -p flow-engine --example sled_growth -- ROWS batched|inserted`
//!
//! The numbers in `docs/benchmarks.md` ("Peak RSS") come from it.

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_string();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn row_key(i: u64) -> [u8; 16] {
    let mut key = [0; 16];
    key[..8].copy_from_slice(&1u64.to_be_bytes());
    key[8..].copy_from_slice(&i.to_be_bytes());
    key
}

fn main() -> sled::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rows: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let batched = args.get(1).is_some_and(|a| a == "batched");
    let dir = tempfile::tempdir()?;
    let db = sled::Config::new()
        .path(dir.path())
        .flush_every_ms(None)
        .cache_capacity(8 << 20)
        .open()?;
    let (items, states) = (db.open_tree("items")?, db.open_tree("item_stages")?);
    let (results, latest) = (db.open_tree("results")?, db.open_tree("latest")?);
    let (item, state, result) = (vec![b'i'; 150], vec![b's'; 90], vec![b'r'; 900]);
    if batched {
        let mut batch = sled::Batch::default();
        for i in 0..rows {
            batch.insert(&row_key(i)[..], item.clone());
            if i % 2_000 == 1_999 {
                items.apply_batch(std::mem::take(&mut batch))?;
            }
        }
        items.apply_batch(batch)?;
        db.flush()?;
    }
    for i in 0..rows {
        let key = row_key(i);
        if !batched {
            items.insert(key, item.clone())?;
        }
        for stage in 0..2u32 {
            let hash = blake3::hash(&[&key[..], &stage.to_be_bytes()].concat()).to_hex();
            results.insert(hash.as_bytes(), result.clone())?;
            states.insert([&key[..], &stage.to_be_bytes()].concat(), state.clone())?;
            latest.insert(format!("stage{stage}\0row-{i}"), hash.as_bytes())?;
        }
        if i % 2_000 == 0 {
            db.flush()?;
        }
    }
    db.flush()?;
    let how = if batched { "batched" } else { "inserted" };
    println!(
        "{rows} rows, items {how}: peak RSS {:.0} MiB",
        peak_rss_mib()
    );
    Ok(())
}
