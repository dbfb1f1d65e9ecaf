//! What the demo's simulated bureaus counted: as senders (here), as receivers (their
//! [`Inbox`]), and as readers of the survey results they were notified of.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use schemas::BureauId;

use crate::sim::Inbox;

/// What one simulated bureau saw.
#[derive(Debug)]
pub(super) struct Tally {
    pub(super) sent: AtomicU64,
    pub(super) accepted: AtomicU64,
    pub(super) resent: AtomicU64,
    pub(super) duplicate_answers: AtomicU64,
    pub(super) rejected: Mutex<BTreeMap<String, u64>>,
    /// Deliveries the gateway promised to others for this bureau's messages.
    pub(super) promised: AtomicU64,
    /// What it received (by push, or from its feed).
    pub(super) inbox: Arc<Inbox>,
    /// Its reading of the survey results it was notified of.
    pub(super) reads: Arc<SurveyReads>,
}

impl Tally {
    pub(super) fn new(inbox: Arc<Inbox>, reads: Arc<SurveyReads>) -> Self {
        Self {
            sent: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            resent: AtomicU64::new(0),
            duplicate_answers: AtomicU64::new(0),
            rejected: Mutex::new(BTreeMap::new()),
            promised: AtomicU64::new(0),
            inbox,
            reads,
        }
    }

    /// Counts a refused message under `reason`.
    pub(super) fn reject(&self, reason: String) {
        *self
            .rejected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    /// Messages refused, by reason.
    pub(super) fn rejections(&self) -> BTreeMap<String, u64> {
        self.rejected.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Messages refused in all.
    pub(super) fn rejected(&self) -> u64 {
        self.rejections().values().sum()
    }
}

/// A bureau reading the survey results it is notified of (multi-survey-in-one: it reuses the
/// shared survey instead of commissioning its own).
#[derive(Debug, Default)]
pub(super) struct SurveyReads {
    /// Notices received.
    pub(super) notices: AtomicU64,
    /// Notices not yet read through.
    pub(super) queued: AtomicU64,
    /// Reads of results and files that succeeded, and that failed (must stay 0).
    pub(super) fetches: AtomicU64,
    pub(super) failures: AtomicU64,
}

/// Every bureau's tally.
pub(super) type Tallies = Arc<BTreeMap<BureauId, Tally>>;

/// Sums `count` over every bureau.
pub(super) fn total(tallies: &Tallies, count: impl Fn(&Tally) -> u64) -> u64 {
    tallies.values().map(count).sum()
}

/// Reads a counter.
pub(super) fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// What planning's publishing did.
#[derive(Debug, Default)]
pub(super) struct Publications {
    pub(super) ids: Mutex<Vec<String>>,
    pub(super) corrections: AtomicU64,
    pub(super) failures: AtomicU64,
}
