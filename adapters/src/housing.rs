//! Housing Administration (市房屋管理局): a SOAP 1.1 web service. Each message is a SOAP envelope
//! in UTF-8 (`text/xml`, operation named by the `SOAPAction` header), a WS-style header block
//! naming the sender and the message id, and one operation element in the body, in the
//! administration's namespace. Times are `xs:dateTime` with the `+08:00` offset, areas are square
//! metres and money is yuan, each fixed by the element's name (`FloorAreaSqm`, `InvestmentYuan`),
//! not written beside the number.
//!
//! Specification: `schemas/bureaus/housing/message.xsd`.
//!
//! ```text
//! soap:Envelope (soap = http://schemas.xmlsoap.org/soap/envelope/, prefix free)
//!   soap:Header/ExchangeHeader (urn:fgj.sh.gov.cn:exchange:1):
//!     From (department code, SHFGJ ...), MessageID, Timestamp (event time)
//!   soap:Body/ one of, in the same namespace:
//!     CaseReport:   CaseNo, Seq, ItemCode (canonical code), StageCode (S1-S4),
//!                   Status (SUBMITTED ... WITHDRAWN), DistrictCode (GB/T 2260), ProjectCode,
//!                   ProjectName, ApplicantName, ApplicantUSCC, SubmittedAt,
//!                   PromisedDays (working days), FloorAreaSqm?, InvestmentYuan?
//!     SurveyShare:  SurveyId, SupersedesId?, ProjectCode, SurveyType (FC real estate, HS
//!                   planning verification, RF civil-defense area, LH greening), SurveyorName,
//!                   SurveyorUSCC, Version, SurveyDate (xs:date),
//!                   Indicators/Indicator[@name]* (a plain number in the figure's canonical
//!                   unit: m², m, %, units), Attachments/Attachment* (FileName, MimeType, Sha256,
//!                   Bytes)
//!     JointApproval, DeadlineAlert: the gateway's notices, as `NOTICES` spells them
//! ```
//!
//! The `SOAPAction` of a message is `"urn:fgj.sh.gov.cn:exchange:1#<operation>"`; a request that
//! names another operation than its body is refused (`Adapter::message_headers`). Every element
//! of the header block and the body is in the administration's namespace, whatever prefix the
//! sender gives it.

use encoding_rs::UTF_8;
use schemas::CreditList;
use schemas::model::{Name, parse_sequence};
use schemas::quantity::{AreaUnit, MoneyUnit};
use schemas::survey::{parse_media_type, parse_size, parse_version};
use schemas::{
    Area, BranchStatus, BureauCaseId, BureauId, CanonicalField as F, CaseStatus, CreditCode,
    DeadlineState, District, Event, FigureName, FigureSet, FileRef, Item, JointStatus, MessageId,
    Money, NativeValue, Normalizer, Payload, Problem, ProjectCode, Sha256Hex, ShanghaiDate,
    ShanghaiTime, Stage, SurveyId, SurveyKind, SurveyNotice, SurveyNoticeParts, WorkingDays,
};

use crate::adapter::{Adapter, DecodeError, EncodeError, Encoded, NativeFormat, Syntax};
use crate::assemble::{CaseParts, one_event, survey_event};
use crate::notices::{self, DateStyle, Dialect, JsonScalars, Names};
use crate::vocabulary::{BureauSpelling, code_of, lookup};
use crate::xml::{self, Element, Fields, XmlWriter, decode_text, truncate};

const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const NS: &str = "urn:fgj.sh.gov.cn:exchange:1";
const CASE: &str = "CaseReport";
const SURVEY: &str = "SurveyShare";
const JOINT: &str = "JointApproval";
const DEADLINE: &str = "DeadlineAlert";
const CREDIT: &str = "CreditListing";
const CREDIT_MATCH: &str = "CreditMatchAlert";
const HEADER_BLOCK: &str = "ExchangeHeader";

