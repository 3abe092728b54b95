//! The operators' API under `/v1/admin`: plugins (upload, list, activate,
//! roll back, deactivate, reactivate, remove a version), department keys
//! (trust, revoke), grant ceilings, the place tree's import and dataset
//! refreshes. Every route takes the bearer token from the config file or an
//! operator token of the identity provider (401 without, 403 wrong;
//! `auth.rs`); every change lands on the audit log with the change it made
//! and who made it.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use onething_registry::{AdminAction, Ceiling, PublicKeyFile};
use serde_json::Value;

use super::error::{ApiError, ErrorKind};
use super::query;
use super::route::AdminRoute;
use super::views::{
    ActedView, DatasetReplacedView, GrantView, GrantsView, HeldItems, ItemView, KeysView,
    PlacesImportedView, PluginView, PluginsView, ReactivatedView, RemovedView, RevokedView,
    SwitchedView, UploadedView,
};
use super::{Api, ApiResult, json_response, ok};
use crate::deploy::DeployError;
use crate::service::ServiceError;

fn parse_version(text: &str) -> Result<semver::Version, ApiError> {
    semver::Version::parse(text).map_err(|e| {
        ApiError::new(
            ErrorKind::InvalidVersion,
            format!("`{text}` is not a semantic version: {e}"),
        )
    })
}

fn string_list(body: &Value, field: &str) -> Result<Vec<String>, ApiError> {
    let not_a_list = || {
        ApiError::new(
            ErrorKind::InvalidField,
            format!("`{field}` must be a list of strings"),
        )
    };
    match body.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(not_a_list))
            .collect(),
        Some(_) => Err(not_a_list()),
    }
}

/// The non-empty string `field` of `body`, or a 400 saying what it is for.
fn required_text(body: &Value, field: &str, what: &str) -> Result<String, ApiError> {
    match body.get(field) {
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(text.clone()),
        _ => Err(ApiError::new(
            ErrorKind::InvalidField,
            format!("field `{field}`: a non-empty string is required ({what})"),
        )),
    }
}

/// The `key=FIELD` of a dataset refresh's query: required, once, and the
/// only parameter.
fn dataset_key_field(query_text: Option<&str>) -> Result<String, ApiError> {
    let invalid = |message: String| ApiError::new(ErrorKind::InvalidQuery, message);
    let mut key = None;
    for (pair, name, value) in query::pairs(query_text) {
        match (name, value) {
            ("key", Some(field)) if !field.is_empty() && key.is_none() => {
                key = Some(field.to_owned());
            }
            ("key", _) => {
                return Err(invalid(
                    "`key` must name the records' key field once (e.g. ?key=certificate_no)".into(),
                ));
            }
            _ => return Err(invalid(format!("unknown query parameter `{pair}`"))),
        }
    }
    key.ok_or_else(|| {
        invalid("`?key=FIELD` is required: the field of each line that is its key".into())
    })
}

