//! Civil Defense Office (市民防辦): a batch format. One UTF-8 XML document carries many case
//! events, written in an attribute-heavy style with the canonical codes (bureau ids, item,
//! stage and status codes in snake_case), RFC 3339 times with offset `+08:00`, and units given
//! as attributes.
//!
//! Specification: `schemas/bureaus/civil_defense/message.xsd`. A batch holds 1 to 10,000
//! records; `count` must equal the number of records. The batch id names the delivery only: it
//! is not part of any canonical event.
//!
//! ```text
//! CivilDefenseBatch[@batchId, @count]
//!   record[@messageId, @sender (bureau id), @eventTime, @caseNo, @seq]   (1..=10000 times)
//!     item, stage, status (canonical codes), district (3101xx, 3101LG, 3101HG),
//!     project[@code, @name], applicant[@name, @creditCode],
//!     submitted (RFC 3339), timeLimit (working days),
//!     area[@unit]? (㎡, 平方米, m2, m², 公頃, 公顷), investment[@unit]? (元, 萬元, 万元, 億元, 亿元)
//! ```
//!
//! Decoding is all-or-nothing: when any record is invalid the whole batch is refused, with every
//! error of every record, each at a path such as
//! `/CivilDefenseBatch/record[2]/applicant/@creditCode` (records counted from 1). Unknown
//! attributes and elements are refused, and so is a message id given to two records of a batch.
//! Encoding one event writes a batch of one record whose batch id is the event's message id.

use std::collections::HashSet;

use encoding_rs::UTF_8;
use schemas::model::{Name, parse_sequence};
use schemas::quantity::{AreaUnit, MoneyUnit};
use schemas::text::clean;
use schemas::{
    Area, BureauCaseId, BureauId, CanonicalField as F, Case, CaseStatus, CreditCode, District,
    Event, Item, MessageId, Money, Normalizer, Organization, Problem, Project, ProjectCode,
    ShanghaiTime, Stage, WorkingDays,
};

use crate::vocabulary::{code_of, lookup};
use crate::xml::{self, Element, XmlWriter, decode_text, truncate};
use crate::{Adapter, DecodeError, EncodeError, Encoded, NativeFormat, Syntax};

const ROOT: &str = "CivilDefenseBatch";
const ROOT_PATH: &str = "/CivilDefenseBatch";
const RECORD: &str = "record";
/// Most records one batch may carry.
const MAX_RECORDS: usize = 10_000;
const FORMAT: NativeFormat = NativeFormat {
    media_type: "application/xml",
    syntax: Syntax::Xml { encoding: UTF_8 },
    batch: true,
    max_message_bytes: 16 * 1024 * 1024,
};

/// The civil defense office's adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct CivilDefense;

/// Stages, by their canonical (serde) names.
const STAGES: [(Stage, &str); 4] = [
    (Stage::LandUsePlanning, "land_use_planning"),
    (
        Stage::EngineeringConstructionPermit,
        "engineering_construction_permit",
    ),
    (Stage::ConstructionPermit, "construction_permit"),
    (Stage::CompletionAcceptance, "completion_acceptance"),
];

/// Statuses, by their canonical (serde) names.
const STATUSES: [(CaseStatus, &str); 6] = [
    (CaseStatus::Submitted, "submitted"),
    (CaseStatus::Accepted, "accepted"),
    (CaseStatus::SupplementRequested, "supplement_requested"),
    (CaseStatus::Approved, "approved"),
    (CaseStatus::Rejected, "rejected"),
    (CaseStatus::Withdrawn, "withdrawn"),
];

const RECORD_ATTRIBUTES: [&str; 5] = ["messageId", "sender", "eventTime", "caseNo", "seq"];
const RECORD_FIELDS: [&str; 10] = [
    "item",
    "stage",
    "status",
    "district",
    "project",
    "applicant",
    "submitted",
    "timeLimit",
    "area",
    "investment",
];

/// A bureau id as the project spells it (`civil_defense`).
fn parse_bureau(text: &str) -> Result<BureauId, Problem> {
    clean(text).parse().map_err(|_| Problem::UnknownCode {
        vocabulary: "bureau id (planning, water, transport, traffic_police, civil_defense, greenery)",
    })
}

