//! Work items: their time limit, target, priority and escalation.

use super::*;

/// A department's time limit for an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Working days (weekends and holidays do not count).
    WorkingDays(u32),
    /// Calendar hours.
    Hours(u32),
    /// Minutes.
    Minutes(u32),
}

impl From<Due> for wit::Due {
    fn from(d: Due) -> Self {
        match d {
            Due::WorkingDays(n) => wit::Due::WorkingDays(n),
            Due::Hours(n) => wit::Due::Hours(n),
            Due::Minutes(n) => wit::Due::Minutes(n),
        }
    }
}

impl From<wit::Due> for Due {
    fn from(d: wit::Due) -> Self {
        match d {
            wit::Due::WorkingDays(n) => Due::WorkingDays(n),
            wit::Due::Hours(n) => Due::Hours(n),
            wit::Due::Minutes(n) => Due::Minutes(n),
        }
    }
}

/// Which office of an item's department takes it. The host routes to the
/// department's office at the nearest place at or above the target
/// (grid → community → town → district → city).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The case's place, or its ancestor at this level (`district`).
    Level(String),
    /// A place of the tree (`cq/yubei`).
    Place(String),
}

impl From<Target> for wit::Target {
    fn from(t: Target) -> Self {
        match t {
            Target::Level(l) => wit::Target::Level(l),
            Target::Place(p) => wit::Target::Place(p),
        }
    }
}

/// How urgent a work item is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Priority {
    /// In turn.
    #[default]
    Normal,
    /// Before the normal ones.
    Urgent,
}

impl From<Priority> for wit::Priority {
    fn from(p: Priority) -> Self {
        match p {
            Priority::Normal => wit::Priority::Normal,
            Priority::Urgent => wit::Priority::Urgent,
        }
    }
}

/// A task for one department.
///
/// Build one with [`WorkItem::new`], then say where it goes and how it is
/// handled with the builders:
///
/// ```
/// use onething_sdk::{Due, Priority, Target, WorkItem};
///
/// let item = WorkItem::new(
///     "public-security",
///     "household-registration",
///     Due::WorkingDays(5),
///     serde_json::json!({"household_id": "H500103-20150321"}),
/// )
/// .at_level("district")
/// .urgent();
/// assert_eq!(item.target, Some(Target::Level("district".into())));
/// assert_eq!(item.priority, Priority::Urgent);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct WorkItem {
    /// The department, e.g. `public-security`; must be granted in the manifest.
    pub department: String,
    /// What to do, e.g. `household-registration`.
    pub task: String,
    /// What the department needs to do it.
    pub payload: serde_json::Value,
    /// The time limit.
    pub due: Due,
    /// Which office takes it. `None`: the department's office at or above
    /// the case's place, or its top office when the case has no place.
    pub target: Option<Target>,
    /// When set, an overdue item moves one level up with this time limit
    /// (and again at each level); `None`: it is reported overdue.
    pub escalation: Option<Due>,
    /// How urgent it is.
    pub priority: Priority,
    /// The time the office has to take the item (报到); `None`: no report
    /// step.
    pub report_due: Option<Due>,
}

impl WorkItem {
    /// An item for `department` to do `task` within `due`, with `payload`:
    /// routed from the case's place, normal priority, no escalation and no
    /// report step.
    pub fn new(department: &str, task: &str, due: Due, payload: serde_json::Value) -> Self {
        WorkItem {
            department: department.into(),
            task: task.into(),
            payload,
            due,
            target: None,
            escalation: None,
            priority: Priority::Normal,
            report_due: None,
        }
    }

    /// Sends the item to the department's office at the case's place's
    /// ancestor at `level` (or the nearest office above it): "the police
    /// office of the family's district". The case needs a place (from a
    /// form field or [`Outcome::at_place`] in the same call), unless the
    /// department has exactly one office at that level.
    ///
    /// ```
    /// use onething_sdk::{Due, Target, WorkItem};
    ///
    /// let item = WorkItem::new("hrss", "social-security-card", Due::WorkingDays(5),
    ///     serde_json::json!({})).at_level("city");
    /// assert_eq!(item.target, Some(Target::Level("city".into())));
    /// ```
    pub fn at_level(mut self, level: &str) -> Self {
        self.target = Some(Target::Level(level.into()));
        self
    }

    /// Sends the item to the department's office at `place` (or the
    /// nearest office above it), whatever the case's place.
    ///
    /// ```
    /// use onething_sdk::{Due, Target, WorkItem};
    ///
    /// let item = WorkItem::new("medical-insurance", "receive-transfer", Due::WorkingDays(5),
    ///     serde_json::json!({})).at_place("cq/jiangbei");
    /// assert_eq!(item.target, Some(Target::Place("cq/jiangbei".into())));
    /// ```
    pub fn at_place(mut self, place: &str) -> Self {
        self.target = Some(Target::Place(place.into()));
        self
    }

    /// When the item's time runs out, it moves to the same department's
    /// office one level up, due `next_due` from then (and again at each
    /// level up to the top office), and the plugin gets
    /// [`Event::ItemEscalated`]; once it is at the department's top office,
    /// a time that runs out is [`Event::ItemOverdue`], as without
    /// escalation.
    ///
    /// ```
    /// use onething_sdk::{Due, WorkItem};
    ///
    /// let item = WorkItem::new("community-grid", "handle", Due::Minutes(30),
    ///     serde_json::json!({})).escalates(Due::Hours(2));
    /// assert_eq!(item.escalation, Some(Due::Hours(2)));
    /// ```
    pub fn escalates(mut self, next_due: Due) -> Self {
        self.escalation = Some(next_due);
        self
    }

    /// Marks the item urgent: offices take it before the normal ones.
    ///
    /// ```
    /// use onething_sdk::{Due, Priority, WorkItem};
    ///
    /// let item = WorkItem::new("community-grid", "handle", Due::Minutes(30),
    ///     serde_json::json!({})).urgent();
    /// assert_eq!(item.priority, Priority::Urgent);
    /// ```
    pub fn urgent(mut self) -> Self {
        self.priority = Priority::Urgent;
        self
    }

    /// The office must take the item (报到) within `due`
    /// (`POST /v1/departments/{d}/items/{id}/report`, or by completing or
    /// rejecting it); you get [`Event::ItemReported`](crate::Event) when it
    /// does. If it does not, the host moves the item to its department's
    /// office one level up (you get `ItemEscalated`; the completion deadline
    /// stays), with a new report deadline of `due` there; at the top office
    /// the miss is recorded once and nothing moves.
    ///
    /// ```
    /// use onething_sdk::{Due, WorkItem};
    ///
    /// let item = WorkItem::new("community-grid", "handle", Due::Minutes(30),
    ///     serde_json::json!({})).reports_within(Due::Minutes(10));
    /// assert_eq!(item.report_due, Some(Due::Minutes(10)));
    /// ```
    pub fn reports_within(mut self, due: Due) -> Self {
        self.report_due = Some(due);
        self
    }

    /// The WIT work item, its payload as JSON text.
    pub(crate) fn into_wit(self) -> Result<wit::WorkItem, Error> {
        let payload = serde_json::to_string(&self.payload)
            .map_err(|e| Error::Invalid(format!("the payload cannot be serialised: {e}")))?;
        Ok(wit::WorkItem {
            department: self.department,
            task: self.task,
            payload,
            due: self.due.into(),
            target: self.target.map(Into::into),
            escalation: self.escalation.map(|next| wit::Escalation {
                next_due: next.into(),
            }),
            priority: self.priority.into(),
            report_due: self.report_due.map(Into::into),
        })
    }
}
