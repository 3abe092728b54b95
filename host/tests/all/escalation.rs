//! Escalation (issue 13, item 5) over HTTP, on the e-bike event: the grid's
//! item, not handled in time, moves up to the community's office, then the
//! town's, 30 minutes each, with the plugin told each time; the offices it
//! left see it as `escalated` and cannot act on it; at the top the plugin
//! sends the town command centre in. The clock is the host's test clock
//! (`[testing] manual_clock`), moved through `POST /v1/admin/clock`; a
//! restart while an escalation is due escalates once.

use std::time::Duration;

use onething_host::identity::issue_dev_officer;
use onething_host::storage::AuditRecord;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::routing::{ADMIN, admin, ebike_host_with, report};
use crate::support::{TestClock, TestHost, assert_error, into_json};

const G07: &str = "cq/yubei/longxi/jinlong/g07";
const JINLONG: &str = "cq/yubei/longxi/jinlong";
const LONGXI: &str = "cq/yubei/longxi";

/// The grid's office, its community's and its town's; the town's command
/// centre.
const TREE: &str = r#"{"id":"cq","name":"重庆市","level":"city"}
{"id":"cq/yubei","name":"渝北区","level":"district","parent":"cq"}
{"id":"cq/yubei/longxi","name":"龙溪街道","level":"town","parent":"cq/yubei"}
{"id":"cq/yubei/longxi/jinlong","name":"金龙路社区","level":"community","parent":"cq/yubei/longxi"}
{"id":"cq/yubei/longxi/jinlong/g07","name":"第七网格","level":"grid","parent":"cq/yubei/longxi/jinlong"}
{"office":{"department":"community-grid","place":"cq/yubei/longxi/jinlong/g07"}}
{"office":{"department":"community-grid","place":"cq/yubei/longxi/jinlong"}}
{"office":{"department":"community-grid","place":"cq/yubei/longxi"}}
{"office":{"department":"town-command-centre","place":"cq/yubei/longxi"}}
"#;

