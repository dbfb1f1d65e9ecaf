//! Helpers of the gateway's end-to-end tests: a throw-away PKI and store folder, a configured
//! gateway (in process, or a child process that can be SIGKILLed), and the simulated bureau
//! systems of `gateway::sim` (the same ones `gateway demo` runs) in test form: receivers that
//! record what the gateway pushes to them, and HTTPS clients with a bureau's, an operator's, a
//! stranger's or no certificate, whose requests panic instead of returning errors.
//!
//! Everything is real: TLS with certificates of a dev CA, HTTP over loopback sockets, a SQLite
//! file or a PostgreSQL schema. Nothing waits for a fixed time: [`wait_until`] polls a condition
//! and fails only after a generous timeout.

#![allow(
    dead_code,
    reason = "shared by several test binaries (SQLite and PostgreSQL suites), each using a part"
)]

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use gateway::config::Config;
use gateway::sim::{self, Endpoint, Inbox, SimError};
use gateway::store::Receipt;
use schemas::{BureauId, CaseStatus, Event, EventKind, Item, MessageId, Payload};
use tokio::net::TcpListener;

pub(crate) use gateway::sim::{Behaviour, Received, Reply, StreamingBody};

pub(crate) mod load;
pub(crate) mod pg;

/// How long [`wait_until`] waits before it declares the condition never came true.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// Polls `condition` until it holds; panics naming `what` after [`WAIT`].
pub(crate) async fn wait_until(what: &str, condition: impl AsyncFnMut() -> bool) {
    wait_until_for(what, WAIT, condition).await;
}

