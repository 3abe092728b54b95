//! The JSON API over HTTP/1.1 (hyper): the server side. [`Api`] holds what
//! the handlers need; [`Api::handle`] parses each request into one
//! [`Route`] (the one route table, `route.rs`), checks who is calling when
//! the route needs it, and dispatches to the handler in the file named for
//! its caller:
//!
//! - `public.rs`: `GET /healthz`, `GET /metrics`, `GET /v1/scenarios`,
//!   `GET /v1/places` (the place tree is not secret: open like the
//!   catalogue);
//! - `citizen.rs`: applying, a case and what its applicant does to it, the
//!   access log;
//! - `device.rs`: a device's event (`POST /v1/scenarios/{s}/events`);
//! - `department.rs`: a department's queue, complete, reject;
//! - `admin.rs`: `/v1/admin/…` for operators;
//! - `ops.rs`: `/v1/ops/…` for the operations centre (the live stream).
//!
//! Around them: `auth.rs` (the bearer token and the caller), `query.rs`
//! (query strings and paging), `views.rs` (every response body) and
//! `error.rs` (every error, with the one table of status and code). Handlers
//! read like the HTTP contract in PRODUCT.md and do nothing but parse, call
//! the [`Service`] or the [`Deployer`], and render.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

mod admin;
mod auth;
mod citizen;
mod department;
mod device;
pub mod error;
mod ops;
mod public;
mod query;
pub mod route;
pub mod views;

pub use error::{ApiError, ErrorKind};
pub use route::{AdminRoute, NoRoute, Route};

use crate::datasets::Datasets;
use crate::deploy::Deployer;
use crate::identity::Verifier;
use crate::limits::LimitsConfig;
use crate::metrics::Metrics;
use crate::places::Places;
use crate::plugins::PluginSet;
use crate::service::{ManualClock, Service};
use crate::storage::WriterStats;
use query::Paging;

/// The actor recorded for changes made with the config file's admin token.
pub const ADMIN_TOKEN_ACTOR: &str = "admin";

/// The body of every response: a whole JSON or text body, or the
/// operations stream's events as they come (`ops.rs`).
pub type HttpBody = BoxBody<Bytes, Infallible>;

/// The response type of every handler.
pub type HttpResponse = Response<HttpBody>;

/// A whole body of `bytes`.
fn full(bytes: impl Into<Bytes>) -> HttpBody {
    Full::new(bytes.into()).boxed()
}

/// Where `GET /metrics` reads what the storage writer has done so far
/// (none for a backend without one).
pub type WriterStatsSource = Arc<dyn Fn() -> Option<WriterStats> + Send + Sync>;

/// What the HTTP layer needs.
pub struct Api {
    service: Arc<Service>,
    deployer: Arc<Deployer>,
    plugins: Arc<PluginSet>,
    places: Arc<Places>,
    datasets: Arc<Datasets>,
    metrics: Arc<Metrics>,
    writer_stats: WriterStatsSource,
    max_body_bytes: usize,
    max_places_file_bytes: usize,
    max_dataset_file_bytes: usize,
    max_package_bytes: usize,
    max_drain_bytes: u64,
    drain_timeout: Duration,
    max_idempotency_key_bytes: usize,
    paging: Paging,
    body_timeout: Duration,
    admin_token: Option<String>,
    identity: Option<Verifier>,
    manual_clock: Option<Arc<ManualClock>>,
    ops_streams: Arc<tokio::sync::Semaphore>,
}

type ApiResult = Result<HttpResponse, ApiError>;

/// A JSON response of `body` with `status`.
fn json_response(status: StatusCode, body: &impl Serialize) -> HttpResponse {
    json_text_response(status, serde_json::to_string(body).unwrap_or_default())
}

