//! The place import file, and its checks against the tree.
//!
//! JSON Lines, one object a line (blank lines skipped):
//! - a place: `{"id": "cq/yubei", "name": "渝北区", "level": "district",
//!   "parent": "cq"}` (`parent` left out for the root);
//! - an office: `{"office": {"department": "public-security", "place":
//!   "cq/yubei"}}`;
//! - a task list (事项清单) of a level or of one place: `{"task_list":
//!   {"level": "grid", "tasks": ["community-grid/stop-indoor-charging",
//!   "health/*"]}}` or `{"task_list": {"place": "cq/yubei/…/g07", "tasks":
//!   [...]}}`; it replaces the list of the same level or place (a list is
//!   what operators keep up to date), and an empty list takes nothing.
//!
//! All or nothing: every line is checked before anything is written, and
//! the first line that fails is named with what to change. A place's
//! parent may be in the tree already or anywhere in the same file. A line
//! that repeats what the tree holds is unchanged (not written again); a
//! place whose id the tree holds with another name, level or parent is
//! refused (places are not renamed or moved by import).

use std::collections::HashMap;

use serde::Deserialize;

use super::{ImportSummary, Office, Place, PlaceTree, TaskList, TaskScope, is_slug};
use crate::storage::StorageError;

/// Why an import was refused. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum PlacesError {
    /// A line cannot be imported.
    #[error("line {line}: {message}; nothing was imported")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong, and what to do.
        message: String,
    },
    /// The file has no places and no offices.
    #[error("the file has no places and no offices; nothing was imported")]
    Empty,
    /// Writing failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What an import adds to the tree: checked, new, in file order.
#[derive(Debug, Clone, Default)]
pub struct PlaceImport {
    /// New places.
    pub places: Vec<Place>,
    /// New offices.
    pub offices: Vec<Office>,
    /// Task lists to set.
    pub task_lists: Vec<TaskList>,
    /// Lines that repeat the tree.
    pub unchanged: usize,
}

