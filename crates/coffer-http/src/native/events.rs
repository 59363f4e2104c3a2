//! The event feed (`GET /events`): what the journal tells, oldest first, from a cursor.

use coffer_app::service::events::{self as feed, Cursor, EventsView, FeedQuery};
use coffer_app::service::AppError;

use super::*;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// `next_cursor` of the previous answer; the journal's start when absent.
    pub cursor: Option<String>,
    /// Comma-separated event types (`balance.changed`, `hold.created`, `hold.captured`,
    /// `hold.released`, `hold.expired`, `incoming.created`, `incoming.settled`,
    /// `incoming.cancelled`, `transaction.reversed`, `alert.triggered`, `alert.cleared`); every
    /// type when absent.
    pub types: Option<String>,
    /// 1 to 1000, default 100.
    pub limit: Option<usize>,
    /// Seconds (0 to 30) to wait for an event when there is none yet (long poll); default 0.
    pub wait: Option<u64>,
}

#[utoipa::path(get, path = "/events", context_path = "/coffer/v1", tag = "events",
    description = "Events derived from the journal (balance changes per wallet, holds, incoming credits, reversals) of the caller's platform, only those of wallets the caller reaches, oldest first. Resume from `next_cursor`; a cursor is a journal position, valid across restarts and on every node.",
    params(EventsQuery),
    responses((status = 200, body = EventsView), ReadErrors))]
pub(super) async fn events(
    State(s): State<AppState>,
    caller: Caller,
    Q(q): Q<EventsQuery>,
) -> Result<Json<EventsView>, ApiError> {
    let wait = match q.wait.unwrap_or(0) {
        w @ 0..=30 => std::time::Duration::from_secs(w),
        _ => return Err(AppError::invalid("invalid_argument", "wait must be 0 to 30 seconds").at("wait").into()),
    };
    let query = FeedQuery {
        platform: None,
        cursor: q.cursor.as_deref().map(Cursor::parse).transpose()?.unwrap_or(Cursor::START),
        types: feed::types(q.types.as_deref())?,
        limit: feed::limit(q.limit)?,
        wait,
    };
    Ok(Json(feed::feed(&s.store, (&caller).into(), query).await?))
}
