//! What a plugin built with the SDK sees of contract 0.2.0 and what the host
//! does with what it says, through the `follows-a-script` fixture: the
//! case's clock, an outcome that places the case, targets, priority and
//! escalation, and the part the host refuses until it is built (report
//! deadlines), as plugin-authoring.md says.

use onething_testkit::TestKit;
use onething_testkit::model::{CaseStatus, Due, Priority};
use serde_json::{Value, json};

use crate::common;

async fn kit() -> TestKit {
    TestKit::load(common::fixture("follows-a-script"))
        .await
        .unwrap()
}

fn form(script: Value) -> Value {
    json!({"script": script.to_string()})
}

fn submit(extra: Value) -> Value {
    let mut op = json!({"op": "submit", "department": "public-security", "task": "t",
                        "payload": "{}", "due": {"hours": 1}});
    if let (Value::Object(op), Value::Object(extra)) = (&mut op, extra) {
        op.extend(extra);
    }
    op
}

#[tokio::test]
async fn the_plugin_reads_the_hosts_clock_and_offset() {
    let kit = kit().await;
    let case = kit
        .apply(form(json!({"message": {"case": "clock"}})))
        .await
        .unwrap();
    let parts: Vec<i64> = case
        .message
        .split(' ')
        .map(|p| p.parse().unwrap())
        .collect();
    let kit_ms = kit.now().timestamp_millis();
    assert_eq!(parts[..2], [kit_ms, 480], "the kit's clock, at UTC+8");
    // SystemTime::now() in the plugin reads the same clock (it runs on from
    // the call's start, so a few milliseconds later at most).
    let wall = parts[2];
    assert!(
        (kit_ms..kit_ms + 60_000).contains(&wall),
        "wall clock {wall} vs kit {kit_ms}"
    );
}

#[tokio::test]
async fn moving_the_kits_clock_moves_the_plugins_wall_clock() {
    let kit = kit().await;
    let before = kit.now().timestamp_millis();
    kit.pass(chrono::Duration::days(400)).await.unwrap();
    let case = kit
        .apply(form(json!({"message": {"case": "clock"}})))
        .await
        .unwrap();
    let wall: i64 = case.message.rsplit(' ').next().unwrap().parse().unwrap();
    let kit_ms = kit.now().timestamp_millis();
    assert!(
        (kit_ms..kit_ms + 60_000).contains(&wall),
        "wall clock {wall} vs kit {kit_ms}: 400 days on, not the machine's time"
    );
    assert!(wall >= before + 400 * 86_400_000);
}

#[tokio::test]
async fn an_outcome_places_the_case_and_its_items_are_routed_from_there() {
    let kit = kit().await;
    kit.places(onething_host::places::DEMO_PLACES)
        .await
        .unwrap();
    let case = kit
        .apply(form(json!({
            "place": "cq/yubei/longxi/jinlong/g01",
            "message": {"case": "place"},
            "stop_on_error": true,
            "start": [submit(json!({"target": {"level": "district"}, "priority": "urgent"}))],
        })))
        .await
        .unwrap();
    assert_eq!(case.status, CaseStatus::InProgress, "{}", case.message);
    // The start call ran before the case had a place ...
    assert_eq!(case.message, "none");
    assert_eq!(case.place.as_deref(), Some("cq/yubei/longxi/jinlong/g01"));
    // ... and its item went to the police office of the place's district.
    let item = &case.items[0];
    assert_eq!(item.place.as_deref(), Some("cq/yubei"));
    assert_eq!(item.office.as_deref(), Some("cq/yubei"));
    assert_eq!(item.priority, Priority::Urgent);
    // The next call sees the place.
    let case = kit.complete(&item.id, json!({})).await.unwrap();
    assert_eq!(case.message, "cq/yubei/longxi/jinlong/g01");
}

#[tokio::test]
async fn a_place_target_goes_to_that_place_whatever_the_case() {
    let kit = kit().await;
    kit.places(onething_host::places::DEMO_PLACES)
        .await
        .unwrap();
    let case = kit
        .apply(form(json!({
            "stop_on_error": true,
            "start": [submit(json!({"target": {"place": "cq/jiangbei/wulidian"}}))],
        })))
        .await
        .unwrap();
    assert_eq!(case.place, None);
    let item = &case.items[0];
    assert_eq!(item.place.as_deref(), Some("cq/jiangbei/wulidian"));
    assert_eq!(item.office.as_deref(), Some("cq/jiangbei"));
    assert_eq!(item.priority, Priority::Normal);
}

#[tokio::test]
async fn a_place_that_is_not_in_the_tree_fails_the_call() {
    let kit = kit().await;
    kit.places(onething_host::places::DEMO_PLACES)
        .await
        .unwrap();
    let error = kit
        .apply(form(json!({"place": "cq/nowhere"})))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("cq/nowhere"), "{error}");
    let error = kit
        .apply(form(json!({
            "stop_on_error": true,
            "start": [submit(json!({"target": {"place": "cq/nowhere"}}))],
        })))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("cq/nowhere"), "{error}");
}

#[tokio::test]
async fn a_report_deadline_is_kept_and_the_office_takes_the_item() {
    let kit = kit().await;
    let case = kit
        .apply(form(json!({"stop_on_error": true,
                           "start": [submit(json!({"report_due": {"minutes": 10}}))]})))
        .await
        .unwrap();
    let item = &case.items[0];
    assert_eq!(item.report_due, Some(Due::Minutes(10)));
    assert_eq!(
        item.report_due_at.unwrap() - item.created_at,
        chrono::Duration::minutes(10)
    );
    let id = item.id.clone();
    let case = kit.report(&id).await.unwrap();
    let item = case.items.iter().find(|i| i.id == id).unwrap();
    assert!(item.reported_at.is_some());
    assert_eq!(
        item.report_state(),
        Some(onething_testkit::model::ReportState::Reported)
    );
    assert!(
        kit.report(&id)
            .await
            .unwrap_err()
            .to_string()
            .contains("already reported")
    );
}

#[tokio::test]
async fn an_item_that_escalates_is_accepted_and_keeps_its_escalation() {
    let kit = kit().await;
    let case = kit
        .apply(form(json!({"stop_on_error": true,
                           "start": [submit(json!({"escalation": {"hours": 2}}))]})))
        .await
        .unwrap();
    assert_eq!(case.status, CaseStatus::InProgress, "{}", case.message);
    assert_eq!(case.items[0].escalation, Some(Due::Hours(2)));
}
