//! The PostgreSQL store, shared by several gateway nodes.
//!
//! - A [`deadpool_postgres`] pool of connections: plain TCP, or TLS with the server verified
//!   when the URL asks for it with libpq's parameters (`sslmode=verify-full&sslrootcert=PATH`;
//!   see [`tls`]).
//! - **Group commit for ingest**: three batcher tasks take turns taking the ingests queued on a
//!   bounded channel (up to 256 at a time), each committing its group on a connection of its own
//!   while the next group is being written. A group of plain messages is one multi-row statement
//!   ([`INSERT_BATCH`]: messages, events and deliveries) sent together with its `BEGIN`, then
//!   `COMMIT` with `synchronous_commit = on`; only then does every caller get its reply. When
//!   that statement fails, the group is rolled back and committed again one savepoint per
//!   message, so that a failing message fails alone (survey publications always take that way).
//!   The rows are encoded by each caller before it queues, off the batchers' path.
//! - **Leasing** with `FOR UPDATE SKIP LOCKED`: several nodes lease at once and never get the
//!   same delivery under an unexpired lease, nor two deliveries of one (subscriber, case).
//!   Taking a lease commits with `synchronous_commit = off` (a crash may forget a lease, which
//!   only makes its delivery due again); outcomes are settled in batches, durably.
//! - Work is announced with `NOTIFY` after the work's commit, in a transaction of its own.
//! - The store vacuums and analyzes its own tables (`maintain`): autovacuum may be off.
//! - Every lookup of a case queue (`deliveries_case_queue`: the oldest pending delivery of a
//!   (subscriber, case)) carries `OFFSET 0`. A backlog can grow from nothing to 100,000
//!   deliveries between two ANALYZEs; the planner, told a subscriber has one pending delivery,
//!   then joins a whole subscriber's backlog against itself with a join filter instead of
//!   probing the index per row (seen with auto_explain: one promotion of 800 heads took 140 s,
//!   a lease 2.4 s). `OFFSET 0` keeps a `NOT EXISTS` or a lateral lookup a correlated subplan,
//!   which can only run as an index probe per outer row, whatever the statistics say.
//! - Versioned migrations in `schema_migrations`, applied in one transaction under an advisory
//!   lock, so nodes starting together are safe.
//! - `work_notifications`: a dedicated connection `LISTEN`s on `exchange_work` and bumps a
//!   counter on every notification (and after every reconnect, so nothing is missed).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{
    ClientWrapper, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime,
};
use schemas::{BureauCaseId, BureauId, JointCaseId, ProjectCode, SurveyId, SurveyKind};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, Config, Row};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::audit::{self, Link};
use super::codec::{self, SURVEY_COLUMNS, lease_to_sql, sql_limit};
use super::joint::{CaseClock, JointCase};
use super::{
    AfterFailure, Attempt, Backlog, CreditMatchRecord, CreditRecord, DeadLetter, Delivery,
    DeliveryId, FlowEvent, FlowStep, IngestOutcome, Millis, NewMessage, NodeReport, NodeReports,
    Outcome, Pause, QueueStat, ReadOf, ReceivedEvent, ReplaySelector, Settled, Store, StoreError,
    SurveyRead, SurveyRecord, TimelineEvent, TimelineKey,
};

mod db;
mod ops;
mod trail;

use db::{get, pg_err, pool_err, relaxed};

mod schema;
pub mod tls;
pub(crate) use schema::MIGRATIONS;

/// How many ingests may wait for the batcher; callers wait when it is full.
const QUEUE_CAPACITY: usize = 1024;

/// At most this many ingests share one transaction.
const MAX_BATCH: usize = 256;

/// Batchers committing groups at once, each on a connection of its own for the group: while
/// one waits for its commit to reach the disk, the next group is already being written.
const INGEST_WRITERS: usize = 3;

/// How long a call waits for a pooled connection (or for a new one to be made) before the store
/// reports itself unavailable: an outage answers 503 quickly instead of hanging.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// TCP connect timeout when the URL sets none.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection whose peer stops acknowledging data for this long is dropped (when the URL sets
/// no `tcp_user_timeout`), so a vanished server ends calls with an error instead of a hang.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

/// Session settings of every connection (see [`parse_config`]).
const SESSION_OPTIONS: &str = "-c jit=off -c plan_cache_mode=force_custom_plan";

/// The `LISTEN/NOTIFY` channel new work is announced on.
const WORK_CHANNEL: &str = "exchange_work";

/// Advisory lock key held (transaction-scoped, database-wide) while migrating.
const MIGRATION_LOCK: i64 = 0x6578_6368_6d69_6772; // "exchmigr"

/// Advisory lock class held (transaction-scoped) while cleaning up; the second key is the hash
/// of the current schema, so gateways sharing a database in separate schemas do not block
/// each other.
const CLEANUP_LOCK: i32 = 0x6578_636c; // "excl"

/// Advisory lock class held (session-level, on one pooled connection, released at once) while
/// one node vacuums and analyzes the tables; the second key is the schema's hash.
const MAINTENANCE_LOCK: i32 = 0x6578_7661; // "exva"

/// How often the tables are vacuumed and analyzed (see [`maintain`]).
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(2);

/// Seed of the hash that makes a node name (with the schema) a session-level advisory lock key
/// (see `claim_node`).
const NODE_LOCK_SEED: i64 = 0x6578_6e6f_6465; // "exnode"

/// The reconnect backoff of the listener: from the first to the last, doubling.
const LISTEN_BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// One ingest waiting for a batcher, its rows already encoded by the caller (off the writers'
/// path).
struct IngestJob {
    message: NewMessage,
    rows: codec::IngestRows,
    reply_to: oneshot::Sender<Result<IngestOutcome, StoreError>>,
}

/// The PostgreSQL store. Cheap to clone: clones share the pool, the batcher and the listener,
/// which stop once the last clone is dropped.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    ingests: mpsc::Sender<IngestJob>,
    commits: Arc<AtomicU64>,
    work: watch::Receiver<u64>,
    direct: Arc<Direct>,
    /// The audit trail's writing lanes (see [`trail`]).
    lanes: Arc<trail::Lanes>,
}

/// What a store needs for its connections outside the pool.
struct Direct {
    /// How to connect.
    config: Config,
    tls: MakeRustlsConnect,
    /// The connection holding this node's name (see [`Store::claim_node`]), kept until the
    /// last clone of the store goes.
    claim: std::sync::Mutex<Option<tokio_postgres::Client>>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PgStore")
            .field("commits", &self.commits())
            .field("pool_size", &status.size)
            .field("pool_available", &status.available)
            .field("closed", &self.ingests.is_closed())
            .finish()
    }
}

impl PgStore {
    /// Connects to `url` (e.g. `postgres://user@127.0.0.1:5432/db`; `options=-c
    /// search_path=NAME` selects a schema, created when missing), brings the schema up to date,
    /// and starts the ingest batcher and the `LISTEN` task. `pool_size` bounds the connections
    /// the store opens (plus one for `LISTEN`, and one holding the node's name once claimed).
    /// With `sslmode=verify-full&sslrootcert=PATH` (or `verify-ca`, `require`: see [`tls`])
    /// every connection is TLS, and a server whose certificate does not verify is refused.
    pub async fn connect(url: &str, pool_size: usize) -> Result<PgStore, StoreError> {
        let (config, tls) = parse_config(url)?;
        migrate_config(&config, &tls).await?;

        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .recycle_timeout(Some(POOL_TIMEOUT))
            .build()
            .map_err(|e| StoreError::unavailable_from("cannot build the pool", e))?;

        let (ingests, jobs) = mpsc::channel(QUEUE_CAPACITY);
        let commits = Arc::new(AtomicU64::new(0));
        let jobs = Arc::new(tokio::sync::Mutex::new(jobs));
        let writers = INGEST_WRITERS.min(pool_size.max(1));
        let lanes = Arc::new(trail::Lanes::new(writers));
        for lane in 0..writers {
            tokio::spawn(batcher(
                pool.clone(),
                jobs.clone(),
                Arc::clone(&commits),
                Arc::clone(&lanes),
                lane,
            ));
        }
        let (counter, work) = watch::channel(0);
        tokio::spawn(listen(config.clone(), tls.clone(), counter));
        tokio::spawn(maintain(pool.clone(), ingests.downgrade()));
        Ok(PgStore {
            pool,
            ingests,
            commits,
            work,
            direct: Arc::new(Direct {
                config,
                tls,
                claim: std::sync::Mutex::new(None),
            }),
            lanes,
        })
    }

    /// How many ingest transactions this store has committed since `connect`. Grows by one per
    /// group of ingests, not per ingest.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(pool_err)
    }
}

/// Brings the schema at `url` up to date (`gateway migrate`), then disconnects. Safe while
/// other nodes start or migrate too.
pub async fn migrate(url: &str) -> Result<(), StoreError> {
    let (config, tls) = parse_config(url)?;
    migrate_config(&config, &tls).await
}

/// Parses the URL, fills in the timeouts it does not set, and makes the connector its TLS
/// parameters ask for.
fn parse_config(url: &str) -> Result<(Config, MakeRustlsConnect), StoreError> {
    let split = tls::split_url(url)?;
    let mut config = Config::from_str(&split.url)
        .map_err(|e| StoreError::unavailable_from("invalid PostgreSQL URL", e))?;
    config.ssl_mode(if split.protection.is_tls() {
        tokio_postgres::config::SslMode::Require
    } else {
        tokio_postgres::config::SslMode::Disable
    });
    if split.protection == tls::Protection::Unauthenticated {
        tracing::warn!(
            "sslmode=require without sslrootcert: connections to PostgreSQL are encrypted but \
             the server is not authenticated; use sslmode=verify-full&sslrootcert=PATH"
        );
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(TCP_USER_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("exchange-gateway");
    }
    // Every statement is a short indexed lookup: JIT compilation only adds tens of
    // milliseconds, and a generic plan (made without knowing the subscriber or the limit) may
    // prefer a scan to the partial indexes; plan with the actual values each time. Settings in
    // the URL's own `options` come later and win.
    let options = match config.get_options() {
        Some(own) => format!("{SESSION_OPTIONS} {own}"),
        None => SESSION_OPTIONS.to_owned(),
    };
    config.options(options);
    let connector = tls::connector(&split.protection)?;
    Ok((config, connector))
}

/// The first schema of a `-c search_path=...` in the connection options, as PostgreSQL reads
/// it (unquoted names are folded to lower case), unless it is `$user`.
fn search_path_schema(options: &str) -> Option<String> {
    let (_, after) = options.split_once("search_path=")?;
    let setting = after.split_whitespace().next()?;
    let first = setting.split(',').next()?.trim();
    let name = match first.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => first.to_lowercase(),
    };
    (!name.is_empty() && name != "$user").then_some(name)
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Connects once, outside the pool, and applies the missing migrations in one transaction that
/// holds [`MIGRATION_LOCK`]: a second node starting at the same time waits, then finds them
/// applied.
async fn migrate_config(config: &Config, tls: &MakeRustlsConnect) -> Result<(), StoreError> {
    let (mut client, connection) = config.connect(tls.clone()).await.map_err(pg_err)?;
    let driver = tokio::spawn(connection);
    let result = async {
        let tx = client.transaction().await.map_err(pg_err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg_err)?;
        if let Some(schema) = config.get_options().and_then(search_path_schema) {
            tx.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                quote_ident(&schema)
            ))
            .await
            .map_err(pg_err)?;
        }
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version    INTEGER     PRIMARY KEY,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )",
        )
        .await
        .map_err(pg_err)?;
        let version: i32 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .await
            .map_err(pg_err)?
            .try_get(0)
            .map_err(|e| StoreError::corrupt_from("schema version", e))?;
        let applied = codec::applied_migrations(version.into(), MIGRATIONS.len())?;
        for (step, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
            tx.batch_execute(sql).await.map_err(pg_err)?;
            let version = i32::try_from(step + 1)
                .map_err(|e| StoreError::corrupt_from("schema version", e))?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)
    }
    .await;
    drop(client);
    let _ = driver.await;
    result
}

/// A batcher: takes the next group of queued ingests (the batchers take turns) and commits it,
/// until every sender is gone.
async fn batcher(
    pool: Pool,
    jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<IngestJob>>>,
    commits: Arc<AtomicU64>,
    lanes: Arc<trail::Lanes>,
    lane: usize,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let taken = jobs.lock().await.recv_many(&mut batch, MAX_BATCH).await;
        if taken == 0 {
            return;
        }
        // This batcher's own chain: no other batcher waits for it.
        let mut lane = lanes.lock(trail::LaneId::Ingest(lane)).await;
        commit_batch(&pool, std::mem::take(&mut batch), &commits, &mut lane).await;
    }
}

/// Commits a group of ingests: the plain messages with one multi-row statement
/// ([`INSERT_BATCH`]); if that statement fails (one bad message fails it all), or for messages
/// that publish a survey or credit entries or record a credit match, one savepoint per message,
/// so that a failing message fails alone.
async fn commit_batch(
    pool: &Pool,
    batch: Vec<IngestJob>,
    commits: &AtomicU64,
    lane: &mut trail::Lane,
) {
    let client = match pool.get().await {
        Ok(client) => client,
        Err(e) => {
            let e = pool_err(e);
            for job in batch {
                let _ = job.reply_to.send(Err(e.clone()));
            }
            return;
        }
    };
    let (plain, one_by_one): (Vec<IngestJob>, Vec<IngestJob>) =
        batch.into_iter().partition(|job| {
            // A survey, credit entries or a credit match have rows of their own: one by one.
            job.message.survey.is_none()
                && job.message.credit.is_empty()
                && job.message.credit_match.is_none()
        });
    let had_plain = !plain.is_empty();
    let rest = match commit_plain(&client, plain, lane).await {
        Ok(()) => {
            if had_plain {
                commits.fetch_add(1, Ordering::Relaxed);
            }
            one_by_one
        }
        Err((error, plain)) => {
            tracing::debug!(message = "a group commit failed; committing its messages one by one", %error);
            if client.batch_execute("ROLLBACK").await.is_err() {
                drop(Object::take(client));
                let mut all = plain;
                all.extend(one_by_one);
                return retry_alone(pool, all, commits, lane).await;
            }
            let mut all = plain;
            all.extend(one_by_one);
            all
        }
    };
    if !rest.is_empty() {
        commit_one_by_one(&client, rest, commits, lane).await;
    }
}

