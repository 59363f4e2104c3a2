//! Reads of the journal: entries (their lines are inside them), and each account's history and
//! as-of balances, which merge the derived `lines` table (complete up to `projected_seq`) with
//! the entries after it that name the account (the tail the projector has not reached, bounded
//! by its lag).
//!
//! A read of the tail and a read of the table are two statements, each with its own snapshot;
//! the projector may move between them. The tail is read first: it covers every entry after the
//! position it saw, the table everything up to the (same or later) position it saw, so together
//! they miss nothing, and an entry found in both is taken once.

use std::collections::{HashMap, HashSet};

use coffer_core::ledger::EntryRef;
use coffer_core::*;
use deadpool_postgres::GenericClient;
use parking_lot::RwLock;
use tokio_postgres::Row;

use super::projector::names_account;
use super::rows::{bounds, get, json, parse, ts, u64_at, Res};
use crate::codec::{self, Order, Values};
use crate::StoreError;

/// What never changes about an account and an entry's line needs: its id and currency, by
/// account number. Filled as entries are read; bounded (forgotten all at once beyond it).
#[derive(Default)]
pub struct Numbers(RwLock<HashMap<i64, (AccountId, CurrencyCode)>>);

const NUMBERS_MAX: usize = 1 << 20;

impl Numbers {
    /// The accounts behind `nos`, reading the ones not known yet.
    async fn resolve(
        &self,
        c: &impl GenericClient,
        nos: &HashSet<i64>,
    ) -> Res<HashMap<i64, (AccountId, CurrencyCode)>> {
        let mut out = HashMap::with_capacity(nos.len());
        let mut missing = Vec::new();
        {
            let known = self.0.read();
            for no in nos {
                match known.get(no) {
                    Some(v) => {
                        out.insert(*no, *v);
                    }
                    None => missing.push(*no),
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let st = c.prepare_cached("SELECT number, id, currency FROM accounts WHERE number = ANY($1)").await?;
        let found: Vec<(i64, (AccountId, CurrencyCode))> = c
            .query(&st, &[&missing])
            .await?
            .iter()
            .map(|r| Ok((get(r, 0)?, (AccountId(get(r, 1)?), parse(r, 2)?))))
            .collect::<Res<_>>()?;
        let mut known = self.0.write();
        if known.len() + found.len() > NUMBERS_MAX {
            known.clear();
        }
        known.extend(found.iter().copied());
        out.extend(found);
        Ok(out)
    }
}

type P<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

const ENTRY_COLS: &str =
    "seq, platform_id, kind, idem_key, request_hash, created_at, metadata, hold_id, incoming_id, reverses, fx, lines";

/// An entry without its lines, and its lines by account number.
fn entry_head(r: &Row) -> Res<(Entry, Vec<(i64, Values)>)> {
    let seq = u64_at(r, 0)?;
    let lines = codec::decode(get(r, 11)?, Order::Big)
        .ok_or_else(|| StoreError::Storage(format!("entry {seq}: malformed lines")))?;
    Ok((
        Entry {
            seq,
            platform: OwnerId(get(r, 1)?),
            kind: parse(r, 2)?,
            idempotency_key: get(r, 3)?,
            request_hash: get(r, 4)?,
            created_at: ts(r, 5)?,
            metadata: json(r, 6)?.unwrap_or_default(),
            lines: vec![],
            hold: get::<Option<uuid::Uuid>>(r, 7)?.map(HoldId),
            incoming: get::<Option<uuid::Uuid>>(r, 8)?.map(IncomingId),
            reverses: get::<Option<i64>>(r, 9)?.map(|v| v as u64),
            fx: json(r, 10)?,
        },
        lines,
    ))
}

/// Entries with their lines, in the order of `seqs` (missing ones left out).
pub async fn entries(c: &impl GenericClient, numbers: &Numbers, seqs: &[i64]) -> Res<Vec<Entry>> {
    let st = c.prepare_cached(&format!("SELECT {ENTRY_COLS} FROM entries WHERE seq = ANY($1)")).await?;
    let heads: Vec<(Entry, Vec<(i64, Values)>)> =
        c.query(&st, &[&seqs]).await?.iter().map(entry_head).collect::<Res<_>>()?;
    let nos: HashSet<i64> = heads.iter().flat_map(|(_, ls)| ls.iter().map(|(no, _)| *no)).collect();
    let accounts = numbers.resolve(c, &nos).await?;
    let mut by_seq: HashMap<u64, Entry> = HashMap::with_capacity(heads.len());
    for (mut e, lines) in heads {
        for (no, v) in lines {
            let (id, currency) = accounts.get(&no).ok_or_else(|| {
                StoreError::Storage(format!("entry {} has a line for account number {no}, which is not stored", e.seq))
            })?;
            e.lines.push(codec::line_of(*id, *currency, v));
        }
        by_seq.insert(e.seq, e);
    }
    Ok(seqs.iter().filter_map(|s| by_seq.remove(&(*s as u64))).collect())
}

/// What reversals need of earlier entries.
pub async fn entry_refs(c: &impl GenericClient, numbers: &Numbers, seqs: &[i64]) -> Res<Vec<EntryRef>> {
    let es = entries(c, numbers, seqs).await?;
    let st = c.prepare_cached("SELECT reverses, seq FROM entries WHERE reverses = ANY($1)").await?;
    let by: HashMap<i64, i64> =
        c.query(&st, &[&seqs]).await?.iter().map(|r| Ok((get(r, 0)?, get(r, 1)?))).collect::<Res<_>>()?;
    Ok(es
        .into_iter()
        .map(|e| EntryRef {
            seq: e.seq,
            platform: e.platform,
            kind: e.kind,
            posted: e.lines.iter().map(|l| (l.account, l.posted)).collect(),
            reversed_by: by.get(&(e.seq as i64)).map(|v| *v as u64),
        })
        .collect())
}

/// SQL condition: entry `e` is past the projected position.
const IN_TAIL: &str = "e.seq > (SELECT projected_seq FROM coffer_projection)";

/// The account's history, newest first (see the module doc for how the two reads merge).
pub async fn history(c: &impl GenericClient, a: &Account, page: &crate::Page) -> Res<Vec<crate::HistoryItem>> {
    let (before, after, limit) = bounds(page);
    let tail = c
        .prepare_cached(&format!(
            "SELECT e.seq, e.kind, e.created_at, e.lines FROM entries e
             WHERE {IN_TAIL} AND e.seq < $2 AND e.seq > $3 AND {}
             ORDER BY e.seq DESC LIMIT $4",
            names_account("$1", false)
        ))
        .await?;
    let table = c
        .prepare_cached(
            "SELECT l.seq, e.kind, e.created_at, l.posted, l.held, l.incoming, l.posted_after, l.held_after, l.incoming_after
             FROM lines l JOIN entries e ON e.seq = l.seq
             WHERE l.account_no = $1 AND l.seq < $2 AND l.seq > $3 ORDER BY l.seq DESC LIMIT $4",
        )
        .await?;
    let no = a.number as i64;
    let needle = Order::Big.number(no).to_vec();
    let (p_tail, p_table): ([P; 4], [P; 4]) = ([&needle, &before, &after, &limit], [&no, &before, &after, &limit]);
    let (tail, table) = futures_util::try_join!(c.query(&tail, &p_tail), c.query(&table, &p_table))?;
    let item = |seq, kind, at, v: Values| crate::HistoryItem {
        seq,
        kind,
        created_at: at,
        line: codec::line_of(a.id, a.currency, v),
    };
    let mut out = Vec::with_capacity(tail.len() + table.len());
    for r in &tail {
        let seq = u64_at(r, 0)?;
        let lines = codec::decode(get(r, 3)?, Order::Big)
            .ok_or_else(|| StoreError::Storage(format!("entry {seq}: malformed lines")))?;
        for (_, v) in lines.into_iter().filter(|(n, _)| *n == no) {
            out.push(item(seq, parse(r, 1)?, ts(r, 2)?, v));
        }
    }
    for r in &table {
        let v = [get(r, 3)?, get(r, 4)?, get(r, 5)?, get(r, 6)?, get(r, 7)?, get(r, 8)?];
        out.push(item(u64_at(r, 0)?, parse(r, 1)?, ts(r, 2)?, v));
    }
    out.sort_by_key(|x| std::cmp::Reverse(x.seq));
    out.dedup_by_key(|x| x.seq);
    out.truncate(limit as usize);
    Ok(out)
}

/// Balances of accounts (by number; `None` for unknown ones) just after `seq`, in the order
/// given: each account's last line at or before `seq`, in the tail or the table, whichever is
/// later.
pub async fn balances_at(c: &impl GenericClient, numbers: &[Option<i64>], seq: Seq) -> Res<Vec<(i64, i64, i64)>> {
    let tail = c
        .prepare_cached(&format!(
            "SELECT e.seq, e.lines FROM entries e WHERE {IN_TAIL} AND e.seq <= $2 AND {}",
            names_account("$1::bytea[]", true)
        ))
        .await?;
    let table = c
        .prepare_cached(
            "SELECT a.i, l.seq, l.posted_after, l.held_after, l.incoming_after
             FROM unnest($1::bigint[]) WITH ORDINALITY AS a(no, i)
             JOIN LATERAL (SELECT seq, posted_after, held_after, incoming_after FROM lines
                           WHERE account_no = a.no AND seq <= $2 ORDER BY seq DESC LIMIT 1) l ON true",
        )
        .await?;
    let known: Vec<i64> = numbers.iter().map(|n| n.unwrap_or(-1)).collect();
    let needles: Vec<Vec<u8>> = numbers.iter().flatten().map(|n| Order::Big.number(*n).to_vec()).collect();
    let seq = seq.min(i64::MAX as u64) as i64;
    let (p_tail, p_table): ([P; 2], [P; 2]) = ([&needles, &seq], [&known, &seq]);
    let (tail, table) = futures_util::try_join!(c.query(&tail, &p_tail), c.query(&table, &p_table))?;
    // The latest line seen of each account number: (seq, balances).
    let mut last: HashMap<i64, (i64, (i64, i64, i64))> = HashMap::new();
    let mut see = |no: i64, s: i64, b: (i64, i64, i64)| {
        let e = last.entry(no).or_insert((s, b));
        if s > e.0 {
            *e = (s, b);
        }
    };
    for r in &tail {
        let s: i64 = get(r, 0)?;
        let lines = codec::decode(get(r, 1)?, Order::Big)
            .ok_or_else(|| StoreError::Storage(format!("entry {s}: malformed lines")))?;
        for (no, v) in lines {
            see(no, s, (v[3], v[4], v[5]));
        }
    }
    for r in &table {
        let i = get::<i64>(r, 0)? as usize - 1;
        see(known[i], get(r, 1)?, (get(r, 2)?, get(r, 3)?, get(r, 4)?));
    }
    Ok(known.iter().map(|no| last.get(no).map_or((0, 0, 0), |x| x.1)).collect())
}

/// The platform's entries, newest first.
pub async fn platform_entries(
    c: &impl GenericClient,
    numbers: &Numbers,
    platform: OwnerId,
    page: &crate::Page,
) -> Res<Vec<Entry>> {
    let (before, after, limit) = bounds(page);
    let st = c
        .prepare_cached(
            "SELECT seq FROM entries WHERE platform_id = $1 AND seq < $2 AND seq > $3 ORDER BY seq DESC LIMIT $4",
        )
        .await?;
    let seqs: Vec<i64> =
        c.query(&st, &[&platform.0, &before, &after, &limit]).await?.iter().map(|r| get(r, 0)).collect::<Res<_>>()?;
    entries(c, numbers, &seqs).await
}

/// A platform's entries whose metadata has the (key, value) `tag`, newest first (the `tags`
/// index).
pub async fn tagged_entries(
    c: &impl GenericClient,
    numbers: &Numbers,
    platform: OwnerId,
    (key, value): (&str, &str),
    page: &crate::Page,
) -> Res<Vec<Entry>> {
    let (before, after, limit) = bounds(page);
    let st = c
        .prepare_cached(
            "SELECT seq FROM tags WHERE platform_id = $1 AND key = $2 AND value = $3 AND seq < $4 AND seq > $5
             ORDER BY seq DESC LIMIT $6",
        )
        .await?;
    let seqs: Vec<i64> = c
        .query(&st, &[&platform.0, &key, &value, &before, &after, &limit])
        .await?
        .iter()
        .map(|r| get(r, 0))
        .collect::<Res<_>>()?;
    entries(c, numbers, &seqs).await
}

/// The settled position: the projector's, or past it as far as the numbers after it are
/// contiguous (each committed, by an entry or a status change; a gap waits for the projector
/// to decide it).
pub async fn settled_seq(c: &impl GenericClient) -> Res<Seq> {
    let st = c
        .prepare_cached(
            "SELECT projected_seq, ARRAY(SELECT seq FROM entries WHERE seq > projected_seq
                 UNION ALL SELECT seq FROM status_changes WHERE seq > projected_seq ORDER BY seq LIMIT $1)
             FROM coffer_projection",
        )
        .await?;
    let r = c.query_one(&st, &[&super::projector::STEP_ENTRIES]).await?;
    let (p, seqs): (i64, Vec<i64>) = (get(&r, 0)?, get(&r, 1)?);
    let contiguous = seqs.iter().zip(p + 1..).take_while(|(s, n)| **s == *n).count() as u64;
    Ok(p as u64 + contiguous)
}

/// The last seq among the entries made at or before `t`.
pub async fn seq_at(c: &impl GenericClient, t: Timestamp) -> Res<Seq> {
    let st = c.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM entries WHERE created_at <= $1").await?;
    u64_at(&c.query_one(&st, &[&t.0]).await?, 0)
}
