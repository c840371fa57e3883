//! Interning: every identifier and record of the identity graph becomes a compact
//! `u32` node id, assigned in first-seen order.
//!
//! The text of all nodes lives in one `String` arena (no allocation per node) and a
//! `hashbrown::HashTable<u64>` holds each node's id beside 32 bits of its text's
//! hash ([`Entry`]). Growing the table rehashes from those bits, and a probe
//! reads a candidate's text only when they match: without them, the profile of
//! a 5.5M-node graph spent half of reading its links hashing and comparing
//! arena slices at random places (cache misses). Per node that is the text
//! itself plus 8 (end offset) + 1 (tag) + ~9 (table slot and control byte at
//! hashbrown's load factor) bytes, which is what lets tens of millions of
//! identifiers fit on one machine.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

/// What a node is. The first three are identifiers (DATA_CONTRACT.md, "Identifiers");
/// the others are records that carry identifiers but are not identifiers themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Tag {
    /// `source_system:source_customer_id`, e.g. `crm:C000123`: both a record and an identifier.
    Source = 0,
    /// A normalised, valid email.
    Email = 1,
    /// A valid E.164 phone.
    Phone = 2,
    /// A guest order (no source id), by `transaction_id`.
    Order = 3,
    /// A contact event without a source id, by `event_id`.
    Event = 4,
}

impl Tag {
    /// Parses the `record_type` / `id_type` text of the links table.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "source" => Self::Source,
            "email" => Self::Email,
            "phone" => Self::Phone,
            "order" => Self::Order,
            "event" => Self::Event,
            _ => return None,
        })
    }

    /// The name used in tables and the identity map.
    pub fn name(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Order => "order",
            Self::Event => "event",
        }
    }

    /// Whether nodes of this kind belong in the identity map.
    pub fn is_identifier(self) -> bool {
        matches!(self, Self::Source | Self::Email | Self::Phone)
    }

    fn from_u8(byte: u8) -> Self {
        match byte {
            0 => Self::Source,
            1 => Self::Email,
            2 => Self::Phone,
            3 => Self::Order,
            _ => Self::Event,
        }
    }
}

/// Node ids are below this; the values above are markers in the graph's per-node vectors.
pub const MAX_NODES: u32 = u32::MAX - 3;

/// The graph holds more nodes than a `u32` can number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("more than {MAX_NODES} identifiers and records: too many for one identity graph")]
pub struct TooManyNodes;

/// String-to-id map over an arena; see the module docs.
#[derive(Default)]
pub struct Interner {
    text: String,
    ends: Vec<u64>,
    tags: Vec<u8>,
    table: HashTable<Entry>,
    hasher: DefaultHashBuilder,
}

/// A table entry: a node's id and 32 bits of its `(tag, value)` hash. The
/// table's own hash is [`table_hash`] of those bits, so the table can grow
/// without reading any text.
#[derive(Clone, Copy)]
struct Entry {
    bits: u32,
    id: u32,
}

