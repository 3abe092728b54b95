//! A department's 0.1.0 component keeps running on the 0.2.0 host: the
//! newborn package signed before the contract moved (checked in as bytes,
//! `host/tests/fixtures/newborn-0.1.0.pkg`) is uploaded, activated and
//! serves its whole journey, while the examples built from this tree by
//! the SDK are 0.2.0 components.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestHost, newborn_application, repo_root};

const TOKEN: &str = "world-0-1-admin";

const DEPARTMENTS: [&str; 4] = [
    "public-security",
    "medical-insurance",
    "hrss",
    "disease-control",
];

async fn admin(host: &TestHost, method: Method, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let answer = host
        .client
        .request(method, format!("{}{path}", host.base))
        .bearer_auth(TOKEN)
        .body(body)
        .send()
        .await
        .unwrap();
    crate::support::into_json(answer).await
}

#[tokio::test]
async fn an_example_built_by_the_sdk_is_a_0_2_0_component() {
    let host = TestHost::start_with(&["newborn"], |config| {
        config.admin_token = Some(TOKEN.into())
    })
    .await;
    let (status, plugin) = admin(&host, Method::GET, "/v1/admin/plugins/newborn", vec![]).await;
    assert_eq!(status, StatusCode::OK, "{plugin}");
    assert_eq!(plugin["versions"][0]["world"], "0.2.0", "{plugin}");
    assert_eq!(plugin["versions"][0]["loaded"], true, "{plugin}");
    host.stop().await;
}

#[tokio::test]
async fn a_0_1_0_newborn_package_serves_its_whole_journey_on_the_new_host() {
    let host = TestHost::start_with(&[], |config| config.admin_token = Some(TOKEN.into())).await;
    let fixtures = repo_root().join("host/tests/fixtures");
    let key = std::fs::read(fixtures.join("newborn-0.1.0.pub")).unwrap();
    let package = std::fs::read(fixtures.join("newborn-0.1.0.pkg")).unwrap();

    // The operator trusts the health key and allows what newborn asks for.
    let (status, body) = admin(&host, Method::POST, "/v1/admin/keys", key).await;
    assert!(status.is_success(), "{body}");
    let ceiling = json!({
        "datasets": ["health/birth-certificates", "public-security/residents"],
        "dispatch": DEPARTMENTS,
    });
    let (status, body) = admin(
        &host,
        Method::PUT,
        "/v1/admin/grants/health",
        ceiling.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The 0.1.0 package is accepted and activated, and shows its world.
    let (status, body) = admin(
        &host,
        Method::POST,
        "/v1/admin/plugins?activate=true",
        package,
    )
    .await;
    assert!(status.is_success(), "{body}");
    let (status, plugin) = admin(&host, Method::GET, "/v1/admin/plugins/newborn", vec![]).await;
    assert_eq!(status, StatusCode::OK, "{plugin}");
    let version = &plugin["versions"][0];
    assert_eq!(version["version"], "0.1.0", "{plugin}");
    assert_eq!(version["world"], "0.1.0", "{plugin}");
    assert_eq!(version["loaded"], true, "{plugin}");

    // The mother applies once; four departments get their item.
    let (status, case) = host
        .post("/v1/scenarios/newborn/cases", &newborn_application())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    assert_eq!(case["status"], "in-progress", "{case}");
    let case_id = case["case_id"].as_str().unwrap().to_owned();

    // Each department completes; after the last one the case is done.
    for (n, department) in DEPARTMENTS.into_iter().enumerate() {
        let pending = host.pending(department).await;
        assert_eq!(pending.len(), 1, "{department}: {pending:?}");
        // A 0.1.0 work item gets the defaults: priority normal.
        assert_eq!(pending[0]["priority"], "normal", "{pending:?}");
        let item_id = pending[0]["item_id"].as_str().unwrap();
        let (status, body) = host
            .post(
                &format!("/v1/departments/{department}/items/{item_id}/complete"),
                &json!({"result": {"reference": format!("{department}-ok")}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let expected = if n == 3 { "completed" } else { "in-progress" };
        assert_eq!(body["case"]["status"], expected, "{body}");
    }
    let (status, case) = host.get(&format!("/v1/cases/{case_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(case["status"], "completed", "{case}");
    host.stop().await;
}
