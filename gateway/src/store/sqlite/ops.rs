//! The operator surface's queries on SQLite: pauses, single dead letters and their purge, case
//! timelines, node reports, shared secrets. Each is bounded by a key or a limit.

use rusqlite::{Connection, OptionalExtension, params};
use schemas::BureauId;

use super::db::db_err;
use crate::store::codec::{self, sql_limit};
use crate::store::{
    Attempt, Backlog, BureauState, CircuitState, DeadLetter, DeliveryId, MAX_TIMELINE_ATTEMPTS,
    Millis, MinuteCounts, NodeReport, NodeReports, Pause, ReplaySelector, StoreError,
    TimelineDelivery, TimelineEvent, TimelineKey,
};

/// The pauses in force (at most one row per bureau, so the table is tiny).
pub(super) fn paused_in(conn: &Connection) -> Result<Vec<Pause>, StoreError> {
    let mut select = conn
        .prepare_cached(
            "SELECT subscriber, paused_by, paused_at FROM paused_subscribers
             ORDER BY subscriber LIMIT 100",
        )
        .map_err(db_err)?;
    let rows = select
        .query_map([], |r| {
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
        .map(|(subscriber, by, at)| {
            Ok(Pause {
                subscriber: codec::bureau(&subscriber)?,
                by,
                at,
            })
        })
        .collect()
}

pub(super) fn pause_in(conn: &Connection, pause: &Pause) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "INSERT INTO paused_subscribers (subscriber, paused_by, paused_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (subscriber) DO NOTHING",
    )
    .and_then(|mut s| s.execute(params![pause.subscriber.as_str(), pause.by, pause.at]))
    .map(|changed| changed == 1)
    .map_err(db_err)
}

pub(super) fn resume_in(conn: &Connection, subscriber: BureauId) -> Result<bool, StoreError> {
    conn.prepare_cached("DELETE FROM paused_subscribers WHERE subscriber = ?1")
        .and_then(|mut s| s.execute([subscriber.as_str()]))
        .map(|changed| changed == 1)
        .map_err(db_err)
}

fn attempts_of(
    conn: &Connection,
    delivery: DeliveryId,
    limit: usize,
) -> Result<Vec<Attempt>, StoreError> {
    let mut attempts = conn
        .prepare_cached(
            "SELECT at, error FROM delivery_attempts WHERE delivery_id = ?1
             ORDER BY id DESC LIMIT ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![delivery, sql_limit(limit)], |r| {
                Ok(Attempt {
                    at: r.get(0)?,
                    error: r.get(1)?,
                })
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        })
        .map_err(db_err)?;
    attempts.reverse();
    Ok(attempts)
}

pub(super) fn dead_letter_in(
    conn: &Connection,
    id: DeliveryId,
) -> Result<Option<DeadLetter>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT d.subscriber, e.gateway_message_id, d.dead_at
             FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.id = ?1 AND d.state = 'dead'",
        )
        .and_then(|mut s| {
            s.query_row([id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Millis>(2)?,
                ))
            })
            .optional()
        })
        .map_err(db_err)?;
    let Some((subscriber, message_id, dead_at)) = row else {
        return Ok(None);
    };
    // A dead letter's history is bounded by the retry policy's attempts per life; replays add
    // lives, so the latest are shown as a timeline shows them.
    Ok(Some(DeadLetter {
        id,
        subscriber: codec::bureau(&subscriber)?,
        message_id: codec::message_id(&message_id)?,
        attempts: attempts_of(conn, id, MAX_TIMELINE_ATTEMPTS)?,
        dead_at,
    }))
}

