//! `gateway bench queue`: the delivery queue alone — lease and complete, no HTTP, no pushes — at
//! given backlogs, to show that its cost does not grow with the backlog. For each backlog it
//! makes a fresh store (a SQLite file, or a PostgreSQL schema dropped afterwards), fills it
//! with that many pending deliveries, several per case (only the first of each case its
//! queue's head, as ingest leaves them; three deliveries per event, as with a fan-out of 3), then lets a few workers lease a batch of due heads
//! and complete it, as the delivery engine does, for `--deliveries` deliveries. With PostgreSQL,
//! `--explain` prints the lease query's `EXPLAIN (ANALYZE, BUFFERS)` on the filled queue.
//!
//! The fill writes the store's tables directly with SQL (millions of rows through `ingest`
//! would measure ingest, and take hours), after the store itself has created them: the one
//! place outside the store that knows its columns, as the store's query-plan tests do.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use schemas::BureauId;
use serde::Serialize;
use tokio::sync::Mutex;

use super::record::{histogram, quantile_ms};
use crate::clock::now_ms;
use crate::config::StoreLocation;
use crate::store::any::AnyStore;
use crate::store::{Outcome, Settled, Store};

/// The subscribers the filled deliveries are spread over, a case each.
const SUBSCRIBERS: [BureauId; 4] = [
    BureauId::Water,
    BureauId::Transport,
    BureauId::TrafficPolice,
    BureauId::Greenery,
];

/// Rows written per fill statement.
const FILL_CHUNK: u64 = 1_000_000;

/// Deliveries per event in the fill, as with a fan-out of 3: each event's deliveries share its
/// row (and their entries of the index by event).
const PER_EVENT: u64 = 3;

/// How many events a fill of `backlog` deliveries writes.
fn events_for(backlog: u64) -> u64 {
    backlog.div_ceil(PER_EVENT)
}

/// Options of `gateway bench queue`.
#[derive(Debug, Clone, clap::Args)]
pub struct QueueArgs {
    /// The store: `sqlite` (a fresh file in the data folder) or `postgres://USER@HOST:PORT/DB`
    /// (a fresh schema, dropped at the end; plain TCP).
    #[arg(long, default_value = "sqlite")]
    pub store: String,
    /// Pending deliveries to fill the queue with, one run each.
    #[arg(long, value_delimiter = ',', default_value = "10000,1000000")]
    pub backlog: Vec<u64>,
    /// Pending deliveries per case (the first is the case's head).
    #[arg(long, default_value_t = 4)]
    pub per_case: u64,
    /// Deliveries leased and completed per run (at most half the backlog, so the queue stays
    /// near its size).
    #[arg(long, default_value_t = 20_000)]
    pub deliveries: u64,
    /// Deliveries leased per call.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Workers leasing and completing at once.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Folder for the SQLite file.
    #[arg(long, default_value = "bench-data")]
    pub data: PathBuf,
    /// Print the lease query's `EXPLAIN (ANALYZE, BUFFERS)` on each filled queue (PostgreSQL).
    #[arg(long)]
    pub explain: bool,
}

/// One backlog's figures: the JSON line of standard output.
#[derive(Debug, Clone, Serialize)]
pub struct QueueResult {
    /// `sqlite` or `postgres`.
    pub store: &'static str,
    /// Pending deliveries when the run started.
    pub backlog: u64,
    /// Pending deliveries per case.
    pub per_case: u64,
    /// Deliveries leased and completed.
    pub completed: u64,
    /// Lease + complete, deliveries per second.
    pub lease_complete_per_s: f64,
    /// One lease call, ms.
    pub lease_p50_ms: f64,
    /// 99th percentile.
    pub lease_p99_ms: f64,
    /// One completion batch (`record_outcomes`), ms.
    pub complete_p50_ms: f64,
    /// 99th percentile.
    pub complete_p99_ms: f64,
    /// Seconds the fill took.
    pub fill_seconds: f64,
}

/// A planning case event as JSON, the payload every filled delivery points to.
fn event_json() -> Result<String> {
    let event = adapters::sample::case_event(&mut fastrand::Rng::with_seed(5), BureauId::Planning);
    Ok(serde_json::to_string(&event)?)
}

