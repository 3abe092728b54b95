//! The registry end to end: signed packages over the admin API, every
//! refusal, hot swap under load, pinned cases, rollback, restart (what it
//! guards against is in `registry_guards`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use onething_host::storage::AuditRecord;
use onething_registry::{Package, SigningKeyFile};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin_host::{Host, package_of, signed, signed_with};
use crate::support::{Api, assert_error, dist, into_json};

/// Trusts a fresh `test` key, allows dispatch to `test`, and uploads and
/// activates v1 of the versioned fixture signed with it.
pub(crate) async fn v1_active(host: &Host) -> SigningKeyFile {
    let key = SigningKeyFile::generate("test").unwrap();
    host.trust(&key).await;
    host.grant("test", json!({"dispatch": ["test"]})).await;
    let (status, body) = host.upload(signed("versioned-v1", &key), true).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["active"], true, "{body}");
    key
}

async fn apply(api: &Api) -> Value {
    let (status, body) = api
        .post("/v1/scenarios/versioned/cases", &json!({"note": "hi"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

#[tokio::test]
async fn every_bad_package_is_refused_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path()).await;
    let test_key = SigningKeyFile::generate("test").unwrap();

    // No token, a wrong token.
    assert_error(
        host.admin_as(None, Method::GET, "/v1/admin/plugins", None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        host.admin_as(Some("guess"), Method::GET, "/v1/admin/plugins", None)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        host.admin_as(
            Some("guess"),
            Method::POST,
            "/v1/admin/plugins",
            Some(signed("versioned-v1", &test_key)),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );

    // Not a package; unsigned; signed by a key nobody trusts.
    assert_error(
        host.upload(b"PK\x03\x04 a zip file".to_vec(), false).await,
        StatusCode::BAD_REQUEST,
        "package_malformed",
    );
    let unsigned = package_of("versioned-v1", |m| m).encode();
    assert_error(
        host.upload(unsigned, false).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "package_unsigned",
    );
    let message = assert_error(
        host.upload(signed("versioned-v1", &test_key), false).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "key_untrusted",
    );
    assert!(message.contains(&test_key.key_id()), "{message}");

    // Trusted, but its grants are beyond the department's ceiling (none yet).
    host.trust(&test_key).await;
    let message = assert_error(
        host.upload(signed("versioned-v1", &test_key), false).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "grant_beyond_ceiling",
    );
    assert!(message.contains("dispatch `test`"), "{message}");
    host.grant("test", json!({"dispatch": ["test"]})).await;

    // Any byte flipped after signing: in the component, in the manifest.
    let good = signed("versioned-v1", &test_key);
    let manifest_len = package_of("versioned-v1", |m| m).manifest_text.len();
    for index in [8 + 9 + 3, 8 + 9 + manifest_len + 9 + 1000, good.len() - 400] {
        let mut tampered = good.clone();
        tampered[index] ^= 0x20;
        assert_error(
            host.upload(tampered, false).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "package_tampered",
        );
    }

    // A key trusted for another department.
    let tax_key = SigningKeyFile::generate("tax").unwrap();
    host.trust(&tax_key).await;
    let message = assert_error(
        host.upload(signed("versioned-v1", &tax_key), false).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "key_wrong_department",
    );
    assert!(message.contains("`tax`"), "{message}");

    // A component of the wrong world: a wasi:http handler.
    let http_component = std::fs::read(dist().join("bench/hello-http.wasm")).unwrap();
    let mut wrong_world = Package::new(
        package_of("versioned-v1", |m| m).manifest_text,
        http_component,
    )
    .unwrap();
    test_key.sign(&mut wrong_world);
    let message = assert_error(
        host.upload(wrong_world.encode(), false).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "wrong_world",
    );
    assert!(message.contains("onething:scenario/scenario"), "{message}");

    // Nothing refused was stored.
    let (status, listed) = host.admin(Method::GET, "/v1/admin/plugins", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["plugins"], json!([]), "{listed}");

    // The good package: stored, not active until asked.
    let (status, uploaded) = host.upload(good.clone(), false).await;
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    assert_eq!(uploaded["active"], false);
    assert_eq!(uploaded["signed_by"], test_key.key_id());
    assert_error(
        host.api
            .post("/v1/scenarios/versioned/cases", &json!({}))
            .await,
        StatusCode::NOT_FOUND,
        "scenario_not_found",
    );
    // The same package again changes nothing; other content under the same
    // version is refused.
    let (status, again) = host.upload(good, false).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["created"], false);
    let changed = signed_with("versioned-v1", &test_key, |m| {
        m.replace("Names the build", "Changed: names the build")
    });
    assert_error(
        host.upload(changed, false).await,
        StatusCode::CONFLICT,
        "version_exists",
    );

    // A revoked key signs nothing any more.
    let (status, revoked) = host
        .admin(
            Method::DELETE,
            &format!("/v1/admin/keys/{}", test_key.key_id()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    // Nothing it signed is active here (v1 was stored, not activated).
    assert_eq!(revoked["still_active"], json!([]), "{revoked}");
    let v2 = signed("versioned-v2", &test_key);
    assert_error(
        host.upload(v2, false).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "key_revoked",
    );
    assert_error(
        host.admin(
            Method::POST,
            "/v1/admin/plugins/versioned/activate",
            Some(br#"{"version":"1.0.0"}"#.to_vec()),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "key_revoked",
    );

    // Every change is on the audit record, by whom.
    let entries = host.storage.audit_entries(0, 10_000).await.unwrap();
    let actions: Vec<String> = entries
        .iter()
        .filter_map(|e| match &e.record {
            AuditRecord::Admin { actor, action, .. } => {
                assert_eq!(actor, "admin");
                Some(action.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        actions,
        [
            "key.trust",
            "grants.set",
            "key.trust",
            "plugin.upload",
            "key.revoke"
        ],
    );
    host.stop().await;
}

#[tokio::test]
async fn activation_swaps_under_load_with_no_failed_request_and_cases_stay_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path()).await;
    let key = v1_active(&host).await;

    // A case started on v1, finished later.
    let pinned = apply(&host.api).await;
    assert_eq!(pinned["message"], "started by v1");
    let pinned_id = pinned["case_id"].as_str().unwrap().to_owned();

    // 2,000 applications over 8 connections; v2 is uploaded and activated
    // while they run.
    const REQUESTS: usize = 2_000;
    const CONNECTIONS: usize = 8;
    let done = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..CONNECTIONS {
        let api = host.api.clone();
        let done = done.clone();
        workers.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for _ in 0..REQUESTS / CONNECTIONS {
                let sent = Instant::now();
                let response = api
                    .post_req("/v1/scenarios/versioned/cases", &json!({"note": "load"}))
                    .send()
                    .await;
                let answer = match response {
                    Ok(response) => into_json(response).await,
                    Err(e) => panic!("request failed: {e}"),
                };
                done.fetch_add(1, Ordering::Relaxed);
                answers.push((sent, answer));
            }
            answers
        }));
    }
    while done.load(Ordering::Relaxed) < REQUESTS / 5 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (status, body) = host.upload(signed("versioned-v2", &key), false).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, switched) = host
        .admin(
            Method::POST,
            "/v1/admin/plugins/versioned/activate",
            Some(br#"{"version":"2.0.0"}"#.to_vec()),
        )
        .await;
    let activated = Instant::now();
    assert_eq!(status, StatusCode::OK, "{switched}");
    assert_eq!(switched["previous"], "1.0.0");
    let mut answers = Vec::new();
    for worker in workers {
        answers.extend(worker.await.unwrap());
    }
    assert_eq!(answers.len(), REQUESTS);
    let failed: Vec<_> = answers
        .iter()
        .filter(|(_, (status, _))| *status != StatusCode::CREATED)
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    let by = |build: &str| {
        answers
            .iter()
            .filter(|(_, (_, body))| body["message"] == format!("started by {build}"))
            .count()
    };
    let (v1, v2) = (by("v1"), by("v2"));
    assert_eq!(v1 + v2, REQUESTS);
    assert!(v1 >= REQUESTS / 5 && v2 > 0, "v1 {v1}, v2 {v2}");
    // Every request sent after the activation answered is v2's.
    for (sent, (_, body)) in &answers {
        if *sent > activated {
            assert_eq!(body["message"], "started by v2", "{body}");
        }
    }

    // The pinned case's later event runs on v1; a new case finishes on v2.
    let items = host.api.pending("test").await;
    let pinned_item = items
        .iter()
        .find(|i| i["case_id"] == pinned_id.as_str())
        .expect("the pinned case's item is pending");
    assert_eq!(pinned_item["task"], "v1-task");
    let (status, body) = host
        .api
        .post(
            &format!(
                "/v1/departments/test/items/{}/complete",
                pinned_item["item_id"].as_str().unwrap()
            ),
            &json!({"result": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, case) = host.api.get(&format!("/v1/cases/{pinned_id}")).await;
    assert_eq!(case["status"], "completed", "{case}");
    assert_eq!(case["message"], "finished by v1", "{case}");

    // Operators see each version's open cases; a version in use is kept.
    let plugin = host.plugin("versioned").await;
    assert_eq!(plugin["active_version"], "2.0.0");
    let versions = plugin["versions"].as_array().unwrap();
    assert_eq!(versions[0]["open_cases"], v1 as u64, "{plugin}");
    assert_eq!(versions[1]["open_cases"], v2 as u64, "{plugin}");
    assert_error(
        host.admin(
            Method::DELETE,
            "/v1/admin/plugins/versioned/versions/1.0.0",
            None,
        )
        .await,
        StatusCode::CONFLICT,
        "version_in_use",
    );
    assert_error(
        host.admin(
            Method::DELETE,
            "/v1/admin/plugins/versioned/versions/2.0.0",
            None,
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    );

    // Roll back: new cases go to v1 again.
    let (status, rolled) = host
        .admin(Method::POST, "/v1/admin/plugins/versioned/rollback", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{rolled}");
    assert_eq!(rolled["active"], "1.0.0");
    assert_eq!(apply(&host.api).await["message"], "started by v1");
    assert_error(
        host.admin(Method::POST, "/v1/admin/plugins/versioned/rollback", None)
            .await,
        StatusCode::CONFLICT,
        "conflict",
    );

    // A restart keeps keys, grants, versions and the active one, and takes
    // the components from the compile cache.
    let host = host.restart().await;
    let plugin = host.plugin("versioned").await;
    assert_eq!(plugin["active_version"], "1.0.0", "{plugin}");
    for version in plugin["versions"].as_array().unwrap() {
        assert_eq!(version["loaded"], true, "{version}");
        assert_eq!(version["compile_cache"], "hit", "{version}");
    }
    let (_, keys) = host.admin(Method::GET, "/v1/admin/keys", None).await;
    assert_eq!(keys["keys"][0]["key_id"], key.key_id(), "{keys}");
    let (_, grants) = host.admin(Method::GET, "/v1/admin/grants", None).await;
    assert_eq!(
        grants["grants"]["test"]["dispatch"],
        json!(["test"]),
        "{grants}"
    );
    assert_eq!(apply(&host.api).await["message"], "started by v1");

    // Revoking the key names the active version it signed, which keeps
    // running until the operator acts.
    let (status, revoked) = host
        .admin(
            Method::DELETE,
            &format!("/v1/admin/keys/{}", key.key_id()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(
        revoked["still_active"],
        json!(["versioned@1.0.0"]),
        "{revoked}"
    );
    assert_eq!(apply(&host.api).await["message"], "started by v1");

    // Deactivated: no new cases, and not in the catalogue; open cases go on.
    let (status, _) = host
        .admin(Method::POST, "/v1/admin/plugins/versioned/deactivate", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_error(
        host.api
            .post("/v1/scenarios/versioned/cases", &json!({}))
            .await,
        StatusCode::NOT_FOUND,
        "scenario_not_found",
    );
    let (_, catalogue) = host.api.get("/v1/scenarios").await;
    assert_eq!(catalogue["scenarios"], json!([]));
    let item = &host.api.pending("test").await[0];
    let (status, body) = host
        .api
        .post(
            &format!(
                "/v1/departments/test/items/{}/complete",
                item["item_id"].as_str().unwrap()
            ),
            &json!({"result": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    host.stop().await;
}