const FORMAT: NativeFormat = NativeFormat {
    media_type: "text/xml",
    syntax: Syntax::Xml { encoding: UTF_8 },
    batch: false,
    max_message_bytes: 256 * 1024,
};

/// How the format spells a bureau (from the shared names, `schemas::BureauId::names`).
const SENDERS: BureauSpelling = BureauSpelling::DepartmentCode;

const STAGES: [(Stage, &str); 4] = [
    (Stage::LandUsePlanning, "S1"),
    (Stage::EngineeringConstructionPermit, "S2"),
    (Stage::ConstructionPermit, "S3"),
    (Stage::CompletionAcceptance, "S4"),
];

const STATUSES: [(CaseStatus, &str); 6] = [
    (CaseStatus::Submitted, "SUBMITTED"),
    (CaseStatus::Accepted, "ACCEPTED"),
    (CaseStatus::SupplementRequested, "SUPPLEMENT"),
    (CaseStatus::Approved, "APPROVED"),
    (CaseStatus::Rejected, "REJECTED"),
    (CaseStatus::Withdrawn, "WITHDRAWN"),
];

const SURVEY_KINDS: [(SurveyKind, &str); 4] = [
    (SurveyKind::PlanningVerification, "HS"),
    (SurveyKind::RealEstate, "FC"),
    (SurveyKind::CivilDefenseArea, "RF"),
    (SurveyKind::Greening, "LH"),
];

const FIGURES: [(FigureName, &str); 8] = [
    (FigureName::LandArea, "LandArea"),
    (FigureName::FloorAreaAboveGround, "FloorAreaAboveGround"),
    (FigureName::FloorAreaBelowGround, "FloorAreaBelowGround"),
    (FigureName::BuildingHeight, "BuildingHeight"),
    (FigureName::GreeningArea, "GreenArea"),
    (FigureName::GreeningRatio, "GreenRatio"),
    (FigureName::CivilDefenseArea, "CivilDefenseArea"),
    (FigureName::PropertyUnits, "PropertyUnits"),
];

/// The gateway's joint-case and deadline notices, spelt in the service's style.
const NOTICES: Dialect = Dialect {
    names: Names {
        joint: JOINT,
        deadline: DEADLINE,
        joint_case_id: "JointCaseId",
        flow: "Flow",
        version: "Revision",
        project_code: "ProjectCode",
        project_name: "ProjectName",
        window_case_id: "WindowCaseNo",
        status: "Status",
        opened_on: "AcceptedDate",
        due: "DueDate",
        provisional: "provisional",
        calendar: "Calendar",
        branches: Some("Branches"),
        branch: "Branch",
        bureau: "Department",
        item: "ItemCode",
        required: "Mandatory",
        case_id: "CaseNo",
        sequence: "Seq",
        state: "AlertType",
        working_days: "WorkingDays",
        credit: CREDIT,
        credit_match: CREDIT_MATCH,
        entry_id: "EntryNo",
        list: "ListType",
        subject_name: "SubjectName",
        credit_code: "CreditCode",
        measures: "Measures",
        issued_by: "IssuingAuthority",
        legal_basis: "LegalBasis",
        document_number: "DocumentNo",
        valid_from: "EffectiveFrom",
        valid_to: "EffectiveTo",
        removed_on: "RemovalDate",
        removal_reason: "RemovalReason",
        publisher: "Publisher",
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
        (BranchStatus::SupplementRequested, "SUPPLEMENT"),
        (BranchStatus::Approved, "APPROVED"),
        (BranchStatus::Rejected, "REJECTED"),
        (BranchStatus::Withdrawn, "WITHDRAWN"),
    ],
    states: &[
        (DeadlineState::Approaching, "APPROACHING"),
        (DeadlineState::Passed, "OVERDUE"),
    ],
    lists: &[
        (CreditList::Dishonest, "BLACKLIST"),
        (CreditList::KeySupervision, "KEY_SUPERVISION"),
        (CreditList::Red, "REDLIST"),
    ],
    yes_no: &[(true, "1"), (false, "0")],
    dates: DateStyle::Iso,
    json: JsonScalars::Typed,
};

