//! The counters behind the one-screen view and the monthly assessment
//! (一屏统揽, 效能评价): what each commit adds to and takes from them.
//!
//! **Derived, not written by hand.** A counter is the sum, over every
//! stored case and item, of what that record *contributes* in its current
//! state ([`contribute_case`], [`contribute_item`]). A commit's change to
//! the counters is the new records' contributions minus the stored ones'
//! ([`Deltas`]); a backend applies it in the same atomic write as the
//! records. A recount is the same sum from nothing. So the live counters
//! and a recount agree by construction, and `onething ops recount --check`
//! proves it on real data.
//!
//! **Where a record counts.** An item counts at its office (department at
//! a place) and in the subtree figures of every place from the office's up
//! to the root, and in the whole host's (scope `""`); a case counts at its
//! place and above. A record with no place counts in the whole host's
//! figures only.
//!
//! **Time.** States that change with time, not with a commit, are counted
//! from the marks the deadline loop commits (`overdue_at`). Flows (items
//! finished, on time, handling times) also count in the local month they
//! happened in, for the monthly ranking.
//!
//! Metric names (stable: the overview and the ranking read them):
//!
//! | metric | counts |
//! |---|---|
//! | `cases.<status>` | cases by status (`submitted`, `in-progress`, …) |
//! | `items.pending` | pending items |
//! | `items.held` | items held off a task list |
//! | `items.overdue` | pending items past their time at the top office |
//! | `items.escalated` | pending items that moved up at least once |
//! | `items.escalated-out` | items (any status) that left this office or an office in this subtree for one above |
//! | `items.done` | items completed or rejected |
//! | `items.on-time` | of those, finished in time where they were first sent |
//! | `ht.<minutes>` | of those, handled within that many minutes ([`HANDLING_BUCKETS`]; `ht.inf` for longer) |
//! | `reports.on-time`, `reports.late` | items with a report step (报到) taken in time, or after its deadline, by the office that took it |
//! | `reports.missed` | report deadlines that passed untaken, at each office that let one pass |

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, FixedOffset, Offset, Utc};
use serde::Deserialize;

use crate::model::{Case, CaseStatus, ItemStatus, WorkItem};

/// The upper bounds of the handling-time histogram, in minutes: from a
/// quarter of an hour to 30 days. p50 and p90 are read as the bound of the
/// bucket holding that rank.
pub const HANDLING_BUCKETS: [u32; 14] = [
    15, 30, 60, 120, 240, 480, 1440, 2880, 4320, 7200, 10080, 14400, 21600, 43200,
];

/// One counter: where, which office (none: the subtree's figure), what,
/// and in which local month (none: all time).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CounterKey {
    /// The place (`""`: the whole host).
    pub scope: String,
    /// The department of the office at `scope`; empty for the subtree.
    pub department: String,
    /// The metric.
    pub metric: String,
    /// `YYYY-MM`, or empty for all time.
    pub month: String,
}

/// What the counters read of an item: a stored item decodes into it
/// without its payload.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ItemFacts {
    /// Its department.
    pub department: String,
    /// Its status.
    pub status: ItemStatus,
    /// The place of its office.
    #[serde(default)]
    pub office: Option<String>,
    /// The place the work is for.
    #[serde(default)]
    pub place: Option<String>,
    /// When it was dispatched.
    pub created_at: DateTime<Utc>,
    /// When it was finished.
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// When it was marked overdue.
    #[serde(default)]
    pub overdue_at: Option<DateTime<Utc>>,
    /// The offices it moved up from.
    #[serde(default)]
    pub escalated_from: Vec<String>,
    /// When the report deadline at its current office runs out.
    #[serde(default)]
    pub report_due_at: Option<DateTime<Utc>>,
    /// When an office took it.
    #[serde(default)]
    pub reported_at: Option<DateTime<Utc>>,
    /// The offices whose report deadline passed untaken.
    #[serde(default)]
    pub report_missed_by: Vec<String>,
}

impl From<&WorkItem> for ItemFacts {
    fn from(item: &WorkItem) -> Self {
        ItemFacts {
            department: item.department.clone(),
            status: item.status,
            office: item.office.clone(),
            place: item.place.clone(),
            created_at: item.created_at,
            finished_at: item.finished_at,
            overdue_at: item.overdue_at,
            escalated_from: item.escalated_from.clone(),
            report_due_at: item.report_due_at,
            reported_at: item.reported_at,
            report_missed_by: item.report_missed_by.clone(),
        }
    }
}

