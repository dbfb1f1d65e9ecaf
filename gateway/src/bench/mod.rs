//! `gateway bench`: a load generator that measures fairly. It starts and stops everything
//! itself, each part in its own process so that none can slow another's measurements from the
//! inside: the gateway (`gateway serve`, or the bare HTTP ceiling server), the senders and the
//! receivers.
//!
//! - `sender`: open loop at a fixed rate; latency from the time each message was due.
//! - `receiver`: the subscribers' push endpoints, counting only (one bit per message).
//! - `ceiling`: a bare hyper + rustls mutual-TLS server answering the same requests.
//! - `record`: the marker every message carries, sets of sequence numbers, histograms.
//! - `procstat`: CPU seconds and memory of each process, from `/proc`.
//! - `scratch`: dropping a run's PostgreSQL schema.
//! - `queue`: `gateway bench queue`, the delivery queue alone at given backlogs, in process.
//!
//! For each rate step it reports, on standard output, one JSON object ([`StepResult`]), and a
//! table row on standard error. It exits 1 when any accepted message was not delivered to
//! every subscriber.

pub mod ceiling;
pub mod procstat;
pub mod queue;
pub mod receiver;
pub mod record;
mod scratch;
pub mod sender;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use schemas::BureauId;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::clock::now_ms;
use crate::net::pki::{self, PkiLayout};
use crate::sim::BureauClient;
use record::{histogram, quantile_ms};
use sender::{SENDER, SenderReport};

/// The bureaus a message can fan out to (every bureau but the sender), in the order `--fanout`
/// takes them: push endpoints all (civil defense, a pull bureau by default, is made a push one).
const SUBSCRIBERS: [BureauId; 5] = [
    BureauId::Water,
    BureauId::Transport,
    BureauId::TrafficPolice,
    BureauId::Greenery,
    BureauId::CivilDefense,
];

/// Options of `gateway bench`.
#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// One of the bench's own processes (started by the bench itself).
    #[command(subcommand)]
    pub role: Option<Role>,
    /// Rate steps, messages per second (offered, over all senders).
    #[arg(long, value_delimiter = ',', default_value = "1000,2000,5000")]
    pub rate: Vec<u32>,
    /// Seconds measured at each step (after the warm-up).
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Seconds of warm-up at each step, sent at the step's rate but not measured.
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,
    /// The store: `sqlite` (a fresh file in the data folder) or `postgres://USER@HOST:PORT/DB`
    /// (a fresh schema `bench_<time>`, dropped at the end).
    #[arg(long, default_value = "sqlite")]
    pub store: String,
    /// Subscribers each message is routed to (1-5).
    #[arg(long, default_value_t = 3)]
    pub fanout: usize,
    /// Size of each message in bytes, at least.
    #[arg(long, default_value_t = 1024)]
    pub payload_bytes: usize,
    /// Sending processes (the rate is shared among them).
    #[arg(long, default_value_t = 1)]
    pub senders: u64,
    /// Connections of each sender.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// What is measured: the gateway, or the bare HTTP server (the HTTP ceiling).
    #[arg(long, value_enum, default_value_t = Target::Gateway)]
    pub target: Target,
    /// Folder for the PKI, the store, the configuration and the gateway's log.
    #[arg(long, default_value = "bench-data")]
    pub data: PathBuf,
    /// Where the gateway listens.
    #[arg(long, default_value = "127.0.0.1:18600")]
    pub listen: SocketAddr,
    /// Longest wait, after a step's senders finish, for its backlog to drain, in seconds.
    #[arg(long, default_value_t = 120)]
    pub drain: u64,
    /// Deliveries per push to each subscriber (their `push_batch`; 1: one per request).
    #[arg(long, default_value_t = 1)]
    pub push_batch: usize,
    /// Runs every case on its own working-day clock (`clocks.every_case`, the product's
    /// default): each case event then also passes through the flows' inbox and writes its clock.
    /// Off by default, so the bench measures the exchange itself; on, what the clocks cost.
    #[arg(long)]
    pub case_clocks: bool,
}