/// On a fresh connection, [`commit_one_by_one`] (the group's connection was lost).
async fn retry_alone(
    pool: &Pool,
    jobs: Vec<IngestJob>,
    commits: &AtomicU64,
    lane: &mut trail::Lane,
) {
    match pool.get().await {
        Ok(client) => commit_one_by_one(&client, jobs, commits, lane).await,
        Err(e) => {
            let e = pool_err(e);
            for job in jobs {
                let _ = job.reply_to.send(Err(e.clone()));
            }
        }
    }
}

/// The `queued` CTE of both ingest statements ([`INSERT_BATCH`], and `ingest_in` for one
/// message in its savepoint): the distinct (subscriber, case) queues the new deliveries join, each
/// with its oldest pending delivery locked `FOR UPDATE`, in (subscriber, case) order — the order
/// outcome batches lock in ([`LOCK_IN_QUEUE_ORDER`]), so the two cannot deadlock. A queue listed
/// here already has a head. `$subscribers`, `$cases`: the statement's parameters holding the
/// deliveries' subscribers and case keys.
macro_rules! lock_oldest_pending {
    ($subscribers:literal, $cases:literal) => {
        concat!(
            "queued AS (
        SELECT k.subscriber, k.case_key
        FROM (SELECT DISTINCT q.subscriber, q.case_key
              FROM UNNEST(",
            $subscribers,
            "::text[], ",
            $cases,
            "::text[]) AS q (subscriber, case_key)
              ORDER BY q.subscriber, q.case_key) AS k
        CROSS JOIN LATERAL (
            SELECT 1 FROM deliveries o
            WHERE o.subscriber = k.subscriber AND o.case_key = k.case_key
              AND o.state = 'pending'
              -- The queue's oldest, written without ORDER BY ... LIMIT: with it, the planner
              -- may walk a subscriber's whole backlog in `deliveries_feed`, whose (subscriber,
              -- id) order satisfies it once the case is fixed; this way both lookups use
              -- `deliveries_case_queue`.
              AND NOT EXISTS (
                  SELECT 1 FROM deliveries p
                  WHERE p.subscriber = o.subscriber AND p.case_key = o.case_key
                    AND p.state = 'pending' AND p.id < o.id
                  -- A probe per row, whatever the statistics (OFFSET 0: module docs).
                  OFFSET 0)
            LIMIT 1
            FOR UPDATE
        ) AS oldest
    )"
        )
    };
}

/// Writes every message of the group, its events and their deliveries in one statement:
/// messages whose (sender, key) is already stored are skipped by `ON CONFLICT`, and so are
/// their events. `$1`..`$7` the messages' columns; `$8`..`$16` one element per event (its
/// message's sender and key, then its columns); `$17`..`$20` one per delivery (its event's
/// gateway id, subscriber, case, time); `$20`..`$29` the audit entries ([`trail::INSERT`]'s
/// columns). `ORDER BY ord` makes the ids follow the order of the
/// group, which is the order of each (subscriber, case) queue. A delivery is its queue's head
/// when it is the group's first for its (subscriber, case) and nothing is pending there
/// (`queued`). That check locks the oldest pending delivery of each queue (in (subscriber,
/// case) order, as every batch does, so batches cannot deadlock): a concurrent outcome batch
/// completing that very delivery either commits first — the lock waits for it, and its row is
/// then no longer pending — or waits for this batch, and then finds and promotes the delivery
/// written here. A queue is never left with pending deliveries and no head. Returns the (sender, key) of
/// each message written and the number of deliveries written.
#[doc(hidden)] // public for the EXPLAIN test of tests/tests/postgres.rs
pub const INSERT_BATCH: &str = concat!(
    "WITH m AS (
        INSERT INTO messages
            (sender, idempotency_key, content_type, body, sha256, received_at, receipt)
        SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[],
                             $6::int8[], $7::text[])
        ON CONFLICT (sender, idempotency_key) DO NOTHING
        RETURNING id, sender, idempotency_key
    ),
    e AS (
        INSERT INTO events
            (message_id, gateway_message_id, source_message_id, source, case_key, event, project,
             flow_pending)
        SELECT m.id, u.gateway_id, u.source_id, u.source, u.case_key, u.event, u.project, u.flow
        FROM UNNEST($8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
                    $14::text[], $15::text[], $30::bool[])
             WITH ORDINALITY AS u (sender, key, gateway_id, source_id, source, case_key, event,
                                   project, flow, ord)
        JOIN m ON m.sender = u.sender AND m.idempotency_key = u.key
        ORDER BY u.ord
        RETURNING id, gateway_message_id
    ),
    ",
    lock_oldest_pending!("$17", "$18"),
    ",
    d AS (
        INSERT INTO deliveries
            (event_id, subscriber, case_key, state, due_at, created_at, head)
        SELECT e.id, x.subscriber, x.case_key, 'pending', x.at, x.at,
               x.ord = MIN(x.ord) OVER (PARTITION BY x.subscriber, x.case_key)
               AND NOT EXISTS (SELECT 1 FROM queued q
                               WHERE q.subscriber = x.subscriber AND q.case_key = x.case_key)
        FROM UNNEST($16::text[], $17::text[], $18::text[], $19::int8[])
             WITH ORDINALITY AS x (gateway_id, subscriber, case_key, at, ord)
        JOIN e ON e.gateway_message_id = x.gateway_id
        ORDER BY x.ord
        RETURNING 1
    ),
    -- The group's audit entries, in the batcher's chain (`$20`); written whole, so the group is
    -- redone message by message when one of its messages was stored before (see commit_plain).
    a AS (
        INSERT INTO audit_log
            (chain, seq, at, kind, bureau, message_id, content, content_sha256, prev_hash, hash)
        SELECT $20::text, u.*
        FROM UNNEST($21::int8[], $22::int8[], $23::text[], $24::text[], $25::text[],
                    $26::text[], $27::text[], $28::text[], $29::text[]) AS u
    )
    SELECT m.sender, m.idempotency_key, (SELECT count(*) FROM d) FROM m"
);

/// The columns of [`INSERT_BATCH`] for a group of messages (the first of each (sender, key)).
#[derive(Default)]
struct BatchColumns<'a> {
    senders: Vec<&'a str>,
    keys: Vec<&'a str>,
    content_types: Vec<&'a str>,
    bodies: Vec<&'a [u8]>,
    sha256s: Vec<&'a str>,
    received: Vec<i64>,
    receipts: Vec<&'a str>,
    event_senders: Vec<&'a str>,
    event_keys: Vec<&'a str>,
    gateway_ids: Vec<&'a str>,
    source_ids: Vec<&'a str>,
    sources: Vec<&'a str>,
    case_keys: Vec<&'a str>,
    jsons: Vec<&'a str>,
    projects: Vec<&'a str>,
    for_flows: Vec<bool>,
    delivery_events: Vec<&'a str>,
    delivery_subscribers: Vec<&'a str>,
    delivery_cases: Vec<&'a str>,
    delivery_times: Vec<i64>,
}

impl<'a> BatchColumns<'a> {
    fn push(&mut self, job: &'a IngestJob) {
        let message = &job.message;
        let (sender, key) = (message.sender.as_str(), message.idempotency_key.as_str());
        self.senders.push(sender);
        self.keys.push(key);
        self.content_types.push(&message.content_type);
        self.bodies.push(&message.body);
        self.sha256s.push(message.sha256.as_str());
        self.received.push(message.received_at);
        self.receipts.push(&job.rows.receipt_json);
        for event in &job.rows.events {
            self.event_senders.push(sender);
            self.event_keys.push(key);
            self.gateway_ids.push(&event.gateway_id);
            self.source_ids.push(&event.source_id);
            self.sources.push(event.source);
            self.case_keys.push(&event.case_key);
            self.jsons.push(&event.json);
            self.projects.push(&event.project);
            self.for_flows.push(event.for_flows);
            for subscriber in &event.subscribers {
                self.delivery_events.push(&event.gateway_id);
                self.delivery_subscribers.push(subscriber.as_str());
                self.delivery_cases.push(&event.case_key);
                self.delivery_times.push(message.received_at);
            }
        }
    }
}

/// Commits plain messages (no survey) as one group: BEGIN and [`INSERT_BATCH`] pipelined (sent
/// together, one round trip), then `NOTIFY` and `COMMIT` in one exchange; replies after the
/// commit. A repeated (sender, key) — stored before, or earlier in the same group — gets the
/// first receipt. On failure nothing is committed and the jobs are handed back, unanswered.
async fn commit_plain(
    client: &Object,
    jobs: Vec<IngestJob>,
    lane: &mut trail::Lane,
) -> Result<(), (StoreError, Vec<IngestJob>)> {
    if jobs.is_empty() {
        return Ok(());
    }
    let mut head = match lane.head(client).await {
        Ok(head) => head,
        Err(error) => return Err((error, jobs)),
    };
    let mut audit = trail::Columns::default();
    // The first job of each (sender, key) is written; the later ones answer as it does.
    let mut first_of: std::collections::HashMap<(&str, &str), usize> =
        std::collections::HashMap::new();
    let mut leader = Vec::with_capacity(jobs.len());
    let mut columns = BatchColumns::default();
    for (index, job) in jobs.iter().enumerate() {
        let key = (
            job.message.sender.as_str(),
            job.message.idempotency_key.as_str(),
        );
        match first_of.get(&key) {
            Some(&first) => leader.push(Some(first)),
            None => {
                first_of.insert(key, index);
                leader.push(None);
                columns.push(job);
                let records = audit::ingest_records(&job.message, &head);
                match audit::append_all(&mut head, lane.chain(), job.message.received_at, &records)
                {
                    Ok(rows) => audit.extend(rows),
                    Err(error) => return Err((error, jobs)),
                }
            }
        }
    }
    let leaders = first_of.len();
    let chain = lane.chain().to_owned();
    let written = async {
        let statement = client.prepare_cached(INSERT_BATCH).await.map_err(pg_err)?;
        let begin = client.batch_execute("BEGIN; SET LOCAL synchronous_commit = on");
        let c = &columns;
        let [a1, a2, a3, a4, a5, a6, a7, a8, a9] = audit.params();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 30] = [
            &c.senders,
            &c.keys,
            &c.content_types,
            &c.bodies,
            &c.sha256s,
            &c.received,
            &c.receipts,
            &c.event_senders,
            &c.event_keys,
            &c.gateway_ids,
            &c.source_ids,
            &c.sources,
            &c.case_keys,
            &c.jsons,
            &c.projects,
            &c.delivery_events,
            &c.delivery_subscribers,
            &c.delivery_cases,
            &c.delivery_times,
            &chain,
            a1,
            a2,
            a3,
            a4,
            a5,
            a6,
            a7,
            a8,
            a9,
            &c.for_flows,
        ];
        let insert = client.query(&statement, &params);
        let (begun, rows) = tokio::join!(begin, insert);
        begun.map_err(pg_err)?;
        let rows = rows.map_err(pg_err)?;
        let mut written = std::collections::HashSet::new();
        let mut deliveries = 0i64;
        for row in &rows {
            let sender: &str = get(row, 0)?;
            let key: &str = get(row, 1)?;
            deliveries = get(row, 2)?;
            written.insert((sender.to_owned(), key.to_owned()));
        }
        if written.len() != leaders {
            // A message of the group was stored before: its entries must not be in the chain.
            return Err(StoreError::Conflict(
                "a message of the group was stored before".into(),
            ));
        }
        let promised: usize = jobs
            .iter()
            .zip(&leader)
            .filter(|(job, leader)| {
                leader.is_none()
                    && written.contains(&(
                        job.message.sender.as_str().to_owned(),
                        job.message.idempotency_key.as_str().to_owned(),
                    ))
            })
            .map(|(job, _)| job.rows.receipt.deliveries)
            .sum();
        if usize::try_from(deliveries).ok() != Some(promised) {
            return Err(StoreError::corrupt(format!(
                "{deliveries} deliveries written for {promised} routed"
            )));
        }
        client.batch_execute("COMMIT").await.map_err(pg_err)?;
        if !written.is_empty() {
            announce_work(client).await;
        }
        Ok(written)
    }
    .await;
    let written = match written {
        Ok(written) => {
            lane.committed(head);
            written
        }
        Err(error) => {
            lane.forget();
            return Err((error, jobs));
        }
    };
    drop(columns);

    // Committed. Messages seen before answer with their first receipt, read now.
    let seen: Vec<usize> = (0..jobs.len())
        .filter(|&i| {
            let m = &jobs[i].message;
            leader[i].is_none()
                && !written.contains(&(
                    m.sender.as_str().to_owned(),
                    m.idempotency_key.as_str().to_owned(),
                ))
        })
        .collect();
    let stored = if seen.is_empty() {
        Ok(std::collections::HashMap::new())
    } else {
        stored_receipts(client, seen.iter().map(|&i| &jobs[i].message)).await
    };
    let mut outcomes: Vec<Result<IngestOutcome, StoreError>> = Vec::with_capacity(jobs.len());
    for (index, job) in jobs.iter().enumerate() {
        let m = &job.message;
        let id = (
            m.sender.as_str().to_owned(),
            m.idempotency_key.as_str().to_owned(),
        );
        let outcome = match leader[index] {
            Some(first) => match &outcomes[first] {
                Ok(IngestOutcome::Accepted(receipt) | IngestOutcome::Duplicate(receipt)) => {
                    Ok(IngestOutcome::Duplicate(receipt.clone()))
                }
                Err(error) => Err(error.clone()),
            },
            None if written.contains(&id) => Ok(IngestOutcome::Accepted(job.rows.receipt.clone())),
            None => match &stored {
                Ok(stored) => stored
                    .get(&id)
                    .cloned()
                    .map(IngestOutcome::Duplicate)
                    .ok_or_else(|| {
                        StoreError::unavailable("the first message with this key went away")
                    }),
                Err(error) => Err(error.clone()),
            },
        };
        outcomes.push(outcome);
    }
    for (job, outcome) in jobs.into_iter().zip(outcomes) {
        let _ = job.reply_to.send(outcome);
    }
    Ok(())
}

