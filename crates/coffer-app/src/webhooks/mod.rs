//! Webhook endpoints: an owner's URL that receives the event feed (`service::events`) as signed
//! HTTP POSTs, one event per request, in journal order, at least once (`deliver`).
//!
//! An endpoint is one document in the store (`Store::save_webhook`, compare-and-set on its
//! version): its configuration and its delivery state (the feed cursor it has reached, the
//! failure streak and next attempt, the node holding its delivery lease, the last attempts).
//! Nothing secret is stored in it: an endpoint's signing secret is derived from a server key
//! (`webhook_key`, a setting every node shares) and the endpoint's id and secret version, shown
//! once when made and when rotated.

pub mod deliver;

use std::collections::VecDeque;
use std::net::IpAddr;

use aws_lc_rs::hmac;
use coffer_core::events::EventType;
use coffer_core::*;
use coffer_store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::directory::Directory;
use crate::render;
use crate::service::events::Cursor;
use crate::service::{Actor, AppError};

/// The setting holding the server key endpoint secrets derive from.
const WEBHOOK_KEY: &str = "webhook_key";
/// Endpoints per platform at most.
pub const MAX_PER_PLATFORM: usize = 100;
/// Longest accepted URL.
const MAX_URL: usize = 2048;
/// Attempts kept in an endpoint's delivery log.
pub const LOG_KEPT: usize = 50;
/// Longest overlap of the old secret after a rotation.
const MAX_OVERLAP_SECS: u64 = 7 * 24 * 3600;

/// Which delivery targets a server accepts, and how long it tries a failing one
/// (`[webhooks]` in the configuration).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Plain `http://` URLs (else `https://` only).
    pub allow_http: bool,
    /// Private, loopback, link-local and other non-public addresses (tests, local development).
    pub allow_private_targets: bool,
    /// A failure streak this long disables the endpoint (with a `webhook_endpoint.disabled`
    /// event).
    pub disable_after: std::time::Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { allow_http: false, allow_private_targets: false, disable_after: deliver::DISABLE_AFTER }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Enabled,
    /// By the owner, or after failing for `Policy::disable_after`.
    Disabled,
    Deleted,
}

/// One delivery attempt, as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Attempt {
    /// The event's id.
    pub event: String,
    pub at: String,
    /// The receiver's HTTP status; null when there was no answer.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// The start of the receiver's answer, or why there was none.
    pub excerpt: String,
}

/// An endpoint as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Webhook {
    pub id: Uuid,
    pub platform: OwnerId,
    /// Whose reach filters the events: only those of wallets this owner reaches.
    pub owner: OwnerId,
    pub url: String,
    pub types: Option<Vec<EventType>>,
    pub status: Status,
    pub disabled_reason: Option<String>,
    pub secret_version: u32,
    /// Until then (µs), deliveries are also signed with the previous secret.
    pub previous_until: Option<i64>,
    pub created_at: Timestamp,
    /// The next event to deliver.
    pub cursor: String,
    pub delivered: u64,
    /// Failed attempts in a row, when the streak began, and when to try again (µs).
    pub failures: u32,
    pub failing_since: Option<i64>,
    pub next_attempt_at: i64,
    /// The node delivering, and until when (µs) no other node may.
    pub lease: Option<(String, i64)>,
    pub log: VecDeque<Attempt>,
}

/// The server key, created by the first node that needs it.
async fn server_key(store: &dyn Store) -> Result<hmac::Key, StoreError> {
    let hex_key = match store.setting(WEBHOOK_KEY).await? {
        Some(v) => v,
        None => {
            let mut k = [0u8; 32];
            getrandom::fill(&mut k).map_err(|e| StoreError::Storage(e.to_string()))?;
            store.init_setting(WEBHOOK_KEY, hex::encode(k)).await?
        }
    };
    let k = hex::decode(hex_key.trim()).map_err(|e| StoreError::Storage(e.to_string()))?;
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &k))
}

/// An endpoint's signing secret of one version.
pub async fn secret(store: &dyn Store, id: Uuid, version: u32) -> Result<String, StoreError> {
    let tag = hmac::sign(&server_key(store).await?, format!("webhook:{id}:{version}").as_bytes());
    Ok(format!("whsec_{}", hex::encode(tag.as_ref())))
}

/// The `Coffer-Signature` value for `body` sent at `t` (Unix seconds): `t=<t>` and one
/// `v1=<hex HMAC-SHA256 of "<t>.<body>">` per secret.
pub fn signature(secrets: &[String], t: i64, body: &str) -> String {
    let mut out = format!("t={t}");
    for s in secrets {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, s.as_bytes()), format!("{t}.{body}").as_bytes());
        out.push_str(&format!(",v1={}", hex::encode(tag.as_ref())));
    }
    out
}

