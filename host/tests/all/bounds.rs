//! Everything a plugin hands the host across the WIT boundary is bounded:
//! a value past its bound is answered `invalid`, naming the bound, and the
//! whole call fails as `plugin_bound_exceeded` whatever the plugin then
//! returns; nothing of it is kept. Denied attempts are summed per target.
//! The calls in flight share one memory budget.
//!
//! The `follows-a-script` fixture calls the host functions as its
//! application says, and by default ignores their errors and answers as
//! if all went well: the poisoning is the host's, not the plugin's.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use onething_host::runtime::DeniedKind;
use onething_host::storage::AuditRecord;

use crate::support::{TestHost, assert_error, newborn_application, scrape, value};

/// Applies to `follows-a-script` with `script`.
async fn follow(host: &TestHost, script: Value) -> (StatusCode, Value) {
    host.post(
        "/v1/scenarios/follows-a-script/cases",
        &json!({"script": script.to_string()}),
    )
    .await
}

fn x(n: u64) -> Value {
    json!({ "x": n })
}

fn quoted(n: u64) -> Value {
    json!({ "x": n, "quoted": true })
}

fn read(dataset: Value, key: Value, purpose: Value) -> Value {
    json!({"op": "query", "dataset": dataset, "key": key, "purpose": purpose})
}

fn submit(department: Value, task: Value, payload: Value, due: Value) -> Value {
    json!({"op": "submit", "department": department, "task": task, "payload": payload, "due": due})
}

fn item(payload: Value) -> Value {
    submit(
        json!("public-security"),
        json!("t"),
        payload,
        json!({"hours": 1}),
    )
}

