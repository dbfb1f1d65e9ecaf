//! The durable store: every accepted message, its canonical events and one delivery record per
//! (event, subscriber), and the delivery queue itself.
//!
//! One interface, [`Store`], with the embedded SQLite implementation ([`sqlite::SqliteStore`])
//! and the PostgreSQL one shared by several nodes ([`postgres::PgStore`]); both pass the same
//! conformance suite. Everything the gateway promises rests on it:
//! - `ingest` writes the raw message, its events and their deliveries in **one transaction**
//!   and returns only after commit; concurrent ingests share a transaction (group commit).
//! - The same (sender, idempotency key) returns the first receipt and writes nothing new.
//! - `lease_due` hands out only the oldest pending delivery of each (subscriber, case): per-case
//!   order holds however many workers or nodes take work.
//! - Leases expire, so a crashed worker's deliveries come back.
//! - Backlogs live here, never in memory: every call is bounded by a `limit`.
//!
//! Times are Unix milliseconds passed in by the caller, so the store holds no clock.

use schemas::{BureauId, Event, SurveyId, SurveyKind, SurveyResult};
use serde::{Deserialize, Serialize};

pub mod any;
#[cfg(test)]
pub(crate) mod conformance;
pub mod postgres;
pub mod sqlite;

/// Row id of a delivery; increases with arrival, so it also orders a (subscriber, case) queue.
pub type DeliveryId = i64;

/// Unix time in milliseconds.
pub type Millis = i64;

/// One accepted message, ready to commit.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The bureau that sent it (from its certificate).
    pub sender: BureauId,
    /// The sender's idempotency key: the same key again returns the first receipt.
    pub idempotency_key: String,
    /// The content type it was sent with.
    pub content_type: String,
    /// The raw payload, exactly as received.
    pub body: Vec<u8>,
    /// Lowercase hex SHA-256 of `body`.
    pub sha256: String,
    /// When the gateway received it.
    pub received_at: Millis,
    /// The canonical events it carries, each with its subscribers.
    pub events: Vec<NewEvent>,
    /// A survey result this message publishes, committed in the same transaction as its
    /// notices.
    pub survey: Option<SurveyRecord>,
}

/// One published version of a survey result, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyRecord {
    /// Its id.
    pub id: SurveyId,
    /// The version it supersedes, if any.
    pub supersedes: Option<SurveyId>,
    /// The bureau that published it.
    pub publisher: BureauId,
    /// The full result (every figure; receivers see their share).
    pub result: SurveyResult,
    /// When it was published.
    pub published_at: Millis,
}

/// One read of a survey result: its metadata or one of its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SurveyRead {
    /// Who read.
    pub bureau: BureauId,
    /// `metadata`, or `file:<sha256>`.
    pub what: String,
    /// When.
    pub at: Millis,
}

/// One canonical event of an accepted message and the bureaus it is routed to.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The event, its `message_id` already the gateway's stable id (what receivers see).
    pub event: Event,
    /// The id the sender's own format gave the event.
    pub source_message_id: String,
    /// Every bureau that must receive it; one delivery record each.
    pub subscribers: Vec<BureauId>,
}

/// An event with the bureaus that receive it (each once) and the sender's own id of it.
pub(crate) type RoutedEvent = (Event, String, Vec<BureauId>);

/// What both backends write for one ingest: the events with their subscribers made unique (one
/// delivery per (event, subscriber), even if a subscriber is listed twice), and the receipt.
pub(crate) fn routed_events(
    events: Vec<NewEvent>,
    survey: Option<&SurveyRecord>,
) -> (Vec<RoutedEvent>, Receipt) {
    let events: Vec<RoutedEvent> = events
        .into_iter()
        .map(|e| {
            let mut subscribers = Vec::with_capacity(e.subscribers.len());
            for s in e.subscribers {
                if !subscribers.contains(&s) {
                    subscribers.push(s);
                }
            }
            (e.event, e.source_message_id, subscribers)
        })
        .collect();
    let receipt = Receipt {
        message_ids: events
            .iter()
            .map(|(e, _, _)| e.message_id.as_str().to_owned())
            .collect(),
        deliveries: events.iter().map(|(_, _, s)| s.len()).sum(),
        survey_id: survey.map(|s| s.id.as_str().to_owned()),
    };
    (events, receipt)
}

/// What the sender is told once its message is committed; stored, so that a repeated
/// idempotency key gets exactly the same answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The gateway's stable ids of the message's events, in order.
    pub message_ids: Vec<String>,
    /// How many deliveries were queued.
    pub deliveries: usize,
    /// For a survey publication: the id of the published version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey_id: Option<String>,
}

/// The result of an ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Committed now.
    Accepted(Receipt),
    /// The idempotency key was seen before: the first receipt, nothing new written.
    Duplicate(Receipt),
}

/// A delivery handed to a worker or a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its id.
    pub id: DeliveryId,
    /// The receiving bureau.
    pub subscriber: BureauId,
    /// The event to deliver (its `message_id` is the gateway's stable id).
    pub event: Event,
    /// Attempts made before this one.
    pub attempts: u32,
    /// When the delivery was created (ingest commit time).
    pub created_at: Millis,
    /// Proof of the lease: completing or failing needs it, so a worker whose lease expired and
    /// was re-leased cannot overwrite the new holder's outcome.
    pub lease: u64,
}

/// One attempt's outcome, kept in the delivery's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// When it was made.
    pub at: Millis,
    /// What went wrong (HTTP status, connection error ...).
    pub error: String,
}

