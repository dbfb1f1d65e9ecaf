//! The audit trail's entries and their hash chains, written once for both backends.
//!
//! Every change the store commits that a bureau may later dispute — an ingest, the routing of
//! each of its events, each delivery attempt and its outcome, a feed acknowledgement, a survey
//! read, an operator's pause, resume, replay, purge or prune — appends an entry **in the same
//! transaction** as the change, so the trail is never ahead of or behind the data.
//!
//! Entries form chains: each entry holds the SHA-256 of its content and the hash of the entry
//! before it in its chain, so changing, removing or reordering one breaks every link after it.
//! A chain has exactly one writer at a time: the embedded store has one (`local`, its writer
//! thread); on PostgreSQL each node writes its own chains, one per writing lane
//! (`<node>/ingest-0` … for its ingest batchers, `<node>/outcomes`, `<node>/ops`), so no
//! ingest waits for another node's — or another batcher's — entries. The primary key
//! `(chain, seq)` makes a second writer of one chain fail instead of forking it.
//!
//! **The hashes** (what an outside tool recomputes; see the README's "Audit trail"):
//! - `content` is a JSON object stored as the exact bytes that are hashed (a verifier hashes
//!   the bytes; it never re-serializes): `{"chain","seq","at","kind","bureau","message_id",
//!   "detail"}`, in that order, no whitespace.
//! - `content_sha256 = SHA-256(content)`, lowercase hex.
//! - `hash = SHA-256(prev_hash ‖ content_sha256)` over the 128 ASCII hex digits, where
//!   `prev_hash` is the previous entry's `hash`, or 64 zeros ([`GENESIS`]) before a chain's
//!   first entry (or the anchor a prune left, see [`Anchor`]).

use schemas::{BureauId, MessageId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Millis, StoreError};

pub use super::{Anchor, AuditRow, ChainState, GENESIS, Link, StoredCheckpoint};

/// The chain of the embedded store (one writer thread, one chain).
pub const LOCAL_CHAIN: &str = "local";

/// At most this many entries are read in one call (verify and export page through).
pub const MAX_AUDIT_PAGE: usize = 10_000;

/// How a delivery attempt ended, as the trail records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The receiver took it (a push answered 2xx).
    Delivered,
    /// A pull subscriber acknowledged it.
    Acknowledged,
    /// It failed and will be tried again.
    Retry,
    /// It failed and was given up on (a dead letter).
    Dead,
}

/// One receiver of a routed event and what sent it there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutedTo {
    /// The receiving bureau.
    pub bureau: String,
    /// The routes (or the survey entitlement) that chose it.
    pub by: String,
}

/// The survey a message published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedSurvey {
    /// The new version's id.
    pub id: String,
    /// Its project.
    pub project: String,
    /// Its kind.
    pub kind: String,
    /// Its version.
    pub version: u32,
    /// The version it supersedes.
    pub supersedes: Option<String>,
}

