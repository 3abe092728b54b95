//! The JSON API over HTTP/1.1 (hyper): routes, body limits, error mapping.
//!
//! Handlers read like the HTTP contract in PRODUCT.md and do nothing but
//! parse, call the [`Service`], and render. Every error is
//! `{"error": {"code", "message"}}` with a fitting status; a 5xx is answered
//! only when a plugin or the disk failed, never for bad input.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tracing::Instrument;

mod admin;

use crate::deploy::Deployer;
use crate::identity::{Caller, IdentityError, Role, Verifier};
use crate::model::{Case, ItemStatus, TimelineEvent, WorkItem};
use crate::runtime::{PluginError, ScenarioError};
use crate::service::{Applicant, CaseWithItems, Service, ServiceError};
use crate::storage::{AuditRecord, StorageError};

/// How much of an over-size body is read and thrown away so that a client
/// which does not wait for an early answer still sees its 413.
const MAX_DRAIN_BYTES: u64 = 8 * 1024 * 1024;

/// The actor recorded for changes made with the config file's admin token.
pub const ADMIN_TOKEN_ACTOR: &str = "admin";

/// The response type of every handler.
pub type HttpResponse = Response<Full<Bytes>>;

/// What the HTTP layer needs.
pub struct Api {
    service: Arc<Service>,
    deployer: Arc<Deployer>,
    max_body_bytes: usize,
    max_package_bytes: usize,
    body_timeout: Duration,
    admin_token: Option<String>,
    identity: Option<Verifier>,
}

/// An error on its way to becoming a JSON error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn into_response(self) -> HttpResponse {
        let mut response = json_response(
            self.status,
            &json!({"error": {"code": self.code, "message": self.message}}),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<IdentityError> for ApiError {
    fn from(err: IdentityError) -> Self {
        let code = match err {
            IdentityError::Missing => "unauthorized",
            IdentityError::NotConfigured => "identity_not_configured",
            _ => "invalid_token",
        };
        ApiError::new(StatusCode::UNAUTHORIZED, code, err.to_string())
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        let message = err.to_string();
        let (status, code) = match &err {
            ServiceError::NotFound { what, .. } => (
                StatusCode::NOT_FOUND,
                match *what {
                    "scenario" => "scenario_not_found",
                    "case" => "case_not_found",
                    _ => "item_not_found",
                },
            ),
            ServiceError::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            ServiceError::InvalidField { .. } => (StatusCode::BAD_REQUEST, "invalid_field"),
            ServiceError::DeviceEventsNotAccepted { .. } => {
                (StatusCode::BAD_REQUEST, "device_events_not_accepted")
            }
            ServiceError::Conflict { code, .. } => (StatusCode::CONFLICT, *code),
            ServiceError::IdempotencyKeyReused { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
            }
            ServiceError::Refused(e) => match e {
                ScenarioError::Invalid(_) => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "application_invalid")
                }
                ScenarioError::NotFound(_) => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "application_not_found")
                }
                ScenarioError::Denied(_) => (StatusCode::INTERNAL_SERVER_ERROR, "plugin_denied"),
                ScenarioError::Unavailable(_) => {
                    (StatusCode::SERVICE_UNAVAILABLE, "plugin_unavailable")
                }
            },
            ServiceError::Plugin(e) => match e {
                PluginError::Unavailable(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "plugin_instance_unavailable",
                ),
                PluginError::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "plugin_busy"),
                other => (StatusCode::INTERNAL_SERVER_ERROR, other.code()),
            },
            ServiceError::VersionUnavailable { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "plugin_version_unavailable",
            ),
            ServiceError::Quarantined { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "plugin_quarantined")
            }
            ServiceError::Storage(StorageError::Conflict { .. }) => {
                (StatusCode::CONFLICT, "concurrent_change")
            }
            ServiceError::Storage(e) => {
                tracing::error!(error = %e, "storage failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "storage_failed")
            }
        };
        ApiError::new(status, code, message)
    }
}

fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    json_text_response(status, body.to_string())
}

/// A response with `body`, already JSON text.
fn json_text_response(status: StatusCode, body: String) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

type ApiResult = Result<HttpResponse, ApiError>;

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
    /// The API over `service` and `deployer`, refusing bodies over
    /// `max_body_bytes`.
    pub fn new(service: Arc<Service>, deployer: Arc<Deployer>, max_body_bytes: usize) -> Self {
        Api {
            service,
            deployer,
            max_body_bytes,
            max_package_bytes: crate::limits::LimitsConfig::DEFAULT.max_package_bytes,
            body_timeout: std::time::Duration::from_millis(
                crate::limits::LimitsConfig::DEFAULT.body_read_timeout_ms,
            ),
            admin_token: None,
            identity: None,
        }
    }

    /// Sets the identity provider whose tokens identify citizens,
    /// departments and devices (none: those routes answer 401).
    pub fn with_identity(mut self, identity: Option<Verifier>) -> Self {
        self.identity = identity;
        self
    }

    /// The caller, if its bearer token verifies and names one of `roles`.
    fn caller(&self, req: &Request<Incoming>, roles: &[Role]) -> Result<Caller, ApiError> {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(IdentityError::Missing)?;
        let verifier = self.identity.as_ref().ok_or(IdentityError::NotConfigured)?;
        let caller = verifier.verify(token, Utc::now().timestamp())?;
        if !roles.contains(&caller.role) {
            let wanted: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "wrong_role",
                format!(
                    "this route takes a {} token; yours is a {} token",
                    wanted.join(" or "),
                    caller.role.as_str()
                ),
            ));
        }
        Ok(caller)
    }

    /// A case the caller owns; anyone else's is 404, as if it did not
    /// exist.
    async fn own_case(&self, caller: &Caller, case_id: &str) -> Result<CaseWithItems, ApiError> {
        let case = self.service.case(case_id).await?;
        if Some(&case.case.applicant) != owner(caller).as_ref() {
            return Err(ServiceError::NotFound {
                what: "case",
                id: case_id.to_owned(),
            }
            .into());
        }
        Ok(case)
    }

    /// The department a token opens; another department's queue is 404.
    fn own_department(&self, req: &Request<Incoming>, department: &str) -> Result<(), ApiError> {
        let caller = self.caller(req, &[Role::Department])?;
        if caller.subject != department {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "queue_not_found",
                format!("no work queue `{department}` for your token"),
            ));
        }
        Ok(())
    }

    /// Sets how long a client has to send a body.
    pub fn with_body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// Sets the largest package `/v1/admin/plugins` takes.
    pub fn with_max_package_bytes(mut self, max: usize) -> Self {
        self.max_package_bytes = max;
        self
    }

    /// Sets the operators' bearer token for `/v1/admin/…`.
    pub fn with_admin_token(mut self, token: Option<String>) -> Self {
        self.admin_token = token.filter(|t| !t.is_empty());
        self
    }

    /// Who is acting on the admin API: `admin` for the config file's
    /// `admin_token` (compared in constant time), or the name (`sub`) of an
    /// operator token of the configured identity provider. 401 without
    /// credentials, with an invalid or expired operator token, or when
    /// neither is configured; 403 with a token that opens nothing here (any
    /// other string, another role's token, a development-provider token).
    fn authorize_admin(&self, req: &Request<Incoming>) -> Result<String, ApiError> {
        let operators = self.identity.as_ref().filter(|v| !v.is_development());
        if self.admin_token.is_none() && operators.is_none() {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the admin API is off: set admin_token, or [identity] for operator tokens, in the config file",
            ));
        }
        let Some(given) = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send the admin token or an operator token as `Authorization: Bearer <token>`",
            ));
        };
        if let Some(expected) = &self.admin_token {
            let same = given.len() == expected.len()
                && given
                    .bytes()
                    .zip(expected.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0;
            if same {
                return Ok(ADMIN_TOKEN_ACTOR.to_owned());
            }
        }
        let forbidden = |why: String| ApiError::new(StatusCode::FORBIDDEN, "forbidden", why);
        // Only something shaped like a JWT is checked as one.
        if given.split('.').count() != 3 {
            return Err(forbidden("that token does not open the admin API".into()));
        }
        let Some(verifier) = operators else {
            return Err(forbidden(
                "that token does not open the admin API (operator tokens need a configured [identity] provider; the development provider never opens it)".into(),
            ));
        };
        let caller = verifier.verify(given, Utc::now().timestamp())?;
        if caller.role != Role::Operator {
            return Err(forbidden(format!(
                "a {} token does not open the admin API; it takes an operator token",
                caller.role.as_str()
            )));
        }
        Ok(caller.subject)
    }

    /// Handles one request; never fails (errors become JSON responses).
    pub async fn handle(&self, req: Request<Incoming>) -> Result<HttpResponse, Infallible> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let span = tracing::info_span!("request", %method, %path, status = tracing::field::Empty);
        let response = match self.route(req).instrument(span.clone()).await {
            Ok(response) => response,
            Err(err) => err.into_response(),
        };
        let status = response.status().as_u16();
        span.record("status", status);
        self.service.metrics().record_response(status);
        let elapsed_us = started.elapsed().as_micros() as u64;
        if status >= 500 {
            tracing::warn!(parent: &span, status, elapsed_us, "request failed");
        } else {
            tracing::debug!(parent: &span, status, elapsed_us, "request done");
        }
        Ok(response)
    }

    async fn route(&self, req: Request<Incoming>) -> ApiResult {
        let path = req.uri().path().to_owned();
        let segments: Vec<&str> = path
            .trim_start_matches('/')
            .trim_end_matches('/')
            .split('/')
            .collect();
        let method = req.method().clone();
        if let ["v1", "admin", ..] = segments.as_slice() {
            return self.admin(&segments, req).await;
        }
        match (segments.as_slice(), &method) {
            (["healthz"], &Method::GET) => {
                Ok(json_response(StatusCode::OK, &json!({"status": "ok"})))
            }
            (["metrics"], &Method::GET) => Ok(self.metrics()),
            (["v1", "scenarios"], &Method::GET) => Ok(self.catalogue(req.headers())),
            // A device (a sensor) reports an event: no citizen files it.
            (["v1", "scenarios", scenario, "events"], &Method::POST) => {
                let caller = self.caller(&req, &[Role::Device])?;
                let scenario = (*scenario).to_owned();
                self.apply(&scenario, Applicant::Device(caller.subject), req)
                    .await
            }
            (["v1", "scenarios", scenario, "cases"], &Method::POST) => {
                let caller = self.caller(&req, &[Role::Citizen])?;
                let scenario = (*scenario).to_owned();
                self.apply(&scenario, Applicant::Citizen(caller.subject), req)
                    .await
            }
            (["v1", "me", "access-log"], &Method::GET) => {
                let caller = self.caller(&req, &[Role::Citizen])?;
                self.access_log(&caller, req.uri().query()).await
            }
            (["v1", "cases", case_id], &Method::GET) => {
                let caller = self.caller(&req, CASE_ROLES)?;
                let case = self.own_case(&caller, case_id).await?;
                Ok(json_response(
                    StatusCode::OK,
                    &case_view(&case, self.service.now()),
                ))
            }
            (["v1", "cases", case_id, "cancel"], &Method::POST) => {
                let caller = self.caller(&req, CASE_ROLES)?;
                self.own_case(&caller, case_id).await?;
                let case_id = (*case_id).to_owned();
                self.cancel(&case_id, req).await
            }
            (
                [
                    "v1",
                    "cases",
                    case_id,
                    "evidence",
                    answer @ ("confirm" | "decline"),
                ],
                &Method::POST,
            ) => {
                let caller = self.caller(&req, CASE_ROLES)?;
                self.own_case(&caller, case_id).await?;
                let answer = if *answer == "confirm" {
                    "confirmed"
                } else {
                    "declined"
                };
                let case = self
                    .service
                    .supplement(case_id, json!({ "evidence": answer }))
                    .await?;
                Ok(json_response(
                    StatusCode::OK,
                    &case_view(&case, self.service.now()),
                ))
            }
            (["v1", "cases", case_id, "supplements"], &Method::POST) => {
                let caller = self.caller(&req, CASE_ROLES)?;
                self.own_case(&caller, case_id).await?;
                let case_id = (*case_id).to_owned();
                self.supplement(&case_id, req).await
            }
            (["v1", "departments", dept, "items"], &Method::GET) => {
                self.own_department(&req, dept)?;
                self.department_items(dept, req.uri().query()).await
            }
            (["v1", "departments", dept, "items", item, "complete"], &Method::POST) => {
                self.own_department(&req, dept)?;
                let (dept, item) = ((*dept).to_owned(), (*item).to_owned());
                self.complete(&dept, &item, req).await
            }
            (["v1", "departments", dept, "items", item, "reject"], &Method::POST) => {
                self.own_department(&req, dept)?;
                let (dept, item) = ((*dept).to_owned(), (*item).to_owned());
                self.reject(&dept, &item, req).await
            }
            (known, _) if route_exists(known) => Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{method} is not allowed on {path}"),
            )),
            _ => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "route_not_found",
                format!("no route for {method} {path}; see GET /v1/scenarios"),
            )),
        }
    }

    fn metrics(&self) -> HttpResponse {
        let active: Vec<(String, String)> = self
            .service
            .plugins()
            .catalogue()
            .iter()
            .map(|p| (p.manifest().id.clone(), p.version().to_owned()))
            .collect();
        let mut response = Response::new(Full::new(Bytes::from(
            self.service
                .metrics()
                .render(&active, self.service.writer_stats()),
        )));
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
    fn catalogue(&self, headers: &HeaderMap) -> HttpResponse {
        let scenarios: Vec<Value> = self
            .service
            .plugins()
            .catalogue()
            .iter()
            .map(|plugin| {
                let info = plugin.info();
                json!({
                    "id": info.id,
                    "version": plugin.version(),
                    "title": info.title,
                    "description": info.description,
                    "department": plugin.manifest().department,
                    "departments": info.departments,
                    "fields": info.fields,
                })
            })
            .collect();
        let body = json!({"scenarios": scenarios}).to_string();
        let etag = {
            use sha2::{Digest, Sha256};
            format!("\"{}\"", hex::encode(Sha256::digest(body.as_bytes())))
        };
        let mut response = if none_match_hits(headers, &etag) {
            let mut response = Response::new(Full::new(Bytes::new()));
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

    async fn apply(
        &self,
        scenario: &str,
        applicant: Applicant,
        req: Request<Incoming>,
    ) -> ApiResult {
        let key = match req.headers().get("idempotency-key") {
            Some(value) => {
                let key = value.to_str().ok().map(str::trim).unwrap_or_default();
                if key.is_empty() || key.len() > 255 {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_idempotency_key",
                        "Idempotency-Key must be 1 to 255 visible ASCII characters",
                    ));
                }
                Some(key.to_owned())
            }
            None => None,
        };
        // An unknown scenario, or one that does not take this caller's
        // cases, is answered before the body is read.
        self.service.accepting(scenario, &applicant)?;
        let application = self.read_json(req).await?;
        let applied = self
            .service
            .apply_as(scenario, application, key, applicant)
            .await?;
        let now = self.service.now();
        let body = json!({
            "case_id": applied.case.case.id,
            "status": applied.case.case.status,
            "message": applied.case.case.message,
            "items": applied.case.items.iter().map(|i| item_summary(i, now)).collect::<Vec<_>>(),
        });
        let mut response = json_response(StatusCode::CREATED, &body);
        response.headers_mut().insert(
            header::LOCATION,
            HeaderValue::from_str(&format!("/v1/cases/{}", applied.case.case.id))
                .unwrap_or_else(|_| HeaderValue::from_static("/v1/cases")),
        );
        if applied.replayed {
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        Ok(response)
    }

    /// `GET /v1/me/access-log[?after=SEQ&limit=N]`: every read of the
    /// caller's data, oldest first. A read of their own record in someone
    /// else's case shows no case; a read of someone else's record in their
    /// case shows no key.
    async fn access_log(&self, caller: &Caller, query: Option<&str>) -> ApiResult {
        let mut after = 0u64;
        let mut limit = 100usize;
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let bad = || {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    format!("`{pair}`: use after=SEQ and limit=1..1000"),
                )
            };
            match pair.split_once('=') {
                Some(("after", v)) => after = v.parse().map_err(|_| bad())?,
                Some(("limit", v)) => {
                    limit = v.parse().map_err(|_| bad())?;
                    if !(1..=1000).contains(&limit) {
                        return Err(bad());
                    }
                }
                _ => return Err(bad()),
            }
        }
        let entries = self
            .service
            .access_log(&caller.subject, after.saturating_add(1), limit)
            .await?;
        let next = (entries.len() == limit)
            .then(|| entries.last().map(|e| e.seq))
            .flatten();
        let rows: Vec<Value> = entries
            .iter()
            .filter_map(|entry| {
                let AuditRecord::DataRead {
                    plugin,
                    version,
                    case_id,
                    applicant,
                    dataset,
                    key,
                    purpose,
                    allowed,
                } = &entry.record
                else {
                    return None;
                };
                let yours = *applicant == caller.subject;
                let your_record = *key == caller.subject;
                Some(json!({
                    "seq": entry.seq,
                    "at": entry.at,
                    "department": dataset.split_once('/').map_or(dataset.as_str(), |(d, _)| d),
                    "dataset": dataset,
                    "scenario": plugin,
                    "plugin_version": version,
                    "purpose": purpose,
                    "allowed": allowed,
                    "record": if your_record { "yours" } else { "read for your case" },
                    "case_id": yours.then_some(case_id),
                    "key": your_record.then_some(key),
                }))
            })
            .collect();
        Ok(json_response(
            StatusCode::OK,
            &json!({"subject": caller.subject, "reads": rows, "next_after": next}),
        ))
    }

    async fn supplement(&self, case_id: &str, req: Request<Incoming>) -> ApiResult {
        // Unknown cases are answered before the body is read.
        self.service.case(case_id).await?;
        let material = self.read_json(req).await?;
        if !material.is_object() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the supplement must be a JSON object",
            ));
        }
        let case = self.service.supplement(case_id, material).await?;
        Ok(json_response(
            StatusCode::OK,
            &case_view(&case, self.service.now()),
        ))
    }

    async fn cancel(&self, case_id: &str, req: Request<Incoming>) -> ApiResult {
        // The body is optional: `{"reason": "..."}`.
        let has_body = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
            || req.headers().contains_key(header::TRANSFER_ENCODING);
        let reason = if has_body {
            match self.read_json(req).await?.get("reason") {
                None => String::new(),
                Some(Value::String(reason)) => reason.trim().to_owned(),
                Some(_) => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_field",
                        "field `reason`: must be a string",
                    ));
                }
            }
        } else {
            String::new()
        };
        let case = self.service.withdraw(case_id, reason).await?;
        Ok(json_response(
            StatusCode::OK,
            &case_view(&case, self.service.now()),
        ))
    }

    /// A page of a department's queue: `?status=`, `limit=1..1000`
    /// (default 500), `after=ITEM_ID` (the `next_after` of the previous
    /// page; null when no page follows).
    async fn department_items(&self, department: &str, query: Option<&str>) -> ApiResult {
        let mut status = None;
        let mut after = None;
        let mut limit = 500usize;
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "status" => {
                    status = Some(ItemStatus::parse(value).ok_or_else(|| {
                        ApiError::new(
                            StatusCode::BAD_REQUEST,
                            "invalid_query",
                            format!("status `{value}` is not one of: pending, completed, rejected, cancelled"),
                        )
                    })?);
                }
                "limit" => {
                    limit = value
                        .parse()
                        .ok()
                        .filter(|l| (1..=1000).contains(l))
                        .ok_or_else(|| {
                            ApiError::new(
                                StatusCode::BAD_REQUEST,
                                "invalid_query",
                                format!("limit `{value}` is not a number from 1 to 1000"),
                            )
                        })?;
                }
                "after" if !value.is_empty() => after = Some(value.to_owned()),
                "after" => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_query",
                        "after: give the `next_after` item id of the previous page",
                    ));
                }
                other => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_query",
                        format!("unknown query parameter `{other}`; use status, limit and after"),
                    ));
                }
            }
        }
        // One more than asked for tells whether another page follows, so
        // that `next_after` is null on the last page itself.
        let mut items = self
            .service
            .department_items(department, status, after.as_deref(), limit + 1)
            .await?;
        let more = items.len() > limit;
        items.truncate(limit);
        let next = more.then(|| items.last().map(|i| i.id.clone())).flatten();
        let now = self.service.now();
        let items: Vec<Value> = items.iter().map(|i| item_view(i, now)).collect();
        Ok(json_response(
            StatusCode::OK,
            &json!({"department": department, "items": items, "next_after": next}),
        ))
    }

    async fn complete(&self, department: &str, item_id: &str, req: Request<Incoming>) -> ApiResult {
        let body = self.read_json(req).await?;
        let result = match body.get("result") {
            Some(result @ Value::Object(_)) => result.clone(),
            Some(_) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_field",
                    "field `result`: must be a JSON object",
                ));
            }
            None => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_field",
                    "field `result`: is required, e.g. {\"result\": {\"household_no\": \"...\"}}",
                ));
            }
        };
        let acted = self
            .service
            .complete_item(department, item_id, result)
            .await?;
        Ok(json_response(
            StatusCode::OK,
            &acted_view(&acted.item, &acted.case, self.service.now()),
        ))
    }

    async fn reject(&self, department: &str, item_id: &str, req: Request<Incoming>) -> ApiResult {
        let body = self.read_json(req).await?;
        let reason = match body.get("reason") {
            Some(Value::String(reason)) if !reason.trim().is_empty() => reason.clone(),
            Some(Value::String(_)) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_field",
                    "field `reason`: must not be empty; say what the applicant must fix",
                ));
            }
            Some(_) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_field",
                    "field `reason`: must be a string",
                ));
            }
            None => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_field",
                    "field `reason`: is required",
                ));
            }
        };
        let acted = self
            .service
            .reject_item(department, item_id, reason)
            .await?;
        Ok(json_response(
            StatusCode::OK,
            &acted_view(&acted.item, &acted.case, self.service.now()),
        ))
    }

    /// Reads a JSON body of at most `max_body_bytes`. A declared
    /// Content-Length over the limit is refused before the body is read.
    async fn read_json(&self, req: Request<Incoming>) -> Result<Value, ApiError> {
        let bytes = read_body(req, self.max_body_bytes, self.body_timeout).await?;
        if bytes.is_empty() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "a JSON body is required",
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the request body is not valid JSON: {e}"),
            )
        })
    }
}