/// The Housing Administration's adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Housing;

/// Rejects the topmost elements of `element`'s subtree outside the administration's namespace
/// (what they hold is out of it too, and would only repeat the error), and with `leaves`, any
/// attribute of a leaf but an `Indicator`'s `name`: a value is its element's text.
fn check_elements(element: &Element, path: &str, leaves: bool, n: &mut Normalizer) {
    if element.namespace.as_deref() != Some(NS) {
        n.reject(
            F::Document,
            path,
            element.namespace.clone().unwrap_or_default(),
            Problem::BadFormat {
                expected: "an element in the namespace urn:fgj.sh.gov.cn:exchange:1",
            },
        );
        return;
    }
    if leaves && element.children.is_empty() {
        let allowed: &[&str] = if element.name == "Indicator" {
            &["name"]
        } else {
            &[]
        };
        element.check_attributes(path, allowed, n);
    }
    for (i, child) in element.children.iter().enumerate() {
        // Repeated elements are named by their place, as their readers name them.
        let path = if ["Indicator", "Attachment"].contains(&child.name.as_str()) {
            let place = element.children[..i]
                .iter()
                .filter(|c| c.name == child.name)
                .count();
            format!("{path}/{}[{}]", child.name, place + 1)
        } else {
            format!("{path}/{}", child.name)
        };
        check_elements(child, &path, leaves, n);
    }
}

/// The operation a message performs: its body element's name.
fn operation(payload: &Payload) -> &'static str {
    match payload {
        Payload::Case(_) => CASE,
        Payload::Survey(_) => SURVEY,
        Payload::Joint(_) => JOINT,
        Payload::Deadline(_) => DEADLINE,
        Payload::Credit(_) => CREDIT,
        Payload::CreditMatch(_) => CREDIT_MATCH,
    }
}

/// The `SOAPAction` of a message: the namespace and its operation, quoted (SOAP 1.1 §6.1.1).
fn action(payload: &Payload) -> &'static str {
    match payload {
        Payload::Case(_) => "\"urn:fgj.sh.gov.cn:exchange:1#CaseReport\"",
        Payload::Survey(_) => "\"urn:fgj.sh.gov.cn:exchange:1#SurveyShare\"",
        Payload::Joint(_) => "\"urn:fgj.sh.gov.cn:exchange:1#JointApproval\"",
        Payload::Deadline(_) => "\"urn:fgj.sh.gov.cn:exchange:1#DeadlineAlert\"",
        Payload::Credit(_) => "\"urn:fgj.sh.gov.cn:exchange:1#CreditListing\"",
        Payload::CreditMatch(_) => "\"urn:fgj.sh.gov.cn:exchange:1#CreditMatchAlert\"",
    }
}

