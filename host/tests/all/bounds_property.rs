//! A property test over the real runtime: random scripts for the
//! `follows-a-script` fixture hand the host functions WIT-level values of
//! every size (strings from empty to megabytes, control characters and
//! quotes, every `due` of every unit, lists past their bounds, plugin error
//! messages), followed by random events (supplements, departments
//! completing items). Whatever the plugin does, the host answers every
//! request with a typed answer, keeps serving, and stores at most the
//! declared bound per call (docs/security.md, "What one application can
//! make the host store").
//!
//! `PROPTEST_CASES` sets how many scripts run (default 24).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::StatusCode;
use serde_json::{Value, json};

use onething_host::config::LimitsConfig;

use crate::support::TestHost;

/// Host-side framing the bound allows besides the effect budget: ids,
/// times, hashes and JSON keys of at most ~1,000 records per call
/// (256 reads x 2, 64 items x 3, 64 cancellations x 2, 16 notifications,
/// 16 denied targets and a few fixed entries), at most 512 bytes each.
const FRAMING_BYTES: usize = 1_000 * 512;

fn text() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => "[a-z/-]{0,12}".prop_map(Value::from),
        2 => any::<String>().prop_map(Value::from),
        1 => "[\"\\\\\u{1}\n]{0,64}".prop_map(Value::from),
        3 => (
            prop_oneof![0u64..300, 900u64..1_100, 4_000u64..4_200, 200_000u64..2_200_000],
            any::<bool>(),
        )
            .prop_map(|(n, quoted)| json!({"x": n, "quoted": quoted})),
    ]
}

fn due() -> impl Strategy<Value = Value> {
    let n = prop_oneof![Just(0u32), Just(1), Just(u32::MAX), 0u32..400, any::<u32>()];
    (
        prop_oneof![Just("working-days"), Just("hours"), Just("minutes")],
        n,
    )
        .prop_map(|(unit, n)| json!({ unit: n }))
}

fn department() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => Just(Value::from("public-security")),
        1 => Just(Value::from("tax")),
        1 => text(),
    ]
}

fn op() -> impl Strategy<Value = Value> {
    let repeat = prop_oneof![8 => Just(1u32), 2 => 0u32..20, 1 => 60u32..300];
    let payload = prop_oneof![
        Just(Value::from("{}")),
        Just(Value::from("not json")),
        text().prop_map(|t| match t {
            Value::Object(mut o) => {
                o.insert("quoted".into(), Value::Bool(true));
                Value::Object(o)
            }
            other => Value::from(other.to_string()),
        }),
    ];
    let dataset = prop_oneof![
        3 => Just(Value::from("public-security/residents")),
        1 => Just(Value::from("health/birth-certificates")),
        1 => text(),
    ];
    prop_oneof![
        (dataset, text(), text(), repeat.clone()).prop_map(|(d, k, p, r)| json!({
            "op": "query", "dataset": d, "key": k, "purpose": p, "repeat": r
        })),
        (department(), text(), payload, due(), repeat.clone()).prop_map(
            |(d, t, p, due, r)| json!({
                "op": "submit", "department": d, "task": t, "payload": p, "due": due, "repeat": r
            })
        ),
        (text(), repeat.clone())
            .prop_map(|(m, r)| json!({"op": "notify", "message": m, "repeat": r})),
        (text(), repeat.clone()).prop_map(|(i, r)| json!({"op": "cancel", "item": i, "repeat": r})),
        (text(), repeat).prop_map(|(m, r)| json!({"op": "log", "message": m, "repeat": r})),
    ]
}

fn script() -> impl Strategy<Value = Value> {
    (
        proptest::collection::vec(op(), 0..6),
        proptest::collection::vec(op(), 0..4),
        prop_oneof![
            Just("in-progress"),
            Just("awaiting-citizen"),
            Just("completed")
        ],
        prop_oneof![Just(0u64), 0u64..100, 900_000u64..1_100_000],
        proptest::option::weighted(0.15, text()),
        text(),
    )
        .prop_map(|(start, on_event, status, pad, error, message)| {
            let mut script = json!({
                "start": start, "on_event": on_event, "status": status,
                "state_pad": pad, "message": message,
            });
            if let Some(error) = error {
                script["error"] = error;
            }
            script
        })
}

#[derive(Debug, Clone, Copy)]
enum Event {
    Supplement,
    CompleteItem,
}

