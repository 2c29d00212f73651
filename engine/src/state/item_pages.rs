//! A run's items in sled, a page of [`PAGE`] per record, keyed by (run,
//! index of the page's first item).
//!
//! Why pages, and why small ones: sled keeps bookkeeping in memory for
//! every page of its B-tree, evicted or not, so a record per item is memory
//! a run keeps; and its cache is an LRU of 256 shards (`lru.rs`), each of
//! which keeps at least the B-tree page it touched last whatever its size.
//! A leaf holds up to 16 records, so records of 256 items (~35 KB) made
//! leaves of ~0.5 MB, and a 200 000-item list (under 256 leaves) stayed in
//! memory whole. Records of 16 items make leaves of a shard's share of the
//! cache (`docs/benchmarks.md`, "Peak RSS").
//!
//! Readers find a page by its first item, so they do not depend on
//! [`PAGE`]: lists written with another page size read back the same.

use super::store::pair;
use crate::items::Item;

/// Items per record.
pub const PAGE: usize = 16;

/// Stores a run's items in order as they are pushed
/// ([`Store::item_writer`](super::Store::item_writer)), a page at a time.
///
/// Each page is its own insert: sled's `apply_batch` kept the nodes of
/// every batch it applied in memory (`docs/benchmarks.md`, "Peak RSS").
pub struct ItemWriter<'a> {
    store: &'a super::Store,
    run: u64,
    count: usize,
    page: Vec<Item>,
}

impl<'a> ItemWriter<'a> {
    pub(super) fn new(store: &'a super::Store, run: u64) -> Self {
        Self {
            store,
            run,
            count: 0,
            page: Vec::with_capacity(PAGE),
        }
    }

    /// Adds the next item.
    pub fn push(&mut self, item: Item) {
        self.page.push(item);
        self.count += 1;
        if self.page.len() == PAGE {
            self.write_page();
        }
    }

    /// How many items were pushed.
    pub fn count(&self) -> usize {
        self.count
    }

    fn write_page(&mut self) {
        if self.page.is_empty() {
            return;
        }
        let first = self.count - self.page.len();
        let bytes = serde_json::to_vec(&self.page).unwrap_or_default();
        let _ = self.store.items.insert(pair(self.run, first as u64), bytes);
        self.page.clear();
    }

    /// Writes the last page and makes every item durable; returns how many
    /// there are. A run's record is written after its items, so a crash
    /// halfway leaves no run to resume from a partial list.
    pub fn finish(mut self) -> usize {
        self.write_page();
        self.store.flush();
        self.count
    }
}

/// Up to `len` items of `run` from the `start`-th, in order.
pub fn range(tree: &sled::Tree, run: u64, start: usize, len: usize) -> Vec<Item> {
    if len == 0 {
        return Vec::new();
    }
    let end = start.saturating_add(len);
    // The page holding `start` is the last one that begins at or before it.
    let from = tree
        .range(pair(run, 0)..=pair(run, start as u64))
        .next_back()
        .and_then(Result::ok)
        .map_or(pair(run, start as u64), |(key, _)| {
            pair(run, first_index(&key) as u64)
        });
    let mut out = Vec::with_capacity(len.min(1_024));
    for entry in tree.range(from..pair(run, end as u64)) {
        let Some((key, page)) = entry.ok().and_then(|(k, v)| Some((k, decode(&v)?))) else {
            continue;
        };
        let first = first_index(&key);
        let skip = start.saturating_sub(first);
        let take = (end - first).min(page.len());
        if skip < take {
            out.extend(page.into_iter().take(take).skip(skip));
        }
    }
    out
}

/// Every item of `run`, in order.
pub fn all(tree: &sled::Tree, run: u64) -> Vec<Item> {
    tree.scan_prefix(run.to_be_bytes())
        .filter_map(|r| decode(&r.ok()?.1))
        .flatten()
        .collect()
}

/// The index of a page's first item, from its key.
fn first_index(key: &[u8]) -> usize {
    key.get(8..16)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes) as usize
}

pub(super) fn decode(bytes: &[u8]) -> Option<Vec<Item>> {
    serde_json::from_slice(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::*;

    fn item(i: usize) -> Item {
        Item {
            id: format!("row-{i}"),
            source: "rows.jsonl".into(),
            fingerprint: "f".into(),
            error: None,
            row: None,
        }
    }

    #[test]
    fn items_written_in_pages_read_back_in_any_range() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut writer = store.item_writer(3);
        for i in 0..4_500 {
            writer.push(item(i));
        }
        assert_eq!(writer.finish(), 4_500);
        let page = store.items_range(3, 1_999, 3);
        assert_eq!(page, vec![item(1_999), item(2_000), item(2_001)]);
        let across: Vec<Item> = (PAGE - 2..3 * PAGE + 5).map(item).collect();
        assert_eq!(store.items_range(3, PAGE - 2, 2 * PAGE + 7), across);
        assert_eq!(store.items_range(3, 4_499, 10), vec![item(4_499)]);
        assert!(store.items_range(3, 4_500, 10).is_empty());
        assert!(store.items_range(3, 7, 0).is_empty());
        assert_eq!(store.item(3, 4_000), Some(item(4_000)));
        assert_eq!(store.item(3, 4_500), None);
        assert_eq!(store.items(3), (0..4_500).map(item).collect::<Vec<_>>());
        // Another run's items are not mixed in.
        store.put_items(4, &[item(7)]);
        assert_eq!(store.items_range(3, 4_499, 10), vec![item(4_499)]);
        assert_eq!(store.items(4), vec![item(7)]);
        drop(store);
        // And they survive a reopen.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.items_range(3, 255, 2), vec![item(255), item(256)]);
    }
}
