//! A YAML tree that remembers where every key and value came from.
//!
//! serde_yaml reports at most one error and loses positions once a value is
//! deserialized, so flow first reads the file into this tree (with yaml-rust2's
//! marked events), collects every problem it can find with exact spans, and
//! only then deserializes the typed spec from it through `serde_yaml::Value`.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A byte range in one of the texts a workflow was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Which text: 0 is the workflow file, `k` is the `k`-th `--set` override.
    pub source: usize,
    /// Byte offset of the first character.
    pub offset: usize,
    /// Length in bytes (at least 1 where the text allows).
    pub len: usize,
}

/// A YAML value with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where it was written.
    pub span: Span,
}

/// The value of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// Any other scalar.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order, duplicates kept (validation reports them).
    Map(Vec<(Node, Node)>),
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    /// What the parser said.
    pub message: String,
    /// Where.
    pub span: Span,
}

impl Node {
    /// The scalar text of a string key or value.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The entries of a mapping.
    pub fn entries(&self) -> &[(Node, Node)] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    /// The value under `key` in a mapping (the first, if repeated).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The key node and value node under `key`.
    pub fn entry(&self, key: &str) -> Option<&(Node, Node)> {
        self.entries().iter().find(|(k, _)| k.as_str() == Some(key))
    }

    /// Mutable access to the value under `key`.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match &mut self.value {
            Value::Map(entries) => entries
                .iter_mut()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Converts to a `serde_yaml::Value`; with repeated keys the first wins.
    pub fn to_serde(&self) -> serde_yaml::Value {
        use serde_yaml::Value as Y;
        match &self.value {
            Value::Null => Y::Null,
            Value::Bool(b) => Y::Bool(*b),
            Value::Int(i) => Y::Number((*i).into()),
            Value::Float(f) => Y::Number((*f).into()),
            Value::Str(s) => Y::String(s.clone()),
            Value::Seq(items) => Y::Sequence(items.iter().map(Node::to_serde).collect()),
            Value::Map(entries) => {
                let mut map = serde_yaml::Mapping::new();
                for (k, v) in entries {
                    let key = k.to_serde();
                    if !map.contains_key(&key) {
                        map.insert(key, v.to_serde());
                    }
                }
                Y::Mapping(map)
            }
        }
    }
}

/// Parses YAML text into a [`Node`] tree. An empty document is `Null`.
///
/// # Errors
/// A [`SyntaxError`] pointing at the offending position.
pub fn parse(text: &str, source: usize) -> Result<Node, SyntaxError> {
    let offsets = CharOffsets::new(text);
    let mut builder = Builder {
        text,
        offsets: &offsets,
        source,
        stack: Vec::new(),
        anchors: HashMap::new(),
        root: None,
    };
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, false).map_err(|e| SyntaxError {
        message: e.info().to_string(),
        span: Span {
            source,
            offset: offsets.byte(e.marker().index()),
            len: 1,
        },
    })?;
    Ok(builder.root.unwrap_or(Node {
        value: Value::Null,
        span: Span {
            source,
            offset: 0,
            len: 0,
        },
    }))
}

/// Turns yaml-rust2's character indices into byte offsets.
struct CharOffsets {
    bytes: Option<Vec<usize>>,
    len: usize,
}

impl CharOffsets {
    fn new(text: &str) -> Self {
        let bytes = (!text.is_ascii()).then(|| text.char_indices().map(|(b, _)| b).collect());
        Self {
            bytes,
            len: text.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        match &self.bytes {
            None => char_index.min(self.len),
            Some(v) => v.get(char_index).copied().unwrap_or(self.len),
        }
    }
}

enum Frame {
    Seq(Vec<Node>, usize, usize),
    Map(Vec<(Node, Node)>, Option<Node>, usize, usize),
}

struct Builder<'a> {
    text: &'a str,
    offsets: &'a CharOffsets,
    source: usize,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
}

