//! Mapping between the core's plain data and PostgreSQL rows, and the queries the store runs.
//! Functions take a [`GenericClient`] so that they run alike on a pooled connection and inside
//! the writer's transaction.

use std::str::FromStr;

use coffer_core::ledger::{Changes, IdemRecord};
use coffer_core::*;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::codec::Order;
use crate::cols::*;
use crate::StoreError;

pub(super) type Res<T> = Result<T, StoreError>;

fn bad(col: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Storage(format!("unreadable column {col}: {e}"))
}
pub(super) fn get<'a, T: tokio_postgres::types::FromSql<'a>>(r: &'a Row, i: usize) -> Res<T> {
    r.try_get(i).map_err(|e| bad(r.columns()[i].name(), e))
}
pub(super) fn parse<T: FromStr>(r: &Row, i: usize) -> Res<T>
where
    T::Err: std::fmt::Display,
{
    let s: &str = get(r, i)?;
    s.parse().map_err(|e| bad(r.columns()[i].name(), e))
}
pub(super) fn ts(r: &Row, i: usize) -> Res<Timestamp> {
    get(r, i).map(Timestamp)
}
fn opt_ts(r: &Row, i: usize) -> Res<Option<Timestamp>> {
    get::<Option<i64>>(r, i).map(|o| o.map(Timestamp))
}
pub(super) fn u64_at(r: &Row, i: usize) -> Res<u64> {
    get::<i64>(r, i).map(|v| v as u64)
}
pub(super) fn json<T: serde::de::DeserializeOwned>(r: &Row, i: usize) -> Res<Option<T>> {
    match get::<Option<&str>>(r, i)? {
        Some(s) => serde_json::from_str(s).map(Some).map_err(|e| bad(r.columns()[i].name(), e)),
        None => Ok(None),
    }
}

pub fn owner_row(r: &Row) -> Res<Owner> {
    Ok(Owner {
        id: OwnerId(get(r, 0)?),
        kind: parse(r, 1)?,
        platform: OwnerId(get(r, 2)?),
        parent: get::<Option<Uuid>>(r, 3)?.map(OwnerId),
        name: get(r, 4)?,
        status: parse(r, 5)?,
        default_currency: parse(r, 6)?,
        currency_exponents: json(r, 7)?.unwrap_or_default(),
        created_at: ts(r, 8)?,
        updated_at: ts(r, 9)?,
    })
}

pub fn account_row(r: &Row) -> Res<Account> {
    Ok(Account {
        id: AccountId(get(r, 0)?),
        number: u64_at(r, 1)?,
        platform: OwnerId(get(r, 2)?),
        owner: OwnerId(get(r, 3)?),
        kind: parse(r, 4)?,
        currency: parse(r, 5)?,
        exponent: get::<i16>(r, 6)? as u8,
        posted: get(r, 7)?,
        held: get(r, 8)?,
        incoming: get(r, 9)?,
        status: parse(r, 10)?,
        overdraft_limit: get(r, 11)?,
        min_balance: get(r, 12)?,
        created_at: ts(r, 13)?,
        last_trade_at: opt_ts(r, 14)?,
    })
}

pub fn hold_row(r: &Row) -> Res<Hold> {
    Ok(Hold {
        id: HoldId(get(r, 0)?),
        platform: OwnerId(get(r, 1)?),
        account: AccountId(get(r, 2)?),
        amount: get(r, 3)?,
        captured: get(r, 4)?,
        status: parse(r, 5)?,
        expires_at: opt_ts(r, 6)?,
        created_at: ts(r, 7)?,
        created_seq: u64_at(r, 8)?,
        closed_at: opt_ts(r, 9)?,
        closed_seq: get::<Option<i64>>(r, 10)?.map(|v| v as u64),
    })
}

