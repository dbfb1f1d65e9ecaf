//! Health: `GET /healthz` (the process answers; no certificate needed) and `GET /readyz` (the
//! store answers and the node's certificate is valid for long enough; `warnings` names a CRL
//! past its next update, or one that cannot be read, without failing readiness: the CRL in
//! force is still applied, and a whole exchange must not go unready because its CA is late),
//! and, from 1 November, a working-day calendar still without next year's notice.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::state::AppState;
use crate::store::Store;

pub(super) fn router<S: Store + Clone>() -> Router<Arc<AppState<S>>> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz::<S>))
}

/// `GET /readyz`: the store answers and the node's certificate is valid for long enough.
async fn readyz<S: Store + Clone>(State(state): State<Arc<AppState<S>>>) -> Response {
    let mut problems = Vec::new();
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => problems.push(format!("store: {error}")),
        Err(_) => problems.push("store: no answer within 2 s".to_owned()),
    }
    let days_left = crate::net::tls::seconds_until_expiry(&state.config.tls.cert)
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
    let mut warnings = Vec::new();
    for path in &state.config.tls.crl_files {
        match crate::net::tls::crl_next_update(path) {
            Ok(Some(left)) if left < 0 => warnings.push(format!(
                "CRL {} is past its next update by {} s: publish a new one",
                path.display(),
                -left
            )),
            Ok(_) => {}
            Err(error) => warnings.push(format!("CRL: {error}")),
        }
    }
    if let Some(warning) = state.flows.calendar_warning() {
        warnings.push(warning);
    }
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "ready": problems.is_empty(),
        "problems": problems,
        "warnings": warnings,
        "certificate_days_left": days_left.ok(),
    });
    (status, axum::Json(body)).into_response()
}
