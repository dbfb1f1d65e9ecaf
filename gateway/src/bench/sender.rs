//! `gateway bench sender`: one sending process, open loop. Message `s` of a step is due at
//! `start + s / rate` whatever happened to the messages before it: a slow gateway cannot slow
//! the sender down and so hide its queueing, since every latency is measured from the time the
//! message was due, not from when it was finally sent. Sends that would exceed the in-flight
//! cap are not sent and counted (the generator's own limit, reported, never hidden).
//!
//! It prints one JSON object ([`SenderReport`]) when done, and writes the set of accepted
//! sequence numbers to a file, for the loss check.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use hyper::{Method, StatusCode};
use schemas::{BureauCaseId, BureauId};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use super::record::{MARKER_LEN, Marker, PLACEHOLDER, Recorded, SeqSet, histogram};
use crate::clock::now_ms;
use crate::net::pki::PkiLayout;
use crate::sim::BureauClient;

/// The bureau whose system the bench sends as (its route fans out to `--fanout` bureaus).
pub const SENDER: BureauId = BureauId::Planning;

/// Options of `gateway bench sender`.
#[derive(Debug, Clone, clap::Args)]
pub struct SenderArgs {
    /// The dev PKI folder.
    #[arg(long)]
    pub pki: PathBuf,
    /// The gateway (or the HTTP ceiling server).
    #[arg(long)]
    pub gateway: SocketAddr,
    /// The rate step's number (in the marker).
    #[arg(long)]
    pub step: u32,
    /// Messages per second, over all senders.
    #[arg(long)]
    pub rate: u32,
    /// When message 0 is due, Unix milliseconds.
    #[arg(long)]
    pub start_at_ms: i64,
    /// Seconds of warm-up (sent, not measured).
    #[arg(long)]
    pub warmup: u64,
    /// Seconds measured.
    #[arg(long)]
    pub duration: u64,
    /// This sender's index among `of`: it sends the messages `s` with `s % of == index`.
    #[arg(long, default_value_t = 0)]
    pub index: u64,
    /// How many senders share the rate.
    #[arg(long, default_value_t = 1)]
    pub of: u64,
    /// Connections to the gateway (HTTP/2, many requests on each).
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Size of each message, at least (padded with an XML comment).
    #[arg(long, default_value_t = 1024)]
    pub payload_bytes: usize,
    /// Most requests in flight at once; a message due while all are in flight is not sent.
    #[arg(long, default_value_t = 20_000)]
    pub max_in_flight: usize,
    /// Distinguishes this run's idempotency keys from an earlier run's on the same store.
    #[arg(long)]
    pub run: String,
    /// Where to write the accepted sequence numbers.
    #[arg(long)]
    pub accepted_out: PathBuf,
}

/// What a sender reports when its step is over.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SenderReport {
    /// Messages due over the whole step (warm-up included).
    pub scheduled: u64,
    /// Messages due in the measured window.
    pub scheduled_in_window: u64,
    /// Not sent: the in-flight cap was reached when they were due.
    pub not_sent: u64,
    /// Answered 202 (committed).
    pub accepted: u64,
    /// Answered 202, due in the measured window.
    pub accepted_in_window: u64,
    /// Answered 503 (the gateway shedding load or its store unavailable).
    pub unavailable: u64,
    /// Answered with another status.
    pub other_status: u64,
    /// No answer: a connection error or a timeout (the message may have been committed).
    pub errors: u64,
    /// The first unexpected answer, for the operator.
    pub first_problem: Option<String>,
    /// 202 latencies of the window's messages, µs from the time each was due.
    pub latency_us: Recorded,
}

/// The template message: the sender's format, the placeholder marker as its case id, padded to
/// `payload_bytes`; and where the marker is.
fn template(payload_bytes: usize) -> Result<(Vec<u8>, String, usize)> {
    let adapter = adapters::for_bureau(SENDER).context("no adapter for the sender")?;
    let mut rng = fastrand::Rng::with_seed(11);
    let mut event = adapters::sample::case_event(&mut rng, SENDER);
    event.case_id = BureauCaseId::parse(PLACEHOLDER)
        .map_err(|e| anyhow::anyhow!("the placeholder is not a case id: {e}"))?;
    let encoded = adapter.encode(&event)?;
    let mut body = encoded.body;
    if body.len() < payload_bytes {
        // An XML comment after the declaration: every XML format ignores it.
        let at = body
            .windows(2)
            .position(|w| w == b"?>")
            .map_or(0, |at| at + 2);
        let padding = payload_bytes - body.len();
        let comment = format!("<!--{}-->", "x".repeat(padding.saturating_sub(7).max(1)));
        body.splice(at..at, comment.into_bytes());
    }
    let marker_at = memchr::memmem::find(&body, PLACEHOLDER.as_bytes())
        .context("the sender's format does not carry the case id verbatim")?;
    Ok((body, encoded.content_type, marker_at))
}

/// Counters shared by the send tasks.
#[derive(Default)]
struct Counts {
    not_sent: AtomicU64,
    accepted: AtomicU64,
    accepted_in_window: AtomicU64,
    unavailable: AtomicU64,
    other_status: AtomicU64,
    errors: AtomicU64,
}