pub fn incoming_row(r: &Row) -> Res<Incoming> {
    Ok(Incoming {
        id: IncomingId(get(r, 0)?),
        platform: OwnerId(get(r, 1)?),
        account: AccountId(get(r, 2)?),
        amount: get(r, 3)?,
        status: parse(r, 4)?,
        created_at: ts(r, 5)?,
        created_seq: u64_at(r, 6)?,
        closed_at: opt_ts(r, 7)?,
        closed_seq: get::<Option<i64>>(r, 8)?.map(|v| v as u64),
    })
}

pub fn key_row(r: &Row) -> Res<ApiKey> {
    Ok(ApiKey {
        id: get(r, 0)?,
        owner: OwnerId(get(r, 1)?),
        platform: OwnerId(get(r, 2)?),
        scope: parse(r, 3)?,
        secret_hash: get(r, 4)?,
        status: parse(r, 5)?,
        created_at: ts(r, 6)?,
        revoked_at: opt_ts(r, 7)?,
        public_key: get(r, 8)?,
    })
}

fn all<T>(rows: Vec<Row>, f: fn(&Row) -> Res<T>) -> Res<Vec<T>> {
    rows.iter().map(f).collect()
}

// Rows by id: `id IN (SELECT unnest(..))` is a semi-join (one index probe per id), where
// `id = ANY(..)` rechecks every row found against the whole array (quadratic in the batch: it
// was 8% of the server's time at 60 transfers per batch).
fn sql_owners_by_id() -> String {
    format!("SELECT {OWNER_COLS} FROM owners WHERE id IN (SELECT unnest($1::uuid[]))")
}
fn sql_accounts_by_id() -> String {
    format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id IN (SELECT unnest($1::uuid[]))")
}
fn sql_holds_by_id() -> String {
    format!("SELECT {HOLD_COLS} FROM holds WHERE id IN (SELECT unnest($1::uuid[]))")
}
fn sql_incomings_by_id() -> String {
    format!("SELECT {INCOMING_COLS} FROM incomings WHERE id IN (SELECT unnest($1::uuid[]))")
}
fn sql_keys_by_id() -> String {
    format!("SELECT {KEY_COLS} FROM api_keys WHERE id IN (SELECT unnest($1::text[]))")
}
const SQL_IDEMPOTENCY: &str = "SELECT platform_id, idem_key, seq, request_hash FROM entries
    WHERE (platform_id, idem_key) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))";

pub async fn owners_by_id(c: &impl GenericClient, ids: &[Uuid]) -> Res<Vec<Owner>> {
    let st = c.prepare_cached(&sql_owners_by_id()).await?;
    all(c.query(&st, &[&ids]).await?, owner_row)
}

pub async fn owner(c: &impl GenericClient, id: OwnerId) -> Res<Option<Owner>> {
    Ok(owners_by_id(c, &[id.0]).await?.pop())
}

pub async fn children(c: &impl GenericClient, parent: OwnerId) -> Res<Vec<Owner>> {
    let st = c
        .prepare_cached(&format!("SELECT {OWNER_COLS} FROM owners WHERE parent_id = $1 ORDER BY created_at, id"))
        .await?;
    all(c.query(&st, &[&parent.0]).await?, owner_row)
}

pub async fn platforms(c: &impl GenericClient) -> Res<Vec<Owner>> {
    let st = c
        .prepare_cached(&format!("SELECT {OWNER_COLS} FROM owners WHERE kind = 'PLATFORM' ORDER BY created_at, id"))
        .await?;
    all(c.query(&st, &[]).await?, owner_row)
}

pub async fn accounts_by_id(c: &impl GenericClient, ids: &[Uuid]) -> Res<Vec<Account>> {
    let st = c.prepare_cached(&sql_accounts_by_id()).await?;
    all(c.query(&st, &[&ids]).await?, account_row)
}

