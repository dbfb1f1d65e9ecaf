//! The end of the demo: the table of what every bureau sent and received, the refusals by
//! reason, the loss check, and how the published survey results were reused.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use schemas::BureauId;

use super::tally::{Publications, Tallies, Tally, get, total};
use crate::store::{QueueStat, Store};

/// How the published survey results were reused.
pub(super) struct Reuse {
    /// Per result, the bureaus other than planning that read it.
    readers: Vec<usize>,
}

impl Reuse {
    pub(super) fn print(&self, publications: &Publications, tallies: &Tallies, blobs: usize) {
        let notices = total(tallies, |t| get(&t.reads.notices));
        let fetches = total(tallies, |t| get(&t.reads.fetches));
        let saved: usize = self.readers.iter().sum();
        println!(
            "\nmulti-survey-in-one: {} results published ({} corrections as new versions), {notices} notices delivered in the bureaus' own formats, {fetches} reads of results and files; {saved} reuses by other bureaus (survey jobs saved); {blobs} distinct files stored",
            self.readers.len(),
            get(&publications.corrections),
        );
    }

    pub(super) fn failed(&self, tallies: &Tallies, publications: &Publications) -> bool {
        let fetch_failures = total(tallies, |t| get(&t.reads.failures));
        let publish_failures = get(&publications.failures);
        if fetch_failures > 0 || publish_failures > 0 {
            println!(
                "FAILED: {publish_failures} publications and {fetch_failures} survey reads failed"
            );
            return true;
        }
        false
    }
}

pub(super) async fn survey_reuse<S: Store>(store: &S, publications: &Publications) -> Reuse {
    let ids = publications
        .ids
        .lock()
        .map(|ids| ids.clone())
        .unwrap_or_default();
    let mut readers = Vec::new();
    for id in ids {
        let Ok(id) = schemas::SurveyId::parse(&id) else {
            continue;
        };
        let reads = store.survey_reads(id, 1000).await.unwrap_or_default();
        let mut bureaus: Vec<BureauId> = reads
            .iter()
            .map(|r| r.bureau)
            .filter(|b| *b != BureauId::Planning)
            .collect();
        bureaus.sort();
        bureaus.dedup();
        readers.push(bureaus.len());
    }
    Reuse { readers }
}

pub(super) fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name() != "tmp")
        .map(|e| {
            let path = e.path();
            if path.is_dir() { count_files(&path) } else { 1 }
        })
        .sum()
}

/// Prints the table, the refusals by reason and the loss check; failure if any accepted
/// message did not reach every subscriber, or anything is dead, pending or undecodable.
pub(super) fn summary(
    tallies: &Tallies,
    stats: &[QueueStat],
    sending_seconds: f64,
    total_seconds: f64,
) -> ExitCode {
    println!();
    println!("{}", table_header());
    let mut promised = 0;
    let mut received_total = 0;
    let mut accepted_total = 0;
    let mut undecodable = 0;
    for (bureau, tally) in tallies.iter() {
        let stat = stats.iter().find(|s| s.subscriber == *bureau);
        let received = tally.inbox.unique();
        promised += get(&tally.promised);
        received_total += received;
        accepted_total += get(&tally.accepted);
        undecodable += tally.inbox.problems().len();
        println!("{}", table_row(*bureau, tally, stat));
    }
    println!("\nrejected, by reason:");
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for tally in tallies.values() {
        for (reason, n) in tally.rejections() {
            *reasons.entry(reason).or_default() += n;
        }
    }
    for (reason, n) in &reasons {
        println!("  {n:>6}  {reason}");
    }
    for (bureau, tally) in tallies.iter() {
        let (batches, carried) = tally.inbox.batches();
        if batches > 0 {
            println!(
                "\n{bureau} takes batches: {batches} pushes carried {carried} deliveries ({:.1} per push)",
                carried as f64 / batches as f64
            );
        }
    }
    let retried: u64 = stats.iter().map(|s| s.failed_attempts).sum();
    let dead: u64 = stats.iter().map(|s| s.dead).sum();
    let pending: u64 = stats.iter().map(|s| s.pending).sum();
    println!(
        "\naccepted {accepted_total} messages ({} over {sending_seconds:.0} s of sending); deliveries promised {promised}, received {received_total} ({} over {total_seconds:.0} s); retried attempts {retried}; dead letters {dead}; still pending {pending}",
        fmt_rate(accepted_total, sending_seconds),
        fmt_rate(received_total, total_seconds),
    );
    let lost = promised.saturating_sub(received_total);
    if lost == 0 && dead == 0 && pending == 0 && undecodable == 0 {
        println!("OK: every accepted message reached every subscriber.");
        ExitCode::SUCCESS
    } else {
        println!(
            "FAILED: {lost} deliveries not received, {dead} dead letters, {pending} pending, {undecodable} undecodable"
        );
        ExitCode::FAILURE
    }
}

fn fmt_rate(count: u64, seconds: f64) -> String {
    format!("{:.0}/s", count as f64 / seconds.max(0.001))
}

/// The header of the per-bureau table (the summary's, and the live status block's).
pub(super) fn table_header() -> String {
    format!(
        "{:<15} {:>6} {:>8} {:>8} {:>7} {:>9} {:>9} {:>8} {:>7} {:>6}",
        "bureau",
        "sent",
        "accepted",
        "rejected",
        "resent",
        "received",
        "redeliv.",
        "refused",
        "pending",
        "dead"
    )
}

/// One bureau's row of the table; `stat`: the queue of its deliveries.
pub(super) fn table_row(bureau: BureauId, tally: &Tally, stat: Option<&QueueStat>) -> String {
    format!(
        "{:<15} {:>6} {:>8} {:>8} {:>7} {:>9} {:>9} {:>8} {:>7} {:>6}",
        bureau.as_str(),
        get(&tally.sent),
        get(&tally.accepted),
        tally.rejected(),
        get(&tally.resent),
        tally.inbox.unique(),
        tally.inbox.redelivered(),
        tally.inbox.refused(),
        stat.map_or(0, |s| s.pending),
        stat.map_or(0, |s| s.dead),
    )
}
