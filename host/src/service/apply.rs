//! A citizen's (or a device's) application: who is applying, the form
//! checked against the scenario's fields, the `Idempotency-Key` replay,
//! the plugin's `start` call, and the new case committed with what it
//! dispatched.

use std::sync::Arc;

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::model::{Case, CaseStatus, FieldKind, FieldSpec, TimelineEntry, TimelineEvent};
use crate::ops::OpsEventKind;
use crate::places::PlaceTree;
use crate::runtime::{CaseContext, LoadedPlugin};
use crate::storage::{IdempotencyRecord, StorageError};
use onething_registry::ApplicantRole;

use super::commit::{Stamp, start_failure};
use super::{
    APPLICANT_FIELD, Applicant, Applied, CITIZEN_FIELDS, CaseWithItems, SENSOR_FIELD, Service,
    ServiceError, device_owner,
};

impl Service {
    /// Applies to `scenario` with `application` (a JSON object), the
    /// applicant taken from the form (the test kit's and benchmarks' way
    /// in; over HTTP the applicant comes from the caller's token, see
    /// [`Service::apply_as`]).
    pub async fn apply(
        &self,
        scenario: &str,
        application: Value,
        idempotency_key: Option<String>,
    ) -> Result<Applied, ServiceError> {
        self.apply_as(scenario, application, idempotency_key, Applicant::FromForm)
            .await
    }

    /// The active version of `scenario`, if `applicant` may open a case in
    /// it: a device only in a scenario whose manifest declares
    /// `device_events`.
    pub fn accepting(
        &self,
        scenario: &str,
        applicant: &Applicant,
    ) -> Result<Arc<LoadedPlugin>, ServiceError> {
        let plugin = self
            .plugins
            .active(scenario)
            .ok_or_else(|| ServiceError::no_scenario(scenario))?;
        if matches!(applicant, Applicant::Device { .. }) && !plugin.manifest().device_events {
            return Err(ServiceError::DeviceEventsNotAccepted {
                scenario: scenario.to_owned(),
            });
        }
        let manifest = plugin.manifest();
        let yours = match applicant {
            Applicant::Citizen(_) if !manifest.admits(ApplicantRole::Citizen) => {
                "yours is a citizen's token".to_owned()
            }
            Applicant::Officer(officer) if !manifest.admits_officer_of(&officer.department) => {
                format!("yours is an officer's token of `{}`", officer.department)
            }
            _ => return Ok(plugin),
        };
        let mut who: Vec<String> = Vec::new();
        if manifest.admits(ApplicantRole::Citizen) {
            who.push("citizens".into());
        }
        if manifest.admits(ApplicantRole::Officer) {
            who.push(match manifest.officer_departments.as_slice() {
                [] => "officers".into(),
                departments => format!("officers of {}", departments.join(", ")),
            });
        }
        Err(ServiceError::WrongApplicant {
            scenario: scenario.to_owned(),
            who: who.join(" and "),
            yours,
        })
    }

