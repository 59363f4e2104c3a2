//! Delivery: every serving node runs [`run`]. For each enabled endpoint that is due, a node
//! takes the endpoint's lease (a compare-and-set write of its document: one node at a time, and
//! another takes over once a lease expires) and runs a step: for up to [`STEP_TIME`] it follows
//! the feed from the endpoint's cursor with the endpoint owner's reach and POSTs each event as
//! it settles, one at a time, in order, each signed. The cursor moves past an event only once
//! the receiver answered 2xx, and is written every [`CHECKPOINT`] and at the step's end, so a
//! crash or a lost lease means some events are sent again (same ids), never that one is
//! skipped: at least once, in journal order. A change to the endpoint meanwhile (disable,
//! rotate, redeliver) makes the step's next write fail, which ends it: before its next POST
//! when the change was made on this node, within [`CHECKPOINT`] when on another. A failure ends the step
//! and waits (exponential backoff from 1 s up to an hour); an endpoint failing for
//! `Policy::disable_after` is disabled, which is itself an event (`webhook_endpoint.disabled`).
//!
//! Every endpoint's reads go through the node's shared journal tail (`crate::tail`), so ten
//! endpoints following one platform cost about one store read, not ten.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_core::*;
use coffer_store::{Store, StoreError};
use uuid::Uuid;

use super::{private, save, secret, signature, Attempt, Policy, Status, Webhook, LOG_KEPT};
use crate::auth::Caller;
use crate::directory::Directory;
use crate::render;
use crate::service::events::{self, Cursor, FeedQuery};
use crate::service::Actor;

/// How often a node looks for endpoints that are due.
const LOOK_EVERY: Duration = Duration::from_millis(200);
/// How long a lease lasts; each step takes it anew. A node that dies holding one delays its
/// endpoint's deliveries by at most this long.
const LEASE: Duration = Duration::from_secs(15);
/// A step starts no POST after this long, so that it ends (each POST has [`TIMEOUT`]) within
/// its lease: two nodes never deliver to one endpoint at once.
const STEP_TIME: Duration = Duration::from_secs(4);
/// Events one feed read of a step asks for.
const STEP_EVENTS: usize = 100;
/// How often a step writes its cursor (a crash re-sends at most this much).
const CHECKPOINT: Duration = Duration::from_secs(1);
/// A step that has caught up reads the feed at most this often.
const IDLE: Duration = Duration::from_millis(50);
/// Deadline of one POST (connect, send, answer).
const TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of an answer kept in the log.
const EXCERPT: usize = 256;
/// A failure streak this long disables the endpoint, unless configured (`Policy`).
pub const DISABLE_AFTER: Duration = Duration::from_secs(3 * 24 * 3600);
/// Longest wait between attempts.
const MAX_BACKOFF_SECS: i64 = 3600;

fn micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Wait after `failures` failed attempts in a row: 1 s, 2 s, 4 s, ... up to an hour.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs((1i64 << failures.saturating_sub(1).min(12)).min(MAX_BACKOFF_SECS) as u64)
}

/// The HTTP client deliveries use: no redirects followed, no proxies, bounded in time, and
/// names resolved by [`Guarded`], so the address connected to is the one checked.
pub fn client(policy: Policy) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Guarded(policy))
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent("Coffer-Webhooks/1")
        .build()
        .expect("a client with these settings builds")
}

