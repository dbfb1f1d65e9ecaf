//! How store values become columns and back, written once for both backends: the two stores
//! differ in SQL dialect and driver, not in what a row means.
//!
//! Architecture invariant: a value read back that does not decode is `StoreError::Corrupt`,
//! never skipped or defaulted.

use std::str::FromStr;

use schemas::{BureauId, Event, MessageId, SurveyId};

use super::{
    CreditMatchRecord, CreditRecord, NewEvent, NewMessage, Receipt, StoreError, SurveyRecord,
};
use crate::clock::Millis;

/// The queue key of a case: per-(subscriber, case) order is kept among deliveries of one key.
/// A case is named by its source bureau and that bureau's own case id.
pub(crate) fn case_key(event: &Event) -> String {
    format!("{}:{}", event.source.as_str(), event.case_id.as_str())
}

/// The project an event is about (`Event::project`); empty for a credit-list entry, which is
/// about no project (no project lookup asks for the empty code).
pub(crate) fn project_of(event: &Event) -> &str {
    event.project().map_or("", schemas::ProjectCode::as_str)
}

/// The case keys a bureau case id can have: one per source bureau (each bureau numbers its own
/// cases, so the same id may name cases of several bureaus).
pub(crate) fn case_keys_of(case_id: &schemas::BureauCaseId) -> Vec<String> {
    BureauId::ALL
        .iter()
        .map(|b| format!("{}:{}", b.as_str(), case_id.as_str()))
        .collect()
}

/// One event row to insert, with the subscribers it gets a delivery for (each once).
pub(crate) struct EventRow {
    /// The gateway's stable id (`events.gateway_message_id`).
    pub(crate) gateway_id: String,
    /// The sender's own id of the event.
    pub(crate) source_id: String,
    /// The source bureau.
    pub(crate) source: &'static str,
    /// The case's queue key.
    pub(crate) case_key: String,
    /// The project it is about (`events.project`, for the operators' case timeline).
    pub(crate) project: String,
    /// The canonical event, JSON.
    pub(crate) json: String,
    /// One delivery each.
    pub(crate) subscribers: Vec<BureauId>,
    /// Whether it enters the flows' inbox (`events.flow_pending`).
    pub(crate) for_flows: bool,
}

/// What one ingest writes, ready for either backend: the event rows and the receipt (also as
/// JSON, stored with the message so that a repeated idempotency key gets the same answer).
pub(crate) struct IngestRows {
    pub(crate) events: Vec<EventRow>,
    pub(crate) receipt: Receipt,
    pub(crate) receipt_json: String,
}

/// Encodes an ingest: subscribers made unique (one delivery per (event, subscriber), even if a
/// subscriber is listed twice), the receipt computed from what will be written.
pub(crate) fn ingest_rows(message: &NewMessage) -> Result<IngestRows, StoreError> {
    let events = message
        .events
        .iter()
        .map(event_row)
        .collect::<Result<Vec<_>, _>>()?;
    let receipt = Receipt {
        message_ids: message
            .events
            .iter()
            .map(|e| e.event.message_id.clone())
            .collect(),
        deliveries: events.iter().map(|e| e.subscribers.len()).sum(),
        survey_id: message.survey.as_ref().map(|s| s.id.clone()),
    };
    let receipt_json = serde_json::to_string(&receipt)
        .map_err(|e| StoreError::corrupt_from("cannot encode the receipt", e))?;
    Ok(IngestRows {
        events,
        receipt,
        receipt_json,
    })
}

fn event_row(new: &NewEvent) -> Result<EventRow, StoreError> {
    let mut subscribers = Vec::with_capacity(new.subscribers.len());
    for s in &new.subscribers {
        if !subscribers.contains(s) {
            subscribers.push(*s);
        }
    }
    Ok(EventRow {
        gateway_id: new.event.message_id.as_str().to_owned(),
        source_id: new.source_message_id.as_str().to_owned(),
        source: new.event.source.as_str(),
        case_key: case_key(&new.event),
        project: project_of(&new.event).to_owned(),
        json: serde_json::to_string(&new.event)
            .map_err(|e| StoreError::corrupt_from("cannot encode an event", e))?,
        subscribers,
        for_flows: new.for_flows,
    })
}

/// A joint case's columns: (id, flow, project, window bureau, window case id, status, due on,
/// revision, state JSON).
pub(crate) struct JointColumns {
    pub(crate) id: String,
    pub(crate) flow: String,
    pub(crate) project: String,
    pub(crate) window: &'static str,
    pub(crate) window_case_id: String,
    pub(crate) status: &'static str,
    pub(crate) due_on: String,
    pub(crate) revision: i64,
    pub(crate) updated_at: Millis,
    pub(crate) state: String,
}

