//! `gateway demo`: the gateway on the embedded store with a generated dev PKI, and seven simulated
//! bureau systems that send realistic traffic in their own formats over mutual TLS (including
//! invalid messages and re-sends) and receive deliveries: water fails intermittently, transport
//! is down for the first third of the run, civil defense pulls its feed (and sometimes forgets
//! to acknowledge). It shows live progress, drains, prints a summary, and exits non-zero if any
//! accepted message did not reach every subscriber.
//!
//! - `traffic`: what the bureaus do (send, pull, publish surveys, read them), through `sim`.
//! - `tally`: what they counted.
//! - `console`: the live status block on a terminal, plain lines elsewhere; the log writer
//!   that keeps clear of the block.
//! - `summary`: the table, the refusals by reason, the loss check, survey reuse.
//! - `joint`: the one-stop applications; `credit`: one listed applicant and its warned permit.
//!
//! The bureaus see the gateway only as `sim` lets them, over the wire; the demo itself reads
//! the store's queue statistics for progress and the loss check.

mod console;
mod credit;
mod joint;
mod summary;
mod tally;
mod traffic;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use schemas::BureauId;
use tokio::sync::{mpsc, watch};

pub use console::{Console, LogWriter};
use console::{REDRAW, Status};
use tally::{Publications, SurveyReads, Tallies, Tally, total};

use crate::config::Config;
use crate::sim::{Behaviour, BureauClient, Endpoint, Inbox};
use crate::store::{QueueStat, Store};

/// Options of `gateway demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Folder for the store, the PKI (`DIR/pki/ca.pem`, `DIR/pki/<bureau>.pem|.key`,
    /// `DIR/pki/operator.pem|.key`) and the log (`DIR/gateway.log`). The demo's store and log
    /// are recreated on every run.
    #[arg(long, default_value = "demo-data")]
    pub data: PathBuf,
    /// Where the gateway listens.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// How long the bureaus send traffic, in seconds (Ctrl-C ends it early).
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Messages per second each bureau sends (at most: each connection waits for its answer).
    #[arg(long, default_value_t = 20)]
    pub rate: u32,
    /// Requests each bureau keeps in flight at once (its rate is shared among them).
    #[arg(long, default_value_t = 2)]
    pub connections: u32,
    /// The store: by default a SQLite file `DIR/gateway.db`, recreated on every run; with
    /// `postgres://USER@HOST:PORT/DB` a fresh schema `demo_<time>` in that database.
    #[arg(long)]
    pub store: Option<String>,
    /// Longest wait for the backlog to drain after sending stops, in seconds.
    #[arg(long, default_value_t = 120)]
    pub drain: u64,
    /// After the drain, keep the gateway (and the bureaus' endpoints) running until Ctrl-C, to
    /// look around the dashboard and `gateway ctl`; the summary follows.
    #[arg(long)]
    pub keep_running: bool,
}

impl DemoArgs {
    /// The demo's log file, `DIR/gateway.log` (recreated on every run).
    pub fn log_file(&self) -> PathBuf {
        self.data.join("gateway.log")
    }
}

/// How long a bureau's system waits for an answer before it counts a transport error.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the exchange must stay quiet to count as drained: longer than the demo's clock
/// interval (`clocks.check_interval_seconds = 2` below), so a tick's notices are not missed.
const QUIET_FOR: Duration = Duration::from_secs(3);

/// The longest wait, after the backlog drained, for the bureaus to finish reading the survey
/// results they were notified of.
const READS_WAIT: Duration = Duration::from_secs(10);

/// The store location: a fresh SQLite file in the data folder, or a fresh schema of the
/// PostgreSQL database given, so the summary counts this run only.
fn store_location(args: &DemoArgs) -> String {
    match &args.store {
        Some(url) if url.starts_with("postgres") => {
            let schema = format!("demo_{}", crate::clock::now_ms());
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}options=-c%20search_path%3D{schema}")
        }
        Some(other) => other.clone(),
        None => {
            let db = args.data.join("gateway.db");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
            format!("sqlite:{}", db.display())
        }
    }
}

