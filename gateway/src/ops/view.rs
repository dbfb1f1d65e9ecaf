//! The exchange-wide picture an operator sees: one row per bureau with its health and the
//! reason for it in words, and the last hour per bureau and minute. Built from the store only —
//! every node's reports, the queue, the pauses — so every node shows the same picture.

use std::collections::HashMap;

use schemas::BureauId;
use serde::Serialize;

use super::activity::minute_of;
use super::words::{self, Label, Lang};
use crate::clock::Millis;
use crate::config::{Config, DeliveryMode};
use crate::store::{Backlog, CircuitState, NodeReports, Pause, Store, StoreError};

/// Minutes of history the charts show.
pub const CHART_MINUTES: i64 = 60;
/// The window of the failure rate and the inbound rate.
const RATE_MINUTES: i64 = 5;
const MINUTE_MS: Millis = 60_000;
/// Most report rows read at once: 7 bureaus × 61 minutes × 23 nodes.
const MAX_REPORT_ROWS: usize = 10_000;
/// Failed attempts in a row (no success since) after which a bureau is failing, not retrying.
const FAILING_AFTER: u64 = 3;
/// A bureau with at least this many attempts in five minutes …
const RATE_MIN_ATTEMPTS: u64 = 10;
/// … of which at least this share failed is degraded, even if its last attempt succeeded.
const RATE_DEGRADED: f64 = 0.1;

/// Healthy, degraded or failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Nothing to do.
    Healthy,
    /// Look at it: something is slow, held or piling up.
    Degraded,
    /// Deliveries to it fail now.
    Failing,
}

impl Health {
    /// Its words.
    pub fn label(self, lang: Lang) -> &'static str {
        words::label(
            lang,
            match self {
                Self::Healthy => Label::Healthy,
                Self::Degraded => Label::Degraded,
                Self::Failing => Label::Failing,
            },
        )
    }
}

/// Why a bureau is not healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// Deliveries have failed since `since` with no success since: `failures` attempts, the
    /// last with `error`.
    Failing {
        /// Failed attempts since then (all nodes).
        failures: u64,
        /// Since when (the first failure after the last success).
        since: Millis,
        /// The last attempt's error.
        error: String,
    },
    /// A node's circuit breaker is open: deliveries wait for the open period to end.
    CircuitOpen {
        /// How many nodes have it open.
        nodes: usize,
    },
    /// The last attempts failed, fewer than make it failing: retrying.
    Retrying {
        /// Failed attempts in a row.
        failures: u64,
        /// The last attempt's error.
        error: String,
    },
    /// Many attempts failed in the last five minutes, though some succeed.
    FailureRate {
        /// Failed attempts in the last five minutes.
        failures: u64,
        /// All attempts then.
        attempts: u64,
        /// The last failed attempt's error.
        error: String,
    },
    /// An operator paused delivery.
    Paused {
        /// Who.
        by: String,
        /// When.
        at: Millis,
    },
    /// The oldest pending delivery waits longer than the threshold.
    BacklogAge {
        /// How long, in seconds.
        seconds: i64,
        /// Pending deliveries.
        pending: u64,
    },
    /// Dead letters wait for an operator.
    DeadLetters {
        /// How many.
        count: u64,
    },
    /// The certificate it last presented expires soon (or has expired).
    CertificateExpiring {
        /// Whole days left (negative: expired).
        days: i64,
    },
}

