//! What happened to a case: the events `on_event` receives.

use super::*;

/// Something that happened to a case.
///
/// New kinds of event come with new contract versions, so the enum is
/// `#[non_exhaustive]`: end a match with a `_` arm, and match variants with
/// `..` so that fields added later do not break the plugin.
///
/// ```
/// use onething_sdk::Event;
///
/// fn who(event: &Event) -> Option<&str> {
///     match event {
///         Event::ItemCompleted { office, .. } | Event::ItemRejected { office, .. } => {
///             Some(office)
///         }
///         _ => None,
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A department completed an item.
    ItemCompleted {
        /// The item's id.
        item_id: String,
        /// The department.
        department: String,
        /// The item's task.
        task: String,
        /// What the department reports.
        result: serde_json::Value,
        /// The officer who completed it (谁办理), or the department when its
        /// token names no officer.
        handled_by: String,
        /// The office (`DEPARTMENT@PLACE`) that owned the item.
        office: String,
    },
    /// A department refused an item.
    ItemRejected {
        /// The item's id.
        item_id: String,
        /// The department.
        department: String,
        /// The item's task.
        task: String,
        /// The department's reason.
        reason: String,
        /// The officer who refused it, or the department.
        handled_by: String,
        /// The office (`DEPARTMENT@PLACE`) that owned the item.
        office: String,
    },
    /// An item is past its time limit.
    ItemOverdue {
        /// The item's id.
        item_id: String,
        /// The department.
        department: String,
        /// The item's task.
        task: String,
    },
    /// The applicant supplied material.
    Supplement(serde_json::Value),
    /// An item moved one level up because its time ran out (see
    /// [`WorkItem::escalates`]).
    ItemEscalated {
        /// The item's id.
        item_id: String,
        /// The department.
        department: String,
        /// The item's task.
        task: String,
        /// The office that held it.
        from_office: String,
        /// The office that holds it now.
        to_office: String,
        /// Its new time limit.
        due: Due,
    },
    /// An office took an item (报到; see [`WorkItem::reports_within`]).
    ItemReported {
        /// The item's id.
        item_id: String,
        /// The department.
        department: String,
        /// The item's task.
        task: String,
        /// The officer who took it, or the department.
        handled_by: String,
        /// The office (`DEPARTMENT@PLACE`) that took it.
        office: String,
    },
    /// The applicant rated the finished case (好差评), once.
    CaseRated {
        /// 1 (非常不满意) to 5 (非常满意).
        score: u8,
        /// Optional indicators (`efficiency`, `guide`, `convenience`,
        /// `platform`), each 1 to 5.
        indicators: Vec<(String, u8)>,
        /// The applicant's words.
        comment: String,
    },
}

fn parse_json(what: &str, text: &str) -> Result<serde_json::Value, Error> {
    serde_json::from_str(text).map_err(|e| Error::Invalid(format!("{what} is not JSON: {e}")))
}

impl TryFrom<wit::CaseEvent> for Event {
    type Error = Error;

    fn try_from(e: wit::CaseEvent) -> Result<Self, Error> {
        Ok(match e {
            wit::CaseEvent::ItemCompleted(c) => Event::ItemCompleted {
                result: parse_json("the item's result", &c.result)?,
                item_id: c.item_id,
                department: c.department,
                task: c.task,
                handled_by: c.handled_by,
                office: c.office,
            },
            wit::CaseEvent::ItemRejected(r) => Event::ItemRejected {
                item_id: r.item_id,
                department: r.department,
                task: r.task,
                reason: r.reason,
                handled_by: r.handled_by,
                office: r.office,
            },
            wit::CaseEvent::ItemOverdue(o) => Event::ItemOverdue {
                item_id: o.item_id,
                department: o.department,
                task: o.task,
            },
            wit::CaseEvent::Supplement(s) => Event::Supplement(parse_json("the supplement", &s)?),
            wit::CaseEvent::ItemEscalated(e) => Event::ItemEscalated {
                item_id: e.item_id,
                department: e.department,
                task: e.task,
                from_office: e.from_office,
                to_office: e.to_office,
                due: e.due.into(),
            },
            wit::CaseEvent::ItemReported(r) => Event::ItemReported {
                item_id: r.item_id,
                department: r.department,
                task: r.task,
                handled_by: r.handled_by,
                office: r.office,
            },
            wit::CaseEvent::CaseRated(r) => Event::CaseRated {
                score: r.score,
                indicators: r.indicators,
                comment: r.comment,
            },
        })
    }
}
