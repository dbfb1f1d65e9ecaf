//! The delivery engine: takes due deliveries from the store under a lease, pushes each to its
//! subscriber's HTTPS endpoint (mutual TLS) in the subscriber's own format — several in one
//! request, in the format's batch form, to a subscriber that opted in ([`batch`]) — and records
//! the outcome of each: delivered, retry later (exponential backoff with full jitter), or dead
//! letter.
//!
//! Per-(subscriber, case) order comes from the store, which leases only the oldest pending
//! delivery of each case. One bureau's outage does not slow the others: every push has a
//! timeout, each subscriber has its own concurrency limit, and a circuit breaker stops sending
//! to a failing subscriber and probes it one delivery at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use schemas::BureauId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::clock::now_ms;
use crate::config::Config;
use crate::metrics as m;
use crate::ops::Activity;
use crate::store::{AfterFailure, Attempt, Delivery, Outcome, Settled, Store, StoreError};
use outcomes::Recorder;

pub mod backoff;
pub mod batch;
pub mod breaker;
mod outcomes;
pub mod push;
pub mod wakers;

pub use backoff::{backoff_ceiling, full_jitter};
use breaker::{Admission, Breaker};
pub use push::{HttpsClient, PushFailure, https_client};
pub use wakers::Wakers;

/// The engine's shared parts.
struct Shared<S> {
    store: S,
    config: Arc<Config>,
    client: HttpsClient,
    wakers: Arc<Wakers>,
    activity: Arc<Activity>,
    breakers: Mutex<HashMap<BureauId, Breaker>>,
    per_subscriber: HashMap<BureauId, Arc<Semaphore>>,
    global: Arc<Semaphore>,
    /// Set while the engine runs (see [`outcomes`]).
    recorder: Mutex<Option<Recorder>>,
}

/// Pushes deliveries until shut down.
pub struct DeliveryEngine<S> {
    shared: Arc<Shared<S>>,
}

impl<S: Store + Clone> DeliveryEngine<S> {
    /// An engine for the push subscribers of `config`, with this node's client certificate.
    pub fn new(
        store: S,
        config: Arc<Config>,
        wakers: Arc<Wakers>,
        activity: Arc<Activity>,
        tls: rustls::ClientConfig,
    ) -> Self {
        let client = https_client(&tls);
        let push = config.push_subscribers();
        let breakers = push
            .iter()
            .map(|&b| {
                let breaker = Breaker::new(
                    config.circuit.failure_threshold,
                    Duration::from_secs(config.circuit.open_seconds),
                );
                (b, breaker)
            })
            .collect();
        let per_subscriber = push
            .iter()
            .map(|&b| {
                (
                    b,
                    Arc::new(Semaphore::new(config.delivery.per_subscriber_concurrency)),
                )
            })
            .collect();
        let global = Arc::new(Semaphore::new(config.delivery.concurrency));
        Self {
            shared: Arc::new(Shared {
                store,
                config,
                client,
                wakers,
                activity,
                breakers: Mutex::new(breakers),
                per_subscriber,
                global,
                recorder: Mutex::new(None),
            }),
        }
    }

    /// Runs until `shutdown` turns true. Deliveries in flight then finish or, if cut short,
    /// come back when their lease expires.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let shared = self.shared;
        let (recorder, recording) = Recorder::start(shared.store.clone(), shared.wakers.clone());
        *shared.recorder.lock().unwrap_or_else(|p| p.into_inner()) = Some(recorder);
        let poll = Duration::from_millis(shared.config.delivery.poll_interval_ms);
        while !*shutdown.borrow() {
            let notified = shared.wakers.delivery.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let leased = match shared.take_due().await {
                Ok(leased) => leased,
                Err(error) => {
                    error.count();
                    tracing::warn!(message = "cannot take due deliveries; retrying", %error);
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.changed() => {}
                    }
                    continue;
                }
            };
            if leased.is_empty() {
                tokio::select! {
                    () = &mut notified => {}
                    () = tokio::time::sleep(poll) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            for push in shared.pushes(leased) {
                let Ok(permit) = shared.global.clone().acquire_owned().await else {
                    return;
                };
                // Taken now when free, so the next lease sees the subscriber's slots in use
                // (and leases no more than they can push before the leases expire); a push
                // that finds none waits for one in its own task, never holding up the others.
                let slot = push.first().and_then(|d| {
                    shared
                        .per_subscriber
                        .get(&d.subscriber)
                        .and_then(|s| s.clone().try_acquire_owned().ok())
                });
                let shared = shared.clone();
                tokio::spawn(async move {
                    shared.deliver(push, slot).await;
                    drop(permit);
                    shared.wakers.delivery.notify_waiters();
                });
            }
        }
        // Let the pushes in flight finish and their outcomes be recorded, within a grace
        // period; what is cut short comes back when its lease expires.
        let all = u32::try_from(shared.config.delivery.concurrency).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, shared.global.acquire_many(all)).await;
        shared
            .recorder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, recording).await;
    }
}

