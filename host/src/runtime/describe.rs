//! What a version's `describe()` may declare. The answer becomes the
//! version's entry in the public, unauthenticated catalogue
//! (`GET /v1/scenarios`) and its application form, so it is checked once,
//! when the version loads: a version past a bound is refused at upload with
//! a message that names the bound and its config key.
//!
//! The bounds are entries of the `limits!` table (`max_form_fields`,
//! `max_field_choices`, `max_scenario_departments`,
//! `max_describe_text_bytes`, `max_name_bytes`, `max_describe_bytes`); the
//! rules are: field names non-empty, unique and plain (ASCII letters,
//! digits and `_`, not starting with a digit), departments non-empty and
//! unique, a choice field with at least one choice, its choices non-empty
//! and unique.

use std::collections::HashSet;

use onething_registry::Manifest;

use crate::config::LimitsConfig;
use crate::model::{FieldKind, ScenarioInfo};

/// Makes the manifest the one truth of the scenario's id and title:
/// `describe()` may leave either empty (the manifest's is filled in) or
/// repeat it exactly; a different one is refused, naming both. A component
/// of the frozen 0.1.0 world was built before this rule and cannot be
/// rebuilt, so its title gives way to the manifest's (logged) rather than
/// refusing it; its id must still match.
pub fn take_manifest_identity(
    info: &mut ScenarioInfo,
    manifest: &Manifest,
    frozen_world: bool,
) -> Result<(), String> {
    if info.id.is_empty() {
        info.id = manifest.id.clone();
    } else if info.id != manifest.id {
        return Err(format!(
            "describe() says scenario {} but the manifest says `{}`: the manifest's id is the scenario's; leave the id empty in describe() or make the two the same",
            quoted(&info.id),
            manifest.id
        ));
    }
    if info.title.is_empty() {
        info.title = manifest.title.clone();
    } else if info.title != manifest.title {
        if !frozen_world {
            return Err(format!(
                "describe() titles the scenario {} but the manifest titles it {}: the manifest's title is the scenario's; leave the title empty in describe() or make the two the same",
                quoted(&info.title),
                quoted(&manifest.title)
            ));
        }
        tracing::warn!(
            plugin = %manifest.id,
            describe_title = %info.title,
            manifest_title = %manifest.title,
            "a 0.1.0-world component's describe() title differs from its manifest's; the manifest's is shown"
        );
        info.title = manifest.title.clone();
    }
    Ok(())
}

/// The most of an offending name a refusal quotes (bytes).
const QUOTED_BYTES: usize = 64;

/// Checks what `describe()` declared against `limits`. The error names the
/// first rule broken and, for a bound, its key under `[limits]`.
pub fn check_info(info: &ScenarioInfo, limits: &LimitsConfig) -> Result<(), String> {
    let text = limits.max_describe_text_bytes;
    let name = limits.max_name_bytes;
    at_most(
        info.fields.len(),
        limits.max_form_fields,
        "max_form_fields",
        || "form fields".into(),
    )?;
    at_most(
        info.departments.len(),
        limits.max_scenario_departments,
        "max_scenario_departments",
        || "departments".into(),
    )?;
    at_most_bytes(&info.title, text, "max_describe_text_bytes", || {
        "its title".into()
    })?;
    at_most_bytes(&info.description, text, "max_describe_text_bytes", || {
        "its description".into()
    })?;
    let mut departments = HashSet::new();
    for (i, department) in info.departments.iter().enumerate() {
        at_most_bytes(department, name, "max_name_bytes", || {
            format!("department {}", i + 1)
        })?;
        if department.is_empty() {
            return Err(format!("department {} is empty", i + 1));
        }
        if !departments.insert(department.as_str()) {
            return Err(format!("department {} is named twice", quoted(department)));
        }
    }
    let mut names = HashSet::new();
    for (i, field) in info.fields.iter().enumerate() {
        at_most_bytes(&field.name, name, "max_name_bytes", || {
            format!("the name of field {}", i + 1)
        })?;
        if !is_plain(&field.name) {
            return Err(format!(
                "field {} is named {}: a field name must be ASCII letters, digits and `_`, not empty and not starting with a digit",
                i + 1,
                quoted(&field.name)
            ));
        }
        if !names.insert(field.name.as_str()) {
            return Err(format!("field `{}` is declared twice", field.name));
        }
        at_most_bytes(&field.description, text, "max_describe_text_bytes", || {
            format!("the description of field `{}`", field.name)
        })?;
        if let FieldKind::Choice { choices } = &field.kind {
            check_choices(&field.name, choices, limits)?;
        }
    }
    let subjects: Vec<&str> = info
        .fields
        .iter()
        .filter(|f| f.kind == FieldKind::Subject)
        .map(|f| f.name.as_str())
        .collect();
    if let [first, second, ..] = subjects.as_slice() {
        return Err(format!(
            "fields `{first}` and `{second}` are both of kind subject: a case is about one person"
        ));
    }
    at_most_bytes_total(info, limits.max_describe_bytes)
}

