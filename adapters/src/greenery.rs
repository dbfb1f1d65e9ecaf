//! Greenery and City Appearance (市綠化市容局): JSON in UTF-8 with simplified-Chinese keys and
//! values, Shanghai local times without offset, areas in hectares and money in 亿元.
//!
//! Specification: `schemas/bureaus/greenery/message.schema.json`. One document carries one case
//! event:
//!
//! ```text
//! {
//!   "报文": { "编号": message id, "发送部门": sender's short name (市规资局, 市水务局, 市交通委,
//!            市交警总队, 市民防办, 市绿化市容局), "时间": event time "YYYY-MM-DD hh:mm:ss" },
//!   "办件": { "办件号", "版本号" (sequence: string or whole number; written as a string),
//!            "事项" (item's simplified name, e.g. 树木砍伐审批), "阶段" (立项用地规划许可 /
//!            工程建设许可 / 施工许可 / 竣工验收), "状态" (已申报 / 已受理 / 补正 / 准予许可 /
//!            不予许可 / 已撤回), "区" (district's full name, simplified; traditional accepted),
//!            "项目": { "代码", "名称" }, "申请单位": { "名称", "统一社会信用代码" },
//!            "申报时间" (YYYY-MM-DD hh:mm:ss), "办理时限" ("10个工作日"),
//!            "建筑面积"? ("12.85055公顷"; number and unit in one string),
//!            "总投资"? ("12.5亿元") }
//! }
//! ```
//!
//! Times are Shanghai local time (the specification fixes the zone). The decoder accepts the
//! area units 公顷/公頃/平方米/㎡/m2/m² and the money units 元/万元/萬元/亿元/億元; the encoder
//! always writes hectares and 亿元 (exact: canonical areas and amounts have two decimals).

use schemas::model::{Name, parse_sequence};
use schemas::quantity::{AreaUnit, MoneyUnit};
use schemas::{
    Area, BureauCaseId, BureauId, CanonicalField as F, Case, CaseStatus, CreditCode, District,
    Event, Item, LocalFormat, MessageId, Money, Normalizer, Organization, Problem, Project,
    ProjectCode, ShanghaiTime, Stage, WorkingDays,
};
use serde::Serialize;

use crate::json::{Obj, decode_value};
use crate::vocabulary::{code_of, lookup};
use crate::{Adapter, DecodeError, EncodeError, Encoded, NativeFormat, Syntax};

const FORMAT: NativeFormat = NativeFormat {
    media_type: "application/json",
    syntax: Syntax::Json,
    batch: false,
    max_message_bytes: 256 * 1024,
};

/// The layout of every time in this format (Shanghai local time).
const TIME: LocalFormat = LocalFormat::DashedWithSpace;

/// The greenery bureau's adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Greenery;

/// Senders by the short simplified names the greenery system writes.
const SENDERS: [(BureauId, &str); 6] = [
    (BureauId::Planning, "市规资局"),
    (BureauId::Water, "市水务局"),
    (BureauId::Transport, "市交通委"),
    (BureauId::TrafficPolice, "市交警总队"),
    (BureauId::CivilDefense, "市民防办"),
    (BureauId::Greenery, "市绿化市容局"),
];

/// Items by their simplified names (the canonical model keeps the traditional ones).
const ITEMS: [(Item, &str); 13] = [
    (Item::LandUsePlanningPermit, "建设用地规划许可证"),
    (Item::ConstructionPlanningPermit, "建设工程规划许可证"),
    (Item::PlanningVerification, "规划资源验收"),
    (Item::WaterSupplyConnection, "供水接入"),
    (Item::DrainagePermit, "排水许可"),
    (Item::RoadExcavationPermit, "城市道路挖掘许可"),
    (Item::TrafficImpactReview, "交通影响评价审查"),
    (Item::RoadWorksTrafficSafety, "涉路施工交通安全审核"),
    (Item::CivilDefenseDesignReview, "人防工程设计审查"),
    (Item::CivilDefenseCompletionFiling, "人防工程竣工验收备案"),
    (Item::GreenLandOccupation, "临时占用绿地审批"),
    (Item::TreeFelling, "树木砍伐审批"),
    (Item::GreeningPlanReview, "绿化配套方案审查"),
];

const STAGES: [(Stage, &str); 4] = [
    (Stage::LandUsePlanning, "立项用地规划许可"),
    (Stage::EngineeringConstructionPermit, "工程建设许可"),
    (Stage::ConstructionPermit, "施工许可"),
    (Stage::CompletionAcceptance, "竣工验收"),
];

const STATUSES: [(CaseStatus, &str); 6] = [
    (CaseStatus::Submitted, "已申报"),
    (CaseStatus::Accepted, "已受理"),
    (CaseStatus::SupplementRequested, "补正"),
    (CaseStatus::Approved, "准予许可"),
    (CaseStatus::Rejected, "不予许可"),
    (CaseStatus::Withdrawn, "已撤回"),
];

