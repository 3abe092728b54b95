//! What the operations centre reads through the service: the counters
//! (`crate::ops::counters`), kept by storage in each commit.

use crate::ops::counters::CounterKey;
use crate::storage::Recount;

use super::{Service, ServiceError};

impl Service {
    /// Every all-time counter of `scope` (`""`: the whole host): its
    /// subtree's and those of each office at it.
    pub async fn counters_at(&self, scope: &str) -> Result<Vec<(CounterKey, i64)>, ServiceError> {
        Ok(self.storage.counters_at(scope).await?)
    }

    /// Every counter of `scope` in the local month `month` (`YYYY-MM`).
    pub async fn monthly_counters_at(
        &self,
        month: &str,
        scope: &str,
    ) -> Result<Vec<(CounterKey, i64)>, ServiceError> {
        Ok(self.storage.monthly_counters_at(month, scope).await?)
    }

    /// Counts every case and item again; with `check_only`, only reports
    /// how many counters differ.
    pub async fn recount(&self, check_only: bool) -> Result<Recount, ServiceError> {
        Ok(self.storage.recount(check_only).await?)
    }
}
