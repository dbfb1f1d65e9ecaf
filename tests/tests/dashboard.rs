//! The operators' dashboard in a real browser: headless Chromium (Debian's `chromium`) driven by
//! Playwright (`tests/browser/ops.mjs`), presenting the operator certificate over mutual TLS to a
//! running gateway with traffic. What a person looks for: water shown as failing once its
//! endpoint is down and healthy again once it is back and its dead letter replayed from the page;
//! the case timeline listing the deliveries; the page keeping its place while it refreshes, in
//! both languages, at 1280×800 and on a narrow screen. Screenshots go to
//! `target/ops-screenshots/` (or `OPS_SCREENSHOT_DIR`).
//!
//! Needs Node.js, `npm ci --prefix tests/browser` and Chromium; without them the test says it is
//! skipped, except in CI, where it must run.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use axum::http::StatusCode;
use gateway::store::Store;
use schemas::BureauId;
use serde_json::{Value, json};
use support::{
    Behaviour, BureauClient, ReplyExt, TestPki, case_for_water_and_another, push_receivers,
    receiver, start_gateway_on, wait_until,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// One browser scenario at a time: two Chromiums and two gateways at once on two cores would
/// only make each slower.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SETTINGS: &str = "[ops]\nreport_interval_seconds = 1\n\
                        [retry]\ninitial_delay_ms = 20\nmax_delay_seconds = 1\nmax_attempts = 3\n\
                        [clocks]\ncheck_interval_seconds = 1\n";

/// A planning case of `item` accepted on 24 February 2026, long before today.
fn accepted_in_february(
    rng: &mut fastrand::Rng,
    item: schemas::Item,
    case_id: &str,
) -> schemas::Event {
    let mut event = adapters::sample::case_event(rng, BureauId::Planning);
    let Some(mut case) = event.case().cloned() else {
        unreachable!("a case event")
    };
    case.item = item;
    case.stage = schemas::Stage::ConstructionPermit;
    case.status = schemas::CaseStatus::Accepted;
    case.submitted_at =
        schemas::ShanghaiTime::parse_rfc3339("2026-02-23T09:00:00+08:00").expect("a time");
    event.case_id = schemas::BureauCaseId::parse(case_id).expect("a case id");
    event.occurred_at =
        schemas::ShanghaiTime::parse_rfc3339("2026-02-24T09:00:00+08:00").expect("a time");
    event.kind = schemas::EventKind::CaseAccepted;
    event.payload = schemas::Payload::Case(case);
    event
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What the browser test needs, or why it cannot run here.
fn harness() -> Result<(PathBuf, PathBuf), String> {
    let script = repo().join("tests/browser/ops.mjs");
    let chromium =
        std::env::var_os("CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from);
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        return Err("Node.js (node) not found".into());
    }
    if !repo()
        .join("tests/browser/node_modules/playwright-core")
        .is_dir()
    {
        return Err("playwright-core not installed: npm ci --prefix tests/browser".into());
    }
    if !chromium.exists() {
        return Err(format!(
            "{} not found: apt-get install chromium",
            chromium.display()
        ));
    }
    Ok((script, chromium))
}

/// The harness process: one JSON command per line in, one JSON answer per line out.
struct Browser {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Browser {
    async fn start(script: &Path, chromium: &Path, url: &str, pki: &TestPki, shots: &Path) -> Self {
        let (cert, key) = pki.operator();
        let mut child = Command::new("node")
            .arg(script)
            .env("OPS_URL", url)
            .env("OPS_CERT", cert)
            .env("OPS_KEY", key)
            .env("OPS_CA", pki.ca())
            .env("CHROMIUM", chromium)
            .env("SCREENSHOT_DIR", shots)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the browser harness");
        let stdin = child.stdin.take().expect("its stdin");
        let stdout = BufReader::new(child.stdout.take().expect("its stdout"));
        let mut browser = Self {
            child,
            stdin,
            stdout,
        };
        let ready = browser.answer().await;
        assert_eq!(ready["ready"], true, "the browser starts: {ready}");
        browser
    }

    async fn answer(&mut self) -> Value {
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(120), self.stdout.read_line(&mut line))
            .await
            .expect("the harness answers within 2 minutes")
            .expect("read the harness");
        assert!(read > 0, "the harness exited");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Sends a command; panics with the harness's error unless it succeeded.
    async fn run(&mut self, command: Value) -> Value {
        let answer = self.try_run(command.clone()).await;
        assert_eq!(answer["ok"], true, "{command} failed: {answer}");
        answer
    }

    async fn try_run(&mut self, command: Value) -> Value {
        let mut line = command.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("write to the harness");
        self.answer().await
    }

    async fn wait_health(&mut self, bureau: &str, health: &str) -> String {
        let answer = self
            .run(json!({
                "cmd": "wait_attr",
                "selector": format!("[data-bureau=\"{bureau}\"]"),
                "attr": "data-health",
                "value": health,
                "timeout_ms": 45_000,
            }))
            .await;
        answer["text"].as_str().unwrap_or_default().to_owned()
    }

    /// Opens `/ops?lang=en` again every half second (30 s at most) until the texts of the rows
    /// `selector` satisfy `until`; returns the last texts read.
    async fn rows_until(
        &mut self,
        selector: &str,
        until: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let mut rows = Vec::new();
        for _ in 0..60 {
            self.run(json!({"cmd": "open", "path": "/ops?lang=en"}))
                .await;
            let found = self
                .run(json!({"cmd": "texts", "selector": selector}))
                .await;
            rows = found["texts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect();
            if until(&rows) {
                break;
            }
            self.run(json!({"cmd": "sleep", "ms": 500})).await;
        }
        rows
    }

    async fn quit(mut self) {
        let _ = self.try_run(json!({"cmd": "quit"})).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_browser_on_sqlite() {
    let pki = TestPki::new("dashboard-browser");
    let store = pki.sqlite_store();
    the_dashboard_shows_failure_and_recovery_replays_and_timelines(&pki, &store, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_browser_on_postgres() {
    let Some(server) = support::pg::server() else {
        return;
    };
    let schema = support::pg::Schema::new(&server);
    let pki = TestPki::new("dashboard-browser-pg");
    the_dashboard_shows_failure_and_recovery_replays_and_timelines(&pki, &schema.url(), "-pg")
        .await;
}

/// The scenario, on the store `store`; screenshot names end with `suffix`.
async fn the_dashboard_shows_failure_and_recovery_replays_and_timelines(
    pki: &TestPki,
    store: &str,
    suffix: &str,
) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (script, chromium) = match harness() {
        Ok(found) => found,
        Err(why) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the browser test: {why}"
            );
            eprintln!("SKIPPED: dashboard browser test: {why}");
            return;
        }
    };
    let shots = std::env::var_os("OPS_SCREENSHOT_DIR")
        .map_or_else(|| repo().join("target/ops-screenshots"), PathBuf::from);
    std::fs::create_dir_all(&shots).expect("the screenshot folder");

    let receivers = push_receivers(pki, Behaviour::Healthy).await;
    let refs: Vec<_> = receivers.iter().collect();
    let running = start_gateway_on(pki, store, &refs, SETTINGS).await;
    let url = format!("https://{}", running.addr());
    let planning = BureauClient::new(pki, running.addr(), BureauId::Planning);
    let water = receiver(&receivers, BureauId::Water);
    let mut rng = fastrand::Rng::with_seed(2026);
    let mut send = async || {
        let (event, _) = case_for_water_and_another(&mut rng);
        let reply = planning.send(&event).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
        let id = reply.json()["message_ids"][0]
            .as_str()
            .expect("a message id")
            .to_owned();
        (event, id)
    };

    // Healthy: a delivery to water went through.
    let (_, first) = send().await;
    wait_until("water has the first message", async || {
        water.ids().contains(&first)
    })
    .await;
    let mut browser = Browser::start(&script, &chromium, &url, pki, &shots).await;
    let page = browser
        .run(json!({"cmd": "open", "path": "/ops?lang=en", "width": 1280, "height": 800}))
        .await;
    assert_eq!(page["status"], 200, "{page}");
    browser.wait_health("water", "healthy").await;
    browser
        .run(json!({"cmd": "screenshot", "name": format!("ops-healthy-1280{suffix}.png"), "full_page": true}))
        .await;

    // Water's endpoint stops: its next delivery fails three times and is a dead letter; the
    // page (refreshing itself) shows water failing, with the reason in words.
    water.set(Behaviour::Down).await;
    let (failed_event, failed) = send().await;
    let store = running.store().clone();
    wait_until("the delivery to water is a dead letter", async || {
        !store
            .dead_letters(Some(BureauId::Water), 10)
            .await
            .expect("dead letters")
            .is_empty()
    })
    .await;
    let text = browser.wait_health("water", "failing").await;
    assert!(text.contains("deliveries failing since"), "{text}");
    browser
        .run(json!({"cmd": "screenshot", "name": format!("ops-failing-1280{suffix}.png"), "full_page": false}))
        .await;

    // Water is back: a new delivery succeeds, the dead letter is what is left (degraded).
    water.set(Behaviour::Healthy).await;
    let (_, third) = send().await;
    wait_until("water has the third message", async || {
        water.ids().contains(&third)
    })
    .await;
    let text = browser.wait_health("water", "degraded").await;
    assert!(text.contains("dead letter"), "{text}");

    // A form post without the operator's token is refused.
    let forged = browser
        .run(json!({"cmd": "fetch_status", "method": "POST", "path": "/ops/replay", "form": {"id": "1"}}))
        .await;
    assert_eq!(forged["status"], 403, "{forged}");
    let forged = browser
        .run(json!({"cmd": "fetch_status", "method": "POST", "path": "/ops/pause", "form": {"bureau": "water", "csrf": "00ff"}}))
        .await;
    assert_eq!(forged["status"], 403, "a wrong token: {forged}");

    // Replay from the page: delivered, and water is healthy again.
    let clicked = browser
        .run(json!({
            "cmd": "click",
            "selector": "[data-dead-letter][data-subscriber=\"water\"] button[data-action=\"replay\"]",
            "wait_for_navigation": true,
        }))
        .await;
    assert_eq!(clicked["status"], 200, "{clicked}");
    wait_until("the replayed message reaches water", async || {
        water.ids().contains(&failed)
    })
    .await;
    browser.wait_health("water", "healthy").await;

    // The case timeline lists the failed attempts and the delivery of the replayed message.
    browser
        .run(json!({"cmd": "open", "path": format!("/ops/cases?key={}&lang=en", failed_event.case_id.as_str())}))
        .await;
    let entries = browser
        .run(json!({"cmd": "texts", "selector": "[data-timeline-entry]"}))
        .await;
    let kinds_for_water: Vec<&str> = entries["attrs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["data-bureau"] == "water" && a["data-message-id"] == failed.as_str())
        .filter_map(|a| a["data-kind"].as_str())
        .collect();
    assert_eq!(
        kinds_for_water
            .iter()
            .filter(|k| **k == "attempt_failed")
            .count(),
        3,
        "{kinds_for_water:?}"
    );
    assert_eq!(
        kinds_for_water.last(),
        Some(&"delivered"),
        "{kinds_for_water:?}"
    );
    let kinds: Vec<&str> = entries["attrs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["data-kind"].as_str())
        .collect();
    assert!(kinds.starts_with(&["received", "routed"]), "{kinds:?}");
    browser
        .run(json!({"cmd": "screenshot", "name": format!("ops-timeline-1280{suffix}.png"), "full_page": true}))
        .await;

    // The page keeps the operator's place while it refreshes itself.
    browser
        .run(json!({"cmd": "open", "path": "/ops?lang=en", "width": 1280, "height": 600}))
        .await;
    let scrolled = browser.run(json!({"cmd": "scroll", "y": 300})).await;
    let y = scrolled["y"].as_i64().expect("a scroll position");
    assert!(y > 0, "the page is taller than the window: {scrolled}");
    browser.run(json!({"cmd": "sleep", "ms": 6_500})).await;
    let refreshed = browser
        .run(json!({"cmd": "attr", "selector": "body", "attr": "data-refreshed"}))
        .await;
    assert!(
        refreshed["value"].is_string(),
        "the page refreshed itself: {refreshed}"
    );
    let kept = browser.run(json!({"cmd": "scroll_y"})).await;
    assert_eq!(kept["y"].as_i64(), Some(y), "the place is kept");

    // The working-day clocks: an application opens a joint case, and a case accepted in
    // February on its own clock is long overdue; both show on the page once the clocks are
    // looked at (every second here).
    for event in [
        accepted_in_february(
            &mut rng,
            schemas::Item::ConstructionPlanningPermit,
            "GH2026000901",
        ),
        accepted_in_february(
            &mut rng,
            schemas::Item::LandUsePlanningPermit,
            "GH2026000902",
        ),
    ] {
        assert_eq!(planning.send(&event).await.status, StatusCode::ACCEPTED);
    }
    let overdue = browser
        .rows_until("#overdue-list tr.overdue", |rows| {
            rows.iter().any(|t| t.contains("GH2026000902"))
        })
        .await;
    assert!(
        overdue.iter().any(|t| t.contains("GH2026000902")),
        "the case on its own clock is listed overdue: {overdue:?}"
    );
    let joint = browser
        .run(json!({"cmd": "texts", "selector": "#joint-case-list tr.joint"}))
        .await;
    assert!(
        joint["texts"].as_array().is_some_and(|rows| rows
            .iter()
            .any(|t| t.as_str().is_some_and(|t| t.contains("GH2026000901")))),
        "the joint case is listed: {joint}"
    );

    // Credit lists: housing lists a planning applicant, then a case of it arrives; the page
    // shows the listing and the match once the flows have sent its notices.
    let listed = accepted_in_february(
        &mut rng,
        schemas::Item::LandUsePlanningPermit,
        "GH2026000903",
    );
    let applicant = listed
        .case()
        .expect("a case event")
        .applicant
        .credit_code
        .as_str()
        .to_owned();
    let line = gateway::sim::credit_line("FGJ-XY-OPS-1", 1, "dishonest", &applicant, "2026-01-01");
    let housing = BureauClient::new(pki, running.addr(), BureauId::Housing);
    let published = housing.publish_credit(&[line]).await;
    assert_eq!(published.status, StatusCode::OK, "{published:?}");
    assert_eq!(planning.send(&listed).await.status, StatusCode::ACCEPTED);
    let matched = browser
        .rows_until("#credit-lists tr.credit-match", |rows| !rows.is_empty())
        .await;
    assert!(
        matched.len() == 1
            && matched[0].contains("GH2026000903")
            && matched[0].contains(&applicant),
        "the case is matched once: {matched:?}"
    );
    let listings = browser
        .run(json!({"cmd": "texts", "selector": "#credit-lists tr.credit-listing"}))
        .await;
    assert!(
        listings["texts"][0]
            .as_str()
            .is_some_and(|t| t.contains("FGJ-XY-OPS-1 v1")
                && t.contains("dishonest-entity blacklist")
                && t.contains("Housing")),
        "the listing is shown: {listings}"
    );
    browser
        .run(json!({"cmd": "screenshot", "name": format!("ops-credit-1280{suffix}.png"), "full_page": true}))
        .await;

    // Chinese, by the toggle, on a narrow screen.
    browser
        .run(json!({"cmd": "open", "path": "/ops?lang=zh", "width": 390, "height": 844}))
        .await;
    let lang = browser
        .run(json!({"cmd": "attr", "selector": "html", "attr": "lang"}))
        .await;
    assert_eq!(lang["value"], "zh-CN");
    let title = browser.run(json!({"cmd": "texts", "selector": "h1"})).await;
    assert_eq!(title["texts"][0], "交换运行看板");
    let listings = browser
        .run(json!({"cmd": "texts", "selector": "#credit-lists tr.credit-listing"}))
        .await;
    assert!(
        listings["texts"][0]
            .as_str()
            .is_some_and(|t| t.contains("严重失信主体名单")),
        "{listings}"
    );
    browser
        .run(json!({"cmd": "screenshot", "name": format!("ops-narrow-zh{suffix}.png"), "full_page": true}))
        .await;
    let errors = browser.run(json!({"cmd": "errors"})).await;
    assert_eq!(errors["errors"], json!([]), "no script errors on the pages");
    browser.quit().await;
    running.shutdown().await;
}
