//! Server secrets that every node must share, kept as store settings (so in the database, and
//! for the embedded store in the data directory) and cached in memory once read:
//!
//! - the HMAC-SHA256 key that signs the bearer tokens of the UQPay and NeoX dialects
//!   (setting `token_hmac_key`, 32 random bytes, hex), created on first use;
//! - each platform's RSA-2048 key pair that signs PayerMax responses (setting
//!   `signing_key:<platform id>`, PKCS#8 PEM), created at first start for every platform (and
//!   on first use for a platform created later). Its public key is exported with
//!   `coffer key platform-public-key`.
//!
//! Whoever writes a setting first wins (`Store::init_setting`), so nodes racing at start end up
//! with the same key.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use coffer_core::OwnerId;
use coffer_store::{Store, StoreError};
use parking_lot::Mutex;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};

const TOKEN_KEY: &str = "token_hmac_key";

/// A platform's response signer: RSASSA-PKCS1-v1_5 with SHA-256 (its private key via `as_ref`).
pub type Signer = rsa::pkcs1v15::SigningKey<rsa::sha2::Sha256>;
/// Key size of generated signing keys, and the least accepted for a registered public key.
pub const RSA_BITS: usize = 2048;

#[derive(Default)]
pub struct Secrets {
    token_key: tokio::sync::OnceCell<Arc<[u8]>>,
    signing: Mutex<HashMap<OwnerId, Arc<Signer>>>,
}

fn storage(e: impl std::fmt::Display) -> StoreError {
    StoreError::Storage(e.to_string())
}

impl Secrets {
    pub async fn token_key(&self, store: &dyn Store) -> Result<Arc<[u8]>, StoreError> {
        self.token_key
            .get_or_try_init(|| async {
                let hex_key = match store.setting(TOKEN_KEY).await? {
                    Some(v) => v,
                    None => {
                        let mut k = [0u8; 32];
                        getrandom::fill(&mut k).map_err(storage)?;
                        store.init_setting(TOKEN_KEY, hex::encode(k)).await?
                    }
                };
                let k = hex::decode(hex_key.trim()).map_err(storage)?;
                if k.len() < 32 {
                    return Err(storage("the stored token key is too short"));
                }
                Ok(Arc::from(k))
            })
            .await
            .cloned()
    }

    /// The platform's response-signing key, created if it has none yet.
    pub async fn signing_key(&self, store: &dyn Store, platform: OwnerId) -> Result<Arc<Signer>, StoreError> {
        if let Some(k) = self.signing.lock().get(&platform) {
            return Ok(k.clone());
        }
        let name = format!("signing_key:{platform}");
        let pem = match store.setting(&name).await? {
            Some(v) => v,
            None => {
                let fresh = tokio::task::spawn_blocking(generate_pem).await.map_err(storage)??;
                store.init_setting(&name, fresh).await?
            }
        };
        let key = Arc::new(Signer::new(RsaPrivateKey::from_pkcs8_pem(&pem).map_err(storage)?));
        self.signing.lock().insert(platform, key.clone());
        Ok(key)
    }
}

/// A fresh RSA-2048 key pair for a client (the demo's PayerMax merchant): the private key as
/// PKCS#8 PEM and the public key as base64 SubjectPublicKeyInfo DER.
pub fn generate_client_pair() -> Result<(String, String), StoreError> {
    let pem = generate_pem()?;
    let key = RsaPrivateKey::from_pkcs8_pem(&pem).map_err(storage)?;
    Ok((pem, public_base64_of(&key)))
}

fn generate_pem() -> Result<String, StoreError> {
    let key = RsaPrivateKey::new(&mut rand_core::OsRng, RSA_BITS).map_err(storage)?;
    Ok(key.to_pkcs8_pem(LineEnding::LF).map_err(storage)?.to_string())
}

/// A signer's public key as PEM (`-----BEGIN PUBLIC KEY-----`).
pub fn public_pem(key: &Signer) -> String {
    let private: &RsaPrivateKey = key.as_ref();
    RsaPublicKey::from(private).to_public_key_pem(LineEnding::LF).unwrap_or_default()
}

/// A signer's public key as base64 SubjectPublicKeyInfo DER.
pub fn signer_public_base64(key: &Signer) -> String {
    public_base64_of(key.as_ref())
}

/// A key pair's public half as base64 SubjectPublicKeyInfo DER.
pub fn public_base64_of(key: &RsaPrivateKey) -> String {
    public_base64(&RsaPublicKey::from(key)).unwrap_or_default()
}

/// A public key as PayerMax hands keys around: base64 of the SubjectPublicKeyInfo DER.
pub fn public_base64(key: &RsaPublicKey) -> Option<String> {
    key.to_public_key_der().ok().map(|d| base64::engine::general_purpose::STANDARD.encode(d.as_bytes()))
}

/// Parse a public key given as PEM (`PUBLIC KEY`) or as bare base64 of its SubjectPublicKeyInfo
/// DER; it must be RSA of at least [`RSA_BITS`] bits. Returns the key and its base64 form.
pub fn parse_public_key(text: &str) -> Result<(RsaPublicKey, String), String> {
    let text = text.trim();
    let key = if text.starts_with("-----BEGIN") {
        RsaPublicKey::from_public_key_pem(text).map_err(|e| format!("not an RSA public key (PEM): {e}"))?
    } else {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|_| "not PEM and not base64".to_string())?;
        RsaPublicKey::from_public_key_der(&der).map_err(|e| format!("not an RSA public key (DER): {e}"))?
    };
    if key.size() * 8 < RSA_BITS {
        return Err(format!("the key has {} bits; at least {RSA_BITS} are required", key.size() * 8));
    }
    let b64 = public_base64(&key).ok_or("the key cannot be encoded")?;
    Ok((key, b64))
}