/// What the counters read of a case.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CaseFacts {
    /// Its status.
    pub status: CaseStatus,
    /// Its place.
    #[serde(default)]
    pub place: Option<String>,
}

impl From<&Case> for CaseFacts {
    fn from(case: &Case) -> Self {
        CaseFacts {
            status: case.status,
            place: case.place.clone(),
        }
    }
}

/// Changes to counters, summed; zero changes are dropped when read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deltas {
    changes: BTreeMap<CounterKey, i64>,
    /// Minutes east of UTC of the host's local time, for months.
    offset_minutes: i32,
}

impl Deltas {
    /// No changes yet; months in the local time `offset_minutes` east of
    /// UTC.
    pub fn new(offset_minutes: i32) -> Self {
        Deltas {
            changes: BTreeMap::new(),
            offset_minutes,
        }
    }

    /// The non-zero changes.
    pub fn changes(&self) -> impl Iterator<Item = (&CounterKey, i64)> {
        self.changes
            .iter()
            .filter(|(_, v)| **v != 0)
            .map(|(k, v)| (k, *v))
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.changes().next().is_none()
    }

    fn add(&mut self, scope: &str, department: &str, metric: &str, month: &str, by: i64) {
        *self
            .changes
            .entry(CounterKey {
                scope: scope.to_owned(),
                department: department.to_owned(),
                metric: metric.to_owned(),
                month: month.to_owned(),
            })
            .or_insert(0) += by;
    }

    fn month(&self, at: DateTime<Utc>) -> String {
        let offset = FixedOffset::east_opt(self.offset_minutes * 60).unwrap_or_else(|| Utc.fix());
        let local = at.with_timezone(&offset);
        format!("{:04}-{:02}", local.year(), local.month())
    }
}

/// The scopes a record at `place` counts in: the whole host, then every
/// place from the root down to `place`.
fn scopes(place: Option<&str>) -> Vec<&str> {
    let mut scopes = vec![""];
    if let Some(place) = place {
        scopes.extend(
            place
                .match_indices('/')
                .map(|(at, _)| &place[..at])
                .chain(std::iter::once(place)),
        );
    }
    scopes
}

/// Adds `sign` × what `case` contributes (a stored version with -1, the
/// new one with +1).
pub fn contribute_case(case: &CaseFacts, sign: i64, out: &mut Deltas) {
    let metric = format!("cases.{}", case.status.as_str());
    for scope in scopes(case.place.as_deref()) {
        out.add(scope, "", &metric, "", sign);
    }
}

/// The handling-time metric of `minutes`.
fn bucket(minutes: i64) -> String {
    HANDLING_BUCKETS
        .iter()
        .find(|b| minutes <= i64::from(**b))
        .map_or_else(|| "ht.inf".to_owned(), |b| format!("ht.{b}"))
}

/// Adds `sign` × what `item` contributes.
pub fn contribute_item(item: &ItemFacts, sign: i64, out: &mut Deltas) {
    let at = item.office.as_deref().or(item.place.as_deref());
    let office = item.office.as_deref();
    let mut here: Vec<(&str, &str)> = Vec::new();
    for scope in scopes(at) {
        here.push((scope, ""));
    }
    if let Some(office) = office {
        here.push((office, &item.department));
    }
    let count = |metric: &str, month: Option<&str>, out: &mut Deltas| {
        for (scope, department) in &here {
            out.add(scope, department, metric, "", sign);
            if let Some(month) = month {
                out.add(scope, department, metric, month, sign);
            }
        }
    };
    match item.status {
        ItemStatus::Pending => {
            count("items.pending", None, out);
            if item.overdue_at.is_some() {
                count("items.overdue", None, out);
            }
            if !item.escalated_from.is_empty() {
                count("items.escalated", None, out);
            }
        }
        ItemStatus::Held => count("items.held", None, out),
        ItemStatus::Completed | ItemStatus::Rejected => {
            let finished = item.finished_at.unwrap_or(item.created_at);
            let month = out.month(finished);
            count("items.done", Some(&month), out);
            if item.escalated_from.is_empty() && item.overdue_at.is_none() {
                count("items.on-time", Some(&month), out);
            }
            let minutes = (finished - item.created_at).num_minutes();
            count(&bucket(minutes), Some(&month), out);
        }
        ItemStatus::Cancelled | ItemStatus::Refused => {}
    }
    contribute_reports(item, sign, out);
    // Each office it left, and the subtrees above them, saw it go.
    let month = out.month(item.created_at);
    for from in &item.escalated_from {
        for scope in scopes(Some(from)) {
            out.add(scope, "", "items.escalated-out", "", sign);
            out.add(scope, "", "items.escalated-out", &month, sign);
        }
        out.add(from, &item.department, "items.escalated-out", "", sign);
        out.add(from, &item.department, "items.escalated-out", &month, sign);
    }
}

