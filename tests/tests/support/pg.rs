//! The PostgreSQL server of the tests (`EXCHANGE_TEST_POSTGRES`) and a schema of its own for
//! each test.

use std::io::Write as _;

use tokio_postgres::NoTls;

/// The server the tests use, from `EXCHANGE_TEST_POSTGRES`; `None` (after saying so) when it is
/// not set, except in CI, where it must be.
pub(crate) fn server() -> Option<String> {
    match std::env::var("EXCHANGE_TEST_POSTGRES") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the PostgreSQL system tests: set \
                 EXCHANGE_TEST_POSTGRES=postgres://..."
            );
            // Straight to stderr, past the test harness's capture: a skip must be visible.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: PostgreSQL system tests: set EXCHANGE_TEST_POSTGRES=postgres://..."
            );
            None
        }
    }
}

/// A schema of its own on the test server (the gateway's store creates it), dropped with
/// everything in it when the guard goes, even when the test fails. Declare it before the
/// gateways and stores that use it, so that it is dropped after them.
pub(crate) struct Schema {
    pub(crate) server: String,
    pub(crate) name: String,
}

impl Schema {
    pub(crate) fn new(server: &str) -> Self {
        Self {
            server: server.to_owned(),
            name: format!("t_{:016x}", fastrand::u64(..)),
        }
    }

    /// The server URL with this schema as the search path.
    pub(crate) fn url(&self) -> String {
        self.url_with(&[])
    }

    /// [`Self::url`] with more query parameters (values URL-safe as given).
    pub(crate) fn url_with(&self, params: &[(&str, &str)]) -> String {
        let separator = if self.server.contains('?') { '&' } else { '?' };
        let mut url = format!(
            "{}{separator}options=-c%20search_path%3D{}",
            self.server, self.name
        );
        for (name, value) in params {
            url.push_str(&format!("&{name}={value}"));
        }
        url
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop may run inside the test's runtime: use a thread with its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let client = admin(&server).await.map_err(|e| e.to_string())?;
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test schema {}: {dropped:?}", self.name);
        }
    }
}

/// A plain connection to `url`, outside any store.
pub(crate) async fn admin(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
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