/// What happens after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try again at this time.
    RetryAt(Millis),
    /// Give up: move to the dead letters.
    DeadLetter,
}

/// A delivery that was given up on, with its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// Its id.
    pub id: DeliveryId,
    /// The receiving bureau.
    pub subscriber: BureauId,
    /// The gateway's message id of the event.
    pub message_id: String,
    /// Every attempt, oldest first.
    pub attempts: Vec<Attempt>,
    /// When it was dead-lettered.
    pub dead_at: Millis,
}

/// Which dead letters to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaySelector {
    /// These deliveries.
    Ids(Vec<DeliveryId>),
    /// Every dead letter of this subscriber.
    Subscriber(BureauId),
}

/// Queue health of one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStat {
    /// The subscriber.
    pub subscriber: BureauId,
    /// Deliveries not yet delivered nor dead.
    pub pending: u64,
    /// Dead letters.
    pub dead: u64,
    /// Delivered so far.
    pub delivered: u64,
    /// Creation time of the oldest pending delivery.
    pub oldest_pending: Option<Millis>,
    /// Failed attempts recorded so far (retries and dead-letterings), from the attempt history.
    pub failed_attempts: u64,
}

/// Why the store could not do something. Says whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is busy: try again later (503 to senders).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store holds something it cannot read back (a bug or tampering): not retryable.
    #[error("store data is corrupt: {0}")]
    Corrupt(String),
    /// The store has been shut down.
    #[error("store is closed")]
    Closed,
    /// A concurrent write took the same unique slot (e.g. two publications of the same survey
    /// version); the caller may recompute and try again.
    #[error("conflict: {0}")]
    Conflict(String),
}

impl StoreError {
    /// True when the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// The store interface every backend implements (SQLite now, PostgreSQL next).
pub trait Store: Send + Sync + 'static {
    /// Commits a message, its events and their deliveries in one transaction, or returns the
    /// first receipt when `(sender, idempotency_key)` was seen before. Returns after commit.
    fn ingest(
        &self,
        message: NewMessage,
    ) -> impl Future<Output = Result<IngestOutcome, StoreError>> + Send;

    /// Leases up to `limit` due push deliveries for `subscribers`, each the oldest pending one of
    /// its (subscriber, case), for `lease_ms`. A delivery is due when its next attempt time has
    /// come and it is not under an unexpired lease.
    fn lease_due(
        &self,
        subscribers: Vec<BureauId>,
        now: Millis,
        lease_ms: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send;

    /// Marks a leased delivery delivered. False when the lease is no longer held.
    fn mark_delivered(
        &self,
        id: DeliveryId,
        lease: u64,
        now: Millis,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records a failed attempt of a leased delivery and schedules the next or dead-letters it.
    /// False when the lease is no longer held (nothing is written then).
    fn mark_failed(
        &self,
        id: DeliveryId,
        lease: u64,
        attempt: Attempt,
        after: AfterFailure,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Dead letters, oldest first, optionally of one subscriber.
    fn dead_letters(
        &self,
        subscriber: Option<BureauId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DeadLetter>, StoreError>> + Send;

    /// Makes dead letters pending again, due now, with their attempt count reset (their
    /// history is kept). Returns how many were replayed.
    fn replay(
        &self,
        selector: ReplaySelector,
        now: Millis,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The oldest pending deliveries of a pull subscriber, in queue order (unacknowledged items
    /// come back on every fetch).
    fn feed_fetch(
        &self,
        subscriber: BureauId,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send;

    /// Acknowledges a pull subscriber's pending deliveries up to and including `cursor` that
    /// a fetch has handed out: one committed after the fetch is never covered, whatever its id.
    /// Returns how many were marked delivered.
    fn feed_ack(
        &self,
        subscriber: BureauId,
        cursor: DeliveryId,
        now: Millis,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Queue health per subscriber (subscribers with no deliveries at all are omitted).
    fn queue_stats(&self) -> impl Future<Output = Result<Vec<QueueStat>, StoreError>> + Send;

    /// Checks the store answers.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes up to `limit` deliveries delivered before `delivered_before`, so the queue tables
    /// do not grow without bound (messages and events stay: they are the record). Several
    /// nodes may call it at once: only one does the work at a time (PostgreSQL: an advisory
    /// lock), the others return 0.
    fn cleanup(
        &self,
        delivered_before: Millis,
        limit: usize,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// A published survey result by id.
    fn survey(
        &self,
        id: SurveyId,
    ) -> impl Future<Output = Result<Option<SurveyRecord>, StoreError>> + Send;

    /// The latest version of a project's survey kind.
    fn latest_survey(
        &self,
        project: String,
        kind: SurveyKind,
    ) -> impl Future<Output = Result<Option<SurveyRecord>, StoreError>> + Send;

    /// Records that `bureau` read a survey result (`what`: `metadata` or `file:<sha256>`).
    /// Returns true when it is that bureau's first read of that result.
    fn record_survey_read(
        &self,
        id: SurveyId,
        bureau: BureauId,
        what: String,
        at: Millis,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every read of a survey result, oldest first.
    fn survey_reads(
        &self,
        id: SurveyId,
    ) -> impl Future<Output = Result<Vec<SurveyRead>, StoreError>> + Send;

    /// A counter that changes whenever any node commits new work, for stores shared by several
    /// nodes (PostgreSQL `LISTEN/NOTIFY`), so idle workers and long-polls wake without polling.
    /// `None` for a store only this process writes (it wakes its own workers directly).
    fn work_notifications(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}
