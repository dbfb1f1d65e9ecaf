//! The delivery engine: takes due deliveries from the store under a lease, pushes each to its
//! subscriber's HTTPS endpoint (mutual TLS) in the subscriber's own format, and records the
//! outcome: delivered, retry later (exponential backoff with full jitter), or dead letter.
//!
//! Per-(subscriber, case) order comes from the store, which leases only the oldest pending
//! delivery of each case. One bureau's outage does not slow the others: every push has a
//! timeout, each subscriber has its own concurrency limit, and a circuit breaker stops sending
//! to a failing subscriber and probes it one delivery at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use http_body_util::Full;
use hyper::StatusCode;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use schemas::BureauId;
use tokio::sync::{Semaphore, watch};

use crate::app::{Wakers, now_ms};
use crate::breaker::{Admission, Breaker};
use crate::config::{Config, RetryPolicy};
use crate::metrics as m;
use crate::store::{AfterFailure, Attempt, Delivery, Store};

/// An HTTPS client (HTTP/2 or HTTP/1.1 by ALPN) with a rustls configuration of [`crate::tls`].
pub type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Builds an HTTPS-only client from a client configuration; hyper-rustls sets ALPN itself from
/// the enabled protocols.
pub fn https_client(tls: &rustls::ClientConfig) -> HttpsClient {
    let mut tls = tls.clone();
    tls.alpn_protocols.clear();
    let mut http = HttpConnector::new();
    // Small request/answer exchanges: Nagle's algorithm would hold them back for delayed ACKs.
    http.set_nodelay(true);
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https)
}

/// The ceiling of the backoff before attempt `attempt + 1` (after `attempt` failures, from 1):
/// `initial * 2^(attempt-1)`, capped at `max_delay`. `backon` computes the sequence.
pub fn backoff_ceiling(policy: &RetryPolicy, attempt: u32) -> Duration {
    ExponentialBuilder::default()
        .with_min_delay(policy.initial_delay())
        .with_max_delay(policy.max_delay())
        .with_factor(2.0)
        .without_max_times()
        .build()
        .nth(attempt.saturating_sub(1) as usize)
        .unwrap_or(policy.max_delay())
}

/// Full jitter: a uniformly random delay in `[0, ceiling]`, so that a subscriber coming back
/// is not hit by every retry at the same instant.
pub fn full_jitter(ceiling: Duration, rng: &mut fastrand::Rng) -> Duration {
    Duration::from_millis(rng.u64(0..=ceiling.as_millis() as u64))
}

/// Why a push failed, and whether trying again can help.
#[derive(Debug)]
struct PushFailure {
    retryable: bool,
    error: String,
}

/// The engine's shared parts.
struct Shared<S> {
    store: S,
    config: Arc<Config>,
    client: HttpsClient,
    wakers: Arc<Wakers>,
    breakers: Mutex<HashMap<BureauId, Breaker>>,
    per_subscriber: HashMap<BureauId, Arc<Semaphore>>,
    global: Arc<Semaphore>,
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
                breakers: Mutex::new(breakers),
                per_subscriber,
                global,
            }),
        }
    }

    /// Runs until `shutdown` turns true. Deliveries in flight then finish or, if cut short,
    /// come back when their lease expires.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let shared = self.shared;
        let poll = Duration::from_millis(shared.config.delivery.poll_interval_ms);
        while !*shutdown.borrow() {
            let notified = shared.wakers.delivery.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let leased = match shared.take_due().await {
                Ok(leased) => leased,
                Err(error) => {
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
            for delivery in leased {
                let Ok(permit) = shared.global.clone().acquire_owned().await else {
                    return;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    shared.deliver(delivery).await;
                    drop(permit);
                    shared.wakers.delivery.notify_waiters();
                });
            }
        }
    }
}

