//! The operators' API under `/v1/admin`: plugins (upload, list, activate,
//! roll back, deactivate, reactivate, remove a version), department keys
//! (trust, revoke) and grant ceilings. Every route takes the bearer token
//! from the config file or an operator token of the identity provider (401
//! without, 403 wrong); every change lands on the audit log with the
//! registry change it made and who made it.

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use onething_registry::{AdminAction, Ceiling, PublicKeyFile, RegistryError};
use serde_json::{Value, json};

use super::{Api, ApiError, ApiResult, json_response, read_body};
use crate::deploy::DeployError;
use crate::service::ServiceError;

impl From<DeployError> for ApiError {
    fn from(err: DeployError) -> Self {
        let (status, code) = match &err {
            DeployError::Registry(e) => (registry_status(e), e.code()),
            DeployError::Load(_) => (StatusCode::UNPROCESSABLE_ENTITY, "plugin_load_failed"),
            DeployError::InUse { .. } => (StatusCode::CONFLICT, "version_in_use"),
            DeployError::Dir(_) => (StatusCode::INTERNAL_SERVER_ERROR, "plugin_dir"),
            DeployError::Storage(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_error"),
        };
        if status.is_server_error() {
            tracing::error!(error = %err, "admin request failed");
        }
        ApiError::new(status, code, err.to_string())
    }
}

fn registry_status(err: &RegistryError) -> StatusCode {
    match err {
        RegistryError::Malformed(_) | RegistryError::InvalidCeiling(_) | RegistryError::Key(_) => {
            StatusCode::BAD_REQUEST
        }
        RegistryError::VersionExists { .. } | RegistryError::Conflict(_) => StatusCode::CONFLICT,
        RegistryError::NotFound(_) => StatusCode::NOT_FOUND,
        RegistryError::Corrupt(_) => StatusCode::INTERNAL_SERVER_ERROR,
        RegistryError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        RegistryError::Manifest(_)
        | RegistryError::Unsigned
        | RegistryError::Algorithm(_)
        | RegistryError::UntrustedKey { .. }
        | RegistryError::RevokedKey { .. }
        | RegistryError::Tampered
        | RegistryError::WrongDepartment { .. }
        | RegistryError::GrantBeyondCeiling { .. }
        | RegistryError::WrongWorld(_) => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

fn parse_version(text: &str) -> Result<semver::Version, ApiError> {
    semver::Version::parse(text).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_version",
            format!("`{text}` is not a semantic version: {e}"),
        )
    })
}

fn string_list(body: &Value, field: &str) -> Result<Vec<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_field",
                        format!("`{field}` must be a list of strings"),
                    )
                })
            })
            .collect(),
        Some(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            format!("`{field}` must be a list of strings"),
        )),
    }
}

/// Whether the admin routes know this path (for 405 vs 404).
pub(super) fn admin_route_exists(segments: &[&str]) -> bool {
    matches!(
        segments,
        ["v1", "admin", "plugins"]
            | ["v1", "admin", "plugins", _]
            | [
                "v1",
                "admin",
                "plugins",
                _,
                "activate" | "rollback" | "deactivate" | "reactivate"
            ]
            | ["v1", "admin", "plugins", _, "versions", _]
            | ["v1", "admin", "keys"]
            | ["v1", "admin", "keys", _]
            | ["v1", "admin", "grants"]
            | ["v1", "admin", "grants", _]
    )
}

