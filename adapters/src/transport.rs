//! Transport Commission (市交通委): JSON in UTF-8, camelCase English keys, RFC 3339 times with
//! offset, upper-case enumeration names, quantities as decimal strings in fixed units.
//!
//! Specification: `schemas/bureaus/transport/message.schema.json`. One document carries one
//! case event:
//!
//! ```text
//! {
//!   schemaVersion  "2.1"
//!   messageId      event id                      sender  source bureau, upper case (TRANSPORT)
//!   eventTime      RFC 3339, offset +08:00
//!   case {
//!     caseId, seq (JSON integer, from 1), itemCode (canonical snake_case item code),
//!     stage (LAND_USE_PLANNING | ENGINEERING_CONSTRUCTION_PERMIT | CONSTRUCTION_PERMIT |
//!            COMPLETION_ACCEPTANCE),
//!     status (SUBMITTED | ACCEPTED | SUPPLEMENT_REQUESTED | APPROVED | REJECTED | WITHDRAWN),
//!     districtCode (GB/T 2260, or 3101LG / 3101HG),
//!     project { code, name }, applicant { name, uscc },
//!     submittedAt (RFC 3339, +08:00), timeLimitWorkingDays (JSON integer),
//!     floorAreaM2? (decimal string, square metres), investmentYuan? (decimal string, yuan)
//!   }
//! }
//! ```
//!
//! JSON types are part of the format: `seq` and `timeLimitWorkingDays` must be JSON integers
//! (a string or a number with a fraction is refused), every other value a JSON string (a
//! number is refused, so `floorAreaM2: 128500.5` cannot lose digits through a float). Optional
//! fields are omitted when absent; `null` is refused. Unknown keys are refused at every level.

use schemas::model::{Name, parse_sequence};
use schemas::quantity::{AreaUnit, MoneyUnit};
use schemas::{
    Area, BureauCaseId, BureauId, CanonicalField as F, Case, CaseStatus, CreditCode, District,
    Event, Item, MessageId, Money, Normalizer, Organization, Problem, Project, ProjectCode,
    ShanghaiTime, Stage, WorkingDays,
};
use serde::Serialize;
use serde_json::Value;

use crate::json::{Obj, decode_value, value_text};
use crate::vocabulary::{code_of, lookup};
use crate::{Adapter, DecodeError, EncodeError, Encoded, NativeFormat, Syntax};

const FORMAT: NativeFormat = NativeFormat {
    media_type: "application/json",
    syntax: Syntax::Json,
    batch: false,
    max_message_bytes: 256 * 1024,
};

/// The only schema version this adapter reads and writes.
const SCHEMA_VERSION: &str = "2.1";

/// The transport commission's adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Transport;

/// Senders: the source bureau's id in upper case.
const SENDERS: [(BureauId, &str); 6] = [
    (BureauId::Planning, "PLANNING"),
    (BureauId::Water, "WATER"),
    (BureauId::Transport, "TRANSPORT"),
    (BureauId::TrafficPolice, "TRAFFIC_POLICE"),
    (BureauId::CivilDefense, "CIVIL_DEFENSE"),
    (BureauId::Greenery, "GREENERY"),
];

const STAGES: [(Stage, &str); 4] = [
    (Stage::LandUsePlanning, "LAND_USE_PLANNING"),
    (
        Stage::EngineeringConstructionPermit,
        "ENGINEERING_CONSTRUCTION_PERMIT",
    ),
    (Stage::ConstructionPermit, "CONSTRUCTION_PERMIT"),
    (Stage::CompletionAcceptance, "COMPLETION_ACCEPTANCE"),
];

const STATUSES: [(CaseStatus, &str); 6] = [
    (CaseStatus::Submitted, "SUBMITTED"),
    (CaseStatus::Accepted, "ACCEPTED"),
    (CaseStatus::SupplementRequested, "SUPPLEMENT_REQUESTED"),
    (CaseStatus::Approved, "APPROVED"),
    (CaseStatus::Rejected, "REJECTED"),
    (CaseStatus::Withdrawn, "WITHDRAWN"),
];

const ROOT_KEYS: [&str; 5] = ["schemaVersion", "messageId", "sender", "eventTime", "case"];
const CASE_KEYS: [&str; 12] = [
    "caseId",
    "seq",
    "itemCode",
    "stage",
    "status",
    "districtCode",
    "project",
    "applicant",
    "submittedAt",
    "timeLimitWorkingDays",
    "floorAreaM2",
    "investmentYuan",
];