/// Reads a body of at most `max` bytes. A declared Content-Length over the
/// limit is refused before the body is read.
async fn read_body(
    req: Request<Incoming>,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
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
        if !expects_continue && length <= MAX_DRAIN_BYTES {
            drain(req.into_body()).await;
        }
        return Err(too_large());
    }
    let limited = Limited::new(req.into_body(), max);
    let collected = tokio::time::timeout(timeout, limited.collect())
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
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
            StatusCode::BAD_REQUEST,
            "unreadable_body",
            format!("the request body could not be read: {err}"),
        )),
    }
}

/// Who may see and act on a case: its applicant, a citizen or a device (a
/// device's case, from `POST /v1/scenarios/{s}/events`, belongs to that
/// device alone: `sensor:ID`; no citizen's token opens it).
const CASE_ROLES: &[Role] = &[Role::Citizen, Role::Device];

/// The `applicant` of the cases `caller` opens.
fn owner(caller: &Caller) -> Option<String> {
    match caller.role {
        Role::Citizen => Applicant::Citizen(caller.subject.clone()).owner(),
        Role::Device => Applicant::Device(caller.subject.clone()).owner(),
        Role::Department | Role::Operator => None,
    }
}

/// Reads and discards a body, bounded in time.
async fn drain(body: Incoming) {
    let _ = tokio::time::timeout(Duration::from_secs(5), body.collect()).await;
}

