//! What the bench's processes write and read: the marker every message carries, the sets of
//! sequence numbers they count, and latency histograms as JSON.
//!
//! The marker is the message's case id, `BENCH.<step>.<seq>.<scheduled µs>` (35 characters, a
//! valid case id of every format): each adapter carries the case id verbatim, so a receiver
//! finds it in any bureau's body without decoding it, and learns which message it is and when
//! it was meant to be sent.

use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The marker's fixed prefix.
pub const MARKER_PREFIX: &[u8] = b"BENCH.";

/// The marker's length: `BENCH.` + 2 + `.` + 9 + `.` + 16.
pub const MARKER_LEN: usize = 35;

/// The marker with every digit zero: the template's placeholder.
pub const PLACEHOLDER: &str = "BENCH.00.000000000.0000000000000000";

/// One message's marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// The rate step (0-99).
    pub step: u32,
    /// The message's sequence number in its step.
    pub seq: u64,
    /// When it was scheduled to be sent, Unix microseconds.
    pub scheduled_us: u64,
}

impl Marker {
    /// Its text, [`MARKER_LEN`] bytes.
    pub fn write(&self, out: &mut [u8]) {
        let text = format!(
            "BENCH.{:02}.{:09}.{:016}",
            self.step % 100,
            self.seq % 1_000_000_000,
            self.scheduled_us % 10_000_000_000_000_000
        );
        out[..MARKER_LEN].copy_from_slice(text.as_bytes());
    }

    /// Finds the marker in a body, in whatever format it is.
    pub fn find(body: &[u8]) -> Option<Self> {
        let at = memchr::memmem::find(body, MARKER_PREFIX)?;
        Self::at(body, at)
    }

    /// Every distinct marker in a body: one per delivery of a batch push (a format that writes
    /// the case id twice still counts once per message).
    pub fn find_all(body: &[u8]) -> Vec<Self> {
        let mut markers: Vec<Self> = memchr::memmem::find_iter(body, MARKER_PREFIX)
            .filter_map(|at| Self::at(body, at))
            .collect();
        markers.sort_unstable_by_key(|m| (m.step, m.seq));
        markers.dedup_by_key(|m| (m.step, m.seq));
        markers
    }

    fn at(body: &[u8], at: usize) -> Option<Self> {
        let text = std::str::from_utf8(body.get(at..at + MARKER_LEN)?).ok()?;
        let mut parts = text.split('.').skip(1);
        let step = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        let scheduled_us = parts.next()?.parse().ok()?;
        Some(Self {
            step,
            seq,
            scheduled_us,
        })
    }
}

/// A set of sequence numbers, one bit each: bounded by the messages sent, whatever the
/// duplicates. Grows as needed; shared between tasks without a lock.
#[derive(Debug, Default)]
pub struct SeqSet {
    words: Vec<AtomicU64>,
}

impl SeqSet {
    /// A set that can hold `0..capacity` without growing.
    pub fn with_capacity(capacity: u64) -> Self {
        let words = capacity.div_ceil(64) as usize;
        Self {
            words: (0..words).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Adds `seq`; true when it was not there. `seq` must be below the capacity.
    pub fn insert(&self, seq: u64) -> bool {
        let Some(word) = self.words.get((seq / 64) as usize) else {
            return false;
        };
        let bit = 1u64 << (seq % 64);
        word.fetch_or(bit, Ordering::Relaxed) & bit == 0
    }

    /// Adds `seq`, growing the set when needed (needs `&mut`: the receiver's per-step sets).
    pub fn insert_growing(&mut self, seq: u64) -> bool {
        let index = (seq / 64) as usize;
        if index >= self.words.len() {
            self.words.resize_with(index + 1, || AtomicU64::new(0));
        }
        self.insert(seq)
    }

    /// Its members count.
    pub fn len(&self) -> u64 {
        self.words
            .iter()
            .map(|w| u64::from(w.load(Ordering::Relaxed).count_ones()))
            .sum()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw words, little-endian (the file format of the senders' accepted sets).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.words
            .iter()
            .flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes())
            .collect()
    }

    /// Reads [`Self::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self {
            words: bytes
                .chunks(8)
                .map(|c| {
                    let mut word = [0u8; 8];
                    word[..c.len()].copy_from_slice(c);
                    AtomicU64::new(u64::from_le_bytes(word))
                })
                .collect(),
        }
    }

