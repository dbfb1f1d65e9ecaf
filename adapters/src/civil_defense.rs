//! Civil Defense Office (市民防辦): a batch format. One UTF-8 XML document carries many case
//! events and survey notices, written in an attribute-heavy style with the canonical codes
//! (bureau ids, item, stage, status, survey kind and figure codes in snake_case), RFC 3339 times
//! with offset `+08:00`, and units given as attributes.
//!
//! Specification: `schemas/bureaus/civil_defense/message.xsd`. A batch holds 1 to 10,000
//! entries, case `record`s and `survey` notices interleaved in any order (the order is the
//! order of the events); `count` must equal the number of entries of both kinds. The batch id
//! names the delivery only: it is not part of any canonical event.
//!
//! ```text
//! CivilDefenseBatch[@batchId, @count]
//!   (record | survey)                                                     (1..=10000 times)
//!   record[@messageId, @sender (bureau id), @eventTime, @caseNo, @seq]
//!     item, stage, status (canonical codes), district (3101xx, 3101LG, 3101HG),
//!     project[@code, @name], applicant[@name, @creditCode],
//!     submitted (RFC 3339), timeLimit (working days),
//!     area[@unit]? (㎡, 平方米, m2, m², 公頃, 公顷), investment[@unit]? (元, 萬元, 万元, 億元, 亿元)
//!   survey[@messageId, @sender, @eventTime, @surveyId, @supersedes?, @version]
//!     project[@code], kind (planning_verification, real_estate, civil_defense_area, greening),
//!     agency[@name, @creditCode], surveyedOn (YYYY-MM-DD),
//!     figure[@name, @unit]*   (value in the figure's one unit: m2, m, percent or count)
//!     file[@name, @mediaType, @sha256, @sizeBytes]*
//! ```
//!
//! A survey notice (multi-survey-in-one, 多測合一) is one published version of a project's
//! survey result: `surveyId` is the version's id (`sv-` and 32 hex digits), `supersedes` the id
//! of the version it corrects, `version` counts from 1. Its children come in the order shown;
//! figures and files keep their order. Figure names are the canonical snake_case names
//! (`land_area`, `floor_area_above_ground`, `floor_area_below_ground`, `building_height`,
//! `greening_area`, `greening_ratio`, `civil_defense_area`, `property_units`), each with its one
//! unit: areas in `m2`, the height in `m`, the ratio in `percent`, property units as a `count`,
//! e.g. `<figure name="greening_ratio" unit="percent">35.5</figure>`; numbers are plain
//! decimals (no separators, no decimal comma), counts whole. The event's case id, sequence and
//! kind are not written: they follow from the notice (`SV-<project>-<kind>`, the version, and
//! `survey.superseded` when it supersedes another version, else `survey.published`).
//!
//! Decoding is all-or-nothing: when any entry is invalid the whole batch is refused, with every
//! error of every entry, each at a path such as
//! `/CivilDefenseBatch/record[2]/applicant/@creditCode` or
//! `/CivilDefenseBatch/survey[1]/figure[2]` (entries and repeated children counted from 1 among
//! their same-named siblings). Unknown attributes and elements are refused, and so is a message
//! id given to two entries of a batch. Encoding one event writes a batch of one entry whose
//! batch id is the event's message id.
//!
//! The gateway's joint-case and deadline notices are two more kinds of entry, `joint` and
//! `deadline`, with the same header attributes (`messageId`, `sender`, `eventTime`) and the notice
//! as children named as `NOTICES` says: canonical snake_case codes, `branches/branch*`,
//! `due[@provisional]` with `true`/`false`.

use std::collections::HashSet;

use encoding_rs::UTF_8;
use schemas::CreditList;
use schemas::model::{Name, parse_sequence};
use schemas::quantity::{AreaUnit, MoneyUnit};
use schemas::survey::parse_media_type;
use schemas::text::clean;
use schemas::{
    Area, BureauCaseId, BureauId, CanonicalField as F, CaseStatus, CreditCode, District, Event,
    FigureName, FigureSet, FigureValue, FileRef, Item, MessageId, Money, NativeValue, Normalizer,
    Payload, Problem, ProjectCode, Sha256Hex, ShanghaiDate, ShanghaiTime, Stage, SurveyId,
    SurveyKind, SurveyNotice, SurveyNoticeParts, WorkingDays,
};

