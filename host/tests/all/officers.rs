//! Officers (issue 13, item 4) over HTTP: a department token names an
//! officer at an office; they see their department's items at their place
//! and below, act only on their own office's (another office's item in
//! their area: 403 `not_owner`; outside it: 404), and every completion and
//! rejection records `handled_by` on the item, the timeline and the audit
//! log. A token without a place is the department at its top office.

use onething_host::identity::{Role, issue_dev_officer};
use onething_host::model::ItemStatus;
use onething_host::storage::AuditRecord;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::routing::{ebike_host, report};
use crate::support::{TestHost, assert_error, into_json, token};

const G07: &str = "cq/yubei/longxi/jinlong/g07";
const G08: &str = "cq/yubei/longxi/jinlong/g08";
const JIANGBEI_G01: &str = "cq/jiangbei/g01";

/// `community-grid` at the city, the yubei district, and three grids; the
/// command centre (which reviews a handled event) at the city.
const TREE: &str = r#"{"id":"cq","name":"重庆市","level":"city"}
{"id":"cq/yubei","name":"渝北区","level":"district","parent":"cq"}
{"id":"cq/yubei/longxi","name":"龙溪街道","level":"town","parent":"cq/yubei"}
{"id":"cq/yubei/longxi/jinlong","name":"金龙路社区","level":"community","parent":"cq/yubei/longxi"}
{"id":"cq/yubei/longxi/jinlong/g07","name":"第七网格","level":"grid","parent":"cq/yubei/longxi/jinlong"}
{"id":"cq/yubei/longxi/jinlong/g08","name":"第八网格","level":"grid","parent":"cq/yubei/longxi/jinlong"}
{"id":"cq/jiangbei","name":"江北区","level":"district","parent":"cq"}
{"id":"cq/jiangbei/g01","name":"江北第一网格","level":"grid","parent":"cq/jiangbei"}
{"office":{"department":"community-grid","place":"cq"}}
{"office":{"department":"community-grid","place":"cq/yubei"}}
{"office":{"department":"community-grid","place":"cq/yubei/longxi/jinlong/g07"}}
{"office":{"department":"community-grid","place":"cq/yubei/longxi/jinlong/g08"}}
{"office":{"department":"community-grid","place":"cq/jiangbei/g01"}}
{"office":{"department":"town-command-centre","place":"cq"}}
"#;

fn officer(id: &str, place: Option<&str>) -> String {
    issue_dev_officer(
        id,
        "community-grid",
        place,
        chrono::Utc::now().timestamp(),
        600,
    )
}

async fn get(host: &TestHost, bearer: &str, path: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", host.api.base))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    into_json(response).await
}

async fn post(host: &TestHost, bearer: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", host.api.base))
        .bearer_auth(bearer)
        .json(&body)
        .send()
        .await
        .unwrap();
    into_json(response).await
}

