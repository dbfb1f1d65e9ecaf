//! The exchange gateway: mutual-TLS ingest, a durable store, routing, retry queues and push and
//! pull delivery, between the systems of six Shanghai bureaus.
//!
//! `ARCHITECTURE.md` at the repository root has the map and the invariants. [`start`] runs a
//! gateway node in the current tokio runtime; the binary's `serve` and `demo` and the tests all
//! go through it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub mod app;
pub mod blobs;
pub mod breaker;
pub mod config;
pub mod delivery;
pub mod demo;
pub mod identity;
pub mod metrics;
pub mod pki;
pub mod problem;
pub mod routing;
pub mod server;
pub mod store;
pub mod surveys;
pub mod tls;

use crate::app::{AppState, Wakers};
use crate::config::{Config, DeliveryMode};
use crate::delivery::DeliveryEngine;
use crate::routing::RouteTable;
use crate::store::Store;
use crate::store::any::AnyStore;

/// Why a gateway node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A certificate or key could not be loaded.
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    /// The configuration is invalid.
    #[error("config: {0}")]
    Config(#[from] config::ConfigError),
    /// The listening address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// A running gateway node.
pub struct Running {
    addr: SocketAddr,
    store: AnyStore,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    engine: JoinHandle<()>,
}

impl Running {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its store.
    pub fn store(&self) -> &AnyStore {
        &self.store
    }

    /// Stops accepting, lets open requests finish (up to 10 s) and stops the delivery workers.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        let _ = self.engine.await;
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
    let server_tls = tls::server_config(&config.tls.ca, &config.tls.cert, &config.tls.key)?;
    let client_tls = tls::client_config(&config.tls.ca, &config.tls.cert, &config.tls.key)?;
    let store = AnyStore::open(&config.store_location()?, config.postgres.pool_size).await?;
    let config = Arc::new(config);
    let pull = config
        .bureaus
        .iter()
        .filter(|(_, b)| b.delivery == DeliveryMode::Pull)
        .map(|(id, _)| *id);
    let wakers = Arc::new(Wakers::new(pull));
    let state = Arc::new(AppState {
        config: config.clone(),
        store: store.clone(),
        routes: RouteTable::new(config.routes.clone()),
        wakers: wakers.clone(),
        blobs: blobs::BlobStore::new(config.surveys.blob_dir.clone()),
    });
    metrics::handle();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let engine = DeliveryEngine::new(
        store.clone(),
        config.clone(),
        wakers.clone(),
        (*client_tls).clone(),
    );
    let engine = tokio::spawn(engine.run(shutdown_rx.clone()));
    if let Some(notifications) = store.work_notifications() {
        tokio::spawn(forward_notifications(notifications, wakers.clone()));
    }
    tokio::spawn(clean_up(store.clone(), config.clone(), shutdown_rx.clone()));
    let router = app::router(state);
    let mut server_shutdown = shutdown_rx;
    let server = tokio::spawn(server::serve(
        listener,
        server_tls,
        router,
        async move {
            let _ = server_shutdown.wait_for(|stop| *stop).await;
        },
        Duration::from_secs(10),
    ));
    tracing::info!(message = "gateway started", node = %config.node, %addr);
    Ok(Running {
        addr,
        store,
        shutdown,
        server,
        engine,
    })
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
            match store.cleanup(app::now_ms() - retention_ms, BATCH).await {
                Ok(deleted) if deleted as usize == BATCH => continue,
                Ok(deleted) => {
                    if deleted > 0 {
                        tracing::info!(message = "cleaned up delivered rows", deleted);
                    }
                    break;
                }
                Err(error) => {
                    tracing::warn!(message = "cleanup failed; will try again", %error);
                    break;
                }
            }
        }
    }
}
