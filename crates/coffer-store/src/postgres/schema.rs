//! Versioned schema of the PostgreSQL store. The version lives in `coffer_meta`; each migration
//! takes the schema from version `i` to `i + 1` in one transaction, under a row lock on the
//! version so that nodes starting together migrate once.
//!
//! Portability (see docs/ARCHITECTURE.md): plain tables of `BIGINT`, `TEXT`, `UUID` and
//! `BYTEA`; times are microseconds since the epoch in `BIGINT`; no triggers, stored functions,
//! advisory locks, `LOCK TABLE` or foreign keys. Two sequences hand out entry numbers and blocks
//! of account numbers. The projector reads transaction ids and snapshots
//! (`pg_current_xact_id`, `pg_current_snapshot`: PostgreSQL 13 or later).

use deadpool_postgres::{GenericClient, Object};

use crate::StoreError;

/// Migrations in order: `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE owners (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    platform_id UUID NOT NULL,
    parent_id UUID,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    default_currency TEXT NOT NULL,
    currency_exponents TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX owners_parent ON owners (parent_id, created_at);

-- Account numbers are unique but, with several nodes, not in creation order (each node takes
-- blocks of them); lists order accounts by (created_at, number).
CREATE TABLE accounts (
    id UUID PRIMARY KEY,
    number BIGINT NOT NULL UNIQUE,
    platform_id UUID NOT NULL,
    owner_id UUID NOT NULL,
    kind TEXT NOT NULL,
    currency TEXT NOT NULL,
    exponent SMALLINT NOT NULL,
    posted BIGINT NOT NULL,
    held BIGINT NOT NULL CHECK (held >= 0),
    incoming BIGINT NOT NULL CHECK (incoming >= 0),
    status TEXT NOT NULL,
    overdraft_limit BIGINT,
    min_balance BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_trade_at BIGINT,
    UNIQUE (owner_id, kind, currency)
);

-- The journal. `seq` comes from entry_seq after the batch has locked its wallets, so along
-- each account seq order is commit order. The unique key on (platform_id, idem_key) is what
-- makes an idempotency key take effect once across nodes.
CREATE TABLE entries (
    seq BIGINT PRIMARY KEY,
    platform_id UUID NOT NULL,
    kind TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    account_nos BYTEA NOT NULL,
    metadata TEXT,
    hold_id UUID,
    incoming_id UUID,
    reverses BIGINT UNIQUE,
    fx TEXT,
    UNIQUE (platform_id, idem_key)
);
CREATE INDEX entries_platform ON entries (platform_id, seq);
CREATE INDEX entries_time ON entries (created_at);

CREATE TABLE lines (
    account_no BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    posted BIGINT NOT NULL,
    held BIGINT NOT NULL,
    incoming BIGINT NOT NULL,
    posted_after BIGINT NOT NULL,
    held_after BIGINT NOT NULL,
    incoming_after BIGINT NOT NULL,
    PRIMARY KEY (account_no, seq)
);

CREATE TABLE holds (
    id UUID PRIMARY KEY,
    platform_id UUID NOT NULL,
    account_id UUID NOT NULL,
    amount BIGINT NOT NULL,
    captured BIGINT NOT NULL,
    status TEXT NOT NULL,
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    created_seq BIGINT NOT NULL,
    closed_at BIGINT,
    closed_seq BIGINT
);
CREATE INDEX holds_open ON holds (account_id, created_seq) WHERE status = 'OPEN';
CREATE INDEX holds_due ON holds (expires_at) WHERE status = 'OPEN';

CREATE TABLE incomings (
    id UUID PRIMARY KEY,
    platform_id UUID NOT NULL,
    account_id UUID NOT NULL,
    amount BIGINT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_seq BIGINT NOT NULL,
    closed_at BIGINT,
    closed_seq BIGINT
);
CREATE INDEX incomings_pending ON incomings (account_id, created_seq) WHERE status = 'PENDING';

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    owner_id UUID NOT NULL,
    platform_id UUID NOT NULL,
    scope TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    public_key TEXT
);

CREATE TABLE nonces (
    scope TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (scope, nonce)
);
CREATE INDEX nonces_expiry ON nonces (expires_at);

CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE rates (
    platform_id UUID NOT NULL,
    base TEXT NOT NULL,
    quote TEXT NOT NULL,
    effective_at BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    rate TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (platform_id, base, quote, effective_at, recorded_at)
);

