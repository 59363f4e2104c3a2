//! Versioned schema of the SQLite store. The version lives in `PRAGMA user_version`; each
//! migration takes the schema from version `i` to `i + 1` and runs in one transaction.

use rusqlite::Connection;

use crate::StoreError;

/// Migrations in order: `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
INSERT INTO meta (key, value) VALUES ('application', 'coffer');

CREATE TABLE owners (
    id BLOB PRIMARY KEY,
    kind TEXT NOT NULL,
    platform_id BLOB NOT NULL,
    parent_id BLOB,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    default_currency TEXT NOT NULL,
    currency_exponents TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE accounts (
    id BLOB PRIMARY KEY,
    number INTEGER NOT NULL UNIQUE,
    platform_id BLOB NOT NULL,
    owner_id BLOB NOT NULL,
    kind TEXT NOT NULL,
    currency TEXT NOT NULL,
    exponent INTEGER NOT NULL,
    posted INTEGER NOT NULL,
    held INTEGER NOT NULL,
    incoming INTEGER NOT NULL,
    status TEXT NOT NULL,
    overdraft_limit INTEGER,
    min_balance INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    last_trade_at INTEGER,
    UNIQUE (owner_id, kind, currency)
) STRICT;

-- The journal. `seq` is the total order and the entry id; `created_at` never decreases along
-- it, so the entry at an instant is found by binary search on seq, without an index on time.
-- `accounts` lists the account numbers of the entry's lines, in order (8 bytes little-endian
-- each). Idempotency keys are found through a 64-bit hash of (platform, key); the single
-- writer keeps them unique and `coffer verify` checks it.
CREATE TABLE entries (
    seq INTEGER PRIMARY KEY,
    platform_id BLOB NOT NULL,
    kind TEXT NOT NULL,
    idem_hash INTEGER NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    accounts BLOB NOT NULL,
    metadata TEXT,
    hold_id BLOB,
    incoming_id BLOB,
    reverses INTEGER,
    fx TEXT
) STRICT;
CREATE INDEX entries_idem ON entries (idem_hash);
CREATE INDEX entries_platform ON entries (platform_id, seq);
CREATE UNIQUE INDEX entries_reverses ON entries (reverses) WHERE reverses IS NOT NULL;

