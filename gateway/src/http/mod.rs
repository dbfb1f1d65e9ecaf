//! The HTTP surface: one router merged from per-resource routers, each handler stating in its
//! signature who may call it (the extractors of `caller`) and returning `Result<_, Problem>`.
//!
//! - `ingest`: `POST /v1/messages`.
//! - `feed`: `GET /v1/feed`, `POST /v1/feed/ack` (pull bureaus).
//! - `surveys`: `POST /v1/surveys` and the reads of results and files.
//! - `credit`: `POST /v1/credit/entries` (bulk uploads), `GET /v1/credit/{credit_code}`,
//!   `GET /v1/credit` (recent listings).
//! - `operator`: dead letters, replay, purge, `/metrics`.
//! - `admin`: the admin API (`/v1/admin/…`): status, bureaus, pause / resume, traces, cases.
//! - `dashboard`: the operators' HTML dashboard, `/ops` (not in the OpenAPI document: pages).
//! - `health`: `/healthz`, `/readyz`.
//! - `problem`: RFC 9457 `Problem`, with the one `From<StoreError>`.
//! - `limits`: one `Host` header, the in-flight body budget, the upload progress rule.
//!
//! Architecture invariant: a handler parses its request into typed values first, then applies
//! them (to the store, through the domain modules); it answers 2xx for a write only after the
//! store committed it. Nothing below this folder imports from it. Every handler names its caller
//! (a `caller` extractor) before any body extractor, so no body byte is read, and nothing of the
//! body budget is reserved, for a caller who may not call it.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use crate::store::Store;

mod admin;
pub mod caller;
mod credit;
mod dashboard;
mod feed;
mod health;
mod ingest;
mod joint;
mod limits;
mod operator;
pub mod problem;
mod reports;
mod state;
mod surveys;

pub use caller::{Bureau, Operator, OperatorOrPublisher, Publisher, PullBureau};
pub use problem::Problem;
pub use state::AppState;

/// Every endpoint's path, as documented in `schemas/api/openapi.json` (a test compares them).
pub const PATHS: [&str; 27] = [
    "/v1/messages",
    "/v1/feed",
    "/v1/feed/ack",
    "/v1/dead-letters",
    "/v1/dead-letters/replay",
    "/v1/dead-letters/purge",
    "/v1/dead-letters/{id}",
    "/v1/admin/status",
    "/v1/admin/bureaus",
    "/v1/admin/bureaus/{bureau}/pause",
    "/v1/admin/bureaus/{bureau}/resume",
    "/v1/admin/trace/{message_id}",
    "/v1/admin/cases/{key}",
    "/v1/joint-cases",
    "/v1/joint-cases/{id}",
    "/v1/clocks/overdue",
    "/v1/reports/monthly",
    "/metrics",
    "/healthz",
    "/readyz",
    "/v1/surveys",
    "/v1/surveys/{id}",
    "/v1/surveys/{id}/files/{sha256}",
    "/v1/surveys/{id}/reads",
    "/v1/credit/entries",
    "/v1/credit",
    "/v1/credit/{credit_code}",
];

/// The HTTP router of a gateway node.
pub fn router<S: Store + Clone>(state: Arc<AppState<S>>) -> Router {
    let limits = &state.config.limits;
    let messages = Router::new()
        .merge(ingest::router())
        .merge(feed::router())
        .merge(operator::router())
        .merge(joint::router())
        .merge(reports::router())
        .merge(admin::router())
        .merge(dashboard::router())
        .merge(health::router())
        .layer(axum::extract::DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            limits::BodyBudget::new(limits.max_in_flight_body_bytes, limits.max_body_bytes),
            limits::budget,
        ))
        .layer(middleware::from_fn_with_state(
            Duration::from_secs(limits.request_timeout_seconds),
            time_limit,
        ));
    // Survey uploads carry files: their own body limit and timeout.
    let uploads = &state.config.surveys;
    let surveys = surveys::router()
        .layer(axum::extract::DefaultBodyLimit::max(
            uploads.max_upload_bytes,
        ))
        .layer(middleware::from_fn_with_state(
            Duration::from_secs(uploads.upload_stall_seconds),
            limits::progress,
        ))
        .layer(middleware::from_fn_with_state(
            Duration::from_secs(uploads.upload_timeout_seconds),
            time_limit,
        ));
    // Credit uploads: their own body limit (a list of thousands of entries).
    let credit = credit::router().layer(axum::extract::DefaultBodyLimit::max(
        state.config.credit.max_upload_bytes,
    ));
    messages
        .merge(surveys)
        .merge(credit)
        .with_state(state)
        .fallback(|| async { Problem::not_found("no such endpoint") })
        .layer(middleware::from_fn(limits::single_host))
}

/// Answers 408 when a request takes longer than its limit; what was not committed by then is
/// not stored, and a re-send with the same idempotency key is safe.
async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Problem::timeout().into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_documents_exactly_the_served_paths() {
        let text = include_str!("../../../schemas/api/openapi.json");
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

    #[test]
    fn openapi_names_every_bureau_and_nothing_else() {
        let text = include_str!("../../../schemas/api/openapi.json");
        let openapi: serde_json::Value = serde_json::from_str(text).unwrap();
        let documented: Vec<&str> = openapi["components"]["schemas"]["BureauId"]["enum"]
            .as_array()
            .expect("schemas/api/openapi.json: components.schemas.BureauId.enum")
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect();
        for bureau in schemas::BureauId::ALL {
            assert!(
                documented.contains(&bureau.as_str()),
                "schemas/api/openapi.json: the BureauId enum lacks {bureau:?}"
            );
        }
        assert_eq!(
            documented.len(),
            schemas::BureauId::ALL.len(),
            "{documented:?}"
        );
    }
}
