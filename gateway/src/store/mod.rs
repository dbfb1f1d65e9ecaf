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
//! - Leases expire, so a crashed worker's deliveries come back; each lease names the node that
//!   took it, so a node restarting after a crash takes its own back at once
//!   ([`Store::claim_node`], [`Store::release_leases`]) instead of waiting for them to expire.
//! - Backlogs live here, never in memory: every call is bounded by a `limit`.
//!
//! Times are Unix milliseconds passed in by the caller, so the store holds no clock.

use schemas::{
    BureauCaseId, BureauId, Event, MessageId, ProjectCode, Sha256Hex, SurveyId, SurveyKind,
    SurveyResult,
};
use serde::{Deserialize, Serialize};

use crate::ids::IdempotencyKey;

pub mod any;
pub mod audit;
pub(crate) mod codec;
#[cfg(test)]
pub(crate) mod conformance;
pub mod joint;
pub mod postgres;
pub mod sqlite;

/// Row id of a delivery; increases with arrival, so it also orders a (subscriber, case) queue.
pub type DeliveryId = i64;

pub use crate::clock::Millis;

/// One accepted message, ready to commit.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The bureau that sent it (from its certificate).
    pub sender: BureauId,
    /// The sender's idempotency key: the same key again returns the first receipt.
    pub idempotency_key: IdempotencyKey,
    /// The content type it was sent with.
    pub content_type: String,
    /// The raw payload, exactly as received.
    pub body: Vec<u8>,
    /// SHA-256 of `body`.
    pub sha256: Sha256Hex,
    /// When the gateway received it.
    pub received_at: Millis,
    /// The canonical events it carries, each with its subscribers.
    pub events: Vec<NewEvent>,
    /// A survey result this message publishes, committed in the same transaction as its
    /// notices.
    pub survey: Option<SurveyRecord>,
    /// The credit-list entry versions this message publishes (a bulk upload), committed in the
    /// same transaction as the events that share them.
    pub credit: Vec<CreditRecord>,
    /// The credit match this message notifies (a match notice), recorded with it: written once
    /// per (entry, case), as the notice is.
    pub credit_match: Option<CreditMatchRecord>,
}

impl NewMessage {
    /// A notice the gateway makes itself (a flow's joint-case or deadline notice, a credit
    /// match) as a message in the name of `sender`, the bureau it is about, for `subscribers`.
    /// Its key is derived from `what` it tells, so a notice made twice (two nodes, a retried
    /// step, a case's later events) is written once.
    pub fn notice(
        sender: BureauId,
        what: &str,
        event: Event,
        subscribers: Vec<BureauId>,
        routed_by: &str,
        now: Millis,
    ) -> Result<Self, StoreError> {
        let body = serde_json::to_vec(&event)
            .map_err(|e| StoreError::corrupt_from("cannot encode a notice", e))?;
        let routed_by = subscribers.iter().map(|_| routed_by.to_owned()).collect();
        Ok(Self {
            sender,
            idempotency_key: IdempotencyKey::for_flow_notice(what),
            content_type: "application/json".to_owned(),
            sha256: crate::ids::sha256(&body),
            body,
            received_at: now,
            events: vec![NewEvent {
                source_message_id: event.message_id.clone(),
                event,
                subscribers,
                routed_by,
                for_flows: false,
            }],
            survey: None,
            credit: Vec::new(),
            credit_match: None,
        })
    }
}

/// One version of a credit-list entry, as stored: (publisher, entry id, version) names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreditRecord {
    /// The bureau that published it (from its certificate).
    pub publisher: BureauId,
    /// The entry at this version.
    pub entry: schemas::CreditEntry,
    /// When the gateway committed it.
    pub listed_at: Millis,
}

/// A case's applicant found on a credit list, as recorded with the match notice: (publisher,
/// entry id, bureau, case id) names it, since a case matches an entry once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditMatchRecord {
    /// The case's bureau.
    pub bureau: BureauId,
    /// The case's id at its bureau.
    pub case_id: BureauCaseId,
    /// The entry (the version the case was warned of), its publisher, the case's item and
    /// project: what the notice tells.
    pub found: schemas::CreditMatch,
    /// The gateway id of the notice's event.
    pub notice: MessageId,
    /// The bureaus told.
    pub receivers: Vec<BureauId>,
    /// When the match was committed.
    pub matched_at: Millis,
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
    /// What was read.
    pub what: ReadOf,
    /// When.
    pub at: Millis,
}

