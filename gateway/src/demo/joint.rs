//! The demo's one-stop applications: planning accepts three construction planning permits that
//! open joint cases of the one-stop construction permit; the branch bureaus answer in their own
//! formats — one application runs smoothly, in one water asks the applicant for a supplement
//! (its clock stops until it comes), in one the traffic police accept the road-works review and
//! never decide (its one-working-day limit runs out, and a deadline notice follows). The events
//! are dated in the last weeks, so the clocks have something to count; the summary reads the
//! joint cases back.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{Duration as Days, NaiveDate};
use schemas::{
    BureauCaseId, BureauId, CaseStatus, Event, Item, JointStatus, MessageId, Payload, ProjectCode,
    ShanghaiTime, Stage,
};

use super::tally::Tallies;
use crate::flows::FlowTable;
use crate::flows::view::JointView;
use crate::sim::BureauClient;
use crate::store::Store;
use std::collections::BTreeMap;

/// The projects of the three applications.
const PROJECTS: [&str; 3] = [
    "2611-310115-04-01-100001",
    "2611-310115-04-01-100002",
    "2611-310115-04-01-100003",
];

/// A case event of `source`, dated `day` at 10:00.
fn event(
    source: BureauId,
    item: Item,
    status: CaseStatus,
    case: &str,
    seq: u64,
    day: NaiveDate,
    project: &str,
) -> Option<Event> {
    let mut event = adapters::sample::case_event(
        &mut fastrand::Rng::with_seed(seq * 31 + day.to_string().len() as u64),
        source,
    );
    let mut body = event.case()?.clone();
    body.item = item;
    body.stage = Stage::ConstructionPermit;
    body.status = status;
    body.project.code = ProjectCode::parse(project).ok()?;
    body.submitted_at = ShanghaiTime::from_local(day.and_hms_opt(9, 0, 0)? - Days::days(1)).ok()?;
    event.message_id = MessageId::parse(&format!("{case}-{seq}")).ok()?;
    event.case_id = BureauCaseId::parse(case).ok()?;
    event.sequence = seq;
    event.occurred_at = ShanghaiTime::from_local(day.and_hms_opt(10, 0, 0)?).ok()?;
    event.kind = status.event_kind();
    event.payload = Payload::Case(body);
    Some(event)
}

/// Sends the three applications' events in order, each bureau in its own format; returns how
/// many were accepted.
pub(super) async fn send(
    clients: &BTreeMap<BureauId, Arc<BureauClient>>,
    tallies: &Tallies,
    today: NaiveDate,
) -> usize {
    use BureauId::{CivilDefense, Greenery, Planning, TrafficPolice, Water};
    use CaseStatus::{Accepted, Approved, SupplementRequested};
    let start = today - Days::days(21);
    let day = |n: i64| start + Days::days(n);
    let mut script: Vec<(BureauId, Item, CaseStatus, String, u64, NaiveDate, &str)> = Vec::new();
    for (i, project) in PROJECTS.iter().enumerate() {
        let n = i + 1;
        let id = |prefix: &str| format!("{prefix}2026DEMO{n}");
        script.push((
            Planning,
            Item::ConstructionPlanningPermit,
            Accepted,
            id("GH"),
            2,
            day(0),
            project,
        ));
        for (bureau, item, prefix) in [
            (CivilDefense, Item::CivilDefenseDesignReview, "RF"),
            (Water, Item::WaterSupplyConnection, "SW"),
            (TrafficPolice, Item::RoadWorksTrafficSafety, "JJ"),
            (Greenery, Item::GreeningPlanReview, "LH"),
        ] {
            script.push((bureau, item, Accepted, id(prefix), 1, day(1), project));
            let late = n == 3 && bureau == TrafficPolice;
            if n == 2 && bureau == Water {
                script.push((
                    bureau,
                    item,
                    SupplementRequested,
                    id(prefix),
                    2,
                    day(2),
                    project,
                ));
                script.push((bureau, item, Accepted, id(prefix), 3, day(6), project));
                script.push((bureau, item, Approved, id(prefix), 4, day(7), project));
            } else if !late {
                script.push((bureau, item, Approved, id(prefix), 2, day(2), project));
            }
        }
    }
    let mut accepted = 0;
    for (bureau, item, status, case, seq, on, project) in script {
        let tally = &tallies[&bureau];
        let (Some(event), Some(adapter), Some(client)) = (
            event(bureau, item, status, &case, seq, on, project),
            adapters::for_bureau(bureau),
            clients.get(&bureau),
        ) else {
            tally.reject(format!("joint application: cannot build {case} #{seq}"));
            continue;
        };
        let encoded = match adapter.encode(&event) {
            Ok(encoded) => encoded,
            Err(error) => {
                tally.reject(format!("joint application: {error}"));
                continue;
            }
        };
        tally.sent.fetch_add(1, Ordering::Relaxed);
        match client
            .post_message(&encoded, Some(&format!("demo-joint-{case}-{seq}")))
            .await
        {
            Ok(reply) if reply.status == hyper::StatusCode::ACCEPTED => {
                accepted += 1;
                tally.accepted.fetch_add(1, Ordering::Relaxed);
                if let Ok(receipt) = reply.parse::<crate::store::Receipt>("a receipt") {
                    tally
                        .promised
                        .fetch_add(receipt.deliveries as u64, Ordering::Relaxed);
                }
            }
            Ok(reply) => tally.reject(format!("joint application: {}", reply.status)),
            Err(error) => tally.reject(format!("joint application: {error}")),
        }
    }
    accepted
}

