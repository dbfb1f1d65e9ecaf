//! The bench's scratch stores: a PostgreSQL schema of its own per run, dropped afterwards.

/// Drops a bench's PostgreSQL schema (best effort: a plain connection, as `psql` would).
pub(super) async fn drop_schema(url: &str, schema: &str) {
    let base = url.split('?').next().unwrap_or(url);
    match tokio_postgres::connect(base, tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            if let Err(error) = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .await
            {
                tracing::warn!(message = "cannot drop the bench schema", %error);
            }
        }
        Err(error) => tracing::warn!(message = "cannot drop the bench schema", %error),
    }
}
