//! The network edge: who is calling, and the TLS that proves it.
//!
//! - `identity`: `Identity` (`urn:bureau:`, `urn:operator:`, `urn:gateway:`) and `Peer`, the
//!   caller of one connection.
//! - `tls`: rustls server and client configurations trusting only the exchange CA;
//!   `peer_identity` reads the SAN URI of a client certificate.
//! - `pki`: the development CA and certificates (rcgen).
//! - `listener`: the accept loop: TLS handshake, `Peer` into every request, HTTP/1.1 or HTTP/2
//!   by ALPN, graceful shutdown.
//!
//! Architecture invariant: this folder knows nothing of the store, routing or any endpoint; it
//! serves whatever `axum::Router` it is given. Identity comes only from the certificate.

pub mod identity;
pub mod listener;
pub mod pki;
pub mod tls;

pub use identity::{Identity, Peer};
