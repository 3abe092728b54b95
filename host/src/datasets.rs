//! Department datasets: what departments already know, imported as JSON
//! Lines and read by plugins through the `data` interface.
//!
//! An import is all or nothing: every line is parsed and checked before
//! anything is written, and the records are then written in one atomic
//! commit. A malformed line is reported with its line number.
//!
//! Two ways in:
//! - **add** ([`import_file`]): the records are written over the dataset,
//!   replacing those with the same key and leaving the others; offline
//!   (`onething data import --data-dir`, the host stopped: a running host
//!   keeps the data dir locked) and for the demo seed;
//! - **replace** ([`Datasets::replace`], [`replace_file`]): the dataset
//!   becomes exactly the file, the old records removed in the same atomic
//!   write as the new ones are written, audited with the operator. A
//!   running host does this through `PUT /v1/admin/datasets/{department}/{name}`
//!   with no restart: each read of a plugin call sees a record of the old
//!   version or of the new one, never a dataset half replaced, and the
//!   call after the answer reads the new one.

use std::path::Path;
use std::sync::Arc;

use crate::storage::{DatasetRecord, Storage, StorageError};

/// The demo datasets, loaded on the first start of an empty data dir so that
/// the quick start works with no set-up: `(dataset, key field, JSON Lines)`.
pub const DEMO_DATASETS: &[(&str, &str, &str)] = &[
    (
        "health/birth-certificates",
        "certificate_no",
        include_str!("../demo/health/birth-certificates.jsonl"),
    ),
    (
        "public-security/residents",
        "id_number",
        include_str!("../demo/public-security/residents.jsonl"),
    ),
    (
        "medical-insurance/enrolments",
        "id_number",
        include_str!("../demo/medical-insurance/enrolments.jsonl"),
    ),
];

/// Why an import was refused. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The dataset name is not `DEPARTMENT/NAME`.
    #[error(
        "dataset `{0}` must be DEPARTMENT/NAME, each lowercase letters, digits and `-` (e.g. health/birth-certificates)"
    )]
    BadName(String),
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not a JSON object with the key field.
    #[error("line {line}: {message}; nothing was imported")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The file has no records.
    #[error("the file has no records; nothing was imported")]
    Empty,
    /// The body is not UTF-8 text.
    #[error("the file is not UTF-8 text; nothing was imported")]
    NotText,
    /// Writing failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Checks a dataset name.
pub fn check_dataset_name(dataset: &str) -> Result<(), ImportError> {
    match dataset.split_once('/') {
        Some((department, name))
            if onething_registry::is_name(department) && onething_registry::is_name(name) =>
        {
            Ok(())
        }
        _ => Err(ImportError::BadName(dataset.to_owned())),
    }
}

/// Parses JSON Lines into records keyed by `key_field`. Blank lines are
/// skipped; a later line with the same key replaces an earlier one. The key
/// may be a string or an integer.
pub fn parse_jsonl(text: &str, key_field: &str) -> Result<Vec<DatasetRecord>, ImportError> {
    let mut records = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| ImportError::Line {
                line: line_no,
                message: format!("not valid JSON ({e})"),
            })?;
        let Some(object) = value.as_object() else {
            return Err(ImportError::Line {
                line: line_no,
                message: "not a JSON object".into(),
            });
        };
        let key = match object.get(key_field) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
            Some(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
            Some(_) => {
                return Err(ImportError::Line {
                    line: line_no,
                    message: format!(
                        "key field `{key_field}` must be a non-empty string or an integer"
                    ),
                });
            }
            None => {
                return Err(ImportError::Line {
                    line: line_no,
                    message: format!("key field `{key_field}` is missing"),
                });
            }
        };
        records.push((key, value.to_string()));
    }
    if records.is_empty() {
        return Err(ImportError::Empty);
    }
    Ok(records)
}

/// Imports a JSON Lines file into `dataset`, all or nothing.
pub async fn import_file(
    storage: &dyn Storage,
    dataset: &str,
    path: &Path,
    key_field: &str,
) -> Result<usize, ImportError> {
    let records = read_file(dataset, path, key_field).await?;
    Ok(storage.import_dataset(dataset, records).await?)
}

