//! The in-memory index of the place tree: every place by id, and each
//! department's offices, so that routing asks "which office of this
//! department serves this place" without touching storage. Built once at
//! start and rebuilt (copied and extended) on import; readers hold an
//! `Arc` of the tree they started with, so an import never changes a tree
//! under a reader.

use std::collections::{HashMap, HashSet};

use super::{Office, Place, PlaceImport, TaskList, TaskScope};

/// The place tree and its offices, indexed.
#[derive(Debug, Clone, Default)]
pub struct PlaceTree {
    places: HashMap<String, Place>,
    /// Parent id (`""` for the roots) → the ids of its children, sorted.
    children: HashMap<String, Vec<String>>,
    /// Department → the ids of the places it has an office at.
    offices: HashMap<String, HashSet<String>>,
    office_count: usize,
    task_lists: HashMap<TaskScope, TaskList>,
}

impl PlaceTree {
    /// The index of `places` and `offices`.
    pub fn new(places: Vec<Place>, offices: Vec<Office>) -> Self {
        let mut tree = PlaceTree::default();
        tree.extend(places, offices);
        tree
    }

    fn extend(&mut self, places: Vec<Place>, offices: Vec<Office>) {
        for place in places {
            let parent = place.parent.clone().unwrap_or_default();
            if self
                .places
                .insert(place.id.clone(), place.clone())
                .is_none()
            {
                let siblings = self.children.entry(parent).or_default();
                if let Err(at) = siblings.binary_search(&place.id) {
                    siblings.insert(at, place.id);
                }
            }
        }
        for office in offices {
            if self
                .offices
                .entry(office.department)
                .or_default()
                .insert(office.place)
            {
                self.office_count += 1;
            }
        }
    }

    /// This tree with `lists` set (each replacing the list of its scope).
    pub fn with_task_lists(mut self, lists: Vec<TaskList>) -> Self {
        for list in lists {
            self.task_lists.insert(list.scope.clone(), list);
        }
        self
    }

    /// The children of place `id` (none: the roots), in id order.
    pub fn children<'a>(&'a self, id: Option<&str>) -> impl Iterator<Item = &'a Place> {
        self.children
            .get(id.unwrap_or_default())
            .into_iter()
            .flatten()
            .filter_map(|child| self.places.get(child))
    }

    /// The places of `level`, in id order.
    pub fn at_level(&self, level: &str) -> Vec<&Place> {
        let mut places: Vec<&Place> = self.places.values().filter(|p| p.level == level).collect();
        places.sort_by(|a, b| a.id.cmp(&b.id));
        places
    }

    /// The departments with an office at place `id`, in name order.
    pub fn departments_at(&self, id: &str) -> Vec<&str> {
        let mut departments: Vec<&str> = self
            .offices
            .iter()
            .filter(|(_, places)| places.contains(id))
            .map(|(department, _)| department.as_str())
            .collect();
        departments.sort_unstable();
        departments
    }

    /// A copy of this tree with what `import` adds.
    pub fn with(&self, import: &PlaceImport) -> Self {
        let mut next = self.clone();
        next.extend(import.places.clone(), import.offices.clone());
        next.with_task_lists(import.task_lists.clone())
    }

    /// The task list of `scope`, if one is set.
    pub fn task_list(&self, scope: &TaskScope) -> Option<&TaskList> {
        self.task_lists.get(scope)
    }

    /// The list that applies at place `id`: its own, else its level's;
    /// none: it takes any task.
    pub fn task_list_at(&self, id: &str) -> Option<&TaskList> {
        self.task_lists
            .get(&TaskScope::Place(id.to_owned()))
            .or_else(|| {
                let level = &self.get(id)?.level;
                self.task_lists.get(&TaskScope::Level(level.clone()))
            })
    }

    /// Whether an office at place `id` takes `department`'s `task`: yes
    /// unless a list applies there and does not name it.
    pub fn takes(&self, id: &str, department: &str, task: &str) -> bool {
        self.task_list_at(id)
            .is_none_or(|list| list.takes(department, task))
    }

    /// The place with this id.
    pub fn get(&self, id: &str) -> Option<&Place> {
        self.places.get(id)
    }

    /// How many places the tree has.
    pub fn len(&self) -> usize {
        self.places.len()
    }

    /// Whether the tree has no place.
    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    /// How many offices the tree has.
    pub fn office_count(&self) -> usize {
        self.office_count
    }

    /// Whether `department` has an office at `place`.
    pub fn has_office(&self, department: &str, place: &str) -> bool {
        self.offices
            .get(department)
            .is_some_and(|places| places.contains(place))
    }

    /// The ids of the places `department` has an office at, in no order.
    pub fn office_places<'a>(&'a self, department: &str) -> impl Iterator<Item = &'a str> {
        self.offices
            .get(department)
            .into_iter()
            .flat_map(|places| places.iter().map(String::as_str))
    }

    /// The places above `id`, nearest first (its parent, …, the root);
    /// empty for the root or an unknown id.
    pub fn ancestors<'a>(&'a self, id: &str) -> Ancestors<'a> {
        Ancestors {
            tree: self,
            next: self.places.get(id).and_then(|p| p.parent.as_deref()),
        }
    }

    /// The place of `department`'s office that serves `place`: its office
    /// at `place` itself or at the nearest place above it; none if the
    /// place is unknown or no place on the way up has one. This is what
    /// routing uses.
    pub fn office_for<'a>(&'a self, department: &str, place: &str) -> Option<&'a Place> {
        let at = self.offices.get(department)?;
        let here = self.places.get(place)?;
        std::iter::once(here)
            .chain(self.ancestors(place))
            .find(|p| at.contains(&p.id))
    }
}