/// Accounts by (owner, kind, currency), those that exist.
pub async fn accounts_by_key(
    c: &impl GenericClient,
    keys: &[(OwnerId, AccountKind, CurrencyCode)],
) -> Res<Vec<Account>> {
    let owners: Vec<Uuid> = keys.iter().map(|k| k.0 .0).collect();
    let kinds: Vec<String> = keys.iter().map(|k| k.1.as_string()).collect();
    let currencies: Vec<&str> = keys.iter().map(|k| k.2.as_str()).collect();
    let st = c
        .prepare_cached(&format!(
            "SELECT {ACCOUNT_COLS} FROM accounts WHERE (owner_id, kind, currency) IN
               (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]))"
        ))
        .await?;
    all(c.query(&st, &[&owners, &kinds, &currencies]).await?, account_row)
}

pub async fn accounts_of(c: &impl GenericClient, owner: OwnerId) -> Res<Vec<Account>> {
    let st = c
        .prepare_cached(&format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE owner_id = $1 ORDER BY created_at, number"))
        .await?;
    all(c.query(&st, &[&owner.0]).await?, account_row)
}

pub async fn holds_by_id(c: &impl GenericClient, ids: &[Uuid]) -> Res<Vec<Hold>> {
    let st = c.prepare_cached(&sql_holds_by_id()).await?;
    all(c.query(&st, &[&ids]).await?, hold_row)
}

pub async fn open_holds(c: &impl GenericClient, account: AccountId) -> Res<Vec<Hold>> {
    let st = c
        .prepare_cached(&format!(
            "SELECT {HOLD_COLS} FROM holds WHERE status = 'OPEN' AND account_id = $1 ORDER BY created_seq"
        ))
        .await?;
    all(c.query(&st, &[&account.0]).await?, hold_row)
}

/// Open holds whose deadline is at or before `now`, as (platform, hold), earliest first.
pub async fn due_holds(c: &impl GenericClient, now: Timestamp, max: i64) -> Res<Vec<(OwnerId, HoldId)>> {
    let st = c
        .prepare_cached(
            "SELECT platform_id, id FROM holds WHERE status = 'OPEN' AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
        )
        .await?;
    c.query(&st, &[&now.0, &max]).await?.iter().map(|r| Ok((OwnerId(get(r, 0)?), HoldId(get(r, 1)?)))).collect()
}

/// The earliest deadline of an open hold.
pub async fn next_deadline(c: &impl GenericClient) -> Res<Option<Timestamp>> {
    let st = c.prepare_cached("SELECT min(expires_at) FROM holds WHERE status = 'OPEN'").await?;
    Ok(get::<Option<i64>>(&c.query_one(&st, &[]).await?, 0)?.map(Timestamp))
}

pub async fn pending_incomings(c: &impl GenericClient, account: AccountId) -> Res<Vec<Incoming>> {
    let st = c
        .prepare_cached(&format!(
            "SELECT {INCOMING_COLS} FROM incomings WHERE status = 'PENDING' AND account_id = $1 ORDER BY created_seq"
        ))
        .await?;
    all(c.query(&st, &[&account.0]).await?, incoming_row)
}

pub async fn incomings_by_id(c: &impl GenericClient, ids: &[Uuid]) -> Res<Vec<Incoming>> {
    let st = c.prepare_cached(&sql_incomings_by_id()).await?;
    all(c.query(&st, &[&ids]).await?, incoming_row)
}

pub async fn keys_by_id(c: &impl GenericClient, ids: &[String]) -> Res<Vec<ApiKey>> {
    let st = c.prepare_cached(&sql_keys_by_id()).await?;
    all(c.query(&st, &[&ids]).await?, key_row)
}

fn idem_row(r: &Row) -> Res<((OwnerId, String), IdemRecord)> {
    Ok(((OwnerId(get(r, 0)?), get::<String>(r, 1)?), IdemRecord { seq: u64_at(r, 2)?, request_hash: get(r, 3)? }))
}

/// What a batch locks and reads under its locks (see [`lock_and_read`]).
#[derive(Default)]
pub struct Wanted {
    /// API keys the batch changes.
    pub keys: Vec<String>,
    /// Owners whose status the batch changes.
    pub lock_owners: Vec<Uuid>,
    /// Every wallet the batch names.
    pub accounts: Vec<Uuid>,
    pub owners: Vec<Uuid>,
    pub holds: Vec<Uuid>,
    pub incomings: Vec<Uuid>,
    pub idempotency: Vec<(OwnerId, String)>,
    /// Entry numbers to take from `entry_seq`.
    pub numbers: i64,
}

/// What [`lock_and_read`] found.
pub struct Locked {
    pub keys: Vec<ApiKey>,
    pub accounts: Vec<Account>,
    pub owners: Vec<Owner>,
    pub holds: Vec<Hold>,
    pub incomings: Vec<Incoming>,
    pub idempotency: Vec<((OwnerId, String), IdemRecord)>,
    pub numbers: Vec<i64>,
}

/// Open the batch's transaction, lock (API keys, then owners, then wallets in account-number
/// order: the one order every batch takes them in, so batches never deadlock) and read afresh
/// what the batch needs, in one round trip. The server runs the statements in the order they
/// are sent, so every read runs after the locks are held and sees the rows as the last batch
/// that held them left them. Every statement is prepared first: one prepared while the others
/// were being sent would reach the server after those behind it.
pub async fn lock_and_read(c: &impl GenericClient, w: &Wanted) -> Res<Locked> {
    let lock_keys = c.prepare_cached(&format!("{} ORDER BY id FOR UPDATE", sql_keys_by_id())).await?;
    let lock_owners = c.prepare_cached(&format!("{} ORDER BY id FOR UPDATE", sql_owners_by_id())).await?;
    let lock_accounts = c.prepare_cached(&format!("{} ORDER BY number FOR UPDATE", sql_accounts_by_id())).await?;
    let owners = c.prepare_cached(&sql_owners_by_id()).await?;
    let holds = c.prepare_cached(&sql_holds_by_id()).await?;
    let incomings = c.prepare_cached(&sql_incomings_by_id()).await?;
    let idem = c.prepare_cached(SQL_IDEMPOTENCY).await?;
    // The transaction id is taken before the entry numbers (the projector relies on it).
    let xid = c.prepare_cached("SELECT pg_current_xact_id()::text").await?;
    let numbers = c.prepare_cached("SELECT nextval('entry_seq') FROM generate_series(1::bigint, $1::bigint)").await?;
    let (platforms, names): (Vec<Uuid>, Vec<&str>) = w.idempotency.iter().map(|(p, k)| (p.0, k.as_str())).unzip();
    /// Run `st` unless there is nothing to ask for; the query is sent when first polled.
    async fn ask<T>(
        c: &impl GenericClient,
        skip: bool,
        st: &tokio_postgres::Statement,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        f: fn(&Row) -> Res<T>,
    ) -> Res<Vec<T>> {
        if skip {
            return Ok(Vec::new());
        }
        all(c.query(st, params).await?, f)
    }
    type P<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);
    let (p_keys, p_lock, p_accounts): ([P; 1], [P; 1], [P; 1]) = ([&w.keys], [&w.lock_owners], [&w.accounts]);
    let (p_owners, p_holds, p_incomings): ([P; 1], [P; 1], [P; 1]) = ([&w.owners], [&w.holds], [&w.incomings]);
    let (p_idem, p_numbers): ([P; 2], [P; 1]) = ([&platforms, &names], [&w.numbers]);
    let ((), keys, _, accounts, owners, holds, incomings, idempotency, _, numbers) = futures_util::try_join!(
        async { c.batch_execute("BEGIN").await.map_err(StoreError::from) },
        ask(c, w.keys.is_empty(), &lock_keys, &p_keys, key_row),
        ask(c, w.lock_owners.is_empty(), &lock_owners, &p_lock, owner_row),
        ask(c, w.accounts.is_empty(), &lock_accounts, &p_accounts, account_row),
        ask(c, w.owners.is_empty(), &owners, &p_owners, owner_row),
        ask(c, w.holds.is_empty(), &holds, &p_holds, hold_row),
        ask(c, w.incomings.is_empty(), &incomings, &p_incomings, incoming_row),
        ask(c, w.idempotency.is_empty(), &idem, &p_idem, idem_row),
        ask(c, w.numbers == 0, &xid, &[], |_| Ok(())),
        ask(c, w.numbers == 0, &numbers, &p_numbers, |r| get::<i64>(r, 0)),
    )?;
    Ok(Locked { keys, accounts, owners, holds, incomings, idempotency, numbers })
}

