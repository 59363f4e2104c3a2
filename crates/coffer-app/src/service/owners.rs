//! Owners: platforms (the operator's), merchants and sub-merchants, their status and children.

use std::collections::BTreeMap;

use coffer_core::*;
use coffer_store::Store;

use super::{run, unexpected, Actor, AppError, At};
use crate::directory::Directory;
use crate::render::{self, OwnerView};

async fn owner_outcome(dir: &Directory, actor: Actor<'_>, cmd: Command) -> Result<OwnerView, AppError> {
    match run(dir, actor, cmd).await? {
        Outcome::Owner(o) => Ok(render::owner(&o)),
        _ => Err(unexpected("owner")),
    }
}

/// A new platform (a tenant): the operator's alone.
pub async fn create_platform(
    dir: &Directory,
    actor: Actor<'_>,
    name: String,
    default_currency: &str,
    currency_exponents: BTreeMap<CurrencyCode, u8>,
) -> Result<OwnerView, AppError> {
    operator_only(actor, "platforms are created by the operator")?;
    let default_currency = default_currency.parse().at("default_currency")?;
    owner_outcome(dir, actor, Command::CreatePlatform { name, default_currency, currency_exponents }).await
}

/// A merchant under a platform, or a sub-merchant under a merchant; the currency defaults to
/// the parent's.
pub async fn create_child(
    dir: &Directory,
    actor: Actor<'_>,
    parent: OwnerId,
    name: String,
    default_currency: Option<&str>,
) -> Result<OwnerView, AppError> {
    actor.require_write()?;
    let parent = actor.owner(dir, parent).await?;
    let default_currency = default_currency.map(str::parse).transpose().at("default_currency")?;
    owner_outcome(dir, actor, Command::CreateMerchant { parent: parent.id, name, default_currency }).await
}

/// ACTIVE, SUSPENDED or DELETED (final), changed by an ancestor (or the operator).
pub async fn set_status(
    dir: &Directory,
    actor: Actor<'_>,
    id: OwnerId,
    status: OwnerStatus,
) -> Result<OwnerView, AppError> {
    actor.require_write()?;
    let o = actor.owner(dir, id).await?;
    if matches!(actor, Actor::Key(c) if c.acting.id == o.id) {
        return Err(
            AppError::invalid("invalid_argument", "an owner cannot change its own status; its parent can").at("status")
        );
    }
    owner_outcome(dir, actor, Command::SetOwnerStatus { owner: o.id, status }).await
}

pub async fn show(dir: &Directory, actor: Actor<'_>, id: OwnerId) -> Result<OwnerView, AppError> {
    Ok(render::owner(&actor.owner(dir, id).await?))
}

/// Direct children, in creation order.
pub async fn children(dir: &Directory, actor: Actor<'_>, id: OwnerId) -> Result<Vec<OwnerView>, AppError> {
    let o = actor.owner(dir, id).await?;
    Ok(dir.children(o.id).await?.iter().map(render::owner).collect())
}

/// Every platform: the operator's view.
pub async fn platforms(dir: &Directory, actor: Actor<'_>) -> Result<Vec<OwnerView>, AppError> {
    operator_only(actor, "only the operator lists every platform")?;
    Ok(dir.platforms().await?.iter().map(render::owner).collect())
}

fn operator_only(actor: Actor<'_>, message: &str) -> Result<(), AppError> {
    match actor {
        Actor::Operator => Ok(()),
        Actor::Key(_) => Err(AppError::Forbidden { code: "operator_only", message: message.into() }),
    }
}
