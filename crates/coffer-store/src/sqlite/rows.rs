//! Mapping between the core's plain data and SQLite rows.

use std::collections::HashMap;
use std::str::FromStr;

use coffer_core::ledger::{Changes, Counters, EntryRef, IdemRecord};
use coffer_core::*;
use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::tail::{Journaled, Tail, TailEntry, TailLine};
use crate::codec::{self, decode_accounts, line_of, Order, Values};
use crate::cols::*;

fn conv<E: std::error::Error + Send + Sync + 'static>(i: usize, e: E) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, Type::Text, Box::new(e))
}

fn uuid_at(r: &Row<'_>, i: usize) -> rusqlite::Result<Uuid> {
    let b: Vec<u8> = r.get(i)?;
    Uuid::from_slice(&b).map_err(|e| conv(i, e))
}
fn opt_uuid_at(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<Uuid>> {
    let b: Option<Vec<u8>> = r.get(i)?;
    b.map(|b| Uuid::from_slice(&b).map_err(|e| conv(i, e))).transpose()
}
fn parse_at<T: FromStr>(r: &Row<'_>, i: usize) -> rusqlite::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let s: String = r.get(i)?;
    s.parse().map_err(|e| conv(i, e))
}
fn ts_at(r: &Row<'_>, i: usize) -> rusqlite::Result<Timestamp> {
    r.get(i).map(Timestamp)
}
fn opt_ts_at(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<Timestamp>> {
    r.get::<_, Option<i64>>(i).map(|o| o.map(Timestamp))
}
fn json_at<T: serde::de::DeserializeOwned>(r: &Row<'_>, i: usize) -> rusqlite::Result<T> {
    let s: String = r.get(i)?;
    serde_json::from_str(&s).map_err(|e| conv(i, e))
}
fn b(u: &Uuid) -> &[u8] {
    u.as_bytes()
}

fn owner_row(r: &Row<'_>) -> rusqlite::Result<Owner> {
    Ok(Owner {
        id: OwnerId(uuid_at(r, 0)?),
        kind: parse_at(r, 1)?,
        platform: OwnerId(uuid_at(r, 2)?),
        parent: opt_uuid_at(r, 3)?.map(OwnerId),
        name: r.get(4)?,
        status: parse_at(r, 5)?,
        default_currency: parse_at(r, 6)?,
        currency_exponents: json_at(r, 7)?,
        created_at: ts_at(r, 8)?,
        updated_at: ts_at(r, 9)?,
    })
}

fn account_row(r: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: AccountId(uuid_at(r, 0)?),
        number: r.get::<_, i64>(1)? as u64,
        platform: OwnerId(uuid_at(r, 2)?),
        owner: OwnerId(uuid_at(r, 3)?),
        kind: parse_at(r, 4)?,
        currency: parse_at(r, 5)?,
        exponent: r.get(6)?,
        posted: r.get(7)?,
        held: r.get(8)?,
        incoming: r.get(9)?,
        status: parse_at(r, 10)?,
        overdraft_limit: r.get(11)?,
        min_balance: r.get(12)?,
        created_at: ts_at(r, 13)?,
        last_trade_at: opt_ts_at(r, 14)?,
    })
}

fn hold_row(r: &Row<'_>) -> rusqlite::Result<Hold> {
    Ok(Hold {
        id: HoldId(uuid_at(r, 0)?),
        platform: OwnerId(uuid_at(r, 1)?),
        account: AccountId(uuid_at(r, 2)?),
        amount: r.get(3)?,
        captured: r.get(4)?,
        status: parse_at(r, 5)?,
        expires_at: opt_ts_at(r, 6)?,
        created_at: ts_at(r, 7)?,
        created_seq: r.get::<_, i64>(8)? as u64,
        closed_at: opt_ts_at(r, 9)?,
        closed_seq: r.get::<_, Option<i64>>(10)?.map(|v| v as u64),
    })
}

fn incoming_row(r: &Row<'_>) -> rusqlite::Result<Incoming> {
    Ok(Incoming {
        id: IncomingId(uuid_at(r, 0)?),
        platform: OwnerId(uuid_at(r, 1)?),
        account: AccountId(uuid_at(r, 2)?),
        amount: r.get(3)?,
        status: parse_at(r, 4)?,
        created_at: ts_at(r, 5)?,
        created_seq: r.get::<_, i64>(6)? as u64,
        closed_at: opt_ts_at(r, 7)?,
        closed_seq: r.get::<_, Option<i64>>(8)?.map(|v| v as u64),
    })
}