/// The stored receipts of messages, by (sender, key).
async fn stored_receipts<'a>(
    client: &ClientWrapper,
    messages: impl Iterator<Item = &'a NewMessage>,
) -> Result<std::collections::HashMap<(String, String), super::Receipt>, StoreError> {
    let (senders, keys): (Vec<&str>, Vec<&str>) = messages
        .map(|m| (m.sender.as_str(), m.idempotency_key.as_str()))
        .unzip();
    let rows = client
        .query(
            "SELECT m.sender, m.idempotency_key, m.receipt
             FROM messages m
             JOIN UNNEST($1::text[], $2::text[]) AS u (sender, key)
               ON m.sender = u.sender AND m.idempotency_key = u.key",
            &[&senders, &keys],
        )
        .await
        .map_err(pg_err)?;
    rows.iter()
        .map(|row| {
            Ok((
                (get::<String>(row, 0)?, get::<String>(row, 1)?),
                codec::receipt(get(row, 2)?)?,
            ))
        })
        .collect()
}

/// Runs ingests in one transaction, each in its own savepoint (a failing message rolls back
/// alone), commits, then replies to all.
async fn commit_one_by_one(
    client: &Object,
    batch: Vec<IngestJob>,
    commits: &AtomicU64,
    lane: &mut trail::Lane,
) {
    let mut done = Vec::with_capacity(batch.len());
    let mut pending = batch.into_iter();
    let chain = lane.chain().to_owned();
    let mut head = Link::genesis();
    let result = async {
        head = lane.head(client).await?;
        // Ingest is always durable, whatever the server's default.
        client
            .batch_execute("BEGIN; SET LOCAL synchronous_commit = on")
            .await
            .map_err(pg_err)?;
        let mut accepted = false;
        for job in pending.by_ref() {
            // Taken out of `pending` now: from here on, its reply is `done`'s business.
            let IngestJob {
                message,
                rows,
                reply_to,
            } = job;
            let before = head.clone();
            let outcome = match client.batch_execute("SAVEPOINT ingest").await {
                Ok(()) => ingest_in(client, message, rows, &chain, &mut head).await,
                Err(e) => Err(pg_err(e)),
            };
            if outcome.is_err() {
                head = before;
            }
            let close = match &outcome {
                Ok(_) => "RELEASE SAVEPOINT ingest",
                Err(_) => "ROLLBACK TO SAVEPOINT ingest; RELEASE SAVEPOINT ingest",
            };
            accepted |= matches!(outcome, Ok(IngestOutcome::Accepted(_)));
            done.push((reply_to, outcome));
            client.batch_execute(close).await.map_err(pg_err)?;
        }
        client.batch_execute("COMMIT").await.map_err(pg_err)?;
        if accepted {
            announce_work(client).await;
        }
        Ok::<_, StoreError>(())
    }
    .await;
    match result {
        Ok(()) => {
            lane.committed(head);
            commits.fetch_add(1, Ordering::Relaxed);
            for (reply_to, outcome) in done {
                let _ = reply_to.send(outcome);
            }
        }
        Err(e) => {
            // Nothing of the group is committed (or, if COMMIT itself was lost, its fate is
            // unknown: a retry with the same key answers either way).
            lane.forget();
            let _ = client.batch_execute("ROLLBACK").await;
            for (reply_to, _) in done {
                let _ = reply_to.send(Err(e.clone()));
            }
            for job in pending {
                let _ = job.reply_to.send(Err(e.clone()));
            }
        }
    }
}

async fn insert_survey(
    client: &ClientWrapper,
    message_row: i64,
    survey: &SurveyRecord,
) -> Result<(), StoreError> {
    let c = codec::survey_columns(survey)?;
    let inserted = client
        .execute(
            "INSERT INTO surveys
                (id, message_id, project, kind, version, supersedes, publisher, result, published_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &c.id,
                &message_row,
                &c.project,
                &c.kind,
                &c.version,
                &c.supersedes,
                &c.publisher,
                &c.result,
                &c.published_at,
            ],
        )
        .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            Err(codec::survey_version_taken(survey.result.version))
        }
        Err(e) => Err(pg_err(e)),
    }
}

async fn insert_credit(
    client: &ClientWrapper,
    message_row: i64,
    record: &CreditRecord,
) -> Result<(), StoreError> {
    let c = codec::credit_columns(record)?;
    let statement = client
        .prepare_cached(
            "INSERT INTO credit_entries
                (publisher, entry_id, version, credit_code, list, message_id, listed_at, entry)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .await
        .map_err(pg_err)?;
    let inserted = client
        .execute(
            &statement,
            &[
                &c.publisher,
                &c.entry_id,
                &c.version,
                &c.credit_code,
                &c.list,
                &message_row,
                &c.listed_at,
                &c.entry,
            ],
        )
        .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            Err(codec::credit_version_taken(record))
        }
        Err(e) => Err(pg_err(e)),
    }
}

/// Records a credit match with its notice; a match recorded already stays as it was.
async fn insert_credit_match(
    client: &ClientWrapper,
    message_row: i64,
    record: &CreditMatchRecord,
) -> Result<(), StoreError> {
    let c = codec::credit_match_columns(record)?;
    let statement = client
        .prepare_cached(
            "INSERT INTO credit_matches
                (publisher, entry_id, bureau, case_id, message_id, matched_at, record)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (publisher, entry_id, bureau, case_id) DO NOTHING",
        )
        .await
        .map_err(pg_err)?;
    client
        .execute(
            &statement,
            &[
                &c.publisher,
                &c.entry_id,
                &c.bureau,
                &c.case_id,
                &message_row,
                &c.matched_at,
                &c.record,
            ],
        )
        .await
        .map_err(pg_err)?;
    Ok(())
}

/// Reads credit matches from rows of [`codec::CREDIT_MATCH_COLUMNS`].
fn credit_match_records(rows: &[Row]) -> Result<Vec<CreditMatchRecord>, StoreError> {
    rows.iter()
        .map(|row| codec::credit_match_record(get(row, 0)?))
        .collect()
}

/// Reads credit records from rows of [`codec::CREDIT_COLUMNS`].
fn credit_records(rows: &[Row]) -> Result<Vec<CreditRecord>, StoreError> {
    rows.iter()
        .map(|row| codec::credit_record(get(row, 0)?, get(row, 1)?, get(row, 2)?))
        .collect()
}

/// Reads a survey record from a row of [`SURVEY_COLUMNS`].
fn survey_record(row: &Row) -> Result<SurveyRecord, StoreError> {
    codec::survey_record(
        get(row, 0)?,
        get(row, 1)?,
        get(row, 2)?,
        get(row, 3)?,
        get(row, 4)?,
    )
}

async fn ingest_in(
    client: &Object,
    message: NewMessage,
    rows: codec::IngestRows,
    chain: &str,
    head: &mut Link,
) -> Result<IngestOutcome, StoreError> {
    let sender = message.sender.as_str();
    let key = message.idempotency_key.as_str();
    let insert = client
        .prepare_cached(
            "INSERT INTO messages
                (sender, idempotency_key, content_type, body, sha256, received_at, receipt)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (sender, idempotency_key) DO NOTHING
             RETURNING id",
        )
        .await
        .map_err(pg_err)?;
    let inserted = client
        .query_opt(
            &insert,
            &[
                &sender,
                &key,
                &message.content_type,
                &message.body,
                &message.sha256.as_str(),
                &message.received_at,
                &rows.receipt_json,
            ],
        )
        .await
        .map_err(pg_err)?;
    let Some(inserted) = inserted else {
        // Seen before (committed, or earlier in this very transaction).
        let row = client
            .query_opt(
                "SELECT receipt FROM messages WHERE sender = $1 AND idempotency_key = $2",
                &[&sender, &key],
            )
            .await
            .map_err(pg_err)?
            .ok_or_else(|| StoreError::unavailable("the first message with this key went away"))?;
        return Ok(IngestOutcome::Duplicate(codec::receipt(get(&row, 0)?)?));
    };
    let message_row: i64 = get(&inserted, 0)?;
    if let Some(survey) = &message.survey {
        insert_survey(client, message_row, survey).await?;
    }
    for record in &message.credit {
        insert_credit(client, message_row, record).await?;
    }
    if let Some(found) = &message.credit_match {
        insert_credit_match(client, message_row, found).await?;
    }
    let records = audit::ingest_records(&message, head);
    trail::append(
        client,
        chain,
        head,
        records.into_iter().map(|r| (message.received_at, r)),
    )
    .await?;
    let receipt = rows.receipt;
    if rows.events.is_empty() {
        return Ok(IngestOutcome::Accepted(receipt));
    }

    let events = &rows.events;
    let gateway_ids: Vec<&str> = events.iter().map(|e| e.gateway_id.as_str()).collect();
    let source_ids: Vec<&str> = events.iter().map(|e| e.source_id.as_str()).collect();
    let sources: Vec<&str> = events.iter().map(|e| e.source).collect();
    let case_keys: Vec<&str> = events.iter().map(|e| e.case_key.as_str()).collect();
    let jsons: Vec<&str> = events.iter().map(|e| e.json.as_str()).collect();
    let projects: Vec<&str> = events.iter().map(|e| e.project.as_str()).collect();
    let for_flows: Vec<bool> = events.iter().map(|e| e.for_flows).collect();
    let mut delivery_events = Vec::with_capacity(receipt.deliveries);
    let mut delivery_subscribers = Vec::with_capacity(receipt.deliveries);
    let mut delivery_cases = Vec::with_capacity(receipt.deliveries);
    for event in events {
        for subscriber in &event.subscribers {
            delivery_events.push(event.gateway_id.as_str());
            delivery_subscribers.push(subscriber.as_str());
            delivery_cases.push(event.case_key.as_str());
        }
    }
    // Events then deliveries in one statement; `ORDER BY ord` makes the ids follow the order
    // of the message, which is the order of each (subscriber, case) queue; heads as in
    // [`INSERT_BATCH`].
    let insert = client
        .prepare_cached(concat!(
            "WITH new_events AS (
                INSERT INTO events
                    (message_id, gateway_message_id, source_message_id, source, case_key, event,
                     project, flow_pending)
                SELECT $1, u.gateway_id, u.source_id, u.source, u.case_key, u.event, u.project,
                       u.flow
                FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                            $11::text[], $12::bool[])
                     WITH ORDINALITY AS u (gateway_id, source_id, source, case_key, event, project,
                                           flow, ord)
                ORDER BY u.ord
                RETURNING id, gateway_message_id
             ),
             ",
            lock_oldest_pending!("$9", "$10"),
            "
             INSERT INTO deliveries
                 (event_id, subscriber, case_key, state, due_at, created_at, head)
             SELECT e.id, x.subscriber, x.case_key, 'pending', $7, $7,
                    x.ord = MIN(x.ord) OVER (PARTITION BY x.subscriber, x.case_key)
                    AND NOT EXISTS (SELECT 1 FROM queued q
                                    WHERE q.subscriber = x.subscriber
                                      AND q.case_key = x.case_key)
             FROM UNNEST($8::text[], $9::text[], $10::text[])
                  WITH ORDINALITY AS x (gateway_id, subscriber, case_key, ord)
             JOIN new_events e ON e.gateway_message_id = x.gateway_id
             ORDER BY x.ord"
        ))
        .await
        .map_err(pg_err)?;
    let written = client
        .execute(
            &insert,
            &[
                &message_row,
                &gateway_ids,
                &source_ids,
                &sources,
                &case_keys,
                &jsons,
                &message.received_at,
                &delivery_events,
                &delivery_subscribers,
                &delivery_cases,
                &projects,
                &for_flows,
            ],
        )
        .await
        .map_err(pg_err)?;
    if usize::try_from(written).ok() != Some(receipt.deliveries) {
        return Err(StoreError::corrupt(format!(
            "{written} deliveries written for {} routed",
            receipt.deliveries
        )));
    }
    Ok(IngestOutcome::Accepted(receipt))
}

/// Leases the due heads: per subscriber (one ordered range of `deliveries_due`, which holds
/// only the deliveries flagged head of their (subscriber, case) queue, so the scan never reads
/// one queued behind a head; stopping at the limit), those that are due, not under an unexpired
/// lease and — checked again, cheaply, for the few heads read — with no older pending delivery
/// in their queue (`deliveries_case_queue`: a replayed dead letter, or two ingests of one case
/// racing on two nodes, can flag a second head), oldest due first; rows another node is locking right now are skipped. `$1` subscribers, `$2` now,
/// `$3` lease end, `$4` limit, `$5` the leasing node.
#[doc(hidden)] // public for the EXPLAIN test of tests/tests/postgres.rs
pub const LEASE_DUE: &str = "WITH heads AS MATERIALIZED (
        SELECT h.id
        -- A paused subscriber's deliveries stay pending, in order, until it is resumed.
        FROM (SELECT u FROM UNNEST($1::text[]) AS u
              WHERE NOT EXISTS (SELECT 1 FROM paused_subscribers p WHERE p.subscriber = u))
             AS s (subscriber)
        CROSS JOIN LATERAL (
            SELECT d.id, d.due_at
            FROM deliveries d
            WHERE d.subscriber = s.subscriber
              AND d.state = 'pending'
              AND d.head
              AND d.due_at <= $2
              AND (d.lease_until IS NULL OR d.lease_until <= $2)
              AND NOT EXISTS (
                  SELECT 1 FROM deliveries o
                  WHERE o.subscriber = d.subscriber
                    AND o.case_key = d.case_key
                    AND o.state = 'pending'
                    AND o.id < d.id
                  -- A probe per head read, whatever the statistics (OFFSET 0: module docs).
                  OFFSET 0)
            ORDER BY d.due_at, d.id
            LIMIT $4
            FOR UPDATE OF d SKIP LOCKED
        ) h
        ORDER BY h.due_at, h.id
        LIMIT $4
    ),
    leased AS (
        UPDATE deliveries d
        SET lease_until = $3, lease = (1 + floor(random() * 9.2e18))::bigint, leased_by = $5
        WHERE d.id = ANY (ARRAY(SELECT id FROM heads))
        RETURNING d.id, d.subscriber, d.event_id, d.attempts, d.created_at, d.lease, d.due_at
    )
    SELECT l.id, l.subscriber, e.event, l.attempts, l.created_at, l.lease
    FROM leased l JOIN events e ON e.id = l.event_id
    ORDER BY l.due_at, l.id";

