//! Retry timing: exponential backoff ceilings (computed by `backon`) with full jitter.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::config::RetryPolicy;

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