impl Api {
    /// Routes `/v1/admin/...`.
    pub(super) async fn admin(&self, segments: &[&str], req: Request<Incoming>) -> ApiResult {
        let actor = self.authorize_admin(&req)?;
        let actor = actor.as_str();
        let method = req.method().clone();
        match (&segments[2..], &method) {
            (["plugins"], &Method::GET) => self.admin_plugins().await,
            (["plugins"], &Method::POST) => self.admin_upload(req, actor).await,
            (["plugins", id], &Method::GET) => self.admin_plugin(id).await,
            (["plugins", id, "activate"], &Method::POST) => {
                self.admin_activate(id, req, actor).await
            }
            (["plugins", id, "rollback"], &Method::POST) => self
                .deployer
                .rollback(id, actor)
                .await
                .map(|s| json_response(StatusCode::OK, &json!(s)))
                .map_err(ApiError::from),
            (["plugins", id, "deactivate"], &Method::POST) => self
                .deployer
                .deactivate(id, actor)
                .await
                .map(|s| json_response(StatusCode::OK, &json!(s)))
                .map_err(ApiError::from),
            (["plugins", id, "reactivate"], &Method::POST) => {
                self.admin_reactivate(id, actor).await
            }
            (["plugins", id, "versions", version], &Method::DELETE) => {
                match parse_version(version) {
                    Ok(version) => self
                        .deployer
                        .remove(id, &version, actor)
                        .await
                        .map(|()| {
                            json_response(
                                StatusCode::OK,
                                &json!({"id": id, "removed": version.to_string()}),
                            )
                        })
                        .map_err(ApiError::from),
                    Err(e) => Err(e),
                }
            }
            (["keys"], &Method::GET) => {
                let keys = self.deployer.keys().await;
                Ok(json_response(StatusCode::OK, &json!({ "keys": keys })))
            }
            (["keys"], &Method::POST) => self.admin_trust(req, actor).await,
            (["keys", key_id], &Method::DELETE) => self
                .deployer
                .revoke_key(key_id, actor)
                .await
                .map(|(key, still_active)| {
                    let mut body = json!(key);
                    body["still_active"] = json!(still_active);
                    json_response(StatusCode::OK, &body)
                })
                .map_err(ApiError::from),
            (["grants"], &Method::GET) => {
                let ceilings = self.deployer.ceilings().await;
                Ok(json_response(
                    StatusCode::OK,
                    &json!({ "grants": ceilings }),
                ))
            }
            (["grants", department], &Method::PUT) => {
                self.admin_grants(department, req, actor).await
            }
            _ if admin_route_exists(segments) => Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{method} is not allowed here"),
            )),
            _ => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "route_not_found",
                "no such admin route (see docs/operations.md)",
            )),
        }
    }

    async fn admin_plugins(&self) -> ApiResult {
        let plugins = self.deployer.overview().await?;
        Ok(json_response(
            StatusCode::OK,
            &json!({ "plugins": plugins }),
        ))
    }

    async fn admin_plugin(&self, id: &str) -> ApiResult {
        let plugins = self.deployer.overview().await?;
        let plugin = plugins.into_iter().find(|p| p.id == id).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "plugin_not_found",
                format!("no plugin `{id}` is stored"),
            )
        })?;
        Ok(json_response(StatusCode::OK, &json!(plugin)))
    }

    async fn admin_upload(&self, req: Request<Incoming>, actor: &str) -> ApiResult {
        let activate = req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "activate=true"));
        let bytes = read_body(req, self.max_package_bytes, self.body_timeout).await?;
        if bytes.is_empty() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "package_malformed",
                "send the package file as the request body (`onething plugin deploy PACKAGE`)",
            ));
        }
        let uploaded = self.deployer.upload(&bytes, actor, activate).await?;
        let status = if uploaded.created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok(json_response(status, &json!(uploaded)))
    }

    async fn admin_activate(&self, id: &str, req: Request<Incoming>, actor: &str) -> ApiResult {
        let body = self.read_json(req).await?;
        let version = body.get("version").and_then(Value::as_str).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "send {\"version\": \"X.Y.Z\"}",
            )
        })?;
        let version = parse_version(version)?;
        let switched = self.deployer.activate(id, &version, actor).await?;
        Ok(json_response(StatusCode::OK, &json!(switched)))
    }

    async fn admin_reactivate(&self, scenario: &str, actor: &str) -> ApiResult {
        let plugin =
            self.service
                .plugins()
                .active(scenario)
                .ok_or_else(|| ServiceError::NotFound {
                    what: "scenario",
                    id: scenario.to_owned(),
                })?;
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
        Ok(json_response(
            StatusCode::OK,
            &json!({"id": scenario, "version": plugin.version(), "was_quarantined": was}),
        ))
    }

    /// Trusts a key: the body is a `.pub` file's text, or JSON
    /// `{"department", "public_key"}`.
    async fn admin_trust(&self, req: Request<Incoming>, actor: &str) -> ApiResult {
        let bytes = read_body(req, self.max_body_bytes, self.body_timeout).await?;
        let text = String::from_utf8_lossy(&bytes);
        let key = match serde_json::from_slice::<Value>(&bytes) {
            Ok(body) => {
                let department = body.get("department").and_then(Value::as_str);
                let public_key = body.get("public_key").and_then(Value::as_str);
                let (Some(department), Some(public_key)) = (department, public_key) else {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
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
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok(json_response(status, &json!(trusted)))
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
        Ok(json_response(
            StatusCode::OK,
            &json!({"department": department, "grants": ceiling}),
        ))
    }
}
