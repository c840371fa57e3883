//! The identity graph: records linked to the identifiers they carry, and its
//! connected components (DATA_CONTRACT.md, "Identifiers").
//!
//! Building streams: each link row interns its record and identifier and appends
//! one `(record, identifier)` edge of 8 bytes. [`GraphBuilder::finish`] then
//! - removes duplicate edges, so an identifier's edges from `source` records are the
//!   distinct source records carrying it;
//! - drops every email or phone carried by more than `max_records_per_identifier`
//!   source records (a till's placeholder email, a switchboard phone), and every one
//!   the job's `exclude_identifiers` pattern matches: it links nothing and is no
//!   identifier (hence not in the map), reported instead. Guest orders and events
//!   without a source id attach to an email but never count towards the cap
//!   (DATA_CONTRACT.md: a guest who ordered 70 times is one shopper, not 70 records);
//! - reports emails that stay identifiers but look like a shared placeholder
//!   ([`super::placeholder`]), with their counts, so a user can exclude them;
//! - unions each record with its identifiers (phones only when `link_by_phone`);
//! - numbers the components that hold at least one identifier. Records left in no
//!   such component (a guest order with an invalid or capped email) are unattributed.
//!
//! With `link_by_phone: false` phones join nothing together; a phone still maps to
//! the one customer all its records belong to, and a phone whose records end up in
//! several customers (a shared household line) maps to none and is counted.

use super::intern::{Interner, Tag, TooManyNodes};
use super::union_find::UnionFind;
use crate::job::StitchSettings;

/// "No component" / "not set" in the per-node vectors.
pub const NONE: u32 = u32::MAX;
/// A phone whose records lie in several components (with `link_by_phone: false`).
const AMBIGUOUS: u32 = u32::MAX - 1;
/// An identifier over the cap. Node ids stay below these markers (`intern::MAX_NODES`).
const CAPPED: u32 = u32::MAX - 2;

/// Edges held before the first compaction (32 MiB); later compactions come each
/// time the list doubles past its distinct edges.
const COMPACT_AT_EDGES: usize = 1 << 22;

/// Accumulates link rows.
pub struct GraphBuilder {
    interner: Interner,
    /// Earliest date (days since 1970-01-01) each node was seen; `i32::MAX` = never.
    first_seen: Vec<i32>,
    /// `edges[..distinct]` is sorted and free of duplicates; the rest is as added.
    /// The input repeats most links (every order line and event of a record links
    /// its source id and email again), so compacting as it grows keeps the list
    /// near the distinct links, whatever the number of rows.
    edges: Vec<(u32, u32)>,
    distinct: usize,
    /// The fewest edges held before a compaction.
    compact_at: usize,
}

impl Default for GraphBuilder {
    fn default() -> Self {
        Self::compacting_at(COMPACT_AT_EDGES)
    }
}

impl GraphBuilder {
    /// A builder that compacts its edges once it holds `edges` of them (and then
    /// each time the list doubles past its distinct edges).
    pub fn compacting_at(edges: usize) -> Self {
        Self {
            interner: Interner::default(),
            first_seen: Vec::new(),
            edges: Vec::new(),
            distinct: 0,
            compact_at: edges.max(1),
        }
    }

    /// Adds one link row: `record` carries `identifier` (if any), seen on day `seen`.
    /// A record without identifier is still counted, so it can be reported unattributed.
    pub fn add(
        &mut self,
        record: (Tag, &str),
        identifier: Option<(Tag, &str)>,
        seen: Option<i32>,
    ) -> Result<(), TooManyNodes> {
        let r = self.node(record, seen)?;
        // A source record's link to its own id (every row with a source id has
        // one) only creates the node: an edge to itself joins nothing.
        if let Some(identifier) = identifier
            && identifier != record
        {
            let i = self.node(identifier, seen)?;
            self.edges.push((r, i));
            if self.edges.len() >= (2 * self.distinct).max(self.compact_at) {
                self.compact();
            }
        }
        Ok(())
    }

