//! The monthly bulletin (月度通報): how each bureau and each one-stop flow did in one month,
//! against the working-day limits — what the reform office publishes.
//!
//! Read from the store: every case event whose message the gateway received in the month
//! (Shanghai time), folded per case; for a case decided in the month but accepted earlier, its
//! earlier events (its timeline). A case is on time when the working days from the day after
//! its acceptance to its decision, net of the days it stood still for a supplement, are within
//! the limit its events carry. The joint-case notices of the month give the flows' figures; the
//! joint cases open when the bulletin is made, overdue on the month's last day, are listed.
//! Dead letters are those that died in the month; an event "entered late" reached the gateway
//! more than [`LATE_MS`] after it occurred.
//!
//! A closed month's bulletin is frozen the first time it is asked for (stored, and the same
//! bytes ever after, on every node); the current month's is made afresh on each request.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate};
use schemas::{BureauCaseId, BureauId, CaseStatus, Event, JointStatus, Payload};
use serde::{Deserialize, Serialize};

use super::FlowTable;
use super::view::JointView;
use crate::clock::Millis;
use crate::store::{Store, StoreError, TimelineKey};

/// An event that reached the gateway more than this after it occurred entered late (3 days).
pub const LATE_MS: Millis = 3 * 86_400_000;
/// Events read per store call.
const PAGE: usize = 1000;
/// Events of one case read to find its acceptance.
const CASE_HISTORY: usize = 200;
/// Overdue cases listed per bureau.
const OVERDUE_LISTED: usize = 100;
/// Open joint cases or case clocks read per store call.
const OPEN_PAGE: usize = 256;

/// Adds an overdue case to a bureau's list, keeping memory bounded: past twice the listed
/// number, only the most overdue are kept.
fn keep_most_overdue(list: &mut Vec<Overdue>, case: Overdue) {
    list.push(case);
    if list.len() >= 2 * OVERDUE_LISTED {
        settle_overdue(list);
    }
}

/// Most overdue first (then by joint case and case), the listed number.
fn settle_overdue(list: &mut Vec<Overdue>) {
    list.sort_by(|a, b| {
        b.working_days_overdue
            .cmp(&a.working_days_overdue)
            .then_with(|| a.joint_case_id.cmp(&b.joint_case_id))
            .then_with(|| a.case_id.as_str().cmp(b.case_id.as_str()))
    });
    list.truncate(OVERDUE_LISTED);
}

/// A calendar month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    first: NaiveDate,
}

impl Month {
    /// Parses `YYYY-MM` (2000 to 2099).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a month YYYY-MM");
        let (year, month) = text.split_once('-').ok_or_else(bad)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(bad());
        }
        let year: i32 = year.parse().map_err(|_| bad())?;
        let month: u32 = month.parse().map_err(|_| bad())?;
        if !(2000..=2099).contains(&year) {
            return Err(bad());
        }
        NaiveDate::from_ymd_opt(year, month, 1)
            .map(|first| Self { first })
            .ok_or_else(bad)
    }

    /// Its first day.
    pub fn first_day(self) -> NaiveDate {
        self.first
    }

    /// Its last day.
    pub fn last_day(self) -> NaiveDate {
        self.next().pred_opt().unwrap_or(self.first)
    }

    fn next(self) -> NaiveDate {
        let (y, m) = (self.first.year(), self.first.month());
        let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(self.first)
    }

    /// Shanghai midnight of `day`, in Unix milliseconds.
    fn start_of(day: NaiveDate) -> Millis {
        day.and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp_millis() - 8 * 3_600_000)
    }

    /// `[from, to)` in Unix milliseconds.
    pub fn span(self) -> (Millis, Millis) {
        (Self::start_of(self.first), Self::start_of(self.next()))
    }

    /// Whether the month is over at `now`.
    pub fn closed_at(self, now: Millis) -> bool {
        self.span().1 <= now
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.first.format("%Y-%m"))
    }
}

