//! The test harness: builds the plugins once, starts a host on a random
//! loopback port with chosen plugins and datasets, and talks JSON to it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;

use onething_host::config::Config;
use onething_host::datasets;
use onething_host::identity::{Role, issue_dev};
use onething_host::server::Server;
use onething_host::service::{Clock, SystemClock};
use onething_host::storage::sled::SledStorage;
use onething_host::storage::{AuditEntry, Storage};

/// The repository root: the nearest folder above this crate with the
/// workspace's Cargo.lock (this file serves host/ and host/cli/).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .expect("the crate is inside the workspace")
        .to_owned()
}

/// `dist/`, with every plugin and fixture built (once per test run).
pub fn dist() -> &'static Path {
    static DIST: OnceLock<PathBuf> = OnceLock::new();
    DIST.get_or_init(|| {
        let root = repo_root();
        let status = std::process::Command::new("bash")
            .arg(root.join("scripts/build-plugins.sh"))
            .current_dir(&root)
            .status()
            .expect("run scripts/build-plugins.sh");
        assert!(status.success(), "scripts/build-plugins.sh failed");
        root.join("dist")
    })
}

/// The directory of a built example plugin or fixture.
pub fn plugin_dir(id: &str) -> PathBuf {
    let dist = dist();
    let example = dist.join("plugins").join(id);
    if example.is_dir() {
        return example;
    }
    let fixture = dist.join("fixtures").join(id);
    assert!(
        fixture.is_dir(),
        "no built plugin or fixture `{id}` in {}",
        dist.display()
    );
    fixture
}

/// A plugins dir under `root` holding the built plugins `ids` (examples or
/// fixtures), for a host started by hand.
pub fn copy_plugins(root: &Path, ids: &[&str]) -> PathBuf {
    let plugins = root.join("plugins");
    for id in ids {
        let to = plugins.join(id);
        std::fs::create_dir_all(&to).unwrap();
        for file in ["onething.toml", "plugin.wasm"] {
            std::fs::copy(plugin_dir(id).join(file), to.join(file)).unwrap();
        }
    }
    plugins
}

/// The newborn test datasets: not the demo data.
pub const BIRTH_CERTIFICATES: &str = r#"{"certificate_no":"T100","child_name":"赵一诺","sex":"female","born_at":"2026-11-18T09:00:00+08:00","hospital":"测试医院","mother_id":"M-ZHAO-MOTHER","father_id":"F-ZHAO-FATHER"}
{"certificate_no":"T200","child_name":"钱多多","sex":"male","born_at":"2026-11-19T10:00:00+08:00","hospital":"测试医院","mother_id":"M-QIAN-MOTHER","father_id":"F-QIAN-NOT-REGISTERED"}
"#;
pub const RESIDENTS: &str = r#"{"id_number":"M-ZHAO-MOTHER","name":"孙梅","household_id":"HH-1","address":"测试路1号"}
{"id_number":"F-ZHAO-FATHER","name":"赵刚","household_id":"HH-1","address":"测试路1号"}
{"id_number":"M-QIAN-MOTHER","name":"周兰","household_id":"HH-2","address":"测试路2号"}
"#;

/// A valid newborn application for certificate T100.
pub fn newborn_application() -> Value {
    serde_json::json!({
        "certificate_no": "T100",
        "child_name": "赵一诺",
        "applicant_id": "M-ZHAO-MOTHER",
        "household_of": "mother",
        "phone": "13800000000",
    })
}

/// A JSON client for one host's API. It carries development tokens the
/// way real callers would: a citizen token for the applicant it applies as
/// (the form's `applicant_id`, else `test-citizen`), the token of the
/// department in a department path, a device token for events, and for a
/// case the token of whoever opened it through this client. Tests of the
/// identity rules themselves send their own headers.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

/// Who opened each case through any client in this test binary (case ids
/// are unique), so that a client made after a restart still knows.
fn case_tokens() -> &'static std::sync::Mutex<std::collections::HashMap<String, String>> {
    static TOKENS: OnceLock<std::sync::Mutex<std::collections::HashMap<String, String>>> =
        OnceLock::new();
    TOKENS.get_or_init(Default::default)
}

/// A development token.
pub fn token(role: Role, subject: &str) -> String {
    issue_dev(role, subject, chrono::Utc::now().timestamp(), 3600)
}

/// A running host and a client for it.
pub struct TestHost {
    pub api: Api,
    pub storage: Arc<dyn Storage>,
    server: Option<Server>,
    _dirs: TempDir,
}

impl TestHost {
    /// A host with `plugins` (ids of examples or fixtures) and the newborn
    /// test datasets.
    pub async fn start(plugins: &[&str]) -> TestHost {
        Self::start_with(plugins, |_| {}).await
    }

    /// Like [`TestHost::start`], with the config adjusted first.
    pub async fn start_with(plugins: &[&str], adjust: impl FnOnce(&mut Config)) -> TestHost {
        Self::start_full(plugins, adjust, Arc::new(SystemClock)).await
    }