pub(super) fn bounds(page: &crate::Page) -> (i64, i64, i64) {
    let before = page.before.map(|v| v.min(i64::MAX as u64) as i64).unwrap_or(i64::MAX);
    let after = page.after.map(|v| v.min(i64::MAX as u64) as i64).unwrap_or(0);
    (before, after, page.limit.min(10_000) as i64)
}

/// Write everything `changes` names, as the working set `l` now holds it. `existing` are the
/// accounts that were read (and locked) from the database; other changed accounts are new.
/// One statement of a batch's writes, sent when first polled.
type Write<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a>>;

pub async fn persist(
    c: &impl GenericClient,
    l: &Ledger,
    changes: &Changes,
    existing: &std::collections::HashSet<AccountId>,
    commit: bool,
) -> Res<()> {
    let owner_st = c
        .prepare_cached(&format!(
            "INSERT INTO owners ({OWNER_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, status = excluded.status,
                   default_currency = excluded.default_currency, updated_at = excluded.updated_at"
        ))
        .await?;
    let upd_st = c
        .prepare_cached(
            "UPDATE accounts AS a SET posted = u.posted, held = u.held, incoming = u.incoming, status = u.status,
               overdraft_limit = u.overdraft_limit, min_balance = u.min_balance, last_trade_at = u.last_trade_at
             FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[], $7::bigint[],
               $8::bigint[]) AS u(id, posted, held, incoming, status, overdraft_limit, min_balance, last_trade_at)
             WHERE a.id = u.id",
        )
        .await?;
    let ins_acc = c.prepare_cached(&format!(
            "INSERT INTO accounts ({ACCOUNT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        )).await?;
    let hold_st = c
        .prepare_cached(&format!(
            "INSERT INTO holds ({HOLD_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (id) DO UPDATE SET captured = excluded.captured, status = excluded.status,
               closed_at = excluded.closed_at, closed_seq = excluded.closed_seq"
        ))
        .await?;
    let inc_st = c
        .prepare_cached(&format!(
            "INSERT INTO incomings ({INCOMING_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (id) DO UPDATE SET status = excluded.status,
               closed_at = excluded.closed_at, closed_seq = excluded.closed_seq"
        ))
        .await?;
    let key_st = c
        .prepare_cached(&format!(
            "INSERT INTO api_keys ({KEY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, revoked_at = excluded.revoked_at,
               public_key = excluded.public_key"
        ))
        .await?;
    let dir_st = c.prepare_cached("UPDATE coffer_directory SET version = version + 1").await?;
    let ins_entries = c
        .prepare_cached(
            "INSERT INTO entries (seq, platform_id, kind, idem_key, request_hash, created_at, lines, metadata,
               hold_id, incoming_id, reverses, fx)
             SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::bigint[],
               $7::bytea[], $8::text[], $9::uuid[], $10::uuid[], $11::bigint[], $12::text[])",
        )
        .await?;
    let ins_tags = c
        .prepare_cached(
            "INSERT INTO tags (platform_id, key, value, seq)
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[])",
        )
        .await?;
    let (mut upd, mut new) = (Vec::new(), Vec::new());
    for id in &changes.accounts {
        let a = l.account(*id).expect("changed accounts are in the working set");
        if existing.contains(id) {
            upd.push(a)
        } else {
            new.push(a)
        }
    }
    let upd_args = (
        upd.iter().map(|a| a.id.0).collect::<Vec<_>>(),
        upd.iter().map(|a| a.posted).collect::<Vec<_>>(),
        upd.iter().map(|a| a.held).collect::<Vec<_>>(),
        upd.iter().map(|a| a.incoming).collect::<Vec<_>>(),
        upd.iter().map(|a| a.status.as_str()).collect::<Vec<_>>(),
        upd.iter().map(|a| a.overdraft_limit).collect::<Vec<_>>(),
        upd.iter().map(|a| a.min_balance).collect::<Vec<_>>(),
        upd.iter().map(|a| a.last_trade_at.map(|t| t.0)).collect::<Vec<_>>(),
    );
    let kinds: Vec<String> = new.iter().map(|a| a.kind.as_string()).collect();
    // The journal: one statement for the entries, their lines inside them.
    let es = &changes.entries;
    let e_args = (
        es.iter().map(|e| e.seq as i64).collect::<Vec<_>>(),
        es.iter().map(|e| e.platform.0).collect::<Vec<_>>(),
        es.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        es.iter().map(|e| e.idempotency_key.as_str()).collect::<Vec<_>>(),
        es.iter().map(|e| e.request_hash.as_str()).collect::<Vec<_>>(),
        es.iter().map(|e| e.created_at.0).collect::<Vec<_>>(),
        crate::codec::numbered(l, es).iter().map(|ls| crate::codec::encode(ls, Order::Big)).collect::<Vec<_>>(),
        es.iter()
            .map(|e| (!e.metadata.is_empty()).then(|| serde_json::to_string(&e.metadata).expect("serializes")))
            .collect::<Vec<_>>(),
        es.iter().map(|e| e.hold.map(|h| h.0)).collect::<Vec<_>>(),
        es.iter().map(|e| e.incoming.map(|i| i.0)).collect::<Vec<_>>(),
        es.iter().map(|e| e.reverses.map(|v| v as i64)).collect::<Vec<_>>(),
        es.iter().map(|e| e.fx.as_ref().map(|f| serde_json::to_string(f).expect("serializes"))).collect::<Vec<_>>(),
    );
    // The metadata index: one row per (entry, key).
    let tagged: Vec<(&Entry, &String, &String)> =
        es.iter().flat_map(|e| e.metadata.iter().map(move |(k, v)| (e, k, v))).collect();
    let t_args = (
        tagged.iter().map(|(e, _, _)| e.platform.0).collect::<Vec<_>>(),
        tagged.iter().map(|(_, k, _)| k.as_str()).collect::<Vec<_>>(),
        tagged.iter().map(|(_, _, v)| v.as_str()).collect::<Vec<_>>(),
        tagged.iter().map(|(e, _, _)| e.seq as i64).collect::<Vec<_>>(),
    );
    let mut writes: Vec<Write<'_>> = Vec::new();
    if !changes.owners.is_empty() {
        for id in &changes.owners {
            let o = l.owner(*id).expect("changed owners are in the working set");
            let st = &owner_st;
            writes.push(Box::pin(async move {
                c.execute(
                    st,
                    &[
                        &o.id.0,
                        &o.kind.as_str(),
                        &o.platform.0,
                        &o.parent.map(|p| p.0),
                        &o.name,
                        &o.status.as_str(),
                        &o.default_currency.as_str(),
                        &serde_json::to_string(&o.currency_exponents).expect("serializes"),
                        &o.created_at.0,
                        &o.updated_at.0,
                    ],
                )
                .await
            }));
        }
    }
    if !upd.is_empty() {
        let (a0, a1, a2, a3, a4, a5, a6, a7) = &upd_args;
        let st = &upd_st;
        writes.push(Box::pin(async move { c.execute(st, &[a0, a1, a2, a3, a4, a5, a6, a7]).await }));
    }
    for (a, kind) in new.iter().zip(&kinds) {
        let st = &ins_acc;
        writes.push(Box::pin(async move {
            c.execute(
                st,
                &[
                    &a.id.0,
                    &(a.number as i64),
                    &a.platform.0,
                    &a.owner.0,
                    kind,
                    &a.currency.as_str(),
                    &(a.exponent as i16),
                    &a.posted,
                    &a.held,
                    &a.incoming,
                    &a.status.as_str(),
                    &a.overdraft_limit,
                    &a.min_balance,
                    &a.created_at.0,
                    &a.last_trade_at.map(|t| t.0),
                ],
            )
            .await
        }));
    }
    for id in &changes.holds {
        let h = l.hold(*id).expect("changed holds are in the working set");
        let st = &hold_st;
        writes.push(Box::pin(async move {
            c.execute(
                st,
                &[
                    &h.id.0,
                    &h.platform.0,
                    &h.account.0,
                    &h.amount,
                    &h.captured,
                    &h.status.as_str(),
                    &h.expires_at.map(|t| t.0),
                    &h.created_at.0,
                    &(h.created_seq as i64),
                    &h.closed_at.map(|t| t.0),
                    &h.closed_seq.map(|v| v as i64),
                ],
            )
            .await
        }));
    }
    for id in &changes.incomings {
        let i = l.incoming(*id).expect("changed incomings are in the working set");
        let st = &inc_st;
        writes.push(Box::pin(async move {
            c.execute(
                st,
                &[
                    &i.id.0,
                    &i.platform.0,
                    &i.account.0,
                    &i.amount,
                    &i.status.as_str(),
                    &i.created_at.0,
                    &(i.created_seq as i64),
                    &i.closed_at.map(|t| t.0),
                    &i.closed_seq.map(|v| v as i64),
                ],
            )
            .await
        }));
    }
    for id in &changes.keys {
        let k = l.api_key(id).expect("changed keys are in the working set");
        let st = &key_st;
        writes.push(Box::pin(async move {
            c.execute(
                st,
                &[
                    &k.id,
                    &k.owner.0,
                    &k.platform.0,
                    &k.scope.as_str(),
                    &k.secret_hash,
                    &k.status.as_str(),
                    &k.created_at.0,
                    &k.revoked_at.map(|t| t.0),
                    &k.public_key,
                ],
            )
            .await
        }));
    }
    if !changes.owners.is_empty() || !changes.keys.is_empty() {
        let st = &dir_st;
        writes.push(Box::pin(async move { c.execute(st, &[]).await }));
    }
    if !es.is_empty() {
        let (a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11) = &e_args;
        let st = &ins_entries;
        writes.push(Box::pin(async move { c.execute(st, &[a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11]).await }));
    }
    if !tagged.is_empty() {
        let (t0, t1, t2, t3) = &t_args;
        let st = &ins_tags;
        writes.push(Box::pin(async move { c.execute(st, &[t0, t1, t2, t3]).await }));
    }
    pipeline(c, writes, commit).await?;
    Ok(())
}