fn decode_envelope(root: &Element, n: &mut Normalizer) -> Option<Event> {
    let r = format!("/{}", root.name);
    for (element, path) in [(root, r.clone())]
        .into_iter()
        .chain(root.children.iter().map(|c| (c, format!("{r}/{}", c.name))))
    {
        if element.namespace.as_deref() != Some(SOAP) {
            n.reject(F::Document, path, "", Problem::BadFormat { expected: SOAP });
        }
    }
    root.check_children(&r, &["Header", "Body"], &[], n);
    root.check_attributes(&r, &[], n);
    let envelope = Fields {
        element: root,
        path: r.into(),
    };
    let header = envelope.child("Header", F::Document, n);
    header.element.check_attributes(&header.path, &[], n);
    header
        .element
        .check_children(&header.path, &[HEADER_BLOCK], &[], n);
    let block = header.child(HEADER_BLOCK, F::Document, n);
    block.element.check_attributes(&block.path, &[], n);
    block
        .element
        .check_children(&block.path, &["From", "MessageID", "Timestamp"], &[], n);
    let body = envelope.child("Body", F::Document, n);
    body.element.check_attributes(&body.path, &[], n);
    let operations = [CASE, SURVEY, JOINT, DEADLINE, CREDIT, CREDIT_MATCH];
    body.element.check_children(&body.path, &operations, &[], n);
    let Some(operation) = body
        .element
        .children
        .iter()
        .find(|c| operations.contains(&c.name.as_str()))
    else {
        n.reject(F::Document, body.path, "", Problem::Missing);
        return None;
    };
    for other in body
        .element
        .children
        .iter()
        .filter(|c| !std::ptr::eq(*c, operation))
    {
        n.reject(
            F::Document,
            format!("{}/{}", body.path, other.name),
            truncate(&other.text),
            Problem::Inconsistent {
                reason: "a SOAP Body holds one operation",
            },
        );
    }
    check_elements(block.element, &block.path, true, n);
    let head = notices::Header {
        message_id: block.read(n, F::MessageId, "MessageID", MessageId::parse),
        source: block.read(n, F::Source, "From", |t| {
            SENDERS.parse(t, "department code")
        }),
        occurred_at: block.read(n, F::OccurredAt, "Timestamp", ShanghaiTime::parse_rfc3339),
    };
    let at = Fields {
        element: operation,
        path: format!("{}/{}", body.path, operation.name).into(),
    };
    // The notices' reader checks the attributes of its own elements.
    let notice = [JOINT, DEADLINE, CREDIT, CREDIT_MATCH].contains(&operation.name.as_str());
    check_elements(operation, &at.path, !notice, n);
    if !notice {
        at.element.check_attributes(&at.path, &[], n);
    }
    match operation.name.as_str() {
        CASE => decode_case(&at, head, &block, n),
        SURVEY => decode_survey(&at, head, n),
        JOINT => notices::read_joint_xml(&NOTICES, operation, &at.path, &[], head, n),
        CREDIT => notices::read_credit_xml(&NOTICES, operation, &at.path, &[], head, n),
        CREDIT_MATCH => notices::read_credit_match_xml(&NOTICES, operation, &at.path, &[], head, n),
        _ => notices::read_deadline_xml(&NOTICES, operation, &at.path, &[], head, n),
    }
}

fn decode_case(
    c: &Fields,
    head: notices::Header,
    block: &Fields,
    n: &mut Normalizer,
) -> Option<Event> {
    c.element.check_children(
        &c.path,
        &[
            "CaseNo",
            "Seq",
            "ItemCode",
            "StageCode",
            "Status",
            "DistrictCode",
            "ProjectCode",
            "ProjectName",
            "ApplicantName",
            "ApplicantUSCC",
            "SubmittedAt",
            "PromisedDays",
            "FloorAreaSqm",
            "InvestmentYuan",
        ],
        &[],
        n,
    );
    let parts = CaseParts {
        message_id: head.message_id,
        source: head.source,
        occurred_at: head.occurred_at,
        case_id: c.read(n, F::CaseId, "CaseNo", BureauCaseId::parse),
        sequence: c.read(n, F::Sequence, "Seq", parse_sequence),
        item: c.read(n, F::Item, "ItemCode", Item::parse_code),
        stage: c.read(n, F::Stage, "StageCode", |t| {
            lookup(&STAGES, t, "stage code (S1-S4)")
        }),
        status: c.read(n, F::Status, "Status", |t| {
            lookup(&STATUSES, t, "case status")
        }),
        district: c.read(n, F::District, "DistrictCode", District::parse_code),
        project_code: c.read(n, F::ProjectCode, "ProjectCode", ProjectCode::parse),
        project_name: c.read(n, F::ProjectName, "ProjectName", Name::parse),
        applicant_name: c.read(n, F::ApplicantName, "ApplicantName", Name::parse),
        credit_code: c.read(
            n,
            F::ApplicantCreditCode,
            "ApplicantUSCC",
            CreditCode::parse,
        ),
        submitted_at: c.read(
            n,
            F::SubmittedAt,
            "SubmittedAt",
            ShanghaiTime::parse_rfc3339,
        ),
        time_limit: c.read(n, F::TimeLimit, "PromisedDays", WorkingDays::parse),
        floor_area: c.read_optional(n, F::FloorArea, "FloorAreaSqm", |t| {
            Area::from_number_and_unit(t, "㎡")
        }),
        investment: c.read_optional(n, F::Investment, "InvestmentYuan", |t| {
            Money::from_number_and_unit(t, "元")
        }),
    };
    let timestamp = block.element.text_of("Timestamp").unwrap_or("");
    parts.into_event(n, || {
        NativeValue::new(format!("{}/Timestamp", block.path), timestamp)
    })
}

