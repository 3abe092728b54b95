//! The e-bike grid event over HTTP: a sensor reports, the grid worker lets
//! 30 minutes pass, the town command centre takes over, then the review.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestClock, TestHost};

#[tokio::test]
async fn a_breach_escalates_to_the_town_centre_and_the_loop_is_reviewed() {
    let clock = TestClock::at("2026-11-24T21:00:00+08:00");
    let host = TestHost::start_full(
        &["ebike-charging"],
        |config| config.deadline_check_interval_ms = 20,
        clock.clone(),
    )
    .await;
    let (status, case) = host
        .post(
            "/v1/scenarios/ebike-charging/events",
            &json!({"sensor_id": "S-88", "building": "金龙路12号 3单元", "grid": "龙溪-07",
                    "detected_at": "2026-11-24T20:59:30+08:00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let case_id = case["case_id"].as_str().unwrap().to_owned();
    assert_eq!(case["items"][0]["department"], "community-grid");
    assert_eq!(
        case["items"][0]["due"],
        json!({"unit": "minutes", "count": 30})
    );
    let (_, full) = host.get(&format!("/v1/cases/{case_id}")).await;
    assert_eq!(full["applicant"], "sensor:S-88");

    // Half an hour and a minute later the grid worker has not acted.
    clock.set("2026-11-24T21:31:00+08:00");
    let mut escalated = Vec::new();
    for _ in 0..250 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        escalated = host.pending("town-command-centre").await;
        if !escalated.is_empty() {
            break;
        }
    }
    assert_eq!(escalated.len(), 1, "escalated to the town command centre");
    assert_eq!(escalated[0]["task"], "escalated-indoor-charging");

    // The centre handles it: the grid item is withdrawn, a review opens.
    let item = escalated[0]["item_id"].as_str().unwrap();
    let (status, body) = host
        .post(
            &format!("/v1/departments/town-command-centre/items/{item}/complete"),
            &json!({"result": {"action": "battery removed, resident warned"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(host.pending("community-grid").await.is_empty());
    let review = host.pending("town-command-centre").await;
    assert_eq!(review[0]["task"], "review");
    assert_eq!(review[0]["payload"]["handled_by"], "town-command-centre");

    let item = review[0]["item_id"].as_str().unwrap();
    let (status, body) = host
        .post(
            &format!("/v1/departments/town-command-centre/items/{item}/complete"),
            &json!({"result": {"lesson": "add a charging shed"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["case"]["status"], "completed");
    host.stop().await;
}

#[tokio::test]
async fn the_grid_worker_handles_it_in_time_and_the_review_closes_it() {
    let host = TestHost::start(&["ebike-charging"]).await;
    let (status, case) = host
        .post(
            "/v1/scenarios/ebike-charging/events",
            &json!({"sensor_id": "S-1", "building": "B", "grid": "G", "detected_at": "t"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let grid = host.pending("community-grid").await;
    let item = grid[0]["item_id"].as_str().unwrap();
    let (status, body) = host
        .post(
            &format!("/v1/departments/community-grid/items/{item}/complete"),
            &json!({"result": {"action": "unplugged"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let review = host.pending("town-command-centre").await;
    assert_eq!(review.len(), 1);
    assert_eq!(review[0]["task"], "review");
    assert_eq!(review[0]["payload"]["handled_by"], "community-grid");
    let item = review[0]["item_id"].as_str().unwrap();
    let (_, body) = host
        .post(
            &format!("/v1/departments/town-command-centre/items/{item}/complete"),
            &json!({"result": {}}),
        )
        .await;
    assert_eq!(body["case"]["status"], "completed");
    host.stop().await;
}