impl Builder<'_> {
    fn span(&self, start: usize, end: usize) -> Span {
        Span {
            source: self.source,
            offset: start,
            len: end
                .saturating_sub(start)
                .max(1)
                .min(self.text.len().saturating_sub(start)),
        }
    }

    fn push(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            Some(Frame::Seq(items, _, _)) => items.push(node),
            Some(Frame::Map(entries, pending, _, _)) => match pending.take() {
                Some(key) => entries.push((key, node)),
                None => *pending = Some(node),
            },
            None => self.root = Some(node),
        }
    }

    /// The length in bytes of a scalar as written, quotes included.
    fn scalar_len(&self, start: usize, value: &str, style: TScalarStyle) -> usize {
        match style {
            TScalarStyle::Plain => value.len(),
            TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => {
                let quote = if style == TScalarStyle::SingleQuoted {
                    '\''
                } else {
                    '"'
                };
                self.text[start..]
                    .char_indices()
                    .skip(1)
                    .find(|(_, c)| *c == quote)
                    .map_or(value.len() + 2, |(i, _)| i + 1)
            }
            _ => value.len().max(1),
        }
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let start = self.offsets.byte(mark.index());
        match event {
            Event::Scalar(text, style, anchor, _) => {
                let len = self.scalar_len(start, &text, style);
                let value = if style == TScalarStyle::Plain {
                    resolve_plain(text)
                } else {
                    Value::Str(text)
                };
                let span = self.span(start, start + len);
                self.push(Node { value, span }, anchor);
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().unwrap_or(Node {
                    value: Value::Null,
                    span: self.span(start, start + 1),
                });
                self.push(node, 0);
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq(Vec::new(), start, anchor))
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map(Vec::new(), None, start, anchor))
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, begin, anchor) = match self.stack.pop() {
                    Some(Frame::Seq(items, begin, anchor)) => (Value::Seq(items), begin, anchor),
                    Some(Frame::Map(entries, _, begin, anchor)) => {
                        (Value::Map(entries), begin, anchor)
                    }
                    None => return,
                };
                let span = self.span(begin, start.max(begin + 1));
                self.push(Node { value, span }, anchor);
            }
            _ => {}
        }
    }
}

/// Resolves a plain scalar by the YAML 1.2 core schema.
fn resolve_plain(text: String) -> Value {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" => return Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let digits = text.trim_start_matches(['-', '+']);
    if digits.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        if let Ok(i) = text.parse::<i64>() {
            return Value::Int(i);
        }
        if let Some(hex) = text.strip_prefix("0x") {
            if let Ok(i) = i64::from_str_radix(hex, 16) {
                return Value::Int(i);
            }
        }
        let is_float = digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'));
        if is_float {
            if let Ok(f) = text.parse::<f64>() {
                return Value::Float(f);
            }
        }
    }
    Value::Str(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_spans_of_keys_and_values() {
        let text = "name: demo\nstages:\n  a: { uses: exec }\n";
        let root = parse(text, 0).unwrap();
        let (key, value) = root.entry("name").unwrap();
        assert_eq!(&text[key.span.offset..][..key.span.len], "name");
        assert_eq!(&text[value.span.offset..][..value.span.len], "demo");
        let uses = root
            .get("stages")
            .unwrap()
            .get("a")
            .unwrap()
            .get("uses")
            .unwrap();
        assert_eq!(&text[uses.span.offset..][..uses.span.len], "exec");
    }

    #[test]
    fn resolves_scalars_like_yaml_1_2() {
        let root = parse("a: 1\nb: 1.5\nc: yes\nd: ~\ne: '1'\nf: 12GiB", 0).unwrap();
        assert_eq!(root.get("a").unwrap().value, Value::Int(1));
        assert_eq!(root.get("b").unwrap().value, Value::Float(1.5));
        assert_eq!(root.get("c").unwrap().value, Value::Str("yes".into()));
        assert_eq!(root.get("d").unwrap().value, Value::Null);
        assert_eq!(root.get("e").unwrap().value, Value::Str("1".into()));
        assert_eq!(root.get("f").unwrap().value, Value::Str("12GiB".into()));
    }

    #[test]
    fn keeps_duplicate_keys_for_validation() {
        let root = parse("a: 1\na: 2\n", 0).unwrap();
        assert_eq!(root.entries().len(), 2);
    }

    #[test]
    fn reports_syntax_errors_with_a_position() {
        let err = parse("a: [1, 2\nb: 3\n", 0).unwrap_err();
        assert!(err.span.offset > 0);
    }

    #[test]
    fn handles_unicode_offsets() {
        let text = "description: \"héllo wörld\"\nname: x\n";
        let root = parse(text, 0).unwrap();
        let name = root.get("name").unwrap();
        assert_eq!(&text[name.span.offset..][..name.span.len], "x");
    }
}
