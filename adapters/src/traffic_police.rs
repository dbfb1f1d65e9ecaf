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
//!   SXBM 事項編碼 SX01, SX02 ...    JD   階段 01..04
//!   ZT   狀態 1..6                 XZQH 行政區劃 district code (310115, 3101LG, ...)
//!   XMDM 項目代碼 project code     XMMC 項目名稱 project name
//!   SQDW 申請單位 applicant name   TYSHXYDM 統一社會信用代碼 credit code
//!   SBSJ 申報時間 submission time, YYYYMMDDhhmmss
//!   CNSX 承諾時限 time limit in working days (digits)
//!   JZMJ 建築面積 floor area in 平方米 (optional, plain decimal)
//!   ZTZ  總投資 investment in 萬元 (optional, plain decimal)
//! ```
//!
//! Item codes number the items in the order of [`Item::ALL`]: SX01 建設用地規劃許可證 ... SX08
//! 涉路施工交通安全審核 ... SX13 綠化配套方案審查, SX14 商品房預售許可 ... Stages: 01 立項用地規劃許可,
//! 02 工程建設許可, 03 施工許可, 04 竣工驗收.
//! Statuses: 1 已申報, 2 已受理, 3 補正, 4 準予許可, 5 不予許可, 6 撤回.
//!
//! A survey notice (多測合一 測繪成果通知) is the same document with `CHCG` in place of `AJ`;
//! a document carries exactly one of the two (the decoder dispatches on which is present):
//!
//! ```text
//! BWBH, FSBM, FSSJ  as above (FSSJ: when the result was published)
//! CHCG  測繪成果 survey result:
//!   CGBH 成果編號 survey id (sv- and 32 hex digits)
//!   TDCG 替代成果 the survey id this version supersedes (only in a correction)
//!   XMDM 項目代碼 project code     CHLX 測繪類型 1..4
//!   CHDW 測繪單位 agency name      TYSHXYDM 統一社會信用代碼 the agency's credit code
//!   BB   版本 version (digits, from 1)
//!   CHRQ 測繪日期 surveyed on, YYYYMMDD
//!   ZB   指標 figures in order, an array (possibly empty) of objects:
//!          ZBDM 指標代碼 ZB01..ZB08   ZBZ 指標值 plain decimal   DW 單位 (fixed by ZBDM)
//!   FJ   附件 files in order, an array (possibly empty) of objects:
//!          WJM 文件名 file name   LX 類型 media type   ZY 摘要 SHA-256 (64 hex digits)
//!          DX 大小 size in bytes (digits)
//! ```
//!
//! Survey kinds: 1 規劃核實測量, 2 房產測繪, 3 人防面積測量, 4 綠地測量. Figure codes follow the
//! order of [`FigureName::ALL`], each with its one unit: ZB01 用地面積 平方米, ZB02 地上建築面積
//! 平方米, ZB03 地下建築面積 平方米, ZB04 建築高度 米, ZB05 綠地面積 平方米, ZB06 綠地率 %,
//! ZB07 人防面積 平方米, ZB08 房屋套數 套. A value in another unit, with a unit inside ZBZ or
//! with a decimal comma (`11,6`) is refused.
//!
//! The gateway's joint-case (聯合審批, `LHSP`) and deadline (期限提醒, `QXTX`) notices take the
//! place of `AJ`, keys as `NOTICES` names them (LHBH 聯合編號, LCBM 流程編碼, BB 版本, CKAJBH 窗口
//! 案件編號, SLRQ 受理日期, DQRQ 到期日期 with ZDBZ 暫定標誌, RLBB 日曆版本, FX 分項 [BM, SXBM, BBBZ
//! 必辦標誌, ZT, AJBH], TXLX 提醒類型, GZRS 工作日數), digit codes, dates YYYYMMDD, 1/0, every value
//! a string.

