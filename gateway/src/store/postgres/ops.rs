//! The operator surface's queries on PostgreSQL: pauses, single dead letters and their purge,
//! case timelines, node reports, shared secrets. Each is bounded by a key or a limit; several
//! nodes read and write the same rows, so every node shows the same exchange-wide picture.

use deadpool_postgres::{GenericClient, Object};
use schemas::BureauId;
use tokio_postgres::Row;

use super::db::{get, pg_err, relaxed};
use crate::store::audit;
use crate::store::codec::{self, sql_limit};
use crate::store::{
    Attempt, Backlog, BureauState, CircuitState, DeadLetter, DeliveryId, MAX_TIMELINE_ATTEMPTS,
    Millis, MinuteCounts, NodeReport, NodeReports, Pause, ReplaySelector, StoreError,
    TimelineDelivery, TimelineEvent, TimelineKey,
};

pub(super) async fn pause(client: &impl GenericClient, pause: &Pause) -> Result<bool, StoreError> {
    let changed = client
        .execute(
            "INSERT INTO paused_subscribers (subscriber, paused_by, paused_at) VALUES ($1, $2, $3)
             ON CONFLICT (subscriber) DO NOTHING",
            &[&pause.subscriber.as_str(), &pause.by, &pause.at],
        )
        .await
        .map_err(pg_err)?;
    Ok(changed == 1)
}

pub(super) async fn resume(
    client: &impl GenericClient,
    subscriber: BureauId,
) -> Result<bool, StoreError> {
    let changed = client
        .execute(
            "DELETE FROM paused_subscribers WHERE subscriber = $1",
            &[&subscriber.as_str()],
        )
        .await
        .map_err(pg_err)?;
    Ok(changed == 1)
}

pub(super) async fn pauses(client: &Object) -> Result<Vec<Pause>, StoreError> {
    let rows = client
        .query(
            "SELECT subscriber, paused_by, paused_at FROM paused_subscribers
             ORDER BY subscriber LIMIT 100",
            &[],
        )
        .await
        .map_err(pg_err)?;
    rows.iter()
        .map(|row| {
            Ok(Pause {
                subscriber: codec::bureau(get(row, 0)?)?,
                by: get(row, 1)?,
                at: get(row, 2)?,
            })
        })
        .collect()
}

async fn attempts_of(
    client: &Object,
    delivery: DeliveryId,
    limit: usize,
) -> Result<Vec<Attempt>, StoreError> {
    let rows = client
        .query(
            "SELECT at, error FROM delivery_attempts WHERE delivery_id = $1
             ORDER BY id DESC LIMIT $2",
            &[&delivery, &sql_limit(limit)],
        )
        .await
        .map_err(pg_err)?;
    rows.iter()
        .rev()
        .map(|row| {
            Ok(Attempt {
                at: get(row, 0)?,
                error: get(row, 1)?,
            })
        })
        .collect()
}

pub(super) async fn dead_letter(
    client: &Object,
    id: DeliveryId,
) -> Result<Option<DeadLetter>, StoreError> {
    let Some(row) = client
        .query_opt(
            "SELECT d.subscriber, e.gateway_message_id, d.dead_at
             FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.id = $1 AND d.state = 'dead'",
            &[&id],
        )
        .await
        .map_err(pg_err)?
    else {
        return Ok(None);
    };
    Ok(Some(DeadLetter {
        id,
        subscriber: codec::bureau(get(&row, 0)?)?,
        message_id: codec::message_id(get(&row, 1)?)?,
        attempts: attempts_of(client, id, MAX_TIMELINE_ATTEMPTS).await?,
        dead_at: get(&row, 2)?,
    }))
}

