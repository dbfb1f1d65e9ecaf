//! Helpers of the gateway's end-to-end tests: a throw-away PKI and store folder, simulated bureau
//! endpoints that record what the gateway pushes to them, a configured gateway (in process, or
//! a child process that can be SIGKILLed), and HTTPS clients with a bureau's, an operator's, a
//! stranger's or no certificate.
//!
//! Everything is real: TLS with certificates of a dev CA, HTTP over loopback sockets, a SQLite
//! file or a PostgreSQL schema. Nothing waits for a fixed time: [`wait_until`] polls a condition
//! and fails only after a generous timeout.

#![allow(
    dead_code,
    reason = "shared by several test binaries (SQLite and PostgreSQL suites), each using a part"
)]

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use gateway::config::Config;
use gateway::delivery::{HttpsClient, https_client};
use gateway::net::Identity;
use gateway::net::Peer;
use gateway::store::Receipt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use schemas::{BureauId, CaseStatus, Event, EventKind, Item, MessageId, Payload};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

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

/// A folder under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gateway-e2e-{name}-{}-{}-{:08x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(&dir).expect("create the test folder");
        Self(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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
        let (cert, key) = self.gateway();
        let mut toml = format!(
            "listen = \"127.0.0.1:0\"\nstore = {}\n\
             [tls]\nca = {}\ncert = {}\nkey = {}\n\
             [retry]\ninitial_delay_ms = 20\nmax_delay_seconds = 1\n\
             [circuit]\nopen_seconds = 1\n\
             [delivery]\npoll_interval_ms = 50\nlease_seconds = 5\nrequest_timeout_seconds = 2\n\
             [surveys]\nblob_dir = {}\n",
            toml_string(store),
            toml_string(&self.ca().display().to_string()),
            toml_string(&cert.display().to_string()),
            toml_string(&key.display().to_string()),
            toml_string(&self.blob_dir().display().to_string()),
        );
        for bureau in BureauId::ALL {
            if bureau == BureauId::CivilDefense {
                continue;
            }
            let endpoint = receivers
                .iter()
                .find(|r| r.bureau() == bureau)
                .map_or_else(|| "https://127.0.0.1:1/inbox".to_owned(), |r| r.url());
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

/// How a simulated bureau endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behaviour {
    /// Decodes and records every delivery, answers 200.
    Healthy,
    /// Answers 503 to everything (and counts it).
    Unavailable,
    /// Not listening: connections are refused.
    Down,
}

/// One delivery as a receiver saw it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// The `message-id` header of the request.
    pub(crate) header_id: String,
    /// The canonical event decoded from the body with the receiver's own adapter.
    pub(crate) event: Event,
}

struct ReceiverState {
    bureau: BureauId,
    behaviour: Mutex<Behaviour>,
    received: Mutex<Vec<Received>>,
    refused: AtomicUsize,
    errors: Mutex<Vec<String>>,
}

/// A push bureau's receiving endpoint: HTTPS with the bureau's certificate, requiring a client
/// certificate of the exchange CA; only the gateway may deliver.
pub(crate) struct Receiver {
    state: Arc<ReceiverState>,
    port: u16,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    server: Mutex<Option<(watch::Sender<bool>, JoinHandle<()>)>>,
}

impl Receiver {
    pub(crate) async fn start(pki: &TestPki, bureau: BureauId, behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a receiver's port");
        let port = listener.local_addr().expect("receiver address").port();
        let (cert, key) = pki.bureau(bureau);
        let receiver = Self {
            state: Arc::new(ReceiverState {
                bureau,
                behaviour: Mutex::new(Behaviour::Healthy),
                received: Mutex::new(Vec::new()),
                refused: AtomicUsize::new(0),
                errors: Mutex::new(Vec::new()),
            }),
            port,
            ca: pki.ca().to_owned(),
            cert,
            key,
            server: Mutex::new(None),
        };
        if behaviour == Behaviour::Down {
            drop(listener);
        } else {
            receiver.serve(listener);
        }
        receiver.set_answer(behaviour);
        receiver
    }