use schemas::CreditList;
use schemas::model::{Name, parse_sequence};
use schemas::quantity::{AreaUnit, MoneyUnit, parse_plain_decimal};
use schemas::survey::parse_media_type;
use schemas::text::clean;
use schemas::{
    Area, BureauCaseId, BureauId, CanonicalField as F, CaseStatus, CreditCode, District, Event,
    FigureName, FigureSet, FileRef, Item, LocalFormat, MessageId, Money, Normalizer, Payload,
    Problem, ProjectCode, Sha256Hex, ShanghaiDate, ShanghaiTime, Stage, SurveyId, SurveyKind,
    SurveyNotice, SurveyNoticeParts, WorkingDays,
};
use serde::Serialize;
use serde_json::Value;

use crate::adapter::{Adapter, DecodeError, EncodeError, Encoded, NativeFormat, Syntax};
use crate::assemble::{CaseParts, one_event, survey_event};
use crate::json::{FinalNewline, Obj, decode_value, encode_pretty};
use crate::notices::{self, DateStyle, Dialect, Json, JsonScalars, Names, Ordered};
use crate::vocabulary::{BureauSpelling, code_of, lookup};
use schemas::survey::{parse_size, parse_version};
use schemas::{BranchStatus, DeadlineState, JointStatus};
use std::borrow::Cow;

const FORMAT: NativeFormat = NativeFormat {
    media_type: "application/json",
    syntax: Syntax::Json,
    batch: false,
    max_message_bytes: 128 * 1024,
};

/// The traffic police corps' adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrafficPolice;

/// How the format spells a bureau (from the shared names, `schemas::BureauId::names`).
const SENDERS: BureauSpelling = BureauSpelling::Initials;

/// 事項編碼: the corps' catalogue numbers the items in the order of [`Item::ALL`] (SX01, SX02
/// ...), so an item the model adds at its end is numbered here without an edit.
fn item_code(item: Item) -> &'static str {
    static CODES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let codes = CODES.get_or_init(|| {
        (1..=Item::ALL.len())
            .map(|number| format!("SX{number:02}"))
            .collect()
    });
    Item::ALL
        .iter()
        .position(|i| *i == item)
        .and_then(|index| codes.get(index))
        .map_or("", String::as_str)
}

/// The item an 事項編碼 numbers (`SX` and two digits), or `UnknownCode`.
fn parse_item_code(text: &str) -> Result<Item, Problem> {
    let text = clean(text);
    text.strip_prefix("SX")
        .filter(|digits| digits.len() == 2 && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse::<usize>().ok())
        .and_then(|number| number.checked_sub(1))
        .and_then(|index| Item::ALL.get(index).copied())
        .ok_or(Problem::UnknownCode {
            vocabulary: "item code (事項編碼 SX01, SX02 ... in the order of the item catalogue)",
        })
}

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

const CASE_KEYS: [&str; 14] = [
    "AJBH", "XH", "SXBM", "JD", "ZT", "XZQH", "XMDM", "XMMC", "SQDW", "TYSHXYDM", "SBSJ", "CNSX",
    "JZMJ", "ZTZ",
];

/// 測繪類型 codes, in the order of [`SurveyKind::ALL`].
const SURVEY_KINDS: [(SurveyKind, &str); 4] = [
    (SurveyKind::PlanningVerification, "1"),
    (SurveyKind::RealEstate, "2"),
    (SurveyKind::CivilDefenseArea, "3"),
    (SurveyKind::Greening, "4"),
];

/// 指標代碼 codes, in the order of [`FigureName::ALL`].
const FIGURES: [(FigureName, &str); 8] = [
    (FigureName::LandArea, "ZB01"),
    (FigureName::FloorAreaAboveGround, "ZB02"),
    (FigureName::FloorAreaBelowGround, "ZB03"),
    (FigureName::BuildingHeight, "ZB04"),
    (FigureName::GreeningArea, "ZB05"),
    (FigureName::GreeningRatio, "ZB06"),
    (FigureName::CivilDefenseArea, "ZB07"),
    (FigureName::PropertyUnits, "ZB08"),
];

