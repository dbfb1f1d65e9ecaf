//! Water Authority (市水務局): XML in GB18030, Chinese element names in traditional characters,
//! Shanghai local times without offset, Chinese vocabulary for every code, quantities written
//! with their unit in one text.
//!
//! Specification: `schemas/bureaus/water/message.xsd`. One document carries one event: a case
//! event (root `水務辦件報文`) or a survey notice (root `多測合一成果通知`); the decoder dispatches
//! on the root element. A case event:
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
//! A survey notice (multi-survey-in-one result shared with the authority):
//!
//! ```text
//! 多測合一成果通知[@版本="1.0"]
//!   報文頭/報文編號, 報文頭/發送單位, 報文頭/發生時間 (as in 水務辦件報文; the time the result
//!        was published)
//!   成果/成果編號 (survey id sv-<32 hex>), 替代成果編號? (the survey id this version supersedes),
//!        項目代碼, 測繪類型 (規劃核實測量 / 房產測繪 / 人防面積測量 / 綠地測量),
//!        測繪單位 (agency name), 統一社會信用代碼 (agency's), 版本 (1, 2, ...),
//!        測繪日期 (YYYY-MM-DD),
//!        指標/指標項* (in order) with 名稱 (用地面積 / 地上建築面積 / 地下建築面積 / 建築高度 /
//!             綠地面積 / 綠地率 / 人防面積 / 房屋套數) and 數值 (number and unit in one text:
//!             1234.5平方米, 99.5米, 35.5%, 120套),
//!        附件/文件* (in order) with 文件名, 類型 (media type, e.g. application/pdf),
//!             摘要 (SHA-256 of the content, 64 hex digits), 大小 (size, e.g. 1048576字節)
//! ```
//!
//! The event's case id (`SV-<項目代碼>-<kind>`), sequence (the version) and kind (published, or
//! superseded when 替代成果編號 is given) follow from the notice and are not written. Each figure
//! name occurs at most once. The encoder writes areas in 平方米, heights in 米, ratios in %,
//! counts in 套 and sizes in 字節.
//!
//! The document is encoded in GB18030 and says so in its declaration (GBK, its subset, is read
//! too). Times carry no offset: the specification fixes them as Shanghai time. Elements carry no
//! attributes except the root's `版本`. The encoder writes districts by traditional name, areas in
//! 平方米 and investments in 萬元.
//!
//! The gateway's joint-case and deadline notices are two more documents: `並聯審批通知` (報文頭,
//! 並聯審批) and `辦理時限提醒` (報文頭, 時限提醒), element names and codes in traditional Chinese as
//! `NOTICES` spells them (審批中 / 準予許可 / 不予許可 / 已撤回 / 已終止; a branch 待申報 or its case's
//! status; 臨近到期 / 已超期), items by name, bureaus by short name, `到期日期[@暫定]` with 是/否.

use encoding_rs::GB18030;
use schemas::CreditList;
use schemas::model::{Name, parse_sequence};
use schemas::quantity::{AreaUnit, MoneyUnit};
use schemas::survey::parse_media_type;
use schemas::text::clean;
use schemas::{
    Area, BureauCaseId, BureauId, CanonicalField as F, CaseStatus, CreditCode, District, Event,
    FigureName, FigureSet, FigureValue, FileRef, Item, LocalFormat, MessageId, Money, NativeValue,
    Normalizer, Payload, Problem, ProjectCode, Sha256Hex, ShanghaiDate, ShanghaiTime, Stage,
    SurveyId, SurveyKind, SurveyNotice, SurveyNoticeParts, WorkingDays,
};

use crate::adapter::{Adapter, DecodeError, EncodeError, Encoded, NativeFormat, Syntax};
use crate::assemble::{CaseParts, one_event, survey_event};
use crate::notices::{self, DateStyle, Dialect, JsonScalars, Names};
use crate::vocabulary::{BureauSpelling, code_of, item_named, lookup};
use crate::xml::{self, Element, XmlWriter, decode_text, truncate};
use schemas::survey::{parse_size, parse_version};
use schemas::{BranchStatus, DeadlineState, JointStatus};
use std::borrow::Cow;