pub(crate) fn joint_columns(case: &super::joint::JointCase) -> Result<JointColumns, StoreError> {
    let n = &case.notice;
    Ok(JointColumns {
        id: n.joint_case_id.as_str().to_owned(),
        flow: n.flow.as_str().to_owned(),
        project: n.project.code.as_str().to_owned(),
        window: n.window.as_str(),
        window_case_id: n.window_case_id.as_str().to_owned(),
        status: n.status.code(),
        due_on: n.due.on.to_string(),
        revision: i64::try_from(case.revision)
            .map_err(|_| StoreError::corrupt("a joint case revision beyond i64"))?,
        updated_at: case.updated_at,
        state: serde_json::to_string(case)
            .map_err(|e| StoreError::corrupt_from("cannot encode a joint case", e))?,
    })
}

/// A joint case read back from its `state` column.
pub(crate) fn joint_case(state: &str) -> Result<super::joint::JointCase, StoreError> {
    serde_json::from_str(state).map_err(|e| StoreError::corrupt_from("stored joint case", e))
}

/// The columns a case clock is looked up by, and its state.
pub(crate) struct ClockColumns {
    pub bureau: &'static str,
    pub case_id: String,
    pub project: String,
    pub open: bool,
    pub revision: i64,
    pub updated_at: i64,
    pub state: String,
}

/// A case clock's columns.
pub(crate) fn clock_columns(clock: &super::joint::CaseClock) -> Result<ClockColumns, StoreError> {
    Ok(ClockColumns {
        bureau: clock.bureau.as_str(),
        case_id: clock.case_id.as_str().to_owned(),
        project: clock.project.as_str().to_owned(),
        open: clock.is_open(),
        revision: i64::try_from(clock.revision)
            .map_err(|_| StoreError::corrupt("a case clock revision beyond i64"))?,
        updated_at: clock.updated_at,
        state: serde_json::to_string(clock)
            .map_err(|e| StoreError::corrupt_from("cannot encode a case clock", e))?,
    })
}

/// A case clock read back from its `state` column.
pub(crate) fn case_clock(state: &str) -> Result<super::joint::CaseClock, StoreError> {
    serde_json::from_str(state).map_err(|e| StoreError::corrupt_from("stored case clock", e))
}

/// An inbox event read back.
pub(crate) fn flow_event(id: i64, json: &str) -> Result<super::FlowEvent, StoreError> {
    let event = serde_json::from_str(json)
        .map_err(|e| StoreError::corrupt_from("stored event in the flows' inbox", e))?;
    Ok(super::FlowEvent { id, event })
}

/// A stored delivery state.
pub(crate) fn delivery_state(text: &str) -> Result<super::DeliveryState, StoreError> {
    use super::DeliveryState::{Dead, Delivered, Pending};
    match text {
        "pending" => Ok(Pending),
        "delivered" => Ok(Delivered),
        "dead" => Ok(Dead),
        other => Err(StoreError::corrupt(format!(
            "stored delivery state {other:?}"
        ))),
    }
}

/// A count as a column value (counts never reach `i64::MAX`; saturate rather than wrap).
pub(crate) fn sql_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored receipt.
pub(crate) fn receipt(json: &str) -> Result<Receipt, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::corrupt_from("stored receipt", e))
}

/// A stored bureau id.
pub(crate) fn bureau(text: &str) -> Result<BureauId, StoreError> {
    BureauId::from_str(text)
        .map_err(|_| StoreError::corrupt(format!("unknown bureau {text:?} in the store")))
}

/// A stored canonical event.
pub(crate) fn event(json: &str) -> Result<Event, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::corrupt_from("stored event", e))
}

/// How many of the `known` migration steps a database at schema `version` has applied, or the
/// error for a version this build does not know (a newer build migrated it).
pub(crate) fn applied_migrations(version: i64, known: usize) -> Result<usize, StoreError> {
    usize::try_from(version)
        .ok()
        .filter(|v| *v <= known)
        .ok_or_else(|| {
            StoreError::corrupt(format!(
                "schema version {version} is not one this build knows (0 to {known})"
            ))
        })
}

/// A stored message id.
pub(crate) fn message_id(text: &str) -> Result<MessageId, StoreError> {
    MessageId::parse(text)
        .map_err(|e| StoreError::corrupt(format!("stored message id {text:?}: {e}")))
}

/// A stored count (never negative).
pub(crate) fn count(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|e| StoreError::corrupt_from("negative count", e))
}

/// A stored attempt count.
pub(crate) fn attempts(n: i64) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|e| StoreError::corrupt_from("attempt count", e))
}

/// A `LIMIT` value.
pub(crate) fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A fresh lease token in `1..2^63` (fits a signed 64-bit column; 0 means "no lease").
pub(crate) fn new_lease() -> u64 {
    fastrand::u64(1..(1 << 63))
}

/// A lease token as stored; `None` for 0 or out of range (no such lease can be held).
pub(crate) fn lease_to_sql(lease: u64) -> Option<i64> {
    i64::try_from(lease).ok().filter(|l| *l != 0)
}

/// The columns a survey record is read from, in this order, by both backends.
pub(crate) const SURVEY_COLUMNS: &str = "id, supersedes, publisher, result, published_at";

/// A survey record as its columns (see `surveys` in the schema).
pub(crate) struct SurveyColumns<'a> {
    pub(crate) id: &'a str,
    pub(crate) project: &'a str,
    pub(crate) kind: String,
    pub(crate) version: i64,
    pub(crate) supersedes: Option<&'a str>,
    pub(crate) publisher: &'static str,
    pub(crate) result: String,
    pub(crate) published_at: Millis,
}

