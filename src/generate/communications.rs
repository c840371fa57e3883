//! The communications extract (NDJSON): outbound campaign events by channel
//! with their funnel (sent, delivered or bounced, opened, clicked, opt-outs),
//! inbound contacts (service calls, replies, reviews, referrals), late events,
//! re-sent duplicates, an unknown extra field now and then, and malformed lines.
//! Reactions follow the behaviour model: people who stopped buying open less and
//! unsubscribe more, dead mailboxes always bounce, reviews and referrals come
//! from recent buyers.

use std::collections::VecDeque;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::Day;
use super::GenerateError;
use super::behaviour::Behaviour;
use super::mess::{RejectInjector, corrupt_event, json_str};
use super::people::{Person, SYSTEMS};
use super::profiles::messy_email;
use super::rng::{Stream, stream_rng};
use super::stamp::timestamp;
use super::truth::Ledger;
use super::writer::DayFileWriter;

/// Extract name.
pub const EXTRACT: &str = "communications";

/// An event as ordered `(field, JSON value)` pairs.
pub type Event = Vec<(&'static str, String)>;

/// Recent event lines that later days re-send; bounded.
const RECENT_CAP: usize = 5_000;

/// State carried from day to day.
#[derive(Debug, Default)]
pub struct CommunicationState {
    recent: VecDeque<String>,
    malformed: u64,
}

/// One of each (channel, direction, event_type) that occurs, sent on day 0 so
/// every kind is in any sample.
const EVERY_KIND: [(&str, &str, &str); 16] = [
    ("email", "outbound", "sent"),
    ("email", "outbound", "delivered"),
    ("email", "outbound", "opened"),
    ("email", "outbound", "clicked"),
    ("email", "outbound", "bounced"),
    ("email", "outbound", "unsubscribed"),
    ("email", "outbound", "complained"),
    ("sms", "outbound", "sent"),
    ("push", "outbound", "opened"),
    ("direct_mail", "outbound", "sent"),
    ("email", "inbound", "replied"),
    ("phone", "inbound", "service_contact"),
    ("chat", "inbound", "service_contact"),
    ("social", "inbound", "review"),
    ("social", "inbound", "referral"),
    ("sms", "outbound", "unsubscribed"),
];

/// Writes the communications events of one day.
pub async fn write_day(
    day: &Day<'_>,
    w: &mut DayFileWriter,
    ledger: &mut Ledger,
    inj: &mut RejectInjector,
    state: &mut CommunicationState,
    buyers: &VecDeque<u64>,
) -> Result<(), GenerateError> {
    let pop = day.pop;
    let mut rng = stream_rng(pop.seed, Stream::Communications, u64::from(day.index));
    let mut sink = Sink {
        day,
        w,
        ledger,
        inj,
        state,
        seq: 0,
    };
    let resends = (sink.state.recent.len() as u64 / 500).min(day.joined_by / 400 + 1);
    for _ in 0..resends {
        let i = rng.random_range(0..sink.state.recent.len());
        if let Some(line) = sink.state.recent.get(i).cloned() {
            sink.ledger.count("communications.duplicate_events", 1);
            sink.w.push_json(&line).await?;
            sink.ledger.row(EXTRACT);
        }
    }
    if day.index == 0 {
        let person = pop.person(0);
        for (channel, direction, kind) in EVERY_KIND {
            let cost = (channel == "phone").then_some("3.50");
            sink.event(&person, channel, direction, None, kind, cost, &mut rng)
                .await?;
        }
    }
    let campaign_reach = (day.joined_by / 40).max(1);
    for n in 0..campaign_reach {
        let person = pop.person(rng.random_range(0..day.joined_by));
        let campaign = format!("CMP-{}-{}", day.date().format("%Y%m%d"), n % 3);
        let channel = match rng.random_range(0..10) {
            0..=5 if person.email.is_some() => "email",
            6..=7 if person.phone.is_some() => "sms",
            8 => "direct_mail",
            _ => "push",
        };
        let behaviour = Behaviour::of(pop, &person);
        let reader = Reader {
            alive: behaviour.alive_on(i64::from(day.index)),
            dead_mailbox: behaviour.dead_mailbox,
        };
        for kind in funnel(channel, reader, &mut rng) {
            let cost = (channel == "direct_mail").then_some("0.85");
            sink.event(
                &person,
                channel,
                "outbound",
                Some(&campaign),
                kind,
                cost,
                &mut rng,
            )
            .await?;
        }
    }
    let inbound = (day.joined_by / 200).max(1);
    for _ in 0..inbound {
        let (channel, kind, cost) = match rng.random_range(0..10) {
            0..=3 => ("phone", "service_contact", Some("3.50")),
            4..=5 => ("chat", "service_contact", Some("1.20")),
            6 => ("email", "replied", None),
            7..=8 => ("social", "review", None),
            _ => ("social", "referral", None),
        };
        // Reviews and referrals come from people who bought lately (Advocates).
        let id = if kind == "review" || kind == "referral" {
            pick(buyers, &mut rng)
        } else {
            None
        };
        let person = pop.person(id.unwrap_or_else(|| rng.random_range(0..day.joined_by)));
        sink.event(&person, channel, "inbound", None, kind, cost, &mut rng)
            .await?;
    }
    Ok(())
}

/// A random element of `items`, if any.
fn pick(items: &VecDeque<u64>, rng: &mut ChaCha8Rng) -> Option<u64> {
    if items.is_empty() {
        return None;
    }
    items.get(rng.random_range(0..items.len())).copied()
}

/// What shapes a person's reaction to a message.
#[derive(Debug, Clone, Copy)]
struct Reader {
    /// Not dropped out (a lapsed customer opens about a third as often).
    alive: bool,
    /// Every email to the person bounces.
    dead_mailbox: bool,
}

/// Event types one person goes through for one outbound message.
fn funnel(channel: &str, reader: Reader, rng: &mut ChaCha8Rng) -> Vec<&'static str> {
    let interest = if reader.alive { 1.0 } else { 0.35 };
    let mut out = vec!["sent"];
    match channel {
        "email" => {
            if reader.dead_mailbox || rng.random_bool(0.01) {
                out.push("bounced");
                return out;
            }
            out.push("delivered");
            if rng.random_bool(0.35 * interest) {
                out.push("opened");
                if rng.random_bool(0.3) {
                    out.push("clicked");
                }
            }
            // People who stopped buying are the ones who opt out.
            if rng.random_bool(if reader.alive { 0.015 } else { 0.04 }) {
                out.push("unsubscribed");
            } else if rng.random_bool(0.005) {
                out.push("complained");
            }
        }
        "sms" => {
            out.push("delivered");
            if rng.random_bool(0.05 * interest) {
                out.push("clicked");
            }
            if rng.random_bool(if reader.alive { 0.02 } else { 0.05 }) {
                out.push("unsubscribed");
            }
        }
        "push" if rng.random_bool(0.2 * interest) => out.push("opened"),
        _ => {}
    }
    out
}

