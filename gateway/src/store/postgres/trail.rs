//! The audit trail on PostgreSQL: one chain per writing lane of each node, so that no ingest
//! waits for another node's entries or another batcher's (see `store::audit`).
//!
//! A lane ([`Lanes::lock`]) is held for the whole transaction that appends to its chain; it
//! keeps the chain's head in memory, loaded from the table when unknown and forgotten whenever
//! a transaction's fate is uncertain. A chain is named after the node (`<node>/<lane>`) once the
//! store has claimed the node's name ([`crate::store::Store::claim_node`], which also makes the
//! name one live process's); a store that never claims one (tools, tests) writes chains named
//! after itself (`store-<uuid>`). A second writer of the same chain cannot fork it: the primary
//! key `(chain, seq)` fails its insert, and the lane reloads the head.

use deadpool_postgres::GenericClient;
use schemas::{BureauId, MessageId};
use tokio_postgres::Row;

use super::db::{get, pg_err};
use crate::store::audit::{Anchor, AuditRow, ChainState, Link, Record, StoredCheckpoint};
use crate::store::codec::sql_limit;
use crate::store::{Millis, StoreError, audit};

/// The writing lanes of one store: one per ingest batcher, the outcome recorder, and one for
/// everything else (operators' actions, feed acknowledgements, survey reads).
pub(super) struct Lanes {
    name: std::sync::RwLock<String>,
    ingest: Vec<tokio::sync::Mutex<Lane>>,
    outcomes: tokio::sync::Mutex<Lane>,
    ops: tokio::sync::Mutex<Lane>,
}

/// Which lane.
#[derive(Debug, Clone, Copy)]
pub(super) enum LaneId {
    /// Ingest batcher `n`.
    Ingest(usize),
    /// The outcome recorder.
    Outcomes,
    /// Everything else.
    Ops,
}

/// One lane: its chain and, when known, the chain's head.
pub(super) struct Lane {
    suffix: String,
    chain: String,
    head: Option<Link>,
}

impl Lanes {
    pub(super) fn new(ingest_writers: usize) -> Self {
        let lane = |suffix: String| {
            tokio::sync::Mutex::new(Lane {
                suffix,
                chain: String::new(),
                head: None,
            })
        };
        Self {
            name: std::sync::RwLock::new(format!("store-{}", uuid::Uuid::now_v7().simple())),
            ingest: (0..ingest_writers.max(1))
                .map(|i| lane(format!("ingest-{i}")))
                .collect(),
            outcomes: lane("outcomes".into()),
            ops: lane("ops".into()),
        }
    }

    /// From now on, chains are named after `node` (called once the node's name is claimed).
    pub(super) fn name_after(&self, node: &str) {
        *self.name.write().unwrap_or_else(|p| p.into_inner()) = node.to_owned();
    }

    /// Takes a lane for one transaction.
    pub(super) async fn lock(&self, id: LaneId) -> tokio::sync::MutexGuard<'_, Lane> {
        let lane = match id {
            LaneId::Ingest(n) => &self.ingest[n % self.ingest.len()],
            LaneId::Outcomes => &self.outcomes,
            LaneId::Ops => &self.ops,
        };
        let mut guard = lane.lock().await;
        let name = self.name.read().unwrap_or_else(|p| p.into_inner());
        let chain = format!("{name}/{}", guard.suffix);
        if guard.chain != chain {
            guard.chain = chain;
            guard.head = None;
        }
        guard
    }
}

impl Lane {
    /// The lane's chain.
    pub(super) fn chain(&self) -> &str {
        &self.chain
    }

    /// The chain's head, read from the table when unknown.
    pub(super) async fn head(&mut self, client: &impl GenericClient) -> Result<Link, StoreError> {
        if let Some(head) = &self.head {
            return Ok(head.clone());
        }
        let head = head_of(client, &self.chain).await?;
        self.head = Some(head.clone());
        Ok(head)
    }

    /// The transaction that appended up to `head` committed.
    pub(super) fn committed(&mut self, head: Link) {
        self.head = Some(head);
    }

    /// A transaction's fate is unknown (or it failed): read the head again next time.
    pub(super) fn forget(&mut self) {
        self.head = None;
    }
}

