//! Command-line access to what watches the ledger: the event feed and balance alerts. Each
//! command prints JSON, like the other administration commands.

use clap::{Args, Subcommand};
use coffer_app::service::events::{self, Cursor, FeedQuery};
use coffer_app::service::{alerts, Actor, AppError};
use coffer_app::Directory;
use coffer_core::*;
use serde_json::Value;

#[derive(Subcommand, Debug)]
pub enum AlertCmd {
    /// Watch a wallet's balance: an event when it crosses the threshold, once per crossing.
    ///
    /// Example: `coffer alert create --wallet <wallet-id> --field available --direction below --threshold 100.00`
    Create {
        /// The wallet watched.
        #[arg(long, value_name = "WALLET_ID")]
        wallet: AccountId,
        /// available or posted.
        #[arg(long, default_value = "available")]
        field: String,
        /// below or above.
        #[arg(long, default_value = "below")]
        direction: String,
        /// Decimal in the wallet's currency.
        #[arg(long)]
        threshold: String,
    },
    /// A wallet's alerts.
    ///
    /// Example: `coffer alert list --wallet <wallet-id>`
    List {
        /// The wallet whose alerts to list.
        #[arg(long, value_name = "WALLET_ID")]
        wallet: AccountId,
    },
    /// Stop an alert.
    ///
    /// Example: `coffer alert delete --platform <platform-id> <alert-id>`
    Delete {
        /// The platform the alert belongs to.
        #[arg(long, value_name = "PLATFORM_ID")]
        platform: OwnerId,
        /// The alert's id.
        id: AlertId,
    },
}

/// `coffer events`: a page of a platform's event feed.
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// The platform whose feed to read.
    #[arg(long, value_name = "PLATFORM_ID")]
    pub(crate) platform: OwnerId,
    /// Resume from a previous answer's `next_cursor`; the journal's start by default.
    #[arg(long)]
    pub(crate) cursor: Option<String>,
    /// Comma-separated event types.
    #[arg(long)]
    pub(crate) types: Option<String>,
    /// Most events in the page.
    #[arg(long, default_value_t = events::DEFAULT_EVENTS)]
    pub(crate) limit: usize,
}

const OP: Actor<'static> = Actor::Operator;

fn out<T: serde::Serialize>(r: Result<T, AppError>) -> anyhow::Result<Value> {
    r.map(|v| serde_json::to_value(v).expect("views serialize")).map_err(crate::admin::refused)
}

pub async fn alert(dir: &Directory, cmd: AlertCmd) -> anyhow::Result<Value> {
    match cmd {
        AlertCmd::Create { wallet, field, direction, threshold } => {
            let n = alerts::NewAlert { wallet, field: &field, direction: &direction, threshold: &threshold };
            out(alerts::create(dir, OP, n).await)
        }
        AlertCmd::List { wallet } => out(alerts::list(dir, OP, wallet).await),
        AlertCmd::Delete { platform, id } => out(alerts::delete(dir, OP, Some(platform), id).await),
    }
}

pub async fn events(dir: &Directory, a: EventsArgs) -> anyhow::Result<Value> {
    let q = || -> Result<FeedQuery, AppError> {
        Ok(FeedQuery {
            platform: Some(a.platform),
            cursor: a.cursor.as_deref().map(Cursor::parse).transpose()?.unwrap_or(Cursor::START),
            types: events::types(a.types.as_deref())?,
            limit: events::limit(Some(a.limit))?,
            wait: std::time::Duration::ZERO,
        })
    };
    let q = q().map_err(crate::admin::refused)?;
    out(events::feed(dir, OP, q).await)
}