/// What an entry records: its `detail`, with its kind, bureau and message id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Record {
    /// A message accepted from a bureau (and the survey it published).
    Ingest {
        /// The sender (from its certificate).
        #[serde(skip)]
        sender: String,
        /// Its idempotency key, stored form.
        idempotency_key: String,
        /// The content type it came with.
        content_type: String,
        /// SHA-256 of the payload exactly as received.
        sha256: String,
        /// The payload's length.
        bytes: u64,
        /// The gateway's ids of its events, in order.
        message_ids: Vec<String>,
        /// The survey result it published.
        survey: Option<PublishedSurvey>,
    },
    /// One event of an ingest and where it was routed.
    Route {
        /// The event's gateway id.
        #[serde(skip)]
        message_id: String,
        /// The source bureau.
        #[serde(skip)]
        source: String,
        /// The entry of its ingest, in the same chain.
        ingest_seq: i64,
        /// The id the sender's format gave it.
        source_message_id: String,
        /// Its case (`source:case id`).
        case: String,
        /// Its event kind.
        event_kind: String,
        /// Every receiver.
        to: Vec<RoutedTo>,
    },
    /// A delivery attempt (or a feed acknowledgement) and its outcome.
    Attempt {
        /// The event's gateway id.
        #[serde(skip)]
        message_id: String,
        /// The receiving bureau.
        #[serde(skip)]
        subscriber: String,
        /// The delivery's id.
        delivery: i64,
        /// How it ended.
        outcome: AttemptOutcome,
        /// What went wrong (HTTP status or error class).
        error: Option<String>,
        /// When it is tried again.
        next_at: Option<Millis>,
    },
    /// An operator's action on one delivery (`replay`, `purge`).
    DeliveryAction {
        /// `replay` or `purge`.
        #[serde(skip)]
        action: &'static str,
        /// The event's gateway id.
        #[serde(skip)]
        message_id: String,
        /// The receiving bureau.
        #[serde(skip)]
        subscriber: String,
        /// The delivery's id.
        delivery: i64,
        /// The operator (the name in their certificate).
        by: String,
    },
    /// An operator's action on a bureau's deliveries (`pause`, `resume`).
    BureauAction {
        /// `pause` or `resume`.
        #[serde(skip)]
        action: &'static str,
        /// The bureau.
        #[serde(skip)]
        subscriber: String,
        /// The operator.
        by: String,
    },
    /// A bureau read a survey result.
    SurveyRead {
        /// The reader.
        #[serde(skip)]
        bureau: String,
        /// The result's id.
        survey_id: String,
        /// `metadata` or `file:<sha256>`.
        what: String,
    },
    /// An operator pruned a chain up to an entry (the pruned entries are gone; their last link
    /// is kept as the chain's anchor and in a signed checkpoint).
    Prune {
        /// The operator.
        by: String,
        /// The pruned chain.
        pruned_chain: String,
        /// Its last pruned entry, now its anchor.
        through: Link,
        /// How many entries were deleted.
        entries: u64,
    },
}

impl Record {
    /// Its kind, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ingest { .. } => "ingest",
            Self::Route { .. } => "route",
            Self::Attempt { .. } => "attempt",
            Self::DeliveryAction { action, .. } | Self::BureauAction { action, .. } => action,
            Self::SurveyRead { .. } => "survey_read",
            Self::Prune { .. } => "prune",
        }
    }

    /// The bureau it concerns.
    pub fn bureau(&self) -> Option<&str> {
        match self {
            Self::Ingest { sender, .. } => Some(sender),
            Self::Route { source, .. } => Some(source),
            Self::Attempt { subscriber, .. }
            | Self::DeliveryAction { subscriber, .. }
            | Self::BureauAction { subscriber, .. } => Some(subscriber),
            Self::SurveyRead { bureau, .. } => Some(bureau),
            Self::Prune { .. } => None,
        }
    }

    /// The gateway message id it concerns.
    pub fn message_id(&self) -> Option<&str> {
        match self {
            Self::Route { message_id, .. }
            | Self::Attempt { message_id, .. }
            | Self::DeliveryAction { message_id, .. } => Some(message_id),
            _ => None,
        }
    }

    /// An operator's action on a delivery (`action`: `replay`, `purge`), or (`None`) a feed's
    /// acknowledgement of it.
    pub fn about_delivery(
        action: Option<&'static str>,
        delivery: i64,
        subscriber: String,
        message_id: String,
        by: &str,
    ) -> Self {
        match action {
            Some(action) => Self::DeliveryAction {
                action,
                message_id,
                subscriber,
                delivery,
                by: by.to_owned(),
            },
            None => Self::Attempt {
                message_id,
                subscriber,
                delivery,
                outcome: AttemptOutcome::Acknowledged,
                error: None,
                next_at: None,
            },
        }
    }

    /// A delivery attempt's record.
    pub fn attempt(
        message_id: &MessageId,
        subscriber: BureauId,
        delivery: i64,
        outcome: AttemptOutcome,
        error: Option<String>,
        next_at: Option<Millis>,
    ) -> Self {
        Self::Attempt {
            message_id: message_id.as_str().to_owned(),
            subscriber: subscriber.as_str().to_owned(),
            delivery,
            outcome,
            error,
            next_at,
        }
    }
}

