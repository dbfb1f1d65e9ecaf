//! The outcome recorder: delivery tasks hand it what became of each push, and it records them
//! in batches — whatever has queued while the previous batch was being committed, one durable
//! transaction per batch ([`Store::record_outcomes`]) — instead of one transaction per
//! delivery. After each batch it wakes the engine, since a completed delivery may have
//! unblocked the next event of its case.
//!
//! A push is done once its outcome is queued here; the lease stays held until the batch
//! commits, so no other worker or node can take the delivery, nor the next event of its case,
//! in between. A batch the store refuses is logged and counted: its deliveries come back when
//! their leases expire (or at once, when the node restarts), and are sent again.

use std::sync::Arc;

use schemas::{BureauId, MessageId};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::wakers::Wakers;
use crate::store::{Outcome, Store};

/// Outcomes waiting for the recorder; a delivery task waits when it is full (the bound is the
/// memory bound).
const QUEUE_CAPACITY: usize = 4096;

/// At most this many outcomes in one transaction.
const MAX_BATCH: usize = 1024;

/// One outcome, with what the log needs to name it.
pub(super) struct Settling {
    pub(super) outcome: Outcome,
    pub(super) subscriber: BureauId,
    pub(super) message_id: MessageId,
}

/// The delivery tasks' side of the recorder.
#[derive(Clone)]
pub(super) struct Recorder {
    queue: mpsc::Sender<Settling>,
}

impl Recorder {
    /// Starts the recording task; it ends once every [`Recorder`] clone is dropped and the
    /// queue is drained.
    pub(super) fn start<S: Store>(store: S, wakers: Arc<Wakers>) -> (Self, JoinHandle<()>) {
        let (queue, settling) = mpsc::channel(QUEUE_CAPACITY);
        let task = tokio::spawn(record(store, wakers, settling));
        (Self { queue }, task)
    }

    /// Queues an outcome (waits while the queue is full).
    pub(super) async fn settle(&self, settling: Settling) {
        if self.queue.send(settling).await.is_err() {
            tracing::warn!(
                "the outcome recorder has stopped; the delivery will be sent again when its lease \
                 expires"
            );
        }
    }
}

async fn record<S: Store>(store: S, wakers: Arc<Wakers>, mut settling: mpsc::Receiver<Settling>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while settling.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let outcomes = batch.iter().map(|s| s.outcome.clone()).collect();
        match store.record_outcomes(outcomes).await {
            Ok(held) => {
                for (settled, held) in batch.iter().zip(held) {
                    if !held {
                        tracing::warn!(
                            message = "lease lost before the outcome was recorded; the delivery \
                                       will be sent again",
                            subscriber = %settled.subscriber,
                            message_id = settled.message_id.as_str()
                        );
                    }
                }
            }
            Err(error) => {
                error.count();
                tracing::warn!(
                    message = "outcomes not recorded; the deliveries will be sent again when \
                               their leases expire",
                    count = batch.len(),
                    %error
                );
            }
        }
        batch.clear();
        wakers.delivery.notify_waiters();
    }
}