/// Fills a PostgreSQL schema (reached by `url`, which selects it) with `backlog` deliveries.
async fn fill_postgres(url: &str, backlog: u64, per_case: u64) -> Result<()> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .context("connecting to fill the queue (plain TCP)")?;
    tokio::spawn(connection);
    let message: i64 = client
        .query_one(
            "INSERT INTO messages (sender, idempotency_key, content_type, body, sha256,
                                   received_at, receipt)
             VALUES ('planning', 'bench-queue', 'application/xml', '\\x3c782f3e',
                     repeat('0', 64), 0, '{\"message_ids\":[],\"deliveries\":0}')
             RETURNING id",
            &[],
        )
        .await?
        .get(0);
    let first_event: i64 = client
        .query_one(
            "WITH new AS (
                INSERT INTO events (message_id, gateway_message_id, source_message_id, source,
                                    case_key, event)
                SELECT $1, 'gw-queue-' || n, 'src-' || n, 'planning', 'planning:Q' || n, $2
                FROM generate_series(1, $3::bigint) AS n
                ORDER BY n
                RETURNING id)
             SELECT MIN(id) FROM new",
            &[
                &message,
                &event_json()?,
                &i64::try_from(events_for(backlog))?,
            ],
        )
        .await?
        .get(0);
    let subscribers: Vec<&str> = SUBSCRIBERS.iter().map(|s| s.as_str()).collect();
    let per_case = i64::try_from(per_case)?;
    let mut from = 0i64;
    let backlog = i64::try_from(backlog)?;
    while from < backlog {
        let to = (from + FILL_CHUNK as i64).min(backlog);
        client
            .execute(
                "INSERT INTO deliveries (event_id, subscriber, case_key, state, due_at,
                                         created_at, head)
                 SELECT $1::bigint + n / 3,
                        ($2::text[])[1 + (n / $3) % cardinality($2::text[])],
                        'planning:Q' || (n / $3), 'pending', n, n, n % $3 = 0
                 FROM generate_series($4::bigint, $5::bigint - 1) AS n
                 ORDER BY n",
                &[&first_event, &subscribers, &per_case, &from, &to],
            )
            .await?;
        from = to;
    }
    client.batch_execute("VACUUM (ANALYZE) deliveries").await?;
    client.batch_execute("VACUUM (ANALYZE) events").await?;
    Ok(())
}

/// Fills a SQLite file (the store closed) with `backlog` deliveries.
fn fill_sqlite(path: &std::path::Path, backlog: u64, per_case: u64) -> Result<()> {
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
    conn.execute(
        "INSERT INTO messages (sender, idempotency_key, content_type, body, sha256, received_at,
                               receipt)
         VALUES ('planning', 'bench-queue', 'application/xml', X'3c782f3e', ?1, 0,
                 '{\"message_ids\":[],\"deliveries\":0}')",
        [&"0".repeat(64)],
    )?;
    let message = conn.last_insert_rowid();
    let json = event_json()?;
    conn.execute(
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?3)
         INSERT INTO events (message_id, gateway_message_id, source_message_id, source, case_key,
                             event)
         SELECT ?1, 'gw-queue-' || x, 'src-' || x, 'planning', 'planning:Q' || x, ?2
         FROM n ORDER BY x",
        rusqlite::params![message, json, events_for(backlog) as i64],
    )?;
    let first_event: i64 = conn.query_row(
        "SELECT MIN(id) FROM events WHERE message_id = ?1",
        [message],
        |r| r.get(0),
    )?;
    let mut from = 0u64;
    while from < backlog {
        let to = (from + FILL_CHUNK).min(backlog);
        conn.execute(
            "WITH RECURSIVE n(x) AS (SELECT ?4 UNION ALL SELECT x + 1 FROM n WHERE x + 1 < ?5)
             INSERT INTO deliveries (event_id, subscriber, case_key, state, due_at, created_at,
                                     head)
             SELECT ?1 + x / 3,
                    CASE (x / ?2) % 4 WHEN 0 THEN 'water' WHEN 1 THEN 'transport'
                                      WHEN 2 THEN 'traffic_police' ELSE 'greenery' END,
                    'planning:Q' || (x / ?2), 'pending', x, x, x % ?2 = 0
             FROM n ORDER BY x",
            rusqlite::params![first_event, per_case as i64, 0, from as i64, to as i64],
        )?;
        from = to;
    }
    conn.execute_batch("ANALYZE")?;
    Ok(())
}