fn route_exists(segments: &[&str]) -> bool {
    matches!(
        segments,
        ["healthz"]
            | ["metrics"]
            | ["v1", "scenarios"]
            | ["v1", "scenarios", _, "cases" | "events"]
            | ["v1", "me", "access-log"]
            | ["v1", "cases", _]
            | ["v1", "cases", _, "supplements" | "cancel"]
            | ["v1", "cases", _, "evidence", "confirm" | "decline"]
            | ["v1", "departments", _, "items"]
            | ["v1", "departments", _, "items", _, "complete" | "reject"]
    )
}

/// An item as the applicant sees it.
fn item_summary(item: &WorkItem, now: DateTime<Utc>) -> Value {
    json!({
        "item_id": item.id,
        "department": item.department,
        "task": item.task,
        "status": item.status,
        "due": item.due,
        "due_at": item.due_at,
        "deadline": item.deadline_state(now),
    })
}

/// An item as its department sees it.
fn item_view(item: &WorkItem, now: DateTime<Utc>) -> Value {
    json!({
        "deadline": item.deadline_state(now),
        "overdue_reported_at": item.overdue_at,
        "item_id": item.id,
        "case_id": item.case_id,
        "scenario": item.scenario,
        "department": item.department,
        "task": item.task,
        "payload": item.payload,
        "status": item.status,
        "due": item.due,
        "due_at": item.due_at,
        "created_at": item.created_at,
        "finished_at": item.finished_at,
        "result": item.result,
        "reason": item.reason,
    })
}

