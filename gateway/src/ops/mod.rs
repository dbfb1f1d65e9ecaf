//! The operator surface without HTTP: what a node sees of each bureau ([`activity`]), the
//! reports every node writes to the store ([`report`]), the exchange-wide picture built from
//! them ([`view`]), a case's story across bureaus ([`timeline`]), and the words both languages
//! use ([`words`]).
//!
//! Architecture invariant: the picture comes from the store (every node's reports, the queue,
//! the pauses), never from one node's memory, so every node shows the same; every read is
//! bounded (the last hour of reports, a limit on timeline events).

pub mod activity;
pub mod report;
pub mod timeline;
pub mod view;
pub mod words;

pub use activity::Activity;
pub use view::{BureauHealth, ExchangeView, Health, Reason};
pub use words::Lang;
