//! The route table: every endpoint of the HTTP contract, once. A request's
//! method and path are parsed into one [`Route`] (with its path
//! parameters), which the server dispatches on; a path that no endpoint
//! has is 404 `route_not_found`, a known path with another method 405
//! `method_not_allowed` (no `Allow` header). Paths are compared segment by
//! segment with leading and trailing `/` ignored.

use hyper::Method;

/// One endpoint of the API, with the parameters its path carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// `GET /healthz`.
    Healthz,
    /// `GET /metrics` (Prometheus text).
    Metrics,
    /// `GET /v1/scenarios`: the catalogue.
    Catalogue,
    /// `POST /v1/scenarios/{scenario}/cases`: a citizen applies.
    Apply {
        /// The scenario.
        scenario: &'a str,
    },
    /// `POST /v1/scenarios/{scenario}/events`: a device reports an event.
    DeviceEvent {
        /// The scenario.
        scenario: &'a str,
    },
    /// `GET /v1/me/access-log`: every read of the caller's data.
    AccessLog,
    /// `GET /v1/places[?under=ID&level=L&limit=N&after=ID]`: the place tree.
    Places,
    /// `GET /v1/cases/{case_id}`.
    Case {
        /// The case.
        case_id: &'a str,
    },
    /// `POST /v1/cases/{case_id}/supplements`.
    Supplement {
        /// The case.
        case_id: &'a str,
    },
    /// `POST /v1/cases/{case_id}/cancel`.
    Cancel {
        /// The case.
        case_id: &'a str,
    },
    /// `POST /v1/cases/{case_id}/evidence/{confirm|decline}`.
    Evidence {
        /// The case.
        case_id: &'a str,
        /// `true` for `confirm`, `false` for `decline`.
        confirm: bool,
    },
    /// `GET /v1/departments/{department}/items`: a page of the queue.
    DepartmentItems {
        /// The department.
        department: &'a str,
    },
    /// `POST /v1/departments/{department}/items/{item_id}/complete`.
    Complete {
        /// The department.
        department: &'a str,
        /// The item.
        item_id: &'a str,
    },
    /// `POST /v1/departments/{department}/items/{item_id}/reject`.
    Reject {
        /// The department.
        department: &'a str,
        /// The item.
        item_id: &'a str,
    },
    /// `GET /v1/ops/overview[?place=P]`: the one-screen figures.
    OpsOverview,
    /// `GET /v1/ops/ranking?level=L&month=YYYY-MM`: the monthly assessment.
    OpsRanking,
    /// `GET /v1/ops/stream[?place=P]`: Server-Sent Events of what changes
    /// the operations screen, resumable with `Last-Event-ID`.
    OpsStream,
    /// `POST /v1/departments/{department}/items/{item_id}/report`: the
    /// office takes the item (报到).
    Report {
        /// The department.
        department: &'a str,
        /// The item.
        item_id: &'a str,
    },
    /// `/v1/admin/…`: the operators' API.
    Admin(AdminRoute<'a>),
}

