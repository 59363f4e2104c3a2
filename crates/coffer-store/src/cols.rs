//! Column lists shared by the backends: both keep the same tables under the same names.

pub const OWNER_COLS: &str =
    "id, kind, platform_id, parent_id, name, status, default_currency, currency_exponents, created_at, updated_at";
pub const ACCOUNT_COLS: &str =
    "id, number, platform_id, owner_id, kind, currency, exponent, posted, held, incoming, status, \
     overdraft_limit, min_balance, created_at, last_trade_at";
pub const HOLD_COLS: &str =
    "id, platform_id, account_id, amount, captured, status, expires_at, created_at, created_seq, closed_at, closed_seq";
pub const INCOMING_COLS: &str =
    "id, platform_id, account_id, amount, status, created_at, created_seq, closed_at, closed_seq";
pub const KEY_COLS: &str = "id, owner_id, platform_id, scope, secret_hash, status, created_at, revoked_at, public_key";
