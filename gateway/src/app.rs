//! The HTTP surface: bureau endpoints (ingest, pull feed), operator endpoints (dead letters,
//! replay, metrics) and health. Handlers learn the caller from the `Peer` the TLS layer puts in
//! each request; nothing in a message can change who the caller is.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters::DecodeError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use schemas::{BureauId, MessageId};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::config::{Config, DeliveryMode};
use crate::identity::Identity;
use crate::metrics as m;
use crate::problem::Problem;
use crate::routing::RouteTable;
use crate::store::{IngestOutcome, NewEvent, NewMessage, ReplaySelector, Store};

/// The caller, as the TLS layer identified it from its client certificate (`None`: no
/// certificate, or one naming no party of ours).
#[derive(Debug, Clone)]
pub struct Peer(pub Option<Identity>);

/// Wakes whoever waits for new work: delivery workers, and each pull bureau's long-polls.
#[derive(Debug, Default)]
pub struct Wakers {
    /// Delivery workers.
    pub delivery: Notify,
    feeds: HashMap<BureauId, Notify>,
}

impl Wakers {
    /// Wakers for these pull bureaus.
    pub fn new(pull: impl IntoIterator<Item = BureauId>) -> Self {
        Self {
            delivery: Notify::new(),
            feeds: pull.into_iter().map(|b| (b, Notify::new())).collect(),
        }
    }

    /// Wakes the delivery workers and every feed long-poll.
    pub fn wake_all(&self) {
        self.delivery.notify_waiters();
        for waker in self.feeds.values() {
            waker.notify_waiters();
        }
    }

    /// The waker of a pull bureau's feed.
    pub fn feed(&self, bureau: BureauId) -> Option<&Notify> {
        self.feeds.get(&bureau)
    }
}

/// What every handler shares.
pub struct AppState<S> {
    /// The configuration.
    pub config: Arc<Config>,
    /// The store.
    pub store: S,
    /// The routes.
    pub routes: RouteTable,
    /// New-work signals.
    pub wakers: Arc<Wakers>,
    /// Survey files.
    pub blobs: crate::blobs::BlobStore,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Every endpoint's path, as documented in `schemas/api/openapi.json` (a test compares them).
pub const PATHS: [&str; 12] = [
    "/v1/messages",
    "/v1/feed",
    "/v1/feed/ack",
    "/v1/dead-letters",
    "/v1/dead-letters/replay",
    "/metrics",
    "/healthz",
    "/readyz",
    "/v1/surveys",
    "/v1/surveys/{id}",
    "/v1/surveys/{id}/files/{sha256}",
    "/v1/surveys/{id}/reads",
];

/// The HTTP router of a gateway.
pub fn router<S: Store + Clone>(state: Arc<AppState<S>>) -> Router {
    let timeout = Duration::from_secs(state.config.limits.request_timeout_seconds);
    let max_body = state.config.limits.max_body_bytes;
    let surveys = crate::surveys::router(state.clone());
    Router::new()
        .route("/v1/messages", post(ingest::<S>))
        .route("/v1/feed", get(feed::<S>))
        .route("/v1/feed/ack", post(feed_ack::<S>))
        .route("/v1/dead-letters", get(dead_letters::<S>))
        .route("/v1/dead-letters/replay", post(replay::<S>))
        .route("/metrics", get(metrics_page::<S>))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz::<S>))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(
            move |req: Request, next: Next| async move {
                match tokio::time::timeout(timeout, next.run(req)).await {
                    Ok(response) => response,
                    Err(_) => Problem::timeout().into_response(),
                }
            },
        ))
        .with_state(state)
        .merge(surveys)
        .fallback(|| async { Problem::not_found("no such endpoint") })
}

/// The bureau a request comes from, or the problem to answer.
pub(crate) fn bureau_of<S>(peer: &Peer, state: &AppState<S>) -> Result<BureauId, Problem> {
    match &peer.0 {
        Some(Identity::Bureau(bureau)) if state.config.bureaus.contains_key(bureau) => Ok(*bureau),
        Some(Identity::Bureau(bureau)) => Err(Problem::forbidden(format!(
            "bureau {bureau} is not configured on this gateway"
        ))),
        Some(other) => Err(Problem::forbidden(format!(
            "{other} is not a bureau; only bureau systems use this endpoint"
        ))),
        None => Err(Problem::unauthenticated(
            "present a client certificate issued by the exchange CA",
        )),
    }
}

