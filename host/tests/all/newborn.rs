//! The newborn scenario, as the parents and the departments live it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Api, TestHost, assert_error, newborn_application};

const DEPARTMENTS: [(&str, &str); 4] = [
    ("public-security", "household-registration"),
    ("medical-insurance", "resident-enrolment"),
    ("hrss", "social-security-card"),
    ("disease-control", "vaccination-record"),
];

async fn apply(host: &Api, application: &Value) -> Value {
    let (status, body) = host.post("/v1/scenarios/newborn/cases", application).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

fn item_for<'a>(items: &'a [Value], department: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["department"] == department)
        .unwrap_or_else(|| panic!("no item for {department} in {items:?}"))
}

#[tokio::test]
async fn a_mother_applies_once_and_four_departments_finish_the_case() {
    let host = TestHost::start(&["newborn"]).await;

    // The catalogue lists newborn with its form.
    let (status, catalogue) = host.get("/v1/scenarios").await;
    assert_eq!(status, StatusCode::OK);
    let newborn = &catalogue["scenarios"][0];
    assert_eq!(newborn["id"], "newborn");
    assert_eq!(newborn["version"], "0.1.0");
    let fields: Vec<&str> = newborn["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for field in [
        "certificate_no",
        "child_name",
        "applicant_id",
        "household_of",
        "phone",
    ] {
        assert!(fields.contains(&field), "{field} missing from {fields:?}");
    }

    // The mother applies once.
    let case = apply(&host, &newborn_application()).await;
    assert_eq!(case["status"], "in-progress", "{case}");
    let case_id = case["case_id"].as_str().unwrap().to_owned();
    let items = case["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{case}");
    for (department, task) in DEPARTMENTS {
        let item = item_for(items, department);
        assert_eq!(item["task"], task);
        assert_eq!(item["status"], "pending");
        assert_eq!(item["due"], json!({"unit": "working-days", "count": 5}));
    }

    // Each department finds exactly one pending item for this case, with
    // what it needs to do it.
    let mut item_ids = Vec::new();
    for (department, task) in DEPARTMENTS {
        let pending = host.pending(department).await;
        assert_eq!(pending.len(), 1, "{department}: {pending:?}");
        assert_eq!(pending[0]["case_id"], case_id.as_str());
        assert_eq!(pending[0]["task"], task);
        item_ids.push((
            department,
            pending[0]["item_id"].as_str().unwrap().to_owned(),
        ));
    }
    let household = &host.pending("public-security").await[0]["payload"];
    assert_eq!(household["child_name"], "赵一诺", "{household}");

    // Three departments finish: the case is still in progress.
    for (department, item_id) in &item_ids[..3] {
        let (status, body) = host
            .post(
                &format!("/v1/departments/{department}/items/{item_id}/complete"),
                &json!({"result": {"reference": format!("{department}-ok")}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["item"]["status"], "completed");
        assert_eq!(body["case"]["status"], "in-progress", "{body}");
    }

    // The last one finishes: the case is completed and says what was done.
    let (department, item_id) = &item_ids[3];
    let (status, body) = host
        .post(
            &format!("/v1/departments/{department}/items/{item_id}/complete"),
            &json!({"result": {"reference": "vaccination-book-77"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["case"]["status"], "completed", "{body}");

    let (status, case) = host.get(&format!("/v1/cases/{case_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(case["status"], "completed");
    let message = case["message"].as_str().unwrap();
    assert!(message.contains("vaccination-book-77"), "{message}");
    assert!(
        case["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["status"] == "completed")
    );
    // The timeline tells the whole story, in order.
    let events: Vec<&str> = case["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events.first(), Some(&"submitted"));
    assert_eq!(
        events.iter().filter(|e| **e == "item-dispatched").count(),
        4
    );
    assert_eq!(events.iter().filter(|e| **e == "item-completed").count(), 4);
    assert!(events.contains(&"data-read"));
    assert_eq!(events.last(), Some(&"status-changed"));

    // The queues are empty again; a second completion is refused.
    for (department, _) in DEPARTMENTS {
        assert!(host.pending(department).await.is_empty());
    }
    let again = host
        .post(
            &format!("/v1/departments/{department}/items/{item_id}/complete"),
            &json!({"result": {}}),
        )
        .await;
    assert_error(again, StatusCode::CONFLICT, "item_not_pending");

    // Every read of the family's data is on the audit record, with purpose.
    let audit = host.audit().await;
    let reads: Vec<_> = audit
        .iter()
        .filter_map(|e| match &e.record {
            onething_host::storage::AuditRecord::DataRead {
                dataset,
                purpose,
                allowed,
                case_id: c,
                ..
            } if c == &case_id => Some((dataset.clone(), purpose.clone(), *allowed)),
            _ => None,
        })
        .collect();
    assert!(
        reads
            .iter()
            .any(|(d, _, a)| d == "health/birth-certificates" && *a)
    );
    assert!(
        reads
            .iter()
            .any(|(d, _, a)| d == "public-security/residents" && *a)
    );
    assert!(reads.iter().all(|(_, p, _)| !p.is_empty()));
    host.stop().await;
}

#[tokio::test]
async fn every_failed_check_refuses_the_application_and_names_the_check() {
    let host = TestHost::start(&["newborn"]).await;
    let refusals = [
        ("certificate-not-found", json!({"certificate_no": "T999"})),
        ("child-name-mismatch", json!({"child_name": "赵二"})),
        (
            "applicant-not-parent",
            json!({"applicant_id": "SOMEONE-ELSE"}),
        ),
        // T200's father is not a registered resident.
        (
            "parent-not-resident",
            json!({"certificate_no": "T200", "child_name": "钱多多", "applicant_id": "M-QIAN-MOTHER", "household_of": "father"}),
        ),
    ];
    for (check, change) in refusals {
        let mut application = newborn_application();
        for (k, v) in change.as_object().unwrap() {
            application[k] = v.clone();
        }
        let (status, body) = host.post("/v1/scenarios/newborn/cases", &application).await;
        // A refused application is still a case: 201 with status rejected.
        assert_eq!(status, StatusCode::CREATED, "{check}: {body}");
        assert_eq!(body["status"], "rejected", "{check}: {body}");
        assert!(
            body["items"].as_array().unwrap().is_empty(),
            "{check}: {body}"
        );
        let message = body["message"].as_str().unwrap();
        assert!(message.starts_with(check), "{check}: {message}");
        let (_, case) = host
            .get(&format!("/v1/cases/{}", body["case_id"].as_str().unwrap()))
            .await;
        assert_eq!(case["status"], "rejected");
    }
    // The same family with the other parent's household is fine.
    let mut ok = newborn_application();
    ok["household_of"] = json!("father");
    let (status, body) = host.post("/v1/scenarios/newborn/cases", &ok).await;
    assert_eq!(
        (status, body["status"].clone()),
        (StatusCode::CREATED, json!("in-progress")),
        "{body}"
    );

    // Nothing was dispatched for the refused ones.
    assert_eq!(host.pending("public-security").await.len(), 1);

    // A form that is not complete never reaches the plugin: 400 names the field.
    let mut missing = newborn_application();
    missing.as_object_mut().unwrap().remove("phone");
    let message = assert_error(
        host.post("/v1/scenarios/newborn/cases", &missing).await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    );
    assert!(message.contains("`phone`"), "{message}");
    let mut wrong = newborn_application();
    wrong["household_of"] = json!("grandmother");
    let message = assert_error(
        host.post("/v1/scenarios/newborn/cases", &wrong).await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    );
    assert!(
        message.contains("`household_of`") && message.contains("mother"),
        "{message}"
    );
    let mut typed = newborn_application();
    typed["certificate_no"] = json!(100);
    let message = assert_error(
        host.post("/v1/scenarios/newborn/cases", &typed).await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    );
    assert!(message.contains("`certificate_no`"), "{message}");
    host.stop().await;
}

#[tokio::test]
async fn a_rejected_item_waits_for_the_parents_and_a_supplement_sends_it_again() {
    let host = TestHost::start(&["newborn"]).await;
    let case = apply(&host, &newborn_application()).await;
    let case_id = case["case_id"].as_str().unwrap();

    // Supplying material while nothing is asked for is refused.
    assert_error(
        host.post(
            &format!("/v1/cases/{case_id}/supplements"),
            &json!({"note": "x"}),
        )
        .await,
        StatusCode::CONFLICT,
        "case_not_awaiting_citizen",
    );

    let item = &host.pending("hrss").await[0];
    let item_id = item["item_id"].as_str().unwrap();
    let (status, body) = host
        .post(
            &format!("/v1/departments/hrss/items/{item_id}/reject"),
            &json!({"reason": "photo missing: upload a passport photo of the child"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["item"]["status"], "rejected");
    assert_eq!(body["case"]["status"], "awaiting-citizen");
    let message = body["case"]["message"].as_str().unwrap();
    assert!(
        message.contains("hrss") && message.contains("photo missing"),
        "{message}"
    );

    // The parents supply the photo; the card office gets a new item with it.
    let (status, body) = host
        .post(
            &format!("/v1/cases/{case_id}/supplements"),
            &json!({"photo": "photo-ref-123"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "in-progress", "{body}");
    let again = host.pending("hrss").await;
    assert_eq!(again.len(), 1);
    assert_ne!(again[0]["item_id"], item_id);
    assert_eq!(
        again[0]["payload"]["supplement"]["photo"], "photo-ref-123",
        "{}",
        again[0]
    );

    // Everyone completes: the case is done.
    for department in [
        "public-security",
        "medical-insurance",
        "hrss",
        "disease-control",
    ] {
        let pending = host.pending(department).await;
        let item_id = pending[0]["item_id"].as_str().unwrap();
        let (status, body) = host
            .post(
                &format!("/v1/departments/{department}/items/{item_id}/complete"),
                &json!({"result": {"ok": true}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, case) = host.get(&format!("/v1/cases/{case_id}")).await;
    assert_eq!(case["status"], "completed", "{case}");
    host.stop().await;
}

#[tokio::test]
async fn departments_finishing_at_once_are_applied_one_at_a_time() {
    let host = TestHost::start(&["newborn"]).await;
    let case = apply(&host, &newborn_application()).await;
    let case_id = case["case_id"].as_str().unwrap().to_owned();
    let mut calls = Vec::new();
    for item in case["items"].as_array().unwrap() {
        let api = host.api.clone();
        let path = format!(
            "/v1/departments/{}/items/{}/complete",
            item["department"].as_str().unwrap(),
            item["item_id"].as_str().unwrap()
        );
        calls.push(tokio::spawn(async move {
            api.post_req(&path, &json!({"result": {"done": true}}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for call in calls {
        assert_eq!(call.await.unwrap(), StatusCode::OK);
    }
    let (_, case) = host.get(&format!("/v1/cases/{case_id}")).await;
    assert_eq!(case["status"], "completed", "{case}");
    let completed = case["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "item-completed")
        .count();
    assert_eq!(completed, 4);
    host.stop().await;
}

#[tokio::test]
async fn a_case_survives_a_restart_and_goes_on_where_it_stopped() {
    let dirs = tempfile::tempdir().unwrap();
    let data_dir = dirs.path().join("data");
    let plugins_dir = dirs.path().join("plugins");
    std::fs::create_dir_all(plugins_dir.join("newborn")).unwrap();
    for file in ["onething.toml", "plugin.wasm"] {
        std::fs::copy(
            crate::support::plugin_dir("newborn").join(file),
            plugins_dir.join("newborn").join(file),
        )
        .unwrap();
    }
    let config = onething_host::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir,
        plugins_dir,
        // The demo data's first family applies.
        demo_data: true,
        ..Default::default()
    };
    let application = json!({
        "certificate_no": "Q500000001",
        "child_name": "王小明",
        "applicant_id": "500103199001010018",
        "household_of": "father",
        "phone": "13800000001",
    });
    let server = onething_host::server::Server::start(config.clone())
        .await
        .unwrap();
    let api = Api::new(format!("http://{}", server.addr()));
    let case = apply(&api, &application).await;
    let case_id = case["case_id"].as_str().unwrap().to_owned();
    assert_eq!(case["status"], "in-progress", "{case}");
    server.shutdown().await;

    // Same data dir, new process state: the case and its items are there,
    // and departments carry on. The demo family is placed (the residence
    // record's grid): each item is its owning office's, so an officer of
    // that office completes it.
    let server = onething_host::server::Server::start(config).await.unwrap();
    let api = Api::new(format!("http://{}", server.addr()));
    let (_, case) = api.get(&format!("/v1/cases/{case_id}")).await;
    assert_eq!(case["status"], "in-progress");
    assert_eq!(
        case["place"], "cq/yuzhong/jiefangbei/minsheng/g01",
        "{case}"
    );
    for item in case["items"].as_array().unwrap() {
        let department = item["department"].as_str().unwrap();
        let office = item["office"]["place"].as_str();
        let expected = if department == "public-security" {
            "cq/yuzhong"
        } else {
            "cq"
        };
        assert_eq!(office, Some(expected), "{item}");
        let officer = onething_host::identity::issue_dev_officer(
            &format!("{department}-officer"),
            department,
            office,
            chrono::Utc::now().timestamp(),
            600,
        );
        let response = reqwest::Client::new()
            .post(format!(
                "{}/v1/departments/{department}/items/{}/complete",
                api.base,
                item["item_id"].as_str().unwrap()
            ))
            .bearer_auth(officer)
            .json(&json!({"result": {"ok": true}}))
            .send()
            .await
            .unwrap();
        let (status, body) = crate::support::into_json(response).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, case) = api.get(&format!("/v1/cases/{case_id}")).await;
    assert_eq!(case["status"], "completed");
    server.shutdown().await;
}

#[tokio::test]
async fn the_parents_withdraw_and_open_items_are_cancelled() {
    let host = TestHost::start(&["newborn"]).await;
    let case = apply(&host, &newborn_application()).await;
    let case_id = case["case_id"].as_str().unwrap();
    // One department has finished already.
    let done = &host.pending("hrss").await[0];
    let done_id = done["item_id"].as_str().unwrap();
    host.post(
        &format!("/v1/departments/hrss/items/{done_id}/complete"),
        &json!({"result": {"card": "ok"}}),
    )
    .await;

    let (status, case) = host
        .post(
            &format!("/v1/cases/{case_id}/cancel"),
            &json!({"reason": "we moved to another city"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{case}");
    assert_eq!(case["status"], "rejected");
    assert!(
        case["message"].as_str().unwrap().contains("another city"),
        "{case}"
    );
    for item in case["items"].as_array().unwrap() {
        let expected = if item["department"] == "hrss" {
            "completed"
        } else {
            "cancelled"
        };
        assert_eq!(item["status"], expected, "{item}");
    }
    // The departments see it: nothing pending, the cancellation in their queue.
    assert!(host.pending("public-security").await.is_empty());
    let (_, queue) = host
        .get("/v1/departments/public-security/items?status=cancelled")
        .await;
    let cancelled = &queue["items"][0];
    assert_eq!(cancelled["case_id"], case_id);
    // A cancelled item cannot be completed; a closed case cannot be withdrawn.
    assert_error(
        host.post(
            &format!(
                "/v1/departments/public-security/items/{}/complete",
                cancelled["item_id"].as_str().unwrap()
            ),
            &json!({"result": {}}),
        )
        .await,
        StatusCode::CONFLICT,
        "item_not_pending",
    );
    assert_error(
        host.post(&format!("/v1/cases/{case_id}/cancel"), &json!({}))
            .await,
        StatusCode::CONFLICT,
        "case_closed",
    );
    host.stop().await;
}

#[tokio::test]
async fn the_parents_check_the_evidence_before_anything_is_sent() {
    let host = TestHost::start(&["newborn"]).await;
    let mut application = newborn_application();
    application["preview_evidence"] = json!(true);

    let case = apply(&host, &application).await;
    assert_eq!(case["status"], "awaiting-citizen", "{case}");
    assert!(case["items"].as_array().unwrap().is_empty());
    let message = case["message"].as_str().unwrap();
    assert!(
        message.contains("赵一诺") && message.contains("from health"),
        "{message}"
    );
    assert!(message.contains("from public-security"), "{message}");
    let case_id = case["case_id"].as_str().unwrap();
    // Where each piece came from, as the host recorded the reads.
    let (_, full) = host.get(&format!("/v1/cases/{case_id}")).await;
    let sources: Vec<&str> = full["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["department"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["health", "public-security"], "{full}");
    assert!(host.pending("public-security").await.is_empty());

    // They confirm: the four items go out.
    let (status, confirmed) = host
        .post(&format!("/v1/cases/{case_id}/evidence/confirm"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    assert_eq!(confirmed["status"], "in-progress");
    assert_eq!(confirmed["items"].as_array().unwrap().len(), 4);

    // Another family declines: the case ends, nothing is sent.
    let case = apply(&host, &application).await;
    let case_id = case["case_id"].as_str().unwrap();
    let (status, declined) = host
        .post(&format!("/v1/cases/{case_id}/evidence/decline"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{declined}");
    assert_eq!(declined["status"], "rejected");
    assert!(
        declined["message"]
            .as_str()
            .unwrap()
            .starts_with("evidence-declined")
    );
    assert!(declined["items"].as_array().unwrap().is_empty());
    assert_eq!(
        host.pending("public-security").await.len(),
        1,
        "only the confirmed case's item"
    );
    host.stop().await;
}
