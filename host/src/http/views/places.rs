//! What the place endpoints answer: a page of the place tree
//! (`GET /v1/places`) and what an import wrote (`POST /v1/admin/places`).

use serde::Serialize;

use crate::places::{ImportSummary, Place};

/// One place.
#[derive(Serialize)]
pub struct PlaceView<'a> {
    id: &'a str,
    level: &'a str,
    name: &'a str,
    parent: Option<&'a str>,
}

impl<'a> From<&'a Place> for PlaceView<'a> {
    fn from(p: &'a Place) -> Self {
        PlaceView {
            id: &p.id,
            level: &p.level,
            name: &p.name,
            parent: p.parent.as_deref(),
        }
    }
}

/// `GET /v1/places`: a page of places in id order.
#[derive(Serialize)]
pub struct PlacesView<'a> {
    /// The id to pass as `after=` for the next page; null on the last.
    pub next_after: Option<&'a str>,
    /// The places.
    pub places: Vec<PlaceView<'a>>,
}

/// `POST /v1/admin/places`: what the import wrote.
#[derive(Serialize)]
pub struct PlacesImportedView {
    /// New offices.
    pub offices: usize,
    /// New places.
    pub places: usize,
    /// Task lists set.
    pub task_lists: usize,
    /// Lines that repeated what the tree held.
    pub unchanged: usize,
}

impl From<ImportSummary> for PlacesImportedView {
    fn from(s: ImportSummary) -> Self {
        PlacesImportedView {
            offices: s.offices,
            places: s.places,
            task_lists: s.task_lists,
            unchanged: s.unchanged,
        }
    }
}
