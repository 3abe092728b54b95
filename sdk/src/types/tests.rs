//! Conversions between the SDK's types and the WIT types.

use super::*;

#[derive(Debug, Default, PartialEq, serde::Deserialize)]
struct State {
    count: u32,
}

#[test]
fn an_empty_state_is_the_default() {
    assert_eq!(parse_state::<State>("{}").unwrap(), State::default());
    assert_eq!(parse_state::<State>("").unwrap(), State::default());
    assert_eq!(
        parse_state::<State>("{\"count\":3}").unwrap(),
        State { count: 3 }
    );
    assert!(matches!(
        parse_state::<State>("[").unwrap_err(),
        Error::Invalid(_)
    ));
}

#[test]
fn field_builders_set_what_they_say() {
    let f = Field::choice("side", &["mother", "father"])
        .required()
        .describe("whose household");
    assert!(f.required);
    assert_eq!(
        f.kind,
        FieldKind::Choice(vec!["mother".into(), "father".into()])
    );
    assert_eq!(f.description, "whose household");
    assert!(!Field::text("x").required);
}

#[test]
fn outcomes_serialise_their_state() {
    let wit = Outcome::in_progress(vec![1, 2], "ok").into_wit().unwrap();
    assert_eq!(wit.state, "[1,2]");
    assert_eq!(wit.message, "ok");
}

fn wit_case(place: Option<&str>) -> wit::CaseInfo {
    wit::CaseInfo {
        id: "c1".into(),
        scenario: "newborn".into(),
        applicant: "a".into(),
        subject: Some("s".into()),
        place: place.map(Into::into),
        mode: wit::CaseMode::Emergency,
        clock: wit::CaseClock {
            unix_ms: 1_796_319_000_000,
            utc_offset_minutes: 480,
        },
        state: "{\"count\":2}".into(),
    }
}

#[test]
fn a_case_carries_place_subject_mode_and_clock() {
    let case = Case::from(wit_case(Some("cq/yubei")));
    assert_eq!(case.place(), Some("cq/yubei"));
    assert_eq!(case.subject(), Some("s"));
    assert_eq!(case.mode(), Mode::Emergency);
    assert_eq!(case.now(), Clock::new(1_796_319_000_000, 480));
    assert_eq!(case.state::<State>().unwrap(), State { count: 2 });
    assert_eq!(Case::from(wit_case(None)).place(), None);
    let built = Case::new("c1", "newborn", "a", "{\"count\":2}")
        .with_place("cq/yubei")
        .with_subject("s")
        .with_mode(Mode::Emergency)
        .with_clock(Clock::new(1_796_319_000_000, 480));
    assert_eq!(built, case);
}

#[test]
fn the_clock_gives_the_local_date() {
    // 2026-12-03T17:30:00Z: the 3rd in UTC, the 4th at UTC+8, and
    // still the 3rd at UTC-5.
    assert_eq!(Clock::new(1_796_319_000_000, 0).local_date(), (2026, 12, 3));
    assert_eq!(
        Clock::new(1_796_319_000_000, 480).local_date(),
        (2026, 12, 4)
    );
    assert_eq!(
        Clock::new(1_796_319_000_000, -300).local_date(),
        (2026, 12, 3)
    );
    assert_eq!(
        Clock::new(1_796_319_000_000, 480).local_ms_of_day(),
        90 * 60_000
    );
    assert_eq!(Clock::new(0, 0).local_date(), (1970, 1, 1));
    assert_eq!(Clock::new(-1, 0).local_date(), (1969, 12, 31));
    // A leap day.
    assert_eq!(Clock::new(951_782_400_000, 0).local_date(), (2000, 2, 29));
    // Whatever the host sends, no panic.
    let _ = Clock::new(i64::MAX, i32::MAX).local_date();
    let _ = Clock::new(i64::MIN, i32::MIN).local_date();
}

#[test]
fn a_work_item_converts_with_its_target_and_options() {
    let plain = WorkItem::new(
        "hrss",
        "card",
        Due::WorkingDays(5),
        serde_json::json!({"a": 1}),
    )
    .into_wit()
    .unwrap();
    assert_eq!(plain.payload, "{\"a\":1}");
    assert!(matches!(plain.due, wit::Due::WorkingDays(5)));
    assert!(plain.target.is_none());
    assert!(plain.escalation.is_none());
    assert!(plain.report_due.is_none());
    assert!(matches!(plain.priority, wit::Priority::Normal));

    let level = WorkItem::new("public-security", "t", Due::Hours(4), serde_json::json!({}))
        .at_level("district")
        .into_wit()
        .unwrap();
    assert!(matches!(level.target, Some(wit::Target::Level(l)) if l == "district"));

    let full = WorkItem::new(
        "community-grid",
        "t",
        Due::Minutes(30),
        serde_json::json!({}),
    )
    .at_place("cq/yubei/longxi")
    .escalates(Due::Hours(2))
    .urgent()
    .reports_within(Due::Minutes(10))
    .into_wit()
    .unwrap();
    assert!(matches!(full.target, Some(wit::Target::Place(p)) if p == "cq/yubei/longxi"));
    assert!(matches!(
        full.escalation,
        Some(wit::Escalation {
            next_due: wit::Due::Hours(2)
        })
    ));
    assert!(matches!(full.priority, wit::Priority::Urgent));
    assert!(matches!(full.report_due, Some(wit::Due::Minutes(10))));
}