/// Locks up to `limit` dead letters of `selector`; returns their ids and how many there are
/// (deleted by [`delete_dead`], once the trail has recorded them).
pub(super) async fn purge(
    tx: &impl GenericClient,
    selector: &ReplaySelector,
    limit: usize,
) -> Result<(Vec<DeliveryId>, u64), StoreError> {
    let rows = match selector {
        ReplaySelector::Ids(ids) => {
            let ids: Vec<DeliveryId> = ids.iter().take(limit).copied().collect();
            tx.query(
                "SELECT id FROM deliveries WHERE id = ANY ($1) AND state = 'dead' FOR UPDATE",
                &[&ids],
            )
            .await
        }
        ReplaySelector::Subscriber(subscriber) => {
            tx.query(
                "SELECT id FROM deliveries WHERE state = 'dead' AND subscriber = $1
                 ORDER BY dead_at, id LIMIT $2 FOR UPDATE",
                &[&subscriber.as_str(), &sql_limit(limit)],
            )
            .await
        }
    }
    .map_err(pg_err)?;
    let ids = rows
        .iter()
        .map(|row| get(row, 0))
        .collect::<Result<Vec<DeliveryId>, _>>()?;
    let count = ids.len() as u64;
    Ok((ids, count))
}

/// Deletes the dead letters `ids` and their attempt histories.
pub(super) async fn delete_dead(
    tx: &impl GenericClient,
    ids: &[DeliveryId],
) -> Result<u64, StoreError> {
    tx.execute(
        "DELETE FROM delivery_attempts WHERE delivery_id = ANY ($1)",
        &[&ids],
    )
    .await
    .map_err(pg_err)?;
    tx.execute(
        "DELETE FROM deliveries WHERE id = ANY ($1) AND state = 'dead'",
        &[&ids],
    )
    .await
    .map_err(pg_err)
}

/// The columns of a timeline event, in the order [`timeline_event`] reads them.
const TIMELINE_SELECT: &str = "SELECT e.id, m.sender, m.received_at, m.idempotency_key,
        m.sha256, e.source_message_id, e.event
    FROM events e JOIN messages m ON m.id = e.message_id";

pub(super) async fn timeline(
    client: &Object,
    key: &TimelineKey,
    limit: usize,
) -> Result<Vec<TimelineEvent>, StoreError> {
    let limit = sql_limit(limit);
    let rows = match key {
        TimelineKey::Message(id) => {
            client
                .query(
                    &format!("{TIMELINE_SELECT} WHERE e.gateway_message_id = $1 LIMIT $2"),
                    &[&id.as_str(), &limit],
                )
                .await
        }
        TimelineKey::Project(code) => {
            client
                .query(
                    &format!("{TIMELINE_SELECT} WHERE e.project = $1 ORDER BY e.id DESC LIMIT $2"),
                    &[&code.as_str(), &limit],
                )
                .await
        }
        TimelineKey::Case(case_id) => {
            client
                .query(
                    &format!(
                        "{TIMELINE_SELECT} WHERE e.case_key = ANY ($1) ORDER BY e.id DESC LIMIT $2"
                    ),
                    &[&codec::case_keys_of(case_id), &limit],
                )
                .await
        }
    }
    .map_err(pg_err)?;
    // The latest `limit` events, told oldest first.
    let mut events = Vec::with_capacity(rows.len());
    for row in rows.iter().rev() {
        events.push(timeline_event(client, row).await?);
    }
    Ok(events)
}

async fn timeline_event(client: &Object, row: &Row) -> Result<TimelineEvent, StoreError> {
    let event_row: i64 = get(row, 0)?;
    let delivery_rows = client
        .query(
            "SELECT id, subscriber, state, created_at, delivered_at, dead_at
             FROM deliveries WHERE event_id = $1 ORDER BY id",
            &[&event_row],
        )
        .await
        .map_err(pg_err)?;
    let mut deliveries = Vec::with_capacity(delivery_rows.len());
    for d in &delivery_rows {
        let id: DeliveryId = get(d, 0)?;
        deliveries.push(TimelineDelivery {
            id,
            subscriber: codec::bureau(get(d, 1)?)?,
            state: codec::delivery_state(get(d, 2)?)?,
            created_at: get(d, 3)?,
            delivered_at: get(d, 4)?,
            dead_at: get(d, 5)?,
            attempts: attempts_of(client, id, MAX_TIMELINE_ATTEMPTS).await?,
        });
    }
    let event = codec::event(get(row, 6)?)?;
    // The trail tells each delivery's story; the rows give the ids of those not yet attempted.
    let told = super::trail::of_message(client, &event.message_id, audit::MAX_AUDIT_PAGE).await?;
    let deliveries = audit::timeline_deliveries(&told, deliveries)?;
    Ok(TimelineEvent {
        sender: codec::bureau(get(row, 1)?)?,
        received_at: get(row, 2)?,
        idempotency_key: get(row, 3)?,
        sha256: get(row, 4)?,
        source_message_id: get(row, 5)?,
        event,
        deliveries,
    })
}

