//! End to end: a window's acceptance opens a joint case (one-stop parallel approval), every
//! bureau taking part is told in its own format through the normal push delivery, a branch's
//! event updates it, and `GET /v1/joint-cases` shows it to the window, the branches and the
//! operators — to nobody else; a case outside it runs on its own clock, and its deadline notice
//! reaches its bureau. Real mutual TLS, real HTTP, a SQLite file.

mod support;

use axum::http::StatusCode;
use schemas::{
    BureauCaseId, BureauId, CaseStatus, Event, EventKind, Item, Payload, ProjectCode, ShanghaiTime,
    Stage,
};
use support::{
    Behaviour, BureauClient, ReplyExt, TestPki, push_receivers, receiver, start_gateway, wait_until,
};

/// One flow: planning's window, two required branches (civil defense and water).
const FLOW: &str = r#"
[[flows]]
name = "test_permit"
reason = "two bureaus review in parallel"
window = "planning"
kind = "case.accepted"
item = "construction_planning_permit"
time_limit_working_days = 15

[[flows.branches]]
bureau = "civil_defense"
item = "civil_defense_design_review"
required = true
time_limit_working_days = 5

[[flows.branches]]
bureau = "water"
item = "water_supply_connection"
required = true
time_limit_working_days = 6

[clocks]
check_interval_seconds = 1
"#;

const PROJECT: &str = "2602-310115-04-01-000777";

