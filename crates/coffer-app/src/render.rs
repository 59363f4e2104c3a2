//! The native API's response shapes. These types are both what is serialized and what the
//! OpenAPI document describes, so the two cannot drift. Amounts are decimal strings in each
//! account's exponent; times are RFC 3339 (UTC, microseconds).

use std::collections::BTreeMap;

use coffer_core::money::format_minor;
use coffer_core::*;
use coffer_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::directory::Directory;
use crate::reach::EntryReach;

pub fn time(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp_micros(t.0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_else(|| t.0.to_string())
}

/// A platform, merchant or sub-merchant.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OwnerView {
    pub id: Uuid,
    /// PLATFORM, MERCHANT or SUB_MERCHANT.
    pub kind: String,
    pub platform: Uuid,
    pub parent: Option<Uuid>,
    pub name: String,
    /// ACTIVE, SUSPENDED or DELETED.
    pub status: String,
    pub default_currency: String,
    /// Platforms only: currencies whose exponent the platform raised.
    pub currency_exponents: BTreeMap<String, u8>,
    pub created_at: String,
}

pub fn owner(o: &Owner) -> OwnerView {
    OwnerView {
        id: o.id.0,
        kind: o.kind.to_string(),
        platform: o.platform.0,
        parent: o.parent.map(|p| p.0),
        name: o.name.clone(),
        status: o.status.to_string(),
        default_currency: o.default_currency.to_string(),
        currency_exponents: o.currency_exponents.iter().map(|(c, e)| (c.to_string(), *e)).collect(),
        created_at: time(o.created_at),
    }
}

/// An API key's public part. `key` (the secret) is present only in the answer that created it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: String,
    pub owner: Uuid,
    /// READ_ONLY or READ_WRITE.
    pub scope: String,
    /// ACTIVE or REVOKED.
    pub status: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    /// The registered RSA public key (base64 SubjectPublicKeyInfo DER), if any.
    pub public_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

pub fn api_key(k: &ApiKey) -> ApiKeyView {
    ApiKeyView {
        id: k.id.clone(),
        owner: k.owner.0,
        scope: k.scope.to_string(),
        status: k.status.to_string(),
        created_at: time(k.created_at),
        revoked_at: k.revoked_at.map(time),
        public_key: k.public_key.clone(),
        key: None,
    }
}

/// A wallet (or system account) with its balances.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WalletView {
    pub id: Uuid,
    pub number: u64,
    pub owner: Uuid,
    /// OPERATING, ACQUIRING, SETTLEMENT, RESERVE, PREPAID, GIFT, CARD, REFUND (or SYSTEM_...).
    #[serde(rename = "type")]
    pub wallet_type: String,
    pub currency: String,
    /// ACTIVE, PENDING, PROCESSING, FROZEN or CLOSED.
    pub status: String,
    pub posted: String,
    pub held: String,
    pub available: String,
    pub withdrawable: String,
    pub incoming: String,
    pub min_balance: String,
    /// Null: unbounded (system accounts).
    pub overdraft_limit: Option<String>,
    pub created_at: String,
    pub last_trade_at: Option<String>,
}