/// The summary's lines: the three joint cases as they stand, on time and overdue.
pub(super) async fn summary<S: Store>(
    store: &S,
    flows: &FlowTable,
    today: NaiveDate,
) -> (String, bool) {
    let mut views = Vec::new();
    for project in PROJECTS {
        let Ok(code) = ProjectCode::parse(project) else {
            continue;
        };
        match store.joint_cases_of_project(&code, 8).await {
            Ok(cases) => views.extend(cases.iter().map(|c| JointView::of(c, flows, today))),
            Err(error) => return (format!("joint cases: cannot read them: {error}"), false),
        }
    }
    let approved: Vec<&JointView> = views
        .iter()
        .filter(|v| v.notice.status == JointStatus::Approved)
        .collect();
    let on_time = approved
        .iter()
        .filter(|v| v.clock.working_days_left.is_some_and(|l| l >= 0))
        .count();
    let overdue_branches: Vec<String> = views
        .iter()
        .flat_map(|v| {
            v.notice
                .branches
                .iter()
                .zip(&v.branches)
                .filter_map(|(b, c)| {
                    let left = c.working_days_left?;
                    (c.stopped_on.is_none() && left < 0).then(|| {
                        format!(
                            "{} {} overdue by {} working days",
                            b.bureau,
                            b.item.code(),
                            -left
                        )
                    })
                })
        })
        .collect();
    let paused: usize = views
        .iter()
        .flat_map(|v| &v.branches)
        .filter(|c| !c.paused.is_empty())
        .count();
    let mut lines = format!(
        "joint cases (one-stop construction permit): {} opened, {} approved ({on_time} within the flow's limit), {} open; {paused} branch clock(s) stopped for a supplement; overdue: {}",
        views.len(),
        approved.len(),
        views
            .iter()
            .filter(|v| v.notice.status == JointStatus::Open)
            .count(),
        if overdue_branches.is_empty() {
            "none".to_owned()
        } else {
            overdue_branches.join(", ")
        }
    );
    for view in &views {
        lines.push_str(&format!(
            "\n  {} {} {}: due {}{}",
            view.notice.joint_case_id.as_str(),
            view.notice.project.code.as_str(),
            view.notice.status.code(),
            view.notice.due.on,
            if view.notice.due.provisional {
                " (provisional)"
            } else {
                ""
            }
        ));
    }
    let ok = views.len() == PROJECTS.len() && approved.len() == 2 && overdue_branches.len() == 1;
    (lines, ok)
}

/// The current month's bulletin so far, one line per bureau with decisions and one per flow.
pub(super) async fn bulletin<S: Store>(store: &S, flows: &FlowTable, today: NaiveDate) -> String {
    let Ok(month) = crate::flows::bulletin::Month::parse(&today.format("%Y-%m").to_string()) else {
        return String::new();
    };
    let made = crate::flows::bulletin::make(store, flows, month, crate::clock::now_ms()).await;
    let bulletin = match made {
        Ok(bulletin) => bulletin,
        Err(error) => return format!("monthly bulletin: cannot make it: {error}"),
    };
    let mut out = format!(
        "monthly bulletin {} so far (gateway ctl report --month {}):",
        bulletin.month, bulletin.month
    );
    for row in &bulletin.bureaus {
        let Some(bureau) = row.bureau else { continue };
        out.push_str(&format!(
            "\n  {bureau:<15} received {:>4}, accepted {:>4}, decided {:>4}, on time {}, average {} working days, supplements {}, overdue {}, dead letters {}",
            row.received,
            row.accepted,
            row.approved + row.rejected,
            row.on_time_percent.map_or("-".to_owned(), |p| format!("{p}%")),
            row.average_working_days.map_or("-".to_owned(), |d| d.to_string()),
            row.supplement_requests,
            row.open_overdue.len(),
            row.dead_letters,
        ));
    }
    for flow in &bulletin.flows {
        out.push_str(&format!(
            "\n  flow {}: opened {}, approved {}, rejected {}, terminated {}, within the limit {}, open overdue {}",
            flow.flow, flow.opened, flow.approved, flow.rejected, flow.terminated, flow.within_limit, flow.open_overdue
        ));
    }
    out
}
