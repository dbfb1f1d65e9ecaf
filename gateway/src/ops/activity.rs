//! What this node sees of each bureau as it happens (recording only: this is on the request and
//! delivery paths; the report task turns it into gauges and store rows): messages in, deliveries out, failures and
//! their errors, its circuit breakers, the certificates bureaus present. Kept in memory for a
//! few minutes only (a bounded map: seven bureaus, the last three minutes each) and
//! written to the store by the report task ([`super::report`]), where every node's dashboard
//! reads every node's reports.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use schemas::BureauId;

use crate::clock::Millis;
use crate::store::{BureauState, CircuitState, MinuteCounts};

/// Minutes of counts kept in memory; older ones have been reported already.
const KEPT_MINUTES: i64 = 3;

const MINUTE_MS: Millis = 60_000;

/// The start of the minute `at` falls in.
pub fn minute_of(at: Millis) -> Millis {
    at.div_euclid(MINUTE_MS) * MINUTE_MS
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    received: u64,
    delivered: u64,
    failed: u64,
    backlog: u64,
}

#[derive(Debug)]
struct Seen {
    last_in: Option<Millis>,
    last_out: Option<Millis>,
    failing_since: Option<Millis>,
    failing_count: u64,
    last_error: Option<(Millis, String)>,
    circuit: CircuitState,
    certificate_not_after: Option<Millis>,
    minutes: BTreeMap<Millis, Counts>,
}

impl Default for Seen {
    fn default() -> Self {
        Self {
            last_in: None,
            last_out: None,
            failing_since: None,
            failing_count: 0,
            last_error: None,
            circuit: CircuitState::Closed,
            certificate_not_after: None,
            minutes: BTreeMap::new(),
        }
    }
}

impl Seen {
    fn minute(&mut self, at: Millis) -> &mut Counts {
        let minute = minute_of(at);
        self.minutes
            .retain(|m, _| *m > minute - KEPT_MINUTES * MINUTE_MS);
        self.minutes.entry(minute).or_default()
    }
}

/// This node's view of each bureau, shared by the listener's handlers, the delivery engine and
/// the report task.
#[derive(Debug, Default)]
pub struct Activity {
    bureaus: Mutex<HashMap<BureauId, Seen>>,
}

impl Activity {
    fn with<T>(&self, bureau: BureauId, f: impl FnOnce(&mut Seen) -> T) -> T {
        let mut bureaus = self.bureaus.lock().unwrap_or_else(|p| p.into_inner());
        f(bureaus.entry(bureau).or_default())
    }

    /// A message from `bureau` was accepted (committed) at `at`.
    pub fn received(&self, bureau: BureauId, at: Millis) {
        self.with(bureau, |seen| {
            seen.last_in = Some(at);
            seen.minute(at).received += 1;
        });
    }

    /// `count` deliveries to `bureau` succeeded at `at` (a push, or a feed acknowledgement).
    pub fn delivered(&self, bureau: BureauId, at: Millis, count: u64) {
        if count == 0 {
            return;
        }
        self.with(bureau, |seen| {
            seen.last_out = Some(at);
            seen.failing_since = None;
            seen.failing_count = 0;
            seen.minute(at).delivered += count;
        });
    }

    /// A delivery attempt to `bureau` failed at `at` with `error`.
    pub fn failed(&self, bureau: BureauId, at: Millis, error: &str) {
        self.with(bureau, |seen| {
            seen.failing_since.get_or_insert(at);
            seen.failing_count += 1;
            seen.last_error = Some((at, error.to_owned()));
            seen.minute(at).failed += 1;
        });
    }

    /// This node's circuit breaker for `bureau` is now `state`.
    pub fn circuit(&self, bureau: BureauId, state: CircuitState) {
        self.with(bureau, |seen| seen.circuit = state);
    }

