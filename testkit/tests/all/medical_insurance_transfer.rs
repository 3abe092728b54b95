//! The medical insurance transfer, tested with the kit: the receiving office
//! gets its item only after the sending office has finished.

use onething_testkit::TestKit;
use onething_testkit::model::{CaseStatus, Due, ItemStatus};
use serde_json::json;

use crate::common;

async fn kit() -> TestKit {
    let kit = TestKit::load(common::example("medical-insurance-transfer"))
        .await
        .unwrap();
    kit.dataset(
        "medical-insurance/enrolments",
        "id_number",
        &[
            json!({"id_number": "A", "region": "chengdu", "status": "active"}),
            json!({"id_number": "B", "region": "chengdu", "status": "suspended"}),
        ],
    )
    .await
    .unwrap();
    kit
}

fn form(id: &str) -> serde_json::Value {
    json!({"applicant_id": id, "from_region": "chengdu", "to_region": "chongqing", "phone": "1"})
}

#[tokio::test]
async fn the_receiving_office_waits_for_the_sending_office() {
    let kit = kit().await;
    let case = kit.apply(form("A")).await.unwrap();
    assert_eq!(case.status, CaseStatus::InProgress);
    assert_eq!(case.items.len(), 1, "only the sending office has an item");
    assert_eq!(case.items[0].task, "transfer-out");
    assert_eq!(case.items[0].due, Due::WorkingDays(10));

    let case = kit
        .complete(&case.items[0].id, json!({"form_no": "F-1", "sealed": true}))
        .await
        .unwrap();
    assert_eq!(case.items.len(), 2);
    let receiving = &case.items[1];
    assert_eq!(receiving.task, "transfer-in");
    assert_eq!(receiving.due, Due::WorkingDays(5));
    assert_eq!(receiving.payload["transfer_form"]["form_no"], "F-1");
    assert_eq!(case.items[0].status, ItemStatus::Completed);

    let case = kit
        .complete(&receiving.id, json!({"note": "welcome"}))
        .await
        .unwrap();
    assert_eq!(case.status, CaseStatus::Completed);
}

#[tokio::test]
async fn a_suspended_insurance_is_refused_and_a_refusal_by_an_office_ends_it() {
    let kit = kit().await;
    let case = kit.apply(form("B")).await.unwrap();
    assert_eq!(case.status, CaseStatus::Rejected);
    assert!(case.message.starts_with("not-active"), "{}", case.message);

    let case = kit.apply(form("A")).await.unwrap();
    let case = kit
        .reject(&case.items[0].id, "premiums in arrears")
        .await
        .unwrap();
    assert_eq!(case.status, CaseStatus::Rejected);
    assert!(case.message.contains("arrears"), "{}", case.message);
}

#[tokio::test]
async fn a_slow_sending_office_is_reported_after_ten_working_days() {
    let kit = kit().await;
    kit.apply(form("A")).await.unwrap();
    // Nine working days (and two weekends) later: not yet.
    assert_eq!(kit.pass(chrono::Duration::days(13)).await.unwrap(), 0);
    assert_eq!(kit.pass(chrono::Duration::days(1)).await.unwrap(), 1);
}

/// A kit on the demo tree: `Y` is insured in 渝中区 (its record says so),
/// `S` in another province (no place on this tree).
async fn placed_kit() -> TestKit {
    let kit = kit().await;
    kit.places(onething_host::places::DEMO_PLACES)
        .await
        .unwrap();
    kit.dataset(
        "medical-insurance/enrolments",
        "id_number",
        &[
            json!({"id_number": "Y", "region": "chongqing-yuzhong", "status": "active",
                   "place": "cq/yuzhong"}),
            json!({"id_number": "S", "region": "sichuan-chengdu", "status": "active"}),
        ],
    )
    .await
    .unwrap();
    kit
}

fn moving(id: &str, from: &str, to_district: &str) -> serde_json::Value {
    json!({"applicant_id": id, "from_region": from, "to_region": "chongqing-jiangbei",
           "to_district": to_district, "phone": "1"})
}

#[tokio::test]
async fn the_district_that_holds_the_insurance_sends_it_and_the_one_moved_to_receives_it() {
    let kit = placed_kit().await;
    let case = kit
        .apply(moving("Y", "chongqing-yuzhong", "cq/jiangbei"))
        .await
        .unwrap();
    assert_eq!(case.status, CaseStatus::InProgress, "{}", case.message);
    // The case is where the applicant moves to.
    assert_eq!(case.place.as_deref(), Some("cq/jiangbei"));
    let sending = &case.items[0];
    assert_eq!(sending.place.as_deref(), Some("cq/yuzhong"));
    assert_eq!(sending.office.as_deref(), Some("cq/yuzhong"));

    let case = kit
        .complete(&sending.id, json!({"form_no": "F-2"}))
        .await
        .unwrap();
    let receiving = &case.items[1];
    assert_eq!(receiving.task, "transfer-in");
    assert_eq!(receiving.office.as_deref(), Some("cq/jiangbei"));
}

#[tokio::test]
async fn moving_within_the_same_district_is_refused() {
    let kit = placed_kit().await;
    let case = kit
        .apply(moving("Y", "chongqing-yuzhong", "cq/yuzhong"))
        .await
        .unwrap();
    assert_eq!(case.status, CaseStatus::Rejected);
    assert!(
        case.message.starts_with("same-district"),
        "{}",
        case.message
    );
    assert!(case.items.is_empty());
}

#[tokio::test]
async fn insurance_from_another_province_is_sent_on_by_the_city_office() {
    let kit = placed_kit().await;
    let case = kit
        .apply(moving("S", "sichuan-chengdu", "cq/jiangbei"))
        .await
        .unwrap();
    assert_eq!(case.status, CaseStatus::InProgress, "{}", case.message);
    // Not the receiving district's office: the city's.
    assert_eq!(case.items[0].office.as_deref(), Some("cq"));
}