/// The directory version (see [`crate::Store::directory_version`]).
pub async fn directory_version(c: &impl GenericClient) -> Res<u64> {
    let st = c.prepare_cached("SELECT version FROM coffer_directory").await?;
    let v: i64 = c.query_one(&st, &[]).await?.get(0);
    Ok(v as u64)
}

/// Accounts that `filter` (a condition on `accounts` with one parameter) selects, in creation
/// order, and the directory version, read in one statement (so at one snapshot).
async fn accounts_versioned<P: tokio_postgres::types::ToSql + Sync>(
    c: &impl GenericClient,
    filter: &str,
    param: &P,
) -> Res<(Vec<Account>, u64)> {
    let st = c
        .prepare_cached(&format!(
            "SELECT {ACCOUNT_COLS}, d.version FROM coffer_directory d LEFT JOIN accounts ON {filter}
             ORDER BY created_at, number"
        ))
        .await?;
    let rows = c.query(&st, &[param]).await?;
    let version = match rows.first() {
        Some(r) => r.try_get::<_, i64>(15)? as u64,
        None => return Err(StoreError::Storage("coffer_directory has no row".into())),
    };
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        if r.try_get::<_, Option<Uuid>>(0)?.is_some() {
            out.push(account_row(r)?);
        }
    }
    Ok((out, version))
}

