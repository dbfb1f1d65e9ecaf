//! A push bureau's receiving endpoint: HTTPS with the bureau's certificate, a client certificate
//! of the exchange CA required, and only the gateway may deliver. Each delivery is decoded in
//! the bureau's own format with its adapter and recorded in the endpoint's [`Inbox`]; how it
//! answers can be switched while it runs (healthy, refusing some or all, down).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::error::SimError;
use super::inbox::Inbox;
use crate::delivery::batch::{BATCH_ID_HEADER, BatchResults, ItemResult};
use crate::net::pki::PkiLayout;
use crate::net::{Identity, Peer};

/// How long open connections may finish their requests when the endpoint stops.
const DRAIN: Duration = Duration::from_secs(1);

/// How long [`Endpoint::set`] keeps trying to listen on its port again after being down (the
/// port is normally free at once; a busy machine may hold it a moment).
const REBIND_WAIT: Duration = Duration::from_secs(60);

/// How an endpoint answers deliveries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    /// Decodes and records every delivery, answers 200.
    Healthy,
    /// Answers 503 to this share (0 to 1) of deliveries, picked at random, and counts them.
    Flaky(f64),
    /// Answers 503 to every delivery (and counts them).
    Unavailable,
    /// Not listening: connections are refused.
    Down,
}

/// What the request handler shares with the endpoint.
struct Shared {
    inbox: Arc<Inbox>,
    behaviour: Mutex<Behaviour>,
}

/// A running listener and the switch that stops it.
type Server = (watch::Sender<bool>, JoinHandle<()>);

/// A push bureau's receiving endpoint on a loopback port that stays the same while it goes
/// down and comes back.
pub struct Endpoint {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    server: Mutex<Option<Server>>,
}

