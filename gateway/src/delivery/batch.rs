//! Batch pushes: the protocol between the gateway and a push bureau that opted in to receiving
//! several deliveries per request (`bureaus.<id>.push_batch` > 1).
//!
//! The request carries the deliveries in the bureau's batch form (`Adapter::encode_batch`: its
//! own batch document, else `multipart/mixed` with one part per event, each part labelled with
//! its `Message-Id`) and a `Batch-Id` header. The receiver answers
//! - a non-2xx status: the whole batch failed, classified like a single push (5xx, 408, 429 are
//!   tried again, the rest are refusals);
//! - 2xx with a [`BatchResults`] JSON document: one status per message id, each classified like a
//!   single push's; a delivery the document does not mention is tried again;
//! - 2xx without a JSON body: every delivery of the batch was accepted.
//!
//! Per-(subscriber, case) order holds within and across batches because only the head of each
//! case's queue is ever leased: a batch carries at most one delivery of a case, and the next
//! one becomes leasable only once this one's outcome is recorded.

use serde::{Deserialize, Serialize};

/// The header naming a batch push (and telling the receiver it is one).
pub const BATCH_ID_HEADER: &str = "batch-id";

/// The receiver's per-item answer to a batch push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchResults {
    /// One entry per delivery of the batch, in any order.
    pub results: Vec<ItemResult>,
}

/// What the receiver made of one delivery of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemResult {
    /// The delivery's message id (its part's `Message-Id`).
    pub message_id: String,
    /// The HTTP status a single push of it would have been answered with.
    pub status: u16,
    /// Why, for a refusal (kept in the delivery's attempt history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}
