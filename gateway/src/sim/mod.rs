//! A simulated bureau system: what a real bureau's system does over the wire, nothing more.
//! `gateway demo` and the end-to-end tests drive the gateway through it, so both exercise the
//! same client and the same receiving endpoint.
//!
//! - `endpoint`: `Endpoint`, a push bureau's receiving endpoint (mutual TLS, only the gateway
//!   may call it, each delivery decoded with the bureau's adapter) with a switchable
//!   `Behaviour` (healthy, flaky, unavailable, down).
//! - `inbox`: `Inbox`, what a bureau received by push or pull: ids and copies, optionally every
//!   delivery, refusals, and deliveries it could not accept.
//! - `client`: `BureauClient` (mutual TLS with a bureau's, an operator's or no certificate):
//!   send messages, pull and acknowledge the feed, publish surveys, read results and files,
//!   raw and streamed requests; `Reply`, `Feed`.
//! - `upload`: the `multipart/form-data` body of a survey publication and its metadata, and
//!   the lines of a credit-list upload.
//! - `error`: `SimError`.
//!
//! Architecture invariant: it never reads the store, nor any gateway state: whatever it knows
//! it learned from HTTP answers and deliveries, as a bureau's system would. It uses the
//! gateway's TLS, accept loop and HTTPS client, and the adapters, as a bureau's system would use
//! its own; `demo` builds on it, nothing else in the gateway does.

pub mod client;
pub mod endpoint;
pub mod error;
pub mod inbox;
pub mod upload;

pub use client::{BureauClient, Feed, Reply, StreamingBody};
pub use endpoint::{Behaviour, Endpoint};
pub use error::SimError;
pub use inbox::{Inbox, Received};
pub use upload::{UploadFile, credit_line, credit_upload, survey_metadata, survey_upload};