/// A pull subscriber's pending deliveries in queue order, shaped for [`delivery_row`]. `$1`
/// subscriber, `$2` limit. Written so that only `deliveries_feed` yields the order: with
/// `subscriber = $1` the primary key yields it too, and when pending rows look plentiful the
/// planner may walk the primary key past every delivered row (the statistics do not know the
/// pending ones are the newest).
#[doc(hidden)] // public for the EXPLAIN test of tests/tests/postgres.rs
pub const FEED: &str = "SELECT d.id, d.subscriber, e.event, d.attempts, d.created_at
    FROM deliveries d JOIN events e ON e.id = d.event_id
    WHERE d.subscriber = ANY (ARRAY[$1::text]) AND d.state = 'pending'
      AND d.fetched IS NOT NULL -- always true: names `deliveries_feed` (see its migration)
      AND NOT EXISTS (SELECT 1 FROM paused_subscribers p WHERE p.subscriber = $1::text)
    ORDER BY d.subscriber, d.id
    LIMIT $2";

/// Reads one delivery row shaped `(id, subscriber, event JSON, attempts, created_at)`.
fn delivery_row(row: &Row, lease: u64) -> Result<Delivery, StoreError> {
    let attempts: i32 = get(row, 3)?;
    Ok(Delivery {
        id: get(row, 0)?,
        subscriber: codec::bureau(get(row, 1)?)?,
        event: codec::event(get(row, 2)?)?,
        attempts: codec::attempts(attempts.into())?,
        created_at: get(row, 4)?,
        lease,
    })
}

/// The store's own vacuuming, for as long as the store is in use (until its last clone is
/// dropped). The store must not depend on autovacuum, which may be off (it is on the CI
/// machine): every delivery changes state several times, and without vacuuming the queue's
/// tables and indexes fill with dead rows; without fresh statistics the planner cannot tell the
/// case-queue index from the others once a table has grown, and may walk a subscriber's whole
/// backlog for each lease. So, every [`MAINTENANCE_INTERVAL`], one node at a time (an advisory
/// lock; the others skip) reads the tables' counters and, by autovacuum's own rule, analyzes a
/// queue table that changed by a tenth since its last analysis (the append-only record when it
/// doubled) and vacuums one whose dead rows passed
/// a fifth of its live ones.
async fn maintain(pool: Pool, alive: mpsc::WeakSender<IngestJob>) {
    loop {
        if alive.upgrade().is_none() {
            return;
        }
        if let Err(error) = vacuum(&pool).await {
            error.count();
            tracing::warn!(message = "cannot vacuum the store's tables; trying again later", %error);
        }
        tokio::time::sleep(MAINTENANCE_INTERVAL).await;
    }
}

/// The tables [`maintain`] looks after: the queue, what every ingest appends (and the flows'
/// inbox flag clears on `events`), and the joint cases and case clocks every flow step rewrites.
const MAINTAINED: [&str; 6] = [
    "deliveries",
    "delivery_attempts",
    "events",
    "messages",
    "joint_cases",
    "case_clocks",
];

/// One round of [`maintain`].
async fn vacuum(pool: &Pool) -> Result<(), StoreError> {
    let client = pool.get().await.map_err(pool_err)?;
    let locked: bool = get(
        &client
            .query_one(
                "SELECT pg_try_advisory_lock($1, COALESCE(hashtext(current_schema()), 0))",
                &[&MAINTENANCE_LOCK],
            )
            .await
            .map_err(pg_err)?,
        0,
    )?;
    if !locked {
        return Ok(());
    }
    let done = async {
        let due = client
            .query(
                // The queue is analyzed when a tenth of it changed; the append-only record
                // (messages, events) when it doubled: its statistics matter less and its
                // analysis costs as much.
                "SELECT relname::text,
                        n_dead_tup > 1000 + n_live_tup / 5,
                        n_mod_since_analyze > CASE WHEN relname IN ('messages', 'events')
                                                   THEN 10000 + n_live_tup
                                                   ELSE 1000 + n_live_tup / 10 END
                 FROM pg_stat_user_tables
                 WHERE schemaname = current_schema() AND relname = ANY ($1)",
                &[&MAINTAINED.as_slice()],
            )
            .await
            .map_err(pg_err)?;
        for row in &due {
            let table: String = get(row, 0)?;
            let (dead, changed): (bool, bool) = (get(row, 1)?, get(row, 2)?);
            // Only names of `MAINTAINED` come back, so the statement is one of ours.
            let Some(table) = MAINTAINED.iter().find(|t| **t == table) else {
                continue;
            };
            let statement = match (dead, changed) {
                (true, _) => format!("VACUUM (ANALYZE) {table}"),
                (false, true) => format!("ANALYZE {table}"),
                (false, false) => continue,
            };
            client.batch_execute(&statement).await.map_err(pg_err)?;
        }
        Ok::<_, StoreError>(())
    }
    .await;
    let unlocked = client
        .execute(
            "SELECT pg_advisory_unlock($1, COALESCE(hashtext(current_schema()), 0))",
            &[&MAINTENANCE_LOCK],
        )
        .await
        .map_err(pg_err);
    if unlocked.is_err() {
        // A connection that may still hold the lock must not go back to the pool.
        drop(Object::take(client));
    }
    done.and(unlocked.map(|_| ()))
}

/// Keeps `counter` bumped on every `NOTIFY exchange_work`, over a dedicated connection that is
/// remade (with backoff) whenever it drops; bumps after every (re)connect too, since work may
/// have been committed while nobody listened. Ends when every receiver is gone.
async fn listen(config: Config, tls: MakeRustlsConnect, counter: watch::Sender<u64>) {
    let bump = |counter: &watch::Sender<u64>| counter.send_modify(|n| *n = n.wrapping_add(1));
    let mut backoff = LISTEN_BACKOFF.0;
    loop {
        let session = async {
            let (client, mut connection) = config.connect(tls.clone()).await?;
            let notified = counter.clone();
            let mut driver = tokio::spawn(async move {
                loop {
                    match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                        Some(Ok(AsyncMessage::Notification(_))) => bump(&notified),
                        Some(Ok(AsyncMessage::Notice(_))) => {}
                        // `poll_message` may grow new kinds of messages; they mean nothing here.
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "the LISTEN connection failed");
                            break;
                        }
                        None => break,
                    }
                }
            });
            if let Err(e) = client
                .batch_execute(&format!("LISTEN {WORK_CHANNEL}"))
                .await
            {
                driver.abort();
                return Err(e);
            }
            Ok::<_, tokio_postgres::Error>(async move {
                let _client = client;
                let _ = (&mut driver).await;
            })
        };
        let listening = tokio::select! {
            () = counter.closed() => return,
            session = session => session,
        };
        match listening {
            Ok(until_dropped) => {
                backoff = LISTEN_BACKOFF.0;
                bump(&counter);
                tokio::select! {
                    () = counter.closed() => return,
                    () = until_dropped => {
                        tracing::warn!("the LISTEN connection dropped; reconnecting");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN for work notifications; retrying");
            }
        }
        tokio::select! {
            () = counter.closed() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(LISTEN_BACKOFF.1);
    }
}

/// Tells every node's idle workers that work was committed (`NOTIFY`), in a transaction of its
/// own that does not wait for the disk, after the work's own commit. A `NOTIFY` inside the
/// work's transaction would hold the server's one notification-queue lock through that
/// transaction's disk flush, making every committing ingest and outcome batch wait for the
/// others' flushes in turn. A lost notification costs only a poll interval (idle workers also
/// poll), so a failure is logged, not returned.
async fn announce_work(client: &ClientWrapper) {
    let sql = format!("BEGIN; SET LOCAL synchronous_commit = off; NOTIFY {WORK_CHANNEL}; COMMIT");
    if let Err(error) = client.batch_execute(&sql).await {
        tracing::debug!(message = "cannot announce new work; other nodes will poll", %error);
        let _ = client.batch_execute("ROLLBACK").await;
    }
}

/// The failed outcomes of a batch, as the columns of [`SETTLE_FAILED`].
#[derive(Default)]
struct Failures {
    ids: Vec<i64>,
    leases: Vec<i64>,
    /// The next attempt's time (unused for a dead letter).
    due: Vec<i64>,
    dead: Vec<bool>,
    at: Vec<i64>,
    errors: Vec<String>,
}

impl Failures {
    fn push(&mut self, id: DeliveryId, lease: i64, attempt: &Attempt, after: AfterFailure) {
        self.ids.push(id);
        self.leases.push(lease);
        let (due, dead) = match after {
            AfterFailure::RetryAt(due) => (due, false),
            AfterFailure::DeadLetter => (attempt.at, true),
        };
        self.due.push(due);
        self.dead.push(dead);
        self.at.push(attempt.at);
        self.errors.push(attempt.error.clone());
    }
}

/// Completes leased deliveries: `$1` ids, `$2` leases, `$3` times. Returns the ids whose lease
/// was held.
const SETTLE_DELIVERED: &str = "UPDATE deliveries d
    SET state = 'delivered', delivered_at = u.at, lease_until = NULL
    FROM UNNEST($1::int8[], $2::int8[], $3::int8[]) AS u (id, lease, at)
    WHERE d.id = u.id AND d.state = 'pending' AND d.lease = u.lease
    RETURNING d.id";

/// Records failed attempts of leased deliveries and schedules their retry or dead-letters them,
/// with each attempt in the history: `$1` ids, `$2` leases, `$3` next attempt times, `$4` dead,
/// `$5` attempt times, `$6` errors. Returns the ids whose lease was held.
const SETTLE_FAILED: &str = "WITH settled AS (
        UPDATE deliveries d
        SET attempts = d.attempts + 1, lease_until = NULL, lease = 0,
            due_at = CASE WHEN u.dead THEN d.due_at ELSE u.due END,
            state = CASE WHEN u.dead THEN 'dead' ELSE 'pending' END,
            dead_at = CASE WHEN u.dead THEN u.at ELSE NULL END
        FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::bool[], $5::int8[])
             AS u (id, lease, due, dead, at)
        WHERE d.id = u.id AND d.state = 'pending' AND d.lease = u.lease
        RETURNING d.id
    ),
    history AS (
        INSERT INTO delivery_attempts (delivery_id, at, error)
        SELECT h.id, h.at, h.error
        FROM UNNEST($1::int8[], $5::int8[], $6::text[]) WITH ORDINALITY AS h (id, at, error, ord)
        WHERE h.id IN (SELECT id FROM settled)
        ORDER BY h.ord
    )
    SELECT id FROM settled";

/// Locks deliveries `$1` in (subscriber, case, id) order, the order every ingest batch locks the
/// oldest pending delivery of each queue in (its `queued`), so the two cannot deadlock.
const LOCK_IN_QUEUE_ORDER: &str = "SELECT id FROM deliveries WHERE id = ANY ($1)
    ORDER BY subscriber, case_key, id
    FOR UPDATE";

/// Flags as head the oldest pending delivery of each (subscriber, case) of the deliveries `$1`
/// that are no longer pending (delivered or dead-lettered): the next of each queue may now be
/// leased. Sees the deliveries of an ingest that committed while this transaction waited for
/// its locks (each statement reads what was committed when it started).
#[doc(hidden)] // public for the EXPLAIN test of tests/tests/postgres.rs
pub const PROMOTE: &str = "UPDATE deliveries d SET head = true
    WHERE d.id IN (
        -- The pending delivery with none older in its queue; written without ORDER BY ... LIMIT
        -- so that both lookups use `deliveries_case_queue` (see INSERT_BATCH).
        -- Each queue looked up on its own, with a probe per row (OFFSET 0: module docs).
        SELECT n.id
        FROM (SELECT DISTINCT subscriber, case_key FROM deliveries
              WHERE id = ANY ($1) AND state <> 'pending') AS c
        CROSS JOIN LATERAL (
            SELECT n.id FROM deliveries n
            WHERE n.subscriber = c.subscriber AND n.case_key = c.case_key
              AND n.state = 'pending'
              AND NOT EXISTS (
                  SELECT 1 FROM deliveries o
                  WHERE o.subscriber = n.subscriber AND o.case_key = n.case_key
                    AND o.state = 'pending' AND o.id < n.id
                  OFFSET 0)
            OFFSET 0
        ) AS n)
      AND NOT d.head";

