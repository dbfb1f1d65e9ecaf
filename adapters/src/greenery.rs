//! Greenery and City Appearance (市綠化市容局): JSON in UTF-8 with simplified-Chinese keys and
//! values, Shanghai local times without offset, areas in hectares and money in 亿元.
//!
//! Specification: `schemas/bureaus/greenery/message.schema.json`. One document carries one
//! event: a case event (top-level keys `报文` and `办件`) or a survey notice (`报文` and
//! `测绘成果`); exactly one of `办件` and `测绘成果` is present, and the decoder dispatches on
//! it. A case event:
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
//! A survey notice (多测合一: one published version of a project's survey result):
//!
//! ```text
//! {
//!   "报文": { "编号", "发送部门", "时间" } (as above),
//!   "测绘成果": { "成果编号" (survey id sv-…), "替代成果编号"? (the version it supersedes),
//!            "项目代码", "测绘类型" (规划核实测量 / 房产测绘 / 人防面积测量 / 绿地测量),
//!            "测绘单位": { "名称", "统一社会信用代码" },
//!            "版本号" (from 1: string or whole number; written as a string),
//!            "测绘日期" (YYYY-MM-DD),
//!            "指标": [ { "名称" (用地面积 / 地上建筑面积 / 地下建筑面积 / 建筑高度 / 绿地面积 /
//!                      绿地率 / 人防面积 / 房屋套数; each at most once),
//!                      "数值" (number and unit in one string: areas "0.123456公顷", heights
//!                      "99.5米", the ratio "35.5%", counts "120套") }, … ] (in order; may be empty),
//!            "附件": [ { "文件名", "类型" (media type, application/pdf), "摘要" (SHA-256, 64 hex
//!                      digits), "大小" (bytes: digits, string or whole number) }, … ] (in order) }
//! }
//! ```
//!
//! A survey event's series (case id `SV-<project code>-<PV|RE|CD|GR>`), sequence (the version)
//! and kind (published, or superseded when `替代成果编号` is present) follow from the notice and
//! are not written.
//!
//! Times are Shanghai local time (the specification fixes the zone). The decoder accepts the
//! area units 公顷/公頃/平方米/㎡/m2/m² and the money units 元/万元/萬元/亿元/億元; the encoder
//! always writes hectares and 亿元 (exact: canonical areas and amounts have two decimals).
//! Survey heights are read in 米/m and counts as digits with an optional measure word (套, 户,
//! 个 …); the encoder writes 米 and 套.
//!
//! The gateway's joint-case (`联合审批`) and deadline (`办理时限提醒`) notices take the place of
//! `办件` beside `报文`, keys and values in simplified Chinese as `NOTICES` spells them
//! (审批中 / 准予许可 / 不予许可 / 已撤回 / 已终止, 待申报, 临近到期 / 已超期), `到期日期` with `暂定`
//! 是/否, numbers as strings (whole JSON numbers read too).

use schemas::CreditList;
use schemas::model::{Name, parse_sequence};
use schemas::quantity::{AreaUnit, MoneyUnit};
use schemas::survey::parse_media_type;
use schemas::{
    Area, BureauCaseId, BureauId, CanonicalField as F, CaseStatus, CreditCode, District, Event,
    FigureName, FigureSet, FigureValue, FileRef, Item, LocalFormat, MessageId, Money, NativeValue,
    Normalizer, Problem, ProjectCode, Sha256Hex, ShanghaiDate, ShanghaiTime, Stage, SurveyId,
    SurveyKind, SurveyNotice, SurveyNoticeParts, WorkingDays,
};
use serde::Serialize;

use crate::adapter::{Adapter, DecodeError, EncodeError, Encoded, NativeFormat, Syntax};
use crate::assemble::{CaseParts, one_event, survey_event};
use crate::json::{FinalNewline, Obj, bounds, decode_value, encode_pretty};
use crate::notices::{self, DateStyle, Dialect, Json, JsonScalars, Names, Ordered};
use crate::vocabulary::{BureauSpelling, code_of, item_named, lookup};
use schemas::survey::{parse_size, parse_version};
use schemas::{BranchStatus, DeadlineState, JointStatus, Payload};
use std::borrow::Cow;

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