/// The batch's `count`: digits only.
fn parse_count(text: &str) -> Result<usize, Problem> {
    let text = clean(text);
    if text.is_empty() || text.len() > 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::BadFormat {
            expected: "the number of records, in digits",
        });
    }
    text.parse().map_err(|_| Problem::BadFormat {
        expected: "the number of records, in digits",
    })
}

/// Rejects text where the format puts none (between records, inside `project`).
fn check_no_text(element: &Element, path: &str, n: &mut Normalizer) {
    if !element.text.is_empty() {
        n.reject(
            F::Document,
            path,
            truncate(&element.text),
            Problem::UnknownField,
        );
    }
}

/// Checks a record's field element: only the given attributes, no child elements.
fn check_field(element: &Element, path: &str, attributes: &[&str], n: &mut Normalizer) {
    element.check_attributes(path, attributes, n);
    element.check_children(path, &[], &[], n);
}

/// An optional quantity written as `<name unit="...">number</name>`: absent is `Some(None)`,
/// present and bad is `None`.
fn quantity<T>(
    n: &mut Normalizer,
    field: F,
    element: Option<&Element>,
    path: &str,
    parse: fn(&str, &str) -> Result<T, Problem>,
) -> Option<Option<T>> {
    let Some(element) = element else {
        return Some(None);
    };
    check_field(element, path, &["unit"], n);
    let Some(unit) = element.attribute("unit") else {
        n.reject(field, format!("{path}/@unit"), "", Problem::Missing);
        return None;
    };
    n.field(
        field,
        || path.to_owned(),
        Some(&element.text),
        |text| parse(text, unit),
    )
    .map(Some)
}

impl CivilDefense {
    /// Decodes one record; `p` is its path, e.g. `/CivilDefenseBatch/record[2]`.
    fn decode_record(record: &Element, p: &str, n: &mut Normalizer) -> Option<Event> {
        record.check_attributes(p, &RECORD_ATTRIBUTES, n);
        check_no_text(record, p, n);
        record.check_children(p, &RECORD_FIELDS, &[], n);
        let a = |name: &str| format!("{p}/@{name}");
        let c = |name: &str| format!("{p}/{name}");

        let message_id = n.field(
            F::MessageId,
            || a("messageId"),
            record.attribute("messageId"),
            MessageId::parse,
        );
        let source = n.field(
            F::Source,
            || a("sender"),
            record.attribute("sender"),
            parse_bureau,
        );
        let occurred_at = n.field(
            F::OccurredAt,
            || a("eventTime"),
            record.attribute("eventTime"),
            ShanghaiTime::parse_rfc3339,
        );
        let case_id = n.field(
            F::CaseId,
            || a("caseNo"),
            record.attribute("caseNo"),
            BureauCaseId::parse,
        );
        let sequence = n.field(
            F::Sequence,
            || a("seq"),
            record.attribute("seq"),
            parse_sequence,
        );

        for name in [
            "item",
            "stage",
            "status",
            "district",
            "submitted",
            "timeLimit",
        ] {
            if let Some(element) = record.child(name) {
                check_field(element, &c(name), &[], n);
            }
        }
        let item = n.field(
            F::Item,
            || c("item"),
            record.text_of("item"),
            Item::parse_code,
        );
        let stage = n.field(
            F::Stage,
            || c("stage"),
            record.text_of("stage"),
            |t| lookup(&STAGES, t, "stage code"),
        );
        let status = n.field(
            F::Status,
            || c("status"),
            record.text_of("status"),
            |t| lookup(&STATUSES, t, "case status code"),
        );
        let district = n.field(
            F::District,
            || c("district"),
            record.text_of("district"),
            District::parse_code,
        );

        let empty = Element::default();
        let project = record.child("project").unwrap_or_else(|| {
            n.reject(F::ProjectCode, c("project"), "", Problem::Missing);
            &empty
        });
        let project_path = c("project");
        check_field(project, &project_path, &["code", "name"], n);
        check_no_text(project, &project_path, n);
        let project_code = n.field(
            F::ProjectCode,
            || format!("{project_path}/@code"),
            project.attribute("code"),
            ProjectCode::parse,
        );
        let project_name = n.field(
            F::ProjectName,
            || format!("{project_path}/@name"),
            project.attribute("name"),
            Name::parse,
        );

        let applicant = record.child("applicant").unwrap_or_else(|| {
            n.reject(F::ApplicantName, c("applicant"), "", Problem::Missing);
            &empty
        });
        let applicant_path = c("applicant");
        check_field(applicant, &applicant_path, &["name", "creditCode"], n);
        check_no_text(applicant, &applicant_path, n);
        let applicant_name = n.field(
            F::ApplicantName,
            || format!("{applicant_path}/@name"),
            applicant.attribute("name"),
            Name::parse,
        );
        let credit_code = n.field(
            F::ApplicantCreditCode,
            || format!("{applicant_path}/@creditCode"),
            applicant.attribute("creditCode"),
            CreditCode::parse,
        );

        let submitted_at = n.field(
            F::SubmittedAt,
            || c("submitted"),
            record.text_of("submitted"),
            ShanghaiTime::parse_rfc3339,
        );
        let time_limit = n.field(
            F::TimeLimit,
            || c("timeLimit"),
            record.text_of("timeLimit"),
            WorkingDays::parse,
        );
        let floor_area = quantity(
            n,
            F::FloorArea,
            record.child("area"),
            &c("area"),
            Area::from_number_and_unit,
        );
        let investment = quantity(
            n,
            F::Investment,
            record.child("investment"),
            &c("investment"),
            Money::from_number_and_unit,
        );
        if !n.is_clean() {
            return None;
        }
        let case = Case {
            project: Project {
                code: project_code?,
                name: project_name?,
            },
            item: item?,
            stage: stage?,
            district: district?,
            applicant: Organization {
                name: applicant_name?,
                credit_code: credit_code?,
            },
            status: status?,
            submitted_at: submitted_at?,
            time_limit_working_days: time_limit?,
            floor_area: floor_area?,
            investment: investment?,
        };
        match Event::for_case(
            message_id?,
            source?,
            case_id?,
            sequence?,
            occurred_at?,
            case,
        ) {
            Ok(event) => Some(event),
            Err(problem) => {
                n.reject(
                    F::OccurredAt,
                    a("eventTime"),
                    record.attribute("eventTime").unwrap_or(""),
                    problem,
                );
                None
            }
        }
    }