-- Each account's journal: one row per entry that touched it, clustered by account, with the
-- deltas and the balances after the entry (the running balance).
CREATE TABLE lines (
    account_no INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    posted INTEGER NOT NULL,
    held INTEGER NOT NULL,
    incoming INTEGER NOT NULL,
    posted_after INTEGER NOT NULL,
    held_after INTEGER NOT NULL,
    incoming_after INTEGER NOT NULL,
    PRIMARY KEY (account_no, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE holds (
    id BLOB PRIMARY KEY,
    platform_id BLOB NOT NULL,
    account_id BLOB NOT NULL,
    amount INTEGER NOT NULL,
    captured INTEGER NOT NULL,
    status TEXT NOT NULL,
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    created_seq INTEGER NOT NULL,
    closed_at INTEGER,
    closed_seq INTEGER
) STRICT;
CREATE INDEX holds_open ON holds (account_id, created_seq) WHERE status = 'OPEN';

CREATE TABLE incomings (
    id BLOB PRIMARY KEY,
    platform_id BLOB NOT NULL,
    account_id BLOB NOT NULL,
    amount INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_seq INTEGER NOT NULL,
    closed_at INTEGER,
    closed_seq INTEGER
) STRICT;
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    owner_id BLOB NOT NULL,
    platform_id BLOB NOT NULL,
    scope TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;

CREATE INDEX incomings_pending ON incomings (account_id, created_seq) WHERE status = 'PENDING';
"#,
    r#"
-- v2: provider dialects. A credential may carry the RSA public key its requests are signed
-- with; request ids (nonces) are remembered until their replay window has passed.
ALTER TABLE api_keys ADD COLUMN public_key TEXT;
CREATE TABLE nonces (
    scope TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (scope, nonce)
) STRICT, WITHOUT ROWID;
CREATE INDEX nonces_expiry ON nonces (expires_at);
"#,
    r#"
-- v3: exchange rates per platform, never overwritten: a pair's rate at an instant is the one
-- with the latest effective_at among those recorded by then.
CREATE TABLE rates (
    platform_id BLOB NOT NULL,
    base TEXT NOT NULL,
    quote TEXT NOT NULL,
    effective_at INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    rate TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (platform_id, base, quote, effective_at, recorded_at)
) STRICT, WITHOUT ROWID;
"#,
    r#"
-- v4: journal-first. A commit appends entries, each carrying its lines (`lines`: per line the
-- account number, the three deltas and the three balances after, 7 x 8 bytes little-endian);
-- nothing else of a transfer is written in the commit. The derived state (each account's
-- `lines`, the idempotency index `idem`, the balances and last trade time in `accounts`) is
-- brought up to the journal by the writer's checkpoint, in one transaction that also records
-- `checkpoint_seq`: derived rows cover exactly the entries with seq <= checkpoint_seq. Entries
-- written before v4 have no `lines` (theirs are in the `lines` table, all checkpointed).
ALTER TABLE entries ADD COLUMN lines BLOB;
DROP INDEX entries_idem;
CREATE TABLE idem (hash INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (hash, seq)) STRICT, WITHOUT ROWID;
INSERT INTO idem (hash, seq) SELECT idem_hash, seq FROM entries ORDER BY idem_hash, seq;
INSERT INTO meta (key, value) SELECT 'checkpoint_seq', CAST(COALESCE(MAX(seq), 0) AS TEXT) FROM entries;
"#,
    r#"
-- v5: balance alerts (coffer_core::alerts). Rows are never removed: a deleted alert keeps
-- applying to the entries up to its `deleted_seq`, so the events derived from them stay the same.
CREATE TABLE alerts (
    id BLOB PRIMARY KEY,
    platform_id BLOB NOT NULL,
    wallet_id BLOB NOT NULL,
    field TEXT NOT NULL,
    direction TEXT NOT NULL,
    threshold INTEGER NOT NULL,
    created_seq INTEGER NOT NULL,
    deleted_seq INTEGER,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX alerts_platform ON alerts (platform_id, created_seq);
"#,
    r#"
-- v6: webhook endpoints: the application's document (configuration and delivery state), with a
-- version every change must name (compare-and-set).
CREATE TABLE webhooks (id BLOB PRIMARY KEY, platform_id BLOB NOT NULL, body TEXT NOT NULL, version INTEGER NOT NULL) STRICT;
"#,
    r#"
-- v7: an index of the entries' metadata (key and value), written with each entry: a search by
-- metadata (an external reference, an order id) reads the index, never the journal.
CREATE TABLE tags (platform_id BLOB NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (platform_id, key, value, seq)) STRICT, WITHOUT ROWID;
INSERT INTO tags (platform_id, key, value, seq)
    SELECT e.platform_id, j.key, j.value, e.seq FROM entries e, json_each(e.metadata) j WHERE e.metadata IS NOT NULL;
"#,
    r#"
-- v8: status changes (owners, wallets, webhook endpoints), each at a journal number of its own
-- that no entry has, written in the commit that made the change.
CREATE TABLE status_changes (seq INTEGER PRIMARY KEY, platform_id BLOB NOT NULL, owner_id BLOB NOT NULL,
    subject_kind TEXT NOT NULL, subject_id BLOB NOT NULL, from_status TEXT NOT NULL, to_status TEXT NOT NULL,
    reason TEXT, created_at INTEGER NOT NULL) STRICT;
CREATE INDEX status_changes_platform ON status_changes (platform_id, seq);
"#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub fn version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Refuse a database this build cannot read: one from a newer Coffer, or one that is not
/// Coffer's at all.
pub fn check_readable(conn: &Connection) -> Result<i64, StoreError> {
    let v = version(conn)?;
    if v > SCHEMA_VERSION {
        return Err(StoreError::Open(format!(
            "the data was written by a newer Coffer (schema version {v}; this build knows up to {SCHEMA_VERSION}): upgrade Coffer"
        )));
    }
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0))?;
    if v == 0 && tables > 0 {
        return Err(StoreError::Open(
            "the database is not a Coffer ledger (it has tables but no Coffer schema version)".into(),
        ));
    }
    if v > 0 {
        let app: Option<String> =
            conn.query_row("SELECT value FROM meta WHERE key = 'application'", [], |r| r.get(0)).ok();
        if app.as_deref() != Some("coffer") {
            return Err(StoreError::Open("the database is not a Coffer ledger".into()));
        }
    }
    Ok(v)
}

/// Bring the schema to [`SCHEMA_VERSION`], one transaction per migration.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let mut v = check_readable(conn)?;
    while v < SCHEMA_VERSION {
        let tx = conn.transaction()?;
        tx.execute_batch(MIGRATIONS[v as usize])?;
        tx.pragma_update(None, "user_version", v + 1)?;
        tx.commit()?;
        v += 1;
        tracing::info!(version = v, "applied schema migration");
    }
    Ok(())
}
