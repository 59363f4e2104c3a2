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
    ///
    /// Example: `coffer balance --owner <merchant-id>`
    Balance(BalanceArgs),
    /// API keys for the HTTP API: create (the key is shown once), revoke.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Balance alerts on wallets: create, list, delete.
    #[command(subcommand)]
    Alert(crate::watch::AlertCmd),
    /// A page of a platform's event feed (balance changes, holds, alerts, ...), oldest first.
    ///
    /// Example: `coffer events --platform <platform-id> --types balance.changed --limit 50`
    Events(crate::watch::EventsArgs),
}

#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Create an API key for an owner (the secret is shown once).
    ///
    /// Example: `coffer key create --owner <platform-id> --scope READ_ONLY`
    Create {
        /// The owner the key acts as: it reaches that owner and its subtree.
        #[arg(long, value_name = "OWNER_ID")]
        owner: OwnerId,
        /// READ_ONLY or READ_WRITE.
        #[arg(long, default_value = "READ_WRITE")]
        scope: String,
    },
    /// Revoke an API key by its id (at once, on every node).
    ///
    /// Example: `coffer key revoke ck_2f0c...`
    Revoke {
        /// The key's id (`ck_...`, the part before the dot).
        id: String,
    },
    /// Register the RSA public key (PEM or base64 DER, >= 2048 bits) an API key signs PayerMax
    /// requests with.
    ///
    /// Example: `coffer key set-public-key ck_2f0c... --file merchant-public.pem`
    SetPublicKey {
        /// The key's id (`ck_...`).
        id: String,
        /// File holding the public key.
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Print a platform's response-signing public key (PayerMax `sign` header), creating the key
    /// pair if the platform has none yet.
    ///
    /// Example: `coffer key platform-public-key --platform <platform-id>`
    PlatformPublicKey {
        /// The platform whose key it is.
        #[arg(long, value_name = "PLATFORM_ID")]
        platform: OwnerId,
    },
}

