//! How the sled backend lays out its one tree: the key prefixes, and the
//! encodings of the index keys (queues, open cases, due items, access log)
//! that let a prefix or range scan answer a read without decoding records
//! it does not return.

use super::writer::Pending;
use crate::model::{ItemStatus, WorkItem};
use crate::storage::{AuditEntry, AuditRecord};

pub(super) const CASES: &[u8] = b"c/";
pub(super) const ITEMS: &[u8] = b"i/";
// `d/<department>\0<item_id>` keys of data dirs written before the queue
// index are no longer read or written: the queue index lists every item.
pub(super) const DUE: &[u8] = b"u/";
/// Report deadlines (报到) not yet acted on:
/// `d/<report_due_at ms, 16 hex>\0<item_id>` → nothing, holding exactly
/// the items whose [`WorkItem::report_deadline`] is set. (The old
/// department keys under `d/` began with a letter past `f` or a hyphen,
/// so they never parse as a time and are skipped.)
pub(super) const REPORT_DUE: &[u8] = b"d/";
pub(super) const IDEMPOTENCY: &[u8] = b"k/";
pub(super) const DATASETS: &[u8] = b"s/";
pub(super) const AUDIT: &[u8] = b"a/";
pub(super) const FAILURES: &[u8] = b"f/";
pub(super) const AUDIT_HEAD: &[u8] = b"m/audit_head";
pub(super) const REGISTRY: &[u8] = b"r/";
/// Index of data reads by the person they concern: `x/<subject>\0<seq>`.
pub(super) const ACCESS: &[u8] = b"x/";
/// Set once every audit entry's reads are in the access index (a data dir
/// written before the index existed is indexed once, at open).
pub(super) const ACCESS_INDEXED: &[u8] = b"m/access_index_v1";
/// A department's items by status: `q/<department>\0<status>\0<item_id>`,
/// so that a queue of pending items is read without the finished ones.
pub(super) const QUEUE: &[u8] = b"q/";
/// A department's items by the offices that see them:
/// `w/<department>\0<place>\0<status>\0<item_id>`, one key for the owner
/// office's place and one for each place above it, so that an officer's
/// queue over their subtree is one range scan of their own place's keys.
pub(super) const OFFICE_QUEUE: &[u8] = b"w/";
/// Open cases by the plugin version they are pinned to:
/// `o/<scenario>\0<version>\0<case_id>`, so that counting them reads no
/// case and no finished case.
pub(super) const OPEN: &[u8] = b"o/";
/// Open cases by the person they are about: `j/<scenario>\0<subject>\0<case_id>`,
/// present while the case is open (`one_open_case_per_subject`).
pub(super) const SUBJECT_OPEN: &[u8] = b"j/";
/// Set once the queue and open-case indexes cover every item and case (a
/// data dir written before they existed is indexed once, at open).
pub(super) const CASES_INDEXED: &[u8] = b"m/case_index_v1";
/// Places by path id: `p/<id>` → place, so a subtree is a prefix scan.
pub(super) const PLACES: &[u8] = b"p/";
/// Places by level: `v/<level>\0<id>` → nothing.
pub(super) const LEVELS: &[u8] = b"v/";
/// Offices by department: `e/<department>\0<place>` → nothing.
pub(super) const OFFICES_OF: &[u8] = b"e/";
/// Task lists (事项清单): `t/level\0<level>` or `t/place\0<id>` → the list.
pub(super) const TASK_LISTS: &[u8] = b"t/";
/// Held items waiting for an operator: `h/<item_id>` → nothing.
pub(super) const HELD: &[u8] = b"h/";
/// Offices by place: `g/<place>\0<department>` → nothing.
pub(super) const OFFICES_AT: &[u8] = b"g/";

/// The queue-index key of an item with `status`.
pub(super) fn queue_key(item: &WorkItem, status: ItemStatus) -> Vec<u8> {
    key(
        QUEUE,
        &[
            item.department.as_bytes(),
            status.as_str().as_bytes(),
            item.id.as_bytes(),
        ],
    )
}

/// The place ids at and above `office` (`cq`, `cq/yubei`, …, `office`):
/// its prefixes at each `/`, since a place's id is its path.
pub(super) fn places_up(office: &str) -> impl Iterator<Item = &str> {
    office
        .match_indices('/')
        .map(|(at, _)| &office[..at])
        .chain(std::iter::once(office))
}

/// The office-queue keys of an item owned by the office at `office` with
/// `status`: one per place at and above the office.
pub(super) fn office_keys(item: &WorkItem, office: &str, status: ItemStatus) -> Vec<Vec<u8>> {
    places_up(office)
        .map(|place| {
            key(
                OFFICE_QUEUE,
                &[
                    item.department.as_bytes(),
                    place.as_bytes(),
                    status.as_str().as_bytes(),
                    item.id.as_bytes(),
                ],
            )
        })
        .collect()
}

/// The open-case-index key of a case.
pub(super) fn open_key(scenario: &str, version: &str, case_id: &str) -> Vec<u8> {
    key(
        OPEN,
        &[scenario.as_bytes(), version.as_bytes(), case_id.as_bytes()],
    )
}

/// The due-index key of an item.
pub(super) fn due_key(item: &WorkItem) -> Vec<u8> {
    due_key_at(item, item.due_at)
}

/// The due-index key of an item due at `due_at`.
pub(super) fn due_key_at(item: &WorkItem, due_at: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    // Times before 1970 do not occur; clamp rather than wrap.
    let millis = u64::try_from(due_at.timestamp_millis()).unwrap_or(0);
    key(DUE, &[&millis.to_be_bytes(), item.id.as_bytes()])
}

