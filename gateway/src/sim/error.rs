//! What can go wrong for a simulated bureau system: each variant names the request or the
//! address concerned, so a demo line or a test failure says where it happened.

use std::net::SocketAddr;

use hyper::{Method, StatusCode};
use schemas::BureauId;

/// A failure of a simulated bureau system (its client or its endpoint).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A certificate or key could not be loaded.
    #[error("TLS: {0}")]
    Tls(#[from] crate::net::tls::TlsError),
    /// The endpoint's address could not be bound (or bound again, after being down).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The request could not be built (a header value that is not one, say).
    #[error("{method} {path}: not a valid request: {source}")]
    Request {
        /// The method.
        method: Method,
        /// The path.
        path: String,
        /// The error.
        #[source]
        source: hyper::http::Error,
    },
    /// No connection, a TLS failure, or the connection broke before the answer.
    #[error("{method} {path}: {source:?}")]
    Connection {
        /// The method.
        method: Method,
        /// The path.
        path: String,
        /// The error (its `Debug` form names the cause, which its `Display` hides).
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// No answer in time.
    #[error("{method} {path}: no answer within {seconds} s")]
    Timeout {
        /// The method.
        method: Method,
        /// The path.
        path: String,
        /// The limit.
        seconds: u64,
    },
    /// The answer's body broke off.
    #[error("{method} {path}: reading the body: {source}")]
    Body {
        /// The method.
        method: Method,
        /// The path.
        path: String,
        /// The error.
        #[source]
        source: hyper::Error,
    },
    /// An answer other than the one the exchange's API gives to a well-formed request.
    #[error("{what}: unexpected answer {status}: {body}")]
    Status {
        /// What was asked.
        what: String,
        /// The status.
        status: StatusCode,
        /// The start of the body, for the reader.
        body: String,
    },
    /// A body that is not the JSON the API documents.
    #[error("{what}: not the expected JSON: {source}")]
    Json {
        /// What was read.
        what: String,
        /// The error.
        #[source]
        source: serde_json::Error,
    },
    /// The client has no bureau identity, but the call needs one (to encode or decode in its
    /// format).
    #[error("not a bureau's client")]
    NotABureau,
    /// No adapter is registered for the bureau.
    #[error("{0} has no adapter")]
    NoAdapter(BureauId),
    /// The event cannot be written in the bureau's format.
    #[error(transparent)]
    Encode(#[from] adapters::EncodeError),
    /// What the gateway sent is not in the bureau's own format.
    #[error("not in {bureau}'s format: {source}")]
    Decode {
        /// The bureau.
        bureau: BureauId,
        /// The error.
        #[source]
        source: adapters::DecodeError,
    },
}
