//! Any JSON as an application form: never a panic, and a form that passes
//! has every required field and no field the scenario does not have.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onething_host::model::{FieldKind, FieldSpec};
use onething_host::places::PlaceTree;
use onething_host::service::validate_application;

fn field(name: &str, kind: FieldKind, required: bool) -> FieldSpec {
    FieldSpec {
        name: name.into(),
        kind,
        required,
        description: String::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(serde_json::Value::Object(form)) = serde_json::from_slice(data) else {
        return;
    };
    let fields = [
        field("certificate_no", FieldKind::Text, true),
        field("child_name", FieldKind::Text, true),
        field(
            "household_of",
            FieldKind::Choice {
                choices: vec!["mother".into(), "father".into()],
            },
            true,
        ),
        field("born_on", FieldKind::Date, false),
        field("children", FieldKind::Number, false),
        field("preview_evidence", FieldKind::Boolean, false),
    ];
    if validate_application(&fields, &form, "fuzzed", &PlaceTree::default()).is_ok() {
        for f in fields.iter().filter(|f| f.required) {
            assert!(form.contains_key(&f.name), "passed without {}", f.name);
        }
        for name in form.keys() {
            assert!(fields.iter().any(|f| &f.name == name), "passed with {name}");
        }
    }
});
