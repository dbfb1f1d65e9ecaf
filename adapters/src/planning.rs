//! Planning and Natural Resources (市規劃和自然資源局): XML in UTF-8, English element names,
//! RFC 3339 times with offset, two-digit status codes, units given as attributes.
//!
//! Specification: `schemas/bureaus/planning/message.xsd`. One document carries one case event:
//!
//! ```text
//! GhzyExchange[@version="1.0"]
//!   Header/MessageId, Header/Sender (department code), Header/SendTime (event time)
//!   Case/CaseNo, Sequence, ItemCode, StageCode (1-4), StatusCode (01-06), DistrictCode,
//!        Project/ProjectCode, Project/ProjectName, Applicant/Name, Applicant/CreditCode,
//!        SubmitTime, TimeLimit (working days), FloorArea[@unit]?, Investment[@unit]?
//! ```
//!
//! A survey notice (multi-survey-in-one, 多測合一) is another document of the same dialect,
//! recognised by its root element; the decoder dispatches on the root:
//!
//! ```text
//! GhzySurveyNotice[@version="1.0"]
//!   Header/MessageId, Header/Sender (department code), Header/SendTime (publication time)
//!   Survey/SurveyId (sv-…), Supersedes? (the survey id of the version this one corrects),
//!          ProjectCode, SurveyKindCode (GH-PV planning verification, GH-RE real estate,
//!          GH-CD civil-defense area, GH-GR greening), Agency/Name, Agency/CreditCode,
//!          Version (from 1; Supersedes is given exactly when Version > 1),
//!          SurveyedOn (YYYY-MM-DD),
//!          Figures/Figure[@code, @unit]* (text: a plain decimal; codes YDMJ land area,
//!            DSJZMJ / DXJZMJ floor area above / below ground, JZGD building height,
//!            LDMJ greening area, LDL greening ratio, RFMJ civil-defense area, FCTS property
//!            units; written in ㎡, m, % and 套, read in any spelling of the figure's unit),
//!          Files/File* (Name, MediaType, Sha256 as hex, SizeBytes)
//! ```
//!
//! The series id, sequence and event kind of a survey event are not written: they follow from
//! the notice (project, kind, version, supersedes).
//!
//! The gateway's joint-case and deadline notices (one-stop parallel approval, working-day clocks)
//! are two more documents of the dialect, `GhzyJointCase` (Header, JointCase) and
//! `GhzyDeadlineNotice` (Header, Deadline), spelt as `NOTICES` says and read and written by
//! `notices`: status codes 11/14/15/16/17 for the joint case (open, approved, rejected,
//! withdrawn, terminated), 00-06 for a branch (waiting, then the case codes), D1/D2 for a
//! deadline approaching or passed, `DueDate[@provisional]`, `true`/`false`.

use encoding_rs::UTF_8;
use schemas::CreditList;
use schemas::model::{Name, parse_sequence};
use schemas::quantity::{AreaUnit, MoneyUnit};
use schemas::survey::parse_media_type;
use schemas::text::clean;
use schemas::{
    Area, BureauCaseId, BureauId, CanonicalField as F, CaseStatus, CreditCode, District, Event,
    FigureName, FigureSet, FileRef, Item, MessageId, Money, NativeValue, Normalizer, Payload,
    Problem, ProjectCode, Sha256Hex, ShanghaiDate, ShanghaiTime, Stage, SurveyId, SurveyKind,
    SurveyNotice, SurveyNoticeParts, WorkingDays,
};

use crate::adapter::{Adapter, DecodeError, EncodeError, Encoded, NativeFormat, Syntax};
use crate::assemble::{CaseParts, one_event, survey_event};
use crate::notices::{self, DateStyle, Dialect, JsonScalars, Names};
use crate::vocabulary::{BureauSpelling, code_of, lookup};
use crate::xml::{self, Element, XmlWriter, decode_text};
use schemas::survey::parse_version;
use schemas::{BranchStatus, DeadlineState, JointStatus};

const ROOT: &str = "GhzyExchange";
const SURVEY_ROOT: &str = "GhzySurveyNotice";
const JOINT_ROOT: &str = "GhzyJointCase";
const DEADLINE_ROOT: &str = "GhzyDeadlineNotice";
const CREDIT_ROOT: &str = "GhzyCreditEntry";
const CREDIT_MATCH_ROOT: &str = "GhzyCreditMatch";