    /// Decodes the batch envelope and every record, collecting every error.
    fn decode_batch(root: &Element, n: &mut Normalizer) -> Vec<Event> {
        root.check_attributes(ROOT_PATH, &["batchId", "count"], n);
        check_no_text(root, ROOT_PATH, n);
        root.check_children(ROOT_PATH, &[], &[RECORD], n);
        // The batch id names the delivery; it is checked but carried by no event.
        let _ = n.field(
            F::Document,
            || format!("{ROOT_PATH}/@batchId"),
            root.attribute("batchId"),
            MessageId::parse,
        );
        let count = n.field(
            F::Document,
            || format!("{ROOT_PATH}/@count"),
            root.attribute("count"),
            parse_count,
        );
        let records: Vec<&Element> = root.children_named(RECORD).collect();
        if count.is_some_and(|count| count != records.len()) {
            n.reject(
                F::Document,
                format!("{ROOT_PATH}/@count"),
                root.attribute("count").unwrap_or(""),
                Problem::Inconsistent {
                    reason: "count is not the number of records",
                },
            );
        }
        if records.is_empty() {
            n.reject(
                F::Document,
                format!("{ROOT_PATH}/{RECORD}"),
                "",
                Problem::Missing,
            );
            return Vec::new();
        }
        if records.len() > MAX_RECORDS {
            n.reject(
                F::Document,
                ROOT_PATH,
                records.len().to_string(),
                Problem::OutOfRange {
                    min: "1",
                    max: "10000",
                },
            );
            return Vec::new();
        }
        let mut events = Vec::with_capacity(records.len());
        let mut seen = HashSet::with_capacity(records.len());
        for (index, record) in records.into_iter().enumerate() {
            let path = format!("{ROOT_PATH}/{RECORD}[{}]", index + 1);
            let mut record_n = Normalizer::new();
            let event = Self::decode_record(record, &path, &mut record_n);
            match record_n.finish(|| event) {
                Ok(event) => {
                    if !seen.insert(event.message_id.clone()) {
                        n.reject(
                            F::MessageId,
                            format!("{path}/@messageId"),
                            event.message_id.as_str(),
                            Problem::Inconsistent {
                                reason: "message id given to another record of the batch",
                            },
                        );
                    }
                    events.push(event);
                }
                Err(errors) => n.absorb(errors),
            }
        }
        events
    }

