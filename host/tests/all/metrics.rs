//! `GET /metrics`: what operators scrape.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestHost, newborn_application};

pub async fn scrape(host: &TestHost) -> String {
    let response = host
        .client
        .get(format!("{}/metrics", host.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    response.text().await.unwrap()
}

pub fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

#[tokio::test]
async fn calls_failures_open_cases_and_responses_are_counted() {
    let host = TestHost::start(&["newborn", "traps", "reads-undeclared-dataset"]).await;
    let (_, first) = host
        .post("/v1/scenarios/newborn/cases", &newborn_application())
        .await;
    host.post("/v1/scenarios/newborn/cases", &newborn_application())
        .await;
    host.post("/v1/scenarios/traps/cases", &json!({})).await;
    host.post("/v1/scenarios/reads-undeclared-dataset/cases", &json!({}))
        .await;

    let text = scrape(&host).await;
    let newborn = "plugin=\"newborn\",version=\"0.1.0\"";
    assert_eq!(
        value(&text, &format!("onething_plugin_calls_total{{{newborn}}}")),
        2.0
    );
    assert_eq!(
        value(
            &text,
            "onething_plugin_failures_total{plugin=\"traps\",version=\"0.1.0\",kind=\"trap\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "onething_plugin_failures_total{plugin=\"reads-undeclared-dataset\",version=\"0.1.0\",kind=\"denied\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!("onething_plugin_call_duration_seconds_count{{{newborn}}}")
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            &format!("onething_plugin_active_version{{{newborn}}}")
        ),
        1.0
    );
    // Two newborn cases in progress; the undeclared read's case was rejected.
    assert_eq!(value(&text, "onething_cases_open"), 2.0);
    assert_eq!(
        value(&text, "onething_http_responses_total{status=\"201\"}"),
        3.0
    );
    assert_eq!(
        value(&text, "onething_http_responses_total{status=\"500\"}"),
        1.0
    );

    // The departments finish the first case: one case open, four more calls.
    for item in first["items"].as_array().unwrap() {
        let (status, _) = host
            .post(
                &format!(
                    "/v1/departments/{}/items/{}/complete",
                    item["department"].as_str().unwrap(),
                    item["item_id"].as_str().unwrap()
                ),
                &json!({"result": {}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let text = scrape(&host).await;
    assert_eq!(value(&text, "onething_cases_open"), 1.0);
    assert_eq!(
        value(&text, &format!("onething_plugin_calls_total{{{newborn}}}")),
        6.0
    );
    host.stop().await;
}

#[tokio::test]
async fn the_storage_writer_counts_its_writes_batches_and_flushes() {
    let host = TestHost::start(&["newborn"]).await;
    let before = scrape(&host).await;
    // Eight applications at once: they may share batches and flushes, but
    // each is one write, and no batch is flushed twice.
    let application = newborn_application();
    let post = || host.post("/v1/scenarios/newborn/cases", &application);
    let answers = tokio::join!(
        post(),
        post(),
        post(),
        post(),
        post(),
        post(),
        post(),
        post()
    );
    let answers = [
        answers.0, answers.1, answers.2, answers.3, answers.4, answers.5, answers.6, answers.7,
    ];
    for (status, _) in answers {
        assert_eq!(status, StatusCode::CREATED);
    }
    let after = scrape(&host).await;
    let delta = |series: &str| value(&after, series) - value(&before, series);
    let writes = delta("onething_storage_writes_total");
    let batches = delta("onething_storage_batches_total");
    let flushes = delta("onething_storage_flushes_total");
    assert_eq!(writes, 8.0, "one write per application");
    assert!((1.0..=writes).contains(&batches), "{batches} batches");
    assert!((1.0..=batches).contains(&flushes), "{flushes} flushes");
    assert!(delta("onething_storage_writer_busy_seconds_total") > 0.0);
    assert!(delta("onething_storage_flush_seconds_total") > 0.0);
    host.stop().await;
}