pub(super) fn purge_in(
    conn: &Connection,
    selector: &ReplaySelector,
    by: &str,
    now: Millis,
    limit: usize,
) -> Result<u64, StoreError> {
    let ids: Vec<DeliveryId> = match selector {
        ReplaySelector::Ids(ids) => {
            let mut dead = conn
                .prepare_cached("SELECT id FROM deliveries WHERE id = ?1 AND state = 'dead'")
                .map_err(db_err)?;
            let mut found = Vec::new();
            for id in ids.iter().take(limit) {
                if let Some(id) = dead
                    .query_row([id], |r| r.get::<_, DeliveryId>(0))
                    .optional()
                    .map_err(db_err)?
                {
                    found.push(id);
                }
            }
            found
        }
        ReplaySelector::Subscriber(subscriber) => conn
            .prepare_cached(
                "SELECT id FROM deliveries INDEXED BY deliveries_dead
                 WHERE state = 'dead' AND subscriber = ?1
                 ORDER BY dead_at, id LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![subscriber.as_str(), sql_limit(limit)], |r| r.get(0))
                    .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            })
            .map_err(db_err)?,
    };
    let mut forget = conn
        .prepare_cached("DELETE FROM delivery_attempts WHERE delivery_id = ?1")
        .map_err(db_err)?;
    let mut delete = conn
        .prepare_cached("DELETE FROM deliveries WHERE id = ?1 AND state = 'dead'")
        .map_err(db_err)?;
    // Recorded first: the entries name the deliveries' subscribers and events.
    super::trail::append_in(
        conn,
        now,
        &super::trail::delivery_records_in(conn, Some("purge"), &ids, by)?,
    )?;
    let mut purged = 0;
    for id in ids {
        forget.execute([id]).map_err(db_err)?;
        purged += delete.execute([id]).map_err(db_err)? as u64;
    }
    Ok(purged)
}

/// The columns of a timeline event, in the order [`timeline_event`] reads them.
const TIMELINE_COLUMNS: &str = "e.id, m.sender, m.received_at, m.idempotency_key, m.sha256,
    e.source_message_id, e.event";

pub(super) fn timeline_in(
    conn: &Connection,
    key: &TimelineKey,
    limit: usize,
) -> Result<Vec<TimelineEvent>, StoreError> {
    let limit = sql_limit(limit);
    let from = "FROM events e JOIN messages m ON m.id = e.message_id";
    let mut rows = Vec::new();
    let mut collect = |sql: &str, key: &str| -> Result<(), StoreError> {
        let mut select = conn.prepare_cached(sql).map_err(db_err)?;
        let found = select
            .query_map(params![key, limit], timeline_columns)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(db_err)?;
        rows.extend(found);
        Ok(())
    };
    match key {
        TimelineKey::Message(id) => collect(
            &format!("SELECT {TIMELINE_COLUMNS} {from} WHERE e.gateway_message_id = ?1 LIMIT ?2"),
            id.as_str(),
        )?,
        TimelineKey::Project(code) => collect(
            &format!(
                "SELECT {TIMELINE_COLUMNS} {from} WHERE e.project = ?1 ORDER BY e.id DESC LIMIT ?2"
            ),
            code.as_str(),
        )?,
        TimelineKey::Case(case_id) => {
            for case_key in codec::case_keys_of(case_id) {
                collect(
                    &format!(
                        "SELECT {TIMELINE_COLUMNS} {from} WHERE e.case_key = ?1
                         ORDER BY e.id DESC LIMIT ?2"
                    ),
                    &case_key,
                )?;
            }
        }
    }
    // The latest `limit` events, told oldest first.
    rows.sort_by_key(|row| std::cmp::Reverse(row.0));
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    rows.reverse();
    rows.into_iter()
        .map(|row| timeline_event(conn, row))
        .collect()
}

type TimelineRow = (i64, String, Millis, String, String, String, String);