/// The bodies a message may carry, exactly one of them.
const BODIES: [&str; 6] = ["AJ", "CHCG", "LHSP", "QXTX", "XYMD", "XYPP"];

/// How the corps' system spells the gateway's joint-case (聯合審批, LHSP) and deadline (期限提醒,
/// QXTX) notices: pinyin-initial keys, digit codes, its 事項編碼, compact dates YYYYMMDD, every
/// value a string, 1/0 for yes and no.
const NOTICES: Dialect = Dialect {
    names: Names {
        joint: "LHSP",
        deadline: "QXTX",
        joint_case_id: "LHBH",    // 聯合編號
        flow: "LCBM",             // 流程編碼
        version: "BB",            // 版本
        project_code: "XMDM",     // 項目代碼
        project_name: "XMMC",     // 項目名稱
        window_case_id: "CKAJBH", // 窗口案件編號
        status: "ZT",             // 狀態
        opened_on: "SLRQ",        // 受理日期
        due: "DQRQ",              // 到期日期
        provisional: "ZDBZ",      // 暫定標誌
        calendar: "RLBB",         // 日曆版本
        branches: Some("FX"),     // 分項
        branch: "FX",
        bureau: "BM",         // 部門
        item: "SXBM",         // 事項編碼
        required: "BBBZ",     // 必辦標誌
        case_id: "AJBH",      // 案件編號
        sequence: "XH",       // 序號
        state: "TXLX",        // 提醒類型
        working_days: "GZRS", // 工作日數
        credit: "XYMD",
        credit_match: "XYPP",
        entry_id: "MDBH",
        list: "MDLX",
        subject_name: "ZTMC",
        credit_code: "TYXYDM",
        measures: "CJCS",
        issued_by: "RDBM",
        legal_basis: "RDYJ",
        document_number: "WSH",
        valid_from: "YXQQ",
        valid_to: "YXQZ",
        removed_on: "YCRQ",
        removal_reason: "YCYY",
        publisher: "FBBM",
    },
    bureaus: SENDERS,
    item_text: |item| Cow::Borrowed(item_code(item)),
    parse_item: parse_item_code,
    joint_statuses: &[
        (JointStatus::Open, "1"),
        (JointStatus::Approved, "2"),
        (JointStatus::Rejected, "3"),
        (JointStatus::Withdrawn, "4"),
        (JointStatus::Terminated, "5"),
    ],
    branch_statuses: &[
        (BranchStatus::Waiting, "0"),
        (BranchStatus::Submitted, "1"),
        (BranchStatus::Accepted, "2"),
        (BranchStatus::SupplementRequested, "3"),
        (BranchStatus::Approved, "4"),
        (BranchStatus::Rejected, "5"),
        (BranchStatus::Withdrawn, "6"),
    ],
    states: &[
        (DeadlineState::Approaching, "1"),
        (DeadlineState::Passed, "2"),
    ],
    lists: &[
        (CreditList::Dishonest, "1"),
        (CreditList::KeySupervision, "2"),
        (CreditList::Red, "3"),
    ],
    yes_no: &[(true, "1"), (false, "0")],
    dates: DateStyle::Compact,
    json: JsonScalars::Strings,
};
const SURVEY_KEYS: [&str; 10] = [
    "CGBH", "TDCG", "XMDM", "CHLX", "CHDW", "TYSHXYDM", "BB", "CHRQ", "ZB", "FJ",
];
const FIGURE_KEYS: [&str; 3] = ["ZBDM", "ZBZ", "DW"];
const FILE_KEYS: [&str; 4] = ["WJM", "LX", "ZY", "DX"];

fn parse_time(text: &str) -> Result<ShanghaiTime, Problem> {
    ShanghaiTime::parse_local(text, LocalFormat::Compact)
}

