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

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::wakers::Wakers;
use crate::store::{Outcome, Store};

/// Outcomes waiting for the recorder; a delivery task waits when it is full (the bound is the
/// memory bound).
const QUEUE_CAPACITY: usize = 4096;

/// At most this many outcomes in one transaction.
const MAX_BATCH: usize = 1024;

/// The delivery tasks' side of the recorder.
#[derive(Clone)]
pub(super) struct Recorder {
    queue: mpsc::Sender<Outcome>,
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
    pub(super) async fn settle(&self, outcome: Outcome) {
        if self.queue.send(outcome).await.is_err() {
            tracing::warn!(
                "the outcome recorder has stopped; the delivery will be sent again when its lease \
                 expires"
            );
        }
    }
}

async fn record<S: Store>(store: S, wakers: Arc<Wakers>, mut settling: mpsc::Receiver<Outcome>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while settling.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let count = batch.len();
        // The outcomes name their subscriber and event: what the log needs for a lost lease.
        let names: Vec<_> = batch
            .iter()
            .map(|o| (o.subscriber, o.message_id.clone()))
            .collect();
        match store.record_outcomes(std::mem::take(&mut batch)).await {
            Ok(held) => {
                for ((subscriber, message_id), held) in names.iter().zip(held) {
                    if !held {
                        tracing::warn!(
                            message = "lease lost before the outcome was recorded; the delivery \
                                       will be sent again",
                            %subscriber,
                            message_id = message_id.as_str()
                        );
                    }
                }
            }
            Err(error) => {
                error.count();
                tracing::warn!(
                    message = "outcomes not recorded; the deliveries will be sent again when \
                               their leases expire",
                    count,
                    %error
                );
            }
        }
        wakers.delivery.notify_waiters();
    }
}