    pub(crate) fn bureau(&self) -> BureauId {
        self.state.bureau
    }

    pub(crate) fn url(&self) -> String {
        format!("https://127.0.0.1:{}/inbox", self.port)
    }

    fn set_answer(&self, behaviour: Behaviour) {
        *self
            .state
            .behaviour
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = behaviour;
    }

    fn serve(&self, listener: TcpListener) {
        let tls = gateway::net::tls::endpoint_server_config(&self.ca, &self.cert, &self.key)
            .expect("receiver TLS");
        let router = Router::new()
            .route("/inbox", post(inbox))
            .with_state(self.state.clone());
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(gateway::net::listener::serve(
            listener,
            tls,
            router,
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
            Duration::from_secs(1),
        ));
        *self.server.lock().unwrap_or_else(|p| p.into_inner()) = Some((stop, task));
    }

    /// Changes how it answers; `Down` closes the port, anything else (re)opens the same one.
    pub(crate) async fn set(&self, behaviour: Behaviour) {
        self.set_answer(behaviour);
        let running = self.server.lock().unwrap_or_else(|p| p.into_inner()).take();
        match (behaviour, running) {
            (Behaviour::Down, Some((stop, task))) => {
                let _ = stop.send(true);
                let _ = task.await;
            }
            (Behaviour::Down, None) => {}
            (_, Some(running)) => {
                *self.server.lock().unwrap_or_else(|p| p.into_inner()) = Some(running);
            }
            (_, None) => {
                let mut listener = None;
                let addr = format!("127.0.0.1:{}", self.port);
                wait_until(
                    &format!("{} can listen on {addr} again", self.bureau()),
                    async || {
                        listener = TcpListener::bind(&addr).await.ok();
                        listener.is_some()
                    },
                )
                .await;
                if let Some(listener) = listener {
                    self.serve(listener);
                }
            }
        }
    }

