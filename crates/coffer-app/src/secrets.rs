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
//! with the same key. RSA is AWS-LC's (`aws-lc-rs`: constant-time private-key operations);
//! a registered public key is parsed once and kept (by its exact text, so a new key takes
//! effect on the next request).

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKey};
use aws_lc_rs::signature::{self, KeyPair as _, ParsedPublicKey};
use base64::Engine;
use coffer_core::OwnerId;
use coffer_store::{Store, StoreError};
use parking_lot::Mutex;

const TOKEN_KEY: &str = "token_hmac_key";
/// Key size of generated signing keys, and the least accepted for a registered public key.
pub const RSA_BITS: usize = 2048;
/// Registered public keys kept parsed at once; beyond it the cache starts afresh.
const MAX_VERIFIERS: usize = 10_000;

/// A platform's response signer: RSASSA-PKCS1-v1_5 with SHA-256.
pub struct Signer(KeyPair);

impl Signer {
    /// The signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        let mut sig = vec![0; self.0.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.0.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig).ok()?;
        Some(sig)
    }

    /// The public key's SubjectPublicKeyInfo DER.
    fn public_der(&self) -> Vec<u8> {
        self.0.public_key().as_der().map(|d| d.as_ref().to_vec()).unwrap_or_default()
    }
}

#[derive(Default)]
pub struct Secrets {
    token_key: tokio::sync::OnceCell<Arc<[u8]>>,
    signing: Mutex<HashMap<OwnerId, Arc<Signer>>>,
    verifiers: Mutex<HashMap<String, Arc<ParsedPublicKey>>>,
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
        let key = Arc::new(Signer(private_key(&pem)?));
        self.signing.lock().insert(platform, key.clone());
        Ok(key)
    }

    /// A registered public key (base64 SubjectPublicKeyInfo DER), parsed for RSASSA-PKCS1-v1_5
    /// SHA-256 verification once and kept; `None` if it is not such a key.
    pub fn verifier(&self, public_b64: &str) -> Option<Arc<ParsedPublicKey>> {
        if let Some(v) = self.verifiers.lock().get(public_b64) {
            return Some(v.clone());
        }
        let der = base64::engine::general_purpose::STANDARD.decode(public_b64).ok()?;
        let parsed = Arc::new(ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, der).ok()?);
        let mut cache = self.verifiers.lock();
        if cache.len() >= MAX_VERIFIERS {
            cache.clear();
        }
        cache.insert(public_b64.to_string(), parsed.clone());
        Some(parsed)
    }
}

fn private_key(pem_text: &str) -> Result<KeyPair, StoreError> {
    let p = pem::parse(pem_text).map_err(storage)?;
    KeyPair::from_pkcs8(p.contents()).map_err(storage)
}

/// A fresh RSA-2048 key pair for a client (the demo's PayerMax merchant): the private key as
/// PKCS#8 PEM and the public key as base64 SubjectPublicKeyInfo DER.
pub fn generate_client_pair() -> Result<(String, String), StoreError> {
    let pem = generate_pem()?;
    let public = Signer(private_key(&pem)?).public_der();
    Ok((pem, base64::engine::general_purpose::STANDARD.encode(public)))
}

fn generate_pem() -> Result<String, StoreError> {
    let key = KeyPair::generate(KeySize::Rsa2048).map_err(storage)?;
    let der = key.as_der().map_err(storage)?;
    Ok(pem_text("PRIVATE KEY", der.as_ref()))
}

fn pem_text(tag: &str, der: &[u8]) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new(tag, der.to_vec()), config)
}

/// A signer's public key as PEM (`-----BEGIN PUBLIC KEY-----`).
pub fn public_pem(key: &Signer) -> String {
    pem_text("PUBLIC KEY", &key.public_der())
}

/// A signer's public key as base64 SubjectPublicKeyInfo DER.
pub fn signer_public_base64(key: &Signer) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.public_der())
}

/// Parse a public key given as PEM (`PUBLIC KEY` or `RSA PUBLIC KEY`) or as bare base64 of its
/// DER; it must be RSA of at least [`RSA_BITS`] bits. Returns it as PayerMax hands keys around:
/// base64 of the SubjectPublicKeyInfo DER.
pub fn parse_public_key(text: &str) -> Result<String, String> {
    let text = text.trim();
    let der = if text.starts_with("-----BEGIN") {
        pem::parse(text).map_err(|e| format!("not a PEM public key: {e}"))?.into_contents()
    } else {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|_| "not PEM and not base64".to_string())?
    };
    let key = PublicKey::from_der(&der).map_err(|e| format!("not an RSA public key: {e}"))?;
    let bits = key.modulus_len() * 8;
    if bits < RSA_BITS {
        return Err(format!("the key has {bits} bits; at least {RSA_BITS} are required"));
    }
    let spki = key.as_der().map_err(|e| format!("the key cannot be encoded: {e}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(spki.as_ref()))
}