#[test]
fn an_outcome_may_set_the_place() {
    let none = Outcome::in_progress((), "ok").into_wit().unwrap();
    assert_eq!(none.place, None);
    let set = Outcome::in_progress((), "ok")
        .at_place("cq/yuzhong")
        .into_wit()
        .unwrap();
    assert_eq!(set.place.as_deref(), Some("cq/yuzhong"));
}

#[test]
fn place_and_subject_fields_convert() {
    let info: wit::Info = Info::new("x", "X")
        .field(Field::place("district").required())
        .field(Field::subject("child_id"))
        .into();
    assert!(matches!(info.fields[0].kind, wit::FieldKind::Place));
    assert!(info.fields[0].required);
    assert!(matches!(info.fields[1].kind, wit::FieldKind::Subject));
}

#[test]
fn events_convert_with_offices_and_the_new_kinds() {
    let done = Event::try_from(wit::CaseEvent::ItemCompleted(wit::ItemCompletion {
        item_id: "i".into(),
        department: "hrss".into(),
        task: "card".into(),
        result: "{\"no\":7}".into(),
        handled_by: "officer-1".into(),
        office: "hrss@cq".into(),
    }))
    .unwrap();
    assert_eq!(
        done,
        Event::ItemCompleted {
            item_id: "i".into(),
            department: "hrss".into(),
            task: "card".into(),
            result: serde_json::json!({"no": 7}),
            handled_by: "officer-1".into(),
            office: "hrss@cq".into(),
        }
    );
    let bad = Event::try_from(wit::CaseEvent::ItemCompleted(wit::ItemCompletion {
        item_id: "i".into(),
        department: "hrss".into(),
        task: "card".into(),
        result: "not json".into(),
        handled_by: "hrss".into(),
        office: "hrss@cq".into(),
    }));
    assert!(matches!(bad, Err(Error::Invalid(_))));

    let refused = Event::try_from(wit::CaseEvent::ItemRejected(wit::ItemRejection {
        item_id: "i".into(),
        department: "tax".into(),
        task: "t".into(),
        reason: "r".into(),
        handled_by: "tax".into(),
        office: "tax@cq".into(),
    }))
    .unwrap();
    assert!(matches!(
        refused,
        Event::ItemRejected { ref office, ref handled_by, .. }
            if office == "tax@cq" && handled_by == "tax"
    ));

    let moved = Event::try_from(wit::CaseEvent::ItemEscalated(wit::ItemEscalation {
        item_id: "i".into(),
        department: "community-grid".into(),
        task: "handle".into(),
        from_office: "community-grid@cq/yubei/longxi/jinlong/g01".into(),
        to_office: "community-grid@cq/yubei/longxi/jinlong".into(),
        due: wit::Due::Hours(2),
    }))
    .unwrap();
    assert_eq!(
        moved,
        Event::ItemEscalated {
            item_id: "i".into(),
            department: "community-grid".into(),
            task: "handle".into(),
            from_office: "community-grid@cq/yubei/longxi/jinlong/g01".into(),
            to_office: "community-grid@cq/yubei/longxi/jinlong".into(),
            due: Due::Hours(2),
        }
    );

    let taken = Event::try_from(wit::CaseEvent::ItemReported(wit::ItemReport {
        item_id: "i".into(),
        department: "community-grid".into(),
        task: "handle".into(),
        handled_by: "officer-2".into(),
        office: "community-grid@cq/yubei".into(),
    }))
    .unwrap();
    assert!(matches!(
        taken,
        Event::ItemReported { ref handled_by, .. } if handled_by == "officer-2"
    ));

    let rated = Event::try_from(wit::CaseEvent::CaseRated(wit::CaseRating {
        score: 5,
        indicators: vec![("efficiency".into(), 4)],
        comment: "fast".into(),
    }))
    .unwrap();
    assert_eq!(
        rated,
        Event::CaseRated {
            score: 5,
            indicators: vec![("efficiency".into(), 4)],
            comment: "fast".into(),
        }
    );
}
