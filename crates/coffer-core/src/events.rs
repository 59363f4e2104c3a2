//! Events derived from the journal: what one committed entry tells the world. Pure: the same
//! entry always gives the same events, in the same order, so an event's id (its entry's seq and
//! its index there) is stable, nothing can be published that the journal does not hold, and
//! nothing the journal holds can be missed by a reader that walks it in order.
//!
//! An entry gives first the event its kind implies (a hold placed, captured, released or expired;
//! an incoming credit created, settled or cancelled; a transaction reversed), if any, then one
//! `balance.changed` per line (per wallet), in line order, each followed by what it does to the
//! wallet's balance alerts (`alerts`).
//!
//! A status change (`StatusChange`) holds a journal number of its own and gives one event, at
//! index 0 there.

use crate::alerts::Alert;
use crate::model::*;

pub use crate::model::EventType;

/// One event of an entry: its index in the entry's events, its type, for `balance.changed`
/// and alert events the line (index into `Entry::lines`) it reports, and for alert events the
/// alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub index: u32,
    pub kind: EventType,
    pub line: Option<usize>,
    pub alert: Option<AlertId>,
}

/// The event an entry's kind implies, if any.
fn kind_event(kind: EntryKind) -> Option<EventType> {
    Some(match kind {
        EntryKind::HoldCreate => EventType::HoldCreated,
        EntryKind::HoldCapture => EventType::HoldCaptured,
        EntryKind::HoldRelease => EventType::HoldReleased,
        EntryKind::HoldExpire => EventType::HoldExpired,
        EntryKind::IncomingCreate => EventType::IncomingCreated,
        EntryKind::IncomingSettle => EventType::IncomingSettled,
        EntryKind::IncomingCancel => EventType::IncomingCancelled,
        EntryKind::Reversal => EventType::TransactionReversed,
        EntryKind::Transaction
        | EntryKind::Deposit
        | EntryKind::Payout
        | EntryKind::Transfer
        | EntryKind::Fee
        | EntryKind::FxConversion => return None,
    })
}

/// The one event a status change gives.
pub fn of_status(s: &StatusChange) -> EventType {
    match s.subject {
        StatusSubject::Owner(_) => EventType::OwnerStatusChanged,
        StatusSubject::Wallet(_) => EventType::WalletStatusChanged,
        StatusSubject::WebhookEndpoint(_) => EventType::WebhookEndpointDisabled,
    }
}

/// Every event of `e`, in order, without alerts.
pub fn of_entry(e: &Entry) -> Vec<Event> {
    with_alerts(e, |_| &[])
}

/// Every event of `e`, in order: after each line's balance change, what the line does to the
/// alerts `alerts(account)` lists for its wallet (those that apply to the entry, in the order
/// given: by position, then id, for the ids to stay stable).
pub fn with_alerts<'a>(e: &Entry, alerts: impl Fn(AccountId) -> &'a [Alert]) -> Vec<Event> {
    let mut out: Vec<(EventType, Option<usize>, Option<AlertId>)> = Vec::new();
    out.extend(kind_event(e.kind).map(|kind| (kind, None, None)));
    for (i, l) in e.lines.iter().enumerate() {
        out.push((EventType::BalanceChanged, Some(i), None));
        for a in alerts(l.account).iter().filter(|a| a.applies_to(e.seq)) {
            out.extend(a.crossing(l).map(|kind| (kind, Some(i), Some(a.id))));
        }
    }
    out.into_iter().enumerate().map(|(i, (kind, line, alert))| Event { index: i as u32, kind, line, alert }).collect()
}

/// A line's balances before the entry: (posted, held, incoming).
pub fn before(l: &Line) -> (i64, i64, i64) {
    (l.posted_after - l.posted, l.held_after - l.held, l.incoming_after - l.incoming)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::CurrencyCode;

    fn entry(kind: EntryKind, lines: usize) -> Entry {
        let line = Line {
            account: AccountId(uuid::Uuid::nil()),
            currency: "USD".parse::<CurrencyCode>().unwrap(),
            posted: 5,
            held: 0,
            incoming: 0,
            posted_after: 12,
            held_after: 3,
            incoming_after: 0,
        };
        Entry {
            seq: 7,
            platform: OwnerId(uuid::Uuid::nil()),
            kind,
            idempotency_key: "k".into(),
            request_hash: String::new(),
            created_at: Timestamp(0),
            metadata: Default::default(),
            lines: vec![line; lines],
            hold: None,
            incoming: None,
            reverses: None,
            fx: None,
        }
    }

    #[test]
    fn each_kind_gives_its_event_then_one_balance_change_per_line() {
        let types = |e: &Entry| of_entry(e).iter().map(|v| (v.index, v.kind.as_str(), v.line)).collect::<Vec<_>>();
        assert_eq!(
            types(&entry(EntryKind::Transfer, 2)),
            vec![(0, "balance.changed", Some(0)), (1, "balance.changed", Some(1))]
        );
        assert_eq!(
            types(&entry(EntryKind::HoldCreate, 1)),
            vec![(0, "hold.created", None), (1, "balance.changed", Some(0))]
        );
        assert_eq!(types(&entry(EntryKind::Reversal, 2))[0], (0, "transaction.reversed", None));
        for k in EntryKind::ALL {
            let e = entry(*k, 2);
            assert_eq!(of_entry(&e), of_entry(&e), "stable");
            assert_eq!(of_entry(&e).iter().filter(|v| v.kind == EventType::BalanceChanged).count(), 2);
        }
        assert_eq!(before(&entry(EntryKind::Deposit, 1).lines[0]), (7, 3, 0));
    }
}
