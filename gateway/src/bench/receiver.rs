//! `gateway bench receiver`: the push endpoints of the bureaus the bench routes to, in one
//! process, that only count. Each delivery's marker says which message it is; a set of sequence
//! numbers per (bureau, step) tells duplicates and, against the senders' accepted sets, losses,
//! in one bit per message. It answers 200 at once; a batch push (several markers in one body)
//! is counted item by item, and its 2xx without a results document accepts every item.
//!
//! Driven over its standard input, one command a line, each answered with one JSON line:
//! - `window STEP FROM_MS TO_MS`: the measured window of a step (deliveries arriving in it are
//!   counted as delivered in the window; the end-to-end latency of the step's messages due in
//!   it is recorded);
//! - `count STEP`: unique deliveries of the step so far ([`Count`]);
//! - `report STEP FILE...`: the step's figures against the union of the senders' accepted
//!   sets ([`StepReport`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use hdrhistogram::Histogram;
use schemas::BureauId;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;

use super::record::{Marker, Recorded, SeqSet, histogram};
use crate::clock::now_ms;
use crate::net::pki::PkiLayout;

/// Options of `gateway bench receiver`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReceiverArgs {
    /// The dev PKI folder.
    #[arg(long)]
    pub pki: PathBuf,
    /// The bureaus to receive for, one endpoint each.
    #[arg(long, value_delimiter = ',')]
    pub bureaus: Vec<BureauId>,
}

/// The first line a receiver prints: each bureau's endpoint URL.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ready {
    /// Bureau → URL.
    pub endpoints: Vec<(BureauId, String)>,
}

/// The answer to `count`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Count {
    /// Unique deliveries of the step, over all bureaus.
    pub unique: u64,
}

/// The answer to `report`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StepReport {
    /// Accepted messages' deliveries that never arrived (summed over the bureaus).
    pub lost: u64,
    /// Deliveries that arrived more than once (each extra copy counts).
    pub duplicates: u64,
    /// Deliveries of messages the senders never saw accepted (e.g. committed, but the answer
    /// timed out).
    pub unconfirmed: u64,
    /// Deliveries that arrived in the measured window (of any step).
    pub delivered_in_window: u64,
    /// Requests (pushes, single or batch) that arrived in the measured window.
    pub pushes_in_window: u64,
    /// End-to-end latency of the window's messages: µs from the time each was due to its
    /// arrival, every copy to every bureau.
    pub e2e_us: Recorded,
}

/// What the endpoints record.
struct Tally {
    /// Per step, per bureau (index into the bureaus), the sequence numbers received.
    received: HashMap<u32, Vec<SeqSet>>,
    duplicates: HashMap<u32, u64>,
    /// (step, from µs, to µs)
    window: Option<(u32, u64, u64)>,
    delivered_in_window: u64,
    pushes_in_window: u64,
    e2e: Histogram<u64>,
    bureaus: usize,
}

impl Tally {
    fn record(&mut self, bureau: usize, marker: Marker, arrived_us: u64) {
        let sets = self
            .received
            .entry(marker.step)
            .or_insert_with(|| (0..self.bureaus).map(|_| SeqSet::default()).collect());
        if !sets[bureau].insert_growing(marker.seq) {
            *self.duplicates.entry(marker.step).or_default() += 1;
        }
        if let Some((step, from, to)) = self.window {
            if (from..to).contains(&arrived_us) {
                self.delivered_in_window += 1;
            }
            if step == marker.step && (from..to).contains(&marker.scheduled_us) {
                let took = arrived_us.saturating_sub(marker.scheduled_us).max(1);
                self.e2e.saturating_record(took);
            }
        }
    }
}

type Shared = Arc<Mutex<Tally>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Tally> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

async fn deliver(State((shared, bureau)): State<(Shared, usize)>, body: Bytes) -> &'static str {
    let arrived_us = u64::try_from(now_ms()).unwrap_or(0) * 1000;
    let markers = Marker::find_all(&body);
    let mut tally = lock(&shared);
    if let Some((_, from, to)) = tally.window
        && (from..to).contains(&arrived_us)
    {
        tally.pushes_in_window += 1;
    }
    for marker in markers {
        tally.record(bureau, marker, arrived_us);
    }
    "ok"
}

/// Runs the endpoints and answers commands until standard input closes.
pub async fn run(args: ReceiverArgs) -> Result<()> {
    let pki = PkiLayout::new(&args.pki);
    let shared: Shared = Arc::new(Mutex::new(Tally {
        received: HashMap::new(),
        duplicates: HashMap::new(),
        window: None,
        delivered_in_window: 0,
        pushes_in_window: 0,
        e2e: histogram(),
        bureaus: args.bureaus.len(),
    }));
    let mut endpoints = Vec::new();
    for (index, &bureau) in args.bureaus.iter().enumerate() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (cert, key) = pki.bureau(bureau);
        let tls = crate::net::tls::endpoint_server_config(&pki.ca, &cert, &key)?;
        let router = Router::new()
            .route("/inbox", post(deliver))
            .with_state((shared.clone(), index));
        tokio::spawn(crate::net::listener::serve(
            listener,
            tls,
            router,
            std::future::pending(),
            std::time::Duration::from_secs(1),
        ));
        endpoints.push((bureau, format!("https://{addr}/inbox")));
    }
    println!("{}", serde_json::to_string(&Ready { endpoints })?);

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["window", step, from, to] => {
                let ms = |t: &str| t.parse::<u64>().map(|v| v * 1000);
                lock(&shared).window = Some((step.parse()?, ms(from)?, ms(to)?));
                lock(&shared).delivered_in_window = 0;
                lock(&shared).pushes_in_window = 0;
                lock(&shared).e2e.reset();
                "{}".to_owned()
            }
            ["count", step] => {
                let step: u32 = step.parse()?;
                let tally = lock(&shared);
                let unique = tally
                    .received
                    .get(&step)
                    .map_or(0, |sets| sets.iter().map(SeqSet::len).sum());
                serde_json::to_string(&Count { unique })?
            }
            ["report", step, files @ ..] => {
                let step: u32 = step.parse()?;
                let mut accepted = SeqSet::default();
                for file in files {
                    let bytes = std::fs::read(file).with_context(|| format!("reading {file}"))?;
                    accepted.union_with(&SeqSet::from_bytes(&bytes));
                }
                let tally = lock(&shared);
                let empty = SeqSet::default();
                let sets = tally.received.get(&step);
                let per_bureau = |i: usize| sets.map_or(&empty, |s| &s[i]);
                let report = StepReport {
                    lost: (0..tally.bureaus)
                        .map(|i| accepted.missing_from(per_bureau(i)))
                        .sum(),
                    duplicates: tally.duplicates.get(&step).copied().unwrap_or(0),
                    unconfirmed: (0..tally.bureaus)
                        .map(|i| per_bureau(i).missing_from(&accepted))
                        .sum(),
                    delivered_in_window: tally.delivered_in_window,
                    pushes_in_window: tally.pushes_in_window,
                    e2e_us: Recorded::of(&tally.e2e),
                };
                serde_json::to_string(&report)?
            }
            _ => anyhow::bail!("unknown command {line:?}"),
        };
        println!("{answer}");
    }
    Ok(())
}
