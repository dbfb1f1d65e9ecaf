//! Water Authority (市水務局): XML in GB18030, Chinese element names in traditional characters,
//! Shanghai local times without offset, Chinese vocabulary for every code, quantities written
//! with their unit in one text.
//!
//! Specification: `schemas/bureaus/water/message.xsd`. One document carries one case event:
//!
//! ```text
//! 水務辦件報文[@版本="1.0"]
//!   報文頭/報文編號 (message id), 報文頭/發送單位 (source bureau's short name, e.g. 市水務局),
//!   報文頭/發生時間 (event time, Shanghai local YYYY-MM-DD hh:mm:ss)
//!   辦件/辦件編號, 序號, 事項名稱 (item, traditional name), 階段 (立項用地規劃許可 ...),
//!        辦件狀態 (已申報 / 已受理 / 補正 / 準予許可 / 不予許可 / 已撤回),
//!        所屬區 (district name, traditional or simplified), 項目代碼, 項目名稱, 申請單位,
//!        統一社會信用代碼, 申報時間 (local time), 承諾時限 (N個工作日),
//!        建築面積? (e.g. 128500.5平方米), 總投資? (e.g. 3500萬元)
//! ```
//!
//! The document is encoded in GB18030 and says so in its declaration (GBK, its subset, is read
//! too). Times carry no offset: the specification fixes them as Shanghai time. Elements carry no
//! attributes except the root's `版本`. The encoder writes districts by traditional name, areas in
//! 平方米 and investments in 萬元.

use encoding_rs::GB18030;
use schemas::model::{Name, parse_sequence};
use schemas::quantity::{AreaUnit, MoneyUnit};
use schemas::{
    Area, BureauCaseId, BureauId, CanonicalField as F, Case, CaseStatus, CreditCode, District,
    Event, Item, LocalFormat, MessageId, Money, Normalizer, Organization, Problem, Project,
    ProjectCode, ShanghaiTime, Stage, WorkingDays,
};

use crate::vocabulary::{code_of, lookup};
use crate::xml::{self, Element, XmlWriter, decode_text, truncate};
use crate::{Adapter, DecodeError, EncodeError, Encoded, NativeFormat, Syntax};

const ROOT: &str = "水務辦件報文";
const HEADER: &str = "報文頭";
const CASE: &str = "辦件";
const VERSION_ATTRIBUTE: &str = "版本";
const FORMAT: NativeFormat = NativeFormat {
    media_type: "application/xml",
    syntax: Syntax::Xml { encoding: GB18030 },
    batch: false,
    max_message_bytes: 256 * 1024,
};
/// The layout of every time in the format: Shanghai local time, no offset.
const LOCAL: LocalFormat = LocalFormat::DashedWithSpace;

/// The Water Authority's adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Water;

const HEADER_FIELDS: [&str; 3] = ["報文編號", "發送單位", "發生時間"];
const CASE_FIELDS: [&str; 14] = [
    "辦件編號",
    "序號",
    "事項名稱",
    "階段",
    "辦件狀態",
    "所屬區",
    "項目代碼",
    "項目名稱",
    "申請單位",
    "統一社會信用代碼",
    "申報時間",
    "承諾時限",
    "建築面積",
    "總投資",
];

const STAGES: [(Stage, &str); 4] = [
    (Stage::LandUsePlanning, "立項用地規劃許可"),
    (Stage::EngineeringConstructionPermit, "工程建設許可"),
    (Stage::ConstructionPermit, "施工許可"),
    (Stage::CompletionAcceptance, "竣工驗收"),
];

const STATUSES: [(CaseStatus, &str); 6] = [
    (CaseStatus::Submitted, "已申報"),
    (CaseStatus::Accepted, "已受理"),
    (CaseStatus::SupplementRequested, "補正"),
    (CaseStatus::Approved, "準予許可"),
    (CaseStatus::Rejected, "不予許可"),
    (CaseStatus::Withdrawn, "已撤回"),
];

/// The sending bureau, by the short name its peers write (`市水務局`).
fn parse_sender(text: &str) -> Result<BureauId, Problem> {
    let text = text.trim();
    BureauId::ALL
        .into_iter()
        .find(|bureau| bureau.short_name_zh() == text)
        .ok_or(Problem::UnknownCode {
            vocabulary: "bureau short name (市規資局, 市水務局, 市交通委, 市交警總隊, 市民防辦, 市綠化市容局)",
        })
}

/// The item, by its name in traditional characters (`排水許可`).
fn parse_item(text: &str) -> Result<Item, Problem> {
    let text = text.trim();
    Item::ALL
        .into_iter()
        .find(|item| item.name_zh() == text)
        .ok_or(Problem::UnknownCode {
            vocabulary: "item name in traditional characters (e.g. 排水許可)",
        })
}

fn parse_local_time(text: &str) -> Result<ShanghaiTime, Problem> {
    ShanghaiTime::parse_local(text, LOCAL)
}