fn check_choices(field: &str, choices: &[String], limits: &LimitsConfig) -> Result<(), String> {
    if choices.is_empty() {
        return Err(format!("choice field `{field}` offers no choices"));
    }
    at_most(
        choices.len(),
        limits.max_field_choices,
        "max_field_choices",
        || format!("choices in field `{field}`"),
    )?;
    let mut seen = HashSet::new();
    for (i, choice) in choices.iter().enumerate() {
        at_most_bytes(
            choice,
            limits.max_describe_text_bytes,
            "max_describe_text_bytes",
            || format!("choice {} of field `{field}`", i + 1),
        )?;
        if choice.is_empty() {
            return Err(format!("choice {} of field `{field}` is empty", i + 1));
        }
        if !seen.insert(choice.as_str()) {
            return Err(format!(
                "field `{field}` offers choice {} twice",
                quoted(choice)
            ));
        }
    }
    Ok(())
}

/// The whole entry: every string `describe()` declared, together.
fn at_most_bytes_total(info: &ScenarioInfo, max: usize) -> Result<(), String> {
    let fields: usize = info
        .fields
        .iter()
        .map(|f| {
            let choices = match &f.kind {
                FieldKind::Choice { choices } => choices.iter().map(String::len).sum(),
                _ => 0,
            };
            f.name.len() + f.description.len() + choices
        })
        .sum();
    let total = info.id.len()
        + info.title.len()
        + info.description.len()
        + info.departments.iter().map(String::len).sum::<usize>()
        + fields;
    if total > max {
        return Err(format!(
            "its strings come to {total} bytes together, more than the {max} this host allows for one catalogue entry ([limits] max_describe_bytes)"
        ));
    }
    Ok(())
}

/// A count bound: `what` is a plural noun phrase.
fn at_most(
    count: usize,
    max: usize,
    key: &str,
    what: impl FnOnce() -> String,
) -> Result<(), String> {
    if count > max {
        return Err(format!(
            "it declares {count} {}, more than the {max} this host allows ([limits] {key})",
            what()
        ));
    }
    Ok(())
}

/// A length bound: `what` names the string.
fn at_most_bytes(
    text: &str,
    max: usize,
    key: &str,
    what: impl FnOnce() -> String,
) -> Result<(), String> {
    if text.len() > max {
        return Err(format!(
            "{} is {} bytes, longer than the {max} this host allows ([limits] {key})",
            what(),
            text.len()
        ));
    }
    Ok(())
}