    /// Every delivery recorded, in arrival order. Panics if any delivery could not be decoded
    /// in the bureau's own format or came from something other than the gateway.
    pub(crate) fn received(&self) -> Vec<Received> {
        let errors = self
            .state
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        assert!(
            errors.is_empty(),
            "{} received bad deliveries: {errors:?}",
            self.bureau()
        );
        self.state
            .received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The distinct message ids received.
    pub(crate) fn ids(&self) -> HashSet<String> {
        self.received()
            .into_iter()
            .map(|r| r.event.message_id.as_str().to_owned())
            .collect()
    }

    /// How many deliveries of this id arrived.
    pub(crate) fn copies_of(&self, id: &str) -> usize {
        self.received()
            .iter()
            .filter(|r| r.event.message_id.as_str() == id)
            .count()
    }

    /// How many requests it answered 503 on purpose.
    pub(crate) fn refused(&self) -> usize {
        self.state.refused.load(Ordering::Relaxed)
    }
}

async fn inbox(
    State(state): State<Arc<ReceiverState>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let error = |text: String| {
        state
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(text);
    };
    if !matches!(peer.0, Some(Identity::Gateway(_))) {
        error(format!("delivery from {:?}, not the gateway", peer.0));
        return StatusCode::FORBIDDEN;
    }
    let behaviour = *state.behaviour.lock().unwrap_or_else(|p| p.into_inner());
    if behaviour != Behaviour::Healthy {
        state.refused.fetch_add(1, Ordering::Relaxed);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let adapter = adapters::for_bureau(state.bureau).expect("every bureau has an adapter");
    match adapter.decode(&body, &header("content-type")) {
        Ok(events) if events.len() == 1 => {
            let header_id = header("message-id");
            let mut received = state.received.lock().unwrap_or_else(|p| p.into_inner());
            received.extend(events.into_iter().map(|event| Received {
                header_id: header_id.clone(),
                event,
            }));
            StatusCode::OK
        }
        Ok(events) => {
            error(format!("a push carried {} events", events.len()));
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(e) => {
            error(format!("undecodable in {}'s format: {e}", state.bureau));
            StatusCode::UNPROCESSABLE_ENTITY
        }
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

/// An HTTP answer, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} answered non-JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn receipt(&self) -> Receipt {
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

/// A request body sent as it is produced (e.g. a large upload generated on the fly).
pub(crate) type StreamingBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// An HTTPS client whose request bodies stream.
type StreamingClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    StreamingBody,
>;

/// Like [`https_client`], for streaming request bodies.
fn streaming_client(tls: &rustls::ClientConfig) -> StreamingClient {
    let mut tls = tls.clone();
    tls.alpn_protocols.clear();
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https)
}

/// An HTTPS client of the gateway with some identity (or none).
pub(crate) struct BureauClient {
    bureau: Option<BureauId>,
    client: HttpsClient,
    streaming: StreamingClient,
    base: String,
}

impl BureauClient {
    /// A bureau's system.
    pub(crate) fn new(pki: &TestPki, gateway: std::net::SocketAddr, bureau: BureauId) -> Self {
        let (cert, key) = pki.bureau(bureau);
        let mut client = Self::with_identity(pki.ca(), &cert, &key, gateway);
        client.bureau = Some(bureau);
        client
    }

    /// An operator.
    pub(crate) fn operator(pki: &TestPki, gateway: std::net::SocketAddr) -> Self {
        let (cert, key) = pki.operator();
        Self::with_identity(pki.ca(), &cert, &key, gateway)
    }

    /// Trusts `ca` for the server and presents `cert`/`key`.
    pub(crate) fn with_identity(
        ca: &Path,
        cert: &Path,
        key: &Path,
        gateway: std::net::SocketAddr,
    ) -> Self {
        let tls = gateway::net::tls::client_config(ca, cert, key).expect("client TLS");
        Self {
            bureau: None,
            client: https_client(&tls),
            streaming: streaming_client(&tls),
            base: format!("https://{gateway}"),
        }
    }

    /// Presents no client certificate.
    pub(crate) fn anonymous(pki: &TestPki, gateway: std::net::SocketAddr) -> Self {
        let tls = gateway::net::tls::client_config_without_identity(pki.ca()).expect("client TLS");
        Self {
            bureau: None,
            client: https_client(&tls),
            streaming: streaming_client(&tls),
            base: format!("https://{gateway}"),
        }
    }

    /// Sends `request`; `Err` for a connection or TLS failure.
    pub(crate) async fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Reply, String> {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .expect("a valid request");
        let response = tokio::time::timeout(WAIT, self.client.request(request))
            .await
            .map_err(|_| format!("no answer to {method} {path} within {} s", WAIT.as_secs()))?
            .map_err(|e| format!("{method} {path}: {e:?}"))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("{method} {path}: reading the body: {e}"))?
            .to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
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
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body).expect("a valid request");
        self.streaming
            .request(request)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e:?}"))
    }

    pub(crate) async fn post_json(&self, path: &str, json: serde_json::Value) -> Reply {
        self.request(
            "POST",
            path,
            &[("content-type", "application/json")],
            json.to_string().into_bytes(),
        )
        .await
    }

    /// The event in this bureau's own format, as its system would send it.
    pub(crate) fn encode(&self, event: &Event) -> adapters::Encoded {
        let bureau = self.bureau.expect("a bureau client");
        adapters::for_bureau(bureau)
            .expect("every bureau has an adapter")
            .encode(event)
            .unwrap_or_else(|e| panic!("{bureau} cannot encode the event: {e}"))
    }

    /// Encodes the event with this bureau's adapter and POSTs it to `/v1/messages`.
    pub(crate) async fn send(&self, event: &Event) -> Reply {
        self.send_with_key(event, None).await
    }

    /// Like [`Self::send`], with an `Idempotency-Key`.
    pub(crate) async fn send_with_key(&self, event: &Event, key: Option<&str>) -> Reply {
        let encoded = self.encode(event);
        let mut headers = vec![("content-type", encoded.content_type.as_str())];
        if let Some(key) = key {
            headers.push(("idempotency-key", key));
        }
        self.request("POST", "/v1/messages", &headers, encoded.body)
            .await
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
