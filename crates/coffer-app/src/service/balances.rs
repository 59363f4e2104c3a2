//! Balances: an owner's wallets now or as of an instant, one wallet read exactly in one store
//! call, per-currency sums, and the per-currency summaries the provider dialects show (the
//! core's [`summary`](coffer_core::summary), the one mapping from wallets to dialect figures).

use coffer_core::money::format_minor;
use coffer_core::summary::{by_currency, CurrencySummary};
use coffer_core::*;
use coffer_store::{Store, StoreError};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Actor, AppError, At};
use crate::auth::Caller;
use crate::directory::Directory;
use crate::render;

/// Every wallet of `owner`, grouped by currency in the order of their first wallet.
pub async fn summary(dir: &Directory, owner: OwnerId) -> Result<Vec<CurrencySummary>, StoreError> {
    Ok(by_currency(&dir.accounts_of(owner).await?))
}

/// A request checked on the directory cache by `check` (the credential and whatever else the
/// shell decides from the cache), and the wallets of the owner it acts as (`owner` of what
/// `check` found), grouped by currency, read in one store call together with the directory
/// version that proves the check exact ([`Directory::exact`]): one round trip in all when the
/// cache is warm.
pub async fn exact_summary<A, E, CF>(
    dir: &Directory,
    check: impl Fn() -> CF,
    owner: impl Fn(&A) -> OwnerId,
) -> Result<(A, Vec<CurrencySummary>), E>
where
    E: From<StoreError>,
    CF: std::future::Future<Output = Result<A, E>>,
{
    let owner = &owner;
    dir.exact(check, |found: A| async move {
        let (accounts, v) = dir.accounts_of_versioned(owner(&found)).await?;
        Ok((found, by_currency(&accounts), v))
    })
    .await
}

/// A wallet, read in one store call with the directory version that proves `check` (which
/// authenticates the caller on the cache) exact; "not found" unless the caller reaches it.
pub async fn exact_wallet<E, CF>(dir: &Directory, check: impl Fn() -> CF, id: AccountId) -> Result<(Caller, Account), E>
where
    E: From<StoreError>,
    CF: std::future::Future<Output = Result<Caller, E>>,
{
    dir.exact(check, |c: Caller| async move {
        let (found, v) = dir.account_versioned(id).await?;
        let a = c.wallet_found(dir, id, found).await?;
        Ok((c, a, v))
    })
    .await
}

/// Whether `text` is a currency the platform knows (ISO 4217, a configured extra, or one of
/// its own): `Ok(None)` when it is not.
pub async fn known_currency(
    dir: &Directory,
    platform: OwnerId,
    text: &str,
) -> Result<Option<CurrencyCode>, StoreError> {
    let Ok(c) = text.trim().parse::<CurrencyCode>() else { return Ok(None) };
    match dir.exponent(platform, c).await {
        Ok(_) => Ok(Some(c)),
        Err(StoreError::Rejected(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Posted, held and incoming summed per currency (in order of first wallet) over the wallets
/// of `owners`, now or as of `at`.
pub async fn sums_by_currency(
    dir: &Directory,
    owners: &[OwnerId],
    at: Option<Timestamp>,
) -> Result<Vec<(CurrencyCode, u8, [i64; 3])>, AppError> {
    let mut wallets = Vec::new();
    for id in owners {
        wallets.extend(dir.accounts_of(*id).await?.into_iter().filter(|a| a.is_wallet()));
    }
    let balances = balances_of(dir, &mut wallets, at).await?.1;
    let mut sums: Vec<(CurrencyCode, u8, [i64; 3])> = Vec::new();
    for (a, (p, h, i)) in wallets.iter().zip(balances) {
        let k = match sums.iter().position(|x| x.0 == a.currency) {
            Some(k) => k,
            None => {
                sums.push((a.currency, a.exponent, [0; 3]));
                sums.len() - 1
            }
        };
        for (slot, x) in sums[k].2.iter_mut().zip([p, h, i]) {
            *slot = slot.checked_add(x).ok_or(LedgerError::Overflow)?;
        }
    }
    Ok(sums)
}

/// The balances (posted, held, incoming) of `wallets` now, or as of `at` (then the wallets
/// opened after it are dropped, and the last transaction included is returned).
async fn balances_of(
    dir: &Directory,
    wallets: &mut Vec<Account>,
    at: Option<Timestamp>,
) -> Result<(Option<Seq>, Vec<(i64, i64, i64)>), AppError> {
    match at {
        None => Ok((None, wallets.iter().map(|a| (a.posted, a.held, a.incoming)).collect())),
        Some(t) => {
            wallets.retain(|a| a.created_at <= t);
            let seq = dir.seq_at(t).await?;
            Ok((Some(seq), dir.balances_at(wallets.iter().map(|a| a.id).collect(), seq).await?))
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceView {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub wallet_type: String,
    pub currency: String,
    pub posted: String,
    pub held: String,
    pub available: String,
    pub incoming: String,
    /// Current balances only: min_balance changes are not journaled, so it is not told for a
    /// past instant.
    pub withdrawable: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalancesView {
    pub owner: Uuid,
    /// The instant asked for, when `at` was given.
    pub at: Option<String>,
    /// The last transaction included, when `at` was given.
    pub as_of_transaction: Option<u64>,
    pub balances: Vec<BalanceView>,
}

/// Which of an owner's wallets, and when.
#[derive(Debug, Default)]
pub struct BalanceFilter<'a> {
    pub currency: Option<&'a str>,
    pub wallet_type: Option<WalletType>,
    /// As of this instant, all wallets at one journal position; default now.
    pub at: Option<Timestamp>,
}

/// An owner's wallets' balances, filtered, now or as of an instant.
pub async fn of_owner(
    dir: &Directory,
    actor: Actor<'_>,
    owner: OwnerId,
    f: BalanceFilter<'_>,
) -> Result<BalancesView, AppError> {
    let o = actor.owner(dir, owner).await?;
    let currency: Option<CurrencyCode> = f.currency.map(str::parse).transpose().at("currency")?;
    let mut ws: Vec<Account> = dir
        .accounts_of(o.id)
        .await?
        .into_iter()
        .filter(|a| a.is_wallet())
        .filter(|a| currency.is_none_or(|c| a.currency == c))
        .filter(|a| f.wallet_type.is_none_or(|t| a.kind == AccountKind::Wallet(t)))
        .collect();
    let (seq, balances) = balances_of(dir, &mut ws, f.at).await?;
    let balances = ws
        .iter()
        .zip(balances)
        .map(|(a, (posted, held, incoming))| {
            let fmt = |v: i64| format_minor(v, a.exponent);
            BalanceView {
                id: a.id.0,
                wallet_type: a.kind.to_string(),
                currency: a.currency.to_string(),
                posted: fmt(posted),
                held: fmt(held),
                available: fmt(posted - held),
                incoming: fmt(incoming),
                withdrawable: f.at.is_none().then(|| fmt(a.withdrawable())),
            }
        })
        .collect();
    Ok(BalancesView { owner: o.id.0, at: f.at.map(render::time), as_of_transaction: seq, balances })
}
