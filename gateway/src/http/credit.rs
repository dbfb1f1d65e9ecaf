//! Shared credit lists over HTTP: `POST /v1/credit/entries` (a publisher's bulk upload, one
//! JSON entry per line, all or nothing), `GET /v1/credit/{credit_code}` (the entries of one
//! enterprise, for the lists' bureaus and operators) and `GET /v1/credit` (the latest
//! listings and matches, for operators: what the dashboard and `gateway ctl credit` show).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use schemas::{BureauId, CreditCode, CreditEntry, ShanghaiDate};
use serde::{Deserialize, Serialize};

use super::caller::{Bureau, Operator, OperatorOrBureau};
use super::problem::Problem;
use super::state::AppState;
use crate::clock::{Millis, now_ms, shanghai_now};
use crate::credit::{self, Upload, UploadError};
use crate::ids::{self, IdempotencyKey};
use crate::metrics as m;
use crate::store::{CreditMatchRecord, CreditRecord, IngestOutcome, Store};

/// The media type of an upload: one JSON entry per line.
const UPLOAD_MEDIA_TYPE: &str = "application/x-ndjson";

pub(super) fn router<S: Store + Clone>() -> Router<Arc<AppState<S>>> {
    Router::new()
        .route("/v1/credit/entries", post(upload::<S>))
        .route("/v1/credit", get(recent::<S>))
        .route("/v1/credit/{credit_code}", get(lookup::<S>))
}

/// What an upload committed (or found already published).
#[derive(Debug, Serialize)]
struct UploadReceipt {
    /// Entry versions published now.
    published: usize,
    /// Lines already published with the same content (nothing done for them).
    unchanged: Vec<usize>,
    /// The gateway ids of the new versions' events.
    message_ids: Vec<schemas::MessageId>,
    /// Deliveries queued for the lists' receivers.
    deliveries: usize,
}

async fn upload<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Bureau(publisher): Bureau,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let body = body.map_err(Problem::from)?;
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if media_type.as_deref() != Some(UPLOAD_MEDIA_TYPE) {
        return Err(Problem::unsupported_media_type(format!(
            "send Content-Type: {UPLOAD_MEDIA_TYPE}, one JSON entry per line"
        )));
    }
    let lines = credit::read_upload(&body, state.config.credit.max_entries).map_err(refusal)?;
    let key = match headers.get("idempotency-key") {
        Some(value) => IdempotencyKey::from_header(value.as_bytes())
            .map_err(|e| Problem::bad_request(e.to_string()))?,
        None => IdempotencyKey::for_credit_upload(ids::sha256(&body).as_str().as_bytes()),
    };
    let ids = credit::entry_ids(&lines);
    let limit = ids.len().saturating_mul(64).max(credit::MAX_VERSIONS_READ);
    let stored = state.store.credit_entries(publisher, ids, limit).await?;
    let now = now_ms();
    let at = shanghai_now().ok_or_else(|| {
        Problem::unavailable("the system clock is outside the years the model accepts")
    })?;
    let planned = credit::plan_upload(
        &state.config.credit,
        Upload {
            publisher,
            lines,
            body: body.to_vec(),
            key,
        },
        &stored,
        now,
        at,
    )
    .map_err(refusal)?;
    if planned.published.is_empty() {
        let receipt = UploadReceipt {
            published: 0,
            unchanged: planned.unchanged,
            message_ids: Vec::new(),
            deliveries: 0,
        };
        return Ok((StatusCode::OK, axum::Json(receipt)).into_response());
    }
    let subscribers: Vec<BureauId> = planned
        .message
        .events
        .iter()
        .flat_map(|e| e.subscribers.iter().copied())
        .collect();
    match state.store.ingest(planned.message).await? {
        IngestOutcome::Accepted(receipt) => {
            for record in &planned.published {
                let change = if record.entry.removal.is_some() {
                    "removed"
                } else {
                    "listed"
                };
                metrics::counter!(m::CREDIT_ENTRIES, "list" => record.entry.list.code(), "change" => change)
                    .increment(1);
            }
            tracing::info!(message = "credit entries published", bureau = %publisher, published = planned.published.len(), deliveries = receipt.deliveries);
            state.activity.received(publisher, now);
            state.wakers.wake_for(subscribers);
            let answer = UploadReceipt {
                published: planned.published.len(),
                unchanged: planned.unchanged,
                message_ids: receipt.message_ids,
                deliveries: receipt.deliveries,
            };
            Ok((StatusCode::OK, axum::Json(answer)).into_response())
        }
        IngestOutcome::Duplicate(receipt) => {
            let answer = UploadReceipt {
                published: receipt.message_ids.len(),
                unchanged: planned.unchanged,
                message_ids: receipt.message_ids,
                deliveries: receipt.deliveries,
            };
            let mut response = (StatusCode::OK, axum::Json(answer)).into_response();
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(response)
        }
    }
}