fn decode_survey(s: &Fields, head: notices::Header, n: &mut Normalizer) -> Option<Event> {
    s.element.check_children(
        &s.path,
        &[
            "SurveyId",
            "SupersedesId",
            "ProjectCode",
            "SurveyType",
            "SurveyorName",
            "SurveyorUSCC",
            "Version",
            "SurveyDate",
            "Indicators",
            "Attachments",
        ],
        &[],
        n,
    );
    let indicators = s.child("Indicators", F::SurveyFigure, n);
    indicators
        .element
        .check_attributes(&indicators.path, &[], n);
    indicators
        .element
        .check_children(&indicators.path, &[], &["Indicator"], n);
    let mut figures = FigureSet::new();
    for (i, figure) in indicators.element.children_named("Indicator").enumerate() {
        let path = format!("{}/Indicator[{}]", indicators.path, i + 1);
        figure.check_children(&path, &[], &[], n);
        let name = n.field(
            F::SurveyFigure,
            || format!("{path}/@name"),
            figure.attribute("name"),
            |t| lookup(&FIGURES, t, "indicator name"),
        );
        let value = name.and_then(|name| {
            n.field(
                F::SurveyFigure,
                || path.clone(),
                Some(&figure.text),
                |t| name.parse_value(&format!("{}{}", schemas::text::clean(t), unit(name))),
            )
        });
        figures.push(n, name, value, || {
            NativeValue::new(
                format!("{path}/@name"),
                figure.attribute("name").unwrap_or(""),
            )
        });
    }
    let attachments = s.child("Attachments", F::SurveyFile, n);
    attachments
        .element
        .check_attributes(&attachments.path, &[], n);
    attachments
        .element
        .check_children(&attachments.path, &[], &["Attachment"], n);
    let mut files = Vec::new();
    for (i, file) in attachments.element.children_named("Attachment").enumerate() {
        let f = Fields {
            element: file,
            path: format!("{}/Attachment[{}]", attachments.path, i + 1).into(),
        };
        file.check_attributes(&f.path, &[], n);
        file.check_children(
            &f.path,
            &["FileName", "MimeType", "Sha256", "Bytes"],
            &[],
            n,
        );
        let name = f.read(n, F::SurveyFile, "FileName", Name::parse);
        let media_type = f.read(n, F::SurveyFile, "MimeType", parse_media_type);
        let sha256 = f.read(n, F::SurveyFile, "Sha256", Sha256Hex::parse);
        let size_bytes = f.read(n, F::SurveyFile, "Bytes", parse_size);
        files.push((|| {
            Some(FileRef {
                name: name?,
                media_type: media_type?,
                sha256: sha256?,
                size_bytes: size_bytes?,
            })
        })());
    }
    let supersedes_text = s.element.text_of("SupersedesId").unwrap_or("");
    let notice = SurveyNoticeParts {
        survey_id: s.read(n, F::SurveyId, "SurveyId", SurveyId::parse),
        supersedes: s.read_optional(n, F::SurveySupersedes, "SupersedesId", SurveyId::parse),
        project: s.read(n, F::SurveyProject, "ProjectCode", ProjectCode::parse),
        kind: s.read(n, F::SurveyKind, "SurveyType", |t| {
            lookup(&SURVEY_KINDS, t, "survey type (FC, HS, RF, LH)")
        }),
        agency_name: s.read(n, F::SurveyAgencyName, "SurveyorName", Name::parse),
        agency_credit_code: s.read(
            n,
            F::SurveyAgencyCreditCode,
            "SurveyorUSCC",
            CreditCode::parse,
        ),
        version: s.read(n, F::SurveyVersion, "Version", parse_version),
        surveyed_on: s.read(n, F::SurveyedOn, "SurveyDate", ShanghaiDate::parse_iso),
        figures,
        files: files.into_iter().collect(),
    }
    .build(n, || {
        NativeValue::new(format!("{}/SupersedesId", s.path), supersedes_text)
    });
    survey_event(head.message_id, head.source, head.occurred_at, notice)
}

