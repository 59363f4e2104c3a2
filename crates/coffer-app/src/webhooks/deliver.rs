//! Delivery: every serving node runs [`run`]. For each enabled endpoint that is due, a node
//! takes the endpoint's lease (a compare-and-set write of its document: one node at a time, and
//! another takes over once a lease expires), reads the feed from the endpoint's cursor with the
//! endpoint owner's reach, and POSTs the events one at a time, in order, each signed. The cursor
//! moves past an event only once the receiver answered 2xx and is written after the step, so a
//! crash or a lost lease means some events are sent again (same ids), never that one is skipped:
//! at least once, in journal order. A failure stops the step and waits (exponential backoff from
//! 1 s up to an hour); an endpoint failing for [`DISABLE_AFTER`] is disabled.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_core::*;
use coffer_store::{Store, StoreError};

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
/// Events one step delivers at most.
const STEP_EVENTS: usize = 100;
/// Deadline of one POST (connect, send, answer).
const TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of an answer kept in the log.
const EXCERPT: usize = 256;
/// A failure streak this long disables the endpoint.
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

/// The HTTP client deliveries use: no redirects followed, no proxies, bounded in time.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent("Coffer-Webhooks/1")
        .build()
        .expect("a client with these settings builds")
}

/// The delivery loop of this node, until `stop` resolves.
pub async fn run(dir: Arc<Directory>, policy: Policy, stop: impl std::future::Future<Output = ()>) {
    let node = uuid::Uuid::now_v7().to_string();
    let http = client();
    tokio::pin!(stop);
    loop {
        if let Err(e) = round(&dir, policy, &node, &http).await {
            tracing::warn!(error = %e, "webhook delivery round failed");
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(LOOK_EVERY) => {}
        }
    }
}

/// One look: a step for every endpoint that is due and not leased to another node.
async fn round(dir: &Arc<Directory>, policy: Policy, node: &str, http: &reqwest::Client) -> Result<(), StoreError> {
    let now = micros();
    let mut steps = tokio::task::JoinSet::new();
    for s in dir.webhooks(None).await? {
        let Ok(w) = serde_json::from_str::<Webhook>(&s.body) else { continue };
        let leased_elsewhere = w.lease.as_ref().is_some_and(|(holder, until)| holder != node && *until > now);
        if w.status != Status::Enabled || w.next_attempt_at > now || leased_elsewhere {
            continue;
        }
        let (dir, node, http) = (dir.clone(), node.to_string(), http.clone());
        steps.spawn(async move { step(&dir, policy, &node, &http, w, s.version).await });
    }
    while let Some(r) = steps.join_next().await {
        match r {
            Ok(Err(StoreError::Conflict(_))) | Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "webhook delivery step failed"),
            Err(e) => tracing::error!(error = %e, "webhook delivery task failed"),
        }
    }
    Ok(())
}

/// Take the lease, deliver what is due, write the new state.
async fn step(
    dir: &Directory,
    policy: Policy,
    node: &str,
    http: &reqwest::Client,
    mut w: Webhook,
    version: u64,
) -> Result<(), StoreError> {
    w.lease = Some((node.to_string(), micros() + LEASE.as_micros() as i64));
    let version = save(dir, &w, Some(version)).await?;
    let Some(owner) = dir.owner(w.owner).await? else { return Ok(()) };
    // The endpoint reads the feed with its owner's reach, as a read-only key of the owner would.
    let caller = Caller {
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
    };
    let cursor = Cursor::parse(&w.cursor).map_err(|e| StoreError::Storage(e.to_string()))?;
    let q = FeedQuery { platform: None, cursor, types: w.types.clone(), limit: STEP_EVENTS, wait: Duration::ZERO };
    let page = events::feed(dir, Actor::Key(&caller), q).await.map_err(|e| StoreError::Storage(e.to_string()))?;
    let mut secrets = vec![secret(dir, w.id, w.secret_version).await?];
    if w.previous_until.is_some_and(|t| t > micros()) {
        secrets.push(secret(dir, w.id, w.secret_version - 1).await?);
    }
    let mut all = true;
    let started = Instant::now();
    for e in &page.data {
        if started.elapsed() > STEP_TIME {
            all = false;
            break;
        }
        let body = serde_json::to_string(e).map_err(|e| StoreError::Storage(e.to_string()))?;
        let attempt = post(http, policy, &w.url, &secrets, &e.id, &body).await;
        let ok = attempt.status.is_some_and(|s| (200..300).contains(&s));
        log(&mut w, attempt);
        if !ok {
            failed(&mut w);
            all = false;
            break;
        }
        let index: u32 = e.id.rsplit_once('.').and_then(|(_, i)| i.parse().ok()).unwrap_or(0);
        w.cursor = Cursor { seq: e.transaction, index: index + 1 }.to_string();
        (w.delivered, w.failures, w.failing_since, w.next_attempt_at) = (w.delivered + 1, 0, None, 0);
    }
    if all {
        w.cursor = page.next_cursor;
    }
    save(dir, &w, Some(version)).await.map(drop)
}

fn log(w: &mut Webhook, a: Attempt) {
    w.log.push_back(a);
    while w.log.len() > LOG_KEPT {
        w.log.pop_front();
    }
}

/// Count a failure: wait longer before the next attempt; disable after a long streak.
fn failed(w: &mut Webhook) {
    let now = micros();
    w.failures += 1;
    let since = *w.failing_since.get_or_insert(now);
    w.next_attempt_at = now + backoff(w.failures).as_micros() as i64;
    if now - since >= DISABLE_AFTER.as_micros() as i64 {
        w.status = Status::Disabled;
        w.disabled_reason = Some(format!("failing since {}", render::time(Timestamp(since))));
    }
}

/// The target's addresses, all public unless the policy allows otherwise.
async fn resolve(url: &reqwest::Url, policy: Policy) -> Result<(), String> {
    let host = url.host_str().ok_or("no host")?;
    let port = url.port_or_known_default().unwrap_or(443);
    let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
    let addrs: Vec<SocketAddr> = match literal {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => {
            tokio::net::lookup_host((host, port)).await.map_err(|e| format!("cannot resolve {host}: {e}"))?.collect()
        }
    };
    if !policy.allow_private_targets && addrs.iter().any(|a| private(a.ip())) {
        return Err(format!("{host} resolves to a private, loopback or link-local address"));
    }
    Ok(())
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
    if let Err(why) = resolve(&target, policy).await {
        return done(None, why);
    }
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
        Err(e) => done(None, format!("{e}").chars().take(EXCERPT).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let secs: Vec<u64> = [1, 2, 3, 4, 12, 13, 40].iter().map(|n| backoff(*n).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 2048, 3600, 3600]);
    }
}
