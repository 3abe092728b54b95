//! Test a scenario plugin from `cargo test`, with no server and no HTTP.
//!
//! The kit loads the real compiled component into an embedded host — the
//! same runtime, service layer and storage as `onething serve`, on a
//! temporary data dir — and lets a test play every other part: import
//! fixture datasets, apply as a citizen, answer as departments (complete,
//! reject), supply material, and let time pass so that deadlines run out.
//!
//! ```no_run
//! # async fn example() -> Result<(), onething_testkit::KitError> {
//! use onething_testkit::TestKit;
//! use serde_json::json;
//!
//! let kit = TestKit::load("dist/plugins/newborn").await?;
//! kit.dataset("health/birth-certificates", "certificate_no", &[json!({
//!     "certificate_no": "T1", "child_name": "A", "sex": "female",
//!     "born_at": "2026-11-20T08:00:00+08:00", "hospital": "H",
//!     "mother_id": "M", "father_id": "F"})]).await?;
//! let case = kit.apply(json!({"certificate_no": "T1"})).await?;
//! for item in &case.items {
//!     kit.complete(&item.id, json!({"done": true})).await?;
//! }
//! kit.pass(chrono::Duration::days(8)).await?; // deadlines run out
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::Value;

use onething_host::config::LimitsConfig;
use onething_host::datasets::{self, ImportError};
use onething_host::metrics::Metrics;
use onething_host::model::{CaseStatus, ItemStatus, TimelineEntry, WorkItem};
use onething_host::places::{ImportSummary, Places, PlacesError};
use onething_host::plugins::{self, PluginDirError, PluginSet};
use onething_host::runtime::{LoadError, Runtime};
use onething_host::service::{Clock, Officer, Service, ServiceError};
use onething_host::storage::sled::SledStorage;
use onething_host::storage::{Storage, StorageError};

pub use onething_host::calendar::Calendar;
pub use onething_host::model;

