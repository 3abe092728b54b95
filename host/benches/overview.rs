//! One-screen overview benchmark (criterion): the figures of a city among
//! a city's items. Method and figures: docs/performance.md.
//!
//! `ITEMS` items (default 1,000,000) of one department over the offices
//! of 65,000 grids (Chongqing's shape: 38 districts, 1,031 towns, 11,000
//! communities), written through the storage's commits, so the counters
//! are kept as a running host keeps them: a third of the items done (in
//! 0–10 hours), every seventh moved up from its grid to its community, the
//! rest pending.
//! - `overview/city`, `overview/district`, `overview/grid`: what `GET
//!   /v1/ops/overview?place=P` reads and computes — P's counters, then
//!   each child's — without the HTTP round trip (see the loopback figure in
//!   docs/performance.md for that).
//! - `overview/commit_4_items`: a commit of a case with four new items at
//!   a grid (a newborn application's size), counters included.
//!
//! Run: `cargo bench -p onething-host --bench overview` (building the data
//! dir takes a few minutes; `ITEMS=100000` for a quicker run).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{Duration, Utc};
use criterion::{Criterion, criterion_group, criterion_main};

use onething_host::http::views::ops::Tally;
use onething_host::model::{Due, ItemStatus, WorkItem};
use onething_host::storage::prelude::*;
use onething_host::storage::sled::SledStorage;

#[path = "common/mod.rs"]
mod common;

const PER_CASE: usize = 1_000;

/// The ids of grid `g` and of the places above it, each level spread
/// evenly over the one above.
fn grid(g: usize) -> (String, String) {
    let c = g * 11_000 / 65_000;
    let t = c * 1_031 / 11_000;
    let d = t * 38 / 1_031;
    let community = format!("cq/d{d}/t{t}/c{c}");
    (format!("{community}/g{g}"), community)
}

fn item(n: usize, case_id: &str) -> WorkItem {
    let (grid, community) = grid(n % 65_000);
    let created = Utc::now() - Duration::hours(12);
    let (status, finished, office, from) = match n {
        n if n % 3 == 0 => (
            ItemStatus::Completed,
            Some(created + Duration::minutes((n % 600) as i64)),
            grid.clone(),
            Vec::new(),
        ),
        n if n % 7 == 0 => (ItemStatus::Pending, None, community, vec![grid.clone()]),
        _ => (ItemStatus::Pending, None, grid.clone(), Vec::new()),
    };
    WorkItem {
        id: format!("item-{n:08}"),
        case_id: case_id.into(),
        scenario: "bench".into(),
        department: "community-grid".into(),
        task: "stop-indoor-charging".into(),
        payload: serde_json::json!({"building": "金龙路12号"}),
        status,
        due: Due::Minutes(30),
        due_at: created + Duration::minutes(30),
        created_at: created,
        finished_at: finished,
        result: None,
        reason: None,
        overdue_at: None,
        priority: Default::default(),
        place: Some(grid),
        office: Some(office),
        handled_by: None,
        escalation: None,
        escalated_from: from,
        note: None,
        report_due: None,
        report_due_at: None,
        reported_at: None,
        reported_by: None,
        report_missed_by: Vec::new(),
    }
}

/// What the overview handler reads: `place`'s counters and each child's,
/// made into figures.
async fn overview(storage: &SledStorage, place: &str, children: &[String]) -> usize {
    let counters = storage.counters_at(place).await.unwrap();
    let mut shown = vec![Tally::of(&counters, "").figures()];
    for department in Tally::departments(&counters) {
        shown.push(Tally::of(&counters, &department).figures());
    }
    for child in children {
        let counters = storage.counters_at(child).await.unwrap();
        shown.push(Tally::of(&counters, "").figures());
    }
    std::hint::black_box(&shown);
    shown.len()
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
            let case_id = format!("case-{start:08}");
            let items = (start..(start + PER_CASE).min(total))
                .map(|n| item(n, &case_id))
                .collect();
            let mut commit = common::commit(case_id, items);
            commit.case.place = Some("cq".into());
            storage.commit(commit).await.unwrap();
        }
    });
    let keys = dir.path().join("db");
    eprintln!(
        "overview: {total} items over 65,000 grids written in {:.1} s ({} MB on disk)",
        started.elapsed().as_secs_f64(),
        fs_size(&keys) / 1_000_000
    );
    let districts: Vec<String> = (0..38).map(|d| format!("cq/d{d}")).collect();
    let towns: Vec<String> = (0..1_031)
        .filter(|t| t * 38 / 1_031 == 17)
        .map(|t| format!("cq/d17/t{t}"))
        .collect();
    let (a_grid, _) = grid(4_242);
    let city = rt.block_on(storage.counters_at("cq")).unwrap();
    let done = city
        .iter()
        .find(|(k, _)| k.department.is_empty() && k.metric == "items.done")
        .map_or(0, |(_, v)| *v);
    assert_eq!(
        done as usize,
        total.div_ceil(3),
        "the counters hold every item"
    );
    let mut group = c.benchmark_group("overview");
    group.bench_function("city", |b| {
        b.iter(|| assert_eq!(rt.block_on(overview(&storage, "cq", &districts)), 39))
    });
    group.bench_function("district", |b| {
        b.iter(|| rt.block_on(overview(&storage, "cq/d17", &towns)))
    });
    group.bench_function("grid", |b| {
        b.iter(|| rt.block_on(overview(&storage, &a_grid, &[])))
    });
    group.sample_size(30);
    let next = AtomicUsize::new(total + 1);
    group.bench_function("commit_4_items", |b| {
        b.iter(|| {
            // Four new items at grids.
            let start = next.fetch_add(4 * 21, Ordering::Relaxed);
            let case_id = format!("case-{start:08}");
            let items = (0..4).map(|k| item(start + 1 + k * 21, &case_id)).collect();
            rt.block_on(storage.commit(common::commit(case_id, items)))
                .unwrap();
        })
    });
    group.finish();
}

/// Bytes of the files under `dir`.
fn fs_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => fs_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

criterion_group!(overview_benches, benches);
criterion_main!(overview_benches);
