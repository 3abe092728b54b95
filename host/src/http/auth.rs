//! Who is calling: the bearer token read once ([`bearer`]), the caller it
//! names ([`Api::caller`]), whether a case or a department queue is the
//! caller's own, and who may use the admin API ([`Api::authorize_admin`]).
//! Another caller's case or queue is 404, as if it did not exist.

use chrono::Utc;
use hyper::Request;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap};

use super::error::{ApiError, ErrorKind};
use super::{ADMIN_TOKEN_ACTOR, Api};
use crate::identity::{Caller, IdentityError, Role};
use crate::service::{Applicant, CaseWithItems, Officer, ServiceError};

/// Who may see and act on a case: its applicant, a citizen, a device (a
/// device's case, from `POST /v1/scenarios/{s}/events`, belongs to that
/// device alone: `sensor:ID`; no citizen's token opens it) or an officer
/// (their whistle: `officer:ID`).
pub(super) const CASE_ROLES: &[Role] = &[Role::Citizen, Role::Device, Role::Department];

/// The token of `Authorization: Bearer <token>`, if one is given.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The `applicant` of the cases `caller` opens.
fn owner(caller: &Caller) -> Option<String> {
    match caller.role {
        Role::Citizen => Applicant::Citizen(caller.subject.clone()).owner(),
        Role::Device => Some(crate::service::device_owner(&caller.subject)),
        // An officer's own cases (a whistle); a department token opens no
        // citizen's case.
        Role::Department => Some(crate::service::officer_owner(&caller.subject)),
        Role::Operator => None,
    }
}

/// Whether `given` is `expected`, compared in constant time.
fn same_secret(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

impl Api {
    /// The caller, if its bearer token verifies and names one of `roles`.
    pub(super) fn caller(
        &self,
        req: &Request<Incoming>,
        roles: &[Role],
    ) -> Result<Caller, ApiError> {
        let token = bearer(req.headers()).ok_or(IdentityError::Missing)?;
        let verifier = self.identity.as_ref().ok_or(IdentityError::NotConfigured)?;
        let caller = verifier.verify(token, Utc::now().timestamp())?;
        if !roles.contains(&caller.role) {
            let wanted: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            return Err(ApiError::new(
                ErrorKind::WrongRole,
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
    pub(super) async fn own_case(
        &self,
        caller: &Caller,
        case_id: &str,
    ) -> Result<CaseWithItems, ApiError> {
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

    /// The officer a department token names, if they belong to
    /// `department`; another department's queue is 404.
    pub(super) fn own_department(
        &self,
        req: &Request<Incoming>,
        department: &str,
    ) -> Result<Officer, ApiError> {
        let caller = self.caller(req, &[Role::Department])?;
        match Officer::from_caller(&caller) {
            Some(officer) if officer.department == department => Ok(officer),
            _ => Err(ApiError::new(
                ErrorKind::QueueNotFound,
                format!("no work queue `{department}` for your token"),
            )),
        }
    }

    /// Who is acting on the admin API: `admin` for the config file's
    /// `admin_token` (compared in constant time), or the name (`sub`) of an
    /// operator token of the configured identity provider. 401 without
    /// credentials, with an invalid or expired operator token, or when
    /// neither is configured; 403 with a token that opens nothing here (any
    /// other string, another role's token, a development-provider token).
    pub(super) fn authorize_admin(&self, req: &Request<Incoming>) -> Result<String, ApiError> {
        let (actor, place) = self.authorize_operator(req)?;
        if let Some(place) = place {
            return Err(ApiError::new(
                ErrorKind::Forbidden,
                format!(
                    "an operator token with a place claim ({place}) is a leader's: it reads /v1/ops/… for {place} and below, and opens no /v1/admin route"
                ),
            ));
        }
        Ok(actor)
    }

    /// Who reads `/v1/ops/…`: an operator (as for the admin API: place
    /// none, the whole host), or a leader — an operator token with a
    /// `place` claim — with that place, to which every answer is narrowed.
    pub(super) fn authorize_ops(&self, req: &Request<Incoming>) -> Result<OpsReader, ApiError> {
        let (actor, place) = self.authorize_operator(req)?;
        if let Some(place) = &place
            && self.places.tree().get(place).is_none()
        {
            return Err(ApiError::new(
                ErrorKind::Forbidden,
                format!("the token's place {place} is not in the place tree"),
            ));
        }
        Ok(OpsReader { actor, place })
    }

    /// The operator a token names, with its place claim if it has one.
    fn authorize_operator(
        &self,
        req: &Request<Incoming>,
    ) -> Result<(String, Option<String>), ApiError> {
        let operators = self.identity.as_ref().filter(|v| !v.is_development());
        if self.admin_token.is_none() && operators.is_none() {
            return Err(ApiError::new(
                ErrorKind::Unauthorized,
                "the admin API is off: set admin_token, or [identity] for operator tokens, in the config file",
            ));
        }
        let Some(given) = bearer(req.headers()) else {
            return Err(ApiError::new(
                ErrorKind::Unauthorized,
                "send the admin token or an operator token as `Authorization: Bearer <token>`",
            ));
        };
        if let Some(expected) = &self.admin_token
            && same_secret(given, expected)
        {
            return Ok((ADMIN_TOKEN_ACTOR.to_owned(), None));
        }
        let forbidden = |why: String| ApiError::new(ErrorKind::Forbidden, why);
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
        Ok((caller.subject, caller.place))
    }
}

/// Who reads `/v1/ops/…`, and the place they are narrowed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OpsReader {
    /// The operator's name (`admin` for the admin token).
    pub(super) actor: String,
    /// A leader's place (none: an operator, the whole host).
    pub(super) place: Option<String>,
}

impl OpsReader {
    /// The place a request about `asked` (none: the reader's whole area)
    /// is about: 403 when it is outside a leader's place.
    pub(super) fn scope(&self, asked: Option<&str>) -> Result<Option<String>, ApiError> {
        match (&self.place, asked) {
            (None, asked) => Ok(asked.map(str::to_owned)),
            (Some(own), None) => Ok(Some(own.clone())),
            (Some(own), Some(asked)) if crate::service::at_or_below(asked, own) => {
                Ok(Some(asked.to_owned()))
            }
            (Some(own), Some(asked)) => Err(ApiError::new(
                ErrorKind::Forbidden,
                format!("{asked} is outside your place {own}: a leader reads {own} and below"),
            )),
        }
    }

    /// Whether a leader may see `place` (an operator sees everything).
    pub(super) fn sees(&self, place: &str) -> bool {
        self.place
            .as_deref()
            .is_none_or(|own| crate::service::at_or_below(place, own))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_token_is_read_once_and_trimmed() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer  abc ".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("s3cret", "s3cret"));
        assert!(!same_secret("s3cre", "s3cret"));
        assert!(!same_secret("s3creT", "s3cret"));
    }
}
