//! Argument templates of the `exec` kind: `{item}`, `{input}`,
//! `{input.PORT}`, `{out}`; `{{` and `}}` for literal braces.

use std::path::PathBuf;

/// A piece of an argument template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text.
    Text(String),
    /// `{item}`: the item id.
    Item,
    /// `{input}`: the item's path or URL.
    Input,
    /// `{input.NAME}`: files of an upstream stage (by id) or port type.
    Upstream(String),
    /// `{out}`: the output folder.
    Out,
}

/// Parses one argument.
///
/// # Errors
/// A message naming the bad placeholder.
pub fn parse(arg: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = arg.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(match name.as_str() {
                    "item" => Piece::Item,
                    "input" => Piece::Input,
                    "out" => Piece::Out,
                    other => match other.strip_prefix("input.") {
                        Some(port) if !port.is_empty() => Piece::Upstream(port.to_string()),
                        _ => {
                            return Err(format!(
                                "unknown placeholder `{{{name}}}` in `{arg}`: use {{item}}, {{input}}, {{input.PORT}} or {{out}} (write `{{{{` for a literal brace)"
                            ))
                        }
                    },
                });
            }
            '}' => {
                return Err(format!(
                    "unmatched `}}` in `{arg}`: write `}}}}` for a literal brace"
                ))
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// What placeholders expand to for one item.
pub struct Values<'a> {
    /// The item id.
    pub item: &'a str,
    /// The item's path or URL.
    pub input: &'a str,
    /// The output folder.
    pub out: &'a str,
    /// Files of an upstream stage id or port type.
    pub upstream: &'a dyn Fn(&str) -> Vec<PathBuf>,
}

/// Expands an argument. An argument that is exactly `{input.PORT}` becomes
/// one argument per file; inside other text it must name exactly one file.
///
/// # Errors
/// A message when an upstream port has no file, or several inside text.
pub fn expand(pieces: &[Piece], values: &Values<'_>) -> Result<Vec<String>, String> {
    if let [Piece::Upstream(port)] = pieces {
        let files = (values.upstream)(port);
        if files.is_empty() {
            return Err(format!("`{{input.{port}}}` has no files for this item"));
        }
        return Ok(files
            .iter()
            .map(|f| f.to_string_lossy().into_owned())
            .collect());
    }
    let mut arg = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => arg.push_str(t),
            Piece::Item => arg.push_str(values.item),
            Piece::Input => arg.push_str(values.input),
            Piece::Out => arg.push_str(values.out),
            Piece::Upstream(port) => match (values.upstream)(port).as_slice() {
                [one] => arg.push_str(&one.to_string_lossy()),
                [] => return Err(format!("`{{input.{port}}}` has no files for this item")),
                many => {
                    return Err(format!(
                        "`{{input.{port}}}` has {} files; inside other text it must have exactly one (use it as a whole argument to pass them all)",
                        many.len()
                    ))
                }
            },
        }
    }
    Ok(vec![arg])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_placeholders_and_escapes() {
        assert_eq!(
            parse("{out}/copy.wav").unwrap(),
            [Piece::Out, Piece::Text("/copy.wav".into())]
        );
        assert_eq!(parse("{{x}}").unwrap(), [Piece::Text("{x}".into())]);
        assert_eq!(
            parse("{input.files}").unwrap(),
            [Piece::Upstream("files".into())]
        );
        assert!(parse("{nope}").unwrap_err().contains("unknown placeholder"));
        assert!(parse("a}b").is_err());
    }

    #[test]
    fn whole_upstream_arguments_expand_to_every_file() {
        let upstream = |_: &str| vec![PathBuf::from("/a"), PathBuf::from("/b")];
        let values = Values {
            item: "i",
            input: "/in",
            out: "/o",
            upstream: &upstream,
        };
        assert_eq!(
            expand(&parse("{input.files}").unwrap(), &values).unwrap(),
            ["/a", "/b"]
        );
        assert!(expand(&parse("x={input.files}").unwrap(), &values).is_err());
        assert_eq!(
            expand(&parse("{item}:{input}").unwrap(), &values).unwrap(),
            ["i:/in"]
        );
    }
}
