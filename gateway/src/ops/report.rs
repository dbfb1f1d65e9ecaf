//! The report task: every `ops.report_interval_seconds`, a node reads the queue counts and the
//! pauses, refreshes its gauges, and writes what it saw ([`Activity`]) to the store, where every
//! node's dashboard reads every node's reports.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use schemas::BureauId;
use tokio::sync::watch;

use super::activity::Activity;
use crate::clock::{Millis, now_ms};
use crate::config::Config;
use crate::metrics as m;
use crate::store::{Backlog, NodeReport, Pause, Store, StoreError};

/// A node keeps its minute counts in the store this long (the charts show the last hour).
const KEEP_MS: Millis = 24 * 3600 * 1000;

/// Sets the queue gauges from `stats` read at `now`.
pub fn queue_gauges(stats: &[Backlog], now: Millis) {
    for stat in stats {
        let subscriber = stat.subscriber.as_str();
        metrics::gauge!(m::QUEUE_DEPTH, "subscriber" => subscriber).set(stat.pending as f64);
        metrics::gauge!(m::DEAD_LETTERS, "subscriber" => subscriber).set(stat.dead as f64);
        let age = stat
            .oldest_pending
            .map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
        metrics::gauge!(m::QUEUE_OLDEST_SECONDS, "subscriber" => subscriber).set(age);
    }
}

/// Sets the pause gauge of every configured bureau.
pub fn pause_gauges(config: &Config, pauses: &[Pause]) {
    for bureau in config.bureaus.keys() {
        let paused = pauses.iter().any(|p| p.subscriber == *bureau);
        metrics::gauge!(m::DELIVERY_PAUSED, "subscriber" => bureau.as_str()).set(if paused {
            1.0
        } else {
            0.0
        });
    }
}

/// One report: read, set the gauges, write.
pub async fn report_once<S: Store>(
    store: &S,
    config: &Config,
    activity: &Activity,
    now: Millis,
) -> Result<(), StoreError> {
    let bureaus: Vec<BureauId> = config.bureaus.keys().copied().collect();
    let stats = store.backlogs(bureaus.clone()).await?;
    queue_gauges(&stats, now);
    pause_gauges(config, &store.pauses().await?);
    let backlog: HashMap<BureauId, u64> = stats.iter().map(|s| (s.subscriber, s.pending)).collect();
    let (minutes, states) = activity.snapshot(now, &bureaus, &backlog);
    // The per-bureau gauges, from what this node saw: set here rather than on every request.
    // Seconds left on a certificate count down between the bureau's connections (a bureau gone
    // quiet still reaches the expiry alert).
    for state in &states {
        let bureau = state.bureau.as_str();
        if let Some(not_after) = state.certificate_not_after {
            metrics::gauge!(m::CLIENT_CERTIFICATE_EXPIRY, "bureau" => bureau)
                .set((not_after - now) as f64 / 1000.0);
        }
        if let Some(last_in) = state.last_in {
            metrics::gauge!(m::LAST_MESSAGE_RECEIVED, "bureau" => bureau)
                .set(last_in as f64 / 1000.0);
        }
    }
    store
        .record_node_report(NodeReport {
            node: config.node.clone(),
            at: now,
            minutes,
            bureaus: states,
            keep_since: now - KEEP_MS,
        })
        .await
}

/// Reports until `shutdown`; a failed report is logged and counted, and the next one tries
/// again (the dashboard shows the node's last report meanwhile).
pub async fn run<S: Store>(
    store: S,
    config: Arc<Config>,
    activity: Arc<Activity>,
    mut shutdown: watch::Receiver<bool>,
) {
    let interval = Duration::from_secs(config.ops.report_interval_seconds.max(1));
    while !*shutdown.borrow() {
        if let Err(error) = report_once(&store, &config, &activity, now_ms()).await {
            error.count();
            tracing::warn!(
                message = "node report not written",
                error = &error as &dyn std::error::Error
            );
        }
        match crate::net::tls::seconds_until_expiry(&config.tls.cert) {
            Ok(seconds) => metrics::gauge!(m::NODE_CERTIFICATE_EXPIRY).set(seconds as f64),
            Err(error) => tracing::warn!(message = "cannot read the node's certificate", %error),
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => {}
        }
    }
}
