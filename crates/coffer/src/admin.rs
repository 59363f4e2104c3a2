//! Administration commands: owners, wallets, movements, holds, incoming credits, balances.
//! Each prints the result as JSON; a refusal is an error with the ledger's reason.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use coffer_core::money::parse_minor;
use coffer_core::*;
use coffer_store::Store;
use serde_json::{json, Value};

use coffer_app::render;

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

fn json<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).expect("views serialize")
}

async fn account(store: &dyn Store, id: AccountId) -> anyhow::Result<Account> {
    store.account(id).await?.ok_or_else(|| anyhow!("account {id} not found"))
}

fn money(a: &Account, s: &str) -> anyhow::Result<Money> {
    Ok(Money::new(parse_minor(s, a.exponent)?, a.currency))
}

fn limit(a: &Account, s: &str, what: &str) -> anyhow::Result<i64> {
    parse_minor(s, a.exponent).with_context(|| format!("{what} {s:?}"))
}

fn movement(platform: OwnerId, opts: MoveOpts, op: MoneyOp) -> anyhow::Result<Command> {
    let mut metadata = BTreeMap::new();
    for kv in opts.meta {
        let (k, v) = kv.split_once('=').ok_or_else(|| anyhow!("--meta {kv:?} is not KEY=VALUE"))?;
        metadata.insert(k.to_string(), v.to_string());
    }
    let idempotency_key = opts.key.unwrap_or_else(|| format!("cli-{}", uuid::Uuid::now_v7()));
    Ok(Command::Move(Movement { platform, idempotency_key, metadata, op }))
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

async fn exec(store: &dyn Store, cmd: Command) -> anyhow::Result<Value> {
    let r = store.execute(cmd).await?;
    Ok(render::outcome(store, &r.outcome, r.replayed).await?)
}

pub async fn run(store: &dyn Store, cmd: AdminCmd) -> anyhow::Result<Value> {
    match cmd {
        AdminCmd::Platform(PlatformCmd::Create { name, currency, exponents }) => {
            let mut currency_exponents = BTreeMap::new();
            for e in exponents {
                let (c, n) = e.split_once('=').ok_or_else(|| anyhow!("--exponent {e:?} is not CUR=N"))?;
                currency_exponents.insert(parse(c)?, n.parse().with_context(|| format!("--exponent {e:?}"))?);
            }
            exec(store, Command::CreatePlatform { name, default_currency: parse(&currency)?, currency_exponents }).await
        }
        AdminCmd::Platform(PlatformCmd::List) => {
            Ok(Value::Array(store.platforms().await?.iter().map(|o| json(render::owner(o))).collect()))
        }
        AdminCmd::Merchant(MerchantCmd::Create { parent, name, currency }) => {
            let default_currency = currency.as_deref().map(parse).transpose()?;
            exec(store, Command::CreateMerchant { parent, name, default_currency }).await
        }
        AdminCmd::Owner(OwnerCmd::Show { id }) => {
            let o = store.owner(id).await?.ok_or_else(|| anyhow!("owner {id} not found"))?;
            Ok(json(render::owner(&o)))
        }
        AdminCmd::Owner(OwnerCmd::Children { id }) => {
            Ok(Value::Array(store.children(id).await?.iter().map(|o| json(render::owner(o))).collect()))
        }
        AdminCmd::Owner(OwnerCmd::Status { id, status }) => {
            exec(store, Command::SetOwnerStatus { owner: id, status: parse(&status)? }).await
        }
        AdminCmd::Wallet(WalletCmd::Open { owner, wallet_type, currency, min_balance, overdraft }) => {
            let o = store.owner(owner).await?.ok_or_else(|| anyhow!("owner {owner} not found"))?;
            let currency: CurrencyCode = parse(&currency)?;
            let exp = store.exponent(o.platform, currency).await?;
            let min_balance = parse_minor(&min_balance, exp).context("--min-balance")?;
            let overdraft_limit = parse_minor(&overdraft, exp).context("--overdraft")?;
            exec(
                store,
                Command::OpenWallet {
                    owner,
                    wallet_type: parse(&wallet_type)?,
                    currency,
                    overdraft_limit,
                    min_balance,
                },
            )
            .await
        }
        AdminCmd::Wallet(WalletCmd::Show { id }) => Ok(json(render::account(&account(store, id).await?))),
        AdminCmd::Wallet(WalletCmd::List { owner }) => {
            Ok(Value::Array(store.accounts_of(owner).await?.iter().map(|a| json(render::account(a))).collect()))
        }
        AdminCmd::Wallet(WalletCmd::Status { id, status }) => {
            exec(store, Command::SetWalletStatus { account: id, status: parse(&status)? }).await
        }
        AdminCmd::Wallet(WalletCmd::Limits { id, min_balance, overdraft }) => {
            let a = account(store, id).await?;
            if min_balance.is_none() && overdraft.is_none() {
                bail!("give --min-balance and/or --overdraft");
            }
            let min_balance = min_balance.map(|s| limit(&a, &s, "--min-balance")).transpose()?;
            let overdraft_limit = overdraft.map(|s| limit(&a, &s, "--overdraft")).transpose()?;
            exec(store, Command::SetWalletLimits { account: id, overdraft_limit, min_balance }).await
        }
        AdminCmd::Tx(TxCmd::Deposit { wallet, amount, source, opts }) => {
            let a = account(store, wallet).await?;
            let op = MoneyOp::Deposit { account: wallet, amount: money(&a, &amount)?, source: parse(&source)? };
            exec(store, movement(a.platform, opts, op)?).await
        }
        AdminCmd::Tx(TxCmd::Payout { wallet, amount, opts }) => {
            let a = account(store, wallet).await?;
            exec(store, movement(a.platform, opts, MoneyOp::Payout { account: wallet, amount: money(&a, &amount)? })?)
                .await
        }
        AdminCmd::Tx(TxCmd::Transfer { from, to, amount, opts }) => {
            let a = account(store, from).await?;
            exec(store, movement(a.platform, opts, MoneyOp::Transfer { from, to, amount: money(&a, &amount)? })?).await
        }
        AdminCmd::Tx(TxCmd::Fee { wallet, amount, opts }) => {
            let a = account(store, wallet).await?;
            exec(store, movement(a.platform, opts, MoneyOp::Fee { account: wallet, amount: money(&a, &amount)? })?)
                .await
        }
        AdminCmd::Tx(TxCmd::Reverse { seq, opts }) => {
            let e = store.entry(seq).await?.ok_or_else(|| anyhow!("transaction {seq} not found"))?;
            exec(store, movement(e.platform, opts, MoneyOp::Reverse { seq })?).await
        }
        AdminCmd::Tx(TxCmd::Post { platform, postings, opts }) => {
            let mut out = Vec::new();
            for s in postings {
                let (acc, amt) = s.rsplit_once(':').ok_or_else(|| anyhow!("--posting {s:?} is not ACCOUNT:AMOUNT"))?;
                let r = account_ref(acc)?;
                let (currency, exp) = match r {
                    AccountRef::Id(id) => {
                        let a = account(store, id).await?;
                        (a.currency, a.exponent)
                    }
                    AccountRef::System(_, c) => (c, store.exponent(platform, c).await?),
                };
                let minor = parse_minor(amt, exp).with_context(|| format!("--posting {s:?}"))?;
                out.push(Posting { account: r, amount: Money::new(minor, currency) });
            }
            exec(store, movement(platform, opts, MoneyOp::Postings { postings: out })?).await
        }
        AdminCmd::Tx(TxCmd::Show { seq }) => {
            let e = store.entry(seq).await?.ok_or_else(|| anyhow!("transaction {seq} not found"))?;
            Ok(json(render::entry(store, &e, &coffer_app::reach::EntryReach::whole(&e)).await?))
        }
        AdminCmd::Hold(HoldCmd::Create { wallet, amount, expires_at, expires_in, opts }) => {
            let a = account(store, wallet).await?;
            let expires_at = match (expires_at, expires_in) {
                (Some(s), _) => Some(parse_time(&s)?),
                (None, Some(secs)) => {
                    let now = coffer_app::now().0;
                    Some(Timestamp(now + secs.min(400 * 86_400) as i64 * 1_000_000))
                }
                (None, None) => None,
            };
            let op = MoneyOp::HoldCreate { account: wallet, amount: money(&a, &amount)?, expires_at };
            exec(store, movement(a.platform, opts, op)?).await
        }
        AdminCmd::Hold(HoldCmd::Capture { hold, to, amount, opts }) => {
            let h = store.hold(hold).await?.ok_or_else(|| anyhow!("hold {hold} not found"))?;
            let a = account(store, h.account).await?;
            let amount = amount.map(|s| money(&a, &s)).transpose()?;
            let op = MoneyOp::HoldCapture { hold, amount, destination: account_ref(&to)? };
            exec(store, movement(h.platform, opts, op)?).await
        }
        AdminCmd::Hold(HoldCmd::Release { hold, opts }) => {
            let h = store.hold(hold).await?.ok_or_else(|| anyhow!("hold {hold} not found"))?;
            exec(store, movement(h.platform, opts, MoneyOp::HoldRelease { hold })?).await
        }
        AdminCmd::Hold(HoldCmd::Show { hold }) => {
            let h = store.hold(hold).await?.ok_or_else(|| anyhow!("hold {hold} not found"))?;
            let a = account(store, h.account).await?;
            Ok(json(render::hold(&h, a.exponent)))
        }
        AdminCmd::Hold(HoldCmd::List { wallet }) => {
            let a = account(store, wallet).await?;
            Ok(Value::Array(
                store.open_holds(wallet).await?.iter().map(|h| json(render::hold(h, a.exponent))).collect(),
            ))
        }
        AdminCmd::Incoming(IncomingCmd::Create { wallet, amount, opts }) => {
            let a = account(store, wallet).await?;
            let op = MoneyOp::IncomingCreate { account: wallet, amount: money(&a, &amount)? };
            exec(store, movement(a.platform, opts, op)?).await
        }
        AdminCmd::Incoming(IncomingCmd::Settle { id, opts }) => {
            let i = store.incoming(id).await?.ok_or_else(|| anyhow!("incoming credit {id} not found"))?;
            exec(store, movement(i.platform, opts, MoneyOp::IncomingSettle { incoming: id })?).await
        }
        AdminCmd::Incoming(IncomingCmd::Cancel { id, opts }) => {
            let i = store.incoming(id).await?.ok_or_else(|| anyhow!("incoming credit {id} not found"))?;
            exec(store, movement(i.platform, opts, MoneyOp::IncomingCancel { incoming: id })?).await
        }
        AdminCmd::Fx(FxCmd::Convert { from, to, amount, rate, opts }) => {
            let a = account(store, from).await?;
            let rate: Rate = rate.parse().with_context(|| format!("--rate {rate:?}"))?;
            let op = MoneyOp::FxConvert { from, to, amount: money(&a, &amount)?, rate, rate_source: None };
            exec(store, movement(a.platform, opts, op)?).await
        }
        AdminCmd::Fx(FxCmd::SetRate { platform, base, quote, rate, source, effective_at }) => {
            platform_exists(store, platform).await?;
            let q = coffer_core::fx::RateQuote {
                base: parse(&base)?,
                quote: parse(&quote)?,
                rate: rate.parse().with_context(|| format!("--rate {rate:?}"))?,
                source,
                effective_at: match effective_at {
                    Some(t) => parse_time(&t)?,
                    None => coffer_app::now(),
                },
                recorded_at: Timestamp(0),
            };
            coffer_core::fx::validate(&q, &store.currency_table())?;
            let r = store.record_rates(platform, vec![q]).await?;
            Ok(json(coffer_app::render::rate_view(&r[0])))
        }
        AdminCmd::Fx(FxCmd::Import { platform, file, source, pivot }) => {
            platform_exists(store, platform).await?;
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let quotes =
                coffer_core::fx::parse_ecb_csv(&bytes, parse(&pivot)?, &source, Timestamp(0), &store.currency_table())
                    .map_err(|e| anyhow!("{}: {e}", file.display()))?;
            let n = quotes.len();
            if n > 0 {
                store.record_rates(platform, quotes).await?;
            }
            Ok(json!({ "imported": n }))
        }
        AdminCmd::Fx(FxCmd::Rate { platform, base, quote, at }) => {
            platform_exists(store, platform).await?;
            let at = match at {
                Some(t) => parse_time(&t)?,
                None => coffer_app::now(),
            };
            let (base, quote): (CurrencyCode, CurrencyCode) = (parse(&base)?, parse(&quote)?);
            let quotes = store.rates_at(platform, vec![(base, quote)], at).await?;
            match quotes.first() {
                Some(q) => Ok(json(coffer_app::render::rate_view(q))),
                None => bail!("no {base}/{quote} rate recorded at {}", render::time(at)),
            }
        }
        AdminCmd::Key(KeyCmd::Create { owner, scope }) => {
            let k = coffer_app::auth::generate_key().map_err(|e| anyhow!("no randomness for a key: {e}"))?;
            let cmd = Command::CreateApiKey { owner, id: k.id, secret_hash: k.hash, scope: parse(&scope)? };
            let mut v = exec(store, cmd).await?;
            v["key"] = Value::String(k.full);
            Ok(v)
        }
        AdminCmd::Key(KeyCmd::Revoke { id }) => exec(store, Command::RevokeApiKey { id }).await,
        AdminCmd::Key(KeyCmd::SetPublicKey { id, file }) => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let b64 = coffer_app::secrets::parse_public_key(&text).map_err(|m| anyhow!("{}: {m}", file.display()))?;
            exec(store, Command::SetKeyPublicKey { id, public_key: Some(b64) }).await
        }
        AdminCmd::Key(KeyCmd::PlatformPublicKey { platform }) => {
            platform_exists(store, platform).await?;
            let secrets = coffer_app::secrets::Secrets::default();
            let key = secrets.signing_key(store, platform).await?;
            let public = coffer_app::secrets::signer_public_base64(&key);
            Ok(
                json!({ "platform": platform, "public_key_pem": coffer_app::secrets::public_pem(&key), "public_key": public }),
            )
        }
        AdminCmd::Balance(BalanceArgs { wallet, owner }) => match (wallet, owner) {
            (Some(w), _) => Ok(json(render::account(&account(store, w).await?))),
            (None, Some(o)) => {
                let accounts = store.accounts_of(o).await?;
                if accounts.is_empty() && store.owner(o).await?.is_none() {
                    bail!("owner {o} not found");
                }
                Ok(
                    json!({ "owner": o, "wallets": accounts.iter().map(|a| json(render::account(a))).collect::<Vec<_>>() }),
                )
            }
            (None, None) => bail!("give --wallet or --owner"),
        },
    }
}

async fn platform_exists(store: &dyn Store, platform: OwnerId) -> anyhow::Result<()> {
    match store.owner(platform).await? {
        Some(o) if o.kind == OwnerKind::Platform => Ok(()),
        _ => bail!("platform {platform} not found"),
    }
}
