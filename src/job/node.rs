//! A located YAML tree: the first pass over a job file.
//!
//! serde-saphyr stops at the first type error of a typed document, so the job file
//! is first read into this untyped tree (only YAML syntax can fail here). Each
//! section and entry is then decoded on its own (`node_de`), which lets validation
//! report every problem in one pass.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

/// A YAML node with the 1-based line and column where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub line: u32,
    pub column: u32,
    pub value: NodeValue,
}

/// The shape of a node. Scalars keep their text so that `params` stay as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeValue {
    Null,
    Scalar {
        text: String,
        kind: ScalarKind,
    },
    Seq(Vec<Node>),
    /// Entries in file order (YAML duplicate keys are rejected by the parser).
    Map(Vec<(Node, Node)>),
}

/// How YAML typed a scalar (plain `12` is an int, `"12"` a string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScalarKind {
    Str,
    Int,
    Float,
    Bool,
}

/// A YAML syntax error with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl Node {
    /// Parses one YAML document into a located tree.
    pub fn parse(text: &str) -> Result<Node, SyntaxError> {
        let spanned: Spanned<RawNode> = serde_saphyr::from_str(text).map_err(syntax_error)?;
        Ok(into_node(text, spanned))
    }

    /// Human name of the node's shape, for "expected …, found …" messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            NodeValue::Null => "null",
            NodeValue::Scalar { .. } => "a scalar",
            NodeValue::Seq(_) => "a list",
            NodeValue::Map(_) => "a mapping",
        }
    }

    /// The scalar text, if this is a scalar.
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.value {
            NodeValue::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }
}

fn syntax_error(err: serde_saphyr::Error) -> SyntaxError {
    let (line, column) = err
        .location()
        .map(|l| (to_u32(l.line()), to_u32(l.column())))
        .unwrap_or((1, 1));
    let mut options = serde_saphyr::RenderOptions::default();
    options.snippets = serde_saphyr::SnippetMode::Off;
    let rendered = err.render_with_options(options);
    SyntaxError {
        line: line.max(1),
        column: column.max(1),
        message: strip_location_suffix(&rendered).to_string(),
    }
}

/// serde-saphyr appends " at line L, column C"; our diagnostics put the location in front.
fn strip_location_suffix(message: &str) -> &str {
    let trimmed = message.trim_end();
    match trimmed.rfind(" at line ") {
        Some(i) if trimmed[i..].contains("column") => &trimmed[..i],
        _ => trimmed,
    }
}

fn to_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// What the YAML deserializer hands us before locations are attached.
#[derive(Debug)]
enum RawNode {
    Null,
    Scalar(String, ScalarKind),
    Seq(Vec<Spanned<RawNode>>),
    Map(Vec<(Spanned<RawNode>, Spanned<RawNode>)>),
}

fn into_node(text: &str, spanned: Spanned<RawNode>) -> Node {
    let loc = spanned.referenced;
    let value = match spanned.value {
        RawNode::Null => NodeValue::Null,
        RawNode::Scalar(value, kind) => {
            // Numbers and booleans keep the text as written (`0.10`, not `0.1`).
            let text = match kind {
                ScalarKind::Str => value,
                _ => source_slice(text, loc.span()).unwrap_or(value),
            };
            NodeValue::Scalar { text, kind }
        }
        RawNode::Seq(items) => {
            NodeValue::Seq(items.into_iter().map(|n| into_node(text, n)).collect())
        }
        RawNode::Map(entries) => NodeValue::Map(
            entries
                .into_iter()
                .map(|(k, v)| (into_node(text, k), into_node(text, v)))
                .collect(),
        ),
    };
    Node {
        line: to_u32(loc.line()),
        column: to_u32(loc.column()),
        value,
    }
}

fn source_slice(text: &str, span: serde_saphyr::Span) -> Option<String> {
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let len = usize::try_from(span.byte_len()?).ok()?;
    let slice = text.get(start..start.checked_add(len)?)?.trim();
    (!slice.is_empty()).then(|| slice.to_string())
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawNodeVisitor)
    }
}

struct RawNodeVisitor;

impl<'de> Visitor<'de> for RawNodeVisitor {
    type Value = RawNode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }

    fn visit_none<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(v.to_string(), ScalarKind::Bool))
    }

    fn visit_i64<E>(self, v: i64) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(v.to_string(), ScalarKind::Int))
    }

    fn visit_u64<E>(self, v: u64) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(v.to_string(), ScalarKind::Int))
    }

    fn visit_i128<E>(self, v: i128) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(v.to_string(), ScalarKind::Int))
    }

    fn visit_u128<E>(self, v: u128) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(v.to_string(), ScalarKind::Int))
    }

    fn visit_f64<E>(self, v: f64) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(v.to_string(), ScalarKind::Float))
    }

    fn visit_str<E>(self, v: &str) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(v.to_string(), ScalarKind::Str))
    }

    fn visit_string<E>(self, v: String) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(v, ScalarKind::Str))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(RawNode::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(RawNode::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(text: &str, kind: ScalarKind, line: u32, column: u32) -> Node {
        Node {
            line,
            column,
            value: NodeValue::Scalar {
                text: text.to_string(),
                kind,
            },
        }
    }

    #[test]
    fn block_mapping_keeps_locations_and_scalar_text() {
        let node = Node::parse("a: 0.10\nb:\n  - x\n  - \"12\"\n").unwrap();
        let NodeValue::Map(entries) = node.value else {
            panic!("expected a map")
        };
        assert_eq!(entries[0].0, scalar("a", ScalarKind::Str, 1, 1));
        assert_eq!(entries[0].1, scalar("0.10", ScalarKind::Float, 1, 4));
        let NodeValue::Seq(items) = &entries[1].1.value else {
            panic!("expected a seq")
        };
        assert_eq!(items[0], scalar("x", ScalarKind::Str, 3, 5));
        assert_eq!(items[1], scalar("12", ScalarKind::Str, 4, 5));
    }

    #[test]
    fn flow_mapping_locations() {
        let node = Node::parse("s: { path: p, n: 12, ok: true }\n").unwrap();
        let NodeValue::Map(entries) = node.value else {
            panic!("expected a map")
        };
        assert_eq!((entries[0].1.line, entries[0].1.column), (1, 4));
        let NodeValue::Map(inner) = &entries[0].1.value else {
            panic!("expected a map")
        };
        assert_eq!(inner[1].1, scalar("12", ScalarKind::Int, 1, 18));
        assert_eq!(inner[2].1, scalar("true", ScalarKind::Bool, 1, 26));
    }

    #[test]
    fn syntax_error_has_location() {
        let err = Node::parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.line >= 1, "{err:?}");
        assert!(!err.message.contains(" at line "), "{err:?}");
    }

    #[test]
    fn duplicate_keys_are_syntax_errors() {
        let err = Node::parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.line, 2, "{err:?}");
    }
}