fn timeline_columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<TimelineRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn timeline_event(conn: &Connection, row: TimelineRow) -> Result<TimelineEvent, StoreError> {
    let (event_row, sender, received_at, idempotency_key, sha256, source_message_id, event) = row;
    let mut select = conn
        .prepare_cached(
            "SELECT id, subscriber, state, created_at, delivered_at, dead_at
             FROM deliveries WHERE event_id = ?1 ORDER BY id",
        )
        .map_err(db_err)?;
    let deliveries = select
        .query_map([event_row], |r| {
            Ok((
                r.get::<_, DeliveryId>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Millis>(3)?,
                r.get::<_, Option<Millis>>(4)?,
                r.get::<_, Option<Millis>>(5)?,
            ))
        })
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(db_err)?;
    let deliveries = deliveries
        .into_iter()
        .map(
            |(id, subscriber, state, created_at, delivered_at, dead_at)| {
                Ok(TimelineDelivery {
                    id,
                    subscriber: codec::bureau(&subscriber)?,
                    state: codec::delivery_state(&state)?,
                    created_at,
                    delivered_at,
                    dead_at,
                    attempts: attempts_of(conn, id, MAX_TIMELINE_ATTEMPTS)?,
                })
            },
        )
        .collect::<Result<Vec<_>, StoreError>>()?;
    let event = codec::event(&event)?;
    // The trail tells each delivery's story; the rows give the ids of those not yet attempted.
    let told =
        super::trail::of_message_in(conn, &event.message_id, crate::store::audit::MAX_AUDIT_PAGE)?;
    let deliveries = crate::store::audit::timeline_deliveries(&told, deliveries)?;
    Ok(TimelineEvent {
        sender: codec::bureau(&sender)?,
        received_at,
        idempotency_key,
        sha256,
        source_message_id,
        event,
        deliveries,
    })
}

pub(super) fn record_report_in(conn: &Connection, report: &NodeReport) -> Result<(), StoreError> {
    let mut minute = conn
        .prepare_cached(
            "INSERT INTO ops_minutes
                 (node, bureau, minute, received, delivered, failed, backlog)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (node, bureau, minute) DO UPDATE SET
                 received = excluded.received, delivered = excluded.delivered,
                 failed = excluded.failed, backlog = excluded.backlog",
        )
        .map_err(db_err)?;
    for counts in &report.minutes {
        minute
            .execute(params![
                report.node,
                counts.bureau.as_str(),
                counts.minute,
                codec::sql_count(counts.received),
                codec::sql_count(counts.delivered),
                codec::sql_count(counts.failed),
                codec::sql_count(counts.backlog),
            ])
            .map_err(db_err)?;
    }
    let mut state = conn
        .prepare_cached(
            "INSERT INTO ops_bureaus
                 (node, bureau, reported_at, last_in, last_out, failing_since, last_error_at,
                  last_error, circuit, cert_not_after, failing_count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (node, bureau) DO UPDATE SET
                 reported_at = excluded.reported_at, last_in = excluded.last_in,
                 last_out = excluded.last_out, failing_since = excluded.failing_since,
                 failing_count = excluded.failing_count,
                 last_error_at = excluded.last_error_at, last_error = excluded.last_error,
                 circuit = excluded.circuit, cert_not_after = excluded.cert_not_after",
        )
        .map_err(db_err)?;
    for bureau in &report.bureaus {
        let (error_at, error) = bureau.last_error.clone().unzip();
        state
            .execute(params![
                report.node,
                bureau.bureau.as_str(),
                report.at,
                bureau.last_in,
                bureau.last_out,
                bureau.failing_since,
                error_at,
                error,
                bureau.circuit.as_str(),
                bureau.certificate_not_after,
                codec::sql_count(bureau.failing_count),
            ])
            .map_err(db_err)?;
    }
    conn.prepare_cached("DELETE FROM ops_minutes WHERE node = ?1 AND minute < ?2")
        .and_then(|mut s| s.execute(params![report.node, report.keep_since]))
        .map_err(db_err)?;
    Ok(())
}

pub(super) fn node_reports_in(
    conn: &Connection,
    since: Millis,
    limit: usize,
) -> Result<NodeReports, StoreError> {
    let mut select = conn
        .prepare_cached(
            "SELECT node, bureau, minute, received, delivered, failed, backlog
             FROM ops_minutes WHERE minute >= ?1 ORDER BY minute DESC LIMIT ?2",
        )
        .map_err(db_err)?;
    let rows = select
        .query_map(params![since, sql_limit(limit)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Millis>(2)?,
                [
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ],
            ))
        })
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(db_err)?;
    let mut minutes = rows
        .into_iter()
        .map(
            |(node, bureau, minute, [received, delivered, failed, backlog])| {
                Ok((
                    node,
                    MinuteCounts {
                        bureau: codec::bureau(&bureau)?,
                        minute,
                        received: codec::count(received)?,
                        delivered: codec::count(delivered)?,
                        failed: codec::count(failed)?,
                        backlog: codec::count(backlog)?,
                    },
                ))
            },
        )
        .collect::<Result<Vec<_>, StoreError>>()?;
    minutes.reverse();
    let mut select = conn
        .prepare_cached(
            "SELECT node, bureau, reported_at, last_in, last_out, failing_since, last_error_at,
                    last_error, circuit, cert_not_after, failing_count
             FROM ops_bureaus WHERE reported_at >= ?1 ORDER BY node, bureau LIMIT ?2",
        )
        .map_err(db_err)?;
    type StateRow = (
        String,
        String,
        Millis,
        [Option<Millis>; 4],
        Option<String>,
        String,
        Option<Millis>,
        i64,
    );
    let rows: Vec<StateRow> = select
        .query_map(params![since, sql_limit(limit)], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                [r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?],
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
            ))
        })
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(db_err)?;
    let bureaus = rows
        .into_iter()
        .map(
            |(
                node,
                bureau,
                reported_at,
                [last_in, last_out, failing_since, error_at],
                error,
                circuit,
                cert,
                failing_count,
            )| {
                Ok((
                    node,
                    reported_at,
                    BureauState {
                        bureau: codec::bureau(&bureau)?,
                        last_in,
                        last_out,
                        failing_since,
                        failing_count: codec::count(failing_count)?,
                        last_error: error_at.zip(error),
                        circuit: CircuitState::parse(&circuit)?,
                        certificate_not_after: cert,
                    },
                ))
            },
        )
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(NodeReports { minutes, bureaus })
}

