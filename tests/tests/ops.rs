//! The operator surface over real TLS and HTTP, on SQLite and PostgreSQL: a pause holds a
//! bureau's deliveries in order across a restart and resume delivers them; several nodes on one
//! PostgreSQL database show one exchange-wide picture; the dashboard and admin API are for
//! operators only; the live `/metrics` and the alert rules pass `promtool`; the Grafana
//! dashboard names only metrics the gateway exports.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use axum::http::StatusCode;
use gateway::store::Store;
use schemas::BureauId;
use serde_json::Value;
use support::{
    Behaviour, BureauClient, ReplyExt, TestPki, case_for_water_and_another, next_in_case,
    push_receivers, receiver, start_gateway_on, wait_until,
};

/// Nodes report every second, so the tests see their figures soon.
const FAST_REPORTS: &str = "[ops]\nreport_interval_seconds = 1\n";

async fn pause_survives_a_restart_then_resume_delivers_in_order(pki: &TestPki, store: &str) {
    let receivers = push_receivers(pki, Behaviour::Healthy).await;
    let refs: Vec<_> = receivers.iter().collect();
    let running = start_gateway_on(pki, store, &refs, FAST_REPORTS).await;
    let operator = BureauClient::operator(pki, running.addr());
    let paused = operator
        .request("POST", "/v1/admin/bureaus/water/pause", &[], Vec::new())
        .await;
    assert_eq!(paused.status, StatusCode::OK);
    assert_eq!(paused.json()["changed"], true);

    let mut rng = fastrand::Rng::with_seed(42);
    let (first, other) = case_for_water_and_another(&mut rng);
    let mut events = vec![first.clone()];
    for sequence in 2..=5 {
        events.push(next_in_case(
            &first,
            first.sequence + sequence - 1,
            &mut rng,
        ));
    }
    let planning = BureauClient::new(pki, running.addr(), BureauId::Planning);
    let mut ids = Vec::new();
    for event in &events {
        let reply = planning.send(event).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
        ids.push(
            reply.json()["message_ids"][0]
                .as_str()
                .expect("a message id")
                .to_owned(),
        );
    }
    // The other subscriber got them all: the engine ran past water's held deliveries.
    let other_receiver = receiver(&receivers, other);
    wait_until("the unpaused subscriber has the five", async || {
        ids.iter().all(|id| other_receiver.ids().contains(id))
    })
    .await;
    let water = receiver(&receivers, BureauId::Water);
    assert!(
        water.received().is_empty(),
        "nothing reaches a paused bureau"
    );
    let pending = |s: &gateway::store::any::AnyStore| {
        let s = s.clone();
        async move {
            s.queue_stats()
                .await
                .expect("queue stats")
                .into_iter()
                .find(|q| q.subscriber == BureauId::Water)
                .map_or(0, |q| q.pending)
        }
    };
    assert_eq!(pending(running.store()).await, 5, "held in the store");

    // A restart while paused: still paused, still held.
    running.shutdown().await;
    let running = start_gateway_on(pki, store, &refs, FAST_REPORTS).await;
    let operator = BureauClient::operator(pki, running.addr());
    let status = operator.get("/v1/admin/status").await.json();
    assert_eq!(status["paused"], serde_json::json!(["water"]));
    let planning = BureauClient::new(pki, running.addr(), BureauId::Planning);
    let sixth = next_in_case(&first, first.sequence + 5, &mut rng);
    let reply = planning.send(&sixth).await;
    ids.push(
        reply.json()["message_ids"][0]
            .as_str()
            .expect("a message id")
            .to_owned(),
    );
    wait_until("the unpaused subscriber has the sixth", async || {
        other_receiver.ids().contains(&ids[5])
    })
    .await;
    assert!(water.received().is_empty(), "still held after the restart");
    assert_eq!(pending(running.store()).await, 6);

    // Resume: all six, in their case's order, exactly once each.
    let resumed = operator
        .request("POST", "/v1/admin/bureaus/water/resume", &[], Vec::new())
        .await;
    assert_eq!(resumed.status, StatusCode::OK);
    wait_until("water has all six", async || water.ids().len() == 6).await;
    let order: Vec<String> = water
        .received()
        .iter()
        .map(|r| r.header_id.clone())
        .collect();
    assert_eq!(order, ids, "in the order they were sent");
    let sequences: Vec<u64> = water.received().iter().map(|r| r.event.sequence).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_in_order_across_a_restart_on_sqlite() {
    let pki = TestPki::new("ops-pause-sqlite");
    pause_survives_a_restart_then_resume_delivers_in_order(&pki, &pki.sqlite_store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_in_order_across_a_restart_on_postgres() {
    let Some(server) = support::pg::server() else {
        return;
    };
    let schema = support::pg::Schema::new(&server);
    let pki = TestPki::new("ops-pause-postgres");
    pause_survives_a_restart_then_resume_delivers_in_order(&pki, &schema.url()).await;
}

/// Two nodes on one PostgreSQL database: what one node saw, the other shows, and a pause made
/// on one holds on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_show_one_exchange_wide_picture() {
    let Some(server) = support::pg::server() else {
        return;
    };
    let schema = support::pg::Schema::new(&server);
    let pki = TestPki::new("ops-two-nodes");
    let receivers = push_receivers(&pki, Behaviour::Healthy).await;
    let refs: Vec<_> = receivers.iter().collect();
    let one = start_gateway_on(&pki, &schema.url(), &refs, FAST_REPORTS).await;
    let two = start_gateway_on(
        &pki,
        &schema.url(),
        &refs,
        &format!("node = \"gw-2\"\n{FAST_REPORTS}"),
    )
    .await;
    let mut rng = fastrand::Rng::with_seed(7);
    let (event, _) = case_for_water_and_another(&mut rng);
    let reply = BureauClient::new(&pki, one.addr(), BureauId::Planning)
        .send(&event)
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);

    let seen_by_two = BureauClient::operator(&pki, two.addr());
    wait_until("node two shows what node one received", async || {
        let view = seen_by_two.get("/v1/admin/bureaus").await.json();
        let planning = view["bureaus"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|b| b["bureau"] == "planning");
        let nodes: BTreeSet<&str> = view["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["node"].as_str())
            .collect();
        planning.is_some_and(|p| p["last_in"].is_i64()) && nodes == BTreeSet::from(["gw-1", "gw-2"])
    })
    .await;
    let pause = BureauClient::operator(&pki, one.addr())
        .request("POST", "/v1/admin/bureaus/greenery/pause", &[], Vec::new())
        .await;
    assert_eq!(pause.status, StatusCode::OK);
    let status = seen_by_two.get("/v1/admin/status").await.json();
    assert_eq!(
        status["paused"],
        serde_json::json!(["greenery"]),
        "node two knows at once"
    );
    two.shutdown().await;
    one.shutdown().await;
}

/// The dashboard and the admin API are for operators: a bureau's certificate gets 403, none
/// gets 401, every answer problem+json; an operator gets the page in Chinese unless it asks
/// for English.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_surface_is_for_operators_only() {
    let pki = TestPki::new("ops-access");
    let receivers = push_receivers(&pki, Behaviour::Healthy).await;
    let refs: Vec<_> = receivers.iter().collect();
    let running = start_gateway_on(&pki, &pki.sqlite_store(), &refs, FAST_REPORTS).await;
    let bureau = BureauClient::new(&pki, running.addr(), BureauId::Water);
    let anonymous = BureauClient::anonymous(&pki, running.addr());
    for (method, path) in [
        ("GET", "/ops"),
        ("GET", "/ops/cases?key=X"),
        ("POST", "/ops/replay"),
        ("POST", "/ops/pause"),
        ("GET", "/v1/admin/status"),
        ("GET", "/v1/admin/bureaus"),
        ("POST", "/v1/admin/bureaus/water/pause"),
        ("GET", "/v1/admin/trace/gw-0"),
        ("GET", "/v1/admin/cases/X"),
        ("GET", "/v1/dead-letters/1"),
        ("POST", "/v1/dead-letters/purge"),
    ] {
        let refused = bureau.request(method, path, &[], Vec::new()).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(
            refused.header("content-type"),
            Some("application/problem+json")
        );
        let refused = anonymous.request(method, path, &[], Vec::new()).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    let operator = BureauClient::operator(&pki, running.addr());
    let zh = operator.get("/ops").await;
    assert_eq!(zh.status, StatusCode::OK);
    let html = String::from_utf8_lossy(&zh.body);
    assert!(html.contains("<html lang=\"zh-CN\">") && html.contains("交换运行看板"));
    assert!(
        zh.header("content-security-policy").is_some_and(
            |csp| csp.contains("default-src 'none'") && csp.contains("script-src 'self'")
        )
    );
    let en = operator
        .request(
            "GET",
            "/ops",
            &[("accept-language", "en-GB,en;q=0.9")],
            Vec::new(),
        )
        .await;
    assert!(String::from_utf8_lossy(&en.body).contains("Exchange health"));
    for asset in ["ops.js", "ops.css", "uPlot.iife.min.js", "uPlot.min.css"] {
        let reply = operator.get(&format!("/ops/assets/{asset}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{asset}");
        assert!(!reply.body.is_empty());
    }
    // No external network: every script, style and link of the page is the gateway's own.
    let external: Vec<&str> = html
        .split(['"', '\''])
        .filter(|s| s.starts_with("http"))
        .collect();
    assert!(external.is_empty(), "the page refers to {external:?}");
    running.shutdown().await;
}

/// `promtool`, from Prometheus (Debian's `prometheus`): present in CI; elsewhere the test says
/// it is skipped.
fn promtool() -> Option<&'static str> {
    let found = Command::new("promtool").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the promtool checks: apt-get install prometheus"
        );
        eprintln!("SKIPPED: promtool checks: promtool not found (apt-get install prometheus)");
    }
    found.then_some("promtool")
}

