//! New-work signals: a commit wakes the delivery workers and the long-polls of the pull bureaus
//! it concerns, so neither has to poll the store to notice new work.

use std::collections::HashMap;

use schemas::BureauId;
use tokio::sync::Notify;

/// Wakes whoever waits for new work: delivery workers, and each pull bureau's long-polls.
#[derive(Debug, Default)]
pub struct Wakers {
    /// Delivery workers.
    pub delivery: Notify,
    feeds: HashMap<BureauId, Notify>,
}

impl Wakers {
    /// Wakers for these pull bureaus.
    pub fn new(pull: impl IntoIterator<Item = BureauId>) -> Self {
        Self {
            delivery: Notify::new(),
            feeds: pull.into_iter().map(|b| (b, Notify::new())).collect(),
        }
    }

    /// Wakes the delivery workers and every feed long-poll.
    pub fn wake_all(&self) {
        self.delivery.notify_waiters();
        for waker in self.feeds.values() {
            waker.notify_waiters();
        }
    }

    /// Wakes the delivery workers and the feeds of these subscribers: what one commit queued.
    pub fn wake_for(&self, subscribers: impl IntoIterator<Item = BureauId>) {
        self.delivery.notify_waiters();
        for subscriber in subscribers {
            if let Some(waker) = self.feeds.get(&subscriber) {
                waker.notify_waiters();
            }
        }
    }

    /// The waker of a pull bureau's feed.
    pub fn feed(&self, bureau: BureauId) -> Option<&Notify> {
        self.feeds.get(&bureau)
    }
}
