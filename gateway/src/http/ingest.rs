//! `POST /v1/messages`: a bureau sends case events in its own format.
//!
//! Four steps, each a function: [`parse`] decodes the body with the sender's adapter into a
//! [`Submission`] (or refuses it, saying why); [`credit_of`] reads the credit-list entries of
//! its applicants; [`route`] turns it into the [`NewMessage`] the store commits (gateway ids
//! minted, subscribers from the routes, the credit warnings of listed applicants); [`ingest`]
//! commits and answers 202 only after the commit.

use std::sync::Arc;
use std::time::Instant;

use adapters::DecodeError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use schemas::{BureauId, Event, MessageId};

use super::caller::Bureau;
use super::problem::Problem;
use super::state::AppState;
use crate::clock::now_ms;
use crate::credit;
use crate::flows::FlowTable;
use crate::ids::{self, IdempotencyKey};
use crate::metrics as m;
use crate::routing::RouteTable;
use crate::store::{CreditRecord, IngestOutcome, NewEvent, NewMessage, Store, StoreError};

pub(super) fn router<S: Store + Clone>() -> Router<Arc<AppState<S>>> {
    Router::new().route("/v1/messages", post(ingest::<S>))
}

/// Bodies above this size decode off the async threads.
const BLOCKING_DECODE_BYTES: usize = 64 * 1024;

/// A decoded message, checked against its sender, not yet routed.
struct Submission {
    sender: BureauId,
    key: IdempotencyKey,
    content_type: String,
    body: Bytes,
    /// The events with the ids the sender's own format gave them.
    events: Vec<Event>,
}

/// Why a message is refused, with the outcome label it is counted under.
struct Refusal {
    outcome: &'static str,
    problem: Problem,
}

impl Refusal {
    fn new(outcome: &'static str, problem: Problem) -> Self {
        Self { outcome, problem }
    }
}

fn count(bureau: BureauId, outcome: &'static str) {
    metrics::counter!(m::MESSAGES_RECEIVED, "bureau" => bureau.as_str(), "outcome" => outcome)
        .increment(1);
}

async fn ingest<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Bureau(sender): Bureau,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let outcome = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                "too_large"
            } else {
                "malformed"
            };
            let refusal = Refusal::new(outcome, Problem::from(rejection));
            count(sender, refusal.outcome);
            return refusal.problem.into_response();
        }
    };
    let response = match parse(sender, &headers, body).await {
        Ok(submission) => match credit_of(&state.store, &submission.events).await {
            Ok(credit) => {
                let message = route(submission, &state.routes, &state.flows, &credit);
                commit(&state, message).await
            }
            Err(error) => {
                count(sender, "unavailable");
                Problem::from(error).into_response()
            }
        },
        Err(refusal) => {
            count(sender, refusal.outcome);
            refusal.problem.into_response()
        }
    };
    metrics::histogram!(m::INGEST_SECONDS, "bureau" => sender.as_str())
        .record(started.elapsed().as_secs_f64());
    response
}