/// Prints the lease query's plan on the filled queue, inside a transaction rolled back (EXPLAIN
/// ANALYZE runs the query, which takes leases).
async fn explain(url: &str, batch: usize) -> Result<()> {
    let (mut client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let tx = client.transaction().await?;
    let subscribers: Vec<&str> = SUBSCRIBERS.iter().map(|s| s.as_str()).collect();
    let now = i64::MAX / 4;
    let (until, limit) = (now + 60_000, i64::try_from(batch)?);
    let rows = tx
        .query(
            &format!(
                "EXPLAIN (ANALYZE, BUFFERS) {}",
                crate::store::postgres::LEASE_DUE
            ),
            &[&subscribers, &now, &until, &limit, &"gw-bench"],
        )
        .await?;
    for row in rows {
        let line: String = row.get(0);
        eprintln!("  {line}");
    }
    tx.rollback().await?;
    Ok(())
}

/// Runs `gateway bench queue`.
pub async fn run(args: QueueArgs) -> Result<()> {
    if args.per_case == 0 || args.backlog.contains(&0) {
        bail!("--per-case and every --backlog must be above 0");
    }
    let label = match args.store.as_str() {
        "sqlite" => "sqlite",
        url if url.starts_with("postgres") => "postgres",
        _ => bail!("--store must be sqlite or postgres://USER@HOST:PORT/DB"),
    };
    std::fs::create_dir_all(&args.data)?;
    eprintln!(
        "{:>10} {:>9} {:>10} {:>10} {:>10} {:>11} {:>11} {:>8}",
        "backlog",
        "per case",
        "completed",
        "per s",
        "lease p50",
        "lease p99",
        "complete p99",
        "fill s"
    );
    let mut first_rate = None;
    for &backlog in &args.backlog {
        let schema = format!("bench_queue_{}", now_ms());
        let (location, sqlite_file) = if label == "sqlite" {
            // A file per run: the previous run's store may still be closing its own.
            let db = args.data.join(format!("queue-{backlog}.db"));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
            (StoreLocation::Sqlite(db.clone()), Some(db))
        } else {
            let separator = if args.store.contains('?') { '&' } else { '?' };
            let url = format!(
                "{}{separator}options=-c%20search_path%3D{schema}",
                args.store
            );
            (StoreLocation::Postgres(url), None)
        };
        let filled = Instant::now();
        // The store makes its tables; then they are filled from outside.
        drop(AnyStore::open(&location, 8).await?);
        match (&location, &sqlite_file) {
            (StoreLocation::Postgres(url), _) => fill_postgres(url, backlog, args.per_case).await?,
            (_, Some(path)) => {
                let path = path.clone();
                let per_case = args.per_case;
                tokio::task::spawn_blocking(move || fill_sqlite(&path, backlog, per_case)).await??
            }
            _ => unreachable!("a SQLite location has its file"),
        }
        let fill_seconds = filled.elapsed().as_secs_f64();
        let store = AnyStore::open(&location, args.workers + 4).await?;
        let result = measure(&store, &args, backlog, label, fill_seconds).await?;
        drop(store);
        if let (true, StoreLocation::Postgres(url)) = (args.explain, &location) {
            eprintln!("lease query at a backlog of {backlog} (after the run):");
            explain(url, args.batch).await?;
        }
        match &location {
            StoreLocation::Postgres(_) => super::scratch::drop_schema(&args.store, &schema).await,
            StoreLocation::Sqlite(db) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
                }
            }
        }
        eprintln!(
            "{:>10} {:>9} {:>10} {:>10.0} {:>10.2} {:>11.2} {:>11.2} {:>8.1}",
            result.backlog,
            result.per_case,
            result.completed,
            result.lease_complete_per_s,
            result.lease_p50_ms,
            result.lease_p99_ms,
            result.complete_p99_ms,
            result.fill_seconds
        );
        println!("{}", serde_json::to_string(&result)?);
        let rate = result.lease_complete_per_s;
        match first_rate {
            None => first_rate = Some(rate),
            Some(first) if first > 0.0 => {
                eprintln!(
                    "  {:.0}% of the rate at the first backlog",
                    100.0 * rate / first
                );
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Leases and completes up to `args.deliveries` deliveries with `args.workers` workers.
async fn measure(
    store: &AnyStore,
    args: &QueueArgs,
    backlog: u64,
    label: &'static str,
    fill_seconds: f64,
) -> Result<QueueResult> {
    let target = args.deliveries.min(backlog / 2).max(1);
    let completed = Arc::new(AtomicU64::new(0));
    let leases = Arc::new(Mutex::new(histogram()));
    let completions = Arc::new(Mutex::new(histogram()));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..args.workers.max(1) {
        let (store, completed, leases, completions) = (
            store.clone(),
            completed.clone(),
            leases.clone(),
            completions.clone(),
        );
        let batch = args.batch;
        workers.spawn(async move {
            let node = format!("bench-{worker}");
            while completed.load(Ordering::Relaxed) < target {
                // Far in the future: every filled delivery is due.
                let now = i64::MAX / 4;
                let asked = Instant::now();
                let leased = store
                    .lease_due(&node, SUBSCRIBERS.to_vec(), now, 60_000, batch)
                    .await?;
                leases
                    .lock()
                    .await
                    .saturating_record(micros(asked.elapsed()));
                if leased.is_empty() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                let outcomes = leased
                    .iter()
                    .map(|d| Outcome::of(d, Settled::Delivered { at: now }))
                    .collect();
                let asked = Instant::now();
                let held = store.record_outcomes(outcomes).await?;
                completions
                    .lock()
                    .await
                    .saturating_record(micros(asked.elapsed()));
                let done = held.iter().filter(|h| **h).count() as u64;
                completed.fetch_add(done, Ordering::Relaxed);
            }
            Ok::<_, crate::store::StoreError>(())
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let completed = completed.load(Ordering::Relaxed);
    let (leases, completions) = (leases.lock().await, completions.lock().await);
    Ok(QueueResult {
        store: label,
        backlog,
        per_case: args.per_case,
        completed,
        lease_complete_per_s: completed as f64 / seconds.max(1e-9),
        lease_p50_ms: quantile_ms(&leases, 0.5),
        lease_p99_ms: quantile_ms(&leases, 0.99),
        complete_p50_ms: quantile_ms(&completions, 0.5),
        complete_p99_ms: quantile_ms(&completions, 0.99),
        fill_seconds,
    })
}

fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}
