//! Wallets: opening, reading, status, limits, open holds.

use coffer_core::*;
use coffer_store::Store;

use super::{limit, run, unexpected, Actor, AppError, At};
use crate::directory::Directory;
use crate::render::{self, HoldView, IncomingView, WalletView};

/// A wallet to open: the owner, its type and currency, and its limits as decimals (default 0).
pub struct NewWallet<'a> {
    pub owner: OwnerId,
    pub wallet_type: WalletType,
    pub currency: &'a str,
    pub min_balance: Option<&'a str>,
    pub overdraft_limit: Option<&'a str>,
}

pub async fn open(dir: &Directory, actor: Actor<'_>, w: NewWallet<'_>) -> Result<WalletView, AppError> {
    actor.require_write()?;
    let owner = actor.owner(dir, w.owner).await?;
    let currency: CurrencyCode = w.currency.parse().at("currency")?;
    let exp = dir.exponent(owner.platform, currency).await.at("currency")?;
    let cmd = Command::OpenWallet {
        owner: owner.id,
        wallet_type: w.wallet_type,
        currency,
        min_balance: limit(w.min_balance, exp, "min_balance")?.unwrap_or(0),
        overdraft_limit: limit(w.overdraft_limit, exp, "overdraft_limit")?.unwrap_or(0),
    };
    wallet_outcome(dir, actor, cmd).await
}

async fn wallet_outcome(dir: &Directory, actor: Actor<'_>, cmd: Command) -> Result<WalletView, AppError> {
    match run(dir, actor, cmd).await? {
        Outcome::Account(a) => Ok(render::account(&a)),
        _ => Err(unexpected("wallet")),
    }
}

pub async fn show(dir: &Directory, actor: Actor<'_>, id: AccountId) -> Result<WalletView, AppError> {
    Ok(render::account(&actor.wallet(dir, id).await?))
}

/// An owner's wallets, in creation order.
pub async fn of_owner(dir: &Directory, actor: Actor<'_>, owner: OwnerId) -> Result<Vec<WalletView>, AppError> {
    let o = actor.owner(dir, owner).await?;
    Ok(dir.accounts_of(o.id).await?.iter().filter(|a| a.is_wallet()).map(render::account).collect())
}

pub async fn set_status(
    dir: &Directory,
    actor: Actor<'_>,
    id: AccountId,
    status: WalletStatus,
) -> Result<WalletView, AppError> {
    actor.require_write()?;
    let a = actor.wallet(dir, id).await?;
    wallet_outcome(dir, actor, Command::SetWalletStatus { account: a.id, status }).await
}

/// Change min_balance and/or the overdraft limit (decimals in the wallet's currency).
pub async fn set_limits(
    dir: &Directory,
    actor: Actor<'_>,
    id: AccountId,
    min_balance: Option<&str>,
    overdraft_limit: Option<&str>,
) -> Result<WalletView, AppError> {
    actor.require_write()?;
    let a = actor.wallet(dir, id).await?;
    let min_balance = limit(min_balance, a.exponent, "min_balance")?;
    let overdraft_limit = limit(overdraft_limit, a.exponent, "overdraft_limit")?;
    if min_balance.is_none() && overdraft_limit.is_none() {
        return Err(AppError::invalid("invalid_argument", "give min_balance and/or overdraft_limit"));
    }
    wallet_outcome(dir, actor, Command::SetWalletLimits { account: a.id, overdraft_limit, min_balance }).await
}

/// A wallet's open holds.
pub async fn holds(dir: &Directory, actor: Actor<'_>, id: AccountId) -> Result<Vec<HoldView>, AppError> {
    let a = actor.wallet(dir, id).await?;
    Ok(dir.open_holds(a.id).await?.iter().map(|h| render::hold(h, a.exponent)).collect())
}

/// A wallet's pending incoming credits.
pub async fn incomings(dir: &Directory, actor: Actor<'_>, id: AccountId) -> Result<Vec<IncomingView>, AppError> {
    let a = actor.wallet(dir, id).await?;
    Ok(dir.pending_incomings(a.id).await?.iter().map(|i| render::incoming(i, a.exponent)).collect())
}

/// A hold, with amounts in its wallet's exponent.
pub async fn hold(dir: &Directory, actor: Actor<'_>, id: HoldId) -> Result<HoldView, AppError> {
    let (h, a) = actor.hold(dir, id).await?;
    Ok(render::hold(&h, a.exponent))
}
