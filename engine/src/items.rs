//! Items: the inputs a workflow processes (files, URLs, rows of a table).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::spec::InputsSpec;

pub use crate::rows::row_text;

/// One input of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// A stable id: the path relative to the workflow folder, or the URL.
    pub id: String,
    /// The absolute path or the URL.
    pub source: String,
    /// What identifies this version of the input: size and modification
    /// time for files, the URL itself for URLs. Part of every cache key.
    pub fingerprint: String,
    /// Why the item cannot be processed at all (a missing file), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For `inputs: { rows: … }`: where the row is in `source` (the table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<RowRef>,
}

/// Where one row of a table is: read its text with [`row_text`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowRef {
    /// Byte offset of the row (its line, or its CSV record) in the file.
    pub offset: u64,
    /// The field holding its text.
    pub field: String,
}

/// Why the inputs could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ItemsError {
    /// The glob pattern is malformed.
    #[error("`{pattern}` is not a valid glob: {reason}")]
    Glob {
        /// The pattern.
        pattern: String,
        /// The parser's reason.
        reason: String,
    },
    /// The table of `inputs: { rows: … }` could not be read.
    #[error("cannot read the rows of `{}`: {reason}", path.display())]
    Rows {
        /// The table.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The list file could not be read.
    #[error("cannot read the input list `{}`: {source}", path.display())]
    List {
        /// The list file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Hands the items of `inputs` (relative to `base`, the workflow folder)
/// to `each`, in order, until it returns `false`. Rows of a table are
/// streamed; files and list entries are few and listed first.
///
/// # Errors
/// An [`ItemsError`] when the glob, the table or the list file is unusable.
pub fn visit(
    inputs: &InputsSpec,
    base: &Path,
    each: &mut dyn FnMut(Item) -> bool,
) -> Result<(), ItemsError> {
    if let Some(rows) = &inputs.rows {
        return crate::rows::visit(rows, base, each);
    }
    if let (None, Some(list)) = (&inputs.files, &inputs.list) {
        return visit_list(&base.join(list), base, each);
    }
    for item in discover(inputs, base)? {
        if !each(item) {
            break;
        }
    }
    Ok(())
}

/// Streams the entries of a list file (one path or URL per line; blank
/// lines and `#` comments skipped), a line at a time.
fn visit_list(
    path: &Path,
    base: &Path,
    each: &mut dyn FnMut(Item) -> bool,
) -> Result<(), ItemsError> {
    use std::io::BufRead;
    let error = |source| ItemsError::List {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(error)?;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(error)?;
        let entry = line.trim();
        if entry.is_empty() || entry.starts_with('#') {
            continue;
        }
        if !each(item_for(entry, base)) {
            break;
        }
    }
    Ok(())
}

/// How many items `inputs` has, counted without holding them.
///
/// # Errors
/// As [`visit`].
pub fn count(inputs: &InputsSpec, base: &Path) -> Result<usize, ItemsError> {
    let mut n = 0;
    visit(inputs, base, &mut |_| {
        n += 1;
        true
    })?;
    Ok(n)
}

/// Lists the items of `inputs`, relative to `base` (the workflow folder).
///
/// # Errors
/// An [`ItemsError`] when the glob or the list file is unusable.
pub fn discover(inputs: &InputsSpec, base: &Path) -> Result<Vec<Item>, ItemsError> {
    if let Some(pattern) = &inputs.files {
        return glob_items(pattern, base);
    }
    if let Some(rows) = &inputs.rows {
        return crate::rows::discover(rows, base);
    }
    let lines: Vec<String> = if let Some(list) = &inputs.list {
        let path = base.join(list);
        let text = std::fs::read_to_string(&path).map_err(|source| ItemsError::List {
            path: path.clone(),
            source,
        })?;
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect()
    } else {
        inputs.items.clone().unwrap_or_default()
    };
    Ok(lines.iter().map(|entry| item_for(entry, base)).collect())
}

fn glob_items(pattern: &str, base: &Path) -> Result<Vec<Item>, ItemsError> {
    let full = if Path::new(pattern).is_absolute() {
        pattern.to_string()
    } else {
        base.join(pattern).to_string_lossy().into_owned()
    };
    let paths = glob::glob(&full).map_err(|e| ItemsError::Glob {
        pattern: pattern.to_string(),
        reason: e.msg.to_string(),
    })?;
    // Ids are relative to the pattern's literal folder: `media/*.wav` and
    // `../media/*.wav` both give `a.wav`.
    let literal: std::path::PathBuf = Path::new(&full)
        .components()
        .take_while(|c| !c.as_os_str().to_string_lossy().contains(['*', '?', '[']))
        .collect();
    let id_base = if literal.as_os_str() == full.as_str() {
        literal.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        literal
    };
    let mut items: Vec<Item> = paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .map(|p| file_item(&p, &id_base))
        .collect();
    items.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(items)
}

fn item_for(entry: &str, base: &Path) -> Item {
    if entry.contains("://") {
        return Item {
            id: entry.to_string(),
            source: entry.to_string(),
            fingerprint: format!("url:{entry}"),
            error: None,
            row: None,
        };
    }
    file_item(&base.join(entry), base)
}

fn file_item(path: &Path, base: &Path) -> Item {
    let id = path
        .strip_prefix(base)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    let (fingerprint, error) = match std::fs::metadata(path) {
        Ok(meta) => {
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            (format!("file:{}:{mtime}", meta.len()), None)
        }
        Err(e) => (
            "missing".to_string(),
            Some(format!("cannot read input `{}`: {e}", path.display())),
        ),
    };
    Item {
        id,
        source: path.to_string_lossy().into_owned(),
        fingerprint,
        error,
        row: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_relative_to_the_workflow_and_sorts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("media")).unwrap();
        for name in ["b.wav", "a.wav", "c.txt"] {
            std::fs::write(dir.path().join("media").join(name), name).unwrap();
        }
        let inputs = InputsSpec {
            files: Some("media/*.wav".into()),
            ..Default::default()
        };
        let items = discover(&inputs, dir.path()).unwrap();
        let ids: Vec<_> = items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["a.wav", "b.wav"]);
        assert!(items[0].fingerprint.starts_with("file:5:"));
    }

    #[test]
    fn list_files_stream_in_order_without_comments() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.wav"), "a").unwrap();
        let list = "# inputs\na.wav\n\n  https://example.invalid/x.mp3  \nb.wav\n";
        std::fs::write(dir.path().join("items.txt"), list).unwrap();
        let inputs = InputsSpec {
            list: Some("items.txt".into()),
            ..Default::default()
        };
        let mut seen = Vec::new();
        visit(&inputs, dir.path(), &mut |item| {
            seen.push(item);
            seen.len() < 2
        })
        .unwrap();
        let ids: Vec<_> = seen.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["a.wav", "https://example.invalid/x.mp3"]);
        assert_eq!(seen, discover(&inputs, dir.path()).unwrap()[..2]);
        assert_eq!(count(&inputs, dir.path()).unwrap(), 3);
    }

    #[test]
    fn missing_listed_files_carry_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let inputs = InputsSpec {
            items: Some(vec![
                "nope.wav".into(),
                "https://example.invalid/x.mp3".into(),
            ]),
            ..Default::default()
        };
        let items = discover(&inputs, dir.path()).unwrap();
        assert!(items[0]
            .error
            .as_deref()
            .unwrap()
            .contains("cannot read input"));
        assert!(items[1].error.is_none());
    }
}