pub(crate) fn operator_of(peer: &Peer) -> Result<(), Problem> {
    match &peer.0 {
        Some(Identity::Operator(_)) => Ok(()),
        Some(other) => Err(Problem::forbidden(format!("{other} is not an operator"))),
        None => Err(Problem::unauthenticated(
            "present an operator certificate issued by the exchange CA",
        )),
    }
}

fn count(bureau: BureauId, outcome: &'static str) {
    metrics::counter!(m::MESSAGES_RECEIVED, "bureau" => bureau.as_str(), "outcome" => outcome)
        .increment(1);
}

/// The idempotency key: the `Idempotency-Key` header, else derived from the message's own ids
/// (so a bureau re-sending the same message is recognized even without the header).
fn idempotency_key(headers: &HeaderMap, source_ids: &[String]) -> Result<String, Problem> {
    if let Some(value) = headers.get("idempotency-key") {
        let key = value
            .to_str()
            .ok()
            .filter(|k| !k.is_empty() && k.len() <= 128 && k.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                Problem::bad_request("Idempotency-Key must be 1-128 visible ASCII characters")
            })?;
        return Ok(format!("key:{key}"));
    }
    let joined = source_ids.join("\n");
    Ok(format!("ids:{:x}", Sha256::digest(joined.as_bytes())))
}

/// `POST /v1/messages`: decode with the sender's adapter, route, commit, then answer 202.
async fn ingest<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let sender = match bureau_of(&peer, &state) {
        Ok(sender) => sender,
        Err(problem) => return problem.into_response(),
    };
    let response = ingest_as(&state, sender, &headers, body).await;
    metrics::histogram!(m::INGEST_SECONDS, "bureau" => sender.as_str())
        .record(started.elapsed().as_secs_f64());
    response
}

