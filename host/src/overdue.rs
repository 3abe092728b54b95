//! The deadline loop: every `deadline_check_interval_ms` it takes the
//! pending items whose time ran out and tells each case's plugin, once,
//! that its item is overdue (`item-overdue`), and the items whose report
//! deadline (报到) passed untaken, each moved one office up or its miss
//! recorded once (`service/reports.rs`; counted as
//! `onething_reports_missed_total`, not as overdue items).
//!
//! Nothing one item or one plugin does can stop or stall it:
//! - **Each item is handled in its own task.** A failure while handling one
//!   (storage, a version that is no longer loaded) or a panic (caught as the
//!   task's [`JoinError::is_panic`]) is logged, counted on `/metrics`
//!   (`onething_overdue_items_total{outcome="failed"|"panicked"}`) and
//!   recorded on the case: a `call-failed` entry for `item-overdue` with the
//!   code `host_error` or `host_panic`, committed together with the item's
//!   `overdue_at` (`overdue_reported_at` in the item's JSON). The item is
//!   then reported like one whose plugin call failed, so neither the next
//!   round nor a restart meets it again. A
//!   plugin call that fails (refusal, trap, timeout, memory, bad answer) is
//!   the plugin's own failure: on the timeline as `call-failed`, counted
//!   towards the version's quarantine like any other call.
//! - **Each plugin has its own share.** Items are grouped by the plugin
//!   version their case is pinned to (scenario and version); at most
//!   `overdue_calls_per_plugin` of one version's items are handled at once
//!   and the rest wait for that version's share only. The loop itself waits
//!   for no item: it takes the next round's items on time, and a set of the
//!   items in flight keeps an item from being taken twice. A plugin whose
//!   `on-event` spins to its deadline delays its own overdue reports, no
//!   other plugin's.
//! - **A round is bounded.** It takes at most `due_items_per_round` items
//!   that are not in flight, soonest due first, reading at most that many
//!   plus those in flight. Items waiting for a slow plugin's share stay in
//!   flight (one small task each) until their turn: a plugin with thousands
//!   of due items that each spin makes the loop hold and re-read them, up to
//!   `due_items_per_round` more each round, and other plugins' items due
//!   after all of them are reached one round later per
//!   `due_items_per_round` such items (the due index is ordered by time,
//!   not by plugin).
//! - **Items of one case are handled one at a time**, under the case's lock,
//!   like every other event (see `service.rs`).
//! - **Told once, also across restarts.** An item's `overdue_at` is
//!   committed with the call's outcome or its failure. At shutdown the
//!   calls in flight are stopped before they commit anything; their items
//!   are still unreported and are told after the restart.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::MissedTickBehavior;

use crate::metrics::OverdueOutcome;
use crate::model::WorkItem;
use crate::service::{OverdueReport, Service, ServiceError};

/// The timeline code of an item whose handling failed in the host.
pub const HOST_ERROR: &str = "host_error";
/// The timeline code of an item whose handling panicked.
pub const HOST_PANIC: &str = "host_panic";

/// A plugin version: scenario and version.
type PluginKey = (String, String);

/// Each plugin version's share of the loop: a semaphore of
/// `overdue_calls_per_plugin` permits, made on first use.
struct Shares {
    per_plugin: usize,
    map: Mutex<HashMap<PluginKey, Arc<Semaphore>>>,
}

impl Shares {
    fn of(&self, key: PluginKey) -> Arc<Semaphore> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_plugin)))
            .clone()
    }

    /// Forgets the shares nobody holds or waits for.
    fn prune(&self) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, share| Arc::strong_count(share) > 1);
    }
}

/// What a task of the loop does for its item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    /// Tells the plugin.
    Report,
    /// Records a failure of an earlier report.
    Record,
}

/// What a task ended with.
enum Done {
    Reported(Result<OverdueReport, ServiceError>),
    Recorded(Result<bool, ServiceError>),
}

/// An item in flight.
struct InFlight {
    item_id: String,
    case_id: String,
    job: Job,
}

/// The deadline loop and the items it has in flight.
pub struct DeadlineLoop {
    service: Arc<Service>,
    per_round: usize,
    shares: Arc<Shares>,
    tasks: JoinSet<Done>,
    in_flight: HashMap<Id, InFlight>,
    items: HashSet<String>,
}