impl Transport {
    fn decode_case(value: &Value, n: &mut Normalizer) -> Option<Event> {
        let root = Obj::root(value, n)?;
        root.check_keys(&ROOT_KEYS, n);
        root.string(n, F::Document, "schemaVersion", |t| {
            if t == SCHEMA_VERSION {
                Ok(())
            } else {
                Err(Problem::BadFormat {
                    expected: "schemaVersion \"2.1\"",
                })
            }
        });
        let message_id = root.string(n, F::MessageId, "messageId", MessageId::parse);
        let source = root.string(n, F::Source, "sender", |t| {
            lookup(&SENDERS, t, "sender (bureau id in upper case)")
        });
        let occurred_at = root.string(n, F::OccurredAt, "eventTime", ShanghaiTime::parse_rfc3339);

        let case = root.object("case", F::Document, n)?;
        case.check_keys(&CASE_KEYS, n);
        let case_id = case.string(n, F::CaseId, "caseId", BureauCaseId::parse);
        let sequence = case.integer(n, F::Sequence, "seq", parse_sequence);
        let item = case.string(n, F::Item, "itemCode", Item::parse_code);
        let stage = case.string(n, F::Stage, "stage", |t| lookup(&STAGES, t, "stage name"));
        let status = case.string(n, F::Status, "status", |t| {
            lookup(&STATUSES, t, "status name")
        });
        let district = case.string(n, F::District, "districtCode", District::parse_code);

        let (project_code, project_name) = match case.object("project", F::ProjectCode, n) {
            Some(project) => {
                project.check_keys(&["code", "name"], n);
                (
                    project.string(n, F::ProjectCode, "code", ProjectCode::parse),
                    project.string(n, F::ProjectName, "name", Name::parse),
                )
            }
            None => (None, None),
        };
        let (applicant_name, credit_code) = match case.object("applicant", F::ApplicantName, n) {
            Some(applicant) => {
                applicant.check_keys(&["name", "uscc"], n);
                (
                    applicant.string(n, F::ApplicantName, "name", Name::parse),
                    applicant.string(n, F::ApplicantCreditCode, "uscc", CreditCode::parse),
                )
            }
            None => (None, None),
        };

        let submitted_at = case.string(
            n,
            F::SubmittedAt,
            "submittedAt",
            ShanghaiTime::parse_rfc3339,
        );
        let time_limit = case.integer(n, F::TimeLimit, "timeLimitWorkingDays", WorkingDays::parse);
        let floor_area = case.string_opt(n, F::FloorArea, "floorAreaM2", |t| {
            Area::from_number_in(t, AreaUnit::SquareMetre)
        });
        let investment = case.string_opt(n, F::Investment, "investmentYuan", |t| {
            Money::from_number_in(t, MoneyUnit::Yuan)
        });
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
                let text = root
                    .map
                    .get("eventTime")
                    .map(value_text)
                    .unwrap_or_default();
                n.reject(F::OccurredAt, "/eventTime", text, problem);
                None
            }
        }
    }
}

/// The wire shape, for encoding (field order as the specification lists it).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Message<'a> {
    schema_version: &'static str,
    message_id: &'a str,
    sender: &'static str,
    event_time: String,
    case: WireCase<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireCase<'a> {
    case_id: &'a str,
    seq: u64,
    item_code: &'static str,
    stage: &'static str,
    status: &'static str,
    district_code: &'static str,
    project: WireProject<'a>,
    applicant: WireApplicant<'a>,
    submitted_at: String,
    time_limit_working_days: u16,
    #[serde(rename = "floorAreaM2", skip_serializing_if = "Option::is_none")]
    floor_area_m2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    investment_yuan: Option<String>,
}

#[derive(Serialize)]
struct WireProject<'a> {
    code: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct WireApplicant<'a> {
    name: &'a str,
    uscc: &'a str,
}

impl Adapter for Transport {
    fn bureau(&self) -> BureauId {
        BureauId::Transport
    }

    fn format(&self) -> NativeFormat {
        FORMAT
    }

    fn decode(&self, body: &[u8], content_type: &str) -> Result<Vec<Event>, DecodeError> {
        let value = decode_value(&FORMAT, body, content_type)?;
        let mut n = Normalizer::new();
        let event = Self::decode_case(&value, &mut n);
        n.finish(|| event)
            .map(|e| vec![e])
            .map_err(DecodeError::Invalid)
    }

