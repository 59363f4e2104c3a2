//! `--server URL --api-key KEY`: an operator command sent to a Coffer node through its native
//! API, with the key's reach (a merchant key reaches its own subtree only). Each command is one
//! request; what it prints is the API's answer (JSON, or CSV for `statement --csv`), and a
//! refusal prints the API's message and exits 1. Commands only the operator of a ledger can run
//! (platforms, the demo) and `tx post` (the API wants each posting's currency) are refused.

use anyhow::{anyhow, bail, Context};
use reqwest::Method;
use serde_json::{json, Value};

use crate::admin::*;
use crate::task::{Printed, Task};
use crate::watch::AlertCmd;

/// Longest wait for one answer.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// One request of the native API.
struct Call {
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
    /// Sent as `Idempotency-Key` (movements).
    idempotency: Option<String>,
    /// A CSV file's bytes sent as the body (rates import).
    csv: Option<Vec<u8>>,
    /// `Accept: text/csv`.
    wants_csv: bool,
    /// `Coffer-On-Behalf-Of` (commands that name a platform).
    on_behalf_of: Option<String>,
}

fn call(method: Method, path: String) -> Call {
    Call { method, path, query: vec![], body: None, idempotency: None, csv: None, wants_csv: false, on_behalf_of: None }
}
fn get(path: String) -> Call {
    call(Method::GET, path)
}
fn post(path: String, body: Value) -> Call {
    Call { body: Some(body), ..call(Method::POST, path) }
}

/// A movement: its body with the metadata, under the command's idempotency key.
fn movement(path: &str, mut body: Value, opts: MoveOpts) -> anyhow::Result<Call> {
    let (key, metadata) = opts.into_parts()?;
    if !metadata.is_empty() {
        body["metadata"] = json!(metadata);
    }
    Ok(Call { idempotency: Some(key), ..post(path.to_string(), body) })
}

pub async fn run(server: &str, key: &str, task: Task) -> anyhow::Result<Printed> {
    let c = request(task)?;
    let client = reqwest::Client::builder().timeout(TIMEOUT).build()?;
    let url = format!("{}/coffer/v1{}", server.trim_end_matches('/'), c.path);
    let mut req = client.request(c.method, &url).bearer_auth(key).query(&c.query);
    if let Some(k) = c.idempotency {
        req = req.header("Idempotency-Key", k);
    }
    if let Some(o) = c.on_behalf_of {
        req = req.header("Coffer-On-Behalf-Of", o);
    }
    if c.wants_csv {
        req = req.header("Accept", "text/csv");
    }
    req = match (c.body, c.csv) {
        (_, Some(bytes)) => req.header("Content-Type", "text/csv").body(bytes),
        (Some(b), None) => req.json(&b),
        (None, None) => req,
    };
    let resp = req.send().await.with_context(|| format!("cannot reach {server}"))?;
    let status = resp.status();
    let text = resp.text().await.with_context(|| format!("{server} broke off its answer"))?;
    if !status.is_success() {
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let e = &v["error"];
        return match (e["message"].as_str(), e["param"].as_str()) {
            (Some(m), Some(p)) => Err(anyhow!("{p}: {m}")),
            (Some(m), None) => Err(anyhow!("{m}")),
            _ => Err(anyhow!("{server} answered {status}")),
        };
    }
    if c.wants_csv {
        return Ok(Printed::Text(text));
    }
    Ok(Printed::Json(serde_json::from_str(&text).with_context(|| format!("{server} answered no JSON"))?))
}

/// The request a command is, or why it has none.
fn request(task: Task) -> anyhow::Result<Call> {
    match task {
        Task::Demo { .. } => bail!("`coffer demo` needs the ledger's operator: run it where the ledger is"),
        Task::Statement(a) => Ok(a.remote()),
        Task::Admin(cmd) => admin(cmd),
    }
}