/// Whether an address is one a server must not call unless allowed.
pub fn private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_documentation()
                || a.octets()[0] == 100 && (a.octets()[1] & 0xc0) == 64 // carrier-grade NAT
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            a.is_loopback()
                || a.is_unspecified()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || a.to_ipv4_mapped().is_some_and(|v4| private(IpAddr::V4(v4)))
        }
    }
}

/// A target URL the policy accepts: scheme, length, no credentials; a literal address must be
/// public unless allowed (names are checked when resolved, at each delivery).
pub fn check_url(raw: &str, policy: Policy) -> Result<reqwest::Url, AppError> {
    let bad = |why: &str| AppError::invalid("invalid_url", why.to_string()).at("url");
    if raw.len() > MAX_URL {
        return Err(bad("the URL is longer than 2048 characters"));
    }
    let url = reqwest::Url::parse(raw).map_err(|e| bad(&format!("not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        _ => return Err(bad("the URL must be https")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("the URL must not carry credentials"));
    }
    let host = url.host_str().ok_or_else(|| bad("the URL has no host"))?;
    let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
    if !policy.allow_private_targets && (literal.is_some_and(private) || host.eq_ignore_ascii_case("localhost")) {
        return Err(bad("the URL points to a private, loopback or link-local address"));
    }
    Ok(url)
}

/// An endpoint as its owner sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: Uuid,
    pub owner: Uuid,
    pub url: String,
    /// Null: every type.
    pub types: Option<Vec<String>>,
    /// ENABLED, DISABLED or DELETED.
    pub status: String,
    pub disabled_reason: Option<String>,
    pub created_at: String,
    /// Shown once: when the endpoint is made and when its secret is rotated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The feed cursor of the next event to deliver.
    pub cursor: String,
    pub delivered: u64,
    /// Failed attempts in a row.
    pub failures: u32,
    pub next_attempt_at: Option<String>,
    /// The last attempts, newest last.
    pub attempts: Vec<Attempt>,
}

pub fn view(w: &Webhook, secret: Option<String>) -> WebhookView {
    WebhookView {
        id: w.id,
        owner: w.owner.0,
        url: w.url.clone(),
        types: w.types.as_ref().map(|t| t.iter().map(|t| t.to_string()).collect()),
        status: serde_json::to_value(w.status).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
        disabled_reason: w.disabled_reason.clone(),
        created_at: render::time(w.created_at),
        secret,
        cursor: w.cursor.clone(),
        delivered: w.delivered,
        failures: w.failures,
        next_attempt_at: (w.failures > 0).then(|| render::time(Timestamp(w.next_attempt_at))),
        attempts: w.log.iter().cloned().collect(),
    }
}

/// The stored endpoints of a platform with their versions (deleted ones left out).
async fn stored(dir: &Directory, platform: OwnerId) -> Result<Vec<(Webhook, u64)>, AppError> {
    let mut out = Vec::new();
    for s in dir.webhooks(Some(platform)).await? {
        let w: Webhook = serde_json::from_str(&s.body).map_err(|e| StoreError::Storage(e.to_string()))?;
        if w.status != Status::Deleted {
            out.push((w, s.version));
        }
    }
    Ok(out)
}

/// Write `w` over `version` (`None`: new).
pub async fn save(dir: &dyn Store, w: &Webhook, version: Option<u64>) -> Result<u64, StoreError> {
    let body = serde_json::to_string(w).map_err(|e| StoreError::Storage(e.to_string()))?;
    dir.save_webhook(w.platform, w.id, body, version, None).await
}

/// Write `w`, disabled by delivery just now, over `version`, with the status change that makes
/// it a `webhook_endpoint.disabled` event (in the same write).
pub async fn save_disabled(dir: &dyn Store, w: &Webhook, version: u64) -> Result<u64, StoreError> {
    let body = serde_json::to_string(w).map_err(|e| StoreError::Storage(e.to_string()))?;
    let change = StatusChange {
        seq: 0,
        platform: w.platform,
        owner: w.owner,
        subject: StatusSubject::WebhookEndpoint(w.id),
        from: "ENABLED".into(),
        to: "DISABLED".into(),
        reason: w.disabled_reason.clone(),
        created_at: Timestamp(0),
    };
    dir.save_webhook(w.platform, w.id, body, Some(version), Some(change)).await
}

fn now() -> Timestamp {
    Timestamp(chrono::Utc::now().timestamp_micros())
}

/// What a new endpoint asks for.
pub struct NewWebhook<'a> {
    pub url: &'a str,
    pub types: Option<Vec<EventType>>,
    /// The acting owner when absent.
    pub owner: Option<OwnerId>,
}

