//! Administration commands: owners, wallets, movements, holds, incoming credits, balances.
//! Each prints the result as JSON; a refusal is an error with the ledger's reason.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use coffer_app::render;
use coffer_app::service::{self, journal, keys, movements, owners, rates, wallets, Actor, AppError, Planned};
use coffer_app::Directory;
use coffer_core::*;
use serde_json::{json, Value};

#[derive(Subcommand, Debug)]
pub enum AdminCmd {
    /// Platforms (tenants).
    #[command(subcommand)]
    Platform(PlatformCmd),
    /// Merchants and sub-merchants.
    #[command(subcommand)]
    Merchant(MerchantCmd),
    /// Any owner: show, list children, change status.
    #[command(subcommand)]
    Owner(OwnerCmd),
    /// Wallets: open, show, list, freeze, close, limits.
    #[command(subcommand)]
    Wallet(WalletCmd),
    /// Money movements: deposit, payout, transfer, fee, reverse, general postings.
    #[command(subcommand)]
    Tx(TxCmd),
    /// Holds: create, capture, release, show, list.
    #[command(subcommand)]
    Hold(HoldCmd),
    /// Incoming (pending) credits: create, settle, cancel.
    #[command(subcommand)]
    Incoming(IncomingCmd),
    /// FX conversion between two wallets of one owner.
    #[command(subcommand)]
    Fx(FxCmd),
    /// Balances of a wallet, or of every wallet of an owner.
    Balance(BalanceArgs),
    /// API keys for the HTTP API: create (the key is shown once), revoke.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Balance alerts on wallets: create, list, delete.
    #[command(subcommand)]
    Alert(crate::watch::AlertCmd),
    /// A page of a platform's event feed (balance changes, holds, alerts, ...), oldest first.
    Events(crate::watch::EventsArgs),
}

#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Create an API key for an owner.
    Create {
        #[arg(long)]
        owner: OwnerId,
        /// READ_ONLY or READ_WRITE.
        #[arg(long, default_value = "READ_WRITE")]
        scope: String,
    },
    /// Revoke an API key by its id.
    Revoke { id: String },
    /// Register the RSA public key (PEM or base64 DER, >= 2048 bits) an API key signs PayerMax
    /// requests with.
    SetPublicKey {
        id: String,
        /// File holding the public key.
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Print a platform's response-signing public key (PayerMax `sign` header), creating the key
    /// pair if the platform has none yet.
    PlatformPublicKey {
        #[arg(long)]
        platform: OwnerId,
    },
}

#[derive(Subcommand, Debug)]
pub enum PlatformCmd {
    /// Create a platform.
    Create {
        #[arg(long)]
        name: String,
        /// Default currency (ISO 4217).
        #[arg(long, default_value = "USD")]
        currency: String,
        /// Raise a currency's exponent for this platform's wallets, e.g. USD=4 (repeatable).
        #[arg(long = "exponent", value_name = "CUR=N")]
        exponents: Vec<String>,
    },
    /// List platforms.
    List,
}