pub(super) fn shared_secret_in(
    conn: &Connection,
    name: &str,
    candidate: &str,
) -> Result<String, StoreError> {
    conn.prepare_cached(
        "INSERT INTO shared_secrets (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO NOTHING",
    )
    .and_then(|mut s| s.execute(params![name, candidate]))
    .map_err(db_err)?;
    conn.prepare_cached("SELECT value FROM shared_secrets WHERE name = ?1")
        .and_then(|mut s| s.query_row([name], |r| r.get(0)))
        .map_err(db_err)
}

pub(super) fn backlogs_in(
    conn: &Connection,
    subscribers: &[BureauId],
) -> Result<Vec<Backlog>, StoreError> {
    // The partial indexes of pending deliveries (`deliveries_feed`, by subscriber) and of dead
    // letters (`deliveries_dead`): the rows read are the pending and dead ones only.
    let mut pending_of = conn
        .prepare_cached(
            "SELECT COUNT(*), MIN(created_at) FROM deliveries INDEXED BY deliveries_feed
             WHERE subscriber = ?1 AND state = 'pending'",
        )
        .map_err(db_err)?;
    let mut dead_of = conn
        .prepare_cached(
            "SELECT COUNT(*), NULL FROM deliveries INDEXED BY deliveries_dead
             WHERE subscriber = ?1 AND state = 'dead'",
        )
        .map_err(db_err)?;
    let mut backlogs = Vec::with_capacity(subscribers.len());
    for &subscriber in subscribers {
        let read = |select: &mut rusqlite::CachedStatement<'_>| {
            select
                .query_row(params![subscriber.as_str()], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Option<Millis>>(1)?))
                })
                .map_err(db_err)
        };
        let (pending, oldest_pending) = read(&mut pending_of)?;
        let (dead, _) = read(&mut dead_of)?;
        backlogs.push(Backlog {
            subscriber,
            pending: codec::count(pending)?,
            dead: codec::count(dead)?,
            oldest_pending,
        });
    }
    Ok(backlogs)
}