/// The bench's own processes.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Role {
    /// A sending process.
    #[command(hide = true)]
    Sender(sender::SenderArgs),
    /// The receiving endpoints.
    #[command(hide = true)]
    Receiver(receiver::ReceiverArgs),
    /// The bare HTTP ceiling server.
    #[command(hide = true)]
    Ceiling(ceiling::CeilingArgs),
    /// The delivery queue alone — lease and complete, in process — at given backlogs.
    Queue(queue::QueueArgs),
}

/// What the bench measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// The gateway (`gateway serve`) on the store given.
    Gateway,
    /// A bare hyper + rustls server that answers 202 to everything.
    HttpCeiling,
}

/// CPU microseconds per accepted message, per process kind.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CpuPerMessage {
    /// The gateway (or the ceiling server).
    pub gateway: f64,
    /// Every sender.
    pub senders: f64,
    /// The receivers.
    pub receivers: f64,
}

/// One rate step's figures: the JSON line of standard output.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    /// `sqlite`, `postgres`, or `none` for the HTTP ceiling.
    pub store: &'static str,
    /// What was measured.
    pub target: Target,
    /// The offered rate, messages per second.
    pub rate: u32,
    /// Subscribers per message.
    pub fanout: usize,
    /// Bytes per message.
    pub payload_bytes: usize,
    /// Messages due per second in the window.
    pub offered_per_s: f64,
    /// Messages answered 202 per second, of those due in the window.
    pub accepted_per_s: f64,
    /// Deliveries arriving per second in the window (one per message and subscriber).
    pub delivered_per_s: f64,
    /// Most deliveries per push (`--push-batch`).
    pub push_batch: usize,
    /// Pushes (requests to the subscribers) arriving per second in the window.
    pub pushes_per_s: f64,
    /// Deliveries per second the backlog grew by in the window (accepted × fan-out −
    /// delivered).
    pub backlog_growth_per_s: f64,
    /// 202 latency from the time each message was due, ms.
    pub ingest_p50_ms: f64,
    /// 99th percentile.
    pub ingest_p99_ms: f64,
    /// 99.9th percentile.
    pub ingest_p999_ms: f64,
    /// Maximum.
    pub ingest_max_ms: f64,
    /// From the time each message was due to its arrival at a subscriber, ms.
    pub e2e_p50_ms: f64,
    /// 99th percentile.
    pub e2e_p99_ms: f64,
    /// Answers 503 (whole step).
    pub unavailable_503: u64,
    /// Answers with another unexpected status.
    pub other_status: u64,
    /// Requests without an answer (connection errors, timeouts).
    pub errors: u64,
    /// Messages the senders could not send (in-flight cap reached).
    pub not_sent: u64,
    /// Accepted messages' deliveries that never arrived (must be 0).
    pub lost: u64,
    /// Deliveries that arrived more than once.
    pub duplicates: u64,
    /// Deliveries of messages whose 202 the sender never saw.
    pub unconfirmed: u64,
    /// Seconds after the senders finished until every delivery had arrived.
    pub drain_seconds: f64,
    /// CPU per message in the window, µs.
    pub cpu_us_per_message: CpuPerMessage,
    /// The gateway's resident memory at the end of the window, MiB.
    pub rss_mb: f64,
    /// The gateway's peak resident memory since it started, MiB.
    pub rss_peak_mb: f64,
}

/// Runs `gateway bench` or one of its processes.
pub async fn run(args: BenchArgs) -> Result<ExitCode> {
    match args.role.clone() {
        Some(Role::Sender(sender)) => sender::run(sender).await.map(|()| ExitCode::SUCCESS),
        Some(Role::Receiver(receiver)) => receiver::run(receiver).await.map(|()| ExitCode::SUCCESS),
        Some(Role::Ceiling(ceiling)) => ceiling::run(ceiling).await.map(|()| ExitCode::SUCCESS),
        Some(Role::Queue(queue)) => queue::run(queue).await.map(|()| ExitCode::SUCCESS),
        None => orchestrate(args).await,
    }
}

/// A child process that answers commands on its standard input with JSON lines.
struct Commanded {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Commanded {
    fn spawn(mut command: Command, what: &str) -> Result<Self> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting the {what}"))?;
        let stdin = child.stdin.take().context("child stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("child stdout")?).lines();
        Ok(Self {
            child,
            stdin,
            stdout,
        })
    }