impl DeadlineLoop {
    /// A loop over `service`, with the service's limits
    /// (`due_items_per_round`, `overdue_calls_per_plugin`).
    pub fn new(service: Arc<Service>) -> Self {
        let (per_round, per_plugin) = service.overdue_limits();
        DeadlineLoop {
            service,
            per_round,
            shares: Arc::new(Shares {
                per_plugin,
                map: Mutex::default(),
            }),
            tasks: JoinSet::new(),
            in_flight: HashMap::new(),
            items: HashSet::new(),
        }
    }

    /// Takes a round of due items every `interval` until `signal` changes,
    /// then stops the calls in flight (their items stay unreported, to be
    /// told after a restart) and returns once every task has ended.
    pub async fn run(mut self, interval: Duration, mut signal: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The first tick is immediate; the first round comes an interval
        // after the start.
        ticks.tick().await;
        loop {
            tokio::select! {
                _ = ticks.tick() => match self.round().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(items = n, "overdue items taken"),
                    Err(error) => tracing::error!(%error, "overdue check failed"),
                },
                Some(done) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.finish(done);
                }
                _ = signal.changed() => break,
            }
        }
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        let stopped = self.items.len();
        if stopped > 0 {
            tracing::info!(
                items = stopped,
                "overdue calls in flight were stopped; they are told after the restart"
            );
        }
    }

    /// One round, waiting for every item it took (the test kit's way):
    /// returns how many items' plugins were told (the call succeeded or
    /// failed).
    pub async fn report_round(mut self) -> Result<usize, ServiceError> {
        self.round().await?;
        Ok(self.drain().await)
    }

    /// Takes the due items that are not in flight, at most
    /// `due_items_per_round`, each in its own task; returns how many.
    async fn round(&mut self) -> Result<usize, ServiceError> {
        self.shares.prune();
        let due = self
            .service
            .items_due(self.per_round.saturating_add(self.items.len()))
            .await?;
        let mut taken = 0;
        for item in due {
            if taken >= self.per_round {
                break;
            }
            if !self.items.contains(&item.id) {
                self.spawn_report(item);
                taken += 1;
            }
        }
        self.service
            .metrics()
            .set_overdue_in_flight(self.items.len());
        Ok(taken)
    }

    fn spawn_report(&mut self, item: WorkItem) {
        let service = self.service.clone();
        let shares = self.shares.clone();
        let (id, case) = (item.id.clone(), item.case_id.clone());
        self.spawn_job(item.id, item.case_id, async move {
            // A case's version is fixed when it starts: no lock needed.
            let version = service.pinned_version(&case).await?;
            let share = shares.of((item.scenario, version));
            // The semaphore is never closed.
            let Ok(_turn) = share.acquire_owned().await else {
                return Ok(OverdueReport::Skipped);
            };
            service.report_item_overdue(&case, &id).await
        });
    }

    /// Runs `job`, the handling of one item, in its own task.
    fn spawn_job<F>(&mut self, item_id: String, case_id: String, job: F)
    where
        F: Future<Output = Result<OverdueReport, ServiceError>> + Send + 'static,
    {
        let task = self.tasks.spawn(async move { Done::Reported(job.await) });
        self.track(task.id(), item_id, case_id, Job::Report);
    }

    /// Waits for every task in flight; returns how many items' plugins
    /// were told.
    async fn drain(&mut self) -> usize {
        let mut told = 0;
        while let Some(done) = self.tasks.join_next_with_id().await {
            if self.finish(done) {
                told += 1;
            }
        }
        told
    }

    fn spawn_record(
        &mut self,
        item_id: String,
        case_id: String,
        code: &'static str,
        message: String,
    ) {
        let service = self.service.clone();
        let (id, case) = (item_id.clone(), case_id.clone());
        let task = self.tasks.spawn(async move {
            Done::Recorded(
                service
                    .record_overdue_failure(&case, &id, code, &message)
                    .await,
            )
        });
        self.track(task.id(), item_id, case_id, Job::Record);
    }

    fn track(&mut self, task: Id, item_id: String, case_id: String, job: Job) {
        self.items.insert(item_id.clone());
        self.in_flight.insert(
            task,
            InFlight {
                item_id,
                case_id,
                job,
            },
        );
    }

    /// Handles a task's end; returns whether the item's plugin was told.
    fn finish(&mut self, done: Result<(Id, Done), JoinError>) -> bool {
        let (task, done) = match done {
            Ok((task, done)) => (task, Ok(done)),
            Err(error) => (error.id(), Err(error)),
        };
        let Some(InFlight {
            item_id,
            case_id,
            job,
        }) = self.in_flight.remove(&task)
        else {
            return false;
        };
        let service = self.service.clone();
        let metrics = service.metrics();
        let mut told = false;
        let mut failure = None;
        match done {
            Ok(Done::Reported(Ok(report))) => {
                told = report != OverdueReport::Skipped;
                match report {
                    OverdueReport::Reported => metrics.record_overdue(OverdueOutcome::Reported),
                    OverdueReport::CallFailed => metrics.record_overdue(OverdueOutcome::CallFailed),
                    // Counted as `onething_reports_missed_total`.
                    OverdueReport::ReportMissed | OverdueReport::Skipped => {}
                }
            }
            Ok(Done::Reported(Err(error))) => {
                tracing::error!(%error, item_id, case_id, "handling an overdue item failed; recording it on the case");
                metrics.record_overdue(OverdueOutcome::Failed);
                failure = Some((
                    HOST_ERROR,
                    format!("the host could not report the item overdue: {error}"),
                ));
            }
            Ok(Done::Recorded(Ok(_))) => {}
            Ok(Done::Recorded(Err(error))) => {
                tracing::error!(%error, item_id, case_id, "cannot record the failure of an overdue item; the next round tries it again");
            }
            Err(error) if error.is_panic() => {
                let message = panic_message(error.into_panic());
                metrics.record_overdue(OverdueOutcome::Panicked);
                if job == Job::Report {
                    tracing::error!(panic = %message, item_id, case_id, "handling an overdue item panicked; recording it on the case");
                    failure = Some((
                        HOST_PANIC,
                        format!("the host failed while reporting the item overdue: {message}"),
                    ));
                } else {
                    tracing::error!(panic = %message, item_id, case_id, "recording the failure of an overdue item panicked; the next round tries it again");
                }
            }
            // Stopped at shutdown.
            Err(_) => {}
        }
        match failure {
            Some((code, message)) => self.spawn_record(item_id, case_id, code, message),
            None => {
                self.items.remove(&item_id);
            }
        }
        metrics.set_overdue_in_flight(self.items.len());
        told
    }
}

