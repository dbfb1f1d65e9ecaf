//! What every query module of the PostgreSQL store shares: the one mapping of a driver error to
//! a [`StoreError`] (by SQLSTATE, never by message text), and transactions whose commit does not
//! wait for the disk.

use deadpool_postgres::{Object, PoolError, Transaction};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::tls;
use crate::store::StoreError;

/// Opens a transaction whose commit does not wait for the disk: delivery bookkeeping, which a
/// crash may forget (one more delivery, at-least-once).
pub(super) async fn relaxed(client: &mut Object) -> Result<Transaction<'_>, StoreError> {
    let tx = client.transaction().await.map_err(pg_err)?;
    tx.batch_execute("SET LOCAL synchronous_commit = off")
        .await
        .map_err(pg_err)?;
    Ok(tx)
}

/// Maps a PostgreSQL error by its SQLSTATE: whatever may pass (connection exceptions, the
/// server out of resources or shutting down, lock and serialization conflicts, a read-only
/// standby) is `Unavailable`; any other server error (constraint violations and the like) is
/// `Corrupt`. An error without a SQLSTATE is a client-side one: a value that did not convert
/// (it carries the conversion error as its source) is `Corrupt`; the rest — I/O, a closed
/// connection, a timeout, the protocol — is about reaching the server, so `Unavailable`.
pub(super) fn pg_err(e: tokio_postgres::Error) -> StoreError {
    let Some(code) = e.code() else {
        if tls::is_refused_handshake(&e) {
            return StoreError::unavailable_from(
                "PostgreSQL TLS: the server's certificate was refused (is sslrootcert the CA \
                 that signed it, and does it name the host of the URL?)",
                e,
            );
        }
        let conversion = std::error::Error::source(&e)
            .is_some_and(|source| !source.is::<std::io::Error>())
            && !e.is_closed();
        return if conversion {
            StoreError::corrupt_from("PostgreSQL value conversion", e)
        } else {
            StoreError::unavailable_from("PostgreSQL connection", e)
        };
    };
    let class = &code.code()[..2];
    let retryable = matches!(class, "08" | "53" | "57" | "58" | "40")
        || *code == SqlState::LOCK_NOT_AVAILABLE
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION
        || *code == SqlState::CANNOT_CONNECT_NOW;
    let context = format!("PostgreSQL {}", code.code());
    if retryable {
        StoreError::unavailable_from(context, e)
    } else {
        StoreError::corrupt_from(context, e)
    }
}

pub(super) fn pool_err(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => match pg_err(e) {
            // A connection could not be made: whatever the server said, try later.
            StoreError::Corrupt { context, source } => StoreError::Unavailable { context, source },
            other => other,
        },
        other => StoreError::unavailable_from("no database connection", other),
    }
}

pub(super) fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    index: usize,
) -> Result<T, StoreError> {
    row.try_get(index)
        .map_err(|e| StoreError::corrupt_from(format!("unreadable column {index}"), e))
}
