//! Stable `customer_key`s: the rules that carry keys from the previous committed
//! identity map to today's components.
//!
//! 1. **New key.** A component with no key from before gets
//!    [`derive_key`] of its smallest identifier (kind source < email < phone, then
//!    text): the same data always gives the same key, so a rerun or a backfill
//!    reproduces it, and that identifier is the key's *founding identifier*.
//! 2. **Keep.** A key stays with the component holding its founding identifier
//!    (recognised as the identifier the key derives from). If that identifier is gone
//!    (capped now, say), the key stays with the component holding its earliest-seen
//!    identifier (ties: smallest identifier).
//! 3. **Merge.** When one component now holds several keys, the oldest survives: the
//!    one whose identifiers were first seen earliest (ties: smaller key). The others
//!    are retired and recorded as merges (`merged_key` → `surviving_key`).
//! 4. **Split.** When a key's identifiers now lie in several components, the part with
//!    the founding identifier keeps the key (rule 2) and the other parts get new keys
//!    (rule 1). A part that was once a customer of its own gets its old key back, since
//!    its smallest identifier still derives it.
//!
//! Keys are 20 hex digits (80 bits) of the 128-bit FNV-1a hash of `id_type:id_value`,
//! mixed by MurmurHash3's finaliser ([`derive_key`]). A collision between two customers is astronomically unlikely
//! (about 1 in 10^10 at 10^7 customers); it is detected and fails the run rather than
//! silently joining two people.

use hashbrown::HashMap;

use super::graph::{Components, NONE};
use super::intern::{Interner, Tag};

/// The key of a component whose smallest identifier is `(tag, value)`: see the
/// module docs. FNV-1a alone changes few output bits when only the last input byte
/// changes (`crm:C1` vs `crm:C3`), so its halves go through MurmurHash3's 64-bit
/// finaliser, which makes neighbouring ids give unrelated-looking keys.
pub fn derive_key(tag: Tag, value: &str) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut hash = OFFSET;
    for byte in tag.name().bytes().chain([b':']).chain(value.bytes()) {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    let high = fmix64((hash >> 64) as u64);
    let low = fmix64(hash as u64 ^ high);
    format!("{high:016x}{:04x}", low >> 48)
}

/// MurmurHash3's 64-bit finaliser (a bijection with full avalanche).
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// The previous committed identity map, resolved against today's nodes.
pub struct Previous {
    keys: Vec<String>,
    key_index: HashMap<String, u32>,
    /// Per key: earliest `first_seen` over all its rows (its age).
    age: Vec<i32>,
    /// Per node: index of its previous key, or [`NONE`].
    node_key: Vec<u32>,
    /// Per node: its previous `first_seen` (`i32::MAX` if it was not in the map).
    node_first_seen: Vec<i32>,
    /// Rows read, and rows whose identifier is not in today's graph.
    pub rows: u64,
    pub absent: u64,
}

impl Previous {
    /// An empty map for a graph of `nodes` nodes.
    pub fn new(nodes: usize) -> Self {
        Self {
            keys: Vec::new(),
            key_index: HashMap::new(),
            age: Vec::new(),
            node_key: vec![NONE; nodes],
            node_first_seen: vec![i32::MAX; nodes],
            rows: 0,
            absent: 0,
        }
    }

    /// Adds one row of the previous map. Unknown `id_type`s are counted as absent.
    pub fn add(
        &mut self,
        interner: &Interner,
        id_type: &str,
        id_value: &str,
        key: &str,
        first_seen: Option<i32>,
    ) {
        self.rows += 1;
        let first_seen = first_seen.unwrap_or(i32::MAX);
        let k = match self.key_index.get(key) {
            Some(&k) => k,
            None => {
                let k = self.keys.len() as u32;
                self.keys.push(key.to_string());
                self.key_index.insert(key.to_string(), k);
                self.age.push(i32::MAX);
                k
            }
        };
        self.age[k as usize] = self.age[k as usize].min(first_seen);
        match Tag::parse(id_type).and_then(|tag| interner.get(tag, id_value)) {
            Some(node) => {
                self.node_key[node as usize] = k;
                self.node_first_seen[node as usize] = first_seen;
            }
            None => self.absent += 1,
        }
    }

    /// The previous `first_seen` of `node`, if it was in the map.
    pub fn first_seen(&self, node: u32) -> Option<i32> {
        let day = self.node_first_seen[node as usize];
        (day != i32::MAX).then_some(day)
    }
}

