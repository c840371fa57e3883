//! Benchmark of the identity stitching core (not a timed test): builds a synthetic
//! identity graph of `PEOPLE` people (default 3,500,000: about 10.5M identifiers and
//! 14M links), plus degenerate parts — one email shared by 100,000 records (over the
//! cap) and a chain of 1,000,000 guest orders each sharing an email with the next —
//! then stitches it twice: day 1 (no previous map) and day 2 (day 1's map as previous).
//!
//! ```sh
//! CARGO_TARGET_DIR=$HOME/.cache/c360-release cargo build --release --example stitch_bench
//! /usr/bin/time -v $HOME/.cache/c360-release/release/examples/stitch_bench 3500000
//! ```
//! Prints the time of each phase; peak memory comes from `/usr/bin/time -v`.

use std::time::Instant;

use c360::job::StitchSettings;
use c360::steps::identity::graph::{GraphBuilder, NONE};
use c360::steps::identity::intern::{Tag, TooManyNodes};
use c360::steps::identity::keys::{self, Previous};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let people: u64 = match std::env::args().nth(1) {
        Some(text) => text.parse()?,
        None => 3_500_000,
    };
    let started = Instant::now();
    let mut builder = GraphBuilder::default();
    add_people(&mut builder, people)?;
    add_degenerate(&mut builder)?;
    let heap = builder.heap_bytes();
    let loaded = started.elapsed();

    let graph = builder.finish(&StitchSettings::default());
    let stitched = started.elapsed();
    let day1 = keys::assign(&graph, None)?;
    let keyed = started.elapsed();

    // Day 2: the same graph with day 1's map as the previous one (every key kept).
    let mut previous = Previous::new(graph.interner.len());
    for node in 0..graph.interner.len() as u32 {
        let comp = graph.component[node as usize];
        if comp != NONE {
            previous.add(
                &graph.interner,
                graph.interner.tag(node).name(),
                graph.interner.value(node),
                &day1.keys[comp as usize],
                Some(graph.first_seen[node as usize]),
            );
        }
    }
    let day2 = keys::assign(&graph, Some(&previous))?;
    let rekeyed = started.elapsed();

    let r = &graph.report;
    println!("people {people}");
    println!(
        "nodes {} identifiers {} links {} customers {} capped {} unattributed_orders {}",
        r.nodes, r.identifiers, r.links, r.components, r.capped_count, r.unattributed_orders
    );
    println!(
        "builder heap {:.0} MiB ({:.1} bytes/node incl. edges)",
        heap as f64 / 1048576.0,
        heap as f64 / r.nodes as f64
    );
    println!("load (intern + edges)   {:>7.2} s", loaded.as_secs_f64());
    println!(
        "stitch (dedupe, cap, union-find, components) {:>7.2} s",
        (stitched - loaded).as_secs_f64()
    );
    println!(
        "keys day 1 (all new)    {:>7.2} s",
        (keyed - stitched).as_secs_f64()
    );
    println!(
        "keys day 2 (previous)   {:>7.2} s  kept {} new {}",
        (rekeyed - keyed).as_secs_f64(),
        day2.report.kept,
        day2.report.new
    );
    println!("total                   {:>7.2} s", rekeyed.as_secs_f64());
    Ok(())
}

/// Each person: a crm record with email and phone; every second one also a web record
/// with the same email; every tenth a pos record linked by phone; every 1000th pair of
/// neighbours shares a household phone.
fn add_people(builder: &mut GraphBuilder, people: u64) -> Result<(), TooManyNodes> {
    let (mut record, mut email, mut phone) = (String::new(), String::new(), String::new());
    for p in 0..people {
        use std::fmt::Write;
        let day = (p % 400) as i32 + 20_000;
        email.clear();
        let _ = write!(email, "first.last{p}@example.com");
        phone.clear();
        let household = if p % 1000 == 1 { p - 1 } else { p };
        let _ = write!(phone, "+4420{:08}", household % 100_000_000);
        record.clear();
        let _ = write!(record, "crm:C{p:08}");
        builder.add(
            (Tag::Source, &record),
            Some((Tag::Source, &record)),
            Some(day),
        )?;
        builder.add(
            (Tag::Source, &record),
            Some((Tag::Email, &email)),
            Some(day),
        )?;
        builder.add(
            (Tag::Source, &record),
            Some((Tag::Phone, &phone)),
            Some(day),
        )?;
        if p % 2 == 0 {
            record.clear();
            let _ = write!(record, "web:W{p:08}");
            builder.add(
                (Tag::Source, &record),
                Some((Tag::Source, &record)),
                Some(day + 1),
            )?;
            builder.add(
                (Tag::Source, &record),
                Some((Tag::Email, &email)),
                Some(day + 1),
            )?;
        }
        if p % 10 == 0 {
            record.clear();
            let _ = write!(record, "pos:P{p:08}");
            builder.add(
                (Tag::Source, &record),
                Some((Tag::Source, &record)),
                Some(day + 2),
            )?;
            builder.add(
                (Tag::Source, &record),
                Some((Tag::Phone, &phone)),
                Some(day + 2),
            )?;
        }
    }
    Ok(())
}

/// A placeholder email on 100,000 till records, and a 1,000,000-long chain of guest
/// orders (order i carries emails i and i+1).
fn add_degenerate(builder: &mut GraphBuilder) -> Result<(), TooManyNodes> {
    for n in 0..100_000u32 {
        let record = format!("pos:T{n:08}");
        builder.add(
            (Tag::Source, &record),
            Some((Tag::Source, &record)),
            Some(20_000),
        )?;
        builder.add(
            (Tag::Source, &record),
            Some((Tag::Email, "noemail@store.com")),
            Some(20_000),
        )?;
    }
    for n in 0..1_000_000u32 {
        let order = format!("G{n:08}");
        for e in [n, n + 1] {
            builder.add(
                (Tag::Order, &order),
                Some((Tag::Email, &format!("chain{e}@example.com"))),
                Some(20_000),
            )?;
        }
    }
    Ok(())
}
