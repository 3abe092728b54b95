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

/// The kit's other calls, as docs/plugin-authoring.md ("The kit's calls")
/// shows them: keep the two the same.
#[tokio::test]
async fn the_kit_calls_of_the_docs() {
    use onething_testkit::Calendar;

    // Two days off right after the kit's start (Tuesday 2026-11-24, 10:00 in Beijing).
    let calendar = Calendar::new(8)
        .with_holidays("2026-11-25 holiday\n2026-11-26 holiday\n")
        .unwrap();
    let kit = TestKit::load_with_calendar("../dist/plugins/residence-certificate", calendar)
        .await
        .unwrap();
    kit.dataset(
        "public-security/residents",
        "id_number",
        &[json!({"id_number": "R1", "name": "李", "address": "A路1号"})],
    )
    .await
    .unwrap();
    let started = kit.now();

    // R1 applies with their token: the subject field is filled in with R1.
    let case = kit
        .apply_as("R1", json!({"purpose": "school"}))
        .await
        .unwrap();
    assert_eq!(case.status, CaseStatus::InProgress);
    assert_eq!(case.pending().len(), 1);

    // Five days later, three working days have not passed (two were holidays).
    assert_eq!(kit.pass(chrono::Duration::days(5)).await.unwrap(), 0);
    assert_eq!(kit.now() - started, chrono::Duration::days(5));

    // The community refuses; the plugin turns the case down with the reason.
    let item = case.pending()[0].id.clone();
    let case = kit.reject(&item, "no such address").await.unwrap();
    assert_eq!(case.status, CaseStatus::Rejected);
    assert_eq!(case.message, "no such address");
    assert!(case.pending().is_empty());

    // The same case, read again.
    let again = kit.case(&case.id).await.unwrap();
    assert_eq!(again.status, CaseStatus::Rejected);
    assert_eq!(again.items.len(), 1);
}