use crate::adapter::{Adapter, DecodeError, EncodeError, Encoded, NativeFormat, Syntax};
use crate::assemble::{CaseParts, survey_event};
use crate::notices::{self, DateStyle, Dialect, JsonScalars, Names};
use crate::vocabulary::{BureauSpelling, code_of, lookup};
use crate::xml::{self, Element, XmlWriter, decode_text, truncate};
use schemas::survey::{parse_size, parse_version};
use schemas::{BranchStatus, DeadlineState, JointStatus};

const ROOT: &str = "CivilDefenseBatch";
const ROOT_PATH: &str = "/CivilDefenseBatch";
const RECORD: &str = "record";
const SURVEY: &str = "survey";
const JOINT: &str = "joint";
const DEADLINE: &str = "deadline";
const CREDIT: &str = "creditEntry";
const CREDIT_MATCH: &str = "creditMatch";
/// Every kind of entry a batch holds.
const ENTRIES: [&str; 6] = [RECORD, SURVEY, JOINT, DEADLINE, CREDIT, CREDIT_MATCH];
/// The attributes of a joint or deadline entry: the header every entry carries.
const NOTICE_ATTRIBUTES: [&str; 3] = ["messageId", "sender", "eventTime"];

/// How the format spells a bureau (from the shared names, `schemas::BureauId::names`).
const BUREAUS: BureauSpelling = BureauSpelling::Id;

/// How the office's batches carry the gateway's joint-case and deadline notices: `joint` and
/// `deadline` entries among the records, the header as attributes, canonical codes in
/// snake_case, ISO dates, `true`/`false`.
const NOTICES: Dialect = Dialect {
    names: Names {
        joint: JOINT,
        deadline: DEADLINE,
        joint_case_id: "jointCaseId",
        flow: "flow",
        version: "version",
        project_code: "projectCode",
        project_name: "projectName",
        window_case_id: "windowCaseNo",
        status: "status",
        opened_on: "acceptedOn",
        due: "due",
        provisional: "provisional",
        calendar: "calendar",
        branches: Some("branches"),
        branch: "branch",
        bureau: "bureau",
        item: "item",
        required: "required",
        case_id: "caseNo",
        sequence: "seq",
        state: "state",
        working_days: "workingDays",
        credit: CREDIT,
        credit_match: CREDIT_MATCH,
        entry_id: "entryNo",
        list: "list",
        subject_name: "subjectName",
        credit_code: "creditCode",
        measures: "measures",
        issued_by: "issuedBy",
        legal_basis: "legalBasis",
        document_number: "documentNo",
        valid_from: "validFrom",
        valid_to: "validTo",
        removed_on: "removedOn",
        removal_reason: "removalReason",
        publisher: "publisher",
    },
    bureaus: BUREAUS,
    item_text: notices::item_code,
    parse_item: Item::parse_code,
    joint_statuses: &[
        (JointStatus::Open, "open"),
        (JointStatus::Approved, "approved"),
        (JointStatus::Rejected, "rejected"),
        (JointStatus::Withdrawn, "withdrawn"),
        (JointStatus::Terminated, "terminated"),
    ],
    branch_statuses: &[
        (BranchStatus::Waiting, "waiting"),
        (BranchStatus::Submitted, "submitted"),
        (BranchStatus::Accepted, "accepted"),
        (BranchStatus::SupplementRequested, "supplement_requested"),
        (BranchStatus::Approved, "approved"),
        (BranchStatus::Rejected, "rejected"),
        (BranchStatus::Withdrawn, "withdrawn"),
    ],
    states: &[
        (DeadlineState::Approaching, "approaching"),
        (DeadlineState::Passed, "passed"),
    ],
    lists: &[
        (CreditList::Dishonest, "dishonest"),
        (CreditList::KeySupervision, "keySupervision"),
        (CreditList::Red, "red"),
    ],
    yes_no: &[(true, "true"), (false, "false")],
    dates: DateStyle::Iso,
    json: JsonScalars::Typed,
};
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

