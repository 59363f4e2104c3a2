//! What can be asked of the ledger. Every state change is one of these commands.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::*;
use crate::money::{CurrencyCode, Money, Rate};

/// Limits on what one command may carry.
pub mod limits {
    pub const MAX_POSTINGS: usize = 64;
    pub const MAX_KEY_LEN: usize = 255;
    pub const MAX_NAME_LEN: usize = 200;
    pub const MAX_METADATA_KEYS: usize = 32;
    pub const MAX_METADATA_KEY_LEN: usize = 64;
    pub const MAX_METADATA_VALUE_LEN: usize = 512;
    /// Latest a hold may expire, relative to its creation: one year.
    pub const MAX_HOLD_MICROS: i64 = 366 * 24 * 3600 * 1_000_000;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    CreatePlatform {
        name: String,
        default_currency: CurrencyCode,
        /// Currencies whose exponent this platform raises above the standard one.
        #[serde(default)]
        currency_exponents: BTreeMap<CurrencyCode, u8>,
    },
    /// A merchant under a platform, or a sub-merchant under a merchant (by the parent's kind).
    CreateMerchant {
        parent: OwnerId,
        name: String,
        /// Defaults to the parent's.
        default_currency: Option<CurrencyCode>,
    },
    SetOwnerStatus {
        owner: OwnerId,
        status: OwnerStatus,
    },
    OpenWallet {
        owner: OwnerId,
        wallet_type: WalletType,
        currency: CurrencyCode,
        overdraft_limit: i64,
        min_balance: i64,
    },
    SetWalletStatus {
        account: AccountId,
        status: WalletStatus,
    },
    SetWalletLimits {
        account: AccountId,
        overdraft_limit: Option<i64>,
        min_balance: Option<i64>,
    },
    /// Register an API key for an owner. The caller generates the id and the secret and passes
    /// only the secret's hex SHA-256.
    CreateApiKey {
        owner: OwnerId,
        id: String,
        secret_hash: String,
        scope: KeyScope,
    },
    RevokeApiKey {
        id: String,
    },
    /// Register (or, with `None`, remove) the RSA public key a credential signs requests with
    /// (PayerMax): base64 of the X.509 SubjectPublicKeyInfo DER. The shell checks that it is an
    /// RSA key before sending the command; the core keeps it as given.
    SetKeyPublicKey {
        id: String,
        public_key: Option<String>,
    },
    Move(Movement),
}

/// A money movement: recorded in the journal under an idempotency key scoped to the platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    pub platform: OwnerId,
    pub idempotency_key: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    pub op: MoneyOp,
}

/// An account named in a posting: a wallet by id, or a platform system account by kind and
/// currency (created on first use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountRef {
    Id(AccountId),
    System(SystemAccount, CurrencyCode),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    pub account: AccountRef,
    /// Signed: negative debits the account, positive credits it.
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MoneyOp {
    /// A general atomic transaction; postings sum to zero per currency.
    Postings {
        postings: Vec<Posting>,
    },
    /// Money arriving from outside (or from opening balances) into a wallet.
    Deposit {
        account: AccountId,
        amount: Money,
        source: SystemAccount,
    },
    /// Money leaving to the outside; must leave `min_balance` in place.
    Payout {
        account: AccountId,
        amount: Money,
    },
    /// Between two wallets of one platform (any owners, e.g. parent <-> sub-merchant).
    Transfer {
        from: AccountId,
        to: AccountId,
        amount: Money,
    },
    /// Charge a fee into the platform's fee account.
    Fee {
        account: AccountId,
        amount: Money,
    },
    /// Post the exact opposite of an earlier entry's posted lines.
    Reverse {
        seq: Seq,
    },
    HoldCreate {
        account: AccountId,
        amount: Money,
        expires_at: Option<Timestamp>,
    },
    /// Capture all of a hold (amount `None`) or part of it into `destination`; the rest is
    /// released and the hold is closed.
    HoldCapture {
        hold: HoldId,
        amount: Option<Money>,
        destination: AccountRef,
    },
    HoldRelease {
        hold: HoldId,
    },
    /// Issued by the store when a hold's deadline has passed.
    HoldExpire {
        hold: HoldId,
    },
    IncomingCreate {
        account: AccountId,
        amount: Money,
    },
    IncomingSettle {
        incoming: IncomingId,
    },
    IncomingCancel {
        incoming: IncomingId,
    },
    /// Convert `amount` from one wallet to another wallet of the same owner in another currency
    /// at `rate` (quote per base), through the platform's FX clearing accounts.
    FxConvert {
        from: AccountId,
        to: AccountId,
        amount: Money,
        rate: Rate,
        /// Where the rate came from when the caller asked for the platform's stored rate
        /// (e.g. `ECB 2026-11-20T00:00:00Z`). Such a request is identified without its rate, so a
        /// retry after the stored rate changed replays instead of conflicting.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rate_source: Option<String>,
    },
}

