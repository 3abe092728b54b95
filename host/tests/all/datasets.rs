//! Live dataset refresh (issue 14, item 7) over HTTP: an operator replaces
//! a department's dataset on a running host, and the next application
//! reads the new version; records the new file lacks are gone; a bad file
//! is refused with its line and changes nothing; no token is 401; the
//! replace is on the audit log with the operator's name.

use onething_host::identity::{DEV_ISSUER, Role, dev_public_key_hex, issue_dev};
use onething_host::storage::AuditRecord;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{BIRTH_CERTIFICATES, TestHost, assert_error, into_json, newborn_application};

const ADMIN: &str = "datasets-admin-token";

/// The birth certificates after the hospital's refresh: T100 as before,
/// T300 new (the same parents' second child), T200 no longer there.
const REFRESHED: &str = r#"{"certificate_no":"T100","child_name":"赵一诺","sex":"female","born_at":"2026-11-18T09:00:00+08:00","hospital":"测试医院","mother_id":"M-ZHAO-MOTHER","father_id":"F-ZHAO-FATHER"}
{"certificate_no":"T300","child_name":"赵二诺","sex":"male","born_at":"2026-12-01T08:00:00+08:00","hospital":"测试医院","mother_id":"M-ZHAO-MOTHER","father_id":"F-ZHAO-FATHER"}
"#;

/// A file whose second line is not JSON.
const BROKEN: &str = r#"{"certificate_no":"T400","child_name":"孙小","mother_id":"M-ZHAO-MOTHER","father_id":"F-ZHAO-FATHER"}
{"certificate_no":"T500",
"#;

/// This host's `limits.max_dataset_file_bytes`: room for the files here.
const MAX_FILE: usize = 4096;

const PATH: &str = "/v1/admin/datasets/health/birth-certificates?key=certificate_no";

async fn put(
    host: &TestHost,
    token: Option<&str>,
    path: &str,
    body: &'static str,
) -> (StatusCode, Value) {
    let mut request = host.client.put(format!("{}{path}", host.base)).body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    into_json(request.send().await.unwrap()).await
}

/// Applies for newborn with certificate `certificate` and returns the
/// case's status and message.
async fn apply(host: &TestHost, certificate: &str, child: &str) -> (String, String) {
    let mut application = newborn_application();
    application["certificate_no"] = json!(certificate);
    application["child_name"] = json!(child);
    let (status, body) = host.post("/v1/scenarios/newborn/cases", &application).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["status"].as_str().unwrap_or_default().to_owned(),
        body["message"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn newborn_host() -> TestHost {
    TestHost::start_with(&["newborn"], |config| {
        config.admin_token = Some(ADMIN.into());
        config.limits.max_dataset_file_bytes = MAX_FILE;
        config.identity = Some(onething_host::config::IdentityConfig {
            issuer: DEV_ISSUER.into(),
            public_key: dev_public_key_hex(),
            leeway_s: 60,
        });
    })
    .await
}

#[tokio::test]
async fn a_refreshed_dataset_is_read_by_the_next_application() {
    let host = newborn_host().await;
    // Before the refresh the hospital has not registered T300.
    let (status, message) = apply(&host, "T300", "赵二诺").await;
    assert_eq!(status, "rejected", "{message}");
    assert!(message.starts_with("certificate-not-found"), "{message}");

    // An operator replaces the dataset while the host runs.
    let operator = issue_dev(
        Role::Operator,
        "li.wei",
        chrono::Utc::now().timestamp(),
        600,
    );
    let (status, body) = put(&host, Some(&operator), PATH, REFRESHED).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"dataset": "health/birth-certificates", "key": "certificate_no", "records": 2})
    );

    // The next application reads the new version: T300 goes through…
    let (status, message) = apply(&host, "T300", "赵二诺").await;
    assert_eq!(status, "in-progress", "{message}");
    // …and T200, which the new file lacks, is gone: a replace, not an add.
    let (status, message) = apply(&host, "T200", "钱多多").await;
    assert_eq!(status, "rejected", "{message}");
    assert!(message.starts_with("certificate-not-found"), "{message}");

    // On the audit log once, with the operator and the size it replaced.
    let imports: Vec<AuditRecord> = host
        .audit()
        .await
        .into_iter()
        .map(|e| e.record)
        .filter(|r| matches!(r, AuditRecord::DatasetImport { actor: Some(_), .. }))
        .collect();
    let seeded = BIRTH_CERTIFICATES.lines().count();
    assert_eq!(
        imports,
        vec![AuditRecord::DatasetImport {
            dataset: "health/birth-certificates".into(),
            records: 2,
            actor: Some("li.wei".into()),
            replaced: Some(seeded),
        }]
    );
    host.stop().await;
}

#[tokio::test]
async fn a_bad_refresh_changes_nothing_and_says_why() {
    let host = newborn_host().await;
    let audit_before = host.audit().await.len();

    // No token: 401, before the body is looked at.
    assert_error(
        put(&host, None, PATH, REFRESHED).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    // A file with a bad line: 400 naming the line, nothing imported (T400
    // on its good first line is not there either).
    let message = assert_error(
        put(&host, Some(ADMIN), PATH, BROKEN).await,
        StatusCode::BAD_REQUEST,
        "dataset_invalid",
    );
    assert!(message.contains("line 2"), "{message}");
    // A line without the key field, an empty file, no key, a bad name.
    let message = assert_error(
        put(
            &host,
            Some(ADMIN),
            "/v1/admin/datasets/health/birth-certificates?key=serial",
            REFRESHED,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "dataset_invalid",
    );
    assert!(
        message.contains("line 1") && message.contains("`serial`"),
        "{message}"
    );
    assert_error(
        put(&host, Some(ADMIN), PATH, "\n\n").await,
        StatusCode::BAD_REQUEST,
        "dataset_invalid",
    );
    let message = assert_error(
        put(
            &host,
            Some(ADMIN),
            "/v1/admin/datasets/health/birth-certificates",
            REFRESHED,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    assert!(message.contains("key=FIELD"), "{message}");
    assert_error(
        put(
            &host,
            Some(ADMIN),
            "/v1/admin/datasets/Health/x?key=id",
            REFRESHED,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "dataset_invalid",
    );
    // A body over the limit (`limits.max_dataset_file_bytes`) is 413.
    let (status, _) = {
        let big = "x".repeat(MAX_FILE + 1);
        let response = host
            .client
            .put(format!("{}{PATH}", host.base))
            .bearer_auth(ADMIN)
            .body(big)
            .send()
            .await
            .unwrap();
        into_json(response).await
    };
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // The dataset is as it was: T100 and T200 still there, T400 not.
    let (status, message) = apply(&host, "T100", "赵一诺").await;
    assert_eq!(status, "in-progress", "{message}");
    let (status, message) = apply(&host, "T400", "孙小").await;
    assert!(
        message.starts_with("certificate-not-found"),
        "{status}: {message}"
    );
    let after = host.audit().await;
    assert!(
        !after[audit_before..]
            .iter()
            .any(|e| matches!(e.record, AuditRecord::DatasetImport { .. })),
        "a refused refresh is not audited as an import"
    );
    host.stop().await;
}
