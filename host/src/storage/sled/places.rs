//! [`PlaceStore`] on sled: places under `p/<id>` (the path id, so a
//! subtree is a prefix scan), the level index `v/<level> NUL <id>`, offices
//! by department `e/<department> NUL <place>` and by place `g/<place> NUL
//! <department>`, task lists under `t/level NUL L` and `t/place NUL ID`;
//! imports through the writer.

use std::ops::Bound;

use async_trait::async_trait;

use super::keys::{LEVELS, OFFICES_AT, OFFICES_OF, PLACES, TASK_LISTS, key};
use super::writer::Write;
use super::{SledStorage, backend, decode, encode};
use crate::places::{Office, Place, TaskList, TaskScope};
use crate::storage::{AuditRecord, PlaceFilter, PlaceStore, StorageError};

/// The key of a task list: `t/level NUL L` or `t/place NUL ID`.
fn task_list_key(scope: &TaskScope) -> Vec<u8> {
    match scope {
        TaskScope::Level(level) => key(TASK_LISTS, &[b"level", level.as_bytes()]),
        TaskScope::Place(place) => key(TASK_LISTS, &[b"place", place.as_bytes()]),
    }
}

/// The place key of an id.
fn place_key(id: &str) -> Vec<u8> {
    key(PLACES, &[id.as_bytes()])
}

impl SledStorage {
    /// The ids after `after` (exclusive) under `prefix` + `from` in key
    /// order: the exact key `prefix + from` first, then `prefix + from +
    /// "/"…`; all of `prefix` when `from` is none. At most `limit`.
    fn ids_from(
        &self,
        prefix: &[u8],
        from: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StorageError> {
        let id_of = |k: &[u8]| String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
        let mut ids = Vec::new();
        let scan = |start: Vec<u8>, within: Vec<u8>, ids: &mut Vec<String>| {
            let lower = match after {
                Some(after) => {
                    let mut a = prefix.to_vec();
                    a.extend_from_slice(after.as_bytes());
                    if a >= start {
                        Bound::Excluded(a)
                    } else {
                        Bound::Included(start)
                    }
                }
                None => Bound::Included(start),
            };
            for entry in self.db.range::<Vec<u8>, _>((lower, Bound::Unbounded)) {
                if ids.len() >= limit {
                    break;
                }
                let (k, _) = entry.map_err(backend)?;
                if !k.starts_with(&within) {
                    break;
                }
                ids.push(id_of(&k));
            }
            Ok::<_, StorageError>(())
        };
        match from {
            None => scan(prefix.to_vec(), prefix.to_vec(), &mut ids)?,
            Some(from) => {
                let mut exact = prefix.to_vec();
                exact.extend_from_slice(from.as_bytes());
                let passed = after.is_some_and(|a| a >= from);
                if !passed && limit > 0 && self.db.contains_key(&exact).map_err(backend)? {
                    ids.push(from.to_owned());
                }
                let mut below = exact;
                below.push(b'/');
                scan(below.clone(), below, &mut ids)?;
            }
        }
        Ok(ids)
    }

    /// The offices whose keys start with `prefix`, each made from the
    /// rest of its key by `office` (none: a damaged key).
    fn scan_offices(
        &self,
        prefix: &[u8],
        office: impl Fn(&str) -> Option<Office>,
    ) -> Result<Vec<Office>, StorageError> {
        let mut offices = Vec::new();
        for entry in self.db.scan_prefix(prefix) {
            let (k, _) = entry.map_err(backend)?;
            let rest = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            offices.push(office(&rest).ok_or_else(|| StorageError::Corrupt {
                key: String::from_utf8_lossy(&k).into_owned(),
                message: "not an office key".into(),
            })?);
        }
        Ok(offices)
    }
}

#[async_trait]
impl PlaceStore for SledStorage {
    async fn import_places(
        &self,
        places: Vec<Place>,
        offices: Vec<Office>,
        task_lists: Vec<TaskList>,
        actor: &str,
    ) -> Result<(), StorageError> {
        let audit = vec![AuditRecord::Admin {
            actor: actor.to_owned(),
            action: "places.import".into(),
            subject: "places".into(),
            detail: format!(
                "{} places, {} offices, {} task lists",
                places.len(),
                offices.len(),
                task_lists.len()
            ),
        }];
        let mut writes = Vec::with_capacity(places.len() * 2 + offices.len() * 2);
        for place in &places {
            writes.push((place_key(&place.id), encode(place)?));
            writes.push((
                key(LEVELS, &[place.level.as_bytes(), place.id.as_bytes()]),
                Vec::new(),
            ));
        }
        for office in &offices {
            let (d, p) = (office.department.as_bytes(), office.place.as_bytes());
            writes.push((key(OFFICES_OF, &[d, p]), Vec::new()));
            writes.push((key(OFFICES_AT, &[p, d]), Vec::new()));
        }
        for list in &task_lists {
            writes.push((task_list_key(&list.scope), encode(list)?));
        }
        self.write(Write::Places(writes, audit)).await
    }

    async fn place(&self, id: &str) -> Result<Option<Place>, StorageError> {
        self.get(&place_key(id))
    }

    async fn places(
        &self,
        filter: &PlaceFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Place>, StorageError> {
        let mut places = Vec::new();
        match &filter.level {
            None => {
                for id in self.ids_from(PLACES, filter.under.as_deref(), after, limit)? {
                    places.extend(self.get::<Place>(&place_key(&id))?);
                }
            }
            Some(level) => {
                let prefix = key(LEVELS, &[level.as_bytes(), b""]);
                for id in self.ids_from(&prefix, filter.under.as_deref(), after, limit)? {
                    places.extend(self.get::<Place>(&place_key(&id))?);
                }
            }
        }
        Ok(places)
    }

    async fn offices_of(&self, department: &str) -> Result<Vec<Office>, StorageError> {
        let prefix = key(OFFICES_OF, &[department.as_bytes(), b""]);
        self.scan_offices(&prefix, |place| {
            Some(Office {
                department: department.to_owned(),
                place: place.to_owned(),
            })
        })
    }

    async fn offices_at(&self, place: &str) -> Result<Vec<Office>, StorageError> {
        let prefix = key(OFFICES_AT, &[place.as_bytes(), b""]);
        self.scan_offices(&prefix, |department| {
            Some(Office {
                department: department.to_owned(),
                place: place.to_owned(),
            })
        })
    }

    async fn all_places(&self) -> Result<Vec<Place>, StorageError> {
        let mut places = Vec::new();
        for entry in self.db.scan_prefix(PLACES) {
            let (k, v) = entry.map_err(backend)?;
            places.push(decode(&k, &v)?);
        }
        Ok(places)
    }

    async fn all_task_lists(&self) -> Result<Vec<TaskList>, StorageError> {
        let mut lists = Vec::new();
        for entry in self.db.scan_prefix(TASK_LISTS) {
            let (k, v) = entry.map_err(backend)?;
            lists.push(decode(&k, &v)?);
        }
        Ok(lists)
    }

    async fn all_offices(&self) -> Result<Vec<Office>, StorageError> {
        self.scan_offices(OFFICES_OF, |rest| {
            let (department, place) = rest.split_once('\0')?;
            Some(Office {
                department: department.to_owned(),
                place: place.to_owned(),
            })
        })
    }
}
