//! End to end, on SQLite and on PostgreSQL: shared credit lists. The housing administration
//! uploads entries (one JSON entry per line, all or nothing); each list's receivers get them in
//! their own formats and nobody else does; a case of a listed applicant is delivered with a
//! `Credit-Warning` header and the list's receivers get one match notice per (case, entry);
//! after the entry's removal a new case carries no warning; `GET /v1/credit/{code}` shows
//! active and past entries. Real mutual TLS, real HTTP, real stores.

mod support;

use axum::http::StatusCode;
use schemas::{
    BureauCaseId, BureauId, CaseStatus, CreditCode, Event, EventKind, Item, Payload, ShanghaiTime,
    Stage,
};
use support::{
    Behaviour, BureauClient, ReplyExt, TestPki, push_receivers, receiver, start_gateway_on,
    wait_until,
};

/// The listed applicant (dishonest list) and a trustworthy one (red list).
const LISTED: &str = "91350100M000100Y43";

fn red_code() -> CreditCode {
    CreditCode::with_check_character("91310000MA1FL0001").expect("a credit code")
}

fn entry_line(id: &str, version: u32, list: &str, code: &str, removed_on: Option<&str>) -> String {
    let mut line = gateway::sim::credit_line(id, version, list, code, "2026-01-01");
    if let Some(on) = removed_on {
        line["removed_on"] = on.into();
        line["removal_reason"] = "信用修复完成".into();
    }
    line.to_string()
}

/// A planning case of `code`'s applicant, happening now.
fn case_of(code: &str, id: &str, sequence: u64, status: CaseStatus) -> Event {
    // Each case and event its own message id (the sender's id derives the idempotency key).
    let seed = id.bytes().map(u64::from).sum::<u64>() * 100 + sequence;
    let mut event =
        adapters::sample::case_event(&mut fastrand::Rng::with_seed(seed), BureauId::Planning);
    let Some(mut case) = event.case().cloned() else {
        unreachable!("a case event")
    };
    let now = gateway::clock::shanghai_now().expect("now");
    case.applicant.credit_code = CreditCode::parse(code).expect("a credit code");
    case.status = status;
    case.item = Item::ConstructionPlanningPermit;
    case.stage = Stage::EngineeringConstructionPermit;
    case.submitted_at =
        ShanghaiTime::from_local(now.naive_local() - std::time::Duration::from_secs(7200))
            .expect("a time");
    event.case_id = BureauCaseId::parse(id).expect("a case id");
    event.sequence = sequence;
    event.occurred_at = now;
    event.kind = status.event_kind();
    event.payload = Payload::Case(case);
    event
}

