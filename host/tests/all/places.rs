//! The place tree end to end: imported offline into a stopped host's data
//! dir and then served, imported through the admin API, every refusal
//! naming its line and importing nothing, the `under` and `level` filters,
//! paging, and the demo tree on a demo start.

use std::sync::Arc;

use onething_host::places::Places;
use onething_host::storage::sled::SledStorage;
use onething_host::storage::{AuditRecord, Storage};
use reqwest::StatusCode;
use serde_json::Value;

use crate::admin_host::{Host, TOKEN};
use crate::support::{TestHost, assert_error, into_json};

/// A city, two districts, a town, a community and two grids, with offices.
const TREE: &str = r#"{"id":"cq","name":"重庆市","level":"city"}
{"id":"cq/yubei","name":"渝北区","level":"district","parent":"cq"}
{"id":"cq/jiangbei","name":"江北区","level":"district","parent":"cq"}
{"id":"cq/yubei/longxi","name":"龙溪街道","level":"town","parent":"cq/yubei"}
{"id":"cq/yubei/longxi/jinlong","name":"金龙路社区","level":"community","parent":"cq/yubei/longxi"}
{"id":"cq/yubei/longxi/jinlong/g07","name":"第七网格","level":"grid","parent":"cq/yubei/longxi/jinlong"}
{"id":"cq/yubei/longxi/jinlong/g08","name":"第八网格","level":"grid","parent":"cq/yubei/longxi/jinlong"}
{"office":{"department":"public-security","place":"cq/yubei"}}
{"office":{"department":"hrss","place":"cq"}}
{"office":{"department":"community-grid","place":"cq/yubei/longxi/jinlong/g07"}}
"#;

