//! A department's queue: read by status from its own index, a page at a
//! time, and the items move between statuses as departments act.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestHost, assert_error};

/// Every item of `query` on department `test`, page by page.
async fn all_pages(host: &TestHost, query: &str, limit: usize) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut pages = 0;
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/v1/departments/test/items?{query}limit={limit}");
        if let Some(after) = &after {
            path.push_str(&format!("&after={after}"));
        }
        let (status, page) = host.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit, "{page}");
        ids.extend(
            items
                .iter()
                .map(|i| i["item_id"].as_str().unwrap().to_owned()),
        );
        match &page["next_after"] {
            Value::String(next) => {
                assert_eq!(items.len(), limit, "only the last page is short: {page}");
                assert_eq!(Some(next.as_str()), ids.last().map(String::as_str));
                after = Some(next.clone());
            }
            Value::Null => return (ids, pages),
            other => panic!("next_after is {other}"),
        }
        assert!(pages < 100, "paging does not end");
    }
}

#[tokio::test]
async fn a_department_pages_through_its_queue_by_status() {
    let host = TestHost::start(&["versioned-v1"]).await;
    // Seven applications, one item each for department `test`.
    let mut created = Vec::new();
    for n in 0..7 {
        let (status, case) = host
            .post(
                "/v1/scenarios/versioned/cases",
                &json!({"note": format!("n{n}")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{case}");
        created.push(case["items"][0]["item_id"].as_str().unwrap().to_owned());
    }
    // Oldest first, on one page or on many.
    let (everything, pages) = all_pages(&host, "", 1000).await;
    assert_eq!((everything.clone(), pages), (created.clone(), 1));
    let (paged, pages) = all_pages(&host, "status=pending&", 3).await;
    assert_eq!((paged, pages), (created.clone(), 3));

    // The department finishes the 2nd, 4th and 6th.
    for id in [&created[1], &created[3], &created[5]] {
        let (status, body) = host
            .post(
                &format!("/v1/departments/test/items/{id}/complete"),
                &json!({"result": {}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let pending: Vec<String> = [0, 2, 4, 6].iter().map(|&i| created[i].clone()).collect();
    let completed: Vec<String> = [1, 3, 5].iter().map(|&i| created[i].clone()).collect();
    assert_eq!(all_pages(&host, "status=pending&", 2).await, (pending, 2));
    assert_eq!(
        all_pages(&host, "status=completed&", 2).await,
        (completed, 2)
    );
    assert_eq!(all_pages(&host, "status=cancelled&", 2).await, (vec![], 1));
    assert_eq!(all_pages(&host, "", 4).await.0, created);

    // What the department sees of an item is the same on every page.
    let (_, page) = host
        .get(&format!(
            "/v1/departments/test/items?status=completed&limit=1&after={}",
            created[1]
        ))
        .await;
    assert_eq!(page["items"][0]["item_id"], created[3].as_str());
    assert_eq!(page["items"][0]["status"], "completed");

    // Bad paging is refused with what to send instead.
    for query in ["limit=0", "limit=1001", "limit=many", "after=", "page=2"] {
        let message = assert_error(
            host.get(&format!("/v1/departments/test/items?{query}"))
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        );
        assert!(
            message.contains("limit") || message.contains("after"),
            "{query}: {message}"
        );
    }
    host.stop().await;
}
