//! `inputs: { rows: … }`: every row of a JSON Lines or CSV table is an
//! item. Items keep only the row's byte offset; stages read the text when
//! they run ([`row_text`]), so a corpus is never held in memory.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::items::{Item, ItemsError, RowRef};
use crate::spec::RowsSpec;

fn is_csv(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

fn fingerprint(bytes: &[u8]) -> String {
    let hash = blake3::hash(bytes);
    format!("row:{}", &hash.to_hex()[..16])
}

fn id_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Lists the rows of `spec.file` (relative to `base`) as items.
///
/// # Errors
/// As [`visit`].
pub fn discover(spec: &RowsSpec, base: &Path) -> Result<Vec<Item>, ItemsError> {
    let mut items = Vec::new();
    visit(spec, base, &mut |item| {
        items.push(item);
        true
    })?;
    Ok(items)
}

/// Hands the rows of `spec.file` (relative to `base`) to `each` as items,
/// in order, one at a time, until it returns `false`: a table of millions
/// of rows is listed without holding its items.
///
/// # Errors
/// [`ItemsError::Rows`] when the file cannot be read or a CSV header lacks
/// the text column. A malformed JSONL line becomes an item that fails with
/// the reason; the other rows go on.
pub fn visit(
    spec: &RowsSpec,
    base: &Path,
    each: &mut dyn FnMut(Item) -> bool,
) -> Result<(), ItemsError> {
    let path = base.join(&spec.file);
    let err = |reason: String| ItemsError::Rows {
        path: path.clone(),
        reason,
    };
    let file = File::open(&path).map_err(|e| err(e.to_string()))?;
    let source = path.to_string_lossy().into_owned();
    if is_csv(&path) {
        return visit_csv(spec, file, &source, each).map_err(err);
    }
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    let mut offset = 0u64;
    let mut number = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| err(e.to_string()))?;
        if n == 0 {
            break;
        }
        number += 1;
        let at = offset;
        offset += n as u64;
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let (id, error) = match serde_json::from_str::<serde_json::Value>(trimmed) {
            Ok(v) if v[&spec.text].is_string() => (
                id_text(&v[&spec.id]).unwrap_or_else(|| number.to_string()),
                None,
            ),
            Ok(v) => (
                id_text(&v[&spec.id]).unwrap_or_else(|| number.to_string()),
                Some(format!("line {number} has no string field `{}`", spec.text)),
            ),
            Err(e) => (
                number.to_string(),
                Some(format!("line {number} is not a JSON object: {e}")),
            ),
        };
        let go_on = each(Item {
            id,
            source: source.clone(),
            fingerprint: fingerprint(trimmed.as_bytes()),
            error,
            row: Some(RowRef {
                offset: at,
                field: spec.text.clone(),
            }),
        });
        if !go_on {
            break;
        }
    }
    Ok(())
}

fn visit_csv(
    spec: &RowsSpec,
    file: File,
    source: &str,
    each: &mut dyn FnMut(Item) -> bool,
) -> Result<(), String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(BufReader::new(file));
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let column = |name: &str| headers.iter().position(|h| h.trim() == name);
    let text = column(&spec.text).ok_or_else(|| {
        format!(
            "the header has no column `{}` (columns: {})",
            spec.text,
            headers.iter().collect::<Vec<_>>().join(", ")
        )
    })?;
    let id = column(&spec.id);
    let mut record = csv::ByteRecord::new();
    let mut number = 0u64;
    loop {
        let at = reader.position().byte();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(e.to_string()),
        }
        number += 1;
        let row_id = id
            .and_then(|i| record.get(i))
            .map(|b| String::from_utf8_lossy(b).trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| number.to_string());
        let error = match record.get(text) {
            Some(_) => None,
            None => Some(format!("record {number} has no column `{}`", spec.text)),
        };
        let go_on = each(Item {
            id: row_id,
            source: source.to_string(),
            fingerprint: fingerprint(record.as_slice()),
            error,
            row: Some(RowRef {
                offset: at,
                field: spec.text.clone(),
            }),
        });
        if !go_on {
            break;
        }
    }
    Ok(())
}

