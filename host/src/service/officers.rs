//! Who may see and act on a department's work items (三级贯通, 谁办理、谁负责).
//!
//! An [`Officer`] belongs to one department and sits at one office (a
//! place where the department has an office), or names no place and then
//! stands for the department as a whole, acting at its top office:
//!
//! | | sees | acts on |
//! |---|---|---|
//! | officer at `P` | the department's items owned by offices at `P` and below (supervision) | the items owned by the office at `P` |
//! | no place | every item of the department | the items of its top office, and unrouted items |
//!
//! Another department's item, and an item outside the officer's area, is
//! 404, as if it did not exist; an item in the area that another office
//! owns is 403 `not_owner`. Ownership is by the item's office *place*,
//! which is a path of slugs: `cq/yubei/longxi` is at or below `cq/yubei`
//! by its id alone, so no tree is walked.

use crate::identity::{Caller, Role};
use crate::model::WorkItem;
use crate::places::PlaceTree;

use super::ServiceError;

/// An officer of a department, as a department token names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Officer {
    /// Who acts: recorded as `handled_by` (the officer's id, or the
    /// department's when the token names no officer).
    pub id: String,
    /// Their department.
    pub department: String,
    /// The place of their office; none: the department's top office.
    pub place: Option<String>,
}

impl Officer {
    /// The department itself, acting at its top office: what a token with
    /// no `department` claim is.
    pub fn department(department: &str) -> Self {
        Officer {
            id: department.to_owned(),
            department: department.to_owned(),
            place: None,
        }
    }

    /// The officer a department token names; none for other roles.
    pub fn from_caller(caller: &Caller) -> Option<Self> {
        if caller.role != Role::Department {
            return None;
        }
        Some(Officer {
            id: caller.subject.clone(),
            department: caller.department.clone()?,
            place: caller.place.clone(),
        })
    }

    /// Checks that the officer's place is an office of their department.
    pub fn check(&self, tree: &PlaceTree) -> Result<(), ServiceError> {
        let Some(place) = &self.place else {
            return Ok(());
        };
        if tree.get(place).is_none() {
            return Err(ServiceError::Forbidden(format!(
                "your token's place `{place}` is not in the place tree (see GET /v1/places)"
            )));
        }
        if !tree.has_office(&self.department, place) {
            return Err(ServiceError::Forbidden(format!(
                "department `{}` has no office at `{place}`: an officer's token names the place of their office",
                self.department
            )));
        }
        Ok(())
    }

    /// Whether `item` is in the officer's area: owned by an office at
    /// their place or below, or moved up from one (see
    /// [`Officer::sees_as_escalated`]).
    pub fn sees(&self, item: &WorkItem) -> bool {
        if item.department != self.department {
            return false;
        }
        match &self.place {
            None => true,
            Some(place) => {
                item.office
                    .as_deref()
                    .is_some_and(|office| at_or_below(office, place))
                    || self.sees_as_escalated(item)
            }
        }
    }

    /// Whether the officer sees `item` only because it moved up from an
    /// office in their area to one above it: they see it as `escalated`.
    pub fn sees_as_escalated(&self, item: &WorkItem) -> bool {
        let Some(place) = &self.place else {
            return false;
        };
        item.department == self.department
            && !item
                .office
                .as_deref()
                .is_some_and(|office| at_or_below(office, place))
            && item
                .escalated_from
                .iter()
                .any(|from| at_or_below(from, place))
    }

    /// Whether the officer's office owns `item` (which they see).
    pub fn owns(&self, item: &WorkItem, tree: &PlaceTree) -> bool {
        match &self.place {
            Some(place) => item.office.as_deref() == Some(place.as_str()),
            None => match &item.office {
                None => true,
                Some(office) => tree
                    .top_office(&self.department)
                    .is_some_and(|top| &top.id == office),
            },
        }
    }

