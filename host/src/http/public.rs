//! The public endpoints, open without a token: `GET /healthz`,
//! `GET /metrics` (Prometheus text), `GET /v1/scenarios` (the
//! catalogue, with a strong `ETag`) and `GET /v1/places` (the place tree,
//! a page at a time: it names offices and areas, nothing about people).

use bytes::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

use super::error::{ApiError, ErrorKind};
use super::views::{Catalogue, CatalogueEntry, Health, PlaceView, PlacesView};
use super::{Api, ApiResult, HttpResponse, full, json_response, json_text_response, ok};

/// Whether the request's `If-None-Match` matches `etag`: by weak
/// comparison, as RFC 9110 has it for this header (`W/` ignored), with `*`
/// matching any.
fn none_match_hits(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

impl Api {
    /// `GET /v1/places[?under=ID&level=L&limit=N&after=ID]`: places in id
    /// order; an `under` the tree does not have is 404 `place_not_found`.
    pub(super) async fn places(&self, query: Option<&str>) -> ApiResult {
        let page = self.paging.places(query)?;
        if let Some(under) = &page.filter.under
            && self.places.tree().get(under).is_none()
        {
            return Err(ApiError::new(
                ErrorKind::PlaceNotFound,
                format!("no place {under}; list the tree with GET /v1/places"),
            ));
        }
        // One more than the page, so that `next_after` is null on the last.
        let mut places = self
            .places
            .list(&page.filter, page.after.as_deref(), page.limit + 1)
            .await?;
        let more = places.len() > page.limit;
        places.truncate(page.limit);
        let next_after = more.then(|| places.last().map(|p| p.id.as_str())).flatten();
        ok(&PlacesView {
            next_after,
            places: places.iter().map(PlaceView::from).collect(),
        })
    }

    /// `GET /healthz`.
    pub(super) fn healthz(&self) -> HttpResponse {
        json_response(StatusCode::OK, &Health { status: "ok" })
    }

    /// `GET /metrics`.
    pub(super) fn metrics(&self) -> HttpResponse {
        let active: Vec<(String, String)> = self
            .plugins
            .catalogue()
            .iter()
            .map(|p| (p.manifest().id.clone(), p.version().to_owned()))
            .collect();
        let mut response = Response::new(full(self.metrics.render(&active, (self.writer_stats)())));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        response
    }

    /// The active version of every scenario. It is public and bounded by
    /// what `describe()` may declare; its strong `ETag` (SHA-256 of the
    /// exact body) lets clients revalidate: a matching `If-None-Match` is
    /// answered 304 with no body.
    pub(super) fn catalogue(&self, headers: &HeaderMap) -> HttpResponse {
        let plugins = self.plugins.catalogue();
        let catalogue = Catalogue {
            scenarios: plugins.iter().map(|p| CatalogueEntry::new(p)).collect(),
        };
        let body = serde_json::to_string(&catalogue).unwrap_or_default();
        let etag = {
            use sha2::{Digest, Sha256};
            format!("\"{}\"", hex::encode(Sha256::digest(body.as_bytes())))
        };
        let mut response = if none_match_hits(headers, &etag) {
            let mut response = Response::new(full(Bytes::new()));
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            response
        } else {
            json_text_response(StatusCode::OK, body)
        };
        if let Ok(value) = HeaderValue::from_str(&etag) {
            response.headers_mut().insert(header::ETAG, value);
        }
        // Caches may keep it, but must ask again each time.
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}