/// The canonical unit a figure's number is in, spelt as `FigureName::parse_value` reads it.
fn unit(name: FigureName) -> &'static str {
    match name.unit_symbol() {
        "m2" => "㎡",
        "count" => "套",
        other => other,
    }
}

fn write_survey(w: &mut XmlWriter, notice: &SurveyNotice) {
    let result = &notice.result;
    w.leaf("SurveyId", notice.survey_id.as_str());
    w.leaf_opt(
        "SupersedesId",
        notice.supersedes.as_ref().map(SurveyId::as_str),
    );
    w.leaf("ProjectCode", result.project.as_str());
    w.leaf("SurveyType", code_of(&SURVEY_KINDS, result.kind));
    w.leaf("SurveyorName", result.agency.name.as_str());
    w.leaf("SurveyorUSCC", result.agency.credit_code.as_str());
    w.leaf("Version", &result.version.to_string());
    w.leaf("SurveyDate", &result.surveyed_on.to_string());
    w.open("Indicators", &[]);
    for figure in &result.figures {
        let value = FigureName::value_text(&figure.quantity);
        w.leaf_with(
            "Indicator",
            &[("name", code_of(&FIGURES, figure.name))],
            &value,
        );
    }
    w.close("Indicators");
    w.open("Attachments", &[]);
    for file in &result.files {
        w.open("Attachment", &[]);
        w.leaf("FileName", file.name.as_str());
        w.leaf("MimeType", &file.media_type);
        w.leaf("Sha256", file.sha256.as_str());
        w.leaf("Bytes", &file.size_bytes.to_string());
        w.close("Attachment");
    }
    w.close("Attachments");
}

impl Adapter for Housing {
    fn bureau(&self) -> BureauId {
        BureauId::Housing
    }

    fn format(&self) -> NativeFormat {
        FORMAT
    }

    fn decode(&self, body: &[u8], content_type: &str) -> Result<Vec<Event>, DecodeError> {
        let text = decode_text(&FORMAT, body, content_type)?;
        let root = xml::parse_namespaced(&text, &[SOAP, NS])?;
        if root.name != "Envelope" {
            return Err(DecodeError::Malformed {
                path: format!("/{}", truncate(&root.name)),
                message: "the root element must be a SOAP 1.1 Envelope".into(),
            });
        }
        one_event(|n| decode_envelope(&root, n))
    }

