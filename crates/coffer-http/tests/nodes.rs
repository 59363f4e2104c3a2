//! Several nodes on one PostgreSQL database: each keeps an exact cache of keys and owners, so
//! a key revoked or an owner suspended through one node is refused by the very next request on
//! every other node, however warm its cache.

use std::sync::Arc;

use coffer_core::*;
use coffer_store::postgres::PgStore;
use coffer_store::testdb::TestDatabase;
use coffer_store::Store;

async fn node(db: &TestDatabase) -> (Arc<dyn Store>, String) {
    let store: Arc<dyn Store> = Arc::new(PgStore::open(&db.url(), Default::default()).await.unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/coffer/v1", listener.local_addr().unwrap());
    tokio::spawn(coffer_http::serve(listener, store.clone(), Default::default(), std::future::pending()));
    (store, base)
}

async fn owner(s: &dyn Store, c: Command) -> OwnerId {
    match s.execute(c).await.unwrap().outcome {
        Outcome::Owner(o) => o.id,
        o => panic!("{o:?}"),
    }
}

/// The status of `GET /me` (authenticated in the classic order: refresh, then check), which
/// `GET /wallets/{id}` and EngageLab's balance (checked on the cache in the same store call as
/// their data) must agree with.
async fn status(http: &reqwest::Client, base: &str, key: &str, wallet: AccountId) -> u16 {
    // The wallet first: it meets the cache as the last request left it.
    let w = http.get(format!("{base}/wallets/{wallet}")).bearer_auth(key).send().await.unwrap().status().as_u16();
    // EngageLab's balance: the same key as Basic credentials, checked the same way.
    let (id, secret) = key.split_once('.').unwrap();
    let root = base.trim_end_matches("/coffer/v1");
    let e = http.get(format!("{root}/v1/balance")).basic_auth(id, Some(secret)).send().await.unwrap();
    let e = e.status().as_u16();
    let me = http.get(format!("{base}/me")).bearer_auth(key).send().await.unwrap().status().as_u16();
    assert_eq!(me, w, "GET /me and GET /wallets/{{id}} agree");
    assert_eq!(me == 200, e == 200, "GET /me ({me}) and EngageLab ({e}) agree");
    me
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_node_takes_effect_on_the_next_request_on_every_node() {
    let Some(db) = TestDatabase::create("nodes").await else { return };
    let (a, base_a) = node(&db).await;
    let (_b, base_b) = node(&db).await;
    let p = owner(
        &*a,
        Command::CreatePlatform {
            name: "P".into(),
            default_currency: "USD".parse().unwrap(),
            currency_exponents: Default::default(),
        },
    )
    .await;
    let m = owner(&*a, Command::CreateMerchant { parent: p, name: "M".into(), default_currency: None }).await;
    let open = Command::OpenWallet {
        owner: m,
        wallet_type: WalletType::Operating,
        currency: "USD".parse().unwrap(),
        overdraft_limit: 0,
        min_balance: 0,
    };
    let w = match a.execute(open).await.unwrap().outcome {
        Outcome::Account(x) => x.id,
        o => panic!("{o:?}"),
    };
    let mut keys = Vec::new();
    for _ in 0..2 {
        let k = coffer_app::auth::generate_key().unwrap();
        let c = Command::CreateApiKey { owner: m, id: k.id.clone(), secret_hash: k.hash, scope: KeyScope::ReadWrite };
        a.execute(c).await.unwrap();
        keys.push((k.id, k.full));
    }
    let http = reqwest::Client::new();
    // Warm both nodes' caches.
    for base in [&base_a, &base_b] {
        for _ in 0..20 {
            assert_eq!(status(&http, base, &keys[0].1, w).await, 200);
        }
    }
    // A key revoked through node A's store: refused at once by both.
    a.execute(Command::RevokeApiKey { id: keys[0].0.clone() }).await.unwrap();
    assert_eq!(status(&http, &base_b, &keys[0].1, w).await, 401, "node B, next request");
    assert_eq!(status(&http, &base_a, &keys[0].1, w).await, 401, "node A, next request");
    // The merchant suspended: its other key is refused at once; reactivated, accepted at once.
    assert_eq!(status(&http, &base_b, &keys[1].1, w).await, 200);
    a.execute(Command::SetOwnerStatus { owner: m, status: OwnerStatus::Suspended }).await.unwrap();
    assert_eq!(status(&http, &base_b, &keys[1].1, w).await, 401, "suspended, node B");
    a.execute(Command::SetOwnerStatus { owner: m, status: OwnerStatus::Active }).await.unwrap();
    assert_eq!(status(&http, &base_b, &keys[1].1, w).await, 200, "active again, node B");
    // The platform above it suspended: the merchant's key is refused too.
    a.execute(Command::SetOwnerStatus { owner: p, status: OwnerStatus::Suspended }).await.unwrap();
    assert_eq!(status(&http, &base_b, &keys[1].1, w).await, 401, "platform suspended, node B");
}