    /// Adds every member of `other`.
    pub fn union_with(&mut self, other: &SeqSet) {
        if other.words.len() > self.words.len() {
            self.words
                .resize_with(other.words.len(), || AtomicU64::new(0));
        }
        for (mine, theirs) in self.words.iter().zip(&other.words) {
            mine.fetch_or(theirs.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// How many members of `self` are missing from `other`.
    pub fn missing_from(&self, other: &SeqSet) -> u64 {
        self.words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let theirs = other.words.get(i).map_or(0, |t| t.load(Ordering::Relaxed));
                u64::from((w.load(Ordering::Relaxed) & !theirs).count_ones())
            })
            .sum()
    }
}

/// A latency histogram in microseconds, 1 µs to one hour, three significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// A histogram as JSON: its recorded (value, count) pairs, so processes can merge theirs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Recorded(pub Vec<(u64, u64)>);

impl Recorded {
    /// The recorded values of `histogram`.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        Self(
            histogram
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
        )
    }

    /// Adds these values to `histogram`.
    pub fn add_to(&self, histogram: &mut Histogram<u64>) {
        for &(value, count) in &self.0 {
            histogram.saturating_record_n(value, count);
        }
    }
}

/// The value at `quantile` in milliseconds, or 0 for an empty histogram.
pub fn quantile_ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    if histogram.is_empty() {
        return 0.0;
    }
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_is_found_in_any_body() {
        let marker = Marker {
            step: 3,
            seq: 123_456,
            scheduled_us: 1_764_590_000_123_456,
        };
        let mut text = PLACEHOLDER.as_bytes().to_vec();
        marker.write(&mut text);
        let body = [b"<CaseNo>".as_slice(), &text, b"</CaseNo>"].concat();
        assert_eq!(Marker::find(&body), Some(marker));
        assert_eq!(Marker::find(b"<CaseNo>GH2026</CaseNo>"), None);

        // A batch push: every message once, however often a format writes its case id.
        let other = Marker { seq: 7, ..marker };
        let mut second = PLACEHOLDER.as_bytes().to_vec();
        other.write(&mut second);
        let batch = [body.as_slice(), &second, b"--", &text, &second].concat();
        let mut expected = vec![other, marker];
        expected.sort_unstable_by_key(|m| m.seq);
        assert_eq!(Marker::find_all(&batch), expected);
        assert!(
            schemas::BureauCaseId::parse(std::str::from_utf8(&text).unwrap()).is_ok(),
            "the marker is a valid case id"
        );
    }

    #[test]
    fn sets_count_what_is_missing() {
        let accepted = SeqSet::with_capacity(200);
        for seq in [0, 5, 64, 150, 199] {
            assert!(accepted.insert(seq));
        }
        assert!(!accepted.insert(5), "a second insert is a duplicate");
        let mut received = SeqSet::default();
        for seq in [0, 64, 150, 180] {
            received.insert_growing(seq);
        }
        assert_eq!(accepted.missing_from(&received), 2, "5 and 199");
        assert_eq!(
            received.missing_from(&accepted),
            1,
            "180 was never accepted"
        );
        let back = SeqSet::from_bytes(&accepted.to_bytes());
        assert_eq!(back.len(), 5);
        let mut union = SeqSet::default();
        union.union_with(&back);
        union.union_with(&received);
        assert_eq!(union.len(), 6);
    }

    #[test]
    fn histograms_merge_across_processes() {
        let mut one = histogram();
        for v in [100, 200, 300, 5_000] {
            one.record(v).unwrap();
        }
        let json = serde_json::to_string(&Recorded::of(&one)).unwrap();
        let back: Recorded = serde_json::from_str(&json).unwrap();
        let mut merged = histogram();
        back.add_to(&mut merged);
        back.add_to(&mut merged);
        assert_eq!(merged.len(), 8);
        assert!((quantile_ms(&merged, 1.0) - 5.0).abs() < 0.01);
    }
}
