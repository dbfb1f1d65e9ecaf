//! The pull feed: `GET /v1/feed` hands a pull bureau its pending deliveries in its own format,
//! `POST /v1/feed/ack` acknowledges them. Unacknowledged items come back on the next fetch.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::caller::PullBureau;
use super::problem::Problem;
use super::state::AppState;
use crate::clock::now_ms;
use crate::metrics as m;
use crate::store::Store;

pub(super) fn router<S: Store + Clone>() -> Router<Arc<AppState<S>>> {
    Router::new()
        .route("/v1/feed", get(feed::<S>))
        .route("/v1/feed/ack", post(feed_ack::<S>))
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
    PullBureau(bureau): PullBureau,
    query: Result<Query<FeedQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query?;
    let (Some(waker), Some(adapter)) = (state.wakers.feed(bureau), adapters::for_bureau(bureau))
    else {
        tracing::error!(message = "a pull bureau has no feed waker or adapter", %bureau);
        return Err(Problem::internal());
    };
    let limits = &state.config.limits;
    let wait = Duration::from_secs(query.wait.unwrap_or(0).min(limits.feed_max_wait_seconds));
    // Above the maximum is capped (documented); below one asks for nothing and is refused.
    let limit = match query.limit {
        Some(0) => return Err(Problem::bad_request("limit must be at least 1")),
        Some(limit) => limit.min(limits.feed_max_items),
        None => limits.feed_max_items,
    };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Register for wake-ups before looking, so a commit in between is not missed.
        let notified = waker.notified();
        let mut notified = std::pin::pin!(notified);
        notified.as_mut().enable();
        let items = state.store.feed_fetch(bureau, limit).await?;
        if let Some(last) = items.last() {
            let cursor = last.id;
            let events: Vec<_> = items.into_iter().map(|d| d.event).collect();
            let encoded = adapter
                .encode_batch(&format!("feed-{cursor}"), &events)
                .map_err(|error| Problem::internal_from("feed encode failed", &error))?;
            let mut response = (StatusCode::OK, encoded.body).into_response();
            let headers = response.headers_mut();
            if let Ok(value) = HeaderValue::from_str(&encoded.content_type) {
                headers.insert(header::CONTENT_TYPE, value);
            }
            headers.insert("feed-cursor", HeaderValue::from(cursor));
            return Ok(response);
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
    }
}

#[derive(Debug, Deserialize)]
struct AckQuery {
    cursor: i64,
}

/// `POST /v1/feed/ack?cursor=N`: everything fetched up to the cursor is delivered.
async fn feed_ack<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    PullBureau(bureau): PullBureau,
    query: Result<Query<AckQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query?;
    let now = now_ms();
    let acknowledged = state.store.feed_ack(bureau, query.cursor, now).await?;
    state.activity.delivered(bureau, now, acknowledged);
    metrics::counter!(m::DELIVERIES, "subscriber" => bureau.as_str(), "outcome" => "delivered")
        .increment(acknowledged);
    Ok(axum::Json(serde_json::json!({ "acknowledged": acknowledged })).into_response())
}
