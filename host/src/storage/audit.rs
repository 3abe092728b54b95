//! The hash-chained audit log and its access-log index: the
//! tamper-evident record of every data read, dispatch, decision and
//! operator action.
//!
//! What a backend must guarantee:
//! - **One chain.** Every write of every store that carries audit records
//!   (a commit, a failure, an import, a registry change, [`AuditLog::audit`])
//!   appends them to one sequence: `seq` starts at 1 and grows by one with
//!   no gap, each entry is built with [`AuditEntry::link`] from the
//!   previous entry's hash ([`GENESIS_HASH`] before the first), in the
//!   order the records were given. So writes that append audit records are
//!   serialised with one another, and the chain's head is read and moved in
//!   the same atomic write as the records it links.
//! - **Atomic with what it records.** An entry lands in the same atomic
//!   write as the change it records (see each store), or not at all; a
//!   refused write leaves no entry and no gap.
//! - **The access-log index** lists, for each person, the
//!   [`AuditRecord::DataRead`] entries of the cases they applied for
//!   (`applicant`) and of reads of their own record (`key`); it is written
//!   in the same atomic write as the entries, and an entry that concerns
//!   one person twice is listed once.
//! - Entries are never changed or removed; durable when the write returns
//!   `Ok`. `audit verify` recomputes the chain from
//!   [`AuditLog::audit_entries`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StorageError;
use crate::model::{CaseStatus, ItemStatus};

/// One thing that goes on the tamper-evident record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum AuditRecord {
    /// A plugin read (or tried to read) a department's data.
    DataRead {
        /// The plugin id (= scenario).
        plugin: String,
        /// Its version.
        version: String,
        /// The case the read was for.
        case_id: String,
        /// Whose case it is.
        applicant: String,
        /// `DEPARTMENT/NAME`.
        dataset: String,
        /// The record's key.
        key: String,
        /// Why, as the plugin said.
        purpose: String,
        /// Whether the grant allowed it.
        allowed: bool,
        /// The person the record is about, when its key is not their id
        /// (a mandate `AGENT:SUBJECT` is about the subject): the read is
        /// on their access log too.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        about: Option<String>,
    },
    /// A plugin's reads of an ungranted dataset, or dispatches to an
    /// ungranted department, in one call: one record per target and call,
    /// with how often it tried.
    Denied {
        /// The plugin id.
        plugin: String,
        /// Its version.
        version: String,
        /// The case the call was for.
        case_id: String,
        /// `read` or `dispatch`.
        what: crate::runtime::DeniedKind,
        /// The dataset or department.
        target: String,
        /// How many attempts the call made.
        attempts: u32,
    },
    /// A plugin dispatched a work item.
    Dispatch {
        /// Whether it was held for an operator (off the task list).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        held: bool,
        /// The plugin id.
        plugin: String,
        /// Its version.
        version: String,
        /// The case.
        case_id: String,
        /// The item.
        item_id: String,
        /// The department it went to.
        department: String,
        /// Its task.
        task: String,
        /// The place of the office it was routed to, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        office: Option<String>,
    },
    /// A plugin decided a case's status.
    Decision {
        /// The plugin id.
        plugin: String,
        /// Its version.
        version: String,
        /// The case.
        case_id: String,
        /// The status decided.
        status: CaseStatus,
    },
    /// A department completed or rejected an item.
    DepartmentAction {
        /// The department.
        department: String,
        /// The case.
        case_id: String,
        /// The item.
        item_id: String,
        /// The item's new status.
        status: ItemStatus,
        /// The place of the office that owned the item, if routed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        office: Option<String>,
        /// The officer who acted (or the department, for a token that names
        /// no officer): 谁办理、谁负责.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        handled_by: Option<String>,
    },
    /// The host moved an item whose time ran out to its department's office
    /// one level up (the plugin asked for escalation when it dispatched it).
    Escalated {
        /// The case.
        case_id: String,
        /// The item.
        item_id: String,
        /// Its department.
        department: String,
        /// The place of the office that held it.
        from_office: String,
        /// The place of the office that holds it now.
        to_office: String,
        /// Its new deadline.
        due_at: chrono::DateTime<chrono::Utc>,
    },
    /// An office took an item (报到): explicitly, or by completing or
    /// rejecting it unreported (then with the department's action).
    Reported {
        /// The case.
        case_id: String,
        /// The item.
        item_id: String,
        /// Its department.
        department: String,
        /// The place of the office that took it, if routed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        office: Option<String>,
        /// The officer (or the department) who took it.
        handled_by: String,
        /// Whether it was taken by its report deadline.
        on_time: bool,
    },
    /// An item's report deadline passed at its department's top office:
    /// recorded once, nothing moved (below the top the move is recorded
    /// as [`AuditRecord::Escalated`]).
    ReportMissed {
        /// The case.
        case_id: String,
        /// The item.
        item_id: String,
        /// Its department.
        department: String,
        /// The office (place, or the department) that missed it.
        office: String,
    },
    /// A plugin cancelled a pending work item.
    Cancelled {
        /// The plugin id.
        plugin: String,
        /// Its version.
        version: String,
        /// The case.
        case_id: String,
        /// The item.
        item_id: String,
        /// Its department.
        department: String,
    },
    /// The applicant withdrew a case.
    Withdrawn {
        /// The case.
        case_id: String,
        /// Who withdrew it.
        applicant: String,
        /// How many open items were cancelled.
        cancelled_items: usize,
    },
    /// An operator changed the registry: trusted or revoked a key, set a
    /// grant ceiling, uploaded, activated, rolled back, deactivated or
    /// removed a plugin version, or reactivated a quarantined one.
    Admin {
        /// Who (`admin` for the admin token, `demo-seed` at a demo start).
        actor: String,
        /// What, e.g. `plugin.activate`.
        action: String,
        /// On what, e.g. `newborn@0.2.0`.
        subject: String,
        /// Anything else worth keeping.
        detail: String,
    },
    /// An operator imported a dataset (added records to it, or replaced
    /// it whole).
    DatasetImport {
        /// `DEPARTMENT/NAME`.
        dataset: String,
        /// How many records.
        records: usize,
        /// Who imported it (none on entries from before imports named
        /// their operator, and for the demo seed and offline adds).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actor: Option<String>,
        /// For a replace: how many records the dataset held before it
        /// (every one of them gone, or replaced by the new file's). None
        /// for an import that added records.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaced: Option<usize>,
    },
}

