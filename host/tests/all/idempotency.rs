//! Resubmitting the same application never creates a second case.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestHost, assert_error, into_json, newborn_application};

async fn apply_with_key(host: &TestHost, key: &str, body: &Value) -> (StatusCode, Value, bool) {
    let response = host
        .post_req("/v1/scenarios/newborn/cases", body)
        .header("Idempotency-Key", key)
        .send()
        .await
        .unwrap();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    let (status, body) = into_json(response).await;
    (status, body, replayed)
}

#[tokio::test]
async fn the_same_key_returns_the_first_case() {
    let host = TestHost::start(&["newborn"]).await;
    let application = newborn_application();
    let (status, first, replayed) = apply_with_key(&host, "apply-zhao-1", &application).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert!(!replayed);
    let (status, second, replayed) = apply_with_key(&host, "apply-zhao-1", &application).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert!(replayed);
    assert_eq!(first["case_id"], second["case_id"]);
    assert_eq!(first["items"], second["items"]);
    // Only one set of items went out.
    assert_eq!(host.pending("hrss").await.len(), 1);

    // The same key for a different application is an error, not a replay.
    let mut other = application.clone();
    other["phone"] = json!("13911111111");
    let (status, body, _) = apply_with_key(&host, "apply-zhao-1", &other).await;
    assert_error(
        (status, body),
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );

    // A new key is a new case.
    let (status, third, _) = apply_with_key(&host, "apply-zhao-2", &application).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(third["case_id"], first["case_id"]);
    assert_eq!(host.pending("hrss").await.len(), 2);
    host.stop().await;
}

#[tokio::test]
async fn concurrent_submissions_with_one_key_make_one_case() {
    let host = TestHost::start(&["newborn"]).await;
    let mut calls = Vec::new();
    for _ in 0..8 {
        let api = host.api.clone();
        calls.push(tokio::spawn(async move {
            let response = api
                .post_req("/v1/scenarios/newborn/cases", &newborn_application())
                .header("Idempotency-Key", "double-click")
                .send()
                .await
                .unwrap();
            into_json(response).await
        }));
    }
    let mut ids = Vec::new();
    for call in calls {
        let (status, body) = call.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["case_id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(host.pending("public-security").await.len(), 1);
    host.stop().await;
}
