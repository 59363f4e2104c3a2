//! `coffer demo`: a demo platform whose merchants' wallets hold the balances of the seed
//! documents' example responses. Idempotent: owners and wallets are found by name and key,
//! movements carry fixed idempotency keys, so a second run changes nothing.
//!
//! | merchant | wallets (as product.md maps them to the dialect) |
//! |---|---|
//! | Onerway | USD: OPERATING 1600.00 posted, 100.00 held, 100.00 incoming, min_balance 500.00; SETTLEMENT 100.00; RESERVE 200.00. EUR: OPERATING 2700.00 posted, 200.00 held, 200.00 incoming, min_balance 500.00; SETTLEMENT 100.00 |
//! | UQPay | USD: OPERATING 7353.50 posted, 2353.25 held; PREPAID 3600.12; RESERVE 10000.00 |
//! | NeoX | USD: OPERATING 200.05 posted, 100.04 held |
//! | PayerMax | OPERATING AED 0.59; IDR 100265403.00 posted and held; USD 787.75 posted, 11.41 held; PHP 16.08; SETTLEMENT IDR 449172.00, USD 9248.93 |
//! | EngageLab (platform with 4-decimal USD) | USD: OPERATING 12.3456; GIFT 2.0000 |

use std::collections::BTreeMap;

use anyhow::{anyhow, Context};
use coffer_app::render::{OwnerView, WalletView};
use coffer_app::service::movements::{self, OneWallet, WalletAmount};
use coffer_app::service::{self, keys, owners, rates, wallets, Actor, AppError};
use coffer_app::Directory;
use coffer_core::*;
use coffer_store::{Store, StoreError};
use serde_json::{json, Value};

pub const PLATFORM: &str = "Coffer Demo";
pub const METERED_PLATFORM: &str = "Coffer Demo (metered, USD to 4 decimals)";

/// One wallet to set up: type, currency, and what it holds.
struct W {
    t: WalletType,
    cur: &'static str,
    posted: &'static str,
    held: &'static str,
    incoming: &'static str,
    min_balance: &'static str,
}

const fn w(t: WalletType, cur: &'static str, posted: &'static str) -> W {
    W { t, cur, posted, held: "0", incoming: "0", min_balance: "0" }
}

struct M {
    dialect: &'static str,
    name: &'static str,
    wallets: Vec<W>,
}

fn merchants() -> Vec<M> {
    use WalletType::*;
    vec![
        M {
            dialect: "onerway",
            name: "Onerway Demo Merchant",
            wallets: vec![
                W { held: "100.00", incoming: "100.00", min_balance: "500.00", ..w(Operating, "USD", "1600.00") },
                w(Settlement, "USD", "100.00"),
                w(Reserve, "USD", "200.00"),
                W { held: "200.00", incoming: "200.00", min_balance: "500.00", ..w(Operating, "EUR", "2700.00") },
                w(Settlement, "EUR", "100.00"),
            ],
        },
        M {
            dialect: "uqpay",
            name: "UQPay Demo Merchant",
            wallets: vec![
                W { held: "2353.25", ..w(Operating, "USD", "7353.50") },
                w(Prepaid, "USD", "3600.12"),
                w(Reserve, "USD", "10000.00"),
            ],
        },
        M {
            dialect: "neox",
            name: "NeoX Demo Merchant",
            wallets: vec![W { held: "100.04", ..w(Operating, "USD", "200.05") }],
        },
        M {
            dialect: "payermax",
            name: "PayerMax Demo Merchant",
            // Creation order is the order PayerMax lists accounts in.
            wallets: vec![
                w(Operating, "AED", "0.59"),
                W { held: "100265403.00", ..w(Operating, "IDR", "100265403.00") },
                W { held: "11.41", ..w(Operating, "USD", "787.75") },
                w(Operating, "PHP", "16.08"),
                w(Settlement, "IDR", "449172.00"),
                w(Settlement, "USD", "9248.93"),
            ],
        },
    ]
}

fn metered() -> M {
    M {
        dialect: "engagelab",
        name: "EngageLab Demo Merchant",
        wallets: vec![w(WalletType::Operating, "USD", "12.3456"), w(WalletType::Gift, "USD", "2.0000")],
    }
}

/// Every command runs as the operator of the data directory or database.
const OP: Actor<'static> = Actor::Operator;

fn refused(e: AppError) -> anyhow::Error {
    anyhow!("{e}")
}

