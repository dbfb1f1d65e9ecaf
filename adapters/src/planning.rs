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

use encoding_rs::UTF_8;
use schemas::model::{Name, parse_sequence};
use schemas::quantity::{AreaUnit, MoneyUnit};
use schemas::{
    Area, BureauCaseId, BureauId, CanonicalField as F, Case, CaseStatus, CreditCode, District,
    Event, Item, MessageId, Money, Normalizer, Organization, Problem, Project, ProjectCode,
    ShanghaiTime, Stage, WorkingDays,
};

use crate::vocabulary::{code_of, lookup};
use crate::xml::{self, Element, XmlWriter, decode_text};
use crate::{Adapter, DecodeError, EncodeError, Encoded, NativeFormat, Syntax};

const ROOT: &str = "GhzyExchange";
const FORMAT: NativeFormat = NativeFormat {
    media_type: "application/xml",
    syntax: Syntax::Xml { encoding: UTF_8 },
    batch: false,
    max_message_bytes: 256 * 1024,
};

/// The planning bureau's adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Planning;

/// Department codes of the city's exchange catalogue, as the planning system writes senders.
const SENDERS: [(BureauId, &str); 6] = [
    (BureauId::Planning, "SHGHZY"),
    (BureauId::Water, "SHSWJ"),
    (BureauId::Transport, "SHJTW"),
    (BureauId::TrafficPolice, "SHJJZD"),
    (BureauId::CivilDefense, "SHMFB"),
    (BureauId::Greenery, "SHLHSR"),
];

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

/// Item codes: the canonical code in upper case, e.g. `CONSTRUCTION_PLANNING_PERMIT`.
fn parse_item(text: &str) -> Result<Item, Problem> {
    let text = text.trim();
    if text.bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(Problem::UnknownCode {
            vocabulary: "item code (upper case)",
        });
    }
    Item::parse_code(&text.to_ascii_lowercase())
}

impl Planning {
    fn decode_case(root: &Element, n: &mut Normalizer) -> Option<Event> {
        root.check_children("/GhzyExchange", &["Header", "Case"], &[], n);
        if root.attribute("version") != Some("1.0") {
            n.reject(
                F::Document,
                "/GhzyExchange/@version",
                root.attribute("version").unwrap_or(""),
                Problem::BadFormat {
                    expected: "version 1.0",
                },
            );
        }
        let header = root.child("Header");
        let case = root.child("Case");
        let (Some(header), Some(case)) = (header, case) else {
            n.reject(F::Document, "/GhzyExchange", "", Problem::Missing);
            return None;
        };
        header.check_children(
            "/GhzyExchange/Header",
            &["MessageId", "Sender", "SendTime"],
            &[],
            n,
        );
        let h = |name: &str| format!("/GhzyExchange/Header/{name}");
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
            |t| lookup(&SENDERS, t, "department code"),
        );
        let occurred_at = n.field(
            F::OccurredAt,
            || h("SendTime"),
            header.text_of("SendTime"),
            ShanghaiTime::parse_rfc3339,
        );

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
            floor_area: floor_area.map(|a| a.ok_or(())).transpose().ok()?,
            investment: investment.map(|m| m.ok_or(())).transpose().ok()?,
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
                    h("SendTime"),
                    header.text_of("SendTime").unwrap_or(""),
                    problem,
                );
                None
            }
        }
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
        if root.name != ROOT {
            return Err(DecodeError::Malformed {
                path: format!("/{}", root.name),
                message: format!("root element must be {ROOT}"),
            });
        }
        let mut n = Normalizer::new();
        let event = Self::decode_case(&root, &mut n);
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
        let mut w = XmlWriter::new(UTF_8);
        w.open(ROOT, &[("version", "1.0")]);
        w.open("Header", &[]);
        w.leaf("MessageId", event.message_id.as_str());
        w.leaf("Sender", code_of(&SENDERS, event.source));
        w.leaf("SendTime", &event.occurred_at.to_rfc3339());
        w.close("Header");
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
}
