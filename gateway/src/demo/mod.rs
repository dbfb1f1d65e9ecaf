//! `gateway demo`: the gateway on the embedded store with a generated dev PKI, and six simulated
//! bureau systems that send realistic traffic in their own formats over mutual TLS (including
//! invalid messages and re-sends) and receive deliveries: water fails intermittently, transport
//! is down for the first third of the run, civil defense pulls its feed (and sometimes forgets
//! to acknowledge). It shows live progress, drains, prints a summary, and exits non-zero if any
//! accepted message did not reach every subscriber.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adapters::Adapter;
use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use http_body_util::{BodyExt, Full};
use schemas::BureauId;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::net::Identity;
use crate::net::Peer;
use crate::store::Store;

/// Options of `gateway demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Folder for the store and the PKI (`DIR/pki/ca.pem`, `DIR/pki/<bureau>.pem|.key`,
    /// `DIR/pki/operator.pem|.key`). The demo's store is recreated on every run.
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
}

use crate::delivery::{HttpsClient, https_client};

/// What one simulated bureau saw.
#[derive(Debug, Default)]
struct Tally {
    sent: AtomicU64,
    accepted: AtomicU64,
    resent: AtomicU64,
    duplicate_answers: AtomicU64,
    rejected: Mutex<BTreeMap<String, u64>>,
    /// Deliveries the gateway promised to others for this bureau's messages.
    promised: AtomicU64,
    /// Unique message ids received by this bureau.
    received: Mutex<HashSet<String>>,
    /// Deliveries received again (at-least-once).
    redelivered: AtomicU64,
    /// Refusals this bureau's endpoint answered on purpose (failure simulation).
    refused: AtomicU64,
    /// Deliveries it could not decode in its own format (must stay 0).
    undecodable: AtomicU64,
    /// Survey notices it received, and reads of results and files it made because of them.
    survey_notices: AtomicU64,
    survey_fetches: AtomicU64,
    survey_fetch_failures: AtomicU64,
}

/// Every bureau's tally.
type Tallies = Arc<BTreeMap<BureauId, Tally>>;

fn client(ca: &Path, cert: &Path, key: &Path) -> Result<HttpsClient> {
    let tls = crate::net::tls::client_config(ca, cert, key)?;
    Ok(https_client(&tls))
}

/// How a simulated receiving endpoint behaves.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    Healthy,
    /// Answers 503 to this share of requests.
    Flaky(f64),
}

#[derive(Clone)]
struct Endpoint {
    bureau: BureauId,
    behaviour: Behaviour,
    tallies: Tallies,
    /// The bureau's own client, to fetch shared survey results it is notified of.
    fetcher: Fetcher,
}

/// A bureau system's way back to the gateway, to read survey results.
#[derive(Clone)]
struct Fetcher {
    client: HttpsClient,
    gateway: String,
}