/// An account's journal line, with the account's id and currency joined in.
pub const LINE_SELECT: &str = "SELECT a.id, a.currency, l.seq, l.posted, l.held, l.incoming, l.posted_after, \
     l.held_after, l.incoming_after FROM lines l JOIN accounts a ON a.number = l.account_no";

/// A row of [`LINE_SELECT`] as (seq, line).
pub fn line_row(r: &Row<'_>) -> rusqlite::Result<(Seq, Line)> {
    Ok((
        r.get::<_, i64>(2)? as u64,
        Line {
            account: AccountId(uuid_at(r, 0)?),
            currency: parse_at(r, 1)?,
            posted: r.get(3)?,
            held: r.get(4)?,
            incoming: r.get(5)?,
            posted_after: r.get(6)?,
            held_after: r.get(7)?,
            incoming_after: r.get(8)?,
        },
    ))
}

/// The 64-bit hash idempotency keys are looked up by.
pub fn idem_hash(platform: OwnerId, key: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(platform.0.as_bytes());
    h.update(key.as_bytes());
    let d = h.finalize();
    i64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

fn key_row(r: &Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: r.get(0)?,
        owner: OwnerId(uuid_at(r, 1)?),
        platform: OwnerId(uuid_at(r, 2)?),
        scope: parse_at(r, 3)?,
        secret_hash: r.get(4)?,
        status: parse_at(r, 5)?,
        created_at: ts_at(r, 6)?,
        revoked_at: opt_ts_at(r, 7)?,
        public_key: r.get(8)?,
    })
}

pub fn api_keys(c: &Connection) -> rusqlite::Result<Vec<ApiKey>> {
    let mut st = c.prepare(&format!("SELECT {KEY_COLS} FROM api_keys"))?;
    let v = st.query_map([], key_row)?.collect();
    v
}

pub fn owners(c: &Connection) -> rusqlite::Result<Vec<Owner>> {
    let mut st = c.prepare(&format!("SELECT {OWNER_COLS} FROM owners"))?;
    let v = st.query_map([], owner_row)?.collect();
    v
}

pub fn accounts(c: &Connection) -> rusqlite::Result<Vec<Account>> {
    let mut st = c.prepare(&format!("SELECT {ACCOUNT_COLS} FROM accounts ORDER BY number"))?;
    let v = st.query_map([], account_row)?.collect();
    v
}

pub fn open_holds(c: &Connection, account: Option<AccountId>) -> rusqlite::Result<Vec<Hold>> {
    match account {
        None => {
            let mut st = c.prepare_cached(&format!("SELECT {HOLD_COLS} FROM holds WHERE status = 'OPEN'"))?;
            let v = st.query_map([], hold_row)?.collect();
            v
        }
        Some(a) => {
            let mut st = c.prepare_cached(&format!(
                "SELECT {HOLD_COLS} FROM holds WHERE status = 'OPEN' AND account_id = ?1 ORDER BY created_seq"
            ))?;
            let v = st.query_map([b(&a.0)], hold_row)?.collect();
            v
        }
    }
}

pub fn pending_incomings(c: &Connection) -> rusqlite::Result<Vec<Incoming>> {
    let mut st = c.prepare_cached(&format!("SELECT {INCOMING_COLS} FROM incomings WHERE status = 'PENDING'"))?;
    let v = st.query_map([], incoming_row)?.collect();
    v
}

pub fn pending_incomings_of(c: &Connection, account: AccountId) -> rusqlite::Result<Vec<Incoming>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {INCOMING_COLS} FROM incomings WHERE status = 'PENDING' AND account_id = ?1 ORDER BY created_seq"
    ))?;
    let v = st.query_map([b(&account.0)], incoming_row)?.collect();
    v
}

pub fn hold(c: &Connection, id: HoldId) -> rusqlite::Result<Option<Hold>> {
    c.prepare_cached(&format!("SELECT {HOLD_COLS} FROM holds WHERE id = ?1"))?
        .query_row([b(&id.0)], hold_row)
        .optional()
}

pub fn incoming(c: &Connection, id: IncomingId) -> rusqlite::Result<Option<Incoming>> {
    c.prepare_cached(&format!("SELECT {INCOMING_COLS} FROM incomings WHERE id = ?1"))?
        .query_row([b(&id.0)], incoming_row)
        .optional()
}