impl Reason {
    /// The reason in words, e.g. "18 deliveries failing since 10:42, HTTP 503".
    pub fn text(&self, lang: Lang) -> String {
        match (self, lang) {
            (
                Self::Failing {
                    failures,
                    since,
                    error,
                },
                Lang::En,
            ) => format!(
                "{failures} deliveries failing since {}, {error}",
                words::clock(*since)
            ),
            (
                Self::Failing {
                    failures,
                    since,
                    error,
                },
                Lang::Zh,
            ) => format!(
                "自 {} 起投递失败 {failures} 次，{error}",
                words::clock(*since)
            ),
            (Self::CircuitOpen { nodes }, Lang::En) => {
                format!("circuit open on {nodes} node(s): deliveries wait")
            }
            (Self::CircuitOpen { nodes }, Lang::Zh) => {
                format!("{nodes} 个节点已熔断，投递暂停等待")
            }
            (Self::Retrying { failures, error }, Lang::En) => {
                format!("retrying after {failures} failed attempt(s), {error}")
            }
            (Self::Retrying { failures, error }, Lang::Zh) => {
                format!("投递失败 {failures} 次，正在重试，{error}")
            }
            (
                Self::FailureRate {
                    failures,
                    attempts,
                    error,
                },
                Lang::En,
            ) => format!(
                "{failures} of {attempts} attempts failed in 5 min ({:.0}%), last: {error}",
                *failures as f64 * 100.0 / (*attempts).max(1) as f64
            ),
            (
                Self::FailureRate {
                    failures,
                    attempts,
                    error,
                },
                Lang::Zh,
            ) => format!(
                "5 分钟内 {attempts} 次投递失败 {failures} 次（{:.0}%），最近：{error}",
                *failures as f64 * 100.0 / (*attempts).max(1) as f64
            ),
            (Self::Paused { by, at }, Lang::En) => {
                format!("delivery paused by {by} at {}", words::clock(*at))
            }
            (Self::Paused { by, at }, Lang::Zh) => {
                format!("{by} 于 {} 暂停了投递", words::clock(*at))
            }
            (Self::BacklogAge { seconds, pending }, Lang::En) => format!(
                "{pending} pending, the oldest waiting {}",
                words::age(lang, seconds * 1000)
            ),
            (Self::BacklogAge { seconds, pending }, Lang::Zh) => format!(
                "{pending} 条待投递，最早已等待 {}",
                words::age(lang, seconds * 1000)
            ),
            (Self::DeadLetters { count }, Lang::En) => format!("{count} dead letter(s) to look at"),
            (Self::DeadLetters { count }, Lang::Zh) => format!("{count} 条死信待处理"),
            (Self::CertificateExpiring { days }, Lang::En) if *days < 0 => {
                "its certificate has expired".to_owned()
            }
            (Self::CertificateExpiring { days }, Lang::Zh) if *days < 0 => {
                "其证书已过期".to_owned()
            }
            (Self::CertificateExpiring { days }, Lang::En) => {
                format!("its certificate expires in {days} days")
            }
            (Self::CertificateExpiring { days }, Lang::Zh) => format!("其证书 {days} 天后到期"),
        }
    }

    /// How serious it is.
    fn health(&self) -> Health {
        match self {
            Self::Failing { .. } | Self::CircuitOpen { .. } => Health::Failing,
            _ => Health::Degraded,
        }
    }
}

/// One bureau's row.
#[derive(Debug, Clone, Serialize)]
pub struct BureauHealth {
    /// The bureau.
    pub bureau: BureauId,
    /// How it receives: `push` or `pull`.
    pub delivery: &'static str,
    /// Its health: the worst of its reasons.
    pub health: Health,
    /// Why (empty when healthy), the most serious first.
    pub reasons: Vec<Reason>,
    /// The reasons in English words, joined (what `gateway ctl` and alerts show).
    pub reason: String,
    /// When a node last accepted a message from it.
    pub last_in: Option<Millis>,
    /// When a node last delivered to it.
    pub last_out: Option<Millis>,
    /// Messages accepted from it per minute, over the last five minutes.
    pub inbound_per_minute: f64,
    /// Its pending deliveries.
    pub backlog: u64,
    /// When its oldest pending delivery was queued.
    pub oldest_pending: Option<Millis>,
    /// Deliveries to it in the last five minutes.
    pub delivered_5m: u64,
    /// Failed attempts in the last five minutes.
    pub failed_5m: u64,
    /// Failed attempts ÷ all attempts in the last five minutes (none: no attempts).
    pub failure_rate_5m: Option<f64>,
    /// The worst circuit state among the nodes reporting now.
    pub circuit: CircuitState,
    /// The pause in force, if any.
    pub paused: Option<Pause>,
    /// Its dead letters.
    pub dead_letters: u64,
    /// When the certificate it last presented expires.
    pub certificate_not_after: Option<Millis>,
    /// Whole days until then.
    pub certificate_days_left: Option<i64>,
    /// Since when deliveries to it fail (on any node).
    pub failing_since: Option<Millis>,
    /// The last failed attempt's time and error (on any node).
    pub last_error: Option<(Millis, String)>,
}