    /// `bureau` presented a certificate valid until `not_after`. Called on every request of a
    /// bureau, so it only records; the report task sets the gauges.
    pub fn certificate(&self, bureau: BureauId, not_after: Millis) {
        self.with(bureau, |seen| seen.certificate_not_after = Some(not_after));
    }

    /// For a report at `now`: the counts of the minutes kept (the current one and the few before
    /// it, which a report rewrites while late outcomes come in), the current minute's backlog
    /// set from `backlog` (each bureau's pending deliveries now; earlier minutes keep the figure
    /// they had while current), and the state of every bureau of `bureaus` or seen.
    pub fn snapshot(
        &self,
        now: Millis,
        bureaus: &[BureauId],
        backlog: &HashMap<BureauId, u64>,
    ) -> (Vec<MinuteCounts>, Vec<BureauState>) {
        let mut seen_by = self.bureaus.lock().unwrap_or_else(|p| p.into_inner());
        for &bureau in bureaus {
            seen_by.entry(bureau).or_default();
        }
        let mut minutes = Vec::new();
        let mut states = Vec::new();
        for (&bureau, seen) in seen_by.iter_mut() {
            seen.minute(now).backlog = backlog.get(&bureau).copied().unwrap_or(0);
            for (&minute, counts) in &seen.minutes {
                minutes.push(MinuteCounts {
                    bureau,
                    minute,
                    received: counts.received,
                    delivered: counts.delivered,
                    failed: counts.failed,
                    backlog: counts.backlog,
                });
            }
            states.push(BureauState {
                bureau,
                last_in: seen.last_in,
                last_out: seen.last_out,
                failing_since: seen.failing_since,
                failing_count: seen.failing_count,
                last_error: seen.last_error.clone(),
                circuit: seen.circuit,
                certificate_not_after: seen.certificate_not_after,
            });
        }
        minutes.sort_by_key(|m| (m.minute, m.bureau));
        states.sort_by_key(|s| s.bureau);
        (minutes, states)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_go_to_their_minute_and_a_success_ends_a_failure_streak() {
        let activity = Activity::default();
        activity.received(BureauId::Water, 60_500);
        activity.received(BureauId::Water, 61_000);
        activity.failed(BureauId::Water, 62_000, "HTTP 503");
        activity.failed(BureauId::Water, 125_000, "HTTP 503");
        let (minutes, states) =
            activity.snapshot(125_500, &[], &HashMap::from([(BureauId::Water, 9)]));
        let counts: Vec<_> = minutes
            .iter()
            .map(|m| (m.minute, m.received, m.failed, m.backlog))
            .collect();
        assert_eq!(counts, vec![(60_000, 2, 1, 0), (120_000, 0, 1, 9)]);
        assert_eq!(states[0].failing_since, Some(62_000));
        assert_eq!(states[0].failing_count, 2);
        assert_eq!(states[0].last_error, Some((125_000, "HTTP 503".into())));

        activity.delivered(BureauId::Water, 130_000, 1);
        let (_, states) = activity.snapshot(130_000, &[], &HashMap::new());
        assert_eq!(states[0].failing_since, None, "a success ends the streak");
        assert_eq!(states[0].last_out, Some(130_000));
    }

    #[test]
    fn only_the_last_minutes_are_kept() {
        let activity = Activity::default();
        for minute in 0..10 {
            activity.received(BureauId::Transport, minute * MINUTE_MS);
        }
        let (minutes, states) =
            activity.snapshot(9 * MINUTE_MS, &[BureauId::Greenery], &HashMap::new());
        let transport: Vec<_> = minutes
            .iter()
            .filter(|m| m.bureau == BureauId::Transport)
            .collect();
        assert_eq!(transport.len(), KEPT_MINUTES as usize);
        assert_eq!(
            states.len(),
            2,
            "a configured bureau is reported before it is seen"
        );
        assert_eq!(transport.last().map(|m| m.minute), Some(9 * MINUTE_MS));
    }
}