/// Moves the host's test clock on by `minutes`; returns how many overdue
/// items the deadline round handled.
pub(crate) async fn advance(host: &TestHost, minutes: u64) -> u64 {
    let (status, body) = admin(
        host,
        reqwest::Method::POST,
        "/v1/admin/clock",
        json!({"advance_seconds": minutes * 60}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["overdue_handled"].as_u64().unwrap()
}

async fn as_officer(
    host: &TestHost,
    place: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let token = issue_dev_officer(
        &format!("officer@{place}"),
        "community-grid",
        Some(place),
        chrono::Utc::now().timestamp(),
        600,
    );
    let client = reqwest::Client::new();
    let url = format!("{}{path}", host.api.base);
    let request = match body {
        Some(body) => client.post(url).json(&body),
        None => client.get(url),
    };
    into_json(request.bearer_auth(token).send().await.unwrap()).await
}

async fn item(host: &TestHost, item_id: &str) -> onething_host::model::WorkItem {
    host.storage.item(item_id).await.unwrap().unwrap()
}

#[tokio::test]
async fn an_item_nobody_handles_climbs_the_ladder_and_then_the_centre_takes_it() {
    let host = ebike_host_with(TREE, |config| config.testing.manual_clock = true).await;
    let (status, case) = report(&host, "S-7", Some(G07)).await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let case_id = case["case_id"].as_str().unwrap().to_owned();
    let item_id = case["items"][0]["item_id"].as_str().unwrap().to_owned();
    assert_eq!(item(&host, &item_id).await.office.as_deref(), Some(G07));
    let first_due = item(&host, &item_id).await.due_at;

    // Not due yet: nothing moves.
    assert_eq!(advance(&host, 29).await, 0);
    assert_eq!(item(&host, &item_id).await.office.as_deref(), Some(G07));

    // The grid's time runs out: the community's office has it, due in 30
    // minutes from the move; the plugin was told.
    assert_eq!(advance(&host, 2).await, 1);
    let moved = item(&host, &item_id).await;
    assert_eq!(moved.office.as_deref(), Some(JINLONG));
    assert_eq!(moved.escalated_from, [G07]);
    assert_eq!(moved.due_at - first_due, chrono::Duration::minutes(31));
    let case = host.storage.case(&case_id).await.unwrap().unwrap();
    assert!(case.message.contains("moved up"), "{}", case.message);

    // The grid sees it as escalated and may not act on it any more; the
    // community's officer does.
    let (status, page) = as_officer(
        &host,
        G07,
        "/v1/departments/community-grid/items?status=escalated",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"][0]["item_id"], item_id.as_str());
    assert_eq!(page["items"][0]["status"], "escalated");
    let (_, pending) = as_officer(
        &host,
        G07,
        "/v1/departments/community-grid/items?status=pending",
        None,
    )
    .await;
    assert_eq!(pending["items"], json!([]));
    let complete = format!("/v1/departments/community-grid/items/{item_id}/complete");
    assert_error(
        as_officer(&host, G07, &complete, Some(json!({"result": {}}))).await,
        StatusCode::FORBIDDEN,
        "not_owner",
    );
    let (_, pending) = as_officer(
        &host,
        JINLONG,
        "/v1/departments/community-grid/items?status=pending",
        None,
    )
    .await;
    assert_eq!(pending["items"][0]["status"], "pending");

    // Once per level: the community's time runs out, then the town's.
    assert_eq!(advance(&host, 31).await, 1);
    let moved = item(&host, &item_id).await;
    assert_eq!(moved.office.as_deref(), Some(LONGXI));
    assert_eq!(moved.escalated_from, [G07, JINLONG]);
    assert!(host.pending("town-command-centre").await.is_empty());
    assert_eq!(advance(&host, 31).await, 1);
    let top = item(&host, &item_id).await;
    assert_eq!(
        top.office.as_deref(),
        Some(LONGXI),
        "the top office keeps it"
    );
    assert!(top.overdue_at.is_some());
    let centre = host.pending("town-command-centre").await;
    assert_eq!(centre.len(), 1, "{centre:?}");
    assert_eq!(centre[0]["task"], "escalated-indoor-charging");
    assert_eq!(centre[0]["office"]["place"], LONGXI);
    assert_eq!(
        advance(&host, 120).await,
        1,
        "only the centre's item is left to run out"
    );

    // On the timeline and the audit log, each move once.
    let case = host.storage.case(&case_id).await.unwrap().unwrap();
    let moves: Vec<(String, String)> = serde_json::to_value(&case.timeline)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "item-escalated")
        .map(|e| {
            (
                e["from_office"].as_str().unwrap().to_owned(),
                e["to_office"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        [
            (G07.to_owned(), JINLONG.to_owned()),
            (JINLONG.to_owned(), LONGXI.to_owned())
        ]
    );
    let audited = host
        .audit()
        .await
        .into_iter()
        .filter(|entry| matches!(&entry.record, AuditRecord::Escalated { item_id: id, .. } if *id == item_id))
        .count();
    assert_eq!(audited, 2);
    let metrics = crate::support::scrape(&host).await;
    assert_eq!(
        crate::support::value(&metrics, "onething_items_escalated_total"),
        2.0
    );
    let clock_moves = host
        .audit()
        .await
        .into_iter()
        .filter(|entry| matches!(&entry.record, AuditRecord::Admin { action, actor, .. } if action == "clock.move" && actor == "admin"))
        .count();
    assert_eq!(clock_moves, 5, "every move of the clock is audited");
}

#[tokio::test]
async fn the_test_clock_is_refused_unless_configured_and_never_runs_back() {
    let host = ebike_host_with(TREE, |_| {}).await;
    let message = assert_error(
        admin(
            &host,
            reqwest::Method::POST,
            "/v1/admin/clock",
            json!({"advance_seconds": 60}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert!(message.contains("manual_clock"), "{message}");
    let (status, clock) = admin(&host, reqwest::Method::GET, "/v1/admin/clock", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(clock["manual"], false);

    let host = ebike_host_with(TREE, |config| config.testing.manual_clock = true).await;
    for bad in [
        json!({"now": "2020-01-01T00:00:00Z"}),
        json!({"now": "yesterday"}),
        json!({"advance_seconds": -5}),
        json!({}),
        json!({"now": "2030-01-01T00:00:00Z", "advance_seconds": 1}),
    ] {
        assert_error(
            admin(&host, reqwest::Method::POST, "/v1/admin/clock", bad).await,
            StatusCode::BAD_REQUEST,
            "invalid_field",
        );
    }
    let (status, moved) = admin(
        &host,
        reqwest::Method::POST,
        "/v1/admin/clock",
        json!({"now": "2030-01-01T08:00:00+08:00"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["now"], "2030-01-01T00:00:00Z");
    let response = reqwest::Client::new()
        .post(format!("{}/v1/admin/clock", host.api.base))
        .json(&json!({"advance_seconds": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "admin only");
}

#[tokio::test]
async fn an_escalation_due_while_the_host_is_down_happens_once() {
    use onething_host::config::Config;
    use onething_host::server::Server;

    let dirs = tempfile::tempdir().unwrap();
    let plugins = crate::support::copy_plugins(dirs.path(), &["ebike-charging"]);
    let config = |interval_ms| Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dirs.path().join("data"),
        plugins_dir: plugins.clone(),
        demo_data: false,
        admin_token: Some(ADMIN.into()),
        deadline_check_interval_ms: interval_ms,
        ..Config::default()
    };
    let clock = TestClock::at("2026-11-24T21:00:00+08:00");
    let server = Server::start_with_clock(config(3_600_000), clock.clone())
        .await
        .unwrap();
    let host_api = crate::support::Api::new(format!("http://{}", server.addr()));
    let places = reqwest::Client::new()
        .post(format!("{}/v1/admin/places", host_api.base))
        .bearer_auth(ADMIN)
        .body(TREE)
        .send()
        .await
        .unwrap();
    assert_eq!(places.status(), StatusCode::OK);
    let token = onething_host::identity::issue_dev_at(
        onething_host::identity::Role::Device,
        "S-9",
        Some(G07),
        chrono::Utc::now().timestamp(),
        600,
    );
    let response = reqwest::Client::new()
        .post(format!(
            "{}/v1/scenarios/ebike-charging/events",
            host_api.base
        ))
        .bearer_auth(&token)
        .json(&json!({"building": "金龙路12号", "grid": "龙溪-07",
                      "detected_at": "2026-11-24T20:59:30+08:00"}))
        .send()
        .await
        .unwrap();
    let (status, case) = into_json(response).await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let item_id = case["items"][0]["item_id"].as_str().unwrap().to_owned();
    // The grid's time runs out while the host is down.
    clock.set("2026-11-24T21:40:00+08:00");
    server.shutdown().await;

    for _ in 0..2 {
        let server = Server::start_with_clock(config(20), clock.clone())
            .await
            .unwrap();
        let base = format!("http://{}", server.addr());
        let case_url = format!("{base}/v1/cases/{}", case["case_id"].as_str().unwrap());
        let read = || async {
            let response = reqwest::Client::new()
                .get(&case_url)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            into_json(response).await.1
        };
        let mut office = String::new();
        for _ in 0..150 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if let Some(place) = read().await["items"][0]["office"]["place"].as_str() {
                office = place.to_owned();
                if office == JINLONG {
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            office, JINLONG,
            "escalated once, to the community, not further"
        );
        let case = read().await;
        let moves = case["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == "item-escalated" && e["item_id"] == item_id.as_str())
            .count();
        assert_eq!(moves, 1, "{case}");
        server.shutdown().await;
    }
}
