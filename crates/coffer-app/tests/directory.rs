//! The directory cache is exact: changes made past it (straight on the store, as another node
//! would) are seen by the next check, in both orders (refresh-then-check and `exact`), and a
//! refusal resting on a stale entry is never answered.

use std::sync::Arc;

use coffer_app::auth::{check_key, generate_key, verify_key, AuthFailure};
use coffer_app::Directory;
use coffer_core::*;
use coffer_store::sqlite::SqliteStore;
use coffer_store::Store;

async fn owner(s: &dyn Store, c: Command) -> Owner {
    match s.execute(c).await.unwrap().outcome {
        Outcome::Owner(o) => o,
        o => panic!("{o:?}"),
    }
}

/// The key checked on the cache and the owner's wallets read with the version, as the hot
/// reads do: `Ok(number of wallets)` or the refusal.
async fn exact_read(dir: &Directory, id: &str, secret: &str) -> Result<usize, AuthFailure> {
    let read = |(k, o): (ApiKey, Owner)| async move {
        let (accounts, v) = dir.accounts_of_versioned(o.id).await.map_err(AuthFailure::from)?;
        Ok::<_, AuthFailure>(((k, o), accounts.len(), v))
    };
    dir.exact(|| check_key(dir, id, secret), read).await.map(|(_, n)| n)
}

#[tokio::test]
async fn changes_past_the_cache_take_effect_on_the_next_check() {
    let tmp = tempfile::tempdir().unwrap();
    let raw: Arc<dyn Store> = Arc::new(SqliteStore::open(&tmp.path().join("data"), Default::default()).unwrap());
    let dir = Directory::new(raw.clone());
    let p = owner(
        &*raw,
        Command::CreatePlatform {
            name: "P".into(),
            default_currency: "USD".parse().unwrap(),
            currency_exponents: Default::default(),
        },
    )
    .await;
    let m = owner(&*raw, Command::CreateMerchant { parent: p.id, name: "M".into(), default_currency: None }).await;
    let k = generate_key().unwrap();
    let c =
        Command::CreateApiKey { owner: m.id, id: k.id.clone(), secret_hash: k.hash.clone(), scope: KeyScope::ReadOnly };
    raw.execute(c).await.unwrap();
    let secret = k.full.split_once('.').unwrap().1.to_string();
    let status = |o: OwnerId, s: OwnerStatus| Command::SetOwnerStatus { owner: o, status: s };

    // Warm: both orders accept, and agree.
    for _ in 0..3 {
        assert_eq!(exact_read(&dir, &k.id, &secret).await, Ok(0));
        assert!(verify_key(&dir, &k.id, &secret).await.is_ok());
    }
    // Suspended behind the cache's back: refused at once by the one-round-trip order first.
    raw.execute(status(m.id, OwnerStatus::Suspended)).await.unwrap();
    assert_eq!(exact_read(&dir, &k.id, &secret).await, Err(AuthFailure::Suspended(m.id)));
    assert_eq!(verify_key(&dir, &k.id, &secret).await.map(|_| ()), Err(AuthFailure::Suspended(m.id)));
    // Reactivated: the cache holds "suspended"; the refusal it would give is not answered.
    raw.execute(status(m.id, OwnerStatus::Active)).await.unwrap();
    assert_eq!(exact_read(&dir, &k.id, &secret).await, Ok(0));
    // The platform above suspended, then the key revoked: each seen by the next check.
    raw.execute(status(p.id, OwnerStatus::Suspended)).await.unwrap();
    assert_eq!(exact_read(&dir, &k.id, &secret).await, Err(AuthFailure::Suspended(p.id)));
    raw.execute(status(p.id, OwnerStatus::Active)).await.unwrap();
    assert_eq!(exact_read(&dir, &k.id, &secret).await, Ok(0));
    raw.execute(Command::RevokeApiKey { id: k.id.clone() }).await.unwrap();
    assert_eq!(exact_read(&dir, &k.id, &secret).await, Err(AuthFailure::Revoked));
    // A wallet opened behind the cache's back is in the next read (data is never cached).
    let open = Command::OpenWallet {
        owner: m.id,
        wallet_type: WalletType::Operating,
        currency: "USD".parse().unwrap(),
        overdraft_limit: 0,
        min_balance: 0,
    };
    raw.execute(open).await.unwrap();
    let (accounts, _) = dir.accounts_of_versioned(m.id).await.unwrap();
    assert_eq!(accounts.len(), 1);
    raw.shutdown().await;
}