/// The ids of the items a token's queue lists (`query` after `?`).
async fn queue(host: &TestHost, bearer: &str, query: &str) -> Vec<String> {
    let (status, body) = get(
        host,
        bearer,
        &format!("/v1/departments/community-grid/items?{query}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn complete(host: &TestHost, bearer: &str, item: &str) -> (StatusCode, Value) {
    post(
        host,
        bearer,
        &format!("/v1/departments/community-grid/items/{item}/complete"),
        json!({"result": {"handled": true}}),
    )
    .await
}

/// A case's timeline, as stored.
async fn timeline(host: &TestHost, case_id: &str) -> Vec<Value> {
    let case = host.storage.case(case_id).await.unwrap().unwrap();
    serde_json::to_value(&case.timeline)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// One e-bike event at each of g07, g08 and jiangbei's g01: their item ids.
async fn three_items(host: &TestHost) -> [String; 3] {
    let mut ids = Vec::new();
    for (n, place) in [G07, G08, JIANGBEI_G01].into_iter().enumerate() {
        let (status, case) = report(host, &format!("S-{n}"), Some(place)).await;
        assert_eq!(status, StatusCode::CREATED, "{case}");
        assert_eq!(case["items"][0]["office"]["place"], place);
        ids.push(case["items"][0]["item_id"].as_str().unwrap().to_owned());
    }
    ids.try_into().unwrap()
}

#[tokio::test]
async fn an_officer_sees_their_area_and_acts_on_their_own_office_only() {
    let host = ebike_host(TREE).await;
    let [g07, g08, jiangbei] = three_items(&host).await;
    let grid07 = officer("wang-07", Some(G07));
    let district = officer("zhao-yubei", Some("cq/yubei"));
    let city = officer("chen-city", Some("cq"));

    // Seeing: the grid its own item, the district both of its grids, the
    // city every item of the department; oldest first.
    assert_eq!(
        queue(&host, &grid07, "status=pending").await,
        [g07.as_str()]
    );
    assert_eq!(
        queue(&host, &district, "status=pending").await,
        [g07.as_str(), g08.as_str()]
    );
    assert_eq!(
        queue(&host, &city, "").await,
        [g07.as_str(), g08.as_str(), jiangbei.as_str()]
    );
    // An office queue pages like the department's.
    let (_, page) = get(
        &host,
        &district,
        "/v1/departments/community-grid/items?limit=1",
    )
    .await;
    assert_eq!(page["items"][0]["item_id"], g07.as_str());
    assert_eq!(page["next_after"], g07.as_str());
    assert_eq!(
        queue(&host, &district, &format!("limit=1&after={g07}")).await,
        [g08.as_str()]
    );

    // Acting: another office's item in the area is 403 not_owner; one
    // outside it 404; nothing changes.
    let message = assert_error(
        complete(&host, &district, &g08).await,
        StatusCode::FORBIDDEN,
        "not_owner",
    );
    assert!(
        message.contains(G08) && message.contains("cq/yubei"),
        "{message}"
    );
    assert_error(
        complete(&host, &grid07, &g08).await,
        StatusCode::NOT_FOUND,
        "item_not_found",
    );
    assert_error(
        complete(&host, &district, &jiangbei).await,
        StatusCode::NOT_FOUND,
        "item_not_found",
    );
    assert_eq!(
        queue(&host, &city, "status=pending").await.len(),
        3,
        "a refused action changes nothing"
    );

    // The owner acts; the queues of every office above follow the item.
    let (status, acted) = complete(&host, &grid07, &g07).await;
    assert_eq!(status, StatusCode::OK, "{acted}");
    assert_eq!(acted["item"]["handled_by"], "wang-07");
    assert_eq!(
        queue(&host, &district, "status=pending").await,
        [g08.as_str()]
    );
    assert_eq!(
        queue(&host, &district, "status=completed").await,
        [g07.as_str()]
    );
    assert_eq!(
        queue(&host, &city, "status=completed").await,
        [g07.as_str()]
    );

    // 谁办理: on the item, the case's timeline and the audit log.
    let case_id = acted["case"]["case_id"].as_str().unwrap();
    let timeline = timeline(&host, case_id).await;
    assert!(
        timeline.iter().any(|e| e["event"] == "item-completed"
            && e["handled_by"] == "wang-07"
            && e["office"] == G07),
        "{timeline:?}"
    );
    let audited = host.audit().await.into_iter().any(|entry| {
        matches!(&entry.record, AuditRecord::DepartmentAction {
            case_id: c, status: ItemStatus::Completed, handled_by: Some(by), office: Some(o), ..
        } if c == case_id && by == "wang-07" && o == G07)
    });
    assert!(audited, "the audit log names the officer and the office");
}

#[tokio::test]
async fn a_token_without_a_place_is_the_department_at_its_top_office() {
    let host = ebike_host(TREE).await;
    let [g07, _, jiangbei] = three_items(&host).await;
    let department = token(Role::Department, "community-grid");
    assert_eq!(queue(&host, &department, "").await.len(), 3, "sees all");
    assert_error(
        complete(&host, &department, &g07).await,
        StatusCode::FORBIDDEN,
        "not_owner",
    );
    // A rejection by the grid's officer names them too.
    let (status, acted) = post(
        &host,
        &officer("li-g01", Some(JIANGBEI_G01)),
        &format!("/v1/departments/community-grid/items/{jiangbei}/reject"),
        json!({"reason": "no such building"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{acted}");
    assert_eq!(acted["item"]["handled_by"], "li-g01");
    let timeline = timeline(&host, acted["case"]["case_id"].as_str().unwrap()).await;
    assert!(
        timeline
            .iter()
            .any(|e| e["event"] == "item-rejected" && e["handled_by"] == "li-g01"),
        "{timeline:?}"
    );
}

#[tokio::test]
async fn officer_tokens_that_open_nothing_are_refused() {
    let host = ebike_host(TREE).await;
    three_items(&host).await;
    // A place where the department has no office, a place not in the tree.
    for place in ["cq/yubei/longxi", "cq/nowhere"] {
        let message = assert_error(
            get(
                &host,
                &officer("x", Some(place)),
                "/v1/departments/community-grid/items",
            )
            .await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        assert!(message.contains(place), "{message}");
    }
    // Another department's officer: not their queue.
    let tax = issue_dev_officer(
        "t-1",
        "tax",
        Some("cq"),
        chrono::Utc::now().timestamp(),
        600,
    );
    assert_error(
        get(&host, &tax, "/v1/departments/community-grid/items").await,
        StatusCode::NOT_FOUND,
        "queue_not_found",
    );
}
