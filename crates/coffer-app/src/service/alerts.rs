//! Balance alerts (`coffer_core::alerts`): set on a wallet the caller reaches, listed, deleted.
//! What they fire is not stored anywhere: the event feed derives `alert.triggered` and
//! `alert.cleared` from the journal lines (`events::with_alerts`).

use coffer_core::alerts::{Alert, MAX_PER_WALLET};
use coffer_core::money::{format_minor, parse_minor};
use coffer_core::*;
use coffer_store::Store;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Actor, AppError, At};
use crate::directory::Directory;
use crate::render;

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertView {
    pub id: Uuid,
    pub wallet: Uuid,
    /// available or posted.
    pub field: String,
    /// below or above.
    pub direction: String,
    pub threshold: String,
    pub currency: String,
    pub created_at: String,
    /// The journal position after which the alert watches the wallet.
    pub created_after: u64,
    /// Set once deleted: the last journal position it watched.
    pub deleted_after: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertsView {
    pub data: Vec<AlertView>,
}

fn view(a: &Alert, currency: CurrencyCode, exponent: u8) -> AlertView {
    AlertView {
        id: a.id.0,
        wallet: a.wallet.0,
        field: a.field.to_string(),
        direction: a.direction.to_string(),
        threshold: format_minor(a.threshold, exponent),
        currency: currency.to_string(),
        created_at: render::time(a.created_at),
        created_after: a.created_seq,
        deleted_after: a.deleted_seq,
    }
}

/// What a new alert asks for, as the caller wrote it.
pub struct NewAlert<'a> {
    pub wallet: AccountId,
    pub field: &'a str,
    pub direction: &'a str,
    /// A decimal in the wallet's currency; may be negative (wallets with an overdraft).
    pub threshold: &'a str,
}

/// Set an alert on a wallet the caller reaches (read-write keys).
pub async fn create(dir: &Directory, actor: Actor<'_>, n: NewAlert<'_>) -> Result<AlertView, AppError> {
    actor.require_write()?;
    let field: AlertField =
        n.field.parse().map_err(|e: UnknownName| AppError::invalid("invalid_argument", e.to_string()).at("field"))?;
    let direction: AlertDirection = n
        .direction
        .parse()
        .map_err(|e: UnknownName| AppError::invalid("invalid_argument", e.to_string()).at("direction"))?;
    let w = actor.wallet(dir, n.wallet).await.at("wallet")?;
    let threshold = parse_minor(n.threshold, w.exponent).at("threshold")?;
    let live = dir.alerts(w.platform).await?.iter().filter(|a| a.wallet == w.id && a.deleted_seq.is_none()).count();
    if live >= MAX_PER_WALLET {
        return Err(
            AppError::invalid("too_many_alerts", format!("a wallet has at most {MAX_PER_WALLET} alerts")).at("wallet")
        );
    }
    let alert = Alert {
        id: AlertId(Uuid::now_v7()),
        platform: w.platform,
        wallet: w.id,
        field,
        direction,
        threshold,
        created_seq: 0,
        deleted_seq: None,
        created_at: Timestamp(0),
    };
    let a = dir.put_alert(alert).await?;
    Ok(view(&a, w.currency, w.exponent))
}

/// The wallet's alerts (not deleted), oldest first.
pub async fn list(dir: &Directory, actor: Actor<'_>, wallet: AccountId) -> Result<AlertsView, AppError> {
    let w = actor.wallet(dir, wallet).await?;
    let all = dir.alerts(w.platform).await?;
    let data =
        all.iter().filter(|a| a.wallet == w.id && a.deleted_seq.is_none()).map(|a| view(a, w.currency, w.exponent));
    Ok(AlertsView { data: data.collect() })
}

/// Delete an alert of a wallet the caller reaches (read-write keys): it watches no entry after
/// now. Deleting it again answers it as it is.
pub async fn delete(
    dir: &Directory,
    actor: Actor<'_>,
    platform: Option<OwnerId>,
    id: AlertId,
) -> Result<AlertView, AppError> {
    actor.require_write()?;
    let platform = actor.platform_of(dir, platform).await?;
    let missing = || AppError::not_found("alert", &id.to_string());
    let known = dir.alerts(platform).await?.into_iter().find(|a| a.id == id).ok_or_else(missing)?;
    // An alert on a wallet out of reach is "not found", like the wallet.
    let w = actor.wallet(dir, known.wallet).await.map_err(|_| missing())?;
    let a = dir.delete_alert(platform, id).await?.ok_or_else(missing)?;
    Ok(view(&a, w.currency, w.exponent))
}
