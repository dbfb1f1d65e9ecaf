//! `gateway audit`: verify the trail (in a store, or a bundle offline), export evidence
//! bundles, sign a checkpoint now, prune old entries.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use schemas::{BureauCaseId, BureauId, MessageId};

use super::bundle::{self, Selector};
use super::checkpoint;
use super::sign::NodeSigner;
use super::verify;
use crate::clock::{Millis, now_ms};
use crate::config::{Config, StoreLocation};
use crate::store::any::AnyStore;
use crate::store::{Store, audit};

/// Which store: `--store` or the one of `--config` (which also names the node, its key, CA and
/// checkpoint folder).
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// The store: `sqlite:PATH` or `postgres://USER@HOST:PORT/DB`.
    #[arg(long, conflicts_with = "config")]
    store: Option<String>,
    /// A node's configuration file (its store, CA, key and checkpoint folder).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// `gateway audit …`.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check the whole trail against the store and the signed checkpoints (with --store or
    /// --config), or an evidence bundle offline (with --bundle and --ca); names the first
    /// broken link of each chain. Exit status 1 when something is broken.
    Verify {
        /// Which store.
        #[command(flatten)]
        store: StoreArgs,
        /// An evidence bundle to check offline.
        #[arg(long, conflicts_with_all = ["store", "config"], requires = "ca")]
        bundle: Option<PathBuf>,
        /// The exchange CA certificate: node certificates must be issued by it.
        #[arg(long)]
        ca: Option<PathBuf>,
        /// A checkpoint file (`checkpoints.jsonl`) whose checkpoints must match too (default
        /// with --config: the node's).
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        /// Only the chains whose name starts with this (e.g. `gw-2/` for one node's, or one
        /// chain's full name).
        #[arg(long)]
        chain: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write an evidence bundle: the entries of a message, a case or a bureau's period, their
    /// raw payloads, the links to signed checkpoints and the node certificates, one tar file.
    Export {
        /// Which store.
        #[command(flatten)]
        store: StoreArgs,
        /// One event, by the gateway's message id.
        #[arg(long, group = "what")]
        message: Option<String>,
        /// Every event of a bureau case id.
        #[arg(long, group = "what")]
        case: Option<String>,
        /// Every entry concerning a bureau (with --from and --to).
        #[arg(long, group = "what", requires_all = ["from", "to"])]
        bureau: Option<BureauId>,
        /// From (RFC 3339, e.g. 2026-11-01T00:00:00+08:00, or Unix milliseconds).
        #[arg(long)]
        from: Option<String>,
        /// To, exclusive.
        #[arg(long)]
        to: Option<String>,
        /// The bundle file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a checkpoint of every chain's head now, with the node's key (--config).
    Checkpoint {
        /// The node's configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Delete the entries made before a time, keeping each chain's last deleted link as its
    /// anchor; recorded in the trail with the operator's name, and followed by a signed
    /// checkpoint of the anchors (--config).
    Prune {
        /// The node's configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Entries made before this time go (RFC 3339 or Unix milliseconds).
        #[arg(long)]
        before: String,
        /// Who prunes (recorded in the trail).
        #[arg(long)]
        operator: String,
    },
}

fn time(text: &str) -> Result<Millis> {
    if let Ok(ms) = text.parse::<Millis>() {
        return Ok(ms);
    }
    Ok(chrono::DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("{text:?} is neither RFC 3339 nor Unix milliseconds"))?
        .timestamp_millis())
}

async fn open(args: &StoreArgs) -> Result<(AnyStore, Option<Config>)> {
    let (location, config) = match (&args.store, &args.config) {
        (Some(store), _) => (
            StoreLocation::parse(store)
                .context("--store must be sqlite:PATH or postgres://USER@HOST:PORT/DB")?,
            None,
        ),
        (None, Some(path)) => {
            let config = Config::load(path)?;
            (config.store_location()?, Some(config))
        }
        (None, None) => bail!("give --store or --config"),
    };
    Ok((AnyStore::open(&location, 2).await?, config))
}

fn signer(config: &Config) -> Result<NodeSigner> {
    Ok(NodeSigner::load(&config.node, &config.tls_files())?)
}

/// Runs a `gateway audit` command.
pub async fn run(command: AuditCommand, out: &mut impl std::io::Write) -> Result<ExitCode> {
    match command {
        AuditCommand::Verify {
            store,
            bundle: Some(bundle),
            ca,
            json,
            ..
        } => {
            let ca = ca.context("--bundle needs --ca")?;
            let ca_pem = std::fs::read(&ca).with_context(|| format!("reading {}", ca.display()))?;
            let report = bundle::verify(&bundle, &ca_pem)?;
            drop(store);
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
            } else if let Some(broken) = &report.broken {
                writeln!(out, "BROKEN {}: {broken}", bundle.display())?;
            } else {
                writeln!(
                    out,
                    "OK {}: {} entries tied to {} signed checkpoint(s), {} payload(s) match",
                    bundle.display(),
                    report.entries,
                    report.checkpoints,
                    report.payloads
                )?;
            }
            Ok(if report.broken.is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        AuditCommand::Verify {
            store,
            ca,
            checkpoints,
            chain,
            json,
            ..
        } => {
            let (store, config) = open(&store).await?;
            let ca_path = ca.or_else(|| config.as_ref().map(|c| c.tls.ca.clone()));
            let ca_pem = ca_path
                .map(|p| std::fs::read(&p).with_context(|| format!("reading {}", p.display())))
                .transpose()?;
            let file = checkpoints.or_else(|| {
                config
                    .as_ref()
                    .map(|c| c.audit.checkpoint_dir.join(checkpoint::FILE))
                    .filter(|p| p.exists())
            });
            let extra = match &file {
                Some(path) => checkpoint::read_file(path)?,
                None => Vec::new(),
            };
            let prefix = chain.unwrap_or_default();
            let report =
                verify::chains(&store, ca_pem.as_deref(), extra, |c| c.starts_with(&prefix))
                    .await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                for broken in &report.broken {
                    writeln!(out, "BROKEN {broken}")?;
                }
                writeln!(
                    out,
                    "{} {} chain(s), {} entries, {} signed checkpoint(s){}",
                    if report.is_intact() { "OK" } else { "BROKEN" },
                    report.chains,
                    report.entries,
                    report.checkpoints,
                    if ca_pem.is_some() {
                        ""
                    } else {
                        " (signatures checked without a CA: give --ca)"
                    }
                )?;
            }
            Ok(if report.is_intact() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        AuditCommand::Export {
            store,
            message,
            case,
            bureau,
            from,
            to,
            out: path,
        } => {
            let selector = match (message, case, bureau) {
                (Some(id), _, _) => Selector::Message(
                    MessageId::parse(&id).map_err(|e| anyhow::anyhow!("--message: {e}"))?,
                ),
                (_, Some(id), _) => Selector::Case(
                    BureauCaseId::parse(&id).map_err(|e| anyhow::anyhow!("--case: {e}"))?,
                ),
                (_, _, Some(bureau)) => Selector::Bureau {
                    bureau,
                    from: time(from.as_deref().unwrap_or_default())?,
                    to: time(to.as_deref().unwrap_or_default())?,
                },
                _ => bail!("give --message, --case or --bureau with --from and --to"),
            };
            let (store, _) = open(&store).await?;
            let exported = bundle::export(&store, &selector, &path).await?;
            writeln!(
                out,
                "{}: {} entries, {} links, {} payload(s), {} checkpoint(s)",
                path.display(),
                exported.entries,
                exported.links,
                exported.payloads,
                exported.checkpoints
            )?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Checkpoint { config } => {
            let config = Config::load(&config)?;
            let store = AnyStore::open(&config.store_location()?, 2).await?;
            let signer = signer(&config)?;
            match checkpoint::write(&store, &signer, Some(&config.audit.checkpoint_dir), None)
                .await?
            {
                Some(c) => writeln!(out, "checkpoint {} signed by {} at {}", c.id, c.node, c.at)?,
                None => writeln!(out, "the trail is empty: nothing to sign")?,
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Prune {
            config,
            before,
            operator,
        } => {
            let config = Config::load(&config)?;
            let before = time(&before)?;
            let store = AnyStore::open(&config.store_location()?, 2).await?;
            let signer = signer(&config)?;
            let dir = config.audit.checkpoint_dir.clone();
            // What is about to go is signed first, so its last link stays provable.
            checkpoint::write(&store, &signer, Some(&dir), None).await?;
            let mut total = 0;
            for chain in store.audit_chains().await? {
                while let Some(anchor) = store
                    .prune_audit(
                        &chain.chain,
                        before,
                        &operator,
                        now_ms(),
                        audit::MAX_AUDIT_PAGE,
                    )
                    .await?
                {
                    total += anchor.link.seq;
                    writeln!(
                        out,
                        "{}: pruned through entry {} ({})",
                        anchor.chain, anchor.link.seq, anchor.link.hash
                    )?;
                }
            }
            checkpoint::write(&store, &signer, Some(&dir), None).await?;
            if total == 0 {
                writeln!(out, "nothing made before that time")?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