#[derive(Subcommand, Debug)]
pub enum PlatformCmd {
    /// Create a platform (a tenant: its own owners, wallets, keys and rates).
    ///
    /// Example: `coffer platform create --name Acme --currency USD --exponent USD=4`
    Create {
        /// Display name.
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
    ///
    /// Example: `coffer platform list`
    List,
}

#[derive(Subcommand, Debug)]
pub enum MerchantCmd {
    /// Create a merchant under a platform, or a sub-merchant under a merchant.
    ///
    /// Example: `coffer merchant create --parent <platform-id> --name Shop --currency EUR`
    Create {
        /// The platform (or merchant) it belongs to.
        #[arg(long, value_name = "OWNER_ID")]
        parent: OwnerId,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Default currency (defaults to the parent's).
        #[arg(long)]
        currency: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum OwnerCmd {
    /// An owner: kind, name, parent, status, default currency.
    ///
    /// Example: `coffer owner show <owner-id>`
    Show {
        /// The owner's id.
        id: OwnerId,
    },
    /// Direct children of an owner.
    ///
    /// Example: `coffer owner children <platform-id>`
    Children {
        /// The owner's id.
        id: OwnerId,
    },
    /// Set status: ACTIVE, SUSPENDED or DELETED (final).
    ///
    /// Example: `coffer owner status <merchant-id> SUSPENDED`
    Status {
        /// The owner's id.
        id: OwnerId,
        /// ACTIVE, SUSPENDED or DELETED.
        status: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum WalletCmd {
    /// Open a wallet of one type and currency for an owner.
    ///
    /// Example: `coffer wallet open --owner <merchant-id> --type OPERATING --currency USD`
    Open {
        /// The owner (platform, merchant or sub-merchant).
        #[arg(long, value_name = "OWNER_ID")]
        owner: OwnerId,
        /// OPERATING, ACQUIRING, SETTLEMENT, RESERVE, PREPAID, GIFT, CARD or REFUND.
        #[arg(long = "type")]
        wallet_type: String,
        /// ISO 4217 code (or one configured in `[currencies]`).
        #[arg(long)]
        currency: String,
        /// Amount payouts must leave in place (decimal).
        #[arg(long, default_value = "0")]
        min_balance: String,
        /// How far available may go below zero (decimal).
        #[arg(long, default_value = "0")]
        overdraft: String,
    },
    /// A wallet with its balances.
    ///
    /// Example: `coffer wallet show <wallet-id>`
    Show {
        /// The wallet's id.
        id: AccountId,
    },
    /// An owner's wallets.
    ///
    /// Example: `coffer wallet list --owner <merchant-id>`
    List {
        /// The owner whose wallets to list.
        #[arg(long, value_name = "OWNER_ID")]
        owner: OwnerId,
    },
    /// Set status: ACTIVE, PENDING, PROCESSING, FROZEN or CLOSED (needs a zero balance; final).
    ///
    /// Example: `coffer wallet status <wallet-id> FROZEN`
    Status {
        /// The wallet's id.
        id: AccountId,
        /// ACTIVE, PENDING, PROCESSING, FROZEN or CLOSED.
        status: String,
    },
    /// Change min_balance and/or overdraft limit (decimals).
    ///
    /// Example: `coffer wallet limits <wallet-id> --min-balance 100.00 --overdraft 0`
    Limits {
        /// The wallet's id.
        id: AccountId,
        /// New amount payouts must leave in place (decimal).
        #[arg(long)]
        min_balance: Option<String>,
        /// New limit below zero for available (decimal).
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
    ///
    /// Example: `coffer tx deposit --wallet <wallet-id> --amount 250.00 --key order-1 --meta order=1`
    Deposit {
        /// The wallet credited.
        #[arg(long, value_name = "WALLET_ID")]
        wallet: AccountId,
        /// Decimal in the wallet's currency (at most its exponent's decimal places).
        #[arg(long)]
        amount: String,
        /// EXTERNAL (default) or OPENING.
        #[arg(long, default_value = "EXTERNAL")]
        source: String,
        #[command(flatten)]
        opts: MoveOpts,
    },
    /// Money leaving a wallet to the outside (leaves min_balance in place).
    ///
    /// Example: `coffer tx payout --wallet <wallet-id> --amount 100.00`
    Payout {
        /// The wallet debited.
        #[arg(long, value_name = "WALLET_ID")]
        wallet: AccountId,
        /// Decimal in the wallet's currency.
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        opts: MoveOpts,
    },
    /// Between two wallets of one platform, in one currency.
    ///
    /// Example: `coffer tx transfer --from <wallet-id> --to <wallet-id> --amount 25.00`
    Transfer {
        /// The wallet debited.
        #[arg(long, value_name = "WALLET_ID")]
        from: AccountId,
        /// The wallet credited (same currency).
        #[arg(long, value_name = "WALLET_ID")]
        to: AccountId,
        /// Decimal in the wallets' currency.
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        opts: MoveOpts,
    },
    /// A fee into the platform's fee account.
    ///
    /// Example: `coffer tx fee --wallet <wallet-id> --amount 1.50`
    Fee {
        /// The wallet charged.
        #[arg(long, value_name = "WALLET_ID")]
        wallet: AccountId,
        /// Decimal in the wallet's currency.
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        opts: MoveOpts,
    },
    /// Post the exact opposite of an earlier transaction.
    ///
    /// Example: `coffer tx reverse 42 --key undo-42`
    Reverse {
        /// The transaction's sequence number.
        seq: Seq,
        #[command(flatten)]
        opts: MoveOpts,
    },
    /// A general transaction: postings ACCOUNT:AMOUNT (negative debits), summing to zero per
    /// currency. ACCOUNT is a wallet id or SYSTEM_<KIND>:<CUR> (EXTERNAL, FEES, FX_CLEARING, OPENING).
    ///
    /// Example: `coffer tx post --platform <platform-id> --posting <wallet-id>:-5.00 --posting SYSTEM_FEES:USD:5.00`
    Post {
        /// The platform whose accounts the postings name.
        #[arg(long, value_name = "PLATFORM_ID")]
        platform: OwnerId,
        /// One posting, ACCOUNT:AMOUNT (repeatable; negative amounts are debits).
        #[arg(long = "posting", value_name = "ACCOUNT:AMOUNT", required = true, allow_hyphen_values = true)]
        postings: Vec<String>,
        #[command(flatten)]
        opts: MoveOpts,
    },
    /// Show a transaction by sequence number.
    ///
    /// Example: `coffer tx show 42`
    Show {
        /// The transaction's sequence number.
        seq: Seq,
    },
}

#[derive(Subcommand, Debug)]
pub enum HoldCmd {
    /// Reserve part of a wallet's available funds.
    ///
    /// Example: `coffer hold create --wallet <wallet-id> --amount 40.00 --expires-in 3600`
    Create {
        /// The wallet whose funds are held.
        #[arg(long, value_name = "WALLET_ID")]
        wallet: AccountId,
        /// Decimal in the wallet's currency.
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
    ///
    /// Example: `coffer hold capture <hold-id> --to <wallet-id> --amount 30.00`
    Capture {
        /// The hold's id.
        hold: HoldId,
        /// Where the captured money goes: a wallet id or SYSTEM_<KIND>:<CUR>.
        #[arg(long, value_name = "ACCOUNT")]
        to: String,
        /// Decimal, at most the held amount (default all of it).
        #[arg(long)]
        amount: Option<String>,
        #[command(flatten)]
        opts: MoveOpts,
    },
    /// Release a hold: its amount is available again.
    ///
    /// Example: `coffer hold release <hold-id>`
    Release {
        /// The hold's id.
        hold: HoldId,
        #[command(flatten)]
        opts: MoveOpts,
    },
    /// A hold: amount, state, deadline.
    ///
    /// Example: `coffer hold show <hold-id>`
    Show {
        /// The hold's id.
        hold: HoldId,
    },
    /// Open holds of a wallet.
    ///
    /// Example: `coffer hold list --wallet <wallet-id>`
    List {
        /// The wallet whose holds to list.
        #[arg(long, value_name = "WALLET_ID")]
        wallet: AccountId,
    },
}

#[derive(Subcommand, Debug)]
pub enum IncomingCmd {
    /// Announce money on its way into a wallet (counted as incoming, not yet available).
    ///
    /// Example: `coffer incoming create --wallet <wallet-id> --amount 500.00`
    Create {
        /// The wallet the money is coming to.
        #[arg(long, value_name = "WALLET_ID")]
        wallet: AccountId,
        /// Decimal in the wallet's currency.
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        opts: MoveOpts,
    },
    /// The money arrived: post it to the wallet.
    ///
    /// Example: `coffer incoming settle <incoming-id>`
    Settle {
        /// The incoming credit's id.
        id: IncomingId,
        #[command(flatten)]
        opts: MoveOpts,
    },
    /// The money will not arrive: drop the incoming credit.
    ///
    /// Example: `coffer incoming cancel <incoming-id>`
    Cancel {
        /// The incoming credit's id.
        id: IncomingId,
        #[command(flatten)]
        opts: MoveOpts,
    },
}

#[derive(Subcommand, Debug)]
pub enum FxCmd {
    /// Convert --amount (in the source wallet's currency) at --rate (target units per source unit).
    ///
    /// Example: `coffer fx convert --from <usd-wallet> --to <eur-wallet> --amount 100.00 --rate 0.9213`
    Convert {
        /// The wallet debited (source currency).
        #[arg(long, value_name = "WALLET_ID")]
        from: AccountId,
        /// The wallet credited (target currency, same owner).
        #[arg(long, value_name = "WALLET_ID")]
        to: AccountId,
        /// Decimal in the source currency.
        #[arg(long)]
        amount: String,
        /// Target units per source unit (decimal).
        #[arg(long)]
        rate: String,
        #[command(flatten)]
        opts: MoveOpts,
    },
    /// Record a platform's exchange rate (units of --quote per unit of --base); never overwrites.
    ///
    /// Example: `coffer fx set-rate --platform <platform-id> --base USD --quote EUR --rate 0.9213 --source desk`
    SetRate {
        /// The platform the rate is for.
        #[arg(long, value_name = "PLATFORM_ID")]
        platform: OwnerId,
        /// The currency one unit of which is priced.
        #[arg(long)]
        base: String,
        /// The currency the price is in.
        #[arg(long)]
        quote: String,
        /// Units of --quote per unit of --base (decimal, > 0).
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
    ///
    /// Example: `coffer fx import --platform <platform-id> --file eurofxref-hist.csv`
    Import {
        /// The platform the rates are for.
        #[arg(long, value_name = "PLATFORM_ID")]
        platform: OwnerId,
        /// The CSV file (a header row `Date,USD,JPY,...`, a row per day).
        #[arg(long)]
        file: std::path::PathBuf,
        /// Provenance recorded with every rate.
        #[arg(long, default_value = "ECB")]
        source: String,
        /// The currency the file's rates are per unit of.
        #[arg(long, default_value = "EUR")]
        pivot: String,
    },
    /// The stored rate of a pair at an instant (default now), with its provenance.
    ///
    /// Example: `coffer fx rate --platform <platform-id> --base USD --quote JPY --at 2026-11-30T00:00:00Z`
    Rate {
        /// The platform whose rates to read.
        #[arg(long, value_name = "PLATFORM_ID")]
        platform: OwnerId,
        /// The currency one unit of which is priced.
        #[arg(long)]
        base: String,
        /// The currency the price is in.
        #[arg(long)]
        quote: String,
        /// RFC 3339; default now.
        #[arg(long)]
        at: Option<String>,
    },
}

/// Which balances `coffer balance` prints.
#[derive(Args, Debug)]
pub struct BalanceArgs {
    /// One wallet.
    #[arg(long, value_name = "WALLET_ID", conflicts_with = "owner", required_unless_present = "owner")]
    wallet: Option<AccountId>,
    /// Every wallet of this owner.
    #[arg(long, value_name = "OWNER_ID")]
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
