//! What every query module of the SQLite store shares: the one mapping of a driver error to a
//! [`StoreError`] (by SQLite's error code, never by message text).

use rusqlite::ErrorCode;

use crate::store::StoreError;

/// Maps a SQLite error: whatever may pass (busy, I/O, full disk ...) is `Unavailable`; the rest
/// (constraint violations, corrupt files, unreadable values) is `Corrupt`.
pub(super) fn db_err(e: rusqlite::Error) -> StoreError {
    let retryable = match &e {
        rusqlite::Error::SqliteFailure(failure, _) => matches!(
            failure.code,
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
                | ErrorCode::CannotOpen
                | ErrorCode::OutOfMemory
                | ErrorCode::ReadOnly
                | ErrorCode::FileLockingProtocolFailed
                | ErrorCode::PermissionDenied
                | ErrorCode::OperationInterrupted
                | ErrorCode::SchemaChanged
        ),
        _ => false,
    };
    if retryable {
        StoreError::unavailable_from("SQLite", e)
    } else {
        StoreError::corrupt_from("SQLite", e)
    }
}