    /// Sorts the edges added since the last compaction and merges them into the
    /// sorted distinct prefix, dropping duplicates.
    fn compact(&mut self) {
        let (head, tail) = self.edges.split_at_mut(self.distinct);
        tail.sort_unstable();
        let mut merged = Vec::with_capacity(head.len() + tail.len());
        let (mut a, mut b) = (head.iter().peekable(), tail.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) if x <= y => a.next(),
                (Some(_), Some(_)) | (None, Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, None) => break,
            };
            if let Some(&edge) = next
                && merged.last() != Some(&edge)
            {
                merged.push(edge);
            }
        }
        self.distinct = merged.len();
        self.edges = merged;
    }

    fn node(&mut self, (tag, value): (Tag, &str), seen: Option<i32>) -> Result<u32, TooManyNodes> {
        let id = self.interner.intern(tag, value)?;
        if id as usize == self.first_seen.len() {
            self.first_seen.push(i32::MAX);
        }
        if let Some(day) = seen {
            let slot = &mut self.first_seen[id as usize];
            *slot = (*slot).min(day);
        }
        Ok(id)
    }

    /// Heap bytes held so far.
    pub fn heap_bytes(&self) -> usize {
        self.interner.heap_bytes() + self.first_seen.capacity() * 4 + self.edges.capacity() * 8
    }

    /// Computes the components; see the module docs.
    pub fn finish(mut self, rules: &StitchSettings) -> Components {
        self.compact();
        let Self {
            interner,
            first_seen,
            edges,
            ..
        } = self;
        let n = interner.len() as u32;
        let links = edges.len() as u64;

        // `state` first counts each identifier's source records, then marks dropped
        // identifiers and, without phone linking, holds each phone's component root.
        let mut state = vec![0u32; n as usize];
        for &(r, i) in &edges {
            if interner.tag(r) == Tag::Source {
                state[i as usize] = state[i as usize].saturating_add(1);
            }
        }
        let mut flagged = Flagged::default();
        for i in 0..n {
            let tag = interner.tag(i);
            if !matches!(tag, Tag::Email | Tag::Phone) {
                state[i as usize] = NONE;
                continue;
            }
            let records = state[i as usize];
            let value = interner.value(i);
            let (list, dropped) = if records > rules.max_records_per_identifier {
                (&mut flagged.capped, true)
            } else if rules
                .exclude_identifiers
                .as_ref()
                .is_some_and(|re| re.is_match(value))
            {
                (&mut flagged.excluded, true)
            } else if tag == Tag::Email && super::placeholder::looks_like_placeholder(value) {
                (&mut flagged.suspects, false)
            } else {
                state[i as usize] = NONE;
                continue;
            };
            list.push(FlaggedIdentifier {
                node: i,
                id_type: tag,
                id_value: value.to_string(),
                records,
                guest_records: 0,
            });
            state[i as usize] = if dropped { CAPPED } else { NONE };
        }
        flagged.count_guests(&edges, &interner);
        let Flagged {
            mut capped,
            excluded,
            suspects,
        } = flagged;
        capped.sort_by(|a, b| b.records.cmp(&a.records).then(a.id_value.cmp(&b.id_value)));

        let mut uf = UnionFind::new(n);
        for &(r, i) in &edges {
            let attach_only = !rules.link_by_phone && interner.tag(i) == Tag::Phone;
            if state[i as usize] != CAPPED && !attach_only {
                uf.union(r, i);
            }
        }
        let mut ambiguous_phones = 0u64;
        if !rules.link_by_phone {
            for &(r, i) in &edges {
                let slot = state[i as usize];
                if interner.tag(i) != Tag::Phone || slot == CAPPED || slot == AMBIGUOUS {
                    continue;
                }
                let root = uf.find(r);
                if slot == NONE {
                    state[i as usize] = root;
                } else if slot != root {
                    state[i as usize] = AMBIGUOUS;
                    ambiguous_phones += 1;
                }
            }
        }
        drop(edges);

        let mut comp_of_root = vec![NONE; n as usize];
        let mut component = vec![NONE; n as usize];
        let mut smallest: Vec<u32> = Vec::new();
        for i in 0..n {
            let tag = interner.tag(i);
            let slot = state[i as usize];
            if !tag.is_identifier() || slot == CAPPED {
                continue;
            }
            let root = if tag == Tag::Phone && !rules.link_by_phone {
                if slot == NONE || slot == AMBIGUOUS {
                    continue;
                }
                slot
            } else {
                uf.find(i)
            };
            let comp = &mut comp_of_root[root as usize];
            if *comp == NONE {
                *comp = smallest.len() as u32;
                smallest.push(i);
            } else if interner.cmp(i, smallest[*comp as usize]).is_lt() {
                smallest[*comp as usize] = i;
            }
            component[i as usize] = *comp;
        }
        let (mut unattributed_orders, mut unattributed_events) = (0u64, 0u64);
        for r in 0..n {
            let counter = match interner.tag(r) {
                Tag::Order => &mut unattributed_orders,
                Tag::Event => &mut unattributed_events,
                _ => continue,
            };
            if comp_of_root[uf.find(r) as usize] == NONE {
                *counter += 1;
            }
        }
        Components {
            report: StitchReport {
                nodes: n as u64,
                identifiers: component.iter().filter(|c| **c != NONE).count() as u64,
                links,
                components: smallest.len() as u64,
                capped_count: capped.len() as u64,
                excluded_count: excluded.len() as u64,
                ambiguous_phones,
                unattributed_orders,
                unattributed_events,
            },
            capped,
            excluded,
            suspects,
            interner,
            first_seen,
            component,
            smallest,
        }
    }
}

