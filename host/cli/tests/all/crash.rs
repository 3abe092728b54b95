//! Crash safety: the host is killed with SIGKILL in the middle of a bounded
//! load of applications and completions, restarted on the same data dir,
//! and nothing it acknowledged is lost, nothing is dispatched twice, and the
//! audit chain verifies. Three rounds.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Api, plugin_dir};

/// Applications each round sends at most, and how long its load may run.
const MAX_APPLICATIONS_PER_ROUND: usize = 4000;
const ROUND_LOAD_TIME: Duration = Duration::from_secs(3);

struct Host(Child);

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(data: &Path, plugins: &Path) -> (Host, Api) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_onething"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .arg("--plugins-dir")
        .arg(plugins)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    (Host(child), Api::new(base))
}

fn application(n: usize) -> Value {
    // The demo data's first family; each application is its own case.
    json!({
        "certificate_no": "Q500000001",
        "child_name": "王小明",
        "applicant_id": "500103199001010018",
        "household_of": "father",
        "phone": format!("138{n:08}"),
    })
}

/// What the host acknowledged before it was killed.
#[derive(Default)]
struct Acknowledged {
    /// Idempotency key → case id, for every 201.
    cases: HashMap<String, String>,
    /// Every item whose completion was answered 200.
    completed: HashSet<String>,
    /// Keys sent but not answered (the kill cut them off).
    unanswered: Vec<(String, usize)>,
}

async fn load(
    api: Api,
    round: usize,
    worker: usize,
    acked: Arc<Mutex<Acknowledged>>,
    deadline: Instant,
) {
    let per_worker = MAX_APPLICATIONS_PER_ROUND / 8;
    for i in 0..per_worker {
        if Instant::now() > deadline {
            return;
        }
        let n = round * 100_000 + worker * 10_000 + i;
        let key = format!("crash-{n}");
        let body = application(n);
        let sent = api
            .post_req("/v1/scenarios/newborn/cases", &body)
            .header("Idempotency-Key", &key)
            .send()
            .await;
        let Ok(response) = sent else {
            acked.lock().unwrap().unanswered.push((key, n));
            return;
        };
        if response.status() != 201 {
            acked.lock().unwrap().unanswered.push((key, n));
            return;
        }
        let Ok(case) = response.json::<Value>().await else {
            acked.lock().unwrap().unanswered.push((key, n));
            return;
        };
        api.remember("/v1/scenarios/newborn/cases", Some(&body), &case);
        acked
            .lock()
            .unwrap()
            .cases
            .insert(key, case["case_id"].as_str().unwrap().to_owned());
        // Complete the first item of every other case.
        if n.is_multiple_of(2) {
            let item = &case["items"][0];
            let path = format!(
                "/v1/departments/{}/items/{}/complete",
                item["department"].as_str().unwrap(),
                item["item_id"].as_str().unwrap()
            );
            match api
                .post_req(&path, &json!({"result": {"n": n}}))
                .send()
                .await
            {
                Ok(r) if r.status() == 200 => {
                    acked
                        .lock()
                        .unwrap()
                        .completed
                        .insert(item["item_id"].as_str().unwrap().to_owned());
                }
                _ => return,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(plugins.join("newborn")).unwrap();
    for file in ["onething.toml", "plugin.wasm"] {
        std::fs::copy(
            plugin_dir("newborn").join(file),
            plugins.join("newborn").join(file),
        )
        .unwrap();
    }
    let acked = Arc::new(Mutex::new(Acknowledged::default()));

    for round in 0..3 {
        let (host, api) = serve(&data, &plugins);
        let deadline = Instant::now() + ROUND_LOAD_TIME;
        let workers: Vec<_> = (0..8)
            .map(|w| tokio::spawn(load(api.clone(), round, w, acked.clone(), deadline)))
            .collect();
        // Kill it while the load is running.
        tokio::time::sleep(Duration::from_millis(300 + 100 * round as u64)).await;
        drop(host);
        for w in workers {
            w.await.unwrap();
        }
    }

    // Restart once more and check everything.
    let (host, api) = serve(&data, &plugins);
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        acked.cases.len() > 10,
        "the load made too few cases to mean anything"
    );
    let mut seen_items = HashSet::new();
    for (key, case_id) in &acked.cases {
        let (status, case) = api.get(&format!("/v1/cases/{case_id}")).await;
        assert_eq!(status, 200, "acknowledged case {case_id} ({key}) is lost");
        let items = case["items"].as_array().unwrap();
        assert_eq!(items.len(), 4, "{case}");
        for item in items {
            let id = item["item_id"].as_str().unwrap().to_owned();
            assert!(
                seen_items.insert(id.clone()),
                "item {id} belongs to two cases"
            );
            if acked.completed.contains(&id) {
                assert_eq!(
                    item["status"], "completed",
                    "acknowledged completion of {id} is lost"
                );
            }
        }
    }
    // A cut-off application resent with its key gives one case, never two.
    for (key, n) in &acked.unanswered {
        let response = api
            .post_req("/v1/scenarios/newborn/cases", &application(*n))
            .header("Idempotency-Key", key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let case: Value = response.json().await.unwrap();
        api.remember("/v1/scenarios/newborn/cases", Some(&application(*n)), &case);
        let again = api
            .post_req("/v1/scenarios/newborn/cases", &application(*n))
            .header("Idempotency-Key", key)
            .send()
            .await
            .unwrap();
        let again: Value = again.json().await.unwrap();
        assert_eq!(case["case_id"], again["case_id"]);
    }
    // Every item in the queues belongs to a case we know of, once.
    let (_, queue) = api.get("/v1/departments/public-security/items").await;
    let queue = queue["items"].as_array().unwrap();
    let ids: HashSet<_> = queue
        .iter()
        .map(|i| i["item_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), queue.len(), "an item is listed twice");
    drop(host);

    let out = Command::new(env!("CARGO_BIN_EXE_onething"))
        .args(["audit", "verify", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "kill -9: 3 rounds, {} acknowledged cases and {} completions kept, {} cut-off applications resent once",
        acked.cases.len(),
        acked.completed.len(),
        acked.unanswered.len()
    );
}
