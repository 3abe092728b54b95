//! [`AuditLog`] on sled: entries under `a/seq` (big endian, so in order),
//! the access-log index under `x/subject NUL seq`; appends go through the
//! writer, which alone moves the chain's head.

use async_trait::async_trait;

use super::keys::{ACCESS, AUDIT, key};
use super::writer::Write;
use super::{SledStorage, backend, decode};
use crate::storage::{AuditEntry, AuditLog, AuditRecord, StorageError};

#[async_trait]
impl AuditLog for SledStorage {
    async fn audit(&self, records: Vec<AuditRecord>) -> Result<(), StorageError> {
        self.write(Write::Registry(Vec::new(), records)).await
    }

    async fn audit_entries(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StorageError> {
        let start = key(AUDIT, &[&from_seq.to_be_bytes()]);
        let mut entries = Vec::new();
        for entry in self.db.range(start..).take(limit) {
            let (k, bytes) = entry.map_err(backend)?;
            if !k.starts_with(AUDIT) {
                break;
            }
            entries.push(decode(&k, &bytes)?);
        }
        Ok(entries)
    }

    async fn access_log(
        &self,
        subject: &str,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StorageError> {
        let start = key(ACCESS, &[subject.as_bytes(), &from_seq.to_be_bytes()]);
        let prefix = key(ACCESS, &[subject.as_bytes(), b""]);
        let mut entries = Vec::new();
        for index in self.db.range(start..) {
            let (k, _) = index.map_err(backend)?;
            if !k.starts_with(&prefix) || entries.len() >= limit {
                break;
            }
            let Some(seq) = k.get(prefix.len()..) else {
                continue;
            };
            if let Some(bytes) = self.db.get(key(AUDIT, &[seq])).map_err(backend)? {
                entries.push(decode(&k, &bytes)?);
            }
        }
        Ok(entries)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::super::fixtures::commit;
    use super::super::keys::ACCESS_INDEXED;
    use super::*;
    use crate::storage::CaseStore;

    #[tokio::test]
    async fn an_older_audit_log_is_indexed_for_access_logs_once() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SledStorage::open(dir.path()).unwrap();
        let mut with_read = commit("case-r", None, 0, None);
        with_read.audit.push(AuditRecord::DataRead {
            plugin: "s".into(),
            version: "1.0.0".into(),
            case_id: "case-r".into(),
            applicant: "A".into(),
            dataset: "d/x".into(),
            key: "B".into(),
            purpose: "p".into(),
            allowed: true,
            about: None,
        });
        storage.commit(with_read).await.unwrap();
        assert_eq!(storage.access_log("B", 0, 10).await.unwrap().len(), 1);
        drop(storage);
        // As a data dir written before the index: no index, no flag.
        {
            let db = sled::open(dir.path().join("db")).unwrap();
            for k in db.scan_prefix(ACCESS).keys() {
                db.remove(k.unwrap()).unwrap();
            }
            db.remove(ACCESS_INDEXED).unwrap();
            db.flush().unwrap();
        }
        let storage = SledStorage::open(dir.path()).unwrap();
        for subject in ["A", "B"] {
            let log = storage.access_log(subject, 0, 10).await.unwrap();
            assert_eq!(log.len(), 1, "{subject}");
            assert_eq!(log[0].seq, 2);
        }
        assert!(storage.access_log("C", 0, 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_audit_chain_continues_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let storage = SledStorage::open(dir.path()).unwrap();
            storage.commit(commit("a", None, 0, None)).await.unwrap();
        }
        let storage = SledStorage::open(dir.path()).unwrap();
        storage.commit(commit("b", None, 0, None)).await.unwrap();
        let entries = storage.audit_entries(0, 10).await.unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].prev_hash, entries[0].hash);
        assert!(storage.case("a").await.unwrap().is_some());
    }
}