    /// Writes one batch. Its id is the first event's message id.
    fn write_batch(batch_id: &str, events: &[Event]) -> Encoded {
        let mut w = XmlWriter::new(UTF_8);
        let count = events.len().to_string();
        w.open(ROOT, &[("batchId", batch_id), ("count", &count)]);
        for event in events {
            let Some(case) = event.case() else {
                continue;
            };
            let seq = event.sequence.to_string();
            let event_time = event.occurred_at.to_rfc3339();
            w.open(
                RECORD,
                &[
                    ("messageId", event.message_id.as_str()),
                    ("sender", event.source.as_str()),
                    ("eventTime", &event_time),
                    ("caseNo", event.case_id.as_str()),
                    ("seq", &seq),
                ],
            );
            w.leaf("item", case.item.code());
            w.leaf("stage", code_of(&STAGES, case.stage));
            w.leaf("status", code_of(&STATUSES, case.status));
            w.leaf("district", case.district.code());
            w.leaf_with(
                "project",
                &[
                    ("code", case.project.code.as_str()),
                    ("name", case.project.name.as_str()),
                ],
                "",
            );
            w.leaf_with(
                "applicant",
                &[
                    ("name", case.applicant.name.as_str()),
                    ("creditCode", case.applicant.credit_code.as_str()),
                ],
                "",
            );
            w.leaf("submitted", &case.submitted_at.to_rfc3339());
            w.leaf("timeLimit", &case.time_limit_working_days.get().to_string());
            if let Some(area) = case.floor_area {
                let value = area.in_unit(AreaUnit::SquareMetre).to_string();
                w.leaf_with("area", &[("unit", "m2")], &value);
            }
            if let Some(money) = case.investment {
                let value = money.in_unit(MoneyUnit::Yuan).to_string();
                w.leaf_with("investment", &[("unit", "元")], &value);
            }
            w.close(RECORD);
        }
        w.close(ROOT);
        Encoded {
            content_type: FORMAT.media_type.to_owned(),
            body: w.finish(),
        }
    }
}

impl Adapter for CivilDefense {
    fn bureau(&self) -> BureauId {
        BureauId::CivilDefense
    }

    fn format(&self) -> NativeFormat {
        FORMAT
    }

    fn decode(&self, body: &[u8], content_type: &str) -> Result<Vec<Event>, DecodeError> {
        let text = decode_text(&FORMAT, body, content_type)?;
        let root = xml::parse(&text)?;
        if root.name != ROOT {
            return Err(DecodeError::Malformed {
                path: format!("/{}", root.name),
                message: format!("root element must be {ROOT}"),
            });
        }
        let mut n = Normalizer::new();
        let events = Self::decode_batch(&root, &mut n);
        n.finish(|| Some(events)).map_err(DecodeError::Invalid)
    }

    fn encode(&self, event: &Event) -> Result<Encoded, EncodeError> {
        if event.case().is_none() {
            return Err(EncodeError {
                bureau: self.bureau(),
                field: "payload",
                reason: "survey notices are not encoded yet".into(),
            });
        }
        Ok(Self::write_batch(
            event.message_id.as_str(),
            std::slice::from_ref(event),
        ))
    }

    /// The office's own batch document: a pull feed of civil defense reads natively.
    fn encode_batch(&self, batch_id: &str, events: &[Event]) -> Result<Encoded, EncodeError> {
        Ok(Self::write_batch(batch_id, events))
    }

