//! Evidence preview (the EU once-only principle): show the applicant what
//! was fetched about them, and where from, before it is used.
//!
//! A scenario that previews returns [`preview`] from `start` instead of
//! dispatching; the case waits in `awaiting-citizen`, the host shows the
//! applicant the data reads on record for the case (dataset, department,
//! purpose), and the applicant answers with
//! `POST /v1/cases/{id}/evidence/confirm` or `/decline`, which reach the
//! plugin as a supplement that [`answer`] reads.

use crate::{Event, Outcome};

/// What the applicant said about the evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The evidence is right: go on.
    Confirmed,
    /// The evidence is wrong or not to be used: stop, dispatch nothing.
    Declined,
}

/// An outcome that asks the applicant to check the evidence: `summary` lists
/// each piece and the department it came from.
pub fn preview<S>(state: S, summary: &[(&str, String)]) -> Outcome<S> {
    let lines: Vec<String> = summary
        .iter()
        .map(|(source, what)| format!("{what} (from {source})"))
        .collect();
    Outcome::awaiting_citizen(
        state,
        format!(
            "Please check what we found before we use it: {}. Confirm or decline.",
            lines.join("; ")
        ),
    )
}

/// The applicant's answer, if `event` is one.
pub fn answer(event: &Event) -> Option<Answer> {
    match event {
        Event::Supplement(material) => match material.get("evidence").and_then(|v| v.as_str()) {
            Some("confirmed") => Some(Answer::Confirmed),
            Some("declined") => Some(Answer::Declined),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_from_the_supplement() {
        let yes = Event::Supplement(serde_json::json!({"evidence": "confirmed"}));
        let no = Event::Supplement(serde_json::json!({"evidence": "declined"}));
        let other = Event::Supplement(serde_json::json!({"photo": "p"}));
        assert_eq!(answer(&yes), Some(Answer::Confirmed));
        assert_eq!(answer(&no), Some(Answer::Declined));
        assert_eq!(answer(&other), None);
    }

    #[test]
    fn the_preview_names_each_source() {
        let outcome = preview((), &[("health", "certificate Q1".into())]);
        assert!(outcome.message.contains("certificate Q1 (from health)"));
    }
}