/// The bulletin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bulletin {
    /// `YYYY-MM`.
    pub month: String,
    /// Whether the month is over (the bulletin then never changes).
    pub closed: bool,
    /// When it was made.
    pub made_at: Millis,
    /// The working-day calendar it counted on.
    pub calendar: String,
    /// One row per bureau.
    pub bureaus: Vec<BureauFigures>,
    /// One row per configured flow.
    pub flows: Vec<FlowFigures>,
}

/// A bureau's month.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BureauFigures {
    /// The bureau.
    pub bureau: Option<BureauId>,
    /// Applications received (`case.submitted`).
    pub received: u64,
    /// Accepted for review (`case.accepted`, supplements returning included).
    pub accepted: u64,
    /// Decided: approved.
    pub approved: u64,
    /// Decided: rejected.
    pub rejected: u64,
    /// Withdrawn by the applicant.
    pub withdrawn: u64,
    /// Decisions within the case's limit.
    pub on_time: u64,
    /// `on_time` of the decisions, in percent (one decimal); absent without decisions.
    pub on_time_percent: Option<f64>,
    /// Average working days from acceptance to decision, net of supplements (one decimal).
    pub average_working_days: Option<f64>,
    /// The 90th percentile of the same.
    pub p90_working_days: Option<u32>,
    /// Supplements requested of applicants.
    pub supplement_requests: u64,
    /// Average working days a supplement took to come (of those that came in the month).
    pub supplement_average_working_days: Option<f64>,
    /// Open cases overdue on the month's last day: branches of open joint cases and cases on
    /// their own clock (at most 100 listed).
    pub open_overdue: Vec<Overdue>,
    /// Deliveries to the bureau that became dead letters in the month.
    pub dead_letters: u64,
    /// The bureau's events that reached the gateway more than 3 days after they occurred.
    pub entered_late: u64,
}

/// An overdue case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overdue {
    /// The bureau's case.
    pub case_id: BureauCaseId,
    /// Its joint case (absent: the case is on its own clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joint_case_id: Option<String>,
    /// Working days past its due date on the month's last day.
    pub working_days_overdue: i64,
}

/// A flow's month.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowFigures {
    /// The flow.
    pub flow: String,
    /// Joint cases opened.
    pub opened: u64,
    /// Decided: approved.
    pub approved: u64,
    /// Decided: rejected.
    pub rejected: u64,
    /// Withdrawn.
    pub withdrawn: u64,
    /// Terminated: a document accepted for later supply did not come.
    pub terminated: u64,
    /// Of the decided, those decided by their due date.
    pub within_limit: u64,
    /// Open joint cases past their due date on the month's last day.
    pub open_overdue: u64,
}

/// What the month's events say of one case.
#[derive(Default)]
struct CaseFold {
    accepted_on: Option<NaiveDate>,
    paused_since: Option<NaiveDate>,
    paused_days: u32,
    decided: Option<(CaseStatus, NaiveDate)>,
    limit: u16,
}

fn day(event: &Event) -> NaiveDate {
    event.occurred_at.naive_local().date()
}