/// How the format spells a bureau (from the shared names, `schemas::BureauId::names`).
const SENDERS: BureauSpelling = BureauSpelling::ShortZhSimplified;

/// An item by its name in simplified characters (`树木砍伐审批`), the shared spelling
/// `schemas::Item::name_zh_simplified`.
fn parse_item(text: &str) -> Result<Item, Problem> {
    item_named(text, Item::name_zh_simplified, "item name (simplified)")
}

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

const SURVEY_KINDS: [(SurveyKind, &str); 4] = [
    (SurveyKind::PlanningVerification, "规划核实测量"),
    (SurveyKind::RealEstate, "房产测绘"),
    (SurveyKind::CivilDefenseArea, "人防面积测量"),
    (SurveyKind::Greening, "绿地测量"),
];

/// Survey figures by their simplified names.
const FIGURES: [(FigureName, &str); 8] = [
    (FigureName::LandArea, "用地面积"),
    (FigureName::FloorAreaAboveGround, "地上建筑面积"),
    (FigureName::FloorAreaBelowGround, "地下建筑面积"),
    (FigureName::BuildingHeight, "建筑高度"),
    (FigureName::GreeningArea, "绿地面积"),
    (FigureName::GreeningRatio, "绿地率"),
    (FigureName::CivilDefenseArea, "人防面积"),
    (FigureName::PropertyUnits, "房屋套数"),
];

fn parse_time(text: &str) -> Result<ShanghaiTime, Problem> {
    ShanghaiTime::parse_local(text, TIME)
}

/// A figure's value as this format writes it: areas in 公顷, heights in 米, the ratio in %,
/// counts in 套.
fn figure_text(value: &FigureValue) -> String {
    match value {
        FigureValue::Area(area) => format!("{}公顷", area.in_unit(AreaUnit::Hectare)),
        FigureValue::Length(_) => format!("{}米", FigureName::value_text(value)),
        FigureValue::Percent(_) => format!("{}%", FigureName::value_text(value)),
        FigureValue::Count(_) => format!("{}套", FigureName::value_text(value)),
    }
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

/// The native survey notice, in the key order the specification lists.
#[derive(Serialize)]
struct SurveyMessage<'a> {
    #[serde(rename = "报文")]
    header: Header<'a>,
    #[serde(rename = "测绘成果")]
    survey: SurveyOut<'a>,
}

#[derive(Serialize)]
struct SurveyOut<'a> {
    #[serde(rename = "成果编号")]
    survey_id: &'a str,
    #[serde(rename = "替代成果编号", skip_serializing_if = "Option::is_none")]
    supersedes: Option<&'a str>,
    #[serde(rename = "项目代码")]
    project: &'a str,
    #[serde(rename = "测绘类型")]
    kind: &'static str,
    #[serde(rename = "测绘单位")]
    agency: ApplicantOut<'a>,
    #[serde(rename = "版本号")]
    version: String,
    #[serde(rename = "测绘日期")]
    surveyed_on: String,
    #[serde(rename = "指标")]
    figures: Vec<FigureOut>,
    #[serde(rename = "附件")]
    files: Vec<FileOut<'a>>,
}

#[derive(Serialize)]
struct FigureOut {
    #[serde(rename = "名称")]
    name: &'static str,
    #[serde(rename = "数值")]
    value: String,
}

#[derive(Serialize)]
struct FileOut<'a> {
    #[serde(rename = "文件名")]
    name: &'a str,
    #[serde(rename = "类型")]
    media_type: &'a str,
    #[serde(rename = "摘要")]
    sha256: &'a str,
    #[serde(rename = "大小")]
    size: String,
}

const ROOT_KEYS: [&str; 2] = ["报文", "办件"];