/// The demo's configuration layer: fast retries and breakers, so failures show and heal
/// within the run, and the push bureaus' endpoints.
fn config_layer(args: &DemoArgs, store: &str, endpoints: &[Endpoint]) -> String {
    let pki_dir = args.data.join("pki");
    let mut layer = format!(
        "listen = \"{}\"\nstore = \"{}\"\n[tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n\
         [surveys]\nblob_dir = \"{}\"\n[audit]\ncheckpoint_dir = \"{}\"\n\
         [retry]\ninitial_delay_ms = 200\nmax_delay_seconds = 5\nmax_attempts = 100\n\
         [circuit]\nfailure_threshold = 5\nopen_seconds = 2\n\
         [delivery]\nlease_seconds = 15\nrequest_timeout_seconds = 5\npoll_interval_ms = 200\n\
         [clocks]\ncheck_interval_seconds = 2\n",
        args.listen,
        store,
        pki_dir.join("ca.pem").display(),
        pki_dir.join("gateway.pem").display(),
        pki_dir.join("gateway.key").display(),
        args.data.join("blobs").display(),
        args.data.join("audit").display(),
    );
    for endpoint in endpoints {
        layer.push_str(&format!(
            "[bureaus.{}]\ndelivery = \"push\"\nendpoint = \"{}\"\n",
            endpoint.bureau(),
            endpoint.url()
        ));
        // Greenery's system takes up to 25 deliveries per request (batch push).
        if endpoint.bureau() == BureauId::Greenery {
            layer.push_str("push_batch = 25\n");
        }
    }
    layer
}

