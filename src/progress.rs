//! Progress of a run's long stages (the raw days of the sources stage, the
//! steps of the DAG), told two ways from the same counter:
//!
//! - a progress bar per stage, drawn by `tracing-indicatif` when the command
//!   line installed its layer (stderr is a terminal); without that layer the
//!   bar calls do nothing;
//! - a plain `progress` log line (target `c360::progress`, with the stage, done
//!   and total) at most every [`LINE_EVERY`], for logs and pipes. The command line
//!   hides these lines while bars are drawn.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing_indicatif::span_ext::IndicatifSpanExt;

/// The longest a stage goes without a progress line.
pub const LINE_EVERY: Duration = Duration::from_secs(10);

/// The log target of progress spans and lines.
pub const TARGET: &str = "c360::progress";

/// A stage's progress: units done of a total that may grow as work is found.
#[derive(Clone, Debug)]
pub struct Progress {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    stage: &'static str,
    span: tracing::Span,
    counts: Mutex<Counts>,
}

#[derive(Debug)]
struct Counts {
    done: u64,
    total: u64,
    last_line: Instant,
}

impl Progress {
    /// Starts the progress of `stage` with `total` units known so far.
    pub fn start(stage: &'static str, total: u64) -> Self {
        let span = tracing::info_span!(target: TARGET, "progress", stage, indicatif.pb_show = true);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{span_child_prefix}{msg:<40!} [{bar:30}] {pos}/{len} {elapsed}",
        ) {
            span.pb_set_style(&style.progress_chars("=> "));
        }
        span.pb_set_length(total);
        span.pb_set_message(stage);
        span.pb_start();
        Self {
            inner: Arc::new(Inner {
                stage,
                span,
                counts: Mutex::new(Counts {
                    done: 0,
                    total,
                    last_line: Instant::now(),
                }),
            }),
        }
    }

    /// More units to do (e.g. a source's days once listed).
    pub fn add_total(&self, units: u64) {
        self.inner.span.pb_inc_length(units);
        if let Ok(mut counts) = self.inner.counts.lock() {
            counts.total += units;
        }
    }

    /// Says what the stage works on now (the bar's message).
    pub fn working_on(&self, what: &str) {
        self.inner
            .span
            .pb_set_message(&format!("{}: {what}", self.inner.stage));
    }

    /// One unit done; a progress line when the last was [`LINE_EVERY`] ago.
    pub fn done_one(&self, what: &str) {
        self.inner.span.pb_inc(1);
        let Ok(mut counts) = self.inner.counts.lock() else {
            return;
        };
        counts.done += 1;
        if counts.last_line.elapsed() >= LINE_EVERY {
            counts.last_line = Instant::now();
            tracing::info!(
                target: TARGET,
                stage = self.inner.stage,
                done = counts.done,
                total = counts.total,
                last = what,
                "progress"
            );
        }
    }

    /// Units done so far and the total known.
    pub fn counts(&self) -> (u64, u64) {
        self.inner
            .counts
            .lock()
            .map_or((0, 0), |c| (c.done, c.total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_grow_with_the_work_found_and_done() {
        let progress = Progress::start("sources", 2);
        progress.add_total(3);
        progress.done_one("profiles dt=2026-01-01");
        progress.done_one("profiles dt=2026-01-02");
        assert_eq!(progress.counts(), (2, 5));
        // Clones count into the same stage (days finish on other tasks).
        let other = progress.clone();
        other.done_one("transactions dt=2026-01-01");
        assert_eq!(progress.counts(), (3, 5));
    }

    /// Captures what a subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_progress_line_comes_at_most_every_line_every() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let progress = Progress::start("steps", 3);
            progress.done_one("order_lines");
            let Some(long_ago) = Instant::now().checked_sub(LINE_EVERY) else {
                return;
            };
            progress.inner.counts.lock().unwrap().last_line = long_ago;
            progress.done_one("identity_graph");
            progress.done_one("rfm");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(" progress ")).collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert!(
            lines[0].contains("stage=\"steps\" done=2 total=3 last=\"identity_graph\""),
            "{text}"
        );
    }
}