/// The text of a row item, read from its table.
///
/// # Errors
/// A message: the item is not a row, or the file changed under the run.
pub fn row_text(item: &Item) -> Result<String, String> {
    let row = item
        .row
        .as_ref()
        .ok_or_else(|| format!("item `{}` is not a row of a table", item.id))?;
    let path = Path::new(&item.source);
    let mut file = File::open(path).map_err(|e| format!("cannot read `{}`: {e}", item.source))?;
    if is_csv(path) {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(BufReader::new(&mut file));
        let headers = reader.headers().map_err(|e| e.to_string())?.clone();
        let column = headers
            .iter()
            .position(|h| h.trim() == row.field)
            .ok_or_else(|| format!("`{}` has no column `{}`", item.source, row.field))?;
        drop(reader);
        file.seek(SeekFrom::Start(row.offset))
            .map_err(|e| e.to_string())?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(BufReader::new(file));
        let mut record = csv::StringRecord::new();
        reader
            .read_record(&mut record)
            .map_err(|e| format!("`{}`: {e}", item.source))?;
        return record
            .get(column)
            .map(String::from)
            .ok_or_else(|| format!("row `{}` has no column `{}`", item.id, row.field));
    }
    file.seek(SeekFrom::Start(row.offset))
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(file.take(64 << 20))
        .read_line(&mut line)
        .map_err(|e| format!("`{}`: {e}", item.source))?;
    let v: serde_json::Value = serde_json::from_str(line.trim()).map_err(|e| {
        format!(
            "row `{}` of `{}` changed since the run started: {e}",
            item.id, item.source
        )
    })?;
    v[&row.field]
        .as_str()
        .map(String::from)
        .ok_or_else(|| format!("row `{}` has no string field `{}`", item.id, row.field))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(file: &str) -> RowsSpec {
        RowsSpec {
            file: file.into(),
            text: "text".into(),
            id: "id".into(),
        }
    }

    #[test]
    fn jsonl_rows_are_items_that_read_back_their_text() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("c.jsonl"),
            "{\"id\": \"a\", \"text\": \"Fat is fuel.\"}\n\n{\"text\": \"Ünïcode ✓\", \"id\": 7}\nnot json\n{\"id\": \"x\"}\n{\"text\": \"no id\"}\n",
        )
        .unwrap();
        let items = discover(&spec("c.jsonl"), dir.path()).unwrap();
        let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["a", "7", "4", "x", "6"]);
        assert_eq!(row_text(&items[0]).unwrap(), "Fat is fuel.");
        assert_eq!(row_text(&items[1]).unwrap(), "Ünïcode ✓");
        assert_eq!(row_text(&items[4]).unwrap(), "no id");
        assert!(items[2]
            .error
            .as_deref()
            .unwrap()
            .contains("line 4 is not a JSON object"));
        assert!(items[3]
            .error
            .as_deref()
            .unwrap()
            .contains("no string field `text`"));
        assert_ne!(items[0].fingerprint, items[1].fingerprint);
    }

    #[test]
    fn csv_rows_with_quotes_and_newlines_read_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("c.csv"),
            "id,text\n1,plain\n2,\"with, comma and \"\"quotes\"\"\"\n3,\"two\nlines\"\n",
        )
        .unwrap();
        let items = discover(&spec("c.csv"), dir.path()).unwrap();
        let texts: Vec<String> = items.iter().map(|i| row_text(i).unwrap()).collect();
        assert_eq!(texts, ["plain", "with, comma and \"quotes\"", "two\nlines"]);
        assert_eq!(items[2].id, "3");
        let missing = RowsSpec {
            text: "body".into(),
            ..spec("c.csv")
        };
        let err = discover(&missing, dir.path()).unwrap_err().to_string();
        assert!(err.contains("no column `body`"), "{err}");
    }
}
