//! [`DatasetReader`] and [`DatasetStore`] on sled: records under
//! `s/dataset NUL key`, imports and replaces through the writer (a
//! replace is one sled batch that removes the old keys and writes the new
//! ones, so a concurrent `get` sees one version or the other).

use async_trait::async_trait;

use super::keys::{DATASETS, key};
use super::writer::Write;
use super::{SledStorage, backend};
use crate::storage::{DatasetReader, DatasetRecord, DatasetStore, StorageError};

#[async_trait]
impl DatasetReader for SledStorage {
    async fn dataset_record(
        &self,
        dataset: &str,
        record_key: &str,
    ) -> Result<Option<String>, StorageError> {
        let k = key(DATASETS, &[dataset.as_bytes(), record_key.as_bytes()]);
        match self.db.get(&k).map_err(backend)? {
            Some(bytes) => {
                String::from_utf8(bytes.to_vec())
                    .map(Some)
                    .map_err(|e| StorageError::Corrupt {
                        key: format!("{dataset}/{record_key}"),
                        message: e.to_string(),
                    })
            }
            None => Ok(None),
        }
    }
}

#[async_trait]
impl DatasetStore for SledStorage {
    async fn import_dataset(
        &self,
        dataset: &str,
        records: Vec<DatasetRecord>,
    ) -> Result<usize, StorageError> {
        let count = records.len();
        self.write(Write::Import(dataset.to_owned(), records))
            .await?;
        Ok(count)
    }

    async fn replace_dataset(
        &self,
        dataset: &str,
        records: Vec<DatasetRecord>,
        actor: &str,
    ) -> Result<usize, StorageError> {
        let count = records.len();
        self.write(Write::Replace {
            dataset: dataset.to_owned(),
            records,
            actor: actor.to_owned(),
        })
        .await?;
        Ok(count)
    }

    async fn has_datasets(&self) -> Result<bool, StorageError> {
        Ok(self.db.scan_prefix(DATASETS).next().is_some())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::storage::{AuditLog, AuditRecord};

    fn records(keys: &[&str], version: &str) -> Vec<DatasetRecord> {
        keys.iter()
            .map(|k| {
                (
                    (*k).to_owned(),
                    format!("{{\"k\":\"{k}\",\"v\":\"{version}\"}}"),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn a_replace_removes_what_the_file_lacks_and_leaves_other_datasets() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SledStorage::open(dir.path()).unwrap();
        storage
            .import_dataset("d/x", records(&["a", "b"], "old"))
            .await
            .unwrap();
        // A dataset whose name starts with the other's is another dataset.
        storage
            .import_dataset("d/xy", records(&["a"], "other"))
            .await
            .unwrap();
        let written = storage
            .replace_dataset("d/x", records(&["b", "c"], "new"), "li.wei")
            .await
            .unwrap();
        assert_eq!(written, 2);
        assert_eq!(storage.dataset_record("d/x", "a").await.unwrap(), None);
        assert!(
            storage
                .dataset_record("d/x", "b")
                .await
                .unwrap()
                .unwrap()
                .contains("new")
        );
        assert!(storage.dataset_record("d/x", "c").await.unwrap().is_some());
        assert!(storage.dataset_record("d/xy", "a").await.unwrap().is_some());
        let last = storage.audit_entries(0, 10).await.unwrap().pop().unwrap();
        assert_eq!(
            last.record,
            AuditRecord::DatasetImport {
                dataset: "d/x".into(),
                records: 2,
                actor: Some("li.wei".into()),
                replaced: Some(2),
            }
        );
    }

    #[tokio::test]
    async fn replaces_in_one_batch_see_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(SledStorage::open(dir.path()).unwrap());
        // Many replaces at once, so that batches form: each writes one key
        // of its own, and each must remove what the ones before it in the
        // batch wrote. Whichever came last, one record is left.
        let mut tasks = Vec::new();
        for n in 0..40 {
            let s = storage.clone();
            tasks.push(tokio::spawn(async move {
                let key = format!("k{n}");
                s.replace_dataset("d/x", records(&[&key], "v"), "op").await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let mut left = 0;
        for n in 0..40 {
            if storage
                .dataset_record("d/x", &format!("k{n}"))
                .await
                .unwrap()
                .is_some()
            {
                left += 1;
            }
        }
        assert_eq!(left, 1);
        // Each replace counted the one record the one before it left.
        let replaced: Vec<usize> = storage
            .audit_entries(0, 100)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.record {
                AuditRecord::DatasetImport { replaced, .. } => replaced,
                _ => None,
            })
            .collect();
        assert_eq!(replaced.len(), 40);
        assert_eq!(replaced.iter().sum::<usize>(), 39, "{replaced:?}");
    }
}
