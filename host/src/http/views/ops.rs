//! The operations centre's views: the figures of a place or an office, as
//! the overview and the ranking show them, read from the counters
//! (`crate::ops::counters` names each metric).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ops::counters::{CounterKey, HANDLING_BUCKETS};
use crate::places::Place;

/// A place as the overview names it.
#[derive(Serialize)]
pub struct PlaceRef<'a> {
    id: &'a str,
    name: &'a str,
    level: &'a str,
}

impl<'a> PlaceRef<'a> {
    /// The reference of `place`.
    pub fn of(place: &'a Place) -> Self {
        PlaceRef {
            id: &place.id,
            name: &place.name,
            level: &place.level,
        }
    }
}

/// The counters of one scope (a subtree, or an office), by metric.
#[derive(Debug, Default, Clone)]
pub struct Tally(BTreeMap<String, i64>);

impl Tally {
    /// The counters of `department` (empty: the subtree) among `counters`.
    pub fn of(counters: &[(CounterKey, i64)], department: &str) -> Self {
        Tally(
            counters
                .iter()
                .filter(|(k, _)| k.department == department)
                .map(|(k, v)| (k.metric.clone(), *v))
                .collect(),
        )
    }

    /// The value of `metric` (0 when never counted).
    pub fn get(&self, metric: &str) -> u64 {
        self.0
            .get(metric)
            .map_or(0, |v| u64::try_from(*v).unwrap_or(0))
    }

    /// The departments with an office among `counters`.
    pub fn departments(counters: &[(CounterKey, i64)]) -> Vec<String> {
        let mut departments: Vec<String> = counters
            .iter()
            .filter(|(k, _)| !k.department.is_empty())
            .map(|(k, _)| k.department.clone())
            .collect();
        departments.dedup();
        departments
    }

    /// The figures these counters give.
    pub fn figures(&self) -> Figures {
        let done = self.get("items.done");
        let on_time = self.get("items.on-time");
        let buckets: Vec<(String, u64)> = HANDLING_BUCKETS
            .iter()
            .map(|b| b.to_string())
            .chain(std::iter::once("inf".to_owned()))
            .map(|b| {
                let n = self.get(&format!("ht.{b}"));
                (b, n)
            })
            .collect();
        let reports = ReportFigures {
            on_time: self.get("reports.on-time"),
            late: self.get("reports.late"),
            missed: self.get("reports.missed"),
        };
        Figures {
            report_rate: reports.rate(),
            reports,
            cases: CaseFigures {
                submitted: self.get("cases.submitted"),
                in_progress: self.get("cases.in-progress"),
                awaiting_citizen: self.get("cases.awaiting-citizen"),
                completed: self.get("cases.completed"),
                rejected: self.get("cases.rejected"),
            },
            items: ItemFigures {
                pending: self.get("items.pending"),
                overdue: self.get("items.overdue"),
                escalated: self.get("items.escalated"),
                escalated_out: self.get("items.escalated-out"),
                held: self.get("items.held"),
                done,
                on_time,
            },
            on_time_rate: rate(on_time, done),
            handling_minutes: Handling {
                p50: percentile(&buckets, 0.5),
                p90: percentile(&buckets, 0.9),
                buckets: buckets.into_iter().collect(),
            },
        }
    }
}

/// `part / whole`, or null when nothing was counted.
fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The upper bound (minutes) of the bucket that holds the `share` rank,
/// or null for no items; `inf` is null too (longer than 30 days).
fn percentile(buckets: &[(String, u64)], share: f64) -> Option<u32> {
    let total: u64 = buckets.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * share).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (bound, n) in buckets {
        seen += n;
        if seen >= rank {
            return bound.parse().ok();
        }
    }
    None
}

/// What the overview shows of a subtree or an office.
#[derive(Serialize)]
pub struct Figures {
    cases: CaseFigures,
    items: ItemFigures,
    /// Items done in time where they were first sent, of all done; null
    /// when none is done.
    on_time_rate: Option<f64>,
    handling_minutes: Handling,
    reports: ReportFigures,
    /// Report deadlines met, of all that were met, late or missed (报到率);
    /// null when no item had a report step.
    report_rate: Option<f64>,
}

/// The report step (报到) of items that had one.
#[derive(Serialize, Clone, Copy)]
struct ReportFigures {
    on_time: u64,
    late: u64,
    missed: u64,
}

impl ReportFigures {
    fn rate(self) -> Option<f64> {
        rate(self.on_time, self.on_time + self.late + self.missed)
    }
}

/// Cases by status.
#[derive(Serialize)]
struct CaseFigures {
    submitted: u64,
    #[serde(rename = "in-progress")]
    in_progress: u64,
    #[serde(rename = "awaiting-citizen")]
    awaiting_citizen: u64,
    completed: u64,
    rejected: u64,
}

