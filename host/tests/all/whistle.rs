//! Whistles (吹哨报到, issue 15 item 1, docs/design/closed-loop.md §2)
//! over HTTP with the real `whistle` plugin: a grid officer whistles two
//! departments; one reports on time, the other never does and is moved up
//! at its report deadline (once, also across a restart); both finish, the
//! grid sends the result back once and then confirms it. Citizens and
//! other officers may not whistle, nor an officer outside their area.

use onething_host::storage::AuditRecord;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::report_step::{LONGXI, YUBEI, advance, call, item, officer_token};
use crate::routing::{ADMIN, import_tree};
use crate::support::{TestHost, assert_error, into_json, scrape, value};

const G07: &str = "cq/yubei/longxi/jinlong/g07";

/// A grid and its town, with the whistle's departments at the town and
/// the district, and a second town outside the grid's area.
const WHISTLE_TREE: &str = r#"{"id":"cq","name":"重庆市","level":"city"}
{"id":"cq/yubei","name":"渝北区","level":"district","parent":"cq"}
{"id":"cq/yubei/longxi","name":"龙溪街道","level":"town","parent":"cq/yubei"}
{"id":"cq/yubei/shuangfeng","name":"双凤桥街道","level":"town","parent":"cq/yubei"}
{"id":"cq/yubei/longxi/jinlong","name":"金龙路社区","level":"community","parent":"cq/yubei/longxi"}
{"id":"cq/yubei/longxi/jinlong/g07","name":"第七网格","level":"grid","parent":"cq/yubei/longxi/jinlong"}
{"office":{"department":"community-grid","place":"cq/yubei/longxi/jinlong/g07"}}
{"office":{"department":"town-command-centre","place":"cq/yubei/longxi"}}
{"office":{"department":"public-security","place":"cq/yubei"}}
{"office":{"department":"fire-safety","place":"cq/yubei/longxi"}}
{"office":{"department":"fire-safety","place":"cq/yubei"}}
{"office":{"department":"urban-management","place":"cq/yubei/longxi"}}
{"office":{"department":"urban-management","place":"cq/yubei"}}
"#;

async fn case_items(host: &TestHost, case_id: &str) -> Vec<onething_host::model::WorkItem> {
    let case = host.storage.case(case_id).await.unwrap().unwrap();
    let mut items = Vec::new();
    for id in &case.item_ids {
        items.push(item(host, id).await);
    }
    items
}

fn whistle(location: &str) -> Value {
    json!({"title": "消防通道堵塞", "description": "杂物堵住了3单元的消防通道",
           "location": location, "departments": "fire-safety, urban-management",
           "report_minutes": 30})
}

/// A whistle host: the whistle plugin, the tree, the test clock.
async fn whistle_host() -> TestHost {
    let host = TestHost::start_with(&["whistle"], |config| {
        config.admin_token = Some(ADMIN.into());
        config.testing.manual_clock = true;
    })
    .await;
    import_tree(&host, WHISTLE_TREE).await;
    host
}