impl<S: Store + Clone> Shared<S> {
    /// Leases due work for every subscriber the breakers and concurrency limits allow.
    async fn take_due(&self) -> Result<Vec<Delivery>, crate::store::StoreError> {
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
            }
        }
        let lease_ms = (self.config.delivery.lease_seconds * 1000) as i64;
        let mut leased = Vec::new();
        if !normal.is_empty() {
            leased = self
                .store
                .lease_due(normal, now_ms(), lease_ms, capacity.min(64))
                .await?;
        }
        for subscriber in probes {
            let probe = self
                .store
                .lease_due(vec![subscriber], now_ms(), lease_ms, 1)
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

    /// Pushes one delivery and records its outcome.
    async fn deliver(&self, delivery: Delivery) {
        let subscriber = delivery.subscriber;
        let _slot = match self.per_subscriber.get(&subscriber) {
            Some(semaphore) => semaphore.clone().acquire_owned().await.ok(),
            None => None,
        };
        let started = Instant::now();
        let outcome = self.push(&delivery).await;
        metrics::histogram!(m::DELIVERY_SECONDS, "subscriber" => subscriber.as_str())
            .record(started.elapsed().as_secs_f64());
        let message_id = delivery.event.message_id.as_str();
        let recorded = match outcome {
            Ok(()) => {
                self.with_breaker(subscriber, Breaker::on_success);
                metrics::counter!(m::DELIVERIES, "subscriber" => subscriber.as_str(), "outcome" => "delivered")
                    .increment(1);
                tracing::debug!(message = "delivered", %subscriber, message_id);
                self.store
                    .mark_delivered(delivery.id, delivery.lease, now_ms())
                    .await
            }
            Err(failure) => {
                if failure.retryable {
                    let now = Instant::now();
                    self.with_breaker(subscriber, |b| b.on_failure(now));
                }
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
                self.store
                    .mark_failed(delivery.id, delivery.lease, attempt, after)
                    .await
            }
        };
        match recorded {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(message = "lease lost before the outcome was recorded; the delivery will be sent again", %subscriber, message_id)
            }
            Err(error) => {
                tracing::warn!(message = "outcome not recorded; the delivery will be sent again when its lease expires", %subscriber, message_id, %error)
            }
        }
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

    /// One HTTPS POST of the event, in the subscriber's format.
    async fn push(&self, delivery: &Delivery) -> Result<(), PushFailure> {
        let permanent = |error: String| PushFailure {
            retryable: false,
            error,
        };
        let retryable = |error: String| PushFailure {
            retryable: true,
            error,
        };
        let subscriber = delivery.subscriber;
        let adapter = adapters::for_bureau(subscriber)
            .ok_or_else(|| permanent(format!("no adapter for {subscriber}")))?;
        let encoded = adapter
            .encode(&delivery.event)
            .map_err(|e| permanent(format!("cannot encode: {e}")))?;
        let endpoint = self
            .config
            .bureaus
            .get(&subscriber)
            .and_then(|b| b.endpoint.clone())
            .ok_or_else(|| permanent(format!("{subscriber} has no push endpoint")))?;
        let message_id = delivery.event.message_id.as_str();
        let request = hyper::Request::post(endpoint)
            .header(hyper::header::CONTENT_TYPE, encoded.content_type)
            .header("message-id", message_id)
            .header("idempotency-key", message_id)
            .header("source-bureau", delivery.event.source.as_str())
            .body(Full::new(Bytes::from(encoded.body)))
            .map_err(|e| permanent(format!("cannot build request: {e}")))?;
        let timeout = Duration::from_secs(self.config.delivery.request_timeout_seconds);
        let response = match tokio::time::timeout(timeout, self.client.request(request)).await {
            Err(_) => {
                return Err(retryable(format!(
                    "no answer within {} s",
                    timeout.as_secs()
                )));
            }
            Ok(Err(error)) => return Err(retryable(format!("connection failed: {error}"))),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
        {
            Err(retryable(format!("HTTP {status}")))
        } else {
            Err(permanent(format!(
                "HTTP {status}: the receiver refused the message"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn backoff_doubles_to_the_cap_and_jitter_stays_below_the_ceiling() {
        let policy = Config::defaults().unwrap().retry;
        assert_eq!(backoff_ceiling(&policy, 1), Duration::from_secs(1));
        assert_eq!(backoff_ceiling(&policy, 2), Duration::from_secs(2));
        assert_eq!(backoff_ceiling(&policy, 5), Duration::from_secs(16));
        assert_eq!(backoff_ceiling(&policy, 20), policy.max_delay());
        let mut rng = fastrand::Rng::with_seed(1);
        let ceiling = Duration::from_secs(8);
        let draws: Vec<Duration> = (0..1000).map(|_| full_jitter(ceiling, &mut rng)).collect();
        assert!(draws.iter().all(|d| *d <= ceiling));
        assert!(
            draws.iter().any(|d| *d < Duration::from_secs(1)),
            "full jitter reaches near zero"
        );
        assert!(draws.iter().any(|d| *d > Duration::from_secs(7)));
    }
}