/// Items by where they stand.
#[derive(Serialize)]
struct ItemFigures {
    pending: u64,
    overdue: u64,
    escalated: u64,
    escalated_out: u64,
    held: u64,
    done: u64,
    on_time: u64,
}

/// Handling time (dispatch to done), from the histogram.
#[derive(Serialize)]
struct Handling {
    p50: Option<u32>,
    p90: Option<u32>,
    /// Items done within each bound (minutes; `inf`: longer).
    buckets: BTreeMap<String, u64>,
}

/// `GET /v1/ops/overview`.
#[derive(Serialize)]
pub struct Overview<'a> {
    /// The place (null: the whole host).
    pub place: Option<PlaceRef<'a>>,
    /// The subtree's figures.
    pub figures: Figures,
    /// Each office at the place.
    pub offices: Vec<OfficeFigures>,
    /// Each child place's subtree figures (one level of drill-down).
    pub children: Vec<ChildFigures<'a>>,
}

/// An office's figures.
#[derive(Serialize)]
pub struct OfficeFigures {
    /// Its department.
    pub department: String,
    /// Its place.
    pub place: String,
    /// Its figures.
    pub figures: Figures,
}

/// A child place's figures.
#[derive(Serialize)]
pub struct ChildFigures<'a> {
    /// The place.
    pub place: PlaceRef<'a>,
    /// Its subtree's figures.
    pub figures: Figures,
}

/// One office in the ranking, with the counts behind its figures.
#[derive(Serialize)]
pub struct Ranked {
    rank: usize,
    department: String,
    place: String,
    name: String,
    /// On time of done, in the month; null when it finished nothing.
    on_time_rate: Option<f64>,
    done: u64,
    on_time: u64,
    /// Items that left it for the office above in the month.
    escalated_out: u64,
    /// Reports made in time, of all owed, in the month; null when none.
    report_rate: Option<f64>,
    reports_on_time: u64,
    reports_late: u64,
    reports_missed: u64,
}

impl Ranked {
    /// `department`'s office at `place`, from its counters of the month.
    pub fn new(department: &str, place: &Place, tally: &Tally) -> Self {
        let (done, on_time) = (tally.get("items.done"), tally.get("items.on-time"));
        let reports = ReportFigures {
            on_time: tally.get("reports.on-time"),
            late: tally.get("reports.late"),
            missed: tally.get("reports.missed"),
        };
        Ranked {
            report_rate: reports.rate(),
            reports_on_time: reports.on_time,
            reports_late: reports.late,
            reports_missed: reports.missed,
            rank: 0,
            department: department.to_owned(),
            place: place.id.clone(),
            name: place.name.clone(),
            on_time_rate: rate(on_time, done),
            done,
            on_time,
            escalated_out: tally.get("items.escalated-out"),
        }
    }
}

/// `GET /v1/ops/ranking`.
#[derive(Serialize)]
pub struct Ranking {
    level: String,
    month: String,
    /// Best first: on-time rate (offices that finished nothing last), then
    /// report rate (none owed last), then fewer escalations out, then more
    /// done; ties share no rank (place and department order them).
    offices: Vec<Ranked>,
}

impl Ranking {
    /// `offices` of `level` in `month`, ranked.
    pub fn rank(level: &str, month: &str, mut offices: Vec<Ranked>) -> Self {
        offices.sort_by(|a, b| {
            let rate = |r: &Ranked| r.on_time_rate.unwrap_or(-1.0);
            let reported = |r: &Ranked| r.report_rate.unwrap_or(-1.0);
            rate(b)
                .total_cmp(&rate(a))
                .then(reported(b).total_cmp(&reported(a)))
                .then(a.escalated_out.cmp(&b.escalated_out))
                .then(b.done.cmp(&a.done))
                .then(a.place.cmp(&b.place))
                .then(a.department.cmp(&b.department))
        });
        for (i, office) in offices.iter_mut().enumerate() {
            office.rank = i + 1;
        }
        Ranking {
            level: level.to_owned(),
            month: month.to_owned(),
            offices,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_the_bound_of_the_bucket_holding_the_rank() {
        let buckets: Vec<(String, u64)> = vec![
            ("15".into(), 5),
            ("30".into(), 4),
            ("60".into(), 1),
            ("inf".into(), 0),
        ];
        assert_eq!(percentile(&buckets, 0.5), Some(15));
        assert_eq!(percentile(&buckets, 0.9), Some(30));
        assert_eq!(percentile(&buckets, 1.0), Some(60));
        assert_eq!(percentile(&[("15".into(), 0)], 0.5), None);
        assert_eq!(rate(0, 0), None);
        assert_eq!(rate(1, 4), Some(0.25));
    }
}