#[derive(Subcommand, Debug)]
pub enum MerchantCmd {
    /// Create a merchant under a platform, or a sub-merchant under a merchant.
    Create {
        #[arg(long)]
        parent: OwnerId,
        #[arg(long)]
        name: String,
        /// Default currency (defaults to the parent's).
        #[arg(long)]
        currency: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum OwnerCmd {
    Show {
        id: OwnerId,
    },
    /// Direct children of an owner.
    Children {
        id: OwnerId,
    },
    /// Set status: ACTIVE, SUSPENDED or DELETED (final).
    Status {
        id: OwnerId,
        status: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum WalletCmd {
    /// Open a wallet of one type and currency for an owner.
    Open {
        #[arg(long)]
        owner: OwnerId,
        /// OPERATING, ACQUIRING, SETTLEMENT, RESERVE, PREPAID, GIFT, CARD or REFUND.
        #[arg(long = "type")]
        wallet_type: String,
        #[arg(long)]
        currency: String,
        /// Amount payouts must leave in place (decimal).
        #[arg(long, default_value = "0")]
        min_balance: String,
        /// How far available may go below zero (decimal).
        #[arg(long, default_value = "0")]
        overdraft: String,
    },
    Show {
        id: AccountId,
    },
    /// An owner's wallets.
    List {
        #[arg(long)]
        owner: OwnerId,
    },
    /// Set status: ACTIVE, PENDING, PROCESSING, FROZEN or CLOSED (needs a zero balance; final).
    Status {
        id: AccountId,
        status: String,
    },
    /// Change min_balance and/or overdraft limit (decimals).
    Limits {
        id: AccountId,
        #[arg(long)]
        min_balance: Option<String>,
        #[arg(long)]
        overdraft: Option<String>,
    },
}

/// Options every movement takes.
#[derive(Args, Debug)]
pub struct MoveOpts {
    /// Idempotency key (scoped to the platform); a fresh one is generated if absent.
    #[arg(long)]
    key: Option<String>,
    /// Metadata, KEY=VALUE (repeatable).
    #[arg(long = "meta", value_name = "K=V")]
    meta: Vec<String>,
}

impl MoveOpts {
    /// The idempotency key (a fresh one if none was given) and the metadata.
    pub fn into_parts(self) -> anyhow::Result<(String, BTreeMap<String, String>)> {
        let mut metadata = BTreeMap::new();
        for kv in self.meta {
            let (k, v) = kv.split_once('=').ok_or_else(|| anyhow!("--meta {kv:?} is not KEY=VALUE"))?;
            metadata.insert(k.to_string(), v.to_string());
        }
        Ok((self.key.unwrap_or_else(|| format!("cli-{}", uuid::Uuid::now_v7())), metadata))
    }
}

#[derive(Subcommand, Debug)]
pub enum TxCmd {
    /// Money arriving into a wallet from outside (or from opening balances).
    Deposit {
        #[arg(long)]
        wallet: AccountId,
        #[arg(long)]
        amount: String,
        /// EXTERNAL (default) or OPENING.
        #[arg(long, default_value = "EXTERNAL")]
        source: String,
        #[command(flatten)]
        opts: MoveOpts,
    },
    /// Money leaving a wallet to the outside (leaves min_balance in place).
    Payout {
        #[arg(long)]
        wallet: AccountId,
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        opts: MoveOpts,
    },
    /// Between two wallets of one platform.
    Transfer {
        #[arg(long)]
        from: AccountId,
        #[arg(long)]
        to: AccountId,
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        opts: MoveOpts,
    },
    /// A fee into the platform's fee account.
    Fee {
        #[arg(long)]
        wallet: AccountId,
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        opts: MoveOpts,
    },
    /// Post the exact opposite of an earlier transaction.
    Reverse {
        seq: Seq,
        #[command(flatten)]
        opts: MoveOpts,
    },
    /// A general transaction: postings ACCOUNT:AMOUNT (negative debits), summing to zero per
    /// currency. ACCOUNT is a wallet id or SYSTEM_<KIND>:<CUR> (EXTERNAL, FEES, FX_CLEARING, OPENING).
    Post {
        #[arg(long)]
        platform: OwnerId,
        #[arg(long = "posting", value_name = "ACCOUNT:AMOUNT", required = true, allow_hyphen_values = true)]
        postings: Vec<String>,
        #[command(flatten)]
        opts: MoveOpts,
    },
    /// Show a transaction by sequence number.
    Show { seq: Seq },
}

#[derive(Subcommand, Debug)]
pub enum HoldCmd {
    /// Reserve part of a wallet's available funds.
    Create {
        #[arg(long)]
        wallet: AccountId,
        #[arg(long)]
        amount: String,
        /// Deadline, RFC 3339; or use --expires-in.
        #[arg(long, conflicts_with = "expires_in")]
        expires_at: Option<String>,
        /// Deadline from now, in seconds.
        #[arg(long)]
        expires_in: Option<u64>,
        #[command(flatten)]
        opts: MoveOpts,
    },
    /// Capture all (or --amount of) a hold into a destination account; the rest is released.
    Capture {
        hold: HoldId,
        #[arg(long)]
        to: String,
        #[arg(long)]
        amount: Option<String>,
        #[command(flatten)]
        opts: MoveOpts,
    },
    Release {
        hold: HoldId,
        #[command(flatten)]
        opts: MoveOpts,
    },
    Show {
        hold: HoldId,
    },
    /// Open holds of a wallet.
    List {
        #[arg(long)]
        wallet: AccountId,
    },
}

#[derive(Subcommand, Debug)]
pub enum IncomingCmd {
    Create {
        #[arg(long)]
        wallet: AccountId,
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        opts: MoveOpts,
    },
    Settle {
        id: IncomingId,
        #[command(flatten)]
        opts: MoveOpts,
    },
    Cancel {
        id: IncomingId,
        #[command(flatten)]
        opts: MoveOpts,
    },
}

#[derive(Subcommand, Debug)]
pub enum FxCmd {
    /// Convert --amount (in the source wallet's currency) at --rate (target units per source unit).
    Convert {
        #[arg(long)]
        from: AccountId,
        #[arg(long)]
        to: AccountId,
        #[arg(long)]
        amount: String,
        #[arg(long)]
        rate: String,
        #[command(flatten)]
        opts: MoveOpts,
    },
    /// Record a platform's exchange rate (units of --quote per unit of --base); never overwrites.
    SetRate {
        #[arg(long)]
        platform: OwnerId,
        #[arg(long)]
        base: String,
        #[arg(long)]
        quote: String,
        #[arg(long)]
        rate: String,
        /// Where the rate comes from, e.g. ECB.
        #[arg(long)]
        source: String,
        /// RFC 3339; default now.
        #[arg(long)]
        effective_at: Option<String>,
    },
    /// Import a CSV file in the ECB reference-rate format (rates per --pivot) in one commit.
    Import {
        #[arg(long)]
        platform: OwnerId,
        #[arg(long)]
        file: std::path::PathBuf,
        #[arg(long, default_value = "ECB")]
        source: String,
        #[arg(long, default_value = "EUR")]
        pivot: String,
    },
    /// The stored rate of a pair at an instant (default now), with its provenance.
    Rate {
        #[arg(long)]
        platform: OwnerId,
        #[arg(long)]
        base: String,
        #[arg(long)]
        quote: String,
        /// RFC 3339; default now.
        #[arg(long)]
        at: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct BalanceArgs {
    #[arg(long, conflicts_with = "owner", required_unless_present = "owner")]
    wallet: Option<AccountId>,
    #[arg(long)]
    owner: Option<OwnerId>,
}

impl BalanceArgs {
    /// The wallet, or the owner, named.
    pub fn target(&self) -> (Option<AccountId>, Option<OwnerId>) {
        (self.wallet, self.owner)
    }
}

fn json<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).expect("views serialize")
}

fn parse<T: std::str::FromStr>(s: &str) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    Ok(s.parse()?)
}

fn parse_time(s: &str) -> anyhow::Result<Timestamp> {
    let t = chrono::DateTime::parse_from_rfc3339(s).with_context(|| format!("{s:?} is not an RFC 3339 time"))?;
    Ok(Timestamp(t.timestamp_micros()))
}

/// An account named on the command line: a wallet id, or SYSTEM_<KIND>:<CUR>.
fn account_ref(s: &str) -> anyhow::Result<AccountRef> {
    if let Some(rest) = s.strip_prefix("SYSTEM_") {
        let (kind, cur) = rest.split_once(':').ok_or_else(|| anyhow!("{s:?}: write SYSTEM_<KIND>:<CUR>"))?;
        return Ok(AccountRef::System(parse(kind)?, parse(cur)?));
    }
    Ok(AccountRef::Id(parse(s).with_context(|| format!("{s:?} is neither a wallet id nor SYSTEM_<KIND>:<CUR>"))?))
}

/// A use-case's refusal as the command line tells it: the reason, and the option at fault.
pub(crate) fn refused(e: AppError) -> anyhow::Error {
    match e {
        AppError::At(param, e) => anyhow!("--{}: {}", param.replace('_', "-"), refused(*e)),
        e => anyhow!("{e}"),
    }
}

/// Commit a planned movement under the command's idempotency key (a fresh one if absent).
async fn commit(dir: &Directory, planned: Result<Planned, AppError>, opts: MoveOpts) -> anyhow::Result<Value> {
    let (key, metadata) = opts.into_parts()?;
    let m = service::commit(dir, OP, planned.map_err(refused)?, key, metadata).await.map_err(refused)?;
    Ok(json(m.view))
}

/// Every command runs as the operator of the data directory or database.
const OP: Actor<'static> = Actor::Operator;

/// A view, or the refusal as the command line tells it.
fn out<T: serde::Serialize>(r: Result<T, AppError>) -> anyhow::Result<Value> {
    r.map(json).map_err(refused)
}

pub async fn run(dir: &Directory, cmd: AdminCmd) -> anyhow::Result<Value> {
    match cmd {
        AdminCmd::Platform(c) => platform(dir, c).await,
        AdminCmd::Merchant(MerchantCmd::Create { parent, name, currency }) => {
            out(owners::create_child(dir, OP, parent, name, currency.as_deref()).await)
        }
        AdminCmd::Owner(c) => owner(dir, c).await,
        AdminCmd::Wallet(c) => wallet(dir, c).await,
        AdminCmd::Tx(c) => tx(dir, c).await,
        AdminCmd::Hold(c) => hold(dir, c).await,
        AdminCmd::Incoming(c) => incoming(dir, c).await,
        AdminCmd::Fx(c) => fx(dir, c).await,
        AdminCmd::Key(c) => key(dir, c).await,
        AdminCmd::Alert(c) => crate::watch::alert(dir, c).await,
        AdminCmd::Events(a) => crate::watch::events(dir, a).await,
        AdminCmd::Balance(BalanceArgs { wallet, owner }) => match (wallet, owner) {
            (Some(w), _) => out(wallets::show(dir, OP, w).await),
            (None, Some(o)) => {
                let ws = wallets::of_owner(dir, OP, o).await.map_err(refused)?;
                Ok(json!({ "owner": o, "wallets": ws }))
            }
            (None, None) => bail!("give --wallet or --owner"),
        },
    }
}

async fn platform(dir: &Directory, cmd: PlatformCmd) -> anyhow::Result<Value> {
    match cmd {
        PlatformCmd::Create { name, currency, exponents } => {
            let mut currency_exponents = BTreeMap::new();
            for e in exponents {
                let (c, n) = e.split_once('=').ok_or_else(|| anyhow!("--exponent {e:?} is not CUR=N"))?;
                currency_exponents.insert(parse(c)?, n.parse().with_context(|| format!("--exponent {e:?}"))?);
            }
            out(owners::create_platform(dir, OP, name, &currency, currency_exponents).await)
        }
        PlatformCmd::List => out(owners::platforms(dir, OP).await),
    }
}

async fn owner(dir: &Directory, cmd: OwnerCmd) -> anyhow::Result<Value> {
    match cmd {
        OwnerCmd::Show { id } => out(owners::show(dir, OP, id).await),
        OwnerCmd::Children { id } => out(owners::children(dir, OP, id).await),
        OwnerCmd::Status { id, status } => out(owners::set_status(dir, OP, id, parse(&status)?).await),
    }
}

async fn wallet(dir: &Directory, cmd: WalletCmd) -> anyhow::Result<Value> {
    match cmd {
        WalletCmd::Open { owner, wallet_type, currency, min_balance, overdraft } => {
            let w = wallets::NewWallet {
                owner,
                wallet_type: parse(&wallet_type)?,
                currency: &currency,
                min_balance: Some(&min_balance),
                overdraft_limit: Some(&overdraft),
            };
            out(wallets::open(dir, OP, w).await)
        }
        WalletCmd::Show { id } => out(wallets::show(dir, OP, id).await),
        WalletCmd::List { owner } => out(wallets::of_owner(dir, OP, owner).await),
        WalletCmd::Status { id, status } => out(wallets::set_status(dir, OP, id, parse(&status)?).await),
        WalletCmd::Limits { id, min_balance, overdraft } => {
            out(wallets::set_limits(dir, OP, id, min_balance.as_deref(), overdraft.as_deref()).await)
        }
    }
}

fn amount(wallet: AccountId, amount: &str) -> movements::WalletAmount<'_> {
    movements::WalletAmount { wallet, amount, currency: None }
}

async fn tx(dir: &Directory, cmd: TxCmd) -> anyhow::Result<Value> {
    use movements::OneWallet;
    match cmd {
        TxCmd::Deposit { wallet, amount: a, source, opts } => {
            let kind = OneWallet::Deposit(Some(parse(&source)?));
            commit(dir, movements::one_wallet(dir, OP, kind, amount(wallet, &a)).await, opts).await
        }
        TxCmd::Payout { wallet, amount: a, opts } => {
            commit(dir, movements::one_wallet(dir, OP, OneWallet::Payout, amount(wallet, &a)).await, opts).await
        }
        TxCmd::Fee { wallet, amount: a, opts } => {
            commit(dir, movements::one_wallet(dir, OP, OneWallet::Fee, amount(wallet, &a)).await, opts).await
        }
        TxCmd::Transfer { from, to, amount: a, opts } => {
            commit(dir, movements::transfer(dir, OP, from, to, &a, None).await, opts).await
        }
        TxCmd::Reverse { seq, opts } => commit(dir, movements::reversal(dir, OP, seq).await, opts).await,
        TxCmd::Post { platform, postings, opts } => {
            let mut split = Vec::with_capacity(postings.len());
            for s in &postings {
                split.push(s.rsplit_once(':').ok_or_else(|| anyhow!("--posting {s:?} is not ACCOUNT:AMOUNT"))?);
            }
            let reqs: Vec<movements::PostingReq> = split
                .iter()
                .map(|(account, amount)| movements::PostingReq { account, amount, currency: None })
                .collect();
            commit(dir, movements::postings(dir, OP, platform, &reqs).await, opts).await
        }
        TxCmd::Show { seq } => out(journal::transaction(dir, OP, seq).await),
    }
}

async fn hold(dir: &Directory, cmd: HoldCmd) -> anyhow::Result<Value> {
    match cmd {
        HoldCmd::Create { wallet, amount: a, expires_at, expires_in, opts } => {
            let expires_at = match (expires_at, expires_in) {
                (Some(s), _) => Some(parse_time(&s)?),
                (None, Some(secs)) => Some(Timestamp(coffer_app::now().0 + secs.min(400 * 86_400) as i64 * 1_000_000)),
                (None, None) => None,
            };
            commit(dir, movements::hold(dir, OP, amount(wallet, &a), expires_at).await, opts).await
        }
        HoldCmd::Capture { hold, to, amount: a, opts } => {
            let planned = movements::capture(dir, OP, hold, a.as_deref(), account_ref(&to)?).await;
            commit(dir, planned, opts).await
        }
        HoldCmd::Release { hold, opts } => commit(dir, movements::release(dir, OP, hold).await, opts).await,
        HoldCmd::Show { hold } => out(wallets::hold(dir, OP, hold).await),
        HoldCmd::List { wallet } => out(wallets::holds(dir, OP, wallet).await),
    }
}

async fn incoming(dir: &Directory, cmd: IncomingCmd) -> anyhow::Result<Value> {
    use movements::OneWallet;
    match cmd {
        IncomingCmd::Create { wallet, amount: a, opts } => {
            commit(dir, movements::one_wallet(dir, OP, OneWallet::Incoming, amount(wallet, &a)).await, opts).await
        }
        IncomingCmd::Settle { id, opts } => commit(dir, movements::incoming_done(dir, OP, id, true).await, opts).await,
        IncomingCmd::Cancel { id, opts } => commit(dir, movements::incoming_done(dir, OP, id, false).await, opts).await,
    }
}

async fn fx(dir: &Directory, cmd: FxCmd) -> anyhow::Result<Value> {
    match cmd {
        FxCmd::Convert { from, to, amount: a, rate, opts } => {
            let rate: Rate = rate.parse().with_context(|| format!("--rate {rate:?}"))?;
            let rate = movements::RateChoice::Given(rate);
            commit(dir, movements::conversion(dir, OP, (from, to), &a, rate).await, opts).await
        }
        FxCmd::SetRate { platform, base, quote, rate, source, effective_at } => {
            let r = rates::NewRate {
                base: &base,
                quote: &quote,
                rate: rate.parse().with_context(|| format!("--rate {rate:?}"))?,
                source,
                effective_at: effective_at.as_deref().map(parse_time).transpose()?,
            };
            out(rates::set_rate(dir, OP, platform, r).await)
        }
        FxCmd::Import { platform, file, source, pivot } => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let r = rates::import(dir, OP, platform, &bytes, &source, parse(&pivot)?).await;
            let v = r.map_err(|e| anyhow!("{}: {}", file.display(), refused(e)))?;
            Ok(json!({ "imported": v.imported }))
        }
        FxCmd::Rate { platform, base, quote, at } => {
            let at = at.as_deref().map(parse_time).transpose()?.unwrap_or_else(coffer_app::now);
            let quotes = rates::recorded(dir, OP, platform, (&base, &quote), at).await.map_err(refused)?;
            match quotes {
                Some(q) => Ok(json(render::rate_view(&q))),
                None => bail!("no {base}/{quote} rate recorded at {}", render::time(at)),
            }
        }
    }
}

async fn key(dir: &Directory, cmd: KeyCmd) -> anyhow::Result<Value> {
    match cmd {
        KeyCmd::Create { owner, scope } => out(keys::create(dir, OP, Some(owner), parse(&scope)?).await),
        KeyCmd::Revoke { id } => out(keys::revoke(dir, OP, id).await),
        KeyCmd::SetPublicKey { id, file } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let r = keys::set_public_key(dir, OP, id, Some(&text)).await;
            r.map(json).map_err(|e| anyhow!("{}: {}", file.display(), refused(e)))
        }
        KeyCmd::PlatformPublicKey { platform } => {
            out(keys::signing_key(dir, OP, &coffer_app::secrets::Secrets::default(), platform).await)
        }
    }
}