/// How the bureau's system spells the gateway's joint-case (联合审批) and deadline (办理时限提醒)
/// notices: simplified-Chinese keys and values, items by simplified name, ISO dates, 是/否,
/// numbers as strings (whole JSON numbers read too).
const NOTICES: Dialect = Dialect {
    names: Names {
        joint: "联合审批",
        deadline: "办理时限提醒",
        joint_case_id: "联合审批编号",
        flow: "审批流程",
        version: "版本号",
        project_code: "项目代码",
        project_name: "项目名称",
        window_case_id: "窗口办件号",
        status: "状态",
        opened_on: "受理日期",
        due: "到期日期",
        provisional: "暂定",
        calendar: "工作日历",
        branches: Some("分项审批"),
        branch: "分项",
        bureau: "审批部门",
        item: "事项",
        required: "必办",
        case_id: "办件号",
        sequence: "序号",
        state: "提醒类型",
        working_days: "工作日数",
        credit: "信用名单",
        credit_match: "信用名单匹配",
        entry_id: "名单编号",
        list: "名单类型",
        subject_name: "主体名称",
        credit_code: "统一社会信用代码",
        measures: "惩戒措施",
        issued_by: "认定部门",
        legal_basis: "认定依据",
        document_number: "文书号",
        valid_from: "有效期起",
        valid_to: "有效期止",
        removed_on: "移出日期",
        removal_reason: "移出原因",
        publisher: "发布部门",
    },
    bureaus: SENDERS,
    item_text: |item| Cow::Borrowed(item.name_zh_simplified()),
    parse_item,
    joint_statuses: &[
        (JointStatus::Open, "审批中"),
        (JointStatus::Approved, "准予许可"),
        (JointStatus::Rejected, "不予许可"),
        (JointStatus::Withdrawn, "已撤回"),
        (JointStatus::Terminated, "已终止"),
    ],
    branch_statuses: &[
        (BranchStatus::Waiting, "待申报"),
        (BranchStatus::Submitted, "已申报"),
        (BranchStatus::Accepted, "已受理"),
        (BranchStatus::SupplementRequested, "补正"),
        (BranchStatus::Approved, "准予许可"),
        (BranchStatus::Rejected, "不予许可"),
        (BranchStatus::Withdrawn, "已撤回"),
    ],
    states: &[
        (DeadlineState::Approaching, "临近到期"),
        (DeadlineState::Passed, "已超期"),
    ],
    lists: &[
        (CreditList::Dishonest, "失信名单"),
        (CreditList::KeySupervision, "重点监管名单"),
        (CreditList::Red, "红名单"),
    ],
    yes_no: &[(true, "是"), (false, "否")],
    dates: DateStyle::Iso,
    json: JsonScalars::Lenient,
};
const SURVEY_ROOT_KEYS: [&str; 2] = ["报文", "测绘成果"];
const SURVEY_KEYS: [&str; 9] = [
    "成果编号",
    "替代成果编号",
    "项目代码",
    "测绘类型",
    "测绘单位",
    "版本号",
    "测绘日期",
    "指标",
    "附件",
];
const FIGURE_KEYS: [&str; 2] = ["名称", "数值"];
const FILE_KEYS: [&str; 4] = ["文件名", "类型", "摘要", "大小"];
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

/// The header `报文` as read: its object (for error reports) and its three values.
struct HeaderIn<'a> {
    obj: Option<Obj<'a>>,
    message_id: Option<MessageId>,
    source: Option<BureauId>,
    occurred_at: Option<ShanghaiTime>,
}

/// Reads an organization `{ 名称, 统一社会信用代码 }`.
fn organization(
    parent: &Obj<'_>,
    key: &str,
    name_field: F,
    code_field: F,
    n: &mut Normalizer,
) -> (Option<Name>, Option<CreditCode>) {
    match parent.object(key, name_field, n) {
        Some(o) => {
            o.check_keys(&APPLICANT_KEYS, n);
            (
                o.string(n, name_field, "名称", Name::parse),
                o.string(n, code_field, "统一社会信用代码", CreditCode::parse),
            )
        }
        None => (None, None),
    }
}