/// A response with `body`, already JSON text.
fn json_text_response(status: StatusCode, body: String) -> HttpResponse {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A `200` JSON response of `body`.
fn ok(body: &impl Serialize) -> ApiResult {
    Ok(json_response(StatusCode::OK, body))
}

impl Api {
    /// The API over `service`, `deployer`, `places` and `datasets`, rendering the
    /// scenarios of `plugins` and the counters of `metrics` and
    /// `writer_stats`, with every limit at its default (see
    /// [`Api::with_limits`]).
    pub fn new(
        service: Arc<Service>,
        deployer: Arc<Deployer>,
        plugins: Arc<PluginSet>,
        places: Arc<Places>,
        datasets: Arc<Datasets>,
        metrics: Arc<Metrics>,
        writer_stats: WriterStatsSource,
    ) -> Self {
        Api {
            service,
            deployer,
            plugins,
            places,
            datasets,
            metrics,
            writer_stats,
            max_body_bytes: 0,
            max_places_file_bytes: 0,
            max_dataset_file_bytes: 0,
            max_package_bytes: 0,
            max_drain_bytes: 0,
            drain_timeout: Duration::ZERO,
            max_idempotency_key_bytes: 0,
            paging: Paging::new(&LimitsConfig::DEFAULT),
            body_timeout: Duration::ZERO,
            admin_token: None,
            identity: None,
            manual_clock: None,
            ops_streams: Arc::new(tokio::sync::Semaphore::new(0)),
        }
        .with_limits(&LimitsConfig::DEFAULT)
    }

    /// Sets the limits the API enforces: body and package sizes, the time
    /// a body may take, the `Idempotency-Key` length, paging, draining.
    pub fn with_limits(mut self, limits: &LimitsConfig) -> Self {
        let limits = &limits.floored();
        self.max_body_bytes = limits.max_body_bytes;
        self.max_package_bytes = limits.max_package_bytes;
        self.max_places_file_bytes = limits.max_places_file_bytes;
        self.max_dataset_file_bytes = limits.max_dataset_file_bytes;
        self.max_drain_bytes = u64::try_from(limits.max_drain_bytes).unwrap_or(u64::MAX);
        self.drain_timeout = Duration::from_millis(limits.drain_timeout_ms);
        self.max_idempotency_key_bytes = limits.max_idempotency_key_bytes;
        self.paging = Paging::new(limits);
        self.body_timeout = Duration::from_millis(limits.body_read_timeout_ms);
        self.ops_streams = Arc::new(tokio::sync::Semaphore::new(limits.max_ops_streams));
        self
    }

    /// Sets the identity provider whose tokens identify citizens,
    /// departments and devices (none: those routes answer 401).
    pub fn with_identity(mut self, identity: Option<Verifier>) -> Self {
        self.identity = identity;
        self
    }

    /// Sets the clock that `POST /v1/admin/clock` moves (`[testing]
    /// manual_clock`; none: the route is refused).
    pub fn with_manual_clock(mut self, clock: Option<Arc<ManualClock>>) -> Self {
        self.manual_clock = clock;
        self
    }

    /// Sets the operators' bearer token for `/v1/admin/…`.
    pub fn with_admin_token(mut self, token: Option<String>) -> Self {
        self.admin_token = token.filter(|t| !t.is_empty());
        self
    }

    /// Handles one request; never fails (errors become JSON responses).
    pub async fn handle(&self, req: Request<Incoming>) -> Result<HttpResponse, Infallible> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let span = tracing::info_span!("request", %method, %path, status = tracing::field::Empty);
        let response = match self.dispatch(req).instrument(span.clone()).await {
            Ok(response) => response,
            Err(err) => err.into_response(),
        };
        let status = response.status().as_u16();
        span.record("status", status);
        self.metrics.record_response(status);
        let elapsed_us = started.elapsed().as_micros() as u64;
        if status >= 500 {
            tracing::warn!(parent: &span, status, elapsed_us, "request failed");
        } else {
            tracing::debug!(parent: &span, status, elapsed_us, "request done");
        }
        Ok(response)
    }

    /// Parses the request's route and calls its handler.
    async fn dispatch(&self, req: Request<Incoming>) -> ApiResult {
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        let route = match Route::parse(&method, &path) {
            Ok(route) => route,
            Err(no) => return Err(self.no_route(&req, no, &method, &path)),
        };
        match route {
            Route::Healthz => Ok(self.healthz()),
            Route::Metrics => Ok(self.metrics()),
            Route::Catalogue => Ok(self.catalogue(req.headers())),
            Route::DeviceEvent { scenario } => self.device_event(scenario, req).await,
            Route::Apply { scenario } => self.citizen_apply(scenario, req).await,
            Route::AccessLog => self.access_log(req).await,
            Route::Places => self.places(req.uri().query()).await,
            Route::Case { case_id } => self.case(case_id, req).await,
            Route::Cancel { case_id } => self.cancel(case_id, req).await,
            Route::Evidence { case_id, confirm } => self.evidence(case_id, confirm, req).await,
            Route::Supplement { case_id } => self.supplement(case_id, req).await,
            Route::DepartmentItems { department } => self.department_items(department, req).await,
            Route::Complete {
                department,
                item_id,
            } => self.complete(department, item_id, req).await,
            Route::Reject {
                department,
                item_id,
            } => self.reject(department, item_id, req).await,
            Route::OpsOverview => {
                let reader = self.authorize_ops(&req)?;
                self.ops_overview(&reader, &req).await
            }
            Route::OpsRanking => {
                let reader = self.authorize_ops(&req)?;
                self.ops_ranking(&reader, &req).await
            }
            Route::OpsStream => {
                let reader = self.authorize_ops(&req)?;
                self.ops_stream(&reader, &req)
            }
            Route::Report {
                department,
                item_id,
            } => self.report(department, item_id, req).await,
            Route::Admin(route) => {
                let actor = self.authorize_admin(&req)?;
                self.admin(route, &actor, req).await
            }
        }
    }

    /// 404 or 405; under `/v1/admin` only to an operator, in the admin
    /// API's words.
    fn no_route(
        &self,
        req: &Request<Incoming>,
        no: NoRoute,
        method: &Method,
        path: &str,
    ) -> ApiError {
        if no.admin
            && let Err(unauthorized) = self.authorize_admin(req)
        {
            return unauthorized;
        }
        match (no.known_path, no.admin) {
            (true, false) => ApiError::new(
                ErrorKind::MethodNotAllowed,
                format!("{method} is not allowed on {path}"),
            ),
            (false, false) => ApiError::new(
                ErrorKind::RouteNotFound,
                format!("no route for {method} {path}; see GET /v1/scenarios"),
            ),
            (true, true) => ApiError::new(
                ErrorKind::MethodNotAllowed,
                format!("{method} is not allowed here"),
            ),
            (false, true) => ApiError::new(
                ErrorKind::RouteNotFound,
                "no such admin route (see docs/operations.md)",
            ),
        }
    }

    /// Reads a JSON body of at most `max_body_bytes`. A declared
    /// Content-Length over the limit is refused before the body is read.
    async fn read_json(&self, req: Request<Incoming>) -> Result<Value, ApiError> {
        let bytes = self.read_body(req, self.max_body_bytes).await?;
        if bytes.is_empty() {
            return Err(ApiError::new(
                ErrorKind::MalformedJson,
                "a JSON body is required",
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                ErrorKind::MalformedJson,
                format!("the request body is not valid JSON: {e}"),
            )
        })
    }

    /// Reads a body of at most `max` bytes. A declared Content-Length over
    /// the limit is refused before the body is read.
    async fn read_body(&self, req: Request<Incoming>, max: usize) -> Result<Bytes, ApiError> {
        let timeout = self.body_timeout;
        let too_large = || {
            ApiError::new(
                ErrorKind::PayloadTooLarge,
                format!("the request body is larger than {max} bytes"),
            )
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(length) = declared
            && length > max as u64
        {
            let expects_continue = req
                .headers()
                .get(header::EXPECT)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
            if !expects_continue && length <= self.max_drain_bytes {
                drain(req.into_body(), self.drain_timeout).await;
            }
            return Err(too_large());
        }
        let limited = Limited::new(req.into_body(), max);
        let collected = tokio::time::timeout(timeout, limited.collect())
            .await
            .map_err(|_| {
                ApiError::new(
                    ErrorKind::BodyTimeout,
                    format!(
                        "the request body did not arrive within {} ms",
                        timeout.as_millis()
                    ),
                )
            })?;
        match collected {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
            Err(err) => Err(ApiError::new(
                ErrorKind::UnreadableBody,
                format!("the request body could not be read: {err}"),
            )),
        }
    }
}

/// Reads and discards a body, bounded in time.
async fn drain(body: Incoming, timeout: Duration) {
    let _ = tokio::time::timeout(timeout, body.collect()).await;
}
