//! The ledger's one error type. Each variant has a stable code ([`LedgerError::code`]) that the
//! API layers map to their own envelopes.

use crate::model::*;
use crate::money::{CurrencyCode, MoneyError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    #[error("owner {0} not found")]
    OwnerNotFound(OwnerId),
    #[error("account {0} not found")]
    AccountNotFound(AccountId),
    #[error("hold {0} not found")]
    HoldNotFound(HoldId),
    #[error("incoming credit {0} not found")]
    IncomingNotFound(IncomingId),
    #[error("API key {0} not found")]
    ApiKeyNotFound(String),
    #[error("API key {0} exists already")]
    ApiKeyExists(String),
    #[error("transaction {0} not found")]
    EntryNotFound(Seq),
    #[error("owner {owner} is {status}")]
    OwnerNotActive { owner: OwnerId, status: OwnerStatus },
    #[error("account {account} is {status} and refuses movements")]
    WalletNotActive { account: AccountId, status: WalletStatus },
    #[error("account {account} is in {actual}, not {requested}")]
    CurrencyMismatch { account: AccountId, actual: CurrencyCode, requested: CurrencyCode },
    #[error("amount must be positive")]
    AmountNotPositive,
    #[error("insufficient funds in {account}: available {available}, needed {needed}")]
    InsufficientFunds { account: AccountId, available: String, needed: String },
    #[error(
        "payout from {account} would go below its minimum balance: withdrawable {withdrawable}, requested {requested}"
    )]
    BelowMinBalance { account: AccountId, withdrawable: String, requested: String },
    #[error("postings do not balance in {currency}: they sum to {sum} minor units")]
    Unbalanced { currency: CurrencyCode, sum: i128 },
    #[error("idempotency key {key:?} was already used with a different request")]
    IdempotencyConflict { key: String },
    #[error("hold {hold} is {status}")]
    HoldNotOpen { hold: HoldId, status: HoldStatus },
    #[error("hold {hold} has expired")]
    HoldExpired { hold: HoldId },
    #[error("hold {hold} has not reached its deadline")]
    HoldNotDue { hold: HoldId },
    #[error("capture of {requested} exceeds hold {hold}'s {amount}")]
    CaptureExceedsHold { hold: HoldId, amount: String, requested: String },
    #[error("incoming credit {incoming} is {status}")]
    IncomingNotPending { incoming: IncomingId, status: IncomingStatus },
    #[error("transaction {seq} was already reversed by {by}")]
    AlreadyReversed { seq: Seq, by: Seq },
    #[error("transaction {seq} cannot be reversed: {reason}")]
    NotReversible { seq: Seq, reason: &'static str },
    #[error("owner {owner} already has a {wallet_type} wallet in {currency}: {existing}")]
    WalletExists { owner: OwnerId, wallet_type: WalletType, currency: CurrencyCode, existing: AccountId },
    #[error(
        "account {account} still holds money (posted {posted}, held {held}, incoming {incoming}) and cannot be closed"
    )]
    WalletNotEmpty { account: AccountId, posted: String, held: String, incoming: String },
    #[error("cannot change status from {from} to {to}")]
    InvalidTransition { from: &'static str, to: &'static str },
    #[error("arithmetic overflow: the result is out of range")]
    Overflow,
    /// A broken internal invariant: a bug. The command is refused and nothing changes.
    #[error("internal invariant violated: {0}")]
    Invariant(String),
}

impl LedgerError {
    /// A stable, documented, machine-readable code.
    pub fn code(&self) -> &'static str {
        use LedgerError::*;
        match self {
            Money(MoneyError::Malformed(_)) => "invalid_amount",
            Money(MoneyError::TooManyDecimals { .. }) => "too_many_decimals",
            Money(MoneyError::OutOfRange(_)) | Money(MoneyError::Overflow) | Overflow => "amount_out_of_range",
            Money(MoneyError::BadCurrencyCode(_)) | Money(MoneyError::UnknownCurrency(_)) => "unknown_currency",
            InvalidArgument { .. } => "invalid_argument",
            OwnerNotFound(_) => "owner_not_found",
            AccountNotFound(_) => "account_not_found",
            HoldNotFound(_) => "hold_not_found",
            IncomingNotFound(_) => "incoming_not_found",
            EntryNotFound(_) => "transaction_not_found",
            ApiKeyNotFound(_) => "api_key_not_found",
            ApiKeyExists(_) => "api_key_exists",
            OwnerNotActive { .. } => "owner_not_active",
            WalletNotActive { .. } => "wallet_not_active",
            CurrencyMismatch { .. } => "currency_mismatch",
            AmountNotPositive => "amount_not_positive",
            InsufficientFunds { .. } => "insufficient_funds",
            BelowMinBalance { .. } => "below_min_balance",
            Unbalanced { .. } => "unbalanced",
            IdempotencyConflict { .. } => "idempotency_conflict",
            HoldNotOpen { .. } => "hold_not_open",
            HoldExpired { .. } => "hold_expired",
            HoldNotDue { .. } => "hold_not_due",
            CaptureExceedsHold { .. } => "capture_exceeds_hold",
            IncomingNotPending { .. } => "incoming_not_pending",
            AlreadyReversed { .. } => "already_reversed",
            NotReversible { .. } => "not_reversible",
            WalletExists { .. } => "wallet_exists",
            WalletNotEmpty { .. } => "wallet_not_empty",
            InvalidTransition { .. } => "invalid_transition",
            Invariant(_) => "internal",
        }
    }
}

pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> LedgerError {
    LedgerError::InvalidArgument { field, reason: reason.into() }
}
