//! The event feed: the journal's events (`coffer_core::events`) of one platform, oldest first,
//! from a cursor, as far as the journal is settled, and only what the caller reaches.
//!
//! A cursor is the next position to read: an entry number and the index of the next event in it.
//! It is made of journal positions only, so it survives restarts and means the same on every
//! node. The feed never passes the settled position (`Store::settled_seq`): an entry number
//! below it that is not in the journal never will be, so a reader that resumes from a cursor
//! misses nothing and sees nothing twice (delivery to webhooks, when it exists, is at least
//! once on top of this).
//!
//! A status change (of an owner, a wallet, a webhook endpoint) holds a journal number of its
//! own, so it is read in its place like an entry: one event, at index 0 of its number.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use coffer_core::alerts::Alert;
use coffer_core::events::{self, EventType};
use coffer_core::money::format_minor;
use coffer_core::*;
use coffer_store::Store;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Actor, AppError};
use crate::directory::Directory;
use crate::reach::EntryReach;
use crate::render;

pub const DEFAULT_EVENTS: usize = 100;
pub const MAX_EVENTS: usize = 1000;
/// Entry numbers one store read covers.
const WINDOW: u64 = 1000;
/// Windows one request reads at most before it answers (with the cursor where it stopped).
const MAX_WINDOWS: usize = 20;
/// Longest a request may wait for an event (`wait`).
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// How often a waiting request looks at the journal again.
const POLL: Duration = Duration::from_millis(100);

/// Where a feed resumes: the entry number and the index of the next event in that entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub seq: Seq,
    pub index: u32,
}

impl Cursor {
    pub const START: Cursor = Cursor { seq: 1, index: 0 };

    /// Just after the event with this id (`<number>.<index>`).
    pub fn after(id: &str) -> Result<Cursor, AppError> {
        let c = Cursor::parse(&format!("e{id}"))?;
        Ok(Cursor { seq: c.seq, index: c.index + 1 })
    }

    pub fn parse(s: &str) -> Result<Cursor, AppError> {
        let bad = || AppError::invalid("invalid_cursor", "cursor is not one this API returned").at("cursor");
        let (seq, index) = s.strip_prefix('e').and_then(|r| r.split_once('.')).ok_or_else(bad)?;
        // Entry numbers start at 1.
        let seq: Seq = seq.parse().map_err(|_| bad())?;
        Ok(Cursor { seq: seq.max(1), index: index.parse().map_err(|_| bad())? })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "e{}.{}", self.seq, self.index)
    }
}

/// Balances of a wallet at one instant, as decimal strings.
#[derive(Debug, Serialize, ToSchema)]
pub struct CountersView {
    pub posted: String,
    pub held: String,
    pub available: String,
    pub incoming: String,
}

/// What a `*.status_changed` or `webhook_endpoint.disabled` event reports.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusView {
    /// owner, wallet or webhook_endpoint.
    pub subject: String,
    /// The owner's, wallet's or endpoint's id.
    pub id: Uuid,
    pub from: String,
    pub to: String,
    /// Why (set for an endpoint disabled after failing).
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Stable: the same event always has the same id (`<journal number>.<index>`).
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The transaction (journal entry) the event comes from; null for a status change, which
    /// holds a journal number of its own (the id's first part).
    pub transaction: Option<u64>,
    pub transaction_kind: Option<String>,
    pub created_at: String,
    pub platform: Uuid,
    /// The wallet (`balance.changed`; and `hold.*`, `incoming.*`: the hold's or credit's),
    /// with its owner and the owners above it up to the platform.
    pub wallet: Option<Uuid>,
    pub currency: Option<String>,
    pub owners: Vec<Uuid>,
    pub before: Option<CountersView>,
    pub after: Option<CountersView>,
    pub hold: Option<Uuid>,
    pub incoming: Option<Uuid>,
    /// `transaction.reversed`: the transaction reversed.
    pub reverses: Option<u64>,
    /// `alert.triggered`, `alert.cleared`: the alert (`before` and `after` are the wallet's
    /// balances around the crossing).
    pub alert: Option<Uuid>,
    pub metadata: BTreeMap<String, String>,
    /// Status changes: what changed (`owners` starts with its owner).
    pub status: Option<StatusView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventsView {
    /// Oldest first.
    pub data: Vec<EventView>,
    /// Where to resume: pass it as `cursor` next time (also when `data` is empty).
    pub next_cursor: String,
    /// More events are settled past `next_cursor` now (ask again at once).
    pub has_more: bool,
}

/// What a feed request asks for.
#[derive(Debug, Clone)]
pub struct FeedQuery {
    /// The platform (the operator names one; a key's own platform otherwise).
    pub platform: Option<OwnerId>,
    pub cursor: Cursor,
    /// Every type when `None`.
    pub types: Option<Vec<EventType>>,
    pub limit: usize,
    pub wait: Duration,
}

