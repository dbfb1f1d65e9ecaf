//! Hardening (issue 9): what an attacker on the network can make the gateway spend, and
//! certificate revocation. Every test runs a real gateway on `127.0.0.1:0` and talks real TLS to
//! it — through the simulated bureau clients, or through [`Raw`], a TLS connection driven byte by
//! byte, for what no well-behaved client does (slow headers, bodies that never come, two `Host`
//! headers, idle connections).
//!
//! Timing: the only time bounds asserted are "closed (or answered) within the configured
//! timeout plus [`SLACK`]"; a few checks that something is *held back* look for one second,
//! which can only fail if the limit under test is missing.

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::http::StatusCode;
use gateway::store::Store;
use schemas::{BureauId, CaseStatus, Item};
use support::{
    Behaviour, BureauClient, ChildGateway, Receiver, ReplyExt, TestPki, case_event, start_gateway,
    wait_until,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Not a test: the gateway process of `hostile_load_stays_within_the_documented_memory_bound`
/// and `sighup_reloads_the_crl`, started with the config file in `GATEWAY_E2E_CHILD_CONFIG`.
#[test]
#[ignore = "the child process of the hardening tests"]
fn child_gateway_process() {
    support::run_child_gateway();
}

/// Added to a configured timeout before a test declares it was not enforced.
const SLACK: Duration = Duration::from_secs(10);

/// How long a check that something is held back looks.
const HELD_BACK: Duration = Duration::from_secs(1);

/// A TLS connection to the gateway driven by hand: rustls over a tokio socket, so a test can send
/// exactly the bytes it wants, when it wants, and see when the server closes.
struct Raw {
    tcp: TcpStream,
    tls: rustls::ClientConnection,
}

/// Client TLS with ALPN `alpn`, presenting `identity` (certificate, key) or nothing.
fn raw_tls(
    pki: &TestPki,
    identity: Option<(&Path, &Path)>,
    alpn: &[u8],
) -> Arc<rustls::ClientConfig> {
    let config = match identity {
        Some((cert, key)) => gateway::net::tls::client_config(pki.ca(), cert, key),
        None => gateway::net::tls::client_config_without_identity(pki.ca()),
    }
    .expect("client TLS");
    let mut config = (*config).clone();
    config.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(config)
}

impl Raw {
    /// Connects and completes the TLS handshake.
    async fn connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> std::io::Result<Self> {
        let tcp = TcpStream::connect(addr).await?;
        let name = "localhost".try_into().expect("a server name");
        let tls = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
        let mut raw = Self { tcp, tls };
        while raw.tls.is_handshaking() {
            raw.flush().await?;
            if raw.tls.is_handshaking() && raw.tls.wants_read() && raw.fill().await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        raw.flush().await?;
        Ok(raw)
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        while self.tls.wants_write() {
            let mut out = Vec::new();
            self.tls.write_tls(&mut out)?;
            self.tcp.write_all(&out).await?;
        }
        Ok(())
    }

    /// Reads from the socket into rustls; the number of bytes read (0: the peer closed).
    async fn fill(&mut self) -> std::io::Result<usize> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = self.tcp.read(&mut buf).await?;
        let mut slice = &buf[..n];
        loop {
            self.tls.read_tls(&mut slice)?;
            self.tls
                .process_new_packets()
                .map_err(std::io::Error::other)?;
            if slice.is_empty() {
                break;
            }
        }
        Ok(n)
    }

    /// Sends application bytes.
    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.tls.writer().write_all(bytes)?;
        self.flush().await
    }

    /// The next application bytes; `None` once the server closed the connection (cleanly or not).
    async fn recv(&mut self) -> Option<Vec<u8>> {
        loop {
            let mut buf = vec![0u8; 64 * 1024];
            match self.tls.reader().read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => {
                    buf.truncate(n);
                    return Some(buf);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return None,
            }
            match self.fill().await {
                Ok(0) | Err(_) => {
                    // Whatever rustls still holds, then the end.
                    let mut rest = Vec::new();
                    let _ = self.tls.reader().read_to_end(&mut rest);
                    return (!rest.is_empty()).then_some(rest);
                }
                Ok(_) => {}
            }
        }
    }

    /// Reads until the server closes the connection.
    async fn until_closed(&mut self) {
        while self.recv().await.is_some() {}
    }

    /// Reads an HTTP/1.1 response head (and what came with it): its status and text.
    async fn response(&mut self) -> Option<(u16, String)> {
        let mut text = Vec::new();
        while !text.windows(4).any(|w| w == b"\r\n\r\n") {
            text.extend(self.recv().await?);
        }
        let text = String::from_utf8_lossy(&text).into_owned();
        let status = text.split(' ').nth(1)?.parse().ok()?;
        Some((status, text))
    }
}