/// What a survey read fetched. Stored and shown as `metadata` or `file:<sha256>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOf {
    /// The result's metadata and figures.
    Metadata,
    /// One of its files.
    File(Sha256Hex),
}

impl std::fmt::Display for ReadOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Metadata => f.write_str("metadata"),
            Self::File(sha256) => write!(f, "file:{}", sha256.as_str()),
        }
    }
}

impl std::str::FromStr for ReadOf {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, StoreError> {
        match text.strip_prefix("file:") {
            None if text == "metadata" => Ok(Self::Metadata),
            Some(hex) => Sha256Hex::parse(hex)
                .map(Self::File)
                .map_err(|e| StoreError::corrupt(format!("stored survey read {text:?}: {e}"))),
            None => Err(StoreError::corrupt(format!("stored survey read {text:?}"))),
        }
    }
}

impl Serialize for ReadOf {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One canonical event of an accepted message and the bureaus it is routed to.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The event, its `message_id` already the gateway's stable id (what receivers see).
    pub event: Event,
    /// The id the sender's own format gave the event (for a survey notice, the survey id).
    pub source_message_id: MessageId,
    /// Every bureau that must receive it; one delivery record each.
    pub subscribers: Vec<BureauId>,
    /// What chose each subscriber (the names of the routes, or the survey entitlement), in the
    /// order of `subscribers`: recorded in the audit trail's route entry.
    pub routed_by: Vec<String>,
    /// Whether the one-stop flows must look at it (`gateway::flows`): the store keeps it in
    /// their inbox until [`Store::commit_flow_step`] takes it out.
    pub for_flows: bool,
}

/// A committed event the flows have not yet looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowEvent {
    /// Its row id (the inbox is read in this order).
    pub id: i64,
    /// The event.
    pub event: Event,
}

/// A committed event with the time the gateway received it (the monthly bulletin's input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEvent {
    /// Its row id (pages follow it).
    pub id: i64,
    /// When the gateway received its message.
    pub received_at: Millis,
    /// The event.
    pub event: Event,
}

/// One step of the flows, committed whole or not at all: an inbox event taken out, joint cases
/// written (each only over the revision it was computed from), and the notices they send.
#[derive(Debug, Default)]
pub struct FlowStep {
    /// The inbox event this step consumes (`None` for a clock tick).
    pub event: Option<i64>,
    /// Joint cases to write: new ones (`revision` 1) or changes of the stored revision
    /// `revision - 1`.
    pub cases: Vec<joint::JointCase>,
    /// Case clocks to write, like the joint cases: new ones (`revision` 1) or changes of the
    /// stored revision `revision - 1`.
    pub clocks: Vec<joint::CaseClock>,
    /// The notices to deliver, each a message from the gateway in the name of the bureau it
    /// is about (its key derived from what it tells: a repeated step writes it once).
    pub notices: Vec<NewMessage>,
}

/// What the sender is told once its message is committed; stored, so that a repeated
/// idempotency key gets exactly the same answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The gateway's stable ids of the message's events, in order.
    pub message_ids: Vec<MessageId>,
    /// How many deliveries were queued.
    pub deliveries: usize,
    /// For a survey publication: the id of the published version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey_id: Option<SurveyId>,
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

/// What became of one leased delivery (see [`Store::record_outcomes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The delivery.
    pub id: DeliveryId,
    /// Its lease (see [`Delivery::lease`]): the outcome is recorded only while it is held.
    pub lease: u64,
    /// The receiving bureau (recorded in the audit trail).
    pub subscriber: BureauId,
    /// The gateway's message id of its event (recorded in the audit trail).
    pub message_id: MessageId,
    /// Delivered, or failed and what next.
    pub settled: Settled,
}