const ROOT: &str = "水務辦件報文";
const SURVEY_ROOT: &str = "多測合一成果通知";
const JOINT_ROOT: &str = "並聯審批通知";
const DEADLINE_ROOT: &str = "辦理時限提醒";
const CREDIT_ROOT: &str = "信用名單通知";
const CREDIT_MATCH_ROOT: &str = "信用名單匹配通知";

/// How the format spells a bureau (from the shared names, `schemas::BureauId::names`).
const BUREAUS: BureauSpelling = BureauSpelling::ShortZh;

/// How the authority's system spells the gateway's joint-case and deadline notices: element
/// names and every code in traditional Chinese, items by name, bureaus by short name, ISO
/// dates, 是/否.
const NOTICES: Dialect = Dialect {
    names: Names {
        joint: "並聯審批",
        deadline: "時限提醒",
        joint_case_id: "並聯審批編號",
        flow: "審批流程",
        version: "版本",
        project_code: "項目代碼",
        project_name: "項目名稱",
        window_case_id: "窗口辦件編號",
        status: "狀態",
        opened_on: "受理日期",
        due: "到期日期",
        provisional: "暫定",
        calendar: "工作日曆",
        branches: Some("分項審批"),
        branch: "分項",
        bureau: "審批部門",
        item: "事項名稱",
        required: "必辦",
        case_id: "辦件編號",
        sequence: "序號",
        state: "提醒類型",
        working_days: "工作日數",
        credit: "信用名單",
        credit_match: "信用名單匹配",
        entry_id: "名單編號",
        list: "名單類型",
        subject_name: "主體名稱",
        credit_code: "統一社會信用代碼",
        measures: "懲戒措施",
        issued_by: "認定部門",
        legal_basis: "認定依據",
        document_number: "文書號",
        valid_from: "有效期起",
        valid_to: "有效期止",
        removed_on: "移出日期",
        removal_reason: "移出原因",
        publisher: "發布部門",
    },
    bureaus: BUREAUS,
    item_text: |item| Cow::Borrowed(item.name_zh()),
    parse_item,
    joint_statuses: &[
        (JointStatus::Open, "審批中"),
        (JointStatus::Approved, "準予許可"),
        (JointStatus::Rejected, "不予許可"),
        (JointStatus::Withdrawn, "已撤回"),
        (JointStatus::Terminated, "已終止"),
    ],
    branch_statuses: &[
        (BranchStatus::Waiting, "待申報"),
        (BranchStatus::Submitted, "已申報"),
        (BranchStatus::Accepted, "已受理"),
        (BranchStatus::SupplementRequested, "補正"),
        (BranchStatus::Approved, "準予許可"),
        (BranchStatus::Rejected, "不予許可"),
        (BranchStatus::Withdrawn, "已撤回"),
    ],
    states: &[
        (DeadlineState::Approaching, "臨近到期"),
        (DeadlineState::Passed, "已超期"),
    ],
    lists: &[
        (CreditList::Dishonest, "失信名單"),
        (CreditList::KeySupervision, "重點監管名單"),
        (CreditList::Red, "紅名單"),
    ],
    yes_no: &[(true, "是"), (false, "否")],
    dates: DateStyle::Iso,
    json: JsonScalars::Typed,
};
const HEADER: &str = "報文頭";
const CASE: &str = "辦件";
const SURVEY: &str = "成果";
const FIGURES: &str = "指標";
const FIGURE: &str = "指標項";
const FILES: &str = "附件";
const FILE: &str = "文件";
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

const SURVEY_FIELDS: [&str; 10] = [
    "成果編號",
    "替代成果編號",
    "項目代碼",
    "測繪類型",
    "測繪單位",
    "統一社會信用代碼",
    "版本",
    "測繪日期",
    FIGURES,
    FILES,
];
const FIGURE_FIELDS: [&str; 2] = ["名稱", "數值"];
const FILE_FIELDS: [&str; 4] = ["文件名", "類型", "摘要", "大小"];

const SURVEY_KINDS: [(SurveyKind, &str); 4] = [
    (SurveyKind::PlanningVerification, "規劃核實測量"),
    (SurveyKind::RealEstate, "房產測繪"),
    (SurveyKind::CivilDefenseArea, "人防面積測量"),
    (SurveyKind::Greening, "綠地測量"),
];

