//! The audit trail in SQLite: one chain ([`LOCAL_CHAIN`]), appended by the writer thread inside
//! the job's own savepoint. Its head is read from the table each time (one index probe): the
//! writer holds the write lock, so nothing can move it meanwhile, and a job rolled back to its
//! savepoint leaves nothing behind to forget.

use rusqlite::{Connection, OptionalExtension, params};
use schemas::{BureauId, MessageId};

use super::db::db_err;
use crate::store::audit::{
    self, Anchor, AuditRow, ChainState, LOCAL_CHAIN, Link, Record, StoredCheckpoint,
};
use crate::store::codec::sql_limit;
use crate::store::{Millis, StoreError};

/// The columns of an entry, in the order [`row`] reads them.
const COLUMNS: &str =
    "chain, seq, at, kind, bureau, message_id, content, content_sha256, prev_hash, hash";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        chain: r.get(0)?,
        seq: r.get(1)?,
        at: r.get(2)?,
        kind: r.get(3)?,
        bureau: r.get(4)?,
        message_id: r.get(5)?,
        content: r.get(6)?,
        content_sha256: r.get(7)?,
        prev_hash: r.get(8)?,
        hash: r.get(9)?,
    })
}

/// Where `chain` starts: its anchor, or genesis.
fn start_in(conn: &Connection, chain: &str) -> Result<Link, StoreError> {
    Ok(conn
        .prepare_cached("SELECT seq, hash FROM audit_anchors WHERE chain = ?1")
        .and_then(|mut s| {
            s.query_row([chain], |r| {
                Ok(Link {
                    seq: r.get(0)?,
                    hash: r.get(1)?,
                })
            })
            .optional()
        })
        .map_err(db_err)?
        .unwrap_or_else(Link::genesis))
}

/// The last entry of `chain` (its start when it holds none).
fn head_in(conn: &Connection, chain: &str) -> Result<Link, StoreError> {
    let last = conn
        .prepare_cached(
            "SELECT seq, hash FROM audit_log WHERE chain = ?1 ORDER BY seq DESC LIMIT 1",
        )
        .and_then(|mut s| {
            s.query_row([chain], |r| {
                Ok(Link {
                    seq: r.get(0)?,
                    hash: r.get(1)?,
                })
            })
            .optional()
        })
        .map_err(db_err)?;
    match last {
        Some(link) => Ok(link),
        None => start_in(conn, chain),
    }
}

fn insert(conn: &Connection, rows: &[AuditRow]) -> Result<(), StoreError> {
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO audit_log
                 (chain, seq, at, kind, bureau, message_id, content, content_sha256, prev_hash,
                  hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .map_err(db_err)?;
    for r in rows {
        insert
            .execute(params![
                r.chain,
                r.seq,
                r.at,
                r.kind,
                r.bureau,
                r.message_id,
                r.content,
                r.content_sha256,
                r.prev_hash,
                r.hash
            ])
            .map_err(db_err)?;
    }
    Ok(())
}

/// Appends records made at one time.
pub(super) fn append_in(
    conn: &Connection,
    at: Millis,
    records: &[Record],
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let mut head = head_in(conn, LOCAL_CHAIN)?;
    insert(
        conn,
        &audit::append_all(&mut head, LOCAL_CHAIN, at, records)?,
    )
}

/// Appends records each made at its own time.
pub(super) fn append_timed_in(
    conn: &Connection,
    records: &[(Millis, Record)],
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let mut head = head_in(conn, LOCAL_CHAIN)?;
    let rows = records
        .iter()
        .map(|(at, record)| audit::append(&mut head, LOCAL_CHAIN, *at, record))
        .collect::<Result<Vec<_>, _>>()?;
    insert(conn, &rows)
}

/// Appends an ingest's entries (the message, then one route entry per event).
pub(super) fn append_ingest_in(
    conn: &Connection,
    message: &crate::store::NewMessage,
) -> Result<(), StoreError> {
    let mut head = head_in(conn, LOCAL_CHAIN)?;
    let records = audit::ingest_records(message, &head);
    insert(
        conn,
        &audit::append_all(&mut head, LOCAL_CHAIN, message.received_at, &records)?,
    )
}

pub(super) fn chains_in(conn: &Connection) -> Result<Vec<ChainState>, StoreError> {
    let names: Vec<String> = conn
        .prepare_cached(
            // One probe of the primary key per chain (a loose index scan), not a scan of the
            // trail: the checkpoint task asks every interval.
            "WITH RECURSIVE names (chain) AS (
                 SELECT (SELECT chain FROM audit_log ORDER BY chain LIMIT 1)
                 UNION ALL
                 SELECT (SELECT l.chain FROM audit_log l WHERE l.chain > n.chain
                         ORDER BY l.chain LIMIT 1)
                 FROM names n WHERE n.chain IS NOT NULL
             )
             SELECT chain FROM names WHERE chain IS NOT NULL
             UNION SELECT chain FROM audit_anchors
             ORDER BY 1",
        )
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(db_err)?;
    names
        .into_iter()
        .map(|chain| {
            Ok(ChainState {
                start: start_in(conn, &chain)?,
                head: head_in(conn, &chain)?,
                chain,
            })
        })
        .collect()
}

