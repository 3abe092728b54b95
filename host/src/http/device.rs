//! What a device (a sensor) does: report an event
//! (`POST /v1/scenarios/{scenario}/events`), which opens a case that
//! belongs to that device alone (`sensor:ID`). No citizen files it; the
//! device then reads and acts on its case through the case endpoints of
//! `citizen.rs`, with its own token.

use hyper::Request;
use hyper::body::Incoming;

use super::{Api, ApiResult};
use crate::identity::Role;
use crate::service::Applicant;

impl Api {
    /// `POST /v1/scenarios/{scenario}/events`.
    pub(super) async fn device_event(&self, scenario: &str, req: Request<Incoming>) -> ApiResult {
        let caller = self.caller(&req, &[Role::Device])?;
        let applicant = Applicant::Device {
            id: caller.subject,
            place: caller.place,
        };
        self.apply(scenario, applicant, req).await
    }
}
