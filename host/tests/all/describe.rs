//! What `describe()` may declare, end to end: a version past a bound is
//! refused at upload with the bound named, every shipped plugin and fixture
//! is within the bounds, the scenario's id and title are the manifest's
//! (describe() leaves them out or repeats them; another is refused), and the
//! public catalogue carries an ETag.

use onething_registry::SigningKeyFile;
use reqwest::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::admin_host::{Host, signed, signed_with};
use crate::support::{TestHost, assert_error, dist};

#[tokio::test]
async fn a_version_that_describes_too_much_is_refused_at_upload_naming_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path()).await;
    let key = SigningKeyFile::generate("test").unwrap();
    host.trust(&key).await;

    let message = assert_error(
        host.upload(signed("describes-too-much", &key), true).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "plugin_load_failed",
    );
    assert!(
        message.contains(
            "10000 form fields, more than the 64 this host allows ([limits] max_form_fields)"
        ),
        "{message}"
    );
    // Nothing of it was kept: no version, nothing in the catalogue.
    let (status, body) = host
        .admin(Method::GET, "/v1/admin/plugins/describes-too-much", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, catalogue) = host.api.get("/v1/scenarios").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(catalogue, json!({"scenarios": []}));
    host.stop().await;
}

#[tokio::test]
async fn the_manifest_declares_id_and_title_once_and_describe_may_not_differ() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path()).await;
    let key = SigningKeyFile::generate("test").unwrap();
    host.trust(&key).await;

    // echo's describe() repeats its manifest's title, `fixture: echo`; a
    // manifest with another title is refused, naming both.
    let message = assert_error(
        host.upload(
            signed_with("echo", &key, |m| {
                m.replace("title = \"fixture: echo\"", "title = \"回声\"")
            }),
            true,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "plugin_load_failed",
    );
    assert!(
        message.contains("`fixture: echo`") && message.contains("`回声`"),
        "{message}"
    );
    // Another id: refused the same way.
    let message = assert_error(
        host.upload(
            signed_with("echo", &key, |m| {
                m.replace("id = \"echo\"", "id = \"echo-two\"")
            }),
            true,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "plugin_load_failed",
    );
    assert!(
        message.contains("`echo`") && message.contains("`echo-two`"),
        "{message}"
    );
    // The same title: it loads, and the catalogue shows it.
    let (status, body) = host.upload(signed("echo", &key), true).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, catalogue) = host.api.get("/v1/scenarios").await;
    assert_eq!(
        catalogue["scenarios"][0]["title"], "fixture: echo",
        "{catalogue}"
    );
    host.stop().await;
}

/// The example plugins leave id and title to their manifests
/// (`Info::from_manifest()`): the catalogue carries the manifest's.
#[tokio::test]
async fn a_scenario_that_leaves_them_out_is_listed_with_the_manifests() {
    let host = TestHost::start(&["newborn"]).await;
    let (_, catalogue) = host.get("/v1/scenarios").await;
    let manifest: toml::Value = toml::from_str(
        &std::fs::read_to_string(crate::support::plugin_dir("newborn").join("onething.toml"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(catalogue["scenarios"][0]["id"], "newborn", "{catalogue}");
    assert_eq!(
        catalogue["scenarios"][0]["title"].as_str(),
        manifest["title"].as_str(),
        "{catalogue}"
    );
    host.stop().await;
}

/// Every example plugin and fixture (but the one built to be refused, and
/// the second version of `versioned`) loads, so what each one's describe()
/// declares is within the bounds; the catalogue lists them all.
#[tokio::test]
async fn every_shipped_plugin_and_fixture_describes_within_the_bounds() {
    let mut ids = Vec::new();
    for kind in ["plugins", "fixtures"] {
        for entry in std::fs::read_dir(dist().join(kind)).unwrap() {
            let id = entry.unwrap().file_name().into_string().unwrap();
            if !["describes-too-much", "versioned-v2"].contains(&id.as_str()) {
                ids.push(id);
            }
        }
    }
    assert!(ids.len() > 10, "{ids:?}");
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    // TestHost asserts that every plugin loaded.
    let host = TestHost::start(&refs).await;
    let (status, catalogue) = host.get("/v1/scenarios").await;
    assert_eq!(status, StatusCode::OK);
    let scenarios = catalogue["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), ids.len(), "{catalogue}");
    for scenario in scenarios {
        for field in scenario["fields"].as_array().unwrap() {
            let name = field["name"].as_str().unwrap();
            assert!(
                !name.starts_with(|c: char| c.is_ascii_digit())
                    && !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{name}"
            );
        }
    }
    host.stop().await;
}

/// GETs the catalogue, with `If-None-Match` when given; returns the status,
/// the ETag and the body.
async fn catalogue(host: &Host, if_none_match: Option<&str>) -> (StatusCode, String, Vec<u8>) {
    let mut request = host
        .api
        .client
        .get(format!("{}/v1/scenarios", host.api.base));
    if let Some(tag) = if_none_match {
        request = request.header(IF_NONE_MATCH, tag);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    assert_eq!(response.headers()[CACHE_CONTROL], "no-cache");
    let etag = response.headers()[ETAG].to_str().unwrap().to_owned();
    let body = response.bytes().await.unwrap().to_vec();
    (status, etag, body)
}

#[tokio::test]
async fn the_catalogue_has_an_etag_and_answers_a_match_with_304() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path()).await;

    // A strong validator over the exact bytes.
    let (status, empty, body) = catalogue(&host, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty, format!("\"{}\"", hex::encode(Sha256::digest(&body))));
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"scenarios": []})
    );

    // A match (also weak, in a list, or `*`) is 304 with no body; the same
    // tag comes back.
    for tag in [
        empty.clone(),
        format!("W/{empty}"),
        format!("\"other\", {empty}"),
        "*".to_owned(),
    ] {
        let (status, etag, body) = catalogue(&host, Some(&tag)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{tag}");
        assert_eq!(etag, empty);
        assert!(body.is_empty());
    }
    let (status, _, body) = catalogue(&host, Some("\"other\"")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.is_empty());

    // A version activated on upload changes the catalogue and its tag.
    let key = SigningKeyFile::generate("test").unwrap();
    host.trust(&key).await;
    host.grant("test", json!({"dispatch": ["test"]})).await;
    let (status, body) = host.upload(signed("versioned-v1", &key), true).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, v1, body) = catalogue(&host, Some(&empty)).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(v1, empty);
    assert_eq!(v1, format!("\"{}\"", hex::encode(Sha256::digest(&body))));
    let listed: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(listed["scenarios"][0]["version"], "1.0.0", "{listed}");

    // A version stored but not active leaves it as it is; activating it
    // changes it.
    let (status, body) = host.upload(signed("versioned-v2", &key), false).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        catalogue(&host, Some(&v1)).await.0,
        StatusCode::NOT_MODIFIED
    );
    let (status, body) = host
        .admin(
            Method::POST,
            "/v1/admin/plugins/versioned/activate",
            Some(br#"{"version":"2.0.0"}"#.to_vec()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, v2, _) = catalogue(&host, Some(&v1)).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(v2, v1);
    assert_ne!(v2, empty);
    assert_eq!(
        catalogue(&host, Some(&v2)).await.0,
        StatusCode::NOT_MODIFIED
    );
    host.stop().await;
}
