//! The journal as callers read it: one transaction, pages of transactions (of a wallet, or a
//! platform's), and a wallet's history with running balances. Pages run newest first; a cursor
//! is the seq the next page starts below, so pages never skip or repeat.

use coffer_core::money::{format_minor, parse_minor};
use coffer_core::*;
use coffer_store::{Page, Store, StoreError};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Actor, AppError, At};
use crate::directory::Directory;
use crate::render::{self, TransactionView};

pub const DEFAULT_PAGE: usize = 25;
pub const MAX_PAGE: usize = 200;
/// Pages of the journal a filtered listing reads at most for one page of answers.
const MAX_SCANNED_PAGES: usize = 20;

/// A page size asked for: 1 to [`MAX_PAGE`], default [`DEFAULT_PAGE`].
pub fn page_limit(limit: Option<usize>) -> Result<usize, AppError> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => Ok(n),
        _ => Err(AppError::invalid("invalid_argument", format!("limit must be 1 to {MAX_PAGE}")).at("limit")),
    }
}

/// Cursors are opaque to clients; inside, the seq the next page starts below.
pub fn parse_cursor(c: Option<&str>) -> Result<Option<Seq>, AppError> {
    c.map(|c| {
        c.strip_prefix('s')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| AppError::invalid("invalid_cursor", "cursor is not one this API returned").at("cursor"))
    })
    .transpose()
}

fn cursor(seq: Seq) -> String {
    format!("s{seq}")
}

/// Which part of the journal a page covers: entries made in `[from, to]`, below `cursor`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub limit: usize,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub cursor: Option<Seq>,
}

/// The seq bounds `(after, before)` of a window.
async fn seqs(dir: &Directory, w: &Window) -> Result<(Option<Seq>, Option<Seq>), AppError> {
    let after = match w.from {
        Some(t) => Some(dir.seq_at(Timestamp(t.0 - 1)).await?),
        None => None,
    };
    let mut before = match w.to {
        Some(t) => Some(dir.seq_at(t).await? + 1),
        None => None,
    };
    if let Some(c) = w.cursor {
        before = Some(before.map_or(c, |b| b.min(c)));
    }
    Ok((after, before))
}

pub async fn transaction(dir: &Directory, actor: Actor<'_>, seq: Seq) -> Result<TransactionView, AppError> {
    let (e, reach) = actor.entry(dir, seq).await?;
    Ok(render::entry(dir, &e, &reach).await?)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionsView {
    pub data: Vec<TransactionView>,
    /// Null on the last page.
    pub next_cursor: Option<String>,
}

/// What a transaction listing keeps.
#[derive(Debug, Clone, Default)]
pub struct Search<'a> {
    pub kind: Option<EntryKind>,
    /// Entries whose metadata has this key and value (found through the store's index).
    pub tag: Option<(&'a str, &'a str)>,
    /// Decimal bounds, both included, on the wallet's change (its absolute value); a wallet
    /// listing only.
    pub min_amount: Option<&'a str>,
    pub max_amount: Option<&'a str>,
}

