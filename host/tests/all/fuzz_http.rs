//! Property tests of HTTP request validation against the real host: no
//! body, path or header a client sends gets a 5xx, and every error has the
//! JSON error shape. (cargo-fuzz needs a nightly toolchain; proptest runs on
//! stable and in CI. `PROPTEST_CASES=5000 cargo test fuzz_http` runs longer.)

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

use crate::support::TestHost;

fn check(status: u16, body: &str) -> Result<(), TestCaseError> {
    prop_assert!(status < 500, "{status}: {body}");
    if status >= 400 {
        let v: Value =
            serde_json::from_str(body).map_err(|e| TestCaseError::fail(format!("{e}: {body}")))?;
        prop_assert!(v["error"]["code"].is_string(), "{body}");
        prop_assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    Ok(())
}

fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        ".{0,200}".prop_map(String::into_bytes),
        // Near-valid newborn forms: right keys, any values.
        (
            proptest::option::of(".{0,12}"),
            proptest::option::of(".{0,12}"),
            proptest::option::of("mother|father|.{0,6}"),
            any::<bool>(),
        )
            .prop_map(|(cert, name, side, number)| {
                let mut form = serde_json::Map::new();
                if let Some(c) = cert {
                    form.insert("certificate_no".into(), Value::from(c));
                }
                if let Some(n) = name {
                    form.insert("child_name".into(), Value::from(n));
                }
                if let Some(s) = side {
                    form.insert("household_of".into(), Value::from(s));
                }
                form.insert("applicant_id".into(), Value::from("M-ZHAO-MOTHER"));
                form.insert(
                    "phone".into(),
                    if number {
                        Value::from(138)
                    } else {
                        Value::from("138")
                    },
                );
                Value::Object(form).to_string().into_bytes()
            }),
    ]
}

#[test]
fn no_request_a_client_can_send_gets_a_5xx() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let host = rt.block_on(TestHost::start(&["newborn"]));
    let api = host.api.clone();
    let mut runner = TestRunner::new(Config {
        cases: 200,
        ..Config::default()
    });
    let segment = "[a-zA-Z0-9._~%-]{0,12}";
    let methods = prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("DELETE")];
    let paths = prop_oneof![
        segment.prop_map(|s| format!("/v1/scenarios/{s}/cases")),
        segment.prop_map(|s| format!("/v1/cases/{s}")),
        segment.prop_map(|s| format!("/v1/cases/{s}/supplements")),
        (segment, segment).prop_map(|(d, i)| format!("/v1/departments/{d}/items/{i}/complete")),
        (segment, segment).prop_map(|(d, i)| format!("/v1/departments/{d}/items/{i}/reject")),
        segment.prop_map(|q| format!("/v1/departments/hrss/items?{q}")),
        Just("/v1/scenarios/newborn/cases".to_owned()),
        "/[a-z/]{0,30}",
    ];
    let key = proptest::option::of("[ -~]{0,40}");
    runner
        .run(
            &(methods, paths, body_strategy(), key),
            |(method, path, body, key)| {
                let (status, text) = rt.block_on(async {
                    let mut request = api.client.request(
                        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                        format!("{}{path}", api.base),
                    );
                    // Half the requests carry the token a real caller
                    // of the path would; half carry none.
                    if path.len() % 2 == 0
                        && let Some(token) = api.token_for(&path, None)
                    {
                        request = request.bearer_auth(token);
                    }
                    if let Some(k) = key {
                        request = request.header("Idempotency-Key", k);
                    }
                    let response = request
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    let status = response.status().as_u16();
                    (status, response.text().await.unwrap_or_default())
                });
                check(status, &text)
            },
        )
        .unwrap();
    rt.block_on(host.stop());
}