async fn upload(client: &BureauClient, lines: &[String]) -> support::Reply {
    let body = format!("{}\n", lines.join("\n"));
    client
        .post_body(
            "/v1/credit/entries",
            "application/x-ndjson",
            body.into_bytes(),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_lists_on_sqlite() {
    let pki = TestPki::new("credit-sqlite");
    let store = pki.sqlite_store();
    lists_are_shared_matched_and_looked_up(&pki, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_lists_on_postgres() {
    let Some(server) = support::pg::server() else {
        return;
    };
    let pki = TestPki::new("credit-postgres");
    let schema = support::pg::Schema::new(&server);
    lists_are_shared_matched_and_looked_up(&pki, &schema.url()).await;
}

async fn lists_are_shared_matched_and_looked_up(pki: &TestPki, store: &str) {
    let receivers = push_receivers(pki, Behaviour::Healthy).await;
    let refs: Vec<_> = receivers.iter().collect();
    let running = start_gateway_on(pki, store, &refs, "").await;
    let at = running.addr();
    let housing = BureauClient::new(pki, at, BureauId::Housing);
    let planning = BureauClient::new(pki, at, BureauId::Planning);
    let operator = BureauClient::operator(pki, at);
    let red = red_code();
    // The bureaus pushed to (civil defense reads its feed).
    let pushed: Vec<BureauId> = receivers.iter().map(support::Receiver::bureau).collect();

    // A bureau that does not publish the list is refused, naming the line and the list.
    let refused = upload(
        &planning,
        &[entry_line("GH-XY-1", 1, "red", red.as_str(), None)],
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{refused:?}"
    );
    assert_eq!(refused.json()["errors"][0]["path"], "line 1: /list");

    // One bad credit code refuses the whole upload, naming its line; nothing is stored.
    let bad = LISTED.replace("Y43", "Y44");
    let whole = upload(
        &housing,
        &[
            entry_line("FGJ-XY-0001", 1, "dishonest", LISTED, None),
            entry_line("FGJ-XY-0002", 1, "red", &bad, None),
        ],
    )
    .await;
    assert_eq!(whole.status, StatusCode::UNPROCESSABLE_ENTITY, "{whole:?}");
    let errors = whole.json()["errors"].clone();
    assert_eq!(errors.as_array().map(Vec::len), Some(1), "{errors}");
    assert_eq!(errors[0]["path"], "line 2: /credit_code");
    assert_eq!(errors[0]["field"], "credit.subject.credit_code");
    assert_eq!(errors[0]["text"], bad);
    let none = operator.get(&format!("/v1/credit/{LISTED}")).await.json();
    assert_eq!(none["active"], serde_json::json!([]), "{none}");

    // Published: the dishonest entry reaches every other bureau, the red one planning alone.
    let lines = [
        entry_line("FGJ-XY-0001", 1, "dishonest", LISTED, None),
        entry_line("FGJ-XY-0002", 1, "red", red.as_str(), None),
    ];
    let published = upload(&housing, &lines).await;
    assert_eq!(published.status, StatusCode::OK, "{published:?}");
    assert_eq!(published.json()["published"], 2);
    let listed = |bureau: BureauId, id: &str| {
        receiver(&receivers, bureau)
            .received()
            .into_iter()
            .filter(|r| r.event.kind == EventKind::CreditListed && r.event.case_id.as_str() == id)
            .count()
    };
    for bureau in pushed.iter().copied().filter(|b| *b != BureauId::Housing) {
        wait_until(
            &format!("{bureau} is told of the dishonest entry"),
            async || listed(bureau, "FGJ-XY-0001") == 1,
        )
        .await;
    }
    wait_until("planning is told of the red entry", async || {
        listed(BureauId::Planning, "FGJ-XY-0002") == 1
    })
    .await;
    let water = receiver(&receivers, BureauId::Water).received();
    let told = water
        .iter()
        .find(|r| r.event.kind == EventKind::CreditListed)
        .expect("water has it");
    let entry = told.event.credit().expect("an entry");
    assert_eq!(entry.subject.credit_code.as_str(), LISTED);
    assert_eq!(told.event.source, BureauId::Housing);
    for bureau in [BureauId::Water, BureauId::Greenery, BureauId::TrafficPolice] {
        assert_eq!(
            listed(bureau, "FGJ-XY-0002"),
            0,
            "{bureau} is not on the red list"
        );
    }
    // Sent again: nothing new (the same upload, or the same lines in another).
    let again = upload(&housing, &lines).await;
    assert_eq!(again.status, StatusCode::OK);
    let other = upload(&housing, &lines[..1]).await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.json()["published"], 0);
    assert_eq!(other.json()["unchanged"], serde_json::json!([1]));

    // A case of the listed applicant: every delivery warns, one match notice per receiver.
    // Accepted (routed to nobody, but matched), then approved (routed to five bureaus).
    let first = case_of(LISTED, "GH2026CR0001", 1, CaseStatus::Accepted);
    assert_eq!(planning.send(&first).await.status, StatusCode::ACCEPTED);
    let second = case_of(LISTED, "GH2026CR0001", 2, CaseStatus::Approved);
    assert_eq!(planning.send(&second).await.status, StatusCode::ACCEPTED);
    let cases_of = |bureau: BureauId| {
        receiver(&receivers, bureau)
            .received()
            .into_iter()
            .filter(|r| r.event.case_id.as_str() == "GH2026CR0001" && r.event.case().is_some())
            .collect::<Vec<_>>()
    };
    let subscribers: Vec<BureauId> = pushed
        .iter()
        .copied()
        .filter(|b| running_routes_reach(*b, &second))
        .collect();
    assert!(!subscribers.is_empty(), "the case has subscribers");
    for &bureau in &subscribers {
        wait_until(&format!("{bureau} receives the approval"), async || {
            !cases_of(bureau).is_empty()
        })
        .await;
        for got in cases_of(bureau) {
            let warning = got.credit_warning.expect("a Credit-Warning header");
            assert!(
                warning.starts_with("dishonest;publisher=housing;entry=\"FGJ-XY-0001\";version=1"),
                "{bureau}: {warning}"
            );
        }
    }
    let matches = |bureau: BureauId| {
        receiver(&receivers, bureau)
            .received()
            .into_iter()
            .filter(|r| r.event.kind == EventKind::CreditMatched)
            .collect::<Vec<_>>()
    };
    for &bureau in &pushed {
        wait_until(&format!("{bureau} gets the match notice"), async || {
            !matches(bureau).is_empty()
        })
        .await;
    }
    // Both events matched: give a second notice, were one made, the time to arrive.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    for &bureau in &pushed {
        let got = matches(bureau);
        assert_eq!(
            got.len(),
            1,
            "{bureau}: one match notice per case and entry"
        );
        let notice = got[0].event.credit_match().expect("a match notice");
        assert_eq!(notice.entry.entry_id.as_str(), "FGJ-XY-0001");
        assert_eq!(notice.publisher, BureauId::Housing);
        assert_eq!(got[0].event.source, BureauId::Planning);
    }

    // Removed today: from today on, no effect; a new case carries no warning.
    let today = gateway::clock::shanghai_now()
        .expect("now")
        .naive_local()
        .date();
    let removal = entry_line(
        "FGJ-XY-0001",
        2,
        "dishonest",
        LISTED,
        Some(&today.to_string()),
    );
    let removed = upload(&housing, &[removal]).await;
    assert_eq!(removed.status, StatusCode::OK, "{removed:?}");
    let later = case_of(LISTED, "GH2026CR0002", 1, CaseStatus::Approved);
    assert_eq!(planning.send(&later).await.status, StatusCode::ACCEPTED);
    let later_of = |bureau: BureauId| {
        receiver(&receivers, bureau)
            .received()
            .into_iter()
            .filter(|r| r.event.case_id.as_str() == "GH2026CR0002")
            .collect::<Vec<_>>()
    };
    for &bureau in &subscribers {
        wait_until(&format!("{bureau} receives the later case"), async || {
            !later_of(bureau).is_empty()
        })
        .await;
        assert!(later_of(bureau).iter().all(|r| r.credit_warning.is_none()));
    }

    // Lookups: the lists' bureaus and operators; the removed entry is past, with its history.
    let looked = planning.get(&format!("/v1/credit/{LISTED}")).await;
    assert_eq!(looked.status, StatusCode::OK, "{looked:?}");
    let looked = looked.json();
    assert_eq!(looked["active"], serde_json::json!([]), "{looked}");
    assert_eq!(looked["past"][0]["publisher"], "housing");
    assert_eq!(looked["past"][0]["versions"], 2);
    assert_eq!(
        looked["past"][0]["entry"]["removal"]["on"],
        today.to_string()
    );
    let red_now = operator
        .get(&format!("/v1/credit/{}", red.as_str()))
        .await
        .json();
    assert_eq!(red_now["active"][0]["entry"]["list"], "red", "{red_now}");
    let wrong = operator.get("/v1/credit/91350100m000100y43").await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    let recent = operator.get("/v1/credit?limit=5").await.json();
    assert_eq!(
        recent["entries"].as_array().map(Vec::len),
        Some(3),
        "{recent}"
    );
    // One match for the case's two events, with the bureaus told.
    let matched = recent["matches"].as_array().cloned().unwrap_or_default();
    assert_eq!(matched.len(), 1, "{recent}");
    assert_eq!(matched[0]["bureau"], "planning");
    assert_eq!(matched[0]["case_id"], "GH2026CR0001");
    assert_eq!(matched[0]["found"]["entry"]["entry_id"], "FGJ-XY-0001");
    for bureau in &pushed {
        assert!(
            matched[0]["receivers"]
                .as_array()
                .is_some_and(|told| told.contains(&serde_json::json!(bureau))),
            "{bureau} is among the bureaus told: {recent}"
        );
    }
    assert_eq!(
        planning.get("/v1/credit").await.status,
        StatusCode::FORBIDDEN
    );
}

/// Whether the default routes deliver `event` to `bureau`.
fn running_routes_reach(bureau: BureauId, event: &Event) -> bool {
    let config = gateway::config::Config::defaults().expect("defaults");
    gateway::routing::RouteTable::new(config.routes)
        .subscribers(event)
        .contains(&bureau)
}
