//! Transport Commission (市交通委): JSON in UTF-8, camelCase English keys, RFC 3339 times with
//! offset, upper-case enumeration names, quantities as decimal strings in fixed units.
//!
//! Specification: `schemas/bureaus/transport/message.schema.json`. One document carries one
//! event: a case event (key `case`) or a survey notice (key `surveyNotice`, multi-survey-in-one
//! results shared with the commission). Exactly one of the two keys is present; decoding
//! dispatches on which.
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
//! A survey notice has the same header (`eventTime` is when the result was published) and,
//! instead of `case`:
//!
//! ```text
//!   surveyNotice {
//!     surveyId (sv- and 32 lowercase hex digits), supersedes? (the survey id it corrects),
//!     projectCode,
//!     surveyKind (PLANNING_VERIFICATION | REAL_ESTATE | CIVIL_DEFENSE_AREA | GREENING),
//!     agency { name, uscc },
//!     version (JSON integer, from 1), surveyedOn (YYYY-MM-DD),
//!     figures [ { name, value (decimal string), unit } ... ]   in order, possibly empty:
//!       LAND_AREA, FLOOR_AREA_ABOVE_GROUND, FLOOR_AREA_BELOW_GROUND, GREENING_AREA,
//!       CIVIL_DEFENSE_AREA in m2; BUILDING_HEIGHT in m; GREENING_RATIO in percent;
//!       PROPERTY_UNITS in count (digits only). The unit must be the figure's own unit.
//!     files [ { name, mediaType, sha256 (64 hex digits), sizeBytes (JSON integer) } ... ]
//!   }
//! ```
//!
//! The event's case id (`SV-<project code>-<PV|RE|CD|GR>`), sequence (the version) and kind
//! (published, or superseded when `supersedes` is present) follow from the notice and are not
//! written.
//!
//! JSON types are part of the format: `seq`, `timeLimitWorkingDays`, `version` and `sizeBytes`
//! must be JSON integers (a string or a number with a fraction is refused), every other value a
//! JSON string (a number is refused, so `floorAreaM2: 128500.5` cannot lose digits through a
//! float). Optional fields are omitted when absent; `null` is refused. Unknown keys are refused
//! at every level.
//!
//! The gateway's joint-case and deadline notices are documents with the same header and the body
//! `jointCase` or `deadlineNotice` instead of `case` (keys as `NOTICES` names them: statuses
//! `OPEN` ... `TERMINATED`, branch statuses `WAITING` and the case statuses, `APPROACHING` /
//! `PASSED`; `dueOn` with `dueProvisional` a JSON boolean; `version`, `seq` and `workingDays`
//! JSON integers). Exactly one body is present.

use schemas::CreditList;
use schemas::model::{Name, parse_sequence};
use schemas::quantity::{AreaUnit, MoneyUnit, parse_plain_decimal};
use schemas::survey::parse_media_type;
use schemas::text::clean;
use schemas::{
    Area, BureauCaseId, BureauId, CanonicalField as F, CaseStatus, CreditCode, District, Event,
    FigureName, FigureSet, FigureValue, FileRef, Item, MessageId, Money, Normalizer, Payload,
    Problem, ProjectCode, Sha256Hex, ShanghaiDate, ShanghaiTime, Stage, SurveyId, SurveyKind,
    SurveyNotice, SurveyNoticeParts, WorkingDays,
};
use serde::Serialize;
use serde_json::Value;

use crate::adapter::{Adapter, DecodeError, EncodeError, Encoded, NativeFormat, Syntax};
use crate::assemble::{CaseParts, one_event, survey_event};
use crate::json::{FinalNewline, Obj, bounds, decode_value, encode_pretty};
use crate::notices::{self, DateStyle, Dialect, Json, JsonScalars, Names, Ordered};
use crate::vocabulary::{BureauSpelling, code_of, lookup};
use schemas::survey::{parse_size, parse_version};
use schemas::{BranchStatus, DeadlineState, JointStatus};

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

/// How the format spells a bureau (from the shared names, `schemas::BureauId::names`).
const SENDERS: BureauSpelling = BureauSpelling::IdUpper;

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

const SURVEY_KINDS: [(SurveyKind, &str); 4] = [
    (SurveyKind::PlanningVerification, "PLANNING_VERIFICATION"),
    (SurveyKind::RealEstate, "REAL_ESTATE"),
    (SurveyKind::CivilDefenseArea, "CIVIL_DEFENSE_AREA"),
    (SurveyKind::Greening, "GREENING"),
];

