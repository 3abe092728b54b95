//! What the API answers: one typed view per response body, built from the
//! domain values the service and the deployer return. Field names are the
//! HTTP contract's; a field that is `null` today is `null` here (an
//! `Option` without `skip_serializing_if`). The fields of each view that
//! replaced a `json!` literal are declared in its (alphabetical) order.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

mod admin;
pub mod ops;
mod places;

use crate::model::{
    Case, CaseStatus, DeadlineState, Due, FieldSpec, ItemStatus, Priority, ReportState,
    TimelineEntry, TimelineEvent, WorkItem,
};
use crate::runtime::LoadedPlugin;
use crate::service::{Applied, CaseWithItems, Officer};
use crate::storage::{AuditEntry, AuditRecord};

/// `GET /healthz`.
#[derive(Serialize)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

// ---- citizens and devices ----------------------------------------------

/// The office that owns an item: a department at a place.
#[derive(Serialize)]
pub struct OfficeView<'a> {
    department: &'a str,
    place: &'a str,
}

impl<'a> OfficeView<'a> {
    /// The office of `item`, if it was routed to one.
    pub fn of(item: &'a WorkItem) -> Option<Self> {
        item.office.as_deref().map(|place| OfficeView {
            department: &item.department,
            place,
        })
    }
}

/// An item as the applicant sees it.
#[derive(Serialize)]
pub struct ItemSummary<'a> {
    deadline: DeadlineState,
    department: &'a str,
    due: &'a Due,
    due_at: DateTime<Utc>,
    handled_by: Option<&'a str>,
    item_id: &'a str,
    office: Option<OfficeView<'a>>,
    place: Option<&'a str>,
    status: ItemStatus,
    task: &'a str,
    /// Whether the office took it (报到); absent without a report step.
    #[serde(skip_serializing_if = "Option::is_none")]
    report_state: Option<ReportState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report_due_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reported_by: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    report_missed_by: &'a [String],
}

impl<'a> ItemSummary<'a> {
    /// The summary of `item` at `now`.
    pub fn new(item: &'a WorkItem, now: DateTime<Utc>) -> Self {
        ItemSummary {
            deadline: item.deadline_state(now),
            department: &item.department,
            due: &item.due,
            due_at: item.due_at,
            handled_by: item.handled_by.as_deref(),
            item_id: &item.id,
            office: OfficeView::of(item),
            place: item.place.as_deref(),
            status: item.status,
            task: &item.task,
            report_state: item.report_state(),
            report_due_at: item.report_due_at,
            reported_by: item.reported_by.as_deref(),
            report_missed_by: &item.report_missed_by,
        }
    }
}

/// `201` of an application: the new (or replayed) case and its items.
#[derive(Serialize)]
pub struct AppliedView<'a> {
    case_id: &'a str,
    items: Vec<ItemSummary<'a>>,
    message: &'a str,
    status: CaseStatus,
}

impl<'a> AppliedView<'a> {
    /// The view of `applied` at `now`.
    pub fn new(applied: &'a Applied, now: DateTime<Utc>) -> Self {
        let case = &applied.case;
        AppliedView {
            case_id: &case.case.id,
            items: case
                .items
                .iter()
                .map(|i| ItemSummary::new(i, now))
                .collect(),
            message: &case.case.message,
            status: case.case.status,
        }
    }
}

/// An item of a case as its applicant sees it, with how it ended.
#[derive(Serialize)]
pub struct CaseItem<'a> {
    #[serde(flatten)]
    summary: ItemSummary<'a>,
    finished_at: Option<DateTime<Utc>>,
    reason: &'a Option<String>,
    result: &'a Option<Value>,
}

/// Where a piece of evidence came from: one data read on record for the
/// case (the applicant previews them before confirming).
#[derive(Serialize)]
pub struct Evidence<'a> {
    allowed: bool,
    at: DateTime<Utc>,
    dataset: &'a str,
    department: &'a str,
    found: bool,
    purpose: &'a str,
}

/// `GET /v1/cases/{case_id}` and every answer that changes a case.
#[derive(Serialize)]
pub struct CaseView<'a> {
    applicant: &'a str,
    case_id: &'a str,
    created_at: DateTime<Utc>,
    evidence: Vec<Evidence<'a>>,
    items: Vec<CaseItem<'a>>,
    message: &'a str,
    place: Option<&'a str>,
    plugin_version: &'a str,
    scenario: &'a str,
    status: CaseStatus,
    subject: Option<&'a str>,
    timeline: &'a [TimelineEntry],
    updated_at: DateTime<Utc>,
}

