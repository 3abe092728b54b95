//! The person a case is about (issue 14, item 2) over HTTP: newborn's
//! `applicant_id` is its subject field. A citizen applies for themselves;
//! applying for someone else needs a mandate from them (代办, dataset
//! `civil-affairs/mandates`, key `AGENT:SUBJECT`), for this scenario and
//! not lapsed; every check is on both persons' access logs.

use onething_host::datasets::parse_jsonl;
use onething_host::identity::Role;
use onething_host::storage::AuditRecord;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::identity::{form_without_applicant, send};
use crate::support::{TestHost, assert_error, token};

const MOTHER: &str = "M-ZHAO-MOTHER";
const GRANDMOTHER: &str = "G-ZHAO-GRANDMOTHER";
const APPLY: &str = "/v1/scenarios/newborn/cases";

async fn mandates(host: &TestHost, text: &str) {
    let records = parse_jsonl(text, "mandate").unwrap();
    host.storage
        .replace_dataset("civil-affairs/mandates", records, "civil-affairs")
        .await
        .unwrap();
}

fn for_mother() -> Option<Value> {
    let mut form = form_without_applicant();
    form["applicant_id"] = json!(MOTHER);
    Some(form)
}

#[tokio::test]
async fn an_agent_applies_for_someone_only_with_their_mandate() {
    let host = TestHost::start(&["newborn"]).await;
    let grandmother = token(Role::Citizen, GRANDMOTHER);

    // No mandate: refused before the plugin runs, and no case.
    let message = assert_error(
        send(&host, Method::POST, APPLY, Some(&grandmother), for_mother()).await,
        StatusCode::FORBIDDEN,
        "no_mandate",
    );
    assert!(
        message.contains(GRANDMOTHER) && message.contains(MOTHER),
        "{message}"
    );
    assert!(host.storage.open_cases().await.unwrap() == 0);

    // A mandate for another scenario, or one that has lapsed: refused.
    for record in [
        r#"{"mandate":"G-ZHAO-GRANDMOTHER:M-ZHAO-MOTHER","scenarios":["retirement"],"valid_until":"2099-12-31"}"#,
        r#"{"mandate":"G-ZHAO-GRANDMOTHER:M-ZHAO-MOTHER","scenarios":["newborn"],"valid_until":"2020-01-01"}"#,
    ] {
        mandates(&host, record).await;
        assert_error(
            send(&host, Method::POST, APPLY, Some(&grandmother), for_mother()).await,
            StatusCode::FORBIDDEN,
            "no_mandate",
        );
    }

    // A valid mandate for newborn: the grandmother applies for the mother.
    mandates(
        &host,
        r#"{"mandate":"G-ZHAO-GRANDMOTHER:M-ZHAO-MOTHER","scenarios":["newborn"],"valid_until":"2099-12-31"}"#,
    )
    .await;
    let (status, case) = send(&host, Method::POST, APPLY, Some(&grandmother), for_mother()).await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    assert_eq!(
        case["status"], "in-progress",
        "the parent check passed: {case}"
    );
    let case_id = case["case_id"].as_str().unwrap();
    let (_, seen) = send(
        &host,
        Method::GET,
        &format!("/v1/cases/{case_id}"),
        Some(&grandmother),
        None,
    )
    .await;
    assert_eq!(seen["applicant"], GRANDMOTHER);
    assert_eq!(seen["subject"], MOTHER);

    // Four checks, each audited once, and on both access logs.
    let checks: Vec<bool> = host
        .audit()
        .await
        .into_iter()
        .filter_map(|entry| match entry.record {
            AuditRecord::DataRead {
                dataset, allowed, ..
            } if dataset == "civil-affairs/mandates" => Some(allowed),
            _ => None,
        })
        .collect();
    assert_eq!(checks, [false, false, false, true]);
    for who in [GRANDMOTHER, MOTHER] {
        let (status, log) = send(
            &host,
            Method::GET,
            "/v1/me/access-log",
            Some(&token(Role::Citizen, who)),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{log}");
        let mandate_reads = log["reads"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["dataset"] == "civil-affairs/mandates")
            .count();
        assert_eq!(mandate_reads, 4, "{who}: {log}");
    }
}

#[tokio::test]
async fn the_subject_is_the_caller_when_left_out_or_their_own_id_is_given() {
    let host = TestHost::start(&["newborn"]).await;
    let mother = token(Role::Citizen, MOTHER);
    let (status, case) = send(
        &host,
        Method::POST,
        APPLY,
        Some(&mother),
        Some(form_without_applicant()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let (_, seen) = send(
        &host,
        Method::GET,
        &format!("/v1/cases/{}", case["case_id"].as_str().unwrap()),
        Some(&mother),
        None,
    )
    .await;
    assert_eq!(seen["subject"], MOTHER);
    // Her own id given: the same; no mandate was looked up.
    let mut own = form_without_applicant();
    own["applicant_id"] = json!(MOTHER);
    own["child_name"] = json!("赵一诺");
    let (status, _) = send(&host, Method::POST, APPLY, Some(&mother), Some(own)).await;
    assert_eq!(status, StatusCode::CREATED);
    let looked_up = host.audit().await.into_iter().any(|entry| {
        matches!(&entry.record, AuditRecord::DataRead { dataset, .. } if dataset == "civil-affairs/mandates")
    });
    assert!(!looked_up);
}

#[tokio::test]
async fn one_open_case_per_subject_when_the_scenario_says_so() {
    // residence-certificate declares one_open_case_per_subject.
    let host = TestHost::start(&["residence-certificate"]).await;
    let mother = token(Role::Citizen, MOTHER);
    let apply = "/v1/scenarios/residence-certificate/cases";
    let form = || Some(json!({"purpose": "school enrolment"}));
    let (status, first) = send(&host, Method::POST, apply, Some(&mother), form()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["status"], "in-progress");
    let first_id = first["case_id"].as_str().unwrap().to_owned();

    // A second one while it is open: 409, naming the open case.
    let message = assert_error(
        send(&host, Method::POST, apply, Some(&mother), form()).await,
        StatusCode::CONFLICT,
        "case_already_open",
    );
    assert!(message.contains(&first_id), "{message}");
    // Someone else is not held up by it.
    let father = token(Role::Citizen, "F-ZHAO-FATHER");
    let (status, _) = send(&host, Method::POST, apply, Some(&father), form()).await;
    assert_eq!(status, StatusCode::CREATED);

    // Once the first is completed, she may apply again.
    let item = first["items"][0]["item_id"].as_str().unwrap();
    let (status, done) = send(
        &host,
        Method::POST,
        &format!("/v1/departments/community/items/{item}/complete"),
        Some(&token(Role::Department, "community")),
        Some(json!({"result": {"certificate_no": "RC-1"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["case"]["status"], "completed");
    let (status, again) = send(&host, Method::POST, apply, Some(&mother), form()).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
}
