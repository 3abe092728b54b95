//! Place tree benchmark (criterion). Method and figures:
//! docs/design/places.md.
//!
//! A generated tree the size of Chongqing's: 1 city, 38 districts, 1,031
//! towns, 11,000 communities and 65,000 grids (77,070 places), each level
//! spread evenly over the one above; `public-security` has offices at the
//! districts, `community-grid` at every grid, `hrss` at the city.
//! - `places/ancestors`: the four places above a grid, nearest first.
//! - `places/office_for_fallback`: a grid's `public-security` office (three
//!   levels up, at its district).
//! - `places/office_for_here`: a grid's `community-grid` office (the grid).
//! - `places/office_for_top`: a grid's `hrss` office (the city).
//! - `places/import`: the whole file checked and written into an empty
//!   sled data dir (one atomic batch, one flush), index built.
//!
//! Run: `cargo bench -p onething-host --bench places`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

use onething_host::places::{PlaceTree, Places, parse_import};
use onething_host::storage::Storage;
use onething_host::storage::sled::SledStorage;

const LEVELS: [(&str, &str, usize); 4] = [
    ("district", "d", 38),
    ("town", "t", 1_031),
    ("community", "c", 11_000),
    ("grid", "g", 65_000),
];

/// The generated tree as an import file, and the id of its last grid.
fn chongqing() -> (String, String) {
    let mut text = String::from("{\"id\":\"cq\",\"name\":\"重庆市\",\"level\":\"city\"}\n");
    let mut above = vec!["cq".to_owned()];
    for (level, slug, count) in LEVELS {
        let mut ids = Vec::with_capacity(count);
        for n in 0..count {
            let parent = &above[n * above.len() / count];
            let id = format!("{parent}/{slug}{n}");
            writeln!(
                text,
                "{{\"id\":\"{id}\",\"name\":\"{level} {n}\",\"level\":\"{level}\",\"parent\":\"{parent}\"}}"
            )
            .unwrap();
            let department = match level {
                "district" => Some("public-security"),
                "grid" => Some("community-grid"),
                _ => None,
            };
            if let Some(department) = department {
                writeln!(
                    text,
                    "{{\"office\":{{\"department\":\"{department}\",\"place\":\"{id}\"}}}}"
                )
                .unwrap();
            }
            ids.push(id);
        }
        above = ids;
    }
    text.push_str("{\"office\":{\"department\":\"hrss\",\"place\":\"cq\"}}\n");
    (text, above.pop().unwrap())
}

fn benches(c: &mut Criterion) {
    let (text, grid) = chongqing();
    let empty = PlaceTree::default();
    let tree = empty.with(&parse_import(&text, &empty).unwrap());
    assert_eq!(tree.len(), 77_070);
    assert_eq!(tree.ancestors(&grid).count(), 4);

    c.bench_function("places/ancestors", |b| {
        b.iter(|| black_box(&tree).ancestors(black_box(&grid)).count())
    });
    c.bench_function("places/office_for_fallback", |b| {
        b.iter(|| {
            black_box(&tree)
                .office_for("public-security", black_box(&grid))
                .unwrap()
        })
    });
    c.bench_function("places/office_for_here", |b| {
        b.iter(|| {
            black_box(&tree)
                .office_for("community-grid", black_box(&grid))
                .unwrap()
        })
    });
    c.bench_function("places/office_for_top", |b| {
        b.iter(|| {
            black_box(&tree)
                .office_for("hrss", black_box(&grid))
                .unwrap()
        })
    });

    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut import = c.benchmark_group("places");
    import
        .sample_size(10)
        .measurement_time(Duration::from_secs(30));
    import.bench_function("import", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let dir = tempfile::tempdir().unwrap();
                let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path()).unwrap());
                total += rt.block_on(async {
                    let places = Places::load(storage).await.unwrap();
                    let started = Instant::now();
                    places.import(&text, "bench").await.unwrap();
                    started.elapsed()
                });
            }
            total
        })
    });
    import.finish();
}

criterion_group!(place_benches, benches);
criterion_main!(place_benches);
