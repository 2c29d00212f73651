//! A run's items in sled, a page of [`PAGE`] per record.
//!
//! sled keeps a few dozen bytes of bookkeeping in memory for every page of
//! its B-tree (a leaf holds at most 16 records), evicted or not, so every
//! record a run writes per item is memory the run keeps. Paging the item
//! list takes it from one record per item to one per [`PAGE`] items.

use super::store::pair;
use crate::items::Item;

/// Items per record.
pub const PAGE: usize = 256;

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
        let _ = self
            .store
            .items
            .insert(pair(self.run, (first / PAGE) as u64), bytes);
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
    let end = start.saturating_add(len);
    if len == 0 {
        return Vec::new();
    }
    let pages = pair(run, (start / PAGE) as u64)..=pair(run, ((end - 1) / PAGE) as u64);
    let mut out = Vec::with_capacity(len.min(4 * PAGE));
    for entry in tree.range(pages) {
        let Some((key, page)) = entry.ok().and_then(|(k, v)| Some((k, decode(&v)?))) else {
            continue;
        };
        let first = page_index(&key) * PAGE;
        let from = start.saturating_sub(first);
        let to = (end - first).min(page.len());
        if from < to {
            out.extend(page.into_iter().take(to).skip(from));
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

fn page_index(key: &[u8]) -> usize {
    key.get(8..16)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes) as usize
}

fn decode(bytes: &[u8]) -> Option<Vec<Item>> {
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
