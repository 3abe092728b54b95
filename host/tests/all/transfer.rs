//! Medical insurance transfer over HTTP: the sending office, then the
//! receiving office, each side's status visible on the case.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestHost;

#[tokio::test]
async fn the_case_shows_each_side_and_the_second_waits_for_the_first() {
    let host = TestHost::start(&["medical-insurance-transfer"]).await;
    host.storage
        .import_dataset(
            "medical-insurance/enrolments",
            vec![(
                "P1".into(),
                json!({"id_number": "P1", "region": "chengdu", "status": "active"}).to_string(),
            )],
        )
        .await
        .unwrap();
    let (status, case) = host
        .post(
            "/v1/scenarios/medical-insurance-transfer/cases",
            &json!({"applicant_id": "P1", "from_region": "chengdu", "to_region": "chongqing", "phone": "1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let case_id = case["case_id"].as_str().unwrap();
    assert_eq!(case["items"].as_array().unwrap().len(), 1);

    let queue = host.pending("medical-insurance").await;
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0]["task"], "transfer-out");
    assert_eq!(queue[0]["payload"]["office"], "chengdu");
    let out = queue[0]["item_id"].as_str().unwrap();
    let (status, _) = host
        .post(
            &format!("/v1/departments/medical-insurance/items/{out}/complete"),
            &json!({"result": {"form_no": "F-9"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Each side's status on the case: out completed, in pending.
    let (_, case) = host.get(&format!("/v1/cases/{case_id}")).await;
    let items = case["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{case}");
    assert_eq!(
        (items[0]["task"].clone(), items[0]["status"].clone()),
        (json!("transfer-out"), json!("completed"))
    );
    assert_eq!(
        (items[1]["task"].clone(), items[1]["status"].clone()),
        (json!("transfer-in"), json!("pending"))
    );

    let queue = host.pending("medical-insurance").await;
    assert_eq!(queue[0]["payload"]["office"], "chongqing");
    let into = queue[0]["item_id"].as_str().unwrap();
    let (status, body) = host
        .post(
            &format!("/v1/departments/medical-insurance/items/{into}/complete"),
            &json!({"result": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["case"]["status"], "completed");
    host.stop().await;
}
