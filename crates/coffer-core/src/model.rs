//! The ledger's plain data: owners, accounts (wallets and system accounts), holds, incoming
//! credits and journal entries.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::CurrencyCode;

/// Microseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(ms.saturating_mul(1000))
    }
    pub fn millis(self) -> i64 {
        self.0.div_euclid(1000)
    }
}

macro_rules! uuid_id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map($name)
            }
        }
    };
}

uuid_id!(
    /// A platform, merchant or sub-merchant.
    OwnerId
);
uuid_id!(
    /// A wallet or system account.
    AccountId
);
uuid_id!(HoldId);
uuid_id!(IncomingId);
uuid_id!(
    /// A balance alert on one wallet.
    AlertId
);

/// Journal sequence number: the position of an entry in the ledger's total order, and its id.
pub type Seq = u64;

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName {
                        kind: stringify!($name),
                        name: s.chars().take(40).collect(),
                        expected: &[$($text),+],
                    }),
                }
            }
        }
    };
}

/// A name that is not one of an enumeration's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {} {name:?}: expected one of {}", words(kind), expected.join(", "))]
pub struct UnknownName {
    /// The enumeration (`WalletType`), written in words in the message (`wallet type`).
    pub kind: &'static str,
    pub name: String,
    pub expected: &'static [&'static str],
}

