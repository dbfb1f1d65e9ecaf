//! What one bureau's system received, by push (its [`super::endpoint::Endpoint`]) or by pulling
//! its feed: message ids with their number of copies (at-least-once delivery means copies are
//! allowed, losses are not), optionally every delivery in arrival order, the requests it
//! refused on purpose, and the deliveries it could not accept (which must never happen).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use schemas::{BureauId, Event};

/// One delivery as a bureau's system saw it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `message-id` header of the push (empty for a pulled event, whose id is in the body).
    pub header_id: String,
    /// The canonical event decoded from the body with the bureau's own adapter.
    pub event: Event,
    /// The push's `Credit-Warning` header, if it had one (a listed applicant's case).
    pub credit_warning: Option<String>,
}

/// Called with each event whose message id the inbox had not seen before.
type OnFirstCopy = Box<dyn Fn(&Event) + Send + Sync>;

/// The record of what a bureau's system received. Shared (`Arc`) between the endpoint or feed
/// puller that fills it and whoever reads it.
pub struct Inbox {
    bureau: BureauId,
    /// Whether to keep every delivery (tests compare them); a long demo keeps only the ids.
    keep_deliveries: bool,
    on_first_copy: Option<OnFirstCopy>,
    record: Mutex<Record>,
    refused: AtomicU64,
    /// Batch pushes received, and the deliveries they carried.
    batches: AtomicU64,
    batched: AtomicU64,
}

#[derive(Default)]
struct Record {
    /// Copies received, per message id.
    copies: HashMap<String, u64>,
    deliveries: Vec<Received>,
    problems: Vec<String>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("bureau", &self.bureau)
            .field("unique", &self.unique())
            .field("refused", &self.refused())
            .finish_non_exhaustive()
    }
}

impl Inbox {
    /// An empty inbox of `bureau` that keeps every delivery.
    pub fn new(bureau: BureauId) -> Self {
        Self {
            bureau,
            keep_deliveries: true,
            on_first_copy: None,
            record: Mutex::new(Record::default()),
            refused: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            batched: AtomicU64::new(0),
        }
    }

    /// Keeps only the message ids and their counts, not the events (memory stays small
    /// however long it runs); [`Self::received`] is then empty.
    pub fn ids_only(mut self) -> Self {
        self.keep_deliveries = false;
        self
    }

    /// Calls `hook` with every event seen for the first time (a bureau reacting to news, e.g.
    /// reading a survey result it was notified of). It runs on the receiving task: it should
    /// hand work off, not do it.
    pub fn on_first_copy(mut self, hook: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.on_first_copy = Some(Box::new(hook));
        self
    }

    /// The bureau whose system this is.
    pub fn bureau(&self) -> BureauId {
        self.bureau
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        // A panicking reader cannot leave the record half-written: every update is one insert.
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records events received in one delivery (`header_id`: its `message-id` header, if any).
    pub fn record(&self, header_id: &str, events: Vec<Event>) {
        self.record_warned(header_id, None, events);
    }

    /// Records a push that carried a `Credit-Warning` header (`warning`).
    pub fn record_warned(&self, header_id: &str, warning: Option<&str>, events: Vec<Event>) {
        let mut first = Vec::new();
        {
            let mut record = self.lock();
            for event in events {
                let copies = record
                    .copies
                    .entry(event.message_id.as_str().to_owned())
                    .or_default();
                *copies += 1;
                let is_first = *copies == 1;
                if self.keep_deliveries {
                    record.deliveries.push(Received {
                        header_id: header_id.to_owned(),
                        event: event.clone(),
                        credit_warning: warning.map(str::to_owned),
                    });
                }
                if is_first && self.on_first_copy.is_some() {
                    first.push(event);
                }
            }
        }
        // Outside the lock: the hook may take its time or read the inbox.
        if let Some(hook) = &self.on_first_copy {
            first.iter().for_each(hook);
        }
    }

    /// Records a delivery it could not accept (from a stranger, undecodable, a batch where one
    /// event was due): always a bug of the gateway or of the simulation.
    pub fn problem(&self, text: String) {
        self.lock().problems.push(text);
    }

    /// Counts a batch push of `items` deliveries (before any is refused).
    pub(crate) fn batch_received(&self, items: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batched
            .fetch_add(u64::try_from(items).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Batch pushes received, and the deliveries they carried in all.
    pub fn batches(&self) -> (u64, u64) {
        (
            self.batches.load(Ordering::Relaxed),
            self.batched.load(Ordering::Relaxed),
        )
    }

    /// Counts a request, or an item of a batch, refused on purpose (failure simulation).
    pub(crate) fn refuse(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Every delivery, in arrival order (empty when it keeps [`Self::ids_only`]).
    pub fn received(&self) -> Vec<Received> {
        self.lock().deliveries.clone()
    }

    /// The deliveries it could not accept.
    pub fn problems(&self) -> Vec<String> {
        self.lock().problems.clone()
    }

    /// The distinct message ids received.
    pub fn ids(&self) -> HashSet<String> {
        self.lock().copies.keys().cloned().collect()
    }

    /// How many distinct message ids it received.
    pub fn unique(&self) -> u64 {
        self.lock().copies.len() as u64
    }

    /// How many copies of `id` arrived.
    pub fn copies_of(&self, id: &str) -> u64 {
        self.lock().copies.get(id).copied().unwrap_or(0)
    }

    /// Copies beyond the first (at-least-once delivery at work).
    pub fn redelivered(&self) -> u64 {
        self.lock().copies.values().map(|n| n - 1).sum()
    }

    /// Requests, and items of batches, it refused on purpose.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    fn events(n: usize) -> Vec<Event> {
        let mut rng = fastrand::Rng::with_seed(8);
        (0..n)
            .map(|_| adapters::sample::case_event(&mut rng, BureauId::Water))
            .collect()
    }

    #[test]
    fn copies_count_once_and_the_hook_sees_first_copies_only() {
        let firsts = Arc::new(AtomicU64::new(0));
        let counted = firsts.clone();
        let inbox = Inbox::new(BureauId::Water).on_first_copy(move |_| {
            counted.fetch_add(1, Ordering::Relaxed);
        });
        let sent = events(3);
        inbox.record("a", sent.clone());
        inbox.record("b", vec![sent[1].clone()]);
        assert_eq!(inbox.unique(), 3);
        assert_eq!(inbox.redelivered(), 1);
        assert_eq!(inbox.copies_of(sent[1].message_id.as_str()), 2);
        assert_eq!(inbox.received().len(), 4);
        assert_eq!(inbox.received()[3].header_id, "b");
        assert_eq!(firsts.load(Ordering::Relaxed), 3);
        assert!(inbox.problems().is_empty());
    }

    #[test]
    fn ids_only_keeps_no_events() {
        let inbox = Inbox::new(BureauId::Water).ids_only();
        inbox.record("", events(2));
        assert_eq!(inbox.unique(), 2);
        assert!(inbox.received().is_empty());
    }
}
