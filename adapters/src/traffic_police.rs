//! Traffic Police Corps (市交警總隊): JSON in the style of Chinese public-security systems:
//! upper-case pinyin-initial keys, every value a JSON string, compact Shanghai local times,
//! money in 萬元.
//!
//! Specification: `schemas/bureaus/traffic_police/message.schema.json`. One document carries one
//! case event; every value is a string (a JSON number, boolean, null or array where a value
//! belongs is refused as the wrong type):
//!
//! ```text
//! BWBH  報文編號 message id
//! FSBM  發送部門 sender: GHZY planning, SWJ water, JTW transport, JJZD traffic police,
//!       MFB civil defense, LHSR greenery
//! FSSJ  發生時間 event time, Shanghai local YYYYMMDDhhmmss (no offset: the specification fixes
//!       Asia/Shanghai)
//! AJ    案件 case:
//!   AJBH 案件編號 case id          XH   序號 sequence (digits, from 1)
//!   SXBM 事項編碼 SX01..SX13       JD   階段 01..04
//!   ZT   狀態 1..6                 XZQH 行政區劃 district code (310115, 3101LG, ...)
//!   XMDM 項目代碼 project code     XMMC 項目名稱 project name
//!   SQDW 申請單位 applicant name   TYSHXYDM 統一社會信用代碼 credit code
//!   SBSJ 申報時間 submission time, YYYYMMDDhhmmss
//!   CNSX 承諾時限 time limit in working days (digits)
//!   JZMJ 建築面積 floor area in 平方米 (optional, plain decimal)
//!   ZTZ  總投資 investment in 萬元 (optional, plain decimal)
//! ```
//!
//! Item codes follow the order of [`Item::ALL`]: SX01 建設用地規劃許可證 ... SX08 涉路施工交通安全審核
//! ... SX13 綠化配套方案審查. Stages: 01 立項用地規劃許可, 02 工程建設許可, 03 施工許可, 04 竣工驗收.
//! Statuses: 1 已申報, 2 已受理, 3 補正, 4 準予許可, 5 不予許可, 6 撤回.

use schemas::model::{Name, parse_sequence};
use schemas::quantity::{AreaUnit, MoneyUnit};
use schemas::{
    Area, BureauCaseId, BureauId, CanonicalField as F, Case, CaseStatus, CreditCode, District,
    Event, Item, LocalFormat, MessageId, Money, Normalizer, Organization, Problem, Project,
    ProjectCode, ShanghaiTime, Stage, WorkingDays,
};
use serde::Serialize;
use serde_json::Value;

use crate::json::{Obj, decode_value};
use crate::vocabulary::{code_of, lookup};
use crate::xml::truncate;
use crate::{Adapter, DecodeError, EncodeError, Encoded, NativeFormat, Syntax};

const FORMAT: NativeFormat = NativeFormat {
    media_type: "application/json",
    syntax: Syntax::Json,
    batch: false,
    max_message_bytes: 128 * 1024,
};

/// The traffic police corps' adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrafficPolice;

/// 發送部門 codes.
const SENDERS: [(BureauId, &str); 6] = [
    (BureauId::Planning, "GHZY"),
    (BureauId::Water, "SWJ"),
    (BureauId::Transport, "JTW"),
    (BureauId::TrafficPolice, "JJZD"),
    (BureauId::CivilDefense, "MFB"),
    (BureauId::Greenery, "LHSR"),
];

/// 事項編碼: the corps' own catalogue, in the order of [`Item::ALL`].
const ITEMS: [(Item, &str); 13] = [
    (Item::LandUsePlanningPermit, "SX01"),
    (Item::ConstructionPlanningPermit, "SX02"),
    (Item::PlanningVerification, "SX03"),
    (Item::WaterSupplyConnection, "SX04"),
    (Item::DrainagePermit, "SX05"),
    (Item::RoadExcavationPermit, "SX06"),
    (Item::TrafficImpactReview, "SX07"),
    (Item::RoadWorksTrafficSafety, "SX08"),
    (Item::CivilDefenseDesignReview, "SX09"),
    (Item::CivilDefenseCompletionFiling, "SX10"),
    (Item::GreenLandOccupation, "SX11"),
    (Item::TreeFelling, "SX12"),
    (Item::GreeningPlanReview, "SX13"),
];

/// 階段 codes.
const STAGES: [(Stage, &str); 4] = [
    (Stage::LandUsePlanning, "01"),
    (Stage::EngineeringConstructionPermit, "02"),
    (Stage::ConstructionPermit, "03"),
    (Stage::CompletionAcceptance, "04"),
];

