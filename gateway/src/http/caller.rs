//! Who may call: each kind of caller is an extractor, so a handler states in its signature whom
//! it serves, and the checks are written once. The caller is always the `Peer` the listener
//! took from the client certificate; nothing in a request can change it.
//!
//! - [`Bureau`]: a bureau system configured on this gateway.
//! - [`PullBureau`]: a bureau that receives from the feed rather than by push.
//! - [`Publisher`]: the bureau that publishes survey results.
//! - [`Operator`]: a person or tool operating the exchange.
//! - [`OperatorOrPublisher`]: either of the last two (who read a survey result).
//! - [`OperatorOrBureau`]: an operator or any configured bureau (who read a joint case).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use schemas::BureauId;

use super::problem::Problem;
use super::state::AppState;
use crate::config::DeliveryMode;
use crate::net::{CertificateExpiry, Identity, Peer};
use crate::store::Store;

/// The identity of the request's connection. A request that did not come through the listener
/// has no peer: that is a wiring bug, answered 500.
fn identity(parts: &Parts) -> Result<Option<&Identity>, Problem> {
    parts
        .extensions
        .get::<Peer>()
        .map(|peer| peer.0.as_ref())
        .ok_or_else(|| {
            tracing::error!(message = "a request reached a handler without its peer");
            Problem::internal()
        })
}

fn bureau_of<S>(parts: &Parts, state: &AppState<S>) -> Result<BureauId, Problem> {
    match identity(parts)? {
        Some(Identity::Bureau(bureau)) if state.config.bureaus.contains_key(bureau) => {
            if let Some(CertificateExpiry(not_after)) = parts.extensions.get() {
                state.activity.certificate(*bureau, *not_after);
            }
            Ok(*bureau)
        }
        Some(Identity::Bureau(bureau)) => Err(Problem::forbidden(format!(
            "bureau {bureau} is not configured on this gateway"
        ))),
        Some(other) => Err(Problem::forbidden(format!(
            "{other} is not a bureau; only bureau systems use this endpoint"
        ))),
        None => Err(Problem::unauthenticated(
            "present a client certificate issued by the exchange CA",
        )),
    }
}

fn operator_of(parts: &Parts) -> Result<String, Problem> {
    match identity(parts)? {
        Some(Identity::Operator(name)) => Ok(name.clone()),
        Some(other) => Err(Problem::forbidden(format!("{other} is not an operator"))),
        None => Err(Problem::unauthenticated(
            "present an operator certificate issued by the exchange CA",
        )),
    }
}

/// A bureau system configured on this gateway.
#[derive(Debug, Clone, Copy)]
pub struct Bureau(pub BureauId);

impl<S: Store + Clone> FromRequestParts<Arc<AppState<S>>> for Bureau {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState<S>>,
    ) -> Result<Self, Problem> {
        bureau_of(parts, state).map(Self)
    }
}

/// A configured bureau that receives its deliveries from the feed.
#[derive(Debug, Clone, Copy)]
pub struct PullBureau(pub BureauId);

impl<S: Store + Clone> FromRequestParts<Arc<AppState<S>>> for PullBureau {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState<S>>,
    ) -> Result<Self, Problem> {
        let bureau = bureau_of(parts, state)?;
        match state.config.bureaus.get(&bureau).map(|b| b.delivery) {
            Some(DeliveryMode::Pull) => Ok(Self(bureau)),
            _ => Err(Problem::forbidden(format!(
                "{bureau} receives by push, not from the feed"
            ))),
        }
    }
}

/// The bureau that publishes survey results (`surveys.publisher`).
#[derive(Debug, Clone, Copy)]
pub struct Publisher(pub BureauId);

impl<S: Store + Clone> FromRequestParts<Arc<AppState<S>>> for Publisher {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState<S>>,
    ) -> Result<Self, Problem> {
        let bureau = bureau_of(parts, state)?;
        let publisher = state.config.surveys.publisher;
        if bureau == publisher {
            Ok(Self(bureau))
        } else {
            Err(Problem::forbidden(format!(
                "survey results are published by {publisher}, not {bureau}"
            )))
        }
    }
}

/// A person or tool operating the exchange, by the name in its certificate.
#[derive(Debug, Clone)]
pub struct Operator(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Operator {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        operator_of(parts).map(Self)
    }
}

/// An operator, or the bureau that publishes survey results.
#[derive(Debug, Clone)]
pub enum OperatorOrPublisher {
    /// An operator.
    Operator(String),
    /// The publisher.
    Publisher(BureauId),
}

impl<S: Store + Clone> FromRequestParts<Arc<AppState<S>>> for OperatorOrPublisher {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState<S>>,
    ) -> Result<Self, Problem> {
        match identity(parts)? {
            Some(Identity::Operator(name)) => Ok(Self::Operator(name.clone())),
            Some(Identity::Bureau(b)) if *b == state.config.surveys.publisher => {
                Ok(Self::Publisher(*b))
            }
            Some(_) => Err(Problem::forbidden(
                "only operators and the publisher see who read a result",
            )),
            None => Err(Problem::unauthenticated(
                "present a client certificate issued by the exchange CA",
            )),
        }
    }
}

/// An operator, or a bureau system configured on this gateway (who may read a joint case: the
/// handler checks the bureau takes part in it).
#[derive(Debug, Clone)]
pub enum OperatorOrBureau {
    /// An operator.
    Operator(String),
    /// A bureau.
    Bureau(BureauId),
}

impl<S: Store + Clone> FromRequestParts<Arc<AppState<S>>> for OperatorOrBureau {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState<S>>,
    ) -> Result<Self, Problem> {
        match identity(parts)? {
            Some(Identity::Operator(name)) => Ok(Self::Operator(name.clone())),
            _ => bureau_of(parts, state).map(Self::Bureau),
        }
    }
}