/// One entry of the hash-chained audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// What happened.
    pub record: AuditRecord,
    /// The previous entry's hash (64 zeros for the first).
    pub prev_hash: String,
    /// SHA-256 over the previous hash, the sequence number, the time and
    /// the record.
    pub hash: String,
}

impl AuditEntry {
    /// Links `record` after an entry with hash `prev_hash` at position `seq`.
    pub fn link(seq: u64, at: DateTime<Utc>, record: AuditRecord, prev_hash: String) -> Self {
        let hash = Self::digest(seq, at, &record, &prev_hash);
        AuditEntry {
            seq,
            at,
            record,
            prev_hash,
            hash,
        }
    }

    /// Recomputes what this entry's hash must be.
    pub fn expected_hash(&self) -> String {
        Self::digest(self.seq, self.at, &self.record, &self.prev_hash)
    }

    fn digest(seq: u64, at: DateTime<Utc>, record: &AuditRecord, prev_hash: &str) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(prev_hash.as_bytes());
        hasher.update(seq.to_be_bytes());
        hasher.update(at.to_rfc3339().as_bytes());
        // Serialising a record of plain strings, bools and enums cannot fail;
        // an empty body would still be chained by seq and time.
        hasher.update(serde_json::to_vec(record).unwrap_or_default());
        hex::encode(hasher.finalize())
    }
}

/// The hash that precedes the first audit entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash-chained audit log and its access-log index (see the module
/// docs).
#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// Appends records to the audit chain on their own (admin actions that
    /// change nothing else the storage keeps).
    async fn audit(&self, records: Vec<AuditRecord>) -> Result<(), StorageError>;

    /// Audit entries from position `from_seq` on, at most `limit`.
    async fn audit_entries(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StorageError>;

    /// The data reads that concern `subject`: reads on the cases they
    /// applied for, and reads of their own record (key = `subject`) in
    /// anyone's case; oldest first, at most `limit`, from position
    /// `from_seq` on.
    async fn access_log(
        &self,
        subject: &str,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StorageError>;
}