/// Why a kit step failed.
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    /// The plugin could not be loaded.
    #[error(transparent)]
    Plugin(#[from] PluginDirError),
    /// The embedded host could not start.
    #[error(transparent)]
    Runtime(#[from] LoadError),
    /// A dataset could not be imported.
    #[error(transparent)]
    Dataset(#[from] ImportError),
    /// The host refused the step (as it would over HTTP).
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A place file was refused (the line is named).
    #[error(transparent)]
    Places(#[from] PlacesError),
    /// The temporary data dir could not be made.
    #[error("cannot make a temporary data dir: {0}")]
    TempDir(std::io::Error),
    /// No such work item.
    #[error("work item {0} does not exist")]
    NoSuchItem(String),
}

/// A clock the test moves.
struct KitClock(Mutex<DateTime<Utc>>);

impl Clock for KitClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A case as the test sees it after a step.
#[derive(Debug, Clone)]
pub struct KitCase {
    /// The case id.
    pub id: String,
    /// Where it stands.
    pub status: CaseStatus,
    /// What the applicant is told.
    pub message: String,
    /// Every item dispatched for it, in order.
    pub items: Vec<WorkItem>,
    /// Its history.
    pub timeline: Vec<TimelineEntry>,
    /// Where it is (a place id), if anything gave it a place.
    pub place: Option<String>,
}

impl KitCase {
    /// The items of one department.
    pub fn items_of(&self, department: &str) -> Vec<&WorkItem> {
        self.items
            .iter()
            .filter(|i| i.department == department)
            .collect()
    }

    /// The pending items.
    pub fn pending(&self) -> Vec<&WorkItem> {
        self.items
            .iter()
            .filter(|i| i.status == ItemStatus::Pending)
            .collect()
    }
}

/// An embedded host with one plugin, a temporary data dir and a clock.
pub struct TestKit {
    service: Arc<Service>,
    places: Arc<Places>,
    storage: Arc<dyn Storage>,
    clock: Arc<KitClock>,
    scenario: String,
    // Kept alive: the runtime's epoch ticker enforces plugin deadlines.
    _runtime: Runtime,
    _dir: tempfile::TempDir,
}

impl TestKit {
    /// Loads the plugin in `plugin_dir`: its `onething.toml` and
    /// `plugin.wasm`, as `scripts/build-plugins.sh` lays them out, or a
    /// plugin crate (its `onething.toml` and the `dist/plugin.wasm` that
    /// `onething plugin build` writes; `dist/` alone loads too). The
    /// clock starts at 2026-11-24 10:00 in Beijing (a Tuesday) and the
    /// calendar has weekends only.
    pub async fn load(plugin_dir: impl AsRef<Path>) -> Result<TestKit, KitError> {
        Self::load_with_calendar(plugin_dir, Calendar::new(8)).await
    }

    /// Like [`TestKit::load`], with a calendar (e.g. with holidays).
    pub async fn load_with_calendar(
        plugin_dir: impl AsRef<Path>,
        calendar: Calendar,
    ) -> Result<TestKit, KitError> {
        let dir = tempfile::tempdir().map_err(KitError::TempDir)?;
        let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path())?);
        let metrics = Arc::new(Metrics::default());
        let runtime = Runtime::new(
            &LimitsConfig::default(),
            storage.clone(),
            storage.clone(),
            None,
            metrics.clone(),
        )?;
        let plugin = plugins::load_one(&runtime, plugin_dir.as_ref()).await?;
        let scenario = plugin.manifest().id.clone();
        let set = Arc::new(PluginSet::default());
        set.insert(plugin)?;
        let start = DateTime::parse_from_rfc3339("2026-11-24T10:00:00+08:00")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|_| Utc::now());
        let clock = Arc::new(KitClock(Mutex::new(start)));
        let places = Arc::new(Places::load(storage.clone()).await?);
        let service = Arc::new(Service::new(
            storage.clone(),
            set,
            places.clone(),
            calendar,
            clock.clone(),
            metrics,
        ));
        Ok(TestKit {
            service,
            places,
            storage,
            clock,
            scenario,
            _runtime: runtime,
            _dir: dir,
        })
    }

    /// Imports a place tree and offices (the JSON Lines of `onething places
    /// import`, docs/design/places.md), all or nothing: the plugin's items
    /// are then routed on it.
    pub async fn places(&self, jsonl: &str) -> Result<ImportSummary, KitError> {
        Ok(self.places.import(jsonl, "testkit").await?)
    }

    /// Imports fixture records into `dataset`, keyed by `key_field`.
    pub async fn dataset(
        &self,
        dataset: &str,
        key_field: &str,
        records: &[Value],
    ) -> Result<(), KitError> {
        datasets::check_dataset_name(dataset)?;
        let text: String = records.iter().map(|r| format!("{r}\n")).collect();
        let parsed = datasets::parse_jsonl(&text, key_field)?;
        self.storage.import_dataset(dataset, parsed).await?;
        Ok(())
    }

    /// A citizen applies with `form`; the applicant is the form's
    /// `applicant_id` (or `sensor_id`), `anonymous` without one.
    pub async fn apply(&self, form: Value) -> Result<KitCase, KitError> {
        let applied = self.service.apply(&self.scenario, form, None).await?;
        self.case(&applied.case.case.id).await
    }

    /// Citizen `citizen` applies with `form`, as over HTTP with their
    /// token: the applicant is `citizen`, a missing `applicant_id` field is
    /// filled in with it, and a form naming someone else is refused.
    pub async fn apply_as(&self, citizen: &str, form: Value) -> Result<KitCase, KitError> {
        let applicant = onething_host::service::Applicant::Citizen(citizen.to_owned());
        let applied = self
            .service
            .apply_as(&self.scenario, form, None, applicant)
            .await?;
        self.case(&applied.case.case.id).await
    }

    /// The item's department completes it with `result`, acting at the
    /// office that owns it (its top office when the item has none).
    pub async fn complete(&self, item_id: &str, result: Value) -> Result<KitCase, KitError> {
        let owner = self.owner_of(item_id).await?;
        let acted = self.service.complete_item(&owner, item_id, result).await?;
        self.case(&acted.case.id).await
    }

    /// The item's department rejects it with `reason`, acting at the office
    /// that owns it (its top office when the item has none).
    pub async fn reject(&self, item_id: &str, reason: &str) -> Result<KitCase, KitError> {
        let owner = self.owner_of(item_id).await?;
        let acted = self
            .service
            .reject_item(&owner, item_id, reason.to_owned())
            .await?;
        self.case(&acted.case.id).await
    }

    /// The office that owns the item takes it (报到: the report step of an
    /// item dispatched with `reports_within`), at the office that owns it
    /// (its top office when the item has none); the plugin gets
    /// `item-reported`.
    pub async fn report(&self, item_id: &str) -> Result<KitCase, KitError> {
        let owner = self.owner_of(item_id).await?;
        let acted = self.service.report_item(&owner, item_id).await?;
        self.case(&acted.case.id).await
    }

    /// The applicant supplies `material`.
    pub async fn supplement(&self, case_id: &str, material: Value) -> Result<KitCase, KitError> {
        self.service.supplement(case_id, material).await?;
        self.case(case_id).await
    }

    /// Lets `duration` pass, then reports every item whose time ran out to
    /// the plugin, as the host's deadline check would. Returns how many.
    pub async fn pass(&self, duration: chrono::Duration) -> Result<usize, KitError> {
        {
            let mut now = self.clock.0.lock().unwrap_or_else(|e| e.into_inner());
            *now += duration;
        }
        Ok(self.service.report_overdue().await?)
    }

    /// Now, on the kit's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// A case as it stands.
    pub async fn case(&self, case_id: &str) -> Result<KitCase, KitError> {
        let c = self.service.case(case_id).await?;
        Ok(KitCase {
            id: c.case.id,
            status: c.case.status,
            message: c.case.message,
            items: c.items,
            timeline: c.case.timeline,
            place: c.case.place,
        })
    }

    /// The department of the item, acting at the office that owns it
    /// (items routed by place belong to one office, which alone may act on
    /// them).
    async fn owner_of(&self, item_id: &str) -> Result<Officer, KitError> {
        let item = self
            .storage
            .item(item_id)
            .await?
            .ok_or_else(|| KitError::NoSuchItem(item_id.to_owned()))?;
        Ok(Officer {
            place: item.office,
            ..Officer::department(&item.department)
        })
    }
}
