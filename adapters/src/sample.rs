//! Realistic canonical events, drawn from a seeded generator: what each bureau's system would
//! send. Adapters encode them into sample messages; the demo, tests and benchmarks use those.

use chrono::Datelike;
use chrono::{Duration, NaiveDate, NaiveTime};
use rust_decimal::Decimal;
use schemas::{
    Area, BureauCaseId, BureauId, Case, CaseStatus, CreditCode, District, Event, FigureName,
    FigureValue, FileRef, Item, MessageId, Money, Organization, Project, ProjectCode, Sha256Hex,
    ShanghaiDate, ShanghaiTime, Stage, SurveyFigure, SurveyId, SurveyKind, SurveyNotice,
    SurveyResult, WorkingDays, model::Name,
};
use schemas::{
    BranchStatus, DeadlineNotice, DeadlineState, DueDate, FlowName, JointBranch, JointCaseId,
    JointNotice, JointStatus,
};
use schemas::{CreditEntry, CreditList, CreditMatch, CreditRemoval, CreditText};

const PROJECT_KINDS: [&str; 10] = [
    "科創園一期工程",
    "保障性租賃住房項目",
    "污水處理廠提標改造工程",
    "生態綠地建設項目",
    "綜合交通樞紐配套工程",
    "產業園標準廠房項目",
    "地下空間開發工程",
    "城市更新（舊區改造）項目",
    "軌道交通站點綜合開發項目",
    "學校新建工程",
];

const COMPANIES: [&str; 8] = [
    "上海城投建設發展有限公司",
    "上海臨港產業開發有限公司",
    "上海浦江置業有限公司",
    "上海申通地鐵資產管理有限公司",
    "上海A&B科技發展有限公司",
    "上海綠地城市建設有限公司",
    "上海化學工業區投資實業有限公司",
    "上海長江水務工程有限公司",
];

/// The letters and digits a credit code's organization part is written in.
const CREDIT_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

fn pick<'a, T>(rng: &mut fastrand::Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

/// A prefix of the bureau's own message and case ids, as its system numbers them: the first two
/// of its pinyin initials (GH, SW, JT ...).
fn id_prefix(bureau: BureauId) -> &'static str {
    let initials = bureau.names().initials;
    initials.get(..2).unwrap_or(initials)
}

/// The statutory limit a bureau applies to an item, in working days (from the seed where it
/// names one: water connection in 6 days, traffic-safety review in 1).
pub fn time_limit(item: Item) -> u16 {
    match item {
        Item::RoadWorksTrafficSafety => 1,
        Item::WaterSupplyConnection => 6,
        Item::DrainagePermit | Item::TreeFelling | Item::GreenLandOccupation => 10,
        Item::CivilDefenseDesignReview | Item::CivilDefenseCompletionFiling => 5,
        _ => 15,
    }
}

fn credit_code(rng: &mut fastrand::Rng, district: District) -> CreditCode {
    let division = District::from_gb2260(district.code()).map_or("310000", District::code);
    let mut first17 = format!("91{division}");
    while first17.len() < 17 {
        first17.push(char::from(*pick(rng, CREDIT_ALPHABET)));
    }
    CreditCode::with_check_character(&first17)
        .unwrap_or_else(|problem| unreachable!("generated credit code invalid: {problem}"))
}

fn parsed<T>(result: Result<T, schemas::Problem>, what: &str) -> T {
    result.unwrap_or_else(|problem| unreachable!("generated {what} invalid: {problem}"))
}

