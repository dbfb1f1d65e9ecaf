//! What every handler shares.

use std::sync::Arc;

use crate::clock::Millis;
use crate::config::Config;
use crate::delivery::Wakers;
use crate::ops::Activity;
use crate::routing::RouteTable;
use crate::surveys::blobs::BlobStore;

/// What every handler shares.
pub struct AppState<S> {
    /// The configuration.
    pub config: Arc<Config>,
    /// The store.
    pub store: S,
    /// The routes.
    pub routes: RouteTable,
    /// The one-stop flows (which events they look at; the joint cases' clocks).
    pub flows: crate::flows::FlowTable,
    /// New-work signals.
    pub wakers: Arc<Wakers>,
    /// Survey files.
    pub blobs: BlobStore,
    /// What this node sees of each bureau (reported to the store for the operator view).
    pub activity: Arc<Activity>,
    /// The key that signs the dashboard's form tokens (CSRF), shared by every node of the store.
    pub form_key: Vec<u8>,
    /// When this node started.
    pub started_at: Millis,
}
