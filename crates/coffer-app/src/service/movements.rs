//! Money movements, planned: each function resolves the wallets, holds, credits or entries a
//! request names through the caller's reach, parses its amounts in their exponents and returns
//! the core operation ([`Planned`]), which [`super::commit`] runs under an idempotency key.

use coffer_core::fx::Policy;
use coffer_core::*;
use coffer_store::Store;

use super::{money, Actor, AppError, At, Planned};
use crate::directory::Directory;

/// The movements that take one wallet and an amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneWallet {
    /// From outside (EXTERNAL, the default) or from opening balances (OPENING).
    Deposit(Option<SystemAccount>),
    Payout,
    Fee,
    /// A pending credit.
    Incoming,
}

/// A request naming one wallet and an amount (a decimal string in the wallet's currency;
/// `currency`, when given, must be the wallet's).
#[derive(Debug, Clone, Copy)]
pub struct WalletAmount<'a> {
    pub wallet: AccountId,
    pub amount: &'a str,
    pub currency: Option<&'a str>,
}

pub async fn one_wallet(
    dir: &Directory,
    actor: Actor<'_>,
    kind: OneWallet,
    r: WalletAmount<'_>,
) -> Result<Planned, AppError> {
    let a = actor.wallet_ref(dir, r.wallet).await?;
    let amount = money(dir, &a, r.amount, r.currency).await?;
    let op = match kind {
        OneWallet::Deposit(source) => {
            MoneyOp::Deposit { account: a.id, amount, source: source.unwrap_or(SystemAccount::External) }
        }
        OneWallet::Payout => MoneyOp::Payout { account: a.id, amount },
        OneWallet::Fee => MoneyOp::Fee { account: a.id, amount },
        OneWallet::Incoming => MoneyOp::IncomingCreate { account: a.id, amount },
    };
    Ok(Planned { platform: a.platform, op })
}

/// Between two wallets the caller reaches; the amount is in the source wallet's currency.
pub async fn transfer(
    dir: &Directory,
    actor: Actor<'_>,
    from: AccountId,
    to: AccountId,
    amount: &str,
    currency: Option<&str>,
) -> Result<Planned, AppError> {
    let from = actor.wallet_ref(dir, from).await?;
    let to = actor.wallet_ref(dir, to).await?;
    let amount = money(dir, &from, amount, currency).await?;
    Ok(Planned { platform: from.platform, op: MoneyOp::Transfer { from: from.id, to: to.id, amount } })
}

/// One posting of a general transaction: an account (a wallet id, or
/// `SYSTEM_<EXTERNAL|FEES|FX_CLEARING|OPENING>:<CUR>`), a signed decimal amount, and the
/// currency (when absent, the account's).
#[derive(Debug, Clone, Copy)]
pub struct PostingReq<'a> {
    pub account: &'a str,
    pub amount: &'a str,
    pub currency: Option<&'a str>,
}

