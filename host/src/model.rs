//! The host's domain types: cases, work items, their statuses and deadlines.
//!
//! These are what storage keeps and what the HTTP layer shows. The runtime
//! converts the WIT types of `onething:scenario` into these at the boundary,
//! so nothing outside `runtime` depends on generated bindings.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a case stands, as the applicant sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaseStatus {
    /// Received; nothing decided yet.
    Submitted,
    /// Work items are with the departments.
    InProgress,
    /// Waiting for the applicant.
    AwaitingCitizen,
    /// Done.
    Completed,
    /// Refused or ended without being done.
    Rejected,
}

impl CaseStatus {
    /// Whether nothing more can happen to the case.
    pub fn is_final(self) -> bool {
        matches!(self, CaseStatus::Completed | CaseStatus::Rejected)
    }

    /// The status as it is written in JSON, e.g. `in-progress`.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Submitted => "submitted",
            CaseStatus::InProgress => "in-progress",
            CaseStatus::AwaitingCitizen => "awaiting-citizen",
            CaseStatus::Completed => "completed",
            CaseStatus::Rejected => "rejected",
        }
    }
}

/// Where a work item stands in its department's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemStatus {
    /// Waiting for the department.
    Pending,
    /// The department finished it.
    Completed,
    /// The department refused it.
    Rejected,
    /// The applicant withdrew the case before the department finished.
    Cancelled,
    /// Not sent: the task is not on the task list of the office it would
    /// go to (事项清单); an operator approves (then it is pending) or
    /// refuses it (then it is refused). No department queue lists it.
    Held,
    /// Held, then refused by an operator: never sent, and the scenario was
    /// told as if the office had rejected it. No department queue lists it.
    Refused,
}

impl ItemStatus {
    /// Every status, in the order the department API lists them.
    pub const ALL: [ItemStatus; 4] = [
        ItemStatus::Pending,
        ItemStatus::Completed,
        ItemStatus::Rejected,
        ItemStatus::Cancelled,
    ];

    /// The status as it is written in JSON, e.g. `pending`.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Pending => "pending",
            ItemStatus::Completed => "completed",
            ItemStatus::Rejected => "rejected",
            ItemStatus::Cancelled => "cancelled",
            ItemStatus::Held => "held",
            ItemStatus::Refused => "refused",
        }
    }

    /// Whether the item is not finished: pending, or held for an operator.
    pub fn is_open(self) -> bool {
        matches!(self, ItemStatus::Pending | ItemStatus::Held)
    }

    /// Parses the `?status=` filter of the department API.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(ItemStatus::Pending),
            "completed" => Some(ItemStatus::Completed),
            "rejected" => Some(ItemStatus::Rejected),
            "cancelled" => Some(ItemStatus::Cancelled),
            _ => None,
        }
    }
}

/// A department's time limit for one item (办结时限).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "unit", content = "count")]
pub enum Due {
    /// Working days (weekends skipped), due at the same local time of day.
    WorkingDays(u32),
    /// Calendar hours from dispatch.
    Hours(u32),
    /// Minutes from dispatch.
    Minutes(u32),
}

/// How urgent a work item is (WIT `priority`). Stored and shown; nothing is
/// ordered by it yet (issue 15).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Priority {
    /// In turn (the default, and every item of a 0.1.0 plugin).
    #[default]
    Normal,
    /// Before the normal ones.
    Urgent,
}

/// A task dispatched to one department.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkItem {
    /// The item's id.
    pub id: String,
    /// The case it belongs to.
    pub case_id: String,
    /// The scenario of that case.
    pub scenario: String,
    /// The department that must do it.
    pub department: String,
    /// What to do.
    pub task: String,
    /// What the department needs to do it.
    pub payload: serde_json::Value,
    /// Where it stands.
    pub status: ItemStatus,
    /// The time limit as the plugin gave it.
    pub due: Due,
    /// When the time limit runs out.
    pub due_at: DateTime<Utc>,
    /// When it was dispatched.
    pub created_at: DateTime<Utc>,
    /// When the department completed or rejected it.
    pub finished_at: Option<DateTime<Utc>>,
    /// What the department reported on completion.
    pub result: Option<serde_json::Value>,
    /// The department's reason on rejection.
    pub reason: Option<String>,
    /// When the host *reported* the item overdue to its plugin (it does so
    /// once; the time it ran out is `due_at`). The item's JSON calls it
    /// `overdue_reported_at`, which says so; this field keeps its shorter
    /// name because it is the key stored in every item record (and of the
    /// due-time index's checks), so renaming it would need a migration for
    /// no change in meaning.
    #[serde(default)]
    pub overdue_at: Option<DateTime<Utc>>,
    /// How urgent the plugin said it is (records from before 0.2.0 read
    /// as normal).
    #[serde(default)]
    pub priority: Priority,
    /// The place the work is for (`cq/yubei/longxi/jinlong/g07`): the
    /// item's target place, or the case's place, or its ancestor at the
    /// target level; none when no place was known (see
    /// [`PlaceTree::route`](crate::places::PlaceTree::route)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    /// The place of the department's office that owns the item (its office
    /// at `place` or the nearest above it); none for an item routed before
    /// the place tree, or without any place and no single top office.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub office: Option<String>,
    /// Who completed or rejected it: the officer's id, or the department's
    /// for a token that names no officer (谁办理).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_by: Option<String>,
    /// The time limit at each level up when its time runs out, if the
    /// plugin asked for escalation: the item then moves to the same
    /// department's office one level up (see `Service::report_item_overdue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Due>,
    /// The places of the offices it moved up from, oldest first: they see
    /// it as `escalated`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalated_from: Vec<String>,
    /// The operator's note for the officer, when it was held off-list and
    /// then approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The time the owner office has to take the item (报到), as the
    /// plugin gave it; none: the item has no report step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_due: Option<Due>,
    /// When the report deadline at the current office runs out (set again
    /// from `report_due` when a missed report moves the item up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_due_at: Option<DateTime<Utc>>,
    /// When an office took it (explicitly, or by completing or rejecting
    /// it unreported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_at: Option<DateTime<Utc>>,
    /// Who took it: the officer's id, or the department's for a token that
    /// names no officer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_by: Option<String>,
    /// The offices (places) whose report deadline passed unreported, oldest
    /// first; the last is the current office when the top office missed it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub report_missed_by: Vec<String>,
}

