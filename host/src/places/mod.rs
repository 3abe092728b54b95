//! The place tree (三级贯通): the city's places, from the city down to its
//! grids, and the departments' offices at them.
//!
//! - [`Place`]: a path id of lowercase slugs (`cq`, `cq/yubei`,
//!   `cq/yubei/longxi/jinlong/g07`), a name, a level and its parent. A
//!   child's id is its parent's id, `/`, and one more slug; the root has no
//!   parent. Levels are data, not an enum: any slug (`city`, `district`,
//!   `town`, `community`, `grid`, or a tree's own `micro-grid`); the one
//!   rule is that a level appears at most once on a path from the root, so
//!   "the town above this grid" has one answer.
//! - [`Office`]: a department present at a place; a department may have
//!   offices at several places and levels.
//! - `file.rs` reads an import file (JSON Lines) and checks it against the
//!   tree, all or nothing, naming the line of the first refusal; `tree.rs`
//!   is the in-memory [`PlaceTree`] index (`ancestors`, `office_for`);
//!   `route.rs` routes a work item to one office ([`PlaceTree::route`]).
//! - [`Places`] holds the index, loaded from storage at start and swapped
//!   whole after each import; imports are serialised, so each is checked
//!   against the tree the one before it left. The offline import
//!   (`onething places import --data-dir`) opens the data dir, which a
//!   running host keeps locked, so it cannot race the host.

mod file;
mod route;
mod tree;

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

pub use file::{PlaceImport, PlacesError, parse_import};
pub use route::{RouteError, Routed, Target};
pub use tree::{Ancestors, PlaceTree};

use crate::storage::{PlaceFilter, Storage, StorageError};

/// The demo place tree: a small Chongqing-like city with offices, loaded
/// once into a data dir that has no places (`[demo_data]`).
pub const DEMO_PLACES: &str = include_str!("../../demo/places.jsonl");

/// The actor recorded for the demo tree's import.
pub const DEMO_ACTOR: &str = "demo-seed";

/// One place of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    /// The path id: the parent's id, `/`, a slug (`cq/yubei`).
    pub id: String,
    /// Its name, as people write it (渝北区).
    pub name: String,
    /// Its level: a slug (`district`).
    pub level: String,
    /// The parent's id; none for the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// A department present at a place.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Office {
    /// The department (`public-security`).
    pub department: String,
    /// The place's id (`cq/yubei`).
    pub place: String,
}

/// Where a task list applies: every place of a level, or one place (which
/// then takes its own list, not its level's).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskScope {
    /// Every place of this level (`grid`).
    Level(String),
    /// This place.
    Place(String),
}

/// The tasks a level or a place takes (事项清单): entries
/// `DEPARTMENT/TASK` (`community-grid/stop-indoor-charging`) or
/// `DEPARTMENT/*`. A task sent to an office whose place (or level) has a
/// list that does not name it is held for an operator (清单外事项下派过滤).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskList {
    /// Where it applies.
    pub scope: TaskScope,
    /// What it takes.
    pub tasks: Vec<String>,
}

impl TaskList {
    /// Whether the list takes `department`'s `task`.
    pub fn takes(&self, department: &str, task: &str) -> bool {
        self.tasks.iter().any(|entry| {
            entry
                .split_once('/')
                .is_some_and(|(d, t)| d == department && (t == task || t == "*"))
        })
    }
}

/// What an import wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ImportSummary {
    /// New places.
    pub places: usize,
    /// New offices.
    pub offices: usize,
    /// Task lists set (new, or replacing the list of the same scope).
    pub task_lists: usize,
    /// Lines that repeat what the tree already holds (not written again).
    pub unchanged: usize,
}

/// The place tree and its index: what the host knows of places.
pub struct Places {
    storage: Arc<dyn Storage>,
    tree: RwLock<Arc<PlaceTree>>,
    importing: tokio::sync::Mutex<()>,
}

impl Places {
    /// Loads the index from storage (every place and office, once).
    pub async fn load(storage: Arc<dyn Storage>) -> Result<Places, StorageError> {
        let tree = PlaceTree::new(storage.all_places().await?, storage.all_offices().await?)
            .with_task_lists(storage.all_task_lists().await?);
        tracing::info!(places = tree.len(), "place tree loaded");
        Ok(Places {
            storage,
            tree: RwLock::new(Arc::new(tree)),
            importing: tokio::sync::Mutex::new(()),
        })
    }

    /// The index as of the last import.
    pub fn tree(&self) -> Arc<PlaceTree> {
        self.tree
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Imports a place file (JSON Lines) for `actor`: all or nothing, one
    /// audit record; the index is swapped once it is durable.
    pub async fn import(&self, text: &str, actor: &str) -> Result<ImportSummary, PlacesError> {
        let _one_at_a_time = self.importing.lock().await;
        let tree = self.tree();
        let import = parse_import(text, &tree)?;
        let summary = import.summary();
        if summary.places + summary.offices + summary.task_lists > 0 {
            let next = tree.with(&import);
            self.storage
                .import_places(import.places, import.offices, import.task_lists, actor)
                .await?;
            *self
                .tree
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
        }
        tracing::info!(
            actor,
            places = summary.places,
            offices = summary.offices,
            task_lists = summary.task_lists,
            unchanged = summary.unchanged,
            "places imported"
        );
        Ok(summary)
    }

    /// A page of places matching `filter`, ordered by id, after `after`.
    pub async fn list(
        &self,
        filter: &PlaceFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Place>, StorageError> {
        self.storage.places(filter, after, limit).await
    }

    /// Loads the demo tree if the data dir has no places. Returns whether
    /// it did.
    pub async fn seed_demo(&self) -> Result<bool, PlacesError> {
        if !self.tree().is_empty() {
            return Ok(false);
        }
        self.import(DEMO_PLACES, DEMO_ACTOR).await?;
        Ok(true)
    }
}

/// Whether `text` is a slug: one or more of `a-z`, `0-9`, `-`.
pub fn is_slug(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