async fn platform(dir: &Directory, name: &str, exponents: BTreeMap<CurrencyCode, u8>) -> anyhow::Result<OwnerView> {
    if let Some(p) = owners::platforms(dir, OP).await.map_err(refused)?.into_iter().find(|p| p.name == name) {
        return Ok(p);
    }
    owners::create_platform(dir, OP, name.into(), "USD", exponents).await.map_err(refused)
}

async fn merchant(dir: &Directory, parent: OwnerId, name: &str) -> anyhow::Result<OwnerView> {
    if let Some(m) = owners::children(dir, OP, parent).await.map_err(refused)?.into_iter().find(|m| m.name == name) {
        return Ok(m);
    }
    owners::create_child(dir, OP, parent, name.into(), None).await.map_err(refused)
}

/// Run an `OpenWallet` command; if the wallet exists already, its id.
pub async fn open_wallet(store: &dyn Store, open: Command) -> anyhow::Result<AccountId> {
    match store.execute(open).await {
        Ok(r) => match r.outcome {
            Outcome::Account(a) => Ok(a.id),
            o => Err(anyhow!("unexpected {o:?}")),
        },
        Err(StoreError::Rejected(LedgerError::WalletExists { existing, .. })) => Ok(existing),
        Err(e) => Err(e.into()),
    }
}

/// The owner's wallet of the spec's type and currency, opened if it is not there yet, with
/// the spec's balances put in under fixed idempotency keys.
async fn wallet(dir: &Directory, owner: OwnerId, spec: &W) -> anyhow::Result<WalletView> {
    let new = wallets::NewWallet {
        owner,
        wallet_type: spec.t,
        currency: spec.cur,
        min_balance: Some(spec.min_balance),
        overdraft_limit: None,
    };
    let id = match wallets::open(dir, OP, new).await {
        Ok(w) => w.id,
        Err(AppError::Store(StoreError::Rejected(LedgerError::WalletExists { existing, .. }))) => existing.0,
        Err(e) => return Err(refused(e)),
    };
    let id = AccountId(id);
    let amount = |amount| WalletAmount { wallet: id, amount, currency: None };
    let key = |what: &str| format!("demo:{owner}:{}:{}:{what}", spec.t, spec.cur);
    let mut moves = Vec::new();
    if spec.posted != "0" {
        let deposit = OneWallet::Deposit(Some(SystemAccount::Opening));
        moves.push((key("deposit"), movements::one_wallet(dir, OP, deposit, amount(spec.posted)).await));
    }
    if spec.held != "0" {
        moves.push((key("hold"), movements::hold(dir, OP, amount(spec.held), None).await));
    }
    if spec.incoming != "0" {
        moves.push((key("incoming"), movements::one_wallet(dir, OP, OneWallet::Incoming, amount(spec.incoming)).await));
    }
    for (k, planned) in moves {
        let metadata = BTreeMap::from([("demo".into(), "true".into())]);
        let planned = planned.map_err(refused)?;
        service::commit(dir, OP, planned, k.clone(), metadata)
            .await
            .map_err(refused)
            .with_context(|| format!("demo movement {k}"))?;
    }
    wallets::show(dir, OP, id).await.map_err(refused)
}

/// The rate the Onerway overview example implies: 2000.00 USD + 3000.00 EUR = 5000.00 USD, so
/// EUR/USD 1, with a source that says so. Recorded again only when the last one is more than a
/// day old (rates go stale: run `coffer demo` again to refresh it).
async fn demo_rate(dir: &Directory, platform: OwnerId) -> anyhow::Result<()> {
    const DAY: i64 = 86_400_000_000;
    let now = coffer_app::now();
    let latest = rates::recorded(dir, OP, platform, ("EUR", "USD"), Timestamp(now.0 + 1)).await.map_err(refused)?;
    if latest.is_some_and(|q| q.effective_at.0 > now.0 - DAY) {
        return Ok(());
    }
    let r = rates::NewRate {
        base: "EUR",
        quote: "USD",
        rate: "1".parse()?,
        source: "demo (implied by the Onerway overview example)".into(),
        effective_at: Some(now),
    };
    rates::set_rate(dir, OP, platform, r).await.map_err(refused)?;
    Ok(())
}

async fn build(dir: &Directory, p: &OwnerView, list: Vec<M>) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for m in list {
        let o = merchant(dir, OwnerId(p.id), m.name).await?;
        let mut wallets = Vec::new();
        for spec in &m.wallets {
            wallets.push(wallet(dir, OwnerId(o.id), spec).await?);
        }
        out.push(json!({ "dialect": m.dialect, "merchant": o, "wallets": wallets }));
    }
    Ok(out)
}