CREATE SEQUENCE entry_seq;
CREATE SEQUENCE account_number_blocks;
"#,
    r#"
-- Grows in the same transaction as any change to owners or API keys: nodes cache those and
-- read this one row to learn whether their cache is still exact.
CREATE TABLE coffer_directory (singleton BOOLEAN PRIMARY KEY CHECK (singleton), version BIGINT NOT NULL);
INSERT INTO coffer_directory (singleton, version) VALUES (TRUE, 0);
"#,
    // Journal-first: an entry carries its lines (the journal is `entries` alone); the `lines`
    // table becomes derived, written behind the journal by the projector up to
    // `coffer_projection.projected_seq`. Existing entries get their lines from the table, in
    // the order their `account_nos` list gave (8-byte little-endian numbers).
    r#"
ALTER TABLE entries ADD COLUMN lines BYTEA;
UPDATE entries SET lines = x.blob
  FROM (SELECT e.seq, string_agg(int8send(l.account_no) || int8send(l.posted) || int8send(l.held)
               || int8send(l.incoming) || int8send(l.posted_after) || int8send(l.held_after)
               || int8send(l.incoming_after), ''::BYTEA ORDER BY i) AS blob
          FROM entries e
          CROSS JOIN LATERAL generate_series(0, length(e.account_nos) / 8 - 1) AS i
          JOIN lines l ON l.seq = e.seq AND l.account_no = (
                 (get_byte(e.account_nos, i * 8 + 0)::BIGINT << 0)
               | (get_byte(e.account_nos, i * 8 + 1)::BIGINT << 8)
               | (get_byte(e.account_nos, i * 8 + 2)::BIGINT << 16)
               | (get_byte(e.account_nos, i * 8 + 3)::BIGINT << 24)
               | (get_byte(e.account_nos, i * 8 + 4)::BIGINT << 32)
               | (get_byte(e.account_nos, i * 8 + 5)::BIGINT << 40)
               | (get_byte(e.account_nos, i * 8 + 6)::BIGINT << 48)
               | (get_byte(e.account_nos, i * 8 + 7)::BIGINT << 56))
         GROUP BY e.seq) x
 WHERE entries.seq = x.seq;
UPDATE entries SET lines = ''::BYTEA WHERE lines IS NULL;
ALTER TABLE entries ALTER COLUMN lines SET NOT NULL;
ALTER TABLE entries DROP COLUMN account_nos;
CREATE TABLE coffer_projection (singleton BOOLEAN PRIMARY KEY CHECK (singleton), projected_seq BIGINT NOT NULL);
INSERT INTO coffer_projection (singleton, projected_seq) SELECT TRUE, COALESCE(MAX(seq), 0) FROM entries;
"#,
    // Balance alerts (coffer_core::alerts). Rows are never removed: a deleted alert keeps
    // applying to the entries up to its `deleted_seq`. Both positions are entry numbers the
    // alert's transaction takes (after its transaction id), so the settled position cannot pass
    // them before the alert's row is visible.
    r#"