fn one_decimal(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Makes `month`'s bulletin from the store at `now`.
pub async fn make<S: Store>(
    store: &S,
    table: &FlowTable,
    month: Month,
    now: Millis,
) -> Result<Bulletin, StoreError> {
    let calendar = table.calendar();
    let (from, to) = month.span();
    let mut rows: BTreeMap<BureauId, BureauFigures> = BureauId::ALL
        .into_iter()
        .map(|b| {
            (
                b,
                BureauFigures {
                    bureau: Some(b),
                    ..BureauFigures::default()
                },
            )
        })
        .collect();
    let mut flows: BTreeMap<String, FlowFigures> = table
        .flows()
        .iter()
        .map(|f| {
            (
                f.name.clone(),
                FlowFigures {
                    flow: f.name.clone(),
                    ..FlowFigures::default()
                },
            )
        })
        .collect();
    let mut cases: HashMap<(BureauId, BureauCaseId), CaseFold> = HashMap::new();
    let mut supplement_days: BTreeMap<BureauId, Vec<u32>> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = store.events_received(from, to, after, PAGE).await?;
        let full = page.len() == PAGE;
        for received in &page {
            after = received.id;
            let event = &received.event;
            let occurred =
                event.occurred_at.naive_local().and_utc().timestamp_millis() - 8 * 3_600_000;
            let row = rows.entry(event.source).or_default();
            if received.received_at - occurred > LATE_MS {
                row.entered_late += 1;
            }
            match &event.payload {
                Payload::Case(case) => {
                    let fold = cases
                        .entry((event.source, event.case_id.clone()))
                        .or_default();
                    fold.limit = case.time_limit_working_days.get();
                    let on = day(event);
                    match case.status {
                        CaseStatus::Submitted => row.received += 1,
                        CaseStatus::Accepted => {
                            row.accepted += 1;
                            if let Some(since) = fold.paused_since.take() {
                                let (days, _) = calendar.working_days_between(since, on);
                                fold.paused_days += days;
                                supplement_days.entry(event.source).or_default().push(days);
                            }
                            fold.accepted_on.get_or_insert(on);
                        }
                        CaseStatus::SupplementRequested => {
                            row.supplement_requests += 1;
                            fold.paused_since.get_or_insert(on);
                        }
                        CaseStatus::Approved | CaseStatus::Rejected | CaseStatus::Withdrawn => {
                            match case.status {
                                CaseStatus::Approved => row.approved += 1,
                                CaseStatus::Rejected => row.rejected += 1,
                                _ => row.withdrawn += 1,
                            }
                            fold.decided = Some((case.status, on));
                        }
                    }
                }
                Payload::Joint(notice) => {
                    let Some(flow) = flows.get_mut(notice.flow.as_str()) else {
                        continue;
                    };
                    match notice.status {
                        JointStatus::Open if notice.version == 1 => flow.opened += 1,
                        JointStatus::Open => {}
                        status => {
                            match status {
                                JointStatus::Approved => flow.approved += 1,
                                JointStatus::Rejected => flow.rejected += 1,
                                JointStatus::Withdrawn => flow.withdrawn += 1,
                                _ => flow.terminated += 1,
                            }
                            if day(event) <= notice.due.on.get() {
                                flow.within_limit += 1;
                            }
                        }
                    }
                }
                Payload::Survey(_)
                | Payload::Deadline(_)
                | Payload::Credit(_)
                | Payload::CreditMatch(_) => {}
            }
        }
        if !full {
            break;
        }
    }

    // Decisions: working days from acceptance, net of supplements.
    let mut taken: BTreeMap<BureauId, Vec<u32>> = BTreeMap::new();
    for ((bureau, case_id), fold) in &cases {
        let Some((status, decided_on)) = fold.decided else {
            continue;
        };
        if status == CaseStatus::Withdrawn {
            continue;
        }
        let accepted_on = match fold.accepted_on {
            Some(on) => on,
            None => match accepted_before(store, *bureau, case_id).await? {
                Some(on) => on,
                None => continue, // never accepted: refused at the counter
            },
        };
        let (gross, _) = calendar.working_days_between(accepted_on, decided_on);
        let net = gross.saturating_sub(fold.paused_days);
        taken.entry(*bureau).or_default().push(net);
        if net <= u32::from(fold.limit)
            && let Some(row) = rows.get_mut(bureau)
        {
            row.on_time += 1;
        }
    }
    for (bureau, row) in rows.iter_mut() {
        if let Some(days) = taken.get_mut(bureau).filter(|d| !d.is_empty()) {
            days.sort_unstable();
            let n = days.len();
            row.on_time_percent = Some(one_decimal(row.on_time as f64 * 100.0 / n as f64));
            row.average_working_days = Some(one_decimal(
                days.iter().map(|d| f64::from(*d)).sum::<f64>() / n as f64,
            ));
            row.p90_working_days = days.get((n * 9).div_ceil(10).saturating_sub(1)).copied();
        }
        if let Some(days) = supplement_days.get(bureau).filter(|d| !d.is_empty()) {
            row.supplement_average_working_days = Some(one_decimal(
                days.iter().map(|d| f64::from(*d)).sum::<f64>() / days.len() as f64,
            ));
        }
    }
    for (bureau, n) in store.dead_letters_between(from, to).await? {
        rows.entry(bureau).or_default().dead_letters = n;
    }

    // Open joint cases overdue on the month's last day.
    let last = month.last_day();
    let mut after = None;
    loop {
        let page = store.open_joint_cases(after.as_ref(), OPEN_PAGE).await?;
        let full = page.len() == OPEN_PAGE;
        after = page.last().map(|c| c.id().clone());
        for case in &page {
            let view = JointView::of(case, table, last);
            if view.clock.working_days_left.is_some_and(|l| l < 0)
                && let Some(flow) = flows.get_mut(view.notice.flow.as_str())
            {
                flow.open_overdue += 1;
            }
            for (branch, clock) in view.notice.branches.iter().zip(&view.branches) {
                let (Some(case_id), Some(left)) = (&branch.case_id, clock.working_days_left) else {
                    continue;
                };
                let row = rows.entry(branch.bureau).or_default();
                if left < 0 && clock.stopped_on.is_none() {
                    keep_most_overdue(
                        &mut row.open_overdue,
                        Overdue {
                            case_id: case_id.clone(),
                            joint_case_id: Some(view.notice.joint_case_id.as_str().to_owned()),
                            working_days_overdue: -left,
                        },
                    );
                }
            }
        }
        if !full {
            break;
        }
    }
    // Cases on their own clock overdue on the month's last day.
    let mut after = None;
    loop {
        let page = store.open_case_clocks(after.clone(), OPEN_PAGE).await?;
        let full = page.len() == OPEN_PAGE;
        after = page.last().map(|c| (c.bureau, c.case_id.clone()));
        for clock in &page {
            let Some((_, left)) = super::rules::standing(&clock.clock, calendar, last) else {
                continue;
            };
            let row = rows.entry(clock.bureau).or_default();
            if left < 0 {
                keep_most_overdue(
                    &mut row.open_overdue,
                    Overdue {
                        case_id: clock.case_id.clone(),
                        joint_case_id: None,
                        working_days_overdue: -left,
                    },
                );
            }
        }
        if !full {
            break;
        }
    }
    for row in rows.values_mut() {
        settle_overdue(&mut row.open_overdue);
    }
    Ok(Bulletin {
        month: month.to_string(),
        closed: month.closed_at(now),
        made_at: now,
        calendar: calendar.version(),
        bureaus: rows.into_values().collect(),
        flows: flows.into_values().collect(),
    })
}