/// One realistic case event from `source`'s system.
pub fn case_event(rng: &mut fastrand::Rng, source: BureauId) -> Event {
    let items: Vec<Item> = Item::ALL
        .into_iter()
        .filter(|i| i.bureau() == source)
        .collect();
    let item = *pick(rng, &items);
    let district = *pick(rng, &District::ALL);
    let division = District::from_gb2260(district.code()).map_or("310115", District::code);
    let year = rng.u32(21..=26);
    let code = format!(
        "{year:02}{:02}-{division}-{}-0{}-{:06}",
        rng.u32(1..=12),
        pick(rng, &["01", "04", "05", "07", "12"]),
        rng.u32(1..=2),
        rng.u32(0..1_000_000)
    );
    let project = Project {
        code: parsed(ProjectCode::parse(&code), "project code"),
        name: parsed(
            Name::parse(&format!(
                "{}{}",
                district.name_traditional(),
                pick(rng, &PROJECT_KINDS)
            )),
            "project name",
        ),
    };
    let company = *pick(rng, &COMPANIES);
    let applicant = Organization {
        name: parsed(Name::parse(company), "company name"),
        credit_code: credit_code(rng, district),
    };
    let day = NaiveDate::from_ymd_opt(2000 + year as i32, 1, 4)
        .unwrap_or_default()
        .checked_add_signed(Duration::days(rng.i64(0..330)))
        .unwrap_or_default();
    let time =
        NaiveTime::from_hms_opt(rng.u32(8..18), rng.u32(0..60), rng.u32(0..60)).unwrap_or_default();
    let submitted = day.and_time(time);
    let occurred = submitted + Duration::minutes(rng.i64(0..30 * 24 * 60));
    let status = *pick(rng, &CaseStatus::ALL);
    let case = Case {
        project,
        item,
        stage: *pick(rng, &Stage::ALL),
        district,
        applicant,
        status,
        submitted_at: parsed(ShanghaiTime::from_local(submitted), "submission time"),
        time_limit_working_days: parsed(WorkingDays::new(time_limit(item)), "time limit"),
        floor_area: rng.bool().then(|| {
            parsed(
                Area::from_canonical(Decimal::new(rng.i64(10_000..50_000_000), 2)),
                "area",
            )
        }),
        investment: rng.bool().then(|| {
            parsed(
                Money::from_canonical(Decimal::new(rng.i64(1_000_000..1_000_000_000_000), 2)),
                "money",
            )
        }),
    };
    let prefix = id_prefix(source);
    Event::for_case(
        parsed(
            MessageId::parse(&format!(
                "{prefix}-{}-{:08x}",
                occurred.format("%Y%m%d"),
                rng.u32(..)
            )),
            "message id",
        ),
        source,
        parsed(
            BureauCaseId::parse(&format!(
                "{prefix}{}{:06}",
                2000 + year,
                rng.u32(0..1_000_000)
            )),
            "case id",
        ),
        rng.u64(1..=6),
        parsed(ShanghaiTime::from_local(occurred), "event time"),
        case,
    )
    .unwrap_or_else(|problem| unreachable!("generated event invalid: {problem}"))
}

const SURVEY_FILES: [(&str, &str); 5] = [
    ("竣工規劃核實測量成果報告.pdf", "application/pdf"),
    ("房產測繪成果.pdf", "application/pdf"),
    ("總平面圖.dwg", "image/vnd.dwg"),
    ("建築物輪廓.gml", "application/gml+xml"),
    ("測量成果數據.xml", "application/xml"),
];

fn hex(rng: &mut fastrand::Rng, digits: usize) -> String {
    (0..digits)
        .map(|_| char::from(b"0123456789abcdef"[rng.usize(..16)]))
        .collect()
}

fn figure_value(rng: &mut fastrand::Rng, name: FigureName) -> FigureValue {
    let number = match name.unit_symbol() {
        "m2" => Decimal::new(rng.i64(5_000..20_000_000), 2).to_string(),
        "m" => Decimal::new(rng.i64(300..30_000), 2).to_string(),
        "%" => Decimal::new(rng.i64(0..=1000), 1).to_string(),
        _ => rng.u32(1..2_000).to_string(),
    };
    parsed(name.parse_canonical(&number), "figure")
}