/// Entries of one wallet, or (a platform acting as itself) of the whole platform, newest
/// first, optionally of one kind, with a metadata key and value, and within an amount range.
pub async fn transactions(
    dir: &Directory,
    actor: Actor<'_>,
    wallet: Option<AccountId>,
    search: Search<'_>,
    w: Window,
) -> Result<TransactionsView, AppError> {
    let (after, mut before) = seqs(dir, &w).await?;
    let place = match wallet {
        Some(id) => Some(actor.wallet_ref(dir, id).await?),
        None => None,
    };
    let platform = match (&place, actor) {
        (Some(p), _) => p.platform,
        (None, Actor::Key(c)) if c.is_platform() => c.acting.platform,
        _ => {
            return Err(AppError::invalid(
                "invalid_argument",
                "give wallet=<id>; only a platform lists all its transactions",
            )
            .at("wallet"))
        }
    };
    let amount = |v: Option<&str>, field: &'static str| -> Result<Option<i64>, AppError> {
        match (v, &place) {
            (None, _) => Ok(None),
            (Some(v), Some(p)) => Ok(Some(parse_minor(v, p.exponent).at(field)?)),
            (Some(_), None) => Err(AppError::invalid("invalid_argument", "amount bounds need wallet=<id>").at(field)),
        }
    };
    let (min, max) = (amount(search.min_amount, "min_amount")?, amount(search.max_amount, "max_amount")?);
    if let Some((k, v)) = search.tag {
        // What metadata may hold is what may be searched for.
        let m = std::collections::BTreeMap::from([(k.to_string(), v.to_string())]);
        coffer_core::text::check_metadata(&m).map_err(StoreError::from).at("metadata_key")?;
    }
    let keep = |e: &Entry| {
        let change: i64 = place.map_or(0, |p| e.lines.iter().filter(|l| l.account == p.id).map(|l| l.posted).sum());
        search.kind.is_none_or(|k| e.kind == k)
            && place.is_none_or(|p| e.lines.iter().any(|l| l.account == p.id))
            && min.is_none_or(|m| change.unsigned_abs() >= m.unsigned_abs())
            && max.is_none_or(|m| change.unsigned_abs() <= m.unsigned_abs())
    };
    let limit = w.limit;
    let (mut out, mut last, mut exhausted) = (Vec::new(), None, false);
    for _ in 0..MAX_SCANNED_PAGES {
        let page = Page { before, after, limit };
        let batch: Vec<Entry> = match (search.tag, &place) {
            (Some((k, v)), _) => dir.tagged(platform, k, v, page).await?,
            (None, Some(p)) => {
                let seqs = dir.history(p.id, page).await?.iter().map(|h| h.seq).collect();
                dir.entries_at(seqs).await?
            }
            (None, None) => dir.entries(platform, page).await?,
        };
        let n = batch.len();
        for e in batch {
            last = Some(e.seq);
            before = Some(e.seq);
            if keep(&e) {
                out.push(e);
                if out.len() == limit {
                    break;
                }
            }
        }
        if n < limit {
            exhausted = true;
            break;
        }
        if out.len() == limit {
            break;
        }
    }
    let next_cursor = if exhausted && out.len() < limit { None } else { last.map(cursor) };
    let mut data = Vec::with_capacity(out.len());
    for e in &out {
        let reach = actor.entry_reach(dir, e).await?;
        data.push(render::entry(dir, e, &reach).await?);
    }
    Ok(TransactionsView { data, next_cursor })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryItemView {
    pub transaction: u64,
    pub kind: String,
    pub created_at: String,
    pub posted: String,
    pub held: String,
    pub incoming: String,
    pub posted_after: String,
    pub held_after: String,
    pub available_after: String,
    pub incoming_after: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryView {
    pub wallet: Uuid,
    pub data: Vec<HistoryItemView>,
    /// Null on the last page.
    pub next_cursor: Option<String>,
}

/// A wallet's journal lines with running balances, newest first.
pub async fn history(dir: &Directory, actor: Actor<'_>, wallet: AccountId, w: Window) -> Result<HistoryView, AppError> {
    let a = actor.wallet(dir, wallet).await?;
    let (after, before) = seqs(dir, &w).await?;
    let items = dir.history(a.id, Page { before, after, limit: w.limit }).await?;
    let next_cursor = (items.len() == w.limit).then(|| items.last().map(|i| cursor(i.seq))).flatten();
    let data = items.iter().map(|i| item_view(i, a.exponent)).collect();
    Ok(HistoryView { wallet: a.id.0, data, next_cursor })
}

/// A wallet's journal line as the APIs show it, amounts in the wallet's exponent `x`.
pub fn item_view(i: &coffer_store::HistoryItem, x: u8) -> HistoryItemView {
    let f = |v: i64| format_minor(v, x);
    HistoryItemView {
        transaction: i.seq,
        kind: i.kind.to_string(),
        created_at: render::time(i.created_at),
        posted: f(i.line.posted),
        held: f(i.line.held),
        incoming: f(i.line.incoming),
        posted_after: f(i.line.posted_after),
        held_after: f(i.line.held_after),
        available_after: f(i.line.posted_after - i.line.held_after),
        incoming_after: f(i.line.incoming_after),
    }
}