/// `limit`: 1 to [`MAX_EVENTS`], default [`DEFAULT_EVENTS`].
pub fn limit(limit: Option<usize>) -> Result<usize, AppError> {
    match limit.unwrap_or(DEFAULT_EVENTS) {
        n @ 1..=MAX_EVENTS => Ok(n),
        _ => Err(AppError::invalid("invalid_argument", format!("limit must be 1 to {MAX_EVENTS}")).at("limit")),
    }
}

/// `types`: comma-separated event types.
pub fn types(s: Option<&str>) -> Result<Option<Vec<EventType>>, AppError> {
    s.map(|s| {
        s.split(',')
            .map(|t| t.trim().parse::<EventType>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AppError::invalid("invalid_argument", e.to_string()).at("types"))
    })
    .transpose()
}

/// Where a `cursor` starts: `end` is just after the last settled entry (events from now on),
/// another value a cursor this API returned; the journal's start when absent.
pub async fn start(dir: &Directory, given: Option<&str>) -> Result<Cursor, AppError> {
    match given {
        Some("end") => Ok(Cursor { seq: dir.settled_seq().await?.saturating_add(1), index: 0 }),
        Some(c) => Cursor::parse(c),
        None => Ok(Cursor::START),
    }
}

/// The feed: events after the cursor, waiting up to `wait` for one when there is none yet.
pub async fn feed(dir: &Directory, actor: Actor<'_>, q: FeedQuery) -> Result<EventsView, AppError> {
    let platform = actor.platform_of(dir, q.platform).await?;
    let deadline = Instant::now() + q.wait.min(MAX_WAIT);
    loop {
        let page = read(dir, actor, platform, &q).await?;
        if !page.data.is_empty() || page.has_more || Instant::now() >= deadline {
            return Ok(page);
        }
        tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

/// One look at the journal from the cursor.
async fn read(dir: &Directory, actor: Actor<'_>, platform: OwnerId, q: &FeedQuery) -> Result<EventsView, AppError> {
    let settled = dir.settled_seq().await?;
    if q.cursor.seq > settled {
        return Ok(EventsView { data: Vec::new(), next_cursor: q.cursor.to_string(), has_more: false });
    }
    let mut at = q.cursor;
    let mut data = Vec::new();
    let mut owners = Owners::default();
    let mut held_back = false;
    let mut memo = crate::reach::OwnerMemo::default();
    for _ in 0..MAX_WINDOWS {
        if at.seq > settled || data.len() == q.limit {
            break;
        }
        let last = settled.min(at.seq.saturating_add(WINDOW - 1));
        // The alerts come with the entries, exact for them (`crate::tail`).
        let settled_window = dir.settled_entries(platform, at.seq, last).await?;
        let mut alerts: HashMap<AccountId, Vec<Alert>> = HashMap::new();
        for a in settled_window.alerts.iter() {
            alerts.entry(a.wallet).or_default().push(a.clone());
        }
        let of_wallet = |w: AccountId| alerts.get(&w).map_or(&[][..], Vec::as_slice);
        for item in items(&settled_window) {
            let t = match item {
                Item::Entry(t) => t,
                Item::Status(s) => {
                    if s.seq == at.seq && at.index > 0 {
                        continue;
                    }
                    let wanted = q.types.as_ref().is_none_or(|t| t.contains(&events::of_status(s)));
                    if wanted && actor.reaches_known(dir, s.platform, s.owner, &mut memo).await? {
                        if data.len() == q.limit {
                            let next_cursor = Cursor { seq: s.seq, index: 0 }.to_string();
                            return Ok(EventsView { data, next_cursor, has_more: true });
                        }
                        data.push(status_view(dir, &mut owners, s).await?);
                    }
                    at = Cursor { seq: s.seq + 1, index: 0 };
                    continue;
                }
            };
            let e = &t.entry;
            let reach = actor.entry_reach_known(dir, t, &mut memo).await?;
            if !reach.any() {
                // Nothing of it is the caller's: no event of it is shown.
                at = Cursor { seq: e.seq + 1, index: 0 };
                continue;
            }
            let skip = if e.seq == at.seq { at.index } else { 0 };
            for ev in events::with_alerts(e, of_wallet).into_iter().filter(|ev| ev.index >= skip) {
                if data.len() == q.limit {
                    return Ok(EventsView {
                        data,
                        next_cursor: Cursor { seq: e.seq, index: ev.index }.to_string(),
                        has_more: true,
                    });
                }
                if q.types.as_ref().is_none_or(|t| t.contains(&ev.kind)) && visible(&ev, &reach) {
                    data.push(view(dir, &mut owners, e, &ev, &reach).await?);
                }
            }
            at = Cursor { seq: e.seq + 1, index: 0 };
        }
        at = at.max(Cursor { seq: settled_window.through + 1, index: 0 });
        if settled_window.through < last {
            held_back = true;
            break;
        }
    }
    Ok(EventsView { data, next_cursor: at.to_string(), has_more: !held_back && at.seq <= settled })
}

/// What one journal number holds for the feed.
enum Item<'a> {
    Entry(&'a crate::tail::Tailed),
    Status(&'a StatusChange),
}

/// The entries and status changes read, merged in journal order (no number holds both).
fn items(s: &crate::tail::Settled) -> Vec<Item<'_>> {
    let mut out = Vec::with_capacity(s.entries.len() + s.statuses.len());
    let (mut e, mut c) = (s.entries.iter().peekable(), s.statuses.iter().peekable());
    loop {
        let item = match (e.peek(), c.peek()) {
            (Some(t), Some(x)) if t.entry.seq < x.seq => Item::Entry(e.next().expect("peeked")),
            (_, Some(_)) => Item::Status(c.next().expect("peeked")),
            (Some(_), None) => Item::Entry(e.next().expect("peeked")),
            (None, None) => return out,
        };
        out.push(item);
    }
}

/// A status change as the caller sees it.
async fn status_view(dir: &Directory, owners: &mut Owners, s: &StatusChange) -> Result<EventView, AppError> {
    Ok(EventView {
        id: format!("{}.0", s.seq),
        kind: events::of_status(s).to_string(),
        transaction: None,
        transaction_kind: None,
        created_at: render::time(s.created_at),
        platform: s.platform.0,
        wallet: match s.subject {
            StatusSubject::Wallet(a) => Some(a.0),
            _ => None,
        },
        currency: None,
        owners: owners.chain(dir, s.owner).await?,
        before: None,
        after: None,
        hold: None,
        incoming: None,
        reverses: None,
        alert: None,
        metadata: BTreeMap::new(),
        status: Some(StatusView {
            subject: s.subject.kind().to_string(),
            id: s.subject.id(),
            from: s.from.clone(),
            to: s.to.clone(),
            reason: s.reason.clone(),
        }),
    })
}

/// A caller sees a wallet's balance change if it reaches the wallet, and an entry's own event
/// if it reaches any of its lines.
fn visible(ev: &events::Event, reach: &EntryReach) -> bool {
    match ev.line {
        Some(i) => reach.0.get(i).copied().unwrap_or(false),
        None => reach.any(),
    }
}

/// Owner chains, looked up once per request.
#[derive(Default)]
struct Owners(HashMap<OwnerId, Vec<Uuid>>);

impl Owners {
    /// `owner` and every owner above it, up to the platform.
    async fn chain(&mut self, dir: &Directory, owner: OwnerId) -> Result<Vec<Uuid>, AppError> {
        if let Some(c) = self.0.get(&owner) {
            return Ok(c.clone());
        }
        let mut chain = Vec::new();
        let mut cur = Some(owner);
        while let Some(id) = cur.filter(|_| chain.len() < 16) {
            chain.push(id.0);
            cur = dir.owner(id).await?.and_then(|o| o.parent);
        }
        self.0.insert(owner, chain.clone());
        Ok(chain)
    }
}

/// An event as the caller sees it. A hold's or incoming credit's event names the wallet of the
/// entry's first line (the hold's or credit's own) when the caller reaches it.
async fn view(
    dir: &Directory,
    owners: &mut Owners,
    e: &Entry,
    ev: &events::Event,
    reach: &EntryReach,
) -> Result<EventView, AppError> {
    let mut v = EventView {
        id: format!("{}.{}", e.seq, ev.index),
        kind: ev.kind.to_string(),
        transaction: Some(e.seq),
        transaction_kind: Some(e.kind.to_string()),
        created_at: render::time(e.created_at),
        platform: e.platform.0,
        wallet: None,
        currency: None,
        owners: Vec::new(),
        before: None,
        after: None,
        hold: e.hold.map(|h| h.0),
        incoming: e.incoming.map(|i| i.0),
        reverses: e.reverses,
        alert: ev.alert.map(|a| a.0),
        metadata: e.metadata.clone(),
        status: None,
    };
    let own = (e.hold.is_some() || e.incoming.is_some()) && reach.0.first() == Some(&true);
    let about = ev.line.or(own.then_some(0));
    if let Some(l) = about.and_then(|i| e.lines.get(i)) {
        let place = dir.place(l.account).await?;
        let x = place.map_or(0, |p| p.exponent);
        let counters = |(p, h, i): (i64, i64, i64)| CountersView {
            posted: format_minor(p, x),
            held: format_minor(h, x),
            available: format_minor(p - h, x),
            incoming: format_minor(i, x),
        };
        v.wallet = Some(l.account.0);
        v.currency = Some(l.currency.to_string());
        if let Some(p) = place {
            v.owners = owners.chain(dir, p.owner).await?;
        }
        if ev.line.is_some() {
            v.before = Some(counters(events::before(l)));
            v.after = Some(counters((l.posted_after, l.held_after, l.incoming_after)));
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_what_they_did_not_make() {
        let c = Cursor { seq: 42, index: 3 };
        assert_eq!(Cursor::parse(&c.to_string()).unwrap(), c);
        for bad in ["", "e", "e1", "s1.0", "e1.x", "ex.1", "e-1.0"] {
            assert!(Cursor::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Cursor::after("42.3").unwrap(), Cursor { seq: 42, index: 4 });
        assert!(Cursor::after("42").is_err());
    }
}