/// Where an item with a report step stands (报到).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportState {
    /// Not taken yet, and no office has missed its deadline.
    Awaiting,
    /// Taken by its report deadline.
    Reported,
    /// Taken after its report deadline.
    Late,
    /// Not taken, and the deadline passed at an office (it moved up, or
    /// the top office missed it).
    Missed,
}

/// Where a pending item stands against its time limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeadlineState {
    /// Less than 60% of its time has passed (or it is finished).
    OnTime,
    /// 60% of its time or more has passed.
    Nearing,
    /// Its time is up.
    Overdue,
}

/// The share of an item's time after which it is `nearing`.
pub const NEARING_SHARE: f64 = 0.6;

impl WorkItem {
    /// Where the item stands against its time limit at `now`; a finished
    /// item is on time.
    pub fn deadline_state(&self, now: DateTime<Utc>) -> DeadlineState {
        if self.status != ItemStatus::Pending {
            return DeadlineState::OnTime;
        }
        if now >= self.due_at {
            return DeadlineState::Overdue;
        }
        let total = (self.due_at - self.created_at).num_milliseconds() as f64;
        let used = (now - self.created_at).num_milliseconds() as f64;
        if total > 0.0 && used / total >= NEARING_SHARE {
            DeadlineState::Nearing
        } else {
            DeadlineState::OnTime
        }
    }
}

impl WorkItem {
    /// Where its report step stands; none when it has no report step.
    pub fn report_state(&self) -> Option<ReportState> {
        let due_at = self.report_due_at?;
        Some(match self.reported_at {
            Some(at) if at <= due_at => ReportState::Reported,
            Some(_) => ReportState::Late,
            None if self.report_missed_by.is_empty() => ReportState::Awaiting,
            None => ReportState::Missed,
        })
    }

    /// The office a report is owed by: the owner office's place, or the
    /// department for an item no office owns.
    pub fn report_holder(&self) -> &str {
        self.office.as_deref().unwrap_or(&self.department)
    }

    /// The report deadline the deadline loop still has to act on: the
    /// item is pending, not taken, and its current office has not already
    /// missed it (a missed report fires once per office). The sled index
    /// `d/` holds exactly these.
    pub fn report_deadline(&self) -> Option<DateTime<Utc>> {
        let due_at = self.report_due_at?;
        let missed_here = self
            .report_missed_by
            .last()
            .is_some_and(|office| office == self.report_holder());
        (self.status == ItemStatus::Pending && self.reported_at.is_none() && !missed_here)
            .then_some(due_at)
    }
}

/// One entry of a case's append-only history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    #[serde(flatten)]
    pub event: TimelineEvent,
}

