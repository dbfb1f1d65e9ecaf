//! The fault suite: a gateway node SIGKILLed again and again under load (on SQLite and on
//! PostgreSQL), and PostgreSQL itself restarted again and again under load. Each test accounts
//! for every 2xx receipt against what the receivers got: every accepted message reaches every
//! subscriber its receipt promised (nothing lost, nothing stray), per case in order, copies
//! only of what was already received (at-least-once), and the store ends with nothing pending.
//!
//! The PostgreSQL tests need `EXCHANGE_TEST_POSTGRES`; the restart test also needs the server
//! to be a local cluster this process may restart (`pg_ctlcluster`, as root or the cluster's
//! owner). Without them a test prints `SKIPPED: …` and passes, except in CI, where it fails.
//! The tests of this binary run one at a time: a database restart cuts every connection, and
//! the machine has two cores.
//!
//! Nothing asserts a duration, except one relation: with a lease of five minutes, a restarted
//! node delivers what its killed predecessor had leased before a lease has passed (it takes its
//! leases back at start instead of waiting for them to expire).

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gateway::store::Store;
use schemas::BureauId;
use support::load::{
    Accepted, Load, WITHOUT_CASE_CLOCKS, account, send_cases_paced, wait_all_delivered,
};
use support::pg::{Schema, admin, server};
use support::{
    Behaviour, ChildGateway, DelayRelay, Receiver, TestPki, push_receivers, receiver,
    start_gateway_on, wait_until,
};

/// One test of this binary at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The lease of the SIGKILL tests: long, so that a delivery the killed node had leased and that
/// came back only by expiring could not be delivered within [`DELIVER_ALL`].
const LEASE_SECONDS: u64 = 300;

/// Kills, or restarts, per test.
const CYCLES: usize = 3;

/// Messages accepted between two faults.
const BETWEEN_FAULTS: usize = 40;

/// Senders, each with two cases of one kind.
const SENDERS: usize = 6;

/// Not a test: a gateway node of the SIGKILL tests, started by them with the config file in
/// `GATEWAY_E2E_CHILD_CONFIG` and the address in `GATEWAY_LISTEN`.
#[test]
#[ignore = "the child process of the SIGKILL tests"]
fn child_gateway_process() {
    support::run_child_gateway();
}

/// Starts the senders of a test.
fn start_senders(
    pki: &Arc<TestPki>,
    load: &Arc<Load>,
) -> Vec<tokio::task::JoinHandle<Vec<Accepted>>> {
    let run = fastrand::u32(..);
    (0..SENDERS)
        .map(|sender| {
            tokio::spawn(send_cases_paced(
                pki.clone(),
                load.clone(),
                sender,
                run,
                300..=500,
            ))
        })
        .collect()
}

/// Stops the senders and returns every message they got a 2xx for.
async fn stop_senders(
    load: &Load,
    senders: Vec<tokio::task::JoinHandle<Vec<Accepted>>>,
) -> Vec<Accepted> {
    load.stop.store(true, Ordering::Relaxed);
    let mut sent = Vec::new();
    for sender in senders {
        sent.extend(sender.await.expect("a sender"));
    }
    sent
}

/// Waits until `more` messages beyond those accepted now are accepted.
async fn accept_more(load: &Load, more: usize, what: &str) {
    let target = load.accepted.load(Ordering::Relaxed) + more;
    wait_until(what, async || {
        load.accepted.load(Ordering::Relaxed) >= target
    })
    .await;
}

/// How many unexpired leases `node` holds in the schema.
async fn leases_held(schema: &Schema, node: &str) -> i64 {
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("milliseconds fit");
    admin(&schema.url())
        .await
        .expect("an admin connection")
        .query_one(
            "SELECT COUNT(*) FROM deliveries
             WHERE state = 'pending' AND leased_by = $1 AND lease_until > $2",
            &[&node, &now],
        )
        .await
        .expect("count the leases")
        .get(0)
}