    /// An identified caller applies to `scenario`. The applicant is the
    /// caller: a form field naming the applicant (`applicant_id`, or
    /// `sensor_id` for a device) may be left out, and is then filled in
    /// from the token, or must say the same; another value is refused. A
    /// device reports only to a scenario that declares device events, and
    /// its event may not name a citizen ([`CITIZEN_FIELDS`]).
    pub async fn apply_as(
        &self,
        scenario: &str,
        mut application: Value,
        idempotency_key: Option<String>,
        applicant: Applicant,
    ) -> Result<Applied, ServiceError> {
        // Idempotency keys are the caller's own: another caller's key
        // neither replays nor blocks anything of theirs. (A newline cannot
        // occur in a header value, so the two never run together.)
        let idempotency_key = match (applicant.owner(), idempotency_key) {
            (Some(owner), Some(key)) => Some(format!("{owner}\n{key}")),
            (_, key) => key,
        };
        let plugin = self.accepting(scenario, &applicant)?;
        if let Some(quarantine) = plugin.quarantine() {
            return Err(ServiceError::Quarantined {
                scenario: scenario.to_owned(),
                reason: quarantine.reason,
            });
        }
        let Value::Object(form) = &mut application else {
            return Err(ServiceError::BadRequest(
                "the application must be a JSON object of the scenario's fields".into(),
            ));
        };
        let subject_field = super::subject::subject_field(&plugin.info().fields);
        let owner = identify(&plugin, form, &applicant, subject_field)?;
        let subject = self
            .bind_subject(
                &plugin.info().fields,
                scenario,
                plugin.version(),
                form,
                &applicant,
            )
            .await?;
        let places = self.places.tree();
        let form_place = validate_application(&plugin.info().fields, form, scenario, &places)?;
        let place = match (form_place, &applicant) {
            (Some(place), applicant) if !matches!(applicant, Applicant::Officer(_)) => {
                Some((place, "application"))
            }
            (
                None,
                Applicant::Device {
                    place: Some(place), ..
                },
            ) => {
                if places.get(place).is_none() {
                    return Err(ServiceError::BadRequest(format!(
                        "your device token's place `{place}` is not in the place tree; ask the operator to import it or to issue the token for a place it has"
                    )));
                }
                Some((place.clone(), "device"))
            }
            (form_place, Applicant::Officer(officer)) => {
                officer_place(officer, form_place.as_deref(), &places)?
                    .map(|(place, source)| (place.to_owned(), source))
            }
            _ => None,
        };
        let fingerprint = fingerprint(&application);

        let _guard = match &idempotency_key {
            Some(key) => {
                let guard = self.locks.lock(&format!("idem\0{scenario}\0{key}")).await;
                if let Some(record) = self.storage.idempotency(scenario, key).await? {
                    return self.replay(record, key, &fingerprint).await;
                }
                Some(guard)
            }
            None => None,
        };

        // One open case per subject, if the scenario says so: checked under
        // the subject's lock, so that two applications at once cannot both
        // pass (a retry under the same key was replayed above).
        let _subject_guard = match (&subject, plugin.manifest().one_open_case_per_subject) {
            (Some(subject), true) => {
                let guard = self
                    .locks
                    .lock(&format!("subject\0{scenario}\0{subject}"))
                    .await;
                if let Some(case_id) = self.storage.open_case_of(scenario, subject).await? {
                    return Err(ServiceError::Conflict {
                        code: "case_already_open",
                        message: format!(
                            "{subject} already has an open `{scenario}` case, {case_id}: follow it at GET /v1/cases/{case_id}; a new application is taken once it is completed or rejected"
                        ),
                    });
                }
                Some(guard)
            }
            _ => None,
        };
        let now = self.clock.now();
        let context = CaseContext {
            id: uuid::Uuid::now_v7().to_string(),
            scenario: scenario.to_owned(),
            applicant: owner,
            state: "{}".to_owned(),
            now,
            utc_offset_minutes: self.calendar.utc_offset_minutes(),
            place: place.as_ref().map(|(place, _)| place.clone()),
            subject,
            places,
        };
        let answer = plugin.start(&context, &application.to_string()).await;
        let success = match answer {
            Ok(success) => success,
            Err(failure) => {
                let (record, audit) = start_failure(&plugin, &context, &failure, now);
                if let Err(e) = self.storage.record_failure(record, audit).await {
                    tracing::error!(error = %e, "cannot record a failed start call");
                }
                return Err(ServiceError::from_call(failure.error));
            }
        };
        let mut timeline = vec![TimelineEntry {
            at: now,
            event: TimelineEvent::Submitted {
                plugin_version: plugin.version().to_owned(),
            },
        }];
        if let Some((place, source)) = &place {
            timeline.push(TimelineEntry {
                at: now,
                event: TimelineEvent::PlaceSet {
                    place: place.clone(),
                    source: (*source).to_owned(),
                },
            });
        }
        let case = Case {
            id: context.id,
            scenario: scenario.to_owned(),
            plugin_version: plugin.version().to_owned(),
            applicant: context.applicant,
            status: CaseStatus::Submitted,
            message: String::new(),
            state: "{}".to_owned(),
            application,
            item_ids: Vec::new(),
            timeline,
            created_at: now,
            updated_at: now,
            revision: 0,
            place: context.place,
            subject: context.subject,
        };
        let stamp = Stamp {
            expected_revision: None,
            now,
        };
        let mut commit = self.success_commit(&plugin, case, success, None, Vec::new(), stamp);
        commit.idempotency = idempotency_key.as_ref().map(|key| IdempotencyRecord {
            scenario: scenario.to_owned(),
            key: key.clone(),
            case_id: commit.case.id.clone(),
            fingerprint: fingerprint.clone(),
        });
        let (case, items) = (commit.case.clone(), commit.items.clone());
        match self.storage.commit(commit).await {
            Ok(()) => {
                if !case.status.is_final() {
                    self.metrics.add_open_cases(1);
                }
                self.ops.publish(
                    OpsEventKind::CaseCreated,
                    case.place.clone(),
                    serde_json::json!({
                        "case_id": case.id,
                        "scenario": case.scenario,
                        "status": case.status,
                        "place": case.place,
                    }),
                );
                Ok(Applied {
                    case: CaseWithItems { case, items },
                    replayed: false,
                })
            }
            // Another host took the key between our check and our commit:
            // the first case wins and nothing of ours was written.
            Err(StorageError::IdempotencyTaken { case_id }) => {
                let key = idempotency_key.unwrap_or_default();
                let record = IdempotencyRecord {
                    scenario: scenario.to_owned(),
                    key: key.clone(),
                    case_id,
                    fingerprint: fingerprint.clone(),
                };
                self.replay(record, &key, &fingerprint).await
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn replay(
        &self,
        record: IdempotencyRecord,
        key: &str,
        fingerprint: &str,
    ) -> Result<Applied, ServiceError> {
        if record.fingerprint != fingerprint {
            return Err(ServiceError::IdempotencyKeyReused {
                key: key.to_owned(),
                case_id: record.case_id,
            });
        }
        let case = self.case(&record.case_id).await?;
        Ok(Applied {
            case,
            replayed: true,
        })
    }
}

/// Who `applicant` opens the case as, with `form` made to say so: a form
/// field naming the applicant (`applicant_id`, or `sensor_id` for a
/// device) left out is filled in from the token when the form has it, and
/// must otherwise say the same; a device's event may name no citizen. For
/// the test kit's [`Applicant::FromForm`], the form's own field names the
/// applicant.
fn identify(
    plugin: &LoadedPlugin,
    form: &mut Map<String, Value>,
    applicant: &Applicant,
    subject_field: Option<&str>,
) -> Result<String, ServiceError> {
    if let Applicant::Device { .. } = applicant
        && let Some(field) = CITIZEN_FIELDS.iter().find(|f| form.contains_key(**f))
    {
        return Err(ServiceError::InvalidField {
            field: (*field).to_owned(),
            message: format!(
                "a device reports events for itself and cannot name a citizen: leave `{field}` out"
            ),
        });
    }
    let (field, id) = match applicant {
        // An officer whistles for a place, not for a person.
        Applicant::Officer(officer) => return Ok(super::officer_owner(&officer.id)),
        Applicant::FromForm => {
            return Ok(match (form.get(APPLICANT_FIELD), form.get(SENSOR_FIELD)) {
                (Some(Value::String(id)), _) if !id.is_empty() => id.clone(),
                (_, Some(Value::String(sensor))) if !sensor.is_empty() => device_owner(sensor),
                _ => "anonymous".to_owned(),
            });
        }
        // The subject field is bound in `subject.rs`: to the caller, or to
        // someone who gave them a mandate.
        Applicant::Citizen(id) if subject_field == Some(APPLICANT_FIELD) => return Ok(id.clone()),
        Applicant::Citizen(id) => (APPLICANT_FIELD, id),
        Applicant::Device { id, .. } => (SENSOR_FIELD, id),
    };
    match form.get(field) {
        None | Some(Value::Null) => {
            if plugin.info().fields.iter().any(|f| f.name == field) {
                form.insert(field.to_owned(), Value::String(id.clone()));
            }
        }
        Some(Value::String(given)) if given == id => {}
        Some(_) => {
            return Err(ServiceError::InvalidField {
                field: field.to_owned(),
                message: format!(
                    "`{field}` names someone other than you: leave it out, it comes from your token"
                ),
            });
        }
    }
    Ok(match applicant {
        Applicant::Device { id, .. } => device_owner(id),
        _ => id.clone(),
    })
}

/// The place of an officer's case: the form's place (`given`), which must
/// be at or below the officer's place (else `403 forbidden`), or else the
/// officer's place; the officer's token must name a place of one of their
/// department's offices (a department-wide token: any place, or none).
fn officer_place<'a>(
    officer: &'a super::Officer,
    given: Option<&'a str>,
    places: &PlaceTree,
) -> Result<Option<(&'a str, &'static str)>, ServiceError> {
    officer.check(places)?;
    match (given, officer.place.as_deref()) {
        (Some(place), Some(area)) if !super::at_or_below(place, area) => {
            Err(ServiceError::Forbidden(format!(
                "the place `{place}` is outside your area `{area}`: an officer applies for places at or below their own office's"
            )))
        }
        (Some(place), _) => Ok(Some((place, "application"))),
        (None, Some(area)) => Ok(Some((area, "officer"))),
        (None, None) => Ok(None),
    }
}

/// A digest of an application, to tell a retry from a different
/// application under the same idempotency key. JSON objects serialise with
/// sorted keys, so the digest does not depend on field order.
fn fingerprint(application: &Value) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(application.to_string().as_bytes()))
}

