//! `/v1/ops/…`: what the operations centre reads, for operators.
//!
//! - `GET /v1/ops/overview[?place=P]`: the figures of P's subtree, of each
//!   office at P and of each child place (one level of drill-down), from
//!   the counters (`crate::ops::counters`): a handful of prefix reads,
//!   whatever the number of cases.
//! - `GET /v1/ops/ranking?level=L&month=YYYY-MM[&department=D]`: the
//!   offices at the places of level L ranked by their on-time rate in that
//!   local month, with the counts behind it.
//! - `GET /v1/ops/stream` is Server-Sent Events of what changes the screen
//!   (see [`crate::ops::stream`] for ids, the backlog and `reset`),
//!   optionally narrowed to a subtree with `?place=P`.
//!
//! Each stream is fed by one small task that ends when the screen goes,
//! when the host stops, or never otherwise: a comment line every
//! [`HEARTBEAT`] keeps proxies from closing an idle stream. At most
//! `max_ops_streams` are open at once; more are answered 503.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response};
use tokio::sync::{OwnedSemaphorePermit, broadcast, mpsc};

use super::auth::OpsReader;
use super::error::{ApiError, ErrorKind};
use super::views::ops::{ChildFigures, OfficeFigures, Overview, PlaceRef, Ranked, Ranking, Tally};
use super::{Api, ApiResult, ok, query};
use crate::ops::{OpsEvent, OpsEventKind, OpsStream, Resume};

/// How often an idle stream sends a comment line.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// The frames of one stream, as its feeder task writes them.
struct EventBody {
    frames: mpsc::Receiver<Bytes>,
}

impl Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.frames
            .poll_recv(cx)
            .map(|frame| frame.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// One event as the stream writes it.
fn frame(id: Option<&str>, event: &str, data: &str) -> Bytes {
    let mut text = String::with_capacity(data.len() + 64);
    if let Some(id) = id {
        text.push_str("id: ");
        text.push_str(id);
        text.push('\n');
    }
    text.push_str("event: ");
    text.push_str(event);
    text.push_str("\ndata: ");
    text.push_str(data);
    text.push_str("\n\n");
    Bytes::from(text)
}

fn event_frame(stream: &OpsStream, event: &OpsEvent) -> Bytes {
    frame(
        Some(&stream.id_of(event.seq)),
        event.kind.as_str(),
        &event.data.to_string(),
    )
}

/// The query's pairs as a map; any other key than `allowed` is 400.
fn ops_query<'a>(
    query: Option<&'a str>,
    allowed: &[&str],
) -> Result<std::collections::HashMap<&'a str, &'a str>, ApiError> {
    let mut out = std::collections::HashMap::new();
    for (pair, name, value) in query::pairs(query) {
        match value {
            Some(value) if !value.is_empty() && allowed.contains(&name) => {
                out.insert(name, value);
            }
            _ => {
                return Err(ApiError::new(
                    ErrorKind::InvalidQuery,
                    format!("`{pair}`: this takes {}", allowed.join("=…, ") + "=…"),
                ));
            }
        }
    }
    Ok(out)
}

impl Api {
    /// The place `id` names, 404 when the tree has none.
    fn known_place(
        tree: &crate::places::PlaceTree,
        id: &str,
    ) -> Result<crate::places::Place, ApiError> {
        tree.get(id).cloned().ok_or_else(|| {
            ApiError::new(
                ErrorKind::PlaceNotFound,
                format!("no place `{id}` in the place tree (see GET /v1/places)"),
            )
        })
    }

    /// `GET /v1/ops/overview[?place=P]`.
    pub(super) async fn ops_overview(
        &self,
        reader: &OpsReader,
        req: &Request<Incoming>,
    ) -> ApiResult {
        let query = ops_query(req.uri().query(), &["place"])?;
        let tree = self.places.tree();
        let place = reader
            .scope(query.get("place").copied())?
            .map(|id| Self::known_place(&tree, &id))
            .transpose()?;
        let scope = place.as_ref().map_or("", |p| p.id.as_str());
        let counters = self.service.counters_at(scope).await?;
        let offices = Tally::departments(&counters)
            .into_iter()
            .map(|department| OfficeFigures {
                figures: Tally::of(&counters, &department).figures(),
                department,
                place: scope.to_owned(),
            })
            .collect();
        let mut children = Vec::new();
        for child in tree.children(place.as_ref().map(|p| p.id.as_str())) {
            let counters = self.service.counters_at(&child.id).await?;
            children.push(ChildFigures {
                place: PlaceRef::of(child),
                figures: Tally::of(&counters, "").figures(),
            });
        }
        ok(&Overview {
            place: place.as_ref().map(PlaceRef::of),
            figures: Tally::of(&counters, "").figures(),
            offices,
            children,
        })
    }

