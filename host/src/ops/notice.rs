//! What the service tells the operations stream about a work item, built
//! before the commit (the item moves into it) and published after.

use serde_json::{Value, json};

use super::{OpsEventKind, OpsStream};
use crate::model::WorkItem;

/// One event for the stream, waiting for its commit.
#[derive(Debug, Clone)]
pub struct OpsNotice {
    kind: OpsEventKind,
    place: Option<String>,
    data: Value,
}

impl OpsNotice {
    /// `kind` at `place` with `data`.
    pub fn new(kind: OpsEventKind, place: Option<String>, data: Value) -> Self {
        OpsNotice { kind, place, data }
    }

    /// `item` ran out of time at its department's top office.
    pub fn overdue(item: &WorkItem) -> Self {
        Self::about(OpsEventKind::ItemOverdue, item)
    }

    /// `item` moved one level up (already moved: its office is the new one).
    pub fn escalated(item: &WorkItem) -> Self {
        let mut notice = Self::about(OpsEventKind::ItemEscalated, item);
        notice.data["from_office"] = json!(item.escalated_from.last());
        notice
    }

    fn about(kind: OpsEventKind, item: &WorkItem) -> Self {
        let place = item.office.clone().or_else(|| item.place.clone());
        let data = json!({
            "item_id": item.id,
            "case_id": item.case_id,
            "scenario": item.scenario,
            "department": item.department,
            "task": item.task,
            "office": item.office,
            "place": item.place,
            "due_at": item.due_at,
        });
        OpsNotice { kind, place, data }
    }

    /// Publishes it (after its commit).
    pub fn publish(self, stream: &OpsStream) {
        stream.publish(self.kind, self.place, self.data);
    }
}