/// 狀態 codes.
const STATUSES: [(CaseStatus, &str); 6] = [
    (CaseStatus::Submitted, "1"),
    (CaseStatus::Accepted, "2"),
    (CaseStatus::SupplementRequested, "3"),
    (CaseStatus::Approved, "4"),
    (CaseStatus::Rejected, "5"),
    (CaseStatus::Withdrawn, "6"),
];

const ROOT_KEYS: [&str; 4] = ["BWBH", "FSBM", "FSSJ", "AJ"];
const CASE_KEYS: [&str; 14] = [
    "AJBH", "XH", "SXBM", "JD", "ZT", "XZQH", "XMDM", "XMMC", "SQDW", "TYSHXYDM", "SBSJ", "CNSX",
    "JZMJ", "ZTZ",
];

fn parse_time(text: &str) -> Result<ShanghaiTime, Problem> {
    ShanghaiTime::parse_local(text, LocalFormat::Compact)
}

impl TrafficPolice {
    fn decode_event(value: &Value, n: &mut Normalizer) -> Option<Event> {
        let root = Obj::root(value, n)?;
        root.check_keys(&ROOT_KEYS, n);
        let message_id = root.string(n, F::MessageId, "BWBH", MessageId::parse);
        let source = root.string(n, F::Source, "FSBM", |t| {
            lookup(&SENDERS, t, "department code (發送部門)")
        });
        let occurred_at = root.string(n, F::OccurredAt, "FSSJ", parse_time);
        let case = root.object("AJ", F::Document, n);
        let case = case.and_then(|aj| Self::decode_case(&aj, n));
        let (case_id, sequence, case) = case?;
        if !n.is_clean() {
            return None;
        }
        match Event::for_case(message_id?, source?, case_id, sequence, occurred_at?, case) {
            Ok(event) => Some(event),
            Err(problem) => {
                let text = match root.map.get("FSSJ") {
                    Some(Value::String(s)) => truncate(s),
                    _ => String::new(),
                };
                n.reject(F::OccurredAt, "/FSSJ", text, problem);
                None
            }
        }
    }

    fn decode_case(aj: &Obj<'_>, n: &mut Normalizer) -> Option<(BureauCaseId, u64, Case)> {
        aj.check_keys(&CASE_KEYS, n);
        let case_id = aj.string(n, F::CaseId, "AJBH", BureauCaseId::parse);
        let sequence = aj.string(n, F::Sequence, "XH", parse_sequence);
        let item = aj.string(n, F::Item, "SXBM", |t| {
            lookup(&ITEMS, t, "item code (事項編碼 SX01-SX13)")
        });
        let stage = aj.string(n, F::Stage, "JD", |t| {
            lookup(&STAGES, t, "stage code (01-04)")
        });
        let status = aj.string(n, F::Status, "ZT", |t| {
            lookup(&STATUSES, t, "status code (1-6)")
        });
        let district = aj.string(n, F::District, "XZQH", District::parse_code);
        let project_code = aj.string(n, F::ProjectCode, "XMDM", ProjectCode::parse);
        let project_name = aj.string(n, F::ProjectName, "XMMC", Name::parse);
        let applicant_name = aj.string(n, F::ApplicantName, "SQDW", Name::parse);
        let credit_code = aj.string(n, F::ApplicantCreditCode, "TYSHXYDM", CreditCode::parse);
        let submitted_at = aj.string(n, F::SubmittedAt, "SBSJ", parse_time);
        let time_limit = aj.string(n, F::TimeLimit, "CNSX", WorkingDays::parse);
        let floor_area = aj.string_opt(n, F::FloorArea, "JZMJ", |t| {
            Area::from_number_in(t, AreaUnit::SquareMetre)
        });
        let investment = aj.string_opt(n, F::Investment, "ZTZ", |t| {
            Money::from_number_in(t, MoneyUnit::TenThousandYuan)
        });
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
        Some((case_id?, sequence?, case))
    }
}

/// The message as the corps' system writes it.
#[derive(Serialize)]
#[serde(rename_all = "UPPERCASE")]
struct Message<'a> {
    bwbh: &'a str,
    fsbm: &'static str,
    fssj: String,
    aj: CaseRecord<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "UPPERCASE")]
struct CaseRecord<'a> {
    ajbh: &'a str,
    xh: String,
    sxbm: &'static str,
    jd: &'static str,
    zt: &'static str,
    xzqh: &'static str,
    xmdm: &'a str,
    xmmc: &'a str,
    sqdw: &'a str,
    tyshxydm: &'a str,
    sbsj: String,
    cnsx: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    jzmj: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ztz: Option<String>,
}