/// One bureau's last hour, a point per minute (the oldest first).
#[derive(Debug, Clone, Serialize)]
pub struct BureauSeries {
    /// The bureau.
    pub bureau: BureauId,
    /// Each minute's start.
    pub minutes: Vec<Millis>,
    /// Messages accepted from it, all nodes.
    pub received: Vec<u64>,
    /// Deliveries to it, all nodes.
    pub delivered: Vec<u64>,
    /// Failed attempts, all nodes.
    pub failed: Vec<u64>,
    /// Its pending deliveries (the last figure a node reported in that minute).
    pub backlog: Vec<u64>,
}

/// A node that reported recently.
#[derive(Debug, Clone, Serialize)]
pub struct NodeSeen {
    /// Its name.
    pub node: String,
    /// When it last reported.
    pub reported_at: Millis,
}

/// The whole picture.
#[derive(Debug, Clone, Serialize)]
pub struct ExchangeView {
    /// When it was made.
    pub at: Millis,
    /// The node that made it.
    pub node: String,
    /// One row per configured bureau, in id order.
    pub bureaus: Vec<BureauHealth>,
    /// The last hour per bureau.
    pub series: Vec<BureauSeries>,
    /// The nodes reporting now (within three report intervals).
    pub nodes: Vec<NodeSeen>,
}

impl ExchangeView {
    /// Reads what the view needs from the store (bounded: the last hour of reports, the
    /// backlogs, the pauses) and puts it together.
    pub async fn read<S: Store>(
        store: &S,
        config: &Config,
        now: Millis,
    ) -> Result<Self, StoreError> {
        let since = minute_of(now) - (CHART_MINUTES - 1) * MINUTE_MS;
        let reports = store.node_reports(since, MAX_REPORT_ROWS).await?;
        let stats = store
            .backlogs(config.bureaus.keys().copied().collect())
            .await?;
        let pauses = store.pauses().await?;
        Ok(Self::build(config, now, &reports, &stats, &pauses))
    }