/// When `bureau` accepted its case `case_id`, from the case's earlier events.
async fn accepted_before<S: Store>(
    store: &S,
    bureau: BureauId,
    case_id: &BureauCaseId,
) -> Result<Option<NaiveDate>, StoreError> {
    let history = store
        .timeline(TimelineKey::Case(case_id.clone()), CASE_HISTORY)
        .await?;
    Ok(history
        .iter()
        .filter(|e| e.event.source == bureau)
        .filter(|e| {
            e.event
                .case()
                .is_some_and(|c| c.status == CaseStatus::Accepted)
        })
        .map(|e| day(&e.event))
        .min())
}

/// The bulletin of `month` as the API serves it: a closed month's frozen bytes (made and
/// frozen the first time), the current month's made afresh. JSON.
pub async fn json<S: Store>(
    store: &S,
    table: &FlowTable,
    month: Month,
    now: Millis,
) -> Result<String, StoreError> {
    let closed = month.closed_at(now);
    if closed && let Some(frozen) = store.frozen_report(&month.to_string()).await? {
        return Ok(frozen);
    }
    let bulletin = make(store, table, month, now).await?;
    let body = serde_json::to_string_pretty(&bulletin)
        .map_err(|e| StoreError::corrupt_from("cannot encode the bulletin", e))?;
    if closed {
        store.freeze_report(&month.to_string(), body, now).await
    } else {
        Ok(body)
    }
}