async fn ingest_as<S: Store + Clone>(
    state: &AppState<S>,
    sender: BureauId,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let Some(adapter) = adapters::for_bureau(sender) else {
        return Problem::internal().into_response();
    };
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        count(sender, "unsupported");
        return Problem::unsupported_media_type(format!(
            "send Content-Type: {}",
            adapter.format().media_type
        ))
        .into_response();
    };
    let content_type = content_type.to_owned();
    // Large batches decode off the async threads.
    let decoded = if body.len() > 64 * 1024 {
        let body = body.clone();
        let content_type = content_type.clone();
        match tokio::task::spawn_blocking(move || adapter.decode(&body, &content_type)).await {
            Ok(decoded) => decoded,
            Err(_) => return Problem::internal().into_response(),
        }
    } else {
        adapter.decode(&body, &content_type)
    };
    let events = match decoded {
        Ok(events) => events,
        Err(error) => {
            tracing::info!(message = "message rejected", bureau = %sender, %error);
            let (outcome, problem) = match error {
                DecodeError::Invalid(errors) => ("invalid", Problem::invalid(errors)),
                DecodeError::TooLarge { .. } => {
                    ("too_large", Problem::too_large(error.to_string()))
                }
                DecodeError::UnsupportedContentType { .. } => (
                    "unsupported",
                    Problem::unsupported_media_type(error.to_string()),
                ),
                DecodeError::Encoding(_)
                | DecodeError::DtdForbidden
                | DecodeError::Malformed { .. } => {
                    ("malformed", Problem::malformed(error.to_string()))
                }
            };
            count(sender, outcome);
            return problem.into_response();
        }
    };
    if events.iter().any(|e| e.survey().is_some()) {
        count(sender, "invalid");
        return Problem::bad_request(
            "survey results are published with POST /v1/surveys, not sent as messages",
        )
        .into_response();
    }
    if let Some(event) = events.iter().find(|e| e.source != sender) {
        count(sender, "forbidden");
        tracing::warn!(message = "impersonation refused", certificate = %sender, claimed = %event.source);
        return Problem::forbidden(format!(
            "the message says it comes from {} but the client certificate names {sender}",
            event.source
        ))
        .into_response();
    }
    let source_ids: Vec<String> = events
        .iter()
        .map(|e| e.message_id.as_str().to_owned())
        .collect();
    let key = match idempotency_key(headers, &source_ids) {
        Ok(key) => key,
        Err(problem) => return problem.into_response(),
    };
    let mut new_events = Vec::with_capacity(events.len());
    for (mut event, source_message_id) in events.into_iter().zip(source_ids) {
        let subscribers = state.routes.subscribers(&event);
        let gateway_id = format!("gw-{}", uuid::Uuid::now_v7().simple());
        event.message_id = match MessageId::parse(&gateway_id) {
            Ok(id) => id,
            Err(_) => return Problem::internal().into_response(),
        };
        new_events.push(NewEvent {
            event,
            source_message_id,
            subscribers,
        });
    }
    let subscribers: Vec<BureauId> = new_events
        .iter()
        .flat_map(|e| e.subscribers.clone())
        .collect();
    let message = NewMessage {
        survey: None,
        sender,
        idempotency_key: key,
        content_type,
        sha256: format!("{:x}", Sha256::digest(&body)),
        body: body.to_vec(),
        received_at: now_ms(),
        events: new_events,
    };
    match state.store.ingest(message).await {
        Ok(IngestOutcome::Accepted(receipt)) => {
            count(sender, "accepted");
            tracing::info!(message = "message accepted", bureau = %sender, message_ids = ?receipt.message_ids, deliveries = receipt.deliveries);
            state.wakers.delivery.notify_waiters();
            for subscriber in subscribers {
                if let Some(waker) = state.wakers.feed(subscriber) {
                    waker.notify_waiters();
                }
            }
            (StatusCode::ACCEPTED, axum::Json(receipt)).into_response()
        }
        Ok(IngestOutcome::Duplicate(receipt)) => {
            count(sender, "duplicate");
            let mut response = (StatusCode::ACCEPTED, axum::Json(receipt)).into_response();
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            response
        }
        Err(error) => {
            count(sender, "unavailable");
            tracing::error!(message = "commit failed", bureau = %sender, %error);
            if error.is_retryable() {
                Problem::unavailable("the store cannot commit now; nothing was stored")
                    .into_response()
            } else {
                Problem::internal().into_response()
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct FeedQuery {
    wait: Option<u64>,
    limit: Option<usize>,
}

/// `GET /v1/feed?wait=30&limit=100`: a pull bureau's pending deliveries in its own format
/// (a native batch, or `multipart/mixed`), with `Feed-Cursor` to acknowledge; `204` when the
/// wait ends with nothing.
async fn feed<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(peer): Extension<Peer>,
    Query(query): Query<FeedQuery>,
) -> Response {
    let bureau = match bureau_of(&peer, &state) {
        Ok(bureau) => bureau,
        Err(problem) => return problem.into_response(),
    };
    let (Some(waker), Some(adapter)) = (state.wakers.feed(bureau), adapters::for_bureau(bureau))
    else {
        return Problem::forbidden(format!("{bureau} receives by push, not from the feed"))
            .into_response();
    };
    let limits = &state.config.limits;
    let wait = Duration::from_secs(query.wait.unwrap_or(0).min(limits.feed_max_wait_seconds));
    let limit = query
        .limit
        .unwrap_or(limits.feed_max_items)
        .clamp(1, limits.feed_max_items);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Register for wake-ups before looking, so a commit in between is not missed.
        let notified = waker.notified();
        let mut notified = std::pin::pin!(notified);
        notified.as_mut().enable();
        let items = match state.store.feed_fetch(bureau, limit).await {
            Ok(items) => items,
            Err(error) => {
                tracing::error!(message = "feed fetch failed", %bureau, %error);
                return Problem::unavailable("the store cannot be read now").into_response();
            }
        };
        if let Some(last) = items.last() {
            let cursor = last.id;
            let events: Vec<_> = items.into_iter().map(|d| d.event).collect();
            return match adapter.encode_batch(&format!("feed-{cursor}"), &events) {
                Ok(encoded) => {
                    let mut response = (StatusCode::OK, encoded.body).into_response();
                    let headers = response.headers_mut();
                    if let Ok(value) = HeaderValue::from_str(&encoded.content_type) {
                        headers.insert(header::CONTENT_TYPE, value);
                    }
                    headers.insert("feed-cursor", HeaderValue::from(cursor));
                    response
                }
                Err(error) => {
                    tracing::error!(message = "feed encode failed", %bureau, %error);
                    Problem::internal().into_response()
                }
            };
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return StatusCode::NO_CONTENT.into_response();
        }
    }
}

#[derive(Debug, Deserialize)]
struct AckQuery {
    cursor: i64,
}

/// `POST /v1/feed/ack?cursor=N`: everything up to the cursor is delivered.
async fn feed_ack<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(peer): Extension<Peer>,
    Query(query): Query<AckQuery>,
) -> Response {
    let bureau = match bureau_of(&peer, &state) {
        Ok(bureau) => bureau,
        Err(problem) => return problem.into_response(),
    };
    if state.config.bureaus.get(&bureau).map(|b| b.delivery) != Some(DeliveryMode::Pull) {
        return Problem::forbidden(format!("{bureau} receives by push, not from the feed"))
            .into_response();
    }
    match state.store.feed_ack(bureau, query.cursor, now_ms()).await {
        Ok(acknowledged) => {
            metrics::counter!(m::DELIVERIES, "subscriber" => bureau.as_str(), "outcome" => "delivered")
                .increment(acknowledged);
            axum::Json(serde_json::json!({ "acknowledged": acknowledged })).into_response()
        }
        Err(error) => {
            tracing::error!(message = "feed ack failed", %bureau, %error);
            Problem::unavailable("the store cannot commit now").into_response()
        }
    }
}

