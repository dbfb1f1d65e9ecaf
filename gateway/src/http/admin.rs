//! The admin API (operators only, JSON): the node and the exchange at a glance, each bureau's
//! health, pausing and resuming delivery to a bureau, a message's trace and a case's timeline
//! across every bureau. `gateway ctl` is a client of these endpoints; the dashboard (`/ops`)
//! shows the same figures.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use schemas::{BureauId, MessageId};
use serde::Serialize;

use super::caller::Operator;
use super::problem::Problem;
use super::state::AppState;
use crate::clock::now_ms;
use crate::ops::timeline::{self, MAX_TIMELINE_EVENTS};
use crate::ops::view::{ExchangeView, Health};
use crate::store::{Pause, Store, TimelineKey};

pub(super) fn router<S: Store + Clone>() -> Router<Arc<AppState<S>>> {
    Router::new()
        .route("/v1/admin/status", get(status::<S>))
        .route("/v1/admin/bureaus", get(bureaus::<S>))
        .route("/v1/admin/bureaus/{bureau}/pause", post(pause::<S>))
        .route("/v1/admin/bureaus/{bureau}/resume", post(resume::<S>))
        .route("/v1/admin/trace/{message_id}", get(trace::<S>))
        .route("/v1/admin/cases/{key}", get(case::<S>))
}

/// The node and the exchange in one answer (`gateway ctl status`).
#[derive(Debug, Serialize)]
struct Status {
    node: String,
    version: &'static str,
    store: &'static str,
    started_at: i64,
    uptime_seconds: i64,
    nodes: Vec<crate::ops::view::NodeSeen>,
    healthy: usize,
    degraded: usize,
    failing: usize,
    backlog: u64,
    dead_letters: u64,
    paused: Vec<BureauId>,
    worst: Vec<Worst>,
}

#[derive(Debug, Serialize)]
struct Worst {
    bureau: BureauId,
    health: Health,
    reason: String,
}

/// `GET /v1/admin/status`.
async fn status<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    _: Operator,
) -> Result<Response, Problem> {
    let now = now_ms();
    let view = ExchangeView::read(&state.store, &state.config, now).await?;
    let count = |health| view.bureaus.iter().filter(|b| b.health == health).count();
    let store = match state.config.store_location() {
        Ok(crate::config::StoreLocation::Postgres(_)) => "postgres",
        _ => "sqlite",
    };
    let mut worst: Vec<Worst> = view
        .bureaus
        .iter()
        .filter(|b| b.health != Health::Healthy)
        .map(|b| Worst {
            bureau: b.bureau,
            health: b.health,
            reason: b.reason.clone(),
        })
        .collect();
    worst.sort_by_key(|w| std::cmp::Reverse(w.health));
    Ok(axum::Json(Status {
        node: state.config.node.clone(),
        version: env!("CARGO_PKG_VERSION"),
        store,
        started_at: state.started_at,
        uptime_seconds: (now - state.started_at) / 1000,
        healthy: count(Health::Healthy),
        degraded: count(Health::Degraded),
        failing: count(Health::Failing),
        backlog: view.bureaus.iter().map(|b| b.backlog).sum(),
        dead_letters: view.bureaus.iter().map(|b| b.dead_letters).sum(),
        paused: view
            .bureaus
            .iter()
            .filter(|b| b.paused.is_some())
            .map(|b| b.bureau)
            .collect(),
        nodes: view.nodes,
        worst,
    })
    .into_response())
}

/// `GET /v1/admin/bureaus`: the exchange-wide picture (one row per bureau, the last hour per
/// bureau, the nodes reporting).
async fn bureaus<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    _: Operator,
) -> Result<Response, Problem> {
    let view = ExchangeView::read(&state.store, &state.config, now_ms()).await?;
    Ok(axum::Json(view).into_response())
}

fn configured<S>(state: &AppState<S>, bureau: BureauId) -> Result<BureauId, Problem> {
    if state.config.bureaus.contains_key(&bureau) {
        Ok(bureau)
    } else {
        Err(Problem::not_found(format!(
            "bureau {bureau} is not configured on this gateway"
        )))
    }
}