/// Adds `n` × `metric` at the office of `department` at `office` and in
/// the subtrees from it up, all time and in `month`.
fn at_office(out: &mut Deltas, office: &str, department: &str, metric: &str, month: &str, n: i64) {
    for scope in scopes(Some(office)) {
        out.add(scope, "", metric, "", n);
        out.add(scope, "", metric, month, n);
    }
    out.add(office, department, metric, "", n);
    out.add(office, department, metric, month, n);
}

/// The report step's figures: each office that let its report deadline
/// pass, and the office that took the item (the first on its way up that
/// did not miss; at the top, the one that missed and took it late).
fn contribute_reports(item: &ItemFacts, sign: i64, out: &mut Deltas) {
    let Some(due_at) = item.report_due_at else {
        return;
    };
    let month = out.month(item.created_at);
    for missed in &item.report_missed_by {
        at_office(
            out,
            missed,
            &item.department,
            "reports.missed",
            &month,
            sign,
        );
    }
    let Some(reported_at) = item.reported_at else {
        return;
    };
    let chain: Vec<&str> = item
        .escalated_from
        .iter()
        .map(String::as_str)
        .chain(item.office.as_deref())
        .collect();
    let Some(by) = chain
        .iter()
        .find(|office| !item.report_missed_by.iter().any(|m| m == *office))
        .or(chain.last())
    else {
        return;
    };
    let metric = if reported_at <= due_at {
        "reports.on-time"
    } else {
        "reports.late"
    };
    let month = out.month(reported_at);
    at_office(out, by, &item.department, metric, &month, sign);
}