/// The hashed content of an entry, in its documented field order.
#[derive(Serialize)]
struct Content<'a> {
    chain: &'a str,
    seq: i64,
    at: Millis,
    kind: &'a str,
    bureau: Option<&'a str>,
    message_id: Option<&'a str>,
    detail: &'a Record,
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::ids::sha256(bytes).as_str().to_owned()
}

/// The hash of an entry: `SHA-256(prev_hash ‖ content_sha256)`.
pub fn link_hash(prev_hash: &str, content_sha256: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(prev_hash.as_bytes());
    digest.update(content_sha256.as_bytes());
    crate::ids::digest_hex(&digest.finalize())
        .as_str()
        .to_owned()
}

/// Appends `record` after `head` in `chain`: returns the row to insert and moves `head` to it.
pub fn append(
    head: &mut Link,
    chain: &str,
    at: Millis,
    record: &Record,
) -> Result<AuditRow, StoreError> {
    let seq = head.seq + 1;
    let content = serde_json::to_string(&Content {
        chain,
        seq,
        at,
        kind: record.kind(),
        bureau: record.bureau(),
        message_id: record.message_id(),
        detail: record,
    })
    .map_err(|e| StoreError::corrupt_from("cannot encode an audit entry", e))?;
    let content_sha256 = sha256_hex(content.as_bytes());
    let hash = link_hash(&head.hash, &content_sha256);
    let row = AuditRow {
        chain: chain.to_owned(),
        seq,
        at,
        kind: record.kind().to_owned(),
        bureau: record.bureau().map(str::to_owned),
        message_id: record.message_id().map(str::to_owned),
        content,
        content_sha256,
        prev_hash: std::mem::replace(&mut head.hash, hash.clone()),
        hash,
    };
    head.seq = seq;
    Ok(row)
}

/// Checks one entry after `prev` in `chain`: its place, its hashes and its columns (the rule
/// [`append`] writes, read back; `gateway::audit::verify` walks every chain with it).
pub fn check_entry(chain: &str, prev: &Link, row: &AuditRow) -> Result<(), String> {
    if row.seq != prev.seq + 1 {
        return Err(format!(
            "entry {} is missing (the next stored is {})",
            prev.seq + 1,
            row.seq
        ));
    }
    let content_sha256 = sha256_hex(row.content.as_bytes());
    if content_sha256 != row.content_sha256 {
        return Err(format!(
            "its content was changed: SHA-256 {content_sha256}, recorded {}",
            row.content_sha256
        ));
    }
    if row.prev_hash != prev.hash {
        return Err(format!(
            "prev_hash {} is not the hash of entry {} ({}): entries were removed, reordered or rewritten",
            row.prev_hash, prev.seq, prev.hash
        ));
    }
    let hash = link_hash(&row.prev_hash, &row.content_sha256);
    if hash != row.hash {
        return Err(format!("hash {} should be {hash}", row.hash));
    }
    let content: serde_json::Value =
        serde_json::from_str(&row.content).map_err(|e| format!("content is not JSON: {e}"))?;
    let columns = [
        ("chain", serde_json::Value::from(chain)),
        ("seq", row.seq.into()),
        ("at", row.at.into()),
        ("kind", row.kind.as_str().into()),
        ("bureau", row.bureau.as_deref().into()),
        ("message_id", row.message_id.as_deref().into()),
    ];
    for (name, value) in columns {
        if content[name] != value {
            return Err(format!(
                "column {name} is {value}, its hashed content says {}",
                content[name]
            ));
        }
    }
    Ok(())
}

/// Appends every record in order.
pub fn append_all<'r>(
    head: &mut Link,
    chain: &str,
    at: Millis,
    records: impl IntoIterator<Item = &'r Record>,
) -> Result<Vec<AuditRow>, StoreError> {
    records
        .into_iter()
        .map(|record| append(head, chain, at, record))
        .collect()
}