const FIGURES: [(FigureName, &str); 8] = [
    (FigureName::LandArea, "LAND_AREA"),
    (FigureName::FloorAreaAboveGround, "FLOOR_AREA_ABOVE_GROUND"),
    (FigureName::FloorAreaBelowGround, "FLOOR_AREA_BELOW_GROUND"),
    (FigureName::BuildingHeight, "BUILDING_HEIGHT"),
    (FigureName::GreeningArea, "GREENING_AREA"),
    (FigureName::GreeningRatio, "GREENING_RATIO"),
    (FigureName::CivilDefenseArea, "CIVIL_DEFENSE_AREA"),
    (FigureName::PropertyUnits, "PROPERTY_UNITS"),
];

/// The unit a figure is written in: its canonical unit, spelt the format's way.
fn figure_unit(name: FigureName) -> &'static str {
    match name.unit_symbol() {
        "m2" => "m2",
        "m" => "m",
        "%" => "percent",
        _ => "count",
    }
}

const FIGURE_UNITS: &str = "m2, m, percent, count";

/// Checks a figure's `unit` against the unit the figure is written in (when the figure's name
/// was understood) or against the format's units.
fn parse_figure_unit(name: Option<FigureName>, text: &str) -> Result<(), Problem> {
    let text = clean(text);
    match name {
        Some(name) if text == figure_unit(name) => Ok(()),
        Some(name) => Err(Problem::UnknownUnit {
            allowed: figure_unit(name),
        }),
        None if FIGURE_UNITS.split(", ").any(|unit| unit == text) => Ok(()),
        None => Err(Problem::UnknownUnit {
            allowed: FIGURE_UNITS,
        }),
    }
}

/// A figure's value: a plain decimal string in the figure's unit (a whole number for a count).
fn parse_figure_value(name: FigureName, text: &str) -> Result<FigureValue, Problem> {
    parse_plain_decimal(&clean(text))?;
    name.parse_canonical(text)
}

/// The header keys, then the two bodies: exactly one of `case` and `surveyNotice` is present.
const ROOT_KEYS: [&str; 10] = [
    "schemaVersion",
    "messageId",
    "sender",
    "eventTime",
    "case",
    "surveyNotice",
    "jointCase",
    "deadlineNotice",
    "creditEntry",
    "creditMatch",
];

/// The bodies a document may carry, exactly one of them.
const BODIES: [&str; 6] = [
    "case",
    "surveyNotice",
    "jointCase",
    "deadlineNotice",
    "creditEntry",
    "creditMatch",
];

/// How the commission's system spells the gateway's joint-case and deadline notices: camelCase
/// keys, upper-case enumeration names, canonical item codes, ISO dates, JSON integers and
/// booleans.
const NOTICES: Dialect = Dialect {
    names: Names {
        joint: "jointCase",
        deadline: "deadlineNotice",
        joint_case_id: "jointCaseId",
        flow: "flow",
        version: "version",
        project_code: "projectCode",
        project_name: "projectName",
        window_case_id: "windowCaseId",
        status: "status",
        opened_on: "acceptedOn",
        due: "dueOn",
        provisional: "dueProvisional",
        calendar: "calendarVersion",
        branches: Some("branches"),
        branch: "branch",
        bureau: "bureau",
        item: "itemCode",
        required: "required",
        case_id: "caseId",
        sequence: "seq",
        state: "deadlineState",
        working_days: "workingDays",
        credit: "creditEntry",
        credit_match: "creditMatch",
        entry_id: "entryId",
        list: "listType",
        subject_name: "subjectName",
        credit_code: "creditCode",
        measures: "measures",
        issued_by: "issuedBy",
        legal_basis: "legalBasis",
        document_number: "documentNumber",
        valid_from: "validFrom",
        valid_to: "validTo",
        removed_on: "removedOn",
        removal_reason: "removalReason",
        publisher: "publisher",
    },
    bureaus: SENDERS,
    item_text: notices::item_code,
    parse_item: Item::parse_code,
    joint_statuses: &[
        (JointStatus::Open, "OPEN"),
        (JointStatus::Approved, "APPROVED"),
        (JointStatus::Rejected, "REJECTED"),
        (JointStatus::Withdrawn, "WITHDRAWN"),
        (JointStatus::Terminated, "TERMINATED"),
    ],
    branch_statuses: &[
        (BranchStatus::Waiting, "WAITING"),
        (BranchStatus::Submitted, "SUBMITTED"),
        (BranchStatus::Accepted, "ACCEPTED"),
        (BranchStatus::SupplementRequested, "SUPPLEMENT_REQUESTED"),
        (BranchStatus::Approved, "APPROVED"),
        (BranchStatus::Rejected, "REJECTED"),
        (BranchStatus::Withdrawn, "WITHDRAWN"),
    ],
    states: &[
        (DeadlineState::Approaching, "APPROACHING"),
        (DeadlineState::Passed, "PASSED"),
    ],
    lists: &[
        (CreditList::Dishonest, "DISHONEST"),
        (CreditList::KeySupervision, "KEY_SUPERVISION"),
        (CreditList::Red, "RED"),
    ],
    yes_no: &[(true, "true"), (false, "false")],
    dates: DateStyle::Iso,
    json: JsonScalars::Typed,
};
const SURVEY_KEYS: [&str; 9] = [
    "surveyId",
    "supersedes",
    "projectCode",
    "surveyKind",
    "agency",
    "version",
    "surveyedOn",
    "figures",
    "files",
];
const FIGURE_KEYS: [&str; 3] = ["name", "value", "unit"];
const FILE_KEYS: [&str; 4] = ["name", "mediaType", "sha256", "sizeBytes"];
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