fn repo_file(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// The live `/metrics` of a gateway with traffic has no promtool findings; latencies are
/// histograms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_metrics_pass_promtool() {
    let Some(promtool) = promtool() else {
        return;
    };
    let pki = TestPki::new("ops-promtool");
    let receivers = push_receivers(&pki, Behaviour::Healthy).await;
    let refs: Vec<_> = receivers.iter().collect();
    let running = start_gateway_on(&pki, &pki.sqlite_store(), &refs, FAST_REPORTS).await;
    let mut rng = fastrand::Rng::with_seed(3);
    let (event, other) = case_for_water_and_another(&mut rng);
    let reply = BureauClient::new(&pki, running.addr(), BureauId::Planning)
        .send(&event)
        .await;
    let id = reply.json()["message_ids"][0]
        .as_str()
        .expect("a message id")
        .to_owned();
    wait_until("a delivery", async || {
        receiver(&receivers, other).ids().contains(&id)
    })
    .await;
    let metrics = BureauClient::operator(&pki, running.addr())
        .get("/metrics")
        .await;
    assert_eq!(metrics.status, StatusCode::OK);
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        text.contains("# TYPE gateway_ingest_duration_seconds histogram"),
        "{text}"
    );
    assert!(text.contains("# TYPE gateway_delivery_duration_seconds histogram"));
    assert!(text.contains("gateway_ingest_duration_seconds_bucket{"));
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let output = child.wait_with_output().expect("promtool's answer");
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && findings.trim().is_empty(),
        "promtool: {findings}\n{text}"
    );
    running.shutdown().await;
}

