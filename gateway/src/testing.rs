//! Test helpers shared by the crate's own tests and the `tests` crate (feature `testing`):
//! temporary folders and a PostgreSQL schema per test. Nothing of the gateway is used here, so
//! any test may use it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh folder under the system temp dir, removed with everything in it on drop (even when
/// the test fails).
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `gateway-<label>-<pid>-<n>-<random>`.
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gateway-{label}-{}-{}-{:08x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            fastrand::u32(..)
        ));
        if let Err(error) = std::fs::create_dir_all(&dir) {
            panic!("cannot create the test folder {}: {error}", dir.display());
        }
        Self(dir)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The PostgreSQL server of the tests, from `EXCHANGE_TEST_POSTGRES`; `None` when it is not
/// set, after saying on stderr that `suite` was skipped and how to run it. In CI (`CI` set) a
/// missing server fails the test instead: there the suites must run.
pub fn postgres_server(suite: &str) -> Option<String> {
    match std::env::var("EXCHANGE_TEST_POSTGRES") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the {suite}: set EXCHANGE_TEST_POSTGRES=postgres://..."
            );
            // Straight to stderr, past the test harness's capture: a skip must be visible.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {suite}: set EXCHANGE_TEST_POSTGRES=postgres://..."
            );
            None
        }
    }
}

/// A schema of its own on the test server (a store connecting with [`PgSchema::url`] creates
/// it), dropped with everything in it when the guard goes, even when the test fails. Declare it
/// before the gateways and stores that use it, so that it is dropped after them.
#[derive(Debug)]
pub struct PgSchema {
    /// The server's URL.
    pub server: String,
    /// The schema's name.
    pub name: String,
}

impl PgSchema {
    /// A new, unique schema name on `server`.
    pub fn new(server: &str) -> Self {
        Self {
            server: server.to_owned(),
            name: format!("t_{:016x}", fastrand::u64(..)),
        }
    }

    /// The server URL with this schema as the search path.
    pub fn url(&self) -> String {
        self.url_with(&[])
    }

    /// [`Self::url`] with more query parameters (values URL-safe as given).
    pub fn url_with(&self, params: &[(&str, &str)]) -> String {
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

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop may run inside the test's runtime: use a thread with its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let client = pg_admin(&server).await.map_err(|e| e.to_string())?;
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
pub async fn pg_admin(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The plan PostgreSQL makes for `sql` with `params` (`EXPLAIN`), lines joined.
pub async fn pg_explain(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> String {
    client
        .query(&format!("EXPLAIN {sql}"), params)
        .await
        .unwrap_or_else(|e| panic!("EXPLAIN failed: {e:?}"))
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}
