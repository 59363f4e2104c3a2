//! The event feed (`GET /events`): what the journal tells, oldest first, from a cursor; and the
//! same as a stream of server-sent events (`GET /events/stream`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use coffer_app::service::events::{self as feed, Cursor, EventsView, FeedQuery};
use coffer_app::service::AppError;
use futures_util::Stream;

use super::*;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// `next_cursor` of the previous answer, or `end` (events from now on); the journal's start
    /// when absent.
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
        cursor: feed::start(&s.store, q.cursor.as_deref()).await?,
        types: feed::types(q.types.as_deref())?,
        limit: feed::limit(q.limit)?,
        wait,
    };
    Ok(Json(feed::feed(&s.store, (&caller).into(), query).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Where to start (a `next_cursor`, an event's SSE id, or `end`: from now on); a
    /// `Last-Event-ID` header, which browsers send when they reconnect, takes precedence. The
    /// journal's start when absent.
    pub cursor: Option<String>,
    /// Comma-separated event types; every type when absent.
    pub types: Option<String>,
}

/// How long one look at the journal waits for an event before looking again.
const STREAM_WAIT: Duration = Duration::from_secs(20);
/// Events one look reads at most.
const STREAM_PAGE: usize = 100;

#[utoipa::path(get, path = "/events/stream", context_path = "/coffer/v1", tag = "events",
    description = "The event feed as server-sent events (`text/event-stream`), endless: each event's `id` is the cursor just after it (reconnect with `Last-Event-ID` to resume), its `event` the type, its `data` the event as `GET /events` shows it. A comment line every 15 s keeps idle connections open.",
    params(StreamQuery),
    responses((status = 200, description = "a stream of server-sent events", content_type = "text/event-stream", body = String), ReadErrors))]
pub(super) async fn stream(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Q(q): Q<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).or(q.cursor.as_deref());
    let start = feed::start(&s.store, resume).await?;
    let types = feed::types(q.types.as_deref())?;
    let state = (start, VecDeque::<Event>::new());
    let events = futures_util::stream::unfold(state, move |(mut cursor, mut queue)| {
        let (s, caller, types) = (s.clone(), caller.clone(), types.clone());
        async move {
            loop {
                if let Some(e) = queue.pop_front() {
                    return Some((Ok(e), (cursor, queue)));
                }
                let q =
                    FeedQuery { platform: None, cursor, types: types.clone(), limit: STREAM_PAGE, wait: STREAM_WAIT };
                let page = match feed::feed(&s.store, (&caller).into(), q).await {
                    Ok(page) => page,
                    Err(e) => {
                        // The client reconnects from the last id it got.
                        tracing::warn!(error = %e, "event stream ended");
                        return None;
                    }
                };
                cursor = Cursor::parse(&page.next_cursor).ok()?;
                for e in &page.data {
                    // Its id is the cursor just after it, so that a reconnection resumes behind it.
                    let id = Cursor::after(&e.id).ok()?.to_string();
                    let sse = Event::default().id(id).event(e.kind.as_str()).json_data(e).ok()?;
                    queue.push_back(sse);
                }
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
