//! Bad input gets a clear error with the right status, and nothing is
//! written.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestHost, assert_error, newborn_application};

#[tokio::test]
async fn unknown_things_are_404_with_a_code_that_says_which() {
    let host = TestHost::start(&["newborn"]).await;
    let message = assert_error(
        host.post("/v1/scenarios/no-such-thing/cases", &newborn_application())
            .await,
        StatusCode::NOT_FOUND,
        "scenario_not_found",
    );
    assert!(message.contains("no-such-thing"), "{message}");
    assert_error(
        host.get("/v1/cases/0190a0b0-0000-7000-8000-000000000000")
            .await,
        StatusCode::NOT_FOUND,
        "case_not_found",
    );
    assert_error(
        host.post("/v1/cases/nope/supplements", &json!({})).await,
        StatusCode::NOT_FOUND,
        "case_not_found",
    );
    assert_error(
        host.post(
            "/v1/departments/hrss/items/nope/complete",
            &json!({"result": {}}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "item_not_found",
    );
    assert_error(
        host.get("/v1/nothing-here").await,
        StatusCode::NOT_FOUND,
        "route_not_found",
    );
    assert_error(
        host.client
            .delete(format!("{}/v1/scenarios", host.base))
            .send()
            .await
            .map(|r| async { crate::support::into_json(r).await })
            .unwrap()
            .await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );

    // An item is found only through its own department.
    let (_, case) = host
        .post("/v1/scenarios/newborn/cases", &newborn_application())
        .await;
    let item = &case["items"][0];
    let other = if item["department"] == "hrss" {
        "tax"
    } else {
        "hrss"
    };
    assert_error(
        host.post(
            &format!(
                "/v1/departments/{other}/items/{}/complete",
                item["item_id"].as_str().unwrap()
            ),
            &json!({"result": {}}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "item_not_found",
    );
    host.stop().await;
}

#[tokio::test]
async fn malformed_bodies_are_400_and_name_the_problem() {
    let host = TestHost::start(&["newborn"]).await;
    let message = assert_error(
        host.post_raw("/v1/scenarios/newborn/cases", "{\"certificate_no\": ")
            .await,
        StatusCode::BAD_REQUEST,
        "malformed_json",
    );
    assert!(message.contains("not valid JSON"), "{message}");
    assert_error(
        host.post_raw("/v1/scenarios/newborn/cases", "").await,
        StatusCode::BAD_REQUEST,
        "malformed_json",
    );
    assert_error(
        host.post_raw("/v1/scenarios/newborn/cases", "[1, 2]").await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    let (_, case) = host
        .post("/v1/scenarios/newborn/cases", &newborn_application())
        .await;
    let item = &case["items"][0];
    let path = format!(
        "/v1/departments/{}/items/{}",
        item["department"].as_str().unwrap(),
        item["item_id"].as_str().unwrap()
    );
    let message = assert_error(
        host.post(&format!("{path}/complete"), &json!({"outcome": "done"}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    );
    assert!(message.contains("`result`"), "{message}");
    let message = assert_error(
        host.post(&format!("{path}/reject"), &json!({"reason": ""}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    );
    assert!(message.contains("`reason`"), "{message}");
    assert_error(
        host.get("/v1/departments/hrss/items?status=lost").await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    // None of that touched the item.
    let (_, case) = host
        .get(&format!("/v1/cases/{}", case["case_id"].as_str().unwrap()))
        .await;
    assert!(
        case["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["status"] == "pending")
    );
    host.stop().await;
}

/// Sends raw bytes and returns the status line and body of the answer.
fn raw_exchange(addr: &str, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    // The body may be cut off by an early answer; that is the point.
    let _ = stream.write_all(body);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn a_body_over_one_mib_is_413() {
    let host = TestHost::start(&["newborn"]).await;
    let addr = host.addr();
    let two_mib = 2 * 1024 * 1024;
    let token = crate::support::token(onething_host::identity::Role::Citizen, "test-citizen");

    // Declared too large: refused from Content-Length, before any body byte.
    let head = format!(
        "POST /v1/scenarios/newborn/cases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {two_mib}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    );
    let a = addr.clone();
    let (status, text) = tokio::task::spawn_blocking(move || raw_exchange(&a, &head, b""))
        .await
        .unwrap();
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("payload_too_large"), "{text}");

    // Sent in full by an ordinary client: still 413.
    let big = format!("{{\"note\": \"{}\"}}", "x".repeat(two_mib));
    let response = host
        .request(reqwest::Method::POST, "/v1/scenarios/newborn/cases", None)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_error(
        crate::support::into_json(response).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );

    // Chunked, with no Content-Length: cut off at the limit.
    let chunk = "y".repeat(64 * 1024);
    let mut body = Vec::new();
    for _ in 0..32 {
        body.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let head = format!(
        "POST /v1/scenarios/newborn/cases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let (status, text) = tokio::task::spawn_blocking(move || raw_exchange(&addr, &head, &body))
        .await
        .unwrap();
    assert_eq!(status, 413, "{text}");

    // The host is fine afterwards and nothing was created.
    assert!(host.pending("public-security").await.is_empty());
    let (status, _) = host
        .post("/v1/scenarios/newborn/cases", &newborn_application())
        .await;
    assert_eq!(status, StatusCode::CREATED);
    host.stop().await;
}

#[tokio::test]
async fn a_request_head_over_the_limit_is_431() {
    let host = TestHost::start(&["newborn"]).await;
    let head = format!(
        "GET /v1/scenarios HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\nConnection: close\r\n\r\n",
        "p".repeat(100 * 1024)
    );
    let addr = host.addr();
    let (status, text) = tokio::task::spawn_blocking(move || raw_exchange(&addr, &head, b""))
        .await
        .unwrap();
    assert_eq!(status, 431, "{text}");
    // The host goes on serving.
    let (status, _) = host.get("/v1/scenarios").await;
    assert_eq!(status, StatusCode::OK);
    host.stop().await;
}

/// Sends `fast` at once, then trickles `slow` a byte every `gap`, until
/// the server stops reading or answers; returns what it answered and how
/// long it took.
fn trickle(addr: &str, fast: &[u8], slow: &[u8], gap: Duration) -> (String, Duration) {
    let started = std::time::Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    stream.write_all(fast).unwrap();
    let mut answer = Vec::new();
    for byte in slow {
        if stream.write_all(&[*byte]).is_err() {
            break;
        }
        std::thread::sleep(gap);
        let mut buf = [0u8; 4096];
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    answer.extend(rest);
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_a_byte_at_a_time_is_cut_off() {
    let host = TestHost::start_with(&["newborn"], |config| {
        config.limits.header_read_timeout_ms = 500;
        config.limits.body_read_timeout_ms = 500;
    })
    .await;
    let addr = host.addr();
    let gap = Duration::from_millis(50);

    // Headers a byte every 50 ms: 160 bytes would take 8 s; the host stops
    // waiting after 0.5 s.
    let head = format!(
        "POST /v1/scenarios/newborn/cases HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "p".repeat(100)
    );
    let a = addr.clone();
    let (_, took) = tokio::task::spawn_blocking(move || trickle(&a, b"", head.as_bytes(), gap))
        .await
        .unwrap();
    assert!(
        took < Duration::from_secs(5),
        "headers: cut off only after {took:?}"
    );

    // Headers at once, then the body a byte every 50 ms: 408 after 0.5 s.
    let token = crate::support::token(onething_host::identity::Role::Citizen, "test-citizen");
    let body = serde_json::to_vec(&crate::support::newborn_application()).unwrap();
    let head = format!(
        "POST /v1/scenarios/newborn/cases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (answer, took) =
        tokio::task::spawn_blocking(move || trickle(&addr, head.as_bytes(), &body, gap))
            .await
            .unwrap();
    assert!(
        took < Duration::from_secs(5),
        "body: cut off only after {took:?}"
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");

    // The host still serves everyone else.
    let (status, _) = host.get("/v1/scenarios").await;
    assert_eq!(status, StatusCode::OK);
    host.stop().await;
}