    fn encode(&self, event: &Event) -> Result<Encoded, EncodeError> {
        let Some(case) = event.case() else {
            return Err(EncodeError {
                bureau: self.bureau(),
                field: "payload",
                reason: "survey notices are not encoded yet".into(),
            });
        };
        let message = Message {
            schema_version: SCHEMA_VERSION,
            message_id: event.message_id.as_str(),
            sender: code_of(&SENDERS, event.source),
            event_time: event.occurred_at.to_rfc3339(),
            case: WireCase {
                case_id: event.case_id.as_str(),
                seq: event.sequence,
                item_code: case.item.code(),
                stage: code_of(&STAGES, case.stage),
                status: code_of(&STATUSES, case.status),
                district_code: case.district.code(),
                project: WireProject {
                    code: case.project.code.as_str(),
                    name: case.project.name.as_str(),
                },
                applicant: WireApplicant {
                    name: case.applicant.name.as_str(),
                    uscc: case.applicant.credit_code.as_str(),
                },
                submitted_at: case.submitted_at.to_rfc3339(),
                time_limit_working_days: case.time_limit_working_days.get(),
                floor_area_m2: case
                    .floor_area
                    .map(|area| area.in_unit(AreaUnit::SquareMetre).to_string()),
                investment_yuan: case
                    .investment
                    .map(|money| money.in_unit(MoneyUnit::Yuan).to_string()),
            },
        };
        let mut body = serde_json::to_vec_pretty(&message).map_err(|e| EncodeError {
            bureau: BureauId::Transport,
            field: "document",
            reason: e.to_string(),
        })?;
        body.push(b'\n');
        Ok(Encoded {
            content_type: FORMAT.media_type.to_owned(),
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance() {
        crate::conformance::check(&Transport);
    }

    #[test]
    fn code_tables_are_complete_and_distinct() {
        for bureau in BureauId::ALL {
            assert_eq!(lookup(&SENDERS, code_of(&SENDERS, bureau), "x"), Ok(bureau));
            assert_eq!(
                code_of(&SENDERS, bureau),
                bureau.as_str().to_ascii_uppercase()
            );
        }
        for stage in Stage::ALL {
            assert_eq!(lookup(&STAGES, code_of(&STAGES, stage), "x"), Ok(stage));
        }
        for status in CaseStatus::ALL {
            assert_eq!(
                lookup(&STATUSES, code_of(&STATUSES, status), "x"),
                Ok(status)
            );
        }
        assert!(lookup(&STAGES, "construction_permit", "x").is_err());
        assert!(lookup(&SENDERS, "transport", "x").is_err());
    }

    #[test]
    fn carries_events_of_every_source_bureau() {
        let mut rng = fastrand::Rng::with_seed(2022);
        for bureau in BureauId::ALL {
            for _ in 0..20 {
                let event = crate::sample::case_event(&mut rng, bureau);
                let encoded = Transport.encode(&event).expect("encodable");
                let back = Transport.decode(&encoded.body, &encoded.content_type);
                assert_eq!(back, Ok(vec![event]));
            }
        }
    }

    fn errors_of(body: &str) -> Vec<schemas::NormalizeError> {
        match Transport.decode(body.as_bytes(), FORMAT.media_type) {
            Err(DecodeError::Invalid(errors)) => errors,
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    fn valid_body() -> String {
        let path =
            crate::conformance::samples_dir(&Transport).join("valid/road-excavation-approved.json");
        std::fs::read_to_string(path).expect("valid sample")
    }

    #[test]
    fn json_types_are_enforced() {
        let body = valid_body()
            .replace("\"seq\": 3", "\"seq\": \"3\"")
            .replace(
                "\"timeLimitWorkingDays\": 15",
                "\"timeLimitWorkingDays\": 15.0",
            )
            .replace("\"floorAreaM2\": \"128500.5\"", "\"floorAreaM2\": 128500")
            .replace(
                "\"investmentYuan\": \"1250000000.00\"",
                "\"investmentYuan\": null",
            );
        let errors = errors_of(&body);
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/case/seq",
                "/case/timeLimitWorkingDays",
                "/case/floorAreaM2",
                "/case/investmentYuan"
            ]
        );
        assert!(
            errors
                .iter()
                .all(|e| matches!(e.problem, Problem::WrongType { .. }))
        );
    }

    #[test]
    fn collects_every_error() {
        let body = valid_body()
            .replace("\"schemaVersion\": \"2.1\"", "\"schemaVersion\": \"2.0\"")
            .replace("\"310115\"", "\"310102\"")
            .replace("\"91350100M000100Y43\"", "\"91350100M000100Y44\"");
        let paths: Vec<_> = errors_of(&body).into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "/schemaVersion",
                "/case/districtCode",
                "/case/applicant/uscc"
            ]
        );
    }
}