/// A realistic survey notice: one version of a project's survey result, with a few of its
/// figures (in canonical order) and files.
pub fn survey_notice(rng: &mut fastrand::Rng) -> SurveyNotice {
    let district = *pick(rng, &District::ALL[..16]);
    let code = format!(
        "{:02}{:02}-{}-{}-01-{:06}",
        rng.u32(21..=26),
        rng.u32(1..=12),
        district.code(),
        pick(rng, &["01", "04", "05"]),
        rng.u32(0..1_000_000)
    );
    let company = *pick(rng, &COMPANIES);
    let version = rng.u32(1..=3);
    let mut figures = Vec::new();
    for name in FigureName::ALL {
        if rng.u32(0..3) > 0 {
            figures.push(SurveyFigure {
                name,
                quantity: figure_value(rng, name),
            });
        }
    }
    let files = (0..rng.usize(1..=3))
        .map(|_| {
            let (name, media_type) = *pick(rng, &SURVEY_FILES);
            FileRef {
                name: parsed(Name::parse(name), "file name"),
                media_type: media_type.to_owned(),
                sha256: parsed(Sha256Hex::parse(&hex(rng, 64)), "digest"),
                size_bytes: rng.u64(1_000..500_000_000),
            }
        })
        .collect();
    let surveyed = NaiveDate::from_ymd_opt(2022, 1, 4)
        .unwrap_or_default()
        .checked_add_signed(Duration::days(rng.i64(0..700)))
        .unwrap_or_default();
    SurveyNotice {
        survey_id: parsed(
            SurveyId::parse(&format!("sv-{}", hex(rng, 32))),
            "survey id",
        ),
        supersedes: (version > 1).then(|| {
            parsed(
                SurveyId::parse(&format!("sv-{}", hex(rng, 32))),
                "survey id",
            )
        }),
        result: SurveyResult {
            project: parsed(ProjectCode::parse(&code), "project code"),
            kind: *pick(rng, &SurveyKind::ALL),
            agency: Organization {
                name: parsed(Name::parse(company), "agency name"),
                credit_code: credit_code(rng, district),
            },
            version,
            surveyed_on: ShanghaiDate::new(surveyed),
            figures,
            files,
        },
    }
}

/// A survey event as the gateway delivers it: planning publishes, on behalf of the agency.
pub fn survey_event(rng: &mut fastrand::Rng) -> Event {
    let notice = survey_notice(rng);
    let published =
        notice.result.surveyed_on.get().and_time(
            NaiveTime::from_hms_opt(rng.u32(8..18), rng.u32(0..60), 0).unwrap_or_default(),
        ) + Duration::days(rng.i64(1..30));
    Event::for_survey(
        parsed(
            MessageId::parse(&format!("gw-{}", hex(rng, 32))),
            "message id",
        ),
        BureauId::Planning,
        parsed(ShanghaiTime::from_local(published), "publication time"),
        notice,
    )
}

/// The calendar version the generator stamps on due dates.
const CALENDAR: &str = "国办发明电〔2024〕12号 + 国办发明电〔2025〕7号";

fn date_after(start: NaiveDate, max_days: i64, rng: &mut fastrand::Rng) -> ShanghaiDate {
    ShanghaiDate::new(
        start
            .checked_add_signed(Duration::days(rng.i64(0..=max_days)))
            .unwrap_or(start),
    )
}

fn due_after(start: NaiveDate, rng: &mut fastrand::Rng) -> DueDate {
    let on = date_after(start, 60, rng);
    DueDate {
        on,
        // Outside the years the calendar holds a notice for, a date is provisional.
        provisional: !(2025..=2026).contains(&on.get().year()),
    }
}

/// A realistic joint case at some point of its life: a window case, two to five branches
/// (each once, at least one required), their states and clocks.
pub fn joint_notice(rng: &mut fastrand::Rng) -> JointNotice {
    let window = *pick(rng, &[BureauId::Planning, BureauId::Transport]);
    let window_event = case_event(rng, window);
    let case = window_event.case().cloned();
    let project = case.map_or_else(
        || unreachable!("a case event carries a case"),
        |case| case.project,
    );
    let opened = window_event.occurred_at.naive_local().date();
    let mut branches: Vec<JointBranch> = Vec::new();
    let mut items: Vec<Item> = Item::ALL.to_vec();
    rng.shuffle(&mut items);
    for item in items.into_iter().take(rng.usize(2..=5)) {
        let status = *pick(rng, &BranchStatus::ALL);
        let filed = status != BranchStatus::Waiting;
        branches.push(JointBranch {
            bureau: item.bureau(),
            item,
            required: rng.u32(0..4) > 0,
            status,
            case_id: filed.then(|| {
                parsed(
                    BureauCaseId::parse(&format!(
                        "{}{}{:06}",
                        id_prefix(item.bureau()),
                        opened.year(),
                        rng.u32(0..1_000_000)
                    )),
                    "case id",
                )
            }),
            due: (filed && rng.bool()).then(|| due_after(opened, rng)),
        });
    }
    branches[0].required = true;
    let version = rng.u32(1..=12);
    let status = if version == 1 {
        JointStatus::Open
    } else {
        *pick(rng, &JointStatus::ALL)
    };
    let flow = pick(
        rng,
        &[
            "one_stop_construction_permit",
            "one_stop_completion_acceptance",
        ],
    );
    JointNotice {
        joint_case_id: parsed(
            JointCaseId::parse(&format!("jc-{}", hex(rng, 32))),
            "joint case id",
        ),
        flow: parsed(FlowName::parse(flow), "flow name"),
        version,
        project,
        window,
        window_case_id: window_event.case_id,
        status,
        opened_on: ShanghaiDate::new(opened),
        due: due_after(opened, rng),
        calendar: parsed(Name::parse(CALENDAR), "calendar version"),
        branches,
    }
}