pub(super) async fn record_node_report(
    client: &mut Object,
    report: &NodeReport,
) -> Result<(), StoreError> {
    // Bookkeeping a crash may forget (the next report rewrites it): no wait for the disk.
    let tx = relaxed(client).await?;
    let (mut bureaus, mut minutes, mut counts) =
        (Vec::new(), Vec::new(), [const { Vec::new() }; 4]);
    for m in &report.minutes {
        bureaus.push(m.bureau.as_str());
        minutes.push(m.minute);
        for (column, value) in counts
            .iter_mut()
            .zip([m.received, m.delivered, m.failed, m.backlog])
        {
            column.push(codec::sql_count(value));
        }
    }
    let [received, delivered, failed, backlog] = &counts;
    tx.execute(
        "INSERT INTO ops_minutes (node, bureau, minute, received, delivered, failed, backlog)
         SELECT $1, u.bureau, u.minute, u.received, u.delivered, u.failed, u.backlog
         FROM UNNEST($2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
                     $7::bigint[])
              AS u (bureau, minute, received, delivered, failed, backlog)
         ON CONFLICT (node, bureau, minute) DO UPDATE SET
             received = excluded.received, delivered = excluded.delivered,
             failed = excluded.failed, backlog = excluded.backlog",
        &[
            &report.node,
            &bureaus,
            &minutes,
            received,
            delivered,
            failed,
            backlog,
        ],
    )
    .await
    .map_err(pg_err)?;
    let statement = tx
        .prepare_cached(
            "INSERT INTO ops_bureaus
                 (node, bureau, reported_at, last_in, last_out, failing_since, last_error_at,
                  last_error, circuit, cert_not_after, failing_count)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (node, bureau) DO UPDATE SET
                 reported_at = excluded.reported_at, last_in = excluded.last_in,
                 last_out = excluded.last_out, failing_since = excluded.failing_since,
                 failing_count = excluded.failing_count,
                 last_error_at = excluded.last_error_at, last_error = excluded.last_error,
                 circuit = excluded.circuit, cert_not_after = excluded.cert_not_after",
        )
        .await
        .map_err(pg_err)?;
    for bureau in &report.bureaus {
        let (error_at, error) = bureau.last_error.clone().unzip();
        tx.execute(
            &statement,
            &[
                &report.node,
                &bureau.bureau.as_str(),
                &report.at,
                &bureau.last_in,
                &bureau.last_out,
                &bureau.failing_since,
                &error_at,
                &error,
                &bureau.circuit.as_str(),
                &bureau.certificate_not_after,
                &codec::sql_count(bureau.failing_count),
            ],
        )
        .await
        .map_err(pg_err)?;
    }
    tx.execute(
        "DELETE FROM ops_minutes WHERE node = $1 AND minute < $2",
        &[&report.node, &report.keep_since],
    )
    .await
    .map_err(pg_err)?;
    tx.commit().await.map_err(pg_err)
}