/// Survey kinds, by their canonical (serde) names.
const SURVEY_KINDS: [(SurveyKind, &str); 4] = [
    (SurveyKind::PlanningVerification, "planning_verification"),
    (SurveyKind::RealEstate, "real_estate"),
    (SurveyKind::CivilDefenseArea, "civil_defense_area"),
    (SurveyKind::Greening, "greening"),
];

/// Figure names, by their canonical (serde) names.
const FIGURES: [(FigureName, &str); 8] = [
    (FigureName::LandArea, "land_area"),
    (FigureName::FloorAreaAboveGround, "floor_area_above_ground"),
    (FigureName::FloorAreaBelowGround, "floor_area_below_ground"),
    (FigureName::BuildingHeight, "building_height"),
    (FigureName::GreeningArea, "greening_area"),
    (FigureName::GreeningRatio, "greening_ratio"),
    (FigureName::CivilDefenseArea, "civil_defense_area"),
    (FigureName::PropertyUnits, "property_units"),
];

const SURVEY_ATTRIBUTES: [&str; 6] = [
    "messageId",
    "sender",
    "eventTime",
    "surveyId",
    "supersedes",
    "version",
];
const SURVEY_FIELDS: [&str; 4] = ["project", "kind", "agency", "surveyedOn"];
const SURVEY_REPEATED: [&str; 2] = ["figure", "file"];
/// The order of a survey's children (figures and files may repeat).
const SURVEY_ORDER: [&str; 6] = ["project", "kind", "agency", "surveyedOn", "figure", "file"];
const FILE_ATTRIBUTES: [&str; 4] = ["name", "mediaType", "sha256", "sizeBytes"];

/// The one unit a figure is written in: `m2`, `m`, `percent` or `count`.
fn figure_unit(name: FigureName) -> &'static str {
    match name.unit_symbol() {
        "m2" => "m2",
        "m" => "m",
        "%" => "percent",
        _ => "count",
    }
}

/// The unit of a canonical figure value, in the format's spelling.
fn value_unit(value: &FigureValue) -> &'static str {
    match value {
        FigureValue::Area(_) => "m2",
        FigureValue::Length(_) => "m",
        FigureValue::Percent(_) => "percent",
        FigureValue::Count(_) => "count",
    }
}

/// A figure's number, in the figure's unit: a plain decimal, or digits only for a count.
fn parse_figure(name: FigureName, text: &str) -> Result<FigureValue, Problem> {
    let text = clean(text);
    if figure_unit(name) == "count" && !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::BadFormat {
            expected: "a whole number written in digits",
        });
    }
    name.parse_canonical(&text)
}

