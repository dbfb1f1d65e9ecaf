//! The monthly bulletin (月度通報): `GET /v1/reports/monthly?month=YYYY-MM`, for operators, in
//! JSON or (`format=csv`, or `Accept: text/csv`) CSV. A closed month's answer is frozen: the same
//! bytes every time, on every node.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::caller::Operator;
use super::problem::Problem;
use super::state::AppState;
use crate::clock::now_ms;
use crate::flows::bulletin::{self, Month};
use crate::store::Store;

pub(super) fn router<S: Store + Clone>() -> Router<Arc<AppState<S>>> {
    Router::new().route("/v1/reports/monthly", get(monthly::<S>))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MonthlyQuery {
    month: String,
    #[serde(default)]
    format: Option<String>,
}

/// `GET /v1/reports/monthly?month=2026-11`.
async fn monthly<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    _: Operator,
    query: Result<Query<MonthlyQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Query(query) = query?;
    let month = Month::parse(&query.month).map_err(Problem::bad_request)?;
    let csv = match query.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(other) => {
            return Err(Problem::bad_request(format!(
                "format {other:?}: json or csv"
            )));
        }
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/csv")),
    };
    let json = bulletin::json(&state.store, &state.flows, month, now_ms()).await?;
    let (body, content_type) = if csv {
        let text = bulletin::csv(&json).map_err(|error| {
            tracing::error!(message = "a stored bulletin does not read back", %error);
            Problem::internal()
        })?;
        (text, "text/csv; charset=utf-8")
    } else {
        (json, "application/json")
    };
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}
