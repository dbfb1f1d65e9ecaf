//! The wall clock, read in one place. The store holds no clock: callers pass it these times.

use schemas::ShanghaiTime;

/// Unix time in milliseconds, the unit every stored time uses.
pub type Millis = i64;

/// Milliseconds since the Unix epoch (0 if the system clock is set before 1970).
pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The current time in Shanghai (`+08:00`, to the second), as events carry it. `None` only for a
/// system clock outside the years the canonical model accepts.
pub fn shanghai_now() -> Option<ShanghaiTime> {
    let seconds = now_ms() / 1000 + 8 * 3600;
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.naive_utc())
        .and_then(|local| ShanghaiTime::from_local(local).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shanghai_now_is_eight_hours_ahead_of_utc() {
        let before = now_ms() / 1000;
        let now = shanghai_now().expect("a current clock");
        let text = serde_json::to_value(now).expect("serializes");
        let text = text.as_str().expect("a string");
        assert!(text.ends_with("+08:00"), "{text}");
        let parsed = chrono::DateTime::parse_from_rfc3339(text).expect("RFC 3339");
        assert!((parsed.timestamp() - before).abs() <= 2, "{text}");
    }
}
