//! What text a command may carry: the rules every string from a caller meets before it is
//! stored or looked up (no NUL, which PostgreSQL cannot hold; no control characters where a
//! person reads it; lengths within the limits). The stores run [`check_command`] before a
//! command joins a batch, so a bad string is refused on its own and never fails the others.

use std::collections::BTreeMap;

use crate::command::{limits, Command, MoneyOp};
use crate::error::{invalid, LedgerError};

/// Longest API key id.
pub const MAX_KEY_ID: usize = 64;
/// Longest registered public key (base64): RSA-4096 SubjectPublicKeyInfo is about 740.
pub const MAX_PUBLIC_KEY: usize = 4096;
/// Longest rate source recorded on a conversion.
pub const MAX_RATE_SOURCE: usize = 128;

/// An API key id: 1 to 64 ASCII letters, digits or underscores.
pub fn is_key_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_KEY_ID && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

pub fn check_key_id(id: &str) -> Result<(), LedgerError> {
    if !is_key_id(id) {
        return Err(invalid("id", format!("1 to {MAX_KEY_ID} letters, digits or underscores")));
    }
    Ok(())
}

/// A name people read: 1 to 200 characters, none of them a control character.
pub fn check_name(field: &'static str, name: &str) -> Result<(), LedgerError> {
    let n = name.chars().count();
    if n == 0 || n > limits::MAX_NAME_LEN {
        return Err(invalid(field, format!("must be 1 to {} characters", limits::MAX_NAME_LEN)));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// An idempotency key: 1 to 255 printable ASCII characters without spaces.
pub fn check_idempotency_key(key: &str) -> Result<(), LedgerError> {
    if key.is_empty() || key.len() > limits::MAX_KEY_LEN {
        return Err(invalid("idempotency_key", format!("must be 1 to {} characters", limits::MAX_KEY_LEN)));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid("idempotency_key", "must be printable ASCII without spaces"));
    }
    Ok(())
}

/// Metadata: at most 32 keys of 1 to 64 bytes without control characters; values of at most
/// 512 bytes without NUL.
pub fn check_metadata(m: &BTreeMap<String, String>) -> Result<(), LedgerError> {
    if m.len() > limits::MAX_METADATA_KEYS {
        return Err(invalid("metadata", format!("at most {} keys", limits::MAX_METADATA_KEYS)));
    }
    for (k, v) in m {
        if k.is_empty() || k.len() > limits::MAX_METADATA_KEY_LEN || k.chars().any(char::is_control) {
            return Err(invalid(
                "metadata",
                format!("keys must be 1 to {} bytes without control characters", limits::MAX_METADATA_KEY_LEN),
            ));
        }
        if v.len() > limits::MAX_METADATA_VALUE_LEN || v.contains('\0') {
            return Err(invalid(
                "metadata",
                format!("values must be at most {} bytes, without NUL", limits::MAX_METADATA_VALUE_LEN),
            ));
        }
    }
    Ok(())
}

/// A public key as registered: base64 of a DER key, at most 4096 characters.
pub fn check_public_key(pk: &str) -> Result<(), LedgerError> {
    let b64 = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=';
    if pk.is_empty() || pk.len() > MAX_PUBLIC_KEY || !pk.bytes().all(b64) {
        return Err(invalid("public_key", "base64 of a DER public key, at most 4096 characters"));
    }
    Ok(())
}

/// Every string of `cmd` is one the stores can hold and look up. Cheap and pure: the stores
/// run it before a command joins a batch.
pub fn check_command(cmd: &Command) -> Result<(), LedgerError> {
    match cmd {
        Command::CreatePlatform { name, .. } | Command::CreateMerchant { name, .. } => check_name("name", name),
        Command::CreateApiKey { id, secret_hash, .. } => {
            check_key_id(id)?;
            if secret_hash.len() != 64 || !secret_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid("secret_hash", "a hex SHA-256"));
            }
            Ok(())
        }
        Command::RevokeApiKey { id } => check_key_id(id),
        Command::SetKeyPublicKey { id, public_key } => {
            check_key_id(id)?;
            public_key.as_deref().map_or(Ok(()), check_public_key)
        }
        Command::Move(m) => {
            check_idempotency_key(&m.idempotency_key)?;
            check_metadata(&m.metadata)?;
            match &m.op {
                MoneyOp::FxConvert { rate_source: Some(s), .. }
                    if s.is_empty() || s.len() > MAX_RATE_SOURCE || s.chars().any(char::is_control) =>
                {
                    Err(invalid("rate_source", format!("1 to {MAX_RATE_SOURCE} printable characters")))
                }
                _ => Ok(()),
            }
        }
        Command::SetOwnerStatus { .. }
        | Command::OpenWallet { .. }
        | Command::SetWalletStatus { .. }
        | Command::SetWalletLimits { .. } => Ok(()),
    }
}

/// Longest request id (nonce) or nonce scope a store keeps.
pub const MAX_NONCE: usize = 256;

/// A request id claimed under a scope: each 1 to 256 bytes without control characters.
pub fn check_nonce(scope: &str, nonce: &str) -> Result<(), LedgerError> {
    for (field, s) in [("scope", scope), ("request_id", nonce)] {
        if s.is_empty() || s.len() > MAX_NONCE || s.chars().any(char::is_control) {
            return Err(invalid(field, format!("1 to {MAX_NONCE} bytes without control characters")));
        }
    }
    Ok(())
}
