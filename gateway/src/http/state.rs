//! What every handler shares.

use std::sync::Arc;

use crate::config::Config;
use crate::delivery::Wakers;
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
    /// New-work signals.
    pub wakers: Arc<Wakers>,
    /// Survey files.
    pub blobs: BlobStore,
}