const ENTRY_COLS: &str = "platform_id, kind, idem_key, request_hash, created_at, metadata, hold_id, incoming_id, \
     reverses, fx, accounts, lines, seq";

/// An entry's head as read (columns [`ENTRY_COLS`]), its accounts and its encoded lines.
type Head = (Entry, Vec<i64>, Option<Vec<(i64, Values)>>);

fn head_row(r: &Row<'_>) -> rusqlite::Result<Head> {
    let accounts: Vec<u8> = r.get(10)?;
    let accounts = decode_accounts(&accounts).ok_or_else(|| conv(10, BadAccounts))?;
    let e = Entry {
        seq: r.get::<_, i64>(12)? as u64,
        platform: OwnerId(uuid_at(r, 0)?),
        kind: parse_at(r, 1)?,
        idempotency_key: r.get(2)?,
        request_hash: r.get(3)?,
        created_at: ts_at(r, 4)?,
        metadata: match r.get::<_, Option<String>>(5)? {
            Some(s) => serde_json::from_str(&s).map_err(|e| conv(5, e))?,
            None => Default::default(),
        },
        lines: vec![],
        hold: opt_uuid_at(r, 6)?.map(HoldId),
        incoming: opt_uuid_at(r, 7)?.map(IncomingId),
        reverses: r.get::<_, Option<i64>>(8)?.map(|v| v as u64),
        fx: match r.get::<_, Option<String>>(9)? {
            Some(s) => Some(serde_json::from_str(&s).map_err(|e| conv(9, e))?),
            None => None,
        },
    };
    let lines = match r.get::<_, Option<Vec<u8>>>(11)? {
        Some(blob) => Some(codec::decode(&blob, Order::Little).ok_or_else(|| conv(11, BadAccounts))?),
        None => None,
    };
    Ok((e, accounts, lines))
}

/// Account numbers to (id, currency), looked up once per read.
type Who = HashMap<i64, (AccountId, CurrencyCode)>;

/// The entry with its lines.
fn complete(c: &Connection, (mut e, accounts, lines): Head, who: &mut Who) -> rusqlite::Result<Entry> {
    match lines {
        Some(lines) => {
            for (no, v) in lines {
                let (account, currency) = match who.get(&no) {
                    Some(w) => *w,
                    None => {
                        let w = c
                            .prepare_cached("SELECT id, currency FROM accounts WHERE number = ?1")?
                            .query_row([no], |r| Ok((AccountId(uuid_at(r, 0)?), parse_at::<CurrencyCode>(r, 1)?)))?;
                        *who.entry(no).or_insert(w)
                    }
                };
                e.lines.push(line_of(account, currency, v));
            }
        }
        // Written before the journal carried its lines: they are in `lines`.
        None => {
            let mut st = c.prepare_cached(&format!("{LINE_SELECT} WHERE l.account_no = ?1 AND l.seq = ?2"))?;
            for no in accounts {
                e.lines.push(st.query_row(params![no, e.seq as i64], line_row)?.1);
            }
        }
    }
    Ok(e)
}

pub fn entry(c: &Connection, seq: Seq) -> rusqlite::Result<Option<Entry>> {
    let head = c
        .prepare_cached(&format!("SELECT {ENTRY_COLS} FROM entries WHERE seq = ?1"))?
        .query_row([seq as i64], head_row)
        .optional()?;
    head.map(|h| complete(c, h, &mut Who::new())).transpose()
}

/// An entry's `accounts` column is not a list of 8-byte account numbers.
#[derive(Debug)]
struct BadAccounts;
impl std::fmt::Display for BadAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("malformed account list")
    }
}
impl std::error::Error for BadAccounts {}

fn bounds(page: &crate::Page) -> (i64, i64, i64) {
    let before = page.before.map(|v| v.min(i64::MAX as u64) as i64).unwrap_or(i64::MAX);
    let after = page.after.map(|v| v.min(i64::MAX as u64) as i64).unwrap_or(0);
    (before, after, page.limit.min(10_000) as i64)
}

