//! Hostile plugins fail their own call only: the right error, nothing
//! written, and good calls running beside them succeed.

use reqwest::StatusCode;
use serde_json::json;

use onething_host::storage::AuditRecord;

use crate::support::{TestHost, assert_error, newborn_application};

const ALL: &[&str] = &[
    "newborn",
    "loops-forever",
    "allocates-without-end",
    "traps",
    "dispatches-then-traps",
    "reads-undeclared-dataset",
];

/// Starts a hostile call and a good call at once; the good one must
/// succeed whatever the hostile one does. Returns the hostile answer.
async fn hostile_beside_good(host: &TestHost, scenario: &str) -> (StatusCode, serde_json::Value) {
    let api = host.api.clone();
    let path = format!("/v1/scenarios/{scenario}/cases");
    let hostile = tokio::spawn(async move {
        let response = api
            .post_req(&path, &json!({"note": "x"}))
            .send()
            .await
            .unwrap();
        crate::support::into_json(response).await
    });
    let (status, good) = host
        .post("/v1/scenarios/newborn/cases", &newborn_application())
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "good call beside {scenario}: {good}"
    );
    assert_eq!(good["status"], "in-progress");
    hostile.await.unwrap()
}

#[tokio::test]
async fn each_hostile_plugin_fails_its_own_call_with_a_typed_error() {
    let host = TestHost::start(ALL).await;
    for (scenario, code) in [
        ("loops-forever", "plugin_timeout"),
        ("allocates-without-end", "plugin_out_of_memory"),
        ("traps", "plugin_trap"),
        ("dispatches-then-traps", "plugin_trap"),
    ] {
        let answer = hostile_beside_good(&host, scenario).await;
        let message = assert_error(answer, StatusCode::INTERNAL_SERVER_ERROR, code);
        assert!(!message.is_empty());
    }
    // Four good applications went through, one per hostile call.
    assert_eq!(host.pending("hrss").await.len(), 4);
    // The item that dispatches-then-traps submitted before trapping was
    // never written: public-security has only the newborn items.
    let pending = host.pending("public-security").await;
    assert_eq!(pending.len(), 4);
    assert!(
        pending.iter().all(|i| i["scenario"] == "newborn"),
        "{pending:?}"
    );

    // The host keeps serving, and a failing plugin can be called again.
    let (status, catalogue) = host.get("/v1/scenarios").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(catalogue["scenarios"].as_array().unwrap().len(), ALL.len());
    assert_error(
        host.post("/v1/scenarios/traps/cases", &json!({})).await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "plugin_trap",
    );
    host.stop().await;
}