    /// `GET /v1/ops/ranking?level=L&month=YYYY-MM[&department=D]`.
    pub(super) async fn ops_ranking(
        &self,
        reader: &OpsReader,
        req: &Request<Incoming>,
    ) -> ApiResult {
        let query = ops_query(req.uri().query(), &["level", "month", "department"])?;
        let missing = |what: &str| {
            ApiError::new(
                ErrorKind::InvalidQuery,
                format!("give {what}: /v1/ops/ranking?level=district&month=2026-11"),
            )
        };
        let level = *query.get("level").ok_or_else(|| missing("level="))?;
        let month = *query.get("month").ok_or_else(|| missing("month="))?;
        if chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").is_err()
            || month.len() != 7
        {
            return Err(ApiError::new(
                ErrorKind::InvalidQuery,
                format!("month={month}: write the month as YYYY-MM, e.g. 2026-11"),
            ));
        }
        let department = query.get("department").copied();
        let tree = self.places.tree();
        let places = tree.at_level(level);
        if places.is_empty() {
            return Err(ApiError::new(
                ErrorKind::InvalidQuery,
                format!("level={level}: no place of the tree is at that level"),
            ));
        }
        let mut offices = Vec::new();
        for place in places.into_iter().filter(|p| reader.sees(&p.id)) {
            let counters = self.service.monthly_counters_at(month, &place.id).await?;
            for office in tree.departments_at(&place.id) {
                if department.is_some_and(|d| d != office) {
                    continue;
                }
                offices.push(Ranked::new(office, place, &Tally::of(&counters, office)));
            }
        }
        ok(&Ranking::rank(level, month, offices))
    }

    /// `GET /v1/ops/stream[?place=P]` with an optional `Last-Event-ID`.
    pub(super) fn ops_stream(&self, reader: &OpsReader, req: &Request<Incoming>) -> ApiResult {
        let query = ops_query(req.uri().query(), &["place"])?;
        let place = reader.scope(query.get("place").copied())?;
        if let Some(place) = &place {
            Self::known_place(&self.places.tree(), place)?;
        }
        let last_event_id = match req.headers().get("last-event-id") {
            None => None,
            Some(value) => Some(value.to_str().map_err(|_| {
                ApiError::new(
                    ErrorKind::InvalidRequest,
                    "the Last-Event-ID header is not text",
                )
            })?),
        };
        let stream = self.service.ops_stream().clone();
        let subscription = stream
            .subscribe(last_event_id)
            .map_err(|e| ApiError::new(ErrorKind::InvalidRequest, e.to_string()))?;
        let permit = self.ops_streams.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                ErrorKind::TooManyStreams,
                "too many operations streams are open; close one or raise [limits] max_ops_streams",
            )
        })?;
        tracing::info!(actor = %reader.actor, place = place.as_deref().unwrap_or(""), "ops stream opened");
        let (tx, frames) = mpsc::channel(64);
        tokio::spawn(feed(tx, stream, subscription, place, permit));
        let mut response = Response::new(EventBody { frames }.boxed());
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(response)
    }

    /// Ends every operations stream (the host is stopping), so that the
    /// connections they hold can close.
    pub fn close_streams(&self) {
        self.service.ops_stream().close();
    }
}

/// Writes a stream's frames until the screen goes or the host stops.
async fn feed(
    tx: mpsc::Sender<Bytes>,
    stream: Arc<OpsStream>,
    subscription: crate::ops::Subscription,
    place: Option<String>,
    _permit: OwnedSemaphorePermit,
) {
    let mut closed = stream.closed();
    let under = place.as_deref();
    let mut first = vec![Bytes::from_static(
        b": onething ops stream\nretry: 2000\n\n",
    )];
    match &subscription.resume {
        Resume::Replay(events) => first.extend(
            events
                .iter()
                .filter(|e| e.is_under(under))
                .map(|e| event_frame(&stream, e)),
        ),
        Resume::Reset => first.push(frame(
            Some(&stream.id_of(subscription.after)),
            OpsEventKind::Reset.as_str(),
            "{}",
        )),
    }
    for bytes in first {
        if tx.send(bytes).await.is_err() {
            return;
        }
    }
    let mut after = subscription.after;
    let mut live = subscription.live;
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    loop {
        let bytes = tokio::select! {
            received = live.recv() => match received {
                Ok(event) if event.seq <= after || !event.is_under(under) => {
                    after = after.max(event.seq);
                    continue;
                }
                Ok(event) => {
                    after = event.seq;
                    event_frame(&stream, &event)
                }
                // Fell behind the backlog: the screen reloads, then follows.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    frame(None, OpsEventKind::Reset.as_str(), "{}")
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = heartbeat.tick() => Bytes::from_static(b": keep-alive\n\n"),
            _ = closed.changed() => return,
            () = tx.closed() => return,
        };
        if tx.send(bytes).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_id_event_and_one_data_line() {
        assert_eq!(
            frame(Some("7-3"), "item-overdue", r#"{"a":1}"#),
            Bytes::from_static(b"id: 7-3\nevent: item-overdue\ndata: {\"a\":1}\n\n")
        );
        assert_eq!(
            frame(None, "reset", "{}"),
            Bytes::from_static(b"event: reset\ndata: {}\n\n")
        );
    }
}
