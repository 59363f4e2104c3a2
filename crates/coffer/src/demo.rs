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
use coffer_core::money::parse_minor;
use coffer_core::*;
use coffer_store::{Store, StoreError};
use serde_json::{json, Value};

use coffer_app::render;

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

async fn platform(store: &dyn Store, name: &str, exponents: BTreeMap<CurrencyCode, u8>) -> anyhow::Result<Owner> {
    if let Some(p) = store.platforms().await?.into_iter().find(|p| p.name == name) {
        return Ok(p);
    }
    let c =
        Command::CreatePlatform { name: name.into(), default_currency: "USD".parse()?, currency_exponents: exponents };
    match store.execute(c).await?.outcome {
        Outcome::Owner(o) => Ok(o),
        o => Err(anyhow!("unexpected {o:?}")),
    }
}

async fn merchant(store: &dyn Store, parent: OwnerId, name: &str) -> anyhow::Result<Owner> {
    if let Some(m) = store.children(parent).await?.into_iter().find(|m| m.name == name) {
        return Ok(m);
    }
    match store.execute(Command::CreateMerchant { parent, name: name.into(), default_currency: None }).await?.outcome {
        Outcome::Owner(o) => Ok(o),
        o => Err(anyhow!("unexpected {o:?}")),
    }
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

async fn wallet(store: &dyn Store, owner: &Owner, spec: &W) -> anyhow::Result<Account> {
    let currency: CurrencyCode = spec.cur.parse()?;
    let exp = store.exponent(owner.platform, currency).await?;
    let min_balance = parse_minor(spec.min_balance, exp)?;
    let c = Command::OpenWallet { owner: owner.id, wallet_type: spec.t, currency, overdraft_limit: 0, min_balance };
    let id = open_wallet(store, c).await?;
    let acc = store.account(id).await?.ok_or_else(|| anyhow!("wallet {id} vanished"))?;
    let amount = |s: &str| -> anyhow::Result<Money> { Ok(Money::new(parse_minor(s, exp)?, currency)) };
    let key = |what: &str| format!("demo:{}:{}:{}:{what}", owner.id, spec.t, spec.cur);
    let mut moves = Vec::new();
    if spec.posted != "0" {
        moves.push((
            key("deposit"),
            MoneyOp::Deposit { account: id, amount: amount(spec.posted)?, source: SystemAccount::Opening },
        ));
    }
    if spec.held != "0" {
        moves.push((key("hold"), MoneyOp::HoldCreate { account: id, amount: amount(spec.held)?, expires_at: None }));
    }
    if spec.incoming != "0" {
        moves.push((key("incoming"), MoneyOp::IncomingCreate { account: id, amount: amount(spec.incoming)? }));
    }
    for (k, op) in moves {
        let m = Movement {
            platform: acc.platform,
            idempotency_key: k.clone(),
            metadata: BTreeMap::from([("demo".into(), "true".into())]),
            op,
        };
        store.execute(Command::Move(m)).await.with_context(|| format!("demo movement {k}"))?;
    }
    store.account(id).await?.ok_or_else(|| anyhow!("wallet {id} vanished"))
}

/// The rate the Onerway overview example implies: 2000.00 USD + 3000.00 EUR = 5000.00 USD, so
/// EUR/USD 1, with a source that says so. Recorded again only when the last one is more than a
/// day old (rates go stale: run `coffer demo` again to refresh it).
async fn demo_rate(store: &dyn Store, platform: OwnerId) -> anyhow::Result<()> {
    const DAY: i64 = 86_400_000_000;
    let (eur, usd): (CurrencyCode, CurrencyCode) = ("EUR".parse()?, "USD".parse()?);
    let now = coffer_app::now();
    let latest = store.rates_at(platform, vec![(eur, usd)], Timestamp(now.0 + 1)).await?;
    if latest.first().is_some_and(|q| now.0 - q.effective_at.0 < DAY) {
        return Ok(());
    }
    let q = coffer_core::fx::RateQuote {
        base: eur,
        quote: usd,
        rate: "1".parse()?,
        source: "demo (implied by the Onerway overview example)".into(),
        effective_at: now,
        recorded_at: now,
    };
    store.record_rates(platform, vec![q]).await?;
    Ok(())
}

async fn build(store: &dyn Store, p: &Owner, list: Vec<M>) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for m in list {
        let o = merchant(store, p.id, m.name).await?;
        let mut wallets = Vec::new();
        for spec in &m.wallets {
            wallets.push(render::account(&wallet(store, &o, spec).await?));
        }
        out.push(json!({ "dialect": m.dialect, "merchant": render::owner(&o), "wallets": wallets }));
    }
    Ok(out)
}

/// A read-only key for each demo merchant, written to `file` as JSON (shape in the README):
/// `{"merchants": [{"dialect", "merchant", "key_id", "secret", "key"}]}` where `key` is
/// `key_id.secret`; the PayerMax merchant also gets an RSA key pair, its public key registered
/// on the credential and its private key in the file (`private_key_pem`).
async fn credentials(store: &dyn Store, merchants: &[Value], file: &std::path::Path) -> anyhow::Result<()> {
    let mut out = Vec::new();
    for m in merchants {
        let owner: OwnerId =
            m["merchant"]["id"].as_str().ok_or_else(|| anyhow!("demo merchant without id"))?.parse()?;
        let k = coffer_app::auth::generate_key().map_err(|e| anyhow!("no randomness for a key: {e}"))?;
        store
            .execute(Command::CreateApiKey { owner, id: k.id.clone(), secret_hash: k.hash, scope: KeyScope::ReadOnly })
            .await?;
        let secret = k.full.split_once('.').map(|(_, s)| s.to_string()).unwrap_or_default();
        let mut c =
            json!({ "dialect": m["dialect"], "merchant": owner, "key_id": k.id, "secret": secret, "key": k.full });
        if m["dialect"] == "payermax" {
            let (private_pem, public) =
                tokio::task::spawn_blocking(coffer_app::secrets::generate_client_pair).await??;
            store.execute(Command::SetKeyPublicKey { id: k.id.clone(), public_key: Some(public.clone()) }).await?;
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

pub async fn run(store: &dyn Store, credentials_file: Option<&std::path::Path>) -> anyhow::Result<Value> {
    let p = platform(store, PLATFORM, BTreeMap::new()).await?;
    let mut merchants = build(store, &p, merchants()).await?;
    demo_rate(store, p.id).await?;
    let q = platform(store, METERED_PLATFORM, BTreeMap::from([("USD".parse()?, 4)])).await?;
    merchants.extend(build(store, &q, vec![metered()]).await?);
    if let Some(f) = credentials_file {
        credentials(store, &merchants, f).await?;
    }
    Ok(json!({
        "platforms": [render::owner(&p), render::owner(&q)],
        "merchants": merchants,
    }))
}