fn ids(body: &Value) -> Vec<String> {
    body["places"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn get(host: &Host, path: &str) -> (StatusCode, Value) {
    let response = reqwest::get(format!("{}{path}", host.api.base))
        .await
        .unwrap();
    into_json(response).await
}

async fn import(host: &Host, token: Option<&str>, body: &str) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/v1/admin/places", host.api.base))
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    into_json(request.send().await.unwrap()).await
}

#[tokio::test]
async fn a_tree_imported_offline_is_served_filtered_and_paged() {
    let dir = tempfile::tempdir().unwrap();
    {
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let storage: Arc<dyn Storage> =
            Arc::new(SledStorage::open(&dir.path().join("data")).unwrap());
        let places = Places::load(storage).await.unwrap();
        let summary = places.import(TREE, "cli").await.unwrap();
        assert_eq!((summary.places, summary.offices), (7, 3));
    }
    let host = Host::start(dir.path()).await;
    let (status, all) = get(&host, "/v1/places").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(ids(&all).len(), 7);
    assert_eq!(all["next_after"], Value::Null);
    assert_eq!(all["places"][0]["id"], "cq");
    assert_eq!(all["places"][0]["parent"], Value::Null);

    let (_, under) = get(&host, "/v1/places?under=cq/yubei/longxi").await;
    assert_eq!(
        ids(&under),
        [
            "cq/yubei/longxi",
            "cq/yubei/longxi/jinlong",
            "cq/yubei/longxi/jinlong/g07",
            "cq/yubei/longxi/jinlong/g08"
        ]
    );
    let (_, districts) = get(&host, "/v1/places?level=district").await;
    assert_eq!(ids(&districts), ["cq/jiangbei", "cq/yubei"]);
    let (_, grids) = get(&host, "/v1/places?level=grid&under=cq/yubei").await;
    assert_eq!(ids(&grids).len(), 2);
    let (_, none) = get(&host, "/v1/places?level=grid&under=cq/jiangbei").await;
    assert!(ids(&none).is_empty());

    // Pages of two, each starting after the last id of the one before.
    let mut seen = Vec::new();
    let mut path = "/v1/places?limit=2".to_owned();
    loop {
        let (status, page) = get(&host, &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(ids(&page));
        match page["next_after"].as_str() {
            Some(after) => path = format!("/v1/places?limit=2&after={after}"),
            None => break,
        }
    }
    assert_eq!(seen, ids(&all));

    assert_error(
        get(&host, "/v1/places?under=cq/nowhere").await,
        StatusCode::NOT_FOUND,
        "place_not_found",
    );
    assert_error(
        get(&host, "/v1/places?colour=red").await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    assert_error(
        get(&host, "/v1/places?limit=0").await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    host.stop().await;
}

#[tokio::test]
async fn the_admin_api_imports_audited_and_repeats_are_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path()).await;
    assert_error(
        import(&host, None, TREE).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let (status, body) = import(&host, Some(TOKEN), TREE).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["places"], 7, "{body}");
    assert_eq!(body["offices"], 3, "{body}");
    assert_eq!(body["unchanged"], 0, "{body}");
    let entries = host.storage.audit_entries(0, 1000).await.unwrap();
    assert!(
        entries.iter().any(|e| matches!(
            &e.record,
            AuditRecord::Admin { actor, action, .. } if actor == "admin" && action == "places.import"
        )),
        "{entries:?}"
    );

    // The same file again changes nothing; more below the tree is added.
    let (status, again) = import(&host, Some(TOKEN), TREE).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        (again["places"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(10))
    );
    let more = r#"{"id":"cq/jiangbei/guanyinqiao","name":"观音桥街道","level":"town","parent":"cq/jiangbei"}
{"office":{"department":"public-security","place":"cq/jiangbei"}}"#;
    let (status, added) = import(&host, Some(TOKEN), more).await;
    assert_eq!(status, StatusCode::OK, "{added}");
    assert_eq!(
        (added["places"].as_u64(), added["offices"].as_u64()),
        (Some(1), Some(1))
    );
    let (_, towns) = get(&host, "/v1/places?level=town").await;
    assert_eq!(ids(&towns).len(), 2);

    // The tree survives a restart.
    let host = host.restart().await;
    let (_, all) = get(&host, "/v1/places").await;
    assert_eq!(ids(&all).len(), 8);
    host.stop().await;
}

#[tokio::test]
async fn every_refusal_names_its_line_and_imports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path()).await;
    let (status, body) = import(&host, Some(TOKEN), TREE).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new_town = r#"{"id":"cq/jiangbei/wulidian","name":"五里店街道","level":"town","parent":"cq/jiangbei"}"#;
    let refusals = [
        (
            format!(
                "{new_town}\n{{\"id\":\"cq/yuzhong/jiefangbei\",\"name\":\"解放碑\",\"level\":\"town\",\"parent\":\"cq/yuzhong\"}}"
            ),
            "line 2:",
            "parent cq/yuzhong",
        ),
        (format!("{new_town}\n{new_town}"), "line 2:", "duplicate id"),
        (
            format!(
                "{new_town}\n{{\"id\":\"cq/jiangbei/wulidian/x\",\"name\":\"x\",\"level\":\"Grid!\",\"parent\":\"cq/jiangbei/wulidian\"}}"
            ),
            "line 2:",
            "level `Grid!`",
        ),
        (
            format!(
                "{new_town}\n{{\"id\":\"cq/jiangbei/wulidian/x\",\"name\":\"x\",\"level\":\"district\",\"parent\":\"cq/jiangbei/wulidian\"}}"
            ),
            "line 2:",
            "a level appears once",
        ),
        (
            format!(
                "{new_town}\n\n{{\"id\":\"cq/jiangbei/Wu Li\",\"name\":\"x\",\"level\":\"town\",\"parent\":\"cq/jiangbei\"}}"
            ),
            "line 3:",
            "slugs",
        ),
        (
            format!(
                "{new_town}\n{{\"office\":{{\"department\":\"tax\",\"place\":\"cq/yuzhong\"}}}}"
            ),
            "line 2:",
            "unknown place cq/yuzhong",
        ),
        (
            "{\"id\":\"cq\",\"name\":\"山城\",\"level\":\"city\"}".to_owned(),
            "line 1:",
            "does not change them",
        ),
    ];
    for (file, line, words) in refusals {
        let message = assert_error(
            import(&host, Some(TOKEN), &file).await,
            StatusCode::BAD_REQUEST,
            "places_invalid",
        );
        assert!(message.starts_with(line), "{file}: {message}");
        assert!(message.contains(words), "{file}: {message}");
        assert!(message.contains("nothing was imported"), "{message}");
        let (_, all) = get(&host, "/v1/places").await;
        assert_eq!(ids(&all).len(), 7, "after {file}");
    }
    host.stop().await;
}

#[tokio::test]
async fn a_demo_start_seeds_the_chongqing_like_tree_once() {
    let host = TestHost::start_with(&[], |config| config.demo_data = true).await;
    let (status, body) = host.api.get("/v1/places?level=district").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let districts: Vec<&str> = body["places"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(districts, ["江北区", "渝北区", "渝中区"]);
    let (_, grids) = host.api.get("/v1/places?level=grid&under=cq/yubei").await;
    assert!(grids["places"].as_array().unwrap().len() >= 4, "{grids}");
    host.stop().await;
}
