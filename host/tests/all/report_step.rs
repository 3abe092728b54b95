//! The report step (报到, issue 15 item 1, docs/design/closed-loop.md §1)
//! over HTTP: an office takes an item with a report deadline (the officer
//! recorded, the timeline, the audit log, the plugin told); one that does
//! not is moved one level up at the deadline with a new report deadline
//! there, and at the top office the miss is recorded once; completing an
//! unreported item reports it. The `follows-a-script` fixture dispatches
//! the items; the clock is the host's test clock.

use onething_host::identity::issue_dev_officer;
use onething_host::storage::AuditRecord;
use reqwest::StatusCode;
use serde_json::{Value, json};

pub(crate) use crate::escalation::advance;
use crate::routing::{ADMIN, import_tree};
use crate::support::{TestHost, assert_error, into_json, scrape, value};

pub(crate) const YUBEI: &str = "cq/yubei";
pub(crate) const LONGXI: &str = "cq/yubei/longxi";

/// Public security's offices at the district and the city.
const TREE: &str = r#"{"id":"cq","name":"重庆市","level":"city"}
{"id":"cq/yubei","name":"渝北区","level":"district","parent":"cq"}
{"id":"cq/yubei/longxi","name":"龙溪街道","level":"town","parent":"cq/yubei"}
{"office":{"department":"public-security","place":"cq"}}
{"office":{"department":"public-security","place":"cq/yubei"}}
"#;

/// A request with `token`: POST with a body (or to `…/report`, which
/// takes none), else GET.
pub(crate) async fn call(
    host: &TestHost,
    token: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let url = format!("{}{path}", host.api.base);
    let request = match body {
        Some(body) => client.post(url).json(&body),
        None if path.ends_with("/report") => client.post(url),
        None => client.get(url),
    };
    into_json(request.bearer_auth(token).send().await.unwrap()).await
}

/// An officer's token: `id` of `department` at `place`.
pub(crate) fn officer_token(id: &str, department: &str, place: &str) -> String {
    issue_dev_officer(
        id,
        department,
        Some(place),
        chrono::Utc::now().timestamp(),
        600,
    )
}

/// A public-security officer's request at `place`.
async fn officer(
    host: &TestHost,
    place: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let token = officer_token(&format!("officer@{place}"), "public-security", place);
    call(host, &token, path, body).await
}

fn submit(task: &str, report_due: Option<Value>) -> Value {
    let mut op = json!({"op": "submit", "department": "public-security", "task": task,
                        "payload": "{}", "due": {"hours": 72},
                        "target": {"place": LONGXI}});
    if let Some(due) = report_due {
        op["report_due"] = due;
    }
    op
}

pub(crate) async fn item(host: &TestHost, item_id: &str) -> onething_host::model::WorkItem {
    host.storage.item(item_id).await.unwrap().unwrap()
}

fn events(case: &onething_host::model::Case, name: &str) -> usize {
    case.timeline
        .iter()
        .filter(|e| serde_json::to_value(e).unwrap()["event"] == name)
        .count()
}

