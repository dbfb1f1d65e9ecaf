//! The PostgreSQL server of the tests (`EXCHANGE_TEST_POSTGRES`) and a schema of its own for
//! each test.

use std::io::Write as _;

// Each test binary uses its own part of the support module.
#[allow(unused_imports)]
pub(crate) use gateway::testing::{PgSchema as Schema, pg_admin as admin};

/// The server the tests use, from `EXCHANGE_TEST_POSTGRES`; `None` (after saying so) when it is
/// not set, except in CI, where it must be.
pub(crate) fn server() -> Option<String> {
    gateway::testing::postgres_server("PostgreSQL system tests")
}

/// The CA file that signed the test server's TLS certificate, from
/// `EXCHANGE_TEST_POSTGRES_TLS_CA` (the server must then accept TLS with a certificate for
/// `127.0.0.1` and `localhost` signed by it); `None` (after saying so) when it is not set,
/// except in CI, where it must be.
pub(crate) fn tls_ca() -> Option<std::path::PathBuf> {
    match std::env::var_os("EXCHANGE_TEST_POSTGRES_TLS_CA") {
        Some(path) if !path.is_empty() => Some(path.into()),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the PostgreSQL TLS tests: set up the server's certificate and \
                 EXCHANGE_TEST_POSTGRES_TLS_CA=/path/to/its/ca.pem"
            );
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: PostgreSQL TLS tests: give the server a certificate and set \
                 EXCHANGE_TEST_POSTGRES_TLS_CA=/path/to/its/ca.pem"
            );
            None
        }
    }
}

/// Whether every connection to the server named `application_name` is TLS, and how many
/// there are.
pub(crate) async fn tls_of(server: &str, application_name: &str) -> (bool, i64) {
    let client = admin(server).await.expect("an admin connection");
    let row = client
        .query_one(
            "SELECT COALESCE(bool_and(s.ssl), false), COUNT(*)
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
             WHERE a.application_name = $1",
            &[&application_name],
        )
        .await
        .expect("pg_stat_ssl");
    (row.get(0), row.get(1))
}
