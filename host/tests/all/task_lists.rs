//! Task lists (issue 13, item 6) over HTTP: a grid level takes only the
//! tasks on its list; the e-bike scenario's grid task is off it, so the
//! item is held, sent to nobody, until an operator approves it (it reaches
//! the grid with a note) or refuses it (the scenario is told, as if the
//! office had rejected it). A place's own list overrides its level's.

use onething_host::identity::issue_dev_officer;
use onething_host::storage::AuditRecord;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::routing::{admin, ebike_host, report};
use crate::support::{TestHost, assert_error, into_json};

const G07: &str = "cq/yubei/longxi/jinlong/g07";
const G08: &str = "cq/yubei/longxi/jinlong/g08";

/// Grids take only hazard reports; g08's own list also takes indoor
/// charging.
const TREE: &str = r#"{"id":"cq","name":"重庆市","level":"city"}
{"id":"cq/yubei","name":"渝北区","level":"district","parent":"cq"}
{"id":"cq/yubei/longxi","name":"龙溪街道","level":"town","parent":"cq/yubei"}
{"id":"cq/yubei/longxi/jinlong","name":"金龙路社区","level":"community","parent":"cq/yubei/longxi"}
{"id":"cq/yubei/longxi/jinlong/g07","name":"第七网格","level":"grid","parent":"cq/yubei/longxi/jinlong"}
{"id":"cq/yubei/longxi/jinlong/g08","name":"第八网格","level":"grid","parent":"cq/yubei/longxi/jinlong"}
{"office":{"department":"community-grid","place":"cq/yubei/longxi/jinlong/g07"}}
{"office":{"department":"community-grid","place":"cq/yubei/longxi/jinlong/g08"}}
{"office":{"department":"town-command-centre","place":"cq/yubei/longxi"}}
{"task_list":{"level":"grid","tasks":["community-grid/report-hazard"]}}
{"task_list":{"place":"cq/yubei/longxi/jinlong/g08","tasks":["community-grid/*"]}}
"#;

async fn held(host: &TestHost) -> Vec<String> {
    let (status, body) = admin(host, reqwest::Method::GET, "/v1/admin/held", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn grid_queue(host: &TestHost, place: &str) -> Vec<Value> {
    let token = issue_dev_officer(
        "w",
        "community-grid",
        Some(place),
        chrono::Utc::now().timestamp(),
        600,
    );
    let response = reqwest::Client::new()
        .get(format!(
            "{}/v1/departments/community-grid/items",
            host.api.base
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let (status, body) = into_json(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_off_list_task_is_held_until_an_operator_approves_it() {
    let host = ebike_host(TREE).await;
    let (status, case) = report(&host, "S-1", Some(G07)).await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let item_id = case["items"][0]["item_id"].as_str().unwrap().to_owned();
    assert_eq!(case["items"][0]["status"], "held");
    assert!(
        case["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "item-held" && e["office"] == G07),
        "{case}"
    );
    // Nothing reached the grid: not its queue, not the department's.
    assert!(grid_queue(&host, G07).await.is_empty());
    assert!(host.pending("community-grid").await.is_empty());
    assert_eq!(held(&host).await, [item_id.as_str()]);

    // Approved with a note: it reaches the grid, due from the approval.
    let path = format!("/v1/admin/held/{item_id}/approve");
    assert_error(
        admin(&host, reqwest::Method::POST, &path, json!({})).await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    );
    let (status, acted) = admin(
        &host,
        reqwest::Method::POST,
        &path,
        json!({"note": "fire risk: handle although it is off the grid list"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{acted}");
    assert_eq!(acted["item"]["status"], "pending");
    let queue = grid_queue(&host, G07).await;
    assert_eq!(queue.len(), 1);
    assert_eq!(
        queue[0]["note"],
        "fire risk: handle although it is off the grid list"
    );
    assert!(held(&host).await.is_empty());
    assert_error(
        admin(
            &host,
            reqwest::Method::POST,
            &path,
            json!({"note": "again"}),
        )
        .await,
        StatusCode::CONFLICT,
        "item_not_held",
    );
    let approved = host.audit().await.into_iter().any(|entry| {
        matches!(&entry.record, AuditRecord::Admin { actor, action, subject, .. }
            if actor == "admin" && action == "item.approve" && *subject == item_id)
    });
    assert!(
        approved,
        "the approval is on the audit log with the operator"
    );
    let held_dispatch = host.audit().await.into_iter().any(|entry| {
        matches!(&entry.record, AuditRecord::Dispatch { item_id: id, held: true, .. } if *id == item_id)
    });
    assert!(held_dispatch, "the dispatch is recorded as held");
    let metrics = crate::support::scrape(&host).await;
    assert_eq!(
        crate::support::value(&metrics, "onething_items_held_total"),
        1.0
    );
}

#[tokio::test]
async fn a_refused_task_is_rejected_to_the_scenario_and_a_place_list_overrides_the_level() {
    let host = ebike_host(TREE).await;
    let (_, case) = report(&host, "S-2", Some(G07)).await;
    let item_id = case["items"][0]["item_id"].as_str().unwrap().to_owned();
    let (status, acted) = admin(
        &host,
        reqwest::Method::POST,
        &format!("/v1/admin/held/{item_id}/refuse"),
        json!({"reason": "not a grid task: send it to the fire brigade"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{acted}");
    assert_eq!(acted["item"]["status"], "refused");
    assert_eq!(acted["item"]["handled_by"], "admin");
    // The scenario was told: ebike-charging waits when an office cannot act.
    assert_eq!(acted["case"]["status"], "awaiting-citizen");
    assert!(
        acted["case"]["message"]
            .as_str()
            .unwrap()
            .contains("fire brigade"),
        "{acted}"
    );
    assert!(held(&host).await.is_empty());
    assert!(
        grid_queue(&host, G07).await.is_empty(),
        "never reached the grid"
    );

    // g08's own list takes it: sent at once.
    let (status, case) = report(&host, "S-3", Some(G08)).await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    assert_eq!(case["items"][0]["status"], "pending");
    assert_eq!(grid_queue(&host, G08).await.len(), 1);

    assert_error(
        admin(
            &host,
            reqwest::Method::POST,
            "/v1/admin/held/nope/refuse",
            json!({"reason": "x"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "item_not_found",
    );
}