/// Fails the test unless `future` finishes within `limit` plus [`SLACK`].
async fn within<T>(what: &str, limit: Duration, future: impl Future<Output = T>) -> T {
    let started = Instant::now();
    match tokio::time::timeout(limit + SLACK, future).await {
        Ok(value) => value,
        Err(_) => panic!(
            "{what}: not within {} s (+{} s slack), gave up after {:.1} s",
            limit.as_secs(),
            SLACK.as_secs(),
            started.elapsed().as_secs_f64()
        ),
    }
}

/// The HTTP/2 client preface and an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Idle connections (HTTP/1.1 and HTTP/2, that never send a request) and slow-header ones are
/// closed within their timeouts. Before: 500 slow-header and 20 idle connections were all still
/// open after 75 s.
#[tokio::test(flavor = "multi_thread")]
async fn idle_and_slow_header_connections_are_closed() {
    let pki = TestPki::new("hardening-idle");
    let header_timeout = Duration::from_secs(2);
    let idle_timeout = Duration::from_secs(3);
    let running = start_gateway(
        &pki,
        &[],
        "[limits]\nheader_read_timeout_seconds = 2\nidle_timeout_seconds = 3\n",
    )
    .await;
    let addr = running.addr();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let h1 = raw_tls(&pki, None, b"http/1.1");
        let h2 = raw_tls(&pki, None, b"h2");
        tasks.spawn(async move {
            let mut raw = Raw::connect(addr, if i % 2 == 0 { h1 } else { h2 })
                .await
                .expect("the handshake");
            if i % 2 == 1 {
                raw.send(H2_PREFACE).await.expect("the preface");
            }
            within(
                "an idle connection is closed",
                idle_timeout,
                raw.until_closed(),
            )
            .await;
        });
    }
    for _ in 0..100 {
        let config = raw_tls(&pki, None, b"http/1.1");
        tasks.spawn(async move {
            let mut raw = Raw::connect(addr, config).await.expect("the handshake");
            raw.send(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
                .await
                .expect("the first line");
            let slow = async {
                loop {
                    tokio::select! {
                        received = raw.recv() => if received.is_none() { return },
                        () = tokio::time::sleep(Duration::from_millis(300)) => {
                            if raw.send(b"X-Slow: 1\r\n").await.is_err() {
                                return;
                            }
                        }
                    }
                }
            };
            within("a slow-header connection is closed", header_timeout, slow).await;
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("every connection was closed in time");
    }
    // The gateway still answers.
    let reply = BureauClient::anonymous(&pki, addr).get("/healthz").await;
    assert_eq!(reply.status, StatusCode::OK);
    running.shutdown().await;
}

/// With `max_connections` connections open on `listen`, the next one is not accepted (it waits
/// in the backlog, costing nothing), while operators and health checks still get through on
/// `admin_listen`; when one connection closes, the waiting one is served.
#[tokio::test(flavor = "multi_thread")]
async fn the_connection_limit_leaves_the_admin_listener_to_operators_and_health_checks() {
    let pki = TestPki::new("hardening-limit");
    let running = start_gateway(
        &pki,
        &[],
        "admin_listen = \"127.0.0.1:0\"\n\
         [limits]\nmax_connections = 8\nadmin_max_connections = 4\nidle_timeout_seconds = 300\n",
    )
    .await;
    let addr = running.addr();
    let admin = running.admin_addr().expect("an admin listener");
    let mut hostile = Vec::new();
    for _ in 0..8 {
        hostile.push(
            Raw::connect(addr, raw_tls(&pki, None, b"http/1.1"))
                .await
                .expect("a connection under the limit"),
        );
    }
    let config = raw_tls(&pki, None, b"http/1.1");
    let mut waiting = tokio::spawn(Raw::connect(addr, config));
    assert!(
        tokio::time::timeout(HELD_BACK, &mut waiting).await.is_err(),
        "a ninth connection was accepted past max_connections = 8"
    );

    // The admin listener has its own permits: operators and health checks get through.
    let operator = BureauClient::operator(&pki, admin);
    assert_eq!(
        operator.get("/v1/dead-letters").await.status,
        StatusCode::OK
    );
    let health = BureauClient::anonymous(&pki, admin);
    assert_eq!(health.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(health.get("/readyz").await.status, StatusCode::OK);

    // One closes: the waiting connection is accepted and served.
    drop(hostile.pop());
    let mut raw = within(
        "the waiting connection is accepted",
        Duration::ZERO,
        waiting,
    )
    .await
    .expect("the task")
    .expect("the handshake");
    raw.send(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("the request");
    let (status, _) = raw.response().await.expect("an answer");
    assert_eq!(status, 200);
    drop(hostile);
    running.shutdown().await;
}

/// A request head announcing a 16 MiB body, sent without the body, on `path`, by `identity`.
async fn headers_only(
    pki: &TestPki,
    addr: SocketAddr,
    identity: Option<(&Path, &Path)>,
    path: &str,
    content_type: &str,
) -> u16 {
    let mut raw = Raw::connect(addr, raw_tls(pki, identity, b"http/1.1"))
        .await
        .expect("the handshake");
    raw.send(
        format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n\
             Content-Length: 16777216\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .expect("the head");
    raw.response().await.expect("an answer").0
}

/// Every endpoint that takes a body checks its caller before reading a byte of it: a caller
/// without a certificate, or with the wrong one, is answered at once, though the announced body
/// never comes. Before: the gateway read (up to 16 MiB of) the body first, and a body that never
/// came was answered 408 after the request timeout.
#[tokio::test(flavor = "multi_thread")]
async fn bodies_are_not_read_before_the_caller_is_known() {
    let pki = TestPki::new("hardening-identity");
    // A request timeout far beyond the test's patience: a 408 cannot pass for an answer.
    let running = start_gateway(&pki, &[], "[limits]\nrequest_timeout_seconds = 600\n").await;
    let addr = running.addr();
    let (water_cert, water_key) = pki.bureau(BureauId::Water);
    let (transport_cert, transport_key) = pki.bureau(BureauId::Transport);
    let water = Some((water_cert.as_path(), water_key.as_path()));
    let transport = Some((transport_cert.as_path(), transport_key.as_path()));
    let multipart = "multipart/form-data; boundary=x";
    let cases = [
        (None, "/v1/messages", "application/xml", 401),
        (None, "/v1/dead-letters/replay", "application/json", 401),
        (None, "/v1/surveys", multipart, 401),
        (None, "/v1/feed/ack?cursor=1", "application/json", 401),
        (water, "/v1/dead-letters/replay", "application/json", 403),
        (water, "/v1/feed/ack?cursor=1", "application/json", 403),
        (transport, "/v1/surveys", multipart, 403),
        (None, "/v1/no-such-endpoint", "application/json", 404),
    ];
    within("every refusal is answered at once", Duration::ZERO, async {
        for (identity, path, content_type, expected) in cases {
            let status = headers_only(&pki, addr, identity, path, content_type).await;
            assert_eq!(status, expected, "{path}");
        }
    })
    .await;
    running.shutdown().await;
}

/// The body-budget gauge, read from the operator's `/metrics` (process-wide: every gateway of
/// this test binary adds to it).
async fn reserved_body_bytes(operator: &BureauClient) -> f64 {
    let page = operator.get("/metrics").await;
    String::from_utf8_lossy(&page.body)
        .lines()
        .find_map(|line| line.strip_prefix("gateway_request_body_bytes_reserved "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Request bodies held in memory are bounded across requests: two bureaus' bodies that reserve
/// the whole budget hold back a third message until one of them ends. Before: no budget at all.
#[tokio::test(flavor = "multi_thread")]
async fn the_in_flight_body_budget_holds_back_what_does_not_fit() {
    let pki = TestPki::new("hardening-budget");
    let running = start_gateway(
        &pki,
        &[],
        "[limits]\nmax_body_bytes = 262144\nmax_in_flight_body_bytes = 524288\n",
    )
    .await;
    let addr = running.addr();
    let operator = BureauClient::operator(&pki, addr);
    let before = reserved_body_bytes(&operator).await;
    let (cert, key) = pki.bureau(BureauId::Water);
    let mut hogs = Vec::new();
    for _ in 0..2 {
        let mut raw = Raw::connect(addr, raw_tls(&pki, Some((&cert, &key)), b"http/1.1"))
            .await
            .expect("the handshake");
        raw.send(
            b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/xml\r\n\
              Content-Length: 262144\r\n\r\n<?xml",
        )
        .await
        .expect("the head");
        hogs.push(raw);
    }
    wait_until("both bodies reserved the budget", async || {
        reserved_body_bytes(&operator).await >= before + 524_288.0
    })
    .await;

    let water = BureauClient::new(&pki, addr, BureauId::Water);
    let mut rng = fastrand::Rng::with_seed(9);
    let event = case_event(
        &mut rng,
        BureauId::Water,
        Item::WaterSupplyConnection,
        CaseStatus::Accepted,
    );
    let mut third = tokio::spawn(async move { water.send(&event).await });
    assert!(
        tokio::time::timeout(HELD_BACK, &mut third).await.is_err(),
        "a third body was read beyond max_in_flight_body_bytes"
    );
    drop(hogs.pop());
    let reply = within(
        "the third message is read once a body ends",
        Duration::ZERO,
        third,
    )
    .await
    .expect("the task");
    reply.receipt();
    drop(hogs);
    running.shutdown().await;
}

/// The start of a survey upload by the publisher: the multipart head and the metadata part's
/// head, announcing `content_length` bytes in all.
async fn upload_start(pki: &TestPki, addr: SocketAddr, content_length: usize) -> Raw {
    let (cert, key) = pki.bureau(BureauId::Planning);
    let mut raw = Raw::connect(addr, raw_tls(pki, Some((&cert, &key)), b"http/1.1"))
        .await
        .expect("the handshake");
    raw.send(
        format!(
            "POST /v1/surveys HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: multipart/form-data; boundary=hardening\r\n\
             Content-Length: {content_length}\r\n\r\n\
             --hardening\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\
             Content-Type: application/json\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .expect("the head");
    raw
}

/// The survey metadata part is refused with 413 as soon as it passes 1 MiB, while the rest of it
/// has not been sent. Before: the part was read whole first (a 200 MiB part grew the gateway's
/// memory by 177 MiB before the 413).
#[tokio::test(flavor = "multi_thread")]
async fn the_survey_metadata_part_is_limited_while_it_streams() {
    let pki = TestPki::new("hardening-metadata");
    let running = start_gateway(&pki, &[], "[surveys]\nupload_stall_seconds = 600\n").await;
    let mut raw = upload_start(&pki, running.addr(), 200 << 20).await;
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..(1 << 20) / chunk.len() + 2 {
        if raw.send(&chunk).await.is_err() {
            break;
        }
    }
    let (status, text) = within("the 413", Duration::ZERO, raw.response())
        .await
        .expect("an answer");
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    running.shutdown().await;
}

/// An upload that stops sending is cut off after `upload_stall_seconds` with 408, not held for
/// `upload_timeout_seconds`. Before: held for up to an hour.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_upload_is_cut_off() {
    let pki = TestPki::new("hardening-stall");
    let running = start_gateway(&pki, &[], "[surveys]\nupload_stall_seconds = 2\n").await;
    let mut raw = upload_start(&pki, running.addr(), 10 << 20).await;
    raw.send(b"{\"project\":").await.expect("some metadata");
    let (status, text) = within(
        "the stalled upload is answered",
        Duration::from_secs(2),
        raw.response(),
    )
    .await
    .expect("an answer");
    assert_eq!(status, 408, "{text}");
    assert!(text.contains("no upload progress"), "{text}");
    within(
        "its connection is closed",
        Duration::ZERO,
        raw.until_closed(),
    )
    .await;
    running.shutdown().await;
}

/// Two `Host` headers are refused with 400 problem+json (RFC 9112). Before: answered 200.
#[tokio::test(flavor = "multi_thread")]
async fn two_host_headers_are_refused() {
    let pki = TestPki::new("hardening-host");
    let running = start_gateway(&pki, &[], "").await;
    let mut raw = Raw::connect(running.addr(), raw_tls(&pki, None, b"http/1.1"))
        .await
        .expect("the handshake");
    raw.send(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nHost: example.com\r\n\r\n")
        .await
        .expect("the request");
    let (status, text) = raw.response().await.expect("an answer");
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    // One Host header is fine.
    let mut raw = Raw::connect(running.addr(), raw_tls(&pki, None, b"http/1.1"))
        .await
        .expect("the handshake");
    raw.send(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("the request");
    assert_eq!(raw.response().await.expect("an answer").0, 200);
    running.shutdown().await;
}

/// The TLS-handshake refusals counted with `reason="revoked"`, from the operator's `/metrics`.
async fn revoked_refusals(operator: &BureauClient) -> f64 {
    let page = operator.get("/metrics").await;
    String::from_utf8_lossy(&page.body)
        .lines()
        .find_map(|line| {
            line.strip_prefix("gateway_tls_handshakes_refused_total{reason=\"revoked\"} ")
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Whether a fresh connection of `bureau` gets an HTTP answer (any status) from the gateway.
async fn answered(pki: &TestPki, addr: SocketAddr, bureau: BureauId) -> bool {
    BureauClient::new(pki, addr, bureau)
        .try_request("GET", "/v1/surveys/none", &[], Vec::new())
        .await
        .is_ok()
}

/// A bureau whose certificate is revoked (`gateway pki revoke water`, i.e. `pki::revoke`) is
/// refused at the handshake once the gateway reloads the CRL (no restart), and the refusal is
/// counted; pushes to a revoked receiver stop too, while everyone else carries on. Before: no
/// CRL support, a leaked key could not be locked out.
#[tokio::test(flavor = "multi_thread")]
async fn revoked_certificates_are_refused_at_the_handshake_and_for_pushes() {
    let pki = TestPki::new("hardening-revoke");
    let dir = &pki.layout().dir;
    let week = SystemTime::now() + Duration::from_secs(7 * 86_400);
    let crl = gateway::net::pki::sign_crl(dir, week).expect("an empty CRL");
    assert_eq!(crl.revoked, 0);
    let greenery = Receiver::start(&pki, BureauId::Greenery, Behaviour::Healthy).await;
    let transport = Receiver::start(&pki, BureauId::Transport, Behaviour::Healthy).await;
    let running = start_gateway(
        &pki,
        &[&greenery, &transport],
        &format!(
            "[tls]\ncrl_files = [\"{}\"]\ncrl_check_interval_seconds = 1\n",
            crl.path.display()
        ),
    )
    .await;
    let addr = running.addr();
    let operator = BureauClient::operator(&pki, addr);
    assert!(answered(&pki, addr, BureauId::Water).await);
    let refused_before = revoked_refusals(&operator).await;

    // Transport's receiving endpoint leaked its key; the water bureau's too. Transport is
    // revoked first: the gateway may load the CRL between the two writes, and once water is
    // refused the CRL it loaded must already name transport, or the push below could succeed.
    let first = gateway::net::pki::revoke(dir, "transport").expect("revoke transport");
    assert!(first.added);
    let both = gateway::net::pki::revoke(dir, "water").expect("revoke water");
    assert_eq!((both.revoked, both.number), (2, crl.number + 2));
    assert!(
        !gateway::net::pki::revoke(dir, "water")
            .expect("again")
            .added
    );

    wait_until("water is refused at the handshake", async || {
        !answered(&pki, addr, BureauId::Water).await
    })
    .await;
    // Each try is a fresh handshake: one that met the CRL mid-reload still counts the next.
    wait_until("water's refusals are counted as revoked", async || {
        let refused = !answered(&pki, addr, BureauId::Water).await;
        refused && revoked_refusals(&operator).await > refused_before
    })
    .await;
    // Others are not affected.
    assert!(answered(&pki, addr, BureauId::Planning).await);
    assert_eq!(
        operator.get("/v1/dead-letters").await.status,
        StatusCode::OK
    );

    // Planning's granted permit goes to greenery, and not to the revoked transport endpoint:
    // the push to it fails at the handshake and is retried.
    let planning = BureauClient::new(&pki, addr, BureauId::Planning);
    let mut rng = fastrand::Rng::with_seed(5);
    let event = case_event(
        &mut rng,
        BureauId::Planning,
        Item::ConstructionPlanningPermit,
        CaseStatus::Approved,
    );
    planning.send(&event).await.receipt();
    wait_until("greenery receives the permit", async || {
        !greenery.received().is_empty()
    })
    .await;
    wait_until("the push to transport failed", async || {
        let stats = running.store().queue_stats().await.expect("stats");
        stats
            .iter()
            .any(|s| s.subscriber == BureauId::Transport && s.failed_attempts > 0)
    })
    .await;
    assert!(
        transport.received().is_empty(),
        "a revoked receiver was pushed to"
    );
    running.shutdown().await;
}

/// `/readyz` warns about a CRL past its next update, and stays ready (the CRL still applies).
#[tokio::test(flavor = "multi_thread")]
async fn readyz_warns_about_a_stale_crl() {
    let pki = TestPki::new("hardening-stale-crl");
    let dir = &pki.layout().dir;
    let past = SystemTime::now() - Duration::from_secs(3600);
    let crl = gateway::net::pki::sign_crl(dir, past).expect("a stale CRL");
    let running = start_gateway(
        &pki,
        &[],
        &format!("[tls]\ncrl_files = [\"{}\"]\n", crl.path.display()),
    )
    .await;
    let reply = BureauClient::anonymous(&pki, running.addr())
        .get("/readyz")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    let warnings = body["warnings"].as_array().expect("warnings");
    // Besides the CRL, from 1 November the calendar may lack next year's notice.
    let crl: Vec<_> = warnings
        .iter()
        .filter(|w| w.as_str().is_some_and(|w| w.starts_with("CRL")))
        .collect();
    assert_eq!(crl.len(), 1, "{body}");
    assert!(
        crl[0]
            .as_str()
            .is_some_and(|w| w.contains("past its next update")),
        "{body}"
    );
    running.shutdown().await;
}

/// The config file of a child gateway of this test: the test layer with `tls` added to its
/// `[tls]` table, and `extra` (tables the test layer does not have).
fn child_config(pki: &TestPki, tls: &str, extra: &str) -> std::path::PathBuf {
    let path = pki.root().join("child.toml");
    let layer = pki
        .config_toml(&[])
        .replacen("[tls]\n", &format!("[tls]\n{tls}"), 1);
    std::fs::write(&path, format!("{layer}\n{extra}")).expect("the config");
    path
}

/// SIGHUP reloads the CRL at once (the periodic check is an hour away here).
#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_crl() {
    let pki = TestPki::new("hardening-sighup");
    let dir = &pki.layout().dir;
    let week = SystemTime::now() + Duration::from_secs(7 * 86_400);
    let crl = gateway::net::pki::sign_crl(dir, week).expect("an empty CRL");
    let config = child_config(
        &pki,
        &format!(
            "crl_files = [\"{}\"]\ncrl_check_interval_seconds = 3600\n",
            crl.path.display()
        ),
        "",
    );
    let mut child = ChildGateway::spawn(&config);
    child.wait_ready(&pki).await;
    assert!(answered(&pki, child.addr, BureauId::Water).await);
    gateway::net::pki::revoke(dir, "water").expect("revoke water");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &child.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    wait_until("water is refused after SIGHUP", async || {
        !answered(&pki, child.addr, BureauId::Water).await
    })
    .await;
    assert!(answered(&pki, child.addr, BureauId::Planning).await);
    child.sigkill();
}

/// The peak resident set size (`VmHWM`) of process `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// Connections of the hostile load.
const HOSTILE_CONNECTIONS: usize = 512;
/// The child's `limits.max_header_bytes` (the default), `limits.http2_window_bytes` (the
/// default) and `limits.max_in_flight_body_bytes`, in KiB.
const MAX_HEADER_KIB: u64 = 64;
const HTTP2_WINDOW_KIB: u64 = 256;
const BODY_BUDGET_KIB: u64 = 16 * 1024;
/// The bound documented in `config.default.toml`, for this test's limits: 64 MiB for the
/// process, per connection its header buffer, HTTP/2 window and 40 KiB of TLS buffers, and the
/// body budget twice (the bytes read and the message's copy for the store).
const PEAK_RSS_BOUND_KIB: u64 = 64 * 1024
    + HOSTILE_CONNECTIONS as u64 * (MAX_HEADER_KIB + HTTP2_WINDOW_KIB + 40)
    + 2 * BODY_BUDGET_KIB;

/// Unauthenticated traffic costs almost nothing: a child gateway with `max_connections = 512`
/// under idle, slow-header, header-stuffing, unauthenticated-body and HTTP/2 DATA floods, and
/// bureaus sending within a 16 MiB body budget, stays within the documented memory bound and
/// keeps answering its operator. Prints the measured peak.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_load_stays_within_the_documented_memory_bound() {
    let pki = TestPki::new("hardening-rss");
    let config = child_config(
        &pki,
        "",
        "[limits]\nmax_connections = 512\nidle_timeout_seconds = 120\n\
         header_read_timeout_seconds = 60\nrequest_timeout_seconds = 120\n\
         max_body_bytes = 4194304\nmax_in_flight_body_bytes = 16777216\n",
    );
    let mut child = ChildGateway::spawn(&config);
    child.wait_ready(&pki).await;
    let addr = child.addr;
    let idle_kib = peak_rss_kib(child.pid());

    let mut tasks = tokio::task::JoinSet::new();
    let (release, released) = tokio::sync::watch::channel(false);
    for i in 0..HOSTILE_CONNECTIONS {
        let anonymous_h1 = raw_tls(&pki, None, b"http/1.1");
        let anonymous_h2 = raw_tls(&pki, None, b"h2");
        let mut released = released.clone();
        tasks.spawn(async move {
            let Ok(mut raw) = Raw::connect(
                addr,
                if i % 4 == 3 { anonymous_h2 } else { anonymous_h1 },
            )
            .await
            else {
                return;
            };
            let _ = match i % 4 {
                // Idle after the handshake.
                0 => Ok(()),
                // A head stuffed with headers, never finished.
                1 => {
                    let mut head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n".to_vec();
                    while head.len() < 60 * 1024 {
                        head.extend_from_slice(b"X-Stuffing: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
                    }
                    raw.send(&head).await
                }
                // A body without a certificate: 16 MiB announced, 1 MiB sent.
                2 => {
                    let _ = raw
                        .send(
                            b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\n\
                              Content-Type: application/xml\r\nContent-Length: 16777216\r\n\r\n",
                        )
                        .await;
                    let chunk = vec![b'a'; 64 * 1024];
                    for _ in 0..16 {
                        if raw.send(&chunk).await.is_err() {
                            break;
                        }
                    }
                    Ok(())
                }
                // HTTP/2: a request on stream 1 without a certificate, with DATA to the window.
                _ => raw.send(&h2_flood()).await,
            };
            let _ = released.wait_for(|r| *r).await;
            drop(raw);
        });
    }
    // Bureaus' messages within the budget, while the flood holds its connections.
    let mut bureaus = tokio::task::JoinSet::new();
    for i in 0..8 {
        let client = BureauClient::new(&pki, addr, BureauId::Water);
        bureaus.spawn(async move {
            let mut rng = fastrand::Rng::with_seed(i);
            let event = case_event(
                &mut rng,
                BureauId::Water,
                Item::WaterSupplyConnection,
                CaseStatus::Accepted,
            );
            // A message padded to 2 MiB: refused by its adapter's own size limit after the
            // gateway read it, so it did occupy the body budget.
            let mut body = client.encode(&event).body;
            body.resize(2 << 20, b' ');
            client
                .try_request(
                    "POST",
                    "/v1/messages",
                    &[("content-type", "application/xml")],
                    body,
                )
                .await
                .map(|reply| reply.status)
        });
    }
    while let Some(result) = bureaus.join_next().await {
        let _ = result.expect("the bureau task");
    }
    // The peak under the flood, measured while it still holds its connections.
    let peak_kib = peak_rss_kib(child.pid());
    let _ = release.send(true);
    while tasks.join_next().await.is_some() {}
    let operator = BureauClient::operator(&pki, addr);
    assert_eq!(
        operator.get("/v1/dead-letters").await.status,
        StatusCode::OK
    );
    println!(
        "hostile load: {HOSTILE_CONNECTIONS} connections; child gateway peak RSS (VmHWM) {:.1} MiB \
         (idle {:.1} MiB), documented bound {:.1} MiB",
        peak_kib as f64 / 1024.0,
        idle_kib as f64 / 1024.0,
        PEAK_RSS_BOUND_KIB as f64 / 1024.0
    );
    assert!(
        peak_kib < PEAK_RSS_BOUND_KIB,
        "peak RSS {peak_kib} KiB is above the documented bound {PEAK_RSS_BOUND_KIB} KiB"
    );
    child.sigkill();
}

/// An HTTP/2 connection's opening: the preface and SETTINGS, a POST to `/v1/messages` on stream
/// 1 (HPACK literals without Huffman coding) announcing 16 MiB, and 256 KiB of DATA.
fn h2_flood() -> Vec<u8> {
    fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let len = payload.len() as u32;
        out.extend_from_slice(&len.to_be_bytes()[1..]);
        out.push(kind);
        out.push(flags);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
    }
    fn literal(block: &mut Vec<u8>, index: u8, value: &str) {
        // Literal without indexing, indexed name (4-bit prefix; index < 15 here).
        block.push(index);
        block.push(value.len() as u8);
        block.extend_from_slice(value.as_bytes());
    }
    let mut out = H2_PREFACE.to_vec();
    let mut block = vec![0x83, 0x87]; // :method POST, :scheme https
    literal(&mut block, 0x04, "/v1/messages"); // :path
    literal(&mut block, 0x01, "localhost"); // :authority
    // content-length (static index 28): 4-bit prefix 15, then 13.
    block.extend_from_slice(&[0x0f, 0x0d]);
    block.push(8);
    block.extend_from_slice(b"16777216");
    frame(&mut out, 0x1, 0x4, 1, &block); // HEADERS, END_HEADERS
    let data = vec![b'a'; 16 * 1024];
    for _ in 0..16 {
        frame(&mut out, 0x0, 0x0, 1, &data);
    }
    out
}