/// The header every document starts with.
struct Header {
    message_id: Option<MessageId>,
    source: Option<BureauId>,
    occurred_at: Option<ShanghaiTime>,
}

impl Transport {
    fn decode_document(value: &Value, n: &mut Normalizer) -> Option<Event> {
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
        let header = Header {
            message_id: root.string(n, F::MessageId, "messageId", MessageId::parse),
            source: root.string(n, F::Source, "sender", |t| {
                SENDERS.parse(t, "sender (bureau id in upper case)")
            }),
            occurred_at: root.string(n, F::OccurredAt, "eventTime", ShanghaiTime::parse_rfc3339),
        };
        let body = root.bodies(
            &BODIES,
            "a message carries one of case, surveyNotice, jointCase, deadlineNotice, creditEntry and creditMatch",
            n,
        )?;
        match body {
            Some("surveyNotice") => Self::decode_survey(&root, header, n),
            Some(key @ ("jointCase" | "deadlineNotice" | "creditEntry" | "creditMatch")) => {
                let body = root.object(key, F::Document, n)?;
                let header = notices::Header {
                    message_id: header.message_id,
                    source: header.source,
                    occurred_at: header.occurred_at,
                };
                notices::read_notice_json(&NOTICES, key, &body, header, n)
            }
            // Without any, the case format's own report: `/case` is missing.
            _ => Self::decode_case(&root, header, n),
        }
    }

    fn decode_survey(root: &Obj<'_>, header: Header, n: &mut Normalizer) -> Option<Event> {
        let notice = root.object("surveyNotice", F::Document, n)?;
        notice.check_keys(&SURVEY_KEYS, n);
        let survey_id = notice.string(n, F::SurveyId, "surveyId", SurveyId::parse);
        let supersedes = notice.string_opt(n, F::SurveySupersedes, "supersedes", SurveyId::parse);
        let project = notice.string(n, F::SurveyProject, "projectCode", ProjectCode::parse);
        let kind = notice.string(n, F::SurveyKind, "surveyKind", |t| {
            lookup(&SURVEY_KINDS, t, "survey kind")
        });
        let (agency_name, agency_code) = match notice.object("agency", F::SurveyAgencyName, n) {
            Some(agency) => {
                agency.check_keys(&["name", "uscc"], n);
                (
                    agency.string(n, F::SurveyAgencyName, "name", Name::parse),
                    agency.string(n, F::SurveyAgencyCreditCode, "uscc", CreditCode::parse),
                )
            }
            None => (None, None),
        };
        let version = notice.integer(
            n,
            F::SurveyVersion,
            "version",
            bounds!(1, 4294967295),
            parse_version,
        );
        let surveyed_on = notice.string(n, F::SurveyedOn, "surveyedOn", ShanghaiDate::parse_iso);

        let figures = notice.figures("figures", n, Self::decode_figure);

        let mut files = Some(Vec::new());
        let items = notice.objects("files", F::SurveyFile, n);
        if items.is_none() {
            files = None;
        }
        for file in items.into_iter().flatten() {
            let Some(file) = file else {
                files = None;
                continue;
            };
            file.check_keys(&FILE_KEYS, n);
            let name = file.string(n, F::SurveyFile, "name", Name::parse);
            let media_type = file.string(n, F::SurveyFile, "mediaType", parse_media_type);
            let sha256 = file.string(n, F::SurveyFile, "sha256", Sha256Hex::parse);
            let size_bytes = file.integer(
                n,
                F::SurveyFile,
                "sizeBytes",
                bounds!(0, 999999999999999999),
                parse_size,
            );
            files = match (files, name, media_type, sha256, size_bytes) {
                (Some(mut all), Some(name), Some(media_type), Some(sha256), Some(size_bytes)) => {
                    all.push(FileRef {
                        name,
                        media_type,
                        sha256,
                        size_bytes,
                    });
                    Some(all)
                }
                _ => None,
            };
        }

        let notice = SurveyNoticeParts {
            survey_id,
            supersedes,
            project,
            kind,
            agency_name,
            agency_credit_code: agency_code,
            version,
            surveyed_on,
            figures,
            files,
        }
        .build(n, || notice.native("supersedes"));
        survey_event(header.message_id, header.source, header.occurred_at, notice)
    }

