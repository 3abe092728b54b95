//! What the storage benchmarks share: a commit of one case and its items.

use chrono::Utc;
use onething_host::model::{Case, CaseStatus, WorkItem};
use onething_host::storage::{AuditRecord, Commit};

/// A new case `id` (scenario `bench`, in progress) with `items`.
pub fn commit(id: String, items: Vec<WorkItem>) -> Commit {
    Commit {
        case: Case {
            id: id.clone(),
            scenario: "bench".into(),
            plugin_version: "1.0.0".into(),
            applicant: "bench".into(),
            status: CaseStatus::InProgress,
            message: String::new(),
            state: "{}".into(),
            application: serde_json::Value::Null,
            item_ids: items.iter().map(|i| i.id.clone()).collect(),
            timeline: Vec::new(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            revision: 0,
            place: None,
            subject: None,
        },
        expected_revision: None,
        items,
        audit: vec![AuditRecord::Decision {
            plugin: "bench".into(),
            version: "1.0.0".into(),
            case_id: id,
            status: CaseStatus::InProgress,
        }],
        idempotency: None,
    }
}