/// How the planning system spells the gateway's joint-case and deadline notices: element names
/// in its English style, two-digit status codes continuing its case codes, upper-case item
/// codes, ISO dates, `true`/`false`.
const NOTICES: Dialect = Dialect {
    names: Names {
        joint: "JointCase",
        deadline: "Deadline",
        joint_case_id: "JointCaseId",
        flow: "FlowCode",
        version: "Version",
        project_code: "ProjectCode",
        project_name: "ProjectName",
        window_case_id: "WindowCaseNo",
        status: "StatusCode",
        opened_on: "AcceptedOn",
        due: "DueDate",
        provisional: "provisional",
        calendar: "CalendarVersion",
        branches: Some("Branches"),
        branch: "Branch",
        bureau: "DeptCode",
        item: "ItemCode",
        required: "Required",
        case_id: "CaseNo",
        sequence: "Sequence",
        state: "DeadlineCode",
        working_days: "WorkingDays",
        credit: "CreditEntry",
        credit_match: "CreditMatch",
        entry_id: "EntryNo",
        list: "ListCode",
        subject_name: "SubjectName",
        credit_code: "CreditCode",
        measures: "Measures",
        issued_by: "IssuingDept",
        legal_basis: "LegalBasis",
        document_number: "DocumentNo",
        valid_from: "ValidFrom",
        valid_to: "ValidTo",
        removed_on: "RemovedOn",
        removal_reason: "RemovalReason",
        publisher: "PublisherCode",
    },
    bureaus: SENDERS,
    item_text: notices::item_code_upper,
    parse_item,
    joint_statuses: &[
        (JointStatus::Open, "11"),
        (JointStatus::Approved, "14"),
        (JointStatus::Rejected, "15"),
        (JointStatus::Withdrawn, "16"),
        (JointStatus::Terminated, "17"),
    ],
    branch_statuses: &[
        (BranchStatus::Waiting, "00"),
        (BranchStatus::Submitted, "01"),
        (BranchStatus::Accepted, "02"),
        (BranchStatus::SupplementRequested, "03"),
        (BranchStatus::Approved, "04"),
        (BranchStatus::Rejected, "05"),
        (BranchStatus::Withdrawn, "06"),
    ],
    states: &[
        (DeadlineState::Approaching, "D1"),
        (DeadlineState::Passed, "D2"),
    ],
    lists: &[
        (CreditList::Dishonest, "C1"),
        (CreditList::KeySupervision, "C2"),
        (CreditList::Red, "C3"),
    ],
    yes_no: &[(true, "true"), (false, "false")],
    dates: DateStyle::Iso,
    json: JsonScalars::Typed,
};
const FORMAT: NativeFormat = NativeFormat {
    media_type: "application/xml",
    syntax: Syntax::Xml { encoding: UTF_8 },
    batch: false,
    max_message_bytes: 256 * 1024,
};

/// The planning bureau's adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Planning;

/// How the format spells a bureau (from the shared names, `schemas::BureauId::names`).
const SENDERS: BureauSpelling = BureauSpelling::DepartmentCode;

const STATUSES: [(CaseStatus, &str); 6] = [
    (CaseStatus::Submitted, "01"),
    (CaseStatus::Accepted, "02"),
    (CaseStatus::SupplementRequested, "03"),
    (CaseStatus::Approved, "04"),
    (CaseStatus::Rejected, "05"),
    (CaseStatus::Withdrawn, "06"),
];

const STAGES: [(Stage, &str); 4] = [
    (Stage::LandUsePlanning, "1"),
    (Stage::EngineeringConstructionPermit, "2"),
    (Stage::ConstructionPermit, "3"),
    (Stage::CompletionAcceptance, "4"),
];

const SURVEY_KINDS: [(SurveyKind, &str); 4] = [
    (SurveyKind::PlanningVerification, "GH-PV"),
    (SurveyKind::RealEstate, "GH-RE"),
    (SurveyKind::CivilDefenseArea, "GH-CD"),
    (SurveyKind::Greening, "GH-GR"),
];

