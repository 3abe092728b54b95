//! The deadline loop survives anything one item or one plugin does: an
//! overdue call that fails, traps, crosses a bound or spins to its deadline
//! neither stops nor delays another scenario's overdue report, before and
//! after a restart, and failed overdue calls count towards the version's
//! quarantine. (A panic in the host while handling an item cannot be caused
//! from outside any more; `overdue.rs`'s unit tests show it is caught and
//! recorded.)

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

use onething_host::config::Config;
use onething_host::server::Server;

use crate::support::{Api, TestClock, assert_error, plugin_dir};

const FIXTURE: &str = "misbehaves-when-overdue";
/// Tuesday evening in Beijing.
const T0: &str = "2026-11-24T21:00:00+08:00";
/// How long a test waits for something the loop should do: far more than it
/// needs on a slow machine, so that only a loop that stopped misses it.
const PATIENCE: Duration = Duration::from_secs(60);

/// A data dir and a plugins dir that outlive the hosts started on them.
struct Dirs {
    dir: TempDir,
    plugins: PathBuf,
}

impl Dirs {
    fn new(plugins: &[&str]) -> Dirs {
        let dir = tempfile::tempdir().unwrap();
        let plugins_dir = dir.path().join("plugins");
        for id in plugins {
            let to = plugins_dir.join(id);
            std::fs::create_dir_all(&to).unwrap();
            for file in ["onething.toml", "plugin.wasm"] {
                std::fs::copy(plugin_dir(id).join(file), to.join(file)).unwrap();
            }
        }
        Dirs {
            dir,
            plugins: plugins_dir,
        }
    }

    /// A host on these dirs, checking for overdue items every 20 ms.
    async fn start(
        &self,
        clock: &Arc<TestClock>,
        adjust: impl FnOnce(&mut Config),
    ) -> (Server, Api) {
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: self.dir.path().join("data"),
            plugins_dir: self.plugins.clone(),
            demo_data: false,
            deadline_check_interval_ms: 20,
            ..Config::default()
        };
        adjust(&mut config);
        let server = Server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        assert!(
            server.plugin_errors().is_empty(),
            "{:?}",
            server.plugin_errors()
        );
        let api = Api::new(format!("http://{}", server.addr()));
        (server, api)
    }
}