struct Sink<'a, 'b> {
    day: &'a Day<'b>,
    w: &'a mut DayFileWriter,
    ledger: &'a mut Ledger,
    inj: &'a mut RejectInjector,
    state: &'a mut CommunicationState,
    seq: u64,
}

impl Sink<'_, '_> {
    #[allow(clippy::too_many_arguments)]
    async fn event(
        &mut self,
        p: &Person,
        channel: &str,
        direction: &str,
        campaign: Option<&str>,
        kind: &str,
        cost: Option<&str>,
        rng: &mut ChaCha8Rng,
    ) -> Result<(), GenerateError> {
        let event_id = format!("EV-{}-{:07}", self.day.date().format("%Y%m%d"), self.seq);
        self.seq += 1;
        let late = self.day.index > 0 && rng.random_bool(0.02);
        let date = self.day.date_of(self.day.index - u32::from(late));
        let mut ev: Event = vec![("event_id", json_str(&event_id))];
        // Ids first; the email alone is used only when it is an identifier.
        let systems: Vec<usize> = p.system_indices().collect();
        let sys = systems[rng.random_range(0..systems.len())];
        let with_email = p.email.is_some() && rng.random_bool(0.4);
        if !with_email || rng.random_bool(0.7) {
            ev.push(("source_system", json_str(SYSTEMS[sys])));
            ev.push(("source_customer_id", json_str(&p.source_id(sys))));
        }
        if let (true, Some(email)) = (with_email, &p.email) {
            ev.push(("email", json_str(&messy_email(email, self.seq))));
        }
        ev.push(("channel", json_str(channel)));
        ev.push(("direction", json_str(direction)));
        if let Some(c) = campaign {
            ev.push(("campaign_id", json_str(c)));
        }
        ev.push(("event_type", json_str(kind)));
        let ts = timestamp(
            date,
            rng.random_range(0..86_400),
            p.country,
            p.id.is_multiple_of(3),
        );
        ev.push(("event_ts", json_str(&ts)));
        if let Some(c) = cost {
            ev.push(("cost", c.to_string()));
        }
        // A field an upstream release added: every 50th event of a day.
        if self.seq % 50 == 8 {
            self.ledger.count("communications.unknown_fields", 1);
            ev.push(("utm_source", json_str("newsletter")));
        }
        if late {
            self.ledger.count("communications.late_events", 1);
        }
        let line = render_event(&ev);
        self.w.push_json(&line).await?;
        self.ledger.row(EXTRACT);
        if self.state.recent.len() >= RECENT_CAP {
            self.state.recent.pop_front();
        }
        self.state.recent.push_back(line);
        if let Some(c) = self.inj.after_valid_row() {
            self.state.malformed += 1;
            ev[0].1 = json_str(&format!("{event_id}-X{}", self.state.malformed));
            let bad = corrupt_event(ev, c);
            let line_no = self.w.push_json(&bad).await?;
            self.ledger
                .reject(EXTRACT, self.w.current_file(), line_no, c.reason.as_str());
        }
        Ok(())
    }
}

/// `{"k":v,…}` in the given field order.
pub fn render_event(pairs: &[(&'static str, String)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(k);
        out.push_str("\":");
        out.push_str(v);
    }
    out.push('}');
    out
}