/// The one unit (單位) the corps writes a figure in: its canonical unit in Chinese.
fn unit_of(name: FigureName) -> &'static str {
    match name.unit_symbol() {
        "m2" => "平方米",
        "m" => "米",
        "%" => "%",
        _ => "套",
    }
}

/// 指標值: a plain decimal in the figure's one unit (`11,6` and `35.5%` are refused).
fn parse_figure_value(name: FigureName, text: &str) -> Result<schemas::FigureValue, Problem> {
    parse_plain_decimal(&clean(text))?;
    name.parse_canonical(&clean(text))
}

impl TrafficPolice {
    fn decode_event(value: &Value, n: &mut Normalizer) -> Option<Event> {
        let root = Obj::root(value, n)?;
        let present = root.bodies(
            &BODIES,
            "a message carries one of a case (AJ), a survey result (CHCG), a joint case (LHSP), a deadline notice (QXTX), a credit-list entry (XYMD) and a credit match (XYPP)",
            n,
        )?;
        let body = present.unwrap_or("AJ");
        root.check_keys(&["BWBH", "FSBM", "FSSJ", body], n);
        let message_id = root.string(n, F::MessageId, "BWBH", MessageId::parse);
        let source = root.string(n, F::Source, "FSBM", |t| {
            SENDERS.parse(t, "department code (發送部門)")
        });
        let occurred_at = root.string(n, F::OccurredAt, "FSSJ", parse_time);
        if ["LHSP", "QXTX", "XYMD", "XYPP"].contains(&body) {
            let header = notices::Header {
                message_id,
                source,
                occurred_at,
            };
            let key = body;
            let body = root.object(key, F::Document, n)?;
            return notices::read_notice_json(&NOTICES, key, &body, header, n);
        }
        if body == "CHCG" {
            let notice = root.object("CHCG", F::Document, n);
            let notice = notice.and_then(|chcg| Self::decode_survey(&chcg, n));
            return survey_event(message_id, source, occurred_at, notice);
        }
        let aj = root.object("AJ", F::Document, n)?;
        let parts = Self::decode_case(&aj, n);
        CaseParts {
            message_id,
            source,
            occurred_at,
            ..parts
        }
        .into_event(n, || root.native("FSSJ"))
    }

    /// The case `AJ`; the header's parts (message id, sender, event time) are the caller's.
    fn decode_case(aj: &Obj<'_>, n: &mut Normalizer) -> CaseParts {
        aj.check_keys(&CASE_KEYS, n);
        let case_id = aj.string(n, F::CaseId, "AJBH", BureauCaseId::parse);
        let sequence = aj.string(n, F::Sequence, "XH", parse_sequence);
        let item = aj.string(n, F::Item, "SXBM", parse_item_code);
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
        CaseParts {
            message_id: None,
            source: None,
            case_id,
            sequence,
            occurred_at: None,
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
        }
    }

