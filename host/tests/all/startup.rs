//! Business start-up over HTTP: six departments at once; when registration is
//! refused after others finished, the plugin compensates.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestHost;

fn company() -> Value {
    json!({"company_name": "渝快科技有限公司", "legal_person_id": "L1", "address": "重庆市渝北区",
           "registered_capital": 1000000, "phone": "1"})
}

async fn item_of(host: &TestHost, department: &str) -> String {
    let pending = host.pending(department).await;
    assert_eq!(pending.len(), 1, "{department}: {pending:?}");
    pending[0]["item_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn six_departments_at_once_open_the_company() {
    let host = TestHost::start(&["business-startup"]).await;
    let (status, case) = host
        .post("/v1/scenarios/business-startup/cases", &company())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let items = case["items"].as_array().unwrap();
    assert_eq!(items.len(), 6);
    assert!(
        items
            .iter()
            .all(|i| i["due"] == json!({"unit": "hours", "count": 4}))
    );
    let mut last = Value::Null;
    for department in [
        "market-regulation",
        "public-security",
        "tax",
        "hrss",
        "housing-fund",
        "bank",
    ] {
        let item = item_of(&host, department).await;
        let (status, body) = host
            .post(
                &format!("/v1/departments/{department}/items/{item}/complete"),
                &json!({"result": {"ok": true}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        last = body;
    }
    assert_eq!(last["case"]["status"], "completed", "{last}");
    host.stop().await;
}

#[tokio::test]
async fn a_refused_registration_is_compensated() {
    let host = TestHost::start(&["business-startup"]).await;
    let (_, case) = host
        .post("/v1/scenarios/business-startup/cases", &company())
        .await;
    let case_id = case["case_id"].as_str().unwrap().to_owned();

    // The seal and the invoices are done before the registration is refused.
    for department in ["public-security", "tax"] {
        let item = item_of(&host, department).await;
        let (status, _) = host
            .post(
                &format!("/v1/departments/{department}/items/{item}/complete"),
                &json!({"result": {"ref": department}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let registration = item_of(&host, "market-regulation").await;
    let (status, body) = host
        .post(
            &format!("/v1/departments/market-regulation/items/{registration}/reject"),
            &json!({"reason": "the name is already taken"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["case"]["status"], "rejected");
    let message = body["case"]["message"].as_str().unwrap();
    assert!(
        message.contains("already taken") && message.contains("Compensation"),
        "{message}"
    );

    // Still-open items were cancelled; their departments see it.
    for department in ["hrss", "housing-fund", "bank"] {
        assert!(host.pending(department).await.is_empty(), "{department}");
        let (_, queue) = host
            .get(&format!(
                "/v1/departments/{department}/items?status=cancelled"
            ))
            .await;
        assert_eq!(
            queue["items"].as_array().unwrap().len(),
            1,
            "{department}: {queue}"
        );
    }
    // The departments that had finished are asked to reverse.
    for (department, task) in [
        ("public-security", "reverse-company-seal"),
        ("tax", "reverse-invoice-issuance"),
    ] {
        let pending = host.pending(department).await;
        assert_eq!(pending.len(), 1, "{department}");
        assert_eq!(pending[0]["task"], task);
        assert_eq!(pending[0]["payload"]["result"]["ref"], department);
    }
    // The case's timeline tells the compensation.
    let (_, case) = host.get(&format!("/v1/cases/{case_id}")).await;
    let cancelled = case["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "item-cancelled")
        .count();
    assert_eq!(cancelled, 3, "{case}");

    // A reversal done: the case stays rejected and counts what is left.
    let reversal = item_of(&host, "tax").await;
    let (status, body) = host
        .post(
            &format!("/v1/departments/tax/items/{reversal}/complete"),
            &json!({"result": {"voided": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["case"]["status"], "rejected");
    assert!(
        body["case"]["message"]
            .as_str()
            .unwrap()
            .contains("1 reversal"),
        "{body}"
    );
    host.stop().await;
}
