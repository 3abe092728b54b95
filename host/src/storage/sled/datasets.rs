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