/// Checks an application against the scenario's form: every required field
/// present, every field of its type (a place field's value a place of
/// `places`), no field the form does not have. Returns the value of the
/// first place field given: the case's place.
pub fn validate_application(
    fields: &[FieldSpec],
    form: &Map<String, Value>,
    scenario: &str,
    places: &PlaceTree,
) -> Result<Option<String>, ServiceError> {
    let mut place = None;
    for name in form.keys() {
        if !fields.iter().any(|f| &f.name == name) {
            return Err(ServiceError::InvalidField {
                field: name.clone(),
                message: format!("is not a field of the `{scenario}` application form"),
            });
        }
    }
    for field in fields {
        let invalid = |message: String| ServiceError::InvalidField {
            field: field.name.clone(),
            message,
        };
        let value = match form.get(&field.name) {
            None | Some(Value::Null) => {
                if field.required {
                    return Err(invalid("is required".into()));
                }
                continue;
            }
            Some(value) => value,
        };
        match &field.kind {
            FieldKind::Text | FieldKind::Subject => match value {
                Value::String(s) if field.required && s.trim().is_empty() => {
                    return Err(invalid("must not be empty".into()));
                }
                Value::String(_) => {}
                _ => return Err(invalid("must be a string".into())),
            },
            FieldKind::Number => {
                if !value.is_number() {
                    return Err(invalid("must be a number".into()));
                }
            }
            FieldKind::Boolean => {
                if !value.is_boolean() {
                    return Err(invalid("must be true or false".into()));
                }
            }
            FieldKind::Date => {
                let ok = value
                    .as_str()
                    .is_some_and(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok());
                if !ok {
                    return Err(invalid("must be a date as YYYY-MM-DD".into()));
                }
            }
            FieldKind::Choice { choices } => {
                let ok = value
                    .as_str()
                    .is_some_and(|s| choices.iter().any(|c| c == s));
                if !ok {
                    return Err(invalid(format!("must be one of: {}", choices.join(", "))));
                }
            }
            FieldKind::Place => match value {
                Value::String(id) if places.get(id).is_some() => {
                    place.get_or_insert_with(|| id.clone());
                }
                Value::String(id) => {
                    return Err(invalid(format!(
                        "`{}` is not a place of the place tree (see GET /v1/places)",
                        crate::runtime::truncate(id, 200)
                    )));
                }
                _ => return Err(invalid("must be a place id, e.g. cq/yubei".into())),
            },
        }
    }
    Ok(place)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;
    use serde_json::json;

    fn fields() -> Vec<FieldSpec> {
        vec![
            FieldSpec {
                name: "name".into(),
                kind: FieldKind::Text,
                required: true,
                description: String::new(),
            },
            FieldSpec {
                name: "side".into(),
                kind: FieldKind::Choice {
                    choices: vec!["mother".into(), "father".into()],
                },
                required: true,
                description: String::new(),
            },
            FieldSpec {
                name: "born".into(),
                kind: FieldKind::Date,
                required: false,
                description: String::new(),
            },
        ]
    }

    fn check(value: Value) -> Result<(), ServiceError> {
        validate_application(
            &fields(),
            value.as_object().unwrap(),
            "test",
            &PlaceTree::default(),
        )
        .map(|_| ())
    }

    #[test]
    fn a_complete_form_passes() {
        check(json!({"name": "x", "side": "mother"})).unwrap();
        check(json!({"name": "x", "side": "father", "born": "2026-11-20"})).unwrap();
    }

    #[test]
    fn each_fault_names_its_field() {
        let cases = [
            (json!({"side": "mother"}), "name", "is required"),
            (
                json!({"name": 3, "side": "mother"}),
                "name",
                "must be a string",
            ),
            (
                json!({"name": " ", "side": "mother"}),
                "name",
                "must not be empty",
            ),
            (
                json!({"name": "x", "side": "aunt"}),
                "side",
                "must be one of",
            ),
            (
                json!({"name": "x", "side": "mother", "born": "20/11"}),
                "born",
                "YYYY-MM-DD",
            ),
            (
                json!({"name": "x", "side": "mother", "extra": 1}),
                "extra",
                "not a field",
            ),
        ];
        for (form, field, text) in cases {
            match check(form) {
                Err(ServiceError::InvalidField { field: f, message }) => {
                    assert_eq!(f, field);
                    assert!(message.contains(text), "{message}");
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    proptest::proptest! {
        /// Any form is accepted or refused naming a field; an accepted form
        /// has every required field with a value of its kind.
        #[test]
        fn any_form_is_judged_without_panicking(
            name in proptest::option::of(proptest::prop_oneof![
                ".{0,6}".prop_map(Value::from),
                proptest::num::i64::ANY.prop_map(Value::from),
                proptest::bool::ANY.prop_map(Value::from),
            ]),
            side in proptest::option::of("mother|father|aunt|"),
            born in proptest::option::of("[0-9]{4}-[0-9]{2}-[0-9]{2}|.{0,10}"),
            extra in proptest::option::of("[a-z]{1,5}"),
        ) {
            let mut form = Map::new();
            if let Some(v) = name { form.insert("name".into(), v); }
            if let Some(v) = side { form.insert("side".into(), Value::from(v)); }
            if let Some(v) = born { form.insert("born".into(), Value::from(v)); }
            if let Some(k) = extra { form.insert(format!("x-{k}"), Value::from(1)); }
            match validate_application(&fields(), &form, "test", &PlaceTree::default()) {
                Ok(_) => {
                    proptest::prop_assert!(form["name"].as_str().is_some_and(|s| !s.trim().is_empty()));
                    proptest::prop_assert!(matches!(form["side"].as_str(), Some("mother" | "father")));
                }
                Err(ServiceError::InvalidField { field, message }) => {
                    proptest::prop_assert!(!field.is_empty() && !message.is_empty());
                }
                Err(other) => proptest::prop_assert!(false, "unexpected {other}"),
            }
        }
    }

    #[test]
    fn fingerprints_ignore_key_order() {
        let a: Value = serde_json::from_str(r#"{"a":1,"b":2}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"b":2,"a":1}"#).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&json!({"a": 1})));
    }
}
