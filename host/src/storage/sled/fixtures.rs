//! Records for the sled backend's unit tests.

use chrono::Utc;

use crate::model::{Case, CaseStatus, ItemStatus, WorkItem};
use crate::storage::{AuditRecord, Commit, IdempotencyRecord};

pub(super) fn case(id: &str, revision: u64) -> Case {
    Case {
        id: id.into(),
        scenario: "s".into(),
        plugin_version: "1.0.0".into(),
        applicant: "a".into(),
        status: CaseStatus::InProgress,
        message: String::new(),
        state: "{}".into(),
        application: serde_json::Value::Null,
        item_ids: Vec::new(),
        timeline: Vec::new(),
        created_at: Utc::now(),
        updated_at: Utc::now(),
        revision,
        place: None,
        subject: None,
    }
}

pub(super) fn commit(id: &str, expected: Option<u64>, revision: u64, key: Option<&str>) -> Commit {
    Commit {
        case: case(id, revision),
        expected_revision: expected,
        items: Vec::new(),
        audit: vec![AuditRecord::Decision {
            plugin: "s".into(),
            version: "1.0.0".into(),
            case_id: id.into(),
            status: CaseStatus::InProgress,
        }],
        idempotency: key.map(|k| IdempotencyRecord {
            scenario: "s".into(),
            key: k.into(),
            case_id: id.into(),
            fingerprint: "f".into(),
        }),
    }
}

pub(super) fn item(n: usize, case_id: &str, status: ItemStatus) -> WorkItem {
    WorkItem {
        id: format!("item-{n:02}"),
        case_id: case_id.into(),
        scenario: "s".into(),
        department: if n.is_multiple_of(2) { "even" } else { "odd" }.into(),
        task: "t".into(),
        payload: serde_json::Value::Null,
        status,
        due: crate::model::Due::Hours(1),
        due_at: Utc::now(),
        created_at: Utc::now(),
        finished_at: None,
        result: None,
        reason: None,
        overdue_at: None,
        priority: Default::default(),
        place: None,
        office: None,
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