/// Signs a checkpoint of the run's audit trail and verifies the whole trail against it: the
/// summary's line, and whether the trail is intact.
async fn check_trail<S: Store>(
    store: &S,
    node: &str,
    tls: &crate::net::tls::TlsFiles,
    dir: &std::path::Path,
    location: &str,
) -> (String, bool) {
    let checked = async {
        let signer = crate::audit::sign::NodeSigner::load(node, tls)?;
        crate::audit::checkpoint::write(store, &signer, Some(dir), None).await?;
        let ca = std::fs::read(&tls.ca).map_err(crate::audit::AuditError::io("reading the CA"))?;
        crate::audit::verify::store(store, Some(&ca), Vec::new()).await
    }
    .await;
    match checked {
        Ok(report) if report.is_intact() => (
            format!(
                "audit trail: {} entries in {} chain(s), hash-chained and verified against {} signed checkpoint(s) (gateway audit verify --store {location} --ca {})",
                report.entries,
                report.chains,
                report.checkpoints,
                tls.ca.display()
            ),
            true,
        ),
        Ok(report) => (
            format!(
                "audit trail BROKEN: {}",
                report
                    .broken
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            false,
        ),
        Err(error) => (format!("audit trail not checked: {error}"), false),
    }
}

async fn queue_stats<S: Store>(store: &S) -> Vec<QueueStat> {
    store.queue_stats().await.unwrap_or_default()
}

/// Runs the demo, showing progress on `console`; the exit status is non-zero if anything
/// accepted was lost.
pub async fn run(args: DemoArgs, console: Console) -> Result<ExitCode> {
    console.line(&format!("logs: {}", args.log_file().display()));
    let pki =
        crate::net::pki::init(&args.data.join("pki"), "gw-1").context("creating the dev PKI")?;
    let store = store_location(&args);
    let (stop, stop_rx) = watch::channel(false);

    // Every bureau's inbox; the survey notices it receives go to its reader, started below.
    let mut tallies = BTreeMap::new();
    let mut notices = BTreeMap::new();
    for bureau in BureauId::ALL {
        let reads = Arc::new(SurveyReads::default());
        let (to_reader, for_reader) = mpsc::unbounded_channel();
        let inbox = Inbox::new(bureau)
            .ids_only()
            .on_first_copy(traffic::notices_to(reads.clone(), to_reader));
        tallies.insert(bureau, Tally::new(Arc::new(inbox), reads));
        notices.insert(bureau, for_reader);
    }
    let tallies: Tallies = Arc::new(tallies);

    // The push bureaus' receiving endpoints (civil defense pulls instead): water fails 30% of
    // deliveries, transport is down (its port closed) for the first third of the run;
    // greenery takes its deliveries in batches.
    let transport_down_for = Duration::from_secs((args.duration / 3).max(3));
    let mut endpoints = Vec::new();
    for (bureau, tally) in tallies.iter() {
        let behaviour = match bureau {
            BureauId::CivilDefense => continue,
            BureauId::Water => Behaviour::Flaky(0.3),
            BureauId::Transport => Behaviour::Down,
            _ => Behaviour::Healthy,
        };
        endpoints.push(Endpoint::start(&pki, tally.inbox.clone(), behaviour).await?);
    }

    let config = Config::from_layers(&[&config_layer(&args, &store, &endpoints)], &[])?;
    let (node, tls_files) = (config.node.clone(), config.tls_files());
    let flows = crate::flows::FlowTable::new(&config, config.calendar()?);
    let today = crate::clock::shanghai_now()
        .map(|t| t.naive_local().date())
        .context("the system clock is outside the years the model accepts")?;
    let running = crate::start(config).await?;
    let gateway = running.addr();
    console.line(&format!(
        "gateway on https://{gateway}, store {store}, PKI {}",
        pki.dir.display()
    ));
    console.line(&format!(
        "dashboard: https://{gateway}/ops with the operator certificate (run with --keep-running to look around after the traffic): for a browser, `openssl pkcs12 -export -in {0}/operator.pem -inkey {0}/operator.key -out {0}/operator.p12 -passout pass:demo`, import operator.p12 (password demo) and trust {0}/ca.pem",
        pki.dir.display()
    ));
    console.line(&format!(
        "operate: gateway ctl --url https://{gateway} --ca {0}/ca.pem --cert {0}/operator.pem --key {0}/operator.key bureaus   (or curl --cacert {0}/ca.pem --cert {0}/operator.pem --key {0}/operator.key https://{gateway}/v1/admin/bureaus; metrics at /metrics)",
        pki.dir.display()
    ));
    console.line(&format!(
        "{} bureaus send {} msg/s each for {} s; water fails 30% of deliveries, transport is down for {} s, civil defense pulls",
        BureauId::ALL.len(),
        args.rate,
        args.duration,
        transport_down_for.as_secs()
    ));

    let mut clients = BTreeMap::new();
    for bureau in BureauId::ALL {
        let client = BureauClient::new(&pki, gateway, bureau)?.with_timeout(ANSWER_TIMEOUT);
        clients.insert(bureau, Arc::new(client));
    }
    let joint_sent = joint::send(&clients, &tallies, today).await;
    let listed = credit::list(&clients).await;
    console.line(match &listed {
        Ok(_) => "credit lists: housing listed one applicant on the dishonest list; planning sent a permit for it (its deliveries carry Credit-Warning)",
        Err(_) => "credit lists: the listing failed (see the summary)",
    });
    console.line(&format!(
        "one-stop construction permit: planning accepted 3 applications; {joint_sent} case events of planning and the branch bureaus sent (water asks one applicant for a supplement, the traffic police leave one review undecided past its 1-working-day limit)"
    ));
    let started = Instant::now();
    let until = started + Duration::from_secs(args.duration);
    let mut senders = Vec::new();
    for (bureau, client) in &clients {
        let connections = args.connections.max(1);
        for connection in 0..connections {
            senders.push(tokio::spawn(traffic::send_traffic(
                client.clone(),
                (*bureau as u64 + 1) * 1000 + u64::from(connection),
                (args.rate / connections).max(1),
                until,
                tallies.clone(),
                stop_rx.clone(),
            )));
        }
    }
    let readers: Vec<_> = notices
        .into_iter()
        .map(|(bureau, for_reader)| {
            tokio::spawn(traffic::read_surveys(
                clients[&bureau].clone(),
                tallies[&bureau].reads.clone(),
                for_reader,
            ))
        })
        .collect();
    let publications = Arc::new(Publications::default());
    let publisher = tokio::spawn(traffic::publish_surveys(
        clients[&BureauId::Planning].clone(),
        until,
        publications.clone(),
        tallies.clone(),
        stop_rx.clone(),
    ));
    let feed = tokio::spawn(traffic::pull_feed(
        clients[&BureauId::CivilDefense].clone(),
        tallies[&BureauId::CivilDefense].inbox.clone(),
        stop_rx.clone(),
    ));
    let transport = endpoints.iter().find(|e| e.bureau() == BureauId::Transport);

    let mut status = Status::new(&console, &tallies, started);
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    let mut interrupted = false;
    let mut transport_down = true;
    let mut redraw = tokio::time::interval(REDRAW);
    while Instant::now() < until {
        tokio::select! {
            _ = redraw.tick() => status.show("sending", &queue_stats(running.store()).await, &tallies),
            _ = &mut ctrl_c => { interrupted = true; break; }
        }
        if transport_down && started.elapsed() >= transport_down_for {
            transport_down = false;
            if let Some(transport) = transport {
                let line = match transport.set(Behaviour::Healthy).await {
                    Ok(()) => format!(
                        "[{:>4.0}s] transport is back up",
                        started.elapsed().as_secs_f64()
                    ),
                    Err(error) => format!("transport could not come back: {error}"),
                };
                console.line(&line);
            }
        }
    }
    let sending_seconds = started.elapsed().as_secs_f64();
    for sender in senders {
        let _ = sender.await;
    }
    let _ = publisher.await;
    if transport_down && let Some(transport) = transport {
        // A run shorter than the outage: transport comes back for the drain.
        let _ = transport.set(Behaviour::Healthy).await;
    }

    console.line(&format!(
        "sending stopped after {sending_seconds:.0} s; draining the backlog"
    ));
    let drain_until = Instant::now() + Duration::from_secs(args.drain);
    // Drained is quiet for longer than a clock tick: nothing pending, the flows' inbox empty,
    // and no tick since has raised a deadline or joint-case notice.
    let mut quiet_since: Option<Instant> = None;
    loop {
        let stats = queue_stats(running.store()).await;
        let pending: u64 = stats.iter().map(|s| s.pending).sum();
        let flows_idle = running
            .store()
            .flow_inbox(1)
            .await
            .is_ok_and(|inbox| inbox.is_empty());
        status.show("draining", &stats, &tallies);
        let quiet = pending == 0 && flows_idle;
        let since = *quiet_since.get_or_insert_with(Instant::now);
        if !quiet {
            quiet_since = None;
        }
        let settled = quiet && since.elapsed() > QUIET_FOR;
        if settled || Instant::now() >= drain_until || interrupted {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(REDRAW) => {}
            _ = &mut ctrl_c => { interrupted = true; }
        }
    }
    // Let the bureaus finish reading the results they were notified of.
    let reads_until = Instant::now() + READS_WAIT;
    while total(&tallies, |t| t.reads.queued.load(Ordering::Relaxed)) > 0
        && Instant::now() < reads_until
        && !interrupted
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    status.finish();
    let total_seconds = started.elapsed().as_secs_f64();
    if args.keep_running && !interrupted {
        console.line(&format!(
            "the gateway keeps running: dashboard https://{gateway}/ops, gateway ctl as above; Ctrl-C stops it and prints the summary"
        ));
        let _ = (&mut ctrl_c).await;
    }
    let stats = queue_stats(running.store()).await;
    let reuse = summary::survey_reuse(running.store(), &publications).await;
    let trail = check_trail(
        running.store(),
        &node,
        &tls_files,
        &args.data.join("audit"),
        &store,
    )
    .await;
    let joint = joint::summary(running.store(), &flows, today).await;
    let credit = credit::summary(running.store(), &clients, &listed).await;
    let bulletin = joint::bulletin(running.store(), &flows, today).await;
    let _ = stop.send(true);
    let _ = feed.await;
    running.shutdown().await;
    for endpoint in &endpoints {
        endpoint.stop().await;
    }
    for reader in readers {
        reader.abort();
    }
    let code = summary::summary(&tallies, &stats, sending_seconds, total_seconds);
    let blobs = summary::count_files(&args.data.join("blobs"));
    reuse.print(&publications, &tallies, blobs);
    println!("{}", trail.0);
    println!("{}", joint.0);
    println!("{bulletin}");
    println!("{}", credit.0);
    Ok(
        if reuse.failed(&tallies, &publications) || !trail.1 || !joint.1 || !credit.1 {
            ExitCode::FAILURE
        } else {
            code
        },
    )
}
