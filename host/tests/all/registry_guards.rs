//! What the registry guards: a blob changed on disk is never loaded, a
//! dispatch the manifest does not grant is denied, operators act under
//! their own names, and other tokens (including a development operator
//! token in demo mode) open nothing.

use std::sync::Arc;

use onething_host::server::Server;
use onething_host::service::SystemClock;
use onething_host::storage::sled::SledStorage;
use onething_host::storage::{AuditRecord, Storage};
use onething_registry::SigningKeyFile;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::admin_host::{Host, TOKEN, signed, signed_with};
use crate::registry::v1_active;
use crate::support::{Api, assert_error, into_json};

#[tokio::test]
async fn a_blob_changed_on_disk_is_never_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path()).await;
    v1_active(&host).await;
    let config = host.config.clone();
    host.stop().await;

    // Someone with access to the disk changes the stored component; a
    // crash left a half-written blob and one no version names.
    let blob_dir = dir.path().join("data/blobs");
    let blobs: Vec<_> = std::fs::read_dir(&blob_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    std::fs::write(blob_dir.join(format!("{}.tmp", "a".repeat(64))), b"half").unwrap();
    std::fs::write(blob_dir.join("b".repeat(64)), b"orphan").unwrap();
    let mut bytes = std::fs::read(&blobs[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&blobs[0], bytes).unwrap();

    let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(&config.data_dir).unwrap());
    let server = Server::start_with(config, storage, Arc::new(SystemClock))
        .await
        .unwrap();
    let errors: Vec<String> = server
        .plugin_errors()
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("does not match its digest"),
        "{errors:?}"
    );
    // The leftovers are gone; the named (damaged) blob stays for a look.
    let left: Vec<_> = std::fs::read_dir(&blob_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(left, blobs);
    let api = Api::new(format!("http://{}", server.addr()));
    assert_error(
        api.post("/v1/scenarios/versioned/cases", &json!({})).await,
        StatusCode::NOT_FOUND,
        "scenario_not_found",
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_dispatch_the_manifest_does_not_grant_is_denied() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path()).await;
    let key = SigningKeyFile::generate("test").unwrap();
    host.trust(&key).await;
    // The same component, its manifest granting no dispatch at all.
    let ungranted = signed_with("versioned-v1", &key, |m| {
        m.replace("[grants]\ndispatch = [\"test\"]\n", "")
    });
    let (status, body) = host.upload(ungranted, true).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, answer) = host
        .api
        .post("/v1/scenarios/versioned/cases", &json!({}))
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
    assert_eq!(answer["error"]["code"], "plugin_denied", "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("test"),
        "{answer}"
    );
    // Nothing reached the department; the denial is counted.
    assert!(host.api.pending("test").await.is_empty());
    let (_, _) = host.api.get("/healthz").await;
    let metrics = host
        .api
        .client
        .get(format!("{}/metrics", host.api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "onething_plugin_failures_total{plugin=\"versioned\",version=\"1.0.0\",kind=\"denied\"} 1"
        ),
        "{metrics}"
    );
    host.stop().await;
}

#[tokio::test]
async fn operators_act_under_their_own_names_and_other_tokens_open_nothing() {
    use onething_host::identity::{Role, issue_dev};
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path()).await;
    let now = chrono::Utc::now().timestamp();
    let li = issue_dev(Role::Operator, "li.wei", now, 600);
    let zhang = issue_dev(Role::Operator, "zhang.min", now, 600);

    // Li trusts the key and sets the ceiling; Zhang uploads and activates;
    // the admin token rolls back.
    let key = SigningKeyFile::generate("test").unwrap();
    let (status, body) = host
        .admin_as(
            Some(&li),
            Method::POST,
            "/v1/admin/keys",
            Some(key.public().to_toml().into_bytes()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = host
        .admin_as(
            Some(&li),
            Method::PUT,
            "/v1/admin/grants/test",
            Some(br#"{"dispatch":["test"]}"#.to_vec()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for fixture in ["versioned-v1", "versioned-v2"] {
        let (status, body) = host
            .admin_as(
                Some(&zhang),
                Method::POST,
                "/v1/admin/plugins?activate=true",
                Some(signed(fixture, &key)),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = host
        .admin(Method::POST, "/v1/admin/plugins/versioned/rollback", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let plugin = host.plugin("versioned").await;
    assert_eq!(plugin["active_version"], "1.0.0", "{plugin}");
    let uploaded_by: Vec<&str> = plugin["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["uploaded_by"].as_str().unwrap())
        .collect();
    assert_eq!(uploaded_by, ["zhang.min", "zhang.min"], "{plugin}");

    // The audit log names who did what.
    let entries = host.storage.audit_entries(0, 10_000).await.unwrap();
    let done: Vec<(String, String)> = entries
        .iter()
        .filter_map(|e| match &e.record {
            AuditRecord::Admin { actor, action, .. } => Some((actor.clone(), action.clone())),
            _ => None,
        })
        .collect();
    let expected = [
        ("li.wei", "key.trust"),
        ("li.wei", "grants.set"),
        ("zhang.min", "plugin.upload"),
        ("zhang.min", "plugin.activate"),
        ("zhang.min", "plugin.upload"),
        ("zhang.min", "plugin.activate"),
        ("admin", "plugin.rollback"),
    ];
    let done: Vec<(&str, &str)> = done.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(done, expected);

    // Other tokens open nothing; an expired operator token is 401.
    let citizen = issue_dev(Role::Citizen, "li.wei", now, 600);
    let department = issue_dev(Role::Department, "test", now, 600);
    for (token, status, code) in [
        (citizen.as_str(), StatusCode::FORBIDDEN, "forbidden"),
        (department.as_str(), StatusCode::FORBIDDEN, "forbidden"),
        ("a.b.c", StatusCode::UNAUTHORIZED, "invalid_token"),
        (
            &issue_dev(Role::Operator, "li.wei", now - 7200, 60),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
    ] {
        assert_error(
            host.admin_as(
                Some(token),
                Method::POST,
                "/v1/admin/plugins/versioned/deactivate",
                None,
            )
            .await,
            status,
            code,
        );
    }
    assert_eq!(host.plugin("versioned").await["active_version"], "1.0.0");
    host.stop().await;
}

#[tokio::test]
async fn in_demo_mode_a_development_operator_token_opens_nothing() {
    use onething_host::identity::{Role, issue_dev};
    let dir = tempfile::tempdir().unwrap();
    let host = crate::support::TestHost::start_with(&[], |config| {
        config.admin_token = Some(TOKEN.into());
        config.demo_plugins = true;
        config.identity = None;
    })
    .await;
    let operator = issue_dev(
        Role::Operator,
        "anyone",
        chrono::Utc::now().timestamp(),
        600,
    );
    let client = reqwest::Client::new();
    let send = |bearer: String| {
        client
            .get(format!("{}/v1/admin/plugins", host.api.base))
            .bearer_auth(bearer)
            .send()
    };
    let message = assert_error(
        into_json(send(operator).await.unwrap()).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert!(message.contains("development provider"), "{message}");
    // The admin token still does.
    let (status, body) = into_json(send(TOKEN.into()).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    drop(dir);
    host.stop().await;
}