#[tokio::test]
async fn whistle_report_step_taken_missed_and_taken_by_completion() {
    let host = TestHost::start_with(&["follows-a-script"], |config| {
        config.admin_token = Some(ADMIN.into());
        config.testing.manual_clock = true;
    })
    .await;
    import_tree(&host, TREE).await;
    let thirty = json!({"minutes": 30});
    let script = json!({
        "start": [submit("take", Some(thirty.clone())), submit("miss", Some(thirty.clone())),
                  submit("plain", None), submit("finish", Some(thirty)),
                  submit("withdrawn", Some(json!({"hours": 4})))],
        "on_event": [], "status": "in-progress", "message": "with the departments"});
    let (status, case) = host
        .post(
            "/v1/scenarios/follows-a-script/cases",
            &json!({"script": script.to_string()}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let case_id = case["case_id"].as_str().unwrap().to_owned();
    let ids: Vec<String> = (0..5)
        .map(|i| case["items"][i]["item_id"].as_str().unwrap().to_owned())
        .collect();
    let (take, miss, plain, finish, withdrawn) = (&ids[0], &ids[1], &ids[2], &ids[3], &ids[4]);
    let dispatched = item(&host, take).await;
    assert_eq!(dispatched.office.as_deref(), Some(YUBEI));
    let report_due_at = dispatched.report_due_at.unwrap();
    assert_eq!(
        report_due_at - dispatched.created_at,
        chrono::Duration::minutes(30)
    );
    assert!(item(&host, plain).await.report_due_at.is_none());

    // The district's queue: the four with a report step await it.
    let queue = "/v1/departments/public-security/items";
    let (status, page) = officer(&host, YUBEI, &format!("{queue}?report=awaiting"), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let awaiting: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap())
        .collect();
    assert_eq!(awaiting, [take, miss, finish, withdrawn]);
    assert_eq!(page["items"][0]["report_state"], "awaiting");
    assert_eq!(
        page["items"][0]["report_due"],
        json!({"unit": "minutes", "count": 30})
    );
    let (_, all) = officer(&host, YUBEI, &format!("{queue}?status=pending"), None).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
    assert!(
        all["items"][2].get("report_state").is_none(),
        "{}",
        all["items"][2]
    );
    assert_error(
        officer(&host, YUBEI, &format!("{queue}?report=done"), None).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );

    // The district takes `take` on time: the officer, the timeline, the
    // audit log, and the plugin was told (it answered after the entry).
    let report = |id: &str| format!("{queue}/{id}/report");
    let (status, acted) = officer(&host, YUBEI, &report(take), Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{acted}");
    assert_eq!(acted["item"]["report_state"], "reported");
    assert_eq!(acted["item"]["reported_by"], "officer@cq/yubei");
    assert_eq!(acted["item"]["status"], "pending");
    let stored = host.storage.case(&case_id).await.unwrap().unwrap();
    let last: Vec<Value> = stored.timeline[stored.timeline.len() - 2..]
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    assert_eq!(last[0]["event"], "item-reported");
    assert_eq!(last[0]["handled_by"], "officer@cq/yubei");
    assert_eq!(last[0]["office"], YUBEI);
    assert_eq!(
        last[1]["event"], "status-changed",
        "the plugin answered item-reported"
    );
    let audit = host.audit().await;
    assert!(audit.iter().any(|e| matches!(&e.record,
        AuditRecord::Reported { item_id, handled_by, on_time: true, .. }
            if item_id == take && handled_by == "officer@cq/yubei")));

    // Errors: taken twice, no report step, another office, a body.
    assert_error(
        officer(&host, YUBEI, &report(take), None).await,
        StatusCode::CONFLICT,
        "already_reported",
    );
    assert_error(
        officer(&host, YUBEI, &report(plain), None).await,
        StatusCode::CONFLICT,
        "no_report_step",
    );
    assert_error(
        officer(&host, "cq", &report(miss), None).await,
        StatusCode::FORBIDDEN,
        "not_owner",
    );
    assert_error(
        officer(&host, YUBEI, &report(miss), Some(json!({"x": 1}))).await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    );
    let (_, page) = officer(
        &host,
        YUBEI,
        &format!("{queue}?report=awaiting&limit=1"),
        None,
    )
    .await;
    assert_eq!(page["items"][0]["item_id"], miss.as_str());
    let next = page["next_after"].as_str().unwrap();
    let (_, page) = officer(
        &host,
        YUBEI,
        &format!("{queue}?report=awaiting&after={next}"),
        None,
    )
    .await;
    let rest: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap())
        .collect();
    assert_eq!(rest, [finish, withdrawn]);

    // Completing `finish` unreported reports it in the same commit.
    let complete = format!("{queue}/{finish}/complete");
    let (status, acted) = officer(&host, YUBEI, &complete, Some(json!({"result": {}}))).await;
    assert_eq!(status, StatusCode::OK, "{acted}");
    assert_eq!(acted["item"]["report_state"], "reported");
    assert_eq!(acted["item"]["reported_by"], "officer@cq/yubei");

    // Not yet due: nothing moves. Then `miss`'s report deadline passes:
    // it moves to the city with a new report deadline; its completion
    // deadline stays.
    assert_eq!(advance(&host, 29).await, 0);
    let before = item(&host, miss).await;
    assert_eq!(advance(&host, 2).await, 1);
    let moved = item(&host, miss).await;
    assert_eq!(moved.office.as_deref(), Some("cq"));
    assert_eq!(moved.escalated_from, [YUBEI]);
    assert_eq!(moved.report_missed_by, [YUBEI]);
    assert_eq!(moved.due_at, before.due_at, "the completion deadline stays");
    assert_eq!(
        moved.report_due_at.unwrap() - before.report_due_at.unwrap(),
        chrono::Duration::minutes(31)
    );
    let (_, page) = officer(&host, YUBEI, &format!("{queue}?status=escalated"), None).await;
    assert_eq!(page["items"][0]["item_id"], miss.as_str());
    assert_eq!(page["items"][0]["report_state"], "missed");
    let (_, page) = officer(&host, "cq", &format!("{queue}?report=awaiting"), None).await;
    assert_eq!(page["items"][0]["item_id"], miss.as_str());
    assert_eq!(page["items"][0]["report_missed_by"], json!([YUBEI]));

    // The city misses it too: recorded once, nothing moves, never again.
    assert_eq!(advance(&host, 31).await, 1);
    assert_eq!(advance(&host, 31).await, 0);
    let top = item(&host, miss).await;
    assert_eq!(top.office.as_deref(), Some("cq"));
    assert_eq!(top.report_missed_by, [YUBEI, "cq"]);
    let stored = host.storage.case(&case_id).await.unwrap().unwrap();
    assert_eq!(events(&stored, "item-escalated"), 1);
    assert_eq!(events(&stored, "report-missed"), 1);
    let audit = host.audit().await;
    assert_eq!(
        audit
            .iter()
            .filter(
                |e| matches!(&e.record, AuditRecord::ReportMissed { office, .. } if office == "cq")
            )
            .count(),
        1
    );
    let metrics = scrape(&host).await;
    assert_eq!(value(&metrics, "onething_reports_missed_total"), 2.0);
    assert_eq!(
        value(&metrics, "onething_items_reported_total{on_time=\"true\"}"),
        2.0
    );

    // Taken late at the city; a closed item cannot be taken.
    let (status, acted) = officer(&host, "cq", &report(miss), None).await;
    assert_eq!(status, StatusCode::OK, "{acted}");
    assert_eq!(acted["item"]["report_state"], "late");
    let metrics = scrape(&host).await;
    assert_eq!(
        value(&metrics, "onething_items_reported_total{on_time=\"false\"}"),
        1.0
    );
    let (status, body) = host
        .post(&format!("/v1/cases/{case_id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_error(
        officer(&host, YUBEI, &report(withdrawn), None).await,
        StatusCode::CONFLICT,
        "item_closed",
    );
    // Its report deadline was taken out with it: nothing fires.
    assert_eq!(advance(&host, 240).await, 0);
}