/// A joint-case event as the gateway sends it to the window and the branches.
pub fn joint_event(rng: &mut fastrand::Rng) -> Event {
    let notice = joint_notice(rng);
    let at = notice.opened_on.get().and_time(
        NaiveTime::from_hms_opt(rng.u32(8..18), rng.u32(0..60), rng.u32(0..60)).unwrap_or_default(),
    ) + Duration::days(rng.i64(0..20));
    Event::for_joint(
        parsed(
            MessageId::parse(&format!("gw-{}", hex(rng, 32))),
            "message id",
        ),
        parsed(ShanghaiTime::from_local(at), "notice time"),
        notice,
    )
}

/// A deadline event as the gateway sends it to the bureau handling the case.
pub fn deadline_event(rng: &mut fastrand::Rng) -> Event {
    let source = *pick(rng, &BureauId::ALL);
    let case_event = case_event(rng, source);
    let case = case_event
        .case()
        .cloned()
        .unwrap_or_else(|| unreachable!("a case event carries a case"));
    let start = case.submitted_at.naive_local().date();
    let due = due_after(start, rng);
    let state = *pick(rng, &DeadlineState::ALL);
    let at = due
        .on
        .get()
        .and_time(NaiveTime::from_hms_opt(rng.u32(0..24), rng.u32(0..60), 0).unwrap_or_default());
    let notice = DeadlineNotice {
        item: case.item,
        project: case.project.code,
        state,
        working_days: match state {
            DeadlineState::Approaching => rng.u16(0..=3),
            DeadlineState::Passed => rng.u16(1..=30),
        },
        due,
        calendar: parsed(Name::parse(CALENDAR), "calendar version"),
        joint_case_id: rng.bool().then(|| {
            parsed(
                JointCaseId::parse(&format!("jc-{}", hex(rng, 32))),
                "joint case id",
            )
        }),
    };
    Event::for_deadline(
        parsed(
            MessageId::parse(&format!("gw-{}", hex(rng, 32))),
            "message id",
        ),
        case_event.source,
        case_event.case_id,
        rng.u64(1..=4),
        parsed(ShanghaiTime::from_local(at), "notice time"),
        notice,
    )
}

/// What an entry of each list (in `CreditList::ALL`'s order) rests on: (issuing department,
/// legal basis, measures).
const LISTINGS: [(&str, &str, &str); 3] = [
    (
        "上海市住房和城乡建设管理委员会",
        "《上海市社会信用条例》第三十条",
        "限制参与政府投资项目招标；不适用容缺后补",
    ),
    (
        "上海市市场监督管理局",
        "《严重违法失信名单管理办法》第二条",
        "列为重点监管对象，提高抽查比例",
    ),
    (
        "上海市发展和改革委员会",
        "《上海市守信激励办法》第十二条",
        "优先办理，适用告知承诺",
    ),
];

/// A credit-list entry of `subject` at `version` (a removal from version 2 on, at random).
pub fn credit_entry(rng: &mut fastrand::Rng, subject: Organization, version: u32) -> CreditEntry {
    // The listings are in the lists' order: each list with a basis of its own.
    let which = rng.usize(..CreditList::ALL.len());
    let list = CreditList::ALL[which];
    let (issued_by, legal_basis, measures) = LISTINGS[which];
    let from = NaiveDate::from_ymd_opt(2026, 1, 1)
        .unwrap_or_default()
        .checked_add_signed(Duration::days(rng.i64(0..300)))
        .unwrap_or_default();
    let valid_from = ShanghaiDate::new(from);
    let valid_to = rng
        .bool()
        .then(|| ShanghaiDate::new(from + Duration::days(rng.i64(180..1100))));
    let removal = (version > 1 && rng.bool()).then(|| CreditRemoval {
        on: ShanghaiDate::new(from + Duration::days(rng.i64(1..180))),
        reason: parsed(CreditText::parse("信用修复完成"), "removal reason"),
    });
    CreditEntry {
        entry_id: parsed(
            BureauCaseId::parse(&format!("XY-2026-{:05}", rng.u32(1..100_000))),
            "entry id",
        ),
        version,
        list,
        subject,
        measures: parsed(CreditText::parse(measures), "measures"),
        issued_by: parsed(Name::parse(issued_by), "issuing department"),
        legal_basis: parsed(CreditText::parse(legal_basis), "legal basis"),
        document_number: parsed(
            Name::parse(&format!("沪信〔2026〕{}号", rng.u32(1..400))),
            "document number",
        ),
        valid_from,
        valid_to,
        removal,
    }
}

