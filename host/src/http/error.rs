//! Every error of the API on its way to a JSON response: [`ApiError`],
//! the `From` of every error the layers below return, and the one table
//! ([`ErrorKind::status_and_code`]) from what went wrong to the status and
//! the machine-readable code the caller sees.
//!
//! A response is `{"error": {"code", "message"}}`; a 401 also says
//! `WWW-Authenticate: Bearer`. A 5xx is answered only when a plugin, the
//! disk or the host failed, never for bad input.

use hyper::StatusCode;
use hyper::header::{self, HeaderValue};
use onething_registry::RegistryError;
use serde::Serialize;

use super::{HttpResponse, json_response};
use crate::datasets::ImportError;
use crate::deploy::DeployError;
use crate::identity::IdentityError;
use crate::places::PlacesError;
use crate::runtime::{PluginError, ScenarioError};
use crate::service::ServiceError;
use crate::storage::StorageError;

/// What went wrong, as the API tells it apart. Each kind has one status and
/// one code ([`ErrorKind::status_and_code`]); the kinds that carry a code
/// pass on a code of the layer below (a case conflict's, a plugin
/// failure's, the registry's) inside their fixed status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    // ---- routing and request shape ------------------------------------
    /// No endpoint has this path.
    RouteNotFound,
    /// The path is an endpoint's, the method is not.
    MethodNotAllowed,
    /// A query parameter is unknown or out of bounds.
    InvalidQuery,
    /// A body field is missing or of the wrong type.
    InvalidField,
    /// The request is not well formed.
    InvalidRequest,
    /// The body is not JSON.
    MalformedJson,
    /// The body is over the limit.
    PayloadTooLarge,
    /// The body did not arrive in time.
    BodyTimeout,
    /// The body could not be read.
    UnreadableBody,
    /// The `Idempotency-Key` header is empty, too long or not ASCII.
    InvalidIdempotencyKey,
    /// A version in the path or body is not semantic.
    InvalidVersion,
    /// An upload sent no package.
    PackageMalformed,
    // ---- who is calling ------------------------------------------------
    /// No credentials.
    Unauthorized,
    /// A valid token of a role this route does not take.
    WrongRole,
    /// A token that does not verify.
    InvalidToken,
    /// No identity provider to verify tokens with.
    IdentityNotConfigured,
    /// Credentials that open nothing here.
    Forbidden,
    /// 403: an item in the officer's area that another office owns.
    NotOwner,
    /// 403: an application for someone else without their mandate.
    NoMandate,
    /// 403: a caller of a role the scenario's `applicants` does not name.
    WrongApplicant,
    // ---- what is not there ---------------------------------------------
    /// No such scenario.
    ScenarioNotFound,
    /// No such case (or not the caller's).
    CaseNotFound,
    /// No such item (or not in this department).
    ItemNotFound,
    /// Not the caller's department's queue.
    QueueNotFound,
    /// No such stored plugin (admin).
    PluginNotFound,
    /// No such place (`under=` of the place listing).
    PlaceNotFound,
    // ---- the case and its scenario -------------------------------------
    /// The scenario takes no device events.
    DeviceEventsNotAccepted,
    /// The case's or item's state does not allow this (its own code).
    CaseConflict(&'static str),
    /// The case changed while this request ran.
    ConcurrentChange,
    /// An `Idempotency-Key` reused for another application.
    IdempotencyKeyReused,
    /// The scenario refused the application as invalid.
    ApplicationInvalid,
    /// The scenario found something needed missing.
    ApplicationNotFound,
    /// The scenario denied the request.
    PluginDenied,
    /// The scenario says a dependency is out of reach.
    PluginUnavailable,
    /// No plugin instance slot is free.
    PluginInstanceUnavailable,
    /// The plugin runs as many calls as it may.
    PluginBusy,
    /// As many operations streams are open as `max_ops_streams` allows.
    TooManyStreams,
    /// The plugin failed (its own code: timeout, trap, memory, answer).
    PluginFailed(&'static str),
    /// The version a case is pinned to is not loaded.
    PluginVersionUnavailable,
    /// The scenario's active version is quarantined.
    PluginQuarantined,
    // ---- deployment (admin) --------------------------------------------
    /// The registry refused the input (its own code).
    RegistryBadInput(&'static str),
    /// The registry refused the package or key (its own code).
    RegistryRefused(&'static str),
    /// The registry's state does not allow this (its own code).
    RegistryConflict(&'static str),
    /// The registry has no such record (its own code).
    RegistryNotFound(&'static str),
    /// A registry record is damaged.
    RegistryCorrupt,
    /// The package passed the registry but does not load.
    PluginLoadFailed,
    /// A version that open cases are pinned to.
    VersionInUse,
    /// A plugin directory could not be read.
    PluginDir,
    /// A place import was refused (the message names the line).
    PlacesInvalid,
    /// A dataset refresh was refused (a bad name, or the message names the
    /// line); nothing was changed.
    DatasetInvalid,
    // ---- the host ------------------------------------------------------
    /// Storage failed: the same answer wherever it happens.
    StorageUnavailable,
}

impl ErrorKind {
    /// The table: the status and the code of each kind.
    pub fn status_and_code(self) -> (StatusCode, &'static str) {
        use ErrorKind as K;
        match self {
            K::RouteNotFound => (StatusCode::NOT_FOUND, "route_not_found"),
            K::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            K::InvalidQuery => (StatusCode::BAD_REQUEST, "invalid_query"),
            K::InvalidField => (StatusCode::BAD_REQUEST, "invalid_field"),
            K::InvalidRequest => (StatusCode::BAD_REQUEST, "invalid_request"),
            K::MalformedJson => (StatusCode::BAD_REQUEST, "malformed_json"),
            K::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            K::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, "body_timeout"),
            K::UnreadableBody => (StatusCode::BAD_REQUEST, "unreadable_body"),
            K::InvalidIdempotencyKey => (StatusCode::BAD_REQUEST, "invalid_idempotency_key"),
            K::InvalidVersion => (StatusCode::BAD_REQUEST, "invalid_version"),
            K::PackageMalformed => (StatusCode::BAD_REQUEST, "package_malformed"),
            K::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            K::WrongRole => (StatusCode::UNAUTHORIZED, "wrong_role"),
            K::InvalidToken => (StatusCode::UNAUTHORIZED, "invalid_token"),
            K::IdentityNotConfigured => (StatusCode::UNAUTHORIZED, "identity_not_configured"),
            K::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            K::NotOwner => (StatusCode::FORBIDDEN, "not_owner"),
            K::NoMandate => (StatusCode::FORBIDDEN, "no_mandate"),
            K::WrongApplicant => (StatusCode::FORBIDDEN, "wrong_applicant"),
            K::ScenarioNotFound => (StatusCode::NOT_FOUND, "scenario_not_found"),
            K::CaseNotFound => (StatusCode::NOT_FOUND, "case_not_found"),
            K::ItemNotFound => (StatusCode::NOT_FOUND, "item_not_found"),
            K::QueueNotFound => (StatusCode::NOT_FOUND, "queue_not_found"),
            K::PluginNotFound => (StatusCode::NOT_FOUND, "plugin_not_found"),
            K::PlaceNotFound => (StatusCode::NOT_FOUND, "place_not_found"),
            K::DeviceEventsNotAccepted => (StatusCode::BAD_REQUEST, "device_events_not_accepted"),
            K::CaseConflict(code) => (StatusCode::CONFLICT, code),
            K::ConcurrentChange => (StatusCode::CONFLICT, "concurrent_change"),
            K::IdempotencyKeyReused => (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            K::ApplicationInvalid => (StatusCode::UNPROCESSABLE_ENTITY, "application_invalid"),
            K::ApplicationNotFound => (StatusCode::UNPROCESSABLE_ENTITY, "application_not_found"),
            K::PluginDenied => (StatusCode::INTERNAL_SERVER_ERROR, "plugin_denied"),
            K::PluginUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "plugin_unavailable"),
            K::PluginInstanceUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "plugin_instance_unavailable",
            ),
            K::PluginBusy => (StatusCode::SERVICE_UNAVAILABLE, "plugin_busy"),
            K::TooManyStreams => (StatusCode::SERVICE_UNAVAILABLE, "too_many_streams"),
            K::PluginFailed(code) => (StatusCode::INTERNAL_SERVER_ERROR, code),
            K::PluginVersionUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "plugin_version_unavailable",
            ),
            K::PluginQuarantined => (StatusCode::SERVICE_UNAVAILABLE, "plugin_quarantined"),
            K::RegistryBadInput(code) => (StatusCode::BAD_REQUEST, code),
            K::RegistryRefused(code) => (StatusCode::UNPROCESSABLE_ENTITY, code),
            K::RegistryConflict(code) => (StatusCode::CONFLICT, code),
            K::RegistryNotFound(code) => (StatusCode::NOT_FOUND, code),
            K::RegistryCorrupt => (StatusCode::INTERNAL_SERVER_ERROR, "registry_corrupt"),
            K::PluginLoadFailed => (StatusCode::UNPROCESSABLE_ENTITY, "plugin_load_failed"),
            K::VersionInUse => (StatusCode::CONFLICT, "version_in_use"),
            K::PluginDir => (StatusCode::INTERNAL_SERVER_ERROR, "plugin_dir"),
            K::PlacesInvalid => (StatusCode::BAD_REQUEST, "places_invalid"),
            K::DatasetInvalid => (StatusCode::BAD_REQUEST, "dataset_invalid"),
            K::StorageUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
        }
    }
}

/// An error on its way to becoming a JSON error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// The body of every error response.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    /// An error of `kind`, with a sentence for the caller.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let (status, code) = kind.status_and_code();
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// Its status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Its machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    pub(super) fn into_response(self) -> HttpResponse {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
            },
        };
        let mut response = json_response(self.status, &body);
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
        let kind = match err {
            IdentityError::Missing => ErrorKind::Unauthorized,
            IdentityError::NotConfigured => ErrorKind::IdentityNotConfigured,
            _ => ErrorKind::InvalidToken,
        };
        ApiError::new(kind, err.to_string())
    }
}