/// One endpoint of the operators' API under `/v1/admin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRoute<'a> {
    /// `GET /v1/admin/plugins`.
    Plugins,
    /// `POST /v1/admin/plugins[?activate=true]`: upload a package.
    Upload,
    /// `GET /v1/admin/plugins/{id}`.
    Plugin {
        /// The plugin.
        id: &'a str,
    },
    /// `POST /v1/admin/plugins/{id}/activate`.
    Activate {
        /// The plugin.
        id: &'a str,
    },
    /// `POST /v1/admin/plugins/{id}/rollback`.
    Rollback {
        /// The plugin.
        id: &'a str,
    },
    /// `POST /v1/admin/plugins/{id}/deactivate`.
    Deactivate {
        /// The plugin.
        id: &'a str,
    },
    /// `POST /v1/admin/plugins/{id}/reactivate`.
    Reactivate {
        /// The plugin.
        id: &'a str,
    },
    /// `DELETE /v1/admin/plugins/{id}/versions/{version}`.
    RemoveVersion {
        /// The plugin.
        id: &'a str,
        /// The version, as written in the path.
        version: &'a str,
    },
    /// `GET /v1/admin/held`: items held off a task list.
    Held,
    /// `POST /v1/admin/held/{item_id}/approve`.
    ApproveHeld {
        /// The item.
        item_id: &'a str,
    },
    /// `POST /v1/admin/held/{item_id}/refuse`.
    RefuseHeld {
        /// The item.
        item_id: &'a str,
    },
    /// `GET /v1/admin/clock`: the host's time.
    Clock,
    /// `POST /v1/admin/clock`: move the test clock forward.
    MoveClock,
    /// `GET /v1/admin/keys`.
    Keys,
    /// `POST /v1/admin/keys`: trust a key.
    TrustKey,
    /// `DELETE /v1/admin/keys/{key_id}`.
    RevokeKey {
        /// The key.
        key_id: &'a str,
    },
    /// `GET /v1/admin/grants`.
    Grants,
    /// `PUT /v1/admin/grants/{department}`.
    SetGrants {
        /// The department.
        department: &'a str,
    },
    /// `POST /v1/admin/places`: import places and offices (JSON Lines).
    ImportPlaces,
    /// `PUT /v1/admin/datasets/{department}/{name}?key=FIELD`: replace a
    /// dataset (JSON Lines).
    ReplaceDataset {
        /// The department that keeps it.
        department: &'a str,
        /// Its name within the department.
        name: &'a str,
    },
}

/// Why a request has no route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoute {
    /// Whether the path is known (405) or not (404).
    pub known_path: bool,
    /// Whether the path is under `/v1/admin` (answered only to an operator,
    /// with the admin API's wording).
    pub admin: bool,
}

/// The route among `options` (the methods a known path takes) that
/// `method` names, or 405.
fn pick<'a, const N: usize>(
    method: &Method,
    options: [(Method, Route<'a>); N],
) -> Result<Route<'a>, NoRoute> {
    options
        .into_iter()
        .find(|(m, _)| m == method)
        .map(|(_, route)| route)
        .ok_or(NoRoute {
            known_path: true,
            admin: false,
        })
}

/// Like [`pick`], for the admin API.
fn pick_admin<'a, const N: usize>(
    method: &Method,
    options: [(Method, AdminRoute<'a>); N],
) -> Result<Route<'a>, NoRoute> {
    pick(method, options.map(|(m, route)| (m, Route::Admin(route)))).map_err(|mut no| {
        no.admin = true;
        no
    })
}

