//! Business start-up, tested with the kit: compensation when registration
//! is refused, and hours-based deadlines.

use onething_testkit::TestKit;
use onething_testkit::model::{CaseStatus, ItemStatus};
use serde_json::json;

use crate::common;

fn company() -> serde_json::Value {
    json!({"company_name": "C", "legal_person_id": "L", "address": "A",
           "registered_capital": 1, "phone": "1"})
}

#[tokio::test]
async fn registration_refused_after_the_bank_opened_the_account() {
    let kit = TestKit::load(common::example("business-startup"))
        .await
        .unwrap();
    let case = kit.apply(company()).await.unwrap();
    let bank = case.items_of("bank")[0].id.clone();
    kit.complete(&bank, json!({"account": "6222"}))
        .await
        .unwrap();
    let registration = case.items_of("market-regulation")[0].id.clone();
    let case = kit
        .reject(&registration, "capital below the minimum")
        .await
        .unwrap();
    assert_eq!(case.status, CaseStatus::Rejected);
    let cancelled = case
        .items
        .iter()
        .filter(|i| i.status == ItemStatus::Cancelled)
        .count();
    assert_eq!(cancelled, 4, "seal, invoices, insurance, fund");
    let reversal = case.items_of("bank");
    assert_eq!(reversal.len(), 2);
    assert_eq!(reversal[1].task, "reverse-basic-account");
    assert_eq!(reversal[1].payload["result"]["account"], "6222");
}

#[tokio::test]
async fn items_are_due_in_hours() {
    let kit = TestKit::load(common::example("business-startup"))
        .await
        .unwrap();
    kit.apply(company()).await.unwrap();
    assert_eq!(kit.pass(chrono::Duration::hours(3)).await.unwrap(), 0);
    assert_eq!(kit.pass(chrono::Duration::hours(2)).await.unwrap(), 6);
}

#[tokio::test]
async fn every_item_goes_to_the_offices_of_the_district_the_company_registers_in() {
    let kit = TestKit::load(common::example("business-startup"))
        .await
        .unwrap();
    kit.places(onething_host::places::DEMO_PLACES)
        .await
        .unwrap();
    let mut form = company();
    form["district"] = json!("cq/yubei");
    let case = kit.apply(form).await.unwrap();
    assert_eq!(case.status, CaseStatus::InProgress, "{}", case.message);
    assert_eq!(case.place.as_deref(), Some("cq/yubei"));
    let office = |department: &str| {
        let item = case.items_of(department)[0];
        assert_eq!(item.place.as_deref(), Some("cq/yubei"), "{department}");
        item.office.clone()
    };
    // Registration and the seal: the district's own offices.
    assert_eq!(office("market-regulation").as_deref(), Some("cq/yubei"));
    assert_eq!(office("public-security").as_deref(), Some("cq/yubei"));
    // Departments with no office in the district: the nearest above it.
    for department in ["tax", "hrss", "housing-fund", "bank"] {
        assert_eq!(office(department).as_deref(), Some("cq"), "{department}");
    }

    // Compensation stays in the district too.
    let seal = case.items_of("public-security")[0].id.clone();
    kit.complete(&seal, json!({"seal": "S-1"})).await.unwrap();
    let registration = case.items_of("market-regulation")[0].id.clone();
    let case = kit.reject(&registration, "name taken").await.unwrap();
    let reversal = case.items_of("public-security")[1];
    assert_eq!(reversal.task, "reverse-company-seal");
    assert_eq!(reversal.office.as_deref(), Some("cq/yubei"));
}

#[tokio::test]
async fn a_district_that_is_not_in_the_tree_is_refused() {
    let kit = TestKit::load(common::example("business-startup"))
        .await
        .unwrap();
    kit.places(onething_host::places::DEMO_PLACES)
        .await
        .unwrap();
    let mut form = company();
    form["district"] = json!("cq/nowhere");
    assert!(kit.apply(form).await.is_err());
}