/// A node on `store` takes a steady load and is SIGKILLed [`CYCLES`] times, each time while it
/// has pushes in flight (one bureau's endpoint is behind a relay that holds every chunk), so
/// while it holds leases. Senders whose request failed send the same message (same key) again
/// until the restarted node, on a new port, accepts it. After each restart, everything accepted
/// so far reaches its subscribers before a lease has passed: the new process took back the
/// leases of the killed one at once.
async fn killed_repeatedly_under_load(name: &str, store: &str, schema: Option<&Schema>) {
    let pki = Arc::new(TestPki::new(name));
    let receivers = push_receivers(&pki, Behaviour::Healthy).await;
    let all: Vec<&Receiver> = receivers.iter().collect();
    let slow = DelayRelay::start(
        receiver(&receivers, BureauId::TrafficPolice),
        Duration::from_millis(200),
    )
    .await;
    let config = pki.root().join("gateway.toml");
    let lease = LEASE_SECONDS.to_string();
    std::fs::write(
        &config,
        pki.config_toml_with(
            store,
            &all,
            &[("lease_seconds", &lease), ("request_timeout_seconds", "10")],
            &[(BureauId::TrafficPolice, slow.url())],
        ) + "[postgres]\npool_size = 4\n"
            + WITHOUT_CASE_CLOCKS,
    )
    .expect("write the config");

    let mut node = ChildGateway::spawn(&config);
    node.wait_ready(&pki).await;
    let load = Arc::new(Load::default());
    load.set_nodes(vec![node.addr]);
    let senders = start_senders(&pki, &load);
    let mut drains = Vec::new();
    let mut held_at_kill = Vec::new();
    for cycle in 0..CYCLES {
        accept_more(
            &load,
            BETWEEN_FAULTS,
            "messages are accepted before the kill",
        )
        .await;
        wait_until("a push is in flight through the relay", async || {
            slow.held() > 0
        })
        .await;
        node.sigkill();
        let killed = Instant::now();
        if let Some(schema) = schema {
            let held = leases_held(schema, "gw-1").await;
            assert!(held > 0, "cycle {cycle}: the killed node held leases");
            held_at_kill.push(held);
        }
        let before_kill = load.accepted_so_far();
        node = ChildGateway::spawn(&config);
        node.wait_ready(&pki).await;
        load.set_nodes(vec![node.addr]);
        wait_all_delivered(&receivers, &before_kill).await;
        let drained = killed.elapsed();
        assert!(
            drained < Duration::from_secs(LEASE_SECONDS),
            "cycle {cycle}: the backlog of the killed node came back only after a lease"
        );
        drains.push(drained);
    }
    accept_more(
        &load,
        BETWEEN_FAULTS,
        "messages are accepted after the last restart",
    )
    .await;
    let sent = stop_senders(&load, senders).await;
    let redeliveries = account(store, &receivers, &sent).await;
    let entries = trail_matches_every_receipt(&pki, store, &sent).await;
    eprintln!(
        "{name}: {CYCLES} SIGKILLs under load; {} messages accepted, {redeliveries} \
         redeliveries, {entries} audit entries verified, {} connection errors, {} replayed receipts; leases held at each kill \
         {held_at_kill:?} (PostgreSQL); everything accepted before a kill delivered {:?} after \
         it (lease {LEASE_SECONDS} s)",
        sent.len(),
        load.connection_errors.load(Ordering::Relaxed),
        load.replayed.load(Ordering::Relaxed),
        drains
            .iter()
            .map(|d| format!("{} ms", d.as_millis()))
            .collect::<Vec<_>>(),
    );
    node.sigkill();
}