fn events() -> impl Strategy<Value = Vec<Event>> {
    proptest::collection::vec(
        prop_oneof![Just(Event::Supplement), Just(Event::CompleteItem)],
        0..3,
    )
}

/// What the host keeps: every audit entry and failure record, and the
/// cases we know of with their items, as stored (JSON).
struct Ledger {
    audit_seq: u64,
    audit_bytes: usize,
    cases: Vec<String>,
}

impl Ledger {
    async fn stored(&mut self, host: &TestHost) -> usize {
        let storage = &host.storage;
        let new = storage
            .audit_entries(self.audit_seq + 1, usize::MAX)
            .await
            .unwrap();
        for entry in &new {
            self.audit_seq = entry.seq;
            self.audit_bytes += serde_json::to_vec(entry).unwrap().len();
        }
        let failures: usize = storage
            .failures(usize::MAX)
            .await
            .unwrap()
            .iter()
            .map(|f| serde_json::to_vec(f).unwrap().len())
            .sum();
        let mut cases = 0;
        for id in &self.cases {
            let case = storage.case(id).await.unwrap().unwrap();
            cases += serde_json::to_vec(&case).unwrap().len();
            for item in &case.item_ids {
                let item = storage.item(item).await.unwrap().unwrap();
                cases += serde_json::to_vec(&item).unwrap().len();
            }
        }
        self.audit_bytes + failures + cases
    }
}

/// Every answer is typed: a status the contract knows and an error code.
fn assert_typed(status: StatusCode, body: &Value) {
    match status.as_u16() {
        200 | 201 => {}
        400 | 404 | 409 | 422 | 500 | 503 => {
            assert!(
                body["error"]["code"]
                    .as_str()
                    .is_some_and(|c| !c.is_empty()),
                "{status}: {body}"
            );
        }
        other => panic!("unexpected status {other}: {body}"),
    }
}

async fn run(host: &TestHost, ledger: &mut Ledger, script: Value, events: Vec<Event>) {
    let bound = 3 * LimitsConfig::DEFAULT.max_call_effect_bytes + FRAMING_BYTES;
    let application = json!({"script": script.to_string()});
    let before = ledger.stored(host).await;
    let (status, body) = host
        .post("/v1/scenarios/follows-a-script/cases", &application)
        .await;
    assert_typed(status, &body);
    if status == StatusCode::CREATED {
        ledger
            .cases
            .push(body["case_id"].as_str().unwrap().to_owned());
    }
    let grown = ledger.stored(host).await.saturating_sub(before);
    let allowed = bound + application.to_string().len();
    assert!(
        grown <= allowed,
        "start stored {grown} bytes, more than {allowed}"
    );
    let Some(case_id) = body["case_id"].as_str().map(str::to_owned) else {
        return;
    };
    for event in events {
        let before = ledger.stored(host).await;
        let (status, body) = match event {
            Event::Supplement => {
                host.post(
                    &format!("/v1/cases/{case_id}/supplements"),
                    &json!({"material": {"note": "more"}}),
                )
                .await
            }
            Event::CompleteItem => {
                let pending = host.pending("public-security").await;
                let Some(item) = pending.iter().find(|i| i["case_id"] == case_id.as_str()) else {
                    continue;
                };
                let item = item["item_id"].as_str().unwrap().to_owned();
                host.post(
                    &format!("/v1/departments/public-security/items/{item}/complete"),
                    &json!({"result": {"done": true}}),
                )
                .await
            }
        };
        assert_typed(status, &body);
        let grown = ledger.stored(host).await.saturating_sub(before);
        assert!(
            grown <= bound,
            "{event:?} stored {grown} bytes, more than {bound}"
        );
    }
    // The host keeps serving.
    let (status, _) = host.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
}

#[test]
fn any_script_is_answered_and_stores_at_most_the_declared_bound() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let host = rt.block_on(TestHost::start_with(&["follows-a-script"], |config| {
        // Every script runs, however often the plugin failed before.
        config.limits.quarantine_after_failures = u32::MAX;
    }));
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(24);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let ledger = std::sync::Mutex::new(Ledger {
        audit_seq: 0,
        audit_bytes: 0,
        cases: Vec::new(),
    });
    let result = runner.run(&(script(), events()), |(script, events)| {
        let mut ledger = ledger.lock().unwrap_or_else(|e| e.into_inner());
        rt.block_on(run(&host, &mut ledger, script, events));
        Ok(())
    });
    rt.block_on(host.stop());
    result.unwrap();
}