#[tokio::test]
async fn reading_an_undeclared_dataset_is_denied_and_audited() {
    let host = TestHost::start(ALL).await;
    let (status, body) = host
        .post(
            "/v1/scenarios/reads-undeclared-dataset/cases",
            &json!({"note": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The plugin saw `denied` and said so.
    assert_eq!(body["status"], "rejected", "{body}");
    assert!(
        body["message"].as_str().unwrap().starts_with("denied"),
        "{body}"
    );
    let case_id = body["case_id"].as_str().unwrap();
    let denied = host.audit().await.into_iter().any(|e| {
        matches!(
            &e.record,
            AuditRecord::DataRead { plugin, dataset, allowed: false, case_id: c, .. }
                if plugin == "reads-undeclared-dataset"
                    && dataset == "health/birth-certificates"
                    && c == case_id
        )
    });
    assert!(denied, "the denied read is on the audit record");
    // The case's timeline shows the attempt too.
    let (_, case) = host.get(&format!("/v1/cases/{case_id}")).await;
    let read = case["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "data-read")
        .cloned()
        .unwrap();
    assert_eq!(read["allowed"], false, "{case}");
    host.stop().await;
}

#[tokio::test]
async fn the_audit_chain_links_every_entry() {
    let host = TestHost::start(&["newborn"]).await;
    host.post("/v1/scenarios/newborn/cases", &newborn_application())
        .await;
    let audit = host.audit().await;
    assert!(audit.len() > 4);
    let mut prev = onething_host::storage::GENESIS_HASH.to_owned();
    for (i, entry) in audit.iter().enumerate() {
        assert_eq!(entry.seq, i as u64 + 1);
        assert_eq!(entry.prev_hash, prev);
        assert_eq!(entry.hash, entry.expected_hash());
        prev = entry.hash.clone();
    }
    host.stop().await;
}

#[tokio::test]
async fn a_plugin_failing_on_an_event_leaves_the_item_pending_and_says_so() {
    let host = TestHost::start(&["traps-on-event"]).await;
    let (status, case) = host
        .post("/v1/scenarios/traps-on-event/cases", &json!({"note": "x"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let case_id = case["case_id"].as_str().unwrap();
    let item_id = case["items"][0]["item_id"].as_str().unwrap();

    // The desk completes the item; the plugin traps handling it.
    let answer = host
        .post(
            &format!("/v1/departments/test-desk/items/{item_id}/complete"),
            &json!({"result": {"seen": true}}),
        )
        .await;
    assert_error(answer, StatusCode::INTERNAL_SERVER_ERROR, "plugin_trap");

    // Nothing changed but the record of the failure: the item is still
    // pending (the desk can try again), the status is unchanged.
    assert_eq!(host.pending("test-desk").await.len(), 1);
    let (_, case) = host.get(&format!("/v1/cases/{case_id}")).await;
    assert_eq!(case["status"], "in-progress");
    assert_eq!(case["items"][0]["status"], "pending");
    let last = case["timeline"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(last["event"], "call-failed", "{case}");
    assert_eq!(last["call"], "item-completed");
    assert_eq!(last["code"], "plugin_trap");
    host.stop().await;
}

#[tokio::test]
async fn a_plugin_at_its_concurrency_cap_is_busy_while_others_run() {
    let host = TestHost::start_with(&["newborn", "loops-forever"], |config| {
        config.limits.max_concurrent_calls_per_plugin = 1;
        config.limits.plugin_queue_timeout_ms = 100;
    })
    .await;
    let spin = |host: &TestHost| {
        let api = host.api.clone();
        tokio::spawn(async move {
            let response = api
                .post_req("/v1/scenarios/loops-forever/cases", &json!({}))
                .send()
                .await
                .unwrap();
            crate::support::into_json(response).await
        })
    };
    let first = spin(&host);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // The second call finds the one slot taken; had it waited for it, it
    // would end in plugin_timeout too.
    let second = spin(&host);
    // newborn has its own slots: it is not held up by the spinning plugin.
    let (status, body) = host
        .post("/v1/scenarios/newborn/cases", &newborn_application())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let b = second.await.unwrap();
    let a = first.await.unwrap();
    let mut codes = vec![
        a.1["error"]["code"].as_str().unwrap().to_owned(),
        b.1["error"]["code"].as_str().unwrap().to_owned(),
    ];
    codes.sort();
    assert_eq!(codes, ["plugin_busy", "plugin_timeout"]);
    host.stop().await;
}

#[tokio::test]
async fn more_hostile_plugins_are_contained() {
    let host = TestHost::start(&[
        "newborn",
        "recurses-forever",
        "returns-huge-string",
        "probes-wasi",
        "floods-log",
    ])
    .await;
    let message = assert_error(
        hostile_beside_good(&host, "recurses-forever").await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "plugin_trap",
    );
    assert!(message.contains("stack"), "{message}");
    // A state past the host's JSON bound is refused, not stored.
    assert_error(
        hostile_beside_good(&host, "returns-huge-string").await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "plugin_invalid_answer",
    );
    // A flood of log lines is cut at the per-call limit; the call itself
    // goes through.
    let (status, body) = hostile_beside_good(&host, "floods-log").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "completed");

    // Files, environment, arguments and sockets are not there; clocks are.
    let (status, body) = hostile_beside_good(&host, "probes-wasi").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let report: serde_json::Value =
        serde_json::from_str(body["message"].as_str().unwrap()).unwrap();
    assert!(
        report["file"].as_str().unwrap().starts_with("error"),
        "{report}"
    );
    assert!(
        report["dir"].as_str().unwrap().starts_with("error"),
        "{report}"
    );
    assert!(
        report["socket"].as_str().unwrap().starts_with("error"),
        "{report}"
    );
    assert_eq!(report["env"], json!([]), "{report}");
    assert_eq!(report["args"], json!([]), "{report}");
    assert_eq!(report["clock"], true, "{report}");
    host.stop().await;
}

#[tokio::test]
async fn a_plugin_that_keeps_failing_is_quarantined_until_an_operator_reactivates_it() {
    let host = TestHost::start_with(&["newborn", "traps"], |config| {
        config.limits.quarantine_after_failures = 3;
        config.admin_token = Some("operator-secret".into());
    })
    .await;
    for _ in 0..3 {
        assert_error(
            host.post("/v1/scenarios/traps/cases", &json!({})).await,
            StatusCode::INTERNAL_SERVER_ERROR,
            "plugin_trap",
        );
    }
    // The fourth application never reaches the plugin.
    let message = assert_error(
        host.post("/v1/scenarios/traps/cases", &json!({})).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "plugin_quarantined",
    );
    assert!(message.contains("3 failed calls in a row"), "{message}");
    // Other scenarios are not affected.
    let (status, _) = host
        .post("/v1/scenarios/newborn/cases", &newborn_application())
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Operators see why; only with the right token.
    let admin = |token: Option<&str>| {
        let mut request = host.client.get(format!("{}/v1/admin/plugins", host.base));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        request.send()
    };
    assert_eq!(
        admin(None).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        admin(Some("guess")).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let list: serde_json::Value = admin(Some("operator-secret"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let traps = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "traps")
        .unwrap();
    let reason = traps["versions"][0]["quarantine"]["reason"]
        .as_str()
        .unwrap();
    assert!(reason.contains("trapped"), "{reason}");

    // Reactivated, it takes applications again (and fails them again).
    let reactivated = host
        .client
        .post(format!("{}/v1/admin/plugins/traps/reactivate", host.base))
        .bearer_auth("operator-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(reactivated.status(), StatusCode::OK);
    assert_error(
        host.post("/v1/scenarios/traps/cases", &json!({})).await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "plugin_trap",
    );
    host.stop().await;
}