/// The bulletin as CSV: one line per bureau, then one per flow (derived from the JSON, so a
/// closed month's CSV never changes either).
pub fn csv(json: &str) -> Result<String, serde_json::Error> {
    let bulletin: Bulletin = serde_json::from_str(json)?;
    let opt = |x: Option<f64>| x.map(|x| format!("{x:.1}")).unwrap_or_default();
    let mut out = String::from(
        "month,row,name,received,accepted,approved,rejected,withdrawn,on_time,on_time_percent,average_working_days,p90_working_days,supplement_requests,supplement_average_working_days,open_overdue,dead_letters,entered_late,opened,terminated,within_limit\n",
    );
    for row in &bulletin.bureaus {
        out.push_str(&format!(
            "{},bureau,{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},,,\n",
            bulletin.month,
            row.bureau.map(BureauId::as_str).unwrap_or_default(),
            row.received,
            row.accepted,
            row.approved,
            row.rejected,
            row.withdrawn,
            row.on_time,
            opt(row.on_time_percent),
            opt(row.average_working_days),
            row.p90_working_days
                .map(|d| d.to_string())
                .unwrap_or_default(),
            row.supplement_requests,
            opt(row.supplement_average_working_days),
            row.open_overdue.len(),
            row.dead_letters,
            row.entered_late,
        ));
    }
    for flow in &bulletin.flows {
        out.push_str(&format!(
            "{},flow,{},,,{},{},{},,,,,,,{},,,{},{},{}\n",
            bulletin.month,
            flow.flow,
            flow.approved,
            flow.rejected,
            flow.withdrawn,
            flow.open_overdue,
            flow.opened,
            flow.terminated,
            flow.within_limit,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::flows::rules::tests::case_event;
    use crate::ids::{self, IdempotencyKey};
    use crate::store::any::AnyStore;
    use crate::store::{NewEvent, NewMessage};
    use crate::testing::{PgSchema, TempDir, postgres_server};
    use schemas::Item;

    /// Unix milliseconds of a Shanghai date at noon.
    fn noon(day: &str) -> Millis {
        let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
        Month::start_of(date) + 12 * 3_600_000
    }

    async fn send<S: Store>(store: &S, event: Event, received: &str) {
        let key = format!("{}-{}", event.case_id.as_str(), event.sequence);
        let message = NewMessage {
            sender: event.source,
            idempotency_key: IdempotencyKey::from_header(key.as_bytes()).unwrap(),
            content_type: "application/json".into(),
            body: key.clone().into_bytes(),
            sha256: ids::sha256(key.as_bytes()),
            received_at: noon(received),
            events: vec![NewEvent {
                source_message_id: event.message_id.clone(),
                event: Event {
                    message_id: ids::mint_message_id(),
                    ..event
                },
                subscribers: vec![],
                routed_by: vec![],
                for_flows: false,
            }],
            survey: None,
            credit: Vec::new(),
            credit_match: None,
        };
        store.ingest(message).await.unwrap();
    }

    #[test]
    fn months_parse_strictly_and_span_shanghai_days() {
        let march = Month::parse("2026-03").unwrap();
        assert_eq!(march.last_day().to_string(), "2026-03-31");
        let (from, to) = march.span();
        assert_eq!(to - from, 31 * 86_400_000);
        // 1 March 2026 00:00 in Shanghai is 28 February 16:00 UTC.
        assert_eq!(from, 1_772_294_400_000);
        for bad in ["2026-3", "2026-13", "26-03", "2026/03", "1999-12"] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_known_month_gives_known_figures_and_is_frozen_once_over() {
        use schemas::CaseStatus::{Accepted, Approved, Submitted, SupplementRequested};
        let table = FlowTable::new(
            &Config::from_layers(&[], &[]).unwrap(),
            crate::workdays::Calendar::builtin(),
        );
        let dir = TempDir::new("bulletin");
        let mut stores = vec![(
            None,
            AnyStore::open(
                &crate::config::StoreLocation::Sqlite(dir.path().join("b.db")),
                1,
            )
            .await
            .unwrap(),
        )];
        if let Some(server) = postgres_server("bulletin tests") {
            let schema = PgSchema::new(&server);
            let store = AnyStore::open(&crate::config::StoreLocation::Postgres(schema.url()), 2)
                .await
                .unwrap();
            stores.push((Some(schema), store));
        }
        let water = |status, case: &str, seq, day: &str| {
            case_event(
                BureauId::Water,
                Item::WaterSupplyConnection,
                status,
                case,
                seq,
                day,
            )
        };
        for (_schema, store) in &stores {
            // W1: accepted 3 March, a supplement from 5 to 10 March, approved 12 March: 7
            // working days, 3 of them stopped, 4 net within its 6.
            for (status, seq, day) in [
                (Submitted, 1, "2026-03-02"),
                (Accepted, 2, "2026-03-03"),
                (SupplementRequested, 3, "2026-03-05"),
                (Accepted, 4, "2026-03-10"),
                (Approved, 5, "2026-03-12"),
            ] {
                send(store, water(status, "SW-W1", seq, day), day).await;
            }
            // W2: accepted 20 February (before the month), approved 6 March: 10 working days
            // across the end of the Spring Festival (23 February off, Saturday 28 worked): late.
            send(
                store,
                water(Accepted, "SW-W2", 1, "2026-02-20"),
                "2026-02-20",
            )
            .await;
            send(
                store,
                water(Approved, "SW-W2", 2, "2026-03-06"),
                "2026-03-06",
            )
            .await;
            // Civil defense: an acceptance that occurred 1 March and reached the gateway on the
            // 20th (entered late); another bureau's month does not count.
            let late = case_event(
                BureauId::CivilDefense,
                Item::CivilDefenseDesignReview,
                Accepted,
                "RF-C1",
                1,
                "2026-03-01",
            );
            send(store, late, "2026-03-20").await;
            send(
                store,
                water(Submitted, "SW-W3", 1, "2026-04-01"),
                "2026-04-01",
            )
            .await;

            let now = noon("2026-12-01");
            let march = Month::parse("2026-03").unwrap();
            let first = json(store, &table, march, now).await.unwrap();
            let bulletin: Bulletin = serde_json::from_str(&first).unwrap();
            assert!(bulletin.closed);
            let row = |b: BureauId| {
                bulletin
                    .bureaus
                    .iter()
                    .find(|r| r.bureau == Some(b))
                    .unwrap()
            };
            let w = row(BureauId::Water);
            assert_eq!(
                (w.received, w.accepted, w.approved, w.rejected, w.on_time),
                (1, 2, 2, 0, 1),
                "{w:#?}"
            );
            assert_eq!(w.on_time_percent, Some(50.0));
            assert_eq!(w.average_working_days, Some(7.0));
            assert_eq!(w.p90_working_days, Some(10));
            assert_eq!(
                (w.supplement_requests, w.supplement_average_working_days),
                (1, Some(3.0))
            );
            assert_eq!(w.entered_late, 0);
            let c = row(BureauId::CivilDefense);
            assert_eq!((c.accepted, c.entered_late), (1, 1));
            assert_eq!(row(BureauId::Greenery).received, 0);
            assert_eq!(bulletin.flows.len(), 2);

            // Over, it is frozen: a late arrival dated in March changes nothing of it.
            send(
                store,
                water(Submitted, "SW-W4", 1, "2026-03-30"),
                "2026-03-30",
            )
            .await;
            assert_eq!(json(store, &table, march, now + 1).await.unwrap(), first);
            let csv_text = csv(&first).unwrap();
            assert!(
                csv_text
                    .lines()
                    .any(|l| l
                        .starts_with("2026-03,bureau,water,1,2,2,0,0,1,50.0,7.0,10,1,3.0,0,0,0")),
                "{csv_text}"
            );
            // The current month is made afresh and not stored.
            let december = Month::parse("2026-12").unwrap();
            let open: Bulletin =
                serde_json::from_str(&json(store, &table, december, now).await.unwrap()).unwrap();
            assert!(!open.closed);
            assert_eq!(store.frozen_report("2026-12").await.unwrap(), None);
        }
    }
}
