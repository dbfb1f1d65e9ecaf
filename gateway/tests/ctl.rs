//! `gateway ctl`, the real binary, against a running gateway (real TLS, HTTP and SQLite): every
//! subcommand with an operator certificate, in tables and in JSON, and a bureau's certificate
//! refused with a non-zero exit status.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway::config::Config;
use gateway::net::pki::{self, PkiLayout};
use gateway::sim::{Behaviour, BureauClient, Endpoint, Inbox};
use gateway::store::Store;
use schemas::{BureauId, Event};
use serde_json::Value;

/// A fresh folder under the system's temporary folder.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gateway-ctl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

/// Runs `gateway ctl` with the identity `cert`/`key` and `args`.
fn ctl(url: &str, pki: &PkiLayout, (cert, key): (&Path, &Path), args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("ctl")
        .args(["--url", url])
        .arg("--ca")
        .arg(&pki.ca)
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .args(args)
        .output()
        .expect("run gateway ctl")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn ok(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what}: {:?}\nstdout: {}\nstderr: {}",
        output.status,
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout(&output)
}

fn json(output: Output, what: &str) -> Value {
    let text = ok(output, what);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"))
}

/// A planning event that the default routes send to water (the first of a seeded series).
fn event_for_water(seed: u64) -> Event {
    let routes = gateway::routing::RouteTable::new(Config::defaults().expect("defaults").routes);
    (seed..)
        .map(|s| adapters::sample::case_event(&mut fastrand::Rng::with_seed(s), BureauId::Planning))
        .find(|e| routes.subscribers(e).contains(&BureauId::Water))
        .expect("some planning event goes to water")
}