/// The places above one, nearest first ([`PlaceTree::ancestors`]).
pub struct Ancestors<'a> {
    tree: &'a PlaceTree,
    next: Option<&'a str>,
}

impl<'a> Iterator for Ancestors<'a> {
    type Item = &'a Place;

    fn next(&mut self) -> Option<&'a Place> {
        let place = self.tree.places.get(self.next?)?;
        self.next = place.parent.as_deref();
        Some(place)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn place(id: &str, level: &str) -> Place {
        Place {
            id: id.into(),
            name: id.into(),
            level: level.into(),
            parent: id.rsplit_once('/').map(|(p, _)| p.to_owned()),
        }
    }

    fn office(department: &str, place: &str) -> Office {
        Office {
            department: department.into(),
            place: place.into(),
        }
    }

    fn tree() -> PlaceTree {
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
                office("public-security", "cq/yubei"),
                office("community-grid", "cq/yubei/longxi/jinlong/g07"),
                office("community-grid", "cq/yubei/longxi"),
            ],
        )
    }

    fn ids<'a>(places: impl Iterator<Item = &'a Place>) -> Vec<&'a str> {
        places.map(|p| p.id.as_str()).collect()
    }

    #[test]
    fn ancestors_are_nearest_first() {
        let tree = tree();
        assert_eq!(
            ids(tree.ancestors("cq/yubei/longxi/jinlong/g07")),
            [
                "cq/yubei/longxi/jinlong",
                "cq/yubei/longxi",
                "cq/yubei",
                "cq"
            ]
        );
        assert!(ids(tree.ancestors("cq")).is_empty());
        assert!(ids(tree.ancestors("cq/nowhere")).is_empty());
    }

    #[test]
    fn an_office_at_the_place_itself_serves_it() {
        let tree = tree();
        let at = tree
            .office_for("community-grid", "cq/yubei/longxi/jinlong/g07")
            .unwrap();
        assert_eq!(at.id, "cq/yubei/longxi/jinlong/g07");
    }

    #[test]
    fn the_nearest_office_above_serves_a_place_without_one() {
        let tree = tree();
        let at = tree
            .office_for("public-security", "cq/yubei/longxi/jinlong/g07")
            .unwrap();
        assert_eq!(at.id, "cq/yubei");
        let at = tree
            .office_for("community-grid", "cq/yubei/longxi/jinlong")
            .unwrap();
        assert_eq!(at.id, "cq/yubei/longxi", "the town's, not the grid below");
        assert_eq!(tree.office_for("hrss", "cq/jiangbei").unwrap().id, "cq");
    }

    #[test]
    fn no_office_on_the_way_up_is_none() {
        let tree = tree();
        assert!(tree.office_for("public-security", "cq/jiangbei").is_none());
        assert!(tree.office_for("public-security", "cq").is_none());
        assert!(tree.office_for("tax", "cq/yubei").is_none());
        assert!(tree.office_for("hrss", "cq/unknown").is_none());
    }

    #[test]
    fn counts_and_lookups() {
        let tree = tree();
        assert_eq!(tree.len(), 6);
        assert_eq!(tree.office_count(), 4);
        assert!(tree.has_office("hrss", "cq"));
        assert!(!tree.has_office("hrss", "cq/yubei"));
        assert_eq!(tree.get("cq/yubei").unwrap().level, "district");
    }
}