fn case_view(case: &CaseWithItems, now: DateTime<Utc>) -> Value {
    let c = &case.case;
    let items: Vec<Value> = case
        .items
        .iter()
        .map(|item| {
            let mut view = item_summary(item, now);
            if let Value::Object(map) = &mut view {
                map.insert("finished_at".into(), json!(item.finished_at));
                map.insert("result".into(), json!(item.result));
                map.insert("reason".into(), json!(item.reason));
            }
            view
        })
        .collect();
    // Where each piece of evidence came from: every data read on record for
    // the case (the applicant previews them before confirming).
    let evidence: Vec<Value> = c
        .timeline
        .iter()
        .filter_map(|entry| match &entry.event {
            TimelineEvent::DataRead {
                dataset,
                purpose,
                allowed,
                found,
            } => Some(json!({
                "at": entry.at,
                "department": dataset.split('/').next().unwrap_or_default(),
                "dataset": dataset,
                "purpose": purpose,
                "allowed": allowed,
                "found": found,
            })),
            _ => None,
        })
        .collect();
    json!({
        "case_id": c.id,
        "scenario": c.scenario,
        "evidence": evidence,
        "plugin_version": c.plugin_version,
        "applicant": c.applicant,
        "status": c.status,
        "message": c.message,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "items": items,
        "timeline": c.timeline,
    })
}

fn acted_view(item: &WorkItem, case: &Case, now: DateTime<Utc>) -> Value {
    json!({
        "item": item_view(item, now),
        "case": {"case_id": case.id, "status": case.status, "message": case.message},
    })
}