/// The text of a leaf element, or `None` when it is absent. A leaf holds text only: attributes
/// and child elements inside it are rejected, since neither is part of the format.
fn leaf<'a>(parent: &'a Element, name: &str, path: &str, n: &mut Normalizer) -> Option<&'a str> {
    let element = parent.child(name)?;
    for (key, value) in &element.attributes {
        n.reject(
            F::Document,
            format!("{path}/{name}/@{key}"),
            truncate(value),
            Problem::UnknownField,
        );
    }
    for child in &element.children {
        n.reject(
            F::Document,
            format!("{path}/{name}/{}", child.name),
            truncate(&child.text),
            Problem::UnknownField,
        );
    }
    Some(element.text.as_ref())
}

impl Water {
    fn decode_case(root: &Element, n: &mut Normalizer) -> Option<Event> {
        let r = format!("/{ROOT}");
        root.check_children(&r, &[HEADER, CASE], &[], n);
        root.check_attributes(&r, &[VERSION_ATTRIBUTE], n);
        if root.attribute(VERSION_ATTRIBUTE) != Some("1.0") {
            n.reject(
                F::Document,
                format!("{r}/@{VERSION_ATTRIBUTE}"),
                root.attribute(VERSION_ATTRIBUTE).unwrap_or(""),
                Problem::BadFormat {
                    expected: "版本 1.0",
                },
            );
        }
        let empty = Element::default();
        let header = root.child(HEADER).unwrap_or_else(|| {
            n.reject(F::Document, format!("{r}/{HEADER}"), "", Problem::Missing);
            &empty
        });
        let case = root.child(CASE).unwrap_or_else(|| {
            n.reject(F::Document, format!("{r}/{CASE}"), "", Problem::Missing);
            &empty
        });

        let hp = format!("{r}/{HEADER}");
        header.check_children(&hp, &HEADER_FIELDS, &[], n);
        header.check_attributes(&hp, &[], n);
        let h = |name: &str| format!("{hp}/{name}");
        let text = leaf(header, "報文編號", &hp, n);
        let message_id = n.field(F::MessageId, || h("報文編號"), text, MessageId::parse);
        let text = leaf(header, "發送單位", &hp, n);
        let source = n.field(F::Source, || h("發送單位"), text, parse_sender);
        let occurred_text = leaf(header, "發生時間", &hp, n);
        let occurred_at = n.field(
            F::OccurredAt,
            || h("發生時間"),
            occurred_text,
            parse_local_time,
        );

        let cp = format!("{r}/{CASE}");
        case.check_children(&cp, &CASE_FIELDS, &[], n);
        case.check_attributes(&cp, &[], n);
        let c = |name: &str| format!("{cp}/{name}");
        let text = leaf(case, "辦件編號", &cp, n);
        let case_id = n.field(F::CaseId, || c("辦件編號"), text, BureauCaseId::parse);
        let text = leaf(case, "序號", &cp, n);
        let sequence = n.field(F::Sequence, || c("序號"), text, parse_sequence);
        let text = leaf(case, "事項名稱", &cp, n);
        let item = n.field(F::Item, || c("事項名稱"), text, parse_item);
        let text = leaf(case, "階段", &cp, n);
        let stage = n.field(
            F::Stage,
            || c("階段"),
            text,
            |t| {
                lookup(
                    &STAGES,
                    t,
                    "stage (立項用地規劃許可, 工程建設許可, 施工許可, 竣工驗收)",
                )
            },
        );
        let text = leaf(case, "辦件狀態", &cp, n);
        let status = n.field(
            F::Status,
            || c("辦件狀態"),
            text,
            |t| {
                lookup(
                    &STATUSES,
                    t,
                    "case status (已申報, 已受理, 補正, 準予許可, 不予許可, 已撤回)",
                )
            },
        );
        let text = leaf(case, "所屬區", &cp, n);
        let district = n.field(F::District, || c("所屬區"), text, District::parse_name);
        let text = leaf(case, "項目代碼", &cp, n);
        let project_code = n.field(F::ProjectCode, || c("項目代碼"), text, ProjectCode::parse);
        let text = leaf(case, "項目名稱", &cp, n);
        let project_name = n.field(F::ProjectName, || c("項目名稱"), text, Name::parse);
        let text = leaf(case, "申請單位", &cp, n);
        let applicant_name = n.field(F::ApplicantName, || c("申請單位"), text, Name::parse);
        let text = leaf(case, "統一社會信用代碼", &cp, n);
        let credit_code = n.field(
            F::ApplicantCreditCode,
            || c("統一社會信用代碼"),
            text,
            CreditCode::parse,
        );
        let text = leaf(case, "申報時間", &cp, n);
        let submitted_at = n.field(F::SubmittedAt, || c("申報時間"), text, parse_local_time);
        let text = leaf(case, "承諾時限", &cp, n);
        let time_limit = n.field(F::TimeLimit, || c("承諾時限"), text, WorkingDays::parse);
        let text = leaf(case, "建築面積", &cp, n);
        let floor_area = n.optional(F::FloorArea, || c("建築面積"), text, Area::parse);
        let text = leaf(case, "總投資", &cp, n);
        let investment = n.optional(F::Investment, || c("總投資"), text, Money::parse);
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
                    h("發生時間"),
                    occurred_text.unwrap_or(""),
                    problem,
                );
                None
            }
        }
    }
}

