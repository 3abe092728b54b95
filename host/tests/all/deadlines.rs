//! Department deadlines: nearing at 60% of the time, overdue at the limit,
//! the plugin told once, on a clock the test moves.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestClock, TestHost, newborn_application};

fn count(case: &Value, event: &str) -> usize {
    case["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == event)
        .count()
}

#[tokio::test]
async fn items_turn_nearing_then_overdue_and_the_plugin_is_told_once() {
    // Tuesday 10:00 in Beijing: five working days later is the next Tuesday.
    let clock = TestClock::at("2026-11-24T10:00:00+08:00");
    let host = TestHost::start_full(
        &["newborn"],
        |config| config.deadline_check_interval_ms = 20,
        clock.clone(),
    )
    .await;
    let (status, case) = host
        .post("/v1/scenarios/newborn/cases", &newborn_application())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let case_id = case["case_id"].as_str().unwrap().to_owned();
    assert!(
        case["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["deadline"] == "on-time")
    );
    assert_eq!(case["items"][0]["due_at"], "2026-12-01T02:00:00Z");

    // Saturday night: more than 60% of the seven calendar days are gone.
    clock.set("2026-11-28T22:00:00+08:00");
    let (_, case) = host.get(&format!("/v1/cases/{case_id}")).await;
    assert!(
        case["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["deadline"] == "nearing"),
        "{case}"
    );
    let queue = host.pending("hrss").await;
    assert_eq!(queue[0]["deadline"], "nearing");

    // hrss finishes in time; the other three run out.
    let item = queue[0]["item_id"].as_str().unwrap();
    let (status, _) = host
        .post(
            &format!("/v1/departments/hrss/items/{item}/complete"),
            &json!({"result": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    clock.set("2026-12-01T10:00:01+08:00");
    let mut case = Value::Null;
    for _ in 0..250 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        case = host.get(&format!("/v1/cases/{case_id}")).await.1;
        if count(&case, "item-overdue") >= 3 {
            break;
        }
    }
    assert_eq!(count(&case, "item-overdue"), 3, "{case}");
    // The plugin heard of each one and told the parents.
    let told = case["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["event"] == "notification"
                && e["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("past its time limit")
        })
        .count();
    assert_eq!(told, 3, "{case}");
    for item in case["items"].as_array().unwrap() {
        let expected = if item["department"] == "hrss" {
            "on-time"
        } else {
            "overdue"
        };
        assert_eq!(item["deadline"], expected, "{item}");
    }
    let pending = host.pending("public-security").await;
    assert!(
        pending[0]["overdue_reported_at"].is_string(),
        "{}",
        pending[0]
    );

    // Many checks later, still once each.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, case) = host.get(&format!("/v1/cases/{case_id}")).await;
    assert_eq!(count(&case, "item-overdue"), 3);

    // A late completion is still taken.
    let item = pending[0]["item_id"].as_str().unwrap();
    let (status, _) = host
        .post(
            &format!("/v1/departments/public-security/items/{item}/complete"),
            &json!({"result": {"late": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    host.stop().await;
}

#[tokio::test]
async fn an_overdue_timer_survives_a_restart_and_fires_once() {
    use onething_host::config::Config;
    use onething_host::server::Server;

    let dirs = tempfile::tempdir().unwrap();
    let plugins = crate::support::copy_plugins(dirs.path(), &["newborn"]);
    let config = |interval_ms| Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dirs.path().join("data"),
        plugins_dir: plugins.clone(),
        demo_data: true,
        deadline_check_interval_ms: interval_ms,
        ..Config::default()
    };
    let clock = TestClock::at("2026-11-24T10:00:00+08:00");
    let application = json!({"certificate_no": "Q500000001", "child_name": "王小明",
        "applicant_id": "500103199001010018", "household_of": "father", "phone": "1"});

    // Apply, let the time run out, and stop before any check has run.
    let server = Server::start_with_clock(config(3_600_000), clock.clone())
        .await
        .unwrap();
    let api = crate::support::Api::new(format!("http://{}", server.addr()));
    let (status, case) = api.post("/v1/scenarios/newborn/cases", &application).await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let case_id = case["case_id"].as_str().unwrap().to_owned();
    clock.set("2026-12-02T10:00:00+08:00");
    server.shutdown().await;

    // After the restart the timers fire, once.
    for _ in 0..2 {
        let server = Server::start_with_clock(config(20), clock.clone())
            .await
            .unwrap();
        let api = crate::support::Api::new(format!("http://{}", server.addr()));
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let case = api.get(&format!("/v1/cases/{case_id}")).await.1;
            if count(&case, "item-overdue") >= 4 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let case = api.get(&format!("/v1/cases/{case_id}")).await.1;
        assert_eq!(count(&case, "item-overdue"), 4, "{case}");
        server.shutdown().await;
    }
}