/// What one commit changes: the stored case and items (before) and the new
/// ones (after).
pub fn commit_deltas<'a>(
    offset_minutes: i32,
    case_before: Option<&CaseFacts>,
    case_after: &CaseFacts,
    items: impl IntoIterator<Item = (Option<ItemFacts>, &'a WorkItem)>,
) -> Deltas {
    let mut deltas = Deltas::new(offset_minutes);
    if let Some(before) = case_before {
        contribute_case(before, -1, &mut deltas);
    }
    contribute_case(case_after, 1, &mut deltas);
    for (before, after) in items {
        if let Some(before) = before {
            contribute_item(&before, -1, &mut deltas);
        }
        contribute_item(&ItemFacts::from(after), 1, &mut deltas);
    }
    deltas
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn item(status: ItemStatus) -> ItemFacts {
        ItemFacts {
            department: "public-security".into(),
            status,
            office: Some("cq/yubei".into()),
            place: Some("cq/yubei/longxi".into()),
            created_at: "2026-11-30T15:00:00Z".parse().unwrap(),
            finished_at: None,
            overdue_at: None,
            escalated_from: Vec::new(),
            report_due_at: None,
            reported_at: None,
            report_missed_by: Vec::new(),
        }
    }

    fn get(d: &Deltas, scope: &str, department: &str, metric: &str, month: &str) -> i64 {
        d.changes()
            .find(|(k, _)| {
                (
                    k.scope.as_str(),
                    k.department.as_str(),
                    k.metric.as_str(),
                    k.month.as_str(),
                ) == (scope, department, metric, month)
            })
            .map_or(0, |(_, v)| v)
    }

    #[test]
    fn an_item_counts_at_its_office_and_in_every_subtree_above_it() {
        let mut d = Deltas::new(480);
        contribute_item(&item(ItemStatus::Pending), 1, &mut d);
        for scope in ["", "cq", "cq/yubei"] {
            assert_eq!(get(&d, scope, "", "items.pending", ""), 1, "{scope}");
        }
        assert_eq!(
            get(&d, "cq/yubei", "public-security", "items.pending", ""),
            1
        );
        assert_eq!(
            get(&d, "cq/yubei/longxi", "", "items.pending", ""),
            0,
            "below the office"
        );
    }

    #[test]
    fn finishing_moves_an_item_from_pending_to_done_in_its_local_month() {
        let before = item(ItemStatus::Pending);
        let mut after = item(ItemStatus::Completed);
        // 2026-12-01 01:00 in UTC+8: December, though November in UTC.
        after.finished_at = Some("2026-11-30T17:00:00Z".parse().unwrap());
        let mut d = Deltas::new(480);
        contribute_item(&before, -1, &mut d);
        contribute_item(&after, 1, &mut d);
        assert_eq!(get(&d, "cq", "", "items.pending", ""), -1);
        assert_eq!(get(&d, "cq", "", "items.done", ""), 1);
        assert_eq!(get(&d, "cq", "", "items.done", "2026-12"), 1);
        assert_eq!(get(&d, "cq", "", "items.on-time", "2026-12"), 1);
        assert_eq!(get(&d, "cq", "", "ht.120", "2026-12"), 1, "two hours");
        assert_eq!(get(&d, "cq", "", "items.done", "2026-11"), 0);
    }

    #[test]
    fn an_unchanged_record_changes_nothing() {
        let mut d = Deltas::new(0);
        let i = item(ItemStatus::Pending);
        contribute_item(&i, -1, &mut d);
        contribute_item(&i, 1, &mut d);
        let case = CaseFacts {
            status: CaseStatus::InProgress,
            place: Some("cq".into()),
        };
        contribute_case(&case, -1, &mut d);
        contribute_case(&case, 1, &mut d);
        assert!(d.is_empty());
    }

    #[test]
    fn an_escalated_item_counts_against_each_office_it_left() {
        let mut i = item(ItemStatus::Pending);
        i.office = Some("cq".into());
        i.escalated_from = vec!["cq/yubei".into()];
        let mut d = Deltas::new(0);
        contribute_item(&i, 1, &mut d);
        assert_eq!(
            get(&d, "cq/yubei", "public-security", "items.escalated-out", ""),
            1
        );
        assert_eq!(get(&d, "cq/yubei", "", "items.escalated-out", "2026-11"), 1);
        assert_eq!(get(&d, "cq", "", "items.escalated", ""), 1);
        assert_eq!(
            get(&d, "cq/yubei", "", "items.pending", ""),
            0,
            "no longer there"
        );
    }

    #[test]
    fn a_report_counts_for_the_office_that_took_it_and_a_miss_against_the_one_that_did_not() {
        // Missed at the grid, moved up, taken in time at the community.
        let mut i = item(ItemStatus::Pending);
        i.escalated_from = vec!["cq/yubei/g1".into()];
        i.office = Some("cq/yubei".into());
        i.report_missed_by = vec!["cq/yubei/g1".into()];
        i.report_due_at = Some(i.created_at + chrono::Duration::minutes(60));
        i.reported_at = Some(i.created_at + chrono::Duration::minutes(40));
        let mut d = Deltas::new(0);
        contribute_item(&i, 1, &mut d);
        assert_eq!(
            get(&d, "cq/yubei/g1", "public-security", "reports.missed", ""),
            1
        );
        assert_eq!(
            get(&d, "cq/yubei", "public-security", "reports.on-time", ""),
            1
        );
        assert_eq!(
            get(&d, "cq/yubei/g1", "public-security", "reports.on-time", ""),
            0
        );
        assert_eq!(get(&d, "cq", "", "reports.missed", "2026-11"), 1);
        // At the top office: missed there, then taken late there.
        i.escalated_from.clear();
        i.report_missed_by = vec!["cq/yubei".into()];
        i.reported_at = Some(i.created_at + chrono::Duration::minutes(90));
        let mut d = Deltas::new(0);
        contribute_item(&i, 1, &mut d);
        assert_eq!(
            get(&d, "cq/yubei", "public-security", "reports.late", ""),
            1
        );
        assert_eq!(
            get(&d, "cq/yubei", "public-security", "reports.missed", ""),
            1
        );
    }

    #[test]
    fn handling_times_fall_in_their_bucket() {
        assert_eq!(bucket(0), "ht.15");
        assert_eq!(bucket(15), "ht.15");
        assert_eq!(bucket(16), "ht.30");
        assert_eq!(bucket(43_200), "ht.43200");
        assert_eq!(bucket(43_201), "ht.inf");
    }
}