async fn wait_until(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !condition().await {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "gave up waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until water has a dead letter.
async fn water_has_a_dead_letter(store: &impl Store) {
    wait_until("water has a dead letter", async || {
        !store
            .dead_letters(Some(BureauId::Water), 10)
            .await
            .expect("dead letters")
            .is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subcommand_works_for_an_operator_and_a_bureau_is_refused() {
    let dir = scratch("all");
    let pki = pki::init(&dir.join("pki"), "gw-1").expect("dev PKI");
    // Water's endpoint is down and gives up after one attempt: its deliveries dead-letter.
    let water = Endpoint::start(&pki, Arc::new(Inbox::new(BureauId::Water)), Behaviour::Down)
        .await
        .expect("water's endpoint");
    let (cert, key) = pki.gateway();
    let mut config = format!(
        "listen = \"127.0.0.1:0\"\nstore = \"sqlite:{}\"\n[tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n\
         [surveys]\nblob_dir = \"{}\"\n[audit]\ncheckpoint_dir = \"{}\"\n[retry]\ninitial_delay_ms = 20\nmax_attempts = 1\n\
         [delivery]\npoll_interval_ms = 50\n[ops]\nreport_interval_seconds = 1\n",
        dir.join("gateway.db").display(),
        pki.ca.display(),
        cert.display(),
        key.display(),
        dir.join("blobs").display(),
        dir.join("audit").display(),
    );
    for bureau in BureauId::ALL {
        if bureau == BureauId::CivilDefense {
            continue;
        }
        let endpoint = if bureau == BureauId::Water {
            water.url()
        } else {
            "https://127.0.0.1:1/inbox".to_owned()
        };
        config.push_str(&format!(
            "[bureaus.{bureau}]\ndelivery = \"push\"\nendpoint = \"{endpoint}\"\n"
        ));
    }
    let config_file = dir.join("gateway.toml");
    std::fs::write(&config_file, &config).expect("write the config");
    let config = Config::from_layers(&[&config], &[]).expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let running = gateway::start_on(config, listener)
        .await
        .expect("the gateway starts");
    let url = format!("https://{}", running.addr());
    let (op_cert, op_key) = pki.operator();
    let operator = (op_cert.as_path(), op_key.as_path());

    let planning = BureauClient::new(&pki, running.addr(), BureauId::Planning).expect("client");
    let event = event_for_water(11);
    let reply = planning.send(&event, Some("ctl-1")).await.expect("send");
    assert_eq!(reply.status.as_u16(), 202);
    let receipt: Value = serde_json::from_slice(&reply.body).expect("a receipt");
    let message_id = receipt["message_ids"][0]
        .as_str()
        .expect("a message id")
        .to_owned();
    let store = running.store().clone();
    water_has_a_dead_letter(&store).await;

    // status and bureaus: water is failing or degraded, with the reason in words.
    let status = json(
        ctl(&url, &pki, operator, &["--json", "status"]),
        "status --json",
    );
    assert_eq!(status["node"], "gw-1");
    assert_eq!(status["store"], "sqlite");
    assert!(status["dead_letters"].as_u64() >= Some(1));
    let table = ok(ctl(&url, &pki, operator, &["status"]), "status");
    assert!(table.contains("node gw-1"), "{table}");
    wait_until("the node's report names water's dead letter", async || {
        let bureaus = json(
            ctl(&url, &pki, operator, &["bureaus", "--json"]),
            "bureaus --json",
        );
        bureaus["bureaus"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|b| {
                b["bureau"] == "water"
                    && b["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains("dead letter"))
            })
    })
    .await;
    let table = ok(ctl(&url, &pki, operator, &["bureaus"]), "bureaus");
    let water_line = table
        .lines()
        .find(|l| l.starts_with("water"))
        .expect("a water row");
    assert!(water_line.contains("dead letter"), "{table}");
    assert!(
        table
            .lines()
            .next()
            .is_some_and(|h| h.starts_with("BUREAU")),
        "{table}"
    );

    // dlq list / show.
    let list = json(
        ctl(
            &url,
            &pki,
            operator,
            &["dlq", "list", "--subscriber", "water", "--json"],
        ),
        "dlq list",
    );
    let id = list[0]["id"].as_i64().expect("a dead letter id");
    assert_eq!(list[0]["message_id"], message_id.as_str());
    let table = ok(
        ctl(&url, &pki, operator, &["dlq", "list"]),
        "dlq list table",
    );
    assert!(table.contains(&message_id), "{table}");
    let shown = ok(
        ctl(&url, &pki, operator, &["dlq", "show", &id.to_string()]),
        "dlq show",
    );
    assert!(
        shown.contains(&format!("dead letter {id} to water")),
        "{shown}"
    );
    let missing = ctl(&url, &pki, operator, &["dlq", "show", "999999"]);
    assert_eq!(
        missing.status.code(),
        Some(1),
        "an unknown dead letter is a failure"
    );
    assert!(String::from_utf8_lossy(&missing.stderr).contains("404"));

    // trace and case: the story of the message.
    let trace = json(
        ctl(&url, &pki, operator, &["trace", &message_id, "--json"]),
        "trace",
    );
    let kinds: Vec<&str> = trace["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(kinds.starts_with(&["received", "routed"]), "{kinds:?}");
    assert!(
        kinds.contains(&"attempt_failed") && kinds.contains(&"dead_lettered"),
        "{kinds:?}"
    );
    let case = ok(
        ctl(&url, &pki, operator, &["case", event.case_id.as_str()]),
        "case",
    );
    assert!(
        case.contains(&message_id) && case.contains("dead_lettered"),
        "{case}"
    );
    let project = event.project().expect("a case event").as_str().to_owned();
    let by_project = json(
        ctl(&url, &pki, operator, &["case", &project, "--json"]),
        "case by project",
    );
    assert_eq!(by_project["kind"], "project");
    assert!(by_project["events"].as_u64() >= Some(1));

    // The monthly bulletin: a table, and the same as CSV; a project without joint cases.
    let report = ok(
        ctl(&url, &pki, operator, &["report", "--month", "2026-02"]),
        "report",
    );
    assert!(
        report.starts_with("monthly bulletin 2026-02, closed"),
        "{report}"
    );
    assert!(
        report.contains("BUREAU") && report.contains("one_stop_construction_permit"),
        "{report}"
    );
    let csv = ok(
        ctl(
            &url,
            &pki,
            operator,
            &["report", "--month", "2026-02", "--csv"],
        ),
        "report --csv",
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with("2026-02,bureau,planning,")),
        "{csv}"
    );
    let joint = ok(ctl(&url, &pki, operator, &["joint", &project]), "joint");
    assert_eq!(joint, "no joint case\n");
    // The overdue list as the node's first look at the clocks (at its start) found it.
    let overdue = ok(ctl(&url, &pki, operator, &["overdue"]), "overdue");
    let today = gateway::clock::shanghai_now()
        .expect("a clock")
        .naive_local()
        .date()
        .to_string();
    assert!(
        overdue
            .lines()
            .next()
            .is_some_and(|l| l.ends_with(&format!(" overdue case(s) on {today}"))
                || l.contains(&format!(" overdue case(s) on {today}, the "))),
        "{overdue}"
    );

    // pause / resume.
    let paused = ok(ctl(&url, &pki, operator, &["pause", "water"]), "pause");
    assert_eq!(paused, "water: delivery paused\n");
    let again = ok(
        ctl(&url, &pki, operator, &["pause", "water"]),
        "pause again",
    );
    assert_eq!(again, "water: delivery paused (already)\n");
    let status = json(
        ctl(&url, &pki, operator, &["status", "--json"]),
        "status while paused",
    );
    assert_eq!(status["paused"], serde_json::json!(["water"]));
    let resumed = ok(ctl(&url, &pki, operator, &["resume", "water"]), "resume");
    assert_eq!(resumed, "water: delivery resumed\n");

    // replay, with water back: delivered.
    water
        .set(Behaviour::Healthy)
        .await
        .expect("water comes back");
    let replayed = ok(
        ctl(&url, &pki, operator, &["dlq", "replay", &id.to_string()]),
        "replay",
    );
    assert_eq!(replayed, "replayed 1\n");
    wait_until("the replayed delivery reaches water", async || {
        water.inbox().ids().contains(&message_id)
    })
    .await;

    // purge: make a second dead letter, purge it by subscriber.
    water.set(Behaviour::Down).await.expect("water goes down");
    let second = event_for_water(500);
    planning.send(&second, Some("ctl-2")).await.expect("send");
    water_has_a_dead_letter(&store).await;
    let purged = json(
        ctl(
            &url,
            &pki,
            operator,
            &["dlq", "purge", "--subscriber", "water", "--json"],
        ),
        "purge",
    );
    assert_eq!(purged["purged"], 1);
    // Water's are gone; the other bureaus' endpoints are closed ports, so theirs stay.
    let left = store
        .dead_letters(Some(BureauId::Water), 10)
        .await
        .expect("dead letters");
    assert!(left.is_empty(), "{left:?}");

    // credit: housing lists a planning case's applicant; the case is matched once; `ctl credit`
    // shows the listing and the match, `ctl credit CODE` the entry in effect.
    let mut listed_case = event_for_water(900);
    listed_case.occurred_at = gateway::clock::shanghai_now().expect("a clock");
    let applicant = listed_case
        .case()
        .expect("a case event")
        .applicant
        .credit_code
        .as_str()
        .to_owned();
    let line = gateway::sim::credit_line("CTL-XY-1", 1, "dishonest", &applicant, "2020-01-01");
    let housing = BureauClient::new(&pki, running.addr(), BureauId::Housing).expect("client");
    let reply = housing.publish_credit(&[line]).await.expect("upload");
    assert_eq!(reply.status.as_u16(), 200, "{:?}", reply.body);
    for key in ["ctl-3", "ctl-3-again"] {
        listed_case.sequence += 1;
        listed_case.message_id =
            schemas::MessageId::parse(&format!("CTL-CASE-{}", listed_case.sequence)).expect("id");
        let reply = planning.send(&listed_case, Some(key)).await.expect("send");
        assert_eq!(reply.status.as_u16(), 202);
    }
    wait_until("both events of the listed case are applied", async || {
        store.flow_inbox(10).await.expect("inbox").is_empty()
            && !store
                .recent_credit_matches(10)
                .await
                .expect("matches")
                .is_empty()
    })
    .await;
    let recent = ok(ctl(&url, &pki, operator, &["credit"]), "credit");
    assert!(
        recent.starts_with("latest listings: 1\nLISTED")
            && recent.contains("CTL-XY-1 v1")
            && recent.contains(&applicant),
        "{recent}"
    );
    let case_cell = format!("planning:{}", listed_case.case_id.as_str());
    assert!(
        recent.contains("latest matches: 1\nMATCHED") && recent.contains(&case_cell),
        "one match for the case's two events: {recent}"
    );
    let looked_up = json(
        ctl(&url, &pki, operator, &["credit", &applicant, "--json"]),
        "credit CODE --json",
    );
    assert_eq!(looked_up["active"][0]["entry"]["entry_id"], "CTL-XY-1");
    assert_eq!(looked_up["active"][0]["publisher"], "housing");
    let table = ok(
        ctl(&url, &pki, operator, &["credit", &applicant]),
        "credit CODE",
    );
    assert!(
        table.contains("in effect: 1\nLIST") && table.contains("past: 0"),
        "{table}"
    );
    let mut wrong = applicant.clone();
    let last = if wrong.ends_with('0') { '1' } else { '0' };
    wrong.pop();
    wrong.push(last);
    let refused = ctl(&url, &pki, operator, &["credit", &wrong]);
    assert_eq!(refused.status.code(), Some(1), "a wrong check character");

    // Usage errors and a bureau's certificate.
    let usage = ctl(&url, &pki, operator, &["dlq", "replay"]);
    assert_eq!(usage.status.code(), Some(2), "neither ids nor --subscriber");
    let (b_cert, b_key) = pki.bureau(BureauId::Water);
    let refused = ctl(&url, &pki, (&b_cert, &b_key), &["status"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("403") && stderr.contains("not an operator"),
        "{stderr}"
    );
    for args in [
        &["pause", "water"][..],
        &["dlq", "list"],
        &["trace", &message_id],
    ] {
        assert_eq!(
            ctl(&url, &pki, (&b_cert, &b_key), args).status.code(),
            Some(1),
            "{args:?}"
        );
    }
    let unreachable = ctl("https://127.0.0.1:1", &pki, operator, &["status"]);
    assert_eq!(
        unreachable.status.code(),
        Some(2),
        "a node that cannot be reached"
    );

    // `gateway audit`: sign a checkpoint now, verify the trail, export water's evidence and
    // check the bundle offline with the CA alone.
    let audit = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_gateway"))
            .arg("audit")
            .args(args)
            .output()
            .expect("run gateway audit")
    };
    let config_arg = config_file.display().to_string();
    let signed = ok(
        audit(&["checkpoint", "--config", &config_arg]),
        "audit checkpoint",
    );
    assert!(signed.starts_with("checkpoint "), "{signed}");
    let store_arg = format!("sqlite:{}", dir.join("gateway.db").display());
    let ca_arg = pki.ca.display().to_string();
    let verified = ok(
        audit(&["verify", "--store", &store_arg, "--ca", &ca_arg]),
        "audit verify",
    );
    assert!(verified.starts_with("OK "), "{verified}");
    let bundle = dir.join("water.tar");
    let bundle_arg = bundle.display().to_string();
    let to = (gateway::clock::now_ms() + 60_000).to_string();
    let exported = ok(
        audit(&[
            "export",
            "--store",
            &store_arg,
            "--bureau",
            "water",
            "--from",
            "0",
            "--to",
            &to,
            "--out",
            &bundle_arg,
        ]),
        "audit export",
    );
    assert!(exported.contains("entries"), "{exported}");
    let offline = ok(
        audit(&["verify", "--bundle", &bundle_arg, "--ca", &ca_arg]),
        "audit verify --bundle",
    );
    assert!(offline.starts_with("OK "), "{offline}");
    let json_report = json(
        audit(&["verify", "--config", &config_arg, "--json"]),
        "audit verify --json",
    );
    assert_eq!(json_report["broken"], serde_json::json!([]));
    assert!(json_report["checkpoints"].as_u64() >= Some(1));

    running.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