fn refusal(error: UploadError) -> Problem {
    match error {
        UploadError::Invalid(errors) => {
            let mut lines: Vec<&str> = errors
                .iter()
                .filter_map(|e| e.path.split(':').next())
                .collect();
            lines.dedup();
            let mut problem = Problem::invalid(errors.clone());
            problem.detail = format!(
                "{} value(s) rejected ({}); nothing of the upload was stored",
                errors.len(),
                lines.join(", ")
            );
            problem
        }
        UploadError::Empty => Problem::bad_request("the upload has no entry"),
        UploadError::TooMany { max } => Problem::too_large(format!(
            "an upload carries at most {max} entries (credit.max_entries)"
        )),
    }
}

/// One entry of a lookup: its latest version, who listed it and when.
#[derive(Debug, Serialize)]
struct Listing {
    publisher: BureauId,
    /// When its latest version was committed (Unix milliseconds).
    listed_at: Millis,
    /// Whether it has effect today.
    active: bool,
    /// How many versions it has had.
    versions: usize,
    entry: CreditEntry,
}

#[derive(Debug, Serialize)]
struct Lookup {
    credit_code: CreditCode,
    /// The day "active" was judged on.
    on: ShanghaiDate,
    /// Entries in effect today.
    active: Vec<Listing>,
    /// Entries expired or removed.
    past: Vec<Listing>,
}

fn listings(records: &[CreditRecord], today: ShanghaiDate) -> Vec<Listing> {
    credit::current(records)
        .into_iter()
        .map(|r| Listing {
            publisher: r.publisher,
            listed_at: r.listed_at,
            active: r.entry.is_active_on(today),
            versions: records
                .iter()
                .filter(|o| o.publisher == r.publisher && o.entry.entry_id == r.entry.entry_id)
                .count(),
            entry: r.entry.clone(),
        })
        .collect()
}

fn today() -> Result<ShanghaiDate, Problem> {
    let now = shanghai_now().ok_or_else(|| {
        Problem::unavailable("the system clock is outside the years the model accepts")
    })?;
    Ok(ShanghaiDate::new(now.naive_local().date()))
}

async fn lookup<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    caller: OperatorOrBureau,
    code: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let Path(code) = code?;
    if let OperatorOrBureau::Bureau(bureau) = caller
        && !state.config.credit.may_look_up(bureau)
    {
        return Err(Problem::forbidden(
            "only the bureaus of a credit list (credit.lists.<list>) and operators look up credit codes",
        ));
    }
    let code = CreditCode::parse(&code).map_err(|problem| {
        let mut refused = Problem::invalid(vec![schemas::NormalizeError {
            field: schemas::CanonicalField::CreditSubjectCode,
            path: "/credit_code".into(),
            text: code.clone(),
            problem: problem.clone(),
        }]);
        refused.detail = format!("{code:?} is not a unified social credit code: {problem}");
        refused
    })?;
    let records = state
        .store
        .credit_entries_of(vec![code.clone()], credit::MAX_VERSIONS_READ)
        .await?;
    let on = today()?;
    let (active, past) = listings(&records, on).into_iter().partition(|l| l.active);
    Ok(axum::Json(Lookup {
        credit_code: code,
        on,
        active,
        past,
    })
    .into_response())
}

#[derive(Debug, Deserialize)]
struct RecentQuery {
    limit: Option<usize>,
}

#[derive(Debug, Serialize)]
struct Recent {
    entries: Vec<CreditRecord>,
    matches: Vec<CreditMatchRecord>,
}

async fn recent<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Operator(_): Operator,
    query: Result<Query<RecentQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(20);
    if !(1..=200).contains(&limit) {
        return Err(Problem::bad_request("limit is 1 to 200"));
    }
    let entries = state.store.recent_credit_entries(limit).await?;
    let matches = state.store.recent_credit_matches(limit).await?;
    Ok(axum::Json(Recent { entries, matches }).into_response())
}