/// The table's hash of an entry with hash bits `bits`, spread over 64 bits
/// (hashbrown takes its bucket from the low bits and its tag from the top 7).
fn table_hash(bits: u32) -> u64 {
    u64::from(bits).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl Interner {
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.tags.len()
    }

    /// Whether no node was interned.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// The id of `(tag, value)`, adding it if new.
    pub fn intern(&mut self, tag: Tag, value: &str) -> Result<u32, TooManyNodes> {
        let bits = self.bits(tag, value);
        if let Some(id) = self.find(bits, tag, value) {
            return Ok(id);
        }
        let id = u32::try_from(self.tags.len())
            .ok()
            .filter(|id| *id < MAX_NODES)
            .ok_or(TooManyNodes)?;
        self.text.push_str(value);
        self.ends.push(self.text.len() as u64);
        self.tags.push(tag as u8);
        self.table
            .insert_unique(table_hash(bits), Entry { bits, id }, |e| table_hash(e.bits));
        Ok(id)
    }

    /// The hash bits an entry keeps of `(tag, value)`'s hash (its high half).
    fn bits(&self, tag: Tag, value: &str) -> u32 {
        (self.hasher.hash_one((tag as u8, value)) >> 32) as u32
    }

    /// The node of `(tag, value)`, whose hash bits are `bits`.
    fn find(&self, bits: u32, tag: Tag, value: &str) -> Option<u32> {
        self.table
            .find(table_hash(bits), |e| {
                e.bits == bits
                    && self.tags[e.id as usize] == tag as u8
                    && slice(&self.text, &self.ends, e.id) == value
            })
            .map(|e| e.id)
    }

    /// The id of `(tag, value)` if it was interned.
    pub fn get(&self, tag: Tag, value: &str) -> Option<u32> {
        self.find(self.bits(tag, value), tag, value)
    }

    /// The kind of node `id`.
    pub fn tag(&self, id: u32) -> Tag {
        Tag::from_u8(self.tags[id as usize])
    }

    /// The text of node `id`.
    pub fn value(&self, id: u32) -> &str {
        slice(&self.text, &self.ends, id)
    }

    /// Orders nodes as identifiers are ordered everywhere in c360: by kind
    /// (source < email < phone < records), then by text bytes.
    pub fn cmp(&self, a: u32, b: u32) -> std::cmp::Ordering {
        (self.tags[a as usize], self.value(a)).cmp(&(self.tags[b as usize], self.value(b)))
    }

    /// Heap bytes held (arena, offsets, tags and hash table), for the run log and benchmarks.
    pub fn heap_bytes(&self) -> usize {
        self.text.capacity()
            + self.ends.capacity() * 8
            + self.tags.capacity()
            + self.table.allocation_size()
    }
}

fn slice<'a>(text: &'a str, ends: &[u64], id: u32) -> &'a str {
    let i = id as usize;
    let start = if i == 0 { 0 } else { ends[i - 1] as usize };
    // Offsets are recorded after whole `&str`s are pushed, so they are char boundaries.
    &text[start..ends[i] as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_text_under_another_tag_is_another_node() {
        let mut interner = Interner::default();
        let a = interner.intern(Tag::Email, "ann@example.com").unwrap();
        let b = interner.intern(Tag::Source, "crm:C1").unwrap();
        let c = interner.intern(Tag::Email, "ann@example.com").unwrap();
        let d = interner.intern(Tag::Order, "ann@example.com").unwrap();
        assert_eq!((a, b, c, d), (0, 1, 0, 2));
        assert_eq!(interner.len(), 3);
        assert_eq!(interner.value(1), "crm:C1");
        assert_eq!(interner.tag(2), Tag::Order);
        assert_eq!(interner.get(Tag::Source, "crm:C1"), Some(1));
        assert_eq!(interner.get(Tag::Phone, "crm:C1"), None);
    }

    #[test]
    fn ids_survive_table_growth() {
        let mut interner = Interner::default();
        for n in 0..10_000 {
            assert_eq!(interner.intern(Tag::Email, &format!("p{n}@x.com")), Ok(n));
        }
        for n in (0..10_000).rev() {
            assert_eq!(interner.get(Tag::Email, &format!("p{n}@x.com")), Some(n));
        }
        assert_eq!(interner.value(9_999), "p9999@x.com");
    }

    #[test]
    fn identifiers_order_by_kind_then_text() {
        let mut interner = Interner::default();
        let phone = interner.intern(Tag::Phone, "+1").unwrap();
        let email = interner.intern(Tag::Email, "z@x.io").unwrap();
        let source = interner.intern(Tag::Source, "web:W1").unwrap();
        let source2 = interner.intern(Tag::Source, "crm:C9").unwrap();
        assert!(interner.cmp(source2, source).is_lt());
        assert!(interner.cmp(source, email).is_lt());
        assert!(interner.cmp(email, phone).is_lt());
    }
}