    /// Reads one `{ name, value, unit }` of `figures` into `figures`.
    fn decode_figure(figure: &Obj<'_>, figures: &mut FigureSet, n: &mut Normalizer) {
        figure.check_keys(&FIGURE_KEYS, n);
        let name = figure.string(n, F::SurveyFigure, "name", |t| {
            lookup(&FIGURES, t, "figure name")
        });
        figure.string(n, F::SurveyFigure, "unit", |t| parse_figure_unit(name, t));
        let quantity = match name {
            Some(name) => {
                figure.string(n, F::SurveyFigure, "value", |t| parse_figure_value(name, t))
            }
            None => {
                figure.string(n, F::SurveyFigure, "value", |t| {
                    parse_plain_decimal(&clean(t))
                });
                None
            }
        };
        figures.push(n, name, quantity, || figure.native("name"));
    }

    fn decode_case(root: &Obj<'_>, header: Header, n: &mut Normalizer) -> Option<Event> {
        let case = root.object("case", F::Document, n)?;
        case.check_keys(&CASE_KEYS, n);
        let case_id = case.string(n, F::CaseId, "caseId", BureauCaseId::parse);
        let sequence = case.integer(
            n,
            F::Sequence,
            "seq",
            bounds!(1, 999999999999999999),
            parse_sequence,
        );
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
        let time_limit = case.integer(
            n,
            F::TimeLimit,
            "timeLimitWorkingDays",
            bounds!(1, 365),
            WorkingDays::parse,
        );
        let floor_area = case.string_opt(n, F::FloorArea, "floorAreaM2", |t| {
            Area::from_number_in(t, AreaUnit::SquareMetre)
        });
        let investment = case.string_opt(n, F::Investment, "investmentYuan", |t| {
            Money::from_number_in(t, MoneyUnit::Yuan)
        });
        let parts = CaseParts {
            message_id: header.message_id,
            source: header.source,
            case_id,
            sequence,
            occurred_at: header.occurred_at,
            project_code,
            project_name,
            item,
            stage,
            district,
            applicant_name,
            credit_code,
            status,
            submitted_at,
            time_limit,
            floor_area,
            investment,
        };
        parts.into_event(n, || root.native("eventTime"))
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SurveyMessage<'a> {
    schema_version: &'static str,
    message_id: &'a str,
    sender: &'static str,
    event_time: String,
    survey_notice: WireSurveyNotice<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireSurveyNotice<'a> {
    survey_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    supersedes: Option<&'a str>,
    project_code: &'a str,
    survey_kind: &'static str,
    agency: WireApplicant<'a>,
    version: u32,
    surveyed_on: String,
    figures: Vec<WireFigure>,
    files: Vec<WireFile<'a>>,
}

#[derive(Serialize)]
struct WireFigure {
    name: &'static str,
    value: String,
    unit: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireFile<'a> {
    name: &'a str,
    media_type: &'a str,
    sha256: &'a str,
    size_bytes: u64,
}

/// A joint-case or deadline notice document: the header, then the body under `key`.
fn notice_message(event: &Event, key: &'static str, body: Ordered) -> Ordered {
    let mut message = Ordered(Vec::with_capacity(5));
    message.push("schemaVersion", SCHEMA_VERSION);
    message.push("messageId", event.message_id.as_str());
    message.push("sender", SENDERS.code(event.source));
    message.push("eventTime", event.occurred_at.to_rfc3339());
    message.0.push((key, Json::Object(body)));
    message
}

/// Writes a native document (pretty JSON and a final newline).
fn to_json(message: &impl Serialize) -> Result<Encoded, EncodeError> {
    encode_pretty(BureauId::Transport, &FORMAT, message, FinalNewline::Yes)
}

fn encode_survey(event: &Event, notice: &SurveyNotice) -> Result<Encoded, EncodeError> {
    let result = &notice.result;
    to_json(&SurveyMessage {
        schema_version: SCHEMA_VERSION,
        message_id: event.message_id.as_str(),
        sender: SENDERS.code(event.source),
        event_time: event.occurred_at.to_rfc3339(),
        survey_notice: WireSurveyNotice {
            survey_id: notice.survey_id.as_str(),
            supersedes: notice.supersedes.as_ref().map(SurveyId::as_str),
            project_code: result.project.as_str(),
            survey_kind: code_of(&SURVEY_KINDS, result.kind),
            agency: WireApplicant {
                name: result.agency.name.as_str(),
                uscc: result.agency.credit_code.as_str(),
            },
            version: result.version,
            surveyed_on: result.surveyed_on.to_string(),
            figures: result
                .figures
                .iter()
                .map(|figure| WireFigure {
                    name: code_of(&FIGURES, figure.name),
                    value: FigureName::value_text(&figure.quantity),
                    unit: figure_unit(figure.name),
                })
                .collect(),
            files: result
                .files
                .iter()
                .map(|file| WireFile {
                    name: file.name.as_str(),
                    media_type: &file.media_type,
                    sha256: file.sha256.as_str(),
                    size_bytes: file.size_bytes,
                })
                .collect(),
        },
    })
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
        one_event(|n| Self::decode_document(&value, n))
    }

