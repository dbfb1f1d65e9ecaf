//! Shared credit lists (信用信息共享), without HTTP: who may publish what, a bulk upload planned
//! as one message, and the matching of case events against the lists.
//!
//! - An upload is a publisher's entries, one JSON object per line (`read_upload`). Planning
//!   it ([`plan_upload`]) checks every line against what is stored — the publisher may list
//!   that list, each change is the entry's next version, a version sent again with the same
//!   content is already published (idempotent) — and makes one `NewMessage`: the new versions
//!   to store and one event per new version for the list's receivers, in one transaction.
//!   Any refused line refuses the whole upload, every refusal listed with its line.
//! - Matching ([`warnings`]): a case event whose applicant's credit code has an entry in
//!   effect on the event's day carries a [`CreditWarning`] per entry; its deliveries say so in
//!   the `Credit-Warning` header, and the flows engine sends the list's receivers a match
//!   notice once per (case, entry) ([`match_message`]). By credit code only, never by name.
//!
//! Architecture invariant: the gateway warns and tells; it never decides a case. A bureau
//! publishes only the lists its configuration names; nothing a bureau sends sets a warning.

use std::collections::BTreeMap;

use schemas::{
    BureauCaseId, BureauId, CanonicalField, CreditCode, CreditEntry, CreditMatch, CreditWarning,
    Event, NormalizeError, Problem, ShanghaiDate, ShanghaiTime,
};

use crate::clock::Millis;
use crate::config::CreditConfig;
use crate::ids::{self, IdempotencyKey};
use crate::store::{CreditMatchRecord, CreditRecord, NewEvent, NewMessage, StoreError};

/// Most stored versions read for one lookup or one message's matching.
pub const MAX_VERSIONS_READ: usize = 1_000;
/// Most recorded matches read for one case (one per entry its applicant was ever warned of).
pub const MAX_MATCHES_READ: usize = 1_000;

/// The latest stored version of each (publisher, entry id) among `records`.
pub fn current(records: &[CreditRecord]) -> Vec<&CreditRecord> {
    let mut latest: BTreeMap<(BureauId, &str), &CreditRecord> = BTreeMap::new();
    for record in records {
        let key = (record.publisher, record.entry.entry_id.as_str());
        match latest.get(&key) {
            Some(seen) if seen.entry.version >= record.entry.version => {}
            _ => {
                latest.insert(key, record);
            }
        }
    }
    latest.into_values().collect()
}

/// The warnings a case event carries: one per entry whose latest version lists its applicant's
/// credit code and is in effect on the day the event occurred. None for any other event.
pub fn warnings(records: &[CreditRecord], event: &Event) -> Vec<CreditWarning> {
    let Some(case) = event.case() else {
        return Vec::new();
    };
    let day = ShanghaiDate::new(event.occurred_at.naive_local().date());
    current(records)
        .into_iter()
        .filter(|r| r.entry.subject.credit_code == case.applicant.credit_code)
        .filter(|r| r.entry.is_active_on(day))
        .map(|r| r.entry.warning(r.publisher))
        .collect()
}

/// The applicants' credit codes of `events`' cases, each once.
pub fn applicant_codes<'e>(events: impl IntoIterator<Item = &'e Event>) -> Vec<CreditCode> {
    let mut codes: Vec<CreditCode> = events
        .into_iter()
        .filter_map(|e| e.case().map(|c| c.applicant.credit_code.clone()))
        .collect();
    codes.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    codes.dedup();
    codes
}

/// One line of an upload, read.
#[derive(Debug, Clone)]
pub struct UploadLine {
    /// Its number, from 1.
    pub line: usize,
    /// The entry.
    pub entry: CreditEntry,
}

/// Why an upload is refused whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadError {
    /// Lines that are not valid entries, or entries the publisher may not publish as sent:
    /// every problem, its path prefixed with its line (`line 3: /credit_code`).
    Invalid(Vec<NormalizeError>),
    /// The upload has no entry.
    Empty,
    /// More entries than `credit.max_entries`.
    TooMany {
        /// The limit.
        max: usize,
    },
}

fn at_line(line: usize, mut error: NormalizeError) -> NormalizeError {
    error.path = format!("line {line}: {}", error.path);
    error
}

/// Reads an upload: one JSON entry per non-blank line (`application/x-ndjson`). Every line is
/// read, so that every problem is listed; reading stops only past `max_entries`.
pub fn read_upload(body: &[u8], max_entries: usize) -> Result<Vec<UploadLine>, UploadError> {
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in body.split(|b| *b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if lines.len() + 1 > max_entries {
            return Err(UploadError::TooMany { max: max_entries });
        }
        let line = i + 1;
        match adapters::read_credit_upload(raw) {
            Ok(entry) => lines.push(UploadLine { line, entry }),
            Err(adapters::DecodeError::Invalid(found)) => {
                errors.extend(found.into_iter().map(|e| at_line(line, e)));
            }
            Err(other) => errors.push(NormalizeError {
                field: CanonicalField::Document,
                path: format!("line {line}: /"),
                text: String::from_utf8_lossy(&raw[..raw.len().min(120)]).into_owned(),
                problem: Problem::BadFormat {
                    expected: malformed_reason(&other),
                },
            }),
        }
    }
    if !errors.is_empty() {
        return Err(UploadError::Invalid(errors));
    }
    if lines.is_empty() {
        return Err(UploadError::Empty);
    }
    Ok(lines)
}

