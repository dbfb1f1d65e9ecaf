//! The exchange gateway's command line: run a node (`serve`), run the demo (`demo`), operate a
//! node (`ctl`), manage the dev PKI (`pki`), explain routing (`routes explain`), and the adapter tools (`adapters`,
//! `decode`, `sample`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use adapters::{Adapter, DecodeError, Syntax};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use gateway::config::{Config, StoreLocation};
use gateway::net::Identity;
use gateway::routing::RouteTable;
use gateway::store::any::AnyStore;
use gateway::vocabulary::name;
use schemas::BureauId;

#[derive(Parser)]
#[command(
    name = "gateway",
    version,
    about = "Shanghai construction-approval data-exchange gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a gateway node.
    Serve {
        /// The configuration file, laid over the defaults (`gateway/config.default.toml`).
        #[arg(long)]
        config: PathBuf,
        /// The store, overriding the file: `sqlite:PATH` or `postgres://USER@HOST:PORT/DB`.
        #[arg(long)]
        store: Option<String>,
    },
    /// Apply the store's migrations and exit (nodes also migrate when they start; concurrent
    /// starts are safe).
    Migrate {
        /// The store: `sqlite:PATH` or `postgres://USER@HOST:PORT/DB`.
        #[arg(long)]
        store: String,
    },
    /// Run the gateway with six simulated bureau systems on the embedded store, show live
    /// progress, and check at the end that every accepted message reached every subscriber.
    ///
    /// On a terminal the progress is one status block redrawn in place; otherwise (a file, a
    /// pipe) a plain line every few seconds, without escape codes. The gateway's log goes to
    /// DIR/gateway.log (info and above); the console shows only its warnings and errors. With
    /// RUST_LOG set, that filter applies to both the file and the console (e.g.
    /// RUST_LOG=debug, or RUST_LOG=error to keep the console quieter still).
    Demo(gateway::demo::DemoArgs),
    /// Measure throughput and latency fairly: starts the gateway (`serve`, on a fresh store),
    /// open-loop senders and counting receivers, each in its own process, runs the rate steps,
    /// and prints a table on standard error and one JSON object per step on standard output.
    /// Exits 1 when an accepted message did not reach every subscriber.
    Bench(Box<gateway::bench::BenchArgs>),
    /// Operate a running node over its admin API, with an operator certificate (mutual TLS):
    /// status, bureaus, dead letters, pause / resume, traces and case timelines.
    Ctl(gateway::ctl::CtlArgs),
    /// The tamper-evident audit trail: verify it (in a store, or an evidence bundle offline),
    /// export evidence bundles, sign a checkpoint now, prune old entries.
    Audit {
        #[command(subcommand)]
        command: gateway::audit::cli::AuditCommand,
    },
    /// Manage the development PKI (exchange CA, gateway, bureau and operator certificates).
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// Explain routing.
    Routes {
        #[command(subcommand)]
        command: RoutesCommand,
    },
    /// List the bureau adapters and their native formats.
    Adapters,
    /// Decode a bureau's native message and print the canonical events as JSON, or every
    /// problem found in it (exit status 2).
    Decode {
        /// The bureau whose format the message is in.
        #[arg(long = "from")]
        bureau: BureauId,
        /// The content type the message would be sent with (default: the format's).
        #[arg(long)]
        content_type: Option<String>,
        /// The message file.
        file: PathBuf,
    },
    /// Print realistic native messages of a bureau, as its system would send them.
    Sample {
        /// The bureau whose format to write.
        #[arg(long = "from")]
        bureau: BureauId,
        /// Seed of the generator: the same seed gives the same messages.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How many messages.
        #[arg(long, default_value_t = 1)]
        count: usize,
    },
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Create a dev CA and certificates for the gateway, every bureau and an operator
    /// (existing files are kept).
    Init {
        /// Folder to write to.
        #[arg(long, default_value = "data/pki")]
        dir: PathBuf,
        /// The gateway node's name.
        #[arg(long, default_value = "gw-1")]
        node: String,
    },
    /// Issue one more certificate from the CA in `dir`.
    Issue {
        /// Folder holding ca.pem and ca.key.
        #[arg(long, default_value = "data/pki")]
        dir: PathBuf,
        /// A bureau's certificate (`urn:bureau:<id>`), written as `<id>.pem`.
        #[arg(long, group = "who")]
        bureau: Option<BureauId>,
        /// An operator's certificate (`urn:operator:<name>`), written as `operator-<name>.pem`.
        #[arg(long, group = "who")]
        operator: Option<String>,
        /// A gateway node's certificate (`urn:gateway:<node>`), written as `gateway-<node>.pem`.
        #[arg(long, group = "who")]
        gateway: Option<String>,
    },
    /// Revoke a certificate of the CA in `dir`: add it to `<dir>/crl.pem` (list that file in
    /// `tls.crl_files`; gateways apply it within `tls.crl_check_interval_seconds`, or at once
    /// on SIGHUP).
    Revoke {
        /// Folder holding ca.pem, ca.key and the certificate.
        #[arg(long, default_value = "data/pki")]
        dir: PathBuf,
        /// The certificate's file stem: `water`, `operator-alice`, `gateway-gw-2`...
        name: String,
    },
}

