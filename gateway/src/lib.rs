//! The exchange gateway: mutual-TLS ingest, a durable store, routing, retry queues and push and
//! pull delivery, between the systems of six Shanghai bureaus.
//!
//! `ARCHITECTURE.md` at the repository root has the map and the invariants.

pub mod config;
pub mod identity;
pub mod routing;
pub mod store;