/// Replaces `dataset` with the records of a JSON Lines file, all or
/// nothing, for `actor` (offline: `onething data import --replace`).
pub async fn replace_file(
    storage: &dyn Storage,
    dataset: &str,
    path: &Path,
    key_field: &str,
    actor: &str,
) -> Result<usize, ImportError> {
    let records = read_file(dataset, path, key_field).await?;
    Ok(storage.replace_dataset(dataset, records, actor).await?)
}

/// The records of a JSON Lines file for `dataset` (whose name is checked).
async fn read_file(
    dataset: &str,
    path: &Path,
    key_field: &str,
) -> Result<Vec<DatasetRecord>, ImportError> {
    check_dataset_name(dataset)?;
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|source| ImportError::Read {
            path: path.display().to_string(),
            source,
        })?;
    parse_jsonl(&text, key_field)
}

/// Department datasets on a running host: what the admin API's refresh
/// reaches.
pub struct Datasets {
    storage: Arc<dyn Storage>,
}

impl Datasets {
    /// Datasets kept in `storage`.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Datasets { storage }
    }

    /// Replaces `dataset` with the JSON Lines `body` (records keyed by
    /// `key_field`) for `actor`: every line checked before anything is
    /// written, then the old records removed and the new ones written in
    /// one atomic, audited write. Returns how many records it now holds.
    pub async fn replace(
        &self,
        dataset: &str,
        key_field: &str,
        body: &[u8],
        actor: &str,
    ) -> Result<usize, ImportError> {
        check_dataset_name(dataset)?;
        let text = std::str::from_utf8(body).map_err(|_| ImportError::NotText)?;
        let records = parse_jsonl(text, key_field)?;
        let count = self
            .storage
            .replace_dataset(dataset, records, actor)
            .await?;
        tracing::info!(dataset, records = count, actor, "dataset replaced");
        Ok(count)
    }
}

/// Loads the demo datasets if no dataset was ever imported. Returns whether
/// it did.
pub async fn seed_demo(storage: &dyn Storage) -> Result<bool, ImportError> {
    if storage.has_datasets().await? {
        return Ok(false);
    }
    for (dataset, key, text) in DEMO_DATASETS {
        let records = parse_jsonl(text, key)?;
        let count = storage.import_dataset(dataset, records).await?;
        tracing::info!(dataset, count, "demo dataset loaded");
    }
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_line_is_named_by_number() {
        let text = "{\"id\":\"a\"}\n\n{\"id\":\"b\"\n";
        let err = parse_jsonl(text, "id").unwrap_err();
        assert!(matches!(err, ImportError::Line { line: 3, .. }), "{err}");
        assert!(err.to_string().starts_with("line 3:"), "{err}");
    }

    #[test]
    fn a_missing_key_is_named() {
        let err = parse_jsonl("{\"id\":\"a\"}\n{\"name\":\"x\"}\n", "id").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(err.to_string().contains("`id` is missing"), "{err}");
    }

    #[test]
    fn integer_keys_become_text() {
        let records = parse_jsonl("{\"n\":42,\"x\":1}\n", "n").unwrap();
        assert_eq!(records[0].0, "42");
    }

    #[test]
    fn dataset_names_are_checked() {
        assert!(check_dataset_name("health/birth-certificates").is_ok());
        assert!(check_dataset_name("health").is_err());
        assert!(check_dataset_name("Health/x").is_err());
        assert!(check_dataset_name("health/x/y").is_err());
    }

    proptest::proptest! {
        /// Any file is either imported whole or refused with a line number
        /// that exists in it; parsing never panics.
        #[test]
        fn any_text_is_parsed_or_refused_by_line(text in "(.{0,40}\n){0,12}") {
            match parse_jsonl(&text, "id") {
                Ok(records) => proptest::prop_assert!(!records.is_empty()),
                Err(ImportError::Line { line, .. }) => {
                    proptest::prop_assert!(line >= 1 && line <= text.lines().count());
                }
                Err(ImportError::Empty) => {}
                Err(other) => proptest::prop_assert!(false, "unexpected {other}"),
            }
        }
    }

    #[test]
    fn the_demo_data_parses() {
        for (dataset, key, text) in DEMO_DATASETS {
            check_dataset_name(dataset).unwrap();
            assert!(!parse_jsonl(text, key).unwrap().is_empty());
        }
    }
}