pub(super) fn entries_in(
    conn: &Connection,
    chain: &str,
    after_seq: i64,
    limit: usize,
) -> Result<Vec<AuditRow>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM audit_log WHERE chain = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
    ))
    .and_then(|mut s| {
        s.query_map(params![chain, after_seq, sql_limit(limit)], row)?
            .collect()
    })
    .map_err(db_err)
}

pub(super) fn entry_in(
    conn: &Connection,
    chain: &str,
    seq: i64,
) -> Result<Option<AuditRow>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM audit_log WHERE chain = ?1 AND seq = ?2"
    ))
    .and_then(|mut s| s.query_row(params![chain, seq], row).optional())
    .map_err(db_err)
}

pub(super) fn of_message_in(
    conn: &Connection,
    message_id: &MessageId,
    limit: usize,
) -> Result<Vec<AuditRow>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM audit_log INDEXED BY audit_log_message
         WHERE message_id = ?1 ORDER BY at, chain, seq LIMIT ?2"
    ))
    .and_then(|mut s| {
        s.query_map(params![message_id.as_str(), sql_limit(limit)], row)?
            .collect()
    })
    .map_err(db_err)
}

pub(super) fn of_bureau_in(
    conn: &Connection,
    bureau: BureauId,
    from: Millis,
    to: Millis,
    after: Option<(Millis, String, i64)>,
    limit: usize,
) -> Result<Vec<AuditRow>, StoreError> {
    let (after_at, after_chain, after_seq) = after.unwrap_or((i64::MIN, String::new(), 0));
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM audit_log INDEXED BY audit_log_bureau
         WHERE bureau = ?1 AND at >= ?2 AND at < ?3
           AND (at, chain, seq) > (?4, ?5, ?6)
         ORDER BY at, chain, seq LIMIT ?7"
    ))
    .and_then(|mut s| {
        s.query_map(
            params![
                bureau.as_str(),
                from,
                to,
                after_at,
                after_chain,
                after_seq,
                sql_limit(limit)
            ],
            row,
        )?
        .collect()
    })
    .map_err(db_err)
}

pub(super) fn record_checkpoint_in(
    conn: &Connection,
    c: &StoredCheckpoint,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit_checkpoints (node, at, body, signature, certificate)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| s.execute(params![c.node, c.at, c.body, c.signature, c.certificate]))
    .map_err(db_err)?;
    Ok(conn.last_insert_rowid())
}