/// An email or phone the run reports: over the cap, excluded, or a likely placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlaggedIdentifier {
    node: u32,
    pub id_type: Tag,
    pub id_value: String,
    /// Distinct source records carrying it (what the cap counts).
    pub records: u32,
    /// Guest orders and events without source id carrying it (never capped).
    pub guest_records: u32,
}

/// The identifiers [`GraphBuilder::finish`] reports, by kind.
#[derive(Default)]
struct Flagged {
    capped: Vec<FlaggedIdentifier>,
    excluded: Vec<FlaggedIdentifier>,
    suspects: Vec<FlaggedIdentifier>,
}

impl Flagged {
    /// Fills in each flagged identifier's guest records (one pass over the edges;
    /// none when nothing is flagged).
    fn count_guests(&mut self, edges: &[(u32, u32)], interner: &Interner) {
        let mut lists: Vec<&mut FlaggedIdentifier> = self
            .capped
            .iter_mut()
            .chain(self.excluded.iter_mut())
            .chain(self.suspects.iter_mut())
            .collect();
        if lists.is_empty() {
            return;
        }
        let slot: hashbrown::HashMap<u32, usize> =
            lists.iter().enumerate().map(|(k, f)| (f.node, k)).collect();
        for &(r, i) in edges {
            if interner.tag(r) != Tag::Source
                && let Some(&k) = slot.get(&i)
            {
                lists[k].guest_records += 1;
            }
        }
    }
}

/// Counts for the run log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StitchReport {
    /// Interned identifiers and records.
    pub nodes: u64,
    /// Identifiers in the map (capped and unattached phones excluded).
    pub identifiers: u64,
    /// Distinct (record, identifier) links (a source id's link to itself not counted).
    pub links: u64,
    /// Customers.
    pub components: u64,
    pub capped_count: u64,
    /// Emails and phones `exclude_identifiers` dropped.
    pub excluded_count: u64,
    /// Phones left out of the map because their records span customers (no phone linking).
    pub ambiguous_phones: u64,
    /// Guest orders with no usable identifier.
    pub unattributed_orders: u64,
    /// Events with neither a source id nor a usable email.
    pub unattributed_events: u64,
}

/// The stitched graph: which component each identifier is in.
pub struct Components {
    pub interner: Interner,
    /// Per node: earliest day seen (`i32::MAX` if never dated).
    pub first_seen: Vec<i32>,
    /// Per node: component index, [`NONE`] for records and dropped identifiers.
    pub component: Vec<u32>,
    /// Per component: its smallest identifier (see [`Interner::cmp`]).
    pub smallest: Vec<u32>,
    /// Capped identifiers, most source records first.
    pub capped: Vec<FlaggedIdentifier>,
    /// Identifiers `exclude_identifiers` dropped, in node order.
    pub excluded: Vec<FlaggedIdentifier>,
    /// Emails that stay identifiers but look like a shared placeholder, in node order.
    pub suspects: Vec<FlaggedIdentifier>,
    pub report: StitchReport,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compacting every few edges gives the graph a single sort at the end gives.
    #[test]
    fn compaction_keeps_exactly_the_distinct_links() {
        let emails = ["a@x.com", "b@x.com", "c@x.com", "d@x.com"];
        let build = |mut builder: GraphBuilder| {
            // 40 rows: each record repeats its links.
            for round in 0..5 {
                for r in 0..4u32 {
                    let record = format!("crm:C{}", (r + round) % 6);
                    let email = emails[(r as usize + round as usize) % 4];
                    for identifier in [(Tag::Email, email), (Tag::Source, record.as_str())] {
                        builder
                            .add((Tag::Source, &record), Some(identifier), Some(r as i32))
                            .unwrap();
                    }
                }
            }
            builder.finish(&StitchSettings::default())
        };
        let once = build(GraphBuilder::compacting_at(usize::MAX));
        for every in [1, 2, 3, 7] {
            let compacted = build(GraphBuilder::compacting_at(every));
            assert_eq!(compacted.report, once.report, "compacting at {every}");
            assert_eq!(compacted.component, once.component);
            assert_eq!(compacted.first_seen, once.first_seen);
        }
        // Sums r + round run 0..=7: record s % 6 with email s % 4 (8 links); each
        // of the 6 records' link to its own source id is no edge.
        assert_eq!(once.report.links, 8);
        assert_eq!(once.report.identifiers, 6 + 4);
    }
}
