//! The embedded SQLite store.
//!
//! One writer thread owns the only writing [`Connection`]; a reader thread owns a read-only one
//! (WAL lets it read committed data while the writer writes), on which the operators' reads —
//! queue statistics, backlogs, dead letters, timelines, node reports, survey lookups — run each
//! in its own read transaction (one snapshot), so they never wait behind a group commit and never
//! hold one up. Async callers send the writer jobs over a bounded
//! channel (the bound is the memory bound and the backpressure) and await a oneshot reply. The
//! thread takes one job, drains whatever else is already queued, runs them all in **one**
//! transaction — each inside its own `SAVEPOINT`, so a failing job rolls back only itself — then
//! `COMMIT`s and only then replies to every caller (group commit: concurrent ingests share one
//! fsync, and an `Ok` from `ingest` means committed).
//!
//! The schema is versioned with `PRAGMA user_version`: `MIGRATIONS` lists the steps in order,
//! each applied in its own transaction.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use schemas::{BureauCaseId, BureauId, JointCaseId, MessageId, ProjectCode, SurveyId, SurveyKind};
use tokio::sync::{mpsc, oneshot};

use super::audit;
use super::codec::{self, SURVEY_COLUMNS, lease_to_sql, new_lease, sql_limit};
use super::joint::{CaseClock, JointCase};
use super::{
    AfterFailure, Attempt, Backlog, CreditMatchRecord, CreditRecord, DeadLetter, Delivery,
    DeliveryId, FlowEvent, FlowStep, IngestOutcome, Millis, NewMessage, NodeReport, NodeReports,
    Outcome, Pause, QueueStat, ReadOf, ReceivedEvent, ReplaySelector, Settled, Store, StoreError,
    SurveyRead, SurveyRecord, TimelineEvent, TimelineKey,
};

mod schema;
pub(crate) use schema::MIGRATIONS;

mod db;
mod ops;
mod trail;

use db::db_err;

/// How many jobs may wait for the writer thread; callers wait when it is full.
const QUEUE_CAPACITY: usize = 1024;

/// At most this many jobs share one transaction.
const MAX_BATCH: usize = 256;

/// How long SQLite waits for a lock held by another connection before reporting busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many reads may wait for the reader thread; callers wait when it is full.
const READ_QUEUE_CAPACITY: usize = 256;

/// One read for the reader thread: runs on its connection and sends its own reply.
type Read = Box<dyn FnOnce(&Connection) + Send>;

/// What a job leaves once it has run: whether it failed (its savepoint is rolled back then) and
/// how to send its reply once the transaction's fate is known.
struct Ran {
    failed: bool,
    /// Called with `Ok` after the commit, or with the reason the transaction was lost.
    reply: Box<dyn FnOnce(Result<(), StoreError>) + Send>,
}

/// One unit of work for the writer thread.
trait Job: Send {
    /// Runs the work inside the open transaction (and its own savepoint).
    fn run(self: Box<Self>, conn: &Connection) -> Ran;
    /// Replies `error` without running: no transaction could be opened for it.
    fn refuse(self: Box<Self>, error: StoreError);
    /// Whether its commit must reach the disk before the reply (see [`writer`]).
    fn durable(&self) -> bool;
}

/// A caller's closure and the channel its result goes back on.
struct Call<F, T> {
    work: F,
    reply_to: oneshot::Sender<Result<T, StoreError>>,
    durable: bool,
}

impl<F, T> Job for Call<F, T>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> Ran {
        let Call { work, reply_to, .. } = *self;
        let result = work(conn);
        Ran {
            failed: result.is_err(),
            reply: Box::new(move |committed| {
                // The caller may have gone away; nothing to do then.
                let _ = reply_to.send(result.and_then(|value| committed.map(|()| value)));
            }),
        }
    }

    fn durable(&self) -> bool {
        self.durable
    }

    fn refuse(self: Box<Self>, error: StoreError) {
        let _ = self.reply_to.send(Err(error));
    }
}

/// The SQLite store. Cheap to clone: every clone talks to the same writer thread, which stops
/// once the last clone is dropped.
#[derive(Clone)]
pub struct SqliteStore {
    jobs: mpsc::Sender<Box<dyn Job>>,
    reads: mpsc::Sender<Read>,
    commits: Arc<AtomicU64>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("commits", &self.commits())
            .field("closed", &self.jobs.is_closed())
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating it and its folder when missing) the database at `path`, brings its schema
    /// up to date and starts the writer thread. Blocking: call it before serving, or from
    /// `spawn_blocking`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::unavailable_from(format!("cannot create {}", parent.display()), e)
            })?;
        }
        let mut conn = Connection::open(path).map_err(db_err)?;
        configure(&conn)?;
        migrate(&mut conn)?;

        // Opened after the migrations, so it reads the current schema.
        let reader_conn = open_reader(path)?;

        let (jobs, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let commits = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&commits);
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer(conn, receiver, &counter))
            .map_err(|e| StoreError::unavailable_from("cannot start the writer thread", e))?;
        let (reads, read_receiver) = mpsc::channel(READ_QUEUE_CAPACITY);
        std::thread::Builder::new()
            .name("store-reader".into())
            .spawn(move || reader(&reader_conn, read_receiver))
            .map_err(|e| StoreError::unavailable_from("cannot start the reader thread", e))?;
        Ok(SqliteStore {
            jobs,
            reads,
            commits,
        })
    }

    /// Runs `work` on the reader thread, inside one read transaction (a consistent snapshot of
    /// what has been committed), never waiting for the writer.
    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply_to, reply) = oneshot::channel();
        let read: Read = Box::new(move |conn| {
            // The caller may have gone away; nothing to do then.
            let _ = reply_to.send(in_snapshot(conn, work));
        });
        self.reads
            .send(read)
            .await
            .map_err(|_| StoreError::Closed)?;
        reply.await.map_err(|_| StoreError::Closed)?
    }

    /// How many transactions the writer thread has committed since `open`. Grows by one per
    /// group of jobs, not per job.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Runs `work` on the writer thread inside the current group transaction and returns its
    /// result once that transaction has committed. Delivery bookkeeping uses this: a crash may
    /// forget its last commits, which only means a delivery is sent again (at-least-once).
    async fn call<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(work, false).await
    }

    /// Like [`call`](Self::call), but the reply waits until the commit is on disk (fsync):
    /// for ingest, whose 2xx promises the message is never lost.
    async fn call_durable<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(work, true).await
    }

    async fn submit<T, F>(&self, work: F, durable: bool) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply_to, reply) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Call {
            work,
            reply_to,
            durable,
        });
        self.jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        reply.await.map_err(|_| StoreError::Closed)?
    }
}