impl Fetcher {
    /// Reads a notified survey result and downloads its files (multi-survey-in-one reuse:
    /// the bureau uses the shared survey instead of commissioning its own).
    fn fetch(&self, notice: &schemas::SurveyNotice, tallies: Tallies, bureau: BureauId) {
        let this = self.clone();
        let id = notice.survey_id.as_str().to_owned();
        let files: Vec<String> = notice
            .result
            .files
            .iter()
            .map(|f| f.sha256.as_str().to_owned())
            .collect();
        tokio::spawn(async move {
            let mut paths = vec![format!("/v1/surveys/{id}")];
            paths.extend(
                files
                    .iter()
                    .map(|sha| format!("/v1/surveys/{id}/files/{sha}")),
            );
            for path in paths {
                let ok = match hyper::Request::get(format!("{}{path}", this.gateway))
                    .body(Full::new(Bytes::new()))
                {
                    Ok(request) => match this.client.request(request).await {
                        Ok(response) => {
                            let status = response.status();
                            let drained = response.into_body().collect().await.is_ok();
                            status.is_success() && drained
                        }
                        Err(_) => false,
                    },
                    Err(_) => false,
                };
                let tally = &tallies[&bureau];
                let counter = if ok {
                    &tally.survey_fetches
                } else {
                    &tally.survey_fetch_failures
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

/// A bureau's receiving endpoint: only the gateway may call it; it decodes every delivery in
/// its own format and records the message id.
async fn inbox(
    State(endpoint): State<Endpoint>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if !matches!(peer.0, Some(Identity::Gateway(_))) {
        return StatusCode::FORBIDDEN;
    }
    let tally = &endpoint.tallies[&endpoint.bureau];
    if let Behaviour::Flaky(share) = endpoint.behaviour
        && fastrand::f64() < share
    {
        tally.refused.fetch_add(1, Ordering::Relaxed);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(adapter) = adapters::for_bureau(endpoint.bureau) else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    match adapter.decode(&body, content_type) {
        Ok(events) => {
            let mut received = tally.received.lock().unwrap_or_else(|p| p.into_inner());
            for event in events {
                if !received.insert(event.message_id.as_str().to_owned()) {
                    tally.redelivered.fetch_add(1, Ordering::Relaxed);
                } else if let Some(notice) = event.survey() {
                    tally.survey_notices.fetch_add(1, Ordering::Relaxed);
                    endpoint
                        .fetcher
                        .fetch(notice, endpoint.tallies.clone(), endpoint.bureau);
                }
            }
            StatusCode::OK
        }
        Err(_) => {
            tally.undecodable.fetch_add(1, Ordering::Relaxed);
            StatusCode::UNPROCESSABLE_ENTITY
        }
    }
}

/// Serves a bureau's inbox on `listener` until `stop`.
fn serve_inbox(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    endpoint: Endpoint,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let router = Router::new()
        .route("/inbox", post(inbox))
        .with_state(endpoint);
    tokio::spawn(crate::net::listener::serve(
        listener,
        tls,
        router,
        async move {
            let _ = stop.wait_for(|s| *s).await;
        },
        Duration::from_secs(2),
    ))
}

/// Makes an invalid message the way bureau systems do: a credit code whose check character is
/// wrong, or a project code whose serial was garbled into "55B個" (as in the seed document).
fn corrupt(adapter: &dyn Adapter, rng: &mut fastrand::Rng) -> adapters::Encoded {
    let event = adapters::sample::case_event(rng, adapter.bureau());
    let encoded = adapter
        .encode(&event)
        .unwrap_or_else(|_| unreachable!("samples encode"));
    let (syntax_encoding, text) = match adapter.format().syntax {
        adapters::Syntax::Xml { encoding } => (
            Some(encoding),
            encoding.decode(&encoded.body).0.into_owned(),
        ),
        adapters::Syntax::Json => (None, String::from_utf8_lossy(&encoded.body).into_owned()),
    };
    let Some(case) = event.case() else {
        unreachable!("the generator makes case events")
    };
    let text = if rng.bool() {
        let code = case.applicant.credit_code.as_str();
        let wrong = if code.ends_with('0') { '1' } else { '0' };
        text.replacen(code, &format!("{}{wrong}", &code[..17]), 1)
    } else {
        let code = case.project.code.as_str();
        text.replacen(code, &format!("{}55B個", &code[..18]), 1)
    };
    let body = match syntax_encoding {
        Some(encoding) => encoding.encode(&text).0.into_owned(),
        None => text.into_bytes(),
    };
    adapters::Encoded {
        content_type: encoded.content_type,
        body,
    }
}

async fn post_message(
    client: &HttpsClient,
    url: &str,
    message: &adapters::Encoded,
    key: &str,
) -> Result<(StatusCode, Bytes)> {
    let request = hyper::Request::post(url)
        .header("content-type", &message.content_type)
        .header("idempotency-key", key)
        .body(Full::new(Bytes::from(message.body.clone())))?;
    let response = tokio::time::timeout(Duration::from_secs(30), client.request(request))
        .await
        .context("no answer in 30 s")??;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((StatusCode::from_u16(status.as_u16())?, body))
}

/// One bureau's system sending its traffic.
#[allow(clippy::too_many_arguments)] // one simulated connection's whole setup
async fn send_traffic(
    bureau: BureauId,
    seed: u64,
    client: HttpsClient,
    gateway: String,
    rate: u32,
    until: Instant,
    tallies: Tallies,
    mut stop: watch::Receiver<bool>,
) {
    let Some(adapter) = adapters::for_bureau(bureau) else {
        return;
    };
    let tally = &tallies[&bureau];
    let url = format!("{gateway}/v1/messages");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    let mut last: Option<(adapters::Encoded, String)> = None;
    while Instant::now() < until && !*stop.borrow() {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        // 3% re-sends of the previous message with the same key: the gateway must answer as
        // before and deliver nothing twice.
        let (message, key, resend) = match (&last, rng.u32(0..100)) {
            (Some((message, key)), 0..3) => (message.clone(), key.clone(), true),
            (_, roll) => {
                let message = if roll < 10 {
                    corrupt(adapter, &mut rng)
                } else {
                    adapter.sample(&mut rng)
                };
                (message, uuid::Uuid::now_v7().to_string(), false)
            }
        };
        tally.sent.fetch_add(1, Ordering::Relaxed);
        if resend {
            tally.resent.fetch_add(1, Ordering::Relaxed);
        }
        match post_message(&client, &url, &message, &key).await {
            Ok((StatusCode::ACCEPTED, body)) => {
                if resend {
                    tally.duplicate_answers.fetch_add(1, Ordering::Relaxed);
                } else {
                    tally.accepted.fetch_add(1, Ordering::Relaxed);
                    if let Ok(receipt) = serde_json::from_slice::<crate::store::Receipt>(&body) {
                        tally
                            .promised
                            .fetch_add(receipt.deliveries as u64, Ordering::Relaxed);
                    }
                    last = Some((message, key));
                }
            }
            Ok((status, body)) => {
                let reason = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|problem| {
                        let first = problem.get("errors")?.get(0)?;
                        Some(format!(
                            "{} {} ({})",
                            status.as_u16(),
                            first.get("field")?.as_str()?,
                            first.get("problem")?.get("type")?.as_str()?
                        ))
                    })
                    .unwrap_or_else(|| status.to_string());
                *tally
                    .rejected
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(reason)
                    .or_default() += 1;
            }
            Err(error) => {
                *tally
                    .rejected
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(format!("transport error: {error}"))
                    .or_default() += 1;
            }
        }
    }
}

/// Civil defense pulls its feed: long-polls, decodes the batch, and acknowledges — except
/// every fifth batch, which it "forgets", so those items come back.
async fn pull_feed(
    client: HttpsClient,
    gateway: String,
    tallies: Tallies,
    mut stop: watch::Receiver<bool>,
) {
    let fetcher = Fetcher {
        client: client.clone(),
        gateway: gateway.clone(),
    };
    let bureau = BureauId::CivilDefense;
    let Some(adapter) = adapters::for_bureau(bureau) else {
        return;
    };
    let tally = &tallies[&bureau];
    let mut batches = 0u64;
    while !*stop.borrow() {
        let request = match hyper::Request::get(format!("{gateway}/v1/feed?wait=2&limit=200"))
            .body(Full::new(Bytes::new()))
        {
            Ok(request) => request,
            Err(_) => return,
        };
        let response = tokio::select! {
            response = client.request(request) => response,
            _ = stop.changed() => return,
        };
        let Ok(response) = response else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        if response.status() != hyper::StatusCode::OK {
            continue;
        }
        let cursor = response
            .headers()
            .get("feed-cursor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let Ok(body) = response.into_body().collect().await.map(|b| b.to_bytes()) else {
            continue;
        };
        match adapter.decode(&body, &content_type) {
            Ok(events) => {
                let mut received = tally.received.lock().unwrap_or_else(|p| p.into_inner());
                for event in events {
                    if !received.insert(event.message_id.as_str().to_owned()) {
                        tally.redelivered.fetch_add(1, Ordering::Relaxed);
                    } else if let Some(notice) = event.survey() {
                        tally.survey_notices.fetch_add(1, Ordering::Relaxed);
                        fetcher.fetch(notice, tallies.clone(), bureau);
                    }
                }
            }
            Err(_) => {
                tally.undecodable.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        }
        batches += 1;
        if batches.is_multiple_of(5) {
            continue; // not acknowledged: the items come back on the next fetch
        }
        if let Some(cursor) = cursor
            && let Ok(request) =
                hyper::Request::post(format!("{gateway}/v1/feed/ack?cursor={cursor}"))
                    .body(Full::new(Bytes::new()))
        {
            let _ = client.request(request).await;
        }
    }
}

/// A file to upload: its name, media type and content.
pub type UploadFile = (String, String, Vec<u8>);

/// A `multipart/form-data` body: the metadata part, then one part per file.
pub fn survey_upload(metadata: &serde_json::Value, files: &[UploadFile]) -> (String, Vec<u8>) {
    let boundary = format!("survey-{}", uuid::Uuid::now_v7().simple());
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(metadata.to_string().as_bytes());
    for (name, media_type, content) in files {
        body.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {media_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The metadata of a survey result as a publisher sends it: values with their units.
pub fn survey_metadata(result: &schemas::SurveyResult) -> serde_json::Value {
    let figures: Vec<serde_json::Value> = result
        .figures
        .iter()
        .map(|f| {
            let unit = match f.name.unit_symbol() {
                "count" => "",
                unit => unit,
            };
            serde_json::json!({
                "name": crate::vocabulary::name(&f.name),
                "value": format!("{}{unit}", schemas::FigureName::value_text(&f.quantity)),
            })
        })
        .collect();
    serde_json::json!({
        "project": result.project.as_str(),
        "kind": crate::vocabulary::name(&result.kind),
        "agency": {
            "name": result.agency.name.as_str(),
            "credit_code": result.agency.credit_code.as_str(),
        },
        "surveyed_on": result.surveyed_on.to_string(),
        "figures": figures,
    })
}

/// What planning's publishing did.
#[derive(Debug, Default)]
struct Publications {
    ids: Mutex<Vec<String>>,
    corrections: AtomicU64,
    failures: AtomicU64,
}

/// Planning publishes survey results on behalf of surveying agencies: every two seconds a new
/// result, every third one a correction (a new version) of an earlier result that reuses one
/// of its files unchanged (stored once).
async fn publish_surveys(
    client: HttpsClient,
    gateway: String,
    until: Instant,
    publications: Arc<Publications>,
    tallies: Tallies,
    mut stop: watch::Receiver<bool>,
) {
    let mut rng = fastrand::Rng::with_seed(99);
    let mut earlier: Vec<(schemas::SurveyResult, Vec<UploadFile>)> = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(2));
    while Instant::now() < until && !*stop.borrow() {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        let correction = !earlier.is_empty() && rng.u32(0..3) == 0;
        let corrected = rng.usize(..earlier.len().max(1));
        let (mut result, mut files) = if correction {
            earlier[corrected].clone()
        } else {
            let notice = adapters::sample::survey_notice(&mut rng);
            let files = notice
                .result
                .files
                .iter()
                .map(|f| {
                    let size = rng.usize(16 * 1024..256 * 1024);
                    let content: Vec<u8> = (0..size).map(|_| rng.u8(..)).collect();
                    (f.name.as_str().to_owned(), f.media_type.clone(), content)
                })
                .collect();
            (notice.result, files)
        };
        if correction {
            // A corrected figure and a corrected first file; the other files are unchanged.
            result
                .figures
                .truncate(result.figures.len().saturating_sub(1));
            if let Some((_, _, content)) = files.first_mut() {
                content.push(b'\n');
            }
        }
        let (content_type, body) = survey_upload(&survey_metadata(&result), &files);
        let request = hyper::Request::post(format!("{gateway}/v1/surveys"))
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)));
        let outcome = match request {
            Ok(request) => client.request(request).await.ok(),
            Err(_) => None,
        };
        match outcome {
            Some(response) if response.status() == hyper::StatusCode::CREATED => {
                // A replay of an earlier publication (same content, same key) adds nothing.
                let replayed = response.headers().contains_key("idempotent-replayed");
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                if replayed {
                    continue;
                }
                let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if let Some(id) = answer.get("survey_id").and_then(|v| v.as_str()) {
                    let mut ids = publications.ids.lock().unwrap_or_else(|p| p.into_inner());
                    ids.push(id.to_owned());
                }
                // The notices are deliveries like any other: they count in the loss check.
                let deliveries = answer
                    .get("deliveries")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
                tallies[&BureauId::Planning]
                    .promised
                    .fetch_add(deliveries, Ordering::Relaxed);
                if correction {
                    publications.corrections.fetch_add(1, Ordering::Relaxed);
                    // The next correction of this result starts from this version.
                    earlier[corrected] = (result, files);
                } else {
                    earlier.push((result, files));
                }
            }
            _ => {
                publications.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn fmt_rate(count: u64, seconds: f64) -> String {
    format!("{:.0}/s", count as f64 / seconds.max(0.001))
}

async fn print_progress<S: Store>(store: &S, tallies: &Tallies, started: Instant) {
    let stats = store.queue_stats().await.unwrap_or_default();
    let pending: u64 = stats.iter().map(|s| s.pending).sum();
    let delivered: u64 = stats.iter().map(|s| s.delivered).sum();
    let mut line = format!(
        "[{:>4.0}s] backlog {pending:>5}  delivered {delivered:>6} |",
        started.elapsed().as_secs_f64()
    );
    for (bureau, tally) in tallies.iter() {
        let received = tally.received.lock().map(|r| r.len()).unwrap_or(0);
        line.push_str(&format!(
            " {} {}→{}",
            bureau.as_str(),
            tally.accepted.load(Ordering::Relaxed),
            received
        ));
    }
    println!("{line}");
}

/// Runs the demo; the exit status is non-zero if anything accepted was lost.
pub async fn run(args: DemoArgs) -> Result<ExitCode> {
    let pki_dir = args.data.join("pki");
    crate::net::pki::init(&pki_dir, "gw-1").context("creating the dev PKI")?;
    let ca = pki_dir.join("ca.pem");
    let store = match &args.store {
        Some(url) if url.starts_with("postgres") => {
            // A fresh schema, so the summary counts this run only.
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
    };
    let tallies: Tallies = Arc::new(
        BureauId::ALL
            .into_iter()
            .map(|b| (b, Tally::default()))
            .collect(),
    );
    let (stop, stop_rx) = watch::channel(false);

    // The bureaus' receiving endpoints (civil defense pulls instead).
    let mut endpoints = BTreeMap::new();
    let mut inboxes = Vec::new();
    let transport_down_for = Duration::from_secs((args.duration / 3).max(3));
    let mut transport_listener = None;
    for bureau in BureauId::ALL {
        if bureau == BureauId::CivilDefense {
            continue;
        }
        let (cert, key) = (
            pki_dir.join(format!("{bureau}.pem")),
            pki_dir.join(format!("{bureau}.key")),
        );
        let tls = crate::net::tls::endpoint_server_config(&ca, &cert, &key)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        endpoints.insert(bureau, format!("https://127.0.0.1:{}/inbox", addr.port()));
        let behaviour = if bureau == BureauId::Water {
            Behaviour::Flaky(0.3)
        } else {
            Behaviour::Healthy
        };
        let fetcher = Fetcher {
            client: client(&ca, &cert, &key)?,
            gateway: format!("https://{}", args.listen),
        };
        let endpoint = Endpoint {
            bureau,
            behaviour,
            fetcher,
            tallies: tallies.clone(),
        };
        if bureau == BureauId::Transport {
            // Down: the port is closed until it comes back.
            drop(listener);
            transport_listener = Some((addr, tls, endpoint));
        } else {
            inboxes.push(serve_inbox(listener, tls, endpoint, stop_rx.clone()));
        }
    }

    let mut layer = format!(
        "listen = \"{}\"\nstore = \"{}\"\n[tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n\
         [surveys]\nblob_dir = \"{}\"\n\
         [retry]\ninitial_delay_ms = 200\nmax_delay_seconds = 5\nmax_attempts = 100\n\
         [circuit]\nfailure_threshold = 5\nopen_seconds = 2\n\
         [delivery]\nlease_seconds = 15\nrequest_timeout_seconds = 5\npoll_interval_ms = 200\n",
        args.listen,
        store,
        ca.display(),
        pki_dir.join("gateway.pem").display(),
        pki_dir.join("gateway.key").display(),
        args.data.join("blobs").display(),
    );
    for (bureau, url) in &endpoints {
        layer.push_str(&format!(
            "[bureaus.{bureau}]\ndelivery = \"push\"\nendpoint = \"{url}\"\n"
        ));
    }
    let config = Config::from_layers(&[&layer], &[])?;
    let running = crate::start(config).await?;
    let gateway = format!("https://{}", running.addr());
    println!(
        "gateway on {gateway}, store {store}, PKI {}",
        pki_dir.display()
    );
    println!(
        "metrics: curl --cacert {0}/ca.pem --cert {0}/operator.pem --key {0}/operator.key {gateway}/metrics",
        pki_dir.display()
    );
    println!(
        "six bureaus send {} msg/s each for {} s; water fails 30% of deliveries, transport is down for {} s, civil defense pulls",
        args.rate,
        args.duration,
        transport_down_for.as_secs()
    );

    let started = Instant::now();
    let until = started + Duration::from_secs(args.duration);
    let mut senders = Vec::new();
    for bureau in BureauId::ALL {
        let client = client(
            &ca,
            &pki_dir.join(format!("{bureau}.pem")),
            &pki_dir.join(format!("{bureau}.key")),
        )?;
        let connections = args.connections.max(1);
        for connection in 0..connections {
            senders.push(tokio::spawn(send_traffic(
                bureau,
                (bureau as u64 + 1) * 1000 + u64::from(connection),
                client.clone(),
                gateway.clone(),
                (args.rate / connections).max(1),
                until,
                tallies.clone(),
                stop_rx.clone(),
            )));
        }
    }
    let feed_client = client(
        &ca,
        &pki_dir.join("civil_defense.pem"),
        &pki_dir.join("civil_defense.key"),
    )?;
    let publications = Arc::new(Publications::default());
    let publisher = tokio::spawn(publish_surveys(
        client(
            &ca,
            &pki_dir.join("planning.pem"),
            &pki_dir.join("planning.key"),
        )?,
        gateway.clone(),
        until,
        publications.clone(),
        tallies.clone(),
        stop_rx.clone(),
    ));
    let feed = tokio::spawn(pull_feed(
        feed_client,
        gateway.clone(),
        tallies.clone(),
        stop_rx.clone(),
    ));

    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    let mut interrupted = false;
    let mut progress = tokio::time::interval(Duration::from_secs(2));
    while Instant::now() < until {
        tokio::select! {
            _ = progress.tick() => print_progress(running.store(), &tallies, started).await,
            _ = &mut ctrl_c => { interrupted = true; break; }
        }
        if let Some((addr, _, _)) = &transport_listener
            && started.elapsed() >= transport_down_for
        {
            let addr = *addr;
            if let Some((_, tls, endpoint)) = transport_listener.take() {
                match TcpListener::bind(addr).await {
                    Ok(listener) => {
                        println!(
                            "[{:>4.0}s] transport is back up",
                            started.elapsed().as_secs_f64()
                        );
                        inboxes.push(serve_inbox(listener, tls, endpoint, stop_rx.clone()));
                    }
                    Err(error) => println!("transport could not come back on {addr}: {error}"),
                }
            }
        }
    }
    let sending_seconds = started.elapsed().as_secs_f64();
    for sender in senders {
        let _ = sender.await;
    }
    let _ = publisher.await;
    if let Some((addr, tls, endpoint)) = transport_listener.take()
        && let Ok(listener) = TcpListener::bind(addr).await
    {
        inboxes.push(serve_inbox(listener, tls, endpoint, stop_rx.clone()));
    }

    println!("sending stopped after {sending_seconds:.0} s; draining the backlog");
    let drain_started = Instant::now();
    let drain_until = drain_started + Duration::from_secs(args.drain);
    loop {
        let stats = running.store().queue_stats().await.unwrap_or_default();
        let pending: u64 = stats.iter().map(|s| s.pending).sum();
        if pending == 0 || Instant::now() >= drain_until || interrupted {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = &mut ctrl_c => { interrupted = true; }
        }
        print_progress(running.store(), &tallies, started).await;
    }
    // Let the bureaus finish reading the results they were notified of.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let total_seconds = started.elapsed().as_secs_f64();
    let stats = running.store().queue_stats().await.unwrap_or_default();
    let reuse = survey_reuse(running.store(), &publications).await;
    let _ = stop.send(true);
    let _ = feed.await;
    running.shutdown().await;
    for inbox in inboxes {
        let _ = inbox.await;
    }
    let code = summary(&tallies, &stats, sending_seconds, total_seconds);
    let blobs = count_files(&args.data.join("blobs"));
    reuse.print(&publications, &tallies, blobs);
    Ok(if reuse.failed(&tallies, &publications) {
        ExitCode::FAILURE
    } else {
        code
    })
}

/// How the published survey results were reused.
struct Reuse {
    /// Per result, the bureaus other than planning that read it.
    readers: Vec<usize>,
}

impl Reuse {
    fn print(&self, publications: &Publications, tallies: &Tallies, blobs: usize) {
        let notices: u64 = tallies
            .values()
            .map(|t| t.survey_notices.load(Ordering::Relaxed))
            .sum();
        let fetches: u64 = tallies
            .values()
            .map(|t| t.survey_fetches.load(Ordering::Relaxed))
            .sum();
        let saved: usize = self.readers.iter().sum();
        println!(
            "\nmulti-survey-in-one: {} results published ({} corrections as new versions), {notices} notices delivered in the bureaus' own formats, {fetches} reads of results and files; {saved} reuses by other bureaus (survey jobs saved); {blobs} distinct files stored",
            self.readers.len(),
            publications.corrections.load(Ordering::Relaxed),
        );
    }

    fn failed(&self, tallies: &Tallies, publications: &Publications) -> bool {
        let fetch_failures: u64 = tallies
            .values()
            .map(|t| t.survey_fetch_failures.load(Ordering::Relaxed))
            .sum();
        let publish_failures = publications.failures.load(Ordering::Relaxed);
        if fetch_failures > 0 || publish_failures > 0 {
            println!(
                "FAILED: {publish_failures} publications and {fetch_failures} survey reads failed"
            );
            return true;
        }
        false
    }
}

async fn survey_reuse<S: Store>(store: &S, publications: &Publications) -> Reuse {
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

fn count_files(dir: &Path) -> usize {
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

fn summary(
    tallies: &Tallies,
    stats: &[crate::store::QueueStat],
    sending_seconds: f64,
    total_seconds: f64,
) -> ExitCode {
    println!();
    println!(
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
    );
    let mut promised = 0;
    let mut received_total = 0;
    let mut accepted_total = 0;
    let mut undecodable = 0;
    for (bureau, tally) in tallies.iter() {
        let stat = stats.iter().find(|s| s.subscriber == *bureau);
        let rejected: u64 = tally.rejected.lock().map(|r| r.values().sum()).unwrap_or(0);
        let received = tally.received.lock().map(|r| r.len() as u64).unwrap_or(0);
        promised += tally.promised.load(Ordering::Relaxed);
        received_total += received;
        accepted_total += tally.accepted.load(Ordering::Relaxed);
        undecodable += tally.undecodable.load(Ordering::Relaxed);
        println!(
            "{:<15} {:>6} {:>8} {:>8} {:>7} {:>9} {:>9} {:>8} {:>7} {:>6}",
            bureau.as_str(),
            tally.sent.load(Ordering::Relaxed),
            tally.accepted.load(Ordering::Relaxed),
            rejected,
            tally.resent.load(Ordering::Relaxed),
            received,
            tally.redelivered.load(Ordering::Relaxed),
            tally.refused.load(Ordering::Relaxed),
            stat.map_or(0, |s| s.pending),
            stat.map_or(0, |s| s.dead),
        );
    }
    println!("\nrejected, by reason:");
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for tally in tallies.values() {
        for (reason, n) in tally.rejected.lock().map(|r| r.clone()).unwrap_or_default() {
            *reasons.entry(reason).or_default() += n;
        }
    }
    for (reason, n) in &reasons {
        println!("  {n:>6}  {reason}");
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