/// The records of an ingest: the message, then one route entry per event (`ingest_seq` is the
/// message's entry, the next in the chain after `head`).
pub(crate) fn ingest_records(message: &super::NewMessage, head: &Link) -> Vec<Record> {
    let ingest_seq = head.seq + 1;
    let mut records = Vec::with_capacity(1 + message.events.len());
    records.push(Record::Ingest {
        sender: message.sender.as_str().to_owned(),
        idempotency_key: message.idempotency_key.as_str().to_owned(),
        content_type: message.content_type.clone(),
        sha256: message.sha256.as_str().to_owned(),
        bytes: message.body.len() as u64,
        message_ids: message
            .events
            .iter()
            .map(|e| e.event.message_id.as_str().to_owned())
            .collect(),
        survey: message.survey.as_ref().map(|s| PublishedSurvey {
            id: s.id.as_str().to_owned(),
            project: s.result.project.as_str().to_owned(),
            kind: crate::vocabulary::name(&s.result.kind),
            version: s.result.version,
            supersedes: s.supersedes.as_ref().map(|id| id.as_str().to_owned()),
        }),
    });
    for new in &message.events {
        let mut to: Vec<RoutedTo> = Vec::with_capacity(new.subscribers.len());
        for (i, subscriber) in new.subscribers.iter().enumerate() {
            if to.iter().any(|t| t.bureau == subscriber.as_str()) {
                continue;
            }
            to.push(RoutedTo {
                bureau: subscriber.as_str().to_owned(),
                by: new.routed_by.get(i).cloned().unwrap_or_default(),
            });
        }
        records.push(Record::Route {
            message_id: new.event.message_id.as_str().to_owned(),
            source: new.event.source.as_str().to_owned(),
            ingest_seq,
            source_message_id: new.source_message_id.as_str().to_owned(),
            case: super::codec::case_key(&new.event),
            event_kind: crate::vocabulary::name(&new.event.kind),
            to,
        });
    }
    records
}

/// The record of one outcome.
pub(crate) fn outcome_record(outcome: &super::Outcome) -> Record {
    use super::{AfterFailure, Settled};
    let (result, error, next_at) = match &outcome.settled {
        Settled::Delivered { .. } => (AttemptOutcome::Delivered, None, None),
        Settled::Failed {
            attempt,
            after: AfterFailure::RetryAt(at),
        } => (
            AttemptOutcome::Retry,
            Some(attempt.error.clone()),
            Some(*at),
        ),
        Settled::Failed {
            attempt,
            after: AfterFailure::DeadLetter,
        } => (AttemptOutcome::Dead, Some(attempt.error.clone()), None),
    };
    Record::attempt(
        &outcome.message_id,
        outcome.subscriber,
        outcome.id,
        result,
        error,
        next_at,
    )
}

/// When an outcome happened.
pub(crate) fn outcome_at(outcome: &super::Outcome) -> Millis {
    match &outcome.settled {
        super::Settled::Delivered { at } => *at,
        super::Settled::Failed { attempt, .. } => attempt.at,
    }
}

