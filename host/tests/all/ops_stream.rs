//! The operations stream (`GET /v1/ops/stream`) over HTTP: Server-Sent
//! Events of what changes the screen, on the e-bike event whose grid item
//! escalates twice and then runs out at the town; a screen that reconnects
//! with `Last-Event-ID` gets exactly what it missed; an id it cannot
//! resume from starts with `reset`; `?place=` narrows to a subtree.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::escalation::{G07, TREE, advance};
use crate::routing::{ADMIN, ebike_host_with, report};
use crate::support::{TestHost, assert_error, into_json};

/// One event as the stream sent it.
#[derive(Debug)]
struct Event {
    id: Option<String>,
    event: String,
    data: Value,
}

/// A stream being read.
struct Screen {
    response: reqwest::Response,
    buffer: String,
}

impl Screen {
    async fn open(host: &TestHost, query: &str, last_event_id: Option<&str>) -> Screen {
        let mut request = reqwest::Client::new()
            .get(format!("{}/v1/ops/stream{query}", host.api.base))
            .bearer_auth(ADMIN);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Screen {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped), within 20 s.
    async fn next(&mut self) -> Event {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event {
                    id: None,
                    event: String::new(),
                    data: Value::Null,
                };
                for line in block.lines() {
                    if let Some(id) = line.strip_prefix("id: ") {
                        event.id = Some(id.to_owned());
                    } else if let Some(name) = line.strip_prefix("event: ") {
                        event.event = name.to_owned();
                    } else if let Some(data) = line.strip_prefix("data: ") {
                        event.data = serde_json::from_str(data).unwrap();
                    }
                }
                if !event.event.is_empty() {
                    return event;
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.response.chunk())
                .await
                .expect("the stream sent nothing for 20 s")
                .unwrap()
                .expect("the stream ended");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test]
async fn the_screen_sees_cases_escalations_and_overdue_items_and_resumes_after_a_reconnect() {
    let host = ebike_host_with(TREE, |config| config.testing.manual_clock = true).await;
    let mut screen = Screen::open(&host, "", None).await;

    let (status, case) = report(&host, "S-7", Some(G07)).await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let case_id = case["case_id"].as_str().unwrap();
    let created = screen.next().await;
    assert_eq!(created.event, "case-created");
    assert_eq!(created.data["case_id"], case_id);
    assert_eq!(created.data["place"], G07);

    assert_eq!(advance(&host, 31).await, 1);
    let escalated = screen.next().await;
    assert_eq!(escalated.event, "item-escalated");
    assert_eq!(escalated.data["case_id"], case_id);
    assert_eq!(escalated.data["from_office"], G07);
    assert_eq!(escalated.data["office"], "cq/yubei/longxi/jinlong");
    let seen = escalated.id.clone().unwrap();

    // The screen goes away; the item moves once more meanwhile.
    drop(screen);
    assert_eq!(advance(&host, 31).await, 1);
    let mut screen = Screen::open(&host, "", Some(&seen)).await;
    let missed = screen.next().await;
    assert_eq!(missed.event, "item-escalated", "{missed:?}");
    assert_eq!(missed.data["office"], "cq/yubei/longxi");
    // Then live: the town's time runs out.
    assert_eq!(advance(&host, 31).await, 1);
    let overdue = screen.next().await;
    assert_eq!(overdue.event, "item-overdue", "{overdue:?}");
    assert_eq!(overdue.data["office"], "cq/yubei/longxi");
    let ids: Vec<u64> = [&created, &escalated, &missed, &overdue]
        .iter()
        .map(|e| {
            e.id.as_ref()
                .unwrap()
                .rsplit_once('-')
                .unwrap()
                .1
                .parse()
                .unwrap()
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    // An id of another run cannot be resumed: reset, with an id to go on
    // from, then live.
    let boot = seen.split_once('-').unwrap().0;
    let mut stale = Screen::open(&host, "", Some("1-3")).await;
    let reset = stale.next().await;
    assert_eq!(reset.event, "reset");
    assert!(reset.id.unwrap().starts_with(boot));

    // A screen of the grid, replaying from the start: only what happened
    // at places in it (the case; the moves went to the community and the
    // town), then live.
    let mut grid = Screen::open(&host, &format!("?place={G07}"), Some(&format!("{boot}-0"))).await;
    let first = grid.next().await;
    assert_eq!(
        (first.event.as_str(), &first.data["case_id"]),
        ("case-created", &Value::from(case_id))
    );
    let (status, second) = report(&host, "S-8", Some(G07)).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let next = grid.next().await;
    assert_eq!(next.event, "case-created");
    assert_eq!(next.data["case_id"], second["case_id"]);
    host.stop().await;
}

#[tokio::test]
async fn the_stream_is_for_operators_and_says_what_is_wrong() {
    let host = ebike_host_with(TREE, |_| {}).await;
    let url = format!("{}/v1/ops/stream", host.api.base);
    let client = reqwest::Client::new();
    let answer = into_json(client.get(&url).send().await.unwrap()).await;
    assert_error(answer, StatusCode::UNAUTHORIZED, "unauthorized");
    let bad_id = client
        .get(&url)
        .bearer_auth(ADMIN)
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_error(
        into_json(bad_id).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    let nowhere = client
        .get(format!("{url}?place=cq/nowhere"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_error(
        into_json(nowhere).await,
        StatusCode::NOT_FOUND,
        "place_not_found",
    );
    let unknown = client
        .get(format!("{url}?since=1"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_error(
        into_json(unknown).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    // An open stream does not keep the host from stopping.
    let _screen = Screen::open(&host, "", None).await;
    tokio::time::timeout(Duration::from_secs(20), host.stop())
        .await
        .expect("the host stops with a stream open");
}