/// One durable transaction for a batch of outcomes, pipelined: BEGIN, the lock, the two
/// statements, the promotion of the next heads and COMMIT are all sent before the first answer
/// is read (one round trip). A failing statement aborts the transaction, and the COMMIT behind
/// it then rolls back; its error is returned. Then, when a next head was promoted, the work is
/// announced. The ids whose lease was held.
async fn settle(
    client: &ClientWrapper,
    delivered: &(Vec<i64>, Vec<i64>, Vec<i64>),
    failed: &Failures,
    chain: &str,
    audit: &trail::Columns,
) -> Result<std::collections::HashSet<i64>, StoreError> {
    let settle_delivered = client
        .prepare_cached(SETTLE_DELIVERED)
        .await
        .map_err(pg_err)?;
    let settle_failed = client.prepare_cached(SETTLE_FAILED).await.map_err(pg_err)?;
    let lock = client
        .prepare_cached(LOCK_IN_QUEUE_ORDER)
        .await
        .map_err(pg_err)?;
    let promote = client.prepare_cached(PROMOTE).await.map_err(pg_err)?;
    let record = client.prepare_cached(trail::INSERT).await.map_err(pg_err)?;
    let ids: Vec<i64> = delivered.0.iter().chain(&failed.ids).copied().collect();
    let ids_param: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&ids];
    let begin = client.batch_execute("BEGIN; SET LOCAL synchronous_commit = on");
    let locked = client.query(&lock, &ids_param);
    let completed = async {
        if delivered.0.is_empty() {
            return Ok(Vec::new());
        }
        client
            .query(
                &settle_delivered,
                &[&delivered.0, &delivered.1, &delivered.2],
            )
            .await
    };
    let retried = async {
        if failed.ids.is_empty() {
            return Ok(Vec::new());
        }
        client
            .query(
                &settle_failed,
                &[
                    &failed.ids,
                    &failed.leases,
                    &failed.due,
                    &failed.dead,
                    &failed.at,
                    &failed.errors,
                ],
            )
            .await
    };
    let promoted = client.execute(&promote, &ids_param);
    let [a1, a2, a3, a4, a5, a6, a7, a8, a9] = audit.params();
    let record_params: [&(dyn tokio_postgres::types::ToSql + Sync); 10] =
        [&chain, a1, a2, a3, a4, a5, a6, a7, a8, a9];
    let recorded = client.execute(&record, &record_params);
    let commit = client.batch_execute("COMMIT");
    let (begun, locked, completed, retried, promoted, recorded, committed) = tokio::join!(
        begin, locked, completed, retried, promoted, recorded, commit
    );
    begun.map_err(pg_err)?;
    locked.map_err(pg_err)?;
    let completed = completed.map_err(pg_err)?;
    let retried = retried.map_err(pg_err)?;
    let promoted = promoted.map_err(pg_err)?;
    recorded.map_err(pg_err)?;
    committed.map_err(pg_err)?;
    // New work for other nodes only when a case's next delivery became its head.
    if promoted > 0 {
        announce_work(client).await;
    }
    completed
        .iter()
        .chain(&retried)
        .map(|row| get::<i64>(row, 0))
        .collect()
}

/// Appends records made at `now` to the ops lane's chain in `tx`; returns the new head, for
/// [`commit_ops`]. On error the lane forgets its head (the transaction is abandoned).
async fn append_ops(
    lane: &mut trail::Lane,
    tx: &deadpool_postgres::Transaction<'_>,
    now: Millis,
    records: Vec<audit::Record>,
) -> Result<Link, StoreError> {
    let appended = async {
        let mut head = lane.head(tx).await?;
        let chain = lane.chain().to_owned();
        trail::append(tx, &chain, &mut head, records.into_iter().map(|r| (now, r))).await?;
        Ok(head)
    }
    .await;
    if appended.is_err() {
        lane.forget();
    }
    appended
}

/// Commits `tx` and moves the lane's head to `head`, or makes it forget its head.
async fn commit_ops(
    lane: &mut trail::Lane,
    tx: deadpool_postgres::Transaction<'_>,
    head: Link,
) -> Result<(), StoreError> {
    match tx.commit().await {
        Ok(()) => {
            lane.committed(head);
            Ok(())
        }
        Err(e) => {
            lane.forget();
            Err(pg_err(e))
        }
    }
}

/// A step of the flows, in `client`'s open transaction: the inbox event out (unless another
/// node took it), each joint case over its stored revision, then the notices, ingested in the
/// ops lane's chain.
async fn commit_flow_step_in(
    client: &Object,
    step: FlowStep,
    chain: &str,
    head: &mut Link,
) -> Result<bool, StoreError> {
    if let Some(id) = step.event {
        let taken = client
            .execute(
                "UPDATE events SET flow_pending = false WHERE id = $1 AND flow_pending",
                &[&id],
            )
            .await
            .map_err(pg_err)?;
        if taken == 0 {
            return Err(StoreError::Conflict(format!("inbox event {id} was taken")));
        }
    }
    for case in &step.cases {
        let c = codec::joint_columns(case)?;
        write_over_revision(
            client,
            c.revision,
            "INSERT INTO joint_cases (id, flow, project, window_bureau, window_case_id,
                 status, due_on, revision, updated_at, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (id) DO NOTHING",
            &[
                &c.id,
                &c.flow,
                &c.project,
                &c.window,
                &c.window_case_id,
                &c.status,
                &c.due_on,
                &c.revision,
                &c.updated_at,
                &c.state,
            ],
            "UPDATE joint_cases SET status = $2, due_on = $3, revision = $4::bigint,
                 updated_at = $5, state = $6
             WHERE id = $1 AND revision = $4::bigint - 1",
            &[
                &c.id,
                &c.status,
                &c.due_on,
                &c.revision,
                &c.updated_at,
                &c.state,
            ],
            || format!("joint case {} changed since it was read", c.id),
        )
        .await?;
    }
    for clock in &step.clocks {
        let c = codec::clock_columns(clock)?;
        write_over_revision(
            client,
            c.revision,
            "INSERT INTO case_clocks (bureau, case_id, project, is_open, revision,
                 updated_at, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (bureau, case_id) DO NOTHING",
            &[
                &c.bureau,
                &c.case_id,
                &c.project,
                &c.open,
                &c.revision,
                &c.updated_at,
                &c.state,
            ],
            "UPDATE case_clocks SET is_open = $3, revision = $4::bigint, updated_at = $5,
                 state = $6
             WHERE bureau = $1 AND case_id = $2 AND revision = $4::bigint - 1",
            &[
                &c.bureau,
                &c.case_id,
                &c.open,
                &c.revision,
                &c.updated_at,
                &c.state,
            ],
            || {
                format!(
                    "the clock of {}:{} changed since it was read",
                    c.bureau, c.case_id
                )
            },
        )
        .await?;
    }
    let mut accepted = false;
    for message in step.notices {
        let rows = codec::ingest_rows(&message)?;
        let outcome = ingest_in(client, message, rows, chain, head).await?;
        accepted |= matches!(outcome, IngestOutcome::Accepted(_));
    }
    Ok(accepted)
}

/// Writes a record kept over its revision (a joint case, a case clock): revision 1 inserted
/// unless one is there, any other only over the revision before it; `Conflict` (`changed` says
/// what) when nothing was written.
async fn write_over_revision(
    client: &Object,
    revision: i64,
    insert: &str,
    insert_args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    update: &str,
    update_args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    changed: impl FnOnce() -> String,
) -> Result<(), StoreError> {
    let (sql, args) = if revision == 1 {
        (insert, insert_args)
    } else {
        (update, update_args)
    };
    let written = client.execute(sql, args).await.map_err(pg_err)?;
    if written == 0 {
        return Err(StoreError::Conflict(changed()));
    }
    Ok(())
}

/// The JSON documents (`state`) the query selects, each read back by `decode`: joint cases and
/// case clocks alike.
async fn states_where<T>(
    client: &Object,
    sql: &str,
    args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    decode: fn(&str) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let rows = client.query(sql, args).await.map_err(pg_err)?;
    rows.iter().map(|row| decode(get(row, 0)?)).collect()
}

