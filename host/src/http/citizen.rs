//! What a citizen does: apply (`POST /v1/scenarios/{s}/cases`), look at a
//! case (`GET /v1/cases/{id}`), supply missing material
//! (`POST …/supplements`), confirm or decline the evidence
//! (`POST …/evidence/{confirm|decline}`), withdraw (`POST …/cancel`), and
//! read who read their data (`GET /v1/me/access-log`). A device's token
//! opens the cases it filed the same way (see `device.rs`), and an
//! officer's token the cases the officer opened (a whistle, where the
//! scenario's `applicants` name officers); anyone else's case is 404.

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

use super::auth::CASE_ROLES;
use super::error::{ApiError, ErrorKind};
use super::views::{AccessLogView, AccessRow, AppliedView, CaseView};
use super::{Api, ApiResult, json_response, ok};
use crate::identity::Role;
use crate::service::{Applicant, CaseWithItems, Officer};

impl Api {
    /// `POST /v1/scenarios/{scenario}/cases`: a citizen's application, or
    /// an officer's (a whistle) where the scenario's `applicants` allow it.
    pub(super) async fn citizen_apply(&self, scenario: &str, req: Request<Incoming>) -> ApiResult {
        let caller = self.caller(&req, &[Role::Citizen, Role::Department])?;
        let applicant = match Officer::from_caller(&caller) {
            Some(officer) => Applicant::Officer(officer),
            None => Applicant::Citizen(caller.subject),
        };
        self.apply(scenario, applicant, req).await
    }

    /// Files an application of `applicant` (a citizen's, or a device's
    /// event), with an optional `Idempotency-Key`.
    pub(super) async fn apply(
        &self,
        scenario: &str,
        applicant: Applicant,
        req: Request<Incoming>,
    ) -> ApiResult {
        let key = match req.headers().get("idempotency-key") {
            Some(value) => {
                let key = value.to_str().ok().map(str::trim).unwrap_or_default();
                if key.is_empty() || key.len() > self.max_idempotency_key_bytes {
                    return Err(ApiError::new(
                        ErrorKind::InvalidIdempotencyKey,
                        format!(
                            "Idempotency-Key must be 1 to {} visible ASCII characters",
                            self.max_idempotency_key_bytes
                        ),
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
        let mut response = json_response(StatusCode::CREATED, &AppliedView::new(&applied, now));
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

    /// A case as its applicant sees it now.
    fn case_answer(&self, case: &CaseWithItems) -> ApiResult {
        ok(&CaseView::new(case, self.service.now()))
    }

    /// `GET /v1/cases/{case_id}`.
    pub(super) async fn case(&self, case_id: &str, req: Request<Incoming>) -> ApiResult {
        let caller = self.caller(&req, CASE_ROLES)?;
        let case = self.own_case(&caller, case_id).await?;
        self.case_answer(&case)
    }

    /// `POST /v1/cases/{case_id}/evidence/{confirm|decline}`.
    pub(super) async fn evidence(
        &self,
        case_id: &str,
        confirm: bool,
        req: Request<Incoming>,
    ) -> ApiResult {
        let caller = self.caller(&req, CASE_ROLES)?;
        self.own_case(&caller, case_id).await?;
        let answer = if confirm { "confirmed" } else { "declined" };
        let case = self
            .service
            .supplement(case_id, json!({ "evidence": answer }))
            .await?;
        self.case_answer(&case)
    }

    /// `GET /v1/me/access-log[?after=SEQ&limit=N]`: every read of the
    /// caller's data, oldest first. A read of their own record in someone
    /// else's case shows no case; a read of someone else's record in their
    /// case shows no key.
    pub(super) async fn access_log(&self, req: Request<Incoming>) -> ApiResult {
        let caller = self.caller(&req, &[Role::Citizen])?;
        let page = self.paging.access_log(req.uri().query())?;
        let entries = self
            .service
            .access_log(&caller.subject, page.after.saturating_add(1), page.limit)
            .await?;
        let next_after = (entries.len() == page.limit)
            .then(|| entries.last().map(|e| e.seq))
            .flatten();
        let reads = entries
            .iter()
            .filter_map(|entry| AccessRow::new(entry, &caller.subject))
            .collect();
        ok(&AccessLogView {
            next_after,
            reads,
            subject: &caller.subject,
        })
    }

    /// `POST /v1/cases/{case_id}/supplements`.
    pub(super) async fn supplement(&self, case_id: &str, req: Request<Incoming>) -> ApiResult {
        let caller = self.caller(&req, CASE_ROLES)?;
        // Unknown cases are answered before the body is read.
        self.own_case(&caller, case_id).await?;
        let material = self.read_json(req).await?;
        if !material.is_object() {
            return Err(ApiError::new(
                ErrorKind::InvalidRequest,
                "the supplement must be a JSON object",
            ));
        }
        let case = self.service.supplement(case_id, material).await?;
        self.case_answer(&case)
    }

    /// `POST /v1/cases/{case_id}/cancel`, with an optional body
    /// `{"reason": "..."}`.
    pub(super) async fn cancel(&self, case_id: &str, req: Request<Incoming>) -> ApiResult {
        let caller = self.caller(&req, CASE_ROLES)?;
        self.own_case(&caller, case_id).await?;
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
                        ErrorKind::InvalidField,
                        "field `reason`: must be a string",
                    ));
                }
            }
        } else {
            String::new()
        };
        let case = self.service.withdraw(case_id, reason).await?;
        self.case_answer(&case)
    }
}