/// The last entry of `chain`, else its anchor, else genesis.
async fn head_of(client: &impl GenericClient, chain: &str) -> Result<Link, StoreError> {
    let row = client
        .query_opt(
            "SELECT seq, hash FROM (
                 (SELECT seq, hash FROM audit_log WHERE chain = $1 ORDER BY seq DESC LIMIT 1)
                 UNION ALL
                 (SELECT seq, hash FROM audit_anchors WHERE chain = $1)
             ) AS h ORDER BY seq DESC LIMIT 1",
            &[&chain],
        )
        .await
        .map_err(pg_err)?;
    match row {
        Some(row) => Ok(Link {
            seq: get(&row, 0)?,
            hash: get(&row, 1)?,
        }),
        None => Ok(Link::genesis()),
    }
}

/// Entries of one chain as the columns of [`INSERT`] (`$1` the chain).
#[derive(Default)]
pub(super) struct Columns {
    seqs: Vec<i64>,
    ats: Vec<i64>,
    kinds: Vec<String>,
    bureaus: Vec<Option<String>>,
    message_ids: Vec<Option<String>>,
    contents: Vec<String>,
    content_sha256s: Vec<String>,
    prev_hashes: Vec<String>,
    hashes: Vec<String>,
}

impl Columns {
    pub(super) fn push(&mut self, row: AuditRow) {
        self.seqs.push(row.seq);
        self.ats.push(row.at);
        self.kinds.push(row.kind);
        self.bureaus.push(row.bureau);
        self.message_ids.push(row.message_id);
        self.contents.push(row.content);
        self.content_sha256s.push(row.content_sha256);
        self.prev_hashes.push(row.prev_hash);
        self.hashes.push(row.hash);
    }

    pub(super) fn extend(&mut self, rows: Vec<AuditRow>) {
        for row in rows {
            self.push(row);
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }

    /// The parameters of [`INSERT`] after the chain (`$2`…`$10`), also those of the audit
    /// part of the ingest statement.
    pub(super) fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 9] {
        [
            &self.seqs,
            &self.ats,
            &self.kinds,
            &self.bureaus,
            &self.message_ids,
            &self.contents,
            &self.content_sha256s,
            &self.prev_hashes,
            &self.hashes,
        ]
    }
}

/// Inserts entries of one chain: `$1` the chain, `$2`…`$10` the columns.
pub(super) const INSERT: &str = "INSERT INTO audit_log
        (chain, seq, at, kind, bureau, message_id, content, content_sha256, prev_hash, hash)
    SELECT $1::text, u.* FROM UNNEST($2::int8[], $3::int8[], $4::text[], $5::text[], $6::text[],
                                     $7::text[], $8::text[], $9::text[], $10::text[]) AS u";

/// Appends records, each at its own time, after `head` (moved to the last): written by one
/// statement in the caller's transaction.
pub(super) async fn append(
    client: &impl GenericClient,
    chain: &str,
    head: &mut Link,
    records: impl IntoIterator<Item = (Millis, Record)>,
) -> Result<(), StoreError> {
    let mut columns = Columns::default();
    for (at, record) in records {
        columns.push(audit::append(head, chain, at, &record)?);
    }
    if columns.is_empty() {
        return Ok(());
    }
    let statement = client.prepare_cached(INSERT).await.map_err(pg_err)?;
    let [p2, p3, p4, p5, p6, p7, p8, p9, p10] = columns.params();
    client
        .execute(&statement, &[&chain, p2, p3, p4, p5, p6, p7, p8, p9, p10])
        .await
        .map_err(pg_err)?;
    Ok(())
}

/// The records of an operator's action on deliveries, or of a feed's acknowledgements (`action`
/// `None`): each names its delivery's subscriber and event.
pub(super) async fn delivery_records(
    client: &impl GenericClient,
    action: Option<&'static str>,
    ids: &[i64],
    by: &str,
) -> Result<Vec<Record>, StoreError> {
    let rows = client
        .query(
            "SELECT d.id, d.subscriber, e.gateway_message_id
             FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.id = ANY ($1) ORDER BY d.id",
            &[&ids],
        )
        .await
        .map_err(pg_err)?;
    rows.iter()
        .map(|row| {
            let delivery: i64 = get(row, 0)?;
            let subscriber: String = get(row, 1)?;
            let message_id: String = get(row, 2)?;
            Ok(Record::about_delivery(
                action, delivery, subscriber, message_id, by,
            ))
        })
        .collect()
}

