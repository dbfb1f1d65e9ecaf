//! Joint cases of one-stop parallel approval: `GET /v1/joint-cases/{id}` and
//! `GET /v1/joint-cases?project=CODE`, for operators and the bureaus taking part (the window and
//! the branch bureaus). To any other bureau a joint case does not exist: it is answered like an
//! unknown id, so nothing tells it which projects have one. And `GET /v1/clocks/overdue`, for
//! operators: the cases past their due date at this node's last look at the clocks.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use schemas::{JointCaseId, ProjectCode};
use serde::Deserialize;

use super::caller::{Operator, OperatorOrBureau};
use super::problem::Problem;
use super::state::AppState;
use crate::flows::view::JointView;
use crate::store::Store;

/// Most joint cases one project lookup returns.
const MAX_PER_PROJECT: usize = 64;

pub(super) fn router<S: Store + Clone>() -> Router<Arc<AppState<S>>> {
    Router::new()
        .route("/v1/joint-cases", get(of_project::<S>))
        .route("/v1/joint-cases/{id}", get(joint_case::<S>))
        .route("/v1/clocks/overdue", get(overdue::<S>))
}

/// `GET /v1/clocks/overdue`: the overdue list of the last clock tick, most overdue first.
async fn overdue<S: Store + Clone>(State(state): State<Arc<AppState<S>>>, _: Operator) -> Response {
    axum::Json(state.flows.overdue()).into_response()
}

fn today() -> Result<chrono::NaiveDate, Problem> {
    crate::clock::shanghai_now()
        .map(|now| now.naive_local().date())
        .ok_or_else(Problem::internal)
}

fn may_read(caller: &OperatorOrBureau, view: &JointView) -> bool {
    match caller {
        OperatorOrBureau::Operator(_) => true,
        OperatorOrBureau::Bureau(bureau) => JointView::concerns(&view.notice, *bureau),
    }
}

/// `GET /v1/joint-cases/{id}`: the joint case with its clocks as of today.
async fn joint_case<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    caller: OperatorOrBureau,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let Path(id) = id?;
    let id = JointCaseId::parse(&id).map_err(|problem| {
        Problem::bad_request(format!("{id:?} is no joint case id: {problem}"))
    })?;
    let found = state.store.joint_case(&id).await?;
    let today = today()?;
    match found.map(|case| JointView::of(&case, &state.flows, today)) {
        Some(view) if may_read(&caller, &view) => Ok(axum::Json(view).into_response()),
        _ => Err(Problem::not_found(format!("no joint case {}", id.as_str()))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectQuery {
    project: String,
}

/// `GET /v1/joint-cases?project=CODE`: the project's joint cases the caller may read.
async fn of_project<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    caller: OperatorOrBureau,
    query: Result<Query<ProjectQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query?;
    let project = ProjectCode::parse(&query.project).map_err(|problem| {
        Problem::bad_request(format!("{:?} is no project code: {problem}", query.project))
    })?;
    let today = today()?;
    let views: Vec<JointView> = state
        .store
        .joint_cases_of_project(&project, MAX_PER_PROJECT)
        .await?
        .iter()
        .map(|case| JointView::of(case, &state.flows, today))
        .filter(|view| may_read(&caller, view))
        .collect();
    Ok(axum::Json(views).into_response())
}