impl Greenery {
    fn decode_document(root: &Obj<'_>, n: &mut Normalizer) -> Option<Event> {
        const BODIES: [&str; 6] = [
            "办件",
            "测绘成果",
            "联合审批",
            "办理时限提醒",
            "信用名单",
            "信用名单匹配",
        ];
        let body = root.bodies(
            &BODIES,
            "a message carries one of 办件 (a case), 测绘成果 (a survey notice), 联合审批 (a joint case), 办理时限提醒 (a deadline notice), 信用名单 (a credit-list entry) and 信用名单匹配 (a credit match)",
            n,
        )?;
        match body {
            Some("测绘成果") => Self::decode_survey(root, n),
            Some(key @ ("联合审批" | "办理时限提醒" | "信用名单" | "信用名单匹配")) =>
            {
                root.check_keys(&["报文", key], n);
                let header = Self::decode_header(root, n);
                let header = notices::Header {
                    message_id: header.message_id,
                    source: header.source,
                    occurred_at: header.occurred_at,
                };
                let body = root.object(key, F::Document, n)?;
                notices::read_notice_json(&NOTICES, key, &body, header, n)
            }
            _ => Self::decode_case(root, n),
        }
    }

    /// A joint-case or deadline notice document: `报文`, then the body under `key`.
    fn encode_notice(
        event: &Event,
        key: &'static str,
        body: Ordered,
    ) -> Result<Encoded, EncodeError> {
        let mut header = Ordered(Vec::with_capacity(3));
        header.push("编号", event.message_id.as_str());
        header.push("发送部门", SENDERS.code(event.source));
        header.push("时间", event.occurred_at.format_local(TIME));
        let message = Ordered(vec![
            ("报文", Json::Object(header)),
            (key, Json::Object(body)),
        ]);
        to_json(&message)
    }

