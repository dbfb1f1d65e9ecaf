//! What the demo shows while it runs. On a terminal: one status block, redrawn in place (with
//! `indicatif`), and the occasional event line above it; log lines that reach the console are
//! written around the block so they do not tear it. Elsewhere (a file, a pipe, CI): a plain
//! progress line every few seconds, and no escape codes at all.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::fmt::MakeWriter;

use super::summary::{table_header, table_row};
use super::tally::{Tallies, get};
use crate::store::QueueStat;

/// How often the live block is redrawn.
pub(super) const REDRAW: Duration = Duration::from_millis(500);

/// How often a plain progress line is printed when the output is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// The demo's standard output, shared by its status block and the console log writer.
#[derive(Clone, Debug)]
pub struct Console {
    multi: MultiProgress,
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl Console {
    /// Standard output: live when it is a terminal (indicatif draws nothing otherwise).
    pub fn new() -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
        }
    }

    /// Whether the status block is drawn (standard output is a terminal).
    pub fn is_live(&self) -> bool {
        !self.multi.is_hidden()
    }

    /// Prints a line: above the block when live, plainly otherwise.
    pub(super) fn line(&self, text: &str) {
        if self.is_live() {
            // Only fails when the terminal is gone; then there is no one to tell.
            let _ = self.multi.println(text);
        } else {
            println!("{text}");
        }
    }
}

/// Writes log lines to standard error with the status block lifted out of the way.
#[derive(Debug)]
pub struct LogWriter {
    multi: MultiProgress,
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.multi.suspend(|| std::io::stderr().write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for Console {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter {
            multi: self.multi.clone(),
        }
    }
}

/// The demo's progress: per bureau, what it sent, what was accepted and rejected, what it
/// received, and what is still pending for it.
pub(super) struct Status {
    console: Console,
    /// The block's lines: the phase, the table header, one row per bureau.
    rows: Vec<ProgressBar>,
    started: Instant,
    last_plain: Option<Instant>,
}

impl Status {
    pub(super) fn new(console: &Console, tallies: &Tallies, started: Instant) -> Self {
        let style = ProgressStyle::with_template("{msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let rows = if console.is_live() {
            (0..tallies.len() + 2)
                .map(|_| {
                    console
                        .multi
                        .add(ProgressBar::no_length().with_style(style.clone()))
                })
                .collect()
        } else {
            Vec::new()
        };
        Self {
            console: console.clone(),
            rows,
            started,
            last_plain: None,
        }
    }

    /// Shows the state: redraws the block, or (not live) prints a line if one is due.
    pub(super) fn show(&mut self, phase: &str, stats: &[QueueStat], tallies: &Tallies) {
        let pending: u64 = stats.iter().map(|s| s.pending).sum();
        let delivered: u64 = stats.iter().map(|s| s.delivered).sum();
        let seconds = self.started.elapsed().as_secs_f64();
        if self.console.is_live() {
            let head = format!(
                "[{seconds:>4.0}s] {phase}: backlog {pending}, delivered {delivered}, survey notices {}",
                tallies.values().map(|t| get(&t.reads.notices)).sum::<u64>()
            );
            let mut lines = vec![head, table_header()];
            lines.extend(tallies.iter().map(|(bureau, tally)| {
                table_row(
                    *bureau,
                    tally,
                    stats.iter().find(|s| s.subscriber == *bureau),
                )
            }));
            for (row, line) in self.rows.iter().zip(lines) {
                row.set_message(line);
            }
            return;
        }
        if self
            .last_plain
            .is_some_and(|last| last.elapsed() < PLAIN_EVERY)
        {
            return;
        }
        self.last_plain = Some(Instant::now());
        let mut line =
            format!("[{seconds:>4.0}s] {phase}: backlog {pending:>5}  delivered {delivered:>6} |");
        for (bureau, tally) in tallies.iter() {
            line.push_str(&format!(
                " {} {}→{}",
                bureau.as_str(),
                get(&tally.accepted),
                tally.inbox.unique()
            ));
        }
        println!("{line}");
    }

    /// Removes the block at once, so what follows is printed plainly below the lines above
    /// it; from then on the console is no longer live.
    pub(super) fn finish(self) {
        let _ = self.console.multi.clear();
        // Hidden first, so finishing the rows redraws nothing.
        self.console
            .multi
            .set_draw_target(ProgressDrawTarget::hidden());
        for row in &self.rows {
            row.finish_and_clear();
        }
    }
}