CREATE TABLE alerts (
    id UUID PRIMARY KEY,
    platform_id UUID NOT NULL,
    wallet_id UUID NOT NULL,
    field TEXT NOT NULL,
    direction TEXT NOT NULL,
    threshold BIGINT NOT NULL,
    created_seq BIGINT NOT NULL,
    deleted_seq BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX alerts_platform ON alerts (platform_id, created_seq);
"#,
    // Webhook endpoints: the application's document (configuration and delivery state), with a
    // version every change must name (compare-and-set), which is also how nodes lease delivery.
    r#"
CREATE TABLE webhooks (id UUID PRIMARY KEY, platform_id UUID NOT NULL, body TEXT NOT NULL, version BIGINT NOT NULL);
"#,
    // An index of the entries' metadata (key and value), written with each entry: a search by
    // metadata reads the index, never the journal.
    r#"
CREATE TABLE tags (platform_id UUID NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, seq BIGINT NOT NULL,
    PRIMARY KEY (platform_id, key, value, seq));
INSERT INTO tags (platform_id, key, value, seq)
    SELECT e.platform_id, j.key, j.value, e.seq FROM entries e, jsonb_each_text(e.metadata::jsonb) j
    WHERE e.metadata IS NOT NULL;
"#,
    // Status changes (owners, wallets, webhook endpoints), each at an entry number of its own
    // that no entry has, taken in the transaction that made the change.
    r#"
CREATE TABLE status_changes (seq BIGINT PRIMARY KEY, platform_id UUID NOT NULL, owner_id UUID NOT NULL,
    subject_kind TEXT NOT NULL, subject_id UUID NOT NULL, from_status TEXT NOT NULL, to_status TEXT NOT NULL,
    reason TEXT, created_at BIGINT NOT NULL);
CREATE INDEX status_changes_platform ON status_changes (platform_id, seq);
"#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How many account numbers a node takes from `account_number_blocks` at a time.
pub const ACCOUNT_BLOCK: u64 = 1024;

fn open_err(e: tokio_postgres::Error) -> StoreError {
    StoreError::Open(format!("cannot prepare the database: {e}"))
}

/// The schema version of the database (0 for an empty one), refusing a database this build
/// cannot use: one written by a newer Coffer, or one whose tables are not Coffer's.
pub async fn check_readable(c: &impl GenericClient) -> Result<i64, StoreError> {
    let has_meta = c
        .query_opt("SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'coffer_meta'", &[])
        .await
        .map_err(open_err)?
        .is_some();
    if !has_meta {
        let foreign = c
            .query_opt(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()
                 AND table_name IN ('owners', 'accounts', 'entries', 'lines') LIMIT 1",
                &[],
            )
            .await
            .map_err(open_err)?;
        if let Some(r) = foreign {
            let t: String = r.get(0);
            return Err(StoreError::Open(format!(
                "the database schema has a table {t:?} but no coffer_meta: not a Coffer ledger"
            )));
        }
        return Ok(0);
    }
    let v: Option<String> = c
        .query_opt("SELECT value FROM coffer_meta WHERE key = 'schema_version'", &[])
        .await
        .map_err(open_err)?
        .map(|r| r.get(0));
    let v: i64 =
        v.unwrap_or_else(|| "0".into()).parse().map_err(|_| StoreError::Open("unreadable schema version".into()))?;
    if v > SCHEMA_VERSION {
        return Err(StoreError::Open(format!(
            "the data was written by a newer Coffer (schema version {v}; this build knows up to {SCHEMA_VERSION}): upgrade Coffer"
        )));
    }
    Ok(v)
}

/// Bring the schema to [`SCHEMA_VERSION`], one transaction per migration. Safe to run from
/// several nodes at once: each migration runs under a lock on the version row and re-reads it.
pub async fn migrate(c: &mut Object) -> Result<i64, StoreError> {
    check_readable(&*c).await?;
    // Two nodes creating the table at once may collide in the catalogue: try again.
    for attempt in 0..3 {
        let r = c
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS coffer_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 INSERT INTO coffer_meta (key, value) VALUES ('application', 'coffer'), ('schema_version', '0')
                 ON CONFLICT (key) DO NOTHING;",
            )
            .await;
        match r {
            Ok(()) => break,
            Err(e) if attempt < 2 => tracing::debug!(error = %e, "creating coffer_meta raced; retrying"),
            Err(e) => return Err(open_err(e)),
        }
    }
    loop {
        let tx = c.transaction().await.map_err(open_err)?;
        // A migration takes as long as its tables need (and waits for another node's).
        tx.batch_execute("SET LOCAL statement_timeout = 0").await.map_err(open_err)?;
        let v: String = tx
            .query_one("SELECT value FROM coffer_meta WHERE key = 'schema_version' FOR UPDATE", &[])
            .await
            .map_err(open_err)?
            .get(0);
        let v: i64 = v.parse().map_err(|_| StoreError::Open("unreadable schema version".into()))?;
        if v > SCHEMA_VERSION {
            return Err(StoreError::Open(format!(
                "the data was written by a newer Coffer (schema version {v}; this build knows up to {SCHEMA_VERSION}): upgrade Coffer"
            )));
        }
        if v == SCHEMA_VERSION {
            tx.commit().await.map_err(open_err)?;
            return Ok(v);
        }
        tx.batch_execute(MIGRATIONS[v as usize]).await.map_err(open_err)?;
        tx.execute("UPDATE coffer_meta SET value = $1 WHERE key = 'schema_version'", &[&(v + 1).to_string()])
            .await
            .map_err(open_err)?;
        tx.commit().await.map_err(open_err)?;
        tracing::info!(version = v + 1, "applied schema migration");
    }
}