pub fn account(a: &Account) -> WalletView {
    let f = |v: i64| format_minor(v, a.exponent);
    WalletView {
        id: a.id.0,
        number: a.number,
        owner: a.owner.0,
        wallet_type: a.kind.to_string(),
        currency: a.currency.to_string(),
        status: a.status.to_string(),
        posted: f(a.posted),
        held: f(a.held),
        available: f(a.available()),
        withdrawable: f(a.withdrawable()),
        incoming: f(a.incoming),
        min_balance: f(a.min_balance),
        overdraft_limit: a.overdraft_limit.map(f),
        created_at: time(a.created_at),
        last_trade_at: a.last_trade_at.map(time),
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HoldView {
    pub id: Uuid,
    pub wallet: Uuid,
    pub amount: String,
    pub captured: String,
    /// OPEN, CAPTURED, RELEASED or EXPIRED.
    pub status: String,
    pub expires_at: Option<String>,
    pub created_at: String,
    pub closed_at: Option<String>,
}

pub fn hold(h: &Hold, exponent: u8) -> HoldView {
    HoldView {
        id: h.id.0,
        wallet: h.account.0,
        amount: format_minor(h.amount, exponent),
        captured: format_minor(h.captured, exponent),
        status: h.status.to_string(),
        expires_at: h.expires_at.map(time),
        created_at: time(h.created_at),
        closed_at: h.closed_at.map(time),
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncomingView {
    pub id: Uuid,
    pub wallet: Uuid,
    pub amount: String,
    /// PENDING, SETTLED or CANCELLED.
    pub status: String,
    pub created_at: String,
    pub closed_at: Option<String>,
}

pub fn incoming(i: &Incoming, exponent: u8) -> IncomingView {
    IncomingView {
        id: i.id.0,
        wallet: i.account.0,
        amount: format_minor(i.amount, exponent),
        status: i.status.to_string(),
        created_at: time(i.created_at),
        closed_at: i.closed_at.map(time),
    }
}

/// One account's part in a transaction: deltas and the balances after it. A line of an
/// account outside the caller's reach is redacted: only its currency is shown.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct LineView {
    /// Absent on a redacted line, like every figure below.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<Uuid>,
    pub currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub posted: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incoming: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub posted_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incoming_after: Option<String>,
    /// Present (and true) only on a redacted line.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FxView {
    pub rate: String,
    /// Where the rate came from, when the platform's stored rate was used.
    pub rate_source: Option<String>,
    pub from_currency: String,
    pub to_currency: String,
    pub from_amount: String,
    pub to_amount: String,
}

/// A journal entry.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TransactionView {
    pub seq: u64,
    /// TRANSACTION, DEPOSIT, PAYOUT, TRANSFER, FEE, REVERSAL, HOLD_*, INCOMING_*, FX_CONVERSION.
    pub kind: String,
    pub platform: Uuid,
    pub idempotency_key: String,
    pub created_at: String,
    pub metadata: BTreeMap<String, String>,
    pub lines: Vec<LineView>,
    pub hold: Option<Uuid>,
    pub incoming: Option<Uuid>,
    pub reverses: Option<u64>,
    pub fx: Option<FxView>,
}

/// An account's exponent: what never changes about it, so from the directory's memory once
/// seen (no store call per line).
async fn exponent(dir: &Directory, a: AccountId) -> Result<u8, StoreError> {
    Ok(dir.place(a).await?.map(|p| p.exponent).unwrap_or(0))
}

/// A journal entry as a caller sees it: the lines outside `reach` redacted.
pub async fn entry(dir: &Directory, e: &Entry, reach: &EntryReach) -> Result<TransactionView, StoreError> {
    let mut lines = Vec::with_capacity(e.lines.len());
    for (l, &seen) in e.lines.iter().zip(&reach.0) {
        if !seen {
            lines.push(LineView { currency: l.currency.to_string(), redacted: true, ..Default::default() });
            continue;
        }
        let x = exponent(dir, l.account).await?;
        let f = |v: i64| Some(format_minor(v, x));
        lines.push(LineView {
            account: Some(l.account.0),
            currency: l.currency.to_string(),
            posted: f(l.posted),
            held: f(l.held),
            incoming: f(l.incoming),
            posted_after: f(l.posted_after),
            held_after: f(l.held_after),
            incoming_after: f(l.incoming_after),
            redacted: false,
        });
    }
    let fx = match &e.fx {
        Some(fx) => {
            let by_currency = |c: CurrencyCode| e.lines.iter().find(|l| l.currency == c).map(|l| l.account);
            let fe = match by_currency(fx.from_currency) {
                Some(a) => exponent(dir, a).await?,
                None => 0,
            };
            let te = match by_currency(fx.to_currency) {
                Some(a) => exponent(dir, a).await?,
                None => 0,
            };
            Some(FxView {
                rate: fx.rate.clone(),
                rate_source: fx.rate_source.clone(),
                from_currency: fx.from_currency.to_string(),
                to_currency: fx.to_currency.to_string(),
                from_amount: format_minor(fx.from_amount, fe),
                to_amount: format_minor(fx.to_amount, te),
            })
        }
        None => None,
    };
    Ok(TransactionView {
        seq: e.seq,
        kind: e.kind.to_string(),
        platform: e.platform.0,
        idempotency_key: e.idempotency_key.clone(),
        created_at: time(e.created_at),
        metadata: e.metadata.clone(),
        lines,
        hold: e.hold.map(|h| h.0),
        incoming: e.incoming.map(|i| i.0),
        reverses: e.reverses,
        fx,
    })
}

/// The answer to a money movement.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MovementView {
    pub transaction: TransactionView,
    /// True when this answers a replayed idempotency key with the first result.
    pub replayed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold: Option<HoldView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incoming: Option<IncomingView>,
}

pub async fn movement(
    dir: &Directory,
    e: &Entry,
    h: Option<&Hold>,
    i: Option<&Incoming>,
    replayed: bool,
    reach: &EntryReach,
) -> Result<MovementView, StoreError> {
    Ok(MovementView {
        transaction: entry(dir, e, reach).await?,
        replayed,
        hold: match h {
            Some(h) => Some(hold(h, exponent(dir, h.account).await?)),
            None => None,
        },
        incoming: match i {
            Some(i) => Some(incoming(i, exponent(dir, i.account).await?)),
            None => None,
        },
    })
}

/// A recorded rate and where it came from.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RateView {
    pub base: String,
    pub quote: String,
    /// Units of `quote` per unit of `base`, exact.
    pub rate: String,
    pub source: String,
    pub effective_at: String,
    pub recorded_at: String,
}

pub fn rate_view(q: &coffer_core::fx::RateQuote) -> RateView {
    RateView {
        base: q.base.to_string(),
        quote: q.quote.to_string(),
        rate: q.rate.to_string(),
        source: q.source.clone(),
        effective_at: time(q.effective_at),
        recorded_at: time(q.recorded_at),
    }
}
