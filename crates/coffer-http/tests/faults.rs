//! A PostgreSQL that stops answering or goes away while Coffer serves: requests are answered
//! 503 `unavailable` with Retry-After within the deadline (never left hanging, never 500),
//! `/readyz` says not ready, and once the database is back everything works again without a
//! restart, with nothing acknowledged lost.
//!
//! The database is reached through a proxy the test controls: "paused" holds every byte (what
//! a SIGSTOPped server looks like from outside: connections open, no answers), "stopped" cuts
//! every connection and refuses new ones (a server that is down).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_core::*;
use coffer_store::postgres::{Options, PgStore};
use coffer_store::testdb::TestDatabase;
use coffer_store::Store;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Running,
    Paused,
    Stopped,
}

/// Forwards 127.0.0.1:<port> to the database, as `mode` says.
async fn proxy(upstream: String, mode: watch::Receiver<Mode>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else { return };
            if *mode.borrow() == Mode::Stopped {
                continue; // dropped: the connection is refused
            }
            let Ok(server) = TcpStream::connect(&upstream).await else { continue };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pipe(cr, sw, mode.clone()));
            tokio::spawn(pipe(sr, cw, mode.clone()));
        }
    });
    port
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r { Ok(0) | Err(_) => return, Ok(n) => n },
            _ = mode.wait_for(|m| *m == Mode::Stopped) => return,
        };
        // Paused: hold the bytes until running again (or stopped).
        match mode.wait_for(|m| *m != Mode::Paused).await.map(|m| *m) {
            Ok(Mode::Running) => {}
            _ => return,
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// `base`'s connection string with the port replaced.
fn through(url: &str, port: u16) -> String {
    assert!(url.contains("port="), "the fault test needs a key=value connection string with port=: {url}");
    url.split(' ')
        .map(|kv| if kv.starts_with("port=") { format!("port={port}") } else { kv.to_string() })
        .collect::<Vec<_>>()
        .join(" ")
}

struct Env {
    http: reqwest::Client,
    root: String,
    key: String,
    wallet: String,
    store: Arc<dyn Store>,
    mode: watch::Sender<Mode>,
    _db: TestDatabase,
}

async fn env() -> Option<Env> {
    let db = TestDatabase::create("faults").await?;
    let upstream = "127.0.0.1:5432".to_string();
    let url = db.url();
    let (mode, rx) = watch::channel(Mode::Running);
    let port = proxy(upstream, rx).await;
    let opts = Options { timeout: Duration::from_secs(1), ..Options::default() };
    let store: Arc<dyn Store> = Arc::new(PgStore::open(&through(&url, port), opts).await.unwrap());
    let p = match store
        .execute(Command::CreatePlatform {
            name: "P".into(),
            default_currency: "USD".parse().unwrap(),
            currency_exponents: Default::default(),
        })
        .await
        .unwrap()
        .outcome
    {
        Outcome::Owner(o) => o.id,
        o => panic!("{o:?}"),
    };
    let k = coffer_http::auth::generate_key().unwrap();
    store
        .execute(Command::CreateApiKey { owner: p, id: k.id, secret_hash: k.hash, scope: KeyScope::ReadWrite })
        .await
        .unwrap();
    let open = Command::OpenWallet {
        owner: p,
        wallet_type: WalletType::Operating,
        currency: "USD".parse().unwrap(),
        overdraft_limit: 0,
        min_balance: 0,
    };
    let wallet = match store.execute(open).await.unwrap().outcome {
        Outcome::Account(a) => a.id.to_string(),
        o => panic!("{o:?}"),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let root = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(coffer_http::serve(listener, store.clone(), Default::default(), std::future::pending()));
    Some(Env { http: reqwest::Client::new(), root, key: k.full, wallet, store, mode, _db: db })
}

impl Env {
    async fn deposit(&self, idem: &str) -> (StatusCode, Value, Duration) {
        let t = Instant::now();
        let r = self
            .http
            .post(format!("{}/coffer/v1/deposits", self.root))
            .bearer_auth(&self.key)
            .header("idempotency-key", idem)
            .json(&json!({"wallet": self.wallet, "amount": "1.00"}))
            .send()
            .await
            .unwrap();
        let retry = r.headers().get("retry-after").is_some();
        let (st, v) = (r.status(), r.json::<Value>().await.unwrap_or(Value::Null));
        if st == StatusCode::SERVICE_UNAVAILABLE {
            assert!(retry, "503 without Retry-After: {v}");
        }
        (st, v, t.elapsed())
    }
    async fn get(&self, path: &str) -> (StatusCode, Value, Duration) {
        let t = Instant::now();
        let r = self.http.get(format!("{}{path}", self.root)).bearer_auth(&self.key).send().await.unwrap();
        let st = r.status();
        let text = r.text().await.unwrap();
        (st, serde_json::from_str(&text).unwrap_or(Value::String(text)), t.elapsed())
    }
    /// While the database is away: reads, writes and a dialect all answer 503 within a few
    /// seconds, and /readyz is not ready.
    async fn assert_unavailable(&self, what: &str, keys: &mut Vec<String>, n: usize) {
        for i in 0..n {
            let key = format!("{what}-{i}");
            let (st, v, took) = self.deposit(&key).await;
            assert!(took < Duration::from_secs(4), "{what}: a write waited {took:?}");
            match st {
                StatusCode::CREATED | StatusCode::SERVICE_UNAVAILABLE => keys.push(key),
                s => panic!("{what}: a write answered {s}: {v}"),
            }
            if st == StatusCode::SERVICE_UNAVAILABLE {
                assert_eq!(v["error"]["code"], "unavailable", "{v}");
            }
        }
        let (st, v, took) = self.get(&format!("/coffer/v1/wallets/{}", self.wallet)).await;
        assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{what}: a read: {v}");
        assert!(took < Duration::from_secs(4), "{what}: a read waited {took:?}");
        let (st, v, took) = self.get("/readyz").await;
        assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{what}: /readyz: {v}");
        assert!(v["status"] == "unavailable" && v["reason"].is_string(), "{what}: /readyz says why: {v}");
        assert!(took < Duration::from_secs(4), "{what}: /readyz waited {took:?}");
        let onerway = self
            .http
            .post(format!("{}/account/v1/balance/query", self.root))
            .header("apikey", &self.key)
            .json(&json!({"requestId": format!("{what}-q"), "requestTime": chrono::Utc::now().timestamp_millis(), "currency": "USD"}))
            .send()
            .await
            .unwrap();
        assert_eq!(onerway.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}: Onerway");
        assert!(onerway.headers().contains_key("retry-after"));
        assert_eq!(onerway.json::<Value>().await.unwrap()["code"], "40005");
    }
    /// Back: ready within a few seconds, and writes commit again.
    async fn assert_recovers(&self, what: &str, keys: &mut Vec<String>) {
        let t = Instant::now();
        while self.get("/readyz").await.0 != StatusCode::OK {
            assert!(t.elapsed() < Duration::from_secs(15), "{what}: not ready again");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut ok = 0;
        for i in 0..20 {
            let key = format!("{what}-after-{i}");
            let (st, v, _) = self.deposit(&key).await;
            keys.push(key);
            if st == StatusCode::CREATED {
                ok += 1;
            } else {
                // A connection cut by the fault may fail one more call; then it is replaced.
                assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{what}: {v}");
            }
        }
        assert!(ok >= 18, "{what}: only {ok} of 20 writes after recovery");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_stops_answering_or_goes_away_answers_503_and_recovers() {
    let Some(e) = env().await else { return };
    // Every deposit's key: a 201 is committed; a 503 may or may not be, and is retried below
    // under its key, as a client would.
    let mut keys = Vec::new();
    for i in 0..10 {
        let key = format!("before-{i}");
        assert_eq!(e.deposit(&key).await.0, StatusCode::CREATED);
        keys.push(key);
    }
    assert_eq!(e.get("/readyz").await.0, StatusCode::OK);

    e.mode.send_replace(Mode::Paused);
    e.assert_unavailable("paused", &mut keys, 3).await;
    e.mode.send_replace(Mode::Running);
    e.assert_recovers("paused", &mut keys).await;

    e.mode.send_replace(Mode::Stopped);
    e.assert_unavailable("stopped", &mut keys, 3).await;
    e.mode.send_replace(Mode::Running);
    e.assert_recovers("stopped", &mut keys).await;

    // Retried under their keys, every deposit is in exactly once: nothing acknowledged was
    // lost, nothing is doubled.
    for key in &keys {
        let (st, v, _) = e.deposit(key).await;
        assert!(st == StatusCode::OK || st == StatusCode::CREATED, "{key}: {st} {v}");
    }
    let (_, w, _) = e.get(&format!("/coffer/v1/wallets/{}", e.wallet)).await;
    let posted = coffer_core::money::parse_minor(w["posted"].as_str().unwrap(), 2).unwrap();
    assert_eq!(posted, keys.len() as i64 * 100, "{w}");
    let report = e.store.verify().await.unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
}
