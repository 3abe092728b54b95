//! The tutorial's tests (docs/plugin-authoring.md; keep the two the same).

use onething_testkit::TestKit;
use onething_testkit::model::CaseStatus;
use serde_json::json;

#[tokio::test]
async fn a_resident_gets_a_certificate() {
    let kit = TestKit::load("../dist/plugins/residence-certificate")
        .await
        .unwrap();
    kit.dataset(
        "public-security/residents",
        "id_number",
        &[json!({"id_number": "R1", "name": "李", "address": "A路1号"})],
    )
    .await
    .unwrap();

    let case = kit
        .apply(json!({"applicant_id": "R1", "purpose": "school"}))
        .await
        .unwrap();
    assert_eq!(case.status, CaseStatus::InProgress);
    let item = &case.items_of("community")[0];
    assert_eq!(item.payload["address"], "A路1号");

    // Three working days pass with nothing done: the host reports it.
    assert_eq!(kit.pass(chrono::Duration::days(5)).await.unwrap(), 1);

    let case = kit
        .complete(&item.id, json!({"certificate_no": "C-1"}))
        .await
        .unwrap();
    assert_eq!(case.status, CaseStatus::Completed);
}

#[tokio::test]
async fn a_stranger_is_refused() {
    let kit = TestKit::load("../dist/plugins/residence-certificate")
        .await
        .unwrap();
    let case = kit
        .apply(json!({"applicant_id": "X", "purpose": "school"}))
        .await
        .unwrap();
    assert_eq!(case.status, CaseStatus::Rejected);
    assert!(case.message.starts_with("not-resident"));
}