async fn joint_cases_where(
    client: &Object,
    sql: &str,
    args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<JointCase>, StoreError> {
    states_where(client, sql, args, codec::joint_case).await
}

async fn case_clocks_where(
    client: &Object,
    sql: &str,
    args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<CaseClock>, StoreError> {
    states_where(client, sql, args, codec::case_clock).await
}

impl Store for PgStore {
    async fn events_received(
        &self,
        from: Millis,
        to: Millis,
        after: i64,
        limit: usize,
    ) -> Result<Vec<ReceivedEvent>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT e.id, m.received_at, e.event
                 FROM messages m JOIN events e ON e.message_id = m.id
                 WHERE m.received_at >= $1 AND m.received_at < $2 AND e.id > $3
                 ORDER BY e.id LIMIT $4",
                &[&from, &to, &after, &sql_limit(limit)],
            )
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|row| {
                let id: i64 = get(row, 0)?;
                Ok(ReceivedEvent {
                    id,
                    received_at: get(row, 1)?,
                    event: codec::flow_event(id, get(row, 2)?)?.event,
                })
            })
            .collect()
    }

    async fn dead_letters_between(
        &self,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<(BureauId, u64)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT subscriber, COUNT(*) FROM deliveries
                 WHERE state = 'dead' AND dead_at >= $1 AND dead_at < $2
                 GROUP BY subscriber ORDER BY subscriber",
                &[&from, &to],
            )
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|row| {
                let n: i64 = get(row, 1)?;
                Ok((codec::bureau(get(row, 0)?)?, u64::try_from(n).unwrap_or(0)))
            })
            .collect()
    }

    async fn frozen_report(&self, month: &str) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT body FROM monthly_reports WHERE month = $1",
                &[&month],
            )
            .await
            .map_err(pg_err)?;
        row.map(|row| get(&row, 0)).transpose()
    }

    async fn freeze_report(
        &self,
        month: &str,
        body: String,
        at: Millis,
    ) -> Result<String, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO monthly_reports (month, created_at, body) VALUES ($1, $2, $3)
                 ON CONFLICT (month) DO NOTHING",
                &[&month, &at, &body],
            )
            .await
            .map_err(pg_err)?;
        let row = client
            .query_one(
                "SELECT body FROM monthly_reports WHERE month = $1",
                &[&month],
            )
            .await
            .map_err(pg_err)?;
        get(&row, 0)
    }

    async fn flow_inbox(&self, limit: usize) -> Result<Vec<FlowEvent>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, event FROM events WHERE flow_pending ORDER BY id LIMIT $1",
                &[&sql_limit(limit)],
            )
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|row| codec::flow_event(get(row, 0)?, get(row, 1)?))
            .collect()
    }

    async fn commit_flow_steps(&self, steps: Vec<FlowStep>) -> Result<(), StoreError> {
        let client = self.client().await?;
        let mut lane = self.lanes.lock(trail::LaneId::Ops).await;
        let result = async {
            let mut head = lane.head(&client).await?;
            let chain = lane.chain().to_owned();
            client
                .batch_execute("BEGIN; SET LOCAL synchronous_commit = on")
                .await
                .map_err(pg_err)?;
            let mut accepted = false;
            for step in steps {
                accepted |= commit_flow_step_in(&client, step, &chain, &mut head).await?;
            }
            client.batch_execute("COMMIT").await.map_err(pg_err)?;
            Ok::<_, StoreError>((head, accepted))
        }
        .await;
        match result {
            Ok((head, accepted)) => {
                lane.committed(head);
                if accepted {
                    announce_work(&client).await;
                }
                Ok(())
            }
            Err(error) => {
                lane.forget();
                let _ = client.batch_execute("ROLLBACK").await;
                Err(error)
            }
        }
    }

    async fn joint_case(&self, id: &JointCaseId) -> Result<Option<JointCase>, StoreError> {
        let client = self.client().await?;
        let mut found = joint_cases_where(
            &client,
            "SELECT state FROM joint_cases WHERE id = $1",
            &[&id.as_str()],
        )
        .await?;
        Ok(found.pop())
    }

    async fn joint_cases_of_project(
        &self,
        project: &ProjectCode,
        limit: usize,
    ) -> Result<Vec<JointCase>, StoreError> {
        let client = self.client().await?;
        joint_cases_where(
            &client,
            "SELECT state FROM joint_cases WHERE project = $1 ORDER BY id LIMIT $2",
            &[&project.as_str(), &sql_limit(limit)],
        )
        .await
    }

    async fn open_joint_cases(
        &self,
        after: Option<&JointCaseId>,
        limit: usize,
    ) -> Result<Vec<JointCase>, StoreError> {
        let client = self.client().await?;
        let after = after.map_or("", JointCaseId::as_str);
        joint_cases_where(
            &client,
            "SELECT state FROM joint_cases WHERE status = 'open' AND id > $1 ORDER BY id LIMIT $2",
            &[&after, &sql_limit(limit)],
        )
        .await
    }

    async fn case_clock(
        &self,
        bureau: BureauId,
        case_id: &BureauCaseId,
    ) -> Result<Option<CaseClock>, StoreError> {
        let client = self.client().await?;
        let mut found = case_clocks_where(
            &client,
            "SELECT state FROM case_clocks WHERE bureau = $1 AND case_id = $2",
            &[&bureau.as_str(), &case_id.as_str()],
        )
        .await?;
        Ok(found.pop())
    }

    async fn case_clocks_of_project(
        &self,
        project: &ProjectCode,
        limit: usize,
    ) -> Result<Vec<CaseClock>, StoreError> {
        let client = self.client().await?;
        case_clocks_where(
            &client,
            "SELECT state FROM case_clocks WHERE project = $1 AND is_open
             ORDER BY bureau, case_id LIMIT $2",
            &[&project.as_str(), &sql_limit(limit)],
        )
        .await
    }

    async fn open_case_clocks(
        &self,
        after: Option<(BureauId, BureauCaseId)>,
        limit: usize,
    ) -> Result<Vec<CaseClock>, StoreError> {
        let client = self.client().await?;
        let (bureau, case_id) = after
            .as_ref()
            .map_or(("", ""), |(b, c)| (b.as_str(), c.as_str()));
        case_clocks_where(
            &client,
            "SELECT state FROM case_clocks WHERE is_open AND (bureau, case_id) > ($1, $2)
             ORDER BY bureau, case_id LIMIT $3",
            &[&bureau, &case_id, &sql_limit(limit)],
        )
        .await
    }

    async fn ingest(&self, message: NewMessage) -> Result<IngestOutcome, StoreError> {
        let rows = codec::ingest_rows(&message)?;
        let (reply_to, reply) = oneshot::channel();
        self.ingests
            .send(IngestJob {
                message,
                rows,
                reply_to,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        reply.await.map_err(|_| StoreError::Closed)?
    }

    async fn lease_due(
        &self,
        node: &str,
        subscribers: Vec<BureauId>,
        now: Millis,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        if subscribers.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut subscribers: Vec<&str> = subscribers.iter().map(|s| s.as_str()).collect();
        subscribers.sort_unstable();
        subscribers.dedup();
        let lease_until = now.saturating_add(lease_ms);
        let mut client = self.client().await?;
        let tx = relaxed(&mut client).await?;
        let statement = tx.prepare_cached(LEASE_DUE).await.map_err(pg_err)?;
        let rows = tx
            .query(
                &statement,
                &[&subscribers, &now, &lease_until, &sql_limit(limit), &node],
            )
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        rows.iter()
            .map(|row| {
                let lease: i64 = get(row, 5)?;
                let lease =
                    u64::try_from(lease).map_err(|e| StoreError::corrupt_from("lease token", e))?;
                delivery_row(row, lease)
            })
            .collect()
    }

    async fn claim_node(&self, node: &str) -> Result<bool, StoreError> {
        let (client, connection) = self
            .direct
            .config
            .connect(self.direct.tls.clone())
            .await
            .map_err(pg_err)?;
        let holder = node.to_owned();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(
                    message = "the connection holding this node's name was lost; a node \
                               restarting with the same name may now take its leases",
                    node = holder,
                    error = &error as &dyn std::error::Error
                );
            }
        });
        // The server notices a vanished node (no FIN: a power cut, a network partition) within
        // about a minute, not after the system's two hours of TCP keepalive, and drops its lock.
        client
            .batch_execute(
                "SET tcp_keepalives_idle = 20; SET tcp_keepalives_interval = 5;
                 SET tcp_keepalives_count = 4; SET tcp_user_timeout = 40000",
            )
            .await
            .map_err(pg_err)?;
        let row = client
            .query_one(
                "SELECT pg_try_advisory_lock(
                     hashtextextended(COALESCE(current_schema(), '') || '/' || $1, $2))",
                &[&node, &NODE_LOCK_SEED],
            )
            .await
            .map_err(pg_err)?;
        let claimed: bool = get(&row, 0)?;
        if claimed {
            // The node's chains carry its name from now on (one live process holds it).
            self.lanes.name_after(node);
            // Held until the store's last clone is dropped (or the connection is lost).
            let mut claim = self.direct.claim.lock().unwrap_or_else(|p| p.into_inner());
            *claim = Some(client);
        }
        Ok(claimed)
    }

    async fn release_leases(
        &self,
        node: &str,
        now: Millis,
        limit: usize,
    ) -> Result<u64, StoreError> {
        if limit == 0 {
            return Ok(0);
        }
        let mut client = self.client().await?;
        let tx = relaxed(&mut client).await?;
        let released = tx
            .execute(
                "UPDATE deliveries SET lease_until = NULL, lease = 0
                 WHERE id IN (
                     SELECT id FROM deliveries
                     WHERE state = 'pending' AND leased_by = $1 AND lease_until > $2
                     ORDER BY id LIMIT $3
                     FOR UPDATE)",
                &[&node, &now, &sql_limit(limit)],
            )
            .await
            .map_err(pg_err)?;
        if released > 0 {
            // Work for every node's idle workers, not only this one's.
            tx.batch_execute(&format!("NOTIFY {WORK_CHANNEL}"))
                .await
                .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(released)
    }

    async fn record_outcomes(&self, outcomes: Vec<Outcome>) -> Result<Vec<bool>, StoreError> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        let mut delivered = (Vec::new(), Vec::new(), Vec::new());
        let mut failed = Failures::default();
        for outcome in &outcomes {
            let Some(lease) = lease_to_sql(outcome.lease) else {
                continue;
            };
            match &outcome.settled {
                Settled::Delivered { at } => {
                    delivered.0.push(outcome.id);
                    delivered.1.push(lease);
                    delivered.2.push(*at);
                }
                Settled::Failed { attempt, after } => {
                    failed.push(outcome.id, lease, attempt, *after)
                }
            }
        }
        let client = self.client().await?;
        // Every attempt made is recorded, even one whose lease had run out meanwhile: the
        // receiver was sent it all the same.
        let mut lane = self.lanes.lock(trail::LaneId::Outcomes).await;
        let mut head = lane.head(&client).await?;
        let mut columns = trail::Columns::default();
        for outcome in &outcomes {
            let record = audit::outcome_record(outcome);
            columns.push(audit::append(
                &mut head,
                lane.chain(),
                audit::outcome_at(outcome),
                &record,
            )?);
        }
        let chain = lane.chain().to_owned();
        let held = settle(&client, &delivered, &failed, &chain, &columns).await;
        match &held {
            Ok(_) => lane.committed(head),
            Err(_) => lane.forget(),
        }
        drop(lane);
        if held.is_err() && client.batch_execute("ROLLBACK").await.is_err() {
            // Not reusable in an unknown state: keep it out of the pool.
            drop(Object::take(client));
        }
        let held = held?;
        Ok(outcomes.iter().map(|o| held.contains(&o.id)).collect())
    }

    async fn dead_letters(
        &self,
        subscriber: Option<BureauId>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let client = self.client().await?;
        let subscriber = subscriber.map(BureauId::as_str);
        let rows = client
            .query(
                "SELECT d.id, d.subscriber, e.gateway_message_id, d.dead_at
                 FROM deliveries d JOIN events e ON e.id = d.event_id
                 WHERE d.state = 'dead' AND ($1::text IS NULL OR d.subscriber = $1)
                 ORDER BY d.dead_at, d.id
                 LIMIT $2",
                &[&subscriber, &sql_limit(limit)],
            )
            .await
            .map_err(pg_err)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut dead = rows
            .iter()
            .map(|row| {
                Ok(DeadLetter {
                    id: get(row, 0)?,
                    subscriber: codec::bureau(get(row, 1)?)?,
                    message_id: codec::message_id(get(row, 2)?)?,
                    attempts: Vec::new(),
                    dead_at: get::<Option<Millis>>(row, 3)?
                        .ok_or_else(|| StoreError::corrupt("a dead letter without dead_at"))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let ids: Vec<DeliveryId> = dead.iter().map(|d| d.id).collect();
        let history = client
            .query(
                "SELECT delivery_id, at, error FROM delivery_attempts
                 WHERE delivery_id = ANY ($1) ORDER BY delivery_id, id",
                &[&ids],
            )
            .await
            .map_err(pg_err)?;
        for row in &history {
            let id: DeliveryId = get(row, 0)?;
            if let Some(letter) = dead.iter_mut().find(|d| d.id == id) {
                letter.attempts.push(Attempt {
                    at: get(row, 1)?,
                    error: get(row, 2)?,
                });
            }
        }
        Ok(dead)
    }

    async fn replay(
        &self,
        selector: ReplaySelector,
        by: &str,
        now: Millis,
        limit: usize,
    ) -> Result<u64, StoreError> {
        // A revived dead letter is a head again: it goes before whatever of its case is pending
        // now (the lease's check for an older pending delivery keeps the newer one waiting).
        const REVIVE: &str = "UPDATE deliveries
            SET state = 'pending', due_at = $2, attempts = 0,
                lease_until = NULL, lease = 0, dead_at = NULL, head = true";
        let mut client = self.client().await?;
        let mut lane = self.lanes.lock(trail::LaneId::Ops).await;
        let tx = relaxed(&mut client).await?;
        let changed = match &selector {
            ReplaySelector::Ids(ids) => {
                let ids = &ids[..ids.len().min(limit)];
                tx.query(
                    &format!("{REVIVE} WHERE id = ANY ($1) AND state = 'dead' RETURNING id"),
                    &[&ids, &now],
                )
                .await
            }
            ReplaySelector::Subscriber(subscriber) => {
                tx.query(
                    &format!(
                        "{REVIVE} WHERE id IN (
                             SELECT id FROM deliveries
                             WHERE state = 'dead' AND subscriber = $1
                             ORDER BY dead_at, id LIMIT $3)
                         RETURNING id"
                    ),
                    &[&subscriber.as_str(), &now, &sql_limit(limit)],
                )
                .await
            }
        }
        .map_err(pg_err)?
        .iter()
        .map(|row| get::<i64>(row, 0))
        .collect::<Result<Vec<_>, _>>()?;
        if !changed.is_empty() {
            // Work for every node's idle workers.
            tx.batch_execute(&format!("NOTIFY {WORK_CHANNEL}"))
                .await
                .map_err(pg_err)?;
        }
        let records = trail::delivery_records(&tx, Some("replay"), &changed, by).await?;
        let head = append_ops(&mut lane, &tx, now, records).await?;
        commit_ops(&mut lane, tx, head).await?;
        Ok(changed.len() as u64)
    }

    async fn feed_fetch(
        &self,
        subscriber: BureauId,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut client = self.client().await?;
        let tx = relaxed(&mut client).await?;
        let statement = tx.prepare_cached(FEED).await.map_err(pg_err)?;
        let rows = tx
            .query(&statement, &[&subscriber.as_str(), &sql_limit(limit)])
            .await
            .map_err(pg_err)?;
        let fetched: Vec<Delivery> = rows
            .iter()
            .map(|row| delivery_row(row, 0))
            .collect::<Result<_, _>>()?;
        let ids: Vec<i64> = fetched.iter().map(|d| d.id).collect();
        tx.execute(
            "UPDATE deliveries SET fetched = true WHERE id = ANY($1) AND NOT fetched",
            &[&ids],
        )
        .await
        .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(fetched)
    }

    async fn feed_ack(
        &self,
        subscriber: BureauId,
        cursor: DeliveryId,
        now: Millis,
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let mut lane = self.lanes.lock(trail::LaneId::Ops).await;
        let tx = relaxed(&mut client).await?;
        // Locked in queue order first (see LOCK_IN_QUEUE_ORDER), then acknowledged, then the
        // next heads flagged: the queue heads stay true for every subscriber, pull or push (its
        // delivery mode may change in the configuration).
        let acked: Vec<i64> = get(
            &tx.query_one(
                "SELECT ARRAY(
                     SELECT id FROM deliveries
                     WHERE subscriber = $1 AND state = 'pending' AND id <= $2 AND fetched
                     ORDER BY subscriber, case_key, id
                     FOR UPDATE)",
                &[&subscriber.as_str(), &cursor],
            )
            .await
            .map_err(pg_err)?,
            0,
        )?;
        if acked.is_empty() {
            return Ok(0);
        }
        let statement = tx
            .prepare_cached(
                "UPDATE deliveries SET state = 'delivered', delivered_at = $2, lease_until = NULL
                 WHERE id = ANY ($1) AND state = 'pending'",
            )
            .await
            .map_err(pg_err)?;
        let changed = tx
            .execute(&statement, &[&acked, &now])
            .await
            .map_err(pg_err)?;
        let promote = tx.prepare_cached(PROMOTE).await.map_err(pg_err)?;
        tx.execute(&promote, &[&acked]).await.map_err(pg_err)?;
        let records = trail::delivery_records(&tx, None, &acked, "").await?;
        let head = append_ops(&mut lane, &tx, now, records).await?;
        commit_ops(&mut lane, tx, head).await?;
        Ok(changed)
    }

    async fn backlogs(&self, subscribers: Vec<BureauId>) -> Result<Vec<Backlog>, StoreError> {
        ops::backlogs(&self.client().await?, &subscribers).await
    }

    async fn queue_stats(&self) -> Result<Vec<QueueStat>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT subscriber,
                        COUNT(*) FILTER (WHERE state = 'pending'),
                        COUNT(*) FILTER (WHERE state = 'dead'),
                        COUNT(*) FILTER (WHERE state = 'delivered'),
                        MIN(created_at) FILTER (WHERE state = 'pending'),
                        (SELECT COUNT(*) FROM delivery_attempts a
                          JOIN deliveries o ON o.id = a.delivery_id
                          WHERE o.subscriber = d.subscriber)
                 FROM deliveries d
                 GROUP BY subscriber",
                &[],
            )
            .await
            .map_err(pg_err)?;
        let mut stats = rows
            .iter()
            .map(|row| {
                Ok(QueueStat {
                    subscriber: codec::bureau(get(row, 0)?)?,
                    pending: codec::count(get(row, 1)?)?,
                    dead: codec::count(get(row, 2)?)?,
                    delivered: codec::count(get(row, 3)?)?,
                    oldest_pending: get(row, 4)?,
                    failed_attempts: codec::count(get(row, 5)?)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        stats.sort_by_key(|s| s.subscriber);
        Ok(stats)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(pg_err)?;
        Ok(())
    }

    async fn credit_entries(
        &self,
        publisher: BureauId,
        entry_ids: Vec<BureauCaseId>,
        limit: usize,
    ) -> Result<Vec<CreditRecord>, StoreError> {
        let ids: Vec<&str> = entry_ids.iter().map(BureauCaseId::as_str).collect();
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {} FROM credit_entries WHERE publisher = $1 AND entry_id = ANY($2)
                     ORDER BY entry_id, version LIMIT $3",
                    codec::CREDIT_COLUMNS
                ),
                &[&publisher.as_str(), &ids, &sql_limit(limit)],
            )
            .await
            .map_err(pg_err)?;
        credit_records(&rows)
    }

    async fn credit_entries_of(
        &self,
        codes: Vec<schemas::CreditCode>,
        limit: usize,
    ) -> Result<Vec<CreditRecord>, StoreError> {
        let codes: Vec<&str> = codes.iter().map(schemas::CreditCode::as_str).collect();
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {} FROM credit_entries WHERE credit_code = ANY($1)
                     ORDER BY publisher, entry_id, version LIMIT $2",
                    codec::CREDIT_COLUMNS
                ),
                &[&codes, &sql_limit(limit)],
            )
            .await
            .map_err(pg_err)?;
        credit_records(&rows)
    }

    async fn recent_credit_entries(&self, limit: usize) -> Result<Vec<CreditRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {} FROM credit_entries
                     ORDER BY listed_at DESC, publisher, entry_id, version DESC LIMIT $1",
                    codec::CREDIT_COLUMNS
                ),
                &[&sql_limit(limit)],
            )
            .await
            .map_err(pg_err)?;
        credit_records(&rows)
    }

    async fn credit_matches_of_case(
        &self,
        bureau: BureauId,
        case_id: BureauCaseId,
        limit: usize,
    ) -> Result<Vec<CreditMatchRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {} FROM credit_matches WHERE bureau = $1 AND case_id = $2
                     ORDER BY publisher, entry_id LIMIT $3",
                    codec::CREDIT_MATCH_COLUMNS
                ),
                &[&bureau.as_str(), &case_id.as_str(), &sql_limit(limit)],
            )
            .await
            .map_err(pg_err)?;
        credit_match_records(&rows)
    }

    async fn recent_credit_matches(
        &self,
        limit: usize,
    ) -> Result<Vec<CreditMatchRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {} FROM credit_matches
                     ORDER BY matched_at DESC, message_id DESC LIMIT $1",
                    codec::CREDIT_MATCH_COLUMNS
                ),
                &[&sql_limit(limit)],
            )
            .await
            .map_err(pg_err)?;
        credit_match_records(&rows)
    }

    async fn survey(&self, id: SurveyId) -> Result<Option<SurveyRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {SURVEY_COLUMNS} FROM surveys WHERE id = $1"),
                &[&id.as_str()],
            )
            .await
            .map_err(pg_err)?;
        row.as_ref().map(survey_record).transpose()
    }

    async fn latest_survey(
        &self,
        project: ProjectCode,
        kind: SurveyKind,
    ) -> Result<Option<SurveyRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {SURVEY_COLUMNS} FROM surveys WHERE project = $1 AND kind = $2
                     ORDER BY version DESC LIMIT 1"
                ),
                &[&project.as_str(), &crate::vocabulary::name(&kind)],
            )
            .await
            .map_err(pg_err)?;
        row.as_ref().map(survey_record).transpose()
    }

    async fn record_survey_read(
        &self,
        id: SurveyId,
        bureau: BureauId,
        what: ReadOf,
        at: Millis,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let mut lane = self.lanes.lock(trail::LaneId::Ops).await;
        let tx = client.transaction().await.map_err(pg_err)?;
        // One statement: the count and the insert see the same snapshot.
        let row = tx
            .query_one(
                "WITH before AS (
                     SELECT COUNT(*) AS n FROM survey_reads WHERE survey_id = $1 AND bureau = $2
                 ), inserted AS (
                     INSERT INTO survey_reads (survey_id, bureau, what, at) VALUES ($1, $2, $3, $4)
                 )
                 SELECT n FROM before",
                &[&id.as_str(), &bureau.as_str(), &what.to_string(), &at],
            )
            .await
            .map_err(pg_err)?;
        let before: i64 = get(&row, 0)?;
        let record = audit::Record::SurveyRead {
            bureau: bureau.as_str().to_owned(),
            survey_id: id.as_str().to_owned(),
            what: what.to_string(),
        };
        let head = append_ops(&mut lane, &tx, at, vec![record]).await?;
        commit_ops(&mut lane, tx, head).await?;
        Ok(before == 0)
    }

    async fn survey_reads(
        &self,
        id: SurveyId,
        limit: usize,
    ) -> Result<Vec<SurveyRead>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT bureau, what, at FROM survey_reads WHERE survey_id = $1
                 ORDER BY id LIMIT $2",
                &[&id.as_str(), &sql_limit(limit)],
            )
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|row| {
                Ok(SurveyRead {
                    bureau: codec::bureau(get(row, 0)?)?,
                    what: get::<&str>(row, 1)?.parse()?,
                    at: get(row, 2)?,
                })
            })
            .collect()
    }

    async fn pause(&self, pause: Pause) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let mut lane = self.lanes.lock(trail::LaneId::Ops).await;
        let tx = client.transaction().await.map_err(pg_err)?;
        let paused = ops::pause(&tx, &pause).await?;
        let records = paused.then(|| audit::Record::BureauAction {
            action: "pause",
            subscriber: pause.subscriber.as_str().to_owned(),
            by: pause.by.clone(),
        });
        let head = append_ops(&mut lane, &tx, pause.at, records.into_iter().collect()).await?;
        commit_ops(&mut lane, tx, head).await?;
        Ok(paused)
    }

    async fn resume(
        &self,
        subscriber: BureauId,
        by: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let mut lane = self.lanes.lock(trail::LaneId::Ops).await;
        let tx = client.transaction().await.map_err(pg_err)?;
        let resumed = ops::resume(&tx, subscriber).await?;
        let records = resumed.then(|| audit::Record::BureauAction {
            action: "resume",
            subscriber: subscriber.as_str().to_owned(),
            by: by.to_owned(),
        });
        let head = append_ops(&mut lane, &tx, now, records.into_iter().collect()).await?;
        commit_ops(&mut lane, tx, head).await?;
        Ok(resumed)
    }

    async fn pauses(&self) -> Result<Vec<Pause>, StoreError> {
        ops::pauses(&self.client().await?).await
    }

    async fn dead_letter(&self, id: DeliveryId) -> Result<Option<DeadLetter>, StoreError> {
        ops::dead_letter(&self.client().await?, id).await
    }

    async fn purge(
        &self,
        selector: ReplaySelector,
        by: &str,
        now: Millis,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let mut lane = self.lanes.lock(trail::LaneId::Ops).await;
        let tx = client.transaction().await.map_err(pg_err)?;
        let (ids, purged) = ops::purge(&tx, &selector, limit).await?;
        let records = trail::delivery_records(&tx, Some("purge"), &ids, by).await?;
        let head = append_ops(&mut lane, &tx, now, records).await?;
        // The entries name the deliveries: written before they are deleted.
        ops::delete_dead(&tx, &ids).await?;
        commit_ops(&mut lane, tx, head).await?;
        Ok(purged)
    }

    async fn audit_chains(&self) -> Result<Vec<audit::ChainState>, StoreError> {
        trail::chains(&self.client().await?).await
    }

    async fn audit_entries(
        &self,
        chain: &str,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<audit::AuditRow>, StoreError> {
        trail::entries(&self.client().await?, chain, after_seq, limit).await
    }

    async fn audit_of_message(
        &self,
        message_id: &schemas::MessageId,
        limit: usize,
    ) -> Result<Vec<audit::AuditRow>, StoreError> {
        trail::of_message(&self.client().await?, message_id, limit).await
    }

    async fn audit_of_bureau(
        &self,
        bureau: BureauId,
        from: Millis,
        to: Millis,
        after: Option<(Millis, String, i64)>,
        limit: usize,
    ) -> Result<Vec<audit::AuditRow>, StoreError> {
        trail::of_bureau(&self.client().await?, bureau, from, to, after, limit).await
    }

    async fn audit_entry(
        &self,
        chain: &str,
        seq: i64,
    ) -> Result<Option<audit::AuditRow>, StoreError> {
        trail::entry(&self.client().await?, chain, seq).await
    }

    async fn record_checkpoint(
        &self,
        checkpoint: audit::StoredCheckpoint,
    ) -> Result<i64, StoreError> {
        trail::record_checkpoint(&self.client().await?, &checkpoint).await
    }

    async fn checkpoints(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<audit::StoredCheckpoint>, StoreError> {
        trail::checkpoints(&self.client().await?, after, limit).await
    }

    async fn raw_message(
        &self,
        sender: BureauId,
        idempotency_key: &str,
    ) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        trail::raw_message(&self.client().await?, sender, idempotency_key).await
    }

    async fn prune_audit(
        &self,
        chain: &str,
        before: Millis,
        by: &str,
        now: Millis,
        limit: usize,
    ) -> Result<Option<audit::Anchor>, StoreError> {
        let mut client = self.client().await?;
        let mut lane = self.lanes.lock(trail::LaneId::Ops).await;
        let tx = client.transaction().await.map_err(pg_err)?;
        let Some((anchor, head)) =
            trail::prune(&tx, &mut lane, chain, before, by, now, limit).await?
        else {
            return Ok(None);
        };
        commit_ops(&mut lane, tx, head).await?;
        Ok(Some(anchor))
    }

    async fn timeline(
        &self,
        key: TimelineKey,
        limit: usize,
    ) -> Result<Vec<TimelineEvent>, StoreError> {
        ops::timeline(&self.client().await?, &key, limit).await
    }

    async fn record_node_report(&self, report: NodeReport) -> Result<(), StoreError> {
        ops::record_node_report(&mut self.client().await?, &report).await
    }

    async fn node_reports(&self, since: Millis, limit: usize) -> Result<NodeReports, StoreError> {
        ops::node_reports(&self.client().await?, since, limit).await
    }

    async fn shared_secret(&self, name: &str, candidate: String) -> Result<String, StoreError> {
        ops::shared_secret(&self.client().await?, name, &candidate).await
    }

    async fn cleanup(&self, delivered_before: Millis, limit: usize) -> Result<u64, StoreError> {
        if limit == 0 {
            return Ok(0);
        }
        let mut client = self.client().await?;
        let tx = relaxed(&mut client).await?;
        let locked: bool = get(
            &tx.query_one(
                "SELECT pg_try_advisory_xact_lock($1, COALESCE(hashtext(current_schema()), 0))",
                &[&CLEANUP_LOCK],
            )
            .await
            .map_err(pg_err)?,
            0,
        )?;
        if !locked {
            // Another node is cleaning up right now.
            return Ok(0);
        }
        let doomed: Vec<DeliveryId> = get(
            &tx.query_one(
                "SELECT ARRAY(
                    SELECT id FROM deliveries
                    WHERE state = 'delivered' AND delivered_at < $1
                    ORDER BY delivered_at, id
                    LIMIT $2)",
                &[&delivered_before, &sql_limit(limit)],
            )
            .await
            .map_err(pg_err)?,
            0,
        )?;
        if doomed.is_empty() {
            return Ok(0);
        }
        tx.execute(
            "DELETE FROM delivery_attempts WHERE delivery_id = ANY ($1)",
            &[&doomed],
        )
        .await
        .map_err(pg_err)?;
        let deleted = tx
            .execute("DELETE FROM deliveries WHERE id = ANY ($1)", &[&doomed])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(deleted)
    }

    fn work_notifications(&self) -> Option<watch::Receiver<u64>> {
        Some(self.work.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::store::conformance::{self, accept, event, message, stat};
    use crate::testing::{PgSchema as Schema, pg_admin as admin, pg_explain as explain};

    fn server() -> Option<String> {
        crate::testing::postgres_server("PostgreSQL store tests")
    }

    /// A fresh store on a fresh schema, for the conformance suite.
    async fn fresh(_name: &'static str) -> Option<(Schema, PgStore)> {
        let server = server()?;
        let schema = Schema::new(&server);
        admin(&server)
            .await
            .unwrap()
            .batch_execute(&format!("CREATE SCHEMA {}", schema.name))
            .await
            .unwrap();
        let store = PgStore::connect(&schema.url(), 4).await.unwrap();
        Some((schema, store))
    }

    conformance::conformance_tests!(fresh);

    /// Two nodes on one database: node B ingests the next event of each case while node A, at
    /// the same moment, completes the case's head. Whichever commits first, every case has
    /// exactly its next event leasable afterwards — never none (a stranded case), never a
    /// newer one first — round after round.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_head_handed_over_between_two_nodes_never_strands_or_reorders_a_case() {
        use crate::store::{Outcome, Settled};
        let Some((schema, a)) = fresh("handoff").await else {
            return;
        };
        let b = PgStore::connect(&schema.url(), 4).await.unwrap();
        const CASES: usize = 30;
        const ROUNDS: usize = 8;
        let event_of = |case: usize, round: usize| {
            let mut e = event(7_000 + case as u64, &format!("c{case}-{round}"));
            e.case_id = schemas::BureauCaseId::parse(&format!("HANDOFF-{case}")).unwrap();
            e.sequence = round as u64 + 1;
            e
        };
        for case in 0..CASES {
            accept(
                &a,
                message(
                    &format!("k{case}-0"),
                    1,
                    vec![(event_of(case, 0), vec![BureauId::Water])],
                ),
            )
            .await;
        }
        for round in 1..=ROUNDS + 1 {
            let now = 1_000_000 * round as i64;
            let leased = a
                .lease_due("gw-a", vec![BureauId::Water], now, 30_000, 1_000)
                .await
                .unwrap();
            let mut got: Vec<String> = conformance::ids(&leased);
            got.sort();
            let mut expected: Vec<String> = (0..CASES)
                .map(|case| format!("gw-c{case}-{}", round - 1))
                .collect();
            expected.sort();
            assert_eq!(got, expected, "round {round}: each case's next event, once");
            if round > ROUNDS {
                break;
            }
            let mut tasks = Vec::new();
            for delivery in leased {
                let case: usize = delivery.event.case_id.as_str()["HANDOFF-".len()..]
                    .parse()
                    .unwrap();
                let (a, b) = (a.clone(), b.clone());
                tasks.push(tokio::spawn(async move {
                    let next = message(
                        &format!("k{case}-{round}"),
                        now + 1,
                        vec![(event_of(case, round), vec![BureauId::Water])],
                    );
                    let complete = Outcome {
                        id: delivery.id,
                        lease: delivery.lease,
                        subscriber: delivery.subscriber,
                        message_id: delivery.event.message_id.clone(),
                        settled: Settled::Delivered { at: now + 1 },
                    };
                    let (ingested, completed) =
                        tokio::join!(b.ingest(next), a.record_outcomes(vec![complete]));
                    assert!(matches!(ingested.unwrap(), IngestOutcome::Accepted(_)));
                    assert_eq!(completed.unwrap(), vec![true]);
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
        }
        assert_eq!(
            stat(&a, BureauId::Water).await.unwrap().delivered,
            (CASES * ROUNDS) as u64
        );
    }

    /// The shape of a schema both dialects can be compared on: tables with their columns
    /// (name and whether NULL is allowed) and indexes with their table, key columns and
    /// whether they are partial.
    type Shape = (
        std::collections::BTreeMap<String, std::collections::BTreeSet<(String, bool)>>,
        std::collections::BTreeSet<(String, String, Vec<String>, bool)>,
    );

    /// The shape of the SQLite schema, from the migrations applied to a database in memory.
    fn sqlite_shape() -> Shape {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for step in crate::store::sqlite::MIGRATIONS {
            conn.execute_batch(step).unwrap();
        }
        let mut tables = std::collections::BTreeMap::new();
        let mut indexes = std::collections::BTreeSet::new();
        let names: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for table in names {
            let columns = conn
                .prepare(&format!("PRAGMA table_info({table})"))
                .unwrap()
                .query_map([], |r| {
                    // A primary key column is never NULL, whatever `notnull` says.
                    let not_null = r.get::<_, bool>(3)? || r.get::<_, i64>(5)? > 0;
                    Ok((r.get::<_, String>(1)?, !not_null))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let listed: Vec<(String, bool)> = conn
                .prepare(&format!("PRAGMA index_list({table})"))
                .unwrap()
                .query_map([], |r| Ok((r.get(1)?, r.get(4)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            for (index, partial) in listed {
                if index.starts_with("sqlite_autoindex") {
                    continue; // UNIQUE and PRIMARY KEY constraints, compared as columns.
                }
                let keys = conn
                    .prepare(&format!("PRAGMA index_info({index})"))
                    .unwrap()
                    .query_map([], |r| r.get(2))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                indexes.insert((index, table.clone(), keys, partial));
            }
            tables.insert(table, columns);
        }
        (tables, indexes)
    }

    /// The shape of the PostgreSQL schema a store created, from the catalogs.
    async fn postgres_shape(client: &tokio_postgres::Client, schema: &str) -> Shape {
        let mut tables = std::collections::BTreeMap::new();
        let rows = client
            .query(
                "SELECT table_name::text, column_name::text, is_nullable = 'YES'
                 FROM information_schema.columns
                 WHERE table_schema = $1 AND table_name <> 'schema_migrations'",
                &[&schema],
            )
            .await
            .unwrap();
        for row in rows {
            tables
                .entry(row.get::<_, String>(0))
                .or_insert_with(std::collections::BTreeSet::new)
                .insert((row.get::<_, String>(1), row.get::<_, bool>(2)));
        }
        let rows = client
            .query(
                "SELECT i.relname::text, t.relname::text, ix.indpred IS NOT NULL,
                        ARRAY(SELECT a.attname::text
                              FROM unnest(ix.indkey) WITH ORDINALITY AS k (attnum, ord)
                              JOIN pg_attribute a
                                ON a.attrelid = t.oid AND a.attnum = k.attnum
                              ORDER BY k.ord)
                 FROM pg_index ix
                 JOIN pg_class i ON i.oid = ix.indexrelid
                 JOIN pg_class t ON t.oid = ix.indrelid
                 JOIN pg_namespace n ON n.oid = t.relnamespace
                 WHERE n.nspname = $1 AND NOT ix.indisprimary AND NOT ix.indisunique
                   AND t.relname <> 'schema_migrations'",
                &[&schema],
            )
            .await
            .unwrap();
        let indexes = rows
            .into_iter()
            .map(|row| (row.get(0), row.get(1), row.get(3), row.get(2)))
            .collect();
        (tables, indexes)
    }

    #[tokio::test]
    async fn both_dialects_have_the_same_tables_columns_and_indexes() {
        let Some((schema, _store)) = fresh("schema parity").await else {
            return;
        };
        let client = admin(&schema.server).await.unwrap();
        let (pg_tables, pg_indexes) = postgres_shape(&client, &schema.name).await;
        let (lite_tables, lite_indexes) = sqlite_shape();
        assert_eq!(pg_tables, lite_tables, "tables and columns differ");
        assert_eq!(pg_indexes, lite_indexes, "indexes differ");
        assert!(pg_tables.contains_key("deliveries") && pg_indexes.len() >= 8);
    }

    #[test]
    fn the_schema_comes_from_the_search_path_option() {
        let schema = |o: &str| search_path_schema(o);
        assert_eq!(schema("-c search_path=t_1"), Some("t_1".into()));
        assert_eq!(schema("-csearch_path=Abc,public"), Some("abc".into()));
        assert_eq!(
            schema("-c statement_timeout=5s -c search_path=\"Mixed\""),
            Some("Mixed".into())
        );
        assert_eq!(schema("-c search_path=$user,public"), None);
        assert_eq!(schema("-c statement_timeout=5s"), None);
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_unavailable_quickly() {
        let started = Instant::now();
        let error = PgStore::connect("postgres://postgres@127.0.0.1:1/test", 2)
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
        assert!(error.is_retryable());
        assert!(started.elapsed() < Duration::from_secs(10));
        let error = PgStore::connect("not a url", 2).await.unwrap_err();
        assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_ingests_share_commits() {
        let Some((_schema, store)) = fresh("group").await else {
            return;
        };
        conformance::concurrent_ingests_share_commits(store, PgStore::commits).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migrations_are_idempotent_and_safe_concurrently() {
        let Some(server) = server() else {
            return;
        };
        // Not created beforehand: the stores create it.
        let schema = Schema::new(&server);
        let url = schema.url();
        let (a, b) = tokio::join!(PgStore::connect(&url, 2), PgStore::connect(&url, 2));
        let (a, _b) = (a.unwrap(), b.unwrap());
        migrate(&url).await.unwrap();
        let again = PgStore::connect(&url, 2).await.unwrap();

        let client = admin(&url).await.unwrap();
        let versions: Vec<i32> = client
            .query(
                "SELECT version FROM schema_migrations ORDER BY version",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let expected: Vec<i32> = (1..=MIGRATIONS.len() as i32).collect();
        assert_eq!(versions, expected);
        accept(
            &a,
            message("m", 1, vec![(event(1, "mig"), vec![BureauId::Water])]),
        )
        .await;
        assert_eq!(stat(&again, BureauId::Water).await.unwrap().pending, 1);

        // A schema newer than this build is refused, not touched.
        client
            .execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[&(MIGRATIONS.len() as i32 + 1)],
            )
            .await
            .unwrap();
        let error = migrate(&url).await.unwrap_err();
        assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
    }

    /// A node name is claimed by one live store at a time (per schema), until that store goes:
    /// a second node started with the same name does not take the first one's leases.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_name_is_held_by_one_live_store_at_a_time() {
        let Some((schema, a)) = fresh("claim").await else {
            return;
        };
        let b = PgStore::connect(&schema.url(), 2).await.unwrap();
        assert!(a.claim_node("gw-x").await.unwrap());
        assert!(!b.claim_node("gw-x").await.unwrap(), "held by a");
        assert!(b.claim_node("gw-y").await.unwrap(), "another name");
        // Another schema (another exchange on the same server) has names of its own.
        let (_other_schema, c) = fresh("claim-other").await.unwrap();
        assert!(c.claim_node("gw-x").await.unwrap());

        // a's leases stay a's while a lives.
        accept(
            &a,
            message("c1", 1, vec![(event(1, "c1"), vec![BureauId::Water])]),
        )
        .await;
        let leased = a
            .lease_due("gw-x", vec![BureauId::Water], 10, 60_000, 1)
            .await
            .unwrap();
        assert_eq!(leased.len(), 1);

        // Once a is gone (its process ended: here its last clone dropped), the name is free.
        drop(a);
        let started = Instant::now();
        let c = PgStore::connect(&schema.url(), 2).await.unwrap();
        while !c.claim_node("gw-x").await.unwrap() {
            assert!(started.elapsed() < Duration::from_secs(30), "never freed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(c.release_leases("gw-x", 20, 100).await.unwrap(), 1);
        let again = c
            .lease_due("gw-x", vec![BureauId::Water], 20, 60_000, 1)
            .await
            .unwrap();
        assert_eq!(again[0].id, leased[0].id);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_share_idempotency_keys() {
        let Some((schema, a)) = fresh("two-nodes").await else {
            return;
        };
        let b = PgStore::connect(&schema.url(), 2).await.unwrap();
        for n in 0..5u64 {
            let key = format!("shared-{n}");
            let (x, y) = tokio::join!(
                a.ingest(message(
                    &key,
                    1,
                    vec![(event(n, &format!("x{n}")), vec![BureauId::Water])]
                )),
                b.ingest(message(
                    &key,
                    1,
                    vec![(event(n, &format!("y{n}")), vec![BureauId::Water])]
                )),
            );
            let (x, y) = (x.unwrap(), y.unwrap());
            match (&x, &y) {
                (IngestOutcome::Accepted(r), IngestOutcome::Duplicate(d))
                | (IngestOutcome::Duplicate(d), IngestOutcome::Accepted(r)) => assert_eq!(r, d),
                _ => panic!("expected one Accepted and one Duplicate, got {x:?} and {y:?}"),
            }
        }
        assert_eq!(stat(&b, BureauId::Water).await.unwrap().pending, 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_notifications_reach_other_nodes() {
        let Some((schema, a)) = fresh("notify").await else {
            return;
        };
        let b = PgStore::connect(&schema.url(), 2).await.unwrap();
        let mut work = a.work_notifications().expect("a shared store notifies");
        let wait = Duration::from_secs(10);
        // The bump after LISTEN succeeded: from now on nothing is missed.
        tokio::time::timeout(wait, async {
            while *work.borrow_and_update() == 0 {
                work.changed().await.unwrap();
            }
        })
        .await
        .expect("the listener connects");
        let seen = *work.borrow_and_update();

        accept(
            &b,
            message("n1", 1, vec![(event(1, "n1"), vec![BureauId::Water])]),
        )
        .await;
        tokio::time::timeout(wait, work.changed())
            .await
            .expect("notified of another node's ingest")
            .unwrap();
        assert!(*work.borrow_and_update() > seen);

        // A duplicate is no new work; a replay is.
        let leased = b
            .lease_due(conformance::NODE, vec![BureauId::Water], 10, 1_000, 1)
            .await
            .unwrap();
        let attempt = Attempt {
            at: 10,
            error: "HTTP 500".into(),
        };
        assert!(
            b.mark_failed(&leased[0], attempt, AfterFailure::DeadLetter)
                .await
                .unwrap()
        );
        let seen = *work.borrow_and_update();
        assert_eq!(
            b.replay(
                ReplaySelector::Subscriber(BureauId::Water),
                "operator",
                20,
                100
            )
            .await
            .unwrap(),
            1
        );
        tokio::time::timeout(wait, work.changed())
            .await
            .expect("notified of another node's replay")
            .unwrap();
        assert!(*work.borrow_and_update() > seen);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cleanup_is_skipped_while_another_node_cleans() {
        let Some((schema, store)) = fresh("cleanup-lock").await else {
            return;
        };
        accept(
            &store,
            message("c", 1, vec![(event(1, "c1"), vec![BureauId::Water])]),
        )
        .await;
        let leased = store
            .lease_due(conformance::NODE, vec![BureauId::Water], 10, 1_000, 1)
            .await
            .unwrap();
        assert!(store.mark_delivered(&leased[0], 20).await.unwrap());

        // Another node holds this schema's cleanup lock.
        let mut other = admin(&schema.url()).await.unwrap();
        let tx = other.transaction().await.unwrap();
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
            &[&CLEANUP_LOCK],
        )
        .await
        .unwrap();
        assert_eq!(store.cleanup(1_000, 10).await.unwrap(), 0);
        tx.rollback().await.unwrap();
        assert_eq!(store.cleanup(1_000, 10).await.unwrap(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queue_queries_use_their_indexes_on_a_large_backlog() {
        let Some((schema, store)) = fresh("plan").await else {
            return;
        };
        drop(store);
        let client = admin(&schema.url()).await.unwrap();
        // 200 000 deliveries over 4 subscribers and 20 000 cases; a quarter delivered.
        client
            .batch_execute(
                "INSERT INTO messages (sender, idempotency_key, content_type, body, sha256,
                                       received_at, receipt)
                 VALUES ('planning', 'bulk', 'application/xml', '', '', 0, '{}');
                 INSERT INTO events (message_id, gateway_message_id, source_message_id, source,
                                     case_key, event)
                 SELECT 1, 'gw-' || n, 'src-' || n, 'planning', 'planning:C' || (n % 20000), '{}'
                 FROM generate_series(1, 50000) AS n;
                 INSERT INTO deliveries (event_id, subscriber, case_key, state, due_at, created_at,
                                         delivered_at)
                 SELECT e.id, s, e.case_key,
                        CASE WHEN e.id % 4 = 0 THEN 'delivered' ELSE 'pending' END,
                        e.id, e.id, CASE WHEN e.id % 4 = 0 THEN e.id END
                 FROM events e
                 CROSS JOIN unnest(ARRAY['water', 'transport', 'greenery', 'civil_defense']) AS s;
                 ANALYZE;",
            )
            .await
            .unwrap();
        let subscribers = vec!["water", "transport"];
        let (now, until, limit) = (1_000_000i64, 1_030_000i64, 64i64);
        let node = conformance::NODE;
        let lease = explain(
            &client,
            LEASE_DUE,
            &[&subscribers, &now, &until, &limit, &node],
        )
        .await;
        assert!(!lease.contains("Seq Scan on deliveries"), "{lease}");
        assert!(lease.contains("deliveries_due"), "{lease}");
        assert!(lease.contains("deliveries_case_queue"), "{lease}");

        let feed = explain(&client, FEED, &[&"water", &limit]).await;
        assert!(!feed.contains("Seq Scan on deliveries"), "{feed}");
        assert!(feed.contains("deliveries_feed"), "{feed}");
    }
}
