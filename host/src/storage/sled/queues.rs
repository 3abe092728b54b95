//! [`QueueStore`] on sled: a department's queue is a range scan of its
//! queue index (`q/department NUL status NUL item id`), an office's queue
//! over its subtree one of the office index (`w/department NUL place NUL
//! status NUL item id`, a key per place at and above the owner office),
//! the items due a
//! scan of the due index (`u/` due time in ms, big endian) merged with one
//! of the report index (`d/` report deadline in ms, hex), and only the
//! items returned are read.

use async_trait::async_trait;
use chrono::Utc;

use super::keys::{
    DUE, ESCALATED, HELD, ITEMS, OFFICE_QUEUE, QUEUE, REPORT_DUE, key, parse_report_key,
    report_key_at,
};
use super::{SledStorage, backend};
use crate::model::{ItemStatus, WorkItem};
use crate::storage::{OfficeStatus, QueueStore, StorageError};

#[async_trait]
impl QueueStore for SledStorage {
    async fn department_items(
        &self,
        department: &str,
        status: Option<ItemStatus>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WorkItem>, StorageError> {
        let statuses = match status {
            Some(status) => vec![status.as_str()],
            None => ItemStatus::ALL.iter().map(|s| s.as_str()).collect(),
        };
        self.queue_page(QUEUE, &[department.as_bytes()], &statuses, after, limit)
            .map(|items| keep_status(items, status))
    }

    async fn office_items(
        &self,
        department: &str,
        place: &str,
        status: Option<OfficeStatus>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WorkItem>, StorageError> {
        let statuses = match status {
            Some(OfficeStatus::Is(status)) => vec![status.as_str()],
            Some(OfficeStatus::Escalated) => vec![ESCALATED],
            None => ItemStatus::ALL
                .iter()
                .map(|s| s.as_str())
                .chain([ESCALATED])
                .collect(),
        };
        let items = self.queue_page(
            OFFICE_QUEUE,
            &[department.as_bytes(), place.as_bytes()],
            &statuses,
            after,
            limit,
        )?;
        Ok(match status {
            Some(OfficeStatus::Is(status)) => keep_status(items, Some(status)),
            _ => items,
        })
    }

    async fn held_items(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WorkItem>, StorageError> {
        let start = match after {
            Some(after) => key(HELD, &[after.as_bytes(), b""]),
            None => HELD.to_vec(),
        };
        let mut found = Vec::new();
        for entry in self.db.range(start..).keys() {
            if found.len() >= limit {
                break;
            }
            let k = entry.map_err(backend)?;
            let Some(item_id) = k.strip_prefix(HELD) else {
                break;
            };
            match self.get::<WorkItem>(&key(ITEMS, &[item_id]))? {
                Some(item) if item.status == ItemStatus::Held => found.push(item),
                _ => {}
            }
        }
        Ok(found)
    }

    async fn items_due(
        &self,
        by: chrono::DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<WorkItem>, StorageError> {
        let until = u64::try_from(by.timestamp_millis()).unwrap_or(0);
        let mut found = Vec::new();
        for entry in self.db.scan_prefix(DUE) {
            let (k, _) = entry.map_err(backend)?;
            let rest = &k[DUE.len()..];
            let (Some(millis), Some(item_id)) = (rest.get(..8), rest.get(9..)) else {
                continue;
            };
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(millis);
            if u64::from_be_bytes(bytes) > until || found.len() >= limit {
                break;
            }
            if let Some(item) = self.get::<WorkItem>(&key(ITEMS, &[item_id]))? {
                found.push(item);
            }
        }
        // The report deadlines (报到) passed by then, merged by time.
        let mut reports = Vec::new();
        // Up to and including `by`'s millisecond.
        let end = report_key_at("", by + chrono::Duration::milliseconds(1));
        for entry in self.db.range(REPORT_DUE.to_vec()..end).keys() {
            if reports.len() >= limit {
                break;
            }
            let k = entry.map_err(backend)?;
            let Some((_, item_id)) = parse_report_key(&k) else {
                continue;
            };
            if found.iter().any(|i| i.id.as_bytes() == item_id) {
                continue;
            }
            if let Some(item) = self.get::<WorkItem>(&key(ITEMS, &[item_id]))?
                && let Some(at) = item.report_deadline()
            {
                reports.push((at, item));
            }
        }
        if reports.is_empty() {
            return Ok(found);
        }
        let mut all: Vec<_> = found.into_iter().map(|i| (i.due_at, i)).collect();
        all.extend(reports);
        all.sort_by_key(|(at, _)| *at);
        all.truncate(limit);
        Ok(all.into_iter().map(|(_, item)| item).collect())
    }
}

impl SledStorage {
    /// A page of a queue index (`index` then `parts`, then status and item
    /// id): the ids of the page in each status asked for, merged by id
    /// when no status is, then only those items read.
    fn queue_page(
        &self,
        index: &[u8],
        parts: &[&[u8]],
        statuses: &[&str],
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WorkItem>, StorageError> {
        let mut ids = Vec::new();
        for status in statuses {
            let mut key_parts = parts.to_vec();
            key_parts.push(status.as_bytes());
            key_parts.push(b"");
            let prefix = key(index, &key_parts);
            // The smallest key after `after`'s is `after`'s with a NUL added.
            let start = match after {
                Some(after) => key(&prefix, &[after.as_bytes(), b""]),
                None => prefix.clone(),
            };
            for entry in self.db.range(start..).keys().take(limit) {
                let k = entry.map_err(backend)?;
                match k.strip_prefix(prefix.as_slice()) {
                    Some(item_id) => ids.push(item_id.to_vec()),
                    None => break,
                }
            }
        }
        // An item that changed status between two range reads is in both.
        ids.sort_unstable();
        ids.dedup();
        ids.truncate(limit);
        let mut found = Vec::with_capacity(ids.len());
        for item_id in ids {
            if let Some(item) = self.get::<WorkItem>(&key(ITEMS, &[&item_id]))? {
                found.push(item);
            }
        }
        Ok(found)
    }
}

/// The items still of `status`: one whose status changed since its key
/// was read is left for the next read to list under its new status.
fn keep_status(mut items: Vec<WorkItem>, status: Option<ItemStatus>) -> Vec<WorkItem> {
    if let Some(status) = status {
        items.retain(|item| item.status == status);
    }
    items
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::super::fixtures::{commit, item};
    use super::super::keys::{CASES_INDEXED, OFFICE_QUEUE, OPEN, QUEUE};
    use super::*;
    use crate::model::CaseStatus;
    use crate::storage::CaseStore;

    async fn queue(s: &SledStorage, dept: &str, status: Option<ItemStatus>) -> Vec<String> {
        let items = s.department_items(dept, status, None, 100).await.unwrap();
        items.into_iter().map(|i| i.id).collect()
    }

    #[tokio::test]
    async fn queues_and_open_cases_follow_each_write_and_an_older_dir_is_indexed_once() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SledStorage::open(dir.path()).unwrap();
        // Case a: six pending items; case b (version 2.0.0): one.
        let mut a = commit("a", None, 0, None);
        a.items = (0..6).map(|n| item(n, "a", ItemStatus::Pending)).collect();
        storage.commit(a).await.unwrap();
        let mut b = commit("b", None, 0, None);
        b.case.plugin_version = "2.0.0".into();
        b.items = vec![item(7, "b", ItemStatus::Pending)];
        storage.commit(b).await.unwrap();
        // Items 0 and 2 finish one way and the other; case b ends.
        let mut a1 = commit("a", Some(0), 1, None);
        a1.items = vec![
            item(0, "a", ItemStatus::Completed),
            item(2, "a", ItemStatus::Rejected),
        ];
        storage.commit(a1).await.unwrap();
        let mut b1 = commit("b", Some(0), 1, None);
        b1.case.plugin_version = "2.0.0".into();
        b1.case.status = CaseStatus::Completed;
        b1.items = vec![item(7, "b", ItemStatus::Cancelled)];
        storage.commit(b1).await.unwrap();

        let check = |storage: SledStorage| async move {
            use ItemStatus::*;
            assert_eq!(queue(&storage, "even", Some(Pending)).await, ["item-04"]);
            assert_eq!(queue(&storage, "even", Some(Completed)).await, ["item-00"]);
            assert_eq!(queue(&storage, "even", Some(Rejected)).await, ["item-02"]);
            assert_eq!(
                queue(&storage, "even", None).await,
                ["item-00", "item-02", "item-04"]
            );
            assert_eq!(
                queue(&storage, "odd", Some(Pending)).await,
                ["item-01", "item-03", "item-05"]
            );
            assert_eq!(queue(&storage, "odd", Some(Cancelled)).await, ["item-07"]);
            // Each item has one queue key, its current status's: a key left
            // behind by an earlier status would fill pages with nothing.
            let queue_keys: Vec<String> = storage
                .db
                .scan_prefix(QUEUE)
                .keys()
                .map(|k| String::from_utf8_lossy(&k.unwrap()[QUEUE.len()..]).replace('\0', " "))
                .collect();
            assert_eq!(
                queue_keys,
                [
                    "even completed item-00",
                    "even pending item-04",
                    "even rejected item-02",
                    "odd cancelled item-07",
                    "odd pending item-01",
                    "odd pending item-03",
                    "odd pending item-05",
                ]
            );
            // A page starts after the item given and holds at most `limit`.
            let page = storage
                .department_items("odd", Some(Pending), Some("item-01"), 1)
                .await
                .unwrap();
            assert_eq!(page.len(), 1);
            assert_eq!(page[0].id, "item-03");
            // With no status, the pages of every status merge by id.
            let ids = |items: Vec<WorkItem>| items.into_iter().map(|i| i.id).collect::<Vec<_>>();
            let all = storage.department_items("odd", None, Some("item-01"), 3);
            assert_eq!(ids(all.await.unwrap()), ["item-03", "item-05", "item-07"]);
            let all = storage.department_items("odd", None, Some("item-03"), 2);
            assert_eq!(ids(all.await.unwrap()), ["item-05", "item-07"]);
            let all = storage.department_items("even", None, None, 2);
            assert_eq!(ids(all.await.unwrap()), ["item-00", "item-02"]);
            // Only case a is open, on 1.0.0.
            assert_eq!(storage.open_cases().await.unwrap(), 1);
            let open = storage.open_cases_by_version().await.unwrap();
            assert_eq!(
                open.into_iter().collect::<Vec<_>>(),
                [(("s".to_owned(), "1.0.0".to_owned()), 1)]
            );
            storage
        };
        let storage = check(storage).await;
        drop(storage);
        // As a data dir written before the indexes: none, and no flag.
        {
            let db = sled::open(dir.path().join("db")).unwrap();
            for prefix in [QUEUE, OPEN] {
                for k in db.scan_prefix(prefix).keys() {
                    db.remove(k.unwrap()).unwrap();
                }
            }
            db.remove(CASES_INDEXED).unwrap();
            db.flush().unwrap();
        }
        drop(check(SledStorage::open(dir.path()).unwrap()).await);
    }

    #[tokio::test]
    async fn an_office_queue_lists_the_subtree_and_follows_a_moved_item() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SledStorage::open(dir.path()).unwrap();
        let at = |n: usize, office: &str, status: ItemStatus| {
            let mut item = item(n, "a", status);
            item.office = Some(office.into());
            item
        };
        let mut a = commit("a", None, 0, None);
        a.items = vec![
            at(0, "cq/yubei/longxi/g07", ItemStatus::Pending),
            at(2, "cq/yubei", ItemStatus::Pending),
            at(4, "cq/jiangbei", ItemStatus::Pending),
        ];
        storage.commit(a).await.unwrap();
        let storage = std::sync::Arc::new(storage);
        let page = |place: &'static str, status: Option<ItemStatus>| {
            let storage = storage.clone();
            async move {
                let items = storage
                    .office_items("even", place, status.map(OfficeStatus::Is), None, 100)
                    .await
                    .unwrap();
                items.into_iter().map(|i| i.id).collect::<Vec<_>>()
            }
        };
        use ItemStatus::*;
        assert_eq!(page("cq", None).await, ["item-00", "item-02", "item-04"]);
        assert_eq!(
            page("cq/yubei", Some(Pending)).await,
            ["item-00", "item-02"]
        );
        assert_eq!(page("cq/yubei/longxi/g07", None).await, ["item-00"]);
        assert!(
            page("cq/yubei/longxi/g0", None).await.is_empty(),
            "whole slugs only"
        );
        // Item 0 moves up to the town and is completed there: the grid's
        // keys go, the town's come, and no key of its old status stays.
        let mut a1 = commit("a", Some(0), 1, None);
        let mut moved = at(0, "cq/yubei/longxi", Completed);
        moved.escalated_from = vec!["cq/yubei/longxi/g07".into()];
        a1.items = vec![moved];
        storage.commit(a1).await.unwrap();
        assert!(page("cq/yubei/longxi/g07", Some(Pending)).await.is_empty());
        let escalated = storage
            .office_items(
                "even",
                "cq/yubei/longxi/g07",
                Some(OfficeStatus::Escalated),
                None,
                10,
            )
            .await
            .unwrap();
        assert_eq!(escalated.len(), 1, "the grid sees what moved up from it");
        assert_eq!(page("cq/yubei/longxi", Some(Completed)).await, ["item-00"]);
        assert_eq!(page("cq/yubei", Some(Pending)).await, ["item-02"]);
        assert_eq!(page("cq", Some(Completed)).await, ["item-00"]);
        let keys = storage.db.scan_prefix(OFFICE_QUEUE).keys().count();
        assert_eq!(
            keys,
            3 + 2 + 2 + 1,
            "one key per place at and above each owner office, one per office it left"
        );
        // Its old deadline left the due index with it.
        assert_eq!(storage.db.scan_prefix(DUE).count(), 2);
    }

    #[tokio::test]
    async fn whistle_the_report_index_holds_exactly_the_untaken_report_deadlines() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SledStorage::open(dir.path()).unwrap();
        let now = Utc::now();
        let reports = |s: &SledStorage| s.db.scan_prefix(REPORT_DUE).count();
        // A key of the old department index under `d/` is never read.
        storage.db.insert(b"d/civil-affairs\0old", b"").unwrap();
        let mut untaken = item(1, "a", ItemStatus::Pending);
        untaken.due_at = now + chrono::Duration::hours(10);
        untaken.report_due = Some(crate::model::Due::Minutes(30));
        untaken.report_due_at = Some(now - chrono::Duration::minutes(1));
        let mut a = commit("a", None, 0, None);
        a.items = vec![untaken.clone()];
        storage.commit(a).await.unwrap();
        let due = storage.items_due(now, 10).await.unwrap();
        assert_eq!(due.len(), 1, "due by its report deadline only");
        assert_eq!(reports(&storage), 2);
        // Moved up with a new report deadline: the old key goes.
        untaken.report_missed_by = vec!["x".into()];
        untaken.report_due_at = Some(now + chrono::Duration::minutes(30));
        let mut a1 = commit("a", Some(0), 1, None);
        a1.items = vec![untaken.clone()];
        storage.commit(a1).await.unwrap();
        assert!(storage.items_due(now, 10).await.unwrap().is_empty());
        assert_eq!(reports(&storage), 2);
        // Taken: no key left but the old one.
        untaken.reported_at = Some(now);
        let mut a2 = commit("a", Some(1), 2, None);
        a2.items = vec![untaken];
        storage.commit(a2).await.unwrap();
        assert_eq!(reports(&storage), 1);
    }
}