/// A retired key and the key that absorbed it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Merge {
    pub merged_key: String,
    pub surviving_key: String,
}

/// What happened to keys, for the run log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyReport {
    /// Components that kept a key from before.
    pub kept: u64,
    /// Components with a new key.
    pub new: u64,
    /// Keys retired by a merge.
    pub merged: u64,
    /// Keys whose identifiers now lie in several components.
    pub split: u64,
    /// Keys none of whose identifiers is in today's map.
    pub dropped: u64,
}

/// Two components were given the same key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "customer key {key} derived for two customers ({first} and {second}); rename one identifier or report this"
)]
pub struct KeyCollision {
    pub key: String,
    pub first: String,
    pub second: String,
}

/// Today's keys.
#[derive(Debug, Clone)]
pub struct Assignment {
    /// Per component.
    pub keys: Vec<String>,
    /// Sorted by surviving key, then merged key.
    pub merges: Vec<Merge>,
    pub report: KeyReport,
}

/// Applies the module's rules.
pub fn assign(graph: &Components, previous: Option<&Previous>) -> Result<Assignment, KeyCollision> {
    let interner = &graph.interner;
    let comps = graph.smallest.len();
    let mut report = KeyReport::default();
    let mut survivor = vec![NONE; comps];
    let mut merges = Vec::new();
    if let Some(prev) = previous {
        let keys = prev.keys.len();
        let (mut founder, mut fallback) = (vec![NONE; keys], vec![NONE; keys]);
        let mut first_comp = vec![NONE; keys];
        let mut split = vec![false; keys];
        for node in 0..interner.len() as u32 {
            let (k, comp) = (prev.node_key[node as usize], graph.component[node as usize]);
            if k == NONE || comp == NONE {
                continue;
            }
            let k = k as usize;
            if first_comp[k] == NONE {
                first_comp[k] = comp;
            } else if first_comp[k] != comp {
                split[k] = true;
            }
            if founder[k] == NONE
                && derive_key(interner.tag(node), interner.value(node)) == prev.keys[k]
            {
                founder[k] = node;
            }
            let best = fallback[k];
            if best == NONE
                || (
                    prev.node_first_seen[node as usize],
                    node_order(interner, node),
                ) < (
                    prev.node_first_seen[best as usize],
                    node_order(interner, best),
                )
            {
                fallback[k] = node;
            }
        }
        // (component, age, key) of every key that still has a home.
        let mut owned: Vec<(u32, i32, &str, u32)> = Vec::new();
        for k in 0..keys {
            let home = if founder[k] != NONE {
                founder[k]
            } else {
                fallback[k]
            };
            if home == NONE {
                report.dropped += 1;
                continue;
            }
            report.split += u64::from(split[k]);
            let comp = graph.component[home as usize];
            owned.push((comp, prev.age[k], prev.keys[k].as_str(), k as u32));
        }
        owned.sort_unstable();
        for (comp, _, key, k) in &owned {
            let slot = &mut survivor[*comp as usize];
            if *slot == NONE {
                *slot = *k;
            } else {
                merges.push(Merge {
                    merged_key: (*key).to_string(),
                    surviving_key: prev.keys[*slot as usize].clone(),
                });
            }
        }
        merges.sort();
        report.merged = merges.len() as u64;
    }
    let mut keys = Vec::with_capacity(comps);
    for (comp, &smallest) in graph.smallest.iter().enumerate() {
        let k = survivor[comp];
        if k == NONE {
            report.new += 1;
            keys.push(derive_key(interner.tag(smallest), interner.value(smallest)));
        } else {
            report.kept += 1;
            let prev = previous.map(|p| p.keys[k as usize].clone());
            keys.push(prev.unwrap_or_default());
        }
    }
    check_unique(graph, &keys)?;
    Ok(Assignment {
        keys,
        merges,
        report,
    })
}

fn node_order(interner: &Interner, node: u32) -> (Tag, &str) {
    (interner.tag(node), interner.value(node))
}

fn check_unique(graph: &Components, keys: &[String]) -> Result<(), KeyCollision> {
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(keys.len());
    for (comp, key) in keys.iter().enumerate() {
        if let Some(other) = seen.insert(key.as_str(), comp) {
            let name = |c: usize| {
                let node = graph.smallest[c];
                format!(
                    "{}:{}",
                    graph.interner.tag(node).name(),
                    graph.interner.value(node)
                )
            };
            return Err(KeyCollision {
                key: key.clone(),
                first: name(other),
                second: name(comp),
            });
        }
    }
    Ok(())
}