impl Movement {
    /// SHA-256 over the canonical JSON of everything but the key: the same key with the same
    /// request replays, with another request conflicts.
    pub fn request_hash(&self) -> String {
        #[derive(Serialize)]
        struct Canon<'a> {
            platform: &'a OwnerId,
            metadata: &'a BTreeMap<String, String>,
            op: &'a MoneyOp,
        }
        let stored;
        let op = match &self.op {
            MoneyOp::FxConvert { from, to, amount, rate_source: Some(_), .. } => {
                // What the caller asked for: this conversion at the stored rate, whatever it is.
                stored = MoneyOp::FxConvert {
                    from: *from,
                    to: *to,
                    amount: *amount,
                    rate: Rate::from_parts(1, 0).expect("1 is a rate"),
                    rate_source: Some("stored".into()),
                };
                &stored
            }
            op => op,
        };
        let bytes = serde_json::to_vec(&Canon { platform: &self.platform, metadata: &self.metadata, op })
            .expect("commands serialize");
        hex::encode(Sha256::digest(&bytes))
    }

    pub fn kind(&self) -> EntryKind {
        match &self.op {
            MoneyOp::Postings { .. } => EntryKind::Transaction,
            MoneyOp::Deposit { .. } => EntryKind::Deposit,
            MoneyOp::Payout { .. } => EntryKind::Payout,
            MoneyOp::Transfer { .. } => EntryKind::Transfer,
            MoneyOp::Fee { .. } => EntryKind::Fee,
            MoneyOp::Reverse { .. } => EntryKind::Reversal,
            MoneyOp::HoldCreate { .. } => EntryKind::HoldCreate,
            MoneyOp::HoldCapture { .. } => EntryKind::HoldCapture,
            MoneyOp::HoldRelease { .. } => EntryKind::HoldRelease,
            MoneyOp::HoldExpire { .. } => EntryKind::HoldExpire,
            MoneyOp::IncomingCreate { .. } => EntryKind::IncomingCreate,
            MoneyOp::IncomingSettle { .. } => EntryKind::IncomingSettle,
            MoneyOp::IncomingCancel { .. } => EntryKind::IncomingCancel,
            MoneyOp::FxConvert { .. } => EntryKind::FxConversion,
        }
    }
}

impl Command {
    /// What a store must have loaded into the working set before executing this command
    /// (beyond owners and accounts, which a working set always holds for the accounts named).
    pub fn needs(&self) -> Needs {
        let mut n = Needs::default();
        if let Command::Move(m) = self {
            n.idempotency = Some((m.platform, m.idempotency_key.clone()));
            match &m.op {
                MoneyOp::HoldCapture { hold, .. } | MoneyOp::HoldRelease { hold } | MoneyOp::HoldExpire { hold } => {
                    n.hold = Some(*hold)
                }
                MoneyOp::IncomingSettle { incoming } | MoneyOp::IncomingCancel { incoming } => {
                    n.incoming = Some(*incoming)
                }
                MoneyOp::Reverse { seq } => n.entry = Some(*seq),
                _ => {}
            }
        }
        n
    }
}

/// Cold state a command reads, which a store loads on demand (see [`Command::needs`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Needs {
    pub idempotency: Option<(OwnerId, String)>,
    pub hold: Option<HoldId>,
    pub incoming: Option<IncomingId>,
    pub entry: Option<Seq>,
}