fn parse_time(text: &str) -> Result<ShanghaiTime, Problem> {
    ShanghaiTime::parse_local(text, TIME)
}

/// The native message, in the key order the specification lists.
#[derive(Serialize)]
struct Message<'a> {
    #[serde(rename = "报文")]
    header: Header<'a>,
    #[serde(rename = "办件")]
    case: CaseOut<'a>,
}

#[derive(Serialize)]
struct Header<'a> {
    #[serde(rename = "编号")]
    message_id: &'a str,
    #[serde(rename = "发送部门")]
    sender: &'static str,
    #[serde(rename = "时间")]
    time: String,
}

#[derive(Serialize)]
struct CaseOut<'a> {
    #[serde(rename = "办件号")]
    case_id: &'a str,
    #[serde(rename = "版本号")]
    sequence: String,
    #[serde(rename = "事项")]
    item: &'static str,
    #[serde(rename = "阶段")]
    stage: &'static str,
    #[serde(rename = "状态")]
    status: &'static str,
    #[serde(rename = "区")]
    district: &'static str,
    #[serde(rename = "项目")]
    project: ProjectOut<'a>,
    #[serde(rename = "申请单位")]
    applicant: ApplicantOut<'a>,
    #[serde(rename = "申报时间")]
    submitted_at: String,
    #[serde(rename = "办理时限")]
    time_limit: String,
    #[serde(rename = "建筑面积", skip_serializing_if = "Option::is_none")]
    floor_area: Option<String>,
    #[serde(rename = "总投资", skip_serializing_if = "Option::is_none")]
    investment: Option<String>,
}

#[derive(Serialize)]
struct ProjectOut<'a> {
    #[serde(rename = "代码")]
    code: &'a str,
    #[serde(rename = "名称")]
    name: &'a str,
}

#[derive(Serialize)]
struct ApplicantOut<'a> {
    #[serde(rename = "名称")]
    name: &'a str,
    #[serde(rename = "统一社会信用代码")]
    credit_code: &'a str,
}

const ROOT_KEYS: [&str; 2] = ["报文", "办件"];
const HEADER_KEYS: [&str; 3] = ["编号", "发送部门", "时间"];
const CASE_KEYS: [&str; 12] = [
    "办件号",
    "版本号",
    "事项",
    "阶段",
    "状态",
    "区",
    "项目",
    "申请单位",
    "申报时间",
    "办理时限",
    "建筑面积",
    "总投资",
];
const PROJECT_KEYS: [&str; 2] = ["代码", "名称"];
const APPLICANT_KEYS: [&str; 2] = ["名称", "统一社会信用代码"];

impl Greenery {
    fn decode_case(root: &Obj<'_>, n: &mut Normalizer) -> Option<Event> {
        root.check_keys(&ROOT_KEYS, n);
        let header = root.object("报文", F::Document, n);
        let case = root.object("办件", F::Document, n);

        let (message_id, source, occurred_at) = match &header {
            Some(h) => {
                h.check_keys(&HEADER_KEYS, n);
                (
                    h.take(n, F::MessageId, "编号", MessageId::parse),
                    h.take(n, F::Source, "发送部门", |t| {
                        lookup(&SENDERS, t, "sending department")
                    }),
                    h.take(n, F::OccurredAt, "时间", parse_time),
                )
            }
            None => (None, None, None),
        };

        let c = case.as_ref()?;
        c.check_keys(&CASE_KEYS, n);
        let case_id = c.take(n, F::CaseId, "办件号", BureauCaseId::parse);
        let sequence = c.take(n, F::Sequence, "版本号", parse_sequence);
        let item = c.take(n, F::Item, "事项", |t| {
            lookup(&ITEMS, t, "item name (simplified)")
        });
        let stage = c.take(n, F::Stage, "阶段", |t| {
            lookup(&STAGES, t, "stage name (simplified)")
        });
        let status = c.take(n, F::Status, "状态", |t| {
            lookup(&STATUSES, t, "case status (simplified)")
        });
        let district = c.take(n, F::District, "区", District::parse_name);

        let project = c.object("项目", F::ProjectCode, n);
        let (project_code, project_name) = match &project {
            Some(p) => {
                p.check_keys(&PROJECT_KEYS, n);
                (
                    p.take(n, F::ProjectCode, "代码", ProjectCode::parse),
                    p.take(n, F::ProjectName, "名称", Name::parse),
                )
            }
            None => (None, None),
        };
        let applicant = c.object("申请单位", F::ApplicantName, n);
        let (applicant_name, credit_code) = match &applicant {
            Some(a) => {
                a.check_keys(&APPLICANT_KEYS, n);
                (
                    a.take(n, F::ApplicantName, "名称", Name::parse),
                    a.take(
                        n,
                        F::ApplicantCreditCode,
                        "统一社会信用代码",
                        CreditCode::parse,
                    ),
                )
            }
            None => (None, None),
        };

        let submitted_at = c.take(n, F::SubmittedAt, "申报时间", parse_time);
        let time_limit = c.take(n, F::TimeLimit, "办理时限", WorkingDays::parse);
        let floor_area = c.take_opt(n, F::FloorArea, "建筑面积", Area::parse);
        let investment = c.take_opt(n, F::Investment, "总投资", Money::parse);
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
                let text = header
                    .as_ref()
                    .and_then(|h| h.map.get("时间"))
                    .and_then(|v| v.as_str())
                    .unwrap_or("");
                n.reject(F::OccurredAt, "/报文/时间", text, problem);
                None
            }
        }
    }
}