/// Polls `condition` until it holds; panics naming `what` after `timeout`.
pub(crate) async fn wait_until_for(
    what: &str,
    timeout: Duration,
    mut condition: impl AsyncFnMut() -> bool,
) {
    let started = Instant::now();
    loop {
        if condition().await {
            return;
        }
        assert!(
            started.elapsed() < timeout,
            "gave up after {} s waiting until {what}",
            timeout.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub(crate) use gateway::testing::TempDir;

/// A dev PKI (CA, gateway, six bureaus, operator) and room for the store, in a fresh folder.
pub(crate) struct TestPki {
    root: TempDir,
    layout: gateway::net::pki::PkiLayout,
}

impl TestPki {
    pub(crate) fn new(name: &str) -> Self {
        let root = TempDir::new(name);
        let layout = gateway::net::pki::init(&root.path().join("pki"), "gw-1").expect("dev PKI");
        Self { root, layout }
    }

    pub(crate) fn root(&self) -> &Path {
        self.root.path()
    }

    pub(crate) fn layout(&self) -> &gateway::net::pki::PkiLayout {
        &self.layout
    }

    pub(crate) fn ca(&self) -> &Path {
        &self.layout.ca
    }

    pub(crate) fn gateway(&self) -> (PathBuf, PathBuf) {
        self.layout.gateway()
    }

    pub(crate) fn bureau(&self, bureau: BureauId) -> (PathBuf, PathBuf) {
        self.layout.bureau(bureau)
    }

    pub(crate) fn operator(&self) -> (PathBuf, PathBuf) {
        self.layout.operator()
    }

    /// The SQLite file of the gateway of this test.
    pub(crate) fn store_path(&self) -> PathBuf {
        self.root().join("gateway.db")
    }

    /// The survey file folder of the gateway of this test (`surveys.blob_dir`).
    pub(crate) fn blob_dir(&self) -> PathBuf {
        self.root().join("blobs")
    }

    /// The SQLite store location of the gateway of this test.
    pub(crate) fn sqlite_store(&self) -> String {
        format!("sqlite:{}", self.store_path().display())
    }

    /// The test configuration layer: this PKI, this test's SQLite store and survey file folder,
    /// fast retries, and every push bureau's endpoint (a receiver's, else a closed loopback
    /// port). Civil defense pulls.
    pub(crate) fn config_toml(&self, receivers: &[&Receiver]) -> String {
        self.config_toml_on(&self.sqlite_store(), receivers)
    }

    /// [`Self::config_toml`] with `store` (`sqlite:PATH` or `postgres://…`) as the store.
    pub(crate) fn config_toml_on(&self, store: &str, receivers: &[&Receiver]) -> String {
        self.config_toml_with(store, receivers, &[], &[])
    }

    /// [`Self::config_toml_on`] with some `[delivery]` settings replaced or added (`key`,
    /// TOML value) and some bureaus' endpoints given (instead of their receivers' URLs): for
    /// the one file a [`ChildGateway`] reads.
    pub(crate) fn config_toml_with(
        &self,
        store: &str,
        receivers: &[&Receiver],
        delivery: &[(&str, &str)],
        endpoints: &[(BureauId, String)],
    ) -> String {
        let (cert, key) = self.gateway();
        let mut settings = vec![
            ("poll_interval_ms", "50"),
            ("lease_seconds", "5"),
            ("request_timeout_seconds", "2"),
        ];
        for (name, value) in delivery {
            match settings.iter_mut().find(|(n, _)| n == name) {
                Some(setting) => setting.1 = value,
                None => settings.push((name, value)),
            }
        }
        let delivery: String = settings
            .iter()
            .map(|(name, value)| format!("{name} = {value}\n"))
            .collect();
        let mut toml = format!(
            "listen = \"127.0.0.1:0\"\nstore = {}\n\
             [tls]\nca = {}\ncert = {}\nkey = {}\n\
             [retry]\ninitial_delay_ms = 20\nmax_delay_seconds = 1\n\
             [circuit]\nopen_seconds = 1\n\
             [delivery]\n{delivery}\
             [surveys]\nblob_dir = {}\n\
             [audit]\ncheckpoint_interval_seconds = 1\ncheckpoint_dir = {}\n",
            toml_string(store),
            toml_string(&self.ca().display().to_string()),
            toml_string(&cert.display().to_string()),
            toml_string(&key.display().to_string()),
            toml_string(&self.blob_dir().display().to_string()),
            toml_string(&self.root().join("audit").display().to_string()),
        );
        for bureau in BureauId::ALL {
            if bureau == BureauId::CivilDefense {
                continue;
            }
            let endpoint = endpoints
                .iter()
                .find(|(b, _)| *b == bureau)
                .map(|(_, url)| url.clone())
                .or_else(|| {
                    receivers
                        .iter()
                        .find(|r| r.bureau() == bureau)
                        .map(|r| r.url())
                })
                .unwrap_or_else(|| "https://127.0.0.1:1/inbox".to_owned());
            toml.push_str(&format!(
                "[bureaus.{bureau}]\ndelivery = \"push\"\nendpoint = {}\n",
                toml_string(&endpoint)
            ));
        }
        toml
    }
}

fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Starts a gateway on `127.0.0.1:0` with [`TestPki::config_toml`] and `extra_toml` laid over.
pub(crate) async fn start_gateway(
    pki: &TestPki,
    receivers: &[&Receiver],
    extra_toml: &str,
) -> gateway::Running {
    start_gateway_on(pki, &pki.sqlite_store(), receivers, extra_toml).await
}

/// [`start_gateway`] with `store` (`sqlite:PATH` or `postgres://…`) as the store.
pub(crate) async fn start_gateway_on(
    pki: &TestPki,
    store: &str,
    receivers: &[&Receiver],
    extra_toml: &str,
) -> gateway::Running {
    let config = Config::from_layers(&[&pki.config_toml_on(store, receivers), extra_toml], &[])
        .expect("test config");
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the gateway's port");
    gateway::start_on(config, listener)
        .await
        .expect("the gateway starts")
}

/// The configuration [`start_gateway`] uses.
pub(crate) fn test_config(pki: &TestPki, receivers: &[&Receiver], extra_toml: &str) -> Config {
    Config::from_layers(&[&pki.config_toml(receivers), extra_toml], &[]).expect("test config")
}

/// The environment variable naming the config file of a [`ChildGateway`].
const CHILD_CONFIG: &str = "GATEWAY_E2E_CHILD_CONFIG";

/// The body of the ignored `child_gateway_process` test every binary that uses [`ChildGateway`]
/// defines: runs a gateway with the config file in `GATEWAY_E2E_CHILD_CONFIG` (and `GATEWAY_*`
/// from the environment) until killed; returns at once when that variable is not set.
pub(crate) fn run_child_gateway() {
    let Some(path) = std::env::var_os(CHILD_CONFIG) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let config = Config::load(Path::new(&path)).expect("the child's config");
        let _running = gateway::start(config)
            .await
            .expect("the child gateway starts");
        std::future::pending::<()>().await;
    });
}

/// A gateway child process (the test binary itself, running its `child_gateway_process`),
/// SIGKILLed when dropped.
pub(crate) struct ChildGateway {
    child: Child,
    pub(crate) addr: std::net::SocketAddr,
}

impl ChildGateway {
    /// Starts a child on a free loopback port with the config file `config`.
    pub(crate) fn spawn(config: &Path) -> Self {
        Self::spawn_with(config, &[])
    }

    /// Like [`Self::spawn`], with more environment variables (e.g. `GATEWAY_NODE`).
    pub(crate) fn spawn_with(config: &Path, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        let child = Command::new(std::env::current_exe().expect("the test binary"))
            .args([
                "--exact",
                "child_gateway_process",
                "--ignored",
                "--nocapture",
            ])
            .env(CHILD_CONFIG, config)
            .env("GATEWAY_LISTEN", addr.to_string())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the child gateway");
        Self { child, addr }
    }

    /// The child's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until it answers `/healthz`; panics if it exits.
    pub(crate) async fn wait_ready(&mut self, pki: &TestPki) {
        let client = BureauClient::anonymous(pki, self.addr);
        let child = &mut self.child;
        wait_until("the child gateway answers /healthz", async || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the child gateway exited: {status}");
            }
            client
                .try_request("GET", "/healthz", &[], Vec::new())
                .await
                .is_ok_and(|r| r.status == StatusCode::OK)
        })
        .await;
    }

    /// SIGKILL, and reap it.
    pub(crate) fn sigkill(&mut self) {
        self.child.kill().expect("SIGKILL the child");
        self.child.wait().expect("reap the child");
    }
}