#[tokio::test]
async fn whistle_reported_on_time_and_missed_then_confirmed_after_one_send_back() {
    let host = whistle_host().await;
    let grid = officer_token("grid-li", "community-grid", G07);
    let (status, case) = call(
        &host,
        &grid,
        "/v1/scenarios/whistle/cases",
        Some(whistle(G07)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let case_id = case["case_id"].as_str().unwrap().to_owned();
    let stored = host.storage.case(&case_id).await.unwrap().unwrap();
    assert_eq!(stored.applicant, "officer:grid-li");
    assert_eq!(stored.place.as_deref(), Some(G07));
    let items = case_items(&host, &case_id).await;
    let office_of = |dept: &str| {
        items
            .iter()
            .find(|i| i.department == dept)
            .unwrap_or_else(|| panic!("no item for {dept}"))
            .clone()
    };
    let (fire, urban) = (office_of("fire-safety"), office_of("urban-management"));
    for item in [&fire, &urban] {
        assert_eq!(item.task, "handle-whistle");
        assert_eq!(
            item.office.as_deref(),
            Some(LONGXI),
            "the town's office for the grid"
        );
        assert_eq!(
            item.report_due_at.unwrap() - item.created_at,
            chrono::Duration::minutes(30)
        );
        assert_eq!(item.due_at - item.created_at, chrono::Duration::hours(72));
    }

    // Fire safety reports on time: the officer, the timeline, the audit
    // log; the plugin was told (its message says so).
    let fire_officer = officer_token("fire-wang", "fire-safety", LONGXI);
    let items_of =
        |dept: &str, id: &str, action: &str| format!("/v1/departments/{dept}/items/{id}/{action}");
    let (status, acted) = call(
        &host,
        &fire_officer,
        &items_of("fire-safety", &fire.id, "report"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{acted}");
    assert_eq!(acted["item"]["reported_by"], "fire-wang");
    assert!(
        acted["case"]["message"]
            .as_str()
            .unwrap()
            .contains("reported (fire-wang)"),
        "{acted}"
    );
    assert!(host.audit().await.iter().any(|e| matches!(&e.record,
        AuditRecord::Reported { item_id, handled_by, on_time: true, .. }
            if *item_id == fire.id && handled_by == "fire-wang")));

    // Urban management never reports: at its report deadline it moves to
    // the district, and the town's office is recorded as having missed it.
    assert_eq!(advance(&host, 31).await, 1);
    let moved = item(&host, &urban.id).await;
    assert_eq!(moved.office.as_deref(), Some(YUBEI));
    assert_eq!(moved.report_missed_by, [LONGXI]);
    assert_eq!(moved.due_at, urban.due_at);
    let metrics = scrape(&host).await;
    assert_eq!(value(&metrics, "onething_reports_missed_total"), 1.0);
    assert!(item(&host, &fire.id).await.report_missed_by.is_empty());

    // The month's ranking of the towns' offices: fire safety reported, urban
    // management did not (报到率 1 and 0); the district's office took it.
    let month = urban.created_at.format("%Y-%m").to_string();
    let (status, ranking) = crate::routing::admin(
        &host,
        reqwest::Method::GET,
        &format!("/v1/ops/ranking?level=town&month={month}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ranking}");
    let office = |dept: &str| {
        ranking["offices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["department"] == dept && o["place"] == LONGXI)
            .unwrap_or_else(|| panic!("no {dept} at the town in {ranking}"))
            .clone()
    };
    let (fire_rank, urban_rank) = (office("fire-safety"), office("urban-management"));
    assert_eq!(
        (
            fire_rank["report_rate"].as_f64(),
            fire_rank["reports_on_time"].as_u64()
        ),
        (Some(1.0), Some(1))
    );
    assert_eq!(
        (
            urban_rank["report_rate"].as_f64(),
            urban_rank["reports_missed"].as_u64()
        ),
        (Some(0.0), Some(1))
    );
    assert!(
        fire_rank["rank"].as_u64() < urban_rank["rank"].as_u64(),
        "{ranking}"
    );

    // Both finish; the whistle waits for the grid to confirm.
    let (status, _) = call(
        &host,
        &fire_officer,
        &items_of("fire-safety", &fire.id, "complete"),
        Some(json!({"result": {"cleared": "3单元通道已清理"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let district = officer_token("urban-zhao", "urban-management", YUBEI);
    let (status, acted) = call(
        &host,
        &district,
        &items_of("urban-management", &urban.id, "complete"),
        Some(json!({"result": {"removed": "杂物已清运"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{acted}");
    // Taken in time at the district; the town's miss stays on record.
    assert_eq!(acted["item"]["report_state"], "reported");
    assert_eq!(acted["item"]["report_missed_by"], json!([LONGXI]));
    assert_eq!(acted["case"]["status"], "awaiting-citizen");

    // The whistling officer reads their case; another officer cannot.
    let case_url = format!("/v1/cases/{case_id}");
    let (status, view) = call(&host, &grid, &case_url, None).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert!(
        view["message"]
            .as_str()
            .unwrap()
            .contains("3单元通道已清理"),
        "{view}"
    );
    assert_error(
        call(&host, &fire_officer, &case_url, None).await,
        StatusCode::NOT_FOUND,
        "case_not_found",
    );

    // Sent back once: each department gets a rework item.
    let supplements = format!("{case_url}/supplements");
    let (status, view) = call(
        &host,
        &grid,
        &supplements,
        Some(json!({"send_back": "通道又被堵上了"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["status"], "in-progress");
    let rework: Vec<_> = case_items(&host, &case_id)
        .await
        .into_iter()
        .filter(|i| i.task == "rework-whistle")
        .collect();
    assert_eq!(rework.len(), 2);
    for item in &rework {
        let token = officer_token("again", &item.department, LONGXI);
        let (status, _) = call(
            &host,
            &token,
            &items_of(&item.department, &item.id, "complete"),
            Some(json!({"result": {"done": "again"}})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    // A second send-back is refused; the confirmation completes the case.
    let (status, refused) = call(
        &host,
        &grid,
        &supplements,
        Some(json!({"send_back": "还是不行"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sent back once"),
        "{refused}"
    );
    let (status, view) = call(&host, &grid, &supplements, Some(json!({"confirm": true}))).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["status"], "completed");
    assert!(
        view["message"]
            .as_str()
            .unwrap()
            .starts_with("Confirmed by the grid"),
        "{view}"
    );
    // The one-screen counters agree with a recount of what is stored.
    assert_eq!(host.storage.recount(true).await.unwrap().differing, 0);
}

#[tokio::test]
async fn whistle_applicants_are_the_manifests_officers_within_their_area() {
    let host = whistle_host().await;
    let apply = "/v1/scenarios/whistle/cases";
    let citizen = crate::support::token(onething_host::identity::Role::Citizen, "M-ZHAO-MOTHER");
    let message = assert_error(
        call(&host, &citizen, apply, Some(whistle(G07))).await,
        StatusCode::FORBIDDEN,
        "wrong_applicant",
    );
    assert!(
        message.contains("officers of community-grid, town-command-centre"),
        "{message}"
    );
    let police = officer_token("police-1", "public-security", YUBEI);
    assert_error(
        call(&host, &police, apply, Some(whistle(G07))).await,
        StatusCode::FORBIDDEN,
        "wrong_applicant",
    );
    // A place outside the officer's area.
    let grid = officer_token("grid-li", "community-grid", G07);
    let message = assert_error(
        call(&host, &grid, apply, Some(whistle("cq/yubei/shuangfeng"))).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert!(message.contains("outside your area"), "{message}");
    // The town's command centre whistles anywhere in its town; with no
    // location the case is at the officer's place.
    let centre = officer_token("centre-1", "town-command-centre", LONGXI);
    let mut body = whistle(G07);
    body.as_object_mut().unwrap().remove("location");
    let (status, answer) = call(&host, &centre, apply, Some(body)).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "location is required: {answer}"
    );
    let (status, case) = call(&host, &centre, apply, Some(whistle(G07))).await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    // Nothing was written for the refused ones.
    assert_eq!(
        host.audit()
            .await
            .iter()
            .filter(|e| matches!(e.record, AuditRecord::Decision { .. }))
            .count(),
        1
    );
}

#[tokio::test]
async fn whistle_a_report_missed_while_the_host_is_down_moves_the_item_once() {
    use onething_host::config::Config;
    use onething_host::server::Server;

    let dirs = tempfile::tempdir().unwrap();
    let plugins = crate::support::copy_plugins(dirs.path(), &["whistle"]);
    let config = |interval_ms| Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dirs.path().join("data"),
        plugins_dir: plugins.clone(),
        demo_data: false,
        admin_token: Some(ADMIN.into()),
        deadline_check_interval_ms: interval_ms,
        ..Config::default()
    };
    let clock = crate::support::TestClock::at("2026-11-24T21:00:00+08:00");
    let server = Server::start_with_clock(config(3_600_000), clock.clone())
        .await
        .unwrap();
    let base = format!("http://{}", server.addr());
    let places = reqwest::Client::new()
        .post(format!("{base}/v1/admin/places"))
        .bearer_auth(ADMIN)
        .body(WHISTLE_TREE)
        .send()
        .await
        .unwrap();
    assert_eq!(places.status(), StatusCode::OK);
    let grid = officer_token("grid-li", "community-grid", G07);
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/scenarios/whistle/cases"))
        .bearer_auth(&grid)
        .json(&whistle(G07))
        .send()
        .await
        .unwrap();
    let (status, case) = into_json(response).await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let case_url = format!("/v1/cases/{}", case["case_id"].as_str().unwrap());
    // Both report deadlines pass while the host is down.
    clock.set("2026-11-24T21:40:00+08:00");
    server.shutdown().await;

    for round in 0..2 {
        let server = Server::start_with_clock(config(20), clock.clone())
            .await
            .unwrap();
        let base = format!("http://{}", server.addr());
        let read = || async {
            let response = reqwest::Client::new()
                .get(format!("{base}{case_url}"))
                .bearer_auth(&grid)
                .send()
                .await
                .unwrap();
            into_json(response).await.1
        };
        let moved = |case: &Value| {
            case["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["office"]["place"] == YUBEI)
                .count()
        };
        let mut view = read().await;
        for _ in 0..150 {
            if moved(&view) == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            view = read().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let view = read().await;
        assert_eq!(moved(&view), 2, "round {round}: {view}");
        let escalations = view["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == "item-escalated")
            .count();
        assert_eq!(
            escalations, 2,
            "each once, not again after a restart: {view}"
        );
        for item in view["items"].as_array().unwrap() {
            assert_eq!(item["report_missed_by"], json!([LONGXI]), "{item}");
            assert_eq!(item["report_state"], "missed");
        }
        server.shutdown().await;
    }
}

#[tokio::test]
async fn whistle_from_an_ebike_review_sends_fire_safety_a_report_step() {
    let host = crate::routing::ebike_host_with(WHISTLE_TREE, |_| {}).await;
    let (status, case) = crate::routing::report(&host, "S-7", Some(G07)).await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let case_id = case["case_id"].as_str().unwrap().to_owned();
    let grid_item = case["items"][0]["item_id"].as_str().unwrap().to_owned();
    let grid = officer_token("grid-li", "community-grid", G07);
    let complete = |dept: &str, id: &str| format!("/v1/departments/{dept}/items/{id}/complete");
    let (status, _) = call(
        &host,
        &grid,
        &complete("community-grid", &grid_item),
        Some(json!({"result": {"found": "a blocked exit"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let review = case_items(&host, &case_id)
        .await
        .into_iter()
        .find(|i| i.task == "review")
        .unwrap();
    // The town's review whistles fire safety before the case closes.
    let centre = officer_token("centre-1", "town-command-centre", LONGXI);
    let (status, acted) = call(
        &host,
        &centre,
        &complete("town-command-centre", &review.id),
        Some(json!({"result": {"whistle": ["fire-safety"]}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{acted}");
    assert_eq!(acted["case"]["status"], "in-progress");
    let fire = case_items(&host, &case_id)
        .await
        .into_iter()
        .find(|i| i.department == "fire-safety")
        .unwrap();
    assert_eq!(fire.task, "handle-whistle");
    assert_eq!(fire.office.as_deref(), Some(LONGXI));
    assert_eq!(
        fire.report_due_at.unwrap() - fire.created_at,
        chrono::Duration::minutes(30)
    );
    let fire_officer = officer_token("fire-wang", "fire-safety", LONGXI);
    let (status, acted) = call(
        &host,
        &fire_officer,
        &complete("fire-safety", &fire.id),
        Some(json!({"result": {"cleared": "yes"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{acted}");
    assert_eq!(acted["item"]["report_state"], "reported");
    assert_eq!(acted["case"]["status"], "completed");
}