fn admin(cmd: AdminCmd) -> anyhow::Result<Call> {
    Ok(match cmd {
        AdminCmd::Platform(_) => bail!("platforms are made by the ledger's operator: run it where the ledger is"),
        AdminCmd::Merchant(MerchantCmd::Create { parent, name, currency }) => {
            post(format!("/owners/{parent}/children"), json!({ "name": name, "default_currency": currency }))
        }
        AdminCmd::Owner(OwnerCmd::Show { id }) => get(format!("/owners/{id}")),
        AdminCmd::Owner(OwnerCmd::Children { id }) => get(format!("/owners/{id}/children")),
        AdminCmd::Owner(OwnerCmd::Status { id, status }) => {
            post(format!("/owners/{id}/status"), json!({ "status": status }))
        }
        AdminCmd::Wallet(c) => wallet(c),
        AdminCmd::Tx(c) => tx(c)?,
        AdminCmd::Hold(c) => hold(c)?,
        AdminCmd::Incoming(c) => incoming(c)?,
        AdminCmd::Fx(c) => fx(c)?,
        AdminCmd::Key(c) => key(c)?,
        AdminCmd::Alert(c) => alert(c),
        AdminCmd::Events(a) => a.remote(),
        AdminCmd::Balance(a) => match a.target() {
            (Some(w), _) => get(format!("/wallets/{w}")),
            (None, Some(o)) => get(format!("/owners/{o}/wallets")),
            (None, None) => bail!("give --wallet or --owner"),
        },
    })
}

fn wallet(cmd: WalletCmd) -> Call {
    match cmd {
        WalletCmd::Open { owner, wallet_type, currency, min_balance, overdraft } => post(
            "/wallets".into(),
            json!({ "owner": owner, "type": wallet_type, "currency": currency,
                    "min_balance": min_balance, "overdraft_limit": overdraft }),
        ),
        WalletCmd::Show { id } => get(format!("/wallets/{id}")),
        WalletCmd::List { owner } => get(format!("/owners/{owner}/wallets")),
        WalletCmd::Status { id, status } => post(format!("/wallets/{id}/status"), json!({ "status": status })),
        WalletCmd::Limits { id, min_balance, overdraft } => {
            post(format!("/wallets/{id}/limits"), json!({ "min_balance": min_balance, "overdraft_limit": overdraft }))
        }
    }
}

fn tx(cmd: TxCmd) -> anyhow::Result<Call> {
    let one = |wallet: coffer_core::AccountId, amount: String| json!({ "wallet": wallet, "amount": amount });
    match cmd {
        TxCmd::Deposit { wallet, amount, source, opts } => {
            let mut body = one(wallet, amount);
            body["source"] = json!(source);
            movement("/deposits", body, opts)
        }
        TxCmd::Payout { wallet, amount, opts } => movement("/payouts", one(wallet, amount), opts),
        TxCmd::Fee { wallet, amount, opts } => movement("/fees", one(wallet, amount), opts),
        TxCmd::Transfer { from, to, amount, opts } => {
            movement("/transfers", json!({ "from": from, "to": to, "amount": amount }), opts)
        }
        TxCmd::Reverse { seq, opts } => movement("/reversals", json!({ "transaction": seq }), opts),
        TxCmd::Post { .. } => {
            bail!("`tx post` is not sent with --server: the API needs each posting's currency (POST /coffer/v1/transactions)")
        }
        TxCmd::Show { seq } => Ok(get(format!("/transactions/{seq}"))),
    }
}

