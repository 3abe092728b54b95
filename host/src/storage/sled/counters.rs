//! [`CounterStore`] on sled: each counter is one key, its value an `i64`
//! (8 bytes, big endian). All-time counters are
//! `b/<scope> NUL <department> NUL <metric>`, monthly ones
//! `B/<YYYY-MM> NUL <scope> NUL <department> NUL <metric>`, so the overview
//! of one place is one prefix scan (`b/<scope> NUL`) and a month's figures
//! of one place another. The writer applies each commit's deltas in the
//! commit's batch (`writer.rs`); a recount runs on the writer thread too,
//! so no commit lands between its scan and its write.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::keys::{CASES, ITEMS, key};
use super::writer::{Pending, Write};
use super::{SledStorage, backend, decode};
use crate::ops::counters::{
    CaseFacts, CounterKey, Deltas, ItemFacts, contribute_case, contribute_item,
};
use crate::storage::{CounterStore, Recount, StorageError};

/// All-time counters.
pub(super) const COUNTERS: &[u8] = b"b/";
/// Monthly counters.
pub(super) const MONTHLY: &[u8] = b"B/";
/// Set once the counters of an older data dir were counted (at open).
pub(super) const COUNTED: &[u8] = b"m/counters_v1";

/// The key of a counter.
pub(super) fn counter_key(k: &CounterKey) -> Vec<u8> {
    let tail = [
        k.scope.as_bytes(),
        k.department.as_bytes(),
        k.metric.as_bytes(),
    ];
    if k.month.is_empty() {
        key(COUNTERS, &tail)
    } else {
        let mut parts = vec![k.month.as_bytes()];
        parts.extend(tail);
        key(MONTHLY, &parts)
    }
}

/// The counter a key names, if it is one.
fn parse_key(k: &[u8]) -> Option<CounterKey> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if let Some(rest) = k.strip_prefix(COUNTERS) {
        let mut parts = rest.split(|b| *b == 0);
        return Some(CounterKey {
            scope: text(parts.next()?),
            department: text(parts.next()?),
            metric: text(parts.next()?),
            month: String::new(),
        });
    }
    let rest = k.strip_prefix(MONTHLY)?;
    let mut parts = rest.split(|b| *b == 0);
    let month = text(parts.next()?);
    Some(CounterKey {
        scope: text(parts.next()?),
        department: text(parts.next()?),
        metric: text(parts.next()?),
        month,
    })
}

fn value(bytes: &[u8]) -> i64 {
    <[u8; 8]>::try_from(bytes).map_or(0, i64::from_be_bytes)
}

/// Stages `deltas` on the counters as `current` (the batch so far over the
/// tree) has them; a counter that reaches zero is removed.
pub(super) fn stage_deltas(
    deltas: &Deltas,
    mut current: impl FnMut(&[u8]) -> Result<Option<Vec<u8>>, StorageError>,
    own: &mut Pending,
) -> Result<(), StorageError> {
    for (counter, change) in deltas.changes() {
        let k = counter_key(counter);
        let now = current(&k)?.map_or(0, |v| value(&v)) + change;
        if now == 0 {
            own.remove(k);
        } else {
            own.insert(k, now.to_be_bytes().to_vec());
        }
    }
    Ok(())
}

/// Every key and value under `prefix` as the batch so far (`pending`)
/// leaves the tree.
fn scan(
    db: &sled::Db,
    pending: &Pending,
    prefix: &[u8],
) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, StorageError> {
    let mut out = BTreeMap::new();
    for entry in db.scan_prefix(prefix) {
        let (k, v) = entry.map_err(backend)?;
        out.insert(k.to_vec(), v.to_vec());
    }
    for (k, v) in &pending.written {
        if k.starts_with(prefix) {
            match v {
                Some(v) => out.insert(k.clone(), v.clone()),
                None => out.remove(k),
            };
        }
    }
    Ok(out)
}