impl<'a> CaseView<'a> {
    /// The view of `case` at `now`.
    pub fn new(case: &'a CaseWithItems, now: DateTime<Utc>) -> Self {
        let c = &case.case;
        let items = case
            .items
            .iter()
            .map(|item| CaseItem {
                summary: ItemSummary::new(item, now),
                finished_at: item.finished_at,
                reason: &item.reason,
                result: &item.result,
            })
            .collect();
        let evidence = c
            .timeline
            .iter()
            .filter_map(|entry| match &entry.event {
                TimelineEvent::DataRead {
                    dataset,
                    purpose,
                    allowed,
                    found,
                } => Some(Evidence {
                    allowed: *allowed,
                    at: entry.at,
                    dataset,
                    department: dataset.split('/').next().unwrap_or_default(),
                    found: *found,
                    purpose,
                }),
                _ => None,
            })
            .collect();
        CaseView {
            applicant: &c.applicant,
            case_id: &c.id,
            created_at: c.created_at,
            evidence,
            items,
            message: &c.message,
            place: c.place.as_deref(),
            plugin_version: &c.plugin_version,
            scenario: &c.scenario,
            status: c.status,
            subject: c.subject.as_deref(),
            timeline: &c.timeline,
            updated_at: c.updated_at,
        }
    }
}

/// One read of a citizen's data in their access log.
#[derive(Serialize)]
pub struct AccessRow<'a> {
    allowed: bool,
    at: DateTime<Utc>,
    /// The case, if the citizen applied for it.
    case_id: Option<&'a str>,
    dataset: &'a str,
    department: &'a str,
    /// The record, if it is the citizen's own.
    key: Option<&'a str>,
    plugin_version: &'a str,
    purpose: &'a str,
    record: &'static str,
    scenario: &'a str,
    seq: u64,
}

impl<'a> AccessRow<'a> {
    /// The row of `entry` for `subject`, if it is a data read. A read of
    /// their own record in someone else's case shows no case; a read of
    /// someone else's record in their case shows no key.
    pub fn new(entry: &'a AuditEntry, subject: &str) -> Option<Self> {
        let AuditRecord::DataRead {
            plugin,
            version,
            case_id,
            applicant,
            dataset,
            key,
            purpose,
            allowed,
            about,
        } = &entry.record
        else {
            return None;
        };
        let yours = applicant == subject;
        let your_record = key == subject || about.as_deref() == Some(subject);
        Some(AccessRow {
            allowed: *allowed,
            at: entry.at,
            case_id: yours.then_some(case_id.as_str()),
            dataset,
            department: dataset.split_once('/').map_or(dataset.as_str(), |(d, _)| d),
            key: your_record.then_some(key.as_str()),
            plugin_version: version,
            purpose,
            record: if your_record {
                "yours"
            } else {
                "read for your case"
            },
            scenario: plugin,
            seq: entry.seq,
        })
    }
}

/// `GET /v1/me/access-log`.
#[derive(Serialize)]
pub struct AccessLogView<'a> {
    /// The sequence number to ask `after=` for the next page; null on the
    /// last.
    pub next_after: Option<u64>,
    /// The reads.
    pub reads: Vec<AccessRow<'a>>,
    /// The citizen.
    pub subject: &'a str,
}

/// One scenario of the public catalogue.
#[derive(Serialize)]
pub struct CatalogueEntry<'a> {
    department: &'a str,
    departments: &'a [String],
    description: &'a str,
    fields: &'a [FieldSpec],
    id: &'a str,
    title: &'a str,
    version: &'a str,
}

impl<'a> CatalogueEntry<'a> {
    /// The entry of an active plugin.
    pub fn new(plugin: &'a LoadedPlugin) -> Self {
        let info = plugin.info();
        CatalogueEntry {
            department: &plugin.manifest().department,
            departments: &info.departments,
            description: &info.description,
            fields: &info.fields,
            id: &info.id,
            title: &info.title,
            version: plugin.version(),
        }
    }
}

