//! The one-screen view's API (`GET /v1/ops/overview`) and the monthly
//! ranking (`GET /v1/ops/ranking`) over HTTP, on two e-bike events at one
//! grid: one handled at once by the grid's officer (then under review at
//! the town), one nobody handles, which moves up to the community. The
//! figures at the city, the town, the community and the grid are what the
//! test did; a recount from the stored cases gives the same counters.

use onething_host::identity::issue_dev_officer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::escalation::{G07, TREE, advance};
use crate::routing::{ADMIN, admin, ebike_host_with, report};
use crate::support::{TestHost, assert_error, into_json};

const JINLONG: &str = "cq/yubei/longxi/jinlong";
const LONGXI: &str = "cq/yubei/longxi";

async fn overview(host: &TestHost, place: Option<&str>) -> Value {
    let path = match place {
        Some(place) => format!("/v1/ops/overview?place={place}"),
        None => "/v1/ops/overview".to_owned(),
    };
    let (status, body) = admin(host, Method::GET, &path, Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn office<'a>(view: &'a Value, department: &str) -> &'a Value {
    view["offices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["department"] == department)
        .unwrap_or_else(|| panic!("no {department} office in {view}"))
}

#[tokio::test]
async fn the_overview_shows_what_happened_at_each_level_and_a_recount_agrees() {
    let host = ebike_host_with(TREE, |config| config.testing.manual_clock = true).await;
    let (_, handled) = report(&host, "S-1", Some(G07)).await;
    let (_, ignored) = report(&host, "S-2", Some(G07)).await;
    let item = handled["items"][0]["item_id"].as_str().unwrap();
    let token = issue_dev_officer(
        "officer-wang",
        "community-grid",
        Some(G07),
        chrono::Utc::now().timestamp(),
        600,
    );
    let done = reqwest::Client::new()
        .post(format!(
            "{}/v1/departments/community-grid/items/{item}/complete",
            host.api.base
        ))
        .bearer_auth(token)
        .json(&json!({"result": {"action": "unplugged"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(into_json(done).await.0, StatusCode::OK);
    // The other one's time runs out at the grid: up to the community.
    assert_eq!(advance(&host, 31).await, 1);
    assert!(ignored["case_id"].is_string());

    let city = overview(&host, Some("cq")).await;
    let items = &city["figures"]["items"];
    assert_eq!(city["figures"]["cases"]["in-progress"], 2, "{city}");
    assert_eq!(
        items["pending"], 2,
        "the review at the town and the moved item: {city}"
    );
    assert_eq!(
        (items["done"].as_u64(), items["on_time"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (items["escalated"].as_u64(), items["escalated_out"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(city["figures"]["on_time_rate"], 1.0);
    assert_eq!(
        city["figures"]["handling_minutes"]["p50"], 15,
        "done at once"
    );
    assert_eq!(city["children"][0]["place"]["id"], "cq/yubei");
    assert_eq!(city["children"][0]["figures"]["items"]["pending"], 2);
    assert!(
        city["offices"].as_array().unwrap().is_empty(),
        "no office at the city"
    );

    // The town: its command centre has the review; its community below.
    let town = overview(&host, Some(LONGXI)).await;
    assert_eq!(
        office(&town, "town-command-centre")["figures"]["items"]["pending"],
        1
    );
    assert_eq!(town["children"][0]["place"]["id"], JINLONG);
    let community = &town["children"][0]["figures"]["items"];
    assert_eq!(
        (
            community["pending"].as_u64(),
            community["escalated"].as_u64()
        ),
        (Some(1), Some(1))
    );

    // The grid: it finished one in time and let one go up.
    let grid = overview(&host, Some(G07)).await;
    let own = &office(&grid, "community-grid")["figures"]["items"];
    assert_eq!(own["pending"], 0);
    assert_eq!(
        (own["done"].as_u64(), own["escalated_out"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        grid["figures"]["cases"]["in-progress"], 2,
        "both cases are at the grid"
    );

    // The month's ranking of the grids: g07 did one of one in time.
    // The month it was done in (the host counts months in UTC here).
    let finished = host.storage.item(item).await.unwrap().unwrap().finished_at;
    let month = finished.unwrap().format("%Y-%m").to_string();
    let (status, ranking) = admin(
        &host,
        Method::GET,
        &format!("/v1/ops/ranking?level=grid&month={month}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ranking}");
    let first = &ranking["offices"][0];
    assert_eq!(
        (first["rank"].as_u64(), first["place"].as_str()),
        (Some(1), Some(G07))
    );
    assert_eq!(
        (first["done"].as_u64(), first["escalated_out"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(first["on_time_rate"], 1.0);

    // Live counters and a recount from the stored records agree.
    let recount = host.storage.recount(true).await.unwrap();
    assert_eq!(recount.differing, 0, "{recount:?}");
    assert_eq!((recount.cases, recount.items), (2, 3));
    host.stop().await;
}

#[tokio::test]
async fn the_overview_is_for_operators_and_says_what_is_wrong() {
    let host = ebike_host_with(TREE, |_| {}).await;
    let get = |path: &'static str, token: Option<&'static str>| {
        let host = &host;
        async move {
            let mut request = reqwest::Client::new().get(format!("{}{path}", host.api.base));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            into_json(request.send().await.unwrap()).await
        }
    };
    assert_error(
        get("/v1/ops/overview", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        get("/v1/ops/overview?place=cq/nowhere", Some(ADMIN)).await,
        StatusCode::NOT_FOUND,
        "place_not_found",
    );
    assert_error(
        get("/v1/ops/overview?at=cq", Some(ADMIN)).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    assert_error(
        get("/v1/ops/ranking?level=district", Some(ADMIN)).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    assert_error(
        get("/v1/ops/ranking?level=district&month=2026-13", Some(ADMIN)).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    assert_error(
        get("/v1/ops/ranking?level=province&month=2026-11", Some(ADMIN)).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    // The whole host, before anything happened: zeros, and the roots.
    let (status, whole) = get("/v1/ops/overview", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{whole}");
    assert_eq!(whole["place"], Value::Null);
    assert_eq!(whole["figures"]["items"]["pending"], 0);
    assert_eq!(whole["figures"]["on_time_rate"], Value::Null);
    assert_eq!(whole["children"][0]["place"]["id"], "cq");
    host.stop().await;
}

#[tokio::test]
async fn a_leader_reads_the_figures_of_their_place_and_below_only() {
    use onething_host::identity::{DEV_ISSUER, Role, dev_public_key_hex, issue_dev_at};
    let host = ebike_host_with(TREE, |config| {
        config.identity = Some(onething_host::config::IdentityConfig {
            issuer: DEV_ISSUER.into(),
            public_key: dev_public_key_hex(),
            leeway_s: 60,
        });
    })
    .await;
    let now = chrono::Utc::now().timestamp();
    let leader = issue_dev_at(Role::Operator, "leader-zhao", Some(LONGXI), now, 600);
    let get = |path: String| {
        let (host, leader) = (&host, &leader);
        async move {
            into_json(
                reqwest::Client::new()
                    .get(format!("{}{path}", host.api.base))
                    .bearer_auth(leader)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let (status, own) = get("/v1/ops/overview".into()).await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(own["place"]["id"], LONGXI, "no place: the leader's own");
    let (status, below) = get(format!("/v1/ops/overview?place={JINLONG}")).await;
    assert_eq!(status, StatusCode::OK, "{below}");
    assert_error(
        get("/v1/ops/overview?place=cq".into()).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        get("/v1/ops/stream?place=cq/yubei".into()).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    // The districts are above the town: none of their offices is shown.
    let (status, ranking) = get("/v1/ops/ranking?level=town&month=2026-11".into()).await;
    assert_eq!(status, StatusCode::OK, "{ranking}");
    let places: Vec<&str> = ranking["offices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["place"].as_str().unwrap())
        .collect();
    assert!(places.iter().all(|p| *p == LONGXI), "{ranking}");
    assert!(!places.is_empty());
    // A leader's token opens no admin route.
    assert_error(
        get("/v1/admin/clock".into()).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    host.stop().await;
}