/// One account by id (if it exists) and the directory version, in one statement.
pub async fn account_versioned(c: &impl GenericClient, id: AccountId) -> Res<(Option<Account>, u64)> {
    let (mut a, v) = accounts_versioned(c, "accounts.id = $1", &id.0).await?;
    Ok((a.pop(), v))
}

/// An owner's accounts and the directory version, in one statement.
pub async fn accounts_of_versioned(c: &impl GenericClient, owner: OwnerId) -> Res<(Vec<Account>, u64)> {
    accounts_versioned(c, "accounts.owner_id = $1", &owner.0).await
}

/// Send every statement of `writes` (pipelined on the one connection), then `COMMIT` behind
/// them when asked for, and wait for every answer. The server runs them in order; after a
/// failed one the transaction is aborted, so the `COMMIT` behind it rolls back (and the caller,
/// seeing the failure, rolls back too).
///
/// A statement goes out when its future is first polled. Each is polled once, in order,
/// before the `COMMIT` is created: a join over many futures may poll some of them late, and a
/// write sent after the `COMMIT` would run outside the transaction.
async fn pipeline<'a>(
    c: &'a impl GenericClient,
    writes: Vec<Write<'a>>,
    commit: bool,
) -> Result<(), tokio_postgres::Error> {
    use futures_util::future::{maybe_done, poll_fn, MaybeDone};
    use std::future::Future;
    use std::task::Poll;
    let mut all: Vec<MaybeDone<Write<'a>>> = writes.into_iter().map(maybe_done).collect();
    poll_fn(|cx| {
        for w in all.iter_mut() {
            let _ = std::pin::Pin::new(w).poll(cx);
        }
        Poll::Ready(())
    })
    .await;
    let answers = poll_fn(|cx| {
        let mut done = true;
        for w in all.iter_mut() {
            done &= std::pin::Pin::new(w).poll(cx).is_ready();
        }
        if done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    });
    let commit = async {
        match commit {
            true => c.batch_execute("COMMIT").await,
            false => Ok(()),
        }
    };
    let ((), committed) = futures_util::join!(answers, commit);
    for w in all.iter_mut() {
        std::pin::Pin::new(w).take_output().expect("every write answered")?;
    }
    committed
}

/// For each pair, the platform's quote at `at`: the latest effective one among those recorded
/// by then.
pub async fn rates_at(
    c: &impl GenericClient,
    platform: OwnerId,
    pairs: &[(CurrencyCode, CurrencyCode)],
    at: Timestamp,
) -> Res<Vec<coffer_core::fx::RateQuote>> {
    let st = c
        .prepare_cached(
            "SELECT effective_at, recorded_at, rate, source FROM rates
             WHERE platform_id = $1 AND base = $2 AND quote = $3 AND effective_at <= $4 AND recorded_at <= $4
             ORDER BY effective_at DESC, recorded_at DESC LIMIT 1",
        )
        .await?;
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for &(base, quote) in pairs {
        if !seen.insert((base, quote)) {
            continue;
        }
        if let Some(r) = c.query_opt(&st, &[&platform.0, &base.as_str(), &quote.as_str(), &at.0]).await? {
            out.push(coffer_core::fx::RateQuote {
                base,
                quote,
                rate: parse(&r, 2)?,
                source: get(&r, 3)?,
                effective_at: ts(&r, 0)?,
                recorded_at: ts(&r, 1)?,
            });
        }
    }
    Ok(out)
}