impl Drop for ChildGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A push bureau's receiving endpoint ([`Endpoint`]) that keeps every delivery; reading what
/// it received fails the test if it ever got a delivery it could not accept (from something
/// other than the gateway, not in its bureau's format, or not exactly one event).
pub(crate) struct Receiver(Endpoint);

impl Receiver {
    pub(crate) async fn start(pki: &TestPki, bureau: BureauId, behaviour: Behaviour) -> Self {
        let inbox = Arc::new(Inbox::new(bureau));
        Self(
            Endpoint::start(pki.layout(), inbox, behaviour)
                .await
                .unwrap_or_else(|e| panic!("{bureau}'s receiver starts: {e}")),
        )
    }

    pub(crate) fn bureau(&self) -> BureauId {
        self.0.bureau()
    }

    pub(crate) fn url(&self) -> String {
        self.0.url()
    }

    /// Changes how it answers; `Down` closes the port, anything else (re)opens the same one.
    pub(crate) async fn set(&self, behaviour: Behaviour) {
        self.0
            .set(behaviour)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", self.bureau()));
    }

    fn inbox(&self) -> &Inbox {
        let inbox = self.0.inbox();
        let problems = inbox.problems();
        assert!(
            problems.is_empty(),
            "{} received bad deliveries: {problems:?}",
            self.bureau()
        );
        inbox
    }

    /// Every delivery recorded, in arrival order.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.inbox().received()
    }

    /// The distinct message ids received.
    pub(crate) fn ids(&self) -> HashSet<String> {
        self.inbox().ids()
    }

    /// How many deliveries of this id arrived.
    pub(crate) fn copies_of(&self, id: &str) -> usize {
        self.inbox().copies_of(id) as usize
    }

    /// How many requests (and items of batches) it answered 503 on purpose.
    pub(crate) fn refused(&self) -> usize {
        self.0.inbox().refused() as usize
    }

    /// Batch pushes received, and the deliveries they carried in all.
    pub(crate) fn batches(&self) -> (u64, u64) {
        self.inbox().batches()
    }
}

/// Starts a receiver for every push bureau, each with `behaviour`.
pub(crate) async fn push_receivers(pki: &TestPki, behaviour: Behaviour) -> Vec<Receiver> {
    let mut receivers = Vec::new();
    for bureau in BureauId::ALL {
        if bureau != BureauId::CivilDefense {
            receivers.push(Receiver::start(pki, bureau, behaviour).await);
        }
    }
    receivers
}

/// The receiver of `bureau` among `receivers`.
pub(crate) fn receiver(receivers: &[Receiver], bureau: BureauId) -> &Receiver {
    receivers
        .iter()
        .find(|r| r.bureau() == bureau)
        .unwrap_or_else(|| panic!("no receiver for {bureau}"))
}

/// The test's conveniences on an answer: its JSON, its receipt (the answer must be a 202).
pub(crate) trait ReplyExt {
    /// The body as JSON; panics if it is not.
    fn json(&self) -> serde_json::Value;
    /// The receipt of an accepted message; panics unless the status is 202.
    fn receipt(&self) -> Receipt;
}

impl ReplyExt for Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} answered non-JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn receipt(&self) -> Receipt {
        assert_eq!(
            self.status,
            StatusCode::ACCEPTED,
            "expected 202, got {}: {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        serde_json::from_slice(&self.body).expect("a receipt")
    }
}

