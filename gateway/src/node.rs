//! A gateway node: the parts wired together and run in the current tokio runtime — the store,
//! the HTTPS listener with the router, the delivery engine, the wake-ups from other nodes and
//! the retention cleanup — with one graceful shutdown. `serve`, `demo` and the tests all start
//! a node through [`start`] or [`start_on`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::clock::now_ms;
use crate::config::{Config, DeliveryMode};
use crate::delivery::{DeliveryEngine, Wakers};
use crate::http::{self, AppState};
use crate::net::tls::{PushVerifier, TlsFiles};
use crate::net::{listener, tls};
use crate::ops::Activity;
use crate::routing::RouteTable;
use crate::store::Store;
use crate::store::any::AnyStore;
use crate::surveys::blobs::BlobStore;

/// Why a gateway node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A certificate or key could not be loaded.
    #[error("TLS: {0}")]
    Tls(#[from] crate::net::tls::TlsError),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The configuration is invalid.
    #[error("config: {0}")]
    Config(#[from] crate::config::ConfigError),
    /// The listening address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The node's key cannot sign audit checkpoints.
    #[error("audit: {0}")]
    Audit(#[from] crate::audit::sign::SignError),
    /// The system's random number generator failed.
    #[error("the system's random number generator failed")]
    Random,
}

/// A running gateway node.
pub struct Running {
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    store: AnyStore,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    admin_server: Option<JoinHandle<()>>,
    engine: JoinHandle<()>,
}

impl Running {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of its operations listener (`admin_listen`), if it has one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Its store.
    pub fn store(&self) -> &AnyStore {
        &self.store
    }

    /// Stops accepting, lets open requests finish (up to 10 s) and stops the delivery workers.
    pub async fn shutdown(self) {
        // Fails only when every receiver is gone, i.e. the tasks have ended already.
        let _ = self.shutdown.send(true);
        let tasks = [
            Some(("listener", self.server)),
            self.admin_server.map(|t| ("admin listener", t)),
            Some(("delivery engine", self.engine)),
        ];
        for (task, handle) in tasks.into_iter().flatten() {
            if let Err(error) = handle.await {
                tracing::error!(
                    message = "a node task ended abnormally",
                    task,
                    error = &error as &dyn std::error::Error
                );
            }
        }
    }
}

/// Starts a node on `config.listen`.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    start_on(config, listener).await
}

/// Starts a node on an already bound listener (tests bind `127.0.0.1:0`).
pub async fn start_on(config: Config, listener: TcpListener) -> Result<Running, StartError> {
    config.validate()?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let admin_listener = match config.admin_listen {
        Some(admin) => Some(
            TcpListener::bind(admin)
                .await
                .map_err(|source| StartError::Bind {
                    addr: admin,
                    source,
                })?,
        ),
        None => None,
    };
    let admin_addr = match &admin_listener {
        Some(admin) => Some(admin.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?),
        None => None,
    };
    let files = config.tls_files();
    let server_tls = tls::node_server_config(&files)?;
    let (client_tls, push_verifier) = tls::push_client_config(&files)?;
    let store = AnyStore::open(&config.store_location()?, config.postgres.pool_size).await?;
    take_back_leases(&store, &config.node).await?;
    let config = Arc::new(config);
    let pull = config
        .bureaus
        .iter()
        .filter(|(_, b)| b.delivery == DeliveryMode::Pull)
        .map(|(id, _)| *id);
    let wakers = Arc::new(Wakers::new(pull));
    let activity = Arc::new(Activity::default());
    let flows = crate::flows::FlowTable::new(&config, config.calendar()?);
    let state = Arc::new(AppState {
        config: config.clone(),
        store: store.clone(),
        routes: RouteTable::new(config.routes.clone()),
        flows: flows.clone(),
        wakers: wakers.clone(),
        blobs: BlobStore::new(config.surveys.blob_dir.clone()),
        activity: activity.clone(),
        form_key: form_key(&store).await?.into_bytes(),
        started_at: now_ms(),
    });
    crate::metrics::handle();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let engine = DeliveryEngine::new(
        store.clone(),
        config.clone(),
        wakers.clone(),
        activity.clone(),
        (*client_tls).clone(),
    );
    let engine = tokio::spawn(engine.run(shutdown_rx.clone()));
    if let Some(notifications) = store.work_notifications() {
        tokio::spawn(forward_notifications(notifications, wakers.clone()));
    }
    tokio::spawn(clean_up(store.clone(), config.clone(), shutdown_rx.clone()));
    tokio::spawn(crate::audit::checkpoint::run(
        store.clone(),
        crate::audit::sign::NodeSigner::load(&config.node, &files)?,
        config.audit.checkpoint_dir.clone(),
        Duration::from_secs(config.audit.checkpoint_interval_seconds),
        shutdown_rx.clone(),
    ));
    tokio::spawn(
        crate::flows::engine::FlowEngine::new(store.clone(), flows, Some(wakers.clone())).run(
            Duration::from_secs(config.clocks.check_interval_seconds),
            shutdown_rx.clone(),
        ),
    );
    tokio::spawn(crate::ops::report::run(
        store.clone(),
        config.clone(),
        activity,
        shutdown_rx.clone(),
    ));
    let (server_tls, tls_updates) = watch::channel(server_tls);
    tokio::spawn(reload_tls(
        files,
        server_tls,
        push_verifier,
        Duration::from_secs(config.tls.crl_check_interval_seconds),
        shutdown_rx.clone(),
    ));
    let router = http::router(state);
    let stopped = |mut shutdown: watch::Receiver<bool>| async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    let server = tokio::spawn(listener::serve_with(
        listener,
        tls_updates.clone(),
        router.clone(),
        stopped(shutdown_rx.clone()),
        config.listener_limits(),
    ));
    let admin_server = admin_listener.map(|admin| {
        tokio::spawn(listener::serve_with(
            admin,
            tls_updates,
            router,
            stopped(shutdown_rx),
            config.admin_limits(),
        ))
    });
    tracing::info!(message = "gateway started", node = %config.node, %addr, admin = ?admin_addr);
    Ok(Running {
        addr,
        admin_addr,
        store,
        shutdown,
        server,
        admin_server,
        engine,
    })
}

/// The key of the dashboard's form tokens: one per store, so a form a node served can be
/// posted to any node of it (several nodes behind one address).
async fn form_key(store: &AnyStore) -> Result<String, StartError> {
    let mut candidate = [0u8; 32];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut candidate)
        .map_err(|_| StartError::Random)?;
    let candidate = candidate.iter().map(|b| format!("{b:02x}")).collect();
    Ok(store.shared_secret("dashboard-form-key", candidate).await?)
}