async fn misbehaving_case(api: &Api, mode: &str) -> String {
    let (status, case) = api
        .post(
            &format!("/v1/scenarios/{FIXTURE}/cases"),
            &json!({"mode": mode}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    case["case_id"].as_str().unwrap().to_owned()
}

/// A sensor reports indoor charging: the grid worker's item is due in 30
/// minutes.
async fn ebike_case(api: &Api, sensor: &str) -> String {
    let (status, case) = api
        .post(
            "/v1/scenarios/ebike-charging/events",
            &json!({"sensor_id": sensor, "building": "金龙路12号", "grid": "龙溪-07",
                    "detected_at": "2026-11-24T20:59:30+08:00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    case["case_id"].as_str().unwrap().to_owned()
}

/// The timeline entries of a case with event `event`.
async fn entries(api: &Api, case_id: &str, event: &str) -> Vec<Value> {
    let (status, case) = api.get(&format!("/v1/cases/{case_id}")).await;
    assert_eq!(status, StatusCode::OK, "{case}");
    case["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == event)
        .cloned()
        .collect()
}

/// Waits until `case_id` has an `event` entry; panics after [`PATIENCE`].
async fn wait_for(api: &Api, case_id: &str, event: &str) {
    let started = Instant::now();
    while entries(api, case_id, event).await.is_empty() {
        assert!(
            started.elapsed() < PATIENCE,
            "case {case_id} never got `{event}`"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many of the fixture's items have been reported overdue.
async fn fixture_items_reported(api: &Api) -> usize {
    api.pending("test-desk")
        .await
        .iter()
        .filter(|i| i["overdue_reported_at"].is_string())
        .count()
}

/// `GET /metrics`.
async fn scrape(api: &Api) -> String {
    let response = api
        .client
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// Waits until `/metrics` has the line `line`; panics after [`PATIENCE`]
/// with the last scrape.
async fn wait_for_metric(api: &Api, line: &str) {
    let started = Instant::now();
    loop {
        let text = scrape(api).await;
        if text.lines().any(|l| l == line) {
            return;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "`{line}` never came in:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The deadline loop's items in flight, from `/metrics`.
async fn overdue_in_flight(api: &Api) -> u64 {
    let text = scrape(api).await;
    text.lines()
        .find_map(|l| l.strip_prefix("onething_overdue_in_flight "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no onething_overdue_in_flight in:\n{text}"))
}

#[tokio::test]
async fn failing_trapping_and_over_bound_overdue_calls_are_recorded_and_the_loop_goes_on() {
    let dirs = Dirs::new(&[FIXTURE, "ebike-charging"]);
    let clock = TestClock::at(T0);
    let (server, api) = dirs.start(&clock, |_| {}).await;
    let modes = ["error", "trap", "huge-due"];
    let mut cases = Vec::new();
    for mode in modes {
        cases.push(misbehaving_case(&api, mode).await);
    }
    let ebike = ebike_case(&api, "S-1").await;

    // Every item's time runs out: the fixture's items first.
    clock.set("2026-11-24T21:31:00+08:00");
    wait_for(&api, &ebike, "item-overdue").await;
    for case in &cases {
        wait_for(&api, case, "call-failed").await;
    }
    let mut codes = Vec::new();
    for case in &cases {
        let failed = entries(&api, case, "call-failed").await;
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0]["call"], "item-overdue", "{failed:?}");
        codes.push(failed[0]["code"].as_str().unwrap().to_owned());
    }
    assert_eq!(codes[0], "plugin_unavailable");
    assert_eq!(codes[1], "plugin_trap");
    // An absurd time limit once made the host's own arithmetic panic; the
    // boundary refuses it now and the call fails as the plugin's fault.
    assert_eq!(codes[2], "plugin_bound_exceeded");
    // Every item is marked reported: none is retried.
    assert_eq!(fixture_items_reported(&api).await, 3);
    // The loop counts an item once its task has ended, just after the
    // item's entry is written: the counter may lag the case by a moment.
    wait_for_metric(
        &api,
        "onething_overdue_items_total{outcome=\"call_failed\"} 3",
    )
    .await;
    server.shutdown().await;

    // After a restart the failed items are not handled again, and another
    // scenario's new item is reported.
    for (round, sensor) in ["S-2", "S-3"].iter().enumerate() {
        let (server, api) = dirs.start(&clock, |_| {}).await;
        let ebike = ebike_case(&api, sensor).await;
        clock.set(&format!("2026-11-2{}T21:31:00+08:00", 5 + round));
        wait_for(&api, &ebike, "item-overdue").await;
        for case in &cases {
            assert_eq!(entries(&api, case, "call-failed").await.len(), 1);
        }
        server.shutdown().await;
    }
}

#[tokio::test]
async fn spinning_overdue_calls_do_not_delay_another_scenarios_report_before_or_after_a_restart() {
    let dirs = Dirs::new(&[FIXTURE, "ebike-charging"]);
    let clock = TestClock::at(T0);
    let (server, api) = dirs.start(&clock, |_| {}).await;
    let mut spinning = Vec::new();
    for _ in 0..10 {
        spinning.push(misbehaving_case(&api, "spin").await);
    }
    let ebike = ebike_case(&api, "S-1").await;

    // The ten spinning items are due first; each call spins to its 20 s
    // deadline, four at a time. The e-bike item is reported while the first
    // four are still in flight (one loop for all would have it wait behind
    // them, or behind all ten).
    clock.set("2026-11-24T21:31:00+08:00");
    wait_for(&api, &ebike, "item-overdue").await;
    assert_eq!(fixture_items_reported(&api).await, 0);
    assert!(overdue_in_flight(&api).await >= 10);
    // The next sensor's item, due in 30 minutes.
    let ebike = ebike_case(&api, "S-2").await;
    server.shutdown().await;

    // After a restart the spinning items that were not told are taken
    // again, and again do not hold up the e-bike's item.
    clock.set("2026-11-24T22:02:00+08:00");
    let (server, api) = dirs.start(&clock, |_| {}).await;
    wait_for(&api, &ebike, "item-overdue").await;
    assert_eq!(fixture_items_reported(&api).await, 0);
    assert!(overdue_in_flight(&api).await >= 10);
    for case in &spinning {
        // The calls stopped at shutdown left nothing behind.
        assert!(entries(&api, case, "call-failed").await.is_empty());
    }
    server.shutdown().await;
}

#[tokio::test]
async fn failed_overdue_calls_count_towards_quarantine() {
    let dirs = Dirs::new(&[FIXTURE]);
    let clock = TestClock::at(T0);
    let (server, api) = dirs
        .start(&clock, |config| config.limits.quarantine_after_failures = 3)
        .await;
    let mut cases = Vec::new();
    for _ in 0..3 {
        cases.push(misbehaving_case(&api, "trap").await);
    }
    clock.set("2026-11-24T21:02:00+08:00");
    for case in &cases {
        wait_for(&api, case, "call-failed").await;
    }
    // Three traps in a row on overdue items: the version takes no new cases.
    let message = assert_error(
        api.post(
            &format!("/v1/scenarios/{FIXTURE}/cases"),
            &json!({"mode": "fine"}),
        )
        .await,
        StatusCode::SERVICE_UNAVAILABLE,
        "plugin_quarantined",
    );
    assert!(message.contains("3 failed calls in a row"), "{message}");
    server.shutdown().await;
}