impl<'a> Route<'a> {
    /// The route of `method` on `path`: the one table of the API.
    pub fn parse(method: &Method, path: &'a str) -> Result<Route<'a>, NoRoute> {
        let segments: Vec<&str> = path
            .trim_start_matches('/')
            .trim_end_matches('/')
            .split('/')
            .collect();
        let m = method;
        match segments.as_slice() {
            ["healthz"] => pick(m, [(Method::GET, Route::Healthz)]),
            ["metrics"] => pick(m, [(Method::GET, Route::Metrics)]),
            ["v1", "scenarios"] => pick(m, [(Method::GET, Route::Catalogue)]),
            ["v1", "scenarios", scenario, "cases"] => {
                pick(m, [(Method::POST, Route::Apply { scenario })])
            }
            ["v1", "scenarios", scenario, "events"] => {
                pick(m, [(Method::POST, Route::DeviceEvent { scenario })])
            }
            ["v1", "me", "access-log"] => pick(m, [(Method::GET, Route::AccessLog)]),
            ["v1", "places"] => pick(m, [(Method::GET, Route::Places)]),
            ["v1", "ops", "overview"] => pick(m, [(Method::GET, Route::OpsOverview)]),
            ["v1", "ops", "ranking"] => pick(m, [(Method::GET, Route::OpsRanking)]),
            ["v1", "ops", "stream"] => pick(m, [(Method::GET, Route::OpsStream)]),
            ["v1", "cases", case_id] => pick(m, [(Method::GET, Route::Case { case_id })]),
            ["v1", "cases", case_id, "supplements"] => {
                pick(m, [(Method::POST, Route::Supplement { case_id })])
            }
            ["v1", "cases", case_id, "cancel"] => {
                pick(m, [(Method::POST, Route::Cancel { case_id })])
            }
            [
                "v1",
                "cases",
                case_id,
                "evidence",
                answer @ ("confirm" | "decline"),
            ] => {
                let confirm = *answer == "confirm";
                pick(m, [(Method::POST, Route::Evidence { case_id, confirm })])
            }
            ["v1", "departments", department, "items"] => {
                pick(m, [(Method::GET, Route::DepartmentItems { department })])
            }
            [
                "v1",
                "departments",
                department,
                "items",
                item_id,
                "complete",
            ] => pick(
                m,
                [(
                    Method::POST,
                    Route::Complete {
                        department,
                        item_id,
                    },
                )],
            ),
            ["v1", "departments", department, "items", item_id, "reject"] => pick(
                m,
                [(
                    Method::POST,
                    Route::Reject {
                        department,
                        item_id,
                    },
                )],
            ),
            ["v1", "departments", department, "items", item_id, "report"] => pick(
                m,
                [(
                    Method::POST,
                    Route::Report {
                        department,
                        item_id,
                    },
                )],
            ),
            ["v1", "admin", rest @ ..] => Self::parse_admin(m, rest),
            _ => Err(NoRoute {
                known_path: false,
                admin: false,
            }),
        }
    }

    /// The admin API's part of the table (`rest` follows `/v1/admin/`).
    fn parse_admin(m: &Method, rest: &[&'a str]) -> Result<Route<'a>, NoRoute> {
        use AdminRoute as A;
        match rest {
            ["plugins"] => pick_admin(m, [(Method::GET, A::Plugins), (Method::POST, A::Upload)]),
            ["plugins", id] => pick_admin(m, [(Method::GET, A::Plugin { id })]),
            ["plugins", id, "activate"] => pick_admin(m, [(Method::POST, A::Activate { id })]),
            ["plugins", id, "rollback"] => pick_admin(m, [(Method::POST, A::Rollback { id })]),
            ["plugins", id, "deactivate"] => pick_admin(m, [(Method::POST, A::Deactivate { id })]),
            ["plugins", id, "reactivate"] => pick_admin(m, [(Method::POST, A::Reactivate { id })]),
            ["plugins", id, "versions", version] => {
                pick_admin(m, [(Method::DELETE, A::RemoveVersion { id, version })])
            }
            ["keys"] => pick_admin(m, [(Method::GET, A::Keys), (Method::POST, A::TrustKey)]),
            ["keys", key_id] => pick_admin(m, [(Method::DELETE, A::RevokeKey { key_id })]),
            ["grants"] => pick_admin(m, [(Method::GET, A::Grants)]),
            ["grants", department] => pick_admin(m, [(Method::PUT, A::SetGrants { department })]),
            ["places"] => pick_admin(m, [(Method::POST, A::ImportPlaces)]),
            ["datasets", department, name] => {
                pick_admin(m, [(Method::PUT, A::ReplaceDataset { department, name })])
            }
            ["clock"] => pick_admin(m, [(Method::GET, A::Clock), (Method::POST, A::MoveClock)]),
            ["held"] => pick_admin(m, [(Method::GET, A::Held)]),
            ["held", item_id, "approve"] => {
                pick_admin(m, [(Method::POST, A::ApproveHeld { item_id })])
            }
            ["held", item_id, "refuse"] => {
                pick_admin(m, [(Method::POST, A::RefuseHeld { item_id })])
            }
            _ => Err(NoRoute {
                known_path: false,
                admin: true,
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    fn ok(method: Method, path: &str) -> Route<'_> {
        match Route::parse(&method, path) {
            Ok(route) => route,
            Err(no) => panic!("{method} {path}: {no:?}"),
        }
    }

    #[test]
    fn every_endpoint_parses_to_its_route() {
        use AdminRoute as A;
        let cases: Vec<(Method, &str, Route<'static>)> = vec![
            (Method::GET, "/healthz", Route::Healthz),
            (Method::GET, "/metrics", Route::Metrics),
            (Method::GET, "/v1/scenarios", Route::Catalogue),
            (
                Method::POST,
                "/v1/scenarios/newborn/cases",
                Route::Apply {
                    scenario: "newborn",
                },
            ),
            (
                Method::POST,
                "/v1/scenarios/ebike/events",
                Route::DeviceEvent { scenario: "ebike" },
            ),
            (Method::GET, "/v1/me/access-log", Route::AccessLog),
            (Method::GET, "/v1/places", Route::Places),
            (Method::GET, "/v1/ops/overview", Route::OpsOverview),
            (Method::GET, "/v1/ops/ranking", Route::OpsRanking),
            (Method::GET, "/v1/ops/stream", Route::OpsStream),
            (Method::GET, "/v1/cases/c1", Route::Case { case_id: "c1" }),
            (
                Method::POST,
                "/v1/cases/c1/supplements",
                Route::Supplement { case_id: "c1" },
            ),
            (
                Method::POST,
                "/v1/cases/c1/cancel",
                Route::Cancel { case_id: "c1" },
            ),
            (
                Method::POST,
                "/v1/cases/c1/evidence/confirm",
                Route::Evidence {
                    case_id: "c1",
                    confirm: true,
                },
            ),
            (
                Method::POST,
                "/v1/cases/c1/evidence/decline",
                Route::Evidence {
                    case_id: "c1",
                    confirm: false,
                },
            ),
            (
                Method::GET,
                "/v1/departments/hrss/items",
                Route::DepartmentItems { department: "hrss" },
            ),
            (
                Method::POST,
                "/v1/departments/hrss/items/i1/complete",
                Route::Complete {
                    department: "hrss",
                    item_id: "i1",
                },
            ),
            (
                Method::POST,
                "/v1/departments/hrss/items/i1/reject",
                Route::Reject {
                    department: "hrss",
                    item_id: "i1",
                },
            ),
            (
                Method::POST,
                "/v1/departments/hrss/items/i1/report",
                Route::Report {
                    department: "hrss",
                    item_id: "i1",
                },
            ),
            (Method::GET, "/v1/admin/plugins", Route::Admin(A::Plugins)),
            (Method::POST, "/v1/admin/plugins", Route::Admin(A::Upload)),
            (
                Method::GET,
                "/v1/admin/plugins/p",
                Route::Admin(A::Plugin { id: "p" }),
            ),
            (
                Method::POST,
                "/v1/admin/plugins/p/activate",
                Route::Admin(A::Activate { id: "p" }),
            ),
            (
                Method::POST,
                "/v1/admin/plugins/p/rollback",
                Route::Admin(A::Rollback { id: "p" }),
            ),
            (
                Method::POST,
                "/v1/admin/plugins/p/deactivate",
                Route::Admin(A::Deactivate { id: "p" }),
            ),
            (
                Method::POST,
                "/v1/admin/plugins/p/reactivate",
                Route::Admin(A::Reactivate { id: "p" }),
            ),
            (
                Method::DELETE,
                "/v1/admin/plugins/p/versions/1.0.0",
                Route::Admin(A::RemoveVersion {
                    id: "p",
                    version: "1.0.0",
                }),
            ),
            (Method::GET, "/v1/admin/keys", Route::Admin(A::Keys)),
            (Method::POST, "/v1/admin/keys", Route::Admin(A::TrustKey)),
            (
                Method::DELETE,
                "/v1/admin/keys/k1",
                Route::Admin(A::RevokeKey { key_id: "k1" }),
            ),
            (Method::GET, "/v1/admin/grants", Route::Admin(A::Grants)),
            (
                Method::PUT,
                "/v1/admin/grants/hrss",
                Route::Admin(A::SetGrants { department: "hrss" }),
            ),
            (
                Method::POST,
                "/v1/admin/places",
                Route::Admin(A::ImportPlaces),
            ),
            (
                Method::PUT,
                "/v1/admin/datasets/health/birth-certificates",
                Route::Admin(A::ReplaceDataset {
                    department: "health",
                    name: "birth-certificates",
                }),
            ),
        ];
        for (method, path, want) in cases {
            assert_eq!(ok(method.clone(), path), want, "{method} {path}");
            // A trailing slash is the same path.
            let slashed = format!("{path}/");
            assert_eq!(ok(method.clone(), &slashed), want, "{method} {slashed}");
        }
    }

    #[test]
    fn a_known_path_with_another_method_is_405() {
        for (method, path, admin) in [
            (Method::DELETE, "/v1/scenarios", false),
            (Method::POST, "/healthz", false),
            (Method::PUT, "/metrics", false),
            (Method::GET, "/v1/scenarios/newborn/cases", false),
            (Method::GET, "/v1/scenarios/ebike/events", false),
            (Method::POST, "/v1/me/access-log", false),
            (Method::DELETE, "/v1/cases/c1", false),
            (Method::GET, "/v1/cases/c1/cancel", false),
            (Method::GET, "/v1/cases/c1/supplements", false),
            (Method::GET, "/v1/cases/c1/evidence/confirm", false),
            (Method::POST, "/v1/departments/hrss/items", false),
            (Method::GET, "/v1/departments/hrss/items/i1/complete", false),
            (Method::PUT, "/v1/departments/hrss/items/i1/reject", false),
            (Method::DELETE, "/v1/admin/plugins", true),
            (Method::POST, "/v1/admin/plugins/p", true),
            (Method::GET, "/v1/admin/plugins/p/activate", true),
            (Method::GET, "/v1/admin/plugins/p/versions/1.0.0", true),
            (Method::PUT, "/v1/admin/keys", true),
            (Method::GET, "/v1/admin/keys/k1", true),
            (Method::POST, "/v1/admin/grants", true),
            (Method::GET, "/v1/admin/grants/hrss", true),
            (Method::POST, "/v1/places", false),
            (Method::GET, "/v1/admin/places", true),
            (
                Method::POST,
                "/v1/admin/datasets/health/birth-certificates",
                true,
            ),
        ] {
            assert_eq!(
                Route::parse(&method, path),
                Err(NoRoute {
                    known_path: true,
                    admin
                }),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn an_unknown_path_is_404() {
        for (path, admin) in [
            ("/", false),
            ("/v1", false),
            ("/v1/nothing-here", false),
            ("/v1/scenarios/newborn", false),
            ("/v1/scenarios/newborn/cases/extra", false),
            ("/v1/cases", false),
            ("/v1/cases/c1/evidence/maybe", false),
            ("/v1/departments/hrss", false),
            ("/v1/departments/hrss/items/i1", false),
            ("/v1/departments/hrss/items/i1/approve", false),
            ("/v1/admin", true),
            ("/v1/admin/nothing", true),
            ("/v1/admin/plugins/p/versions", true),
            ("/v1/admin/keys/k1/extra", true),
            ("/v1/admin/datasets/health", true),
        ] {
            for method in [Method::GET, Method::POST] {
                assert_eq!(
                    Route::parse(&method, path),
                    Err(NoRoute {
                        known_path: false,
                        admin
                    }),
                    "{method} {path}"
                );
            }
        }
    }
}