pub(super) fn checkpoints_in(
    conn: &Connection,
    after: i64,
    limit: usize,
) -> Result<Vec<StoredCheckpoint>, StoreError> {
    conn.prepare_cached(
        "SELECT id, node, at, body, signature, certificate FROM audit_checkpoints
         WHERE id > ?1 ORDER BY id LIMIT ?2",
    )
    .and_then(|mut s| {
        s.query_map(params![after, sql_limit(limit)], |r| {
            Ok(StoredCheckpoint {
                id: r.get(0)?,
                node: r.get(1)?,
                at: r.get(2)?,
                body: r.get(3)?,
                signature: r.get(4)?,
                certificate: r.get(5)?,
            })
        })?
        .collect()
    })
    .map_err(db_err)
}

pub(super) fn raw_message_in(
    conn: &Connection,
    sender: BureauId,
    key: &str,
) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    conn.prepare_cached(
        "SELECT content_type, body FROM messages WHERE sender = ?1 AND idempotency_key = ?2",
    )
    .and_then(|mut s| {
        s.query_row(params![sender.as_str(), key], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
    })
    .map_err(db_err)
}

/// Deletes the oldest entries of `chain` made before `before` (see [`crate::store::Store::prune_audit`]).
pub(super) fn prune_in(
    conn: &Connection,
    chain: &str,
    before: Millis,
    by: &str,
    now: Millis,
    limit: usize,
) -> Result<Option<Anchor>, StoreError> {
    // The last entry of the prefix made before `before`, at most `limit` entries from the start.
    let start = start_in(conn, chain)?;
    let first_kept: Option<i64> = conn
        .prepare_cached("SELECT MIN(seq) FROM audit_log WHERE chain = ?1 AND at >= ?2")
        .and_then(|mut s| s.query_row(params![chain, before], |r| r.get(0)))
        .map_err(db_err)?;
    let head = head_in(conn, chain)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut through = head.seq.min(start.seq.saturating_add(limit));
    if let Some(first_kept) = first_kept {
        through = through.min(first_kept - 1);
    }
    if through <= start.seq {
        return Ok(None);
    }
    let last = entry_in(conn, chain, through)?.ok_or_else(|| {
        StoreError::corrupt(format!("audit chain {chain} has no entry {through}"))
    })?;
    let deleted = conn
        .prepare_cached("DELETE FROM audit_log WHERE chain = ?1 AND seq <= ?2")
        .and_then(|mut s| s.execute(params![chain, last.seq]))
        .map_err(db_err)? as u64;
    let anchor = Anchor {
        chain: chain.to_owned(),
        link: Link {
            seq: last.seq,
            hash: last.hash,
        },
        pruned_at: now,
    };
    conn.prepare_cached(
        "INSERT INTO audit_anchors (chain, seq, hash, pruned_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (chain) DO UPDATE SET seq = ?2, hash = ?3, pruned_at = ?4",
    )
    .and_then(|mut s| s.execute(params![chain, anchor.link.seq, anchor.link.hash, now]))
    .map_err(db_err)?;
    append_in(
        conn,
        now,
        &[Record::Prune {
            by: by.to_owned(),
            pruned_chain: chain.to_owned(),
            through: anchor.link.clone(),
            entries: deleted,
        }],
    )?;
    Ok(Some(anchor))
}

/// The records of an operator's action on deliveries (`replay`, `purge`), or of a feed's
/// acknowledgements (`action` `None`): each names its delivery's subscriber and event.
pub(super) fn delivery_records_in(
    conn: &Connection,
    action: Option<&'static str>,
    ids: &[i64],
    by: &str,
) -> Result<Vec<Record>, StoreError> {
    let mut select = conn
        .prepare_cached(
            "SELECT d.subscriber, e.gateway_message_id
             FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = ?1",
        )
        .map_err(db_err)?;
    ids.iter()
        .map(|&delivery| {
            let (subscriber, message_id): (String, String) = select
                .query_row([delivery], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(db_err)?;
            Ok(Record::about_delivery(
                action, delivery, subscriber, message_id, by,
            ))
        })
        .collect()
}