/// A [`sim::BureauClient`] whose requests panic on a connection or TLS failure (except
/// [`Self::try_request`]), for tests that expect an answer.
pub(crate) struct BureauClient(sim::BureauClient);

impl BureauClient {
    /// A bureau's system.
    pub(crate) fn new(pki: &TestPki, gateway: SocketAddr, bureau: BureauId) -> Self {
        Self(sim::BureauClient::new(pki.layout(), gateway, bureau).expect("client TLS"))
    }

    /// An operator.
    pub(crate) fn operator(pki: &TestPki, gateway: SocketAddr) -> Self {
        Self(sim::BureauClient::operator(pki.layout(), gateway).expect("client TLS"))
    }

    /// Trusts `ca` for the server and presents `cert`/`key`.
    pub(crate) fn with_identity(ca: &Path, cert: &Path, key: &Path, gateway: SocketAddr) -> Self {
        Self(sim::BureauClient::with_identity(ca, cert, key, gateway).expect("client TLS"))
    }

    /// Presents no client certificate.
    pub(crate) fn anonymous(pki: &TestPki, gateway: SocketAddr) -> Self {
        Self(sim::BureauClient::anonymous(pki.ca(), gateway).expect("client TLS"))
    }

    /// Sends `request`; `Err` for a connection or TLS failure.
    pub(crate) async fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Reply, SimError> {
        let method = method.parse().expect("an HTTP method");
        self.0.request(method, path, headers, body).await
    }

