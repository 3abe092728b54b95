//! `onething.toml`: the manifest every plugin ships with.
//!
//! ```toml
//! id = "newborn"
//! version = "0.1.0"
//! department = "health"
//! title = "新生儿出生一件事"
//! description = "Birth registration, insurance, social security card and vaccination in one application."
//! # device_events = true   # only for a scenario a sensor reports, no citizen files
//! # one_open_case_per_subject = true   # a second application while one is open: 409
//! # applicants = ["officer"]   # who may apply: "citizen" (the default), "officer"
//! # officer_departments = ["community-grid"]   # narrows the officers who may
//!
//! [grants]
//! datasets = ["health/birth-certificates", "public-security/residents"]
//! dispatch = ["public-security", "medical-insurance", "hrss", "disease-control"]
//!
//! [limits]
//! memory_mib = 64
//! deadline_ms = 2000
//! ```
//!
//! Everything not granted is denied. Limits left out take the host's
//! defaults.

use serde::{Deserialize, Serialize};

/// The parsed manifest of one plugin version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The scenario id: lowercase letters, digits and `-`, starting with a
    /// letter, at most 64 characters (e.g. `newborn`). Also the URL segment
    /// in `/v1/scenarios/{id}/cases`.
    pub id: String,
    /// The plugin's version (semver). Cases are pinned to the version that
    /// started them.
    pub version: semver::Version,
    /// The department that owns and signs the scenario, e.g. `health`.
    pub department: String,
    /// The title shown to operators.
    pub title: String,
    /// What the scenario does, for operators.
    #[serde(default)]
    pub description: String,
    /// Whether devices (sensors) report this scenario's cases through
    /// `POST /v1/scenarios/{id}/events`. Off by default: a scenario citizens
    /// file must not take a device's event, or a device could open a case in
    /// a citizen's name. A device's case is the device's own.
    #[serde(default, skip_serializing_if = "is_false")]
    pub device_events: bool,
    /// Whether the person a case is about (the form's subject field) may
    /// have only one open case of this scenario: a second application
    /// while the first is open answers 409 `case_already_open` with the
    /// open case's id. Off by default.
    #[serde(default, skip_serializing_if = "is_false")]
    pub one_open_case_per_subject: bool,
    /// Who may open a case of the scenario with `POST
    /// /v1/scenarios/{id}/cases`: citizens (the default) and/or officers
    /// (a whistle, 吹哨). A caller of another role is refused
    /// `403 wrong_applicant`. Devices are `device_events`' business.
    #[serde(default = "citizens_only", skip_serializing_if = "is_citizens_only")]
    pub applicants: Vec<ApplicantRole>,
    /// Narrows officer applicants to the officers of these departments
    /// (e.g. `["community-grid", "town-command-centre"]`); empty: any
    /// officer. Only with `"officer"` in `applicants`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub officer_departments: Vec<String>,
    /// What the plugin may touch; nothing else is allowed.
    #[serde(default)]
    pub grants: Grants,
    /// How much the plugin may use per call.
    #[serde(default)]
    pub limits: Limits,
}

/// A role that may open a scenario's cases (manifest key `applicants`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplicantRole {
    /// A citizen, with a citizen token (the default).
    Citizen,
    /// An officer, with an officer token (`department` and `place`
    /// claims): a grid worker who whistles (吹哨).
    Officer,
}

impl ApplicantRole {
    /// The role as the manifest writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicantRole::Citizen => "citizen",
            ApplicantRole::Officer => "officer",
        }
    }
}

fn citizens_only() -> Vec<ApplicantRole> {
    vec![ApplicantRole::Citizen]
}

fn is_citizens_only(roles: &[ApplicantRole]) -> bool {
    roles == [ApplicantRole::Citizen]
}

impl Manifest {
    /// Whether `role` may open a case of this scenario.
    pub fn admits(&self, role: ApplicantRole) -> bool {
        self.applicants.contains(&role)
    }

    /// Whether an officer of `department` may open a case (with `"officer"`
    /// in `applicants`).
    pub fn admits_officer_of(&self, department: &str) -> bool {
        self.admits(ApplicantRole::Officer)
            && (self.officer_departments.is_empty()
                || self.officer_departments.iter().any(|d| d == department))
    }
}

/// What a plugin is allowed: deny by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Datasets the plugin may read, each `DEPARTMENT/NAME`
    /// (e.g. `health/birth-certificates`).
    #[serde(default)]
    pub datasets: Vec<String>,
    /// Departments the plugin may dispatch work items to (e.g. `hrss`).
    #[serde(default)]
    pub dispatch: Vec<String>,
}