    fn decode_survey(chcg: &Obj<'_>, n: &mut Normalizer) -> Option<SurveyNotice> {
        chcg.check_keys(&SURVEY_KEYS, n);
        // The canonical model has no field of its own for the survey id: it is reported
        // against the event's id within its series, `case_id`.
        let survey_id = chcg.string(n, F::SurveyId, "CGBH", SurveyId::parse);
        let supersedes = chcg.string_opt(n, F::SurveySupersedes, "TDCG", SurveyId::parse);
        let project = chcg.string(n, F::SurveyProject, "XMDM", ProjectCode::parse);
        let kind = chcg.string(n, F::SurveyKind, "CHLX", |t| {
            lookup(&SURVEY_KINDS, t, "survey kind code (測繪類型 1-4)")
        });
        let agency_name = chcg.string(n, F::SurveyAgencyName, "CHDW", Name::parse);
        let credit_code = chcg.string(n, F::SurveyAgencyCreditCode, "TYSHXYDM", CreditCode::parse);
        let version = chcg.string(n, F::SurveyVersion, "BB", parse_version);
        let surveyed_on = chcg.string(n, F::SurveyedOn, "CHRQ", ShanghaiDate::parse_compact);
        let figures = chcg.figures("ZB", n, Self::decode_figure);
        let files = chcg.objects("FJ", F::SurveyFile, n).and_then(|items| {
            items
                .into_iter()
                .map(|fj| fj.and_then(|fj| Self::decode_file(&fj, n)))
                .collect::<Vec<_>>()
                .into_iter()
                .collect::<Option<Vec<_>>>()
        });
        SurveyNoticeParts {
            survey_id,
            supersedes,
            project,
            kind,
            agency_name,
            agency_credit_code: credit_code,
            version,
            surveyed_on,
            figures,
            files,
        }
        .build(n, || chcg.native("TDCG"))
    }

    /// Reads one 指標 into `figures`.
    fn decode_figure(zb: &Obj<'_>, figures: &mut FigureSet, n: &mut Normalizer) {
        zb.check_keys(&FIGURE_KEYS, n);
        let name = zb.string(n, F::SurveyFigure, "ZBDM", |t| {
            lookup(&FIGURES, t, "figure code (指標代碼 ZB01-ZB08)")
        });
        // The unit and the value are checked against the figure only once its code is known.
        let unit = zb.string(n, F::SurveyFigure, "DW", |t| match name {
            Some(name) if clean(t) != unit_of(name) => Err(Problem::UnknownUnit {
                allowed: unit_of(name),
            }),
            _ => Ok(()),
        });
        let quantity = zb.string(n, F::SurveyFigure, "ZBZ", |t| match name {
            Some(name) => parse_figure_value(name, t).map(Some),
            None => parse_plain_decimal(&clean(t)).map(|_| None),
        });
        let quantity = quantity.flatten().filter(|_| unit.is_some());
        figures.push(n, name, quantity, || zb.native("ZBDM"));
    }

    fn decode_file(fj: &Obj<'_>, n: &mut Normalizer) -> Option<FileRef> {
        fj.check_keys(&FILE_KEYS, n);
        let name = fj.string(n, F::SurveyFile, "WJM", Name::parse);
        let media_type = fj.string(n, F::SurveyFile, "LX", parse_media_type);
        let sha256 = fj.string(n, F::SurveyFile, "ZY", Sha256Hex::parse);
        let size_bytes = fj.string(n, F::SurveyFile, "DX", parse_size);
        Some(FileRef {
            name: name?,
            media_type: media_type?,
            sha256: sha256?,
            size_bytes: size_bytes?,
        })
    }
}

/// A survey notice as the corps' system writes it.
#[derive(Serialize)]
#[serde(rename_all = "UPPERCASE")]
struct SurveyMessage<'a> {
    bwbh: &'a str,
    fsbm: &'static str,
    fssj: String,
    chcg: SurveyRecord<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "UPPERCASE")]
struct SurveyRecord<'a> {
    cgbh: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tdcg: Option<&'a str>,
    xmdm: &'a str,
    chlx: &'static str,
    chdw: &'a str,
    tyshxydm: &'a str,
    bb: String,
    chrq: String,
    zb: Vec<FigureRecord>,
    fj: Vec<FileRecord<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "UPPERCASE")]
struct FigureRecord {
    zbdm: &'static str,
    zbz: String,
    dw: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "UPPERCASE")]
struct FileRecord<'a> {
    wjm: &'a str,
    lx: &'a str,
    zy: &'a str,
    dx: String,
}