impl Outcome {
    /// The outcome of a leased delivery.
    pub fn of(delivery: &Delivery, settled: Settled) -> Self {
        Self {
            id: delivery.id,
            lease: delivery.lease,
            subscriber: delivery.subscriber,
            message_id: delivery.event.message_id.clone(),
            settled,
        }
    }
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The receiver took it, at this time.
    Delivered {
        /// When.
        at: Millis,
    },
    /// It failed: the attempt joins the history, then a retry or the dead letters.
    Failed {
        /// The failed attempt.
        attempt: Attempt,
        /// What next.
        after: AfterFailure,
    },
}

/// A delivery that was given up on, with its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// Its id.
    pub id: DeliveryId,
    /// The receiving bureau.
    pub subscriber: BureauId,
    /// The gateway's message id of the event.
    pub message_id: MessageId,
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

/// An operator's pause of delivery to a subscriber: its deliveries stay pending in the store,
/// in order, until it is resumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// The paused subscriber.
    pub subscriber: BureauId,
    /// The operator who paused it (the name in their certificate).
    pub by: String,
    /// When.
    pub at: Millis,
}

/// What a timeline is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimelineKey {
    /// One event, by the gateway's message id.
    Message(MessageId),
    /// Every bureau's case with this id.
    Case(BureauCaseId),
    /// Every event about this project.
    Project(ProjectCode),
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not yet delivered (queued, retrying, or held by a pause).
    Pending,
    /// Delivered.
    Delivered,
    /// Given up on: a dead letter.
    Dead,
}

/// One delivery of a timeline event, with its attempt history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineDelivery {
    /// Its id.
    pub id: DeliveryId,
    /// The receiving bureau.
    pub subscriber: BureauId,
    /// Where it stands.
    pub state: DeliveryState,
    /// When it was queued (the routing decision, at ingest commit).
    pub created_at: Millis,
    /// When it was delivered.
    pub delivered_at: Option<Millis>,
    /// When it was dead-lettered.
    pub dead_at: Option<Millis>,
    /// Failed attempts, oldest first (at most [`MAX_TIMELINE_ATTEMPTS`], the latest).
    pub attempts: Vec<Attempt>,
}

/// At most this many attempts of one delivery are shown in a timeline (the latest).
pub const MAX_TIMELINE_ATTEMPTS: usize = 100;

/// One event as the store holds it, with the message that carried it and its deliveries.
/// Deliveries delivered before the retention period are gone (`store.retention_days`); the
/// message and its events stay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    /// The bureau that sent the message (from its certificate).
    pub sender: BureauId,
    /// When the gateway received it.
    pub received_at: Millis,
    /// The idempotency key in its stored form, which says where it came from: `key:…` (the
    /// sender's header), `ids:…` (derived from the sender's message ids), `survey:…`.
    pub idempotency_key: String,
    /// SHA-256 of the message exactly as received.
    pub sha256: String,
    /// The id the sender's own format gave the event.
    pub source_message_id: String,
    /// The canonical event (its `message_id` is the gateway's stable id).
    pub event: Event,
    /// Its deliveries, one per subscriber it was routed to.
    pub deliveries: Vec<TimelineDelivery>,
}

/// A node's circuit breaker for one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Deliveries flow.
    Closed,
    /// One probe delivery at a time.
    HalfOpen,
    /// No deliveries until the open period ends.
    Open,
}

impl CircuitState {
    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
        }
    }

    /// From its stored name.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "closed" => Ok(Self::Closed),
            "half_open" => Ok(Self::HalfOpen),
            "open" => Ok(Self::Open),
            other => Err(StoreError::corrupt(format!(
                "stored circuit state {other:?}"
            ))),
        }
    }
}

/// What one node counted for one bureau in one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteCounts {
    /// The bureau.
    pub bureau: BureauId,
    /// The minute's start (Unix milliseconds, a multiple of 60,000).
    pub minute: Millis,
    /// Messages accepted from the bureau.
    pub received: u64,
    /// Deliveries to the bureau that succeeded (pushed, or acknowledged from the feed).
    pub delivered: u64,
    /// Delivery attempts to the bureau that failed.
    pub failed: u64,
    /// Its pending deliveries (exchange-wide) when the node last looked in that minute.
    pub backlog: u64,
}