impl Grants {
    /// Whether the plugin may read `dataset`.
    pub fn allows_dataset(&self, dataset: &str) -> bool {
        self.datasets.iter().any(|d| d == dataset)
    }

    /// Whether the plugin may dispatch to `department`.
    pub fn allows_dispatch(&self, department: &str) -> bool {
        self.dispatch.iter().any(|d| d == department)
    }
}

/// Per-call limits a plugin asks for; `None` takes the host's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The most linear memory one call may use, in MiB (host default 64).
    pub memory_mib: Option<u32>,
    /// The wall-clock time one call may take, in milliseconds (host default
    /// 2000).
    pub deadline_ms: Option<u32>,
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The text is not valid TOML of the manifest's shape.
    #[error("manifest is not valid: {0}")]
    Syntax(#[from] toml::de::Error),
    /// A field has a value the host cannot accept.
    #[error("manifest field `{field}` is not valid: {reason}")]
    Field {
        /// The offending field, e.g. `grants.datasets`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl Manifest {
    /// Parses and checks a manifest.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let manifest: Manifest = toml::from_str(text)?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks the rules that TOML's shape alone cannot express.
    pub fn validate(&self) -> Result<(), ManifestError> {
        check_name("id", &self.id)?;
        check_name("department", &self.department)?;
        if self.title.trim().is_empty() {
            return Err(field_error("title", "must not be empty"));
        }
        for dataset in &self.grants.datasets {
            let Some((department, name)) = dataset.split_once('/') else {
                return Err(field_error(
                    "grants.datasets",
                    format!("`{dataset}` must be DEPARTMENT/NAME"),
                ));
            };
            check_name("grants.datasets", department)?;
            check_name("grants.datasets", name)?;
        }
        for department in &self.grants.dispatch {
            check_name("grants.dispatch", department)?;
        }
        if self.applicants.is_empty() {
            return Err(field_error(
                "applicants",
                "must name at least one of \"citizen\", \"officer\"",
            ));
        }
        for department in &self.officer_departments {
            check_name("officer_departments", department)?;
        }
        if !self.officer_departments.is_empty() && !self.admits(ApplicantRole::Officer) {
            return Err(field_error(
                "officer_departments",
                "narrows officer applicants: add \"officer\" to applicants",
            ));
        }
        if self.limits.memory_mib == Some(0) {
            return Err(field_error("limits.memory_mib", "must be at least 1"));
        }
        if self.limits.deadline_ms == Some(0) {
            return Err(field_error("limits.deadline_ms", "must be at least 1"));
        }
        Ok(())
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn field_error(field: &'static str, reason: impl Into<String>) -> ManifestError {
    ManifestError::Field {
        field,
        reason: reason.into(),
    }
}

/// Whether `value` is a usable identifier: what scenario ids, department
/// ids and dataset names look like (lowercase letters, digits and `-`,
/// starting with a letter, at most 64 characters).
pub fn is_name(value: &str) -> bool {
    let mut chars = value.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && value.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn check_name(field: &'static str, value: &str) -> Result<(), ManifestError> {
    if is_name(value) {
        Ok(())
    } else {
        Err(field_error(
            field,
            format!(
                "`{value}` must be lowercase letters, digits and `-`, start with a letter, at most 64 characters"
            ),
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "newborn"
version = "0.1.0"
department = "health"
title = "Newborn"

[grants]
datasets = ["health/birth-certificates"]
dispatch = ["hrss"]

[limits]
memory_mib = 32
"#;

    #[test]
    fn parses_a_good_manifest() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.id, "newborn");
        assert_eq!(m.version, semver::Version::new(0, 1, 0));
        assert!(m.grants.allows_dataset("health/birth-certificates"));
        assert!(!m.grants.allows_dataset("health/other"));
        assert!(m.grants.allows_dispatch("hrss"));
        assert!(!m.grants.allows_dispatch("tax"));
        assert_eq!(m.limits.memory_mib, Some(32));
        assert_eq!(m.limits.deadline_ms, None);
        assert!(!m.device_events, "device events are off unless declared");
        let m =
            Manifest::parse(&GOOD.replace("[grants]", "device_events = true\n[grants]")).unwrap();
        assert!(m.device_events);
        assert!(!m.one_open_case_per_subject, "off unless declared");
        let m = Manifest::parse(
            &GOOD.replace("[grants]", "one_open_case_per_subject = true\n[grants]"),
        )
        .unwrap();
        assert!(m.one_open_case_per_subject);
    }

    #[test]
    fn refuses_bad_fields_naming_them() {
        let cases = [
            (GOOD.replace("\"newborn\"", "\"New Born\""), "id"),
            (GOOD.replace("\"0.1.0\"", "\"one\""), "version"),
            (
                GOOD.replace("health/birth-certificates", "birth-certificates"),
                "grants.datasets",
            ),
            (
                GOOD.replace("memory_mib = 32", "memory_mib = 0"),
                "limits.memory_mib",
            ),
            (
                GOOD.replace("title = \"Newborn\"", "title = \" \""),
                "title",
            ),
            (format!("{GOOD}\nextra = 1\n"), "extra"),
            (
                GOOD.replace("[grants]", "device_events = \"yes\"\n[grants]"),
                "device_events",
            ),
            (
                GOOD.replace("[grants]", "applicants = [\"mayor\"]\n[grants]"),
                "applicants",
            ),
            (
                GOOD.replace("[grants]", "applicants = []\n[grants]"),
                "applicants",
            ),
            (
                GOOD.replace(
                    "[grants]",
                    "officer_departments = [\"community-grid\"]\n[grants]",
                ),
                "officer_departments",
            ),
            (
                GOOD.replace(
                    "[grants]",
                    "applicants = [\"officer\"]\nofficer_departments = [\"Grid\"]\n[grants]",
                ),
                "officer_departments",
            ),
        ];
        for (text, field) in cases {
            let err = Manifest::parse(&text).unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
    }

    proptest::proptest! {
        /// Whatever an uploader sends, parsing answers; it never panics.
        #[test]
        fn parsing_any_text_never_panics(text in ".{0,400}") {
            let _ = Manifest::parse(&text);
        }

        /// A manifest made of valid parts survives a round trip.
        #[test]
        fn valid_manifests_round_trip(
            id in "[a-z][a-z0-9-]{0,20}",
            department in "[a-z][a-z0-9-]{0,20}",
            major in 0u64..100, minor in 0u64..100, patch in 0u64..100,
            datasets in proptest::collection::vec("[a-z][a-z0-9-]{0,10}/[a-z][a-z0-9-]{0,10}", 0..5),
            memory in proptest::option::of(1u32..4096),
            device_events in proptest::bool::ANY,
            one_open in proptest::bool::ANY,
        ) {
            let manifest = Manifest {
                id,
                version: semver::Version::new(major, minor, patch),
                department,
                title: "T".into(),
                description: String::new(),
                device_events,
                one_open_case_per_subject: one_open,
                applicants: vec![ApplicantRole::Citizen],
                officer_departments: vec![],
                grants: Grants { datasets, dispatch: vec![] },
                limits: Limits { memory_mib: memory, deadline_ms: None },
            };
            let text = toml::to_string(&manifest).unwrap();
            proptest::prop_assert_eq!(Manifest::parse(&text).unwrap(), manifest);
        }
    }

    #[test]
    fn citizens_apply_unless_the_manifest_says_officers_do() {
        let m = Manifest::parse(GOOD).unwrap();
        assert!(m.admits(ApplicantRole::Citizen));
        assert!(!m.admits_officer_of("community-grid"));
        assert!(!toml::to_string(&m).unwrap().contains("applicants"));
        let m = Manifest::parse(&GOOD.replace(
            "[grants]",
            "applicants = [\"officer\"]\nofficer_departments = [\"community-grid\"]\n[grants]",
        ))
        .unwrap();
        assert!(!m.admits(ApplicantRole::Citizen));
        assert!(m.admits_officer_of("community-grid"));
        assert!(!m.admits_officer_of("public-security"));
        assert_eq!(Manifest::parse(&toml::to_string(&m).unwrap()).unwrap(), m);
        let any = Manifest::parse(&GOOD.replace(
            "[grants]",
            "applicants = [\"citizen\", \"officer\"]\n[grants]",
        ))
        .unwrap();
        assert!(any.admits(ApplicantRole::Citizen) && any.admits_officer_of("tax"));
    }

    #[test]
    fn grants_default_to_nothing() {
        let m = Manifest::parse(
            "id = \"x\"\nversion = \"1.0.0\"\ndepartment = \"tax\"\ntitle = \"X\"\n",
        )
        .unwrap();
        assert!(m.grants.datasets.is_empty());
        assert!(m.grants.dispatch.is_empty());
    }
}