    /// Like [`TestHost::start_with`], on a given clock.
    pub async fn start_full(
        plugins: &[&str],
        adjust: impl FnOnce(&mut Config),
        clock: Arc<dyn Clock>,
    ) -> TestHost {
        let dirs = tempfile::tempdir().unwrap();
        let data_dir = dirs.path().join("data");
        let plugins_dir = dirs.path().join("plugins");
        std::fs::create_dir_all(&plugins_dir).unwrap();
        for id in plugins {
            let from = plugin_dir(id);
            let to = plugins_dir.join(id);
            std::fs::create_dir_all(&to).unwrap();
            for file in ["onething.toml", "plugin.wasm"] {
                std::fs::copy(from.join(file), to.join(file)).unwrap();
            }
        }
        std::fs::create_dir_all(&data_dir).unwrap();
        let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(&data_dir).unwrap());
        import(
            &*storage,
            dirs.path(),
            "health/birth-certificates",
            BIRTH_CERTIFICATES,
            "certificate_no",
        )
        .await;
        import(
            &*storage,
            dirs.path(),
            "public-security/residents",
            RESIDENTS,
            "id_number",
        )
        .await;
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir,
            plugins_dir,
            demo_data: false,
            ..Config::default()
        };
        adjust(&mut config);
        let server = Server::start_with(config, storage.clone(), clock)
            .await
            .unwrap();
        assert!(
            server.plugin_errors().is_empty(),
            "plugins failed to load: {:?}",
            server.plugin_errors()
        );
        TestHost {
            api: Api::new(format!("http://{}", server.addr())),
            storage,
            server: Some(server),
            _dirs: dirs,
        }
    }

    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    /// Every audit entry so far.
    pub async fn audit(&self) -> Vec<AuditEntry> {
        self.storage.audit_entries(0, 100_000).await.unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

impl std::ops::Deref for TestHost {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Api {
    pub fn new(base: String) -> Self {
        Api {
            base,
            client: reqwest::Client::new(),
        }
    }

    /// The token a real caller of `path` would send.
    pub fn token_for(&self, path: &str, body: Option<&Value>) -> Option<String> {
        let segments: Vec<&str> = path
            .split('?')
            .next()
            .unwrap_or_default()
            .trim_matches('/')
            .split('/')
            .collect();
        let field = |name: &str, default: &str| {
            body.and_then(|b| b[name].as_str())
                .unwrap_or(default)
                .to_owned()
        };
        match segments.as_slice() {
            ["v1", "departments", dept, ..] => Some(token(Role::Department, dept)),
            ["v1", "scenarios", _, "events"] => {
                Some(token(Role::Device, &field("sensor_id", "test-sensor")))
            }
            ["v1", "scenarios", _, "cases"] => {
                Some(token(Role::Citizen, &field("applicant_id", "test-citizen")))
            }
            ["v1", "cases", case_id, ..] => Some(
                case_tokens()
                    .lock()
                    .unwrap()
                    .get(*case_id)
                    .cloned()
                    .unwrap_or_else(|| token(Role::Citizen, "test-citizen")),
            ),
            ["v1", "me", ..] => Some(token(Role::Citizen, "test-citizen")),
            _ => None,
        }
    }

    /// A POST of JSON `body` to `path` with the caller's token, to send
    /// with extra headers.
    pub fn post_req(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, path, Some(body))
            .json(body)
    }

    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> reqwest::RequestBuilder {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = self.token_for(path, body) {
            request = request.bearer_auth(token);
        }
        request
    }

    /// Remembers who opened a case, from an apply's answer.
    pub fn remember(&self, path: &str, body: Option<&Value>, answer: &Value) {
        if let Some(case_id) = answer["case_id"].as_str()
            && let Some(token) = self.token_for(path, body)
        {
            case_tokens()
                .lock()
                .unwrap()
                .insert(case_id.to_owned(), token);
        }
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .request(reqwest::Method::GET, path, None)
            .send()
            .await
            .unwrap();
        into_json(response).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .request(reqwest::Method::POST, path, Some(body))
            .json(body)
            .send()
            .await
            .unwrap();
        let answer = into_json(response).await;
        self.remember(path, Some(body), &answer.1);
        answer
    }

    pub async fn post_raw(&self, path: &str, body: &'static str) -> (StatusCode, Value) {
        let parsed: Option<Value> = serde_json::from_str(body).ok();
        let response = self
            .request(reqwest::Method::POST, path, parsed.as_ref())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        into_json(response).await
    }

    /// A department's pending items.
    pub async fn pending(&self, department: &str) -> Vec<Value> {
        let (status, body) = self
            .get(&format!(
                "/v1/departments/{department}/items?status=pending"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["items"].as_array().unwrap().clone()
    }
}

async fn import(storage: &dyn Storage, dir: &Path, dataset: &str, text: &str, key: &str) {
    let file = dir.join(format!("{}.jsonl", dataset.replace('/', "_")));
    std::fs::write(&file, text).unwrap();
    datasets::import_file(storage, dataset, &file, key)
        .await
        .unwrap();
}

pub async fn into_json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, body)
}

/// Asserts an error response's status and code, and returns its message.
pub fn assert_error(actual: (StatusCode, Value), status: StatusCode, code: &str) -> String {
    let (got, body) = actual;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!message.is_empty(), "an error needs a message: {body}");
    message
}

/// A clock the test moves by hand.
pub struct TestClock(std::sync::Mutex<chrono::DateTime<chrono::Utc>>);

impl TestClock {
    pub fn at(rfc3339: &str) -> Arc<TestClock> {
        let t = chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap();
        Arc::new(TestClock(std::sync::Mutex::new(
            t.with_timezone(&chrono::Utc),
        )))
    }

    pub fn set(&self, rfc3339: &str) {
        let t = chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap();
        *self.0.lock().unwrap() = t.with_timezone(&chrono::Utc);
    }
}

impl Clock for TestClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        *self.0.lock().unwrap()
    }
}

/// `GET /metrics`, as text.
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

/// The value of one series (name and labels, exactly) in a scrape.
pub fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}