/// What one node knows of one bureau now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BureauState {
    /// The bureau.
    pub bureau: BureauId,
    /// When this node last accepted a message from it.
    pub last_in: Option<Millis>,
    /// When this node last delivered to it.
    pub last_out: Option<Millis>,
    /// Since when this node's deliveries to it fail (cleared by a success).
    pub failing_since: Option<Millis>,
    /// Failed attempts since then.
    pub failing_count: u64,
    /// The last failed attempt's time and error.
    pub last_error: Option<(Millis, String)>,
    /// This node's circuit breaker for it (closed for a pull subscriber).
    pub circuit: CircuitState,
    /// When the certificate it last presented to this node expires.
    pub certificate_not_after: Option<Millis>,
}

/// A node's report to the exchange-wide operator view, written every few seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeReport {
    /// The node's name.
    pub node: String,
    /// When it was made.
    pub at: Millis,
    /// Counts of the minutes that changed since the last report (replacing what was stored).
    pub minutes: Vec<MinuteCounts>,
    /// Its state per bureau.
    pub bureaus: Vec<BureauState>,
    /// The node's minute counts older than this are deleted.
    pub keep_since: Millis,
}

/// Every node's reports, as [`Store::node_reports`] reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeReports {
    /// (node, counts), the oldest minute first.
    pub minutes: Vec<(String, MinuteCounts)>,
    /// (node, when it reported, state).
    pub bureaus: Vec<(String, Millis, BureauState)>,
}

/// What waits for one subscriber: its pending deliveries and dead letters. Read from the
/// indexes, so its cost grows with the backlog, not with the history kept for retention (what
/// the dashboard, the node reports and the gauges read every few seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// The subscriber.
    pub subscriber: BureauId,
    /// Deliveries not yet delivered nor dead.
    pub pending: u64,
    /// Dead letters.
    pub dead: u64,
    /// Creation time of the oldest pending delivery.
    pub oldest_pending: Option<Millis>,
}

// The audit trail's rows (see [`audit`], which writes and reads them).

/// The `prev_hash` of a chain's first entry: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A position in a chain: the sequence number of an entry and its hash (`seq` 0 with
/// [`GENESIS`] before the first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The entry's sequence number in its chain (1, 2, … with no gaps).
    pub seq: i64,
    /// Its hash.
    pub hash: String,
}

impl Link {
    /// Before a chain's first entry.
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.to_owned(),
        }
    }
}

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    /// Its chain.
    pub chain: String,
    /// Its place in the chain.
    pub seq: i64,
    /// When the change it records was made.
    pub at: Millis,
    /// What it records ([`audit::Record::kind`]).
    pub kind: String,
    /// The bureau it concerns (sender, subscriber, reader, paused bureau), if any.
    pub bureau: Option<String>,
    /// The gateway message id it concerns, if any.
    pub message_id: Option<String>,
    /// The hashed content (JSON).
    pub content: String,
    /// SHA-256 of `content`.
    pub content_sha256: String,
    /// The hash of the entry before it.
    pub prev_hash: String,
    /// `SHA-256(prev_hash ‖ content_sha256)`.
    pub hash: String,
}

/// Where a pruned chain now starts: the last pruned entry's place and hash, which the first
/// kept entry's `prev_hash` must equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// The chain.
    pub chain: String,
    /// The last pruned entry.
    pub link: Link,
    /// When it was pruned.
    pub pruned_at: Millis,
}

/// A chain as the store holds it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainState {
    /// Its name.
    pub chain: String,
    /// Where it starts (genesis, or the anchor of its last prune).
    pub start: Link,
    /// Its last entry (equal to `start` when it holds none).
    pub head: Link,
}

/// A signed statement of every chain's head at one time (see `gateway::audit::checkpoint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCheckpoint {
    /// Its row id (increasing).
    pub id: i64,
    /// The node that signed it.
    pub node: String,
    /// When.
    pub at: Millis,
    /// The signed bytes (JSON: `node`, `at`, `purpose`, `heads`).
    pub body: String,
    /// The signature over `body`, base64 (DER for ECDSA).
    pub signature: String,
    /// The signing node's certificate, PEM.
    pub certificate: String,
}