    /// A batch of 2 to 6 of the office's own case events.
    fn sample(&self, rng: &mut fastrand::Rng) -> Encoded {
        let size = rng.usize(2..=6);
        let mut events: Vec<Event> = Vec::with_capacity(size);
        while events.len() < size {
            let event = crate::sample::case_event(rng, BureauId::CivilDefense);
            // Message ids are random; a repeat within one batch would be refused.
            if events.iter().all(|e| e.message_id != event.message_id) {
                events.push(event);
            }
        }
        events.sort_by_key(|e| e.occurred_at);
        let day = events[0].occurred_at.naive_local().format("%Y%m%d");
        let batch_id = format!("RF-B-{day}-{:02}", rng.u32(1..=99));
        Self::write_batch(&batch_id, &events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance() {
        crate::conformance::check(&CivilDefense);
    }

    #[test]
    fn code_tables_are_the_canonical_serde_names() {
        for (stage, code) in STAGES {
            assert_eq!(serde_json::to_value(stage).ok(), Some(code.into()));
        }
        for (status, code) in STATUSES {
            assert_eq!(serde_json::to_value(status).ok(), Some(code.into()));
        }
        assert!(
            Stage::ALL
                .iter()
                .all(|s| STAGES.iter().any(|(t, _)| t == s))
        );
        assert!(
            CaseStatus::ALL
                .iter()
                .all(|s| STATUSES.iter().any(|(t, _)| t == s))
        );
        assert_eq!(parse_bureau(" civil_defense "), Ok(BureauId::CivilDefense));
        assert!(parse_bureau("SHMFB").is_err());
        assert!(lookup(&STAGES, "Construction_Permit", "stage").is_err());
    }

    fn errors_of(body: &str) -> Vec<schemas::NormalizeError> {
        match CivilDefense.decode(body.as_bytes(), "application/xml") {
            Err(DecodeError::Invalid(errors)) => errors,
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    fn batch_of(sizes: usize, seed: u64) -> (Vec<Event>, String) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let events: Vec<Event> = (0..sizes)
            .map(|_| crate::sample::case_event(&mut rng, BureauId::CivilDefense))
            .collect();
        let body = CivilDefense::write_batch("B-1", &events).body;
        (events, String::from_utf8(body).expect("UTF-8"))
    }

    #[test]
    fn batches_decode_in_order_and_every_bureau_round_trips() {
        let (events, body) = batch_of(5, 11);
        let decoded = CivilDefense
            .decode(body.as_bytes(), "application/xml")
            .expect("batch decodes");
        assert_eq!(decoded, events);
        let mut rng = fastrand::Rng::with_seed(3);
        for bureau in BureauId::ALL {
            for _ in 0..20 {
                let event = crate::sample::case_event(&mut rng, bureau);
                let encoded = CivilDefense.encode(&event).expect("encodes");
                let back = CivilDefense
                    .decode(&encoded.body, &encoded.content_type)
                    .expect("decodes");
                assert_eq!(back, vec![event]);
            }
        }
    }

    #[test]
    fn every_error_of_every_record_is_listed() {
        let (_, body) = batch_of(3, 5);
        let body = body
            .replacen("<timeLimit>", "<timeLimit>13日", 1)
            .replace("count=\"3\"", "count=\"4\"")
            .replacen("<district>", "<district>X", 3)
            .replacen("<item>", "<item foo=\"1\">", 1)
            .replacen("</record>", "<remark>x</remark></record>", 2);
        let errors = errors_of(&body);
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        for want in [
            "/CivilDefenseBatch/@count",
            "/CivilDefenseBatch/record[1]/timeLimit",
            "/CivilDefenseBatch/record[1]/district",
            "/CivilDefenseBatch/record[2]/district",
            "/CivilDefenseBatch/record[3]/district",
            "/CivilDefenseBatch/record[1]/item/@foo",
            "/CivilDefenseBatch/record[1]/remark",
            "/CivilDefenseBatch/record[2]/remark",
        ] {
            assert!(paths.contains(&want), "no error at {want}: {paths:#?}");
        }
    }

    #[test]
    fn envelope_rules() {
        // No record at all.
        let errors = errors_of(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><CivilDefenseBatch batchId=\"B\" count=\"0\"/>",
        );
        assert_eq!(errors[0].path, "/CivilDefenseBatch/record");
        // A repeated message id, a missing batch id, an unknown root attribute.
        let (events, body) = batch_of(2, 9);
        let body = body
            .replace(events[1].message_id.as_str(), events[0].message_id.as_str())
            .replace("batchId=\"B-1\"", "version=\"2\"");
        let errors = errors_of(&body);
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/CivilDefenseBatch/@version",
                "/CivilDefenseBatch/@batchId",
                "/CivilDefenseBatch/record[2]/@messageId",
            ]
        );
    }

    #[test]
    fn more_than_ten_thousand_records_are_refused() {
        let (_, body) = batch_of(1, 1);
        let start = body.find("<record").expect("a record");
        let end = body.find("</record>").expect("a record") + "</record>".len();
        let record = &body[start..end];
        let mut big = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        big.push_str("<CivilDefenseBatch batchId=\"B\" count=\"10001\">");
        for _ in 0..=MAX_RECORDS {
            big.push_str(record);
        }
        big.push_str("</CivilDefenseBatch>");
        let errors = errors_of(&big);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(errors[0].path, "/CivilDefenseBatch");
        assert!(matches!(errors[0].problem, Problem::OutOfRange { .. }));
    }
}
