//! The newborn scenario on the demo place tree (issue 13's acceptance, on
//! the demo data): a family registered in 渝中区 gets its household
//! registration at 渝中区's police office and the other items at the city's
//! offices; 渝北区's police officer does not see it, the city's does, and
//! only 渝中区's officer may complete it. A family of 渝北区 goes to 渝北区.

use onething_host::config::Config;
use onething_host::identity::{Role, issue_dev_officer};
use onething_host::server::Server;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{assert_error, into_json, token};

fn officer(place: &str) -> String {
    issue_dev_officer(
        &format!("police@{place}"),
        "public-security",
        Some(place),
        chrono::Utc::now().timestamp(),
        600,
    )
}

async fn call(
    base: &str,
    bearer: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .bearer_auth(bearer);
    if let Some(body) = body {
        request = request.json(&body);
    }
    into_json(request.send().await.unwrap()).await
}

async fn police_queue(base: &str, place: &str) -> Vec<String> {
    let (status, body) = call(
        base,
        &officer(place),
        reqwest::Method::GET,
        "/v1/departments/public-security/items?status=pending",
        None,
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

#[tokio::test]
async fn household_registration_reaches_the_familys_district_and_the_rest_the_city() {
    let dirs = tempfile::tempdir().unwrap();
    let plugins = crate::support::copy_plugins(dirs.path(), &["newborn"]);
    let server = Server::start(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dirs.path().join("data"),
        plugins_dir: plugins,
        demo_data: true,
        ..Config::default()
    })
    .await
    .unwrap();
    let base = format!("http://{}", server.addr());

    // 王小明's father, registered in 渝中区 (a grid of 民生路社区).
    let father = token(Role::Citizen, "500103199001010018");
    let (status, case) = call(
        &base,
        &father,
        reqwest::Method::POST,
        "/v1/scenarios/newborn/cases",
        Some(
            json!({"certificate_no": "Q500000001", "child_name": "王小明",
                    "household_of": "father", "phone": "13800000000"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let case_id = case["case_id"].as_str().unwrap().to_owned();
    let (_, case) = call(
        &base,
        &father,
        reqwest::Method::GET,
        &format!("/v1/cases/{case_id}"),
        None,
    )
    .await;
    assert_eq!(case["place"], "cq/yuzhong/jiefangbei/minsheng/g01");
    let mut registration = String::new();
    for item in case["items"].as_array().unwrap() {
        let office = item["office"]["place"].as_str().unwrap();
        if item["task"] == "household-registration" {
            assert_eq!(office, "cq/yuzhong", "{item}");
            registration = item["item_id"].as_str().unwrap().to_owned();
        } else {
            assert_eq!(office, "cq", "the other items at the city: {item}");
        }
    }

    // 渝北区's police do not see it; the city's do; 渝中区's own it.
    assert!(police_queue(&base, "cq/yubei").await.is_empty());
    assert_eq!(police_queue(&base, "cq").await, [registration.as_str()]);
    assert_eq!(
        police_queue(&base, "cq/yuzhong").await,
        [registration.as_str()]
    );
    let complete = format!("/v1/departments/public-security/items/{registration}/complete");
    let result = Some(json!({"result": {"household_no": "H500103-20261120"}}));
    assert_error(
        call(
            &base,
            &officer("cq/yubei"),
            reqwest::Method::POST,
            &complete,
            result.clone(),
        )
        .await,
        StatusCode::NOT_FOUND,
        "item_not_found",
    );
    assert_error(
        call(
            &base,
            &officer("cq"),
            reqwest::Method::POST,
            &complete,
            result.clone(),
        )
        .await,
        StatusCode::FORBIDDEN,
        "not_owner",
    );
    let (status, acted) = call(
        &base,
        &officer("cq/yuzhong"),
        reqwest::Method::POST,
        &complete,
        result,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{acted}");
    assert_eq!(acted["item"]["handled_by"], "police@cq/yuzhong");

    // 李安然's family lives in 渝北区: its registration goes there.
    let mother = token(Role::Citizen, "500112199407220046");
    let (status, case) = call(
        &base,
        &mother,
        reqwest::Method::POST,
        "/v1/scenarios/newborn/cases",
        Some(
            json!({"certificate_no": "Q500000002", "child_name": "李安然",
                    "household_of": "mother", "phone": "13900000000"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let registration = case["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["task"] == "household-registration")
        .unwrap()
        .clone();
    assert_eq!(registration["office"]["place"], "cq/yubei");
    assert_eq!(
        police_queue(&base, "cq/yubei").await,
        [registration["item_id"].as_str().unwrap()]
    );
    server.shutdown().await;
}