impl Adapter for Water {
    fn bureau(&self) -> BureauId {
        BureauId::Water
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
        let mut w = XmlWriter::new(GB18030);
        w.open(ROOT, &[(VERSION_ATTRIBUTE, "1.0")]);
        w.open(HEADER, &[]);
        w.leaf("報文編號", event.message_id.as_str());
        w.leaf("發送單位", event.source.short_name_zh());
        w.leaf("發生時間", &event.occurred_at.format_local(LOCAL));
        w.close(HEADER);
        w.open(CASE, &[]);
        w.leaf("辦件編號", event.case_id.as_str());
        w.leaf("序號", &event.sequence.to_string());
        w.leaf("事項名稱", case.item.name_zh());
        w.leaf("階段", code_of(&STAGES, case.stage));
        w.leaf("辦件狀態", code_of(&STATUSES, case.status));
        w.leaf("所屬區", case.district.name_traditional());
        w.leaf("項目代碼", case.project.code.as_str());
        w.leaf("項目名稱", case.project.name.as_str());
        w.leaf("申請單位", case.applicant.name.as_str());
        w.leaf("統一社會信用代碼", case.applicant.credit_code.as_str());
        w.leaf("申報時間", &case.submitted_at.format_local(LOCAL));
        w.leaf(
            "承諾時限",
            &format!("{}個工作日", case.time_limit_working_days.get()),
        );
        w.leaf_opt(
            "建築面積",
            case.floor_area
                .map(|a| format!("{}平方米", a.in_unit(AreaUnit::SquareMetre))),
        );
        w.leaf_opt(
            "總投資",
            case.investment
                .map(|m| format!("{}萬元", m.in_unit(MoneyUnit::TenThousandYuan))),
        );
        w.close(CASE);
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
        crate::conformance::check(&Water);
    }

    #[test]
    fn vocabularies_cover_every_value_once() {
        for stage in Stage::ALL {
            assert_eq!(lookup(&STAGES, code_of(&STAGES, stage), "stage"), Ok(stage));
        }
        for status in CaseStatus::ALL {
            assert_eq!(
                lookup(&STATUSES, code_of(&STATUSES, status), "status"),
                Ok(status)
            );
        }
        for bureau in BureauId::ALL {
            assert_eq!(parse_sender(bureau.short_name_zh()), Ok(bureau));
        }
        for item in Item::ALL {
            assert_eq!(parse_item(item.name_zh()), Ok(item));
        }
        assert!(parse_sender("市水务局").is_err());
        assert!(parse_item("排水许可").is_err());
        assert!(lookup(&STATUSES, "准予许可", "status").is_err());
    }

    #[test]
    fn collects_every_error_with_native_paths() {
        let doc = "<?xml version=\"1.0\" encoding=\"GB18030\"?>\
            <水務辦件報文 版本=\"1.0\"><報文頭><報文編號>SW-1</報文編號><發送單位>市水務局</發送單位>\
            <發生時間>2022-2-15 9:30:00</發生時間></報文頭><辦件><辦件編號>SW1</辦件編號><序號>1</序號>\
            <事項名稱>排水許可</事項名稱><階段>施工許可</階段><辦件狀態>已受理</辦件狀態><所屬區>浦東</所屬區>\
            <項目代碼>2201-310115-04-01-123456</項目代碼><項目名稱>測試</項目名稱><申請單位>測試公司</申請單位>\
            <統一社會信用代碼>91350100M000100Y44</統一社會信用代碼><申報時間>2022-02-15 09:00:00</申報時間>\
            <承諾時限>13日</承諾時限><建築面積 單位=\"㎡\">11,6平方米</建築面積><總投資>9Z00億元</總投資>\
            <備註>x</備註></辦件></水務辦件報文>";
        let (bytes, _, _) = GB18030.encode(doc);
        let Err(DecodeError::Invalid(errors)) = Water.decode(&bytes, "application/xml") else {
            panic!("accepted");
        };
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        for want in [
            "/水務辦件報文/報文頭/發生時間",
            "/水務辦件報文/辦件/所屬區",
            "/水務辦件報文/辦件/統一社會信用代碼",
            "/水務辦件報文/辦件/承諾時限",
            "/水務辦件報文/辦件/建築面積/@單位",
            "/水務辦件報文/辦件/建築面積",
            "/水務辦件報文/辦件/總投資",
            "/水務辦件報文/辦件/備註",
        ] {
            assert!(paths.contains(&want), "no error at {want}: {paths:?}");
        }
    }
}