    fn write(&self, event: &Event) -> Result<Encoded, EncodeError> {
        let mut w = XmlWriter::new(UTF_8);
        w.open("soap:Envelope", &[("xmlns:soap", SOAP)]);
        w.open("soap:Header", &[]);
        w.open(HEADER_BLOCK, &[("xmlns", NS)]);
        w.leaf("From", SENDERS.code(event.source));
        w.leaf("MessageID", event.message_id.as_str());
        w.leaf("Timestamp", &event.occurred_at.to_rfc3339());
        w.close(HEADER_BLOCK);
        w.close("soap:Header");
        w.open("soap:Body", &[]);
        let operation = operation(&event.payload);
        w.open(operation, &[("xmlns", NS)]);
        match &event.payload {
            Payload::Case(case) => {
                w.leaf("CaseNo", event.case_id.as_str());
                w.leaf("Seq", &event.sequence.to_string());
                w.leaf("ItemCode", case.item.code());
                w.leaf("StageCode", code_of(&STAGES, case.stage));
                w.leaf("Status", code_of(&STATUSES, case.status));
                w.leaf("DistrictCode", case.district.code());
                w.leaf("ProjectCode", case.project.code.as_str());
                w.leaf("ProjectName", case.project.name.as_str());
                w.leaf("ApplicantName", case.applicant.name.as_str());
                w.leaf("ApplicantUSCC", case.applicant.credit_code.as_str());
                w.leaf("SubmittedAt", &case.submitted_at.to_rfc3339());
                w.leaf(
                    "PromisedDays",
                    &case.time_limit_working_days.get().to_string(),
                );
                let area = case.floor_area.map(|a| a.in_unit(AreaUnit::SquareMetre));
                w.leaf_opt("FloorAreaSqm", area.map(|a| a.to_string()));
                let money = case.investment.map(|m| m.in_unit(MoneyUnit::Yuan));
                w.leaf_opt("InvestmentYuan", money.map(|m| m.to_string()));
            }
            Payload::Survey(notice) => write_survey(&mut w, notice),
            Payload::Joint(notice) => notices::write_joint_xml(&NOTICES, &mut w, notice),
            Payload::Deadline(notice) => {
                notices::write_deadline_xml(&NOTICES, &mut w, event, notice)
            }
            Payload::Credit(_) | Payload::CreditMatch(_) => {
                notices::write_credit_xml(&NOTICES, &mut w, event)
            }
        }
        w.close(operation);
        w.close("soap:Body");
        w.close("soap:Envelope");
        Ok(Encoded {
            content_type: "text/xml; charset=utf-8".to_owned(),
            body: w.finish(),
        })
    }