const COLUMNS: &str =
    "chain, seq, at, kind, bureau, message_id, content, content_sha256, prev_hash, hash";

fn row(r: &Row) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        chain: get(r, 0)?,
        seq: get(r, 1)?,
        at: get(r, 2)?,
        kind: get(r, 3)?,
        bureau: get(r, 4)?,
        message_id: get(r, 5)?,
        content: get(r, 6)?,
        content_sha256: get(r, 7)?,
        prev_hash: get(r, 8)?,
        hash: get(r, 9)?,
    })
}

pub(super) async fn chains(client: &impl GenericClient) -> Result<Vec<ChainState>, StoreError> {
    // One index probe per chain for its head (a loose scan of the primary key), not a scan of
    // the trail.
    let rows = client
        .query(
            "WITH RECURSIVE names (chain) AS (
                 (SELECT chain FROM audit_log ORDER BY chain LIMIT 1)
                 UNION ALL
                 SELECT (SELECT l.chain FROM audit_log l WHERE l.chain > n.chain
                         ORDER BY l.chain LIMIT 1)
                 FROM names n WHERE n.chain IS NOT NULL
             )
             SELECT c.chain, a.seq, a.hash, h.seq, h.hash
             FROM (SELECT chain FROM names WHERE chain IS NOT NULL
                   UNION SELECT chain FROM audit_anchors) AS c
             LEFT JOIN audit_anchors a ON a.chain = c.chain
             LEFT JOIN LATERAL (SELECT seq, hash FROM audit_log l WHERE l.chain = c.chain
                                ORDER BY seq DESC LIMIT 1) AS h ON true
             ORDER BY c.chain",
            &[],
        )
        .await
        .map_err(pg_err)?;
    rows.iter()
        .map(|r| {
            let start = match get::<Option<i64>>(r, 1)? {
                Some(seq) => Link {
                    seq,
                    hash: get(r, 2)?,
                },
                None => Link::genesis(),
            };
            let head = match get::<Option<i64>>(r, 3)? {
                Some(seq) => Link {
                    seq,
                    hash: get(r, 4)?,
                },
                None => start.clone(),
            };
            Ok(ChainState {
                chain: get(r, 0)?,
                start,
                head,
            })
        })
        .collect()
}

pub(super) async fn entries(
    client: &impl GenericClient,
    chain: &str,
    after_seq: i64,
    limit: usize,
) -> Result<Vec<AuditRow>, StoreError> {
    client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM audit_log WHERE chain = $1 AND seq > $2
                 ORDER BY seq LIMIT $3"
            ),
            &[&chain, &after_seq, &sql_limit(limit)],
        )
        .await
        .map_err(pg_err)?
        .iter()
        .map(row)
        .collect()
}

pub(super) async fn entry(
    client: &impl GenericClient,
    chain: &str,
    seq: i64,
) -> Result<Option<AuditRow>, StoreError> {
    client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM audit_log WHERE chain = $1 AND seq = $2"),
            &[&chain, &seq],
        )
        .await
        .map_err(pg_err)?
        .as_ref()
        .map(row)
        .transpose()
}

pub(super) async fn of_message(
    client: &impl GenericClient,
    message_id: &MessageId,
    limit: usize,
) -> Result<Vec<AuditRow>, StoreError> {
    client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM audit_log WHERE message_id = $1
                 ORDER BY at, chain, seq LIMIT $2"
            ),
            &[&message_id.as_str(), &sql_limit(limit)],
        )
        .await
        .map_err(pg_err)?
        .iter()
        .map(row)
        .collect()
}

pub(super) async fn of_bureau(
    client: &impl GenericClient,
    bureau: BureauId,
    from: Millis,
    to: Millis,
    after: Option<(Millis, String, i64)>,
    limit: usize,
) -> Result<Vec<AuditRow>, StoreError> {
    let (after_at, after_chain, after_seq) = after.unwrap_or((i64::MIN, String::new(), 0));
    client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM audit_log
                 WHERE bureau = $1 AND at >= $2 AND at < $3 AND (at, chain, seq) > ($4, $5, $6)
                 ORDER BY at, chain, seq LIMIT $7"
            ),
            &[
                &bureau.as_str(),
                &from,
                &to,
                &after_at,
                &after_chain,
                &after_seq,
                &sql_limit(limit),
            ],
        )
        .await
        .map_err(pg_err)?
        .iter()
        .map(row)
        .collect()
}