fn survey_message<'a>(event: &'a Event, notice: &'a SurveyNotice) -> SurveyMessage<'a> {
    let result = &notice.result;
    SurveyMessage {
        bwbh: event.message_id.as_str(),
        fsbm: SENDERS.code(event.source),
        fssj: event.occurred_at.format_local(LocalFormat::Compact),
        chcg: SurveyRecord {
            cgbh: notice.survey_id.as_str(),
            tdcg: notice.supersedes.as_ref().map(SurveyId::as_str),
            xmdm: result.project.as_str(),
            chlx: code_of(&SURVEY_KINDS, result.kind),
            chdw: result.agency.name.as_str(),
            tyshxydm: result.agency.credit_code.as_str(),
            bb: result.version.to_string(),
            chrq: result.surveyed_on.format_compact(),
            zb: result
                .figures
                .iter()
                .map(|figure| FigureRecord {
                    zbdm: code_of(&FIGURES, figure.name),
                    zbz: FigureName::value_text(&figure.quantity),
                    dw: unit_of(figure.name),
                })
                .collect(),
            fj: result
                .files
                .iter()
                .map(|file| FileRecord {
                    wjm: file.name.as_str(),
                    lx: &file.media_type,
                    zy: file.sha256.as_str(),
                    dx: file.size_bytes.to_string(),
                })
                .collect(),
        },
    }
}

/// Writes a native document (pretty JSON, no final newline).
fn to_json(message: &impl Serialize) -> Result<Encoded, EncodeError> {
    encode_pretty(BureauId::TrafficPolice, &FORMAT, message, FinalNewline::No)
}

