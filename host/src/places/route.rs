//! Routing (三级贯通): which office of a department takes a work item.
//!
//! A work item names its department and, optionally, a [`Target`]: a level
//! (`district`) or a place (`cq/yubei/longxi/jinlong/g07`). The place the
//! work is *for* is the target place, or the ancestor-or-self of the case's
//! place at the target level, or the case's place itself; the item goes to
//! the department's office at that place or at the nearest place above it
//! (grid → community → town → district → city), and the item records both
//! (see [`Routed`]).
//!
//! Without any place (a case with no place and an item with no place
//! target) the item goes to the department's top office when it has exactly
//! one, and otherwise stays unrouted, in the department's queue as before
//! the place tree existed; so does an item of a department with no office
//! anywhere, even with a level target: a host without a tree behaves as it
//! always did.
//! Everything else that cannot be routed is refused ([`RouteError`]), and
//! the call that asked fails as `not-found`: nothing is dispatched.

use super::{Place, PlaceTree};

/// Where a plugin sends a work item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The ancestor-or-self of the case's place at this level (`district`).
    Level(String),
    /// This place.
    Place(String),
}

/// Where an item went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routed {
    /// The place the work is for (the target place, or the case's place,
    /// or its ancestor at the target level); none when no place was known.
    pub place: Option<String>,
    /// The place of the office that owns the item; none when the item is
    /// unrouted (no place known and no single top office).
    pub office: Option<String>,
}

/// Why an item cannot be routed. Each message names what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// A place that is not in the tree.
    #[error("the place `{0}` is not in the place tree (see GET /v1/places)")]
    UnknownPlace(String),
    /// No place at the target level at or above the base place.
    #[error("the place `{place}` has no `{level}` at or above it")]
    NoLevel {
        /// The base place.
        place: String,
        /// The target level.
        level: String,
    },
    /// A level target with no place to start from, and not exactly one
    /// office of the department at that level.
    #[error(
        "the case has no place, and department `{department}` has {count} offices at level `{level}`: target a place, or set the case's place first"
    )]
    NoBase {
        /// The department.
        department: String,
        /// The target level.
        level: String,
        /// How many offices it has there.
        count: usize,
    },
    /// No office of the department at the place or above it.
    #[error(
        "department `{department}` has no office at `{place}` or above it: import one (onething places import)"
    )]
    NoOffice {
        /// The department.
        department: String,
        /// The place the work is for.
        place: String,
    },
}

impl PlaceTree {
    /// Routes an item of `department` with `target`, for a case at
    /// `case_place` (see the module's rules).
    pub fn route(
        &self,
        department: &str,
        target: Option<&Target>,
        case_place: Option<&str>,
    ) -> Result<Routed, RouteError> {
        let base = match target {
            Some(Target::Place(place)) => Some(place.as_str()),
            _ => case_place,
        };
        let Some(base) = base else {
            return self.route_without_place(department, target);
        };
        let base = self
            .get(base)
            .ok_or_else(|| RouteError::UnknownPlace(base.to_owned()))?;
        let at = match target {
            Some(Target::Level(level)) => self
                .up_from(base)
                .find(|p| &p.level == level)
                .ok_or_else(|| RouteError::NoLevel {
                    place: base.id.clone(),
                    level: level.clone(),
                })?,
            _ => base,
        };
        let office = self
            .office_for(department, &at.id)
            .ok_or_else(|| RouteError::NoOffice {
                department: department.to_owned(),
                place: at.id.clone(),
            })?;
        Ok(Routed {
            place: Some(at.id.clone()),
            office: Some(office.id.clone()),
        })
    }

    /// `place` and the places above it, nearest first.
    fn up_from<'a>(&'a self, place: &'a Place) -> impl Iterator<Item = &'a Place> {
        std::iter::once(place).chain(self.ancestors(&place.id))
    }

    fn route_without_place(
        &self,
        department: &str,
        target: Option<&Target>,
    ) -> Result<Routed, RouteError> {
        // A department with no office anywhere is not placed: its work goes
        // to the department as a whole, as before the tree.
        if self.offices_of(department).next().is_none() {
            return Ok(Routed::default());
        }
        if let Some(Target::Level(level)) = target {
            let at_level: Vec<&Place> = self
                .offices_of(department)
                .filter(|p| &p.level == level)
                .collect();
            return match at_level.as_slice() {
                [one] => Ok(Routed {
                    place: Some(one.id.clone()),
                    office: Some(one.id.clone()),
                }),
                more => Err(RouteError::NoBase {
                    department: department.to_owned(),
                    level: level.clone(),
                    count: more.len(),
                }),
            };
        }
        Ok(Routed {
            place: None,
            office: self.top_office(department).map(|p| p.id.clone()),
        })
    }