/// The text of a panic's payload.
fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(text) => (*text).to_owned(),
            Err(_) => "a panic without a message".to_owned(),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::calendar::Calendar;
    use crate::metrics::Metrics;
    use crate::model::{Case, CaseStatus, Due, ItemStatus, TimelineEvent};
    use crate::plugins::PluginSet;
    use crate::service::SystemClock;
    use crate::storage::sled::SledStorage;
    use crate::storage::{Commit, Storage};
    use chrono::Utc;

    /// A service on real storage with no plugins loaded, and one open case
    /// with one item whose time ran out an hour ago.
    async fn service_with_a_due_item(dir: &std::path::Path) -> (Arc<Service>, Arc<dyn Storage>) {
        let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(dir).unwrap());
        let now = Utc::now();
        let item = WorkItem {
            id: "item-1".into(),
            case_id: "case-1".into(),
            scenario: "gone".into(),
            department: "desk".into(),
            task: "t".into(),
            payload: serde_json::Value::Null,
            status: ItemStatus::Pending,
            due: Due::Hours(1),
            due_at: now - chrono::Duration::hours(1),
            created_at: now - chrono::Duration::hours(2),
            finished_at: None,
            result: None,
            reason: None,
            overdue_at: None,
            priority: Default::default(),
            place: None,
            office: None,
            handled_by: None,
            escalation: None,
            escalated_from: Vec::new(),
            note: None,
            report_due: None,
            report_due_at: None,
            reported_at: None,
            reported_by: None,
            report_missed_by: Vec::new(),
        };
        let case = Case {
            id: "case-1".into(),
            scenario: "gone".into(),
            plugin_version: "1.0.0".into(),
            applicant: "a".into(),
            status: CaseStatus::InProgress,
            message: String::new(),
            state: "{}".into(),
            application: serde_json::Value::Null,
            item_ids: vec![item.id.clone()],
            timeline: Vec::new(),
            created_at: now,
            updated_at: now,
            revision: 0,
            place: None,
            subject: None,
        };
        storage
            .commit(Commit {
                case,
                expected_revision: None,
                items: vec![item],
                audit: Vec::new(),
                idempotency: None,
            })
            .await
            .unwrap();
        let places = Arc::new(crate::places::Places::load(storage.clone()).await.unwrap());
        let service = Service::new(
            storage.clone(),
            Arc::new(PluginSet::default()),
            places,
            Calendar::new(8),
            Arc::new(SystemClock),
            Arc::new(Metrics::default()),
        );
        (Arc::new(service), storage)
    }

    /// The case's `call-failed` codes and whether its item is marked
    /// reported.
    async fn recorded(storage: &Arc<dyn Storage>) -> (Vec<String>, bool) {
        let case = storage.case("case-1").await.unwrap().unwrap();
        let codes = case
            .timeline
            .iter()
            .filter_map(|e| match &e.event {
                TimelineEvent::CallFailed { call, code, .. } => {
                    assert_eq!(call, "item-overdue");
                    Some(code.clone())
                }
                _ => None,
            })
            .collect();
        let item = storage.item("item-1").await.unwrap().unwrap();
        (codes, item.overdue_at.is_some())
    }

    #[tokio::test]
    async fn a_panic_while_handling_an_item_is_recorded_and_the_item_is_not_taken_again() {
        let dir = tempfile::tempdir().unwrap();
        let (service, storage) = service_with_a_due_item(dir.path()).await;
        let mut deadlines = DeadlineLoop::new(service.clone());
        deadlines.spawn_job("item-1".into(), "case-1".into(), async {
            panic!("deadline arithmetic overflowed")
        });
        assert_eq!(deadlines.drain().await, 0);
        let (codes, reported) = recorded(&storage).await;
        assert_eq!(codes, [HOST_PANIC]);
        assert!(reported);
        let case = storage.case("case-1").await.unwrap().unwrap();
        assert!(
            format!("{:?}", case.timeline).contains("deadline arithmetic overflowed"),
            "{:?}",
            case.timeline
        );
        assert!(service.items_due(10).await.unwrap().is_empty());
        let text = service.metrics().render(&[], None);
        assert!(
            text.contains("onething_overdue_items_total{outcome=\"panicked\"} 1"),
            "{text}"
        );
        assert!(text.contains("onething_overdue_in_flight 0"), "{text}");
        // The next round has nothing to do.
        assert_eq!(DeadlineLoop::new(service).report_round().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn an_error_while_handling_an_item_is_recorded_once() {
        // The case's version is not loaded: the host cannot tell the plugin.
        let dir = tempfile::tempdir().unwrap();
        let (service, storage) = service_with_a_due_item(dir.path()).await;
        assert_eq!(service.report_overdue().await.unwrap(), 0);
        let (codes, reported) = recorded(&storage).await;
        assert_eq!(codes, [HOST_ERROR]);
        assert!(reported);
        service.report_overdue().await.unwrap();
        assert_eq!(recorded(&storage).await.0.len(), 1);
        let text = service.metrics().render(&[], None);
        assert!(
            text.contains("onething_overdue_items_total{outcome=\"failed\"} 1"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn whistle_a_report_missed_at_the_top_is_recorded_once_and_the_item_stays_due_later() {
        let dir = tempfile::tempdir().unwrap();
        let (service, storage) = service_with_a_due_item(dir.path()).await;
        // The item's report deadline passed; its completion is due later.
        let mut item = storage.item("item-1").await.unwrap().unwrap();
        let now = Utc::now();
        item.due_at = now + chrono::Duration::hours(1);
        item.report_due = Some(Due::Minutes(30));
        item.report_due_at = Some(now - chrono::Duration::minutes(1));
        let mut case = storage.case("case-1").await.unwrap().unwrap();
        case.revision = 1;
        storage
            .commit(Commit {
                case,
                expected_revision: Some(0),
                items: vec![item],
                audit: Vec::new(),
                idempotency: None,
            })
            .await
            .unwrap();
        // No office above (no office at all): recorded, no plugin needed.
        assert_eq!(service.report_overdue().await.unwrap(), 1);
        let item = storage.item("item-1").await.unwrap().unwrap();
        assert_eq!(item.report_missed_by, ["desk"]);
        assert!(
            item.overdue_at.is_none(),
            "the completion deadline is not touched"
        );
        assert_eq!(service.report_overdue().await.unwrap(), 0, "once");
        let case = storage.case("case-1").await.unwrap().unwrap();
        let missed = case
            .timeline
            .iter()
            .filter(|e| matches!(e.event, TimelineEvent::ReportMissed { .. }))
            .count();
        assert_eq!(missed, 1);
        let text = service.metrics().render(&[], None);
        assert!(text.contains("onething_reports_missed_total 1"), "{text}");
    }

    #[test]
    fn panic_payloads_are_read_as_text() {
        assert_eq!(panic_message(Box::new("static")), "static");
        assert_eq!(panic_message(Box::new(String::from("owned"))), "owned");
        assert_eq!(panic_message(Box::new(7)), "a panic without a message");
    }
}