/// How long a stopping engine waits for pushes in flight, then for their outcomes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

impl<S: Store + Clone> Shared<S> {
    /// Leases due work for every subscriber the breakers and concurrency limits allow. A
    /// subscriber that takes batches is leased on its own, as many as its free push slots can
    /// carry; the others share one lease of at most one delivery per free push.
    async fn take_due(&self) -> Result<Vec<Delivery>, StoreError> {
        let capacity = self.global.available_permits();
        if capacity == 0 {
            return Ok(Vec::new());
        }
        let now = Instant::now();
        let mut normal = Vec::new();
        let mut probes = Vec::new();
        {
            let mut breakers = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
            for (&subscriber, breaker) in breakers.iter_mut() {
                let busy = self
                    .per_subscriber
                    .get(&subscriber)
                    .is_none_or(|s| s.available_permits() == 0);
                if !busy {
                    match breaker.admit(now) {
                        Admission::Normal => normal.push(subscriber),
                        Admission::Probe => probes.push(subscriber),
                        Admission::Blocked => {}
                    }
                }
                metrics::gauge!(m::CIRCUIT_STATE, "subscriber" => subscriber.as_str())
                    .set(breaker.gauge());
                self.activity.circuit(subscriber, breaker.reported());
            }
        }
        let lease_ms = (self.config.delivery.lease_seconds * 1000) as i64;
        let pushes = capacity.min(64);
        let (batching, single): (Vec<BureauId>, Vec<BureauId>) = normal
            .into_iter()
            .partition(|&s| self.config.push_batch(s) > 1);
        let mut leased = Vec::new();
        if !single.is_empty() {
            leased = self
                .store
                .lease_due(&self.config.node, single, now_ms(), lease_ms, pushes)
                .await?;
        }
        for subscriber in batching {
            let free = self
                .per_subscriber
                .get(&subscriber)
                .map_or(1, |s| s.available_permits());
            let limit = pushes.min(free) * self.config.push_batch(subscriber);
            let batch = self
                .store
                .lease_due(
                    &self.config.node,
                    vec![subscriber],
                    now_ms(),
                    lease_ms,
                    limit,
                )
                .await?;
            leased.extend(batch);
        }
        for subscriber in probes {
            let probe = self
                .store
                .lease_due(&self.config.node, vec![subscriber], now_ms(), lease_ms, 1)
                .await?;
            if probe.is_empty() {
                let mut breakers = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(breaker) = breakers.get_mut(&subscriber) {
                    breaker.probe_unused();
                }
            }
            leased.extend(probe);
        }
        Ok(leased)
    }

    /// Splits leased deliveries into pushes: one per delivery, or for a subscriber that takes
    /// batches, its deliveries in lease order in batches of at most its `push_batch`.
    fn pushes(&self, leased: Vec<Delivery>) -> Vec<Vec<Delivery>> {
        let mut pushes: Vec<Vec<Delivery>> = Vec::new();
        // Index in `pushes` of each batching subscriber's batch being filled.
        let mut filling: HashMap<BureauId, usize> = HashMap::new();
        for delivery in leased {
            let subscriber = delivery.subscriber;
            let most = self.config.push_batch(subscriber);
            if most <= 1 {
                pushes.push(vec![delivery]);
                continue;
            }
            match filling.get(&subscriber) {
                Some(&at) if pushes[at].len() < most => pushes[at].push(delivery),
                _ => {
                    filling.insert(subscriber, pushes.len());
                    pushes.push(vec![delivery]);
                }
            }
        }
        pushes
    }