pub(super) async fn node_reports(
    client: &Object,
    since: Millis,
    limit: usize,
) -> Result<NodeReports, StoreError> {
    let rows = client
        .query(
            "SELECT node, bureau, minute, received, delivered, failed, backlog
             FROM ops_minutes WHERE minute >= $1 ORDER BY minute DESC LIMIT $2",
            &[&since, &sql_limit(limit)],
        )
        .await
        .map_err(pg_err)?;
    let mut minutes = rows
        .iter()
        .map(|row| {
            Ok((
                get::<String>(row, 0)?,
                MinuteCounts {
                    bureau: codec::bureau(get(row, 1)?)?,
                    minute: get(row, 2)?,
                    received: codec::count(get(row, 3)?)?,
                    delivered: codec::count(get(row, 4)?)?,
                    failed: codec::count(get(row, 5)?)?,
                    backlog: codec::count(get(row, 6)?)?,
                },
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    minutes.reverse();
    let rows = client
        .query(
            "SELECT node, bureau, reported_at, last_in, last_out, failing_since, last_error_at,
                    last_error, circuit, cert_not_after, failing_count
             FROM ops_bureaus WHERE reported_at >= $1 ORDER BY node, bureau LIMIT $2",
            &[&since, &sql_limit(limit)],
        )
        .await
        .map_err(pg_err)?;
    let bureaus = rows
        .iter()
        .map(|row| {
            let error_at: Option<Millis> = get(row, 6)?;
            let error: Option<String> = get(row, 7)?;
            Ok((
                get::<String>(row, 0)?,
                get::<Millis>(row, 2)?,
                BureauState {
                    bureau: codec::bureau(get(row, 1)?)?,
                    last_in: get(row, 3)?,
                    last_out: get(row, 4)?,
                    failing_since: get(row, 5)?,
                    failing_count: codec::count(get(row, 10)?)?,
                    last_error: error_at.zip(error),
                    circuit: CircuitState::parse(get(row, 8)?)?,
                    certificate_not_after: get(row, 9)?,
                },
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(NodeReports { minutes, bureaus })
}

pub(super) async fn shared_secret(
    client: &Object,
    name: &str,
    candidate: &str,
) -> Result<String, StoreError> {
    client
        .execute(
            "INSERT INTO shared_secrets (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO NOTHING",
            &[&name, &candidate],
        )
        .await
        .map_err(pg_err)?;
    let row = client
        .query_one("SELECT value FROM shared_secrets WHERE name = $1", &[&name])
        .await
        .map_err(pg_err)?;
    get(&row, 0)
}

pub(super) async fn backlogs(
    client: &Object,
    subscribers: &[BureauId],
) -> Result<Vec<Backlog>, StoreError> {
    // The partial indexes of pending deliveries (`deliveries_feed`, by subscriber) and of dead
    // letters (`deliveries_dead`) yield their rows without touching the delivered ones.
    let names: Vec<&str> = subscribers.iter().map(|s| s.as_str()).collect();
    let rows = client
        .query(
            "SELECT subscriber, 'pending', COUNT(*), MIN(created_at) FROM deliveries
             WHERE subscriber = ANY ($1) AND state = 'pending'
               AND fetched IS NOT NULL -- always true: names `deliveries_feed`
             GROUP BY subscriber
             UNION ALL
             SELECT subscriber, 'dead', COUNT(*), NULL::bigint FROM deliveries
             WHERE subscriber = ANY ($1) AND state = 'dead'
             GROUP BY subscriber",
            &[&names],
        )
        .await
        .map_err(pg_err)?;
    let mut backlogs: Vec<Backlog> = subscribers
        .iter()
        .map(|&subscriber| Backlog {
            subscriber,
            pending: 0,
            dead: 0,
            oldest_pending: None,
        })
        .collect();
    for row in &rows {
        let subscriber = codec::bureau(get(row, 0)?)?;
        let state: &str = get(row, 1)?;
        let count = codec::count(get(row, 2)?)?;
        let Some(backlog) = backlogs.iter_mut().find(|b| b.subscriber == subscriber) else {
            continue;
        };
        if state == "pending" {
            backlog.pending = count;
            backlog.oldest_pending = get(row, 3)?;
        } else {
            backlog.dead = count;
        }
    }
    Ok(backlogs)
}