/// `WalletType` as `wallet type`.
fn words(camel: &str) -> String {
    let mut out = String::new();
    for c in camel.chars() {
        if c.is_ascii_uppercase() && !out.is_empty() {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

string_enum!(OwnerKind { Platform = "PLATFORM", Merchant = "MERCHANT", SubMerchant = "SUB_MERCHANT" });
string_enum!(OwnerStatus { Active = "ACTIVE", Suspended = "SUSPENDED", Deleted = "DELETED" });
string_enum!(
    /// What a merchant's wallet holds (product.md, "Wallets").
    WalletType {
        Operating = "OPERATING",
        Acquiring = "ACQUIRING",
        Settlement = "SETTLEMENT",
        Reserve = "RESERVE",
        Prepaid = "PREPAID",
        Gift = "GIFT",
        Card = "CARD",
        Refund = "REFUND",
    }
);
string_enum!(
    /// A platform's own accounts, one per currency, that make every movement double-entry.
    SystemAccount {
        External = "EXTERNAL",
        Fees = "FEES",
        FxClearing = "FX_CLEARING",
        Opening = "OPENING",
    }
);
string_enum!(WalletStatus {
    Active = "ACTIVE",
    Pending = "PENDING",
    Processing = "PROCESSING",
    Frozen = "FROZEN",
    Closed = "CLOSED",
});
string_enum!(
    /// The types of events the journal gives (see `events`).
    EventType {
        BalanceChanged = "balance.changed",
        HoldCreated = "hold.created",
        HoldCaptured = "hold.captured",
        HoldReleased = "hold.released",
        HoldExpired = "hold.expired",
        IncomingCreated = "incoming.created",
        IncomingSettled = "incoming.settled",
        IncomingCancelled = "incoming.cancelled",
        TransactionReversed = "transaction.reversed",
        AlertTriggered = "alert.triggered",
        AlertCleared = "alert.cleared",
        WalletStatusChanged = "wallet.status_changed",
        OwnerStatusChanged = "owner.status_changed",
        WebhookEndpointDisabled = "webhook_endpoint.disabled",
    }
);
string_enum!(
    /// Which balance of a wallet an alert watches.
    AlertField { Available = "available", Posted = "posted" }
);
string_enum!(
    /// On which side of its threshold an alert fires.
    AlertDirection { Below = "below", Above = "above" }
);
string_enum!(HoldStatus { Open = "OPEN", Captured = "CAPTURED", Released = "RELEASED", Expired = "EXPIRED" });
string_enum!(KeyScope { ReadOnly = "READ_ONLY", ReadWrite = "READ_WRITE" });
string_enum!(KeyStatus { Active = "ACTIVE", Revoked = "REVOKED" });
string_enum!(IncomingStatus { Pending = "PENDING", Settled = "SETTLED", Cancelled = "CANCELLED" });
string_enum!(EntryKind {
    Transaction = "TRANSACTION",
    Deposit = "DEPOSIT",
    Payout = "PAYOUT",
    Transfer = "TRANSFER",
    Fee = "FEE",
    Reversal = "REVERSAL",
    HoldCreate = "HOLD_CREATE",
    HoldCapture = "HOLD_CAPTURE",
    HoldRelease = "HOLD_RELEASE",
    HoldExpire = "HOLD_EXPIRE",
    IncomingCreate = "INCOMING_CREATE",
    IncomingSettle = "INCOMING_SETTLE",
    IncomingCancel = "INCOMING_CANCEL",
    FxConversion = "FX_CONVERSION",
});

impl WalletStatus {
    /// Whether the wallet accepts movements (product.md: frozen or closed wallets refuse them).
    pub fn accepts_movements(self) -> bool {
        !matches!(self, WalletStatus::Frozen | WalletStatus::Closed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub id: OwnerId,
    pub kind: OwnerKind,
    /// The tenant root: the platform's own id for a platform.
    pub platform: OwnerId,
    pub parent: Option<OwnerId>,
    pub name: String,
    pub status: OwnerStatus,
    pub default_currency: CurrencyCode,
    /// Platforms only: currencies whose exponent this platform raises above the standard one.
    pub currency_exponents: BTreeMap<CurrencyCode, u8>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What an account is: a merchant's wallet of some type, or one of a platform's system accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccountKind {
    Wallet(WalletType),
    System(SystemAccount),
}

impl AccountKind {
    pub fn wallet_type(self) -> Option<WalletType> {
        match self {
            AccountKind::Wallet(t) => Some(t),
            AccountKind::System(_) => None,
        }
    }
    pub fn as_string(self) -> String {
        match self {
            AccountKind::Wallet(t) => t.as_str().to_string(),
            AccountKind::System(s) => format!("SYSTEM_{}", s.as_str()),
        }
    }
}

impl FromStr for AccountKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        match s.strip_prefix("SYSTEM_") {
            Some(rest) => rest.parse().map(AccountKind::System),
            None => s.parse().map(AccountKind::Wallet),
        }
    }
}
impl fmt::Display for AccountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string())
    }
}
impl Serialize for AccountKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_string())
    }
}
impl<'de> Deserialize<'de> for AccountKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A ledger account: one owner's wallet of one type and currency, or a platform system account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    /// Sequential account number within the ledger (human-facing; also the creation order).
    pub number: u64,
    pub platform: OwnerId,
    pub owner: OwnerId,
    pub kind: AccountKind,
    pub currency: CurrencyCode,
    /// Exponent of the minor units every amount of this account is kept in.
    pub exponent: u8,
    /// Settled balance.
    pub posted: i64,
    /// Open holds (pending debits).
    pub held: i64,
    /// Pending credits not yet settled.
    pub incoming: i64,
    pub status: WalletStatus,
    /// How far `available` may go below zero; `None` means unbounded (system accounts only).
    pub overdraft_limit: Option<i64>,
    /// What payouts must leave in place.
    pub min_balance: i64,
    pub created_at: Timestamp,
    pub last_trade_at: Option<Timestamp>,
}

