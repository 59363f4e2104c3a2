//! Statements: a wallet's (JSON, or CSV with `Accept: text/csv`) and an owner's per currency.

use coffer_app::service::statements::{self, OwnerStatement, Period, StatementQuery, WalletStatement};

use axum::http::header;

use super::*;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatementParams {
    /// A date (YYYY-MM-DD, from the start of that day in `tz`) or an RFC 3339 time.
    pub from: String,
    /// A date (up to the end of that day in `tz`) or an RFC 3339 time (excluded).
    pub to: String,
    /// An IANA time zone for dates, e.g. `Asia/Singapore`. Default UTC.
    pub tz: Option<String>,
    /// Movements per page: 1 to 1000, default 100.
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Also totals by kind over the whole period (reads every movement of it).
    pub totals: Option<bool>,
    /// Owner statements only: the currency.
    pub currency: Option<String>,
}

fn period(q: &StatementParams) -> Result<Period, ApiError> {
    Ok(statements::period(&q.from, &q.to, q.tz.as_deref())?)
}

fn wants_csv(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/csv"))
}

#[utoipa::path(get, path = "/wallets/{id}/statement", context_path = "/coffer/v1", tag = "balances",
    description = "The wallet's balances at both ends of the period and its movements in between (newest first, paged), with running balances. `Accept: text/csv` gives the whole period as CSV, oldest first.",
    params(("id" = String, Path, description = "wallet id"), StatementParams),
    responses((status = 200, content((WalletStatement = "application/json"), (String = "text/csv"))), ReadErrors))]
pub(super) async fn wallet_statement(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Q(q): Q<StatementParams>,
) -> Result<Response, ApiError> {
    let id = path_id("account", &id)?;
    if q.currency.is_some() {
        return Err(
            ApiError::invalid("invalid_argument", "a wallet has one currency: leave currency out").param("currency")
        );
    }
    let period = period(&q)?;
    if wants_csv(&headers) {
        let body = statements::wallet_csv(&s.store, (&caller).into(), id, period).await?;
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response());
    }
    let sq = StatementQuery {
        period,
        limit: statements::limit(q.limit)?,
        cursor: service::journal::parse_cursor(q.cursor.as_deref())?,
        totals: q.totals.unwrap_or(false),
    };
    Ok(Json(statements::wallet(&s.store, (&caller).into(), id, sq).await?).into_response())
}

#[utoipa::path(get, path = "/owners/{id}/statement", context_path = "/coffer/v1", tag = "balances",
    description = "Each of the owner's wallets in `currency` at both ends of the period.",
    params(("id" = String, Path, description = "owner id"), StatementParams),
    responses((status = 200, body = OwnerStatement), ReadErrors))]
pub(super) async fn owner_statement(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Q(q): Q<StatementParams>,
) -> Result<Json<OwnerStatement>, ApiError> {
    let id = path_id("owner", &id)?;
    if q.limit.is_some() || q.cursor.is_some() || q.totals.is_some() {
        return Err(ApiError::invalid("invalid_argument", "an owner statement takes currency, from, to and tz"));
    }
    let currency = q
        .currency
        .as_deref()
        .ok_or_else(|| ApiError::invalid("invalid_argument", "currency is required").param("currency"))?;
    let currency: CurrencyCode = currency
        .parse()
        .map_err(|_| ApiError::invalid("invalid_argument", "currency must be an ISO 4217 code").param("currency"))?;
    Ok(Json(statements::owner(&s.store, (&caller).into(), id, currency, period(&q)?).await?))
}