/// The audit trail the killed and restarted nodes wrote verifies link by link (against the
/// checkpoints they signed), and tells every 2xx: each accepted message's route and its
/// delivery to every bureau its receipt promised. Returns how many entries were checked.
async fn trail_matches_every_receipt(pki: &TestPki, store: &str, sent: &[Accepted]) -> u64 {
    let location = gateway::config::StoreLocation::parse(store).expect("a store location");
    let store = gateway::store::any::AnyStore::open(&location, 2)
        .await
        .expect("the store");
    let ca = std::fs::read(pki.ca()).expect("the CA");
    let report = gateway::audit::verify::store(&store, Some(&ca), Vec::new())
        .await
        .expect("verify");
    assert!(
        report.is_intact(),
        "the trail is broken: {:?}",
        report.broken
    );
    for accepted in sent {
        let id = schemas::MessageId::parse(&accepted.id).expect("a message id");
        let told = store.audit_of_message(&id, 1_000).await.expect("entries");
        assert!(
            told.iter().any(|r| r.kind == "route"),
            "{}: accepted (2xx) but not in the trail",
            accepted.id
        );
        for bureau in &accepted.to {
            assert!(
                told.iter().any(|r| r.kind == "attempt"
                    && r.bureau.as_deref() == Some(bureau.as_str())
                    && r.content.contains(r#""outcome":"delivered""#)),
                "{}: the trail has no delivery to {bureau}",
                accepted.id
            );
        }
    }
    report.entries
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_node_killed_repeatedly_under_load_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let dir = support::TempDir::new("faults-sqlite");
    let store = format!("sqlite:{}", dir.path().join("gateway.db").display());
    killed_repeatedly_under_load("faults-sqlite", &store, None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_node_killed_repeatedly_under_load_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let Some(server) = server() else {
        return;
    };
    let schema = Schema::new(&server);
    killed_repeatedly_under_load("faults-postgres", &schema.url(), Some(&schema)).await;
}

/// A local PostgreSQL cluster (`pg_lsclusters`: version and name) whose data directory is the
/// test server's.
struct Cluster {
    version: String,
    name: String,
}

impl Cluster {
    /// The cluster of the server at `url`, if it is one `pg_ctlcluster` manages here.
    async fn of(url: &str) -> Option<Self> {
        let client = admin(url).await.ok()?;
        let data: String = client
            .query_one("SHOW data_directory", &[])
            .await
            .ok()?
            .get(0);
        let listed = Command::new("pg_lsclusters")
            .arg("--no-header")
            .output()
            .ok()?;
        String::from_utf8_lossy(&listed.stdout)
            .lines()
            .find_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields.len() >= 6 && Path::new(fields[5]) == Path::new(&data)).then(|| Cluster {
                    version: fields[0].to_owned(),
                    name: fields[1].to_owned(),
                })
            })
    }

    fn ctl(&self, action: &str) -> std::process::ExitStatus {
        Command::new("pg_ctlcluster")
            .args([
                "--skip-systemctl-redirect",
                &self.version,
                &self.name,
                action,
            ])
            .status()
            .unwrap_or_else(|e| panic!("pg_ctlcluster {action}: {e}"))
    }

    fn running(&self) -> bool {
        Command::new("pg_ctlcluster")
            .args([
                "--skip-systemctl-redirect",
                &self.version,
                &self.name,
                "status",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts it if it is not running, and waits until it accepts connections.
    fn ensure_running(&self) {
        if !self.running() {
            let started = self.ctl("start");
            assert!(started.success(), "pg_ctlcluster start: {started}");
        }
        let since = Instant::now();
        while !Command::new("pg_isready")
            .args(["-q", "-h", "127.0.0.1"])
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(
                since.elapsed() < support::WAIT,
                "PostgreSQL never became ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Leaves PostgreSQL running when the test ends, however it ends.
struct StartAgain<'a>(&'a Cluster);

impl Drop for StartAgain<'_> {
    fn drop(&mut self) {
        self.0.ensure_running();
    }
}

/// A node takes a steady load while PostgreSQL is restarted [`CYCLES`] times under it: while
/// the database is down, ingest answers 503 (never a 2xx for something not committed) and
/// senders send again with the same key; after each restart the same node, not restarted,
/// accepts messages again, and in the end everything accepted was delivered, nothing pending.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_restarted_repeatedly_under_load_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let Some(server) = server() else {
        return;
    };
    let Some(cluster) = Cluster::of(&server).await else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the PostgreSQL restart test: the server of EXCHANGE_TEST_POSTGRES \
             must be a local pg_ctlcluster cluster"
        );
        eprintln!(
            "SKIPPED: PostgreSQL restart test: the server is not a local cluster \
             pg_ctlcluster can restart"
        );
        return;
    };
    let _start_again = StartAgain(&cluster);
    let schema = Schema::new(&server);
    let pki = Arc::new(TestPki::new("faults-pg-restart"));
    let receivers = push_receivers(&pki, Behaviour::Healthy).await;
    let all: Vec<&Receiver> = receivers.iter().collect();
    let url = schema.url();
    let settings = format!("[postgres]\npool_size = 4\n{WITHOUT_CASE_CLOCKS}");
    let running = start_gateway_on(&pki, &url, &all, &settings).await;
    let load = Arc::new(Load::default());
    load.set_nodes(vec![running.addr()]);
    let senders = start_senders(&pki, &load);
    let mut downtimes = Vec::new();
    for cycle in 0..CYCLES {
        accept_more(
            &load,
            BETWEEN_FAULTS,
            "messages are accepted before the restart",
        )
        .await;
        let unavailable = load.unavailable.load(Ordering::Relaxed);
        let started = Instant::now();
        // Stop and start rather than `restart`, so that the load meets the database down.
        let stopped = tokio::task::spawn_blocking({
            let (version, name) = (cluster.version.clone(), cluster.name.clone());
            move || Cluster { version, name }.ctl("stop")
        })
        .await
        .expect("pg_ctlcluster stop");
        assert!(
            stopped.success(),
            "cycle {cycle}: pg_ctlcluster stop: {stopped}"
        );
        wait_until(
            "a sender is told 503 while the database is down",
            async || load.unavailable.load(Ordering::Relaxed) > unavailable,
        )
        .await;
        tokio::task::spawn_blocking({
            let (version, name) = (cluster.version.clone(), cluster.name.clone());
            move || Cluster { version, name }.ensure_running()
        })
        .await
        .expect("pg_ctlcluster start");
        downtimes.push(started.elapsed());
        accept_more(
            &load,
            BETWEEN_FAULTS,
            "the same node accepts messages after the restart",
        )
        .await;
    }
    let sent = stop_senders(&load, senders).await;
    let redeliveries = account(&url, &receivers, &sent).await;
    eprintln!(
        "PostgreSQL restarted {CYCLES} times under load (down {:?}); {} messages accepted, \
         {} answers 503 (sent again), {} replayed receipts, {redeliveries} redeliveries",
        downtimes
            .iter()
            .map(|d| format!("{} ms", d.as_millis()))
            .collect::<Vec<_>>(),
        sent.len(),
        load.unavailable.load(Ordering::Relaxed),
        load.replayed.load(Ordering::Relaxed),
    );
    running.shutdown().await;
}