/// ASCII letters, digits and `_`, not empty, not starting with a digit: a
/// name any JSON client, form library and log line takes as it is.
fn is_plain(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `text` in backticks, cut at [`QUOTED_BYTES`] and with control characters
/// escaped, for a refusal message.
fn quoted(text: &str) -> String {
    let mut end = text.len().min(QUOTED_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = if end < text.len() { "…" } else { "" };
    format!("`{}{cut}`", text[..end].escape_debug())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::model::FieldSpec;

    const LIMITS: LimitsConfig = LimitsConfig::DEFAULT;

    fn field(name: &str, kind: FieldKind) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            kind,
            required: false,
            description: "A sentence.".into(),
        }
    }

    fn choice(name: &str, choices: &[&str]) -> FieldSpec {
        let choices = choices.iter().map(|c| (*c).to_owned()).collect();
        field(name, FieldKind::Choice { choices })
    }

    /// A form like newborn's.
    fn good() -> ScenarioInfo {
        ScenarioInfo {
            id: "newborn".into(),
            title: "新生儿出生一件事".into(),
            description: "Register a birth once.".into(),
            departments: vec!["health".into(), "public-security".into()],
            fields: vec![
                field("certificate_no", FieldKind::Text),
                field("applicant_id", FieldKind::Text),
                choice("household_of", &["mother", "father"]),
                field("preview_evidence", FieldKind::Boolean),
                field("born_on", FieldKind::Date),
                field("Capital_2", FieldKind::Number),
                field("_private", FieldKind::Text),
            ],
        }
    }

    fn with(edit: impl FnOnce(&mut ScenarioInfo)) -> ScenarioInfo {
        let mut info = good();
        edit(&mut info);
        info
    }

    fn refusal(info: &ScenarioInfo) -> String {
        check_info(info, &LIMITS).unwrap_err()
    }

    fn numbered(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    #[test]
    fn a_real_form_passes() {
        check_info(&good(), &LIMITS).unwrap();
        check_info(&ScenarioInfo::default(), &LIMITS).unwrap();
    }

    /// Every bound: at it passes, one past it is refused with its key.
    #[test]
    fn each_bound_at_passes_and_one_past_is_refused_by_its_key() {
        type Build = fn(usize) -> ScenarioInfo;
        let cases: [(&str, usize, Build); 10] = [
            ("max_form_fields", LIMITS.max_form_fields, |n| {
                with(|i| {
                    i.fields = numbered("f", n)
                        .iter()
                        .map(|name| field(name, FieldKind::Text))
                        .collect()
                })
            }),
            (
                "max_scenario_departments",
                LIMITS.max_scenario_departments,
                |n| with(|i| i.departments = numbered("d", n)),
            ),
            ("max_field_choices", LIMITS.max_field_choices, |n| {
                with(|i| {
                    let choices = numbered("c", n);
                    i.fields[2].kind = FieldKind::Choice { choices };
                })
            }),
            (
                "max_describe_text_bytes",
                LIMITS.max_describe_text_bytes,
                |n| with(|i| i.title = "x".repeat(n)),
            ),
            (
                "max_describe_text_bytes",
                LIMITS.max_describe_text_bytes,
                |n| with(|i| i.description = "x".repeat(n)),
            ),
            (
                "max_describe_text_bytes",
                LIMITS.max_describe_text_bytes,
                |n| with(|i| i.fields[0].description = "x".repeat(n)),
            ),
            (
                "max_describe_text_bytes",
                LIMITS.max_describe_text_bytes,
                |n| with(|i| i.fields[2] = choice("household_of", &["mother", &"x".repeat(n)])),
            ),
            ("max_name_bytes", LIMITS.max_name_bytes, |n| {
                with(|i| i.fields[0].name = "a".repeat(n))
            }),
            ("max_name_bytes", LIMITS.max_name_bytes, |n| {
                with(|i| i.departments[0] = "d".repeat(n))
            }),
            // Fields whose descriptions are each within their own bound,
            // and a title taking the rest, come to `n` bytes together.
            ("max_describe_bytes", LIMITS.max_describe_bytes, |n| {
                let text = LIMITS.max_describe_text_bytes;
                let mut info = ScenarioInfo {
                    id: "t".into(),
                    ..ScenarioInfo::default()
                };
                let mut left = n - info.id.len();
                while left > text {
                    let name = format!("f{:03}", info.fields.len());
                    let description = text.min(left - name.len());
                    left -= name.len() + description;
                    info.fields.push(FieldSpec {
                        description: "x".repeat(description),
                        ..field(&name, FieldKind::Text)
                    });
                }
                info.title = "x".repeat(left);
                info
            }),
        ];
        for (key, max, build) in cases {
            let at = build(max);
            if let Err(e) = check_info(&at, &LIMITS) {
                panic!("{key} at {max} was refused: {e}");
            }
            let message = refusal(&build(max + 1));
            assert!(message.contains(&format!("[limits] {key}")), "{message}");
            assert!(message.contains(&max.to_string()), "{message}");
        }
    }

    #[test]
    fn a_huge_refusal_does_not_quote_what_it_refuses() {
        let message = refusal(&with(|i| i.title = "x".repeat(30 * 1024 * 1024)));
        assert!(message.len() < 200, "{message}");
        assert!(message.contains("its title is 31457280 bytes"), "{message}");
        let message = refusal(&with(|i| {
            i.fields[0].name = format!("{}-", "a".repeat(200))
        }));
        assert!(message.len() < 300, "{message}");
        assert!(message.contains("…"), "{message}");
    }

    #[test]
    fn bytes_not_characters_are_counted() {
        // 1,366 three-byte characters: 4,098 bytes.
        let message = refusal(&with(|i| i.title = "办".repeat(1_366)));
        assert!(message.contains("4098 bytes"), "{message}");
    }

    #[test]
    fn field_names_must_be_plain_unique_and_present() {
        for name in ["", "1st", "a-b", "a b", "a.b", "名字", "tab\t", "ü"] {
            let message = refusal(&with(|i| i.fields[0].name = name.into()));
            assert!(message.contains("field 1 is named"), "{name:?}: {message}");
            assert!(message.contains("ASCII letters"), "{message}");
        }
        let message = refusal(&with(|i| i.fields[1].name = "certificate_no".into()));
        assert!(
            message.contains("field `certificate_no` is declared twice"),
            "{message}"
        );
    }

    #[test]
    fn a_form_has_at_most_one_subject_field() {
        let one = with(|i| i.fields[1].kind = FieldKind::Subject);
        assert!(check_info(&one, &LimitsConfig::default()).is_ok());
        let message = refusal(&with(|i| {
            i.fields[1].kind = FieldKind::Subject;
            i.fields[2].kind = FieldKind::Subject;
        }));
        assert!(message.contains("both of kind subject"), "{message}");
    }

    #[test]
    fn departments_must_be_present_and_unique() {
        let message = refusal(&with(|i| i.departments[1] = String::new()));
        assert!(message.contains("department 2 is empty"), "{message}");
        let message = refusal(&with(|i| i.departments[1] = "health".into()));
        assert!(message.contains("`health` is named twice"), "{message}");
    }

    #[test]
    fn choices_must_exist_be_present_and_unique() {
        let message = refusal(&with(|i| i.fields[2] = choice("household_of", &[])));
        assert!(
            message.contains("choice field `household_of` offers no choices"),
            "{message}"
        );
        let message = refusal(&with(|i| {
            i.fields[2] = choice("household_of", &["mother", ""])
        }));
        assert!(
            message.contains("choice 2 of field `household_of` is empty"),
            "{message}"
        );
        let message = refusal(&with(|i| {
            i.fields[2] = choice("household_of", &["mother", "mother"])
        }));
        assert!(
            message.contains("offers choice `mother` twice"),
            "{message}"
        );
    }

    #[test]
    fn the_bounds_come_from_the_config() {
        let strict = LimitsConfig {
            max_form_fields: 2,
            ..LimitsConfig::DEFAULT
        };
        let message = check_info(&good(), &strict).unwrap_err();
        assert!(
            message.contains("it declares 7 form fields, more than the 2"),
            "{message}"
        );
    }
}
