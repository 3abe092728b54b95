//! The one-screen counters (see [`crate::ops::counters`] for what they
//! count and why they are derived from the records).
//!
//! What a backend must guarantee:
//! - **In the same atomic write.** [`CaseStore::commit`](super::CaseStore::commit)
//!   applies [`commit_deltas`](crate::ops::counters::commit_deltas) of the
//!   stored and the new case and items to the counters in the write that
//!   stores them, or neither. Two commits never lose each other's change
//!   (the sled writer is the only writer; a distributed backend applies
//!   them in stream order).
//! - **A recount equals the live counters.** [`CounterStore::recount`]
//!   sums every stored case's and item's contribution from nothing and
//!   (unless only checking) replaces the counters with it in one write;
//!   it reports how many counters differed.
//! - Reads are prefix reads of one scope: what the overview of one place
//!   costs does not grow with the number of cases.

use async_trait::async_trait;

use super::StorageError;
use crate::ops::counters::CounterKey;

/// What a recount found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recount {
    /// Cases read.
    pub cases: u64,
    /// Items read.
    pub items: u64,
    /// Counters the recount holds (non-zero).
    pub counters: u64,
    /// Counters whose stored value differed from the recount (stored but
    /// not recounted, recounted but not stored, or another value).
    pub differing: u64,
}

/// The counters (see the module docs).
#[async_trait]
pub trait CounterStore: Send + Sync + 'static {
    /// Every all-time counter of `scope`: its subtree figures (empty
    /// department) and those of each office at it.
    async fn counters_at(&self, scope: &str) -> Result<Vec<(CounterKey, i64)>, StorageError>;

    /// Every counter of `scope` in the local month `month` (`YYYY-MM`).
    async fn monthly_counters_at(
        &self,
        month: &str,
        scope: &str,
    ) -> Result<Vec<(CounterKey, i64)>, StorageError>;

    /// Rebuilds every counter from the stored cases and items; with
    /// `check_only`, writes nothing and only reports.
    async fn recount(&self, check_only: bool) -> Result<Recount, StorageError>;
}