#[test]
fn alert_rules_pass_promtool() {
    let Some(promtool) = promtool() else {
        return;
    };
    let output = Command::new(promtool)
        .args(["check", "rules"])
        .arg(repo_file("ops/prometheus/alerts.yml"))
        .output()
        .expect("run promtool");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every `gateway_…` name in a text, with the histogram suffixes taken off.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("gateway_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        names.insert(base.to_owned());
        rest = &tail[end..];
    }
    names
}

/// The Grafana dashboard parses, and every metric its queries and the alert rules name is one
/// the gateway exports (and every exported metric is on the dashboard).
#[test]
fn grafana_and_alerts_name_only_exported_metrics() {
    let exported: BTreeSet<String> = gateway::metrics::ALL
        .iter()
        .map(|m| (*m).to_owned())
        .collect();
    let dashboard_text =
        std::fs::read_to_string(repo_file("ops/grafana/gateway.json")).expect("readable");
    let dashboard: Value = serde_json::from_str(&dashboard_text).expect("the dashboard parses");
    let mut expressions = String::new();
    fn collect(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    if let ("expr" | "query" | "definition", Some(text)) =
                        (key.as_str(), value.as_str())
                    {
                        out.push_str(text);
                        out.push('\n');
                    }
                    collect(value, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    collect(&dashboard, &mut expressions);
    let on_dashboard = metric_names(&expressions);
    assert!(!on_dashboard.is_empty(), "the dashboard has queries");
    let unknown: Vec<_> = on_dashboard.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard names metrics the gateway does not export: {unknown:?}"
    );
    let missing: Vec<_> = exported.difference(&on_dashboard).collect();
    assert!(
        missing.is_empty(),
        "exported metrics not on the dashboard: {missing:?}"
    );

    let alerts = std::fs::read_to_string(repo_file("ops/prometheus/alerts.yml")).expect("readable");
    let unknown: Vec<_> = metric_names(&alerts)
        .into_iter()
        .filter(|m| !exported.contains(m))
        .collect();
    assert!(
        unknown.is_empty(),
        "the alert rules name unknown metrics: {unknown:?}"
    );
    let documented = std::fs::read_to_string(repo_file("ops/METRICS.md")).expect("readable");
    let undocumented: Vec<_> = exported
        .iter()
        .filter(|m| !documented.contains(m.as_str()))
        .collect();
    assert!(
        undocumented.is_empty(),
        "ops/METRICS.md lacks {undocumented:?}"
    );
}