/// A bureau id as the project spells it (`civil_defense`).
fn parse_bureau(text: &str) -> Result<BureauId, Problem> {
    static EXPECTED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let vocabulary = EXPECTED.get_or_init(|| format!("bureau id ({})", BUREAUS.all()));
    BUREAUS.parse(text, vocabulary)
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

/// Refuses a survey child that comes before one the order puts ahead of it (the schema's
/// sequence: project, kind, agency, surveyedOn, figures, files).
fn check_order(survey: &Element, path: &str, n: &mut Normalizer) {
    let mut highest = 0;
    for child in &survey.children {
        let Some(rank) = SURVEY_ORDER.iter().position(|name| *name == child.name) else {
            continue; // unknown: already refused
        };
        if rank < highest {
            n.reject(
                F::Document,
                format!("{path}/{}", child.name),
                truncate(&child.text),
                Problem::Inconsistent {
                    reason: "out of order: project, kind, agency, surveyedOn, figures, files",
                },
            );
        }
        highest = highest.max(rank);
    }
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
        let parts = CaseParts {
            message_id,
            source,
            case_id,
            sequence,
            occurred_at,
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
        parts.into_event(n, || {
            NativeValue::new(a("eventTime"), record.attribute("eventTime").unwrap_or(""))
        })
    }

    /// Decodes one survey notice; `p` is its path, e.g. `/CivilDefenseBatch/survey[1]`.
    fn decode_survey(survey: &Element, p: &str, n: &mut Normalizer) -> Option<Event> {
        survey.check_attributes(p, &SURVEY_ATTRIBUTES, n);
        check_no_text(survey, p, n);
        survey.check_children(p, &SURVEY_FIELDS, &SURVEY_REPEATED, n);
        check_order(survey, p, n);
        let a = |name: &str| format!("{p}/@{name}");
        let c = |name: &str| format!("{p}/{name}");

        let message_id = n.field(
            F::MessageId,
            || a("messageId"),
            survey.attribute("messageId"),
            MessageId::parse,
        );
        let source = n.field(
            F::Source,
            || a("sender"),
            survey.attribute("sender"),
            parse_bureau,
        );
        let occurred_at = n.field(
            F::OccurredAt,
            || a("eventTime"),
            survey.attribute("eventTime"),
            ShanghaiTime::parse_rfc3339,
        );
        let survey_id = n.field(
            F::SurveyId,
            || a("surveyId"),
            survey.attribute("surveyId"),
            SurveyId::parse,
        );
        let supersedes = n.optional(
            F::SurveySupersedes,
            || a("supersedes"),
            survey.attribute("supersedes"),
            SurveyId::parse,
        );
        let version = n.field(
            F::SurveyVersion,
            || a("version"),
            survey.attribute("version"),
            parse_version,
        );

        let empty = Element::default();
        let project_path = c("project");
        let project = survey.child("project").unwrap_or_else(|| {
            n.reject(F::SurveyProject, &project_path, "", Problem::Missing);
            &empty
        });
        check_field(project, &project_path, &["code"], n);
        check_no_text(project, &project_path, n);
        let project_code = n.field(
            F::SurveyProject,
            || format!("{project_path}/@code"),
            project.attribute("code"),
            ProjectCode::parse,
        );

        for name in ["kind", "surveyedOn"] {
            if let Some(element) = survey.child(name) {
                check_field(element, &c(name), &[], n);
            }
        }
        let kind = n.field(
            F::SurveyKind,
            || c("kind"),
            survey.text_of("kind"),
            |t| {
                lookup(
                    &SURVEY_KINDS,
                    t,
                    "survey kind (planning_verification, real_estate, civil_defense_area, greening)",
                )
            },
        );

        let agency_path = c("agency");
        let agency = survey.child("agency").unwrap_or_else(|| {
            n.reject(F::SurveyAgencyName, &agency_path, "", Problem::Missing);
            &empty
        });
        check_field(agency, &agency_path, &["name", "creditCode"], n);
        check_no_text(agency, &agency_path, n);
        let agency_name = n.field(
            F::SurveyAgencyName,
            || format!("{agency_path}/@name"),
            agency.attribute("name"),
            Name::parse,
        );
        let agency_credit_code = n.field(
            F::SurveyAgencyCreditCode,
            || format!("{agency_path}/@creditCode"),
            agency.attribute("creditCode"),
            CreditCode::parse,
        );

        let surveyed_on = n.field(
            F::SurveyedOn,
            || c("surveyedOn"),
            survey.text_of("surveyedOn"),
            ShanghaiDate::parse_iso,
        );

        let mut figures = FigureSet::new();
        for (i, figure) in survey.children_named("figure").enumerate() {
            let path = format!("{p}/figure[{}]", i + 1);
            let (name, quantity) = Self::decode_figure(figure, &path, n);
            figures.push(n, name, quantity, || {
                NativeValue::new(
                    format!("{path}/@name"),
                    figure.attribute("name").unwrap_or(""),
                )
            });
        }
        let files: Vec<Option<FileRef>> = survey
            .children_named("file")
            .enumerate()
            .map(|(i, file)| Self::decode_file(file, &format!("{p}/file[{}]", i + 1), n))
            .collect();

        let notice = SurveyNoticeParts {
            survey_id,
            supersedes,
            project: project_code,
            kind,
            agency_name,
            agency_credit_code,
            version,
            surveyed_on,
            figures,
            files: files.into_iter().collect(),
        }
        .build(n, || {
            NativeValue::new(
                a("supersedes"),
                survey.attribute("supersedes").unwrap_or(""),
            )
        });
        survey_event(message_id, source, occurred_at, notice)
    }

    /// Decodes `<figure name=".." unit="..">number</figure>`; `path` is e.g. `.../figure[2]`.
    /// The name is returned even when the value is rejected, so a repeated name is found.
    fn decode_figure(
        figure: &Element,
        path: &str,
        n: &mut Normalizer,
    ) -> (Option<FigureName>, Option<FigureValue>) {
        check_field(figure, path, &["name", "unit"], n);
        let name = n.field(
            F::SurveyFigure,
            || format!("{path}/@name"),
            figure.attribute("name"),
            |t| lookup(&FIGURES, t, "figure name"),
        );
        let unit = figure.attribute("unit");
        if unit.is_none() {
            n.reject(
                F::SurveyFigure,
                format!("{path}/@unit"),
                "",
                Problem::Missing,
            );
        }
        let (Some(known), Some(unit)) = (name, unit) else {
            return (name, None);
        };
        let expected = figure_unit(known);
        if clean(unit) != expected {
            n.reject(
                F::SurveyFigure,
                format!("{path}/@unit"),
                truncate(unit),
                Problem::UnknownUnit { allowed: expected },
            );
            return (name, None);
        }
        let quantity = n.field(
            F::SurveyFigure,
            || path.to_owned(),
            Some(&figure.text),
            |t| parse_figure(known, t),
        );
        (name, quantity)
    }

    /// Decodes `<file name=".." mediaType=".." sha256=".." sizeBytes=".."/>`.
    fn decode_file(file: &Element, path: &str, n: &mut Normalizer) -> Option<FileRef> {
        check_field(file, path, &FILE_ATTRIBUTES, n);
        check_no_text(file, path, n);
        let a = |name: &str| format!("{path}/@{name}");
        let name = n.field(
            F::SurveyFile,
            || a("name"),
            file.attribute("name"),
            Name::parse,
        );
        let media_type = n.field(
            F::SurveyFile,
            || a("mediaType"),
            file.attribute("mediaType"),
            parse_media_type,
        );
        let sha256 = n.field(
            F::SurveyFile,
            || a("sha256"),
            file.attribute("sha256"),
            Sha256Hex::parse,
        );
        let size_bytes = n.field(
            F::SurveyFile,
            || a("sizeBytes"),
            file.attribute("sizeBytes"),
            parse_size,
        );
        Some(FileRef {
            name: name?,
            media_type: media_type?,
            sha256: sha256?,
            size_bytes: size_bytes?,
        })
    }

    /// Decodes the batch envelope and every entry (records and surveys, in document order),
    /// collecting every error.
    fn decode_entries(root: &Element, n: &mut Normalizer) -> Vec<Event> {
        root.check_attributes(ROOT_PATH, &["batchId", "count"], n);
        check_no_text(root, ROOT_PATH, n);
        root.check_children(ROOT_PATH, &[], &ENTRIES, n);
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
        let entries: Vec<&Element> = root
            .children
            .iter()
            .filter(|c| ENTRIES.contains(&c.name.as_str()))
            .collect();
        if count.is_some_and(|count| count != entries.len()) {
            n.reject(
                F::Document,
                format!("{ROOT_PATH}/@count"),
                root.attribute("count").unwrap_or(""),
                Problem::Inconsistent {
                    reason: "count is not the number of records and surveys",
                },
            );
        }
        if entries.is_empty() {
            n.reject(
                F::Document,
                format!("{ROOT_PATH}/{RECORD}"),
                "",
                Problem::Missing,
            );
            return Vec::new();
        }
        if entries.len() > MAX_RECORDS {
            n.reject(
                F::Document,
                ROOT_PATH,
                entries.len().to_string(),
                Problem::OutOfRange {
                    min: "1",
                    max: "10000",
                },
            );
            return Vec::new();
        }
        let mut events = Vec::with_capacity(entries.len());
        let mut seen = HashSet::with_capacity(entries.len());
        let (mut records, mut surveys, mut joints, mut deadlines) = (0, 0, 0, 0);
        let (mut credits, mut matches) = (0, 0);
        for entry in entries {
            let mut entry_n = Normalizer::new();
            let (path, event) =
                if [JOINT, DEADLINE, CREDIT, CREDIT_MATCH].contains(&entry.name.as_str()) {
                    let counter = match entry.name.as_str() {
                        JOINT => &mut joints,
                        CREDIT => &mut credits,
                        CREDIT_MATCH => &mut matches,
                        _ => &mut deadlines,
                    };
                    *counter += 1;
                    let path = format!("{ROOT_PATH}/{}[{counter}]", entry.name);
                    let event = Self::decode_notice(entry, &path, &mut entry_n);
                    (path, event)
                } else if entry.name == SURVEY {
                    surveys += 1;
                    let path = format!("{ROOT_PATH}/{SURVEY}[{surveys}]");
                    let event = Self::decode_survey(entry, &path, &mut entry_n);
                    (path, event)
                } else {
                    records += 1;
                    let path = format!("{ROOT_PATH}/{RECORD}[{records}]");
                    let event = Self::decode_record(entry, &path, &mut entry_n);
                    (path, event)
                };
            match entry_n.finish(|| event) {
                Ok(event) => {
                    if !seen.insert(event.message_id.clone()) {
                        n.reject(
                            F::MessageId,
                            format!("{path}/@messageId"),
                            event.message_id.as_str(),
                            Problem::Inconsistent {
                                reason: "message id given to another entry of the batch",
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

    /// A joint or deadline entry: the header as attributes, the notice as children.
    fn decode_notice(entry: &Element, p: &str, n: &mut Normalizer) -> Option<Event> {
        let a = |name: &str| format!("{p}/@{name}");
        let header = notices::Header {
            message_id: n.field(
                F::MessageId,
                || a("messageId"),
                entry.attribute("messageId"),
                MessageId::parse,
            ),
            source: n.field(
                F::Source,
                || a("sender"),
                entry.attribute("sender"),
                parse_bureau,
            ),
            occurred_at: n.field(
                F::OccurredAt,
                || a("eventTime"),
                entry.attribute("eventTime"),
                ShanghaiTime::parse_rfc3339,
            ),
        };
        let read = match entry.name.as_str() {
            JOINT => notices::read_joint_xml,
            CREDIT => notices::read_credit_xml,
            CREDIT_MATCH => notices::read_credit_match_xml,
            _ => notices::read_deadline_xml,
        };
        read(&NOTICES, entry, p, &NOTICE_ATTRIBUTES, header, n)
    }

    /// Writes one joint or deadline entry.
    fn write_notice(w: &mut XmlWriter, event: &Event) {
        let event_time = event.occurred_at.to_rfc3339();
        let name = match &event.payload {
            Payload::Joint(_) => JOINT,
            Payload::Credit(_) => CREDIT,
            Payload::CreditMatch(_) => CREDIT_MATCH,
            _ => DEADLINE,
        };
        w.open(
            name,
            &[
                ("messageId", event.message_id.as_str()),
                ("sender", event.source.as_str()),
                ("eventTime", &event_time),
            ],
        );
        match &event.payload {
            Payload::Joint(notice) => notices::write_joint_xml(&NOTICES, w, notice),
            Payload::Deadline(notice) => notices::write_deadline_xml(&NOTICES, w, event, notice),
            Payload::Credit(_) | Payload::CreditMatch(_) => {
                notices::write_credit_xml(&NOTICES, w, event)
            }
            Payload::Case(_) | Payload::Survey(_) => {}
        }
        w.close(name);
    }

    /// Writes one survey notice entry.
    fn write_survey(w: &mut XmlWriter, event: &Event, notice: &SurveyNotice) {
        let event_time = event.occurred_at.to_rfc3339();
        let version = notice.result.version.to_string();
        let mut attributes = vec![
            ("messageId", event.message_id.as_str()),
            ("sender", event.source.as_str()),
            ("eventTime", event_time.as_str()),
            ("surveyId", notice.survey_id.as_str()),
        ];
        if let Some(supersedes) = &notice.supersedes {
            attributes.push(("supersedes", supersedes.as_str()));
        }
        attributes.push(("version", &version));
        w.open(SURVEY, &attributes);
        let result = &notice.result;
        w.leaf_with("project", &[("code", result.project.as_str())], "");
        w.leaf("kind", code_of(&SURVEY_KINDS, result.kind));
        w.leaf_with(
            "agency",
            &[
                ("name", result.agency.name.as_str()),
                ("creditCode", result.agency.credit_code.as_str()),
            ],
            "",
        );
        w.leaf("surveyedOn", &result.surveyed_on.to_string());
        for figure in &result.figures {
            w.leaf_with(
                "figure",
                &[
                    ("name", code_of(&FIGURES, figure.name)),
                    ("unit", value_unit(&figure.quantity)),
                ],
                &FigureName::value_text(&figure.quantity),
            );
        }
        for file in &result.files {
            let size = file.size_bytes.to_string();
            w.leaf_with(
                "file",
                &[
                    ("name", file.name.as_str()),
                    ("mediaType", file.media_type.as_str()),
                    ("sha256", file.sha256.as_str()),
                    ("sizeBytes", &size),
                ],
                "",
            );
        }
        w.close(SURVEY);
    }

    /// Writes one batch of records and surveys, in the events' order.
    fn write_batch(batch_id: &str, events: &[Event]) -> Encoded {
        let mut w = XmlWriter::new(UTF_8);
        let count = events.len().to_string();
        w.open(ROOT, &[("batchId", batch_id), ("count", &count)]);
        for event in events {
            let case = match &event.payload {
                Payload::Case(case) => case,
                Payload::Survey(notice) => {
                    Self::write_survey(&mut w, event, notice);
                    continue;
                }
                Payload::Joint(_)
                | Payload::Deadline(_)
                | Payload::Credit(_)
                | Payload::CreditMatch(_) => {
                    Self::write_notice(&mut w, event);
                    continue;
                }
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
        let events = Self::decode_entries(&root, &mut n);
        n.finish(|| Some(events)).map_err(DecodeError::Invalid)
    }

    fn write(&self, event: &Event) -> Result<Encoded, EncodeError> {
        Ok(Self::write_batch(
            event.message_id.as_str(),
            std::slice::from_ref(event),
        ))
    }

    /// The office's own batch document: a pull feed of civil defense reads natively.
    fn encode_batch(&self, batch_id: &str, events: &[Event]) -> Result<Encoded, EncodeError> {
        for event in events {
            crate::adapter::check_rules(BureauId::CivilDefense, event)?;
        }
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
    fn notice_tables_are_complete_and_distinct() {
        crate::notices::tests::dialect_tables_are_complete(&NOTICES);
        for bureau in BureauId::ALL {
            assert_eq!(parse_bureau(BUREAUS.code(bureau)), Ok(bureau));
        }
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
        for (kind, code) in SURVEY_KINDS {
            assert_eq!(serde_json::to_value(kind).ok(), Some(code.into()));
        }
        for (name, code) in FIGURES {
            assert_eq!(serde_json::to_value(name).ok(), Some(code.into()));
        }
        assert!(
            SurveyKind::ALL
                .iter()
                .all(|k| SURVEY_KINDS.iter().any(|(t, _)| t == k))
        );
        assert!(
            FigureName::ALL
                .iter()
                .all(|f| FIGURES.iter().any(|(t, _)| t == f))
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

    /// Case and survey events interleaved, as the pull feed sends them.
    fn mixed_events(seed: u64) -> Vec<Event> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..12)
            .map(|i| {
                if i % 3 == 1 {
                    crate::sample::survey_event(&mut rng)
                } else {
                    let bureau = BureauId::ALL[rng.usize(..BureauId::ALL.len())];
                    crate::sample::case_event(&mut rng, bureau)
                }
            })
            .collect()
    }

    #[test]
    fn a_mixed_batch_round_trips_in_order() {
        let events = mixed_events(21);
        let encoded = CivilDefense
            .encode_batch("feed-42", &events)
            .expect("mixed batch encodes");
        let body = String::from_utf8(encoded.body.clone()).expect("UTF-8");
        assert!(body.contains("count=\"12\""), "{body}");
        assert_eq!(body.matches("<survey ").count(), 4);
        let decoded = CivilDefense
            .decode(&encoded.body, &encoded.content_type)
            .expect("mixed batch decodes");
        assert_eq!(decoded, events);
        assert!(decoded[1].survey().is_some() && decoded[0].case().is_some());
    }

    #[test]
    fn survey_errors_are_listed_at_their_paths() {
        let events = mixed_events(8);
        let body = CivilDefense::write_batch("B-2", &events).body;
        let body = String::from_utf8(body).expect("UTF-8");
        // Break the second figure of the first survey and the first file of the second one.
        let first = body.find("<survey ").expect("a survey");
        let second_figure = body[first..]
            .match_indices("<figure ")
            .nth(1)
            .map(|(i, _)| first + i)
            .expect("two figures");
        let close = second_figure + body[second_figure..].find('>').expect("tag end");
        let mut broken = body.clone();
        broken.replace_range(close + 1..close + 2, "x");
        let second = broken[first + 1..]
            .find("<survey ")
            .expect("a second survey")
            + first
            + 1;
        let sha = second + broken[second..].find("sha256=\"").expect("a file") + 8;
        broken.replace_range(sha..sha + 1, "g");
        let broken = broken.replacen("<kind>", "<kind>housing", 1).replacen(
            "<surveyedOn>",
            "<remark/><surveyedOn>",
            1,
        );
        let errors = errors_of(&broken);
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        for want in [
            "/CivilDefenseBatch/survey[1]/figure[2]",
            "/CivilDefenseBatch/survey[2]/file[1]/@sha256",
            "/CivilDefenseBatch/survey[1]/kind",
            "/CivilDefenseBatch/survey[1]/remark",
        ] {
            assert!(paths.contains(&want), "no error at {want}: {paths:#?}");
        }
        let figure = errors
            .iter()
            .find(|e| e.path == "/CivilDefenseBatch/survey[1]/figure[2]")
            .expect("figure error");
        assert_eq!(figure.field, F::SurveyFigure);
    }

    #[test]
    fn survey_figures_take_their_one_unit_and_plain_numbers() {
        let mut rng = fastrand::Rng::with_seed(4);
        let event = crate::sample::survey_event(&mut rng);
        let body =
            String::from_utf8(CivilDefense.encode(&event).expect("encodes").body).expect("UTF-8");
        // Figures come before the files: insert a new one ahead of the first file.
        let at = body
            .find("<file ")
            .or_else(|| body.find("</survey>"))
            .expect("a survey");
        let with = |figure: &str| {
            let mut text = body.clone();
            text.insert_str(at, figure);
            text
        };
        for (figure, problem) in [
            (
                "<figure name=\"greening_ratio\" unit=\"percent\">11,6</figure>",
                "decimal comma",
            ),
            (
                "<figure name=\"land_area\" unit=\"公顷\">1.2</figure>",
                "other unit",
            ),
            (
                "<figure name=\"property_units\" unit=\"count\">120套</figure>",
                "measure word",
            ),
            (
                "<figure name=\"building_height\" unit=\"m\">99.555</figure>",
                "too precise",
            ),
            (
                "<figure name=\"plot_ratio\" unit=\"count\">2</figure>",
                "unknown figure",
            ),
        ] {
            let errors = errors_of(&with(figure));
            assert!(
                errors.iter().any(
                    |e| e.path.starts_with("/CivilDefenseBatch/survey[1]/figure[")
                        && e.field == F::SurveyFigure
                ),
                "{problem}: {errors:#?}"
            );
        }
        // Children out of order: a figure after the files.
        if body.contains("<file ") {
            let errors = errors_of(&body.replace(
                "</survey>",
                "<figure name=\"land_area\" unit=\"m2\">1</figure></survey>",
            ));
            assert!(
                errors
                    .iter()
                    .any(|e| matches!(e.problem, Problem::Inconsistent { .. }))
            );
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