/// Make an endpoint: it receives the events made from now on.
pub async fn create(
    dir: &Directory,
    actor: Actor<'_>,
    policy: Policy,
    n: NewWebhook<'_>,
) -> Result<WebhookView, AppError> {
    actor.require_write()?;
    let url = check_url(n.url, policy)?;
    let owner = match (n.owner, actor) {
        (Some(o), _) => actor.owner(dir, o).await.map_err(|e| e.at("owner"))?,
        (None, Actor::Key(c)) => c.acting.clone(),
        (None, Actor::Operator) => return Err(AppError::invalid("invalid_argument", "name the owner").at("owner")),
    };
    if stored(dir, owner.platform).await?.len() >= MAX_PER_PLATFORM {
        return Err(AppError::invalid(
            "too_many_webhooks",
            format!("a platform has at most {MAX_PER_PLATFORM} endpoints"),
        ));
    }
    let settled = dir.settled_seq().await?;
    let w = Webhook {
        id: Uuid::now_v7(),
        platform: owner.platform,
        owner: owner.id,
        url: url.to_string(),
        types: n.types,
        status: Status::Enabled,
        disabled_reason: None,
        secret_version: 1,
        previous_until: None,
        created_at: now(),
        cursor: Cursor { seq: settled + 1, index: 0 }.to_string(),
        delivered: 0,
        failures: 0,
        failing_since: None,
        next_attempt_at: 0,
        lease: None,
        log: VecDeque::new(),
    };
    save(dir, &w, None).await?;
    let secret = secret(dir, w.id, w.secret_version).await?;
    Ok(view(&w, Some(secret)))
}

/// The endpoints of owners the caller reaches.
pub async fn list(dir: &Directory, actor: Actor<'_>, platform: Option<OwnerId>) -> Result<Vec<WebhookView>, AppError> {
    let platform = actor.platform_of(dir, platform).await?;
    let mut out = Vec::new();
    for (w, _) in stored(dir, platform).await? {
        if actor.owner(dir, w.owner).await.is_ok() {
            out.push(view(&w, None));
        }
    }
    Ok(out)
}

/// One endpoint of an owner the caller reaches, with its version.
async fn one(
    dir: &Directory,
    actor: Actor<'_>,
    platform: Option<OwnerId>,
    id: Uuid,
) -> Result<(Webhook, u64), AppError> {
    let platform = actor.platform_of(dir, platform).await?;
    let missing = || AppError::not_found("webhook endpoint", &id.to_string());
    let (w, v) = stored(dir, platform).await?.into_iter().find(|(w, _)| w.id == id).ok_or_else(missing)?;
    actor.owner(dir, w.owner).await.map_err(|_| missing())?;
    Ok((w, v))
}

pub async fn get(
    dir: &Directory,
    actor: Actor<'_>,
    platform: Option<OwnerId>,
    id: Uuid,
) -> Result<WebhookView, AppError> {
    Ok(view(&one(dir, actor, platform, id).await?.0, None))
}

/// A change to an endpoint's configuration.
pub enum Change {
    Enable,
    Disable,
    Delete,
    /// A new secret; the old one also signs for `overlap_secs`.
    Rotate {
        overlap_secs: u64,
    },
    /// Deliver again from this cursor (an event id's position, or any earlier cursor).
    Redeliver(Cursor),
}

/// Apply `change` (compare-and-set: a delivery step writing meanwhile makes it retry once).
pub async fn change(
    dir: &Directory,
    actor: Actor<'_>,
    platform: Option<OwnerId>,
    id: Uuid,
    change: Change,
) -> Result<WebhookView, AppError> {
    actor.require_write()?;
    if let Change::Rotate { overlap_secs } = change {
        if overlap_secs > MAX_OVERLAP_SECS {
            return Err(
                AppError::invalid("invalid_argument", "overlap_seconds is at most 604800").at("overlap_seconds")
            );
        }
    }
    for _ in 0..5 {
        let (mut w, v) = one(dir, actor, platform, id).await?;
        let mut shown = None;
        match &change {
            Change::Enable => {
                (w.status, w.disabled_reason, w.failures, w.failing_since, w.next_attempt_at) =
                    (Status::Enabled, None, 0, None, 0)
            }
            Change::Disable => (w.status, w.disabled_reason) = (Status::Disabled, Some("disabled by its owner".into())),
            Change::Delete => w.status = Status::Deleted,
            Change::Rotate { overlap_secs } => {
                w.secret_version += 1;
                w.previous_until = Some(now().0 + (*overlap_secs as i64) * 1_000_000);
                shown = Some(secret(dir, w.id, w.secret_version).await?);
            }
            Change::Redeliver(c) => (w.cursor, w.failures, w.next_attempt_at) = (c.to_string(), 0, 0),
        }
        match save(dir, &w, Some(v)).await {
            Ok(_) => {
                dir.webhook_changed();
                return Ok(view(&w, shown));
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Unavailable("the endpoint kept changing; try again".into()).into())
}