/// Figure codes: pinyin initials of the figures' names on the planning system's forms.
const FIGURES: [(FigureName, &str); 8] = [
    (FigureName::LandArea, "YDMJ"),               // 用地面積
    (FigureName::FloorAreaAboveGround, "DSJZMJ"), // 地上建築面積
    (FigureName::FloorAreaBelowGround, "DXJZMJ"), // 地下建築面積
    (FigureName::BuildingHeight, "JZGD"),         // 建築高度
    (FigureName::GreeningArea, "LDMJ"),           // 綠地面積
    (FigureName::GreeningRatio, "LDL"),           // 綠地率
    (FigureName::CivilDefenseArea, "RFMJ"),       // 人防面積
    (FigureName::PropertyUnits, "FCTS"),          // 房產套數
];

/// The unit a figure is written in: its canonical unit, spelled the planning way.
fn figure_unit(name: FigureName) -> &'static str {
    match name.unit_symbol() {
        "m2" => "㎡",
        "m" => "m",
        "%" => "%",
        _ => "套",
    }
}

/// A whole number of digits only, at most `max_digits` long.
fn parse_digits(text: &str, max_digits: usize) -> Result<u64, Problem> {
    let text = clean(text);
    if text.is_empty() || text.len() > max_digits || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::BadFormat {
            expected: "a whole number written in digits",
        });
    }
    text.parse().map_err(|_| Problem::OutOfRange {
        min: "0",
        max: "18446744073709551615",
    })
}

/// A unit attribute: present and not blank (the figure's parser judges the spelling).
fn parse_unit(text: &str) -> Result<String, Problem> {
    let unit = clean(text);
    if unit.is_empty() {
        return Err(Problem::Empty);
    }
    Ok(unit.into_owned())
}

/// Item codes: the canonical code in upper case, e.g. `CONSTRUCTION_PLANNING_PERMIT`.
fn parse_item(text: &str) -> Result<Item, Problem> {
    notices::parse_item_code_upper(text)
}

impl Planning {
    /// Checks the root's version attribute (the only attribute a root has).
    fn check_root(root: &Element, n: &mut Normalizer) {
        let path = format!("/{}", root.name);
        root.check_attributes(&path, &["version"], n);
        if root.attribute("version").map(clean).as_deref() != Some("1.0") {
            n.reject(
                F::Document,
                format!("{path}/@version"),
                root.attribute("version").unwrap_or(""),
                Problem::BadFormat {
                    expected: "version 1.0",
                },
            );
        }
    }

    /// The header both documents share: message id, sender and send time.
    fn decode_header(
        root: &str,
        header: &Element,
        n: &mut Normalizer,
    ) -> (Option<MessageId>, Option<BureauId>, Option<ShanghaiTime>) {
        header.check_children(
            &format!("/{root}/Header"),
            &["MessageId", "Sender", "SendTime"],
            &[],
            n,
        );
        let h = |name: &str| format!("/{root}/Header/{name}");
        let message_id = n.field(
            F::MessageId,
            || h("MessageId"),
            header.text_of("MessageId"),
            MessageId::parse,
        );
        let source = n.field(
            F::Source,
            || h("Sender"),
            header.text_of("Sender"),
            |t| SENDERS.parse(t, "department code"),
        );
        let occurred_at = n.field(
            F::OccurredAt,
            || h("SendTime"),
            header.text_of("SendTime"),
            ShanghaiTime::parse_rfc3339,
        );
        (message_id, source, occurred_at)
    }