/// Encodes a survey record for `INSERT INTO surveys`.
pub(crate) fn survey_columns(survey: &SurveyRecord) -> Result<SurveyColumns<'_>, StoreError> {
    Ok(SurveyColumns {
        id: survey.id.as_str(),
        project: survey.result.project.as_str(),
        kind: crate::vocabulary::name(&survey.result.kind),
        version: i64::from(survey.result.version),
        supersedes: survey.supersedes.as_ref().map(SurveyId::as_str),
        publisher: survey.publisher.as_str(),
        result: serde_json::to_string(&survey.result)
            .map_err(|e| StoreError::corrupt_from("cannot encode a survey result", e))?,
        published_at: survey.published_at,
    })
}

/// The error for a survey version another publication took first (the `(project, kind,
/// version)` unique key).
pub(crate) fn survey_version_taken(version: u32) -> StoreError {
    StoreError::Conflict(format!(
        "version {version} of this survey was published concurrently"
    ))
}

/// Decodes a survey record from its [`SURVEY_COLUMNS`].
pub(crate) fn survey_record(
    id: &str,
    supersedes: Option<&str>,
    publisher: &str,
    result: &str,
    published_at: Millis,
) -> Result<SurveyRecord, StoreError> {
    let survey_id = |text: &str| {
        SurveyId::parse(text)
            .map_err(|e| StoreError::corrupt(format!("stored survey id {text:?}: {e}")))
    };
    Ok(SurveyRecord {
        id: survey_id(id)?,
        supersedes: supersedes.map(survey_id).transpose()?,
        publisher: bureau(publisher)?,
        result: serde_json::from_str(result)
            .map_err(|e| StoreError::corrupt_from("stored survey result", e))?,
        published_at,
    })
}

/// The columns of `credit_entries` a record is read back from, in this order.
pub(crate) const CREDIT_COLUMNS: &str = "publisher, listed_at, entry";

/// The row of one credit-entry version.
pub(crate) struct CreditColumns<'a> {
    pub(crate) publisher: &'a str,
    pub(crate) entry_id: &'a str,
    pub(crate) version: i64,
    pub(crate) credit_code: &'a str,
    pub(crate) list: &'static str,
    pub(crate) listed_at: Millis,
    pub(crate) entry: String,
}

pub(crate) fn credit_columns(record: &CreditRecord) -> Result<CreditColumns<'_>, StoreError> {
    Ok(CreditColumns {
        publisher: record.publisher.as_str(),
        entry_id: record.entry.entry_id.as_str(),
        version: i64::from(record.entry.version),
        credit_code: record.entry.subject.credit_code.as_str(),
        list: record.entry.list.code(),
        listed_at: record.listed_at,
        entry: serde_json::to_string(&record.entry)
            .map_err(|e| StoreError::corrupt_from("cannot encode a credit entry", e))?,
    })
}

/// The error for an entry version another upload committed first.
pub(crate) fn credit_version_taken(record: &CreditRecord) -> StoreError {
    StoreError::Conflict(format!(
        "version {} of credit entry {} was published concurrently",
        record.entry.version,
        record.entry.entry_id.as_str()
    ))
}

/// The columns of `credit_matches` a match is read back from.
pub(crate) const CREDIT_MATCH_COLUMNS: &str = "record";

/// The row of one credit match: its key, its time and the whole record.
pub(crate) struct CreditMatchColumns<'a> {
    pub(crate) publisher: &'a str,
    pub(crate) entry_id: &'a str,
    pub(crate) bureau: &'a str,
    pub(crate) case_id: &'a str,
    pub(crate) matched_at: Millis,
    pub(crate) record: String,
}

pub(crate) fn credit_match_columns(
    record: &CreditMatchRecord,
) -> Result<CreditMatchColumns<'_>, StoreError> {
    Ok(CreditMatchColumns {
        publisher: record.found.publisher.as_str(),
        entry_id: record.found.entry.entry_id.as_str(),
        bureau: record.bureau.as_str(),
        case_id: record.case_id.as_str(),
        matched_at: record.matched_at,
        record: serde_json::to_string(record)
            .map_err(|e| StoreError::corrupt_from("cannot encode a credit match", e))?,
    })
}

/// Decodes a credit match from its [`CREDIT_MATCH_COLUMNS`].
pub(crate) fn credit_match_record(record: &str) -> Result<CreditMatchRecord, StoreError> {
    serde_json::from_str(record).map_err(|e| StoreError::corrupt_from("stored credit match", e))
}

/// Decodes a credit record from its [`CREDIT_COLUMNS`].
pub(crate) fn credit_record(
    publisher: &str,
    listed_at: Millis,
    entry: &str,
) -> Result<CreditRecord, StoreError> {
    Ok(CreditRecord {
        publisher: bureau(publisher)?,
        entry: serde_json::from_str(entry)
            .map_err(|e| StoreError::corrupt_from("stored credit entry", e))?,
        listed_at,
    })
}
