//! The suppressions extract: erasure requests of a few people, on a few days,
//! by normalisable email or by (source_system, source_customer_id).

use rand::Rng;

use super::Day;
use super::GenerateError;
use super::people::SYSTEMS;
use super::profiles::messy_email;
use super::rng::{Stream, stream_rng};
use super::stamp::timestamp;
use super::truth::Ledger;
use super::writer::{DayFileWriter, FileStyle};

/// Extract name.
pub const EXTRACT: &str = "suppressions";

/// Contract header.
pub const HEADER: [&str; 4] = [
    "email",
    "source_system",
    "source_customer_id",
    "requested_at",
];

/// Whether day `index` of `days` carries erasure requests: day 7 (or the last
/// day of a shorter run), then every 30 days.
pub fn has_requests(index: u32, days: u32) -> bool {
    index == 7.min(days.saturating_sub(1)) || (index > 7 && index % 30 == 7)
}

/// Writes the requests of one day (call only when [`has_requests`]).
pub async fn write_day(
    day: &Day<'_>,
    store: std::sync::Arc<dyn object_store::ObjectStore>,
    root: &object_store::path::Path,
    ledger: &mut Ledger,
) -> Result<(), GenerateError> {
    let pop = day.pop;
    let mut rng = stream_rng(pop.seed, Stream::Suppressions, u64::from(day.index));
    let dir = format!("{EXTRACT}/dt={}", day.date());
    let mut w = DayFileWriter::csv(store, root, dir, &HEADER, FileStyle::PLAIN, u64::MAX);
    let requests = (day.joined_by / 1_000).max(2);
    for _ in 0..requests {
        let id = rng.random_range(0..day.joined_by);
        let p = pop.person(id);
        let at = timestamp(day.date(), rng.random_range(0..86_400), p.country, false);
        let row = match &p.email {
            Some(email) if rng.random_bool(0.5) => {
                vec![
                    messy_email(email, id),
                    String::new(),
                    String::new(),
                    at.clone(),
                ]
            }
            _ => {
                let sys = p.system_indices().next().unwrap_or(0);
                vec![
                    String::new(),
                    SYSTEMS[sys].into(),
                    p.source_id(sys),
                    at.clone(),
                ]
            }
        };
        w.push_csv(&row).await?;
        ledger.row(EXTRACT);
        ledger.suppressions.push((id, at));
    }
    ledger.files.extend(w.finish().await?);
    Ok(())
}
