//! Checkpoints: the node signs every chain's start and head with its key, at an interval, and
//! writes the checkpoint to the store and, as one JSON line, to `checkpoints.jsonl` in its
//! checkpoint folder. Rewriting a chain after the fact — even recomputing every hash — then no
//! longer matches a signed head; a prune's anchor must match a signed start.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::AuditError;
use super::sign::NodeSigner;
use crate::clock::{Millis, now_ms};
use crate::store::Store;
use crate::store::audit::{ChainState, StoredCheckpoint};

/// The signed body of a checkpoint (stored as the exact bytes signed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    /// The signing node.
    pub node: String,
    /// When it was signed.
    pub at: Millis,
    /// The signature algorithm.
    pub alg: String,
    /// Every chain's start and head.
    pub chains: Vec<ChainState>,
}

impl Body {
    /// Parses a stored body.
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("checkpoint body does not parse: {e}"))
    }
}

/// The name of the checkpoint file in the checkpoint folder.
pub const FILE: &str = "checkpoints.jsonl";

/// Signs every chain's head now and stores the checkpoint (and appends it to the file in `dir`).
/// `None` when the trail has not changed since `last` (nothing to sign).
pub async fn write<S: Store>(
    store: &S,
    signer: &NodeSigner,
    dir: Option<&Path>,
    last: Option<&[ChainState]>,
) -> Result<Option<StoredCheckpoint>, AuditError> {
    let chains = store.audit_chains().await?;
    if chains.is_empty() || last == Some(chains.as_slice()) {
        return Ok(None);
    }
    let at = now_ms();
    let body = Body {
        node: signer.node.clone(),
        at,
        alg: signer.algorithm().to_owned(),
        chains,
    };
    let body = serde_json::to_string(&body)
        .map_err(|e| AuditError::Refused(format!("cannot encode a checkpoint: {e}")))?;
    let (_, signature) = signer.sign(body.as_bytes())?;
    let mut checkpoint = StoredCheckpoint {
        id: 0,
        node: signer.node.clone(),
        at,
        body,
        signature,
        certificate: signer.certificate_pem.clone(),
    };
    checkpoint.id = store.record_checkpoint(checkpoint.clone()).await?;
    if let Some(dir) = dir {
        append_to_file(dir, &checkpoint)?;
    }
    Ok(Some(checkpoint))
}

fn append_to_file(dir: &Path, checkpoint: &StoredCheckpoint) -> Result<(), AuditError> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir).map_err(AuditError::io(format!("creating {}", dir.display())))?;
    let path = dir.join(FILE);
    let mut line = serde_json::to_string(checkpoint)
        .map_err(|e| AuditError::Refused(format!("cannot encode a checkpoint: {e}")))?;
    line.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(AuditError::io(format!("opening {}", path.display())))?;
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(AuditError::io(format!("writing {}", path.display())))
}

/// Reads the checkpoints of a checkpoint file.
pub fn read_file(path: &Path) -> Result<Vec<StoredCheckpoint>, AuditError> {
    let text = std::fs::read_to_string(path)
        .map_err(AuditError::io(format!("reading {}", path.display())))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|e| AuditError::Refused(format!("{} line {}: {e}", path.display(), i + 1)))
        })
        .collect()
}

/// Signs a checkpoint every `interval` while the trail grows, until `shutdown`. Never stops
/// traffic: a failure is logged and counted, and the next interval tries again.
pub async fn run<S: Store>(
    store: S,
    signer: NodeSigner,
    dir: std::path::PathBuf,
    interval: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut last: Option<Vec<ChainState>> = None;
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            () = tokio::time::sleep(interval) => {}
        }
        match write(&store, &signer, Some(&dir), last.as_deref()).await {
            Ok(Some(checkpoint)) => {
                metrics::counter!(crate::metrics::AUDIT_CHECKPOINTS, "outcome" => "written")
                    .increment(1);
                last = Body::parse(&checkpoint.body).ok().map(|b| b.chains);
            }
            Ok(None) => {}
            Err(error) => {
                metrics::counter!(crate::metrics::AUDIT_CHECKPOINTS, "outcome" => "failed")
                    .increment(1);
                tracing::warn!(
                    message = "cannot write an audit checkpoint; traffic goes on, the next interval tries again",
                    error = &error as &dyn std::error::Error
                );
            }
        }
    }
}