fn malformed_reason(error: &adapters::DecodeError) -> &'static str {
    match error {
        adapters::DecodeError::Encoding(_) => "a line of UTF-8 text",
        _ => "one JSON object per line",
    }
}

/// What an upload commits.
#[derive(Debug, Clone)]
pub struct PlannedUpload {
    /// The new versions, with the events that share them.
    pub message: NewMessage,
    /// Lines whose version was already published with the same content (nothing to do).
    pub unchanged: Vec<usize>,
    /// The new versions, by list (for the metrics).
    pub published: Vec<CreditRecord>,
}

/// The upload's request, as received.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The publishing bureau (from its certificate).
    pub publisher: BureauId,
    /// Its lines, read.
    pub lines: Vec<UploadLine>,
    /// The body exactly as received (kept as the raw message).
    pub body: Vec<u8>,
    /// The sender's idempotency key, or one derived from the body.
    pub key: IdempotencyKey,
}

/// The entry ids of an upload's lines, each once (what to read from the store).
pub fn entry_ids(lines: &[UploadLine]) -> Vec<BureauCaseId> {
    let mut ids: Vec<BureauCaseId> = lines.iter().map(|l| l.entry.entry_id.clone()).collect();
    ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    ids.dedup();
    ids
}

fn refused(
    line: usize,
    field: CanonicalField,
    name: &str,
    text: String,
    reason: &'static str,
) -> NormalizeError {
    NormalizeError {
        field,
        path: format!("line {line}: /{name}"),
        text,
        problem: Problem::Inconsistent { reason },
    }
}

/// Plans an upload over `stored` (every stored version of its entries of this publisher): all
/// or nothing, every refusal listed.
pub fn plan_upload(
    config: &CreditConfig,
    upload: Upload,
    stored: &[CreditRecord],
    now: Millis,
    occurred_at: ShanghaiTime,
) -> Result<PlannedUpload, UploadError> {
    let publisher = upload.publisher;
    // The latest version of each entry as the upload proceeds: stored, then its own lines.
    let mut latest: BTreeMap<String, CreditEntry> = current(stored)
        .into_iter()
        .filter(|r| r.publisher == publisher)
        .map(|r| (r.entry.entry_id.as_str().to_owned(), r.entry.clone()))
        .collect();
    let mut errors = Vec::new();
    let mut unchanged = Vec::new();
    let mut published = Vec::new();
    for UploadLine { line, entry } in upload.lines {
        if !config.may_publish(publisher, entry.list) {
            errors.push(refused(
                line,
                CanonicalField::CreditList,
                "list",
                entry.list.code().to_owned(),
                "this bureau does not publish this list (credit.lists.<list>.publishers)",
            ));
            continue;
        }
        let id = entry.entry_id.as_str().to_owned();
        let before = latest.get(&id);
        let next = before.map_or(1, |b| b.version + 1);
        if before.is_some_and(|b| b.version == entry.version) {
            if before == Some(&entry) {
                unchanged.push(line);
            } else {
                errors.push(refused(
                    line,
                    CanonicalField::CreditVersion,
                    "version",
                    entry.version.to_string(),
                    "this version of the entry was published with other content; a change is the next version",
                ));
            }
            continue;
        }
        if entry.version != next {
            errors.push(refused(
                line,
                CanonicalField::CreditVersion,
                "version",
                entry.version.to_string(),
                "a new entry is version 1 and each change the next version after the last published",
            ));
            continue;
        }
        latest.insert(id, entry.clone());
        published.push(CreditRecord {
            publisher,
            entry,
            listed_at: now,
        });
    }
    if !errors.is_empty() {
        return Err(UploadError::Invalid(errors));
    }
    let events = published
        .iter()
        .map(|record| {
            let subscribers: Vec<BureauId> = config
                .receivers(record.entry.list)
                .into_iter()
                .filter(|b| *b != publisher)
                .collect();
            let routed_by = subscribers
                .iter()
                .map(|_| format!("credit list {}", record.entry.list.code()))
                .collect();
            let event = Event::for_credit(
                ids::mint_message_id(),
                publisher,
                occurred_at,
                record.entry.clone(),
            );
            NewEvent {
                source_message_id: event.message_id.clone(),
                event,
                subscribers,
                routed_by,
                for_flows: false,
            }
        })
        .collect();
    let message = NewMessage {
        sender: publisher,
        idempotency_key: upload.key,
        content_type: "application/x-ndjson".into(),
        sha256: ids::sha256(&upload.body),
        body: upload.body,
        received_at: now,
        events,
        survey: None,
        credit: published.clone(),
        credit_match: None,
    };
    Ok(PlannedUpload {
        message,
        unchanged,
        published,
    })
}

