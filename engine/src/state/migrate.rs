//! Moves a state database written by an earlier `flow` to today's layout.
//!
//! Earlier layouts:
//! - `items` (one record per item), `results` (by cache key) and `latest`
//!   (stage and item → key): items are copied into item list files
//!   (`item_files`), results into `stage_results`, and all three dropped;
//! - `item_pages` (pages of 256 items by page number) and `item_lists`
//!   (pages of 16 by first item): copied into item list files, dropped.
//!
//! So finished results are still reused and an unfinished run can still be
//! resumed. Copying again after a crash halfway gives the same records.

use super::item_files::ItemWriter;
use super::records::ResultRecord;
use crate::items::Item;

/// Trees of the earlier layouts.
const OLD_ITEMS: &str = "items";
const OLD_RESULTS: &str = "results";
const OLD_LATEST: &str = "latest";
const OLD_PAGES: &str = "item_pages";
const OLD_LISTS: &str = "item_lists";
const OLD_TREES: [&str; 5] = [OLD_ITEMS, OLD_RESULTS, OLD_LATEST, OLD_PAGES, OLD_LISTS];

/// Migrates `store`'s database if it has trees of an earlier layout.
pub fn run(store: &super::Store) -> sled::Result<()> {
    let db = &store.db;
    let names = db.tree_names();
    let has = |name: &str| names.iter().any(|n| n.as_ref() == name.as_bytes());
    if !OLD_TREES.iter().any(|n| has(n)) {
        return Ok(());
    }
    for name in [OLD_ITEMS, OLD_PAGES, OLD_LISTS] {
        if has(name) {
            copy_items(store, &db.open_tree(name)?)?;
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
    for name in OLD_TREES {
        if has(name) {
            db.drop_tree(name)?;
        }
    }
    db.flush()?;
    Ok(())
}

/// Copies a tree keyed (run, position) — big-endian `u64`s, so in order —
/// whose values are an item or a page of items into a list file per run.
fn copy_items(store: &super::Store, tree: &sled::Tree) -> sled::Result<()> {
    let mut writer: Option<(u64, ItemWriter)> = None;
    for entry in tree.iter() {
        let (key, value) = entry?;
        let Some(run) = key.get(..8).and_then(|b| b.try_into().ok()) else {
            continue;
        };
        let run = u64::from_be_bytes(run);
        let items = match serde_json::from_slice::<Vec<Item>>(&value) {
            Ok(page) => page,
            Err(_) => match serde_json::from_slice::<Item>(&value) {
                Ok(item) => vec![item],
                Err(_) => continue,
            },
        };
        if writer.as_ref().is_none_or(|(r, _)| *r != run) {
            if let Some((_, done)) = writer.take() {
                done.finish()?;
            }
            writer = Some((run, store.item_writer(run)?));
        }
        if let Some((_, w)) = writer.as_mut() {
            items.into_iter().for_each(|item| w.push(item));
        }
    }
    if let Some((_, done)) = writer {
        done.finish()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::store::pair;
    use super::super::Store;
    use super::*;

    /// The database opened by sled alone, without a background flusher
    /// whose thread could still hold the file lock when `Store` opens it.
    /// The database itself, waiting as [`Store::open`] does for the lock
    /// a store dropped just before still holds.
    fn raw_db(dir: &std::path::Path) -> sled::Db {
        super::super::store::open_db(dir).unwrap()
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
    fn item_pages_and_lists_are_migrated_on_open() {
        const OLD_PAGE: usize = 256;
        let dir = tempfile::tempdir().unwrap();
        {
            let db = raw_db(dir.path());
            let pages = db.open_tree(OLD_PAGES).unwrap();
            let items: Vec<Item> = (0..600).map(item).collect();
            for (page, chunk) in items.chunks(OLD_PAGE).enumerate() {
                let value = serde_json::to_vec(chunk).unwrap();
                pages.insert(pair(7, page as u64), value).unwrap();
            }
            let lists = db.open_tree(OLD_LISTS).unwrap();
            for (page, chunk) in items.chunks(16).enumerate() {
                let value = serde_json::to_vec(chunk).unwrap();
                lists.insert(pair(8, page as u64 * 16), value).unwrap();
            }
            db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.items(7), (0..600).map(item).collect::<Vec<_>>());
        let across: Vec<Item> = (250..520).map(item).collect();
        assert_eq!(store.items_range(7, 250, 270), across);
        assert_eq!(store.item(7, 599), Some(item(599)));
        assert_eq!(store.item(7, 600), None);
        assert_eq!(store.items(8), (0..600).map(item).collect::<Vec<_>>());
        assert_eq!(
            store.items_range(8, 15, 3),
            vec![item(15), item(16), item(17)]
        );
        drop(store);
        let db = raw_db(dir.path());
        let names = db.tree_names();
        for old in [OLD_PAGES, OLD_LISTS] {
            assert!(!names.iter().any(|n| n.as_ref() == old.as_bytes()), "{old}");
        }
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