fn case(source: BureauId, item: Item, status: CaseStatus, id: &str, seq: u64, at: &str) -> Event {
    let mut event = adapters::sample::case_event(&mut fastrand::Rng::with_seed(seq), source);
    let Some(mut case) = event.case().cloned() else {
        unreachable!("a case event")
    };
    case.item = item;
    case.stage = Stage::ConstructionPermit;
    case.status = status;
    case.project.code = ProjectCode::parse(PROJECT).expect("a project code");
    case.submitted_at = ShanghaiTime::parse_rfc3339("2026-02-02T09:00:00+08:00").expect("a time");
    event.case_id = BureauCaseId::parse(id).expect("a case id");
    event.sequence = seq;
    event.occurred_at = ShanghaiTime::parse_rfc3339(at).expect("a time");
    event.kind = status.event_kind();
    event.payload = Payload::Case(case);
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joint_case_is_told_in_each_bureau_format_and_shown_only_to_its_bureaus() {
    let pki = TestPki::new("joint-e2e");
    let receivers = push_receivers(&pki, Behaviour::Healthy).await;
    let refs: Vec<_> = receivers.iter().collect();
    let running = start_gateway(&pki, &refs, FLOW).await;
    let at = running.addr();
    let planning = BureauClient::new(&pki, at, BureauId::Planning);
    let water = BureauClient::new(&pki, at, BureauId::Water);
    let greenery = BureauClient::new(&pki, at, BureauId::Greenery);
    let operator = BureauClient::operator(&pki, at);

    let accepted = case(
        BureauId::Planning,
        Item::ConstructionPlanningPermit,
        CaseStatus::Accepted,
        "GH2026000777",
        2,
        "2026-02-13T10:00:00+08:00",
    );
    assert_eq!(planning.send(&accepted).await.status, StatusCode::ACCEPTED);
    // Water's system receives the opening in its own format (its endpoint decodes with the
    // water adapter, GB18030 XML).
    let water_inbox = receiver(&receivers, BureauId::Water);
    wait_until("water is told of the joint case", async || {
        water_inbox
            .received()
            .iter()
            .any(|r| r.event.kind == EventKind::JointOpened)
    })
    .await;
    let opened = water_inbox
        .received()
        .into_iter()
        .find(|r| r.event.kind == EventKind::JointOpened)
        .unwrap()
        .event;
    let notice = opened.joint().unwrap().clone();
    assert_eq!(notice.window_case_id.as_str(), "GH2026000777");
    assert_eq!(notice.due.on.to_string(), "2026-03-12");
    assert!(notice.branches.iter().all(|b| b.case_id.is_none()));

    let water_accepted = case(
        BureauId::Water,
        Item::WaterSupplyConnection,
        CaseStatus::Accepted,
        "SW2026000777",
        1,
        "2026-02-24T11:00:00+08:00",
    );
    assert_eq!(
        water.send(&water_accepted).await.status,
        StatusCode::ACCEPTED
    );
    let planning_inbox = receiver(&receivers, BureauId::Planning);
    wait_until("planning is told water accepted", async || {
        planning_inbox.received().iter().any(|r| {
            r.event.kind == EventKind::JointUpdated
                && r.event
                    .joint()
                    .is_some_and(|n| n.branches[1].case_id.is_some())
        })
    })
    .await;

    let list = format!("/v1/joint-cases?project={PROJECT}");
    for client in [&planning, &water, &operator] {
        let reply = client.get(&list).await;
        assert_eq!(reply.status, StatusCode::OK);
        let views = reply.json();
        assert_eq!(views.as_array().map(Vec::len), Some(1), "{views}");
        let branch = &views[0]["branches"][1];
        assert_eq!(branch["started_on"], "2026-02-24", "{views}");
        // Six working days from 24 February: 25, 26, 27, 28 (a Saturday worked), 2, 3 March.
        assert_eq!(branch["due_on"], "2026-03-03", "{views}");
    }
    let id = notice.joint_case_id.as_str();
    assert_eq!(greenery.get(&list).await.json(), serde_json::json!([]));
    let path = format!("/v1/joint-cases/{id}");
    assert_eq!(greenery.get(&path).await.status, StatusCode::NOT_FOUND);
    let reply = operator.get(&path).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["notice"]["status"], "open");
    // The bulletin: for operators; a closed month's bytes never change; CSV too.
    let report = "/v1/reports/monthly?month=2026-02";
    assert_eq!(planning.get(report).await.status, StatusCode::FORBIDDEN);
    let first = operator.get(report).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.json()["closed"], true);
    assert_eq!(operator.get(report).await.body, first.body);
    let csv = operator.get(&format!("{report}&format=csv")).await;
    assert!(
        csv.header("content-type")
            .is_some_and(|t| t.starts_with("text/csv")),
        "{csv:?}"
    );
    assert!(String::from_utf8_lossy(&csv.body).starts_with("month,row,name,"));
    let wrong = operator.get("/v1/reports/monthly?month=2026-13").await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    let bad = operator.get("/v1/joint-cases/jc-NOT").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.json()["detail"]
            .as_str()
            .is_some_and(|d| d.contains("jc-NOT"))
    );

    // A case outside any joint case runs on its own clock, of the limit its event carries: long
    // past due, its bureau is told in its own format (greenery: UTF-8 JSON), naming no joint
    // case, and operators see it in the overdue list.
    let felling = case(
        BureauId::Greenery,
        Item::TreeFelling,
        CaseStatus::Accepted,
        "LH2026000777",
        1,
        "2026-02-24T11:00:00+08:00",
    );
    assert_eq!(greenery.send(&felling).await.status, StatusCode::ACCEPTED);
    let greenery_inbox = receiver(&receivers, BureauId::Greenery);
    wait_until("greenery is told its case is overdue", async || {
        greenery_inbox.received().iter().any(|r| {
            r.event.kind == EventKind::DeadlinePassed && r.event.case_id.as_str() == "LH2026000777"
        })
    })
    .await;
    let told = greenery_inbox
        .received()
        .into_iter()
        .find(|r| r.event.kind == EventKind::DeadlinePassed)
        .unwrap()
        .event;
    let deadline = told.deadline().unwrap();
    assert_eq!(deadline.joint_case_id, None);
    assert_eq!(deadline.item, Item::TreeFelling);
    // The window hears that the whole joint case is past its limit, about its application.
    let planning_inbox = receiver(&receivers, BureauId::Planning);
    wait_until("planning is told the joint case is overdue", async || {
        planning_inbox.received().iter().any(|r| {
            r.event.kind == EventKind::DeadlinePassed
                && r.event.case_id.as_str() == "GH2026000777"
                && r.event
                    .deadline()
                    .is_some_and(|d| d.joint_case_id.as_ref() == Some(&notice.joint_case_id))
        })
    })
    .await;
    wait_until("the overdue list shows the greenery case", async || {
        let list = operator.get("/v1/clocks/overdue").await.json();
        list["cases"].as_array().is_some_and(|cases| {
            cases.iter().any(|c| {
                c["case_id"] == "LH2026000777"
                    && c["bureau"] == "greenery"
                    && c.get("joint_case_id").is_none()
            })
        })
    })
    .await;
    assert_eq!(
        greenery.get("/v1/clocks/overdue").await.status,
        StatusCode::FORBIDDEN,
        "the overdue list is the operators'"
    );
    running.shutdown().await;
}