/// `POST /v1/admin/bureaus/{bureau}/pause`: its deliveries stay pending, in order, until it is
/// resumed (stored: every node, and restarts, keep it).
async fn pause<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Operator(operator): Operator,
    bureau: Result<Path<BureauId>, PathRejection>,
) -> Result<Response, Problem> {
    set_paused_answer(&state, bureau, &operator, true).await
}

/// `POST /v1/admin/bureaus/{bureau}/resume`: what was held is delivered, in order.
async fn resume<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Operator(operator): Operator,
    bureau: Result<Path<BureauId>, PathRejection>,
) -> Result<Response, Problem> {
    set_paused_answer(&state, bureau, &operator, false).await
}

async fn set_paused_answer<S: Store + Clone>(
    state: &AppState<S>,
    bureau: Result<Path<BureauId>, PathRejection>,
    operator: &str,
    paused: bool,
) -> Result<Response, Problem> {
    let Path(bureau) = bureau?;
    let changed = set_paused(state, bureau, operator, paused).await?;
    Ok(
        axum::Json(serde_json::json!({ "bureau": bureau, "paused": paused, "changed": changed }))
            .into_response(),
    )
}

/// Pauses (`paused`) or resumes delivery to `bureau` on behalf of `operator`, for the admin API
/// and the dashboard alike; true when that changed something. 404 for a bureau this gateway
/// does not serve.
pub(super) async fn set_paused<S: Store + Clone>(
    state: &AppState<S>,
    bureau: BureauId,
    operator: &str,
    paused: bool,
) -> Result<bool, Problem> {
    let bureau = configured(state, bureau)?;
    let changed = if paused {
        state
            .store
            .pause(Pause {
                subscriber: bureau,
                by: operator.to_owned(),
                at: now_ms(),
            })
            .await?
    } else {
        let changed = state.store.resume(bureau, operator, now_ms()).await?;
        state.wakers.wake_for([bureau]);
        changed
    };
    tracing::info!(message = "delivery pause set", %bureau, %operator, paused, changed);
    Ok(changed)
}

/// A timeline answer.
#[derive(Debug, Serialize)]
struct TimelineAnswer {
    key: String,
    kind: &'static str,
    events: usize,
    truncated: bool,
    entries: Vec<timeline::Entry>,
}

/// Reads the timeline of `key`, for the admin API and the dashboard.
pub(super) async fn read_timeline<S: Store + Clone>(
    state: &AppState<S>,
    key: TimelineKey,
) -> Result<(usize, bool, Vec<timeline::Entry>), Problem> {
    let events = state.store.timeline(key, MAX_TIMELINE_EVENTS + 1).await?;
    let truncated = events.len() > MAX_TIMELINE_EVENTS;
    let events = &events[..events.len().min(MAX_TIMELINE_EVENTS)];
    Ok((events.len(), truncated, timeline::entries(events)))
}

fn key_kind(key: &TimelineKey) -> &'static str {
    match key {
        TimelineKey::Message(_) => "message",
        TimelineKey::Case(_) => "case",
        TimelineKey::Project(_) => "project",
    }
}

/// `GET /v1/admin/trace/{message_id}`: one event's story (received, routed, every attempt).
async fn trace<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    _: Operator,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let Path(id) = id?;
    let id = MessageId::parse(&id)
        .map_err(|problem| Problem::bad_request(format!("message id {id:?}: {problem}")))?;
    let key = TimelineKey::Message(id.clone());
    let (events, truncated, entries) = read_timeline(&state, key).await?;
    if events == 0 {
        return Err(Problem::not_found(format!("no message {id}")));
    }
    Ok(axum::Json(TimelineAnswer {
        key: id.as_str().to_owned(),
        kind: "message",
        events,
        truncated,
        entries,
    })
    .into_response())
}

/// `GET /v1/admin/cases/{key}`: every event of a project (by its code) or of a case (by its id,
/// in every bureau that has one), in time order.
async fn case<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    _: Operator,
    key: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let Path(text) = key?;
    let key = timeline::key_of(&text).ok_or_else(|| {
        Problem::bad_request(format!(
            "{text:?} is neither a project code, a gateway message id nor a case id"
        ))
    })?;
    let kind = key_kind(&key);
    let (events, truncated, entries) = read_timeline(&state, key).await?;
    Ok(axum::Json(TimelineAnswer {
        key: text,
        kind,
        events,
        truncated,
        entries,
    })
    .into_response())
}