#[derive(Subcommand)]
enum RoutesCommand {
    /// Decode a native message and show which routes match each of its events, and why, and
    /// what the one-stop flows do with it.
    Explain {
        /// The message file.
        file: PathBuf,
        /// The bureau that sends it.
        #[arg(long = "from")]
        bureau: BureauId,
        /// A configuration file (default: the built-in routes).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn adapter(bureau: BureauId) -> Result<&'static dyn Adapter> {
    adapters::for_bureau(bureau).with_context(|| format!("no adapter registered for {bureau}"))
}

fn list_adapters() {
    println!(
        "{:<16} {:<18} {:<16} {:<6} {:>10}",
        "bureau", "media type", "syntax", "batch", "max bytes"
    );
    for adapter in adapters::ALL {
        let format = adapter.format();
        let syntax = match format.syntax {
            Syntax::Xml { encoding } => format!("XML {}", encoding.name()),
            Syntax::Json => "JSON".to_owned(),
        };
        println!(
            "{:<16} {:<18} {:<16} {:<6} {:>10}",
            adapter.bureau().as_str(),
            format.media_type,
            syntax,
            if format.batch { "yes" } else { "no" },
            format.max_message_bytes
        );
    }
}

fn decode(bureau: BureauId, content_type: Option<String>, file: PathBuf) -> Result<ExitCode> {
    let adapter = adapter(bureau)?;
    let body = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let content_type = content_type.unwrap_or_else(|| adapter.format().media_type.to_owned());
    match adapter.decode(&body, &content_type) {
        Ok(events) => {
            println!("{}", serde_json::to_string_pretty(&events)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(DecodeError::Invalid(errors)) => {
            eprintln!("{}: {} invalid field(s)", file.display(), errors.len());
            println!("{}", serde_json::to_string_pretty(&errors)?);
            Ok(ExitCode::from(2))
        }
        Err(error) => {
            eprintln!("{}: rejected: {error}", file.display());
            Ok(ExitCode::from(2))
        }
    }
}

fn sample(bureau: BureauId, seed: u64, count: usize) -> Result<ExitCode> {
    let adapter = adapter(bureau)?;
    let mut rng = fastrand_rng(seed);
    let mut out = std::io::stdout().lock();
    for _ in 0..count {
        out.write_all(&adapter.sample(&mut rng).body)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn fastrand_rng(seed: u64) -> fastrand::Rng {
    fastrand::Rng::with_seed(seed)
}

fn pki(command: PkiCommand) -> Result<ExitCode> {
    match command {
        PkiCommand::Init { dir, node } => {
            gateway::net::pki::init(&dir, &node)?;
            println!("dev PKI in {}", dir.display());
        }
        PkiCommand::Issue {
            dir,
            bureau,
            operator,
            gateway,
        } => {
            let (identity, stem) = match (bureau, operator, gateway) {
                (Some(b), None, None) => (Identity::Bureau(b), b.as_str().to_owned()),
                (None, Some(name), None) => {
                    (Identity::Operator(name.clone()), format!("operator-{name}"))
                }
                (None, None, Some(node)) => {
                    (Identity::Gateway(node.clone()), format!("gateway-{node}"))
                }
                _ => anyhow::bail!("give exactly one of --bureau, --operator, --gateway"),
            };
            let (cert, key) = gateway::net::pki::issue(&dir, &identity, &stem)?;
            println!("{identity}: {} {}", cert.display(), key.display());
        }
        PkiCommand::Revoke { dir, name } => {
            let crl = gateway::net::pki::revoke(&dir, &name)?;
            let what = if crl.added {
                "revoked"
            } else {
                "already revoked"
            };
            println!(
                "{name}: {what}; {} (CRL number {}, {} revoked)",
                crl.path.display(),
                crl.number,
                crl.revoked
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn explain(file: PathBuf, bureau: BureauId, config: Option<PathBuf>) -> Result<ExitCode> {
    let config = match config {
        Some(path) => Config::load(&path)?,
        None => Config::defaults()?,
    };
    let adapter = adapter(bureau)?;
    let body = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let events = adapter
        .decode(&body, adapter.format().media_type)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let table = RouteTable::new(config.routes.clone());
    let flows = gateway::flows::FlowTable::new(&config, config.calendar()?);
    for event in &events {
        let Some(case) = event.case() else {
            println!("event {}: not a case event", event.message_id.as_str());
            continue;
        };
        println!(
            "event {} from {}: {}, item {}, stage {}, district {}",
            event.message_id.as_str(),
            event.source,
            name(&event.kind),
            name(&case.item),
            name(&case.stage),
            name(&case.district),
        );
        for matched in table.explain(event) {
            match &matched.failed {
                None => println!(
                    "  MATCH  {} -> {}\n         {}",
                    matched.route.name,
                    matched
                        .route
                        .to
                        .iter()
                        .map(name)
                        .collect::<Vec<_>>()
                        .join(", "),
                    matched.route.reason
                ),
                Some(why) => println!("  -      {}: {why}", matched.route.name),
            }
        }
        let to: Vec<String> = table.subscribers(event).iter().map(name).collect();
        println!("  => delivered to {}", to.join(", "));
        for line in flows.explain(event.source, case.item, case.status) {
            println!("  flows: {line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn serve(config: PathBuf, store: Option<String>) -> Result<ExitCode> {
    let mut config = Config::load(&config)?;
    if let Some(store) = store {
        config.store = store;
        config.validate()?;
    }
    tokio::runtime::Runtime::new()?.block_on(async move {
        let running = gateway::start(config).await?;
        shutdown_signal().await;
        tracing::info!(message = "shutting down");
        running.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

/// The log filter: `RUST_LOG` when set (and valid), else `default`.
fn log_filter(default: &str) -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
}

/// Every command but `demo` logs to standard error, with colours only on a terminal (a file or
/// a journal would keep the escape codes as text).
fn log_to_stderr() {
    tracing_subscriber::fmt()
        .with_env_filter(log_filter("info"))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// `demo` logs to a file in its data folder (recreated on every run), so the console keeps its
/// progress and summary; the console gets warnings and errors only, written around the status
/// block. `RUST_LOG`, when set, filters both.
fn log_demo(args: &gateway::demo::DemoArgs, console: &gateway::demo::Console) -> Result<()> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating {}", args.data.display()))?;
    let path = args.log_file();
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .with_filter(log_filter("info")),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(console.clone())
                .with_filter(log_filter("warn")),
        )
        .try_init()
        .context("setting up logging")
}

fn main() -> Result<ExitCode> {
    let command = Cli::parse().command;
    // The demo's console is shared by its status block and its log lines.
    let console = match &command {
        Command::Demo(args) => {
            let console = gateway::demo::Console::new();
            log_demo(args, &console)?;
            Some(console)
        }
        _ => {
            log_to_stderr();
            None
        }
    };
    match command {
        Command::Serve { config, store } => serve(config, store),
        Command::Migrate { store } => {
            let location = StoreLocation::parse(&store)
                .context("--store must be sqlite:PATH or postgres://USER@HOST:PORT/DB")?;
            tokio::runtime::Runtime::new()?.block_on(AnyStore::open(&location, 1))?;
            println!("{store}: migrated");
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => tokio::runtime::Runtime::new()?
            .block_on(gateway::demo::run(args, console.unwrap_or_default())),
        Command::Bench(args) => {
            tokio::runtime::Runtime::new()?.block_on(gateway::bench::run(*args))
        }
        Command::Ctl(args) => Ok(tokio::runtime::Runtime::new()?
            .block_on(gateway::ctl::run(args, &mut std::io::stdout()))),
        Command::Audit { command } => tokio::runtime::Runtime::new()?
            .block_on(gateway::audit::cli::run(command, &mut std::io::stdout())),
        Command::Pki { command } => pki(command),
        Command::Routes {
            command:
                RoutesCommand::Explain {
                    file,
                    bureau,
                    config,
                },
        } => explain(file, bureau, config),
        Command::Adapters => {
            list_adapters();
            Ok(ExitCode::SUCCESS)
        }
        Command::Decode {
            bureau,
            content_type,
            file,
        } => decode(bureau, content_type, file),
        Command::Sample {
            bureau,
            seed,
            count,
        } => sample(bureau, seed, count),
    }
}