    fn decode_header<'a>(root: &Obj<'a>, n: &mut Normalizer) -> HeaderIn<'a> {
        let obj = root.object("报文", F::Document, n);
        let (message_id, source, occurred_at) = match &obj {
            Some(h) => {
                h.check_keys(&HEADER_KEYS, n);
                (
                    h.string(n, F::MessageId, "编号", MessageId::parse),
                    h.string(n, F::Source, "发送部门", |t| {
                        SENDERS.parse(t, "sending department")
                    }),
                    h.string(n, F::OccurredAt, "时间", parse_time),
                )
            }
            None => (None, None, None),
        };
        HeaderIn {
            obj,
            message_id,
            source,
            occurred_at,
        }
    }

    fn decode_survey(root: &Obj<'_>, n: &mut Normalizer) -> Option<Event> {
        root.check_keys(&SURVEY_ROOT_KEYS, n);
        let header = Self::decode_header(root, n);
        let s = root.object("测绘成果", F::Document, n)?;
        s.check_keys(&SURVEY_KEYS, n);
        // The survey id names the published version, as a case id names a case.
        let survey_id = s.string(n, F::SurveyId, "成果编号", SurveyId::parse);
        let supersedes = s.string_opt(n, F::SurveySupersedes, "替代成果编号", SurveyId::parse);
        let project = s.string(n, F::SurveyProject, "项目代码", ProjectCode::parse);
        let kind = s.string(n, F::SurveyKind, "测绘类型", |t| {
            lookup(&SURVEY_KINDS, t, "survey kind (simplified)")
        });
        let (agency_name, agency_code) = organization(
            &s,
            "测绘单位",
            F::SurveyAgencyName,
            F::SurveyAgencyCreditCode,
            n,
        );
        let version = s.string_or_integer(
            n,
            F::SurveyVersion,
            "版本号",
            bounds!(1, 4294967295),
            parse_version,
        );
        let surveyed_on = s.string(n, F::SurveyedOn, "测绘日期", ShanghaiDate::parse_iso);
        let figures = s.figures("指标", n, Self::decode_figure);
        let files = Self::decode_files(&s, n);
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
        .build(n, || s.native("替代成果编号"));
        survey_event(header.message_id, header.source, header.occurred_at, notice)
    }

    /// Reads one `{ 名称, 数值 }` of `指标` into `figures`.
    fn decode_figure(f: &Obj<'_>, figures: &mut FigureSet, n: &mut Normalizer) {
        f.check_keys(&FIGURE_KEYS, n);
        let name = f.string(n, F::SurveyFigure, "名称", |t| {
            lookup(&FIGURES, t, "figure name (simplified)")
        });
        let quantity = match name {
            Some(name) => f.string(n, F::SurveyFigure, "数值", |t| name.parse_value(t)),
            // Without a known name the value cannot be read; it is still required.
            None => f.string(n, F::SurveyFigure, "数值", |_| Ok(())).and(None),
        };
        figures.push(n, name, quantity, || f.native("名称"));
    }

    fn decode_files(s: &Obj<'_>, n: &mut Normalizer) -> Option<Vec<FileRef>> {
        let items = s.objects("附件", F::SurveyFile, n)?;
        let mut files = Vec::with_capacity(items.len());
        let mut complete = true;
        for item in items {
            let Some(f) = item else {
                complete = false;
                continue;
            };
            f.check_keys(&FILE_KEYS, n);
            let name = f.string(n, F::SurveyFile, "文件名", Name::parse);
            let media_type = f.string(n, F::SurveyFile, "类型", parse_media_type);
            let sha256 = f.string(n, F::SurveyFile, "摘要", Sha256Hex::parse);
            let size = f.string_or_integer(
                n,
                F::SurveyFile,
                "大小",
                bounds!(0, 18446744073709551615),
                parse_size,
            );
            match (name, media_type, sha256, size) {
                (Some(name), Some(media_type), Some(sha256), Some(size_bytes)) => {
                    files.push(FileRef {
                        name,
                        media_type,
                        sha256,
                        size_bytes,
                    });
                }
                _ => complete = false,
            }
        }
        complete.then_some(files)
    }

    fn decode_case(root: &Obj<'_>, n: &mut Normalizer) -> Option<Event> {
        root.check_keys(&ROOT_KEYS, n);
        let HeaderIn {
            obj: header,
            message_id,
            source,
            occurred_at,
        } = Self::decode_header(root, n);
        let case = root.object("办件", F::Document, n);

        let c = case.as_ref()?;
        c.check_keys(&CASE_KEYS, n);
        let case_id = c.string(n, F::CaseId, "办件号", BureauCaseId::parse);
        let sequence = c.string_or_integer(
            n,
            F::Sequence,
            "版本号",
            bounds!(1, 999999999999999999),
            parse_sequence,
        );
        let item = c.string(n, F::Item, "事项", parse_item);
        let stage = c.string(n, F::Stage, "阶段", |t| {
            lookup(&STAGES, t, "stage name (simplified)")
        });
        let status = c.string(n, F::Status, "状态", |t| {
            lookup(&STATUSES, t, "case status (simplified)")
        });
        let district = c.string(n, F::District, "区", District::parse_name);

        let project = c.object("项目", F::ProjectCode, n);
        let (project_code, project_name) = match &project {
            Some(p) => {
                p.check_keys(&PROJECT_KEYS, n);
                (
                    p.string(n, F::ProjectCode, "代码", ProjectCode::parse),
                    p.string(n, F::ProjectName, "名称", Name::parse),
                )
            }
            None => (None, None),
        };
        let (applicant_name, credit_code) =
            organization(c, "申请单位", F::ApplicantName, F::ApplicantCreditCode, n);

        let submitted_at = c.string(n, F::SubmittedAt, "申报时间", parse_time);
        let time_limit = c.string(n, F::TimeLimit, "办理时限", WorkingDays::parse);
        let floor_area = c.nullable_string_opt(n, F::FloorArea, "建筑面积", Area::parse);
        let investment = c.nullable_string_opt(n, F::Investment, "总投资", Money::parse);
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
        parts.into_event(n, || match &header {
            Some(h) => h.native("时间"),
            None => NativeValue::new("/报文/时间", ""),
        })
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
        one_event(|n| Obj::root(&value, n).and_then(|root| Self::decode_document(&root, n)))
    }

    fn write(&self, event: &Event) -> Result<Encoded, EncodeError> {
        let case = match &event.payload {
            Payload::Case(case) => case,
            Payload::Survey(notice) => return Self::encode_survey(event, notice),
            Payload::Joint(_)
            | Payload::Deadline(_)
            | Payload::Credit(_)
            | Payload::CreditMatch(_) => {
                let Some((key, body)) = notices::write_notice_json(&NOTICES, event) else {
                    unreachable!("a notice payload has a notice body")
                };
                return Self::encode_notice(event, key, body);
            }
        };
        let message = Message {
            header: Header {
                message_id: event.message_id.as_str(),
                sender: SENDERS.code(event.source),
                time: event.occurred_at.format_local(TIME),
            },
            case: CaseOut {
                case_id: event.case_id.as_str(),
                sequence: event.sequence.to_string(),
                item: case.item.name_zh_simplified(),
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
        to_json(&message)
    }
}

/// Writes a native document (pretty JSON and a final newline).
fn to_json(message: &impl Serialize) -> Result<Encoded, EncodeError> {
    encode_pretty(BureauId::Greenery, &FORMAT, message, FinalNewline::Yes)
}

impl Greenery {
    fn encode_survey(event: &Event, notice: &SurveyNotice) -> Result<Encoded, EncodeError> {
        let result = &notice.result;
        // A value in another figure's unit, or a figure given twice, is refused by `encode`
        // (the canonical rules), before it gets here.
        let figures = result
            .figures
            .iter()
            .map(|figure| FigureOut {
                name: code_of(&FIGURES, figure.name),
                value: figure_text(&figure.quantity),
            })
            .collect();
        let message = SurveyMessage {
            header: Header {
                message_id: event.message_id.as_str(),
                sender: SENDERS.code(event.source),
                time: event.occurred_at.format_local(TIME),
            },
            survey: SurveyOut {
                survey_id: notice.survey_id.as_str(),
                supersedes: notice.supersedes.as_ref().map(SurveyId::as_str),
                project: result.project.as_str(),
                kind: code_of(&SURVEY_KINDS, result.kind),
                agency: ApplicantOut {
                    name: result.agency.name.as_str(),
                    credit_code: result.agency.credit_code.as_str(),
                },
                version: result.version.to_string(),
                surveyed_on: result.surveyed_on.to_string(),
                figures,
                files: result
                    .files
                    .iter()
                    .map(|file| FileOut {
                        name: file.name.as_str(),
                        media_type: &file.media_type,
                        sha256: file.sha256.as_str(),
                        size: file.size_bytes.to_string(),
                    })
                    .collect(),
            },
        };
        to_json(&message)
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
            assert_eq!(parse_item(item.name_zh_simplified()), Ok(item));
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
            assert_eq!(SENDERS.parse(SENDERS.code(bureau), "sender"), Ok(bureau));
        }
        assert!(all_distinct(&STAGES.map(|(_, name)| name)));
        assert!(all_distinct(&STATUSES.map(|(_, name)| name)));
        for kind in SurveyKind::ALL {
            assert_eq!(
                lookup(&SURVEY_KINDS, code_of(&SURVEY_KINDS, kind), "kind"),
                Ok(kind)
            );
        }
        for figure in FigureName::ALL {
            assert_eq!(
                lookup(&FIGURES, code_of(&FIGURES, figure), "figure"),
                Ok(figure)
            );
        }
        assert!(all_distinct(&SURVEY_KINDS.map(|(_, name)| name)));
        assert!(all_distinct(&FIGURES.map(|(_, name)| name)));
    }

    fn survey_body() -> serde_json::Value {
        let mut rng = fastrand::Rng::with_seed(5);
        let event = crate::sample::survey_event(&mut rng);
        let body = Greenery.encode(&event).expect("encodes").body;
        serde_json::from_slice(&body).expect("json")
    }

    fn decode_errors(value: &serde_json::Value) -> Vec<(String, &'static str)> {
        let body = serde_json::to_vec(value).expect("json");
        match Greenery.decode(&body, "application/json") {
            Err(DecodeError::Invalid(errors)) => errors
                .into_iter()
                .map(|e| (e.path, e.field.as_str()))
                .collect(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn survey_notice_is_written_in_the_case_format_dialect() {
        let value = survey_body();
        let survey = &value["测绘成果"];
        assert!(value.get("办件").is_none());
        assert!(survey["成果编号"].as_str().unwrap().starts_with("sv-"));
        assert!(survey["版本号"].is_string());
        let date = survey["测绘日期"].as_str().unwrap();
        assert!(ShanghaiDate::parse_iso(date).is_ok(), "{date}");
        for figure in survey["指标"].as_array().unwrap() {
            let value = figure["数值"].as_str().unwrap();
            assert!(
                ["公顷", "米", "%", "套"].iter().any(|u| value.ends_with(u)),
                "{value}"
            );
        }
        for file in survey["附件"].as_array().unwrap() {
            assert!(
                file["大小"]
                    .as_str()
                    .unwrap()
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            );
        }
    }

    #[test]
    fn survey_values_are_rejected_with_their_paths_all_at_once() {
        let mut value = survey_body();
        let survey = value["测绘成果"].as_object_mut().unwrap();
        survey.insert(
            "指标".into(),
            serde_json::json!([
                {"名称": "绿地率", "数值": "11,6%"},
                {"名称": "建筑高度", "数值": "99.5㎡"},
                {"名称": "绿地率", "数值": "35%"},
                {"名称": "绿化率", "数值": "35%"},
                "绿地面积"
            ]),
        );
        survey.insert(
            "附件".into(),
            serde_json::json!([{"文件名": "a.pdf", "类型": "pdf", "摘要": "abc", "大小": "1.5"}]),
        );
        survey.insert("测绘类型".into(), "綠地測量".into());
        survey.insert("备注".into(), "x".into());
        let errors = decode_errors(&value);
        for (path, field) in [
            ("/测绘成果/指标/0/数值", "survey.figures"),
            ("/测绘成果/指标/1/数值", "survey.figures"),
            ("/测绘成果/指标/2/名称", "survey.figures"),
            ("/测绘成果/指标/3/名称", "survey.figures"),
            ("/测绘成果/指标/4", "survey.figures"),
            ("/测绘成果/附件/0/类型", "survey.files"),
            ("/测绘成果/附件/0/摘要", "survey.files"),
            ("/测绘成果/附件/0/大小", "survey.files"),
            ("/测绘成果/测绘类型", "survey.kind"),
            ("/测绘成果/备注", "document"),
        ] {
            assert!(
                errors.iter().any(|(p, f)| p == path && *f == field),
                "{path}: {errors:?}"
            );
        }
    }

    #[test]
    fn a_message_is_a_case_or_a_survey_notice_not_both() {
        let mut value = survey_body();
        value["办件"] = serde_json::json!({});
        assert_eq!(
            decode_errors(&value),
            [("/测绘成果".to_owned(), "document")]
        );
        let mut value = survey_body();
        let id = value["测绘成果"]["成果编号"].clone();
        value["测绘成果"]["替代成果编号"] = id;
        assert_eq!(
            decode_errors(&value),
            [("/测绘成果/替代成果编号".to_owned(), "survey.version")]
        );
    }

    #[test]
    fn item_names_are_the_simplified_spellings() {
        assert_eq!(parse_item("树木砍伐审批"), Ok(Item::TreeFelling));
        assert_eq!(
            parse_item("建设工程规划许可证"),
            Ok(Item::ConstructionPlanningPermit)
        );
        // The traditional spelling is not this format's vocabulary.
        assert!(parse_item(Item::TreeFelling.name_zh()).is_err());
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

    #[test]
    fn notice_tables_are_complete_and_distinct() {
        crate::notices::tests::dialect_tables_are_complete(&NOTICES);
    }
}