/// A joint-case or deadline notice message: the header keys, then the body under `key`.
fn notice_message(event: &Event, key: &'static str, body: Ordered) -> Ordered {
    let mut message = Ordered(Vec::with_capacity(4));
    message.push("BWBH", event.message_id.as_str());
    message.push("FSBM", SENDERS.code(event.source));
    message.push("FSSJ", event.occurred_at.format_local(LocalFormat::Compact));
    message.0.push((key, Json::Object(body)));
    message
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
        one_event(|n| Self::decode_event(&value, n))
    }

    fn write(&self, event: &Event) -> Result<Encoded, EncodeError> {
        let case = match &event.payload {
            Payload::Case(case) => case,
            Payload::Survey(notice) => return to_json(&survey_message(event, notice)),
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
            bwbh: event.message_id.as_str(),
            fsbm: SENDERS.code(event.source),
            fssj: event.occurred_at.format_local(LocalFormat::Compact),
            aj: CaseRecord {
                ajbh: event.case_id.as_str(),
                xh: event.sequence.to_string(),
                sxbm: item_code(case.item),
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
        to_json(&message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_codes_follow_the_canonical_order() {
        for (i, item) in Item::ALL.into_iter().enumerate() {
            assert_eq!(item_code(item), format!("SX{:02}", i + 1));
            assert_eq!(parse_item_code(&format!("SX{:02}", i + 1)), Ok(item));
        }
        assert_eq!(item_code(Item::RoadWorksTrafficSafety), "SX08");
        assert_eq!(parse_item_code("ＳＸ08"), Ok(Item::RoadWorksTrafficSafety));
        let past_the_end = format!("SX{:02}", Item::ALL.len() + 1);
        for unknown in [
            "SX00",
            past_the_end.as_str(),
            "SX8",
            "SX008",
            "sx08",
            "SX+8",
        ] {
            assert!(parse_item_code(unknown).is_err(), "{unknown}");
        }
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
            let code = SENDERS.code(bureau);
            assert_eq!(SENDERS.parse(code, "sender"), Ok(bureau));
        }
        assert_eq!(SENDERS.code(BureauId::TrafficPolice), "JJZD");
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
    fn survey_codes_follow_the_canonical_order() {
        for (i, kind) in SurveyKind::ALL.into_iter().enumerate() {
            assert_eq!(code_of(&SURVEY_KINDS, kind), (i + 1).to_string());
        }
        for (i, name) in FigureName::ALL.into_iter().enumerate() {
            assert_eq!(code_of(&FIGURES, name), format!("ZB{:02}", i + 1));
        }
        assert_eq!(unit_of(FigureName::GreeningArea), "平方米");
        assert_eq!(unit_of(FigureName::BuildingHeight), "米");
        assert_eq!(unit_of(FigureName::GreeningRatio), "%");
        assert_eq!(unit_of(FigureName::PropertyUnits), "套");
    }

    fn survey_sample() -> Value {
        let body = std::fs::read(
            crate::conformance::samples_dir(&TrafficPolice)
                .join("valid/survey-notice-real-estate.json"),
        )
        .unwrap_or_default();
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    }

    #[test]
    fn survey_notices_decode_to_survey_events() {
        let body = serde_json::to_vec(&survey_sample()).unwrap_or_default();
        let events = TrafficPolice
            .decode(&body, "application/json")
            .unwrap_or_else(|e| panic!("{e:#?}"));
        let event = &events[0];
        assert_eq!(event.kind, schemas::EventKind::SurveySuperseded);
        assert_eq!(event.case_id.as_str(), "SV-2203-310115-04-01-654321-RE");
        assert_eq!(event.sequence, 2);
        let notice = event.survey().unwrap_or_else(|| panic!("a survey event"));
        assert_eq!(notice.result.kind, SurveyKind::RealEstate);
        assert_eq!(notice.result.figures.len(), 5);
        assert_eq!(
            notice.result.figures[3].quantity,
            FigureName::GreeningRatio
                .parse_value("35.5%")
                .unwrap_or_else(|e| panic!("{e}"))
        );
        assert_eq!(notice.result.files[1].size_bytes, 5_242_880);
        let encoded = TrafficPolice
            .encode(event)
            .unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8(encoded.body).unwrap_or_default();
        assert!(text.contains("\"DW\": \"%\""), "{text}");
        assert!(text.contains("\"CHRQ\": \"20230605\""), "{text}");
    }

    #[test]
    fn survey_figures_are_plain_numbers_in_their_one_unit() {
        let cases: [(&str, &str, &str); 4] = [
            ("/CHCG/ZB/3/ZBZ", "ZBZ", "35.5%"),
            ("/CHCG/ZB/4/ZBZ", "ZBZ", "860.5"),
            ("/CHCG/ZB/2/DW", "DW", "m"),
            ("/CHCG/ZB/0/ZBDM", "ZBDM", "ZB09"),
        ];
        for (path, key, text) in cases {
            let mut doc = survey_sample();
            let index: usize = path[9..10].parse().unwrap_or_default();
            doc["CHCG"]["ZB"][index][key] = Value::String(text.into());
            let body = serde_json::to_vec(&doc).unwrap_or_default();
            let Err(DecodeError::Invalid(errors)) = TrafficPolice.decode(&body, "application/json")
            else {
                panic!("{key} {text} was accepted");
            };
            assert!(
                errors
                    .iter()
                    .any(|e| e.path == path && e.field == F::SurveyFigure),
                "{key} {text}: {errors:#?}"
            );
        }
        let mut doc = survey_sample();
        doc["CHCG"]["FJ"] = Value::String("房產測繪成果報告.pdf".into());
        doc["CHCG"]["ZB"][1] = Value::String("ZB03".into());
        doc["CHCG"]["BB"] = Value::String("0".into());
        let body = serde_json::to_vec(&doc).unwrap_or_default();
        let Err(DecodeError::Invalid(errors)) = TrafficPolice.decode(&body, "application/json")
        else {
            panic!("accepted");
        };
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/CHCG/BB", "/CHCG/ZB/1", "/CHCG/FJ"]);
    }

    #[test]
    fn conformance() {
        crate::conformance::check(&TrafficPolice);
    }

    #[test]
    fn notice_tables_are_complete_and_distinct() {
        crate::notices::tests::dialect_tables_are_complete(&NOTICES);
    }
}