/// The deliveries of one event as its trail tells them (`entries`: its route entry, attempts and
/// the operators' actions, in order), the trail deciding state, times and attempts. `stored` are
/// the delivery rows still in the store: they give the id of a delivery not yet attempted, and
/// stand alone for an event stored before the trail existed (no route entry).
pub(crate) fn timeline_deliveries(
    entries: &[AuditRow],
    stored: Vec<super::TimelineDelivery>,
) -> Result<Vec<super::TimelineDelivery>, StoreError> {
    use super::{Attempt, DeliveryState, TimelineDelivery};
    let corrupt = |row: &AuditRow, what: &str| {
        StoreError::corrupt(format!("audit entry {}#{}: {what}", row.chain, row.seq))
    };
    let mut told: Vec<TimelineDelivery> = Vec::new();
    let mut routed = false;
    for row in entries {
        let content: serde_json::Value = serde_json::from_str(&row.content).map_err(|e| {
            StoreError::corrupt_from(format!("audit entry {}#{}", row.chain, row.seq), e)
        })?;
        let detail = &content["detail"];
        let find = |told: &mut Vec<TimelineDelivery>, bureau: &str| {
            told.iter().position(|d| d.subscriber.as_str() == bureau)
        };
        match row.kind.as_str() {
            "route" => {
                routed = true;
                for to in detail["to"].as_array().into_iter().flatten() {
                    let bureau = to["bureau"]
                        .as_str()
                        .ok_or_else(|| corrupt(row, "a receiver without a bureau"))?;
                    let subscriber = super::codec::bureau(bureau)?;
                    let id = stored
                        .iter()
                        .find(|d| d.subscriber == subscriber)
                        .map_or(0, |d| d.id);
                    told.push(TimelineDelivery {
                        id,
                        subscriber,
                        state: DeliveryState::Pending,
                        created_at: row.at,
                        delivered_at: None,
                        dead_at: None,
                        attempts: Vec::new(),
                    });
                }
            }
            "attempt" | "replay" | "purge" => {
                let bureau = row
                    .bureau
                    .as_deref()
                    .ok_or_else(|| corrupt(row, "no bureau"))?;
                let Some(i) = find(&mut told, bureau) else {
                    continue;
                };
                let d = &mut told[i];
                if let Some(id) = detail["delivery"].as_i64() {
                    d.id = id;
                }
                match (row.kind.as_str(), detail["outcome"].as_str()) {
                    ("attempt", Some("delivered" | "acknowledged")) => {
                        d.state = DeliveryState::Delivered;
                        d.delivered_at = Some(row.at);
                    }
                    ("attempt", Some(outcome @ ("retry" | "dead"))) => {
                        d.attempts.push(Attempt {
                            at: row.at,
                            error: detail["error"].as_str().unwrap_or_default().to_owned(),
                        });
                        if outcome == "dead" {
                            d.state = DeliveryState::Dead;
                            d.dead_at = Some(row.at);
                        }
                    }
                    ("replay", _) => {
                        d.state = DeliveryState::Pending;
                        d.dead_at = None;
                    }
                    ("purge", _) => {}
                    _ => return Err(corrupt(row, "an attempt without its outcome")),
                }
            }
            _ => {}
        }
    }
    if !routed {
        return Ok(stored);
    }
    for d in &mut told {
        let keep = d
            .attempts
            .len()
            .saturating_sub(super::MAX_TIMELINE_ATTEMPTS);
        d.attempts.drain(..keep);
    }
    Ok(told)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_link_to_the_one_before_and_hash_their_exact_bytes() {
        let mut head = Link::genesis();
        let read = Record::SurveyRead {
            bureau: "water".into(),
            survey_id: "sv-1".into(),
            what: "metadata".into(),
        };
        let first = append(&mut head, "local", 1_000, &read).expect("first");
        let second = append(&mut head, "local", 2_000, &read).expect("second");
        assert_eq!(first.seq, 1);
        assert_eq!(first.prev_hash, GENESIS);
        assert_eq!(second.prev_hash, first.hash);
        assert_eq!(
            head,
            Link {
                seq: 2,
                hash: second.hash.clone()
            }
        );
        assert_eq!(
            first.content,
            r#"{"chain":"local","seq":1,"at":1000,"kind":"survey_read","bureau":"water","message_id":null,"detail":{"survey_id":"sv-1","what":"metadata"}}"#
        );
        assert_eq!(first.content_sha256, sha256_hex(first.content.as_bytes()));
        // What `printf %s%s PREV CONTENT_SHA | sha256sum` prints.
        let mut joined = GENESIS.to_owned();
        joined.push_str(&first.content_sha256);
        assert_eq!(first.hash, sha256_hex(joined.as_bytes()));
    }
}
