//! Office queue benchmark (criterion): an officer's queue over their
//! subtree among a city's items. Method and figures: docs/performance.md.
//!
//! `ITEMS` pending items (default 1,000,000) of one department, owned by
//! the offices of 65,000 grids (Chongqing's shape: 38 districts, 1,031
//! towns, 11,000 communities, each level spread evenly over the one
//! above), dealt to the grids in turn so that every district's items are
//! spread over the whole id range.
//! - `office_queue/district_page`: a district officer's first page (500)
//!   of pending items, one range scan of the district's office-queue keys
//!   (what `GET /v1/departments/{d}/items?status=pending` does for a token
//!   at the district).
//! - `office_queue/district_page_by_filter`: the same page found without
//!   the office index: the department's pending queue read in order and
//!   filtered by office until 500 of the district's are found.
//! - `office_queue/commit_routed` and `office_queue/commit_unrouted`: a
//!   commit of one case with 10 items owned by a grid office (one
//!   department key and five office keys each, one per place from the city
//!   to the grid) and the same unrouted (the department key only): the cost
//!   of the write amplification.
//!
//! Run: `cargo bench -p onething-host --bench office_queue` (building the
//! data dir takes a few minutes; `ITEMS=100000` for a quicker run).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};

use onething_host::model::{Due, ItemStatus, WorkItem};
use onething_host::storage::OfficeStatus;
use onething_host::storage::prelude::*;
use onething_host::storage::sled::SledStorage;

#[path = "common/mod.rs"]
mod common;

const DEPARTMENT: &str = "community-grid";
const PAGE: usize = 500;
const PER_CASE: usize = 1_000;

/// The place id of grid `g`: `cq/dD/tT/cC/gG`, each level spread evenly
/// over the one above.
fn grid(g: usize) -> String {
    let c = g * 11_000 / 65_000;
    let t = c * 1_031 / 11_000;
    let d = t * 38 / 1_031;
    format!("cq/d{d}/t{t}/c{c}/g{g}")
}

fn item(n: usize, case_id: &str, office: Option<String>) -> WorkItem {
    WorkItem {
        id: format!("item-{n:08}"),
        case_id: case_id.into(),
        scenario: "bench".into(),
        department: DEPARTMENT.into(),
        task: "stop-indoor-charging".into(),
        payload: serde_json::json!({"building": "金龙路12号"}),
        status: ItemStatus::Pending,
        due: Due::Minutes(30),
        due_at: Utc::now(),
        created_at: Utc::now(),
        finished_at: None,
        result: None,
        reason: None,
        overdue_at: None,
        priority: Default::default(),
        place: office.clone(),
        office,
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

fn benches(c: &mut Criterion) {
    let total: usize = std::env::var("ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = SledStorage::open(dir.path()).unwrap();
    let started = std::time::Instant::now();
    rt.block_on(async {
        for start in (0..total).step_by(PER_CASE) {
            let items = (start..(start + PER_CASE).min(total))
                .map(|n| item(n, &format!("case-{start:08}"), Some(grid(n % 65_000))))
                .collect();
            storage
                .commit(common::commit(format!("case-{start:08}"), items))
                .await
                .unwrap();
        }
    });
    eprintln!(
        "office_queue: {total} items over 65,000 grids written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // District d17: every item whose grid lies under it.
    let district = "cq/d17";
    let in_district = |i: &WorkItem| {
        i.office
            .as_deref()
            .is_some_and(|o| o.starts_with("cq/d17/"))
    };
    let mut group = c.benchmark_group("office_queue");
    group.bench_function("district_page", |b| {
        b.iter(|| {
            let page = rt
                .block_on(storage.office_items(
                    DEPARTMENT,
                    district,
                    Some(OfficeStatus::Is(ItemStatus::Pending)),
                    None,
                    PAGE,
                ))
                .unwrap();
            assert_eq!(page.len(), PAGE.min(total / 38));
            assert!(page.iter().all(in_district));
        })
    });
    group.sample_size(10);
    group.bench_function("district_page_by_filter", |b| {
        b.iter(|| {
            let mut found = Vec::new();
            let mut after: Option<String> = None;
            while found.len() < PAGE {
                let chunk = rt
                    .block_on(storage.department_items(
                        DEPARTMENT,
                        Some(ItemStatus::Pending),
                        after.as_deref(),
                        1_000,
                    ))
                    .unwrap();
                let Some(last) = chunk.last() else { break };
                after = Some(last.id.clone());
                found.extend(chunk.into_iter().filter(in_district));
            }
            found.truncate(PAGE);
            assert_eq!(found.len(), PAGE.min(total / 38));
        })
    });
    group.sample_size(30);
    let next = AtomicUsize::new(total);
    for (name, routed) in [("commit_routed", true), ("commit_unrouted", false)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let start = next.fetch_add(10, Ordering::Relaxed);
                let items = (start..start + 10)
                    .map(|n| {
                        item(
                            n,
                            &format!("case-{start:08}"),
                            routed.then(|| grid(n % 65_000)),
                        )
                    })
                    .collect();
                rt.block_on(storage.commit(common::commit(format!("case-{start:08}"), items)))
                    .unwrap();
            })
        });
    }
    group.finish();
}

criterion_group!(office_queue_benches, benches);
criterion_main!(office_queue_benches);