fn hold(cmd: HoldCmd) -> anyhow::Result<Call> {
    match cmd {
        HoldCmd::Create { wallet, amount, expires_at, expires_in, opts } => {
            let expires_at = match (expires_at, expires_in) {
                (Some(s), _) => Some(s),
                (None, Some(secs)) => {
                    let at = chrono::Utc::now() + chrono::Duration::seconds(secs.min(400 * 86_400) as i64);
                    Some(at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
                }
                (None, None) => None,
            };
            movement("/holds", json!({ "wallet": wallet, "amount": amount, "expires_at": expires_at }), opts)
        }
        HoldCmd::Capture { hold, to, amount, opts } => {
            movement(&format!("/holds/{hold}/capture"), json!({ "amount": amount, "destination": to }), opts)
        }
        HoldCmd::Release { hold, opts } => movement(&format!("/holds/{hold}/release"), json!({}), opts),
        HoldCmd::Show { hold } => Ok(get(format!("/holds/{hold}"))),
        HoldCmd::List { wallet } => Ok(get(format!("/wallets/{wallet}/holds"))),
    }
}

fn incoming(cmd: IncomingCmd) -> anyhow::Result<Call> {
    match cmd {
        IncomingCmd::Create { wallet, amount, opts } => {
            movement("/incoming", json!({ "wallet": wallet, "amount": amount }), opts)
        }
        IncomingCmd::Settle { id, opts } => movement(&format!("/incoming/{id}/settle"), json!({}), opts),
        IncomingCmd::Cancel { id, opts } => movement(&format!("/incoming/{id}/cancel"), json!({}), opts),
    }
}

fn fx(cmd: FxCmd) -> anyhow::Result<Call> {
    Ok(match cmd {
        FxCmd::Convert { from, to, amount, rate, opts } => {
            movement("/fx/conversions", json!({ "from": from, "to": to, "amount": amount, "rate": rate }), opts)?
        }
        FxCmd::SetRate { platform, base, quote, rate, source, effective_at } => Call {
            on_behalf_of: Some(platform.to_string()),
            ..post(
                "/fx/rates".into(),
                json!({ "base": base, "quote": quote, "rate": rate, "source": source, "effective_at": effective_at }),
            )
        },
        FxCmd::Import { platform, file, source, pivot } => {
            if pivot != "EUR" {
                bail!("--pivot: a node imports rates per its own pivot ([fx] pivot); leave --pivot out with --server");
            }
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            Call {
                query: vec![("source", source)],
                csv: Some(bytes),
                on_behalf_of: Some(platform.to_string()),
                ..call(Method::POST, "/fx/rates/import".into())
            }
        }
        FxCmd::Rate { platform, base, quote, at } => {
            let mut query = vec![("base", base), ("quote", quote)];
            query.extend(at.map(|a| ("at", a)));
            Call { query, on_behalf_of: Some(platform.to_string()), ..get("/fx/rates".into()) }
        }
    })
}

fn key(cmd: KeyCmd) -> anyhow::Result<Call> {
    Ok(match cmd {
        KeyCmd::Create { owner, scope } => post("/api-keys".into(), json!({ "owner": owner, "scope": scope })),
        KeyCmd::Revoke { id } => post(format!("/api-keys/{id}/revoke"), json!({})),
        KeyCmd::SetPublicKey { id, file } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            Call {
                body: Some(json!({ "public_key": text })),
                ..call(Method::PUT, format!("/api-keys/{id}/public-key"))
            }
        }
        KeyCmd::PlatformPublicKey { platform } => {
            Call { on_behalf_of: Some(platform.to_string()), ..get("/signing-key".into()) }
        }
    })
}

fn alert(cmd: AlertCmd) -> Call {
    match cmd {
        AlertCmd::Create { wallet, field, direction, threshold } => post(
            "/alerts".into(),
            json!({ "wallet": wallet, "field": field, "direction": direction, "threshold": threshold }),
        ),
        AlertCmd::List { wallet } => get(format!("/wallets/{wallet}/alerts")),
        AlertCmd::Delete { platform, id } => {
            Call { on_behalf_of: Some(platform.to_string()), ..call(Method::DELETE, format!("/alerts/{id}")) }
        }
    }
}

impl crate::statement::StatementArgs {
    fn remote(self) -> Call {
        let mut query = vec![("from", self.from), ("to", self.to)];
        query.extend(self.tz.map(|t| ("tz", t)));
        query.extend(self.limit.map(|l| ("limit", l.to_string())));
        query.extend(self.cursor.map(|c| ("cursor", c)));
        if self.totals {
            query.push(("totals", "true".into()));
        }
        match (self.wallet, self.owner) {
            (Some(w), _) => Call { query, wants_csv: self.csv, ..get(format!("/wallets/{w}/statement")) },
            (None, o) => {
                query.extend(self.currency.map(|c| ("currency", c.to_string())));
                Call { query, ..get(format!("/owners/{}/statement", o.map(|o| o.to_string()).unwrap_or_default())) }
            }
        }
    }
}

impl crate::watch::EventsArgs {
    fn remote(self) -> Call {
        let mut query = vec![("limit", self.limit.to_string())];
        query.extend(self.cursor.map(|c| ("cursor", c)));
        query.extend(self.types.map(|t| ("types", t)));
        Call { query, on_behalf_of: Some(self.platform.to_string()), ..get("/events".into()) }
    }
}