impl Account {
    /// `posted - held`. Cannot overflow: balances are bounded by [`crate::money::MAX_AMOUNT`].
    pub fn available(&self) -> i64 {
        self.posted - self.held
    }
    /// `max(0, available - min_balance)`.
    pub fn withdrawable(&self) -> i64 {
        (self.available() - self.min_balance).max(0)
    }
    pub fn is_wallet(&self) -> bool {
        matches!(self.kind, AccountKind::Wallet(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub id: HoldId,
    pub platform: OwnerId,
    pub account: AccountId,
    pub amount: i64,
    /// Amount captured (0 unless captured).
    pub captured: i64,
    pub status: HoldStatus,
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub created_seq: Seq,
    pub closed_at: Option<Timestamp>,
    pub closed_seq: Option<Seq>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incoming {
    pub id: IncomingId,
    pub platform: OwnerId,
    pub account: AccountId,
    pub amount: i64,
    pub status: IncomingStatus,
    pub created_at: Timestamp,
    pub created_seq: Seq,
    pub closed_at: Option<Timestamp>,
    pub closed_seq: Option<Seq>,
}

/// An API credential of an owner. Only a hash of its secret is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Public identifier, the part of the key before the secret.
    pub id: String,
    pub owner: OwnerId,
    pub platform: OwnerId,
    pub scope: KeyScope,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
    pub status: KeyStatus,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// The RSA public key requests are signed with (base64 SubjectPublicKeyInfo DER), if one
    /// is registered.
    pub public_key: Option<String>,
}

/// One account's part in a journal entry: the deltas of its three balances and the balances
/// after the entry (the running balance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub account: AccountId,
    pub currency: CurrencyCode,
    pub posted: i64,
    pub held: i64,
    pub incoming: i64,
    pub posted_after: i64,
    pub held_after: i64,
    pub incoming_after: i64,
}

/// Details of an FX conversion entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FxDetail {
    pub rate: String,
    /// The stored rate's provenance, when the conversion used the platform's stored rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_source: Option<String>,
    pub from_currency: CurrencyCode,
    pub to_currency: CurrencyCode,
    pub from_amount: i64,
    pub to_amount: i64,
}

/// An append-only journal record. The sum of `posted` deltas over its lines is zero per
/// currency; held and incoming deltas are memo movements within one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: Seq,
    pub platform: OwnerId,
    pub kind: EntryKind,
    pub idempotency_key: String,
    /// Hex SHA-256 of the request, for idempotent replay.
    pub request_hash: String,
    pub created_at: Timestamp,
    pub metadata: BTreeMap<String, String>,
    pub lines: Vec<Line>,
    pub hold: Option<HoldId>,
    pub incoming: Option<IncomingId>,
    pub reverses: Option<Seq>,
    pub fx: Option<FxDetail>,
}

/// What changed status: an owner, a wallet, or a webhook endpoint (disabled after a long
/// failure streak).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatusSubject {
    Owner(OwnerId),
    Wallet(AccountId),
    WebhookEndpoint(Uuid),
}

impl StatusSubject {
    /// Its kind as stored: `owner`, `wallet`, `webhook_endpoint`.
    pub fn kind(&self) -> &'static str {
        match self {
            StatusSubject::Owner(_) => "owner",
            StatusSubject::Wallet(_) => "wallet",
            StatusSubject::WebhookEndpoint(_) => "webhook_endpoint",
        }
    }

    pub fn id(&self) -> Uuid {
        match *self {
            StatusSubject::Owner(o) => o.0,
            StatusSubject::Wallet(a) => a.0,
            StatusSubject::WebhookEndpoint(w) => w,
        }
    }

    /// The subject from its stored kind and id.
    pub fn from_parts(kind: &str, id: Uuid) -> Option<Self> {
        Some(match kind {
            "owner" => StatusSubject::Owner(OwnerId(id)),
            "wallet" => StatusSubject::Wallet(AccountId(id)),
            "webhook_endpoint" => StatusSubject::WebhookEndpoint(id),
            _ => return None,
        })
    }
}

/// A change of status, recorded with the write that made it. It takes a journal number of its
/// own (no entry has it), so that the event feed, which walks journal numbers, places it
/// exactly between the entries committed before and after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub seq: Seq,
    pub platform: OwnerId,
    /// The owner whose reach covers it: the owner itself, the wallet's or the endpoint's owner.
    pub owner: OwnerId,
    pub subject: StatusSubject,
    pub from: String,
    pub to: String,
    pub reason: Option<String>,
    pub created_at: Timestamp,
}

impl Entry {
    /// Sum of posted deltas per currency (zero for every currency in a valid entry).
    pub fn posted_sums(&self) -> BTreeMap<CurrencyCode, i128> {
        let mut sums = BTreeMap::new();
        for l in &self.lines {
            *sums.entry(l.currency).or_insert(0i128) += l.posted as i128;
        }
        sums
    }
}
