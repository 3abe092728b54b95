//! The e-bike grid event, tested with the kit: handled in time, then reviewed.

use onething_testkit::TestKit;
use onething_testkit::model::CaseStatus;
use serde_json::json;

use crate::common;

#[tokio::test]
async fn handled_in_time_then_reviewed() {
    let kit = TestKit::load(common::example("ebike-charging"))
        .await
        .unwrap();
    let case = kit
        .apply(json!({"sensor_id": "S1", "building": "B", "grid": "G", "detected_at": "t"}))
        .await
        .unwrap();
    assert_eq!(kit.pass(chrono::Duration::minutes(20)).await.unwrap(), 0);
    let grid = case.items_of("community-grid")[0].id.clone();
    let case = kit
        .complete(&grid, json!({"action": "unplugged"}))
        .await
        .unwrap();
    let review = case.items_of("town-command-centre");
    assert_eq!(review.len(), 1);
    assert_eq!(review[0].task, "review");
    // Handled in time: no escalation when the half hour passes.
    assert_eq!(kit.pass(chrono::Duration::minutes(20)).await.unwrap(), 0);
    let case = kit
        .complete(&review[0].id.clone(), json!({}))
        .await
        .unwrap();
    assert_eq!(case.status, CaseStatus::Completed);
}
