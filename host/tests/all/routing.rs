//! Routing (issue 13, item 3) over HTTP: a device registered at a place
//! (its token's `place`) opens a case there, and the case's items go to the
//! department's office at that place or the nearest one above it; no office
//! on the way up refuses the call and dispatches nothing; a device token
//! naming a place the tree lacks is refused; without any place an item
//! goes to the department's single top office.

use onething_host::identity::{Role, issue_dev_at};
use onething_host::storage::AuditRecord;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestHost, assert_error, into_json};

pub const ADMIN: &str = "routing-admin-token";

/// A city with two districts; `community-grid` at grid g07 and at the town
/// above it, nowhere in jiangbei; the town's command centre.
const TREE: &str = r#"{"id":"cq","name":"重庆市","level":"city"}
{"id":"cq/yubei","name":"渝北区","level":"district","parent":"cq"}
{"id":"cq/yubei/longxi","name":"龙溪街道","level":"town","parent":"cq/yubei"}
{"id":"cq/yubei/longxi/jinlong","name":"金龙路社区","level":"community","parent":"cq/yubei/longxi"}
{"id":"cq/yubei/longxi/jinlong/g07","name":"第七网格","level":"grid","parent":"cq/yubei/longxi/jinlong"}
{"id":"cq/yubei/longxi/jinlong/g08","name":"第八网格","level":"grid","parent":"cq/yubei/longxi/jinlong"}
{"id":"cq/jiangbei","name":"江北区","level":"district","parent":"cq"}
{"id":"cq/jiangbei/g01","name":"江北第一网格","level":"grid","parent":"cq/jiangbei"}
{"office":{"department":"community-grid","place":"cq/yubei/longxi/jinlong/g07"}}
{"office":{"department":"community-grid","place":"cq/yubei/longxi"}}
{"office":{"department":"town-command-centre","place":"cq/yubei/longxi"}}
"#;

async fn host_with_tree() -> TestHost {
    ebike_host(TREE).await
}

/// A host serving ebike-charging, with `tree` imported through the admin
/// API (admin token [`ADMIN`]).
pub async fn ebike_host(tree: &'static str) -> TestHost {
    ebike_host_with(tree, |_| {}).await
}

/// [`ebike_host`] with the config adjusted first.
pub async fn ebike_host_with(
    tree: &'static str,
    adjust: impl FnOnce(&mut onething_host::config::Config),
) -> TestHost {
    let host = TestHost::start_with(&["ebike-charging"], |config| {
        config.admin_token = Some(ADMIN.into());
        adjust(config);
    })
    .await;
    import_tree(&host, tree).await;
    host
}

/// Imports `tree` through the admin API.
pub async fn import_tree(host: &TestHost, tree: &'static str) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/admin/places", host.api.base))
        .bearer_auth(ADMIN)
        .body(tree)
        .send()
        .await
        .unwrap();
    let (status, body) = into_json(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// An e-bike event from sensor `sensor`, its token at `place`: the answer,
/// or on success the case as the device reads it back.
pub async fn report(host: &TestHost, sensor: &str, place: Option<&str>) -> (StatusCode, Value) {
    let token = issue_dev_at(
        Role::Device,
        sensor,
        place,
        chrono::Utc::now().timestamp(),
        600,
    );
    let response = reqwest::Client::new()
        .post(format!(
            "{}/v1/scenarios/ebike-charging/events",
            host.api.base
        ))
        .bearer_auth(&token)
        .json(&json!({"building": "金龙路12号", "grid": "龙溪-07",
                      "detected_at": "2026-11-24T20:59:30+08:00"}))
        .send()
        .await
        .unwrap();
    let answer = into_json(response).await;
    if let Some(case_id) = answer.1["case_id"].as_str() {
        // Read the case back as the device that opened it.
        let response = reqwest::Client::new()
            .get(format!("{}/v1/cases/{case_id}", host.api.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let (status, case) = into_json(response).await;
        assert_eq!(status, StatusCode::OK, "{case}");
        return (answer.0, case);
    }
    answer
}

#[tokio::test]
async fn items_go_to_the_nearest_office_at_or_above_the_case_place() {
    let host = host_with_tree().await;
    let g07 = "cq/yubei/longxi/jinlong/g07";

    // The grid has an office: it takes the item.
    let (status, case) = report(&host, "S-1", Some(g07)).await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    assert_eq!(case["place"], g07);
    let item = &case["items"][0];
    assert_eq!(item["department"], "community-grid");
    assert_eq!(item["place"], g07);
    assert_eq!(
        item["office"],
        json!({"department": "community-grid", "place": g07})
    );
    let timeline = case["timeline"].as_array().unwrap();
    assert!(
        timeline
            .iter()
            .any(|e| e["event"] == "place-set" && e["place"] == g07 && e["source"] == "device"),
        "{timeline:?}"
    );
    assert!(
        timeline
            .iter()
            .any(|e| e["event"] == "item-dispatched" && e["office"] == g07)
    );
    let item_id = item["item_id"].as_str().unwrap().to_owned();
    let dispatched = host.audit().await.into_iter().any(|entry| {
        matches!(&entry.record, AuditRecord::Dispatch { item_id: id, office: Some(office), .. }
            if *id == item_id && office == g07)
    });
    assert!(dispatched, "the audit log records the office");

    // The neighbouring grid has none, nor its community: the town's.
    let (status, case) = report(&host, "S-2", Some("cq/yubei/longxi/jinlong/g08")).await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    assert_eq!(case["items"][0]["place"], "cq/yubei/longxi/jinlong/g08");
    assert_eq!(case["items"][0]["office"]["place"], "cq/yubei/longxi");

    // The department's queue shows where each item went.
    let pending = host.pending("community-grid").await;
    let offices: Vec<&Value> = pending.iter().map(|i| &i["office"]["place"]).collect();
    assert_eq!(offices, [&json!(g07), &json!("cq/yubei/longxi")]);
}

#[tokio::test]
async fn no_office_on_the_way_up_refuses_the_call_and_dispatches_nothing() {
    let host = host_with_tree().await;
    let message = assert_error(
        report(&host, "S-3", Some("cq/jiangbei/g01")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "application_not_found",
    );
    assert!(
        message.contains("community-grid") && message.contains("cq/jiangbei/g01"),
        "names the department and the place: {message}"
    );
    assert!(host.pending("community-grid").await.is_empty());
    let dispatched = host
        .audit()
        .await
        .into_iter()
        .any(|entry| matches!(entry.record, AuditRecord::Dispatch { .. }));
    assert!(!dispatched, "nothing was dispatched");
}

#[tokio::test]
async fn a_device_token_at_an_unknown_place_is_refused() {
    let host = host_with_tree().await;
    let message = assert_error(
        report(&host, "S-4", Some("cq/yubei/nowhere")).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert!(message.contains("cq/yubei/nowhere"), "{message}");
    assert!(host.pending("community-grid").await.is_empty());
}

#[tokio::test]
async fn without_a_place_an_item_goes_to_the_single_top_office() {
    let host = host_with_tree().await;
    let (status, case) = report(&host, "S-5", None).await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    assert_eq!(case["place"], Value::Null);
    let item = &case["items"][0];
    assert_eq!(item["place"], Value::Null);
    assert_eq!(
        item["office"],
        json!({"department": "community-grid", "place": "cq/yubei/longxi"}),
        "the town's office is above the grid's: the top one"
    );
}