    fn decode_case(root: &Element, n: &mut Normalizer) -> Option<Event> {
        root.check_children("/GhzyExchange", &["Header", "Case"], &[], n);
        Self::check_root(root, n);
        let header = root.child("Header");
        let case = root.child("Case");
        let (Some(header), Some(case)) = (header, case) else {
            n.reject(F::Document, "/GhzyExchange", "", Problem::Missing);
            return None;
        };
        let h = |name: &str| format!("/GhzyExchange/Header/{name}");
        let (message_id, source, occurred_at) = Self::decode_header(ROOT, header, n);

        const CASE_FIELDS: [&str; 12] = [
            "CaseNo",
            "Sequence",
            "ItemCode",
            "StageCode",
            "StatusCode",
            "DistrictCode",
            "Project",
            "Applicant",
            "SubmitTime",
            "TimeLimit",
            "FloorArea",
            "Investment",
        ];
        case.check_children("/GhzyExchange/Case", &CASE_FIELDS, &[], n);
        let c = |name: &str| format!("/GhzyExchange/Case/{name}");
        let case_id = n.field(
            F::CaseId,
            || c("CaseNo"),
            case.text_of("CaseNo"),
            BureauCaseId::parse,
        );
        let sequence = n.field(
            F::Sequence,
            || c("Sequence"),
            case.text_of("Sequence"),
            parse_sequence,
        );
        let item = n.field(
            F::Item,
            || c("ItemCode"),
            case.text_of("ItemCode"),
            parse_item,
        );
        let stage = n.field(
            F::Stage,
            || c("StageCode"),
            case.text_of("StageCode"),
            |t| lookup(&STAGES, t, "stage code (1-4)"),
        );
        let status = n.field(
            F::Status,
            || c("StatusCode"),
            case.text_of("StatusCode"),
            |t| lookup(&STATUSES, t, "status code (01-06)"),
        );
        let district = n.field(
            F::District,
            || c("DistrictCode"),
            case.text_of("DistrictCode"),
            District::parse_code,
        );

        let empty = Element::default();
        let project = case.child("Project").unwrap_or_else(|| {
            n.reject(F::ProjectCode, c("Project"), "", Problem::Missing);
            &empty
        });
        project.check_children(
            "/GhzyExchange/Case/Project",
            &["ProjectCode", "ProjectName"],
            &[],
            n,
        );
        let project_code = n.field(
            F::ProjectCode,
            || c("Project/ProjectCode"),
            project.text_of("ProjectCode"),
            ProjectCode::parse,
        );
        let project_name = n.field(
            F::ProjectName,
            || c("Project/ProjectName"),
            project.text_of("ProjectName"),
            Name::parse,
        );

        let applicant = case.child("Applicant").unwrap_or_else(|| {
            n.reject(F::ApplicantName, c("Applicant"), "", Problem::Missing);
            &empty
        });
        applicant.check_children(
            "/GhzyExchange/Case/Applicant",
            &["Name", "CreditCode"],
            &[],
            n,
        );
        let applicant_name = n.field(
            F::ApplicantName,
            || c("Applicant/Name"),
            applicant.text_of("Name"),
            Name::parse,
        );
        let credit_code = n.field(
            F::ApplicantCreditCode,
            || c("Applicant/CreditCode"),
            applicant.text_of("CreditCode"),
            CreditCode::parse,
        );

        let submitted_at = n.field(
            F::SubmittedAt,
            || c("SubmitTime"),
            case.text_of("SubmitTime"),
            ShanghaiTime::parse_rfc3339,
        );
        let time_limit = n.field(
            F::TimeLimit,
            || c("TimeLimit"),
            case.text_of("TimeLimit"),
            WorkingDays::parse,
        );
        let floor_area = case.child("FloorArea").map(|e| {
            let unit = e.attribute("unit").unwrap_or("");
            n.field(
                F::FloorArea,
                || c("FloorArea"),
                Some(&e.text),
                |t| Area::from_number_and_unit(t, unit),
            )
        });
        let investment = case.child("Investment").map(|e| {
            let unit = e.attribute("unit").unwrap_or("");
            n.field(
                F::Investment,
                || c("Investment"),
                Some(&e.text),
                |t| Money::from_number_and_unit(t, unit),
            )
        });
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
            floor_area: floor_area.map(|a| a.ok_or(())).transpose().ok(),
            investment: investment.map(|m| m.ok_or(())).transpose().ok(),
        };
        parts.into_event(n, || {
            NativeValue::new(h("SendTime"), header.text_of("SendTime").unwrap_or(""))
        })
    }

    fn decode_survey(root: &Element, n: &mut Normalizer) -> Option<Event> {
        const R: &str = "/GhzySurveyNotice";
        root.check_children(R, &["Header", "Survey"], &[], n);
        Self::check_root(root, n);
        let (Some(header), Some(survey)) = (root.child("Header"), root.child("Survey")) else {
            n.reject(F::Document, R, "", Problem::Missing);
            return None;
        };
        let (message_id, source, occurred_at) = Self::decode_header(SURVEY_ROOT, header, n);

        const SURVEY_FIELDS: [&str; 9] = [
            "SurveyId",
            "Supersedes",
            "ProjectCode",
            "SurveyKindCode",
            "Agency",
            "Version",
            "SurveyedOn",
            "Figures",
            "Files",
        ];
        survey.check_children("/GhzySurveyNotice/Survey", &SURVEY_FIELDS, &[], n);
        let s = |name: &str| format!("{R}/Survey/{name}");
        let survey_id = n.field(
            F::SurveyId,
            || s("SurveyId"),
            survey.text_of("SurveyId"),
            SurveyId::parse,
        );
        let supersedes = n.optional(
            F::SurveySupersedes,
            || s("Supersedes"),
            survey.text_of("Supersedes"),
            SurveyId::parse,
        );
        let project = n.field(
            F::SurveyProject,
            || s("ProjectCode"),
            survey.text_of("ProjectCode"),
            ProjectCode::parse,
        );
        let kind = n.field(
            F::SurveyKind,
            || s("SurveyKindCode"),
            survey.text_of("SurveyKindCode"),
            |t| {
                lookup(
                    &SURVEY_KINDS,
                    t,
                    "survey kind code (GH-PV, GH-RE, GH-CD, GH-GR)",
                )
            },
        );

        let empty = Element::default();
        let agency = survey.child("Agency").unwrap_or_else(|| {
            n.reject(F::SurveyAgencyName, s("Agency"), "", Problem::Missing);
            &empty
        });
        agency.check_children(
            "/GhzySurveyNotice/Survey/Agency",
            &["Name", "CreditCode"],
            &[],
            n,
        );
        let agency_name = n.field(
            F::SurveyAgencyName,
            || s("Agency/Name"),
            agency.text_of("Name"),
            Name::parse,
        );
        let agency_credit_code = n.field(
            F::SurveyAgencyCreditCode,
            || s("Agency/CreditCode"),
            agency.text_of("CreditCode"),
            CreditCode::parse,
        );
        let version = n.field(
            F::SurveyVersion,
            || s("Version"),
            survey.text_of("Version"),
            parse_version,
        );
        let surveyed_on = n.field(
            F::SurveyedOn,
            || s("SurveyedOn"),
            survey.text_of("SurveyedOn"),
            ShanghaiDate::parse_iso,
        );

        let figures_element = survey.child("Figures").unwrap_or_else(|| {
            n.reject(F::SurveyFigure, s("Figures"), "", Problem::Missing);
            &empty
        });
        figures_element.check_children("/GhzySurveyNotice/Survey/Figures", &[], &["Figure"], n);
        let mut figures = FigureSet::new();
        for (i, figure) in figures_element.children_named("Figure").enumerate() {
            let path = format!("{R}/Survey/Figures/Figure[{}]", i + 1);
            figure.check_children(&path, &[], &[], n);
            figure.check_attributes(&path, &["code", "unit"], n);
            let name = n.field(
                F::SurveyFigure,
                || format!("{path}/@code"),
                figure.attribute("code"),
                |t| lookup(&FIGURES, t, "figure code"),
            );
            let unit = n.field(
                F::SurveyFigure,
                || format!("{path}/@unit"),
                figure.attribute("unit"),
                parse_unit,
            );
            let quantity = match (name, unit) {
                (Some(name), Some(unit)) => n.field(
                    F::SurveyFigure,
                    || path.clone(),
                    Some(&figure.text),
                    |t| name.parse_value(&format!("{}{unit}", clean(t))),
                ),
                _ => None,
            };
            figures.push(n, name, quantity, || {
                NativeValue::new(
                    format!("{path}/@code"),
                    figure.attribute("code").unwrap_or(""),
                )
            });
        }

        let files_element = survey.child("Files").unwrap_or_else(|| {
            n.reject(F::SurveyFile, s("Files"), "", Problem::Missing);
            &empty
        });
        files_element.check_children("/GhzySurveyNotice/Survey/Files", &[], &["File"], n);
        let mut files = Vec::new();
        for (i, file) in files_element.children_named("File").enumerate() {
            let path = format!("{R}/Survey/Files/File[{}]", i + 1);
            file.check_children(&path, &["Name", "MediaType", "Sha256", "SizeBytes"], &[], n);
            let f = |name: &str| format!("{path}/{name}");
            let name = n.field(
                F::SurveyFile,
                || f("Name"),
                file.text_of("Name"),
                Name::parse,
            );
            let media_type = n.field(
                F::SurveyFile,
                || f("MediaType"),
                file.text_of("MediaType"),
                parse_media_type,
            );
            let sha256 = n.field(
                F::SurveyFile,
                || f("Sha256"),
                file.text_of("Sha256"),
                Sha256Hex::parse,
            );
            let size_bytes = n.field(
                F::SurveyFile,
                || f("SizeBytes"),
                file.text_of("SizeBytes"),
                |t| parse_digits(t, 20),
            );
            files.push((|| {
                Some(FileRef {
                    name: name?,
                    media_type: media_type?,
                    sha256: sha256?,
                    size_bytes: size_bytes?,
                })
            })());
        }

        let notice = SurveyNoticeParts {
            survey_id,
            supersedes,
            project,
            kind,
            agency_name,
            agency_credit_code,
            version,
            surveyed_on,
            figures,
            files: files.into_iter().collect(),
        }
        .build(n, || {
            NativeValue::new(s("Supersedes"), survey.text_of("Supersedes").unwrap_or(""))
        });
        survey_event(message_id, source, occurred_at, notice)
    }

    /// A joint-case or deadline notice: `Header` and the body the dialect names.
    fn decode_notice(root: &Element, n: &mut Normalizer) -> Option<Event> {
        let names = &NOTICES.names;
        let body_name = match root.name.as_str() {
            JOINT_ROOT => names.joint,
            CREDIT_ROOT => names.credit,
            CREDIT_MATCH_ROOT => names.credit_match,
            _ => names.deadline,
        };
        let path = format!("/{}", root.name);
        root.check_children(&path, &["Header", body_name], &[], n);
        Self::check_root(root, n);
        let (Some(header), Some(body)) = (root.child("Header"), root.child(body_name)) else {
            n.reject(F::Document, path, "", Problem::Missing);
            return None;
        };
        let (message_id, source, occurred_at) = Self::decode_header(&root.name, header, n);
        let header = notices::Header {
            message_id,
            source,
            occurred_at,
        };
        let body_path = format!("{path}/{body_name}");
        let read = match root.name.as_str() {
            JOINT_ROOT => notices::read_joint_xml,
            CREDIT_ROOT => notices::read_credit_xml,
            CREDIT_MATCH_ROOT => notices::read_credit_match_xml,
            _ => notices::read_deadline_xml,
        };
        read(&NOTICES, body, &body_path, &[], header, n)
    }

    fn encode_notice(event: &Event) -> Vec<u8> {
        let (root, body) = match &event.payload {
            Payload::Joint(_) => (JOINT_ROOT, NOTICES.names.joint),
            Payload::Credit(_) => (CREDIT_ROOT, NOTICES.names.credit),
            Payload::CreditMatch(_) => (CREDIT_MATCH_ROOT, NOTICES.names.credit_match),
            _ => (DEADLINE_ROOT, NOTICES.names.deadline),
        };
        let mut w = XmlWriter::new(UTF_8);
        w.open(root, &[("version", "1.0")]);
        Self::write_header(&mut w, event);
        w.open(body, &[]);
        match &event.payload {
            Payload::Joint(notice) => notices::write_joint_xml(&NOTICES, &mut w, notice),
            Payload::Deadline(notice) => {
                notices::write_deadline_xml(&NOTICES, &mut w, event, notice)
            }
            Payload::Credit(_) | Payload::CreditMatch(_) => {
                notices::write_credit_xml(&NOTICES, &mut w, event)
            }
            Payload::Case(_) | Payload::Survey(_) => {}
        }
        w.close(body);
        w.close(root);
        w.finish()
    }

    fn write_header(w: &mut XmlWriter, event: &Event) {
        w.open("Header", &[]);
        w.leaf("MessageId", event.message_id.as_str());
        w.leaf("Sender", SENDERS.code(event.source));
        w.leaf("SendTime", &event.occurred_at.to_rfc3339());
        w.close("Header");
    }

    fn encode_survey(event: &Event, notice: &SurveyNotice) -> Vec<u8> {
        let result = &notice.result;
        let mut w = XmlWriter::new(UTF_8);
        w.open(SURVEY_ROOT, &[("version", "1.0")]);
        Self::write_header(&mut w, event);
        w.open("Survey", &[]);
        w.leaf("SurveyId", notice.survey_id.as_str());
        w.leaf_opt(
            "Supersedes",
            notice.supersedes.as_ref().map(SurveyId::as_str),
        );
        w.leaf("ProjectCode", result.project.as_str());
        w.leaf("SurveyKindCode", code_of(&SURVEY_KINDS, result.kind));
        w.open("Agency", &[]);
        w.leaf("Name", result.agency.name.as_str());
        w.leaf("CreditCode", result.agency.credit_code.as_str());
        w.close("Agency");
        w.leaf("Version", &result.version.to_string());
        w.leaf("SurveyedOn", &result.surveyed_on.to_string());
        w.open("Figures", &[]);
        for figure in &result.figures {
            w.leaf_with(
                "Figure",
                &[
                    ("code", code_of(&FIGURES, figure.name)),
                    ("unit", figure_unit(figure.name)),
                ],
                &FigureName::value_text(&figure.quantity),
            );
        }
        w.close("Figures");
        w.open("Files", &[]);
        for file in &result.files {
            w.open("File", &[]);
            w.leaf("Name", file.name.as_str());
            w.leaf("MediaType", &file.media_type);
            w.leaf("Sha256", file.sha256.as_str());
            w.leaf("SizeBytes", &file.size_bytes.to_string());
            w.close("File");
        }
        w.close("Files");
        w.close("Survey");
        w.close(SURVEY_ROOT);
        w.finish()
    }
}