    fn write(&self, event: &Event) -> Result<Encoded, EncodeError> {
        let case = match &event.payload {
            Payload::Case(case) => case,
            Payload::Survey(notice) => return encode_survey(event, notice),
            Payload::Joint(_)
            | Payload::Deadline(_)
            | Payload::Credit(_)
            | Payload::CreditMatch(_) => {
                let Some((key, body)) = notices::write_notice_json(&NOTICES, event) else {
                    unreachable!("a notice payload has a notice body")
                };
                return to_json(&notice_message(event, key, body));
            }
        };
        let message = Message {
            schema_version: SCHEMA_VERSION,
            message_id: event.message_id.as_str(),
            sender: SENDERS.code(event.source),
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
        to_json(&message)
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
    fn notice_tables_are_complete_and_distinct() {
        crate::notices::tests::dialect_tables_are_complete(&NOTICES);
    }

    #[test]
    fn code_tables_are_complete_and_distinct() {
        for bureau in BureauId::ALL {
            assert_eq!(SENDERS.parse(SENDERS.code(bureau), "x"), Ok(bureau));
            assert_eq!(SENDERS.code(bureau), bureau.as_str().to_ascii_uppercase());
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
        for kind in SurveyKind::ALL {
            assert_eq!(
                lookup(&SURVEY_KINDS, code_of(&SURVEY_KINDS, kind), "x"),
                Ok(kind)
            );
        }
        for name in FigureName::ALL {
            assert_eq!(lookup(&FIGURES, code_of(&FIGURES, name), "x"), Ok(name));
            assert!(FIGURE_UNITS.split(", ").any(|u| u == figure_unit(name)));
        }
        assert!(lookup(&STAGES, "construction_permit", "x").is_err());
        assert!(SENDERS.parse("transport", "x").is_err());
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

    fn survey_body() -> String {
        let path = crate::conformance::samples_dir(&Transport)
            .join("valid/survey-notice-planning-verification.json");
        std::fs::read_to_string(path).expect("valid survey sample")
    }

    #[test]
    fn survey_notice_sample_decodes_to_a_superseding_version() {
        let events = Transport
            .decode(survey_body().as_bytes(), FORMAT.media_type)
            .expect("valid");
        let event = &events[0];
        let notice = event.survey().expect("a survey event");
        assert_eq!(event.case_id.as_str(), "SV-2201-310115-04-01-123456-PV");
        assert_eq!(event.sequence, 2);
        assert_eq!(event.kind, schemas::EventKind::SurveySuperseded);
        assert_eq!(event.source, BureauId::Planning);
        assert_eq!(notice.result.figures.len(), 6);
        assert_eq!(
            notice.result.figures[4].quantity,
            FigureName::GreeningRatio.parse_value("35.5%").unwrap()
        );
        assert_eq!(notice.result.files[1].media_type, "image/vnd.dwg");
        assert_eq!(notice.result.files[1].size_bytes, 4_271_103);
    }

    #[test]
    fn survey_notice_collects_every_error() {
        let body = survey_body()
            .replace("\"PLANNING_VERIFICATION\"", "\"PV\"")
            .replace("\"version\": 2", "\"version\": \"2\"")
            .replace("\"2023-10-30\"", "\"20231030\"")
            .replace("\"LAND_AREA\"", "\"SITE_AREA\"")
            .replace("\"32150.6\"", "\"3.2公頃\"")
            .replace("\"79.95\", \"unit\": \"m\"", "\"79.95\", \"unit\": \"米\"")
            .replace("\"35.5\"", "\"11,6\"")
            .replace("\"120\"", "\"120套\"")
            .replace("\"application/pdf\"", "\"pdf\"")
            .replace("\"sizeBytes\": 4271103", "\"sizeBytes\": 4271103.0");
        let paths: Vec<_> = errors_of(&body).into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "/surveyNotice/surveyKind",
                "/surveyNotice/version",
                "/surveyNotice/surveyedOn",
                "/surveyNotice/figures/0/name",
                "/surveyNotice/figures/0/value",
                "/surveyNotice/figures/3/unit",
                "/surveyNotice/figures/4/value",
                "/surveyNotice/figures/5/value",
                "/surveyNotice/files/0/mediaType",
                "/surveyNotice/files/1/sizeBytes",
            ]
        );
    }

    #[test]
    fn survey_notice_structure_is_enforced() {
        let body = survey_body()
            .replace("\"surveyId\"", "\"remark\": \"x\", \"surveyId\"")
            .replace(
                "\"sizeBytes\": 18734592",
                "\"sizeBytes\": 18734592, \"url\": \"x\"",
            )
            .replace("\"files\": [", "\"files\": [1, ");
        let errors = errors_of(&body);
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/surveyNotice/remark",
                "/surveyNotice/files/0",
                "/surveyNotice/files/1/url"
            ]
        );
        assert_eq!(errors[1].field, F::SurveyFile);

        let value: Value = serde_json::from_str(&survey_body()).unwrap();
        let mut without_figures = value.clone();
        without_figures["surveyNotice"]
            .as_object_mut()
            .unwrap()
            .remove("figures");
        let errors = errors_of(&without_figures.to_string());
        assert_eq!(errors[0].path, "/surveyNotice/figures");
        assert_eq!(errors[0].problem, Problem::Missing);

        let mut both = value.clone();
        let case: Value = serde_json::from_str(&valid_body()).unwrap();
        both["case"] = case["case"].clone();
        let errors = errors_of(&both.to_string());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "/surveyNotice");

        let mut neither = value;
        neither.as_object_mut().unwrap().remove("surveyNotice");
        let errors = errors_of(&neither.to_string());
        assert_eq!(errors[0].path, "/case");
        assert_eq!(errors[0].problem, Problem::Missing);
    }

    #[test]
    fn a_first_version_is_published() {
        // A first version: version 1, superseding nothing (a later version without
        // `supersedes` is refused, see `conformance::check_canonical_rules`).
        let body = survey_body()
            .replace(
                "\"supersedes\": \"sv-1a2b3c4d5e6f708192a3b4c5d6e7f809\",\n",
                "",
            )
            .replace("\"version\": 2,", "\"version\": 1,");
        let events = Transport
            .decode(body.as_bytes(), FORMAT.media_type)
            .expect("valid");
        assert_eq!(events[0].kind, schemas::EventKind::SurveyPublished);
        let encoded = Transport.encode(&events[0]).unwrap();
        assert!(
            !String::from_utf8(encoded.body)
                .unwrap()
                .contains("supersedes")
        );
    }
}
