//! The person a case is about (the form's `subject` field), bound to the
//! caller: a citizen applies for themselves, or for someone who gave them
//! a mandate (代办).
//!
//! - The field left out is filled in with the caller's id; the caller's own
//!   id is accepted as it is.
//! - Anyone else's id needs a **mandate**: the record `AGENT:SUBJECT` of the
//!   dataset [`MANDATES`] (civil affairs keeps it), with `scenarios` (the
//!   scenario ids it covers, or `"*"`) and `valid_until` (a `YYYY-MM-DD`
//!   date, valid through that local day, or an RFC 3339 time). Deny by
//!   default: no record, another scenario, or a lapsed one is `403
//!   no_mandate`, and nothing is run.
//! - Every mandate check, allowed or not, is on the audit log as a read of
//!   the mandate record by the agent, about the subject: both see it in
//!   their access log (`GET /v1/me/access-log`).
//! - A device names no person; the test kit's applications
//!   ([`Applicant::FromForm`]) name whoever their form says.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use crate::model::{FieldKind, FieldSpec};
use crate::storage::AuditRecord;

use super::{Applicant, Service, ServiceError};

/// The dataset of mandates: key `AGENT:SUBJECT`.
pub const MANDATES: &str = "civil-affairs/mandates";

/// The form's subject field, if it declares one (at most one: checked at
/// load).
pub fn subject_field(fields: &[FieldSpec]) -> Option<&str> {
    fields
        .iter()
        .find(|f| f.kind == FieldKind::Subject)
        .map(|f| f.name.as_str())
}

impl Service {
    /// Who the application in `form` is about, with the form made to say
    /// so (see the module docs); none when the form has no subject field.
    pub(super) async fn bind_subject(
        &self,
        fields: &[FieldSpec],
        scenario: &str,
        version: &str,
        form: &mut Map<String, Value>,
        applicant: &Applicant,
    ) -> Result<Option<String>, ServiceError> {
        let Some(field) = subject_field(fields) else {
            return Ok(None);
        };
        let given = match form.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) if !id.trim().is_empty() => Some(id.clone()),
            Some(_) => {
                return Err(ServiceError::InvalidField {
                    field: field.to_owned(),
                    message: "must be the id number of the person the application is about, or left out for yourself".into(),
                });
            }
        };
        match applicant {
            Applicant::FromForm => Ok(given),
            Applicant::Device { .. } | Applicant::Officer(_) => match given {
                None => Ok(None),
                Some(_) => Err(ServiceError::InvalidField {
                    field: field.to_owned(),
                    message: format!(
                        "a device or an officer applies for itself and cannot name a person: leave `{field}` out"
                    ),
                }),
            },
            Applicant::Citizen(caller) => match given {
                None => {
                    form.insert(field.to_owned(), Value::String(caller.clone()));
                    Ok(Some(caller.clone()))
                }
                Some(id) if id == *caller => Ok(Some(id)),
                Some(subject) => {
                    if self.mandate(caller, &subject, scenario, version).await? {
                        Ok(Some(subject))
                    } else {
                        Err(ServiceError::NoMandate {
                            agent: caller.clone(),
                            subject,
                            scenario: scenario.to_owned(),
                        })
                    }
                }
            },
        }
    }

    /// Whether `agent` holds a valid mandate from `subject` for
    /// `scenario`; the check is audited either way.
    async fn mandate(
        &self,
        agent: &str,
        subject: &str,
        scenario: &str,
        version: &str,
    ) -> Result<bool, ServiceError> {
        let key = format!("{agent}:{subject}");
        let record = self.storage.dataset_record(MANDATES, &key).await?;
        let now = self.clock.now();
        let offset = self.calendar.utc_offset_minutes();
        let allowed = record
            .as_deref()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
            .is_some_and(|record| covers(&record, scenario, now, offset));
        self.storage
            .audit(vec![AuditRecord::DataRead {
                plugin: scenario.to_owned(),
                version: version.to_owned(),
                case_id: String::new(),
                applicant: agent.to_owned(),
                dataset: MANDATES.to_owned(),
                key,
                purpose: format!(
                    "mandate check: may {agent} apply for {subject} in {scenario}? {}",
                    if allowed { "yes" } else { "no" }
                ),
                allowed,
                about: Some(subject.to_owned()),
            }])
            .await?;
        tracing::info!(agent, subject, scenario, allowed, "mandate checked");
        Ok(allowed)
    }
}

/// Whether a mandate record covers `scenario` at `now` (the host's zone
/// `offset` minutes east of UTC, for a date).
fn covers(record: &Value, scenario: &str, now: DateTime<Utc>, offset: i32) -> bool {
    let in_scope = record["scenarios"]
        .as_array()
        .is_some_and(|s| s.iter().any(|v| v == "*" || v == scenario));
    let Some(until) = record["valid_until"].as_str() else {
        return false;
    };
    let valid = if let Ok(date) = NaiveDate::parse_from_str(until, "%Y-%m-%d") {
        let local = now + chrono::Duration::minutes(i64::from(offset));
        local.date_naive() <= date
    } else if let Ok(time) = DateTime::parse_from_rfc3339(until) {
        now <= time
    } else {
        false
    };
    in_scope && valid
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_mandate_covers_its_scenarios_until_it_lapses() {
        let now: DateTime<Utc> = "2026-12-01T18:30:00Z".parse().unwrap();
        let m = |scenarios: Value, until: &str| serde_json::json!({"scenarios": scenarios, "valid_until": until});
        assert!(covers(
            &m(serde_json::json!(["newborn"]), "2026-12-01"),
            "newborn",
            now,
            0
        ));
        assert!(covers(
            &m(serde_json::json!(["*"]), "2026-12-31"),
            "any",
            now,
            0
        ));
        assert!(!covers(
            &m(serde_json::json!(["retire"]), "2026-12-31"),
            "newborn",
            now,
            0
        ));
        // 18:30 UTC is already 2 December in Chongqing (UTC+8).
        assert!(!covers(
            &m(serde_json::json!(["newborn"]), "2026-12-01"),
            "newborn",
            now,
            480
        ));
        assert!(covers(
            &m(serde_json::json!(["newborn"]), "2026-12-01T19:00:00Z"),
            "newborn",
            now,
            0
        ));
        assert!(!covers(
            &m(serde_json::json!(["newborn"]), "soon"),
            "newborn",
            now,
            0
        ));
        assert!(!covers(
            &serde_json::json!({"scenarios": ["newborn"]}),
            "newborn",
            now,
            0
        ));
    }
}
