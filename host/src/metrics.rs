//! Metrics in the Prometheus text format (`GET /metrics`).
//!
//! Per plugin version: calls, failures by kind, and a latency histogram,
//! kept in atomics that the runtime updates without locks on every call.
//! At scrape time: the active version of each scenario, open cases, the
//! memory reserved by calls in flight, the deadline loop's overdue items by
//! outcome and in flight, HTTP responses by status, open connections and
//! those closed to make room, and what the storage writer (the serial part
//! of every durable write) has done.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::storage::WriterStats;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5,
    1.0, 5.0,
];

/// Kinds of failure counted per plugin version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The plugin trapped.
    Trap,
    /// The call ran past its deadline.
    Timeout,
    /// The call hit its memory limit.
    Memory,
    /// A read or dispatch was denied by the grants.
    Denied,
    /// The scenario returned an error on purpose.
    Refused,
    /// The plugin's answer was unusable.
    InvalidAnswer,
    /// No instance could be created.
    Unavailable,
    /// The plugin crossed one of the host's bounds.
    BoundExceeded,
}

const KINDS: [(FailureKind, &str); 8] = [
    (FailureKind::Trap, "trap"),
    (FailureKind::Timeout, "timeout"),
    (FailureKind::Memory, "memory"),
    (FailureKind::Denied, "denied"),
    (FailureKind::Refused, "refused"),
    (FailureKind::InvalidAnswer, "invalid_answer"),
    (FailureKind::Unavailable, "unavailable"),
    (FailureKind::BoundExceeded, "bound_exceeded"),
];

/// What became of an overdue item the deadline loop took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverdueOutcome {
    /// The plugin was told and its decision committed.
    Reported,
    /// The plugin's call failed or it refused.
    CallFailed,
    /// The host failed while handling it (recorded on the case).
    Failed,
    /// Handling it panicked (caught, recorded on the case).
    Panicked,
}

const OVERDUE_OUTCOMES: [(OverdueOutcome, &str); 4] = [
    (OverdueOutcome::Reported, "reported"),
    (OverdueOutcome::CallFailed, "call_failed"),
    (OverdueOutcome::Failed, "failed"),
    (OverdueOutcome::Panicked, "panicked"),
];

/// The counters of one plugin version.
#[derive(Debug, Default)]
pub struct PluginMetrics {
    calls: AtomicU64,
    failures: [AtomicU64; KINDS.len()],
    buckets: [AtomicU64; BUCKETS.len()],
    sum_micros: AtomicU64,
}

