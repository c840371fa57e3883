//! Which copy of a re-sent row counts (DATA_CONTRACT.md, Duplicates), declared
//! once per contract schema.
//!
//! The run applies each rule once (`run::dedup`): it counts every accepted row
//! as kept, deduplicated or filtered, and registers `<source>_deduped`, the
//! source's rows minus the losing copies, which the step SQL reads. No SQL file
//! and no other Rust code restates a key or a winner.

use super::ContractSchema;

/// Which copy of a key wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Winner {
    /// The copy in the latest file, and within it the later line.
    Last,
    /// The copy in the earliest file, and within it the earlier line.
    First,
    /// The copy with the newest value of this column, then the last copy.
    NewestThenLast(&'static str),
}

/// How the copies of one contract schema collapse, and how the winner counts.
#[derive(Debug, Clone, Copy)]
pub struct DedupRule {
    /// Columns of the key a copy competes under; empty: every row stands alone
    /// (suppressions: each request counts).
    pub key: &'static [&'static str],
    pub winner: Winner,
    /// The row's date column (its UTC date is compared with the logical date);
    /// `None`: the source has no date.
    pub date: Option<&'static str>,
    /// Rows dated after the logical date are not yet known, so they neither win
    /// nor lose: each stands alone (profiles). Otherwise the copies compete
    /// whatever their dates, and a late winner is not counted yet.
    pub late_stands_alone: bool,
    /// SQL predicate: the winner counts nowhere (a cancelled order line).
    pub cancelled: &'static str,
    /// SQL predicate: the winner is kept but belongs to no one (a guest order
    /// line whose email is no identifier).
    pub unattributed: &'static str,
}

impl ContractSchema {
    /// The schema's duplicate rule (DATA_CONTRACT.md, Duplicates).
    pub fn dedup_rule(self) -> DedupRule {
        let alone = DedupRule {
            key: &[],
            winner: Winner::Last,
            date: None,
            late_stands_alone: false,
            cancelled: "FALSE",
            unattributed: "FALSE",
        };
        match self {
            // The newest updated_at per source record, ties to the later file and line.
            ContractSchema::Profiles => DedupRule {
                key: &["source_system", "source_customer_id"],
                winner: Winner::NewestThenLast("updated_at"),
                date: Some("updated_at"),
                late_stands_alone: true,
                ..alone
            },
            // A re-sent line: the copy in the latest file wins.
            ContractSchema::Transactions => DedupRule {
                key: &["transaction_id", "line_no", "status"],
                date: Some("order_ts"),
                cancelled: "status = 'cancelled'",
                unattributed: "source_customer_id IS NULL AND normalize_email(email) IS NULL",
                ..alone
            },
            // A re-sent event: the first copy wins.
            ContractSchema::Communications => DedupRule {
                key: &["event_id"],
                winner: Winner::First,
                date: Some("event_ts"),
                ..alone
            },
            // Reference tables listing a currency or a score cell twice: the later line.
            ContractSchema::FxRates => DedupRule {
                key: &["currency"],
                ..alone
            },
            ContractSchema::RfmSegments => DedupRule {
                key: &["r", "f", "m"],
                ..alone
            },
            ContractSchema::Suppressions => DedupRule {
                date: Some("requested_at"),
                ..alone
            },
        }
    }
}

/// The table of a keyed source's rows minus its losing copies.
pub fn deduped_table(source: &str) -> String {
    format!("{source}_deduped")
}