/// Counts every case and item from nothing and, unless `check_only`,
/// stages the counters to be exactly that. Runs on the writer thread.
pub(super) fn stage_recount(
    db: &sled::Db,
    pending: &Pending,
    own: &mut Pending,
    offset_minutes: i32,
    check_only: bool,
) -> Result<Recount, StorageError> {
    let mut deltas = Deltas::new(offset_minutes);
    let mut report = Recount::default();
    for (k, v) in scan(db, pending, CASES)? {
        contribute_case(&decode::<CaseFacts>(&k, &v)?, 1, &mut deltas);
        report.cases += 1;
    }
    for (k, v) in scan(db, pending, ITEMS)? {
        contribute_item(&decode::<ItemFacts>(&k, &v)?, 1, &mut deltas);
        report.items += 1;
    }
    let mut want: BTreeMap<Vec<u8>, i64> = deltas
        .changes()
        .map(|(counter, v)| (counter_key(counter), v))
        .collect();
    report.counters = want.len() as u64;
    let mut stored = scan(db, pending, COUNTERS)?;
    stored.extend(scan(db, pending, MONTHLY)?);
    for (k, v) in &stored {
        match want.remove(k) {
            Some(expected) if expected == value(v) => {}
            Some(expected) => {
                report.differing += 1;
                if !check_only {
                    own.insert(k.clone(), expected.to_be_bytes().to_vec());
                }
            }
            None => {
                report.differing += 1;
                if !check_only {
                    own.remove(k.clone());
                }
            }
        }
    }
    report.differing += want.len() as u64;
    if !check_only {
        for (k, v) in want {
            own.insert(k, v.to_be_bytes().to_vec());
        }
        own.insert(COUNTED.to_vec(), Vec::new());
    }
    Ok(report)
}

/// Counts an older data dir's cases once, at open, before the writer
/// starts (a fresh one is only marked).
pub(super) fn backfill_counters(db: &sled::Db, offset_minutes: i32) -> Result<(), StorageError> {
    if db.get(COUNTED).map_err(backend)?.is_some() {
        return Ok(());
    }
    let mut own = Pending::default();
    let report = stage_recount(db, &Pending::default(), &mut own, offset_minutes, false)?;
    let mut batch = sled::Batch::default();
    for (k, v) in own.written {
        match v {
            Some(v) => batch.insert(k, v),
            None => batch.remove(k),
        }
    }
    db.apply_batch(batch).map_err(backend)?;
    db.flush().map_err(backend)?;
    if report.cases > 0 {
        tracing::info!(
            cases = report.cases,
            items = report.items,
            "counted the one-screen counters of an older data dir"
        );
    }
    Ok(())
}

/// Where the writer leaves a recount's report.
pub(super) type RecountSlot = Arc<Mutex<Option<Recount>>>;