/// Connection settings: durable WAL, enforced foreign keys, waiting on locks.
fn configure(conn: &Connection) -> Result<(), StoreError> {
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(db_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::unavailable(format!(
            "the database refused WAL journaling (journal_mode is {mode})"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(db_err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(db_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// The reader's connection: read-only, waiting on locks like the writer's.
fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(db_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// The reader thread: runs reads one after another until every sender is gone.
fn reader(conn: &Connection, mut reads: mpsc::Receiver<Read>) {
    while let Some(read) = reads.blocking_recv() {
        read(conn);
    }
}

/// Runs `work` in one read transaction, so every query of it sees the same commit.
fn in_snapshot<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.execute_batch("BEGIN").map_err(db_err)?;
    let result = work(conn);
    // Ending a read transaction only releases its snapshot; if that fails, the next BEGIN
    // reports it.
    if let Err(e) = conn.execute_batch("COMMIT") {
        tracing::warn!(
            message = "SQLite read transaction did not end",
            error = &e as &dyn std::error::Error
        );
    }
    result
}

/// Applies the migrations the database has not seen yet, each in its own transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(db_err)?;
    let applied = codec::applied_migrations(version, MIGRATIONS.len())?;
    for (step, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db_err)?;
        tx.execute_batch(sql).map_err(db_err)?;
        let version =
            i64::try_from(step + 1).map_err(|e| StoreError::corrupt_from("schema version", e))?;
        tx.pragma_update(None, "user_version", version)
            .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
    }
    Ok(())
}

/// The writer thread: group commit until every sender is gone.
///
/// A group that holds an ingest commits with `synchronous=FULL` (the WAL is fsynced before the
/// replies); a group of delivery bookkeeping only commits with `synchronous=NORMAL`, which is
/// atomic and consistent but may be forgotten by a power loss — a forgotten "delivered" means
/// one more delivery, which at-least-once allows. The next FULL commit makes everything before
/// it durable too.
fn writer(conn: Connection, mut jobs: mpsc::Receiver<Box<dyn Job>>, commits: &AtomicU64) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut synchronous_full = true;
    while let Some(first) = jobs.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let durable = batch.iter().any(|job| job.durable());
        if durable != synchronous_full {
            let level = if durable { "FULL" } else { "NORMAL" };
            match conn.pragma_update(None, "synchronous", level) {
                Ok(()) => synchronous_full = durable,
                // Staying at FULL is safe; staying at NORMAL with a durable job is not.
                Err(e) if durable => {
                    let e = db_err(e);
                    for job in batch.drain(..) {
                        job.refuse(e.clone());
                    }
                    continue;
                }
                Err(e) => tracing::warn!(
                    message = "SQLite stays at synchronous=FULL for bookkeeping",
                    error = &e as &dyn std::error::Error
                ),
            }
        }
        run_batch(&conn, batch.drain(..), commits);
    }
}

/// Runs jobs in one transaction, each in its own savepoint, commits, then replies to all.
fn run_batch(conn: &Connection, batch: impl Iterator<Item = Box<dyn Job>>, commits: &AtomicU64) {
    // Jobs that ran in the open transaction, waiting for its commit.
    let mut done: Vec<Ran> = Vec::new();
    for job in batch {
        if conn.is_autocommit()
            && let Err(e) = conn.execute_batch("BEGIN IMMEDIATE")
        {
            job.refuse(db_err(e));
            continue;
        }
        if let Err(e) = conn.execute_batch("SAVEPOINT job") {
            let e = db_err(e);
            abort(conn, &mut done, &e);
            job.refuse(e);
            continue;
        }
        let ran = job.run(conn);
        let close = if ran.failed {
            "ROLLBACK TO job; RELEASE job"
        } else {
            "RELEASE job"
        };
        let closed = conn.execute_batch(close).map_err(db_err);
        done.push(ran);
        match closed {
            // SQLite itself rolled the whole transaction back (disk full, I/O error ...):
            // every job that ran in it is lost, not just the last one.
            Ok(()) if conn.is_autocommit() => abort(
                conn,
                &mut done,
                &StoreError::unavailable("the database rolled the transaction back"),
            ),
            Ok(()) => {}
            Err(e) => abort(conn, &mut done, &e),
        }
    }
    if done.is_empty() {
        return;
    }
    match conn.execute_batch("COMMIT").map_err(db_err) {
        Ok(()) => {
            commits.fetch_add(1, Ordering::Relaxed);
            for ran in done {
                (ran.reply)(Ok(()));
            }
        }
        Err(e) => abort(conn, &mut done, &e),
    }
}

/// Rolls the open transaction back and tells every job that ran in it why.
fn abort(conn: &Connection, done: &mut Vec<Ran>, reason: &StoreError) {
    if !conn.is_autocommit()
        && let Err(e) = conn.execute_batch("ROLLBACK")
    {
        // The next batch's BEGIN fails too, and its callers are told so.
        tracing::error!(
            message = "SQLite rollback failed",
            error = &e as &dyn std::error::Error
        );
    }
    for ran in done.drain(..) {
        (ran.reply)(Err(reason.clone()));
    }
}

/// Reads one delivery row shaped `(id, subscriber, event JSON, attempts, created_at)`.
fn delivery_row(row: &rusqlite::Row<'_>, lease: u64) -> Result<Delivery, StoreError> {
    let subscriber: String = row.get(1).map_err(db_err)?;
    let event: String = row.get(2).map_err(db_err)?;
    let attempts: i64 = row.get(3).map_err(db_err)?;
    Ok(Delivery {
        id: row.get(0).map_err(db_err)?,
        subscriber: codec::bureau(&subscriber)?,
        event: codec::event(&event)?,
        attempts: codec::attempts(attempts)?,
        created_at: row.get(4).map_err(db_err)?,
        lease,
    })
}

fn insert_survey(
    conn: &Connection,
    message_row: i64,
    survey: &SurveyRecord,
) -> Result<(), StoreError> {
    let c = codec::survey_columns(survey)?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO surveys
                (id, message_id, project, kind, version, supersedes, publisher, result, published_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .and_then(|mut s| {
            s.execute(params![
                c.id,
                message_row,
                c.project,
                c.kind,
                c.version,
                c.supersedes,
                c.publisher,
                c.result,
                c.published_at
            ])
        });
    match inserted {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::ConstraintViolation => {
            Err(codec::survey_version_taken(survey.result.version))
        }
        Err(e) => Err(db_err(e)),
    }
}

fn insert_credit(
    conn: &Connection,
    message_row: i64,
    record: &CreditRecord,
) -> Result<(), StoreError> {
    let c = codec::credit_columns(record)?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO credit_entries
                (publisher, entry_id, version, credit_code, list, message_id, listed_at, entry)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut s| {
            s.execute(params![
                c.publisher,
                c.entry_id,
                c.version,
                c.credit_code,
                c.list,
                message_row,
                c.listed_at,
                c.entry
            ])
        });
    match inserted {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::ConstraintViolation => {
            Err(codec::credit_version_taken(record))
        }
        Err(e) => Err(db_err(e)),
    }
}

/// Records a credit match with its notice; a match recorded already stays as it was.
fn insert_credit_match(
    conn: &Connection,
    message_row: i64,
    record: &CreditMatchRecord,
) -> Result<(), StoreError> {
    let c = codec::credit_match_columns(record)?;
    conn.prepare_cached(
        "INSERT INTO credit_matches
            (publisher, entry_id, bureau, case_id, message_id, matched_at, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (publisher, entry_id, bureau, case_id) DO NOTHING",
    )
    .and_then(|mut s| {
        s.execute(params![
            c.publisher,
            c.entry_id,
            c.bureau,
            c.case_id,
            message_row,
            c.matched_at,
            c.record
        ])
    })
    .map_err(db_err)?;
    Ok(())
}

/// Reads the credit matches of a query over [`codec::CREDIT_MATCH_COLUMNS`].
fn credit_match_rows(
    statement: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<CreditMatchRecord>, StoreError> {
    let mut rows = statement.query(params).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db_err)? {
        let record: String = row.get(0).map_err(db_err)?;
        out.push(codec::credit_match_record(&record)?);
    }
    Ok(out)
}

/// Reads the credit records of a query over [`codec::CREDIT_COLUMNS`].
fn credit_rows(
    statement: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<CreditRecord>, StoreError> {
    let mut rows = statement.query(params).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db_err)? {
        let publisher: String = row.get(0).map_err(db_err)?;
        let entry: String = row.get(2).map_err(db_err)?;
        out.push(codec::credit_record(
            &publisher,
            row.get(1).map_err(db_err)?,
            &entry,
        )?);
    }
    Ok(out)
}

/// Reads a survey record from a row of [`SURVEY_COLUMNS`].
fn survey_row(row: &rusqlite::Row<'_>) -> Result<SurveyRecord, StoreError> {
    let text = |i: usize| row.get::<_, String>(i).map_err(db_err);
    let supersedes: Option<String> = row.get(1).map_err(db_err)?;
    codec::survey_record(
        &text(0)?,
        supersedes.as_deref(),
        &text(2)?,
        &text(3)?,
        row.get(4).map_err(db_err)?,
    )
}

fn ingest_in(conn: &Connection, message: NewMessage) -> Result<IngestOutcome, StoreError> {
    let sender = message.sender.as_str();
    let key = message.idempotency_key.as_str();
    let seen: Option<String> = conn
        .prepare_cached("SELECT receipt FROM messages WHERE sender = ?1 AND idempotency_key = ?2")
        .and_then(|mut s| s.query_row(params![sender, key], |r| r.get(0)).optional())
        .map_err(db_err)?;
    if let Some(receipt) = seen {
        return Ok(IngestOutcome::Duplicate(codec::receipt(&receipt)?));
    }

    let rows = codec::ingest_rows(&message)?;
    conn.prepare_cached(
        "INSERT INTO messages
            (sender, idempotency_key, content_type, body, sha256, received_at, receipt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            sender,
            key,
            message.content_type,
            message.body,
            message.sha256.as_str(),
            message.received_at,
            rows.receipt_json
        ])
    })
    .map_err(db_err)?;
    let message_row = conn.last_insert_rowid();
    if let Some(survey) = &message.survey {
        insert_survey(conn, message_row, survey)?;
    }
    for record in &message.credit {
        insert_credit(conn, message_row, record)?;
    }
    if let Some(found) = &message.credit_match {
        insert_credit_match(conn, message_row, found)?;
    }

    let mut insert_event = conn
        .prepare_cached(
            "INSERT INTO events
                (message_id, gateway_message_id, source_message_id, source, case_key, event,
                 project, flow_pending)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(db_err)?;
    let mut insert_delivery = conn
        .prepare_cached(
            // The head of its (subscriber, case) queue when nothing else is pending there.
            "INSERT INTO deliveries
                 (event_id, subscriber, case_key, state, due_at, created_at, head)
             VALUES (?1, ?2, ?3, 'pending', ?4, ?4, NOT EXISTS (
                 SELECT 1 FROM deliveries INDEXED BY deliveries_case_queue
                 WHERE subscriber = ?2 AND case_key = ?3 AND state = 'pending'))",
        )
        .map_err(db_err)?;
    for event in &rows.events {
        insert_event
            .execute(params![
                message_row,
                event.gateway_id,
                event.source_id,
                event.source,
                event.case_key,
                event.json,
                event.project,
                event.for_flows
            ])
            .map_err(db_err)?;
        let event_row = conn.last_insert_rowid();
        for subscriber in &event.subscribers {
            insert_delivery
                .execute(params![
                    event_row,
                    subscriber.as_str(),
                    event.case_key,
                    message.received_at
                ])
                .map_err(db_err)?;
        }
    }
    trail::append_ingest_in(conn, &message)?;
    Ok(IngestOutcome::Accepted(rows.receipt))
}

/// The flows' inbox, oldest first.
fn flow_inbox_in(conn: &Connection, limit: usize) -> Result<Vec<FlowEvent>, StoreError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT id, event FROM events INDEXED BY events_flow_inbox
             WHERE flow_pending ORDER BY id LIMIT ?1",
        )
        .map_err(db_err)?;
    let rows = statement
        .query_map(params![sql_limit(limit)], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(db_err)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, json) = row.map_err(db_err)?;
        out.push(codec::flow_event(id, &json)?);
    }
    Ok(out)
}