impl PluginMetrics {
    /// Records one call and how long it took.
    pub fn record_call(&self, elapsed: Duration) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Records one failure.
    pub fn record_failure(&self, kind: FailureKind) {
        if let Some(i) = KINDS.iter().position(|(k, _)| *k == kind) {
            self.failures[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many calls were made.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

/// Every metric of the host.
#[derive(Default)]
pub struct Metrics {
    plugins: Mutex<BTreeMap<(String, String), Arc<PluginMetrics>>>,
    http: Mutex<BTreeMap<u16, u64>>,
    open_cases: AtomicI64,
    calls_memory_reserved_mib: AtomicI64,
    overdue: [AtomicU64; OVERDUE_OUTCOMES.len()],
    overdue_in_flight: AtomicI64,
    escalated: AtomicU64,
    /// Items taken (报到): `[late, on time]`.
    reported: [AtomicU64; 2],
    reports_missed: AtomicU64,
    held: AtomicU64,
    connections_open: AtomicI64,
    connections_evicted: AtomicU64,
    connections_refused: AtomicU64,
}

/// Escapes a label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// The counters of `plugin` at `version`, made on first use.
    pub fn plugin(&self, plugin: &str, version: &str) -> Arc<PluginMetrics> {
        let mut plugins = self.plugins.lock().unwrap_or_else(|e| e.into_inner());
        plugins
            .entry((plugin.to_owned(), version.to_owned()))
            .or_default()
            .clone()
    }

    /// Counts an HTTP response.
    pub fn record_response(&self, status: u16) {
        let mut http = self.http.lock().unwrap_or_else(|e| e.into_inner());
        *http.entry(status).or_default() += 1;
    }

    /// Sets the number of open cases.
    pub fn set_open_cases(&self, open: i64) {
        self.open_cases.store(open, Ordering::Relaxed);
    }

    /// Moves the memory reserved by plugin calls in flight by `delta` MiB.
    pub fn add_calls_memory_reserved(&self, delta: i64) {
        self.calls_memory_reserved_mib
            .fetch_add(delta, Ordering::Relaxed);
    }

    /// Moves the number of open cases by `delta`.
    pub fn add_open_cases(&self, delta: i64) {
        self.open_cases.fetch_add(delta, Ordering::Relaxed);
    }

    /// Counts an overdue item the deadline loop handled.
    pub fn record_overdue(&self, outcome: OverdueOutcome) {
        if let Some(i) = OVERDUE_OUTCOMES.iter().position(|(o, _)| *o == outcome) {
            self.overdue[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts an item moved one office up because its time ran out.
    pub fn record_escalated(&self) {
        self.escalated.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an item an office took (报到), on time or late.
    pub fn record_reported(&self, on_time: bool) {
        self.reported[usize::from(on_time)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a report deadline that passed unreported at an office.
    pub fn record_report_missed(&self) {
        self.reports_missed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `n` items held off a task list at dispatch.
    pub fn record_held(&self, n: usize) {
        self.held
            .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Sets how many overdue items are being handled or wait for their
    /// plugin's share.
    pub fn set_overdue_in_flight(&self, items: usize) {
        self.overdue_in_flight
            .store(i64::try_from(items).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// Sets the number of open connections.
    pub fn set_connections_open(&self, open: i64) {
        self.connections_open.store(open, Ordering::Relaxed);
    }

    /// Counts an idle connection closed to make room for a new one.
    pub fn count_connection_evicted(&self) {
        self.connections_evicted.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a new connection closed unanswered because every open one had
    /// a request in flight.
    pub fn count_connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Renders everything in the Prometheus text format, with the active
    /// version of each scenario as `(scenario, version)` pairs and the
    /// storage writer's counters when the backend has a writer.
    pub fn render(&self, active: &[(String, String)], writer: Option<WriterStats>) -> String {
        let mut out = String::new();
        let plugins: Vec<_> = {
            let plugins = self.plugins.lock().unwrap_or_else(|e| e.into_inner());
            plugins
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        let _ = writeln!(
            out,
            "# HELP onething_plugin_calls_total Plugin calls, by plugin version."
        );
        let _ = writeln!(out, "# TYPE onething_plugin_calls_total counter");
        for ((plugin, version), m) in &plugins {
            let _ = writeln!(
                out,
                "onething_plugin_calls_total{{plugin=\"{}\",version=\"{}\"}} {}",
                label(plugin),
                label(version),
                m.calls()
            );
        }
        let _ = writeln!(
            out,
            "# HELP onething_plugin_failures_total Failed plugin calls and denied reads or dispatches, by kind."
        );
        let _ = writeln!(out, "# TYPE onething_plugin_failures_total counter");
        for ((plugin, version), m) in &plugins {
            for (i, (_, kind)) in KINDS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "onething_plugin_failures_total{{plugin=\"{}\",version=\"{}\",kind=\"{kind}\"}} {}",
                    label(plugin),
                    label(version),
                    m.failures[i].load(Ordering::Relaxed)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP onething_plugin_call_duration_seconds Plugin call time, fresh instance included."
        );
        let _ = writeln!(
            out,
            "# TYPE onething_plugin_call_duration_seconds histogram"
        );
        for ((plugin, version), m) in &plugins {
            let (p, v) = (label(plugin), label(version));
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += m.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "onething_plugin_call_duration_seconds_bucket{{plugin=\"{p}\",version=\"{v}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "onething_plugin_call_duration_seconds_bucket{{plugin=\"{p}\",version=\"{v}\",le=\"+Inf\"}} {}",
                m.calls()
            );
            let _ = writeln!(
                out,
                "onething_plugin_call_duration_seconds_sum{{plugin=\"{p}\",version=\"{v}\"}} {}",
                m.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "onething_plugin_call_duration_seconds_count{{plugin=\"{p}\",version=\"{v}\"}} {}",
                m.calls()
            );
        }
        let _ = writeln!(
            out,
            "# HELP onething_plugin_active_version The version of each scenario that takes new cases."
        );
        let _ = writeln!(out, "# TYPE onething_plugin_active_version gauge");
        for (scenario, version) in active {
            let _ = writeln!(
                out,
                "onething_plugin_active_version{{plugin=\"{}\",version=\"{}\"}} 1",
                label(scenario),
                label(version)
            );
        }
        let _ = writeln!(
            out,
            "# HELP onething_cases_open Cases that are neither completed nor rejected."
        );
        let _ = writeln!(out, "# TYPE onething_cases_open gauge");
        let _ = writeln!(
            out,
            "onething_cases_open {}",
            self.open_cases.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP onething_calls_memory_reserved_mib Memory reserved by plugin calls in flight (limits.max_calls_memory_mib)."
        );
        let _ = writeln!(out, "# TYPE onething_calls_memory_reserved_mib gauge");
        let _ = writeln!(
            out,
            "onething_calls_memory_reserved_mib {}",
            self.calls_memory_reserved_mib.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP onething_overdue_items_total Overdue items the deadline loop handled, by outcome: reported (the plugin was told), call_failed (its call failed or it refused), failed (the host failed while handling it), panicked (handling it panicked); failed and panicked items are recorded on their case and not handled again."
        );
        let _ = writeln!(out, "# TYPE onething_overdue_items_total counter");
        for (i, (_, outcome)) in OVERDUE_OUTCOMES.iter().enumerate() {
            let _ = writeln!(
                out,
                "onething_overdue_items_total{{outcome=\"{outcome}\"}} {}",
                self.overdue[i].load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP onething_items_escalated_total Items moved to their department's office one level up because their time ran out."
        );
        let _ = writeln!(out, "# TYPE onething_items_escalated_total counter");
        let _ = writeln!(
            out,
            "onething_items_escalated_total {}",
            self.escalated.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP onething_items_reported_total Items an office took (报到), by whether by their report deadline."
        );
        let _ = writeln!(out, "# TYPE onething_items_reported_total counter");
        for (on_time, label) in [(1, "true"), (0, "false")] {
            let _ = writeln!(
                out,
                "onething_items_reported_total{{on_time=\"{label}\"}} {}",
                self.reported[on_time].load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP onething_reports_missed_total Report deadlines that passed unreported at an office (the item moved up, or the top office missed it)."
        );
        let _ = writeln!(out, "# TYPE onething_reports_missed_total counter");
        let _ = writeln!(
            out,
            "onething_reports_missed_total {}",
            self.reports_missed.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP onething_items_held_total Items held for an operator at dispatch because the office's task list does not name them."
        );
        let _ = writeln!(out, "# TYPE onething_items_held_total counter");
        let _ = writeln!(
            out,
            "onething_items_held_total {}",
            self.held.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP onething_overdue_in_flight Overdue items being handled or waiting for their plugin's share of the deadline loop."
        );
        let _ = writeln!(out, "# TYPE onething_overdue_in_flight gauge");
        let _ = writeln!(
            out,
            "onething_overdue_in_flight {}",
            self.overdue_in_flight.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP onething_http_responses_total HTTP responses, by status."
        );
        let _ = writeln!(out, "# TYPE onething_http_responses_total counter");
        let http = self.http.lock().unwrap_or_else(|e| e.into_inner());
        for (status, count) in http.iter() {
            let _ = writeln!(
                out,
                "onething_http_responses_total{{status=\"{status}\"}} {count}"
            );
        }
        drop(http);
        self.render_connections(&mut out);
        if let Some(stats) = writer {
            render_writer(&mut out, &stats);
        }
        out
    }

    fn render_connections(&self, out: &mut String) {
        let series = [
            (
                "onething_connections_open",
                "Connections open now (at most limits.max_connections that are not closing).",
                "gauge",
                self.connections_open.load(Ordering::Relaxed).to_string(),
            ),
            (
                "onething_connections_evicted_total",
                "Idle keep-alive connections closed to make room for a new one at the cap.",
                "counter",
                self.connections_evicted.load(Ordering::Relaxed).to_string(),
            ),
            (
                "onething_connections_refused_total",
                "New connections closed unanswered at the cap, every open one having a request in flight.",
                "counter",
                self.connections_refused.load(Ordering::Relaxed).to_string(),
            ),
        ];
        for (name, help, kind, value) in series {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        }
    }
}

/// The storage writer's counters. `rate(onething_storage_writer_busy_seconds_total)`
/// near 1 means every durable write waits for the writer: the durable rate
/// is at its ceiling whatever the number of cores.
fn render_writer(out: &mut String, stats: &WriterStats) {
    let series: [(&str, &str, String); 5] = [
        (
            "onething_storage_writes_total",
            "Writes handed to the storage writer (commits, failures, imports, registry changes).",
            stats.writes.to_string(),
        ),
        (
            "onething_storage_batches_total",
            "Atomic batches the storage writer applied; one covers every write that was waiting.",
            stats.batches.to_string(),
        ),
        (
            "onething_storage_writer_busy_seconds_total",
            "Time the storage writer spent checking writes and applying batches.",
            stats.busy.as_secs_f64().to_string(),
        ),
        (
            "onething_storage_flushes_total",
            "Flushes to disk; each makes one or more batches durable before their answers.",
            stats.flushes.to_string(),
        ),
        (
            "onething_storage_flush_seconds_total",
            "Time spent flushing to disk.",
            stats.flushing.as_secs_f64().to_string(),
        ),
    ];
    for (name, help, value) in series {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name} {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_lands_in_its_bucket_and_the_text_is_cumulative() {
        let metrics = Metrics::default();
        let m = metrics.plugin("newborn", "0.1.0");
        m.record_call(Duration::from_micros(8));
        m.record_call(Duration::from_millis(3));
        m.record_failure(FailureKind::Trap);
        let text = metrics.render(&[("newborn".into(), "0.1.0".into())], None);
        assert!(
            text.contains("onething_plugin_calls_total{plugin=\"newborn\",version=\"0.1.0\"} 2")
        );
        assert!(text.contains("kind=\"trap\"} 1"));
        assert!(text.contains("le=\"0.00001\"} 1"), "{text}");
        assert!(text.contains("le=\"0.005\"} 2"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 2"));
        assert!(
            text.contains("onething_plugin_active_version{plugin=\"newborn\",version=\"0.1.0\"} 1")
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
