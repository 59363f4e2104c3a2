//! The one place where wallets become the figures the provider dialects show (product.md, "How
//! each dialect reads the wallets"). A dialect picks fields of a [`CurrencySummary`]; it never
//! adds balances up itself, so five views of one ledger cannot disagree.

use crate::model::{Account, AccountKind, WalletStatus, WalletType};
use crate::money::{CurrencyCode, MoneyError};

/// One owner's wallets in one currency, in minor units at `exponent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencySummary {
    pub currency: CurrencyCode,
    pub exponent: u8,
    /// The owner's wallets of this currency, in creation order.
    pub wallets: Vec<Account>,
}

impl CurrencySummary {
    pub fn wallet(&self, t: WalletType) -> Option<&Account> {
        self.wallets.iter().find(|a| a.kind == AccountKind::Wallet(t))
    }
    pub fn has(&self, t: WalletType) -> bool {
        self.wallet(t).is_some()
    }
    fn of(&self, t: WalletType, f: impl Fn(&Account) -> i64) -> i64 {
        self.wallet(t).map(f).unwrap_or(0)
    }
    pub fn posted(&self, t: WalletType) -> i64 {
        self.of(t, |a| a.posted)
    }
    pub fn held(&self, t: WalletType) -> i64 {
        self.of(t, |a| a.held)
    }
    pub fn incoming(&self, t: WalletType) -> i64 {
        self.of(t, |a| a.incoming)
    }
    pub fn available(&self, t: WalletType) -> i64 {
        self.of(t, Account::available)
    }
    pub fn withdrawable(&self, t: WalletType) -> i64 {
        self.of(t, Account::withdrawable)
    }
    /// Held on every wallet of the currency (PayerMax `FREEZE`).
    pub fn held_all(&self) -> Result<i64, MoneyError> {
        sum(self.wallets.iter().map(|a| a.held))
    }
    /// Onerway `fundOnHold`: OPERATING held + OPERATING incoming + SETTLEMENT posted.
    pub fn fund_on_hold(&self) -> Result<i64, MoneyError> {
        use WalletType::*;
        sum([self.held(Operating), self.incoming(Operating), self.posted(Settlement)])
    }
    /// Onerway `totalBalance`: OPERATING available + fundOnHold + RESERVE posted.
    pub fn onerway_total(&self) -> Result<i64, MoneyError> {
        sum([self.available(WalletType::Operating), self.fund_on_hold()?, self.posted(WalletType::Reserve)])
    }
    /// The status a single-status view shows: the OPERATING wallet's, else the first wallet's.
    pub fn status(&self) -> WalletStatus {
        self.wallet(WalletType::Operating).or(self.wallets.first()).map(|a| a.status).unwrap_or(WalletStatus::Active)
    }
}

fn sum(v: impl IntoIterator<Item = i64>) -> Result<i64, MoneyError> {
    v.into_iter().try_fold(0i64, |acc, x| acc.checked_add(x).ok_or(MoneyError::Overflow))
}

/// An owner's wallets grouped by currency, currencies in the order of their first wallet
/// (creation order: time, then number; with several nodes numbers alone are not in creation
/// order). System accounts are left out.
pub fn by_currency(accounts: &[Account]) -> Vec<CurrencySummary> {
    let mut out: Vec<CurrencySummary> = Vec::new();
    let mut sorted: Vec<&Account> = accounts.iter().filter(|a| a.is_wallet()).collect();
    sorted.sort_by_key(|a| (a.created_at, a.number));
    for a in sorted {
        match out.iter_mut().find(|s| s.currency == a.currency) {
            Some(s) => s.wallets.push(a.clone()),
            None => out.push(CurrencySummary { currency: a.currency, exponent: a.exponent, wallets: vec![a.clone()] }),
        }
    }
    out
}
