//! The exchange gateway: mutual-TLS ingest, a durable store, routing, retry queues and push and
//! pull delivery, between the systems of the Shanghai bureaus.
//!
//! `ARCHITECTURE.md` at the repository root has the map and the invariants. [`start`] runs a
//! gateway node in the current tokio runtime; the binary's `serve` and `demo` and the tests all
//! go through it.
//!
//! The modules, from the bottom up (a module imports only from modules above it in this list;
//! `tests/tests/layout.rs` checks it):
//! - `testing` (tests only), `clock`, `vocabulary`, `ids`, `metrics`, `workdays` (working days on
//!   the official calendar): small shared pieces with no other dependency.
//! - `config`: the layered, validated configuration.
//! - `net`: identities, TLS, the dev PKI, the accept loop.
//! - `routing`: which bureaus receive an event.
//! - `store`: the durable store (SQLite, PostgreSQL) behind one trait.
//! - `audit`: the tamper-evident trail's checkpoints, verification and evidence bundles.
//! - `ops`: the operator surface without HTTP: what a node sees, its reports, the
//!   exchange-wide picture, case timelines.
//! - `delivery`: the push engine, retries, breakers, wake-ups.
//! - `surveys`: multi-survey-in-one, without HTTP.
//! - `credit`: shared credit lists, without HTTP: uploads planned, case events matched.
//! - `flows`: one-stop parallel approval: joint cases, their working-day clocks, the notices.
//! - `http`: the router, callers, handlers, problems.
//! - `node`: a running node, everything wired together.
//! - `sim`: simulated bureau systems (for `demo` and the tests).
//! - `ctl`: `gateway ctl`, the operator's command line over the admin API.
//! - `demo`: `gateway demo`.
//! - `bench`: `gateway bench`, the load generator (gateway, senders and receivers in separate
//!   processes).

pub mod audit;
pub mod bench;
pub mod clock;
pub mod config;
pub mod credit;
pub mod ctl;
pub mod delivery;
pub mod demo;
pub mod flows;
pub mod http;
pub mod ids;
pub mod metrics;
pub mod net;
pub mod node;
pub mod ops;
pub mod routing;
pub mod sim;
pub mod store;
pub mod surveys;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod vocabulary;
pub mod workdays;

pub use node::{Running, StartError, start, start_on};
