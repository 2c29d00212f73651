//! Moves a state database written by an earlier `flow` to today's layout.
//!
//! Two earlier layouts:
//! - `items` (one record per item), `results` (by cache key) and `latest`
//!   (stage and item → key): the first two are copied into `item_lists`
//!   and `stage_results`, and all three dropped;
//! - `item_pages` (pages of 256 items by page number): copied into
//!   `item_lists` (by first item), then dropped.
//!
//! So finished results are still reused and an unfinished run can still be
//! resumed. Copying again after a crash halfway gives the same records.

use super::item_pages::{self, ItemWriter};
use super::records::ResultRecord;
use super::store::pair;
use crate::items::Item;

/// Trees of the earlier layout.
const OLD_ITEMS: &str = "items";
const OLD_RESULTS: &str = "results";
const OLD_LATEST: &str = "latest";
const OLD_PAGES: &str = "item_pages";
/// Items per record in [`OLD_PAGES`].
const OLD_PAGE: u64 = 256;

/// Migrates `store`'s database if it has trees of the earlier layout.
pub fn run(store: &super::Store) -> sled::Result<()> {
    let db = &store.db;
    let names = db.tree_names();
    let has = |name: &str| names.iter().any(|n| n.as_ref() == name.as_bytes());
    if ![OLD_ITEMS, OLD_RESULTS, OLD_LATEST, OLD_PAGES]
        .iter()
        .any(|n| has(n))
    {
        return Ok(());
    }
    if has(OLD_ITEMS) {
        let old = db.open_tree(OLD_ITEMS)?;
        let mut writer: Option<(u64, ItemWriter<'_>)> = None;
        for entry in old.iter() {
            let (key, value) = entry?;
            let Some(run) = key.get(..8).and_then(|b| b.try_into().ok()) else {
                continue;
            };
            let run = u64::from_be_bytes(run);
            let Ok(item) = serde_json::from_slice::<Item>(&value) else {
                continue;
            };
            if writer.as_ref().is_none_or(|(r, _)| *r != run) {
                if let Some((_, done)) = writer.take() {
                    done.finish();
                }
                writer = Some((run, ItemWriter::new(store, run)));
            }
            if let Some((_, w)) = writer.as_mut() {
                w.push(item);
            }
        }
        if let Some((_, done)) = writer {
            done.finish();
        }
    }
    if has(OLD_PAGES) {
        for entry in db.open_tree(OLD_PAGES)?.iter() {
            let (key, value) = entry?;
            // (run, page number), both big-endian `u64`.
            let number = |at: usize| {
                key.get(at..at + 8)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes)
            };
            let (Some(run), Some(page)) = (number(0), number(8)) else {
                continue;
            };
            if item_pages::decode(&value).is_some() {
                store.items.insert(pair(run, page * OLD_PAGE), value)?;
            }
        }
    }
    if has(OLD_RESULTS) {
        for entry in db.open_tree(OLD_RESULTS)?.iter() {
            let (_, value) = entry?;
            if let Ok(record) = serde_json::from_slice::<ResultRecord>(&value) {
                store.put_result(&record);
            }
        }
    }
    db.flush()?;
    for name in [OLD_ITEMS, OLD_RESULTS, OLD_LATEST, OLD_PAGES] {
        if has(name) {
            db.drop_tree(name)?;
        }
    }
    db.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::*;

    /// The database opened by sled alone, without a background flusher
    /// whose thread could still hold the file lock when `Store` opens it.
    fn raw_db(dir: &std::path::Path) -> sled::Db {
        sled::Config::new()
            .path(dir.join("db"))
            .flush_every_ms(None)
            .open()
            .unwrap()
    }

    fn item(i: usize) -> Item {
        Item {
            id: format!("clip-{i}.wav"),
            source: format!("/media/clip-{i}.wav"),
            fingerprint: "file:1:2".into(),
            error: None,
            row: None,
        }
    }

    fn record(key: &str, finished_at: u64) -> ResultRecord {
        ResultRecord {
            key: key.into(),
            stage: "asr".into(),
            item: "clip-1.wav".into(),
            run: 1,
            components: serde_json::json!({ "stage": "asr" }),
            outputs: Vec::new(),
            millis: 5,
            finished_at,
        }
    }

    #[test]
    fn item_pages_of_256_are_migrated_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = raw_db(dir.path());
            let pages = db.open_tree(OLD_PAGES).unwrap();
            let items: Vec<Item> = (0..600).map(item).collect();
            for (page, chunk) in items.chunks(OLD_PAGE as usize).enumerate() {
                let value = serde_json::to_vec(chunk).unwrap();
                pages.insert(pair(7, page as u64), value).unwrap();
            }
            db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.items(7), (0..600).map(item).collect::<Vec<_>>());
        let across: Vec<Item> = (250..520).map(item).collect();
        assert_eq!(store.items_range(7, 250, 270), across);
        assert_eq!(store.item(7, 599), Some(item(599)));
        assert_eq!(store.item(7, 600), None);
        drop(store);
        let db = raw_db(dir.path());
        assert!(!db
            .tree_names()
            .iter()
            .any(|n| n.as_ref() == OLD_PAGES.as_bytes()));
    }

    #[test]
    fn a_database_of_the_earlier_layout_is_migrated_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = raw_db(dir.path());
            let items = db.open_tree(OLD_ITEMS).unwrap();
            for run in [1u64, 2] {
                for i in 0..300 {
                    let value = serde_json::to_vec(&item(i)).unwrap();
                    items.insert(pair(run, i as u64), value).unwrap();
                }
            }
            let results = db.open_tree(OLD_RESULTS).unwrap();
            for (key, at) in [("aaa", 10), ("bbb", 20)] {
                let value = serde_json::to_vec(&record(key, at)).unwrap();
                results.insert(key, value).unwrap();
            }
            db.open_tree(OLD_LATEST)
                .unwrap()
                .insert("asr\0clip-1.wav", "bbb")
                .unwrap();
            db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.items(2), (0..300).map(item).collect::<Vec<_>>());
        assert_eq!(store.item(1, 299), Some(item(299)));
        let found = store.result("asr", "clip-1.wav", "aaa").unwrap();
        assert_eq!(found, record("aaa", 10));
        assert_eq!(store.latest_result("asr", "clip-1.wav").unwrap().key, "bbb");
        assert!(store.result("asr", "clip-2.wav", "aaa").is_none());
        drop(store);
        // The old trees are gone, and a second open changes nothing.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.items(1).len(), 300);
        drop(store);
        let db = raw_db(dir.path());
        let names = db.tree_names();
        for old in [OLD_ITEMS, OLD_RESULTS, OLD_LATEST] {
            assert!(!names.iter().any(|n| n.as_ref() == old.as_bytes()), "{old}");
        }
    }
}