impl SledStorage {
    fn read_prefix(&self, prefix: &[u8]) -> Result<Vec<(CounterKey, i64)>, StorageError> {
        let mut out = Vec::new();
        for entry in self.db.scan_prefix(prefix) {
            let (k, v) = entry.map_err(backend)?;
            if let Some(counter) = parse_key(&k) {
                out.push((counter, value(&v)));
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl CounterStore for SledStorage {
    async fn counters_at(&self, scope: &str) -> Result<Vec<(CounterKey, i64)>, StorageError> {
        self.read_prefix(&key(COUNTERS, &[scope.as_bytes(), b""]))
    }

    async fn monthly_counters_at(
        &self,
        month: &str,
        scope: &str,
    ) -> Result<Vec<(CounterKey, i64)>, StorageError> {
        self.read_prefix(&key(MONTHLY, &[month.as_bytes(), scope.as_bytes(), b""]))
    }

    async fn recount(&self, check_only: bool) -> Result<Recount, StorageError> {
        let slot = RecountSlot::default();
        self.write(Write::Recount {
            check_only,
            report: slot.clone(),
        })
        .await?;
        let report = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        report.ok_or_else(|| StorageError::Backend("the recount left no report".into()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::ItemStatus;
    use crate::storage::CaseStore;
    use crate::storage::sled::fixtures;

    fn done_at(counters: &[(CounterKey, i64)], metric: &str) -> i64 {
        counters
            .iter()
            .find(|(k, _)| k.department.is_empty() && k.metric == metric)
            .map_or(0, |(_, v)| *v)
    }

    /// A case at cq/yubei with one item there, committed pending and then
    /// completed.
    async fn one_finished_item(storage: &SledStorage) {
        let mut item = fixtures::item(1, "c1", ItemStatus::Pending);
        item.office = Some("cq/yubei".into());
        let mut first = fixtures::commit("c1", None, 1, None);
        first.case.place = Some("cq/yubei".into());
        first.items = vec![item.clone()];
        storage.commit(first).await.unwrap();
        item.status = ItemStatus::Completed;
        item.finished_at = Some(item.created_at);
        let mut second = fixtures::commit("c1", Some(1), 2, None);
        second.case.place = Some("cq/yubei".into());
        second.items = vec![item];
        storage.commit(second).await.unwrap();
    }

    #[tokio::test]
    async fn commits_keep_the_counters_and_a_recount_repairs_damaged_ones() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SledStorage::open(dir.path()).unwrap();
        one_finished_item(&storage).await;
        let city = storage.counters_at("cq").await.unwrap();
        assert_eq!(done_at(&city, "items.done"), 1);
        assert_eq!(done_at(&city, "items.pending"), 0, "removed at zero");
        assert_eq!(done_at(&city, "cases.in-progress"), 1);
        assert_eq!(storage.recount(true).await.unwrap().differing, 0);

        let wrong = |metric: &str| CounterKey {
            scope: "cq".into(),
            department: String::new(),
            metric: metric.into(),
            month: String::new(),
        };
        for metric in ["items.done", "items.bogus"] {
            storage
                .db
                .insert(counter_key(&wrong(metric)), 5_i64.to_be_bytes().to_vec())
                .unwrap();
        }
        let checked = storage.recount(true).await.unwrap();
        assert_eq!((checked.differing, checked.cases, checked.items), (2, 1, 1));
        assert_eq!(
            done_at(&storage.counters_at("cq").await.unwrap(), "items.done"),
            5,
            "a check writes nothing"
        );
        assert_eq!(storage.recount(false).await.unwrap().differing, 2);
        let repaired = storage.counters_at("cq").await.unwrap();
        assert_eq!(done_at(&repaired, "items.done"), 1);
        assert_eq!(done_at(&repaired, "items.bogus"), 0);
        assert_eq!(storage.recount(true).await.unwrap().differing, 0);
    }

    #[tokio::test]
    async fn an_older_data_dir_is_counted_once_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        {
            let storage = SledStorage::open(dir.path()).unwrap();
            one_finished_item(&storage).await;
            // As a data dir from before the counters: none of them.
            for prefix in [COUNTERS, MONTHLY, COUNTED] {
                for k in storage.db.scan_prefix(prefix).keys() {
                    storage.db.remove(k.unwrap()).unwrap();
                }
            }
            assert!(storage.counters_at("cq").await.unwrap().is_empty());
            storage.db.flush().unwrap();
        }
        let storage = SledStorage::open(dir.path()).unwrap();
        assert_eq!(
            done_at(
                &storage.counters_at("cq/yubei").await.unwrap(),
                "items.done"
            ),
            1
        );
        assert_eq!(storage.recount(true).await.unwrap().differing, 0);
    }

    #[test]
    fn a_key_reads_back_as_its_counter() {
        for month in ["", "2026-12"] {
            let counter = CounterKey {
                scope: "cq/yubei".into(),
                department: "public-security".into(),
                metric: "items.done".into(),
                month: month.into(),
            };
            assert_eq!(parse_key(&counter_key(&counter)), Some(counter));
        }
        assert_eq!(parse_key(b"c/case"), None);
    }
}
