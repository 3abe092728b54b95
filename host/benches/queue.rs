//! Department queue benchmark (criterion). Method and figures:
//! docs/performance.md.
//!
//! A department with 20,000 finished items and 10 pending ones:
//! - `queue/pending_page`: its pending items, one page, read through the
//!   status index (what `GET /v1/departments/{d}/items?status=pending`
//!   does).
//! - `queue/every_item`: every one of its items read and decoded, which is
//!   what listing the pending ones cost before the status index (a scan of
//!   the department's items, filtered by status).
//!
//! Run: `cargo bench -p onething-host --bench queue`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};

use onething_host::model::{Due, ItemStatus, WorkItem};
use onething_host::storage::Commit;
use onething_host::storage::prelude::*;
use onething_host::storage::sled::SledStorage;

#[path = "common/mod.rs"]
mod common;

const FINISHED: usize = 20_000;
const PENDING: usize = 10;
const PER_CASE: usize = 100;

fn item(n: usize, case_id: &str, status: ItemStatus) -> WorkItem {
    WorkItem {
        id: format!("item-{n:08}"),
        case_id: case_id.into(),
        scenario: "bench".into(),
        department: "public-security".into(),
        task: "household-registration".into(),
        payload: serde_json::json!({"child_name": "赵一诺", "household_id": "HH-1"}),
        status,
        due: Due::WorkingDays(5),
        due_at: Utc::now(),
        created_at: Utc::now(),
        finished_at: None,
        result: (status == ItemStatus::Completed)
            .then(|| serde_json::json!({"household_no": "H-0001"})),
        reason: None,
        overdue_at: None,
        priority: Default::default(),
        place: None,
        office: None,
        handled_by: None,
        escalation: None,
        escalated_from: Vec::new(),
        note: None,
        report_due: None,
        report_due_at: None,
        reported_at: None,
        reported_by: None,
        report_missed_by: Vec::new(),
    }
}

fn commit(n: usize, items: Vec<WorkItem>) -> Commit {
    common::commit(format!("case-{n:08}"), items)
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = SledStorage::open(dir.path()).unwrap();
    rt.block_on(async {
        let total = FINISHED + PENDING;
        for start in (0..total).step_by(PER_CASE) {
            let items = (start..(start + PER_CASE).min(total))
                .map(|n| {
                    // The pending ones are spread among the finished.
                    let pending = n % (total / PENDING) == 0;
                    let status = if pending {
                        ItemStatus::Pending
                    } else {
                        ItemStatus::Completed
                    };
                    item(n, &format!("case-{start:08}"), status)
                })
                .collect();
            storage.commit(commit(start, items)).await.unwrap();
        }
    });
    let mut group = c.benchmark_group("queue");
    group.bench_function("pending_page", |b| {
        b.iter(|| {
            let page = rt
                .block_on(storage.department_items(
                    "public-security",
                    Some(ItemStatus::Pending),
                    None,
                    501,
                ))
                .unwrap();
            assert_eq!(page.len(), PENDING);
        })
    });
    group.sample_size(10);
    group.bench_function("every_item", |b| {
        b.iter(|| {
            let all = rt
                .block_on(storage.department_items("public-security", None, None, usize::MAX))
                .unwrap();
            let pending = all
                .iter()
                .filter(|i| i.status == ItemStatus::Pending)
                .count();
            assert_eq!(pending, PENDING);
        })
    });
    group.finish();
}

criterion_group!(queue_benches, benches);
criterion_main!(queue_benches);