/// A general transaction of `platform` (a caller's own platform whatever it names).
pub async fn postings(
    dir: &Directory,
    actor: Actor<'_>,
    platform: OwnerId,
    reqs: &[PostingReq<'_>],
) -> Result<Planned, AppError> {
    let max = coffer_core::command::limits::MAX_POSTINGS;
    if reqs.is_empty() || reqs.len() > max {
        return Err(
            AppError::invalid("invalid_argument", format!("a transaction holds 1 to {max} postings")).at("postings")
        );
    }
    let platform = actor.platform_or(platform);
    let mut out = Vec::with_capacity(reqs.len());
    for p in reqs {
        let given: Option<CurrencyCode> = p.currency.map(str::parse).transpose().at("currency")?;
        let (account, currency, exp) = match p.account.strip_prefix("SYSTEM_") {
            Some(name) => {
                if !actor.reaches_system() {
                    return Err(AppError::not_found("account", p.account));
                }
                let (kind, cur) = name.split_once(':').unwrap_or((name, ""));
                let kind: SystemAccount = kind.parse().at("account")?;
                let cur: CurrencyCode = cur.parse().at("account")?;
                let exp = dir.exponent(platform, cur).await.at("account")?;
                (AccountRef::System(kind, cur), cur, exp)
            }
            None => {
                let id = p.account.parse().map_err(|_| AppError::not_found("account", p.account))?;
                let a = actor.wallet_ref(dir, id).await?;
                (AccountRef::Id(a.id), a.currency, a.exponent)
            }
        };
        let minor = coffer_core::money::parse_minor(p.amount, exp).at("amount")?;
        out.push(Posting { account, amount: Money::new(minor, given.unwrap_or(currency)) });
    }
    Ok(Planned { platform, op: MoneyOp::Postings { postings: out } })
}

/// The reversal of an entry whose every line the caller reaches.
pub async fn reversal(dir: &Directory, actor: Actor<'_>, seq: Seq) -> Result<Planned, AppError> {
    let e = actor.entry_to_change(dir, seq).await?;
    Ok(Planned { platform: e.platform, op: MoneyOp::Reverse { seq } })
}

/// The rate of a conversion.
#[derive(Debug, Clone, Copy)]
pub enum RateChoice {
    /// Target units per source unit, as the caller gives it.
    Given(Rate),
    /// The platform's stored rate now, under this policy, recorded with its source.
    Stored(Policy),
}

/// An FX conversion between two wallets; the amount is in the source wallet's currency.
pub async fn conversion(
    dir: &Directory,
    actor: Actor<'_>,
    (from, to): (AccountId, AccountId),
    amount: &str,
    rate: RateChoice,
) -> Result<Planned, AppError> {
    let from = actor.wallet_ref(dir, from).await?;
    let to = actor.wallet_ref(dir, to).await?;
    let amount = money(dir, &from, amount, None).await?;
    let (rate, rate_source) = match rate {
        RateChoice::Given(r) => (r, None),
        RateChoice::Stored(policy) => {
            let (rate, source) =
                super::rates::stored_rate(dir, policy, from.platform, from.currency, to.currency).await?;
            (rate, Some(source))
        }
    };
    let op = MoneyOp::FxConvert { from: from.id, to: to.id, amount, rate, rate_source };
    Ok(Planned { platform: from.platform, op })
}

/// A hold on part of a wallet's available funds, expiring by itself at `expires_at`.
pub async fn hold(
    dir: &Directory,
    actor: Actor<'_>,
    r: WalletAmount<'_>,
    expires_at: Option<Timestamp>,
) -> Result<Planned, AppError> {
    let a = actor.wallet_ref(dir, r.wallet).await?;
    let amount = money(dir, &a, r.amount, r.currency).await?;
    Ok(Planned { platform: a.platform, op: MoneyOp::HoldCreate { account: a.id, amount, expires_at } })
}

/// Capture all of a hold, or `amount` of it (in the hold's currency), into `destination`.
pub async fn capture(
    dir: &Directory,
    actor: Actor<'_>,
    hold: HoldId,
    amount: Option<&str>,
    destination: AccountRef,
) -> Result<Planned, AppError> {
    let (h, a) = actor.hold(dir, hold).await?;
    let destination = match destination {
        AccountRef::Id(id) => AccountRef::Id(actor.wallet_ref(dir, id).await?.id),
        AccountRef::System(kind, cur) if actor.reaches_system() => AccountRef::System(kind, cur),
        AccountRef::System(kind, cur) => return Err(AppError::not_found("account", &format!("SYSTEM_{kind}:{cur}"))),
    };
    let amount = match amount {
        Some(x) => Some(money(dir, &crate::directory::Place::from(&a), x, None).await?),
        None => None,
    };
    Ok(Planned { platform: h.platform, op: MoneyOp::HoldCapture { hold: h.id, amount, destination } })
}

pub async fn release(dir: &Directory, actor: Actor<'_>, hold: HoldId) -> Result<Planned, AppError> {
    let (h, _) = actor.hold(dir, hold).await?;
    Ok(Planned { platform: h.platform, op: MoneyOp::HoldRelease { hold: h.id } })
}

/// Settle (`true`) or cancel (`false`) a pending incoming credit.
pub async fn incoming_done(
    dir: &Directory,
    actor: Actor<'_>,
    id: IncomingId,
    settle: bool,
) -> Result<Planned, AppError> {
    let i = actor.incoming(dir, id).await?;
    let op =
        if settle { MoneyOp::IncomingSettle { incoming: i.id } } else { MoneyOp::IncomingCancel { incoming: i.id } };
    Ok(Planned { platform: i.platform, op })
}