impl Adapter for Greenery {
    fn bureau(&self) -> BureauId {
        BureauId::Greenery
    }

    fn format(&self) -> NativeFormat {
        FORMAT
    }

    fn decode(&self, body: &[u8], content_type: &str) -> Result<Vec<Event>, DecodeError> {
        let value = decode_value(&FORMAT, body, content_type)?;
        let mut n = Normalizer::new();
        let event = Obj::root(&value, &mut n).and_then(|root| Self::decode_case(&root, &mut n));
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
            header: Header {
                message_id: event.message_id.as_str(),
                sender: code_of(&SENDERS, event.source),
                time: event.occurred_at.format_local(TIME),
            },
            case: CaseOut {
                case_id: event.case_id.as_str(),
                sequence: event.sequence.to_string(),
                item: code_of(&ITEMS, case.item),
                stage: code_of(&STAGES, case.stage),
                status: code_of(&STATUSES, case.status),
                district: case.district.name_simplified(),
                project: ProjectOut {
                    code: case.project.code.as_str(),
                    name: case.project.name.as_str(),
                },
                applicant: ApplicantOut {
                    name: case.applicant.name.as_str(),
                    credit_code: case.applicant.credit_code.as_str(),
                },
                submitted_at: case.submitted_at.format_local(TIME),
                time_limit: format!("{}个工作日", case.time_limit_working_days.get()),
                floor_area: case
                    .floor_area
                    .map(|area| format!("{}公顷", area.in_unit(AreaUnit::Hectare))),
                investment: case
                    .investment
                    .map(|money| format!("{}亿元", money.in_unit(MoneyUnit::HundredMillionYuan))),
            },
        };
        let mut body = serde_json::to_vec_pretty(&message).map_err(|e| EncodeError {
            bureau: BureauId::Greenery,
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

    fn all_distinct(names: &[&str]) -> bool {
        names
            .iter()
            .enumerate()
            .all(|(i, a)| names[i + 1..].iter().all(|b| a != b))
    }

    #[test]
    fn code_tables_cover_every_value_once() {
        for item in Item::ALL {
            assert_eq!(lookup(&ITEMS, code_of(&ITEMS, item), "item"), Ok(item));
        }
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
            assert_eq!(
                lookup(&SENDERS, code_of(&SENDERS, bureau), "sender"),
                Ok(bureau)
            );
        }
        assert!(all_distinct(&ITEMS.map(|(_, name)| name)));
        assert!(all_distinct(&STAGES.map(|(_, name)| name)));
        assert!(all_distinct(&STATUSES.map(|(_, name)| name)));
        assert!(all_distinct(&SENDERS.map(|(_, name)| name)));
    }

    #[test]
    fn item_names_are_the_simplified_spellings() {
        assert_eq!(code_of(&ITEMS, Item::TreeFelling), "树木砍伐审批");
        assert_eq!(
            code_of(&ITEMS, Item::ConstructionPlanningPermit),
            "建设工程规划许可证"
        );
        assert_eq!(
            code_of(&ITEMS, Item::RoadWorksTrafficSafety),
            "涉路施工交通安全审核"
        );
        // A character-for-character transliteration of the traditional name.
        for (item, simplified) in ITEMS {
            assert_eq!(
                simplified.chars().count(),
                item.name_zh().chars().count(),
                "{simplified}"
            );
        }
        // The traditional spelling is not this format's vocabulary.
        assert!(lookup(&ITEMS, Item::TreeFelling.name_zh(), "item").is_err());
        assert!(lookup(&STATUSES, "审批中", "status").is_err());
    }

    #[test]
    fn hectares_and_hundred_million_yuan_round_trip_exactly() {
        let area = Area::parse("12.85055公顷").expect("area");
        assert_eq!(area.in_unit(AreaUnit::Hectare).to_string(), "12.85055");
        assert_eq!(area.value().to_string(), "128505.5");
        let smallest = Area::parse("0.01平方米").expect("area");
        let text = format!("{}公顷", smallest.in_unit(AreaUnit::Hectare));
        assert_eq!(text, "0.000001公顷");
        assert_eq!(Area::parse(&text), Ok(smallest));
        let money = Money::parse("0.01元").expect("money");
        let text = format!("{}亿元", money.in_unit(MoneyUnit::HundredMillionYuan));
        assert_eq!(text, "0.0000000001亿元");
        assert_eq!(Money::parse(&text), Ok(money));
    }

    #[test]
    fn conformance() {
        crate::conformance::check(&Greenery);
    }
}
