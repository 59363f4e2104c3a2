//! Balance alerts, webhook documents and status changes in the SQLite store.

use coffer_core::alerts::Alert;
use coffer_core::*;
use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use crate::StoreError;

const COLS: &str = "id, platform_id, wallet_id, field, direction, threshold, created_seq, deleted_seq, created_at";

fn uuid(r: &Row<'_>, i: usize) -> rusqlite::Result<Uuid> {
    let b: Vec<u8> = r.get(i)?;
    Uuid::from_slice(&b)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Blob, Box::new(e)))
}

fn parsed<T: std::str::FromStr>(r: &Row<'_>, i: usize) -> rusqlite::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let s: String = r.get(i)?;
    s.parse().map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
}

fn row(r: &Row<'_>) -> rusqlite::Result<Alert> {
    Ok(Alert {
        id: AlertId(uuid(r, 0)?),
        platform: OwnerId(uuid(r, 1)?),
        wallet: AccountId(uuid(r, 2)?),
        field: parsed(r, 3)?,
        direction: parsed(r, 4)?,
        threshold: r.get(5)?,
        created_seq: r.get::<_, i64>(6)? as u64,
        deleted_seq: r.get::<_, Option<i64>>(7)?.map(|v| v as u64),
        created_at: Timestamp(r.get(8)?),
    })
}

/// Insert `a` at position `seq`, made at `now`.
pub fn put(c: &Connection, a: &mut Alert, seq: Seq, now: Timestamp) -> Result<(), StoreError> {
    a.created_seq = seq;
    a.created_at = now;
    c.prepare_cached(&format!("INSERT INTO alerts ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8)"))?.execute(
        params![
            a.id.0.as_bytes().as_slice(),
            a.platform.0.as_bytes().as_slice(),
            a.wallet.0.as_bytes().as_slice(),
            a.field.as_str(),
            a.direction.as_str(),
            a.threshold,
            seq as i64,
            now.0
        ],
    )?;
    Ok(())
}

/// Mark the alert deleted at `seq` unless it is already; the alert as stored after.
pub fn delete(c: &Connection, platform: OwnerId, id: AlertId, seq: Seq) -> Result<Option<Alert>, StoreError> {
    c.prepare_cached("UPDATE alerts SET deleted_seq = ?3 WHERE platform_id = ?1 AND id = ?2 AND deleted_seq IS NULL")?
        .execute(params![platform.0.as_bytes().as_slice(), id.0.as_bytes().as_slice(), seq as i64])?;
    Ok(c.prepare_cached(&format!("SELECT {COLS} FROM alerts WHERE platform_id = ?1 AND id = ?2"))?
        .query_row(params![platform.0.as_bytes().as_slice(), id.0.as_bytes().as_slice()], row)
        .optional()?)
}

/// Every alert of the platform, by (created_seq, id).
pub fn of_platform(c: &Connection, platform: OwnerId) -> Result<Vec<Alert>, StoreError> {
    let mut st =
        c.prepare_cached(&format!("SELECT {COLS} FROM alerts WHERE platform_id = ?1 ORDER BY created_seq, id"))?;
    let rows = st.query_map([platform.0.as_bytes().as_slice()], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Webhook documents (of one platform, or all).
pub fn webhooks(c: &Connection, platform: Option<OwnerId>) -> Result<Vec<crate::StoredWebhook>, StoreError> {
    let map = |r: &Row<'_>| {
        Ok(crate::StoredWebhook {
            id: uuid(r, 0)?,
            platform: OwnerId(uuid(r, 1)?),
            body: r.get(2)?,
            version: r.get::<_, i64>(3)? as u64,
        })
    };
    let out = match platform {
        Some(p) => c
            .prepare_cached("SELECT id, platform_id, body, version FROM webhooks WHERE platform_id = ?1 ORDER BY id")?
            .query_map([p.0.as_bytes().as_slice()], map)?
            .collect::<Result<_, _>>()?,
        None => c
            .prepare_cached("SELECT id, platform_id, body, version FROM webhooks ORDER BY id")?
            .query_map([], map)?
            .collect::<Result<_, _>>()?,
    };
    Ok(out)
}

/// Write a webhook document if its version is still `expected`; the new version, `None` if not.
pub fn save_webhook(
    c: &Connection,
    platform: OwnerId,
    id: Uuid,
    body: &str,
    expected: Option<u64>,
) -> Result<Option<u64>, StoreError> {
    let n = match expected {
        None => c
            .prepare_cached(
                "INSERT INTO webhooks (id, platform_id, body, version) VALUES (?1, ?2, ?3, 1) ON CONFLICT DO NOTHING",
            )?
            .execute(params![id.as_bytes().as_slice(), platform.0.as_bytes().as_slice(), body])?,
        Some(v) => c
            .prepare_cached(
                "UPDATE webhooks SET body = ?3, version = version + 1 WHERE id = ?1 AND platform_id = ?2 AND version = ?4",
            )?
            .execute(params![id.as_bytes().as_slice(), platform.0.as_bytes().as_slice(), body, v as i64])?,
    };
    Ok((n == 1).then(|| expected.map_or(1, |v| v + 1)))
}

const STATUS_COLS: &str =
    "seq, platform_id, owner_id, subject_kind, subject_id, from_status, to_status, reason, created_at";

/// Record a status change (its number already taken).
pub fn put_status(c: &Connection, s: &StatusChange) -> rusqlite::Result<()> {
    c.prepare_cached(&format!(
        "INSERT INTO status_changes ({STATUS_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))?
    .execute(params![
        s.seq as i64,
        s.platform.0.as_bytes().as_slice(),
        s.owner.0.as_bytes().as_slice(),
        s.subject.kind(),
        s.subject.id().as_bytes().as_slice(),
        s.from,
        s.to,
        s.reason,
        s.created_at.0
    ])?;
    Ok(())
}

fn status_row(r: &Row<'_>) -> rusqlite::Result<StatusChange> {
    let kind: String = r.get(3)?;
    let subject = StatusSubject::from_parts(&kind, uuid(r, 4)?).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, format!("subject {kind}").into())
    })?;
    Ok(StatusChange {
        seq: r.get::<_, i64>(0)? as u64,
        platform: OwnerId(uuid(r, 1)?),
        owner: OwnerId(uuid(r, 2)?),
        subject,
        from: r.get(5)?,
        to: r.get(6)?,
        reason: r.get(7)?,
        created_at: Timestamp(r.get(8)?),
    })
}

/// The platform's status changes numbered `from..=to`, by number.
pub fn statuses(c: &Connection, platform: OwnerId, from: Seq, to: Seq) -> Result<Vec<StatusChange>, StoreError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {STATUS_COLS} FROM status_changes WHERE platform_id = ?1 AND seq BETWEEN ?2 AND ?3 ORDER BY seq"
    ))?;
    let rows = st.query_map(params![platform.0.as_bytes().as_slice(), from as i64, to as i64], status_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The highest number a status change holds (0 when none does).
pub fn last_status(c: &Connection) -> rusqlite::Result<Seq> {
    c.query_row("SELECT COALESCE(MAX(seq), 0) FROM status_changes", [], |r| r.get::<_, i64>(0)).map(|v| v as u64)
}