/// Decodes the body with the sender's adapter and checks what the events claim: their source is
/// the certificate's bureau, and none is a survey notice (those are published with
/// `POST /v1/surveys`).
async fn parse(sender: BureauId, headers: &HeaderMap, body: Bytes) -> Result<Submission, Refusal> {
    let adapter = adapters::for_bureau(sender).ok_or_else(|| {
        tracing::error!(message = "a configured bureau has no adapter", bureau = %sender);
        Refusal::new("unavailable", Problem::internal())
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| {
            Refusal::new(
                "unsupported",
                Problem::unsupported_media_type(format!(
                    "send Content-Type: {}",
                    adapter.format().media_type
                )),
            )
        })?;
    let decoded = if body.len() > BLOCKING_DECODE_BYTES {
        let (body, content_type) = (body.clone(), content_type.clone());
        tokio::task::spawn_blocking(move || adapter.decode(&body, &content_type))
            .await
            .map_err(|error| {
                Refusal::new(
                    "unavailable",
                    Problem::internal_from("the decoding task failed", &error),
                )
            })?
    } else {
        adapter.decode(&body, &content_type)
    };
    let header = |name: &str| {
        headers
            .get(name)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
    };
    let events = decoded
        .and_then(|events| {
            adapter.check_message_headers(&events, &header)?;
            Ok(events)
        })
        .map_err(|error| {
            tracing::info!(message = "message rejected", bureau = %sender, %error);
            match error {
                DecodeError::Invalid(errors) => Refusal::new("invalid", Problem::invalid(errors)),
                DecodeError::TooLarge { .. } => {
                    Refusal::new("too_large", Problem::too_large(error.to_string()))
                }
                DecodeError::UnsupportedContentType { .. } => Refusal::new(
                    "unsupported",
                    Problem::unsupported_media_type(error.to_string()),
                ),
                DecodeError::Encoding(_)
                | DecodeError::DtdForbidden
                | DecodeError::Malformed { .. } => {
                    Refusal::new("malformed", Problem::malformed(error.to_string()))
                }
            }
        })?;
    if events.iter().any(|e| e.survey().is_some()) {
        return Err(Refusal::new(
            "invalid",
            Problem::bad_request(
                "survey results are published with POST /v1/surveys, not sent as messages",
            ),
        ));
    }
    if let Some(event) = events.iter().find(|e| e.source != sender) {
        tracing::warn!(message = "impersonation refused", certificate = %sender, claimed = %event.source);
        return Err(Refusal::new(
            "forbidden",
            Problem::forbidden(format!(
                "the message says it comes from {} but the client certificate names {sender}",
                event.source
            )),
        ));
    }
    let key = match headers.get("idempotency-key") {
        Some(value) => IdempotencyKey::from_header(value.as_bytes())
            .map_err(|e| Refusal::new("invalid", Problem::bad_request(e.to_string())))?,
        None => IdempotencyKey::from_source_ids(events.iter().map(|e| e.message_id.as_str())),
    };
    Ok(Submission {
        sender,
        key,
        content_type,
        body,
        events,
    })
}

/// Every stored version of the credit-list entries naming the applicants of `events` (none
/// read when no event is a case event).
async fn credit_of<S: Store>(store: &S, events: &[Event]) -> Result<Vec<CreditRecord>, StoreError> {
    let codes = credit::applicant_codes(events);
    if codes.is_empty() {
        return Ok(Vec::new());
    }
    store
        .credit_entries_of(codes, credit::MAX_VERSIONS_READ)
        .await
}

/// What the store commits for a submission: each event under a new gateway id, with the
/// bureaus the routes send it to and, for a listed applicant, its credit warnings (which also
/// put it in the flows' inbox, whose engine sends the match notices).
fn route(
    submission: Submission,
    routes: &RouteTable,
    flows: &FlowTable,
    credit: &[CreditRecord],
) -> NewMessage {
    let events = submission
        .events
        .into_iter()
        .map(|mut event| {
            let (subscribers, routed_by) = routes.routed(&event).into_iter().unzip();
            event.credit_warnings = credit::warnings(credit, &event);
            let for_flows = flows.wants(&event) || !event.credit_warnings.is_empty();
            let source_message_id: MessageId =
                std::mem::replace(&mut event.message_id, ids::mint_message_id());
            NewEvent {
                event,
                source_message_id,
                subscribers,
                routed_by,
                for_flows,
            }
        })
        .collect();
    NewMessage {
        survey: None,
        credit: Vec::new(),
        credit_match: None,
        sender: submission.sender,
        idempotency_key: submission.key,
        content_type: submission.content_type,
        sha256: ids::sha256(&submission.body),
        body: submission.body.to_vec(),
        received_at: now_ms(),
        events,
    }
}

/// Commits, wakes whoever delivers it, and answers 202 with the receipt (the first receipt
/// again, marked `Idempotent-Replayed`, for a key seen before).
async fn commit<S: Store + Clone>(state: &AppState<S>, message: NewMessage) -> Response {
    let sender = message.sender;
    let subscribers: Vec<BureauId> = message
        .events
        .iter()
        .flat_map(|e| e.subscribers.iter().copied())
        .collect();
    let warned: Vec<schemas::CreditList> = message
        .events
        .iter()
        .flat_map(|e| e.event.credit_warnings.iter().map(|w| w.list))
        .collect();
    match state.store.ingest(message).await {
        Ok(IngestOutcome::Accepted(receipt)) => {
            count(sender, "accepted");
            for list in warned {
                metrics::counter!(m::CREDIT_WARNINGS, "bureau" => sender.as_str(), "list" => list.code())
                    .increment(1);
            }
            state.activity.received(sender, now_ms());
            tracing::info!(message = "message accepted", bureau = %sender, message_ids = ?receipt.message_ids, deliveries = receipt.deliveries);
            state.wakers.wake_for(subscribers);
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
            Problem::from(error).into_response()
        }
    }
}