/// What can happen to a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum TimelineEvent {
    /// The applicant applied.
    Submitted {
        /// The plugin version that handles the case.
        plugin_version: String,
    },
    /// The plugin read a department's data for this case.
    DataRead {
        /// `DEPARTMENT/NAME`.
        dataset: String,
        /// Why, as the plugin said.
        purpose: String,
        /// Whether the grant allowed it.
        allowed: bool,
        /// Whether a record was found.
        found: bool,
    },
    /// A work item went to a department.
    ItemDispatched {
        /// The item's id.
        item_id: String,
        /// Its department.
        department: String,
        /// Its task.
        task: String,
        /// The place of the office it went to, if routed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        office: Option<String>,
    },
    /// A department completed an item.
    ItemCompleted {
        /// The item's id.
        item_id: String,
        /// Its department.
        department: String,
        /// The place of the office that owned it, if routed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        office: Option<String>,
        /// The officer who completed it (or the department, for a token
        /// that names no officer).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        handled_by: Option<String>,
    },
    /// A department rejected an item.
    ItemRejected {
        /// The item's id.
        item_id: String,
        /// Its department.
        department: String,
        /// The department's reason.
        reason: String,
        /// The place of the office that owned it, if routed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        office: Option<String>,
        /// The officer who rejected it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        handled_by: Option<String>,
    },
    /// The applicant supplied material.
    Supplement,
    /// The scenario cancelled a pending item (e.g. to compensate).
    ItemCancelled {
        /// The item's id.
        item_id: String,
        /// Its department.
        department: String,
    },
    /// The applicant withdrew the case; its open items were cancelled.
    Withdrawn {
        /// Why, in the applicant's words (may be empty).
        reason: String,
        /// The items that were cancelled.
        cancelled_items: Vec<String>,
    },
    /// An item was not sent: its task is not on the task list of the office
    /// it would go to; it waits for an operator.
    ItemHeld {
        /// The item's id.
        item_id: String,
        /// Its department.
        department: String,
        /// Its task.
        task: String,
        /// The place of the office it would go to.
        office: String,
    },
    /// An operator approved a held item: it is sent, with a note.
    ItemApproved {
        /// The item's id.
        item_id: String,
        /// Its department.
        department: String,
        /// The operator.
        by: String,
        /// The note for the officer.
        note: String,
    },
    /// An item's time ran out and it moved to its department's office one
    /// level up, with a new time limit; the plugin was told.
    ItemEscalated {
        /// The item's id.
        item_id: String,
        /// Its department.
        department: String,
        /// The place of the office that held it.
        from_office: String,
        /// The place of the office that holds it now.
        to_office: String,
        /// Its new deadline.
        due_at: DateTime<Utc>,
    },
    /// An office took an item (报到).
    ItemReported {
        /// The item's id.
        item_id: String,
        /// Its department.
        department: String,
        /// The place of the office that took it, if routed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        office: Option<String>,
        /// The officer who took it (or the department).
        handled_by: String,
    },
    /// An item's report deadline passed at its department's top office:
    /// recorded once, nothing moves.
    ReportMissed {
        /// The item's id.
        item_id: String,
        /// Its department.
        department: String,
        /// The office (place, or the department) that missed it.
        office: String,
    },
    /// An item's time ran out; the plugin was told.
    ItemOverdue {
        /// The item's id.
        item_id: String,
        /// Its department.
        department: String,
    },
    /// The case's place was set or changed.
    PlaceSet {
        /// The place id.
        place: String,
        /// Where it came from: `application`, `device` or `plugin`.
        source: String,
    },
    /// The applicant was told something.
    Notification {
        /// What they were told.
        message: String,
    },
    /// The plugin decided the case's status.
    StatusChanged {
        /// The new status.
        status: CaseStatus,
        /// The message for the applicant.
        message: String,
    },
    /// A plugin call failed; nothing it did was kept.
    CallFailed {
        /// What the call was for (`start`, `item-completed`, ...).
        call: String,
        /// The error's code, e.g. `plugin_timeout`.
        code: String,
        /// What went wrong.
        message: String,
    },
}

/// One application to one scenario (办件).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// The case's id.
    pub id: String,
    /// The scenario id.
    pub scenario: String,
    /// The plugin version the case is pinned to.
    pub plugin_version: String,
    /// Who applied.
    pub applicant: String,
    /// Where it stands.
    pub status: CaseStatus,
    /// The last message for the applicant.
    pub message: String,
    /// The plugin's own state, as JSON text.
    pub state: String,
    /// The application as submitted.
    pub application: serde_json::Value,
    /// Every item ever dispatched for the case, in order.
    pub item_ids: Vec<String>,
    /// The append-only history.
    pub timeline: Vec<TimelineEntry>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Bumped by every commit; storage refuses a commit made from a stale
    /// revision.
    pub revision: u64,
    /// Where the case is (a place id): from the application's place field,
    /// the reporting device's place, or set by the plugin; its items are
    /// routed from it. None until one of those gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    /// The person the case is about (the form's `subject` field): the
    /// applicant, or someone who gave the applicant a mandate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// What a scenario is, as its plugin describes it (the catalogue entry).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    /// The scenario id.
    pub id: String,
    /// The title shown to applicants.
    pub title: String,
    /// What the applicant gets done.
    pub description: String,
    /// Every department involved.
    pub departments: Vec<String>,
    /// The application form.
    pub fields: Vec<FieldSpec>,
}

/// One field of an application form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldSpec {
    /// The JSON key.
    pub name: String,
    /// Its type.
    #[serde(flatten)]
    pub kind: FieldKind,
    /// Whether it must be given.
    pub required: bool,
    /// A sentence for the applicant.
    pub description: String,
}

/// The type of an application field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FieldKind {
    /// A string.
    Text,
    /// A number.
    Number,
    /// true or false.
    Boolean,
    /// A `YYYY-MM-DD` date.
    Date,
    /// One of a list of strings.
    Choice {
        /// The allowed values.
        choices: Vec<String>,
    },
    /// The id of a place in the place tree (`cq/yubei/longxi`); the first
    /// place field given is the case's place.
    Place,
    /// The id number of the person the case is about (at most one such
    /// field): bound to the caller's token, or to a mandate the caller
    /// holds from that person (`service::apply`).
    Subject,
}
