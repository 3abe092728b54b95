//! Department queues and the items due: read-only views over the work
//! items a [`CaseStore::commit`](super::CaseStore::commit) wrote.
//!
//! What a backend must guarantee:
//! - The views are kept in the same atomic write as the items: a queue
//!   never lists an item the commit did not write, nor misses one it did,
//!   and an item is listed under its current status only.
//! - Order: item ids are UUIDv7 (time-ordered), and a queue lists items by
//!   id, so oldest first; paging is by the last id of the previous page,
//!   which stays correct while items are added or change status.
//! - An office queue (a department's items under one place) lists the
//!   items whose owner office is at that place or below it, and follows an
//!   item that moves office in the same write.
//! - The due view holds exactly the items that are `pending` with no
//!   `overdue_at`, ordered by `due_at` (then id).
//! - The report view holds exactly the items whose
//!   [`WorkItem::report_deadline`] is set, ordered by it (then id).
//! - A read may interleave with commits: an item that changes status while
//!   a page is read may be left out of that page (a later read lists it
//!   under its new status), and no item appears twice on one page.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StorageError;
use crate::model::{ItemStatus, WorkItem};

/// What an office's queue lists: the items of one status its offices own,
/// or those that moved up from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfficeStatus {
    /// Owned by an office at the place or below, with this status.
    Is(ItemStatus),
    /// Moved up from the office at the place (its time ran out there).
    Escalated,
}

/// Department queues and items due (see the module docs).
#[async_trait]
pub trait QueueStore: Send + Sync + 'static {
    /// A department's items, optionally only those with one status, oldest
    /// first, at most `limit`, starting after the item `after` (the last
    /// item of the previous page). Reads only the items it returns, however
    /// many items of other statuses the department has.
    async fn department_items(
        &self,
        department: &str,
        status: Option<ItemStatus>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WorkItem>, StorageError>;

    /// The items of `department` owned by its offices at `place` and
    /// below (an officer's queue over their subtree), like
    /// [`department_items`](Self::department_items): by status, oldest
    /// first, paged by id, reading only the items it returns. An item that
    /// moved up from an office at exactly `place` is listed there as
    /// [`OfficeStatus::Escalated`] (and with no status asked for).
    async fn office_items(
        &self,
        department: &str,
        place: &str,
        status: Option<OfficeStatus>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WorkItem>, StorageError>;

    /// Items held for an operator (off a task list), oldest first, at most
    /// `limit`, after the item `after`.
    async fn held_items(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WorkItem>, StorageError>;

    /// Pending items due at or before `by` whose plugin has not yet been
    /// told they are overdue, and those whose report deadline (报到) passed
    /// by `by` unacted on ([`WorkItem::report_deadline`]), soonest first
    /// (by whichever deadline brought them), each once, at most `limit`.
    async fn items_due(
        &self,
        by: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<WorkItem>, StorageError>;
}
