//! Balance alerts in the SQLite store (`alerts` table, schema v5).

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