    /// Puts the picture together (pure, so its rules are tested without a store).
    pub fn build(
        config: &Config,
        now: Millis,
        reports: &NodeReports,
        stats: &[Backlog],
        pauses: &[Pause],
    ) -> Self {
        let current = minute_of(now);
        let first = current - (CHART_MINUTES - 1) * MINUTE_MS;
        let rate_from = current - (RATE_MINUTES - 1) * MINUTE_MS;
        // The rate window: four whole minutes and the part of the current one gone by.
        let rate_minutes = (now - rate_from).max(MINUTE_MS) as f64 / MINUTE_MS as f64;
        // A node whose last report is older than three intervals is gone: its circuit and its
        // failure streak no longer hold.
        let fresh_after = now - 3 * 1000 * config.ops.report_interval_seconds as i64;

        let mut nodes: HashMap<&str, Millis> = HashMap::new();
        for (node, reported_at, _) in &reports.bureaus {
            let seen = nodes.entry(node).or_insert(*reported_at);
            *seen = (*seen).max(*reported_at);
        }

        let mut bureaus = Vec::new();
        let mut series = Vec::new();
        for (&bureau, bureau_config) in &config.bureaus {
            let mut points = BureauSeries {
                bureau,
                minutes: (0..CHART_MINUTES).map(|i| first + i * MINUTE_MS).collect(),
                received: vec![0; CHART_MINUTES as usize],
                delivered: vec![0; CHART_MINUTES as usize],
                failed: vec![0; CHART_MINUTES as usize],
                backlog: vec![0; CHART_MINUTES as usize],
            };
            let (mut received_5m, mut delivered_5m, mut failed_5m) = (0, 0, 0);
            for (_, counts) in reports.minutes.iter().filter(|(_, c)| c.bureau == bureau) {
                if counts.minute >= rate_from {
                    received_5m += counts.received;
                    delivered_5m += counts.delivered;
                    failed_5m += counts.failed;
                }
                let Ok(i) = usize::try_from((counts.minute - first) / MINUTE_MS) else {
                    continue;
                };
                if i < points.minutes.len() {
                    points.received[i] += counts.received;
                    points.delivered[i] += counts.delivered;
                    points.failed[i] += counts.failed;
                    points.backlog[i] = points.backlog[i].max(counts.backlog);
                }
            }
            series.push(points);

            let states: Vec<_> = reports
                .bureaus
                .iter()
                .filter(|(_, _, s)| s.bureau == bureau)
                .collect();
            let fresh = || states.iter().filter(|(_, at, _)| *at >= fresh_after);
            let open_nodes = fresh()
                .filter(|(_, _, s)| s.circuit == CircuitState::Open)
                .count();
            let circuit = fresh()
                .map(|(_, _, s)| s.circuit)
                .max_by_key(|c| match c {
                    CircuitState::Closed => 0,
                    CircuitState::HalfOpen => 1,
                    CircuitState::Open => 2,
                })
                .unwrap_or(CircuitState::Closed);
            let last_error = states
                .iter()
                .filter_map(|(_, _, s)| s.last_error.clone())
                .max_by_key(|(at, _)| *at);
            let certificate_not_after = states
                .iter()
                .filter_map(|(_, _, s)| s.certificate_not_after)
                .max();
            let stat = stats.iter().find(|s| s.subscriber == bureau);
            let paused = pauses.iter().find(|p| p.subscriber == bureau).cloned();

            // A node's failure streak counts while it is current: its last error is recent (a
            // streak whose deliveries were all dead-lettered stops producing errors), and no
            // node has delivered since it began (a success anywhere ends it for the picture).
            let last_out = states.iter().filter_map(|(_, _, s)| s.last_out).max();
            let current = |s: &crate::store::BureauState| {
                s.failing_since
                    .is_some_and(|since| last_out.is_none_or(|out| out < since))
                    && s.last_error
                        .as_ref()
                        .is_some_and(|(at, _)| *at >= now - RATE_MINUTES * MINUTE_MS)
            };
            let streaks: Vec<_> = fresh().filter(|(_, _, s)| current(s)).collect();
            let failing_count: u64 = streaks.iter().map(|(_, _, s)| s.failing_count).sum();
            let failing_since = streaks.iter().filter_map(|(_, _, s)| s.failing_since).min();
            let error = last_error.clone().map(|(_, e)| e).unwrap_or_default();
            let mut reasons = Vec::new();
            match failing_since {
                Some(since) if failing_count >= FAILING_AFTER => reasons.push(Reason::Failing {
                    failures: failing_count,
                    since,
                    error,
                }),
                Some(_) if failing_count > 0 => reasons.push(Reason::Retrying {
                    failures: failing_count,
                    error,
                }),
                _ => {}
            }
            if open_nodes > 0 {
                reasons.push(Reason::CircuitOpen { nodes: open_nodes });
            }
            let attempts_5m = delivered_5m + failed_5m;
            if reasons.is_empty()
                && attempts_5m >= RATE_MIN_ATTEMPTS
                && failed_5m as f64 >= RATE_DEGRADED * attempts_5m as f64
            {
                reasons.push(Reason::FailureRate {
                    failures: failed_5m,
                    attempts: attempts_5m,
                    error: last_error.clone().map(|(_, e)| e).unwrap_or_default(),
                });
            }
            if let Some(pause) = &paused {
                reasons.push(Reason::Paused {
                    by: pause.by.clone(),
                    at: pause.at,
                });
            }
            if let Some(stat) = stat {
                let age_s = stat.oldest_pending.map_or(0, |t| (now - t) / 1000);
                if age_s > config.ops.backlog_age_degraded_seconds as i64 {
                    reasons.push(Reason::BacklogAge {
                        seconds: age_s,
                        pending: stat.pending,
                    });
                }
                if stat.dead > 0 {
                    reasons.push(Reason::DeadLetters { count: stat.dead });
                }
            }
            let certificate_days_left =
                certificate_not_after.map(|t| (t - now).div_euclid(86_400_000));
            if let Some(days) = certificate_days_left
                && days < config.ops.certificate_warning_days as i64
            {
                reasons.push(Reason::CertificateExpiring { days });
            }
            reasons.sort_by_key(|r| std::cmp::Reverse(r.health()));
            let health = reasons.first().map_or(Health::Healthy, Reason::health);
            let attempts = delivered_5m + failed_5m;
            bureaus.push(BureauHealth {
                bureau,
                delivery: match bureau_config.delivery {
                    DeliveryMode::Push => "push",
                    DeliveryMode::Pull => "pull",
                },
                health,
                reason: reasons
                    .iter()
                    .map(|r| r.text(Lang::En))
                    .collect::<Vec<_>>()
                    .join("; "),
                reasons,
                last_in: states.iter().filter_map(|(_, _, s)| s.last_in).max(),
                last_out: states.iter().filter_map(|(_, _, s)| s.last_out).max(),
                inbound_per_minute: received_5m as f64 / rate_minutes,
                backlog: stat.map_or(0, |s| s.pending),
                oldest_pending: stat.and_then(|s| s.oldest_pending),
                delivered_5m,
                failed_5m,
                failure_rate_5m: (attempts > 0).then(|| failed_5m as f64 / attempts as f64),
                circuit,
                paused,
                dead_letters: stat.map_or(0, |s| s.dead),
                certificate_not_after,
                certificate_days_left,
                failing_since,
                last_error,
            });
        }
        let mut nodes: Vec<NodeSeen> = nodes
            .into_iter()
            .filter(|(_, at)| *at >= fresh_after)
            .map(|(node, reported_at)| NodeSeen {
                node: node.to_owned(),
                reported_at,
            })
            .collect();
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        Self {
            at: now,
            node: config.node.clone(),
            bureaus,
            series,
            nodes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BureauState, MinuteCounts};

    fn config() -> Config {
        Config::defaults().expect("the default configuration loads")
    }

    const NOW: Millis = 1_796_092_920_000 + 30_000; // 10:42:30 in Shanghai

    fn state(bureau: BureauId) -> BureauState {
        BureauState {
            bureau,
            last_in: None,
            last_out: None,
            failing_since: None,
            failing_count: 0,
            last_error: None,
            circuit: CircuitState::Closed,
            certificate_not_after: Some(NOW + 200 * 86_400_000),
        }
    }

    fn counts(bureau: BureauId, minutes_ago: i64, delivered: u64, failed: u64) -> MinuteCounts {
        MinuteCounts {
            bureau,
            minute: minute_of(NOW) - minutes_ago * MINUTE_MS,
            received: 6,
            delivered,
            failed,
            backlog: 3,
        }
    }

    fn row(view: &ExchangeView, bureau: BureauId) -> &BureauHealth {
        view.bureaus
            .iter()
            .find(|b| b.bureau == bureau)
            .expect("a row per bureau")
    }

    #[test]
    fn a_bureau_whose_deliveries_all_fail_is_failing_with_the_reason_in_words() {
        let mut water = state(BureauId::Water);
        water.failing_since = Some(NOW - 30_000);
        water.failing_count = 18;
        water.last_error = Some((NOW - 1_000, "HTTP 503 from endpoint".into()));
        let reports = NodeReports {
            minutes: vec![
                ("gw-1".into(), counts(BureauId::Water, 0, 0, 18)),
                ("gw-1".into(), counts(BureauId::Transport, 0, 9, 0)),
                ("gw-1".into(), counts(BureauId::Transport, 30, 1, 0)),
            ],
            bureaus: vec![
                ("gw-1".into(), NOW - 1_000, water),
                ("gw-1".into(), NOW - 1_000, state(BureauId::Transport)),
            ],
        };
        let view = ExchangeView::build(&config(), NOW, &reports, &[], &[]);
        let water = row(&view, BureauId::Water);
        assert_eq!(water.health, Health::Failing);
        assert_eq!(
            water.reason,
            "18 deliveries failing since 10:42, HTTP 503 from endpoint"
        );
        assert_eq!(
            water.reasons[0].text(Lang::Zh),
            "自 10:42 起投递失败 18 次，HTTP 503 from endpoint"
        );
        assert_eq!(water.failure_rate_5m, Some(1.0));
        let transport = row(&view, BureauId::Transport);
        assert_eq!(transport.health, Health::Healthy);
        assert!(transport.reasons.is_empty());
        // 6 messages over 4.5 minutes (NOW is 30 s into its minute).
        assert!((transport.inbound_per_minute - 6.0 / 4.5).abs() < 1e-9);
        let chart = view
            .series
            .iter()
            .find(|s| s.bureau == BureauId::Transport)
            .unwrap();
        assert_eq!(
            chart.delivered.iter().sum::<u64>(),
            10,
            "the whole hour is charted"
        );
        assert_eq!(
            chart.delivered[CHART_MINUTES as usize - 1],
            9,
            "the current minute last"
        );
    }

    #[test]
    fn a_gone_node_no_longer_makes_a_bureau_fail_and_pauses_and_backlogs_degrade() {
        let mut water = state(BureauId::Water);
        water.circuit = CircuitState::Open;
        water.failing_since = Some(NOW - 600_000);
        water.failing_count = 50;
        let reports = NodeReports {
            minutes: vec![],
            // Reported ten minutes ago: that node is gone.
            bureaus: vec![("gw-2".into(), NOW - 600_000, water)],
        };
        let stats = [Backlog {
            subscriber: BureauId::Water,
            pending: 40,
            dead: 2,
            oldest_pending: Some(NOW - 3_600_000),
        }];
        let pauses = [Pause {
            subscriber: BureauId::Water,
            by: "alice".into(),
            at: NOW - 60_000,
        }];
        let view = ExchangeView::build(&config(), NOW, &reports, &stats, &pauses);
        let water = row(&view, BureauId::Water);
        assert_eq!(water.health, Health::Degraded);
        assert_eq!(
            water.circuit,
            CircuitState::Closed,
            "a gone node's breaker is not shown"
        );
        assert_eq!(
            water.reason,
            "delivery paused by alice at 10:41; 40 pending, the oldest waiting 60 min; 2 dead letter(s) to look at"
        );
        assert!(
            view.nodes.is_empty(),
            "gw-2 has not reported in the last minute"
        );
    }

    #[test]
    fn a_few_failures_in_a_row_are_retrying_and_a_success_heals() {
        let mut greenery = state(BureauId::Greenery);
        greenery.failing_since = Some(NOW - 2_000);
        greenery.failing_count = 2;
        greenery.last_error = Some((NOW - 1_000, "connection refused".into()));
        let reports = NodeReports {
            minutes: vec![("gw-1".into(), counts(BureauId::Greenery, 0, 5, 2))],
            bureaus: vec![("gw-1".into(), NOW - 1_000, greenery.clone())],
        };
        let view = ExchangeView::build(&config(), NOW, &reports, &[], &[]);
        let row = row(&view, BureauId::Greenery);
        assert_eq!(row.health, Health::Degraded);
        assert_eq!(
            row.reason,
            "retrying after 2 failed attempt(s), connection refused"
        );

        // The next delivery succeeded: the streak is over, the failures stay in the figures.
        greenery.failing_since = None;
        greenery.failing_count = 0;
        let reports = NodeReports {
            minutes: reports.minutes,
            bureaus: vec![("gw-1".into(), NOW, greenery)],
        };
        let view = ExchangeView::build(&config(), NOW, &reports, &[], &[]);
        let healed = view
            .bureaus
            .iter()
            .find(|b| b.bureau == BureauId::Greenery)
            .unwrap();
        assert_eq!(healed.health, Health::Healthy);
        assert_eq!(healed.failed_5m, 2);
    }

    #[test]
    fn a_streak_ends_when_any_node_delivers_or_its_errors_stop() {
        let mut one = state(BureauId::Water);
        one.failing_since = Some(NOW - 20_000);
        one.failing_count = 4;
        one.last_error = Some((NOW - 2_000, "HTTP 503".into()));
        let mut two = state(BureauId::Water);
        two.last_out = Some(NOW - 1_000);
        let view = |states: Vec<(String, Millis, BureauState)>| {
            let reports = NodeReports {
                minutes: vec![],
                bureaus: states,
            };
            ExchangeView::build(&config(), NOW, &reports, &[], &[])
        };
        let both = view(vec![
            ("gw-1".into(), NOW, one.clone()),
            ("gw-2".into(), NOW, two),
        ]);
        assert_eq!(
            row(&both, BureauId::Water).health,
            Health::Healthy,
            "gw-2 delivers"
        );
        let alone = view(vec![("gw-1".into(), NOW, one.clone())]);
        assert_eq!(row(&alone, BureauId::Water).health, Health::Failing);
        one.last_error = Some((NOW - 600_000, "HTTP 503".into()));
        let stale = view(vec![("gw-1".into(), NOW, one)]);
        assert_eq!(
            row(&stale, BureauId::Water).health,
            Health::Healthy,
            "no error for five minutes: nothing is being retried"
        );
    }

    #[test]
    fn an_expiring_certificate_degrades() {
        let mut planning = state(BureauId::Planning);
        planning.certificate_not_after = Some(NOW + 5 * 86_400_000 + 1);
        let reports = NodeReports {
            minutes: vec![],
            bureaus: vec![("gw-1".into(), NOW, planning)],
        };
        let view = ExchangeView::build(&config(), NOW, &reports, &[], &[]);
        let planning = row(&view, BureauId::Planning);
        assert_eq!(planning.health, Health::Degraded);
        assert_eq!(planning.certificate_days_left, Some(5));
        assert_eq!(planning.reason, "its certificate expires in 5 days");
    }
}