pub fn history(
    c: &Connection,
    account_no: i64,
    account: AccountId,
    currency: CurrencyCode,
    page: &crate::Page,
) -> rusqlite::Result<Vec<crate::HistoryItem>> {
    let (before, after, limit) = bounds(page);
    let mut st = c.prepare_cached(
        "SELECT l.seq, e.kind, e.created_at, l.posted, l.held, l.incoming, l.posted_after, l.held_after, l.incoming_after
         FROM lines l JOIN entries e ON e.seq = l.seq
         WHERE l.account_no = ?1 AND l.seq < ?2 AND l.seq > ?3 ORDER BY l.seq DESC LIMIT ?4",
    )?;
    let v = st
        .query_map(params![account_no, before, after, limit], |r| {
            Ok(crate::HistoryItem {
                seq: r.get::<_, i64>(0)? as u64,
                kind: parse_at(r, 1)?,
                created_at: ts_at(r, 2)?,
                line: Line {
                    account,
                    currency,
                    posted: r.get(3)?,
                    held: r.get(4)?,
                    incoming: r.get(5)?,
                    posted_after: r.get(6)?,
                    held_after: r.get(7)?,
                    incoming_after: r.get(8)?,
                },
            })
        })?
        .collect();
    v
}

pub fn platform_entries(c: &Connection, platform: OwnerId, page: &crate::Page) -> rusqlite::Result<Vec<Entry>> {
    let (before, after, limit) = bounds(page);
    let heads: Vec<Head> = c
        .prepare_cached(&format!(
            "SELECT {ENTRY_COLS} FROM entries WHERE platform_id = ?1 AND seq < ?2 AND seq > ?3 ORDER BY seq DESC LIMIT ?4"
        ))?
        .query_map(params![b(&platform.0), before, after, limit], head_row)?
        .collect::<rusqlite::Result<_>>()?;
    let mut who = Who::new();
    heads.into_iter().map(|h| complete(c, h, &mut who)).collect()
}

