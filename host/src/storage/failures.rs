//! Plugin calls that failed before a case existed (a failed `start`): no
//! case holds them, so they are kept on their own, for operators.
//!
//! What a backend must guarantee:
//! - [`FailureLog::record_failure`] writes the failure and the audit
//!   records of the reads the call made before failing in one atomic,
//!   durable write, or neither: a read that happened is on record even if
//!   the call then failed.
//! - [`FailureLog::failures`] returns the most recent failures in the
//!   order they were recorded.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AuditRecord, StorageError};

/// A plugin call that failed before any case existed (a failed `start`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// When.
    pub at: DateTime<Utc>,
    /// The scenario.
    pub scenario: String,
    /// The plugin version.
    pub plugin_version: String,
    /// The applicant, if known.
    pub applicant: String,
    /// The error's code.
    pub code: String,
    /// What went wrong.
    pub message: String,
}

/// Plugin calls that failed before a case existed (see the module docs).
#[async_trait]
pub trait FailureLog: Send + Sync + 'static {
    /// Records a plugin call that failed before a case existed, with the
    /// audit records of the reads it made before failing (a read that
    /// happened is on record even if the call then failed).
    async fn record_failure(
        &self,
        failure: FailureRecord,
        audit: Vec<AuditRecord>,
    ) -> Result<(), StorageError>;

    /// Failed `start` calls, most recent last, at most `limit`.
    async fn failures(&self, limit: usize) -> Result<Vec<FailureRecord>, StorageError>;
}
