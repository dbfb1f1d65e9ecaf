//! A circuit breaker per subscriber: after consecutive failures it stops sending, then lets one
//! probe through at a time, and closes again on the first success. It keeps one bureau's outage
//! from tying up the workers that deliver to the others.

use std::time::{Duration, Instant};

/// Where a subscriber's circuit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Sending normally; counts consecutive failures.
    Closed {
        /// Failures since the last success.
        failures: u32,
    },
    /// Sending nothing until `until`.
    Open {
        /// When a probe may go.
        until: Instant,
    },
    /// One probe at a time; its outcome closes or reopens the circuit.
    HalfOpen {
        /// Whether a probe is in flight.
        probing: bool,
    },
}

/// What the breaker allows now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send as many as the concurrency limits allow.
    Normal,
    /// Send exactly one delivery as a probe.
    Probe,
    /// Send nothing.
    Blocked,
}

/// A circuit breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    state: CircuitState,
    threshold: u32,
    open_for: Duration,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` consecutive failures for `open_for`.
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            state: CircuitState::Closed { failures: 0 },
            threshold,
            open_for,
        }
    }

    /// The current state.
    pub fn state(&self) -> CircuitState {
        self.state
    }

    /// The state as a node reports it to the operator view.
    pub fn reported(&self) -> crate::store::CircuitState {
        match self.state {
            CircuitState::Closed { .. } => crate::store::CircuitState::Closed,
            CircuitState::HalfOpen { .. } => crate::store::CircuitState::HalfOpen,
            CircuitState::Open { .. } => crate::store::CircuitState::Open,
        }
    }

    /// The state as a gauge value: 0 closed, 1 half-open, 2 open.
    pub fn gauge(&self) -> f64 {
        match self.state {
            CircuitState::Closed { .. } => 0.0,
            CircuitState::HalfOpen { .. } => 1.0,
            CircuitState::Open { .. } => 2.0,
        }
    }

    /// What may be sent now; a `Probe` answer marks the probe as in flight.
    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.state {
            CircuitState::Closed { .. } => Admission::Normal,
            CircuitState::Open { until } if now < until => Admission::Blocked,
            CircuitState::Open { .. } | CircuitState::HalfOpen { probing: false } => {
                self.state = CircuitState::HalfOpen { probing: true };
                Admission::Probe
            }
            CircuitState::HalfOpen { probing: true } => Admission::Blocked,
        }
    }

    /// A probe that was admitted but not sent (no due work): the next admit may probe again.
    pub fn probe_unused(&mut self) {
        if self.state == (CircuitState::HalfOpen { probing: true }) {
            self.state = CircuitState::HalfOpen { probing: false };
        }
    }

    /// A delivery succeeded.
    pub fn on_success(&mut self) {
        self.state = CircuitState::Closed { failures: 0 };
    }

    /// A delivery failed.
    pub fn on_failure(&mut self, now: Instant) {
        self.state = match self.state {
            CircuitState::Closed { failures } if failures + 1 < self.threshold => {
                CircuitState::Closed {
                    failures: failures + 1,
                }
            }
            _ => CircuitState::Open {
                until: now + self.open_for,
            },
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_probes_one_at_a_time_and_closes_on_success() {
        let now = Instant::now();
        let mut breaker = Breaker::new(3, Duration::from_secs(10));
        for _ in 0..2 {
            breaker.on_failure(now);
            assert_eq!(breaker.admit(now), Admission::Normal);
        }
        breaker.on_failure(now);
        assert_eq!(breaker.admit(now), Admission::Blocked);
        let later = now + Duration::from_secs(11);
        assert_eq!(breaker.admit(later), Admission::Probe);
        assert_eq!(
            breaker.admit(later),
            Admission::Blocked,
            "one probe at a time"
        );
        breaker.on_failure(later);
        assert_eq!(
            breaker.admit(later),
            Admission::Blocked,
            "a failed probe reopens"
        );
        let much_later = later + Duration::from_secs(11);
        assert_eq!(breaker.admit(much_later), Admission::Probe);
        breaker.on_success();
        assert_eq!(breaker.admit(much_later), Admission::Normal);
        assert_eq!(breaker.gauge(), 0.0);
    }

    #[test]
    fn an_unused_probe_can_be_taken_again() {
        let now = Instant::now();
        let mut breaker = Breaker::new(1, Duration::ZERO);
        breaker.on_failure(now);
        assert_eq!(breaker.admit(now), Admission::Probe);
        breaker.probe_unused();
        assert_eq!(breaker.admit(now), Admission::Probe);
    }
}