fn notice_time(rng: &mut fastrand::Rng, day: ShanghaiDate) -> ShanghaiTime {
    let at = day
        .get()
        .and_time(NaiveTime::from_hms_opt(rng.u32(8..18), rng.u32(0..60), 0).unwrap_or_default());
    parsed(ShanghaiTime::from_local(at), "notice time")
}

/// A credit-list event as a listing bureau publishes it and every receiver gets it.
pub fn credit_event(rng: &mut fastrand::Rng) -> Event {
    let publisher = *pick(rng, &BureauId::ALL);
    let case = case_event(rng, publisher);
    let subject = case
        .case()
        .map(|c| c.applicant.clone())
        .unwrap_or_else(|| unreachable!("a case event carries a case"));
    let version = rng.u32(1..=3);
    let entry = credit_entry(rng, subject, version);
    let at = notice_time(rng, entry.valid_from);
    Event::for_credit(
        parsed(
            MessageId::parse(&format!("gw-{}", hex(rng, 32))),
            "message id",
        ),
        publisher,
        at,
        entry,
    )
}

/// A credit match notice about a case of a listed applicant.
pub fn credit_match_event(rng: &mut fastrand::Rng) -> Event {
    let source = *pick(rng, &BureauId::ALL);
    let case_event = case_event(rng, source);
    let case = case_event
        .case()
        .cloned()
        .unwrap_or_else(|| unreachable!("a case event carries a case"));
    let version = rng.u32(1..=2);
    let mut entry = credit_entry(rng, case.applicant.clone(), version);
    entry.removal = None;
    Event::for_credit_match(
        parsed(
            MessageId::parse(&format!("gw-{}", hex(rng, 32))),
            "message id",
        ),
        source,
        case_event.case_id,
        case_event.sequence,
        case_event.occurred_at,
        CreditMatch {
            publisher: *pick(rng, &BureauId::ALL),
            entry,
            item: case.item,
            project: case.project.code,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_survey_events_are_valid_canonical_json() {
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..50 {
            let event = survey_event(&mut rng);
            let notice = event.survey().unwrap();
            assert_eq!(event.sequence, u64::from(notice.result.version));
            assert_eq!(notice.supersedes.is_some(), notice.result.version > 1);
            let json = serde_json::to_string(&event).unwrap();
            let back: Event = serde_json::from_str(&json).unwrap();
            assert_eq!(back, event);
        }
    }

    #[test]
    fn generated_notices_break_no_rule() {
        let mut rng = fastrand::Rng::with_seed(13);
        for _ in 0..200 {
            let event = joint_event(&mut rng);
            let notice = event.joint().unwrap();
            assert_eq!(notice.violations(), vec![], "{notice:#?}");
            assert_eq!(event.source, notice.window);
            let back: Event =
                serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
            assert_eq!(back, event);
            let event = credit_event(&mut rng);
            assert_eq!(event.credit().unwrap().violations(), vec![]);
            let back: Event =
                serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
            assert_eq!(back, event);
            let event = credit_match_event(&mut rng);
            assert_eq!(event.credit_match().unwrap().violations(), vec![]);
            let back: Event =
                serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
            assert_eq!(back, event);
            let event = deadline_event(&mut rng);
            assert_eq!(event.deadline().unwrap().violation(event.source), None);
            let back: Event =
                serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
            assert_eq!(back, event);
        }
    }

    #[test]
    fn generated_events_are_valid_canonical_json() {
        let mut rng = fastrand::Rng::with_seed(7);
        for bureau in BureauId::ALL {
            for _ in 0..50 {
                let event = case_event(&mut rng, bureau);
                assert_eq!(event.source, bureau);
                assert_eq!(event.case().map(|c| c.item.bureau()), Some(bureau));
                let json = serde_json::to_string(&event).unwrap();
                let back: Event = serde_json::from_str(&json).unwrap();
                assert_eq!(back, event);
            }
        }
    }
}