impl Adapter for TrafficPolice {
    fn bureau(&self) -> BureauId {
        BureauId::TrafficPolice
    }

    fn format(&self) -> NativeFormat {
        FORMAT
    }

    fn decode(&self, body: &[u8], content_type: &str) -> Result<Vec<Event>, DecodeError> {
        let value = decode_value(&FORMAT, body, content_type)?;
        let mut n = Normalizer::new();
        let event = Self::decode_event(&value, &mut n);
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
            bwbh: event.message_id.as_str(),
            fsbm: code_of(&SENDERS, event.source),
            fssj: event.occurred_at.format_local(LocalFormat::Compact),
            aj: CaseRecord {
                ajbh: event.case_id.as_str(),
                xh: event.sequence.to_string(),
                sxbm: code_of(&ITEMS, case.item),
                jd: code_of(&STAGES, case.stage),
                zt: code_of(&STATUSES, case.status),
                xzqh: case.district.code(),
                xmdm: case.project.code.as_str(),
                xmmc: case.project.name.as_str(),
                sqdw: case.applicant.name.as_str(),
                tyshxydm: case.applicant.credit_code.as_str(),
                sbsj: case.submitted_at.format_local(LocalFormat::Compact),
                cnsx: case.time_limit_working_days.get().to_string(),
                jzmj: case
                    .floor_area
                    .map(|a| a.in_unit(AreaUnit::SquareMetre).to_string()),
                ztz: case
                    .investment
                    .map(|m| m.in_unit(MoneyUnit::TenThousandYuan).to_string()),
            },
        };
        let body = serde_json::to_vec_pretty(&message).map_err(|e| EncodeError {
            bureau: BureauId::TrafficPolice,
            field: "document",
            reason: e.to_string(),
        })?;
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
    fn item_codes_follow_the_canonical_order() {
        for (i, item) in Item::ALL.into_iter().enumerate() {
            assert_eq!(code_of(&ITEMS, item), format!("SX{:02}", i + 1));
            assert_eq!(lookup(&ITEMS, &format!("SX{:02}", i + 1), "item"), Ok(item));
        }
        assert_eq!(code_of(&ITEMS, Item::RoadWorksTrafficSafety), "SX08");
        assert!(lookup(&ITEMS, "SX14", "item").is_err());
    }

    #[test]
    fn stage_status_and_sender_tables_are_complete() {
        for (i, stage) in Stage::ALL.into_iter().enumerate() {
            assert_eq!(code_of(&STAGES, stage), format!("{:02}", i + 1));
        }
        for (i, status) in CaseStatus::ALL.into_iter().enumerate() {
            assert_eq!(code_of(&STATUSES, status), (i + 1).to_string());
        }
        for bureau in BureauId::ALL {
            let code = code_of(&SENDERS, bureau);
            assert_eq!(lookup(&SENDERS, code, "sender"), Ok(bureau));
        }
        assert_eq!(code_of(&SENDERS, BureauId::TrafficPolice), "JJZD");
    }

    #[test]
    fn numbers_where_strings_belong_are_wrong_types() {
        let body = std::fs::read(
            crate::conformance::samples_dir(&TrafficPolice).join("invalid/sequence-as-number.json"),
        )
        .unwrap_or_default();
        let Err(DecodeError::Invalid(errors)) = TrafficPolice.decode(&body, "application/json")
        else {
            panic!("a number for XH was not refused");
        };
        assert!(errors.iter().any(|e| e.path == "/AJ/XH"
            && e.field == F::Sequence
            && matches!(e.problem, Problem::WrongType { .. })));
    }

    #[test]
    fn money_is_written_in_ten_thousand_yuan() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut event = crate::sample::case_event(&mut rng, BureauId::TrafficPolice);
        let schemas::Payload::Case(case) = &mut event.payload else {
            unreachable!("a case event")
        };
        case.investment = Money::from_number_in("3500.12", MoneyUnit::TenThousandYuan).ok();
        let encoded = TrafficPolice
            .encode(&event)
            .unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8(encoded.body).unwrap_or_default();
        assert!(text.contains("\"ZTZ\": \"3500.12\""), "{text}");
        assert_eq!(
            TrafficPolice.decode(text.as_bytes(), "application/json"),
            Ok(vec![event])
        );
    }

    #[test]
    fn conformance() {
        crate::conformance::check(&TrafficPolice);
    }
}