pub(super) async fn record_checkpoint(
    client: &impl GenericClient,
    c: &StoredCheckpoint,
) -> Result<i64, StoreError> {
    let row = client
        .query_one(
            "INSERT INTO audit_checkpoints (node, at, body, signature, certificate)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&c.node, &c.at, &c.body, &c.signature, &c.certificate],
        )
        .await
        .map_err(pg_err)?;
    get(&row, 0)
}

pub(super) async fn checkpoints(
    client: &impl GenericClient,
    after: i64,
    limit: usize,
) -> Result<Vec<StoredCheckpoint>, StoreError> {
    client
        .query(
            "SELECT id, node, at, body, signature, certificate FROM audit_checkpoints
             WHERE id > $1 ORDER BY id LIMIT $2",
            &[&after, &sql_limit(limit)],
        )
        .await
        .map_err(pg_err)?
        .iter()
        .map(|r| {
            Ok(StoredCheckpoint {
                id: get(r, 0)?,
                node: get(r, 1)?,
                at: get(r, 2)?,
                body: get(r, 3)?,
                signature: get(r, 4)?,
                certificate: get(r, 5)?,
            })
        })
        .collect()
}

pub(super) async fn raw_message(
    client: &impl GenericClient,
    sender: BureauId,
    key: &str,
) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    client
        .query_opt(
            "SELECT content_type, body FROM messages WHERE sender = $1 AND idempotency_key = $2",
            &[&sender.as_str(), &key],
        )
        .await
        .map_err(pg_err)?
        .map(|r| Ok((get(&r, 0)?, get(&r, 1)?)))
        .transpose()
}

/// Deletes the oldest entries of `chain` made before `before` and anchors the chain at the last
/// one (see [`crate::store::Store::prune_audit`]); the prune's own entry goes to `lane`'s chain.
pub(super) async fn prune(
    client: &impl GenericClient,
    lane: &mut Lane,
    chain: &str,
    before: Millis,
    by: &str,
    now: Millis,
    limit: usize,
) -> Result<Option<(Anchor, Link)>, StoreError> {
    // The chain's writer may be appending: it never rewrites what is here, and the prefix taken
    // is made of entries older than `before`.
    let row = client
        .query_one(
            "SELECT
                 COALESCE((SELECT seq FROM audit_anchors WHERE chain = $1), 0),
                 (SELECT MIN(seq) FROM audit_log WHERE chain = $1 AND at >= $2),
                 (SELECT MAX(seq) FROM audit_log WHERE chain = $1)",
            &[&chain, &before],
        )
        .await
        .map_err(pg_err)?;
    let start: i64 = get(&row, 0)?;
    let first_kept: Option<i64> = get(&row, 1)?;
    let Some(last) = get::<Option<i64>>(&row, 2)? else {
        return Ok(None);
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut through = last.min(start.saturating_add(limit));
    if let Some(first_kept) = first_kept {
        through = through.min(first_kept - 1);
    }
    if through <= start {
        return Ok(None);
    }
    let Some(last) = entry(client, chain, through).await? else {
        return Err(StoreError::corrupt(format!(
            "audit chain {chain} has no entry {through}"
        )));
    };
    let deleted = client
        .execute(
            "DELETE FROM audit_log WHERE chain = $1 AND seq <= $2",
            &[&chain, &last.seq],
        )
        .await
        .map_err(pg_err)?;
    let anchor = Anchor {
        chain: chain.to_owned(),
        link: Link {
            seq: last.seq,
            hash: last.hash,
        },
        pruned_at: now,
    };
    client
        .execute(
            "INSERT INTO audit_anchors (chain, seq, hash, pruned_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (chain) DO UPDATE
             SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, pruned_at = EXCLUDED.pruned_at",
            &[&chain, &anchor.link.seq, &anchor.link.hash, &now],
        )
        .await
        .map_err(pg_err)?;
    let mut head = lane.head(client).await?;
    let lane_chain = lane.chain().to_owned();
    append(
        client,
        &lane_chain,
        &mut head,
        [(
            now,
            Record::Prune {
                by: by.to_owned(),
                pruned_chain: chain.to_owned(),
                through: anchor.link.clone(),
                entries: deleted,
            },
        )],
    )
    .await?;
    Ok(Some((anchor, head)))
}