    fn message_headers(&self, event: &Event) -> Vec<(&'static str, &'static str)> {
        vec![("SOAPAction", action(&event.payload))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance() {
        crate::conformance::check(&Housing);
    }

    #[test]
    fn notice_tables_are_complete_and_distinct() {
        crate::notices::tests::dialect_tables_are_complete(&NOTICES);
    }

    #[test]
    fn code_tables_are_complete() {
        for kind in SurveyKind::ALL {
            assert_eq!(
                lookup(&SURVEY_KINDS, code_of(&SURVEY_KINDS, kind), "k"),
                Ok(kind)
            );
        }
        for name in FigureName::ALL {
            assert_eq!(lookup(&FIGURES, code_of(&FIGURES, name), "f"), Ok(name));
        }
        for stage in Stage::ALL {
            assert_eq!(lookup(&STAGES, code_of(&STAGES, stage), "s"), Ok(stage));
        }
        for status in CaseStatus::ALL {
            assert_eq!(
                lookup(&STATUSES, code_of(&STATUSES, status), "s"),
                Ok(status)
            );
        }
    }

    fn sample_text() -> String {
        let mut rng = fastrand::Rng::with_seed(14);
        let event = crate::sample::case_event(&mut rng, BureauId::Planning);
        String::from_utf8(Housing.encode(&event).unwrap().body).unwrap()
    }

    #[test]
    fn any_prefix_of_the_two_namespaces_reads_the_same() {
        let text = sample_text();
        let expected = Housing.decode(text.as_bytes(), "text/xml").unwrap();
        let reprefixed = text
            .replace("soap:", "env:")
            .replace("xmlns:soap=", "xmlns:env=")
            .replace(
                &format!("<{HEADER_BLOCK} xmlns=\"{NS}\">"),
                &format!("<fg:{HEADER_BLOCK} xmlns:fg=\"{NS}\">"),
            )
            .replace(
                &format!("</{HEADER_BLOCK}>"),
                &format!("</fg:{HEADER_BLOCK}>"),
            );
        let all_prefixed =
            ["From", "MessageID", "Timestamp"]
                .iter()
                .fold(reprefixed.clone(), |text, name| {
                    text.replace(&format!("<{name}>"), &format!("<fg:{name}>"))
                        .replace(&format!("</{name}>"), &format!("</fg:{name}>"))
                });
        assert_eq!(
            Housing.decode(all_prefixed.as_bytes(), "text/xml; charset=utf-8"),
            Ok(expected)
        );
        // A prefix binds only where it is used: the block's unprefixed children are in no
        // namespace now, and refused at their paths.
        let error = Housing
            .decode(reprefixed.as_bytes(), "text/xml")
            .unwrap_err();
        assert!(
            matches!(&error, DecodeError::Invalid(errors)
                if errors.iter().any(|e| e.path == "/Envelope/Header/ExchangeHeader/MessageID")),
            "{error:?}"
        );
    }

    #[test]
    fn an_element_outside_the_administrations_namespace_is_refused_at_its_path() {
        let text = sample_text();
        // The case body moved into no namespace (its children with it).
        let unqualified = text.replace(&format!("<{CASE} xmlns=\"{NS}\">"), &format!("<{CASE}>"));
        let error = Housing
            .decode(unqualified.as_bytes(), "text/xml")
            .unwrap_err();
        // Once, at the topmost element out of the namespace (not again for each it holds).
        let DecodeError::Invalid(errors) = &error else {
            panic!("{error:?}")
        };
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/Envelope/Body/CaseReport"]);
        // An element in another namespace inside a right one is named where it is.
        let inner = text.replace("<CaseNo>", "<CaseNo xmlns=\"urn:other\">");
        assert!(
            matches!(
                Housing.decode(inner.as_bytes(), "text/xml"),
                Err(DecodeError::Malformed { path, .. }) if path == "/Envelope/Body/CaseReport/CaseNo"
            ),
            "a namespace the format does not list is refused by the reader"
        );
        let other = text.replace(
            &format!("xmlns:soap=\"{SOAP}\""),
            &format!("xmlns:soap=\"{NS}\""),
        );
        let error = Housing.decode(other.as_bytes(), "text/xml").unwrap_err();
        assert!(
            matches!(&error, DecodeError::Invalid(errors)
                if errors.iter().any(|e| e.path == "/Envelope/Body")),
            "{error:?}"
        );
        let undeclared = text.replace("xmlns:soap=", "xmlns:s=");
        assert!(matches!(
            Housing.decode(undeclared.as_bytes(), "text/xml"),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn the_soap_action_names_the_operation_of_the_body() {
        let mut rng = fastrand::Rng::with_seed(3);
        let events = [
            crate::sample::case_event(&mut rng, BureauId::Housing),
            crate::sample::survey_event(&mut rng),
            crate::sample::joint_event(&mut rng),
            crate::sample::deadline_event(&mut rng),
        ];
        for event in &events {
            let text = String::from_utf8(Housing.encode(event).unwrap().body).unwrap();
            let operation = operation(&event.payload);
            assert!(text.contains(&format!("<{operation} xmlns=\"{NS}\">")));
            let expected = format!("\"{NS}#{operation}\"");
            assert_eq!(
                Housing.message_headers(event),
                vec![("SOAPAction", expected.as_str())]
            );
            let sent = |name: &str| (name == "SOAPAction").then(|| expected.clone());
            assert_eq!(
                Housing.check_message_headers(std::slice::from_ref(event), &sent),
                Ok(())
            );
        }
        // Missing, or naming another operation: refused at the header, saying what it must be.
        for sent in [None, Some("\"urn:fgj.sh.gov.cn:exchange:1#SurveyShare\"")] {
            let header = |_: &str| sent.map(str::to_owned);
            let Err(DecodeError::Invalid(errors)) =
                Housing.check_message_headers(&events[..1], &header)
            else {
                panic!("{sent:?} is refused")
            };
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].path, "header SOAPAction");
            assert_eq!(errors[0].text, sent.unwrap_or(""));
            assert_eq!(
                errors[0].problem,
                Problem::BadFormat {
                    expected: "\"urn:fgj.sh.gov.cn:exchange:1#CaseReport\""
                }
            );
        }
    }
}
