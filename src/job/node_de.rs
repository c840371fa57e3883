//! Strict, typed decoding of one node of the located YAML tree.
//!
//! The job's per-entry structs derive `Deserialize` with `deny_unknown_fields`; this
//! `Deserializer` feeds them from a `Node` and stamps each error with the line and
//! column of the node it came from. Decoding entries one by one is what lets a job
//! with mistakes in several entries get all of them reported.

use super::node::{Node, NodeValue, ScalarKind};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess,
    SeqAccess, VariantAccess, Visitor,
};
use std::fmt;

/// A decoding error at a place in the YAML file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError {
    /// 1-based; 0 until the node that failed stamps it.
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DecodeError {}

impl de::Error for DecodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            line: 0,
            column: 0,
            message: msg.to_string(),
        }
    }
}

impl DecodeError {
    /// The innermost node stamps the error; outer nodes leave it alone.
    fn at(mut self, node: &Node) -> Self {
        if self.line == 0 {
            self.line = node.line;
            self.column = node.column;
        }
        self
    }
}

/// Decodes `node` into `T`, reporting the innermost failing node's location.
pub(crate) fn decode<T: DeserializeOwned>(node: &Node) -> Result<T, DecodeError> {
    T::deserialize(NodeDe(node))
}

/// A value with the location of the YAML node it was decoded from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Located<T> {
    pub line: u32,
    pub column: u32,
    pub value: T,
}

const LOCATED_MARKER: &str = "__c360_located";

impl<'de, T: de::Deserialize<'de>> de::Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LocatedVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: de::Deserialize<'de>> Visitor<'de> for LocatedVisitor<T> {
            type Value = Located<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a located value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Located<T>, A::Error> {
                let missing = || de::Error::custom("located value needs line, column, value");
                let line = seq.next_element()?.ok_or_else(missing)?;
                let column = seq.next_element()?.ok_or_else(missing)?;
                let value = seq.next_element()?.ok_or_else(missing)?;
                Ok(Located {
                    line,
                    column,
                    value,
                })
            }
        }
        deserializer
            .deserialize_newtype_struct(LOCATED_MARKER, LocatedVisitor(std::marker::PhantomData))
    }
}

#[derive(Clone, Copy)]
struct NodeDe<'a>(&'a Node);

impl<'a> NodeDe<'a> {
    fn scalar(&self) -> Option<(&'a str, ScalarKind)> {
        match &self.0.value {
            NodeValue::Scalar { text, kind } => Some((text.as_str(), *kind)),
            _ => None,
        }
    }

    fn invalid_type(&self, expected: &dyn de::Expected) -> DecodeError {
        let unexpected = match &self.0.value {
            NodeValue::Null => de::Unexpected::Unit,
            NodeValue::Scalar { text, .. } => de::Unexpected::Str(text),
            NodeValue::Seq(_) => de::Unexpected::Seq,
            NodeValue::Map(_) => de::Unexpected::Map,
        };
        <DecodeError as de::Error>::invalid_type(unexpected, expected).at(self.0)
    }

    fn number<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let result = match self.scalar() {
            Some((text, ScalarKind::Int)) => match text.parse::<u64>() {
                Ok(n) => visitor.visit_u64(n),
                Err(_) => match text.parse::<i64>() {
                    Ok(n) => visitor.visit_i64(n),
                    Err(_) => return Err(self.invalid_type(&visitor)),
                },
            },
            Some((text, ScalarKind::Float)) => match text.parse::<f64>() {
                Ok(n) => visitor.visit_f64(n),
                Err(_) => return Err(self.invalid_type(&visitor)),
            },
            _ => return Err(self.invalid_type(&visitor)),
        };
        result.map_err(|e: DecodeError| e.at(self.0))
    }
}

impl<'de> Deserializer<'de> for NodeDe<'_> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let node = self.0;
        let result = match &node.value {
            NodeValue::Null => visitor.visit_unit(),
            NodeValue::Scalar { text, kind } => match kind {
                ScalarKind::Str => visitor.visit_str(text),
                ScalarKind::Bool => visitor.visit_bool(text == "true"),
                ScalarKind::Int | ScalarKind::Float => return self.number(visitor),
            },
            NodeValue::Seq(items) => visitor.visit_seq(NodeSeq(items.iter())),
            NodeValue::Map(entries) => visitor.visit_map(NodeMap {
                entries: entries.iter(),
                value: None,
            }),
        };
        result.map_err(|e: DecodeError| e.at(node))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.scalar() {
            Some((text, ScalarKind::Bool)) => visitor
                .visit_bool(text == "true")
                .map_err(|e: DecodeError| e.at(self.0)),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        // Any YAML scalar is text: `currency: 12` is the string "12".
        match self.scalar() {
            Some((text, _)) => visitor
                .visit_str(text)
                .map_err(|e: DecodeError| e.at(self.0)),
            None => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.0.value {
            NodeValue::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        if name == LOCATED_MARKER {
            visitor.visit_seq(LocatedSeq {
                node: self.0,
                index: 0,
            })
        } else {
            visitor
                .visit_newtype_struct(self)
                .map_err(|e: DecodeError| e.at(self.0))
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        // Only unit variants are used in job files (`format: csv`).
        match self.scalar() {
            Some((text, _)) => visitor
                .visit_enum(UnitVariant(text))
                .map_err(|e: DecodeError| e.at(self.0)),
            None => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.number(visitor)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.number(visitor)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.number(visitor)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.number(visitor)
    }
    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.number(visitor)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.number(visitor)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.number(visitor)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.number(visitor)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.number(visitor)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.number(visitor)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit unit_struct seq tuple tuple_struct map struct ignored_any
    }
}

struct NodeSeq<'a>(std::slice::Iter<'a, Node>);

impl<'de> SeqAccess<'de> for NodeSeq<'_> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        self.0
            .next()
            .map(|node| seed.deserialize(NodeDe(node)))
            .transpose()
    }
}

struct NodeMap<'a> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    value: Option<&'a Node>,
}

impl<'de> MapAccess<'de> for NodeMap<'_> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(NodeDe(key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        match self.value.take() {
            Some(node) => seed.deserialize(NodeDe(node)),
            None => Err(de::Error::custom("map value requested before its key")),
        }
    }
}

/// Feeds `Located<T>`: line, column, then the value itself.
struct LocatedSeq<'a> {
    node: &'a Node,
    index: u8,
}

impl<'de> SeqAccess<'de> for LocatedSeq<'_> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        let index = self.index;
        self.index = self.index.saturating_add(1);
        match index {
            0 => seed
                .deserialize(self.node.line.into_deserializer())
                .map(Some),
            1 => seed
                .deserialize(self.node.column.into_deserializer())
                .map(Some),
            2 => seed.deserialize(NodeDe(self.node)).map(Some),
            _ => Ok(None),
        }
    }
}

struct UnitVariant<'a>(&'a str);

impl<'de> EnumAccess<'de> for UnitVariant<'_> {
    type Error = DecodeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), DecodeError> {
        let value = seed.deserialize(self.0.into_deserializer())?;
        Ok((value, self))
    }
}

impl<'de> VariantAccess<'de> for UnitVariant<'_> {
    type Error = DecodeError;

    fn unit_variant(self) -> Result<(), DecodeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        _seed: T,
    ) -> Result<T::Value, DecodeError> {
        Err(de::Error::custom("expected a plain name"))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, DecodeError> {
        Err(de::Error::custom("expected a plain name"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, DecodeError> {
        Err(de::Error::custom("expected a plain name"))
    }
}

#[cfg(test)]
#[path = "node_de_tests.rs"]
mod tests;
