//! Data dirs written before an index existed are indexed once, at open:
//! each backfill scans the records, writes the index keys it finds and a
//! flag, in one durable batch, and is skipped when the flag is there.

use serde::Deserialize;

use super::keys::{
    ACCESS_INDEXED, AUDIT, CASES, CASES_INDEXED, ITEMS, access_keys, index_case, index_item,
};
use super::writer::Pending;
use super::{backend, decode};
use crate::model::WorkItem;
use crate::storage::{AuditEntry, StorageError};

/// Indexes the items and cases of an older data dir, once.
pub(super) fn backfill_case_indexes(db: &sled::Db) -> Result<(), StorageError> {
    #[derive(Deserialize)]
    struct Pin {
        id: String,
        scenario: String,
        plugin_version: String,
        status: crate::model::CaseStatus,
    }
    if db.get(CASES_INDEXED).map_err(backend)?.is_some() {
        return Ok(());
    }
    let mut staged = Pending::default();
    for entry in db.scan_prefix(ITEMS) {
        let (k, bytes) = entry.map_err(backend)?;
        let item: WorkItem = decode(&k, &bytes)?;
        index_item(&item, None, &mut staged);
    }
    for entry in db.scan_prefix(CASES) {
        let (k, bytes) = entry.map_err(backend)?;
        let case: Pin = decode(&k, &bytes)?;
        let open = !case.status.is_final();
        index_case(
            &case.scenario,
            &case.plugin_version,
            &case.id,
            // Cases from before subjects name none.
            None,
            open,
            &mut staged,
        );
    }
    let keys = staged
        .written
        .into_iter()
        .filter_map(|(k, v)| v.is_some().then_some(k));
    write_backfill(db, keys, CASES_INDEXED, "the items and cases by status")
}

/// Writes the index keys a backfill found and its flag, in one durable
/// batch.
fn write_backfill(
    db: &sled::Db,
    keys: impl Iterator<Item = Vec<u8>>,
    flag: &[u8],
    what: &str,
) -> Result<(), StorageError> {
    let mut batch = sled::Batch::default();
    let mut indexed = 0usize;
    for k in keys {
        batch.insert(k, Vec::new());
        indexed += 1;
    }
    batch.insert(flag, Vec::new());
    db.apply_batch(batch).map_err(backend)?;
    db.flush().map_err(backend)?;
    if indexed > 0 {
        tracing::info!(indexed, "indexed {what} of an older data dir");
    }
    Ok(())
}

/// Indexes the reads of an older data dir's audit log, once.
pub(super) fn backfill_access_index(db: &sled::Db) -> Result<(), StorageError> {
    if db.get(ACCESS_INDEXED).map_err(backend)?.is_some() {
        return Ok(());
    }
    let mut keys = Vec::new();
    for entry in db.scan_prefix(AUDIT) {
        let (k, bytes) = entry.map_err(backend)?;
        let entry: AuditEntry = decode(&k, &bytes)?;
        keys.extend(access_keys(&entry));
    }
    write_backfill(
        db,
        keys.into_iter(),
        ACCESS_INDEXED,
        "the audit log's data reads for access logs",
    )
}