impl Adapter for Planning {
    fn bureau(&self) -> BureauId {
        BureauId::Planning
    }

    fn format(&self) -> NativeFormat {
        FORMAT
    }

    fn decode(&self, body: &[u8], content_type: &str) -> Result<Vec<Event>, DecodeError> {
        let text = decode_text(&FORMAT, body, content_type)?;
        let root = xml::parse(&text)?;
        let decode_document = match root.name.as_str() {
            ROOT => Self::decode_case,
            SURVEY_ROOT => Self::decode_survey,
            JOINT_ROOT | DEADLINE_ROOT | CREDIT_ROOT | CREDIT_MATCH_ROOT => Self::decode_notice,
            _ => {
                return Err(DecodeError::Malformed {
                    path: format!("/{}", root.name),
                    message: format!(
                        "root element must be {ROOT}, {SURVEY_ROOT}, {JOINT_ROOT}, {DEADLINE_ROOT}, {CREDIT_ROOT} or {CREDIT_MATCH_ROOT}"
                    ),
                });
            }
        };
        one_event(|n| decode_document(&root, n))
    }

    fn write(&self, event: &Event) -> Result<Encoded, EncodeError> {
        let case = match &event.payload {
            Payload::Case(case) => case,
            Payload::Survey(notice) => {
                return Ok(Encoded {
                    content_type: FORMAT.media_type.to_owned(),
                    body: Self::encode_survey(event, notice),
                });
            }
            Payload::Joint(_)
            | Payload::Deadline(_)
            | Payload::Credit(_)
            | Payload::CreditMatch(_) => {
                return Ok(Encoded {
                    content_type: FORMAT.media_type.to_owned(),
                    body: Self::encode_notice(event),
                });
            }
        };
        let mut w = XmlWriter::new(UTF_8);
        w.open(ROOT, &[("version", "1.0")]);
        Self::write_header(&mut w, event);
        w.open("Case", &[]);
        w.leaf("CaseNo", event.case_id.as_str());
        w.leaf("Sequence", &event.sequence.to_string());
        w.leaf("ItemCode", &case.item.code().to_ascii_uppercase());
        w.leaf("StageCode", code_of(&STAGES, case.stage));
        w.leaf("StatusCode", code_of(&STATUSES, case.status));
        w.leaf("DistrictCode", case.district.code());
        w.open("Project", &[]);
        w.leaf("ProjectCode", case.project.code.as_str());
        w.leaf("ProjectName", case.project.name.as_str());
        w.close("Project");
        w.open("Applicant", &[]);
        w.leaf("Name", case.applicant.name.as_str());
        w.leaf("CreditCode", case.applicant.credit_code.as_str());
        w.close("Applicant");
        w.leaf("SubmitTime", &case.submitted_at.to_rfc3339());
        w.leaf("TimeLimit", &case.time_limit_working_days.get().to_string());
        if let Some(area) = case.floor_area {
            w.leaf_with(
                "FloorArea",
                &[("unit", "㎡")],
                &area.in_unit(AreaUnit::SquareMetre).to_string(),
            );
        }
        if let Some(money) = case.investment {
            w.leaf_with(
                "Investment",
                &[("unit", "萬元")],
                &money.in_unit(MoneyUnit::TenThousandYuan).to_string(),
            );
        }
        w.close("Case");
        w.close(ROOT);
        Ok(Encoded {
            content_type: FORMAT.media_type.to_owned(),
            body: w.finish(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance() {
        crate::conformance::check(&Planning);
    }

    #[test]
    fn notice_tables_are_complete_and_distinct() {
        crate::notices::tests::dialect_tables_are_complete(&NOTICES);
    }

    #[test]
    fn survey_code_tables_are_complete_and_distinct() {
        for kind in SurveyKind::ALL {
            assert_eq!(
                lookup(&SURVEY_KINDS, code_of(&SURVEY_KINDS, kind), "k"),
                Ok(kind)
            );
        }
        for name in FigureName::ALL {
            assert_eq!(lookup(&FIGURES, code_of(&FIGURES, name), "f"), Ok(name));
        }
    }

    fn survey_sample() -> String {
        let path =
            crate::conformance::samples_dir(&Planning).join("valid/survey-notice-real-estate.xml");
        std::fs::read_to_string(path).expect("sample")
    }

    fn errors_of(body: &str) -> Vec<(String, &'static str)> {
        match Planning.decode(body.as_bytes(), "application/xml") {
            Err(DecodeError::Invalid(errors)) => errors
                .into_iter()
                .map(|e| (e.path, e.field.as_str()))
                .collect(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn survey_sample_decodes_to_a_survey_event() {
        let events = Planning
            .decode(survey_sample().as_bytes(), "application/xml")
            .expect("decodes");
        let notice = events[0].survey().expect("a survey event");
        assert_eq!(events[0].case_id.as_str(), "SV-2201-310115-04-01-123456-RE");
        assert_eq!(events[0].kind, schemas::EventKind::SurveyPublished);
        assert_eq!(notice.result.figures.len(), 4);
        assert_eq!(notice.result.files[1].media_type, "image/vnd.dwg");
    }

    #[test]
    fn survey_errors_are_all_reported() {
        let body = survey_sample()
            .replace("GH-RE", "GH-XX")
            .replace(
                "<Version>1</Version>",
                "<Version>0</Version><Remark>x</Remark>",
            )
            .replace("unit=\"套\">612", "unit=\"套\">612.5")
            .replace(
                "<Figure code=\"DXJZMJ\" unit=\"㎡\">",
                "<Figure code=\"YDMJ\" unit=\"㎡\" note=\"x\">",
            )
            .replace(
                "<SizeBytes>8421376</SizeBytes>",
                "<SizeBytes>-1</SizeBytes>",
            );
        let errors = errors_of(&body);
        let s = "/GhzySurveyNotice/Survey";
        for (path, field) in [
            (format!("{s}/SurveyKindCode"), "survey.kind"),
            (format!("{s}/Version"), "survey.version"),
            (format!("{s}/Remark"), "document"),
            (format!("{s}/Figures/Figure[4]"), "survey.figures"),
            (format!("{s}/Figures/Figure[3]/@code"), "survey.figures"),
            (format!("{s}/Figures/Figure[3]/@note"), "document"),
            (format!("{s}/Files/File[1]/SizeBytes"), "survey.files"),
        ] {
            assert!(
                errors.iter().any(|(p, f)| *p == path && *f == field),
                "no error at {path} ({field}): {errors:#?}"
            );
        }
    }

    #[test]
    fn a_correction_names_what_it_supersedes() {
        let body = survey_sample().replace("<Version>1</Version>", "<Version>2</Version>");
        assert_eq!(
            errors_of(&body),
            vec![(
                "/GhzySurveyNotice/Survey/Supersedes".to_owned(),
                "survey.version"
            )]
        );
    }

    #[test]
    fn a_figure_needs_its_unit() {
        let body = survey_sample().replace("unit=\"套\"", "unit=\" \"");
        assert_eq!(
            errors_of(&body),
            vec![(
                "/GhzySurveyNotice/Survey/Figures/Figure[4]/@unit".to_owned(),
                "survey.figures"
            )]
        );
    }
}