/// The underlying cause of a store error (a driver error, an I/O error, a decoding error),
/// shared so that every caller of a failed group commit gets the same error with its source.
pub type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// Why the store could not do something. Says whether trying again can help; keeps the driver's
/// error as its `source()`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is busy: try again later (503 to senders).
    #[error("store unavailable: {context}")]
    Unavailable {
        /// What the store was doing.
        context: String,
        /// The driver's error, if there was one.
        #[source]
        source: Option<Cause>,
    },
    /// The store holds something it cannot read back (a bug or tampering): not retryable.
    #[error("store data is corrupt: {context}")]
    Corrupt {
        /// What was being read or written.
        context: String,
        /// The driver's or decoder's error, if there was one.
        #[source]
        source: Option<Cause>,
    },
    /// The store has been shut down.
    #[error("store is closed")]
    Closed,
    /// A concurrent write took the same unique slot (e.g. two publications of the same survey
    /// version); the caller may recompute and try again.
    #[error("conflict: {0}")]
    Conflict(String),
}

impl StoreError {
    /// Its kind, as the `kind` label of `gateway_store_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable { .. } => "unavailable",
            Self::Corrupt { .. } => "corrupt",
            Self::Closed => "closed",
            Self::Conflict(_) => "conflict",
        }
    }

    /// Counts it in `gateway_store_errors_total` (called where the error is handled, once).
    pub fn count(&self) {
        metrics::counter!(crate::metrics::STORE_ERRORS, "kind" => self.kind()).increment(1);
    }

    /// True when the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// Unavailable, with no underlying error.
    pub fn unavailable(context: impl Into<String>) -> Self {
        Self::Unavailable {
            context: context.into(),
            source: None,
        }
    }

    /// Unavailable because of `source`.
    pub fn unavailable_from(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Unavailable {
            context: context.into(),
            source: Some(std::sync::Arc::new(source)),
        }
    }

    /// Corrupt, with no underlying error.
    pub fn corrupt(context: impl Into<String>) -> Self {
        Self::Corrupt {
            context: context.into(),
            source: None,
        }
    }

    /// Corrupt because of `source`.
    pub fn corrupt_from(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Corrupt {
            context: context.into(),
            source: Some(std::sync::Arc::new(source)),
        }
    }
}

