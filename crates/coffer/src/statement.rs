//! `coffer statement`: a wallet's statement (JSON, or the whole period as CSV with `--csv`) or
//! an owner's per currency, as the HTTP API gives them.

use clap::Args;
use coffer_app::service::statements::{self, StatementQuery};
use coffer_app::service::Actor;
use coffer_app::Directory;
use coffer_core::*;
use serde_json::Value;

use crate::admin::refused;
use crate::task::Printed;

#[derive(Args, Debug)]
pub struct StatementArgs {
    /// One wallet's statement.
    #[arg(long, value_name = "WALLET_ID", conflicts_with = "owner", required_unless_present = "owner")]
    pub(crate) wallet: Option<AccountId>,
    /// An owner's wallets in `--currency`.
    #[arg(long, value_name = "OWNER_ID", requires = "currency")]
    pub(crate) owner: Option<OwnerId>,
    /// The currency of the owner's wallets (with --owner).
    #[arg(long)]
    pub(crate) currency: Option<CurrencyCode>,
    /// A date (YYYY-MM-DD, from the start of that day in --tz) or an RFC 3339 time.
    #[arg(long)]
    pub(crate) from: String,
    /// A date (up to the end of that day in --tz) or an RFC 3339 time (excluded).
    #[arg(long)]
    pub(crate) to: String,
    /// An IANA time zone for dates. Default UTC.
    #[arg(long)]
    pub(crate) tz: Option<String>,
    /// Movements per page (wallet, JSON): 1 to 1000.
    #[arg(long)]
    pub(crate) limit: Option<usize>,
    /// Start below this page cursor (`next_cursor` of the previous page).
    #[arg(long)]
    pub(crate) cursor: Option<String>,
    /// Totals by kind over the whole period (wallet, JSON).
    #[arg(long)]
    pub(crate) totals: bool,
    /// The whole period as CSV, oldest first (wallet).
    #[arg(long, conflicts_with_all = ["owner", "limit", "cursor", "totals"])]
    pub(crate) csv: bool,
}

fn json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("views serialize")
}

pub async fn run(dir: &Directory, a: StatementArgs) -> anyhow::Result<Printed> {
    let op = Actor::Operator;
    let period = statements::period(&a.from, &a.to, a.tz.as_deref()).map_err(refused)?;
    match (a.wallet, a.owner, a.currency) {
        (Some(w), _, _) if a.csv => {
            Ok(Printed::Text(statements::wallet_csv(dir, op, w, period).await.map_err(refused)?))
        }
        (Some(w), _, _) => {
            let q = StatementQuery {
                period,
                limit: statements::limit(a.limit).map_err(refused)?,
                cursor: coffer_app::service::journal::parse_cursor(a.cursor.as_deref()).map_err(refused)?,
                totals: a.totals,
            };
            Ok(Printed::Json(json(&statements::wallet(dir, op, w, q).await.map_err(refused)?)))
        }
        (None, Some(o), Some(c)) => {
            Ok(Printed::Json(json(&statements::owner(dir, op, o, c, period).await.map_err(refused)?)))
        }
        _ => anyhow::bail!("give --wallet, or --owner and --currency"),
    }
}
