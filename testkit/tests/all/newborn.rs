//! The newborn plugin, tested with the kit as its department would: fixture
//! data, scripted department answers, time passing. No server, no HTTP.

use onething_testkit::TestKit;
use onething_testkit::model::{CaseStatus, ItemStatus, TimelineEvent};
use serde_json::{Value, json};

use crate::common;

async fn kit() -> TestKit {
    let kit = TestKit::load(common::example("newborn")).await.unwrap();
    kit.dataset(
        "health/birth-certificates",
        "certificate_no",
        &[
            json!({"certificate_no": "K1", "child_name": "孙小花", "sex": "female",
                 "born_at": "2026-11-20T08:00:00+08:00", "hospital": "H",
                 "mother_id": "KM", "father_id": "KF"}),
        ],
    )
    .await
    .unwrap();
    kit.dataset(
        "public-security/residents",
        "id_number",
        &[json!({"id_number": "KM", "name": "母", "household_id": "KH", "address": "A"})],
    )
    .await
    .unwrap();
    kit
}

fn form(household_of: &str) -> Value {
    json!({"certificate_no": "K1", "child_name": "孙小花", "applicant_id": "KM",
           "household_of": household_of, "phone": "1"})
}

#[tokio::test]
async fn four_completions_complete_the_case() {
    let kit = kit().await;
    let case = kit.apply(form("mother")).await.unwrap();
    assert_eq!(case.status, CaseStatus::InProgress);
    assert_eq!(case.items.len(), 4);
    let mut last = case.clone();
    for item in &case.items {
        last = kit
            .complete(&item.id, json!({"ref": item.task}))
            .await
            .unwrap();
    }
    assert_eq!(last.status, CaseStatus::Completed);
    assert!(
        last.message.contains("household-registration"),
        "{}",
        last.message
    );
}

#[tokio::test]
async fn the_fathers_household_is_refused_when_he_is_not_registered() {
    let kit = kit().await;
    let case = kit.apply(form("father")).await.unwrap();
    assert_eq!(case.status, CaseStatus::Rejected);
    assert!(
        case.message.starts_with("parent-not-resident"),
        "{}",
        case.message
    );
    assert!(case.items.is_empty());
}

#[tokio::test]
async fn a_rejection_waits_for_material_and_the_supplement_resends() {
    let kit = kit().await;
    let case = kit.apply(form("mother")).await.unwrap();
    let card = case.items_of("hrss")[0].id.clone();
    let case = kit.reject(&card, "photo missing").await.unwrap();
    assert_eq!(case.status, CaseStatus::AwaitingCitizen);
    let case = kit
        .supplement(&case.id, json!({"photo": "p"}))
        .await
        .unwrap();
    assert_eq!(case.status, CaseStatus::InProgress);
    let cards = case.items_of("hrss");
    assert_eq!(cards.len(), 2);
    assert_eq!(cards[0].status, ItemStatus::Rejected);
    assert_eq!(cards[1].status, ItemStatus::Pending);
    assert_eq!(cards[1].payload["supplement"]["photo"], "p");
}

#[tokio::test]
async fn when_time_runs_out_the_parents_are_told() {
    let kit = kit().await;
    let case = kit.apply(form("mother")).await.unwrap();
    // Four working days: nothing is due yet.
    assert_eq!(kit.pass(chrono::Duration::days(4)).await.unwrap(), 0);
    // A week later all four are overdue, each reported once.
    assert_eq!(kit.pass(chrono::Duration::days(4)).await.unwrap(), 4);
    assert_eq!(kit.pass(chrono::Duration::days(1)).await.unwrap(), 0);
    let case = kit.case(&case.id).await.unwrap();
    let overdue = case
        .timeline
        .iter()
        .filter(|e| matches!(e.event, TimelineEvent::ItemOverdue { .. }))
        .count();
    assert_eq!(overdue, 4);
    assert_eq!(case.status, CaseStatus::InProgress);
}

#[tokio::test]
async fn applying_as_a_citizen_fills_in_the_applicant_and_refuses_another() {
    let kit = kit().await;
    let mut anonymous_form = form("mother");
    anonymous_form
        .as_object_mut()
        .unwrap()
        .remove("applicant_id");
    // The mother, identified: the plugin's parent check sees her id.
    let case = kit.apply_as("KM", anonymous_form.clone()).await.unwrap();
    assert_eq!(case.status, CaseStatus::InProgress, "{}", case.message);
    // A stranger applying for the child: the plugin refuses, by name.
    let case = kit.apply_as("STRANGER", anonymous_form).await.unwrap();
    assert!(
        case.message.starts_with("applicant-not-parent"),
        "{}",
        case.message
    );
    // The father's token with the mother's id in the form: refused.
    let refused = kit.apply_as("KF", form("mother")).await;
    assert!(refused.is_err());
}
