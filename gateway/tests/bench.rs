//! `gateway bench`, the real binary: it starts the gateway, a sender and a receiver as
//! processes of their own, runs its rate steps and reports one JSON object per step. Asserted
//! here is what it reports and that it accounts for every message (nothing about speed: the
//! figures themselves are for the benchmark runs, `ops/bench/compare.sh`).

use std::io::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// A fresh folder under the system's temporary folder.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gateway-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

/// A loopback address nothing listens on (bound, then released).
fn free_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").to_string()
}

/// Runs `gateway bench` with `args`; its exit status and the JSON lines of its standard output.
fn bench(name: &str, args: &[&str]) -> (std::process::ExitStatus, Vec<Value>, String) {
    let data = scratch(name);
    let output = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("bench")
        .arg("--data")
        .arg(&data)
        .args(["--listen", &free_address()])
        .args(args)
        .output()
        .expect("run gateway bench");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let lines = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect();
    let _ = std::fs::remove_dir_all(&data);
    (output.status, lines, stderr)
}

#[test]
fn every_step_reports_its_figures_and_every_message_is_delivered_to_every_subscriber() {
    let (status, steps, stderr) = bench(
        "gateway",
        &[
            "--rate",
            "100,200",
            "--duration",
            "2",
            "--warmup",
            "1",
            "--fanout",
            "2",
            "--payload-bytes",
            "1500",
        ],
    );
    assert!(status.success(), "{status}\n{stderr}");
    assert_eq!(steps.len(), 2, "one JSON object per step\n{stderr}");
    for (step, rate) in steps.iter().zip([100, 200]) {
        assert_eq!(step["store"], "sqlite");
        assert_eq!(step["target"], "gateway");
        assert_eq!(step["rate"], rate);
        assert_eq!(step["fanout"], 2);
        assert_eq!(step["payload_bytes"], 1500);
        // Open loop: every message due in the window was sent; each was accepted (the gateway
        // is far from its limit at these rates) and reached both subscribers exactly once.
        let offered = step["offered_per_s"].as_f64().unwrap();
        assert_eq!(offered, f64::from(rate), "{step}");
        assert_eq!(step["accepted_per_s"].as_f64().unwrap(), offered, "{step}");
        for zero in [
            "lost",
            "duplicates",
            "unavailable_503",
            "errors",
            "not_sent",
            "other_status",
        ] {
            assert_eq!(step[zero], 0, "{zero}: {step}");
        }
        assert!(step["delivered_per_s"].as_f64().unwrap() > 0.0, "{step}");
        for positive in [
            "ingest_p50_ms",
            "ingest_p99_ms",
            "e2e_p99_ms",
            "rss_peak_mb",
        ] {
            assert!(step[positive].as_f64().unwrap() > 0.0, "{positive}: {step}");
        }
        assert!(step["ingest_p99_ms"].as_f64() >= step["ingest_p50_ms"].as_f64());
        assert!(step["cpu_us_per_message"]["gateway"].as_f64().unwrap() > 0.0);
    }
    // The human table goes to standard error: a header and one row per step.
    assert!(stderr.contains("offered/s"), "{stderr}");
}

#[test]
fn the_http_ceiling_answers_the_same_requests_without_a_gateway() {
    let (status, steps, stderr) = bench(
        "ceiling",
        &[
            "--target",
            "http-ceiling",
            "--rate",
            "300",
            "--duration",
            "2",
            "--warmup",
            "1",
        ],
    );
    assert!(status.success(), "{status}\n{stderr}");
    let [step] = steps.as_slice() else {
        panic!("one step: {steps:?}\n{stderr}");
    };
    assert_eq!(step["target"], "http-ceiling");
    assert_eq!(step["store"], "none");
    assert_eq!(step["accepted_per_s"].as_f64(), Some(300.0), "{step}");
    assert_eq!(step["delivered_per_s"].as_f64(), Some(0.0));
    assert_eq!(step["lost"], 0);
}

#[test]
fn a_fanout_beyond_the_bureaus_is_refused() {
    let (status, steps, stderr) = bench("refused", &["--fanout", "6", "--rate", "10"]);
    assert!(!status.success());
    assert!(steps.is_empty());
    assert!(stderr.contains("--fanout must be 1 to 5"), "{stderr}");
}

/// Runs `gateway bench queue` on `store` with two small backlogs; its JSON lines.
fn queue_bench(name: &str, store: &str) -> Vec<Value> {
    let data = scratch(name);
    let output = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["bench", "queue", "--store", store, "--backlog", "2000,8000"])
        .args([
            "--per-case",
            "3",
            "--deliveries",
            "600",
            "--batch",
            "32",
            "--workers",
            "2",
        ])
        .arg("--data")
        .arg(&data)
        .output()
        .expect("run gateway bench queue");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let _ = std::fs::remove_dir_all(&data);
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect()
}

/// Every backlog is filled and then leased and completed until the run's count is reached
/// (workers finish the batch in hand, so up to one batch each beyond it).
fn assert_queue_runs(runs: &[Value], store: &str) {
    assert_eq!(runs.len(), 2, "{runs:?}");
    for (run, backlog) in runs.iter().zip([2000, 8000]) {
        assert_eq!(run["store"], store);
        assert_eq!(run["backlog"], backlog);
        assert_eq!(run["per_case"], 3);
        let completed = run["completed"].as_u64().expect("a count");
        assert!((600..=600 + 2 * 32).contains(&completed), "{run}");
        assert!(
            run["lease_complete_per_s"].as_f64().expect("a rate") > 0.0,
            "{run}"
        );
        assert!(
            run["lease_p99_ms"].as_f64() >= run["lease_p50_ms"].as_f64(),
            "{run}"
        );
    }
}

#[test]
fn the_queue_bench_leases_and_completes_at_each_backlog_on_sqlite() {
    assert_queue_runs(&queue_bench("queue-sqlite", "sqlite"), "sqlite");
}

#[test]
fn the_queue_bench_leases_and_completes_at_each_backlog_on_postgres() {
    let Ok(url) = std::env::var("EXCHANGE_TEST_POSTGRES") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set EXCHANGE_TEST_POSTGRES for the PostgreSQL tests"
        );
        // Straight to stderr, past the test harness's capture: a skip must be visible.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: the PostgreSQL queue bench: set EXCHANGE_TEST_POSTGRES=postgres://..."
        );
        return;
    };
    assert_queue_runs(&queue_bench("queue-postgres", &url), "postgres");
}
