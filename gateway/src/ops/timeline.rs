//! A case's story across every bureau, in time order: each message received, where each event
//! was routed, each delivery attempt and its outcome. Made from the store's
//! [`TimelineEvent`]s, which a [`TimelineKey`] (message id, case id or project code) selects.

use schemas::{BureauCaseId, BureauId, MessageId, ProjectCode};
use serde::Serialize;

use super::words::{self, Label, Lang};
use crate::clock::Millis;
use crate::store::{DeliveryState, TimelineEvent, TimelineKey};

/// Most events one timeline shows.
pub const MAX_TIMELINE_EVENTS: usize = 200;

/// What an operator typed: a project code, a gateway message id (`gw-` and 32 hex digits, as
/// the gateway mints them), or a case id — tried in that order (the first two shapes are
/// strict).
pub fn key_of(text: &str) -> Option<TimelineKey> {
    let text = text.trim();
    if let Ok(code) = ProjectCode::parse(text) {
        return Some(TimelineKey::Project(code));
    }
    if let Some(id) = crate::ids::gateway_message_id(text) {
        return Some(TimelineKey::Message(id));
    }
    BureauCaseId::parse(text).ok().map(TimelineKey::Case)
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A bureau's message arrived and was committed.
    Received,
    /// An event was routed to its subscribers (one delivery each).
    Routed,
    /// A delivery attempt failed.
    AttemptFailed,
    /// A delivery succeeded.
    Delivered,
    /// A delivery was given up on.
    DeadLettered,
    /// A delivery is still pending.
    Pending,
}

impl EntryKind {
    /// Its words.
    pub fn label(self, lang: Lang) -> &'static str {
        words::label(
            lang,
            match self {
                Self::Received => Label::Received,
                Self::Routed => Label::Routed,
                Self::AttemptFailed => Label::AttemptFailed,
                Self::Delivered => Label::Delivered,
                Self::DeadLettered => Label::DeadLettered,
                Self::Pending => Label::Pending,
            },
        )
    }
}

/// One line of a timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// When (a pending delivery: when it was queued).
    pub at: Millis,
    /// What happened.
    pub kind: EntryKind,
    /// The bureau it happened to: the sender of a message, the subscriber of a delivery.
    pub bureau: BureauId,
    /// The gateway's message id of the event.
    pub message_id: MessageId,
    /// The case, as `source:case_id`.
    pub case: String,
    /// The delivery, for attempts and outcomes.
    pub delivery_id: Option<i64>,
    /// The detail in English: the event kind and sequence, the subscribers, the error.
    pub detail: String,
}

/// The entries of `events`, in time order (ties keep the order of the story: received, routed,
/// then each delivery's attempts and outcome).
pub fn entries(events: &[TimelineEvent]) -> Vec<Entry> {
    let mut entries = Vec::new();
    for shown in events {
        let event = &shown.event;
        let case = format!("{}:{}", event.source.as_str(), event.case_id.as_str());
        let entry = |at, kind, bureau, delivery_id, detail| Entry {
            at,
            kind,
            bureau,
            message_id: event.message_id.clone(),
            case: case.clone(),
            delivery_id,
            detail,
        };
        entries.push(entry(
            shown.received_at,
            EntryKind::Received,
            shown.sender,
            None,
            format!(
                "{} #{} (sender's id {}, key {}, sha256 {}…)",
                crate::vocabulary::name(&event.kind),
                event.sequence,
                shown.source_message_id,
                shown.idempotency_key,
                shown.sha256.get(..12).unwrap_or(&shown.sha256),
            ),
        ));
        let to: Vec<&str> = shown
            .deliveries
            .iter()
            .map(|d| d.subscriber.as_str())
            .collect();
        entries.push(entry(
            shown.received_at,
            EntryKind::Routed,
            shown.sender,
            None,
            if to.is_empty() {
                "no delivery on record (no subscriber, or purged / past retention)".to_owned()
            } else {
                format!("to {}", to.join(", "))
            },
        ));
        for delivery in &shown.deliveries {
            for attempt in &delivery.attempts {
                entries.push(entry(
                    attempt.at,
                    EntryKind::AttemptFailed,
                    delivery.subscriber,
                    Some(delivery.id),
                    attempt.error.clone(),
                ));
            }
            let (at, kind, detail) = match delivery.state {
                DeliveryState::Delivered => (
                    delivery.delivered_at.unwrap_or(delivery.created_at),
                    EntryKind::Delivered,
                    format!("after {} failed attempt(s)", delivery.attempts.len()),
                ),
                DeliveryState::Dead => (
                    delivery.dead_at.unwrap_or(delivery.created_at),
                    EntryKind::DeadLettered,
                    format!("after {} attempt(s)", delivery.attempts.len()),
                ),
                DeliveryState::Pending => (
                    delivery
                        .attempts
                        .last()
                        .map_or(delivery.created_at, |a| a.at),
                    EntryKind::Pending,
                    "waiting for delivery".to_owned(),
                ),
            };
            entries.push(entry(
                at,
                kind,
                delivery.subscriber,
                Some(delivery.id),
                detail,
            ));
        }
    }
    // A stable sort keeps the story's order among entries of the same millisecond.
    entries.sort_by_key(|e| e.at);
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Attempt, TimelineDelivery};

    #[test]
    fn the_story_is_told_in_time_order() {
        let event =
            adapters::sample::case_event(&mut fastrand::Rng::with_seed(3), BureauId::Planning);
        let shown = TimelineEvent {
            sender: BureauId::Planning,
            received_at: 1_000,
            idempotency_key: "k1".into(),
            sha256: "ab".repeat(32),
            source_message_id: "src-1".into(),
            event: event.clone(),
            deliveries: vec![
                TimelineDelivery {
                    id: 1,
                    subscriber: BureauId::Water,
                    state: DeliveryState::Delivered,
                    created_at: 1_000,
                    delivered_at: Some(5_000),
                    dead_at: None,
                    attempts: vec![Attempt {
                        at: 2_000,
                        error: "HTTP 503".into(),
                    }],
                },
                TimelineDelivery {
                    id: 2,
                    subscriber: BureauId::Transport,
                    state: DeliveryState::Pending,
                    created_at: 1_000,
                    delivered_at: None,
                    dead_at: None,
                    attempts: vec![],
                },
            ],
        };
        let kinds: Vec<_> = entries(&[shown])
            .into_iter()
            .map(|e| (e.at, e.kind, e.bureau))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (1_000, EntryKind::Received, BureauId::Planning),
                (1_000, EntryKind::Routed, BureauId::Planning),
                (1_000, EntryKind::Pending, BureauId::Transport),
                (2_000, EntryKind::AttemptFailed, BureauId::Water),
                (5_000, EntryKind::Delivered, BureauId::Water),
            ]
        );
    }

    #[test]
    fn what_an_operator_types_is_read_as_the_right_key() {
        assert!(matches!(
            key_of("2101-310104-04-01-123456"),
            Some(TimelineKey::Project(_))
        ));
        assert!(matches!(
            key_of("WATER-2026-0042"),
            Some(TimelineKey::Case(_))
        ));
        assert!(key_of("").is_none());
    }
}