/// Runs one sender until its last message is answered; prints its report.
pub async fn run(args: SenderArgs) -> Result<()> {
    let pki = PkiLayout::new(&args.pki);
    let clients: Vec<Arc<BureauClient>> = (0..args.connections.max(1))
        .map(|_| {
            BureauClient::new(&pki, args.gateway, SENDER)
                .map(|c| Arc::new(c.with_timeout(Duration::from_secs(30))))
        })
        .collect::<Result<_, _>>()?;
    let (body, content_type, marker_at) = template(args.payload_bytes)?;
    let body: Arc<[u8]> = body.into();
    let content_type: Arc<str> = content_type.into();

    let rate = f64::from(args.rate.max(1));
    let total = (rate * (args.warmup + args.duration) as f64) as u64;
    let window = {
        let from = (rate * args.warmup as f64) as u64;
        from..total
    };
    let accepted = Arc::new(SeqSet::with_capacity(total));
    let counts = Arc::new(Counts::default());
    let latencies = Arc::new(Mutex::new(histogram()));
    let first_problem = Arc::new(Mutex::new(None::<String>));
    let in_flight = Arc::new(Semaphore::new(args.max_in_flight.max(1)));

    // The step's time zero, as an instant of this process and as Unix microseconds.
    let wait = Duration::from_millis(u64::try_from(args.start_at_ms - now_ms()).unwrap_or(0));
    let start = Instant::now() + wait;
    let start_us = u64::try_from(args.start_at_ms).unwrap_or(0) * 1000;
    tokio::time::sleep_until(start.into()).await;

    let mut tasks = tokio::task::JoinSet::new();
    let mut seq = args.index;
    while seq < total {
        let due_now = (start.elapsed().as_secs_f64() * rate) as u64;
        while seq < total && seq <= due_now {
            let scheduled = start + Duration::from_secs_f64(seq as f64 / rate);
            let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                counts.not_sent.fetch_add(1, Ordering::Relaxed);
                seq += args.of;
                continue;
            };
            let mut message = body.to_vec();
            Marker {
                step: args.step,
                seq,
                scheduled_us: start_us + (seq as f64 * 1e6 / rate) as u64,
            }
            .write(&mut message[marker_at..marker_at + MARKER_LEN]);
            let key = format!("bench-{}-{}-{seq}", args.run, args.step);
            let client = clients[(seq / args.of) as usize % clients.len()].clone();
            let (content_type, counts, accepted, latencies, first_problem) = (
                content_type.clone(),
                counts.clone(),
                accepted.clone(),
                latencies.clone(),
                first_problem.clone(),
            );
            let measured = window.contains(&seq);
            tasks.spawn(async move {
                let headers = [
                    ("content-type", &*content_type),
                    ("idempotency-key", key.as_str()),
                ];
                let reply = client
                    .request(Method::POST, "/v1/messages", &headers, Bytes::from(message))
                    .await;
                let took = scheduled.elapsed();
                drop(permit);
                match reply {
                    Ok(reply) if reply.status == StatusCode::ACCEPTED => {
                        accepted.insert(seq);
                        counts.accepted.fetch_add(1, Ordering::Relaxed);
                        if measured {
                            counts.accepted_in_window.fetch_add(1, Ordering::Relaxed);
                            let mut h = latencies.lock().unwrap_or_else(|p| p.into_inner());
                            h.saturating_record(took.as_micros().max(1) as u64);
                        }
                    }
                    Ok(reply) => {
                        if reply.status == StatusCode::SERVICE_UNAVAILABLE {
                            counts.unavailable.fetch_add(1, Ordering::Relaxed);
                        } else {
                            counts.other_status.fetch_add(1, Ordering::Relaxed);
                        }
                        let mut first = first_problem.lock().unwrap_or_else(|p| p.into_inner());
                        first.get_or_insert_with(|| {
                            let text = String::from_utf8_lossy(&reply.body);
                            format!(
                                "{}: {}",
                                reply.status,
                                text.chars().take(300).collect::<String>()
                            )
                        });
                    }
                    Err(error) => {
                        counts.errors.fetch_add(1, Ordering::Relaxed);
                        let mut first = first_problem.lock().unwrap_or_else(|p| p.into_inner());
                        first.get_or_insert_with(|| error.to_string());
                    }
                }
            });
            seq += args.of;
        }
        // Reap finished tasks so the set holds only those in flight.
        while tasks.try_join_next().is_some() {}
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    while tasks.join_next().await.is_some() {}

    std::fs::write(&args.accepted_out, accepted.to_bytes())
        .with_context(|| format!("writing {}", args.accepted_out.display()))?;
    let mine =
        |range: std::ops::Range<u64>| range.filter(|s| s % args.of == args.index).count() as u64;
    let latency_us = Recorded::of(&latencies.lock().unwrap_or_else(|p| p.into_inner()));
    let report = SenderReport {
        scheduled: mine(0..total),
        scheduled_in_window: mine(window),
        not_sent: counts.not_sent.load(Ordering::Relaxed),
        accepted: counts.accepted.load(Ordering::Relaxed),
        accepted_in_window: counts.accepted_in_window.load(Ordering::Relaxed),
        unavailable: counts.unavailable.load(Ordering::Relaxed),
        other_status: counts.other_status.load(Ordering::Relaxed),
        errors: counts.errors.load(Ordering::Relaxed),
        first_problem: first_problem
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(),
        latency_us,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_decodes_with_its_marker_and_padding() {
        let (body, content_type, at) = template(1500).unwrap();
        assert!(body.len() >= 1500, "{}", body.len());
        assert_eq!(&body[at..at + MARKER_LEN], PLACEHOLDER.as_bytes());
        let mut body = body;
        let marker = Marker {
            step: 1,
            seq: 42,
            scheduled_us: 1_700_000_000_000_000,
        };
        marker.write(&mut body[at..at + MARKER_LEN]);
        let adapter = adapters::for_bureau(SENDER).unwrap();
        let events = adapter.decode(&body, &content_type).expect("decodes");
        assert_eq!(events.len(), 1);
        assert_eq!(
            Marker::find(events[0].case_id.as_str().as_bytes()),
            Some(marker)
        );
    }
}