    /// Makes one push (a single delivery, or a batch to a subscriber that takes them) and
    /// records the outcome of each delivery in it.
    async fn deliver(&self, push: Vec<Delivery>, slot: Option<OwnedSemaphorePermit>) {
        let Some(subscriber) = push.first().map(|d| d.subscriber) else {
            return;
        };
        let _slot = match (slot, self.per_subscriber.get(&subscriber)) {
            (Some(slot), _) => Some(slot),
            (None, Some(semaphore)) => semaphore.clone().acquire_owned().await.ok(),
            (None, None) => None,
        };
        let started = Instant::now();
        let whole = if self.config.push_batch(subscriber) > 1 {
            // Named by its first delivery: unique, and readable in the receiver's logs.
            let batch_id = format!("{}-{}", self.config.node, push[0].id);
            push::push_batch(&self.client, &self.config, &batch_id, &push).await
        } else {
            push::push(&self.client, &self.config, &push[0])
                .await
                .map(|()| vec![Ok(())])
        };
        metrics::histogram!(m::DELIVERY_SECONDS, "subscriber" => subscriber.as_str())
            .record(started.elapsed().as_secs_f64());
        // The breaker judges the subscriber's system, so the request as a whole: a batch
        // answered with per-item refusals still shows the system up.
        let outcomes = match whole {
            Ok(outcomes) => {
                self.with_breaker(subscriber, Breaker::on_success);
                outcomes
            }
            Err(failure) => {
                if failure.retryable {
                    let now = Instant::now();
                    self.with_breaker(subscriber, |b| b.on_failure(now));
                }
                vec![Err(failure); push.len()]
            }
        };
        for (delivery, outcome) in push.into_iter().zip(outcomes) {
            self.settle(delivery, outcome).await;
        }
    }

    /// Records what became of one delivery: delivered, retry later or dead letter.
    async fn settle(&self, delivery: Delivery, outcome: Result<(), PushFailure>) {
        let subscriber = delivery.subscriber;
        let message_id = delivery.event.message_id.as_str();
        let settled = match outcome {
            Ok(()) => {
                metrics::counter!(m::DELIVERIES, "subscriber" => subscriber.as_str(), "outcome" => "delivered")
                    .increment(1);
                tracing::debug!(message = "delivered", %subscriber, message_id);
                let at = now_ms();
                self.activity.delivered(subscriber, at, 1);
                Settled::Delivered { at }
            }
            Err(failure) => {
                let after = self.after_failure(&delivery, &failure);
                let outcome = match after {
                    AfterFailure::DeadLetter => "dead_letter",
                    AfterFailure::RetryAt(_) => "retry",
                };
                metrics::counter!(m::DELIVERIES, "subscriber" => subscriber.as_str(), "outcome" => outcome)
                    .increment(1);
                tracing::info!(message = "delivery failed", %subscriber, message_id, attempt = delivery.attempts + 1, outcome, error = %failure.error);
                let attempt = Attempt {
                    at: now_ms(),
                    error: failure.error,
                };
                self.activity.failed(subscriber, attempt.at, &attempt.error);
                Settled::Failed { attempt, after }
            }
        };
        let recorder = self
            .recorder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(recorder) = recorder else {
            tracing::warn!(message = "the engine has stopped; the delivery will be sent again when its lease expires", %subscriber, message_id);
            return;
        };
        recorder.settle(Outcome::of(&delivery, settled)).await;
    }

    fn with_breaker(&self, subscriber: BureauId, f: impl FnOnce(&mut Breaker)) {
        let mut breakers = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(breaker) = breakers.get_mut(&subscriber) {
            f(breaker);
            metrics::gauge!(m::CIRCUIT_STATE, "subscriber" => subscriber.as_str())
                .set(breaker.gauge());
        }
    }

    /// Retry with backoff, or dead-letter when the failure is permanent or the policy's
    /// attempts or age are used up.
    fn after_failure(&self, delivery: &Delivery, failure: &PushFailure) -> AfterFailure {
        let policy = &self.config.retry;
        let attempts = delivery.attempts + 1;
        let now = now_ms();
        let age = Duration::from_millis((now - delivery.created_at).max(0) as u64);
        if !failure.retryable || attempts >= policy.max_attempts || age >= policy.max_age() {
            return AfterFailure::DeadLetter;
        }
        let delay = full_jitter(backoff_ceiling(policy, attempts), &mut fastrand::Rng::new());
        AfterFailure::RetryAt(now + delay.as_millis() as i64)
    }
}