const FIGURE_NAMES: [(FigureName, &str); 8] = [
    (FigureName::LandArea, "用地面積"),
    (FigureName::FloorAreaAboveGround, "地上建築面積"),
    (FigureName::FloorAreaBelowGround, "地下建築面積"),
    (FigureName::BuildingHeight, "建築高度"),
    (FigureName::GreeningArea, "綠地面積"),
    (FigureName::GreeningRatio, "綠地率"),
    (FigureName::CivilDefenseArea, "人防面積"),
    (FigureName::PropertyUnits, "房屋套數"),
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
    static EXPECTED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let vocabulary = EXPECTED.get_or_init(|| format!("bureau short name ({})", BUREAUS.all()));
    BUREAUS.parse(text, vocabulary)
}

/// The item, by its name in traditional characters (`排水許可`).
fn parse_item(text: &str) -> Result<Item, Problem> {
    item_named(
        text,
        Item::name_zh,
        "item name in traditional characters (e.g. 排水許可)",
    )
}

fn parse_local_time(text: &str) -> Result<ShanghaiTime, Problem> {
    ShanghaiTime::parse_local(text, LOCAL)
}

/// A file size in bytes: digits, optionally followed by 字節 (or 字节).
fn parse_size_with_unit(text: &str) -> Result<u64, Problem> {
    const EXPECTED: Problem = Problem::BadFormat {
        expected: "a size in bytes such as 1048576字節",
    };
    let text = clean(text);
    let digits = ["字節", "字节"]
        .iter()
        .find_map(|unit| text.strip_suffix(unit))
        .unwrap_or(&text)
        .trim_end();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EXPECTED);
    }
    parse_size(digits)
}

/// A figure's value as the format writes it: the canonical number and the unit in one text.
fn figure_text(name: FigureName, value: &FigureValue) -> Option<String> {
    let unit = match (name.unit_symbol(), value) {
        ("m2", FigureValue::Area(_)) => "平方米",
        ("m", FigureValue::Length(_)) => "米",
        ("%", FigureValue::Percent(_)) => "%",
        ("count", FigureValue::Count(_)) => "套",
        _ => return None,
    };
    Some(format!("{}{unit}", FigureName::value_text(value)))
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

/// The message header every document carries.
struct Header<'t> {
    message_id: Option<MessageId>,
    source: Option<BureauId>,
    occurred_at: Option<ShanghaiTime>,
    occurred_text: Option<&'t str>,
    path: String,
}

