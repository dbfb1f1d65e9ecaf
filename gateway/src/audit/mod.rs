//! The tamper-evident audit trail, above the store: signed checkpoints of every chain's head
//! ([`checkpoint`]), verification of the whole trail against the store and the checkpoints
//! ([`verify`]), and evidence bundles a bureau checks offline with the exchange CA alone
//! ([`bundle`]). The entries themselves and their hash chains are the store's
//! (`store::audit`): written in the transaction of the change each records.
//!
//! *Invariant:* the trail never stops traffic — a checkpoint that cannot be signed or written
//! is logged and tried again at the next interval, while ingest and delivery go on; what it
//! protects is detection: any later change to an entry breaks a link or a signed head.

pub mod bundle;
pub mod checkpoint;
pub mod cli;
pub mod sign;
pub mod verify;

use crate::store::StoreError;

/// Why an audit command failed (not: what it found broken — that is a [`verify::Report`]).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A signature could not be made or read.
    #[error(transparent)]
    Sign(#[from] sign::SignError),
    /// A file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The request cannot be answered as asked (e.g. entries not yet under a checkpoint).
    #[error("{0}")]
    Refused(String),
}

impl AuditError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}