    /// Refuses an action on `item` unless the officer may take it: 404
    /// outside their area, 403 `not_owner` for another office's item.
    pub fn may_act(&self, item: &WorkItem, tree: &PlaceTree) -> Result<(), ServiceError> {
        self.check(tree)?;
        if !self.sees(item) {
            return Err(ServiceError::NotFound {
                what: "work item",
                id: format!("{}/{}", self.department, item.id),
            });
        }
        if !self.owns(item, tree) {
            let owner = item.office.as_deref().unwrap_or("the department");
            let acting = self.place.as_deref().map_or_else(
                || {
                    tree.top_office(&self.department)
                        .map_or("no single top office".to_owned(), |p| p.id.clone())
                },
                str::to_owned,
            );
            return Err(ServiceError::NotOwner(format!(
                "work item {} is owned by the {} office at `{owner}`; your token acts at `{acting}`: only the owning office's officers complete or reject it",
                item.id, self.department
            )));
        }
        Ok(())
    }
}

/// Whether place `id` is `place` or below it.
pub fn at_or_below(id: &str, place: &str) -> bool {
    id == place
        || id
            .strip_prefix(place)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::places::{Office, Place};

    fn tree() -> PlaceTree {
        let place = |id: &str, level: &str| Place {
            id: id.into(),
            name: id.into(),
            level: level.into(),
            parent: id.rsplit_once('/').map(|(parent, _)| parent.to_owned()),
        };
        let office = |place: &str| Office {
            department: "ps".into(),
            place: place.into(),
        };
        PlaceTree::new(
            vec![
                place("cq", "city"),
                place("cq/yubei", "district"),
                place("cq/yubei/longxi", "town"),
                place("cq/jiangbei", "district"),
            ],
            vec![office("cq"), office("cq/yubei"), office("cq/jiangbei")],
        )
    }

    fn item(office: Option<&str>) -> WorkItem {
        let mut item: WorkItem = serde_json::from_value(serde_json::json!({
            "id": "i1", "case_id": "c1", "scenario": "s", "department": "ps",
            "task": "t", "payload": {}, "status": "pending",
            "due": {"unit": "hours", "count": 1}, "due_at": "2026-12-01T00:00:00Z",
            "created_at": "2026-12-01T00:00:00Z", "finished_at": null,
            "result": null, "reason": null
        }))
        .unwrap();
        item.office = office.map(str::to_owned);
        item
    }

    fn officer(place: Option<&str>) -> Officer {
        Officer {
            id: "li".into(),
            department: "ps".into(),
            place: place.map(str::to_owned),
        }
    }

    #[test]
    fn places_below_by_id() {
        assert!(at_or_below("cq/yubei", "cq/yubei"));
        assert!(at_or_below("cq/yubei/longxi", "cq/yubei"));
        assert!(!at_or_below("cq/yubeix", "cq/yubei"));
        assert!(!at_or_below("cq", "cq/yubei"));
    }

    #[test]
    fn an_officer_sees_their_area_and_acts_on_their_office() {
        let tree = tree();
        let yubei = item(Some("cq/yubei"));
        let district = officer(Some("cq/yubei"));
        assert!(district.may_act(&yubei, &tree).is_ok());
        let other = officer(Some("cq/jiangbei"));
        assert!(matches!(
            other.may_act(&yubei, &tree),
            Err(ServiceError::NotFound { .. })
        ));
        let city = officer(Some("cq"));
        assert!(city.sees(&yubei), "the city sees all of its department");
        assert!(matches!(
            city.may_act(&yubei, &tree),
            Err(ServiceError::NotOwner(_))
        ));
        // The department as a whole: its top office (cq) and unrouted items.
        let whole = officer(None);
        assert!(whole.sees(&yubei));
        assert!(matches!(
            whole.may_act(&yubei, &tree),
            Err(ServiceError::NotOwner(_))
        ));
        assert!(whole.may_act(&item(Some("cq")), &tree).is_ok());
        assert!(whole.may_act(&item(None), &tree).is_ok());
        assert!(
            !district.sees(&item(None)),
            "an unrouted item is no office's"
        );
        let mut elsewhere = item(Some("cq/yubei"));
        elsewhere.department = "tax".into();
        assert!(!whole.sees(&elsewhere));
    }

    #[test]
    fn a_token_at_a_place_without_an_office_is_refused() {
        let tree = tree();
        assert!(matches!(
            officer(Some("cq/yubei/longxi")).check(&tree),
            Err(ServiceError::Forbidden(_))
        ));
        assert!(matches!(
            officer(Some("cq/nowhere")).check(&tree),
            Err(ServiceError::Forbidden(_))
        ));
    }
}
