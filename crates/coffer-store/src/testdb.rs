//! Throwaway PostgreSQL schemas for tests (and `coffer bench`): each gets its own schema in the
//! database, created on demand and dropped when the handle is dropped.
//!
//! The server is `COFFER_TEST_POSTGRES` (a libpq-style connection string), by default
//! `host=127.0.0.1 port=5432 user=postgres dbname=test`. When it cannot be reached, tests skip
//! with a message on stderr, unless `COFFER_REQUIRE_POSTGRES=1` (set by CI), which makes a
//! missing server fail them.

use std::sync::atomic::{AtomicU64, Ordering};

const DEFAULT: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

pub struct TestDatabase {
    base: String,
    schema: String,
}

fn base() -> String {
    std::env::var("COFFER_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT.to_string())
}

fn required() -> bool {
    std::env::var("COFFER_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

impl TestDatabase {
    /// A new empty schema, or `None` (after saying so on stderr) when no server is reachable
    /// and it is not required.
    pub async fn create(label: &str) -> Option<TestDatabase> {
        let base = base();
        match Self::create_in(&base, "coffer_test", label).await {
            Ok(db) => Some(db),
            Err(e) if required() => panic!("PostgreSQL is required (COFFER_REQUIRE_POSTGRES=1) but unusable: {e}"),
            Err(e) => {
                eprintln!("SKIPPED: PostgreSQL tests ({label}): no server at {base:?}: {e}");
                None
            }
        }
    }

    /// A new empty schema `<prefix>_<label>_<pid>_<n>` in the database at `base` (a
    /// connection string or URL); `coffer bench --database` measures in one.
    pub async fn create_in(base: &str, prefix: &str, label: &str) -> Result<TestDatabase, tokio_postgres::Error> {
        static N: AtomicU64 = AtomicU64::new(0);
        let schema = format!(
            "{prefix}_{}_{}_{}",
            label.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(24).collect::<String>(),
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
        .to_ascii_lowercase();
        run(base, &format!("CREATE SCHEMA {schema}")).await?;
        Ok(TestDatabase { base: base.to_string(), schema })
    }

    /// The connection string of this schema (for `PgStore::open` or `coffer --database`).
    pub fn url(&self) -> String {
        with_schema(&self.base, &self.schema)
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }
}

/// `base` with its search path set to `schema`, in whichever form `base` is written.
pub fn with_schema(base: &str, schema: &str) -> String {
    if base.starts_with("postgres://") || base.starts_with("postgresql://") {
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options=-c%20search_path%3D{schema}")
    } else {
        format!("{base} options='-c search_path={schema}'")
    }
}

async fn run(base: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls).await?;
    let task = tokio::spawn(conn);
    let r = client.batch_execute(sql).await;
    drop(client);
    let _ = task.await;
    r
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // A failed test may leave a connection holding locks in the schema: give up after a
        // while (the schema stays behind, named in the message) rather than wait forever.
        let (base, sql) =
            (self.base.clone(), format!("SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        // Drop may run inside or outside a runtime: do it on a thread of its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(run(&base, &sql))
        })
        .join();
        if let Ok(Err(e)) = done {
            eprintln!("could not drop test schema {}: {}", self.schema, crate::StoreError::from(e));
        }
    }
}