impl PlaceImport {
    /// The counts.
    pub fn summary(&self) -> ImportSummary {
        ImportSummary {
            places: self.places.len(),
            offices: self.offices.len(),
            task_lists: self.task_lists.len(),
            unchanged: self.unchanged,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OfficeLine {
    office: Office,
}

fn refuse(line: usize, message: impl Into<String>) -> PlacesError {
    PlacesError::Line {
        line,
        message: message.into(),
    }
}

/// One line of the file.
enum Line {
    Place(Place),
    Office(Office),
    TaskList(TaskList),
}

/// Reads a `task_list` line.
fn read_task_list(line: usize, value: serde_json::Value) -> Result<TaskList, PlacesError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[serde(default)]
        level: Option<String>,
        #[serde(default)]
        place: Option<String>,
        tasks: Vec<String>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TaskListLine {
        task_list: Inner,
    }
    let shape = "a task list is {\"task_list\": {\"level\": L or \"place\": ID, \"tasks\": [\"DEPARTMENT/TASK\" or \"DEPARTMENT/*\", ...]}}";
    let parsed: TaskListLine =
        serde_json::from_value(value).map_err(|e| refuse(line, format!("{shape} ({e})")))?;
    let Inner {
        level,
        place,
        tasks,
    } = parsed.task_list;
    let scope = match (level, place) {
        (Some(level), None) => TaskScope::Level(level),
        (None, Some(place)) => TaskScope::Place(place),
        _ => {
            return Err(refuse(
                line,
                format!("{shape}: name a level or a place, not both"),
            ));
        }
    };
    for entry in &tasks {
        let valid = entry.split_once('/').is_some_and(|(department, task)| {
            onething_registry::is_name(department) && !task.trim().is_empty() && !task.contains('/')
        });
        if !valid {
            return Err(refuse(
                line,
                format!(
                    "task `{entry}` must be DEPARTMENT/TASK or DEPARTMENT/* (e.g. community-grid/stop-indoor-charging)"
                ),
            ));
        }
    }
    Ok(TaskList { scope, tasks })
}

/// Reads one line as a place, an office or a task list.
fn read_line(line: usize, text: &str) -> Result<Line, PlacesError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| refuse(line, format!("not valid JSON ({e})")))?;
    if value.get("task_list").is_some() {
        return read_task_list(line, value).map(Line::TaskList);
    }
    if value.get("office").is_some() {
        let office: OfficeLine = serde_json::from_value(value).map_err(|e| {
            refuse(
                line,
                format!("an office is {{\"office\": {{\"department\": D, \"place\": ID}}}} ({e})"),
            )
        })?;
        return Ok(Line::Office(office.office));
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct PlaceLine {
        id: String,
        name: String,
        level: String,
        #[serde(default)]
        parent: Option<String>,
    }
    let p: PlaceLine = serde_json::from_value(value).map_err(|e| {
        refuse(
            line,
            format!("a place is {{\"id\", \"name\", \"level\", \"parent\"?}} ({e})"),
        )
    })?;
    Ok(Line::Place(Place {
        id: p.id,
        name: p.name,
        level: p.level,
        parent: p.parent,
    }))
}

/// Checks a place's own fields: its id's slugs, its name, its level, and
/// that its id is its parent's id and one more slug.
fn check_place(line: usize, place: &Place) -> Result<(), PlacesError> {
    if !place.id.split('/').all(is_slug) {
        return Err(refuse(
            line,
            format!(
                "id `{}` must be slugs (a-z, 0-9, -) joined by `/`, e.g. cq/yubei",
                place.id
            ),
        ));
    }
    if !is_slug(&place.level) {
        return Err(refuse(
            line,
            format!(
                "level `{}` of {} must be a slug (a-z, 0-9, -), e.g. district",
                place.level, place.id
            ),
        ));
    }
    if place.name.trim().is_empty() {
        return Err(refuse(line, format!("{} has an empty name", place.id)));
    }
    let expected_parent = place.id.rsplit_once('/').map(|(parent, _)| parent);
    if place.parent.as_deref() != expected_parent {
        return Err(refuse(
            line,
            match expected_parent {
                Some(parent) => format!(
                    "{} must name its parent {parent} (its id without the last slug)",
                    place.id
                ),
                None => format!("{} is a root (one slug) and has no parent", place.id),
            },
        ));
    }
    Ok(())
}

/// Checks `text` against `tree`: what it adds, or the first line that
/// cannot be imported.
pub fn parse_import(text: &str, tree: &PlaceTree) -> Result<PlaceImport, PlacesError> {
    let mut import = PlaceImport::default();
    // New places of the file by id, with their line.
    let mut new: HashMap<String, (usize, Place)> = HashMap::new();
    let mut offices: Vec<(usize, Office)> = Vec::new();
    let mut lists: Vec<(usize, TaskList)> = Vec::new();
    for (index, text) in text.lines().enumerate() {
        let line = index + 1;
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        match read_line(line, text)? {
            Line::TaskList(list) => lists.push((line, list)),
            Line::Place(place) => {
                check_place(line, &place)?;
                if let Some((first, _)) = new.get(&place.id) {
                    return Err(refuse(
                        line,
                        format!("duplicate id {} (first on line {first})", place.id),
                    ));
                }
                match tree.get(&place.id) {
                    Some(stored) if *stored == place => import.unchanged += 1,
                    Some(stored) => {
                        return Err(refuse(
                            line,
                            format!(
                                "{} is already in the tree as {} ({}); an import adds places, it does not change them",
                                place.id, stored.name, stored.level
                            ),
                        ));
                    }
                    None => {
                        new.insert(place.id.clone(), (line, place));
                    }
                }
            }
            Line::Office(office) => offices.push((line, office)),
        }
    }
    // Parents and levels, once every new place is known.
    let mut ordered: Vec<&(usize, Place)> = new.values().collect();
    ordered.sort_by_key(|(line, _)| *line);
    for (line, place) in &ordered {
        let lookup = |id: &str| new.get(id).map(|(_, p)| p).or_else(|| tree.get(id));
        let mut above = place.parent.as_deref();
        while let Some(id) = above {
            let Some(ancestor) = lookup(id) else {
                return Err(refuse(
                    *line,
                    format!(
                        "the parent {id} of {} is neither in the tree nor in this file; add it first",
                        place.id
                    ),
                ));
            };
            if ancestor.level == place.level {
                return Err(refuse(
                    *line,
                    format!(
                        "{} has level {}, as its ancestor {} has: a level appears once on a path",
                        place.id, place.level, ancestor.id
                    ),
                ));
            }
            above = ancestor.parent.as_deref();
        }
    }
    let mut seen: HashMap<&Office, usize> = HashMap::new();
    for (line, office) in &offices {
        if !onething_registry::is_name(&office.department) {
            return Err(refuse(
                *line,
                format!(
                    "department `{}` must be lowercase letters, digits and `-`",
                    office.department
                ),
            ));
        }
        if !new.contains_key(&office.place) && tree.get(&office.place).is_none() {
            return Err(refuse(
                *line,
                format!(
                    "office of {} at unknown place {}; add the place first",
                    office.department, office.place
                ),
            ));
        }
        if let Some(first) = seen.insert(office, *line) {
            return Err(refuse(
                *line,
                format!(
                    "duplicate office of {} at {} (first on line {first})",
                    office.department, office.place
                ),
            ));
        }
        if tree.has_office(&office.department, &office.place) {
            import.unchanged += 1;
        } else {
            import.offices.push(office.clone());
        }
    }
    let mut scopes: HashMap<&TaskScope, usize> = HashMap::new();
    for (line, list) in &lists {
        match &list.scope {
            TaskScope::Level(level) if !is_slug(level) => {
                return Err(refuse(
                    *line,
                    format!("level `{level}` must be a slug (a-z, 0-9, -), e.g. grid"),
                ));
            }
            TaskScope::Place(place) if !new.contains_key(place) && tree.get(place).is_none() => {
                return Err(refuse(
                    *line,
                    format!("task list of unknown place {place}; add the place first"),
                ));
            }
            _ => {}
        }
        if let Some(first) = scopes.insert(&list.scope, *line) {
            return Err(refuse(
                *line,
                format!("a second task list for the same level or place (first on line {first})"),
            ));
        }
        if tree.task_list(&list.scope) == Some(list) {
            import.unchanged += 1;
        } else {
            import.task_lists.push(list.clone());
        }
    }
    import.places = ordered.into_iter().map(|(_, p)| p.clone()).collect();
    if import.places.is_empty()
        && import.offices.is_empty()
        && import.task_lists.is_empty()
        && import.unchanged == 0
    {
        return Err(PlacesError::Empty);
    }
    Ok(import)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    const TREE: &str = r#"{"id":"cq","name":"重庆市","level":"city"}
{"id":"cq/yubei","name":"渝北区","level":"district","parent":"cq"}
{"office":{"department":"hrss","place":"cq"}}
"#;

    fn refused(text: &str, tree: &PlaceTree) -> (usize, String) {
        match parse_import(text, tree).unwrap_err() {
            PlacesError::Line { line, message } => (line, message),
            other => panic!("{other}"),
        }
    }

    fn imported(text: &str) -> PlaceTree {
        let empty = PlaceTree::default();
        let import = parse_import(text, &empty).unwrap();
        empty.with(&import)
    }

    #[test]
    fn a_tree_with_offices_is_read() {
        let import = parse_import(TREE, &PlaceTree::default()).unwrap();
        assert_eq!(import.places.len(), 2);
        assert_eq!(import.offices.len(), 1);
        assert_eq!(import.places[0].id, "cq", "file order");
    }

    #[test]
    fn a_parent_later_in_the_file_is_fine() {
        let text = "{\"id\":\"cq/yubei\",\"name\":\"渝北区\",\"level\":\"district\",\"parent\":\"cq\"}\n{\"id\":\"cq\",\"name\":\"重庆市\",\"level\":\"city\"}\n";
        assert_eq!(
            parse_import(text, &PlaceTree::default())
                .unwrap()
                .places
                .len(),
            2
        );
    }

    #[test]
    fn every_refusal_names_its_line() {
        let empty = PlaceTree::default();
        let cases = [
            (
                "{\"id\":\"cq/yubei\",\"name\":\"x\",\"level\":\"district\",\"parent\":\"cq\"}",
                1,
                "parent cq",
            ),
            (
                "{\"id\":\"cq\",\"name\":\"x\",\"level\":\"city\"}\n{\"id\":\"cq\",\"name\":\"y\",\"level\":\"city\"}",
                2,
                "duplicate id cq",
            ),
            (
                "{\"id\":\"Cq\",\"name\":\"x\",\"level\":\"city\"}",
                1,
                "slugs",
            ),
            (
                "{\"id\":\"cq\",\"name\":\"x\",\"level\":\"City\"}",
                1,
                "level `City`",
            ),
            (
                "{\"id\":\"cq\",\"name\":\"x\",\"level\":\"city\"}\n\n{\"id\":\"cq/a\",\"name\":\"x\",\"level\":\"city\",\"parent\":\"cq\"}",
                3,
                "a level appears once",
            ),
            (
                "{\"id\":\"cq\",\"name\":\"x\",\"level\":\"city\"}\n{\"office\":{\"department\":\"tax\",\"place\":\"cq/nowhere\"}}",
                2,
                "unknown place cq/nowhere",
            ),
            (
                "{\"id\":\"cq/a\",\"name\":\"x\",\"level\":\"city\",\"parent\":\"cx\"}",
                1,
                "must name its parent cq",
            ),
            ("not json", 1, "not valid JSON"),
            (
                "{\"id\":\"cq\",\"name\":\"x\",\"level\":\"city\",\"colour\":1}",
                1,
                "a place is",
            ),
        ];
        for (text, line, words) in cases {
            let (got, message) = refused(text, &empty);
            assert_eq!(got, line, "{text}: {message}");
            assert!(message.contains(words), "{text}: {message}");
        }
    }

    #[test]
    fn reimporting_the_same_is_unchanged_and_a_change_is_refused() {
        let tree = imported(TREE);
        let again = parse_import(TREE, &tree).unwrap();
        assert_eq!(
            again.summary(),
            ImportSummary {
                places: 0,
                offices: 0,
                task_lists: 0,
                unchanged: 3
            }
        );
        let renamed = "{\"id\":\"cq\",\"name\":\"山城\",\"level\":\"city\"}";
        let (line, message) = refused(renamed, &tree);
        assert_eq!(line, 1);
        assert!(message.contains("does not change them"), "{message}");
    }

    #[test]
    fn an_import_adds_below_an_existing_tree() {
        let tree = imported(TREE);
        let text = "{\"id\":\"cq/yubei/longxi\",\"name\":\"龙溪街道\",\"level\":\"town\",\"parent\":\"cq/yubei\"}\n{\"office\":{\"department\":\"public-security\",\"place\":\"cq/yubei\"}}";
        let import = parse_import(text, &tree).unwrap();
        assert_eq!(
            import.summary(),
            ImportSummary {
                places: 1,
                offices: 1,
                task_lists: 0,
                unchanged: 0
            }
        );
        let level_clash =
            "{\"id\":\"cq/yubei/x\",\"name\":\"x\",\"level\":\"district\",\"parent\":\"cq/yubei\"}";
        assert_eq!(refused(level_clash, &tree).0, 1);
    }

    #[test]
    fn task_lists_are_read_replaced_and_checked() {
        let tree = imported(TREE);
        let text = r#"{"task_list":{"level":"district","tasks":["hrss/*","tax/filing"]}}
{"task_list":{"place":"cq","tasks":[]}}"#;
        let import = parse_import(text, &tree).unwrap();
        assert_eq!(import.summary().task_lists, 2);
        let tree = tree.with(&import);
        assert!(tree.takes("cq/yubei", "hrss", "anything"));
        assert!(tree.takes("cq/yubei", "tax", "filing"));
        assert!(!tree.takes("cq/yubei", "tax", "audit"));
        assert!(
            !tree.takes("cq", "hrss", "x"),
            "the place's own list: empty"
        );
        // The same again is unchanged; another list for a scope replaces it.
        assert_eq!(parse_import(text, &tree).unwrap().summary().unchanged, 2);
        let wider = r#"{"task_list":{"level":"district","tasks":["tax/*"]}}"#;
        let tree = tree.with(&parse_import(wider, &tree).unwrap());
        assert!(tree.takes("cq/yubei", "tax", "audit"));
        assert!(!tree.takes("cq/yubei", "hrss", "anything"));
        for (text, words) in [
            (
                r#"{"task_list":{"level":"grid","place":"cq","tasks":[]}}"#,
                "not both",
            ),
            (
                r#"{"task_list":{"place":"cq/nowhere","tasks":[]}}"#,
                "unknown place",
            ),
            (r#"{"task_list":{"level":"Grid","tasks":[]}}"#, "slug"),
            (
                r#"{"task_list":{"level":"grid","tasks":["stop"]}}"#,
                "DEPARTMENT/TASK",
            ),
            (
                "{\"task_list\":{\"level\":\"grid\",\"tasks\":[]}}\n{\"task_list\":{\"level\":\"grid\",\"tasks\":[\"a/b\"]}}",
                "second task list",
            ),
        ] {
            let (_, message) = refused(text, &tree);
            assert!(message.contains(words), "{text}: {message}");
        }
    }

    #[test]
    fn an_empty_file_is_refused() {
        assert!(matches!(
            parse_import("\n\n", &PlaceTree::default()),
            Err(PlacesError::Empty)
        ));
    }
}