/// A step of the flows in the writer's transaction: the inbox event out (unless another step
/// took it), each joint case over its stored revision, then the notices, ingested.
fn commit_flow_step_in(conn: &Connection, step: FlowStep) -> Result<(), StoreError> {
    if let Some(id) = step.event {
        let taken = conn
            .prepare_cached("UPDATE events SET flow_pending = 0 WHERE id = ?1 AND flow_pending")
            .and_then(|mut s| s.execute(params![id]))
            .map_err(db_err)?;
        if taken == 0 {
            return Err(StoreError::Conflict(format!("inbox event {id} was taken")));
        }
    }
    for case in &step.cases {
        let c = codec::joint_columns(case)?;
        write_over_revision(
            conn,
            c.revision,
            "INSERT INTO joint_cases (id, flow, project, window_bureau, window_case_id,
                 status, due_on, revision, updated_at, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (id) DO NOTHING",
            params![
                c.id,
                c.flow,
                c.project,
                c.window,
                c.window_case_id,
                c.status,
                c.due_on,
                c.revision,
                c.updated_at,
                c.state
            ],
            "UPDATE joint_cases SET status = ?2, due_on = ?3, revision = ?4,
                 updated_at = ?5, state = ?6
             WHERE id = ?1 AND revision = ?4 - 1",
            params![c.id, c.status, c.due_on, c.revision, c.updated_at, c.state],
            || format!("joint case {} changed since it was read", c.id),
        )?;
    }
    for clock in &step.clocks {
        let c = codec::clock_columns(clock)?;
        write_over_revision(
            conn,
            c.revision,
            "INSERT INTO case_clocks (bureau, case_id, project, is_open, revision,
                 updated_at, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (bureau, case_id) DO NOTHING",
            params![
                c.bureau,
                c.case_id,
                c.project,
                c.open,
                c.revision,
                c.updated_at,
                c.state
            ],
            "UPDATE case_clocks SET is_open = ?3, revision = ?4, updated_at = ?5, state = ?6
             WHERE bureau = ?1 AND case_id = ?2 AND revision = ?4 - 1",
            params![
                c.bureau,
                c.case_id,
                c.open,
                c.revision,
                c.updated_at,
                c.state
            ],
            || {
                format!(
                    "the clock of {}:{} changed since it was read",
                    c.bureau, c.case_id
                )
            },
        )?;
    }
    for message in step.notices {
        ingest_in(conn, message)?;
    }
    Ok(())
}

/// Writes a record kept over its revision (a joint case, a case clock): revision 1 inserted
/// unless one is there, any other only over the revision before it; `Conflict` (`changed` says
/// what) when nothing was written.
fn write_over_revision(
    conn: &Connection,
    revision: i64,
    insert: &str,
    insert_args: &[&dyn rusqlite::ToSql],
    update: &str,
    update_args: &[&dyn rusqlite::ToSql],
    changed: impl FnOnce() -> String,
) -> Result<(), StoreError> {
    let (sql, args) = if revision == 1 {
        (insert, insert_args)
    } else {
        (update, update_args)
    };
    let written = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.execute(args))
        .map_err(db_err)?;
    if written == 0 {
        return Err(StoreError::Conflict(changed()));
    }
    Ok(())
}

/// The JSON documents (`state`) the query selects, each read back by `decode`: joint cases and
/// case clocks alike.
fn states_where<T>(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
    decode: fn(&str) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(db_err)?;
    let rows = statement
        .query_map(args, |r| r.get::<_, String>(0))
        .map_err(db_err)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(decode(&row.map_err(db_err)?)?);
    }
    Ok(out)
}

