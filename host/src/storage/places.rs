//! The place tree and the departments' offices (see `crate::places`).
//!
//! What a backend must guarantee:
//! - [`PlaceStore::import_places`] writes every place, every office, every
//!   task list (replacing the stored list of the same scope) and one
//!   [`AuditRecord::Admin`](super::AuditRecord::Admin) (`places.import`,
//!   with the actor and the counts) in one atomic write, or none of them.
//!   The caller has checked the import against the tree (`crate::places`
//!   serialises imports); the store writes what it is given. Durable when
//!   it returns `Ok`, and read by every read after.
//! - Places are listed in id order (bytewise), so a page ends at an id and
//!   the next page starts after it; a listing reads only the places it
//!   returns (and, by level, their index keys): under an id it is a prefix
//!   scan of the path ids, by level a scan of that level's index.
//! - [`PlaceStore::all_places`] and [`PlaceStore::all_offices`] read
//!   everything, once, to build the in-memory index at start.

use async_trait::async_trait;

use super::StorageError;
use crate::places::{Office, Place, TaskList};

/// Which places a listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlaceFilter {
    /// Only this place and the places below it.
    pub under: Option<String>,
    /// Only places of this level.
    pub level: Option<String>,
}

/// The place tree and its offices (see the module docs).
#[async_trait]
pub trait PlaceStore: Send + Sync + 'static {
    /// Writes places and offices, all or none, with one audit record for
    /// `actor`.
    async fn import_places(
        &self,
        places: Vec<Place>,
        offices: Vec<Office>,
        task_lists: Vec<TaskList>,
        actor: &str,
    ) -> Result<(), StorageError>;

    /// One place.
    async fn place(&self, id: &str) -> Result<Option<Place>, StorageError>;

    /// At most `limit` places matching `filter`, in id order, after the id
    /// `after`.
    async fn places(
        &self,
        filter: &PlaceFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Place>, StorageError>;

    /// The offices of a department, by place id.
    async fn offices_of(&self, department: &str) -> Result<Vec<Office>, StorageError>;

    /// The offices at a place, by department.
    async fn offices_at(&self, place: &str) -> Result<Vec<Office>, StorageError>;

    /// Every place (to build the index at start).
    async fn all_places(&self) -> Result<Vec<Place>, StorageError>;

    /// Every office (to build the index at start).
    async fn all_offices(&self) -> Result<Vec<Office>, StorageError>;

    /// Every task list (to build the index at start).
    async fn all_task_lists(&self) -> Result<Vec<TaskList>, StorageError>;
}