/// The kind of a storage error: the same wherever storage is reached.
fn storage_kind(err: &StorageError) -> ErrorKind {
    match err {
        StorageError::Conflict { .. } => ErrorKind::ConcurrentChange,
        _ => {
            tracing::error!(error = %err, "storage failed");
            ErrorKind::StorageUnavailable
        }
    }
}

impl From<&ServiceError> for ErrorKind {
    fn from(err: &ServiceError) -> Self {
        use ErrorKind as K;
        match err {
            ServiceError::NotFound { what, .. } => match *what {
                "scenario" => K::ScenarioNotFound,
                "case" => K::CaseNotFound,
                _ => K::ItemNotFound,
            },
            ServiceError::BadRequest(_) => K::InvalidRequest,
            ServiceError::Forbidden(_) => K::Forbidden,
            ServiceError::NotOwner(_) => K::NotOwner,
            ServiceError::NoMandate { .. } => K::NoMandate,
            ServiceError::WrongApplicant { .. } => K::WrongApplicant,
            ServiceError::InvalidField { .. } => K::InvalidField,
            ServiceError::DeviceEventsNotAccepted { .. } => K::DeviceEventsNotAccepted,
            ServiceError::Conflict { code, .. } => K::CaseConflict(code),
            ServiceError::IdempotencyKeyReused { .. } => K::IdempotencyKeyReused,
            ServiceError::Refused(e) => match e {
                ScenarioError::Invalid(_) => K::ApplicationInvalid,
                ScenarioError::NotFound(_) => K::ApplicationNotFound,
                ScenarioError::Denied(_) => K::PluginDenied,
                ScenarioError::Unavailable(_) => K::PluginUnavailable,
            },
            ServiceError::Plugin(e) => match e {
                PluginError::Unavailable(_) => K::PluginInstanceUnavailable,
                PluginError::Busy { .. } => K::PluginBusy,
                other => K::PluginFailed(other.code()),
            },
            ServiceError::VersionUnavailable { .. } => K::PluginVersionUnavailable,
            ServiceError::Quarantined { .. } => K::PluginQuarantined,
            ServiceError::Storage(e) => storage_kind(e),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        ApiError::new(ErrorKind::from(&err), err.to_string())
    }
}

impl From<&RegistryError> for ErrorKind {
    fn from(err: &RegistryError) -> Self {
        use ErrorKind as K;
        let code = err.code();
        match err {
            RegistryError::Malformed(_)
            | RegistryError::InvalidCeiling(_)
            | RegistryError::Key(_) => K::RegistryBadInput(code),
            RegistryError::VersionExists { .. } | RegistryError::Conflict(_) => {
                K::RegistryConflict(code)
            }
            RegistryError::NotFound(_) => K::RegistryNotFound(code),
            RegistryError::Corrupt(_) => K::RegistryCorrupt,
            RegistryError::Store(_) => K::StorageUnavailable,
            RegistryError::Manifest(_)
            | RegistryError::Unsigned
            | RegistryError::Algorithm(_)
            | RegistryError::UntrustedKey { .. }
            | RegistryError::RevokedKey { .. }
            | RegistryError::Tampered
            | RegistryError::WrongDepartment { .. }
            | RegistryError::GrantBeyondCeiling { .. }
            | RegistryError::WrongWorld(_) => K::RegistryRefused(code),
        }
    }
}

impl From<&DeployError> for ErrorKind {
    fn from(err: &DeployError) -> Self {
        match err {
            DeployError::Registry(e) => ErrorKind::from(e),
            DeployError::Load(_) => ErrorKind::PluginLoadFailed,
            DeployError::InUse { .. } => ErrorKind::VersionInUse,
            DeployError::Dir(_) => ErrorKind::PluginDir,
            DeployError::Storage(e) => storage_kind(e),
        }
    }
}

impl From<DeployError> for ApiError {
    fn from(err: DeployError) -> Self {
        let error = ApiError::new(ErrorKind::from(&err), err.to_string());
        if error.status.is_server_error() {
            tracing::error!(error = %err, "admin request failed");
        }
        error
    }
}

impl From<PlacesError> for ApiError {
    fn from(err: PlacesError) -> Self {
        let kind = match &err {
            PlacesError::Storage(e) => storage_kind(e),
            PlacesError::Line { .. } | PlacesError::Empty => ErrorKind::PlacesInvalid,
        };
        ApiError::new(kind, err.to_string())
    }
}

impl From<ImportError> for ApiError {
    fn from(err: ImportError) -> Self {
        let kind = match &err {
            ImportError::Storage(e) => storage_kind(e),
            ImportError::BadName(_)
            | ImportError::Line { .. }
            | ImportError::Empty
            | ImportError::NotText
            | ImportError::Read { .. } => ErrorKind::DatasetInvalid,
        };
        ApiError::new(kind, err.to_string())
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        ApiError::new(storage_kind(&err), err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(err: ServiceError) -> (StatusCode, &'static str) {
        ErrorKind::from(&err).status_and_code()
    }

    #[test]
    fn a_storage_failure_is_503_storage_unavailable_wherever_it_happens() {
        let want = (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable");
        let io = || StorageError::Backend("disk full".into());
        assert_eq!(kind_of(ServiceError::Storage(io())), want);
        assert_eq!(
            ErrorKind::from(&DeployError::Storage(io())).status_and_code(),
            want
        );
        let registry = RegistryError::Store(onething_registry::StoreError("disk full".into()));
        assert_eq!(registry.code(), "storage_unavailable");
        assert_eq!(ErrorKind::from(&registry).status_and_code(), want);
        assert_eq!(
            ErrorKind::from(&DeployError::Registry(registry)).status_and_code(),
            want
        );
    }

    #[test]
    fn a_revision_conflict_in_storage_is_409_concurrent_change() {
        let err = ServiceError::Storage(StorageError::Conflict {
            case_id: "c1".into(),
        });
        assert_eq!(kind_of(err), (StatusCode::CONFLICT, "concurrent_change"));
    }

    #[test]
    fn the_service_errors_map_to_the_contract() {
        let cases = [
            (
                ServiceError::NotFound {
                    what: "scenario",
                    id: "x".into(),
                },
                StatusCode::NOT_FOUND,
                "scenario_not_found",
            ),
            (
                ServiceError::NotFound {
                    what: "case",
                    id: "x".into(),
                },
                StatusCode::NOT_FOUND,
                "case_not_found",
            ),
            (
                ServiceError::NotFound {
                    what: "item",
                    id: "x".into(),
                },
                StatusCode::NOT_FOUND,
                "item_not_found",
            ),
            (
                ServiceError::BadRequest("no".into()),
                StatusCode::BAD_REQUEST,
                "invalid_request",
            ),
            (
                ServiceError::Refused(ScenarioError::Invalid("no".into())),
                StatusCode::UNPROCESSABLE_ENTITY,
                "application_invalid",
            ),
            (
                ServiceError::Refused(ScenarioError::NotFound("no".into())),
                StatusCode::UNPROCESSABLE_ENTITY,
                "application_not_found",
            ),
            (
                ServiceError::Refused(ScenarioError::Denied("no".into())),
                StatusCode::INTERNAL_SERVER_ERROR,
                "plugin_denied",
            ),
            (
                ServiceError::Refused(ScenarioError::Unavailable("no".into())),
                StatusCode::SERVICE_UNAVAILABLE,
                "plugin_unavailable",
            ),
            (
                ServiceError::Conflict {
                    code: "case_closed",
                    message: "closed".into(),
                },
                StatusCode::CONFLICT,
                "case_closed",
            ),
        ];
        for (err, status, code) in cases {
            let shown = format!("{err:?}");
            assert_eq!(kind_of(err), (status, code), "{shown}");
        }
    }

    #[test]
    fn every_code_has_one_status() {
        // The table is a function of the kind; a code that two kinds share
        // must have the same status in both.
        use ErrorKind as K;
        let kinds = [
            K::RouteNotFound,
            K::MethodNotAllowed,
            K::InvalidQuery,
            K::InvalidField,
            K::InvalidRequest,
            K::MalformedJson,
            K::PayloadTooLarge,
            K::BodyTimeout,
            K::UnreadableBody,
            K::InvalidIdempotencyKey,
            K::InvalidVersion,
            K::PackageMalformed,
            K::Unauthorized,
            K::WrongRole,
            K::InvalidToken,
            K::IdentityNotConfigured,
            K::Forbidden,
            K::WrongApplicant,
            K::ScenarioNotFound,
            K::CaseNotFound,
            K::ItemNotFound,
            K::QueueNotFound,
            K::PluginNotFound,
            K::DeviceEventsNotAccepted,
            K::ConcurrentChange,
            K::IdempotencyKeyReused,
            K::ApplicationInvalid,
            K::ApplicationNotFound,
            K::PluginDenied,
            K::PluginUnavailable,
            K::PluginInstanceUnavailable,
            K::PluginBusy,
            K::TooManyStreams,
            K::PluginVersionUnavailable,
            K::PluginQuarantined,
            K::RegistryCorrupt,
            K::PluginLoadFailed,
            K::VersionInUse,
            K::PluginDir,
            K::PlaceNotFound,
            K::PlacesInvalid,
            K::DatasetInvalid,
            K::StorageUnavailable,
        ];
        let mut seen = std::collections::BTreeMap::new();
        for kind in kinds {
            let (status, code) = kind.status_and_code();
            if let Some(before) = seen.insert(code, status) {
                assert_eq!(before, status, "{code} has two statuses");
            }
        }
        assert_eq!(seen.len(), kinds.len(), "two kinds share a code");
    }
}