fn joint_cases_where(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<JointCase>, StoreError> {
    states_where(conn, sql, args, codec::joint_case)
}

fn case_clocks_where(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<CaseClock>, StoreError> {
    states_where(conn, sql, args, codec::case_clock)
}

/// One subscriber's due heads, oldest due first: flagged the head of their (subscriber, case)
/// queue (`deliveries_due` holds only heads, so the scan never reads a delivery queued behind
/// one), due, not under an unexpired lease, and — checked again, cheaply, for the few heads read
/// — with no older pending delivery in their queue (a replayed dead letter is flagged head
/// beside the newer head it goes before). `?1` subscriber, `?2` now, `?3` limit.
const DUE_HEADS: &str = "SELECT d.id, d.due_at
    FROM deliveries d INDEXED BY deliveries_due
    WHERE d.subscriber = ?1
      AND d.state = 'pending'
      AND d.head
      AND d.due_at <= ?2
      AND (d.lease_until IS NULL OR d.lease_until <= ?2)
      AND NOT EXISTS (
          SELECT 1 FROM deliveries o INDEXED BY deliveries_case_queue
          WHERE o.subscriber = d.subscriber
            AND o.case_key = d.case_key
            AND o.state = 'pending'
            AND o.id < d.id)
    ORDER BY d.due_at, d.id
    LIMIT ?3";

/// A delivery with its event, shaped for [`delivery_row`]. `?1` delivery id.
const DELIVERY_BY_ID: &str = "SELECT d.id, d.subscriber, e.event, d.attempts, d.created_at
    FROM deliveries d JOIN events e ON e.id = d.event_id
    WHERE d.id = ?1";

fn lease_due_in(
    conn: &Connection,
    node: &str,
    subscribers: &[BureauId],
    now: Millis,
    lease_ms: i64,
    limit: usize,
) -> Result<Vec<Delivery>, StoreError> {
    let mut subscribers = subscribers.to_vec();
    subscribers.sort_unstable();
    subscribers.dedup();
    let paused = ops::paused_in(conn)?;
    subscribers.retain(|s| !paused.iter().any(|p| p.subscriber == *s));
    // One ordered index range per subscriber (no sort, stops at the limit), merged here.
    let mut heads: Vec<(Millis, DeliveryId)> = Vec::new();
    let mut due = conn.prepare_cached(DUE_HEADS).map_err(db_err)?;
    for subscriber in subscribers {
        let rows = due
            .query_map(params![subscriber.as_str(), now, sql_limit(limit)], |r| {
                Ok((r.get(1)?, r.get(0)?))
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(db_err)?;
        heads.extend(rows);
    }
    heads.sort_unstable();
    heads.truncate(limit);

    let lease_until = now.saturating_add(lease_ms);
    let mut update = conn
        .prepare_cached(
            "UPDATE deliveries SET lease_until = ?2, lease = ?3, leased_by = ?4 WHERE id = ?1",
        )
        .map_err(db_err)?;
    let mut read = conn.prepare_cached(DELIVERY_BY_ID).map_err(db_err)?;
    let mut leased = Vec::with_capacity(heads.len());
    for (_, id) in heads {
        let lease = new_lease();
        update
            .execute(params![id, lease_until, lease_to_sql(lease), node])
            .map_err(db_err)?;
        let mut rows = read.query([id]).map_err(db_err)?;
        let row = rows
            .next()
            .map_err(db_err)?
            .ok_or_else(|| StoreError::corrupt(format!("delivery {id} without its event")))?;
        leased.push(delivery_row(row, lease)?);
    }
    Ok(leased)
}

/// Ends up to `limit` unexpired leases of `node` (see [`Store::release_leases`]).
fn release_leases_in(
    conn: &Connection,
    node: &str,
    now: Millis,
    limit: usize,
) -> Result<u64, StoreError> {
    conn.prepare_cached(
        "UPDATE deliveries SET lease_until = NULL, lease = 0
         WHERE id IN (
             SELECT id FROM deliveries
             WHERE state = 'pending' AND leased_by = ?1 AND lease_until > ?2
             ORDER BY id LIMIT ?3)",
    )
    .and_then(|mut s| s.execute(params![node, now, sql_limit(limit)]))
    .map(|changed| changed as u64)
    .map_err(db_err)
}

/// Flags as head the oldest pending delivery of the (subscriber, case) of delivery `?1`, which
/// is no longer pending: the next in its queue may now be leased.
const PROMOTE: &str = "UPDATE deliveries SET head = 1
    WHERE id = (
        SELECT n.id FROM deliveries n INDEXED BY deliveries_case_queue
        JOIN deliveries c ON c.id = ?1
        WHERE n.subscriber = c.subscriber AND n.case_key = c.case_key AND n.state = 'pending'
        ORDER BY n.id LIMIT 1)
      AND NOT head";

/// Records outcomes one statement each, in the writer's transaction (statements cached: no
/// parse per outcome); a completed delivery or a dead letter hands its queue on to the next.
fn record_outcomes_in(conn: &Connection, outcomes: &[Outcome]) -> Result<Vec<bool>, StoreError> {
    let mut delivered = conn
        .prepare_cached(
            "UPDATE deliveries SET state = 'delivered', delivered_at = ?3, lease_until = NULL
             WHERE id = ?1 AND state = 'pending' AND lease = ?2",
        )
        .map_err(db_err)?;
    let mut retry = conn
        .prepare_cached(
            "UPDATE deliveries
             SET attempts = attempts + 1, lease_until = NULL, lease = 0, due_at = ?3
             WHERE id = ?1 AND state = 'pending' AND lease = ?2",
        )
        .map_err(db_err)?;
    let mut dead = conn
        .prepare_cached(
            "UPDATE deliveries
             SET attempts = attempts + 1, lease_until = NULL, lease = 0,
                 state = 'dead', dead_at = ?3
             WHERE id = ?1 AND state = 'pending' AND lease = ?2",
        )
        .map_err(db_err)?;
    let mut history = conn
        .prepare_cached(
            "INSERT INTO delivery_attempts (delivery_id, at, error) VALUES (?1, ?2, ?3)",
        )
        .map_err(db_err)?;
    let mut promote = conn.prepare_cached(PROMOTE).map_err(db_err)?;
    // Every attempt made is recorded, even one whose lease had run out meanwhile: the receiver
    // was sent it all the same.
    let records: Vec<_> = outcomes
        .iter()
        .map(|o| (audit::outcome_at(o), audit::outcome_record(o)))
        .collect();
    trail::append_timed_in(conn, &records)?;
    outcomes
        .iter()
        .map(|outcome| {
            let Some(lease) = lease_to_sql(outcome.lease) else {
                return Ok(false);
            };
            let id = outcome.id;
            let changed = match &outcome.settled {
                Settled::Delivered { at } => delivered.execute(params![id, lease, at]),
                Settled::Failed {
                    after: AfterFailure::RetryAt(due),
                    ..
                } => retry.execute(params![id, lease, due]),
                Settled::Failed {
                    attempt,
                    after: AfterFailure::DeadLetter,
                } => dead.execute(params![id, lease, attempt.at]),
            }
            .map_err(db_err)?;
            if changed == 0 {
                return Ok(false);
            }
            if let Settled::Failed { attempt, .. } = &outcome.settled {
                history
                    .execute(params![id, attempt.at, attempt.error])
                    .map_err(db_err)?;
            }
            if !matches!(
                outcome.settled,
                Settled::Failed {
                    after: AfterFailure::RetryAt(_),
                    ..
                }
            ) {
                promote.execute(params![id]).map_err(db_err)?;
            }
            Ok(true)
        })
        .collect()
}

fn dead_letters_in(
    conn: &Connection,
    subscriber: Option<BureauId>,
    limit: usize,
) -> Result<Vec<DeadLetter>, StoreError> {
    let mut select = conn
        .prepare_cached(
            "SELECT d.id, d.subscriber, e.gateway_message_id, d.dead_at
             FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.state = 'dead' AND (?1 IS NULL OR d.subscriber = ?1)
             ORDER BY d.dead_at, d.id
             LIMIT ?2",
        )
        .map_err(db_err)?;
    let mut history = conn
        .prepare_cached(
            "SELECT at, error FROM delivery_attempts WHERE delivery_id = ?1 ORDER BY id",
        )
        .map_err(db_err)?;
    let rows = select
        .query_map(
            params![subscriber.map(BureauId::as_str), sql_limit(limit)],
            |r| {
                Ok((
                    r.get::<_, DeliveryId>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Millis>(3)?,
                ))
            },
        )
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    rows.into_iter()
        .map(|(id, subscriber, message_id, dead_at)| {
            let attempts = history
                .query_map([id], |r| {
                    Ok(Attempt {
                        at: r.get(0)?,
                        error: r.get(1)?,
                    })
                })
                .and_then(Iterator::collect)
                .map_err(db_err)?;
            Ok(DeadLetter {
                id,
                subscriber: codec::bureau(&subscriber)?,
                message_id: codec::message_id(&message_id)?,
                attempts,
                dead_at,
            })
        })
        .collect()
}

fn replay_in(
    conn: &Connection,
    selector: &ReplaySelector,
    by: &str,
    now: Millis,
    limit: usize,
) -> Result<u64, StoreError> {
    // A revived dead letter is a head again: it goes before whatever of its case is pending
    // now (the lease's check for an older pending delivery keeps the newer one waiting).
    const REVIVE: &str = "SET state = 'pending', due_at = ?2, attempts = 0,
                              lease_until = NULL, lease = 0, dead_at = NULL, head = 1";
    let changed = match selector {
        ReplaySelector::Ids(ids) => {
            let mut update = conn
                .prepare_cached(&format!(
                    "UPDATE deliveries {REVIVE} WHERE id = ?1 AND state = 'dead'"
                ))
                .map_err(db_err)?;
            let mut changed = Vec::new();
            for &id in ids.iter().take(limit) {
                if update.execute(params![id, now]).map_err(db_err)? > 0 {
                    changed.push(id);
                }
            }
            changed
        }
        ReplaySelector::Subscriber(subscriber) => conn
            .prepare_cached(&format!(
                "UPDATE deliveries {REVIVE} WHERE id IN (
                     SELECT id FROM deliveries INDEXED BY deliveries_dead
                     WHERE state = 'dead' AND subscriber = ?1
                     ORDER BY dead_at, id LIMIT ?3)
                 RETURNING id"
            ))
            .and_then(|mut s| {
                s.query_map(params![subscriber.as_str(), now, sql_limit(limit)], |r| {
                    r.get::<_, DeliveryId>(0)
                })?
                .collect::<Result<Vec<_>, _>>()
            })
            .map_err(db_err)?,
    };
    trail::append_in(
        conn,
        now,
        &trail::delivery_records_in(conn, Some("replay"), &changed, by)?,
    )?;
    Ok(changed.len() as u64)
}

/// A pull subscriber's pending deliveries in queue order, shaped for [`delivery_row`].
/// `?1` subscriber, `?2` limit.
const FEED: &str = "SELECT d.id, d.subscriber, e.event, d.attempts, d.created_at
    FROM deliveries d JOIN events e ON e.id = d.event_id
    WHERE d.subscriber = ?1 AND d.state = 'pending'
    ORDER BY d.id
    LIMIT ?2";

fn feed_fetch_in(
    conn: &Connection,
    subscriber: BureauId,
    limit: usize,
) -> Result<Vec<Delivery>, StoreError> {
    if ops::paused_in(conn)?
        .iter()
        .any(|p| p.subscriber == subscriber)
    {
        return Ok(Vec::new());
    }
    let mut select = conn.prepare_cached(FEED).map_err(db_err)?;
    let mut rows = select
        .query(params![subscriber.as_str(), sql_limit(limit)])
        .map_err(db_err)?;
    let mut fetched = Vec::new();
    while let Some(row) = rows.next().map_err(db_err)? {
        fetched.push(delivery_row(row, 0)?);
    }
    drop(rows);
    let mut mark = conn
        .prepare_cached("UPDATE deliveries SET fetched = 1 WHERE id = ?1 AND fetched = 0")
        .map_err(db_err)?;
    for delivery in &fetched {
        mark.execute(params![delivery.id]).map_err(db_err)?;
    }
    Ok(fetched)
}

fn queue_stats_in(conn: &Connection) -> Result<Vec<QueueStat>, StoreError> {
    let mut select = conn
        .prepare_cached(
            "SELECT subscriber,
                    SUM(state = 'pending'),
                    SUM(state = 'dead'),
                    SUM(state = 'delivered'),
                    MIN(CASE WHEN state = 'pending' THEN created_at END),
                    (SELECT COUNT(*) FROM delivery_attempts a
                      JOIN deliveries d ON d.id = a.delivery_id
                      WHERE d.subscriber = deliveries.subscriber)
             FROM deliveries
             GROUP BY subscriber",
        )
        .map_err(db_err)?;
    let rows = select
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<Millis>>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    let count = codec::count;
    let mut stats = rows
        .into_iter()
        .map(
            |(subscriber, pending, dead, delivered, oldest_pending, failed)| {
                Ok(QueueStat {
                    subscriber: codec::bureau(&subscriber)?,
                    pending: count(pending)?,
                    dead: count(dead)?,
                    delivered: count(delivered)?,
                    oldest_pending,
                    failed_attempts: count(failed)?,
                })
            },
        )
        .collect::<Result<Vec<_>, StoreError>>()?;
    stats.sort_by_key(|s| s.subscriber);
    Ok(stats)
}

impl Store for SqliteStore {
    async fn events_received(
        &self,
        from: Millis,
        to: Millis,
        after: i64,
        limit: usize,
    ) -> Result<Vec<ReceivedEvent>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT e.id, m.received_at, e.event
                     FROM messages m INDEXED BY messages_received
                     JOIN events e ON e.message_id = m.id
                     WHERE m.received_at >= ?1 AND m.received_at < ?2 AND e.id > ?3
                     ORDER BY e.id LIMIT ?4",
                )
                .map_err(db_err)?;
            let rows = statement
                .query_map(params![from, to, after, sql_limit(limit)], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(db_err)?;
            let mut out = Vec::new();
            for row in rows {
                let (id, received_at, json) = row.map_err(db_err)?;
                let event = codec::flow_event(id, &json)?.event;
                out.push(ReceivedEvent {
                    id,
                    received_at,
                    event,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn dead_letters_between(
        &self,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<(BureauId, u64)>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT subscriber, COUNT(*) FROM deliveries INDEXED BY deliveries_dead
                     WHERE state = 'dead' AND dead_at >= ?1 AND dead_at < ?2
                     GROUP BY subscriber ORDER BY subscriber",
                )
                .map_err(db_err)?;
            let rows = statement
                .query_map(params![from, to], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(db_err)?;
            let mut out = Vec::new();
            for row in rows {
                let (subscriber, n) = row.map_err(db_err)?;
                out.push((codec::bureau(&subscriber)?, u64::try_from(n).unwrap_or(0)));
            }
            Ok(out)
        })
        .await
    }

    async fn frozen_report(&self, month: &str) -> Result<Option<String>, StoreError> {
        let month = month.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT body FROM monthly_reports WHERE month = ?1")
                .and_then(|mut s| s.query_row(params![month], |r| r.get(0)).optional())
                .map_err(db_err)
        })
        .await
    }

    async fn freeze_report(
        &self,
        month: &str,
        body: String,
        at: Millis,
    ) -> Result<String, StoreError> {
        let month = month.to_owned();
        self.call_durable(move |conn| {
            conn.prepare_cached(
                "INSERT INTO monthly_reports (month, created_at, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (month) DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![month, at, body]))
            .map_err(db_err)?;
            conn.prepare_cached("SELECT body FROM monthly_reports WHERE month = ?1")
                .and_then(|mut s| s.query_row(params![month], |r| r.get(0)))
                .map_err(db_err)
        })
        .await
    }

    async fn flow_inbox(&self, limit: usize) -> Result<Vec<FlowEvent>, StoreError> {
        self.read(move |conn| flow_inbox_in(conn, limit)).await
    }

    async fn commit_flow_steps(&self, steps: Vec<FlowStep>) -> Result<(), StoreError> {
        // One job: a failing step rolls the job's savepoint back, the earlier steps with it.
        self.call_durable(move |conn| {
            steps
                .into_iter()
                .try_for_each(|step| commit_flow_step_in(conn, step))
        })
        .await
    }

    async fn joint_case(&self, id: &JointCaseId) -> Result<Option<JointCase>, StoreError> {
        let id = id.as_str().to_owned();
        self.read(move |conn| {
            joint_cases_where(
                conn,
                "SELECT state FROM joint_cases WHERE id = ?1",
                params![id],
            )
            .map(|mut found| found.pop())
        })
        .await
    }

    async fn joint_cases_of_project(
        &self,
        project: &ProjectCode,
        limit: usize,
    ) -> Result<Vec<JointCase>, StoreError> {
        let project = project.as_str().to_owned();
        self.read(move |conn| {
            joint_cases_where(
                conn,
                "SELECT state FROM joint_cases WHERE project = ?1 ORDER BY id LIMIT ?2",
                params![project, sql_limit(limit)],
            )
        })
        .await
    }

    async fn open_joint_cases(
        &self,
        after: Option<&JointCaseId>,
        limit: usize,
    ) -> Result<Vec<JointCase>, StoreError> {
        let after = after.map_or_else(String::new, |id| id.as_str().to_owned());
        self.read(move |conn| {
            joint_cases_where(
                conn,
                "SELECT state FROM joint_cases INDEXED BY joint_cases_open
                 WHERE status = 'open' AND id > ?1 ORDER BY id LIMIT ?2",
                params![after, sql_limit(limit)],
            )
        })
        .await
    }

    async fn case_clock(
        &self,
        bureau: BureauId,
        case_id: &BureauCaseId,
    ) -> Result<Option<CaseClock>, StoreError> {
        let case_id = case_id.as_str().to_owned();
        self.read(move |conn| {
            case_clocks_where(
                conn,
                "SELECT state FROM case_clocks WHERE bureau = ?1 AND case_id = ?2",
                params![bureau.as_str(), case_id],
            )
            .map(|mut found| found.pop())
        })
        .await
    }

    async fn case_clocks_of_project(
        &self,
        project: &ProjectCode,
        limit: usize,
    ) -> Result<Vec<CaseClock>, StoreError> {
        let project = project.as_str().to_owned();
        self.read(move |conn| {
            case_clocks_where(
                conn,
                "SELECT state FROM case_clocks WHERE project = ?1 AND is_open
                 ORDER BY bureau, case_id LIMIT ?2",
                params![project, sql_limit(limit)],
            )
        })
        .await
    }

    async fn open_case_clocks(
        &self,
        after: Option<(BureauId, BureauCaseId)>,
        limit: usize,
    ) -> Result<Vec<CaseClock>, StoreError> {
        let (bureau, case_id) = after.map_or_else(
            || (String::new(), String::new()),
            |(b, c)| (b.as_str().to_owned(), c.as_str().to_owned()),
        );
        self.read(move |conn| {
            case_clocks_where(
                conn,
                "SELECT state FROM case_clocks INDEXED BY case_clocks_open
                 WHERE is_open AND (bureau, case_id) > (?1, ?2)
                 ORDER BY bureau, case_id LIMIT ?3",
                params![bureau, case_id, sql_limit(limit)],
            )
        })
        .await
    }

    async fn ingest(&self, message: NewMessage) -> Result<IngestOutcome, StoreError> {
        self.call_durable(move |conn| ingest_in(conn, message))
            .await
    }

    async fn lease_due(
        &self,
        node: &str,
        subscribers: Vec<BureauId>,
        now: Millis,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let node = node.to_owned();
        self.call(move |conn| lease_due_in(conn, &node, &subscribers, now, lease_ms, limit))
            .await
    }

    /// One process owns a SQLite store (the embedded, single-node case): nothing to claim.
    async fn claim_node(&self, _node: &str) -> Result<bool, StoreError> {
        Ok(true)
    }

    async fn release_leases(
        &self,
        node: &str,
        now: Millis,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let node = node.to_owned();
        self.call(move |conn| release_leases_in(conn, &node, now, limit))
            .await
    }

    async fn record_outcomes(&self, outcomes: Vec<Outcome>) -> Result<Vec<bool>, StoreError> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        self.call_durable(move |conn| record_outcomes_in(conn, &outcomes))
            .await
    }

    async fn dead_letters(
        &self,
        subscriber: Option<BureauId>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        self.read(move |conn| dead_letters_in(conn, subscriber, limit))
            .await
    }

    async fn replay(
        &self,
        selector: ReplaySelector,
        by: &str,
        now: Millis,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let by = by.to_owned();
        self.call(move |conn| replay_in(conn, &selector, &by, now, limit))
            .await
    }

    async fn feed_fetch(
        &self,
        subscriber: BureauId,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.call(move |conn| feed_fetch_in(conn, subscriber, limit))
            .await
    }

    async fn feed_ack(
        &self,
        subscriber: BureauId,
        cursor: DeliveryId,
        now: Millis,
    ) -> Result<u64, StoreError> {
        self.call(move |conn| {
            let acked: Vec<DeliveryId> = conn
                .prepare_cached(
                    "UPDATE deliveries SET state = 'delivered', delivered_at = ?3, lease_until = NULL
                     WHERE subscriber = ?1 AND state = 'pending' AND id <= ?2 AND fetched = 1
                     RETURNING id",
                )
                .and_then(|mut s| {
                    s.query_map(params![subscriber.as_str(), cursor, now], |r| r.get(0))?
                        .collect()
                })
                .map_err(db_err)?;
            // Keep the queue heads true for every subscriber, pull or push (its delivery mode
            // may change in the configuration).
            let mut promote = conn.prepare_cached(PROMOTE).map_err(db_err)?;
            for id in &acked {
                promote.execute(params![id]).map_err(db_err)?;
            }
            trail::append_in(conn, now, &trail::delivery_records_in(conn, None, &acked, "")?)?;
            Ok(acked.len() as u64)
        })
        .await
    }

    async fn backlogs(&self, subscribers: Vec<BureauId>) -> Result<Vec<Backlog>, StoreError> {
        self.read(move |conn| ops::backlogs_in(conn, &subscribers))
            .await
    }

    async fn queue_stats(&self) -> Result<Vec<QueueStat>, StoreError> {
        self.read(queue_stats_in).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.call(|conn| {
            conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map(drop)
                .map_err(db_err)
        })
        .await
    }

    async fn credit_entries(
        &self,
        publisher: BureauId,
        entry_ids: Vec<BureauCaseId>,
        limit: usize,
    ) -> Result<Vec<CreditRecord>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached(&format!(
                    "SELECT {} FROM credit_entries WHERE publisher = ?1 AND entry_id = ?2
                     ORDER BY version LIMIT ?3",
                    codec::CREDIT_COLUMNS
                ))
                .map_err(db_err)?;
            let mut out = Vec::new();
            for id in &entry_ids {
                let left = limit.saturating_sub(out.len());
                if left == 0 {
                    break;
                }
                out.extend(credit_rows(
                    &mut statement,
                    params![publisher.as_str(), id.as_str(), sql_limit(left)],
                )?);
            }
            Ok(out)
        })
        .await
    }

    async fn credit_entries_of(
        &self,
        codes: Vec<schemas::CreditCode>,
        limit: usize,
    ) -> Result<Vec<CreditRecord>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached(&format!(
                    "SELECT {} FROM credit_entries WHERE credit_code = ?1
                     ORDER BY publisher, entry_id, version LIMIT ?2",
                    codec::CREDIT_COLUMNS
                ))
                .map_err(db_err)?;
            let mut out = Vec::new();
            for code in &codes {
                let left = limit.saturating_sub(out.len());
                if left == 0 {
                    break;
                }
                out.extend(credit_rows(
                    &mut statement,
                    params![code.as_str(), sql_limit(left)],
                )?);
            }
            Ok(out)
        })
        .await
    }

    async fn recent_credit_entries(&self, limit: usize) -> Result<Vec<CreditRecord>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached(&format!(
                    "SELECT {} FROM credit_entries ORDER BY listed_at DESC, rowid DESC LIMIT ?1",
                    codec::CREDIT_COLUMNS
                ))
                .map_err(db_err)?;
            credit_rows(&mut statement, params![sql_limit(limit)])
        })
        .await
    }

    async fn credit_matches_of_case(
        &self,
        bureau: BureauId,
        case_id: BureauCaseId,
        limit: usize,
    ) -> Result<Vec<CreditMatchRecord>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached(&format!(
                    "SELECT {} FROM credit_matches WHERE bureau = ?1 AND case_id = ?2
                     ORDER BY publisher, entry_id LIMIT ?3",
                    codec::CREDIT_MATCH_COLUMNS
                ))
                .map_err(db_err)?;
            credit_match_rows(
                &mut statement,
                params![bureau.as_str(), case_id.as_str(), sql_limit(limit)],
            )
        })
        .await
    }

    async fn recent_credit_matches(
        &self,
        limit: usize,
    ) -> Result<Vec<CreditMatchRecord>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached(&format!(
                    "SELECT {} FROM credit_matches ORDER BY matched_at DESC, rowid DESC LIMIT ?1",
                    codec::CREDIT_MATCH_COLUMNS
                ))
                .map_err(db_err)?;
            credit_match_rows(&mut statement, params![sql_limit(limit)])
        })
        .await
    }

    async fn survey(&self, id: SurveyId) -> Result<Option<SurveyRecord>, StoreError> {
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {SURVEY_COLUMNS} FROM surveys WHERE id = ?1"
            ))
            .map_err(db_err)?
            .query(params![id.as_str()])
            .and_then(|mut rows| rows.next().map(|row| row.map(survey_row)))
            .map_err(db_err)?
            .transpose()
        })
        .await
    }

    async fn latest_survey(
        &self,
        project: ProjectCode,
        kind: SurveyKind,
    ) -> Result<Option<SurveyRecord>, StoreError> {
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {SURVEY_COLUMNS} FROM surveys WHERE project = ?1 AND kind = ?2
                 ORDER BY version DESC LIMIT 1"
            ))
            .map_err(db_err)?
            .query(params![project.as_str(), crate::vocabulary::name(&kind)])
            .and_then(|mut rows| rows.next().map(|row| row.map(survey_row)))
            .map_err(db_err)?
            .transpose()
        })
        .await
    }

    async fn record_survey_read(
        &self,
        id: SurveyId,
        bureau: BureauId,
        what: ReadOf,
        at: Millis,
    ) -> Result<bool, StoreError> {
        self.call(move |conn| {
            let before: i64 = conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM survey_reads WHERE survey_id = ?1 AND bureau = ?2",
                )
                .and_then(|mut s| s.query_row(params![id.as_str(), bureau.as_str()], |r| r.get(0)))
                .map_err(db_err)?;
            conn.prepare_cached(
                "INSERT INTO survey_reads (survey_id, bureau, what, at) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| {
                s.execute(params![id.as_str(), bureau.as_str(), what.to_string(), at])
            })
            .map_err(db_err)?;
            trail::append_in(
                conn,
                at,
                &[audit::Record::SurveyRead {
                    bureau: bureau.as_str().to_owned(),
                    survey_id: id.as_str().to_owned(),
                    what: what.to_string(),
                }],
            )?;
            Ok(before == 0)
        })
        .await
    }

    async fn survey_reads(
        &self,
        id: SurveyId,
        limit: usize,
    ) -> Result<Vec<SurveyRead>, StoreError> {
        self.read(move |conn| {
            let mut select = conn
                .prepare_cached(
                    "SELECT bureau, what, at FROM survey_reads WHERE survey_id = ?1
                     ORDER BY id LIMIT ?2",
                )
                .map_err(db_err)?;
            let rows = select
                .query_map(params![id.as_str(), sql_limit(limit)], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Millis>(2)?,
                    ))
                })
                .map_err(db_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err)?;
            rows.into_iter()
                .map(|(bureau, what, at)| {
                    Ok(SurveyRead {
                        bureau: codec::bureau(&bureau)?,
                        what: what.parse()?,
                        at,
                    })
                })
                .collect()
        })
        .await
    }

    async fn pause(&self, pause: Pause) -> Result<bool, StoreError> {
        self.call(move |conn| {
            let paused = ops::pause_in(conn, &pause)?;
            if paused {
                let record = audit::Record::BureauAction {
                    action: "pause",
                    subscriber: pause.subscriber.as_str().to_owned(),
                    by: pause.by.clone(),
                };
                trail::append_in(conn, pause.at, &[record])?;
            }
            Ok(paused)
        })
        .await
    }

    async fn resume(
        &self,
        subscriber: BureauId,
        by: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let by = by.to_owned();
        self.call(move |conn| {
            let resumed = ops::resume_in(conn, subscriber)?;
            if resumed {
                let record = audit::Record::BureauAction {
                    action: "resume",
                    subscriber: subscriber.as_str().to_owned(),
                    by,
                };
                trail::append_in(conn, now, &[record])?;
            }
            Ok(resumed)
        })
        .await
    }

    async fn pauses(&self) -> Result<Vec<Pause>, StoreError> {
        self.read(ops::paused_in).await
    }

    async fn dead_letter(&self, id: DeliveryId) -> Result<Option<DeadLetter>, StoreError> {
        self.read(move |conn| ops::dead_letter_in(conn, id)).await
    }

    async fn purge(
        &self,
        selector: ReplaySelector,
        by: &str,
        now: Millis,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let by = by.to_owned();
        self.call(move |conn| ops::purge_in(conn, &selector, &by, now, limit))
            .await
    }

    async fn audit_chains(&self) -> Result<Vec<audit::ChainState>, StoreError> {
        self.read(trail::chains_in).await
    }

    async fn audit_entries(
        &self,
        chain: &str,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<audit::AuditRow>, StoreError> {
        let chain = chain.to_owned();
        self.read(move |conn| trail::entries_in(conn, &chain, after_seq, limit))
            .await
    }

    async fn audit_of_message(
        &self,
        message_id: &MessageId,
        limit: usize,
    ) -> Result<Vec<audit::AuditRow>, StoreError> {
        let message_id = message_id.clone();
        self.read(move |conn| trail::of_message_in(conn, &message_id, limit))
            .await
    }

    async fn audit_of_bureau(
        &self,
        bureau: BureauId,
        from: Millis,
        to: Millis,
        after: Option<(Millis, String, i64)>,
        limit: usize,
    ) -> Result<Vec<audit::AuditRow>, StoreError> {
        self.read(move |conn| trail::of_bureau_in(conn, bureau, from, to, after, limit))
            .await
    }

    async fn audit_entry(
        &self,
        chain: &str,
        seq: i64,
    ) -> Result<Option<audit::AuditRow>, StoreError> {
        let chain = chain.to_owned();
        self.read(move |conn| trail::entry_in(conn, &chain, seq))
            .await
    }

    async fn record_checkpoint(
        &self,
        checkpoint: audit::StoredCheckpoint,
    ) -> Result<i64, StoreError> {
        self.call_durable(move |conn| trail::record_checkpoint_in(conn, &checkpoint))
            .await
    }

    async fn checkpoints(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<audit::StoredCheckpoint>, StoreError> {
        self.read(move |conn| trail::checkpoints_in(conn, after, limit))
            .await
    }

    async fn raw_message(
        &self,
        sender: BureauId,
        idempotency_key: &str,
    ) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let key = idempotency_key.to_owned();
        self.read(move |conn| trail::raw_message_in(conn, sender, &key))
            .await
    }

    async fn prune_audit(
        &self,
        chain: &str,
        before: Millis,
        by: &str,
        now: Millis,
        limit: usize,
    ) -> Result<Option<audit::Anchor>, StoreError> {
        let (chain, by) = (chain.to_owned(), by.to_owned());
        self.call_durable(move |conn| trail::prune_in(conn, &chain, before, &by, now, limit))
            .await
    }

    async fn timeline(
        &self,
        key: TimelineKey,
        limit: usize,
    ) -> Result<Vec<TimelineEvent>, StoreError> {
        self.read(move |conn| ops::timeline_in(conn, &key, limit))
            .await
    }

    async fn record_node_report(&self, report: NodeReport) -> Result<(), StoreError> {
        self.call(move |conn| ops::record_report_in(conn, &report))
            .await
    }

    async fn node_reports(&self, since: Millis, limit: usize) -> Result<NodeReports, StoreError> {
        self.read(move |conn| ops::node_reports_in(conn, since, limit))
            .await
    }

    async fn shared_secret(&self, name: &str, candidate: String) -> Result<String, StoreError> {
        let name = name.to_owned();
        self.call(move |conn| ops::shared_secret_in(conn, &name, &candidate))
            .await
    }

    async fn cleanup(&self, delivered_before: Millis, limit: usize) -> Result<u64, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(move |conn| {
            // One writer: no other node can be cleaning at the same time.
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS doomed (id INTEGER PRIMARY KEY)",
                [],
            )
            .map_err(db_err)?;
            conn.execute("DELETE FROM doomed", []).map_err(db_err)?;
            conn.execute(
                "INSERT INTO doomed (id)
                 SELECT id FROM deliveries INDEXED BY deliveries_delivered
                 WHERE state = 'delivered' AND delivered_at < ?1
                 ORDER BY delivered_at, id LIMIT ?2",
                rusqlite::params![delivered_before, limit],
            )
            .map_err(db_err)?;
            conn.execute(
                "DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM doomed)",
                [],
            )
            .map_err(db_err)?;
            let deleted = conn
                .execute(
                    "DELETE FROM deliveries WHERE id IN (SELECT id FROM doomed)",
                    [],
                )
                .map_err(db_err)?;
            Ok(deleted as u64)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::store::conformance::{self, accept, event, ids, message, stat};
    use crate::testing::TempDir;

    const LEASE_MS: i64 = 30_000;

    /// Where a test's database goes: in a folder the store must create.
    fn db(dir: &TempDir) -> PathBuf {
        dir.path().join("nested").join("gateway.db")
    }

    fn open(name: &str) -> (TempDir, SqliteStore) {
        let dir = TempDir::new(name);
        let store = SqliteStore::open(&db(&dir)).unwrap();
        (dir, store)
    }

    /// A fresh store for the conformance suite.
    async fn fresh(name: &'static str) -> Option<(TempDir, SqliteStore)> {
        Some(open(name))
    }

    conformance::conformance_tests!(fresh);

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_ingests_share_commits() {
        let (_dir, store) = open("group");
        conformance::concurrent_ingests_share_commits(store, SqliteStore::commits).await;
    }

    #[tokio::test]
    async fn data_survives_reopening() {
        let dir = TempDir::new("reopen");
        let store = SqliteStore::open(&db(&dir)).unwrap();
        let receipt = accept(
            &store,
            message(
                "m",
                42,
                vec![
                    (event(1, "p1"), vec![BureauId::Water]),
                    (event(2, "p2"), vec![BureauId::Water]),
                ],
            ),
        )
        .await;
        let leased = store
            .lease_due(conformance::NODE, vec![BureauId::Water], 100, LEASE_MS, 1)
            .await
            .unwrap();
        assert!(store.mark_delivered(&leased[0], 100).await.unwrap());
        drop(store);

        let store = SqliteStore::open(&db(&dir)).unwrap();
        assert_eq!(
            store.ingest(message("m", 43, vec![])).await.unwrap(),
            IngestOutcome::Duplicate(receipt)
        );
        let pending = store
            .lease_due(conformance::NODE, vec![BureauId::Water], 100, LEASE_MS, 10)
            .await
            .unwrap();
        assert_eq!(ids(&pending), ["gw-p2"]);
        assert_eq!(pending[0].event, event(2, "p2"));
        let water = stat(&store, BureauId::Water).await.unwrap();
        assert_eq!((water.pending, water.delivered), (1, 1));
    }

    /// The operators' reads run on the reader's connection: one answers, with what has been
    /// committed, while the writer thread is held inside a job.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_answer_while_the_writer_is_busy() {
        let (_dir, store) = open("reader");
        accept(
            &store,
            message("m", 1, vec![(event(1, "p1"), vec![BureauId::Water])]),
        )
        .await;
        let (started, writer_busy) = oneshot::channel::<()>();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let writer = store.clone();
        let busy = tokio::spawn(async move {
            writer
                .call(move |_| {
                    let _ = started.send(());
                    let _ = held.recv();
                    Ok(())
                })
                .await
        });
        writer_busy.await.unwrap();
        let water = tokio::time::timeout(Duration::from_secs(30), stat(&store, BureauId::Water))
            .await
            .expect("the read waited for the writer");
        assert_eq!(water.unwrap().pending, 1);
        assert!(store.pauses().await.unwrap().is_empty());
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn calls_after_the_writer_is_gone_are_closed() {
        let (jobs, receiver) = mpsc::channel(1);
        drop(receiver);
        let (reads, read_receiver) = mpsc::channel(1);
        drop(read_receiver);
        let store = SqliteStore {
            jobs,
            reads,
            commits: Arc::default(),
        };
        assert!(matches!(store.ping().await, Err(StoreError::Closed)));
        let error = store.queue_stats().await.unwrap_err();
        assert!(!error.is_retryable());
    }

    fn plan(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> String {
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(params, |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        plan.join("\n")
    }

    #[test]
    fn queue_queries_use_their_indexes_without_sorting() {
        let dir = TempDir::new("plan");
        let mut conn = Connection::open(dir.path().join("plan.db")).unwrap();
        migrate(&mut conn).unwrap();
        // Migrating again is a no-op.
        migrate(&mut conn).unwrap();

        let due = plan(&conn, DUE_HEADS, params!["water", 1, 10]);
        assert!(due.contains("USING INDEX deliveries_due"), "{due}");
        assert!(due.contains("deliveries_case_queue"), "{due}");
        assert!(!due.contains("TEMP B-TREE"), "{due}");

        let feed = plan(&conn, FEED, params!["water", 10]);
        assert!(feed.contains("deliveries_feed"), "{feed}");
        assert!(!feed.contains("TEMP B-TREE"), "{feed}");
    }
}