/// Name resolution that refuses a name with any private, loopback or link-local address
/// unless the policy allows them: the check and the connection use the same answer, so a name
/// that changes its answer between them (DNS rebinding) cannot reach an internal address.
struct Guarded(Policy);

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.0.allow_private_targets;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow && addrs.iter().any(|a| private(a.ip())) {
                return Err(format!("{host} resolves to a private, loopback or link-local address").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The delivery loop of this node, until `stop` resolves; then the steps in flight end (after
/// their current POST) and write where they got to.
pub async fn run(dir: Arc<Directory>, policy: Policy, stop: impl std::future::Future<Output = ()>) {
    let node =
        Node { id: uuid::Uuid::now_v7().to_string(), http: client(policy), policy, stopping: Default::default() };
    let node = Arc::new(node);
    let mut steps = tokio::task::JoinSet::new();
    let mut busy = HashSet::new();
    tokio::pin!(stop);
    loop {
        while let Some(r) = steps.try_join_next() {
            busy.remove(&report(r));
        }
        if let Err(e) = round(&dir, &node, &mut busy, &mut steps).await {
            tracing::warn!(error = %e, "webhook delivery round failed");
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(LOOK_EVERY) => {}
        }
    }
    node.stopping.store(true, Ordering::Relaxed);
    while let Some(r) = steps.join_next().await {
        report(r);
    }
}

/// What every step of this node shares.
struct Node {
    id: String,
    http: reqwest::Client,
    policy: Policy,
    stopping: AtomicBool,
}

/// Log how a step ended; the endpoint it was for.
fn report(r: Result<(Uuid, Result<(), StoreError>), tokio::task::JoinError>) -> Uuid {
    match r {
        Ok((id, Ok(()) | Err(StoreError::Conflict(_)))) => id,
        Ok((id, Err(e))) => {
            tracing::warn!(error = %e, endpoint = %id, "webhook delivery step failed");
            id
        }
        Err(e) => {
            tracing::error!(error = %e, "webhook delivery task failed");
            Uuid::nil()
        }
    }
}

/// One look: a step for every endpoint that is due, not delivered by this node already, and
/// not leased to another node.
async fn round(
    dir: &Arc<Directory>,
    node: &Arc<Node>,
    busy: &mut HashSet<Uuid>,
    steps: &mut tokio::task::JoinSet<(Uuid, Result<(), StoreError>)>,
) -> Result<(), StoreError> {
    let now = micros();
    for s in dir.webhooks(None).await? {
        let Ok(w) = serde_json::from_str::<Webhook>(&s.body) else { continue };
        let leased_elsewhere = w.lease.as_ref().is_some_and(|(holder, until)| *holder != node.id && *until > now);
        if w.status != Status::Enabled || w.next_attempt_at > now || leased_elsewhere || busy.contains(&w.id) {
            continue;
        }
        busy.insert(w.id);
        let (dir, node) = (dir.clone(), node.clone());
        steps.spawn(async move { (w.id, step(&dir, &node, w, s.version).await) });
    }
    Ok(())
}

/// The endpoint's owner as a read-only key of its own would be: the feed's reach.
fn reader(w: &Webhook, owner: Owner) -> Caller {
    Caller {
        key: ApiKey {
            id: format!("webhook:{}", w.id),
            owner: owner.id,
            platform: owner.platform,
            scope: KeyScope::ReadOnly,
            secret_hash: String::new(),
            status: KeyStatus::Active,
            created_at: w.created_at,
            revoked_at: None,
            public_key: None,
        },
        acting: owner,
    }
}

/// Take the lease, then for [`STEP_TIME`] follow the feed and deliver each event as it settles,
/// writing the cursor every [`CHECKPOINT`] and at the end. A failed POST ends the step.
async fn step(dir: &Directory, node: &Node, mut w: Webhook, version: u64) -> Result<(), StoreError> {
    let started = Instant::now();
    w.lease = Some((node.id.clone(), micros() + LEASE.as_micros() as i64));
    let mut version = save(dir, &w, Some(version)).await?;
    let Some(owner) = dir.owner(w.owner).await? else { return Ok(()) };
    let caller = reader(&w, owner);
    let mut secrets = vec![secret(dir, w.id, w.secret_version).await?];
    if w.previous_until.is_some_and(|t| t > micros()) {
        secrets.push(secret(dir, w.id, w.secret_version - 1).await?);
    }
    let (mut saved, mut changes) = (Instant::now(), dir.webhook_changes());
    let mut ok = true;
    while ok && started.elapsed() < STEP_TIME && !node.stopping.load(Ordering::Relaxed) {
        let read_at = Instant::now();
        let cursor = Cursor::parse(&w.cursor).map_err(|e| StoreError::Storage(e.to_string()))?;
        let q = FeedQuery { platform: None, cursor, types: w.types.clone(), limit: STEP_EVENTS, wait: Duration::ZERO };
        let page = events::feed(dir, Actor::Key(&caller), q).await.map_err(|e| StoreError::Storage(e.to_string()))?;
        let idle = page.data.is_empty() && !page.has_more;
        // An endpoint changed on this node since the last write: write now, which fails (and
        // ends the step) if it was this one, before anything is sent with the old settings.
        if dir.webhook_changes() != changes || (saved.elapsed() >= CHECKPOINT && !idle) {
            changes = dir.webhook_changes();
            version = save(dir, &w, Some(version)).await?;
            saved = Instant::now();
        }
        if idle {
            tokio::time::sleep(IDLE).await;
            continue;
        }
        ok = deliver(node, &mut w, &secrets, &page, started).await?;
        if w.status == Status::Disabled {
            // The streak just disabled it: recorded with its event.
            return super::save_disabled(dir, &w, version).await.map(drop);
        }
        if !page.has_more {
            // Caught up: gather for a moment rather than read the feed after every event.
            tokio::time::sleep(IDLE.saturating_sub(read_at.elapsed())).await;
        }
    }
    save(dir, &w, Some(version)).await.map(drop)
}

/// POST a page of events in order, moving the cursor past each one answered 2xx (and past the
/// page when all were). False when one failed (counted, the step ends).
async fn deliver(
    node: &Node,
    w: &mut Webhook,
    secrets: &[String],
    page: &events::EventsView,
    started: Instant,
) -> Result<bool, StoreError> {
    for e in &page.data {
        if started.elapsed() > STEP_TIME || node.stopping.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let body = serde_json::to_string(e).map_err(|e| StoreError::Storage(e.to_string()))?;
        let attempt = post(&node.http, node.policy, &w.url, secrets, &e.id, &body).await;
        let ok = attempt.status.is_some_and(|s| (200..300).contains(&s));
        metrics::counter!("coffer_webhook_attempts_total", "outcome" => if ok { "delivered" } else { "failed" })
            .increment(1);
        log(w, attempt);
        if !ok {
            failed(w, node.policy.disable_after);
            return Ok(false);
        }
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&e.created_at) {
            let lag = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_microseconds().unwrap_or(0);
            metrics::histogram!("coffer_webhook_delivery_lag_seconds").record(lag as f64 / 1e6);
        }
        w.cursor = Cursor::after(&e.id).map_err(|e| StoreError::Storage(e.to_string()))?.to_string();
        (w.delivered, w.failures, w.failing_since, w.next_attempt_at) = (w.delivered + 1, 0, None, 0);
    }
    w.cursor = page.next_cursor.clone();
    Ok(true)
}

fn log(w: &mut Webhook, a: Attempt) {
    w.log.push_back(a);
    while w.log.len() > LOG_KEPT {
        w.log.pop_front();
    }
}

/// Count a failure: wait longer before the next attempt; disable after a long streak.
fn failed(w: &mut Webhook, disable_after: Duration) {
    let now = micros();
    w.failures += 1;
    let since = *w.failing_since.get_or_insert(now);
    w.next_attempt_at = now + backoff(w.failures).as_micros() as i64;
    if now - since >= disable_after.as_micros() as i64 {
        w.status = Status::Disabled;
        w.disabled_reason = Some(format!("failing since {}", render::time(Timestamp(since))));
    }
}

/// POST one event; what happened, for the log.
async fn post(
    http: &reqwest::Client,
    policy: Policy,
    url: &str,
    secrets: &[String],
    event: &str,
    body: &str,
) -> Attempt {
    let started = Instant::now();
    let at = render::time(Timestamp(micros()));
    let done = |status: Option<u16>, excerpt: String| Attempt {
        event: event.to_string(),
        at: at.clone(),
        status,
        latency_ms: started.elapsed().as_millis() as u64,
        excerpt,
    };
    let target = match super::check_url(url, policy) {
        Ok(u) => u,
        Err(e) => return done(None, format!("refused target: {e}")),
    };
    let t = chrono::Utc::now().timestamp();
    let sent = http
        .post(target)
        .header("content-type", "application/json")
        .header("coffer-event-id", event)
        .header("coffer-signature", signature(secrets, t, body))
        .body(body.to_string())
        .send()
        .await;
    match sent {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let mut excerpt = Vec::new();
            while excerpt.len() < EXCERPT {
                match r.chunk().await {
                    Ok(Some(c)) => excerpt.extend_from_slice(&c[..c.len().min(EXCERPT - excerpt.len())]),
                    _ => break,
                }
            }
            done(Some(status), String::from_utf8_lossy(&excerpt).into_owned())
        }
        Err(e) => done(None, chain(&e).chars().take(EXCERPT).collect()),
    }
}

/// An error with its causes (a refused name's reason is a cause of the request's error).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused_at_connection() {
        use reqwest::dns::Resolve;
        let strict = Policy { allow_http: true, allow_private_targets: false, ..Policy::default() };
        let name = |s: &str| s.parse::<reqwest::dns::Name>().unwrap();
        let refused = Guarded(strict).resolve(name("localhost")).await.err().expect("localhost is refused");
        assert!(refused.to_string().contains("private"), "{refused}");
        let open = Policy { allow_private_targets: true, ..strict };
        assert!(Guarded(open).resolve(name("localhost")).await.unwrap().any(|a| a.ip().is_loopback()));
        // The client uses it: a request to a name of the loopback never leaves.
        let e = client(strict).post("http://localhost:9/hook").send().await.unwrap_err();
        assert!(chain(&e).contains("private, loopback or link-local"), "{}", chain(&e));
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let secs: Vec<u64> = [1, 2, 3, 4, 12, 13, 40].iter().map(|n| backoff(*n).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 2048, 3600, 3600]);
    }
}
