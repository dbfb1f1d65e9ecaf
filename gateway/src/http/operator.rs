//! Operator endpoints: dead letters and their replay, and the Prometheus metrics page.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use schemas::BureauId;
use serde::Deserialize;

use super::caller::Operator;
use super::problem::Problem;
use super::state::AppState;
use crate::clock::now_ms;
use crate::metrics as m;
use crate::store::{DeliveryId, ReplaySelector, Store};

/// At most this many dead letters are listed, or replayed, by one call.
const MAX_DEAD_LETTERS_PER_CALL: usize = 1000;

pub(super) fn router<S: Store + Clone>() -> Router<Arc<AppState<S>>> {
    Router::new()
        .route("/v1/dead-letters", get(dead_letters::<S>))
        .route("/v1/dead-letters/replay", post(replay::<S>))
        .route("/metrics", get(metrics_page::<S>))
}

#[derive(Debug, Deserialize)]
struct DeadLetterQuery {
    subscriber: Option<BureauId>,
    limit: Option<usize>,
}

/// `GET /v1/dead-letters?subscriber=water&limit=100`: the oldest dead letters with their
/// attempt history.
async fn dead_letters<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    _: Operator,
    query: Result<Query<DeadLetterQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query?;
    let limit = match query.limit {
        Some(limit @ 1..=MAX_DEAD_LETTERS_PER_CALL) => limit,
        Some(_) => {
            return Err(Problem::bad_request(format!(
                "limit must be 1 to {MAX_DEAD_LETTERS_PER_CALL}"
            )));
        }
        None => 100,
    };
    let letters = state.store.dead_letters(query.subscriber, limit).await?;
    Ok(axum::Json(letters).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    #[serde(default, deserialize_with = "present")]
    subscriber: Option<BureauId>,
    #[serde(default, deserialize_with = "present")]
    ids: Option<Vec<DeliveryId>>,
}

/// A field that may be absent but, when given, must hold a value: `null` is refused rather than
/// read as "not given".
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

impl ReplayRequest {
    fn selector(self) -> Result<ReplaySelector, Problem> {
        match (self.subscriber, self.ids) {
            (Some(subscriber), None) => Ok(ReplaySelector::Subscriber(subscriber)),
            (None, Some(ids)) if ids.len() <= MAX_DEAD_LETTERS_PER_CALL => {
                Ok(ReplaySelector::Ids(ids))
            }
            (None, Some(_)) => Err(Problem::bad_request(format!(
                "give at most {MAX_DEAD_LETTERS_PER_CALL} ids per call"
            ))),
            _ => Err(Problem::bad_request("give either subscriber or ids")),
        }
    }
}

/// `POST /v1/dead-letters/replay` with `{"subscriber": "water"}` or `{"ids": [..]}`: up to
/// 1000 dead letters (the oldest first) become pending again; call again while `replayed` is
/// 1000.
async fn replay<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Operator(operator): Operator,
    request: Result<axum::Json<ReplayRequest>, JsonRejection>,
) -> Result<Response, Problem> {
    let axum::Json(request) = request?;
    let selector = request.selector()?;
    let replayed = state
        .store
        .replay(selector, now_ms(), MAX_DEAD_LETTERS_PER_CALL)
        .await?;
    tracing::info!(message = "dead letters replayed", %operator, replayed);
    state.wakers.delivery.notify_waiters();
    Ok(axum::Json(serde_json::json!({ "replayed": replayed })).into_response())
}

/// Refreshes the queue gauges from the store.
async fn refresh_queue_gauges<S: Store>(store: &S) {
    let stats = match store.queue_stats().await {
        Ok(stats) => stats,
        Err(error) => {
            // The gauges keep their last values; /readyz reports the store itself.
            tracing::warn!(
                message = "queue gauges not refreshed",
                error = &error as &dyn std::error::Error
            );
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

/// `GET /metrics`: Prometheus text format.
async fn metrics_page<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    _: Operator,
) -> Response {
    refresh_queue_gauges(&state.store).await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m::handle().render(),
    )
        .into_response()
}