    pub(crate) async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        self.try_request(method, path, headers, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], Vec::new()).await
    }

    /// POSTs `body` as `content_type`.
    pub(crate) async fn post_body(&self, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
        self.request("POST", path, &[("content-type", content_type)], body)
            .await
    }

    /// Sends a request whose body streams, and returns the answer with its body unread (to be
    /// streamed in turn). Panics on a connection or TLS failure.
    pub(crate) async fn stream_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: StreamingBody,
    ) -> hyper::Response<hyper::body::Incoming> {
        let method = method.parse().expect("an HTTP method");
        self.0
            .stream_request(method, path, headers, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Publishes credit-list entries (`sim::credit_line`), one NDJSON upload.
    pub(crate) async fn publish_credit(&self, lines: &[serde_json::Value]) -> Reply {
        self.0
            .publish_credit(lines)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub(crate) async fn post_json(&self, path: &str, json: serde_json::Value) -> Reply {
        self.post_body(path, "application/json", json.to_string().into_bytes())
            .await
    }

    /// The event in this bureau's own format, as its system would send it.
    pub(crate) fn encode(&self, event: &Event) -> adapters::Encoded {
        self.0
            .encode(event)
            .unwrap_or_else(|e| panic!("cannot encode the event: {e}"))
    }

    /// Encodes the event with this bureau's adapter and POSTs it to `/v1/messages`.
    pub(crate) async fn send(&self, event: &Event) -> Reply {
        self.send_with_key(event, None).await
    }

    /// Like [`Self::send`], with an `Idempotency-Key`.
    pub(crate) async fn send_with_key(&self, event: &Event, key: Option<&str>) -> Reply {
        self.0
            .send(event, key)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// A realistic event of `source`'s system with the given item and status (kind follows).
pub(crate) fn case_event(
    rng: &mut fastrand::Rng,
    source: BureauId,
    item: Item,
    status: CaseStatus,
) -> Event {
    let mut event = adapters::sample::case_event(rng, source);
    let Payload::Case(case) = &mut event.payload else {
        unreachable!("a case event")
    };
    case.item = item;
    case.status = status;
    event.kind = status.event_kind();
    event
}

/// A planning case event routed to water and to at least one other push bureau.
pub(crate) fn case_for_water_and_another(rng: &mut fastrand::Rng) -> (Event, BureauId) {
    for _ in 0..1000 {
        let event = case_event(
            rng,
            BureauId::Planning,
            Item::ConstructionPlanningPermit,
            CaseStatus::Approved,
        );
        let to = subscribers(&event);
        let other = to
            .iter()
            .copied()
            .find(|b| *b != BureauId::Water && *b != BureauId::CivilDefense);
        if let (true, Some(other)) = (to.contains(&BureauId::Water), other) {
            return (event, other);
        }
    }
    panic!("no approved construction planning permit routed to water and another bureau");
}

/// The status whose event is of `kind`.
pub(crate) fn status_of(kind: EventKind) -> CaseStatus {
    CaseStatus::ALL
        .into_iter()
        .find(|s| s.event_kind() == kind)
        .expect("every kind reports a status")
}

/// The same event as the next one of its case: `sequence`, and a new source message id (so the
/// gateway does not take it for a re-send).
pub(crate) fn next_in_case(event: &Event, sequence: u64, rng: &mut fastrand::Rng) -> Event {
    let mut next = event.clone();
    next.sequence = sequence;
    next.message_id = fresh_id(&event.message_id, rng);
    next
}

/// A new message id in the style of `like` (`GH-20220215-0000a1b2`): a new random suffix.
pub(crate) fn fresh_id(like: &MessageId, rng: &mut fastrand::Rng) -> MessageId {
    let text = like.as_str();
    let stem = text.rsplit_once('-').map_or(text, |(stem, _)| stem);
    MessageId::parse(&format!("{stem}-{:08x}", rng.u32(..))).expect("a valid message id")
}

/// The event as the gateway delivers it: with its gateway id.
pub(crate) fn as_delivered(event: &Event, gateway_id: &str) -> Event {
    let mut delivered = event.clone();
    delivered.message_id = MessageId::parse(gateway_id).expect("a valid gateway id");
    delivered
}

/// The bureaus the default routes send `event` to.
pub(crate) fn subscribers(event: &Event) -> BTreeSet<BureauId> {
    gateway::routing::RouteTable::new(Config::defaults().expect("defaults").routes)
        .subscribers(event)
        .into_iter()
        .collect()
}

/// Queue stats summed over subscribers: (pending, delivered, dead, failed attempts).
pub(crate) async fn totals(store: &impl gateway::store::Store) -> (u64, u64, u64, u64) {
    let stats = store.queue_stats().await.expect("queue stats");
    stats.iter().fold((0, 0, 0, 0), |(p, d, x, f), s| {
        (
            p + s.pending,
            d + s.delivered,
            x + s.dead,
            f + s.failed_attempts,
        )
    })
}

/// A TCP relay in front of a receiver that holds every chunk a client sends for `delay` before
/// passing it on (TLS passes through untouched: the receiver's certificate names 127.0.0.1, as
/// the relay's address does). Each push through it takes at least `delay`, so a gateway under
/// load always has deliveries to that bureau in flight, that is, leased. Stops when dropped.
pub(crate) struct DelayRelay {
    addr: SocketAddr,
    held: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl DelayRelay {
    /// Relays to `receiver`'s endpoint.
    pub(crate) async fn start(receiver: &Receiver, delay: Duration) -> Self {
        let url = receiver.url();
        let target: SocketAddr = url
            .strip_prefix("https://")
            .and_then(|rest| rest.split('/').next())
            .and_then(|authority| authority.parse().ok())
            .unwrap_or_else(|| panic!("a receiver URL on an IP address: {url}"));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the relay");
        let addr = listener.local_addr().expect("the relay's address");
        let held = Arc::new(AtomicU64::new(0));
        let counter = held.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let held = counter.clone();
                connections.spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut from_client, mut to_client) = client.into_split();
                    let (mut from_server, mut to_server) = server.into_split();
                    // Every chunk waits `delay` from when it was read, in order; chunks read
                    // meanwhile wait alongside (latency, not a bottleneck).
                    let (chunks, mut due) =
                        tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
                    let counted = held.clone();
                    let read = async move {
                        use tokio::io::AsyncReadExt as _;
                        let mut buffer = vec![0; 64 * 1024];
                        while let Ok(n @ 1..) = from_client.read(&mut buffer).await {
                            counted.fetch_add(1, Ordering::SeqCst);
                            let at = tokio::time::Instant::now() + delay;
                            if chunks.send((at, buffer[..n].to_vec())).is_err() {
                                break;
                            }
                        }
                    };
                    let write = async move {
                        use tokio::io::AsyncWriteExt as _;
                        while let Some((at, chunk)) = due.recv().await {
                            tokio::time::sleep_until(at).await;
                            held.fetch_sub(1, Ordering::SeqCst);
                            if to_server.write_all(&chunk).await.is_err() {
                                break;
                            }
                        }
                        let _ = to_server.shutdown().await;
                    };
                    let upstream = async {
                        tokio::join!(read, write);
                    };
                    let downstream = tokio::io::copy(&mut from_server, &mut to_client);
                    let _ = tokio::join!(upstream, downstream);
                });
            }
        });
        Self { addr, held, task }
    }

    /// The URL to configure as the bureau's endpoint.
    pub(crate) fn url(&self) -> String {
        format!("https://{}/inbox", self.addr)
    }

    /// How many chunks it is holding right now: each is part of a push in flight.
    pub(crate) fn held(&self) -> u64 {
        self.held.load(Ordering::SeqCst)
    }
}

impl Drop for DelayRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}