    async fn line(&mut self) -> Result<String> {
        self.stdout
            .next_line()
            .await?
            .context("the process ended without answering")
    }

    async fn ask<T: serde::de::DeserializeOwned>(&mut self, command: &str) -> Result<T> {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await?;
        self.stdin.flush().await?;
        let line = self.line().await?;
        serde_json::from_str(&line).with_context(|| format!("reading the answer {line:?}"))
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }
}

/// The store's location for the gateway, fresh for this run, and its label.
fn store_location(args: &BenchArgs, run: &str) -> Result<(String, &'static str)> {
    if args.store == "sqlite" {
        let db = args.data.join("bench.db");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        return Ok((format!("sqlite:{}", db.display()), "sqlite"));
    }
    if args.store.starts_with("postgres") {
        let separator = if args.store.contains('?') { '&' } else { '?' };
        let url = format!(
            "{}{separator}options=-c%20search_path%3Dbench_{run}",
            args.store
        );
        return Ok((url, "postgres"));
    }
    bail!("--store must be sqlite or postgres://USER@HOST:PORT/DB")
}

/// The gateway's configuration for the bench: the route from the sender to the first
/// `fanout` subscribers, their endpoints at the receiver, and the defaults otherwise.
fn config_file(args: &BenchArgs, store: &str, endpoints: &[(BureauId, String)]) -> Result<PathBuf> {
    let pki = args.data.join("pki");
    let mut text = format!(
        "node = \"gw-bench\"\nlisten = \"{}\"\nstore = \"{store}\"\n\
         [tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n\
         [surveys]\nblob_dir = \"{}\"\n[audit]\ncheckpoint_dir = \"{}\"\n\
         [clocks]\nevery_case = {}\n",
        args.listen,
        pki.join("ca.pem").display(),
        pki.join("gateway.pem").display(),
        pki.join("gateway.key").display(),
        args.data.join("blobs").display(),
        args.data.join("audit").display(),
        args.case_clocks,
    );
    for (bureau, url) in endpoints {
        text.push_str(&format!(
            "[bureaus.{}]\ndelivery = \"push\"\nendpoint = \"{url}\"\npush_batch = {}\n",
            bureau.as_str(),
            args.push_batch
        ));
    }
    let to: Vec<String> = endpoints
        .iter()
        .map(|(b, _)| format!("\"{}\"", b.as_str()))
        .collect();
    text.push_str(&format!(
        "[[routes]]\nname = \"bench\"\nreason = \"gateway bench: every message of the sender \
         fans out to the measured subscribers\"\nfrom = [\"{}\"]\nto = [{}]\n",
        SENDER.as_str(),
        to.join(", ")
    ));
    let path = args.data.join("bench.toml");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Waits until the gateway (or the ceiling) answers `/readyz` over TLS.
async fn wait_ready(
    pki: &PkiLayout,
    addr: SocketAddr,
    child: &mut Child,
    log: &Path,
) -> Result<()> {
    let client = BureauClient::operator(pki, addr)?.with_timeout(Duration::from_secs(2));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(reply) = client.get("/readyz").await
            && reply.status.is_success()
        {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(20).collect();
            bail!(
                "the gateway exited ({status}) before it was ready; its log ends:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the gateway was not ready within 60 s (see {})",
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sleeps until Unix time `at_ms`.
async fn sleep_until_ms(at_ms: i64) {
    let wait = u64::try_from(at_ms - now_ms()).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(wait)).await;
}

/// Ends a process gracefully (SIGTERM), or kills it after `grace`.
async fn terminate(child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

fn header() -> String {
    format!(
        "{:>7} {:>9} {:>9} {:>10} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>5} {:>7} {:>7}",
        "rate",
        "offered/s",
        "accept/s",
        "deliver/s",
        "pushes/s",
        "202 p50",
        "p99",
        "p99.9",
        "max",
        "e2e p50",
        "e2e p99",
        "503",
        "lost",
        "gw µs/m",
        "rss MB"
    )
}

fn row(r: &StepResult) -> String {
    format!(
        "{:>7} {:>9.0} {:>9.0} {:>10.0} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.1} {:>8.1} {:>8.1} {:>6} {:>5} {:>7.0} {:>7.1}",
        r.rate,
        r.offered_per_s,
        r.accepted_per_s,
        r.delivered_per_s,
        r.pushes_per_s,
        r.ingest_p50_ms,
        r.ingest_p99_ms,
        r.ingest_p999_ms,
        r.ingest_max_ms,
        r.e2e_p50_ms,
        r.e2e_p99_ms,
        r.unavailable_503,
        r.lost,
        r.cpu_us_per_message.gateway,
        r.rss_peak_mb
    )
}

async fn orchestrate(args: BenchArgs) -> Result<ExitCode> {
    if !(1..=SUBSCRIBERS.len()).contains(&args.fanout) {
        bail!("--fanout must be 1 to {}", SUBSCRIBERS.len());
    }
    if args.rate.len() > 99 || args.rate.contains(&0) {
        bail!("--rate takes 1 to 99 steps, each above 0");
    }
    if !(1..=crate::config::MAX_PUSH_BATCH).contains(&args.push_batch) {
        bail!(
            "--push-batch must be 1 to {}",
            crate::config::MAX_PUSH_BATCH
        );
    }
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating {}", args.data.display()))?;
    let pki = pki::init(&args.data.join("pki"), "gw-bench")?;
    let exe = std::env::current_exe().context("finding the gateway binary")?;
    let run = now_ms().to_string();
    let gateway_target = args.target == Target::Gateway;

    // The receivers first: the gateway's configuration names their endpoints.
    let subscribers = &SUBSCRIBERS[..args.fanout];
    let mut receiver = None;
    let mut endpoints = Vec::new();
    if gateway_target {
        let mut command = Command::new(&exe);
        command
            .args(["bench", "receiver", "--pki"])
            .arg(&pki.dir)
            .arg("--bureaus")
            .arg(
                subscribers
                    .iter()
                    .map(|b| b.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            );
        let mut spawned = Commanded::spawn(command, "receiver")?;
        let ready: receiver::Ready = serde_json::from_str(&spawned.line().await?)?;
        endpoints = ready.endpoints;
        receiver = Some(spawned);
    }

    let (store_url, store_label) = match args.target {
        Target::Gateway => store_location(&args, &run)?,
        Target::HttpCeiling => (String::new(), "none"),
    };
    let log = args.data.join("gateway.log");
    let log_file =
        std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut command = Command::new(&exe);
    match args.target {
        Target::Gateway => {
            let config = config_file(&args, &store_url, &endpoints)?;
            command.arg("serve").arg("--config").arg(config);
        }
        Target::HttpCeiling => {
            command
                .args(["bench", "ceiling", "--pki"])
                .arg(&pki.dir)
                .arg("--listen")
                .arg(args.listen.to_string());
        }
    }
    if std::env::var_os("RUST_LOG").is_none() {
        command.env("RUST_LOG", "warn");
    }
    let mut server = command
        .stdout(Stdio::null())
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .context("starting the gateway")?;
    let server_pid = server.id().unwrap_or(0);
    if gateway_target {
        wait_ready(&pki, args.listen, &mut server, &log).await?;
    } else {
        // The ceiling has no /readyz: wait for its port.
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(args.listen).await.is_err() {
            if Instant::now() > deadline {
                bail!("the ceiling server did not listen within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    eprintln!(
        "gateway bench: {} on {store_label}, fan-out {}, {} B messages, {} s warm-up + {} s per \
         step, {} sender(s) x {} connections; log {}",
        match args.target {
            Target::Gateway => "the gateway",
            Target::HttpCeiling => "the bare HTTP ceiling",
        },
        if gateway_target { args.fanout } else { 0 },
        args.payload_bytes,
        args.warmup,
        args.duration,
        args.senders,
        args.connections,
        log.display()
    );
    eprintln!("{}", header());

    let mut lost_any = false;
    let mut outcome = Ok(());
    for (step, &rate) in args.rate.iter().enumerate() {
        let step = step as u32 + 1;
        match run_step(
            &args,
            &exe,
            &pki,
            &run,
            step,
            rate,
            receiver.as_mut(),
            server_pid,
        )
        .await
        {
            Ok(mut result) => {
                result.store = store_label;
                if !gateway_target {
                    result.fanout = 0;
                }
                lost_any |= result.lost > 0;
                eprintln!("{}", row(&result));
                println!("{}", serde_json::to_string(&result)?);
            }
            Err(error) => {
                outcome = Err(error);
                break;
            }
        }
    }

    terminate(&mut server, Duration::from_secs(15)).await;
    if let Some(mut receiver) = receiver {
        drop(receiver.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(5), receiver.child.wait()).await;
    }
    if store_label == "postgres" {
        scratch::drop_schema(&args.store, &format!("bench_{run}")).await;
    }
    outcome?;
    if lost_any {
        eprintln!("FAILED: accepted messages were not delivered to every subscriber");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)] // one step's whole context, used once
async fn run_step(
    args: &BenchArgs,
    exe: &Path,
    pki: &PkiLayout,
    run: &str,
    step: u32,
    rate: u32,
    mut receiver: Option<&mut Commanded>,
    server_pid: u32,
) -> Result<StepResult> {
    let start_at = now_ms() + 1500;
    let from = start_at + (args.warmup * 1000) as i64;
    let to = from + (args.duration * 1000) as i64;
    if let Some(receiver) = receiver.as_deref_mut() {
        receiver
            .ask::<serde_json::Value>(&format!("window {step} {from} {to}"))
            .await?;
    }
    let mut senders = Vec::new();
    let mut accepted_files = Vec::new();
    for index in 0..args.senders.max(1) {
        let accepted = args.data.join(format!("step{step}-{index}.accepted"));
        let mut command = Command::new(exe);
        command
            .args(["bench", "sender", "--pki"])
            .arg(&pki.dir)
            .arg("--gateway")
            .arg(args.listen.to_string())
            .args(["--step", &step.to_string(), "--rate", &rate.to_string()])
            .args(["--start-at-ms", &start_at.to_string()])
            .args(["--warmup", &args.warmup.to_string()])
            .args(["--duration", &args.duration.to_string()])
            .args([
                "--index",
                &index.to_string(),
                "--of",
                &args.senders.max(1).to_string(),
            ])
            .args(["--connections", &args.connections.to_string()])
            .args(["--payload-bytes", &args.payload_bytes.to_string()])
            .args(["--run", run])
            .arg("--accepted-out")
            .arg(&accepted);
        accepted_files.push(accepted);
        senders.push(Commanded::spawn(command, "sender")?);
    }
    let mut pids = vec![server_pid];
    pids.extend(receiver.as_deref().map(Commanded::pid));
    let receivers = pids.len() - 1;
    pids.extend(senders.iter().map(Commanded::pid));
    let cpu = |pids: &[u32]| -> Vec<f64> {
        pids.iter()
            .map(|&p| procstat::cpu_seconds(p).unwrap_or(0.0))
            .collect()
    };

    sleep_until_ms(from).await;
    let cpu_from = cpu(&pids);
    sleep_until_ms(to).await;
    let cpu_to = cpu(&pids);
    let (rss_mb, _) = procstat::memory_mb(server_pid).unwrap_or_default();

    let mut reports = Vec::new();
    for mut sender in senders {
        let line = sender.line().await.context("a sender's report")?;
        reports.push(serde_json::from_str::<SenderReport>(&line)?);
        let _ = sender.child.wait().await;
    }
    let sum = |f: fn(&SenderReport) -> u64| reports.iter().map(f).sum::<u64>();
    let accepted = sum(|r| r.accepted);
    let mut ingest = histogram();
    for report in &reports {
        report.latency_us.add_to(&mut ingest);
    }
    if let Some(problem) = reports.iter().find_map(|r| r.first_problem.clone()) {
        eprintln!("  first unexpected answer: {problem}");
    }

    // Drain: until every accepted message reached every subscriber, or the wait is up.
    let drained_from = Instant::now();
    let mut figures = receiver::StepReport::default();
    if let Some(receiver) = receiver {
        let expected = accepted * args.fanout as u64;
        let deadline = drained_from + Duration::from_secs(args.drain);
        loop {
            let count: receiver::Count = receiver.ask(&format!("count {step}")).await?;
            if count.unique >= expected || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let files: Vec<String> = accepted_files
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        figures = receiver
            .ask(&format!("report {step} {}", files.join(" ")))
            .await?;
    }
    let drain_seconds = drained_from.elapsed().as_secs_f64();
    for file in &accepted_files {
        let _ = std::fs::remove_file(file);
    }
    let (_, rss_peak_mb) = procstat::memory_mb(server_pid).unwrap_or_default();

    let seconds = args.duration.max(1) as f64;
    let accepted_in_window = sum(|r| r.accepted_in_window);
    let per_message = |index: std::ops::Range<usize>| -> f64 {
        let used: f64 = index.map(|i| cpu_to[i] - cpu_from[i]).sum();
        if accepted_in_window == 0 {
            0.0
        } else {
            used * 1e6 / accepted_in_window as f64
        }
    };
    let mut e2e = histogram();
    figures.e2e_us.add_to(&mut e2e);
    let delivered_per_s = figures.delivered_in_window as f64 / seconds;
    let accepted_per_s = accepted_in_window as f64 / seconds;
    Ok(StepResult {
        store: "",
        target: args.target,
        rate,
        fanout: args.fanout,
        payload_bytes: args.payload_bytes,
        offered_per_s: sum(|r| r.scheduled_in_window) as f64 / seconds,
        accepted_per_s,
        delivered_per_s,
        push_batch: args.push_batch,
        pushes_per_s: figures.pushes_in_window as f64 / seconds,
        backlog_growth_per_s: accepted_per_s * args.fanout as f64 - delivered_per_s,
        ingest_p50_ms: quantile_ms(&ingest, 0.5),
        ingest_p99_ms: quantile_ms(&ingest, 0.99),
        ingest_p999_ms: quantile_ms(&ingest, 0.999),
        ingest_max_ms: quantile_ms(&ingest, 1.0),
        e2e_p50_ms: quantile_ms(&e2e, 0.5),
        e2e_p99_ms: quantile_ms(&e2e, 0.99),
        unavailable_503: sum(|r| r.unavailable),
        other_status: sum(|r| r.other_status),
        errors: sum(|r| r.errors),
        not_sent: sum(|r| r.not_sent),
        lost: figures.lost,
        duplicates: figures.duplicates,
        unconfirmed: figures.unconfirmed,
        drain_seconds,
        cpu_us_per_message: CpuPerMessage {
            gateway: per_message(0..1),
            receivers: per_message(1..1 + receivers),
            senders: per_message(1 + receivers..pids.len()),
        },
        rss_mb,
        rss_peak_mb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_lines_up_with_the_header() {
        let result = StepResult {
            store: "sqlite",
            target: Target::Gateway,
            rate: 10_000,
            fanout: 3,
            payload_bytes: 1024,
            offered_per_s: 10_000.0,
            accepted_per_s: 9_999.0,
            delivered_per_s: 29_997.0,
            push_batch: 1,
            pushes_per_s: 29_997.0,
            backlog_growth_per_s: 0.0,
            ingest_p50_ms: 1.2,
            ingest_p99_ms: 4.5,
            ingest_p999_ms: 9.9,
            ingest_max_ms: 20.0,
            e2e_p50_ms: 3.0,
            e2e_p99_ms: 20.0,
            unavailable_503: 0,
            other_status: 0,
            errors: 0,
            not_sent: 0,
            lost: 0,
            duplicates: 0,
            unconfirmed: 0,
            drain_seconds: 0.4,
            cpu_us_per_message: CpuPerMessage::default(),
            rss_mb: 40.0,
            rss_peak_mb: 45.0,
        };
        assert_eq!(header().chars().count(), row(&result).chars().count());
        let json = serde_json::to_value(&result).unwrap();
        for key in [
            "store",
            "rate",
            "fanout",
            "accepted_per_s",
            "delivered_per_s",
            "ingest_p99_ms",
            "e2e_p99_ms",
            "lost",
            "rss_peak_mb",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
        assert_eq!(json["target"], "gateway");
    }
}
