//! The web console: embedded static assets at `/`, and a per-user Server-Sent Events stream at
//! `/api/console/events` (read with `fetch`, so the token travels in a header, never in a URL).
//! A task's page is where Wegent's web app has it, [`TASK_PAGE`]`?taskId=<id>` (the device links
//! to it, `wegent_executor::web_links`): the console, opened on that task.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;

use crate::rest::{AppState, JwtUser};

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const STYLE_CSS: &str = include_str!("../web/style.css");

/// The route of a task's page in Wegent's web app.
pub const TASK_PAGE: &str = "/devices/chat";

pub fn router() -> Router<AppState> {
    let page = || async {
        (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            INDEX_HTML,
        )
    };
    Router::new()
        .route("/", get(page))
        .route(TASK_PAGE, get(page))
        .route(
            "/app.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    APP_JS,
                )
            }),
        )
        .route(
            "/style.css",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
                    STYLE_CSS,
                )
            }),
        )
}

/// The signed-in user's events: device list changes, task deltas and settlements.
pub async fn events(State(state): State<AppState>, JwtUser(user): JwtUser) -> impl IntoResponse {
    let rx = state.events.subscribe();
    let user_id = user.id;
    let stream = stream::unfold(rx, move |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(e) if e.user_id() == Some(user_id) && is_for_console(&e) => {
                    let data = serde_json::to_string(&e).unwrap_or_default();
                    return Some((Ok::<_, Infallible>(Event::default().data(data)), rx));
                }
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    sse(stream)
}

fn sse(
    stream: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
) -> impl IntoResponse {
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Only what the console renders; heartbeat payloads stay server-side.
fn is_for_console(e: &crate::events::ServerEvent) -> bool {
    use crate::events::ServerEvent as E;
    matches!(
        e,
        E::DevicesChanged { .. }
            | E::TaskDelta { .. }
            | E::TaskSettled { .. }
            | E::TaskDispatched { .. }
            | E::DeviceOffline { .. }
            | E::DeviceOnline { .. }
    )
}