/// The report-deadline key of an item whose report is due at `due_at`.
pub(super) fn report_key_at(item_id: &str, due_at: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    let millis = u64::try_from(due_at.timestamp_millis()).unwrap_or(0);
    key(
        REPORT_DUE,
        &[format!("{millis:016x}").as_bytes(), item_id.as_bytes()],
    )
}

/// The time and item id of a report-deadline key (`None`: not one).
pub(super) fn parse_report_key(k: &[u8]) -> Option<(u64, &[u8])> {
    let rest = k.strip_prefix(REPORT_DUE)?;
    let (hex, tail) = (rest.get(..16)?, rest.get(16..)?);
    let item_id = tail.strip_prefix(&[0u8])?;
    let millis = u64::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
    Some((millis, item_id))
}

/// Stages the report-deadline key of `item`, whose stored version had
/// its report due at `stored` (see [`REPORT_DUE`]).
pub(super) fn index_report(
    item: &WorkItem,
    stored: Option<chrono::DateTime<chrono::Utc>>,
    out: &mut Pending,
) {
    if let Some(old) = stored.filter(|old| Some(*old) != item.report_due_at) {
        out.remove(report_key_at(&item.id, old));
    }
    match (item.report_deadline(), item.report_due_at) {
        (Some(at), _) => out.insert(report_key_at(&item.id, at), Vec::new()),
        (None, Some(at)) => out.remove(report_key_at(&item.id, at)),
        (None, None) => {}
    }
}

/// The office-queue keys that show `item` as `escalated` at each office
/// it moved up from.
pub(super) fn escalated_keys<'a>(
    item: &'a WorkItem,
    from: &'a [String],
) -> impl Iterator<Item = Vec<u8>> + 'a {
    from.iter().map(move |place| {
        key(
            OFFICE_QUEUE,
            &[
                item.department.as_bytes(),
                place.as_bytes(),
                ESCALATED.as_bytes(),
                item.id.as_bytes(),
            ],
        )
    })
}

/// The status an office's queue lists an item under at an office it moved
/// up from.
pub(super) const ESCALATED: &str = "escalated";

/// The access-index keys of an audit entry: one for the applicant and one
/// for the person whose record was read, if another.
pub(super) fn access_keys(entry: &AuditEntry) -> Vec<Vec<u8>> {
    let AuditRecord::DataRead {
        applicant,
        key: k,
        about,
        ..
    } = &entry.record
    else {
        return Vec::new();
    };
    let seq = entry.seq.to_be_bytes();
    let mut keys = vec![key(ACCESS, &[applicant.as_bytes(), &seq])];
    if k != applicant {
        keys.push(key(ACCESS, &[k.as_bytes(), &seq]));
    }
    if let Some(about) = about.as_ref().filter(|a| *a != applicant && *a != k) {
        keys.push(key(ACCESS, &[about.as_bytes(), &seq]));
    }
    keys
}

/// What the index keys of a stored item were made of.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub(super) struct Indexed {
    /// Its status.
    pub(super) status: ItemStatus,
    /// Its owner office's place.
    #[serde(default)]
    pub(super) office: Option<String>,
    /// Its deadline: the due index's key (an escalation moves it).
    pub(super) due_at: chrono::DateTime<chrono::Utc>,
    /// Its report deadline: the report index's key.
    #[serde(default)]
    pub(super) report_due_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Stages the queue keys of an item whose stored version was `stored`
/// (`None`: a new item): the department queue key moved from the old
/// status to the new, and the office-queue keys from the old office and
/// status to the new; a held item has only its review-queue key.
pub(super) fn index_item(item: &WorkItem, stored: Option<&Indexed>, out: &mut Pending) {
    if let Some(old) = stored {
        if old.status != item.status {
            out.remove(queue_key(item, old.status));
            if old.status == ItemStatus::Held {
                out.remove(key(HELD, &[item.id.as_bytes()]));
            }
        }
        if (old.status, &old.office) != (item.status, &item.office)
            && let Some(office) = &old.office
        {
            for k in office_keys(item, office, old.status) {
                out.remove(k);
            }
        }
        if old.due_at != item.due_at {
            out.remove(due_key_at(item, old.due_at));
        }
    }
    match item.status {
        // Sent to nobody: in the operators' review queue only, and once
        // refused in no queue at all.
        ItemStatus::Held => {
            out.insert(key(HELD, &[item.id.as_bytes()]), Vec::new());
            return;
        }
        ItemStatus::Refused => return,
        _ => {}
    }
    out.insert(queue_key(item, item.status), Vec::new());
    if let Some(office) = &item.office {
        for k in office_keys(item, office, item.status) {
            out.insert(k, Vec::new());
        }
    }
    for k in escalated_keys(item, &item.escalated_from) {
        out.insert(k, Vec::new());
    }
}

/// Stages the open-case keys of a case (by version, and by subject when
/// it has one): present while it is open.
pub(super) fn index_case(
    scenario: &str,
    version: &str,
    case_id: &str,
    subject: Option<&str>,
    open: bool,
    out: &mut Pending,
) {
    let mut keys = vec![open_key(scenario, version, case_id)];
    if let Some(subject) = subject {
        keys.push(key(
            SUBJECT_OPEN,
            &[scenario.as_bytes(), subject.as_bytes(), case_id.as_bytes()],
        ));
    }
    for k in keys {
        if open {
            out.insert(k, Vec::new());
        } else {
            out.remove(k);
        }
    }
}

/// `prefix` followed by `parts` joined with NUL.
pub(super) fn key(prefix: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut key = prefix.to_vec();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push(0);
        }
        key.extend_from_slice(part);
    }
    key
}