impl Water {
    /// Checks the root's attributes and children and returns its header and body elements
    /// (`empty` in place of an absent one, which is rejected).
    fn split_root<'e>(
        root: &'e Element<'e>,
        body: &str,
        empty: &'e Element<'e>,
        n: &mut Normalizer,
    ) -> (&'e Element<'e>, &'e Element<'e>) {
        let r = format!("/{}", root.name);
        root.check_children(&r, &[HEADER, body], &[], n);
        root.check_attributes(&r, &[VERSION_ATTRIBUTE], n);
        if root.attribute(VERSION_ATTRIBUTE).map(clean).as_deref() != Some("1.0") {
            n.reject(
                F::Document,
                format!("{r}/@{VERSION_ATTRIBUTE}"),
                root.attribute(VERSION_ATTRIBUTE).unwrap_or(""),
                Problem::BadFormat {
                    expected: "版本 1.0",
                },
            );
        }
        let header = root.child(HEADER).unwrap_or_else(|| {
            n.reject(F::Document, format!("{r}/{HEADER}"), "", Problem::Missing);
            empty
        });
        let body = root.child(body).unwrap_or_else(|| {
            n.reject(F::Document, format!("{r}/{body}"), "", Problem::Missing);
            empty
        });
        (header, body)
    }

    fn decode_header<'t>(header: &'t Element<'t>, hp: String, n: &mut Normalizer) -> Header<'t> {
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
        Header {
            message_id,
            source,
            occurred_at,
            occurred_text,
            path: hp,
        }
    }

    fn decode_case(root: &Element, n: &mut Normalizer) -> Option<Event> {
        let r = format!("/{ROOT}");
        let empty = Element::default();
        let (header, case) = Self::split_root(root, CASE, &empty, n);
        let head = Self::decode_header(header, format!("{r}/{HEADER}"), n);

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
        let parts = CaseParts {
            message_id: head.message_id,
            source: head.source,
            case_id,
            sequence,
            occurred_at: head.occurred_at,
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
            NativeValue::new(
                format!("{}/發生時間", head.path),
                head.occurred_text.unwrap_or(""),
            )
        })
    }

    fn decode_survey(root: &Element, n: &mut Normalizer) -> Option<Event> {
        let r = format!("/{SURVEY_ROOT}");
        let empty = Element::default();
        let (header, survey) = Self::split_root(root, SURVEY, &empty, n);
        let head = Self::decode_header(header, format!("{r}/{HEADER}"), n);

        let sp = format!("{r}/{SURVEY}");
        survey.check_children(&sp, &SURVEY_FIELDS, &[], n);
        survey.check_attributes(&sp, &[], n);
        let s = |name: &str| format!("{sp}/{name}");
        let text = leaf(survey, "成果編號", &sp, n);
        let survey_id = n.field(F::SurveyId, || s("成果編號"), text, SurveyId::parse);
        let text = leaf(survey, "替代成果編號", &sp, n);
        let supersedes = n.optional(
            F::SurveySupersedes,
            || s("替代成果編號"),
            text,
            SurveyId::parse,
        );
        let text = leaf(survey, "項目代碼", &sp, n);
        let project = n.field(F::SurveyProject, || s("項目代碼"), text, ProjectCode::parse);
        let text = leaf(survey, "測繪類型", &sp, n);
        let kind = n.field(
            F::SurveyKind,
            || s("測繪類型"),
            text,
            |t| {
                lookup(
                    &SURVEY_KINDS,
                    t,
                    "survey kind (規劃核實測量, 房產測繪, 人防面積測量, 綠地測量)",
                )
            },
        );
        let text = leaf(survey, "測繪單位", &sp, n);
        let agency_name = n.field(F::SurveyAgencyName, || s("測繪單位"), text, Name::parse);
        let text = leaf(survey, "統一社會信用代碼", &sp, n);
        let agency_code = n.field(
            F::SurveyAgencyCreditCode,
            || s("統一社會信用代碼"),
            text,
            CreditCode::parse,
        );
        let text = leaf(survey, "版本", &sp, n);
        let version = n.field(F::SurveyVersion, || s("版本"), text, parse_version);
        let text = leaf(survey, "測繪日期", &sp, n);
        let surveyed_on = n.field(
            F::SurveyedOn,
            || s("測繪日期"),
            text,
            ShanghaiDate::parse_iso,
        );
        let figures = Self::decode_figures(survey, &sp, n);
        let files = Self::decode_files(survey, &sp, n);
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
            files: Some(files),
        }
        .build(n, || {
            let text = survey.text_of("替代成果編號").unwrap_or("");
            NativeValue::new(s("替代成果編號"), text)
        });
        survey_event(head.message_id, head.source, head.occurred_at, notice)
    }

    /// The container of a survey's repeated items (指標, 附件): required, holding only `item`.
    fn container<'e>(
        survey: &'e Element<'e>,
        name: &str,
        item: &str,
        sp: &str,
        n: &mut Normalizer,
    ) -> Option<(&'e Element<'e>, String)> {
        let path = format!("{sp}/{name}");
        let Some(container) = survey.child(name) else {
            n.reject(F::Document, path, "", Problem::Missing);
            return None;
        };
        container.check_children(&path, &[], &[item], n);
        container.check_attributes(&path, &[], n);
        Some((container, path))
    }

    /// 指標/指標項*, in document order; a figure named twice is rejected (by [`FigureSet`]).
    fn decode_figures(survey: &Element, sp: &str, n: &mut Normalizer) -> FigureSet {
        let mut figures = FigureSet::new();
        let Some((container, path)) = Self::container(survey, FIGURES, FIGURE, sp, n) else {
            figures.push_unreadable();
            return figures;
        };
        for (index, figure) in container.children_named(FIGURE).enumerate() {
            let fp = format!("{path}/{FIGURE}[{}]", index + 1);
            figure.check_children(&fp, &FIGURE_FIELDS, &[], n);
            figure.check_attributes(&fp, &[], n);
            let f = |name: &str| format!("{fp}/{name}");
            let name_text = leaf(figure, "名稱", &fp, n);
            let name = n.field(
                F::SurveyFigure,
                || f("名稱"),
                name_text,
                |t| {
                    lookup(
                        &FIGURE_NAMES,
                        t,
                        "figure name (用地面積, 地上建築面積, 地下建築面積, 建築高度, 綠地面積, 綠地率, 人防面積, 房屋套數)",
                    )
                },
            );
            let text = leaf(figure, "數值", &fp, n);
            let quantity = match name {
                Some(name) => n.field(F::SurveyFigure, || f("數值"), text, |t| name.parse_value(t)),
                None => {
                    if text.is_none() {
                        n.reject(F::SurveyFigure, f("數值"), "", Problem::Missing);
                    }
                    None
                }
            };
            figures.push(n, name, quantity, || {
                NativeValue::new(f("名稱"), name_text.unwrap_or(""))
            });
        }
        figures
    }

    /// 附件/文件*, in document order.
    fn decode_files(survey: &Element, sp: &str, n: &mut Normalizer) -> Vec<FileRef> {
        let mut files = Vec::new();
        let Some((container, path)) = Self::container(survey, FILES, FILE, sp, n) else {
            return files;
        };
        for (index, file) in container.children_named(FILE).enumerate() {
            let fp = format!("{path}/{FILE}[{}]", index + 1);
            file.check_children(&fp, &FILE_FIELDS, &[], n);
            file.check_attributes(&fp, &[], n);
            let f = |name: &str| format!("{fp}/{name}");
            let text = leaf(file, "文件名", &fp, n);
            let name = n.field(F::SurveyFile, || f("文件名"), text, Name::parse);
            let text = leaf(file, "類型", &fp, n);
            let media_type = n.field(F::SurveyFile, || f("類型"), text, parse_media_type);
            let text = leaf(file, "摘要", &fp, n);
            let sha256 = n.field(F::SurveyFile, || f("摘要"), text, Sha256Hex::parse);
            let text = leaf(file, "大小", &fp, n);
            let size_bytes = n.field(F::SurveyFile, || f("大小"), text, parse_size_with_unit);
            if let (Some(name), Some(media_type), Some(sha256), Some(size_bytes)) =
                (name, media_type, sha256, size_bytes)
            {
                files.push(FileRef {
                    name,
                    media_type,
                    sha256,
                    size_bytes,
                });
            }
        }
        files
    }

    fn encode_survey(&self, event: &Event, notice: &SurveyNotice) -> Result<Encoded, EncodeError> {
        let result = &notice.result;
        let mut w = XmlWriter::new(GB18030);
        w.open(SURVEY_ROOT, &[(VERSION_ATTRIBUTE, "1.0")]);
        Self::write_header(&mut w, event);
        w.open(SURVEY, &[]);
        w.leaf("成果編號", notice.survey_id.as_str());
        w.leaf_opt(
            "替代成果編號",
            notice.supersedes.as_ref().map(SurveyId::as_str),
        );
        w.leaf("項目代碼", result.project.as_str());
        w.leaf("測繪類型", code_of(&SURVEY_KINDS, result.kind));
        w.leaf("測繪單位", result.agency.name.as_str());
        w.leaf("統一社會信用代碼", result.agency.credit_code.as_str());
        w.leaf("版本", &result.version.to_string());
        w.leaf("測繪日期", &result.surveyed_on.to_string());
        w.open(FIGURES, &[]);
        for figure in &result.figures {
            let value = figure_text(figure.name, &figure.quantity).ok_or_else(|| EncodeError {
                bureau: self.bureau(),
                field: "survey.figures",
                reason: format!("figure {:?} has a value of another unit", figure.name),
            })?;
            w.open(FIGURE, &[]);
            w.leaf("名稱", code_of(&FIGURE_NAMES, figure.name));
            w.leaf("數值", &value);
            w.close(FIGURE);
        }
        w.close(FIGURES);
        w.open(FILES, &[]);
        for file in &result.files {
            w.open(FILE, &[]);
            w.leaf("文件名", file.name.as_str());
            w.leaf("類型", &file.media_type);
            w.leaf("摘要", file.sha256.as_str());
            w.leaf("大小", &format!("{}字節", file.size_bytes));
            w.close(FILE);
        }
        w.close(FILES);
        w.close(SURVEY);
        w.close(SURVEY_ROOT);
        Ok(Encoded {
            content_type: FORMAT.media_type.to_owned(),
            body: w.finish(),
        })
    }

    /// A joint-case or deadline notice: 報文頭 and the body the dialect names.
    fn decode_notice(root: &Element, n: &mut Normalizer) -> Option<Event> {
        let r = format!("/{}", root.name);
        let names = &NOTICES.names;
        let body_name = match root.name.as_str() {
            JOINT_ROOT => names.joint,
            CREDIT_ROOT => names.credit,
            CREDIT_MATCH_ROOT => names.credit_match,
            _ => names.deadline,
        };
        let empty = Element::default();
        let (header, body) = Self::split_root(root, body_name, &empty, n);
        let head = Self::decode_header(header, format!("{r}/{HEADER}"), n);
        let header = notices::Header {
            message_id: head.message_id,
            source: head.source,
            occurred_at: head.occurred_at,
        };
        let body_path = format!("{r}/{body_name}");
        let read = match root.name.as_str() {
            JOINT_ROOT => notices::read_joint_xml,
            CREDIT_ROOT => notices::read_credit_xml,
            CREDIT_MATCH_ROOT => notices::read_credit_match_xml,
            _ => notices::read_deadline_xml,
        };
        read(&NOTICES, body, &body_path, &[], header, n)
    }

    fn encode_notice(event: &Event) -> Encoded {
        let (root, body) = match &event.payload {
            Payload::Joint(_) => (JOINT_ROOT, NOTICES.names.joint),
            Payload::Credit(_) => (CREDIT_ROOT, NOTICES.names.credit),
            Payload::CreditMatch(_) => (CREDIT_MATCH_ROOT, NOTICES.names.credit_match),
            _ => (DEADLINE_ROOT, NOTICES.names.deadline),
        };
        let mut w = XmlWriter::new(GB18030);
        w.open(root, &[(VERSION_ATTRIBUTE, "1.0")]);
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
        Encoded {
            content_type: FORMAT.media_type.to_owned(),
            body: w.finish(),
        }
    }

    fn write_header(w: &mut XmlWriter, event: &Event) {
        w.open(HEADER, &[]);
        w.leaf("報文編號", event.message_id.as_str());
        w.leaf("發送單位", BUREAUS.code(event.source));
        w.leaf("發生時間", &event.occurred_at.format_local(LOCAL));
        w.close(HEADER);
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
        let decode = match root.name.as_str() {
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
        one_event(|n| decode(&root, n))
    }

    fn write(&self, event: &Event) -> Result<Encoded, EncodeError> {
        let case = match &event.payload {
            Payload::Case(case) => case,
            Payload::Survey(notice) => return self.encode_survey(event, notice),
            Payload::Joint(_)
            | Payload::Deadline(_)
            | Payload::Credit(_)
            | Payload::CreditMatch(_) => return Ok(Self::encode_notice(event)),
        };
        let mut w = XmlWriter::new(GB18030);
        w.open(ROOT, &[(VERSION_ATTRIBUTE, "1.0")]);
        Self::write_header(&mut w, event);
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
    fn notice_tables_are_complete_and_distinct() {
        crate::notices::tests::dialect_tables_are_complete(&NOTICES);
        for bureau in BureauId::ALL {
            let name = BUREAUS.code(bureau);
            assert_eq!(
                parse_sender(name),
                Ok(bureau),
                "the header reads {name} alike"
            );
        }
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
        for kind in SurveyKind::ALL {
            assert_eq!(
                lookup(&SURVEY_KINDS, code_of(&SURVEY_KINDS, kind), "kind"),
                Ok(kind)
            );
        }
        for name in FigureName::ALL {
            assert_eq!(
                lookup(&FIGURE_NAMES, code_of(&FIGURE_NAMES, name), "figure"),
                Ok(name)
            );
        }
        assert!(parse_sender("市水务局").is_err());
        assert!(lookup(&SURVEY_KINDS, "房产测绘", "kind").is_err());
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

    #[test]
    fn survey_notice_collects_every_error_with_native_paths() {
        let doc = "<?xml version=\"1.0\" encoding=\"GB18030\"?>\
            <多測合一成果通知 版本=\"1.0\"><報文頭><報文編號>gw-1</報文編號><發送單位>市規資局</發送單位>\
            <發生時間>2023-05-06 10:00:00</發生時間></報文頭><成果>\
            <成果編號>sv-0123456789abcdef0123456789abcdeg</成果編號>\
            <項目代碼>2201-310115-04-01-123456</項目代碼><測繪類型>房产测绘</測繪類型>\
            <測繪單位>上海測繪院</測繪單位><統一社會信用代碼>91350100M000100Y44</統一社會信用代碼>\
            <版本>0</版本><測繪日期>2023-02-30</測繪日期>\
            <指標><指標項><名稱>綠地率</名稱><數值>11,6%</數值></指標項>\
            <指標項><名稱>建築高度</名稱><數值>99.5平方米</數值></指標項>\
            <指標項><名稱>綠地率</名稱><數值>11.6%</數值></指標項>\
            <指標項><名稱>容積率</名稱></指標項></指標>\
            <附件><文件><文件名>報告.pdf</文件名><類型>pdf</類型><摘要>abc</摘要><大小>12KB</大小>\
            <備註>x</備註></文件></附件></成果></多測合一成果通知>";
        let (bytes, _, _) = GB18030.encode(doc);
        let Err(DecodeError::Invalid(errors)) = Water.decode(&bytes, "application/xml") else {
            panic!("accepted");
        };
        let found: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.path.as_str(), e.field.as_str()))
            .collect();
        let r = "/多測合一成果通知/成果";
        for (path, field) in [
            (format!("{r}/成果編號"), "survey.survey_id"),
            (format!("{r}/測繪類型"), "survey.kind"),
            (format!("{r}/統一社會信用代碼"), "survey.agency.credit_code"),
            (format!("{r}/版本"), "survey.version"),
            (format!("{r}/測繪日期"), "survey.surveyed_on"),
            (format!("{r}/指標/指標項[1]/數值"), "survey.figures"),
            (format!("{r}/指標/指標項[2]/數值"), "survey.figures"),
            (format!("{r}/指標/指標項[3]/名稱"), "survey.figures"),
            (format!("{r}/指標/指標項[4]/名稱"), "survey.figures"),
            (format!("{r}/指標/指標項[4]/數值"), "survey.figures"),
            (format!("{r}/附件/文件[1]/類型"), "survey.files"),
            (format!("{r}/附件/文件[1]/摘要"), "survey.files"),
            (format!("{r}/附件/文件[1]/大小"), "survey.files"),
            (format!("{r}/附件/文件[1]/備註"), "document"),
        ] {
            assert!(
                found.contains(&(path.as_str(), field)),
                "no error at {path} ({field}): {found:?}"
            );
        }
    }

    #[test]
    fn survey_notice_dispatches_on_the_root_and_writes_units() {
        let mut rng = fastrand::Rng::with_seed(5);
        let event = crate::sample::survey_event(&mut rng);
        let encoded = Water.encode(&event).unwrap();
        let (text, _, _) = GB18030.decode(&encoded.body);
        assert!(text.contains("<多測合一成果通知 版本=\"1.0\">"), "{text}");
        assert!(!text.contains("水務辦件報文"));
        assert_eq!(
            Water.decode(&encoded.body, "application/xml"),
            Ok(vec![event])
        );
        assert_eq!(parse_size_with_unit("1048576字節"), Ok(1_048_576));
        assert!(parse_size_with_unit("1.5MB").is_err());
        assert!(parse_size_with_unit("99999999999999999999").is_err());
        assert_eq!(parse_version("3"), Ok(3));
        assert!(parse_version("4294967296").is_err());
    }
}
