//! JSON shapes the CLI prints: amounts as exact decimal strings in each account's exponent,
//! times as RFC 3339.

use coffer_core::money::format_minor;
use coffer_core::*;
use coffer_store::{Store, StoreError};
use serde_json::{json, Value};

pub fn time(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp_micros(t.0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_else(|| t.0.to_string())
}

pub fn owner(o: &Owner) -> Value {
    json!({
        "id": o.id,
        "kind": o.kind,
        "platform": o.platform,
        "parent": o.parent,
        "name": o.name,
        "status": o.status,
        "default_currency": o.default_currency,
        "currency_exponents": o.currency_exponents,
        "created_at": time(o.created_at),
    })
}

/// An API key's public part (never the secret or its hash).
pub fn api_key(k: &ApiKey) -> Value {
    json!({
        "id": k.id,
        "owner": k.owner,
        "scope": k.scope,
        "status": k.status,
        "created_at": time(k.created_at),
        "revoked_at": k.revoked_at.map(time),
    })
}

pub fn account(a: &Account) -> Value {
    let f = |v: i64| format_minor(v, a.exponent);
    json!({
        "id": a.id,
        "number": a.number,
        "owner": a.owner,
        "type": a.kind,
        "currency": a.currency,
        "status": a.status,
        "posted": f(a.posted),
        "held": f(a.held),
        "available": f(a.available()),
        "withdrawable": f(a.withdrawable()),
        "incoming": f(a.incoming),
        "min_balance": f(a.min_balance),
        "overdraft_limit": a.overdraft_limit.map(f),
        "created_at": time(a.created_at),
        "last_trade_at": a.last_trade_at.map(time),
    })
}

pub fn hold(h: &Hold, exponent: u8) -> Value {
    json!({
        "id": h.id,
        "wallet": h.account,
        "amount": format_minor(h.amount, exponent),
        "captured": format_minor(h.captured, exponent),
        "status": h.status,
        "expires_at": h.expires_at.map(time),
        "created_at": time(h.created_at),
        "closed_at": h.closed_at.map(time),
    })
}

pub fn incoming(i: &Incoming, exponent: u8) -> Value {
    json!({
        "id": i.id,
        "wallet": i.account,
        "amount": format_minor(i.amount, exponent),
        "status": i.status,
        "created_at": time(i.created_at),
        "closed_at": i.closed_at.map(time),
    })
}

async fn exponent(store: &dyn Store, a: AccountId) -> Result<u8, StoreError> {
    Ok(store.account(a).await?.map(|a| a.exponent).unwrap_or(0))
}

pub async fn entry(store: &dyn Store, e: &Entry) -> Result<Value, StoreError> {
    let mut lines = Vec::new();
    for l in &e.lines {
        let x = exponent(store, l.account).await?;
        let f = |v: i64| format_minor(v, x);
        lines.push(json!({
            "account": l.account,
            "currency": l.currency,
            "posted": f(l.posted),
            "held": f(l.held),
            "incoming": f(l.incoming),
            "posted_after": f(l.posted_after),
            "held_after": f(l.held_after),
            "incoming_after": f(l.incoming_after),
        }));
    }
    Ok(json!({
        "seq": e.seq,
        "kind": e.kind,
        "platform": e.platform,
        "idempotency_key": e.idempotency_key,
        "created_at": time(e.created_at),
        "metadata": e.metadata,
        "lines": lines,
        "hold": e.hold,
        "incoming": e.incoming,
        "reverses": e.reverses,
        "fx": e.fx,
    }))
}

pub async fn outcome(store: &dyn Store, o: &Outcome, replayed: bool) -> Result<Value, StoreError> {
    Ok(match o {
        Outcome::Owner(o) => owner(o),
        Outcome::ApiKey(k) => api_key(k),
        Outcome::Account(a) => account(a),
        Outcome::Entry { entry: e, hold: h, incoming: i } => {
            let mut v = json!({ "transaction": entry(store, e).await?, "replayed": replayed });
            if let Some(h) = h {
                v["hold"] = hold(h, exponent(store, h.account).await?);
            }
            if let Some(i) = i {
                v["incoming"] = incoming(i, exponent(store, i.account).await?);
            }
            v
        }
        Outcome::Replay { seq } => json!({ "replay_of": seq }),
    })
}
