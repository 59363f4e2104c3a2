//! Balance alerts, webhook documents and status changes in the PostgreSQL store.

use coffer_core::alerts::Alert;
use coffer_core::*;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::rows::{get, parse, ts, u64_at, Res};

const COLS: &str = "id, platform_id, wallet_id, field, direction, threshold, created_seq, deleted_seq, created_at";

fn row(r: &Row) -> Res<Alert> {
    Ok(Alert {
        id: AlertId(get(r, 0)?),
        platform: OwnerId(get(r, 1)?),
        wallet: AccountId(get(r, 2)?),
        field: parse(r, 3)?,
        direction: parse(r, 4)?,
        threshold: get(r, 5)?,
        created_seq: u64_at(r, 6)?,
        deleted_seq: get::<Option<i64>>(r, 7)?.map(|v| v as u64),
        created_at: ts(r, 8)?,
    })
}

/// An entry number of the caller's transaction, taken after its transaction id: the settled
/// position cannot pass it until the transaction has ended (see `projector`).
async fn position(c: &impl GenericClient) -> Res<Seq> {
    c.query_one("SELECT pg_current_xact_id()::text", &[]).await?;
    u64_at(&c.query_one("SELECT nextval('entry_seq')", &[]).await?, 0)
}

/// Insert `a` at a position of its own, made at `now`.
pub async fn put(c: &impl GenericClient, a: &mut Alert, now: Timestamp) -> Res<()> {
    a.created_seq = position(c).await?;
    a.created_at = now;
    let st =
        c.prepare_cached(&format!("INSERT INTO alerts ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8)")).await?;
    c.execute(
        &st,
        &[
            &a.id.0,
            &a.platform.0,
            &a.wallet.0,
            &a.field.as_str(),
            &a.direction.as_str(),
            &a.threshold,
            &(a.created_seq as i64),
            &now.0,
        ],
    )
    .await?;
    Ok(())
}

/// Mark the alert deleted at a position of its own unless it is already; the alert after.
pub async fn delete(c: &impl GenericClient, platform: OwnerId, id: AlertId) -> Res<Option<Alert>> {
    let seq = position(c).await? as i64;
    let st = c
        .prepare_cached("UPDATE alerts SET deleted_seq = $3 WHERE platform_id = $1 AND id = $2 AND deleted_seq IS NULL")
        .await?;
    c.execute(&st, &[&platform.0, &id.0, &seq]).await?;
    let st = c.prepare_cached(&format!("SELECT {COLS} FROM alerts WHERE platform_id = $1 AND id = $2")).await?;
    c.query_opt(&st, &[&platform.0, &id.0]).await?.as_ref().map(row).transpose()
}

/// Every alert of the platform, by (created_seq, id).
pub async fn of_platform(c: &impl GenericClient, platform: OwnerId) -> Res<Vec<Alert>> {
    let st =
        c.prepare_cached(&format!("SELECT {COLS} FROM alerts WHERE platform_id = $1 ORDER BY created_seq, id")).await?;
    c.query(&st, &[&platform.0]).await?.iter().map(row).collect()
}

/// Webhook documents (of one platform, or all).
pub async fn webhooks(c: &impl GenericClient, platform: Option<OwnerId>) -> Res<Vec<crate::StoredWebhook>> {
    let st = c
        .prepare_cached(
            "SELECT id, platform_id, body, version FROM webhooks WHERE $1::uuid IS NULL OR platform_id = $1 ORDER BY id",
        )
        .await?;
    c.query(&st, &[&platform.map(|p| p.0)])
        .await?
        .iter()
        .map(|r| {
            Ok(crate::StoredWebhook {
                id: get(r, 0)?,
                platform: OwnerId(get(r, 1)?),
                body: get(r, 2)?,
                version: u64_at(r, 3)?,
            })
        })
        .collect()
}

/// Write a webhook document if its version is still `expected`; the new version, `None` if not.
pub async fn save_webhook(
    c: &impl GenericClient,
    platform: OwnerId,
    id: uuid::Uuid,
    body: &str,
    expected: Option<u64>,
) -> Res<Option<u64>> {
    let n = match expected {
        None => {
            let st = c
                .prepare_cached(
                    "INSERT INTO webhooks (id, platform_id, body, version) VALUES ($1, $2, $3, 1) ON CONFLICT DO NOTHING",
                )
                .await?;
            c.execute(&st, &[&id, &platform.0, &body]).await?
        }
        Some(v) => {
            let st = c
                .prepare_cached(
                    "UPDATE webhooks SET body = $3, version = version + 1 WHERE id = $1 AND platform_id = $2 AND version = $4",
                )
                .await?;
            c.execute(&st, &[&id, &platform.0, &body, &(v as i64)]).await?
        }
    };
    Ok((n == 1).then(|| expected.map_or(1, |v| v + 1)))
}

const STATUS_COLS: &str =
    "seq, platform_id, owner_id, subject_kind, subject_id, from_status, to_status, reason, created_at";

/// Record a status change at an entry number of its own (set in `s`).
pub async fn put_status(c: &impl GenericClient, s: &mut StatusChange) -> Res<()> {
    s.seq = position(c).await?;
    let st = c
        .prepare_cached(&format!(
            "INSERT INTO status_changes ({STATUS_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .await?;
    let subject = (s.subject.kind(), s.subject.id());
    c.execute(
        &st,
        &[
            &(s.seq as i64),
            &s.platform.0,
            &s.owner.0,
            &subject.0,
            &subject.1,
            &s.from,
            &s.to,
            &s.reason,
            &s.created_at.0,
        ],
    )
    .await?;
    Ok(())
}

fn status_row(r: &Row) -> Res<StatusChange> {
    let kind: String = get(r, 3)?;
    let subject = StatusSubject::from_parts(&kind, get(r, 4)?)
        .ok_or_else(|| crate::StoreError::Storage(format!("unknown status subject {kind}")))?;
    Ok(StatusChange {
        seq: u64_at(r, 0)?,
        platform: OwnerId(get(r, 1)?),
        owner: OwnerId(get(r, 2)?),
        subject,
        from: get(r, 5)?,
        to: get(r, 6)?,
        reason: get(r, 7)?,
        created_at: ts(r, 8)?,
    })
}

/// The platform's status changes numbered `from..=to`, by number.
pub async fn statuses(c: &impl GenericClient, platform: OwnerId, from: Seq, to: Seq) -> Res<Vec<StatusChange>> {
    let st = c
        .prepare_cached(&format!(
            "SELECT {STATUS_COLS} FROM status_changes WHERE platform_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq"
        ))
        .await?;
    c.query(&st, &[&platform.0, &(from as i64), &(to.min(i64::MAX as u64) as i64)])
        .await?
        .iter()
        .map(status_row)
        .collect()
}
