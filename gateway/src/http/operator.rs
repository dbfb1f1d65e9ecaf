//! Operator endpoints: dead letters (list, one with its history, replay, purge), and the
//! Prometheus metrics page.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
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
use crate::ops::report;
use crate::store::{DeliveryId, ReplaySelector, Store};

/// At most this many dead letters are listed, or replayed, by one call.
const MAX_DEAD_LETTERS_PER_CALL: usize = 1000;

pub(super) fn router<S: Store + Clone>() -> Router<Arc<AppState<S>>> {
    Router::new()
        .route("/v1/dead-letters", get(dead_letters::<S>))
        .route("/v1/dead-letters/replay", post(replay::<S>))
        .route("/v1/dead-letters/purge", post(purge::<S>))
        .route("/v1/dead-letters/{id}", get(dead_letter::<S>))
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
        .replay(selector, &operator, now_ms(), MAX_DEAD_LETTERS_PER_CALL)
        .await?;
    tracing::info!(message = "dead letters replayed", %operator, replayed);
    state.wakers.delivery.notify_waiters();
    Ok(axum::Json(serde_json::json!({ "replayed": replayed })).into_response())
}

/// `GET /v1/dead-letters/{id}`: one dead letter with its attempt history.
async fn dead_letter<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    _: Operator,
    id: Result<Path<DeliveryId>, PathRejection>,
) -> Result<Response, Problem> {
    let Path(id) = id?;
    match state.store.dead_letter(id).await? {
        Some(letter) => Ok(axum::Json(letter).into_response()),
        None => Err(Problem::not_found(format!("no dead letter {id}"))),
    }
}

/// `POST /v1/dead-letters/purge` with `{"subscriber": "water"}` or `{"ids": [..]}`: up to 1000
/// dead letters are deleted for good (the messages and events stay on record); call again while
/// `purged` is 1000.
async fn purge<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Operator(operator): Operator,
    request: Result<axum::Json<ReplayRequest>, JsonRejection>,
) -> Result<Response, Problem> {
    let axum::Json(request) = request?;
    let selector = request.selector()?;
    let purged = state
        .store
        .purge(selector, &operator, now_ms(), MAX_DEAD_LETTERS_PER_CALL)
        .await?;
    tracing::info!(message = "dead letters purged", %operator, purged);
    Ok(axum::Json(serde_json::json!({ "purged": purged })).into_response())
}

/// Refreshes the queue and pause gauges from the store before a scrape.
async fn refresh_gauges<S: Store>(state: &AppState<S>) {
    let read = async {
        let subscribers = state.config.bureaus.keys().copied().collect();
        let stats = state.store.backlogs(subscribers).await?;
        let pauses = state.store.pauses().await?;
        Ok::<_, crate::store::StoreError>((stats, pauses))
    };
    match read.await {
        Ok((stats, pauses)) => {
            report::queue_gauges(&stats, now_ms());
            report::pause_gauges(&state.config, &pauses);
        }
        Err(error) => {
            // The gauges keep their last values; /readyz reports the store itself.
            error.count();
            tracing::warn!(
                message = "queue gauges not refreshed",
                error = &error as &dyn std::error::Error
            );
        }
    }
}

/// `GET /metrics`: Prometheus text format.
async fn metrics_page<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    _: Operator,
) -> Response {
    refresh_gauges(&state).await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m::handle().render(),
    )
        .into_response()
}