/// What the TLS files hold now, to notice a change: a digest of each file's content (or of its
/// absence).
fn fingerprint(files: &TlsFiles) -> Vec<[u8; 32]> {
    use sha2::{Digest, Sha256};
    [&files.ca, &files.cert, &files.key]
        .into_iter()
        .chain(&files.crls)
        .map(|path| match std::fs::read(path) {
            Ok(bytes) => Sha256::digest(&bytes).into(),
            Err(_) => [0; 32],
        })
        .collect()
}

/// Reloads the TLS files when one of them changed (checked every `interval`) or on SIGHUP: the
/// listener's next handshakes use the new server configuration and the push client's the new
/// CRLs. A set of files that does not load leaves the previous configuration in force; the
/// error is logged once per change of the files.
async fn reload_tls(
    files: TlsFiles,
    server: watch::Sender<Arc<rustls::ServerConfig>>,
    push: Arc<PushVerifier>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(error) => {
            tracing::warn!(
                message = "SIGHUP does not reload TLS; the files are still checked",
                error = &error as &dyn std::error::Error
            );
            None
        }
    };
    let mut seen = fingerprint(&files);
    loop {
        let hangup = async {
            let received = match hangups.as_mut() {
                Some(signal) => signal.recv().await,
                None => None,
            };
            if received.is_none() {
                std::future::pending::<()>().await;
            }
        };
        let forced = tokio::select! {
            () = tokio::time::sleep_until(Instant::now() + interval) => false,
            () = hangup => true,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let now = fingerprint(&files);
        if now == seen && !forced {
            continue;
        }
        seen = now;
        let reloaded = tls::node_server_config(&files).and_then(|config| {
            push.reload(&files)?;
            Ok(config)
        });
        match reloaded {
            Ok(config) => {
                server.send_replace(config);
                tracing::info!(
                    message = "TLS configuration reloaded",
                    crl_files = files.crls.len(),
                    on_sighup = forced
                );
            }
            Err(error) => tracing::error!(
                message = "TLS files not reloaded; the previous configuration stays in force",
                error = &error as &dyn std::error::Error
            ),
        }
    }
}

/// A node restarting after a crash takes back, at once, the deliveries its previous run had
/// leased, instead of waiting for each lease to expire: it claims its name (so that no other
/// live node of that name has its leases taken; node names must be unique), then releases the
/// leases recorded under it, before its workers start. If the name is held by another session,
/// nothing is released: those leases come back when they expire, as before.
async fn take_back_leases(store: &AnyStore, node: &str) -> Result<(), crate::store::StoreError> {
    const BATCH: usize = 1_000;
    // After a crash the database sees the previous run's connection close at once, but may
    // take a moment to end its session and the claim with it.
    const CLAIM_TRIES: u32 = 30;
    let mut claimed = store.claim_node(node).await?;
    for _ in 1..CLAIM_TRIES {
        if claimed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        claimed = store.claim_node(node).await?;
    }
    if !claimed {
        tracing::warn!(
            message = "another live session holds this node's name: its leases are left to \
                       expire. Node names must be unique; if no other node is named so, the \
                       database has not yet noticed that this node's previous run is gone",
            node
        );
        return Ok(());
    }
    let mut released = 0;
    loop {
        let batch = store.release_leases(node, now_ms(), BATCH).await?;
        released += batch;
        if batch < BATCH as u64 {
            break;
        }
    }
    if released > 0 {
        tracing::info!(
            message = "took back the deliveries the previous run of this node had leased",
            node,
            released
        );
    }
    Ok(())
}

/// Wakes this node's workers and long-polls when another node commits new work.
async fn forward_notifications(mut notifications: watch::Receiver<u64>, wakers: Arc<Wakers>) {
    while notifications.changed().await.is_ok() {
        wakers.wake_all();
    }
}

/// Deletes delivered rows older than the retention period, now and then. With several nodes
/// the store lets only one clean at a time.
async fn clean_up(store: AnyStore, config: Arc<Config>, mut shutdown: watch::Receiver<bool>) {
    const BATCH: usize = 10_000;
    let interval = Duration::from_secs(config.retention.cleanup_interval_seconds);
    let retention_ms = (config.retention.delivered_hours * 3_600_000) as i64;
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        loop {
            match store.cleanup(now_ms() - retention_ms, BATCH).await {
                Ok(deleted) if deleted as usize == BATCH => continue,
                Ok(deleted) => {
                    if deleted > 0 {
                        tracing::info!(message = "cleaned up delivered rows", deleted);
                    }
                    break;
                }
                Err(error) => {
                    error.count();
                    tracing::warn!(
                        message = "cleanup failed; will try again",
                        error = &error as &dyn std::error::Error
                    );
                    break;
                }
            }
        }
    }
}