/// The store interface every backend implements (embedded SQLite, and PostgreSQL for several
/// nodes).
pub trait Store: Send + Sync + 'static {
    /// Commits a message, its events and their deliveries in one transaction, or returns the
    /// first receipt when `(sender, idempotency_key)` was seen before. Returns after commit.
    fn ingest(
        &self,
        message: NewMessage,
    ) -> impl Future<Output = Result<IngestOutcome, StoreError>> + Send;

    /// Leases up to `limit` due push deliveries for `subscribers`, each the oldest pending one of
    /// its (subscriber, case), for `lease_ms`, on behalf of the node named `node` (recorded with
    /// the lease, see [`Store::release_leases`]). A delivery is due when its next attempt time has
    /// come and it is not under an unexpired lease.
    fn lease_due(
        &self,
        node: &str,
        subscribers: Vec<BureauId>,
        now: Millis,
        lease_ms: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send;

    /// Claims the node name `node` for this process, before it releases that name's leases
    /// ([`Store::release_leases`]). True when this process may take them back: no other running
    /// node holds the name. A store shared by several nodes (PostgreSQL) holds the claim in a
    /// session-level advisory lock on a connection of its own, until the store is dropped or that
    /// connection is lost; false then means another live session holds the name (another node
    /// with the same name, or a crashed node's connection the server has not noticed is dead
    /// yet). The embedded store (SQLite) is one process by definition: always true.
    fn claim_node(&self, node: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Ends up to `limit` unexpired leases taken by the node named `node` (a previous run of
    /// this node, which crashed holding them), so that they are due at once, as if they had
    /// expired. Returns how many; call again until it returns less than `limit`. A node calls it
    /// at start, after [`Store::claim_node`] and before its workers lease anything. Node names
    /// must be unique: a node releasing the leases of another live node with its name would
    /// make it send them twice (at-least-once still holds, but a case's order may not).
    fn release_leases(
        &self,
        node: &str,
        now: Millis,
        limit: usize,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Records what became of leased deliveries — delivered, retry at, dead letter, with the
    /// failed attempts' history — in **one** transaction that reaches the disk before it returns
    /// (a crash after it never forgets a delivery and sends it again after newer events of its
    /// case). One answer per outcome, in order: false when its lease was no longer held (nothing
    /// is written for it then). At most one `NOTIFY` per call, when a delivery completed (the next
    /// event of its case may be leased now, by any node).
    fn record_outcomes(
        &self,
        outcomes: Vec<Outcome>,
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;

    /// Marks a leased delivery delivered. False when the lease is no longer held.
    fn mark_delivered(
        &self,
        delivery: &Delivery,
        now: Millis,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let recorded =
            self.record_outcomes(vec![Outcome::of(delivery, Settled::Delivered { at: now })]);
        async move { Ok(recorded.await?.first().copied().unwrap_or(false)) }
    }

    /// Records a failed attempt of a leased delivery and schedules the next or dead-letters it.
    /// False when the lease is no longer held (nothing is written then).
    fn mark_failed(
        &self,
        delivery: &Delivery,
        attempt: Attempt,
        after: AfterFailure,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let recorded = self.record_outcomes(vec![Outcome::of(
            delivery,
            Settled::Failed { attempt, after },
        )]);
        async move { Ok(recorded.await?.first().copied().unwrap_or(false)) }
    }

    /// Dead letters, oldest first, optionally of one subscriber.
    fn dead_letters(
        &self,
        subscriber: Option<BureauId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DeadLetter>, StoreError>> + Send;

    /// Makes up to `limit` dead letters pending again (the oldest first), due now, with their
    /// attempt count reset (their history is kept). Returns how many were replayed; an
    /// operator replaying a long list calls again until it returns 0.
    fn replay(
        &self,
        selector: ReplaySelector,
        by: &str,
        now: Millis,
        limit: usize,
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

    /// What waits for each of `subscribers` (every one is answered, with zeros when nothing
    /// waits). Its cost grows with the backlog, not with the delivered history: the call the
    /// operator surface makes every few seconds.
    fn backlogs(
        &self,
        subscribers: Vec<BureauId>,
    ) -> impl Future<Output = Result<Vec<Backlog>, StoreError>> + Send;

    /// Queue health per subscriber (subscribers with no deliveries at all are omitted). Counts
    /// the delivered history too: for summaries, not for polling (see [`Store::backlogs`]).
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
        project: ProjectCode,
        kind: SurveyKind,
    ) -> impl Future<Output = Result<Option<SurveyRecord>, StoreError>> + Send;

    /// Records that `bureau` read a survey result (its metadata or one of its files).
    /// Returns true when it is that bureau's first read of that result.
    fn record_survey_read(
        &self,
        id: SurveyId,
        bureau: BureauId,
        what: ReadOf,
        at: Millis,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Up to `limit` reads of a survey result, oldest first.
    fn survey_reads(
        &self,
        id: SurveyId,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<SurveyRead>, StoreError>> + Send;

    /// Pauses delivery to `pause.subscriber`, push and feed alike: its deliveries stay pending,
    /// in order, until [`Store::resume`]; the pause is stored, so it survives restarts and holds
    /// for every node. True when it was not paused before (the first pause is kept).
    fn pause(&self, pause: Pause) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Ends a pause. True when the subscriber was paused.
    /// The operator `by` is recorded in the audit trail.
    fn resume(
        &self,
        subscriber: BureauId,
        by: &str,
        now: Millis,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The pauses in force (at most one per bureau).
    fn pauses(&self) -> impl Future<Output = Result<Vec<Pause>, StoreError>> + Send;

    /// One dead letter with its attempt history.
    fn dead_letter(
        &self,
        id: DeliveryId,
    ) -> impl Future<Output = Result<Option<DeadLetter>, StoreError>> + Send;

    /// Deletes up to `limit` dead letters (the oldest first) and their attempt histories: an
    /// operator's decision that they will never be delivered. The messages and events stay (they
    /// are the record). Returns how many; call again until it returns 0.
    fn purge(
        &self,
        selector: ReplaySelector,
        by: &str,
        now: Millis,
        limit: usize,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The latest `limit` events of a message, case or project (told oldest first), each with
    /// its message and its deliveries and their attempts.
    fn timeline(
        &self,
        key: TimelineKey,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<TimelineEvent>, StoreError>> + Send;

    /// Writes a node's report: its minute counts (replacing the stored counts of the same node,
    /// bureau and minute), its state per bureau, and deletes its counts older than
    /// `keep_since`.
    fn record_node_report(
        &self,
        report: NodeReport,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every node's minute counts since `since` (at most `limit` rows, the latest) and every
    /// node's state per bureau reported since `since`.
    fn node_reports(
        &self,
        since: Millis,
        limit: usize,
    ) -> impl Future<Output = Result<NodeReports, StoreError>> + Send;

    /// The secret stored under `name`, storing `candidate` first if there is none, so that every
    /// node sharing the store uses the same one (e.g. to sign the dashboard's form tokens).
    fn shared_secret(
        &self,
        name: &str,
        candidate: String,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// Every chain of the audit trail: where it starts and its last entry (see [`audit`]).
    fn audit_chains(&self) -> impl Future<Output = Result<Vec<ChainState>, StoreError>> + Send;

    /// Up to `limit` entries of `chain` after `after_seq`, in chain order.
    fn audit_entries(
        &self,
        chain: &str,
        after_seq: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<AuditRow>, StoreError>> + Send;

    /// Up to `limit` entries about one event (its route entry, its deliveries' attempts and the
    /// operators' actions on them), in the order they were made.
    fn audit_of_message(
        &self,
        message_id: &MessageId,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<AuditRow>, StoreError>> + Send;

    /// Up to `limit` entries concerning `bureau` made in `[from, to)`, after the cursor
    /// `(at, chain, seq)` when given, ordered by (at, chain, seq).
    fn audit_of_bureau(
        &self,
        bureau: BureauId,
        from: Millis,
        to: Millis,
        after: Option<(Millis, String, i64)>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<AuditRow>, StoreError>> + Send;

    /// One entry.
    fn audit_entry(
        &self,
        chain: &str,
        seq: i64,
    ) -> impl Future<Output = Result<Option<AuditRow>, StoreError>> + Send;

    /// Stores a signed checkpoint (its `id` is assigned); returns the id.
    fn record_checkpoint(
        &self,
        checkpoint: StoredCheckpoint,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Up to `limit` checkpoints with an id above `after`, oldest first.
    fn checkpoints(
        &self,
        after: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredCheckpoint>, StoreError>> + Send;

    /// The payload of the message `sender` sent with `idempotency_key` (stored form), exactly as
    /// received, with its content type.
    fn raw_message(
        &self,
        sender: BureauId,
        idempotency_key: &str,
    ) -> impl Future<Output = Result<Option<(String, Vec<u8>)>, StoreError>> + Send;

    /// Deletes up to `limit` of the oldest entries of `chain` made before `before` (the
    /// longest such prefix of the chain, never past an entry made later), keeps the last
    /// deleted entry's link as the chain's anchor, and records the prune — by the operator
    /// `by` — in the trail, all in one transaction. Returns the new anchor (`None` when nothing
    /// was deleted); call again until it returns `None`.
    fn prune_audit(
        &self,
        chain: &str,
        before: Millis,
        by: &str,
        now: Millis,
        limit: usize,
    ) -> impl Future<Output = Result<Option<Anchor>, StoreError>> + Send;

    /// Every stored version of the given entries of `publisher` (at most `limit` rows), by entry
    /// id then version.
    fn credit_entries(
        &self,
        publisher: BureauId,
        entry_ids: Vec<BureauCaseId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<CreditRecord>, StoreError>> + Send;

    /// Every stored version of every entry listing one of `codes` (at most `limit` rows), by
    /// publisher, entry id and version.
    fn credit_entries_of(
        &self,
        codes: Vec<schemas::CreditCode>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<CreditRecord>, StoreError>> + Send;

    /// The `limit` entry versions committed last, newest first.
    fn recent_credit_entries(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<CreditRecord>, StoreError>> + Send;

    /// The credit matches recorded for one case (at most `limit`), by publisher and entry id.
    fn credit_matches_of_case(
        &self,
        bureau: BureauId,
        case_id: BureauCaseId,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<CreditMatchRecord>, StoreError>> + Send;

    /// The `limit` credit matches committed last, newest first.
    fn recent_credit_matches(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<CreditMatchRecord>, StoreError>> + Send;

    /// Up to `limit` committed events still in the flows' inbox, oldest first.
    fn flow_inbox(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<FlowEvent>, StoreError>> + Send;

    /// Commits a step of the flows (see [`FlowStep`]). `Conflict` when another node took the
    /// inbox event first or wrote one of the joint cases or case clocks since it was read: read
    /// again and recompute.
    fn commit_flow_step(
        &self,
        step: FlowStep,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.commit_flow_steps(vec![step])
    }

    /// Commits several steps of the flows in one transaction, all or none (one `Conflict`
    /// writes nothing), in order: a later step may write a joint case or clock an earlier one
    /// wrote (its revision the next).
    fn commit_flow_steps(
        &self,
        steps: Vec<FlowStep>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A joint case.
    fn joint_case(
        &self,
        id: &schemas::JointCaseId,
    ) -> impl Future<Output = Result<Option<joint::JointCase>, StoreError>> + Send;

    /// Up to `limit` joint cases of a project, oldest first.
    fn joint_cases_of_project(
        &self,
        project: &schemas::ProjectCode,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<joint::JointCase>, StoreError>> + Send;

    /// Up to `limit` open joint cases whose id sorts after `after` (paging through them all).
    fn open_joint_cases(
        &self,
        after: Option<&schemas::JointCaseId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<joint::JointCase>, StoreError>> + Send;

    /// The clock of a bureau's case.
    fn case_clock(
        &self,
        bureau: BureauId,
        case_id: &schemas::BureauCaseId,
    ) -> impl Future<Output = Result<Option<joint::CaseClock>, StoreError>> + Send;

    /// Up to `limit` open case clocks of a project (undecided, not taken in by a joint case),
    /// by bureau and case.
    fn case_clocks_of_project(
        &self,
        project: &schemas::ProjectCode,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<joint::CaseClock>, StoreError>> + Send;

    /// Up to `limit` open case clocks whose (bureau, case) sorts after `after` (paging through
    /// them all).
    fn open_case_clocks(
        &self,
        after: Option<(BureauId, schemas::BureauCaseId)>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<joint::CaseClock>, StoreError>> + Send;

    /// Up to `limit` events whose message was received in `[from, to)`, after the row id
    /// `after`, in row order (page by the last id).
    fn events_received(
        &self,
        from: Millis,
        to: Millis,
        after: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ReceivedEvent>, StoreError>> + Send;

    /// Deliveries that became dead letters in `[from, to)`, per subscriber (purged ones are not
    /// counted: they are gone).
    fn dead_letters_between(
        &self,
        from: Millis,
        to: Millis,
    ) -> impl Future<Output = Result<Vec<(BureauId, u64)>, StoreError>> + Send;

    /// The frozen monthly bulletin of `month` (`YYYY-MM`), if one was stored.
    fn frozen_report(
        &self,
        month: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Freezes `body` as `month`'s bulletin unless one is frozen already; returns the frozen
    /// one (so every node answers with the same bytes).
    fn freeze_report(
        &self,
        month: &str,
        body: String,
        at: Millis,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// A counter that changes whenever any node commits new work, for stores shared by several
    /// nodes (PostgreSQL `LISTEN/NOTIFY`), so idle workers and long-polls wake without polling.
    /// `None` for a store only this process writes (it wakes its own workers directly).
    fn work_notifications(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}