/// The last seq made at or before `t`: binary search on seq, valid because entry times never
/// decrease along seq.
pub fn seq_at(c: &Connection, t: Timestamp) -> rusqlite::Result<Seq> {
    let mut at_or_after =
        c.prepare_cached("SELECT seq, created_at FROM entries WHERE seq >= ?1 ORDER BY seq LIMIT 1")?;
    let max: i64 = c.query_row("SELECT COALESCE(MAX(seq), 0) FROM entries", [], |r| r.get(0))?;
    let (mut lo, mut hi) = (0i64, max); // answer in [lo, hi]: seq lo is at or before t (0 = none)
    while lo < hi {
        let mid = lo + (hi - lo + 1) / 2;
        let (seq, ts): (i64, i64) = at_or_after.query_row([mid], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if ts <= t.0 {
            lo = seq;
        } else {
            hi = mid - 1;
        }
    }
    Ok(lo as u64)
}

/// Balances of an account just after `seq`.
pub fn balance_at(c: &Connection, account_no: i64, seq: Seq) -> rusqlite::Result<(i64, i64, i64)> {
    Ok(c.prepare_cached(
        "SELECT posted_after, held_after, incoming_after FROM lines WHERE account_no = ?1 AND seq <= ?2
         ORDER BY seq DESC LIMIT 1",
    )?
    .query_row(params![account_no, seq.min(i64::MAX as u64) as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
    .optional()?
    .unwrap_or((0, 0, 0)))
}

/// The entry recorded under an idempotency key: found through the writer's entries not yet
/// durable (`unsynced`), the tail's keys (not yet checkpointed) and the `idem` index
/// (checkpointed), each candidate checked on its entry.
pub fn idempotency(
    c: &Connection,
    t: &Tail,
    unsynced: &[Seq],
    platform: OwnerId,
    key: &str,
) -> rusqlite::Result<Option<IdemRecord>> {
    let hash = idem_hash(platform, key);
    let mut candidates: Vec<i64> = t.idem(hash).iter().chain(unsynced).map(|s| *s as i64).collect();
    let mut st = c.prepare_cached("SELECT seq FROM idem WHERE hash = ?1")?;
    for s in st.query_map([hash], |r| r.get::<_, i64>(0))? {
        candidates.push(s?);
    }
    let mut check =
        c.prepare_cached("SELECT request_hash FROM entries WHERE seq = ?1 AND platform_id = ?2 AND idem_key = ?3")?;
    for seq in candidates {
        if let Some(h) = check.query_row(params![seq, b(&platform.0), key], |r| r.get(0)).optional()? {
            return Ok(Some(IdemRecord { seq: seq as u64, request_hash: h }));
        }
    }
    Ok(None)
}

pub fn entry_ref(c: &Connection, seq: Seq) -> rusqlite::Result<Option<EntryRef>> {
    let Some(e) = entry(c, seq)? else {
        return Ok(None);
    };
    let reversed_by = c
        .prepare_cached("SELECT seq FROM entries WHERE reverses = ?1")?
        .query_row([seq as i64], |r| r.get::<_, i64>(0))
        .optional()?
        .map(|v| v as u64);
    Ok(Some(EntryRef {
        seq,
        platform: e.platform,
        kind: e.kind,
        posted: e.lines.iter().map(|l| (l.account, l.posted)).collect(),
        reversed_by,
    }))
}

pub fn counters(c: &Connection) -> rusqlite::Result<Counters> {
    // Entry times never decrease along seq: the last entry has the latest (no journal scan).
    let (seq, ts): (i64, Option<i64>) = c
        .query_row("SELECT seq, created_at FROM entries ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, None));
    let number: i64 = c.query_row("SELECT COALESCE(MAX(number), 0) FROM accounts", [], |r| r.get(0))?;
    // Status changes hold journal numbers too.
    let last = (seq as u64).max(super::watch::last_status(c)?);
    Ok(Counters { next_seq: last + 1, next_account_number: number as u64 + 1, last_ts: Timestamp(ts.unwrap_or(0)) })
}

/// Write everything `changes` names but the derived state, as the working set now holds it;
/// `numbered` is each entry's lines with account numbers ([`codec::numbered`]).
pub fn persist(c: &Connection, l: &Ledger, changes: &Changes, numbered: &[Vec<(i64, Values)>]) -> rusqlite::Result<()> {
    for s in &changes.statuses {
        super::watch::put_status(c, s)?;
    }
    if !changes.owners.is_empty() {
        let mut st = c.prepare_cached(&format!(
            "INSERT INTO owners ({OWNER_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, status = excluded.status,
               default_currency = excluded.default_currency, updated_at = excluded.updated_at"
        ))?;
        for id in &changes.owners {
            let o = l.owner(*id).expect("changed owners are in the working set");
            st.execute(params![
                b(&o.id.0),
                o.kind.as_str(),
                b(&o.platform.0),
                o.parent.as_ref().map(|p| b(&p.0)),
                o.name,
                o.status.as_str(),
                o.default_currency.as_str(),
                serde_json::to_string(&o.currency_exponents).expect("serializes"),
                o.created_at.0,
                o.updated_at.0
            ])?;
        }
    }
    // Balances and the last trade time are derived (written by the checkpoint): a commit writes
    // a new account (with none yet) or a change of its settings.
    if !changes.new_accounts.is_empty() {
        let mut ins = c.prepare_cached(&format!(
            "INSERT INTO accounts ({ACCOUNT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, 0, 0, ?8, ?9, ?10, ?11, NULL)"
        ))?;
        for id in &changes.new_accounts {
            let a = l.account(*id).expect("new accounts are in the working set");
            ins.execute(params![
                b(&a.id.0),
                a.number as i64,
                b(&a.platform.0),
                b(&a.owner.0),
                a.kind.as_string(),
                a.currency.as_str(),
                a.exponent,
                a.status.as_str(),
                a.overdraft_limit,
                a.min_balance,
                a.created_at.0
            ])?;
        }
    }
    if !changes.account_settings.is_empty() {
        let mut upd =
            c.prepare_cached("UPDATE accounts SET status = ?2, overdraft_limit = ?3, min_balance = ?4 WHERE id = ?1")?;
        for id in changes.account_settings.difference(&changes.new_accounts) {
            let a = l.account(*id).expect("changed accounts are in the working set");
            upd.execute(params![b(&a.id.0), a.status.as_str(), a.overdraft_limit, a.min_balance])?;
        }
    }
    if !changes.holds.is_empty() {
        let mut st = c.prepare_cached(&format!(
            "INSERT INTO holds ({HOLD_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (id) DO UPDATE SET captured = excluded.captured, status = excluded.status,
               closed_at = excluded.closed_at, closed_seq = excluded.closed_seq"
        ))?;
        for id in &changes.holds {
            let h = l.hold(*id).expect("changed holds are in the working set");
            st.execute(params![
                b(&h.id.0),
                b(&h.platform.0),
                b(&h.account.0),
                h.amount,
                h.captured,
                h.status.as_str(),
                h.expires_at.map(|t| t.0),
                h.created_at.0,
                h.created_seq as i64,
                h.closed_at.map(|t| t.0),
                h.closed_seq.map(|v| v as i64)
            ])?;
        }
    }
    if !changes.incomings.is_empty() {
        let mut st = c.prepare_cached(&format!(
            "INSERT INTO incomings ({INCOMING_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (id) DO UPDATE SET status = excluded.status,
               closed_at = excluded.closed_at, closed_seq = excluded.closed_seq"
        ))?;
        for id in &changes.incomings {
            let i = l.incoming(*id).expect("changed incomings are in the working set");
            st.execute(params![
                b(&i.id.0),
                b(&i.platform.0),
                b(&i.account.0),
                i.amount,
                i.status.as_str(),
                i.created_at.0,
                i.created_seq as i64,
                i.closed_at.map(|t| t.0),
                i.closed_seq.map(|v| v as i64)
            ])?;
        }
    }
    if !changes.keys.is_empty() {
        let mut st = c.prepare_cached(&format!(
            "INSERT INTO api_keys ({KEY_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, revoked_at = excluded.revoked_at,
               public_key = excluded.public_key"
        ))?;
        for id in &changes.keys {
            let k = l.api_key(id).expect("changed keys are in the working set");
            st.execute(params![
                k.id,
                b(&k.owner.0),
                b(&k.platform.0),
                k.scope.as_str(),
                k.secret_hash,
                k.status.as_str(),
                k.created_at.0,
                k.revoked_at.map(|t| t.0),
                k.public_key
            ])?;
        }
    }
    if !changes.entries.is_empty() {
        let mut ins_entry = c.prepare_cached(
            "INSERT INTO entries (seq, platform_id, kind, idem_hash, idem_key, request_hash, created_at, accounts,
               metadata, hold_id, incoming_id, reverses, fx, lines)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?;
        for (e, lines) in changes.entries.iter().zip(numbered) {
            let numbers: Vec<u8> = lines.iter().flat_map(|(no, _)| no.to_le_bytes()).collect();
            ins_entry.execute(params![
                e.seq as i64,
                b(&e.platform.0),
                e.kind.as_str(),
                idem_hash(e.platform, &e.idempotency_key),
                e.idempotency_key,
                e.request_hash,
                e.created_at.0,
                numbers,
                (!e.metadata.is_empty()).then(|| serde_json::to_string(&e.metadata).expect("serializes")),
                e.hold.as_ref().map(|h| b(&h.0)),
                e.incoming.as_ref().map(|i| b(&i.0)),
                e.reverses.map(|v| v as i64),
                e.fx.as_ref().map(|f| serde_json::to_string(f).expect("serializes")),
                codec::encode(lines, Order::Little),
            ])?;
            if !e.metadata.is_empty() {
                let mut tag =
                    c.prepare_cached("INSERT INTO tags (platform_id, key, value, seq) VALUES (?1, ?2, ?3, ?4)")?;
                for (k, v) in &e.metadata {
                    tag.execute(params![b(&e.platform.0), k, v, e.seq as i64])?;
                }
            }
        }
    }
    Ok(())
}

/// A platform's entries whose metadata has `key` = `value`, newest first (the `tags` index).
pub fn tagged_entries(
    c: &Connection,
    platform: OwnerId,
    key: &str,
    value: &str,
    page: &crate::Page,
) -> rusqlite::Result<Vec<Entry>> {
    let (before, after, limit) = bounds(page);
    let cols = ENTRY_COLS.split(", ").map(|col| format!("e.{}", col.trim())).collect::<Vec<_>>().join(", ");
    let heads: Vec<Head> = c
        .prepare_cached(&format!(
            "SELECT {cols} FROM tags t JOIN entries e ON e.seq = t.seq
             WHERE t.platform_id = ?1 AND t.key = ?2 AND t.value = ?3 AND t.seq < ?4 AND t.seq > ?5
             ORDER BY t.seq DESC LIMIT ?6"
        ))?
        .query_map(params![b(&platform.0), key, value, before, after, limit], head_row)?
        .collect::<rusqlite::Result<_>>()?;
    let mut who = Who::new();
    heads.into_iter().map(|h| complete(c, h, &mut who)).collect()
}

/// The seq the derived rows cover up to.
pub fn checkpoint_seq(c: &Connection) -> rusqlite::Result<Seq> {
    let v: String = c.query_row("SELECT value FROM meta WHERE key = 'checkpoint_seq'", [], |r| r.get(0))?;
    v.parse().map_err(|e| conv(0, e))
}

/// The entries after the checkpoint, in seq order, as the tail holds them.
pub fn load_tail(c: &Connection) -> rusqlite::Result<Tail> {
    let mut t = Tail::new(checkpoint_seq(c)?);
    let mut st =
        c.prepare("SELECT seq, kind, created_at, idem_hash, lines FROM entries WHERE seq > ?1 ORDER BY seq")?;
    let mut rows = st.query([t.checkpoint as i64])?;
    while let Some(r) = rows.next()? {
        let blob: Option<Vec<u8>> = r.get(4)?;
        let lines =
            blob.as_deref().and_then(|b| codec::decode(b, Order::Little)).ok_or_else(|| conv(4, BadAccounts))?;
        let entry = TailEntry { seq: r.get::<_, i64>(0)? as u64, idem_hash: r.get(3)? };
        t.push(Journaled { entry, kind: parse_at(r, 1)?, created_at: ts_at(r, 2)?, lines });
    }
    Ok(t)
}

/// Bring the derived rows up to the tail's entry `upto`, in the caller's transaction: each
/// account's lines (in account order, so a page is written once), the idempotency index (in
/// hash order), the accounts' balances and last trade times, and `checkpoint_seq`.
pub fn checkpoint(c: &Connection, t: &Tail, upto: Seq) -> rusqlite::Result<()> {
    let mut accounts: Vec<(&i64, &Vec<TailLine>)> = t.by_account.iter().collect();
    accounts.sort_unstable_by_key(|(no, _)| **no);
    let mut line = c.prepare_cached(
        "INSERT INTO lines (account_no, seq, posted, held, incoming, posted_after, held_after, incoming_after)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut balances = c.prepare_cached(
        "UPDATE accounts SET posted = ?2, held = ?3, incoming = ?4, last_trade_at = ?5 WHERE number = ?1",
    )?;
    for (no, lines) in &accounts {
        let lines = &lines[..lines.partition_point(|l| l.seq <= upto)];
        for l in lines {
            let v = l.v;
            line.execute(params![**no, l.seq as i64, v[0], v[1], v[2], v[3], v[4], v[5]])?;
        }
        if let Some(last) = lines.last() {
            balances.execute(params![**no, last.v[3], last.v[4], last.v[5], last.created_at.0])?;
        }
    }
    let mut keys: Vec<(i64, i64)> =
        t.entries.iter().take_while(|e| e.seq <= upto).map(|e| (e.idem_hash, e.seq as i64)).collect();
    keys.sort_unstable();
    let mut idem = c.prepare_cached("INSERT INTO idem (hash, seq) VALUES (?1, ?2)")?;
    for (h, seq) in keys {
        idem.execute(params![h, seq])?;
    }
    c.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'checkpoint_seq'")?.execute([upto.to_string()])?;
    Ok(())
}

/// For each pair, the platform's quote at `at`: the latest effective one among those recorded
/// by then.
pub fn rates_at(
    c: &Connection,
    platform: OwnerId,
    pairs: &[(CurrencyCode, CurrencyCode)],
    at: Timestamp,
) -> Result<Vec<coffer_core::fx::RateQuote>, crate::StoreError> {
    let mut st = c.prepare_cached(
        "SELECT effective_at, recorded_at, rate, source FROM rates
         WHERE platform_id = ?1 AND base = ?2 AND quote = ?3 AND effective_at <= ?4 AND recorded_at <= ?4
         ORDER BY effective_at DESC, recorded_at DESC LIMIT 1",
    )?;
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for &(base, quote) in pairs {
        if !seen.insert((base, quote)) {
            continue;
        }
        let row = st
            .query_row(params![b(&platform.0), base.as_str(), quote.as_str(), at.0], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
            })
            .optional()?;
        if let Some((effective_at, recorded_at, rate, source)) = row {
            let rate = rate.parse().map_err(|e| crate::StoreError::Storage(format!("stored rate {rate:?}: {e}")))?;
            out.push(coffer_core::fx::RateQuote {
                base,
                quote,
                rate,
                source,
                effective_at: Timestamp(effective_at),
                recorded_at: Timestamp(recorded_at),
            });
        }
    }
    Ok(out)
}