/// A read-only key for each demo merchant, written to `file` as JSON (shape in the README):
/// `{"merchants": [{"dialect", "merchant", "key_id", "secret", "key"}]}` where `key` is
/// `key_id.secret`; the PayerMax merchant also gets an RSA key pair, its public key registered
/// on the credential and its private key in the file (`private_key_pem`).
async fn credentials(dir: &Directory, merchants: &[Value], file: &std::path::Path) -> anyhow::Result<()> {
    let mut out = Vec::new();
    for m in merchants {
        let owner: OwnerId =
            m["merchant"]["id"].as_str().ok_or_else(|| anyhow!("demo merchant without id"))?.parse()?;
        let k = keys::create(dir, OP, Some(owner), KeyScope::ReadOnly).await.map_err(refused)?;
        let full = k.key.ok_or_else(|| anyhow!("a new key without its secret"))?;
        let secret = full.split_once('.').map(|(_, s)| s.to_string()).unwrap_or_default();
        let mut c =
            json!({ "dialect": m["dialect"], "merchant": owner, "key_id": k.id, "secret": secret, "key": full });
        if m["dialect"] == "payermax" {
            let (private_pem, public) =
                tokio::task::spawn_blocking(coffer_app::secrets::generate_client_pair).await??;
            keys::set_public_key(dir, OP, k.id.clone(), Some(&public)).await.map_err(refused)?;
            c["public_key"] = Value::String(public);
            c["private_key_pem"] = Value::String(private_pem);
        }
        out.push(c);
    }
    let text = serde_json::to_string_pretty(&json!({ "merchants": out }))?;
    // Secrets inside: readable by the owner only.
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("cannot write {}", file.display()))?;
    Ok(())
}

/// The wallet of a demo merchant (as `build` lists them) of a type and currency.
fn wallet_id(m: &Value, t: &str, cur: &str) -> Option<AccountId> {
    let w = m["wallets"].as_array()?.iter().find(|w| w["type"] == t && w["currency"] == cur)?;
    w["id"].as_str()?.parse().ok()
}

/// Movements that leave the seed balances as they are but give the movement lists (Onerway's
/// and UQPay's transaction queries, statements) more than deposits: on the Onerway and UQPay
/// merchants' USD OPERATING wallets, money put into the RESERVE wallet and taken back, and a
/// payout reversed. Fixed keys: run once.
async fn round_trips(dir: &Directory, merchants: &[Value]) -> anyhow::Result<()> {
    let metadata = |d: &str| BTreeMap::from([("demo".into(), "true".into()), ("description".into(), d.into())]);
    for m in merchants.iter().filter(|m| m["dialect"] == "onerway" || m["dialect"] == "uqpay") {
        let (Some(op), Some(reserve)) = (wallet_id(m, "OPERATING", "USD"), wallet_id(m, "RESERVE", "USD")) else {
            continue;
        };
        let key = |what: &str| format!("demo:{op}:{what}");
        let to_reserve = movements::transfer(dir, OP, op, reserve, "50.00", None).await.map_err(refused)?;
        service::commit(dir, OP, to_reserve, key("to-reserve"), metadata("Rolling reserve")).await.map_err(refused)?;
        let back = movements::transfer(dir, OP, reserve, op, "50.00", None).await.map_err(refused)?;
        service::commit(dir, OP, back, key("reserve-release"), metadata("Reserve released")).await.map_err(refused)?;
        let payout = movements::one_wallet(
            dir,
            OP,
            OneWallet::Payout,
            WalletAmount { wallet: op, amount: "25.00", currency: None },
        );
        let paid = service::commit(dir, OP, payout.await.map_err(refused)?, key("payout"), metadata("Payout to bank"))
            .await
            .map_err(refused)?;
        let reversal = movements::reversal(dir, OP, paid.view.transaction.seq).await.map_err(refused)?;
        service::commit(dir, OP, reversal, key("payout-returned"), metadata("Payout returned by the bank"))
            .await
            .map_err(refused)?;
    }
    Ok(())
}

pub async fn run(dir: &Directory, credentials_file: Option<&std::path::Path>) -> anyhow::Result<Value> {
    let p = platform(dir, PLATFORM, BTreeMap::new()).await?;
    let mut merchants = build(dir, &p, merchants()).await?;
    round_trips(dir, &merchants).await?;
    demo_rate(dir, OwnerId(p.id)).await?;
    let q = platform(dir, METERED_PLATFORM, BTreeMap::from([("USD".parse()?, 4)])).await?;
    merchants.extend(build(dir, &q, vec![metered()]).await?);
    if let Some(f) = credentials_file {
        credentials(dir, &merchants, f).await?;
    }
    Ok(json!({ "platforms": [p, q], "merchants": merchants }))
}
