//! What a department's back office does, with its department token: read
//! a page of its queue (`GET /v1/departments/{dept}/items`), complete an
//! item (`POST …/items/{item_id}/complete`, body `{"result": {...}}`) or
//! reject it (`POST …/items/{item_id}/reject`, body `{"reason": "..."}`),
//! or take it (报到: `POST …/items/{item_id}/report`, body empty or `{}`).
//! Another department's queue is 404. An officer's token (claims
//! `department` and `place`) lists the items of offices at its place and
//! below and acts on its own office's: an item outside the area is 404,
//! another office's item in it 403 `not_owner` (see `service::Officer`).

use hyper::Request;
use hyper::body::Incoming;
use serde_json::Value;

use super::error::{ApiError, ErrorKind};
use super::views::{ActedView, DepartmentItems, ItemView};
use super::{Api, ApiResult, ok};
use crate::service::ItemActed;

fn invalid_field(message: &str) -> ApiError {
    ApiError::new(ErrorKind::InvalidField, message)
}

impl Api {
    /// A page of a department's queue: `?status=`, `report=awaiting`,
    /// `limit=1..max_page_items`
    /// (default `department_page_items`), `after=ITEM_ID` (the
    /// `next_after` of the previous page; null when no page follows).
    pub(super) async fn department_items(
        &self,
        department: &str,
        req: Request<Incoming>,
    ) -> ApiResult {
        let officer = self.own_department(&req, department)?;
        let page = self.paging.department(req.uri().query())?;
        // One more than asked for tells whether another page follows, so
        // that `next_after` is null on the last page itself.
        let after = page.after.as_deref();
        let mut items = if page.awaiting_report {
            self.service
                .awaiting_report(&officer, after, page.limit + 1)
                .await?
        } else {
            self.service
                .department_items(&officer, page.status, after, page.limit + 1)
                .await?
        };
        let more = items.len() > page.limit;
        items.truncate(page.limit);
        let next_after = more.then(|| items.last().map(|i| i.id.as_str())).flatten();
        let now = self.service.now();
        ok(&DepartmentItems {
            department,
            items: items
                .iter()
                .map(|i| ItemView::for_officer(i, now, &officer))
                .collect(),
            next_after,
        })
    }

    /// The item and its case after a department acted.
    fn acted(&self, acted: &ItemActed) -> ApiResult {
        ok(&ActedView::new(
            &acted.item,
            &acted.case,
            self.service.now(),
        ))
    }

    /// `POST /v1/departments/{department}/items/{item_id}/complete`.
    pub(super) async fn complete(
        &self,
        department: &str,
        item_id: &str,
        req: Request<Incoming>,
    ) -> ApiResult {
        let officer = self.own_department(&req, department)?;
        let body = self.read_json(req).await?;
        let result = match body.get("result") {
            Some(result @ Value::Object(_)) => result.clone(),
            Some(_) => return Err(invalid_field("field `result`: must be a JSON object")),
            None => {
                return Err(invalid_field(
                    "field `result`: is required, e.g. {\"result\": {\"household_no\": \"...\"}}",
                ));
            }
        };
        let acted = self
            .service
            .complete_item(&officer, item_id, result)
            .await?;
        self.acted(&acted)
    }

    /// `POST /v1/departments/{department}/items/{item_id}/reject`.
    pub(super) async fn reject(
        &self,
        department: &str,
        item_id: &str,
        req: Request<Incoming>,
    ) -> ApiResult {
        let officer = self.own_department(&req, department)?;
        let body = self.read_json(req).await?;
        let reason = match body.get("reason") {
            Some(Value::String(reason)) if !reason.trim().is_empty() => reason.clone(),
            Some(Value::String(_)) => {
                return Err(invalid_field(
                    "field `reason`: must not be empty; say what the applicant must fix",
                ));
            }
            Some(_) => return Err(invalid_field("field `reason`: must be a string")),
            None => return Err(invalid_field("field `reason`: is required")),
        };
        let acted = self.service.reject_item(&officer, item_id, reason).await?;
        self.acted(&acted)
    }

    /// `POST /v1/departments/{department}/items/{item_id}/report`: the
    /// office takes the item (报到); the body is empty or `{}`.
    pub(super) async fn report(
        &self,
        department: &str,
        item_id: &str,
        req: Request<Incoming>,
    ) -> ApiResult {
        let officer = self.own_department(&req, department)?;
        let bytes = self.read_body(req, self.max_body_bytes).await?;
        let empty = bytes.iter().all(u8::is_ascii_whitespace)
            || matches!(serde_json::from_slice(&bytes), Ok(Value::Object(fields)) if fields.is_empty());
        if !empty {
            return Err(invalid_field(
                "the body: a report takes no fields; send nothing or {}",
            ));
        }
        let acted = self.service.report_item(&officer, item_id).await?;
        self.acted(&acted)
    }
}