/// `GET /v1/scenarios`.
#[derive(Serialize)]
pub struct Catalogue<'a> {
    /// The active version of every scenario.
    pub scenarios: Vec<CatalogueEntry<'a>>,
}

// ---- departments ---------------------------------------------------------

/// An item as its department sees it.
#[derive(Serialize)]
pub struct ItemView<'a> {
    case_id: &'a str,
    created_at: DateTime<Utc>,
    deadline: DeadlineState,
    department: &'a str,
    due: &'a Due,
    due_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    handled_by: Option<&'a str>,
    item_id: &'a str,
    note: Option<&'a str>,
    office: Option<OfficeView<'a>>,
    /// When the host reported the item overdue to the scenario (the
    /// model's `WorkItem::overdue_at`); `null` until then. The time it ran
    /// out is `due_at`.
    overdue_reported_at: Option<DateTime<Utc>>,
    payload: &'a Value,
    place: Option<&'a str>,
    priority: Priority,
    reason: &'a Option<String>,
    result: &'a Option<Value>,
    scenario: &'a str,
    status: &'static str,
    task: &'a str,
    escalated_from: &'a [String],
    /// The report step (报到): absent when the item has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    report_due: Option<&'a Due>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report_due_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reported_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reported_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report_state: Option<ReportState>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    report_missed_by: &'a [String],
}

impl<'a> ItemView<'a> {
    /// The view of `item` at `now` for `officer`: an item that moved up
    /// from their office to one above their area is `escalated`.
    pub fn for_officer(item: &'a WorkItem, now: DateTime<Utc>, officer: &Officer) -> Self {
        let mut view = Self::new(item, now);
        if officer.sees_as_escalated(item) {
            view.status = "escalated";
        }
        view
    }

    /// The view of `item` at `now`.
    pub fn new(item: &'a WorkItem, now: DateTime<Utc>) -> Self {
        ItemView {
            case_id: &item.case_id,
            created_at: item.created_at,
            deadline: item.deadline_state(now),
            department: &item.department,
            due: &item.due,
            due_at: item.due_at,
            finished_at: item.finished_at,
            handled_by: item.handled_by.as_deref(),
            item_id: &item.id,
            note: item.note.as_deref(),
            office: OfficeView::of(item),
            overdue_reported_at: item.overdue_at,
            payload: &item.payload,
            place: item.place.as_deref(),
            priority: item.priority,
            reason: &item.reason,
            result: &item.result,
            scenario: &item.scenario,
            status: item.status.as_str(),
            task: &item.task,
            escalated_from: &item.escalated_from,
            report_due: item.report_due.as_ref(),
            report_due_at: item.report_due_at,
            reported_at: item.reported_at,
            reported_by: item.reported_by.as_deref(),
            report_state: item.report_state(),
            report_missed_by: &item.report_missed_by,
        }
    }
}

/// `GET /v1/departments/{department}/items`.
#[derive(Serialize)]
pub struct DepartmentItems<'a> {
    /// The department.
    pub department: &'a str,
    /// The page.
    pub items: Vec<ItemView<'a>>,
    /// The item id to ask `after=` for the next page; null on the last.
    pub next_after: Option<&'a str>,
}

/// `GET /v1/admin/held`: items held off a task list.
#[derive(Serialize)]
pub struct HeldItems<'a> {
    /// The page, oldest first.
    pub items: Vec<ItemView<'a>>,
    /// The item id to ask `after=` for the next page; null on the last.
    pub next_after: Option<&'a str>,
}

/// The case an item belongs to, after a department acted on it.
#[derive(Serialize)]
pub struct CaseStatusView<'a> {
    case_id: &'a str,
    message: &'a str,
    status: CaseStatus,
}

/// `complete` and `reject`: the item and its case, as they are now.
#[derive(Serialize)]
pub struct ActedView<'a> {
    case: CaseStatusView<'a>,
    item: ItemView<'a>,
}

impl<'a> ActedView<'a> {
    /// The view of `item` and `case` at `now`.
    pub fn new(item: &'a WorkItem, case: &'a Case, now: DateTime<Utc>) -> Self {
        ActedView {
            case: CaseStatusView {
                case_id: &case.id,
                message: &case.message,
                status: case.status,
            },
            item: ItemView::new(item, now),
        }
    }
}

pub use admin::*;
pub use places::*;