    /// The places of `department`'s offices, in no order.
    pub fn offices_of<'a>(&'a self, department: &str) -> impl Iterator<Item = &'a Place> {
        self.office_places(department).filter_map(|id| self.get(id))
    }

    /// The department's top office: the one office of it that no other of
    /// its offices is above, if there is exactly one such (a department at
    /// `cq` and at districts has its top office at `cq`; one at two
    /// districts and nowhere above has none).
    pub fn top_office<'a>(&'a self, department: &str) -> Option<&'a Place> {
        let mut tops = self
            .offices_of(department)
            .filter(|p| self.office_above(department, p).is_none());
        let top = tops.next()?;
        tops.next().is_none().then_some(top)
    }

    /// The department's nearest office strictly above `place`.
    pub fn office_above<'a>(&'a self, department: &str, place: &Place) -> Option<&'a Place> {
        self.ancestors(&place.id)
            .find(|p| self.has_office(department, &p.id))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::places::Office;

    fn place(id: &str, level: &str) -> Place {
        Place {
            id: id.into(),
            name: id.into(),
            level: level.into(),
            parent: id.rsplit_once('/').map(|(p, _)| p.to_owned()),
        }
    }

    fn tree() -> PlaceTree {
        let office = |department: &str, place: &str| Office {
            department: department.into(),
            place: place.into(),
        };
        PlaceTree::new(
            vec![
                place("cq", "city"),
                place("cq/yubei", "district"),
                place("cq/yubei/longxi", "town"),
                place("cq/yubei/longxi/jinlong", "community"),
                place("cq/yubei/longxi/jinlong/g07", "grid"),
                place("cq/jiangbei", "district"),
            ],
            vec![
                office("hrss", "cq"),
                office("public-security", "cq"),
                office("public-security", "cq/yubei"),
                office("community-grid", "cq/yubei/longxi/jinlong/g07"),
                office("community-grid", "cq/yubei/longxi"),
                office("tax", "cq/yubei"),
                office("tax", "cq/jiangbei"),
            ],
        )
    }

    fn routed(place: &str, office: &str) -> Routed {
        Routed {
            place: Some(place.into()),
            office: Some(office.into()),
        }
    }

    const GRID: &str = "cq/yubei/longxi/jinlong/g07";

    #[test]
    fn the_case_place_routes_to_the_nearest_office_up() {
        let tree = tree();
        assert_eq!(
            tree.route("community-grid", None, Some(GRID)).unwrap(),
            routed(GRID, GRID)
        );
        assert_eq!(
            tree.route("public-security", None, Some(GRID)).unwrap(),
            routed(GRID, "cq/yubei")
        );
        assert_eq!(
            tree.route("public-security", None, Some("cq/jiangbei"))
                .unwrap(),
            routed("cq/jiangbei", "cq"),
            "no district office: the city's"
        );
    }

    #[test]
    fn a_level_target_takes_the_ancestor_at_that_level() {
        let tree = tree();
        let district = Target::Level("district".into());
        assert_eq!(
            tree.route("public-security", Some(&district), Some(GRID))
                .unwrap(),
            routed("cq/yubei", "cq/yubei")
        );
        let city = Target::Level("city".into());
        assert_eq!(
            tree.route("public-security", Some(&city), Some(GRID))
                .unwrap(),
            routed("cq", "cq")
        );
        let community = Target::Level("community".into());
        assert_eq!(
            tree.route("community-grid", Some(&community), Some(GRID))
                .unwrap(),
            routed("cq/yubei/longxi/jinlong", "cq/yubei/longxi"),
            "no office at the community: the town's"
        );
        let grid = Target::Level("grid".into());
        assert_eq!(
            tree.route("community-grid", Some(&grid), Some("cq/yubei")),
            Err(RouteError::NoLevel {
                place: "cq/yubei".into(),
                level: "grid".into()
            }),
            "a level below the case's place is not found"
        );
    }

    #[test]
    fn a_place_target_wins_over_the_case_place() {
        let tree = tree();
        let target = Target::Place(GRID.into());
        assert_eq!(
            tree.route("community-grid", Some(&target), Some("cq/jiangbei"))
                .unwrap(),
            routed(GRID, GRID)
        );
        let unknown = Target::Place("cq/nowhere".into());
        assert_eq!(
            tree.route("community-grid", Some(&unknown), None),
            Err(RouteError::UnknownPlace("cq/nowhere".into()))
        );
    }

    #[test]
    fn no_office_on_the_way_up_is_refused() {
        let tree = tree();
        let error = tree.route("community-grid", None, Some("cq/jiangbei"));
        assert_eq!(
            error,
            Err(RouteError::NoOffice {
                department: "community-grid".into(),
                place: "cq/jiangbei".into()
            })
        );
        let message = error.unwrap_err().to_string();
        assert!(message.contains("community-grid") && message.contains("cq/jiangbei"));
        assert!(matches!(
            tree.route("nobody", None, Some(GRID)),
            Err(RouteError::NoOffice { .. })
        ));
    }

    #[test]
    fn without_a_place_the_single_top_office_or_none() {
        let tree = tree();
        assert_eq!(
            tree.route("public-security", None, None).unwrap(),
            Routed {
                place: None,
                office: Some("cq".into())
            }
        );
        assert_eq!(
            tree.route("tax", None, None).unwrap(),
            Routed::default(),
            "two district offices and none above: unrouted"
        );
        assert_eq!(tree.route("nobody", None, None).unwrap(), Routed::default());
        let district = Target::Level("district".into());
        assert_eq!(
            tree.route("public-security", Some(&district), None)
                .unwrap(),
            routed("cq/yubei", "cq/yubei"),
            "one office at that level"
        );
        assert!(matches!(
            tree.route("tax", Some(&district), None),
            Err(RouteError::NoBase { count: 2, .. })
        ));
        assert_eq!(
            tree.route("nobody", Some(&district), None).unwrap(),
            Routed::default(),
            "a department with no office anywhere is not placed"
        );
        assert!(
            matches!(
                tree.route("nobody", Some(&district), Some("cq/yubei")),
                Err(RouteError::NoOffice { .. })
            ),
            "but with a place known, no office on the way up is refused"
        );
    }

    #[test]
    fn top_offices() {
        let tree = tree();
        assert_eq!(
            tree.top_office("community-grid").unwrap().id,
            "cq/yubei/longxi"
        );
        assert_eq!(tree.top_office("hrss").unwrap().id, "cq");
        assert!(tree.top_office("tax").is_none());
    }
}