/// `201` for something new, `200` for what was there already.
fn created_or_ok(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

impl Api {
    /// Handles one `/v1/admin/...` route for `actor` (already authorised).
    pub(super) async fn admin(
        &self,
        route: AdminRoute<'_>,
        actor: &str,
        req: Request<Incoming>,
    ) -> ApiResult {
        match route {
            AdminRoute::Plugins => {
                let plugins = self.deployer.overview().await?;
                ok(&PluginsView {
                    plugins: plugins.iter().map(PluginView::from).collect(),
                })
            }
            AdminRoute::Upload => self.admin_upload(req, actor).await,
            AdminRoute::ImportPlaces => {
                let body = self.read_body(req, self.max_places_file_bytes).await?;
                let text = std::str::from_utf8(&body).map_err(|_| {
                    ApiError::new(ErrorKind::PlacesInvalid, "the place file is not UTF-8 text")
                })?;
                let summary = self.places.import(text, actor).await?;
                ok(&PlacesImportedView::from(summary))
            }
            AdminRoute::ReplaceDataset { department, name } => {
                self.admin_replace_dataset(department, name, req, actor)
                    .await
            }
            AdminRoute::Plugin { id } => self.admin_plugin(id).await,
            AdminRoute::Activate { id } => self.admin_activate(id, req, actor).await,
            AdminRoute::Rollback { id } => {
                let switched = self.deployer.rollback(id, actor).await?;
                ok(&SwitchedView::from(&switched))
            }
            AdminRoute::Deactivate { id } => {
                let switched = self.deployer.deactivate(id, actor).await?;
                ok(&SwitchedView::from(&switched))
            }
            AdminRoute::Reactivate { id } => self.admin_reactivate(id, actor).await,
            AdminRoute::RemoveVersion { id, version } => {
                let version = parse_version(version)?;
                self.deployer.remove(id, &version, actor).await?;
                ok(&RemovedView {
                    id,
                    removed: version.to_string(),
                })
            }
            AdminRoute::Keys => {
                let keys = self.deployer.keys().await;
                ok(&KeysView { keys: &keys })
            }
            AdminRoute::TrustKey => self.admin_trust(req, actor).await,
            AdminRoute::RevokeKey { key_id } => {
                let (key, still_active) = self.deployer.revoke_key(key_id, actor).await?;
                ok(&RevokedView {
                    key: &key,
                    still_active: &still_active,
                })
            }
            AdminRoute::Grants => {
                let ceilings = self.deployer.ceilings().await;
                ok(&GrantsView { grants: &ceilings })
            }
            AdminRoute::SetGrants { department } => self.admin_grants(department, req, actor).await,
            AdminRoute::Clock => ok(&serde_json::json!({
                "now": self.service.now(),
                "manual": self.manual_clock.is_some(),
            })),
            AdminRoute::MoveClock => self.admin_move_clock(req, actor).await,
            AdminRoute::Held => self.admin_held(req).await,
            AdminRoute::ApproveHeld { item_id } => {
                let body = self.read_json(req).await?;
                let note = required_text(
                    &body,
                    "note",
                    "what the officer should know, e.g. why it is sent although it is off the list",
                )?;
                let acted = self.service.approve_held(actor, item_id, note).await?;
                ok(&ActedView::new(
                    &acted.item,
                    &acted.case,
                    self.service.now(),
                ))
            }
            AdminRoute::RefuseHeld { item_id } => {
                let body = self.read_json(req).await?;
                let reason =
                    required_text(&body, "reason", "why it is not sent; the scenario is told")?;
                let acted = self.service.refuse_held(actor, item_id, reason).await?;
                ok(&ActedView::new(
                    &acted.item,
                    &acted.case,
                    self.service.now(),
                ))
            }
        }
    }

    /// `PUT /v1/admin/datasets/{department}/{name}?key=FIELD` with a JSON
    /// Lines body: replaces the dataset whole, all or nothing, audited.
    async fn admin_replace_dataset(
        &self,
        department: &str,
        name: &str,
        req: Request<Incoming>,
        actor: &str,
    ) -> ApiResult {
        let key = dataset_key_field(req.uri().query())?;
        let dataset = format!("{department}/{name}");
        crate::datasets::check_dataset_name(&dataset)?;
        let body = self.read_body(req, self.max_dataset_file_bytes).await?;
        let records = self.datasets.replace(&dataset, &key, &body, actor).await?;
        ok(&DatasetReplacedView {
            dataset: &dataset,
            key: &key,
            records,
        })
    }

    /// `GET /v1/admin/held[?limit=N&after=ITEM_ID]`: the review queue.
    async fn admin_held(&self, req: Request<Incoming>) -> ApiResult {
        let page = self.paging.department(req.uri().query())?;
        if page.status.is_some() {
            return Err(ApiError::new(
                ErrorKind::InvalidQuery,
                "the review queue lists held items only: use limit and after",
            ));
        }
        let mut items = self
            .service
            .held_items(page.after.as_deref(), page.limit + 1)
            .await?;
        let more = items.len() > page.limit;
        items.truncate(page.limit);
        let next_after = more.then(|| items.last().map(|i| i.id.as_str())).flatten();
        let now = self.service.now();
        ok(&HeldItems {
            items: items.iter().map(|i| ItemView::new(i, now)).collect(),
            next_after,
        })
    }

    /// `POST /v1/admin/clock` with `{"now": RFC 3339}` or
    /// `{"advance_seconds": N}`: moves the test clock forward, audited,
    /// then takes one round of the deadline loop so that what fell due is
    /// handled before the answer.
    async fn admin_move_clock(&self, req: Request<Incoming>, actor: &str) -> ApiResult {
        let Some(clock) = self.manual_clock.clone() else {
            return Err(ApiError::new(
                ErrorKind::Forbidden,
                "this host runs on the system clock: the test clock is on only with `[testing] manual_clock = true` in the config file (never in production)",
            ));
        };
        let body = self.read_json(req).await?;
        let field = |message: String| ApiError::new(ErrorKind::InvalidField, message);
        let now = self.service.now();
        let to = match (body.get("now"), body.get("advance_seconds")) {
            (Some(Value::String(text)), None) => chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|e| field(format!("field `now`: not an RFC 3339 time ({e})")))?
                .with_timezone(&chrono::Utc),
            (None, Some(seconds)) => {
                let seconds = seconds
                    .as_u64()
                    .filter(|s| *s <= 10 * 366 * 86_400)
                    .ok_or_else(|| {
                        field(
                            "field `advance_seconds`: a whole number of seconds, 0 to ten years"
                                .into(),
                        )
                    })?;
                now + chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(0))
            }
            _ => {
                return Err(field(
                    "send exactly one of {\"now\": \"2026-12-01T09:00:00+08:00\"} or {\"advance_seconds\": 3600}".into(),
                ));
            }
        };
        let backwards =
            |e: crate::service::ClockError| ApiError::new(ErrorKind::InvalidField, e.to_string());
        if to < now {
            return Err(backwards(crate::service::ClockError::Backwards {
                now,
                asked: to,
            }));
        }
        // On the record first: a move that could not be audited is not made.
        self.service
            .record_admin(
                actor,
                "clock.move",
                &to.to_rfc3339(),
                &format!("from {}", now.to_rfc3339()),
            )
            .await?;
        let before = clock.move_to(to).map_err(backwards)?;
        let told = self.service.report_overdue().await?;
        ok(&serde_json::json!({
            "now": to,
            "previous": before,
            "overdue_handled": told,
        }))
    }

    async fn admin_plugin(&self, id: &str) -> ApiResult {
        let plugins = self.deployer.overview().await?;
        let plugin = plugins.iter().find(|p| p.id == id).ok_or_else(|| {
            ApiError::new(
                ErrorKind::PluginNotFound,
                format!("no plugin `{id}` is stored"),
            )
        })?;
        ok(&PluginView::from(plugin))
    }

    async fn admin_upload(&self, req: Request<Incoming>, actor: &str) -> ApiResult {
        let activate = query::has_pair(req.uri().query(), "activate", "true");
        let bytes = self.read_body(req, self.max_package_bytes).await?;
        if bytes.is_empty() {
            return Err(ApiError::new(
                ErrorKind::PackageMalformed,
                "send the package file as the request body (`onething plugin deploy PACKAGE`)",
            ));
        }
        let uploaded = self.deployer.upload(&bytes, actor, activate).await?;
        Ok(json_response(
            created_or_ok(uploaded.created),
            &UploadedView::from(&uploaded),
        ))
    }

    async fn admin_activate(&self, id: &str, req: Request<Incoming>, actor: &str) -> ApiResult {
        let body = self.read_json(req).await?;
        let version = body.get("version").and_then(Value::as_str).ok_or_else(|| {
            ApiError::new(ErrorKind::InvalidRequest, "send {\"version\": \"X.Y.Z\"}")
        })?;
        let version = parse_version(version)?;
        let switched = self.deployer.activate(id, &version, actor).await?;
        ok(&SwitchedView::from(&switched))
    }

    async fn admin_reactivate(&self, scenario: &str, actor: &str) -> ApiResult {
        let plugin = self
            .plugins
            .active(scenario)
            .ok_or_else(|| ServiceError::no_scenario(scenario))?;
        let was = plugin.reactivate();
        self.deployer
            .audit(AdminAction {
                actor: actor.into(),
                action: "plugin.reactivate".into(),
                subject: format!("{scenario}@{}", plugin.version()),
                detail: format!("was_quarantined={was}"),
            })
            .await?;
        tracing::warn!(scenario, plugin_version = %plugin.version(), was_quarantined = was, "plugin reactivated by an operator");
        ok(&ReactivatedView {
            id: scenario,
            version: plugin.version(),
            was_quarantined: was,
        })
    }

    /// Trusts a key: the body is a `.pub` file's text, or JSON
    /// `{"department", "public_key"}`.
    async fn admin_trust(&self, req: Request<Incoming>, actor: &str) -> ApiResult {
        let bytes = self.read_body(req, self.max_body_bytes).await?;
        let text = String::from_utf8_lossy(&bytes);
        let key = match serde_json::from_slice::<Value>(&bytes) {
            Ok(body) => {
                let department = body.get("department").and_then(Value::as_str);
                let public_key = body.get("public_key").and_then(Value::as_str);
                let (Some(department), Some(public_key)) = (department, public_key) else {
                    return Err(ApiError::new(
                        ErrorKind::InvalidRequest,
                        "send a .pub file or {\"department\", \"public_key\"}",
                    ));
                };
                let parsed = onething_registry::keys::parse_public_key(public_key)
                    .map_err(|e| DeployError::Registry(e.into()))?;
                PublicKeyFile {
                    department: department.to_owned(),
                    key_id: onething_registry::keys::key_id(&parsed),
                    public_key: public_key.to_owned(),
                }
            }
            Err(_) => PublicKeyFile::parse(&text).map_err(|e| DeployError::Registry(e.into()))?,
        };
        let (trusted, created) = self.deployer.trust_key(&key, actor).await?;
        Ok(json_response(created_or_ok(created), &trusted))
    }

    async fn admin_grants(
        &self,
        department: &str,
        req: Request<Incoming>,
        actor: &str,
    ) -> ApiResult {
        let body = self.read_json(req).await?;
        let ceiling = Ceiling {
            datasets: string_list(&body, "datasets")?,
            dispatch: string_list(&body, "dispatch")?,
        };
        self.deployer
            .set_ceiling(department, ceiling.clone(), actor)
            .await?;
        ok(&GrantView {
            department,
            grants: &ceiling,
        })
    }
}
