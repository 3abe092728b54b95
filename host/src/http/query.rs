//! Query strings: one parser of `name=value` pairs and of the paging
//! parameters (`limit`, `after`) that every listing takes, with its bounds
//! and defaults from the limits (`max_page_items`, and a default page per
//! listing). Values are taken as written (no percent-decoding): ids,
//! numbers and statuses need none.

use super::error::{ApiError, ErrorKind};
use crate::limits::LimitsConfig;
use crate::model::ItemStatus;
use crate::storage::OfficeStatus;

/// The paging bounds of the listings.
#[derive(Debug, Clone, Copy)]
pub(super) struct Paging {
    /// The largest `limit=` (at least 1).
    max: usize,
    /// A department queue's page without `limit=`.
    department_default: usize,
    /// An access log's page without `limit=`.
    access_log_default: usize,
    /// A page of places without `limit=`.
    places_default: usize,
}

impl Paging {
    /// The paging bounds of `limits` (defaults kept within 1..=max).
    pub(super) fn new(limits: &LimitsConfig) -> Self {
        let max = limits.max_page_items.max(1);
        Paging {
            max,
            department_default: limits.department_page_items.clamp(1, max),
            access_log_default: limits.access_log_page_items.clamp(1, max),
            places_default: limits.places_page_items.clamp(1, max),
        }
    }

    /// A `limit=` value within 1..=max.
    fn limit(&self, value: &str) -> Option<usize> {
        value.parse().ok().filter(|l| (1..=self.max).contains(l))
    }
}

/// Each `name=value` pair of `query`, as `(pair, name, value)`; a pair with
/// no `=` has no value. Empty pairs (`a=1&&b=2`) are skipped.
pub(super) fn pairs(query: Option<&str>) -> impl Iterator<Item = (&str, &str, Option<&str>)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => (pair, name, Some(value)),
            None => (pair, pair, None),
        })
}

/// Whether `query` has exactly the pair `name=value`.
pub(super) fn has_pair(query: Option<&str>, name: &str, value: &str) -> bool {
    pairs(query).any(|(_, n, v)| n == name && v == Some(value))
}

fn invalid(message: String) -> ApiError {
    ApiError::new(ErrorKind::InvalidQuery, message)
}

/// A page of a department's queue: `?status=&limit=&after=ITEM_ID`.
#[derive(Debug, PartialEq)]
pub(super) struct DepartmentPage {
    /// Only items of this status (or, for an officer, those that moved up
    /// from their office: `escalated`).
    pub status: Option<OfficeStatus>,
    /// `?report=awaiting`: only pending items not yet reported (报到).
    pub awaiting_report: bool,
    /// Items after this id (the previous page's `next_after`).
    pub after: Option<String>,
    /// At most this many.
    pub limit: usize,
}

/// A page of the place tree: `?under=ID&level=L&limit=N&after=ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PlacesPage {
    /// Which places.
    pub filter: crate::storage::PlaceFilter,
    /// Places after this id (the previous page's `next_after`).
    pub after: Option<String>,
    /// At most this many.
    pub limit: usize,
}

/// A page of a citizen's access log: `?after=SEQ&limit=N`.
#[derive(Debug, PartialEq)]
pub(super) struct AccessLogPage {
    /// Entries after this sequence number (0: from the start).
    pub after: u64,
    /// At most this many.
    pub limit: usize,
}

impl Paging {
    /// Parses a department queue's query.
    pub(super) fn department(&self, query: Option<&str>) -> Result<DepartmentPage, ApiError> {
        let mut page = DepartmentPage {
            status: None,
            awaiting_report: false,
            after: None,
            limit: self.department_default,
        };
        for (_, name, value) in pairs(query) {
            let value = value.unwrap_or_default();
            match name {
                "status" => {
                    page.status = Some(match value {
                        "escalated" => OfficeStatus::Escalated,
                        _ => OfficeStatus::Is(ItemStatus::parse(value).ok_or_else(|| {
                            invalid(format!(
                                "status `{value}` is not one of: pending, completed, rejected, cancelled, escalated"
                            ))
                        })?),
                    });
                }
                "report" if value == "awaiting" => page.awaiting_report = true,
                "report" => {
                    return Err(invalid(format!(
                        "report `{value}` is not a filter; use report=awaiting for the pending items not yet reported"
                    )));
                }
                "limit" => {
                    page.limit = self.limit(value).ok_or_else(|| {
                        invalid(format!(
                            "limit `{value}` is not a number from 1 to {}",
                            self.max
                        ))
                    })?;
                }
                "after" if !value.is_empty() => page.after = Some(value.to_owned()),
                "after" => {
                    return Err(invalid(
                        "after: give the `next_after` item id of the previous page".into(),
                    ));
                }
                other => {
                    return Err(invalid(format!(
                        "unknown query parameter `{other}`; use status, report, limit and after"
                    )));
                }
            }
        }
        if page.awaiting_report
            && page
                .status
                .is_some_and(|s| s != OfficeStatus::Is(ItemStatus::Pending))
        {
            return Err(invalid(
                "report=awaiting lists pending items: leave status out or give status=pending"
                    .into(),
            ));
        }
        Ok(page)
    }