#[tokio::test]
async fn every_value_past_its_bound_fails_the_call_and_keeps_nothing() {
    let host = TestHost::start_with(&["follows-a-script", "newborn"], |config| {
        config.limits.quarantine_after_failures = 1_000;
    })
    .await;
    let ps = || json!("public-security/residents");
    let attacks: Vec<(&str, Value, &str)> = vec![
        (
            "a 1 MiB purpose",
            json!({"start": [read(ps(), json!("k"), x(1 << 20))]}),
            "max_purpose_bytes",
        ),
        (
            "a long key",
            json!({"start": [read(ps(), x(257), json!("p"))]}),
            "max_name_bytes",
        ),
        (
            "a long dataset name",
            json!({"start": [read(x(300), json!("k"), json!("p"))]}),
            "max_name_bytes",
        ),
        (
            "a long department",
            json!({"start": [submit(x(257), json!("t"), json!("{}"), json!({"hours": 1}))]}),
            "max_name_bytes",
        ),
        (
            "a 1 MiB task",
            json!({"start": [submit(json!("public-security"), x(1 << 20), json!("{}"), json!({"hours": 1}))]}),
            "max_name_bytes",
        ),
        (
            "a payload over 1 MiB",
            json!({"start": [item(quoted(1 << 20))]}),
            "max_plugin_json_bytes",
        ),
        (
            "hours(u32::MAX)",
            json!({"start": [submit(json!("public-security"), json!("t"), json!("{}"), json!({"hours": u32::MAX}))]}),
            "max_due_hours",
        ),
        (
            "working-days(u32::MAX)",
            json!({"start": [submit(json!("public-security"), json!("t"), json!("{}"), json!({"working-days": u32::MAX}))]}),
            "max_due_working_days",
        ),
        (
            "working-days(6000000)",
            json!({"start": [submit(json!("public-security"), json!("t"), json!("{}"), json!({"working-days": 6_000_000}))]}),
            "max_due_working_days",
        ),
        (
            "minutes(u32::MAX)",
            json!({"start": [submit(json!("public-security"), json!("t"), json!("{}"), json!({"minutes": u32::MAX}))]}),
            "max_due_minutes",
        ),
        (
            "65 items",
            json!({"start": [{"repeat": 65, "op": "submit", "department": "public-security", "task": "t", "payload": "{}"}]}),
            "max_items_per_call",
        ),
        (
            "257 reads",
            json!({"start": [{"repeat": 257, "op": "query", "dataset": "public-security/residents", "key": "none", "purpose": "p"}]}),
            "max_reads_per_call",
        ),
        (
            "a long notification",
            json!({"start": [{"op": "notify", "message": x(4097)}]}),
            "max_notification_bytes",
        ),
        (
            "17 notifications",
            json!({"start": [{"repeat": 17, "op": "notify", "message": "hi"}]}),
            "max_notifications_per_call",
        ),
        (
            "a long item id to cancel",
            json!({"start": [{"op": "cancel", "item": x(1 << 16)}]}),
            "max_name_bytes",
        ),
        (
            "100,000 denied dispatches",
            json!({"start": [{"repeat": 100_000, "op": "submit", "department": "tax", "task": "t", "payload": "{}"}]}),
            "max_denied_per_call",
        ),
        (
            "items each within bounds, over the call's budget together",
            json!({"start": [{"repeat": 30, "op": "submit", "department": "public-security", "task": "t", "payload": quoted(100_000)}]}),
            "max_call_effect_bytes",
        ),
        (
            "a state that, with the effects, is over the budget",
            json!({"state_pad": 1_000_000, "start": [{"repeat": 11, "op": "submit", "department": "public-security", "task": "t", "payload": quoted(100_000)}]}),
            "max_call_effect_bytes",
        ),
    ];
    let audit_before = host.audit().await.len();
    for (attack, script, bound) in attacks {
        let message = assert_error(
            follow(&host, script).await,
            StatusCode::INTERNAL_SERVER_ERROR,
            "plugin_bound_exceeded",
        );
        assert!(
            message.contains(&format!("limits.{bound}")),
            "{attack}: the message names the bound {bound}: {message}"
        );
    }
    // Nothing of those calls was kept: no item reached a department, no
    // case was made, and the audit log holds no dispatch or decision of
    // the fixture (only the records of reads and denied attempts that
    // really happened).
    assert!(host.pending("public-security").await.is_empty());
    let fixture_records: Vec<_> = host.audit().await[audit_before..]
        .iter()
        .filter(|e| {
            matches!(
                &e.record,
                AuditRecord::Dispatch { plugin, .. } | AuditRecord::Decision { plugin, .. }
                    if plugin == "follows-a-script"
            )
        })
        .cloned()
        .collect();
    assert!(fixture_records.is_empty(), "{fixture_records:?}");
    assert_eq!(
        host.storage.open_cases().await.unwrap(),
        0,
        "no case was kept"
    );

    // Within its bounds the same plugin works, and the host serves others.
    let (status, body) = follow(
        &host,
        json!({"start": [
            item(quoted(1_000)),
            read(ps(), json!("M-ZHAO-MOTHER"), json!("to check the bounds")),
            {"op": "notify", "message": "ok"},
        ]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(host.pending("public-security").await.len(), 1);
    assert_eq!(host.storage.open_cases().await.unwrap(), 1);
    let (status, body) = host
        .post("/v1/scenarios/newborn/cases", &newborn_application())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    host.stop().await;
}

#[tokio::test]
async fn a_plugin_that_ignores_the_refusal_still_fails_and_is_quarantined() {
    let host = TestHost::start(&["follows-a-script"]).await;
    // The plugin is told `invalid` and answers `completed` all the same.
    let script = json!({
        "status": "completed",
        "start": [submit(json!("public-security"), json!("t"), json!("{}"), json!({"working-days": u32::MAX}))],
    });
    for _ in 0..5 {
        assert_error(
            follow(&host, script.clone()).await,
            StatusCode::INTERNAL_SERVER_ERROR,
            "plugin_bound_exceeded",
        );
    }
    // Crossing bounds counts towards quarantine like any plugin fault.
    assert_error(
        follow(&host, json!({"start": []})).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "plugin_quarantined",
    );
    let text = scrape(&host).await;
    assert_eq!(
        value(
            &text,
            "onething_plugin_failures_total{plugin=\"follows-a-script\",version=\"0.1.0\",kind=\"bound_exceeded\"}"
        ),
        5.0
    );
    host.stop().await;
}

/// The denied-attempt records of one case, as (what, target, attempts).
async fn denied_records(host: &TestHost, case_id: Option<&str>) -> Vec<(DeniedKind, String, u32)> {
    host.audit()
        .await
        .into_iter()
        .filter_map(|e| match e.record {
            AuditRecord::Denied {
                what,
                target,
                attempts,
                case_id: c,
                ..
            } if case_id.is_none_or(|id| id == c) => Some((what, target, attempts)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn denied_attempts_are_audited_once_per_target_with_their_count() {
    let host = TestHost::start(&["follows-a-script"]).await;
    let script = json!({"start": [
        {"repeat": 5, "op": "submit", "department": "tax", "task": "t", "payload": "{}"},
        {"repeat": 3, "op": "query", "dataset": "health/birth-certificates", "key": "T100", "purpose": "probing"},
        {"op": "submit", "department": "hrss", "task": "t", "payload": "{}"},
    ]});
    let (status, body) = follow(&host, script).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let case_id = body["case_id"].as_str().unwrap();
    let mut denied = denied_records(&host, Some(case_id)).await;
    denied.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        denied,
        vec![
            (DeniedKind::Read, "health/birth-certificates".to_owned(), 3),
            (DeniedKind::Dispatch, "hrss".to_owned(), 1),
            (DeniedKind::Dispatch, "tax".to_owned(), 5),
        ]
    );
    // The first denied read of the dataset stays on the case's record (the
    // citizen sees the attempt); the other two are only counted.
    let (_, case) = host.get(&format!("/v1/cases/{case_id}")).await;
    let reads = case["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "data-read" && e["allowed"] == false)
        .count();
    assert_eq!(reads, 1, "{case}");
    let text = scrape(&host).await;
    assert_eq!(
        value(
            &text,
            "onething_plugin_failures_total{plugin=\"follows-a-script\",version=\"0.1.0\",kind=\"denied\"}"
        ),
        9.0
    );

    // Past the bound the call fails, and what it tried is still audited.
    let before = denied_records(&host, None).await.len();
    let script = json!({"start": [
        {"repeat": 1000, "op": "submit", "department": "tax", "task": "t", "payload": "{}"},
    ]});
    assert_error(
        follow(&host, script).await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "plugin_bound_exceeded",
    );
    let after = denied_records(&host, None).await;
    assert_eq!(after.len(), before + 1, "{after:?}");
    assert_eq!(
        after.last().unwrap(),
        &(DeniedKind::Dispatch, "tax".to_owned(), 16)
    );
    host.stop().await;
}

#[tokio::test]
async fn calls_in_flight_share_one_memory_budget() {
    // Room for one call of a 64 MiB plugin (plus what the host copies out
    // of it), not two.
    let host = TestHost::start_with(&["loops-forever", "echo"], |config| {
        config.limits.max_calls_memory_mib = 100;
        config.limits.plugin_queue_timeout_ms = 200;
    })
    .await;
    let api = host.api.clone();
    let spinning = tokio::spawn(async move {
        api.post("/v1/scenarios/loops-forever/cases", &json!({"note": "x"}))
            .await
    });
    // Wait until the spinning call holds its reservation.
    let mut reserved = 0.0;
    for _ in 0..500 {
        reserved = value(&scrape(&host).await, "onething_calls_memory_reserved_mib");
        if reserved > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(reserved, 66.0, "64 MiB of memory + 2 MiB of effects");
    let busy = host
        .post("/v1/scenarios/echo/cases", &json!({"note": "x"}))
        .await;
    // Unless the spinning call ended first (a very slow machine), the
    // second call waited and was told the budget is full.
    if !spinning.is_finished() {
        let message = assert_error(busy, StatusCode::SERVICE_UNAVAILABLE, "plugin_busy");
        assert!(message.contains("limits.max_calls_memory_mib"), "{message}");
    }
    assert_error(
        spinning.await.unwrap(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "plugin_timeout",
    );
    // The reservation was given back.
    assert_eq!(
        value(&scrape(&host).await, "onething_calls_memory_reserved_mib"),
        0.0
    );
    let (status, body) = host
        .post("/v1/scenarios/echo/cases", &json!({"note": "x"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    host.stop().await;
}
