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

/// A kit on the demo place tree, with a family in each of two districts
/// (`KM` in 渝中区, `JM` in 江北区) and one whose record has no place
/// (`NM`).
async fn placed_kit() -> TestKit {
    let kit = kit().await;
    kit.places(onething_host::places::DEMO_PLACES)
        .await
        .unwrap();
    let cert = |no: &str, mother: &str| {
        json!({"certificate_no": no, "child_name": "孙小花", "sex": "female",
               "born_at": "2026-11-20T08:00:00+08:00", "hospital": "H",
               "mother_id": mother, "father_id": "KF"})
    };
    kit.dataset(
        "health/birth-certificates",
        "certificate_no",
        &[cert("K1", "KM"), cert("J1", "JM"), cert("N1", "NM")],
    )
    .await
    .unwrap();
    kit.dataset(
        "public-security/residents",
        "id_number",
        &[
            json!({"id_number": "KM", "name": "母", "household_id": "KH", "address": "A",
                   "place": "cq/yuzhong/jiefangbei/minsheng/g01"}),
            json!({"id_number": "JM", "name": "母", "household_id": "JH", "address": "B",
                   "place": "cq/jiangbei/guanyinqiao/jiazhou/g02"}),
            json!({"id_number": "NM", "name": "母", "household_id": "NH", "address": "C"}),
        ],
    )
    .await
    .unwrap();
    kit
}

fn form_of(certificate_no: &str, mother: &str) -> Value {
    json!({"certificate_no": certificate_no, "child_name": "孙小花", "applicant_id": mother,
           "household_of": "mother", "phone": "1"})
}

/// Each department's item: (department, place it is for, office).
fn routes(case: &onething_testkit::KitCase) -> Vec<(String, Option<String>, Option<String>)> {
    case.items
        .iter()
        .map(|i| (i.department.clone(), i.place.clone(), i.office.clone()))
        .collect()
}

fn route(department: &str, place: &str, office: &str) -> (String, Option<String>, Option<String>) {
    (department.into(), Some(place.into()), Some(office.into()))
}

#[tokio::test]
async fn the_family_s_district_police_registers_the_child_and_the_city_does_the_rest() {
    let kit = placed_kit().await;
    let case = kit.apply(form_of("K1", "KM")).await.unwrap();
    assert_eq!(case.status, CaseStatus::InProgress, "{}", case.message);
    // The case is where the household lives.
    assert_eq!(
        case.place.as_deref(),
        Some("cq/yuzhong/jiefangbei/minsheng/g01")
    );
    assert_eq!(
        routes(&case),
        [
            route("public-security", "cq/yuzhong", "cq/yuzhong"),
            route("medical-insurance", "cq", "cq"),
            route("hrss", "cq", "cq"),
            route("disease-control", "cq", "cq"),
        ]
    );
}

#[tokio::test]
async fn a_family_in_another_district_goes_to_that_district_s_police() {
    let kit = placed_kit().await;
    let case = kit.apply(form_of("J1", "JM")).await.unwrap();
    assert_eq!(
        case.place.as_deref(),
        Some("cq/jiangbei/guanyinqiao/jiazhou/g02")
    );
    let police = case.items_of("public-security")[0];
    assert_eq!(police.place.as_deref(), Some("cq/jiangbei"));
    assert_eq!(police.office.as_deref(), Some("cq/jiangbei"));
    // Sent again after a supplement, it goes to the same office.
    let case = kit.reject(&police.id, "photo missing").await.unwrap();
    let case = kit
        .supplement(&case.id, json!({"photo": "p"}))
        .await
        .unwrap();
    let again = case.items_of("public-security")[1];
    assert_eq!(again.status, ItemStatus::Pending);
    assert_eq!(again.office.as_deref(), Some("cq/jiangbei"));
}

#[tokio::test]
async fn a_record_without_a_place_leaves_the_case_unplaced_and_the_top_offices_take_it() {
    let kit = placed_kit().await;
    let case = kit.apply(form_of("N1", "NM")).await.unwrap();
    assert_eq!(case.status, CaseStatus::InProgress, "{}", case.message);
    assert_eq!(case.place, None);
    // No place to route from: each department's top office (the city).
    for item in &case.items {
        assert_eq!(item.place, None, "{}", item.department);
        assert_eq!(item.office.as_deref(), Some("cq"), "{}", item.department);
    }
}

#[tokio::test]
async fn the_evidence_preview_places_the_case_and_the_confirmation_routes_from_it() {
    let kit = placed_kit().await;
    let mut form = form_of("K1", "KM");
    form["preview_evidence"] = json!(true);
    let case = kit.apply(form).await.unwrap();
    assert_eq!(case.status, CaseStatus::AwaitingCitizen, "{}", case.message);
    assert!(case.items.is_empty());
    assert_eq!(
        case.place.as_deref(),
        Some("cq/yuzhong/jiefangbei/minsheng/g01")
    );
    let case = kit
        .supplement(&case.id, json!({"evidence": "confirmed"}))
        .await
        .unwrap();
    assert_eq!(case.status, CaseStatus::InProgress, "{}", case.message);
    let police = case.items_of("public-security")[0];
    assert_eq!(police.office.as_deref(), Some("cq/yuzhong"));
    assert_eq!(case.items_of("hrss")[0].office.as_deref(), Some("cq"));
}