/// The match notice of `case_event`'s case and `record`'s entry, for the list's receivers: a
/// message from the gateway in the name of the case's bureau, keyed by (entry, case), so that
/// however many of the case's events match, and however often a step is committed, it is
/// written once, with the match's record (what operators see of matches).
pub fn match_message(
    config: &CreditConfig,
    case_event: &Event,
    record: &CreditRecord,
    at: ShanghaiTime,
    now: Millis,
) -> Result<Option<NewMessage>, StoreError> {
    let Some(case) = case_event.case() else {
        return Ok(None);
    };
    let subscribers = config.receivers(record.entry.list);
    if subscribers.is_empty() {
        return Ok(None);
    }
    let what = format!(
        "credit/{}/{}/{}:{}",
        record.publisher.as_str(),
        record.entry.entry_id.as_str(),
        case_event.source.as_str(),
        case_event.case_id.as_str()
    );
    let found = CreditMatch {
        publisher: record.publisher,
        entry: record.entry.clone(),
        item: case.item,
        project: case.project.code.clone(),
    };
    let event = Event::for_credit_match(
        ids::flow_notice_id(&what),
        case_event.source,
        case_event.case_id.clone(),
        case_event.sequence,
        at,
        found.clone(),
    );
    let notice = event.message_id.clone();
    let routed_by = format!("credit list {}", record.entry.list.code());
    let mut message = NewMessage::notice(
        case_event.source,
        &what,
        event,
        subscribers.clone(),
        &routed_by,
        now,
    )?;
    message.credit_match = Some(CreditMatchRecord {
        bureau: case_event.source,
        case_id: case_event.case_id.clone(),
        found,
        notice,
        receivers: subscribers,
        matched_at: now,
    });
    Ok(Some(message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn entry(version: u32, valid_to: Option<&str>) -> CreditEntry {
        let mut line = serde_json::json!({
            "entry_id": "FGJ-XY-0001", "version": version, "list": "dishonest",
            "subject_name": "上海某某建设有限公司", "credit_code": "91350100M000100Y43",
            "measures": "限制容缺受理", "issued_by": "上海市房屋管理局",
            "legal_basis": "上海市社会信用条例", "document_number": "沪房信〔2026〕1号",
            "valid_from": "2026-03-01"
        });
        if let Some(to) = valid_to {
            line["valid_to"] = to.into();
        }
        adapters::read_credit_upload(line.to_string().as_bytes()).unwrap()
    }

    fn upload(lines: Vec<CreditEntry>) -> Upload {
        Upload {
            publisher: BureauId::Housing,
            lines: lines
                .into_iter()
                .enumerate()
                .map(|(i, entry)| UploadLine { line: i + 1, entry })
                .collect(),
            body: b"x".to_vec(),
            key: IdempotencyKey::from_header(b"k").unwrap(),
        }
    }

    #[test]
    fn versions_follow_the_stored_ones_and_a_resend_is_unchanged() {
        let config = Config::defaults().unwrap().credit;
        let at = crate::clock::shanghai_now().unwrap();
        let first = plan_upload(&config, upload(vec![entry(1, None)]), &[], 1, at).unwrap();
        assert_eq!(first.published.len(), 1);
        let receivers = &first.message.events[0].subscribers;
        assert!(!receivers.contains(&BureauId::Housing));
        assert!(receivers.contains(&BureauId::Water));
        let stored = first.published;
        let again = plan_upload(&config, upload(vec![entry(1, None)]), &stored, 2, at).unwrap();
        assert!(again.published.is_empty());
        assert_eq!(again.unchanged, vec![1]);
        let Err(UploadError::Invalid(errors)) = plan_upload(
            &config,
            upload(vec![entry(2, None), entry(1, Some("2026-12-31"))]),
            &stored,
            3,
            at,
        ) else {
            panic!("a changed version 1 is refused");
        };
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "line 2: /version");
        let Err(UploadError::Invalid(errors)) =
            plan_upload(&config, upload(vec![entry(3, None)]), &stored, 3, at)
        else {
            panic!("a skipped version is refused");
        };
        assert_eq!(errors[0].field, CanonicalField::CreditVersion);
    }

    #[test]
    fn a_bad_line_is_named_and_every_error_listed() {
        let good = adapters::write_credit_upload(&entry(1, None));
        let bad = good.replace("91350100M000100Y43", "91350100M000100Y44");
        let body = format!("{good}\n\n{bad}\n{{\"entry_id\": 1\n");
        let Err(UploadError::Invalid(errors)) = read_upload(body.as_bytes(), 10) else {
            panic!("refused");
        };
        assert!(errors.iter().any(|e| e.path == "line 3: /credit_code"
            && e.field == CanonicalField::CreditSubjectCode
            && e.text == "91350100M000100Y44"));
        assert!(errors.iter().any(|e| e.path.starts_with("line 4: ")));
        assert_eq!(
            read_upload(format!("{good}\n{good}\n").as_bytes(), 1).unwrap_err(),
            UploadError::TooMany { max: 1 }
        );
    }
}