#[derive(Debug, Deserialize)]
struct DeadLetterQuery {
    subscriber: Option<BureauId>,
    limit: Option<usize>,
}

/// `GET /v1/dead-letters?subscriber=water` (operators).
async fn dead_letters<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(peer): Extension<Peer>,
    Query(query): Query<DeadLetterQuery>,
) -> Response {
    if let Err(problem) = operator_of(&peer) {
        return problem.into_response();
    }
    match state
        .store
        .dead_letters(query.subscriber, query.limit.unwrap_or(100).min(1000))
        .await
    {
        Ok(letters) => axum::Json(letters).into_response(),
        Err(_) => Problem::unavailable("the store cannot be read now").into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    subscriber: Option<BureauId>,
    ids: Option<Vec<i64>>,
}

/// `POST /v1/dead-letters/replay` with `{"subscriber": "water"}` or `{"ids": [..]}` (operators).
async fn replay<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(peer): Extension<Peer>,
    axum::Json(request): axum::Json<ReplayRequest>,
) -> Response {
    if let Err(problem) = operator_of(&peer) {
        return problem.into_response();
    }
    let selector = match (request.subscriber, request.ids) {
        (Some(subscriber), None) => ReplaySelector::Subscriber(subscriber),
        (None, Some(ids)) => ReplaySelector::Ids(ids),
        _ => return Problem::bad_request("give either subscriber or ids").into_response(),
    };
    match state.store.replay(selector, now_ms()).await {
        Ok(replayed) => {
            state.wakers.delivery.notify_waiters();
            axum::Json(serde_json::json!({ "replayed": replayed })).into_response()
        }
        Err(_) => Problem::unavailable("the store cannot commit now").into_response(),
    }
}

/// Refreshes the queue gauges from the store.
pub async fn refresh_queue_gauges<S: Store>(store: &S) {
    let stats = match store.queue_stats().await {
        Ok(stats) => stats,
        Err(error) => {
            // The gauges keep their last values; /readyz reports the store itself.
            tracing::warn!(message = "queue gauges not refreshed", %error);
            return;
        }
    };
    let now = now_ms();
    for stat in stats {
        let subscriber = stat.subscriber.as_str();
        metrics::gauge!(m::QUEUE_DEPTH, "subscriber" => subscriber).set(stat.pending as f64);
        metrics::gauge!(m::DEAD_LETTERS, "subscriber" => subscriber).set(stat.dead as f64);
        let age = stat
            .oldest_pending
            .map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
        metrics::gauge!(m::QUEUE_OLDEST_SECONDS, "subscriber" => subscriber).set(age);
    }
}

/// `GET /metrics` (operators): Prometheus text format.
async fn metrics_page<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(peer): Extension<Peer>,
) -> Response {
    if let Err(problem) = operator_of(&peer) {
        return problem.into_response();
    }
    refresh_queue_gauges(&state.store).await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m::handle().render(),
    )
        .into_response()
}

/// `GET /readyz`: the store answers and the node's certificate is valid for long enough.
async fn readyz<S: Store + Clone>(State(state): State<Arc<AppState<S>>>) -> Response {
    let mut problems = Vec::new();
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => problems.push(format!("store: {error}")),
        Err(_) => problems.push("store: no answer within 2 s".to_owned()),
    }
    let days_left = crate::tls::seconds_until_expiry(&state.config.tls.cert)
        .map(|s| s / 86_400)
        .map_err(|e| e.to_string());
    match &days_left {
        Ok(days) if *days < i64::from(state.config.tls.min_validity_days) => {
            problems.push(format!(
                "certificate expires in {days} days (minimum {})",
                state.config.tls.min_validity_days
            ))
        }
        Ok(_) => {}
        Err(error) => problems.push(format!("certificate: {error}")),
    }
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "ready": problems.is_empty(),
        "problems": problems,
        "certificate_days_left": days_left.ok(),
    });
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_documents_exactly_the_served_paths() {
        let text = include_str!("../../schemas/api/openapi.json");
        let openapi: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut documented: Vec<&str> = openapi["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        documented.sort_unstable();
        let mut served = PATHS.to_vec();
        served.sort_unstable();
        assert_eq!(documented, served);
    }
}