impl Endpoint {
    /// Starts the endpoint of `inbox`'s bureau, with that bureau's certificate from `pki`, on a
    /// free loopback port; with [`Behaviour::Down`] the port is only reserved. Deliveries are
    /// recorded in `inbox` (the caller keeps a handle to read it, or uses [`Self::inbox`]).
    pub async fn start(
        pki: &PkiLayout,
        inbox: Arc<Inbox>,
        behaviour: Behaviour,
    ) -> Result<Self, SimError> {
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        let listener = TcpListener::bind(any)
            .await
            .map_err(|source| SimError::Bind { addr: any, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SimError::Bind { addr: any, source })?;
        let (cert, key) = pki.bureau(inbox.bureau());
        let endpoint = Self {
            shared: Arc::new(Shared {
                inbox,
                behaviour: Mutex::new(behaviour),
            }),
            addr,
            tls: crate::net::tls::endpoint_server_config(&pki.ca, &cert, &key)?,
            server: Mutex::new(None),
        };
        if behaviour == Behaviour::Down {
            drop(listener);
        } else {
            endpoint.serve(listener);
        }
        Ok(endpoint)
    }

    /// The bureau whose endpoint this is.
    pub fn bureau(&self) -> schemas::BureauId {
        self.shared.inbox.bureau()
    }

    /// The URL to configure as the bureau's `endpoint`.
    pub fn url(&self) -> String {
        format!("https://{}/inbox", self.addr)
    }

    /// What it received.
    pub fn inbox(&self) -> &Arc<Inbox> {
        &self.shared.inbox
    }

    fn server(&self) -> std::sync::MutexGuard<'_, Option<Server>> {
        self.server.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn serve(&self, listener: TcpListener) {
        let router = Router::new()
            .route("/inbox", post(deliver))
            .with_state(self.shared.clone());
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(crate::net::listener::serve(
            listener,
            self.tls.clone(),
            router,
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
            DRAIN,
        ));
        *self.server() = Some((stop, task));
    }

    /// Changes how it answers: `Down` closes the port (after open requests finish), anything
    /// else answers from now on, listening again on the same port if it was down.
    pub async fn set(&self, behaviour: Behaviour) -> Result<(), SimError> {
        *self
            .shared
            .behaviour
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = behaviour;
        let running = self.server().take();
        match (behaviour, running) {
            (Behaviour::Down, Some((stop, task))) => {
                let _ = stop.send(true);
                let _ = task.await;
            }
            (Behaviour::Down, None) => {}
            (_, Some(running)) => *self.server() = Some(running),
            (_, None) => self.serve(self.rebind().await?),
        }
        Ok(())
    }

    async fn rebind(&self) -> Result<TcpListener, SimError> {
        let started = Instant::now();
        loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => return Ok(listener),
                Err(source) if started.elapsed() >= REBIND_WAIT => {
                    return Err(SimError::Bind {
                        addr: self.addr,
                        source,
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
    }

    /// Stops listening for good, letting open requests finish.
    pub async fn stop(&self) {
        // Down never binds, so it cannot fail.
        let _ = self.set(Behaviour::Down).await;
    }
}

/// One delivery: only the gateway may push; the behaviour may refuse it; otherwise it must
/// carry exactly one event in the bureau's own format.
async fn deliver(
    State(shared): State<Arc<Shared>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let inbox = &shared.inbox;
    if !matches!(peer.0, Some(Identity::Gateway(_))) {
        inbox.problem(format!("delivery from {:?}, not the gateway", peer.0));
        return StatusCode::FORBIDDEN.into_response();
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let bureau = inbox.bureau();
    let Some(adapter) = adapters::for_bureau(bureau) else {
        inbox.problem(format!("{bureau} has no adapter"));
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if !header(BATCH_ID_HEADER).is_empty() {
        return receive_batch(
            &shared,
            adapter,
            header(BATCH_ID_HEADER),
            &body,
            header("content-type"),
        );
    }
    let refuse = match *shared.behaviour.lock().unwrap_or_else(|p| p.into_inner()) {
        Behaviour::Healthy => false,
        Behaviour::Flaky(share) => fastrand::f64() < share,
        // Down: a request that arrived while the port was closing.
        Behaviour::Unavailable | Behaviour::Down => true,
    };
    if refuse {
        inbox.refuse();
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let checked = adapter
        .decode(&body, header("content-type"))
        .and_then(|events| {
            let sent = |name: &str| Some(header(name).to_owned()).filter(|v| !v.is_empty());
            adapter.check_message_headers(&events, &sent)?;
            Ok(events)
        });
    let answer = match checked {
        Ok(events) if events.len() == 1 => {
            let warning = Some(header("credit-warning")).filter(|w| !w.is_empty());
            inbox.record_warned(header("message-id"), warning, events);
            StatusCode::OK
        }
        Ok(events) => {
            inbox.problem(format!("a push carried {} events", events.len()));
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(e) => {
            inbox.problem(format!("undecodable in {bureau}'s format: {e}"));
            StatusCode::UNPROCESSABLE_ENTITY
        }
    };
    answer.into_response()
}

/// A batch push: decoded whole in the bureau's batch form, then answered item by item — a
/// flaky endpoint refuses each item by chance (503 in its result), an unavailable one the
/// whole request.
fn receive_batch(
    shared: &Shared,
    adapter: &dyn adapters::Adapter,
    batch_id: &str,
    body: &[u8],
    content_type: &str,
) -> Response {
    let inbox = &shared.inbox;
    let behaviour = *shared.behaviour.lock().unwrap_or_else(|p| p.into_inner());
    let share = match behaviour {
        Behaviour::Healthy => 0.0,
        Behaviour::Flaky(share) => share,
        Behaviour::Unavailable | Behaviour::Down => {
            inbox.refuse();
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let events = match adapter.decode_batch(body, content_type) {
        Ok(events) => events,
        Err(e) => {
            inbox.problem(format!(
                "batch {batch_id} undecodable in {}'s format: {e}",
                inbox.bureau()
            ));
            return StatusCode::UNPROCESSABLE_ENTITY.into_response();
        }
    };
    inbox.batch_received(events.len());
    let mut results = Vec::with_capacity(events.len());
    let mut accepted = Vec::with_capacity(events.len());
    for event in events {
        let message_id = event.message_id.as_str().to_owned();
        if fastrand::f64() < share {
            inbox.refuse();
            results.push(ItemResult {
                message_id,
                status: StatusCode::SERVICE_UNAVAILABLE.as_u16(),
                detail: Some("simulated outage of this item".into()),
            });
        } else {
            accepted.push(event);
            results.push(ItemResult {
                message_id,
                status: StatusCode::OK.as_u16(),
                detail: None,
            });
        }
    }
    inbox.record(batch_id, accepted);
    Json(BatchResults { results }).into_response()
}