    /// Parses the place listing's query.
    pub(super) fn places(&self, query: Option<&str>) -> Result<PlacesPage, ApiError> {
        let mut page = PlacesPage {
            filter: crate::storage::PlaceFilter::default(),
            after: None,
            limit: self.places_default,
        };
        for (pair, name, value) in pairs(query) {
            let bad = || {
                invalid(format!(
                    "`{pair}`: use under=PLACE_ID, level=LEVEL, after=PLACE_ID and limit=1..{}",
                    self.max
                ))
            };
            let value = value.filter(|v| !v.is_empty()).ok_or_else(bad)?;
            match name {
                "under" => page.filter.under = Some(value.to_owned()),
                "level" => page.filter.level = Some(value.to_owned()),
                "after" => page.after = Some(value.to_owned()),
                "limit" => page.limit = self.limit(value).ok_or_else(bad)?,
                _ => return Err(bad()),
            }
        }
        Ok(page)
    }

    /// Parses an access log's query.
    pub(super) fn access_log(&self, query: Option<&str>) -> Result<AccessLogPage, ApiError> {
        let mut page = AccessLogPage {
            after: 0,
            limit: self.access_log_default,
        };
        for (pair, name, value) in pairs(query) {
            let bad = || invalid(format!("`{pair}`: use after=SEQ and limit=1..{}", self.max));
            match (name, value) {
                ("after", Some(v)) => page.after = v.parse().map_err(|_| bad())?,
                ("limit", Some(v)) => page.limit = self.limit(v).ok_or_else(bad)?,
                _ => return Err(bad()),
            }
        }
        Ok(page)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn paging() -> Paging {
        Paging::new(&LimitsConfig::DEFAULT)
    }

    #[test]
    fn defaults_and_bounds_come_from_the_limits() {
        let p = paging();
        assert_eq!(p.department(None).unwrap().limit, 500);
        assert_eq!(p.access_log(None).unwrap().limit, 100);
        assert_eq!(p.department(Some("limit=1000")).unwrap().limit, 1000);
        assert!(p.department(Some("limit=1001")).is_err());
        assert!(p.department(Some("limit=0")).is_err());
        assert!(p.access_log(Some("limit=1001")).is_err());
        let small = Paging::new(&LimitsConfig {
            max_page_items: 10,
            ..LimitsConfig::DEFAULT
        });
        assert_eq!(small.department(None).unwrap().limit, 10);
        assert!(small.access_log(Some("limit=11")).is_err());
    }

    #[test]
    fn a_department_page_reads_status_after_and_limit() {
        let page = paging()
            .department(Some("status=pending&&after=i9&limit=2"))
            .unwrap();
        assert_eq!(
            page,
            DepartmentPage {
                status: Some(OfficeStatus::Is(ItemStatus::Pending)),
                awaiting_report: false,
                after: Some("i9".into()),
                limit: 2
            }
        );
        let awaiting = paging().department(Some("report=awaiting")).unwrap();
        assert!(awaiting.awaiting_report && awaiting.status.is_none());
        for bad in ["report=late", "report=awaiting&status=completed"] {
            let err = paging().department(Some(bad)).unwrap_err();
            assert_eq!(err.code(), "invalid_query", "{bad}");
        }
        for bad in ["status=done", "after=", "after", "page=2", "limit=x"] {
            let err = paging().department(Some(bad)).unwrap_err();
            assert_eq!(err.code(), "invalid_query", "{bad}");
        }
    }

    #[test]
    fn an_access_log_page_reads_after_and_limit() {
        let page = paging().access_log(Some("after=7&limit=3")).unwrap();
        assert_eq!(page, AccessLogPage { after: 7, limit: 3 });
        for bad in ["after=x", "after", "limit", "status=pending"] {
            let err = paging().access_log(Some(bad)).unwrap_err();
            assert_eq!(err.code(), "invalid_query", "{bad}");
        }
    }

    #[test]
    fn a_flag_is_one_exact_pair() {
        assert!(has_pair(Some("x=1&activate=true"), "activate", "true"));
        assert!(!has_pair(Some("activate=yes"), "activate", "true"));
        assert!(!has_pair(None, "activate", "true"));
    }
}
