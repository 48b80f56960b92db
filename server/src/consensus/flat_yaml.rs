//! A tiny reader for the flat YAML maps of the bluebirds dataset:
//! `{key: value, ...}` (flow style, may span lines) or block lines
//! `key: value` / `key: {flow map}`, with plain or quoted scalars.
//!
//! Why not a YAML crate: these two files use a sliver of YAML, and a
//! dependency for them would outweigh this reader. Anything outside that
//! sliver (anchors, lists, block-nested maps) is an error with the line.

use crate::error::{Error, Result};

/// A parsed value: a scalar string or a map in file order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(String),
    Map(Vec<(String, Value)>),
}

/// Parses a whole document; `source` names the file in errors.
pub fn parse(text: &str, source: &str) -> Result<Value> {
    let mut parser = Parser {
        bytes: text.as_bytes(),
        text,
        position: 0,
        line: 1,
        source,
    };
    parser.skip_blank(true);
    let value = if parser.peek() == Some(b'{') {
        parser.flow_map()?
    } else {
        parser.block_map()?
    };
    parser.skip_blank(true);
    if parser.position < parser.bytes.len() {
        return Err(parser.error("unexpected text after the map"));
    }
    Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    text: &'a str,
    position: usize,
    line: usize,
    source: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn error(&self, message: &str) -> Error {
        Error::BadRequest(format!(
            "{}:{}: {message} (only flat YAML maps are supported)",
            self.source, self.line
        ))
    }

    /// Skips spaces, tabs, comments, and newlines when `newlines` is set.
    fn skip_blank(&mut self, newlines: bool) {
        while let Some(byte) = self.peek() {
            match byte {
                b' ' | b'\t' | b'\r' => self.position += 1,
                b'\n' if newlines => {
                    self.line += 1;
                    self.position += 1;
                }
                b'#' => {
                    while self.peek().is_some_and(|byte| byte != b'\n') {
                        self.position += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn block_map(&mut self) -> Result<Value> {
        let mut entries = Vec::new();
        while self.peek().is_some() {
            if self.text[self.position..].starts_with("---") {
                self.position += 3;
                self.skip_blank(true);
                continue;
            }
            let key = self.scalar(b":")?;
            self.expect(b':')?;
            self.skip_blank(false);
            let value = if self.peek() == Some(b'{') {
                self.flow_map()?
            } else {
                Value::Scalar(self.scalar(b"")?)
            };
            entries.push((key, value));
            self.skip_blank(false);
            match self.peek() {
                None => break,
                Some(b'\n') => self.skip_blank(true),
                Some(_) => return Err(self.error("expected a new line after a block entry")),
            }
        }
        Ok(Value::Map(entries))
    }

    fn flow_map(&mut self) -> Result<Value> {
        self.expect(b'{')?;
        let mut entries = Vec::new();
        self.skip_blank(true);
        if self.peek() == Some(b'}') {
            self.position += 1;
            return Ok(Value::Map(entries));
        }
        loop {
            self.skip_blank(true);
            let key = self.scalar(b":")?;
            self.expect(b':')?;
            self.skip_blank(true);
            let value = if self.peek() == Some(b'{') {
                self.flow_map()?
            } else {
                Value::Scalar(self.scalar(b",}")?)
            };
            entries.push((key, value));
            self.skip_blank(true);
            match self.peek() {
                Some(b',') => self.position += 1,
                Some(b'}') => {
                    self.position += 1;
                    return Ok(Value::Map(entries));
                }
                _ => return Err(self.error("expected ',' or '}' in a flow map")),
            }
        }
    }

    fn expect(&mut self, byte: u8) -> Result<()> {
        if self.peek() == Some(byte) {
            self.position += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected '{}'", byte as char)))
        }
    }

    /// A quoted scalar, or plain text up to a newline or one of `stops`
    /// (a ':' stop must be followed by a space or a newline, as in YAML).
    fn scalar(&mut self, stops: &[u8]) -> Result<String> {
        if let Some(quote @ (b'"' | b'\'')) = self.peek() {
            let start = self.position + 1;
            let Some(length) = self.bytes[start..].iter().position(|&byte| byte == quote) else {
                return Err(self.error("unterminated quoted scalar"));
            };
            self.position = start + length + 1;
            self.skip_blank(false);
            return Ok(self.text[start..start + length].to_owned());
        }
        let start = self.position;
        while let Some(byte) = self.peek() {
            let is_key_end = byte == b':'
                && matches!(
                    self.bytes.get(self.position + 1),
                    None | Some(b' ' | b'\t' | b'\r' | b'\n')
                );
            if byte == b'\n'
                || (stops.contains(&byte) && (byte != b':' || is_key_end))
                || b"{}[]&*".contains(&byte)
            {
                break;
            }
            self.position += 1;
        }
        let value = self.text[start..self.position].trim();
        if value.is_empty() {
            return Err(self.error("expected a key or value"));
        }
        Ok(value.to_owned())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn scalar(text: &str) -> Value {
        Value::Scalar(text.to_owned())
    }

    #[test]
    fn reads_flow_and_block_maps() {
        let flow = parse("{11573: true, 11574: false,\n    11575: true}\n", "gt.yaml").unwrap();
        assert_eq!(
            flow,
            Value::Map(vec![
                ("11573".into(), scalar("true")),
                ("11574".into(), scalar("false")),
                ("11575".into(), scalar("true"))
            ])
        );
        let block = parse(
            "# workers\n39: {1: true,\n  2: false}\n97: {1: false}\n'x y': \"a:b\"\n",
            "labels.yaml",
        )
        .unwrap();
        assert_eq!(
            block,
            Value::Map(vec![
                (
                    "39".into(),
                    Value::Map(vec![
                        ("1".into(), scalar("true")),
                        ("2".into(), scalar("false"))
                    ])
                ),
                ("97".into(), Value::Map(vec![("1".into(), scalar("false"))])),
                ("x y".into(), scalar("a:b")),
            ])
        );
        assert_eq!(parse("", "empty.yaml").unwrap(), Value::Map(vec![]));
    }

    #[test]
    fn errors_name_the_line() {
        let error = parse("{1: true,\n 2 true}", "gt.yaml")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("gt.yaml:2:"), "{error}");
        assert!(parse("{1: true", "gt.yaml").is_err());
        assert!(parse("- a\n- b\n", "list.yaml").is_err());
        assert!(parse("a: 'open\n", "quote.yaml").is_err());
    }
}
