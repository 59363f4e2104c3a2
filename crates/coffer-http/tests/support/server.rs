//! A native-API server on 127.0.0.1:0 over the store `support::open` gives, and a client.
#![allow(dead_code)]

use std::sync::Arc;

use coffer_core::*;
use coffer_store::Store;
use reqwest::StatusCode;
use serde_json::Value;

pub struct Server {
    pub base: String,
    pub store: Arc<dyn Store>,
    pub http: reqwest::Client,
    _dir: super::Backing,
}

impl Server {
    pub async fn start() -> Self {
        Self::with_limits(coffer_http::Limits::default()).await
    }
    pub async fn with_limits(limits: coffer_http::Limits) -> Self {
        let (store, dir) = super::open("http").await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/coffer/v1", listener.local_addr().unwrap());
        tokio::spawn(coffer_http::serve(listener, store.clone(), limits, std::future::pending()));
        Server { base, store, http: reqwest::Client::new(), _dir: dir }
    }

    pub async fn owner(&self, c: Command) -> OwnerId {
        match self.store.execute(c).await.unwrap().outcome {
            Outcome::Owner(o) => o.id,
            o => panic!("{o:?}"),
        }
    }
    pub async fn platform(&self, name: &str) -> OwnerId {
        self.owner(Command::CreatePlatform {
            name: name.into(),
            default_currency: "USD".parse().unwrap(),
            currency_exponents: Default::default(),
        })
        .await
    }
    pub async fn merchant(&self, parent: OwnerId, name: &str) -> OwnerId {
        self.owner(Command::CreateMerchant { parent, name: name.into(), default_currency: None }).await
    }
    /// A new wallet of `owner` (no limits); its id.
    pub async fn wallet(&self, owner: OwnerId, t: WalletType, currency: &str) -> String {
        let c = Command::OpenWallet {
            owner,
            wallet_type: t,
            currency: currency.parse().unwrap(),
            overdraft_limit: 0,
            min_balance: 0,
        };
        match self.store.execute(c).await.unwrap().outcome {
            Outcome::Account(a) => a.id.to_string(),
            o => panic!("{o:?}"),
        }
    }
    /// A key for `owner`, created as the CLI does.
    pub async fn key(&self, owner: OwnerId, scope: KeyScope) -> String {
        let k = coffer_http::auth::generate_key().unwrap();
        self.store
            .execute(Command::CreateApiKey { owner, id: k.id.clone(), secret_hash: k.hash, scope })
            .await
            .unwrap();
        k.full
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let url = format!("{}{}", self.base, path);
        let mut rb = self.http.request(method.parse().expect("an HTTP method"), url);
        if let Some(k) = key {
            rb = rb.bearer_auth(k);
        }
        for (h, v) in headers {
            rb = rb.header(*h, *v);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v, headers)
    }
    pub async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        let (s, v, h) = self.call("GET", path, Some(key), None, &[]).await;
        assert!(h.contains_key("request-id"), "every response carries a Request-Id");
        (s, v)
    }
    pub async fn post(&self, path: &str, key: &str, idem: Option<&str>, body: Value) -> (StatusCode, Value) {
        let headers: Vec<(&str, &str)> = idem.map(|k| vec![("Idempotency-Key", k)]).unwrap_or_default();
        let (s, v, h) = self.call("POST", path, Some(key), Some(body), &headers).await;
        assert!(h.contains_key("request-id"));
        (s, v)
    }
}

pub fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no error>")
}

/// Wait (5 s at most) until the key's feed has settled past transaction `last` (on PostgreSQL
/// a refused command's entry number is a gap the projector must first find dead).
pub async fn settled(s: &Server, key: &str, last: u64) {
    let since = std::time::Instant::now();
    loop {
        let (_, v) = s.get(&format!("/events?limit=1000&cursor=e{last}.0"), key).await;
        let next: u64 = v["next_cursor"].as_str().unwrap()[1..].split('.').next().unwrap().parse().unwrap();
        if next > last {
            return;
        }
        assert!(since.elapsed() < std::time::Duration::from_secs(5), "the feed did not settle past {last}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
