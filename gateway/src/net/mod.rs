//! The network edge: who is calling, and the TLS that proves it.
//!
//! - `identity`: `Identity` (`urn:bureau:`, `urn:operator:`, `urn:gateway:`) and `Peer`, the
//!   caller of one connection.
//! - `tls`: rustls server and client configurations trusting only the exchange CA, checking
//!   peer certificates against its CRLs (`node_server_config`, `PushVerifier`, `TlsFiles`);
//!   `peer_identity` reads the SAN URI of a client certificate.
//! - `pki`: the development CA, certificates and CRL (`revoke`, `sign_crl`) (rcgen).
//! - `listener`: the accept loop with every server resource bounded where it is spent
//!   (`Limits`: connection permits taken before accept, handshake, header and idle timeouts,
//!   HTTP/2 windows), TLS handshake with the current (reloadable) configuration, `Peer` into
//!   every request, HTTP/1.1 or HTTP/2 by ALPN, graceful shutdown.
//!
//! Architecture invariant: this folder knows nothing of the store, routing or any endpoint; it
//! serves whatever `axum::Router` it is given, within the `listener::Limits` it is given (the
//! node builds them from the configuration; this folder does not read it). Identity comes only
//! from the certificate, and a certificate on the exchange CA's CRL names nobody.

pub mod identity;
pub mod listener;
pub mod pki;
pub mod tls;

pub use identity::{CertificateExpiry, Identity, Peer};
