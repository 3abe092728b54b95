//! Identities: every caller presents a token; citizens see and act on their
//! own cases only, departments on their own queue only; a citizen sees every
//! read of their data.

use onething_host::identity::{Claims, DEV_ISSUER, Role, issue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestHost, assert_error, into_json, newborn_application, token};

const MOTHER: &str = "M-ZHAO-MOTHER";
const FATHER: &str = "F-ZHAO-FATHER";

/// Sends `body` to `path` as whoever `bearer` names (none: no header).
pub async fn send(
    host: &TestHost,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = host.client.request(method, format!("{}{path}", host.base));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    into_json(request.send().await.unwrap()).await
}

pub fn form_without_applicant() -> Value {
    let mut form = newborn_application();
    form.as_object_mut().unwrap().remove("applicant_id");
    form
}

#[tokio::test]
async fn wrong_or_missing_credentials_are_401() {
    let host = TestHost::start(&["newborn"]).await;
    let apply = "/v1/scenarios/newborn/cases";
    let body = Some(form_without_applicant());

    // No token: 401 with a challenge.
    let response = host
        .client
        .post(format!("{}{apply}", host.base))
        .json(&form_without_applicant())
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_error(
        into_json(response).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let now = chrono::Utc::now().timestamp();
    let claims = |iss: &str, exp: i64| Claims {
        iss: iss.into(),
        sub: MOTHER.into(),
        role: Role::Citizen,
        exp,
        iat: None,
        nbf: None,
        department: None,
        place: None,
    };
    let dev_secret: [u8; 32] = {
        use sha2::Digest;
        sha2::Sha256::digest(b"onething dev identity v1").into()
    };
    for (bearer, why) in [
        ("not-a-token".to_owned(), "garbage"),
        (
            issue(&[7u8; 32], &claims(DEV_ISSUER, now + 600)),
            "another key",
        ),
        (
            issue(&dev_secret, &claims("someone-else", now + 600)),
            "another issuer",
        ),
        (
            issue(&dev_secret, &claims(DEV_ISSUER, now - 3600)),
            "expired",
        ),
    ] {
        let message = assert_error(
            send(&host, Method::POST, apply, Some(&bearer), body.clone()).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        );
        assert!(!message.is_empty(), "{why}");
    }
    // A valid token of a role the scenario does not take (its manifest's
    // `applicants`): the answer names who may apply.
    let message = assert_error(
        send(
            &host,
            Method::POST,
            apply,
            Some(&token(Role::Department, "hrss")),
            body.clone(),
        )
        .await,
        StatusCode::FORBIDDEN,
        "wrong_applicant",
    );
    assert!(message.contains("citizens"), "{message}");
    assert_error(
        send(
            &host,
            Method::GET,
            "/v1/departments/hrss/items",
            Some(&token(Role::Citizen, MOTHER)),
            None,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "wrong_role",
    );
    assert_error(
        send(
            &host,
            Method::POST,
            "/v1/scenarios/newborn/events",
            Some(&token(Role::Citizen, MOTHER)),
            body,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "wrong_role",
    );
    // The catalogue stays public.
    let (status, _) = send(&host, Method::GET, "/v1/scenarios", None, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_citizen_sees_and_acts_only_on_their_own_cases() {
    let host = TestHost::start(&["newborn"]).await;
    let mother = token(Role::Citizen, MOTHER);
    let father = token(Role::Citizen, FATHER);
    let apply = "/v1/scenarios/newborn/cases";

    // The applicant comes from the token: left out of the form, filled in;
    // naming someone else (who gave no mandate) is refused.
    let mut as_father = form_without_applicant();
    as_father["applicant_id"] = json!(FATHER);
    assert_error(
        send(&host, Method::POST, apply, Some(&mother), Some(as_father)).await,
        StatusCode::FORBIDDEN,
        "no_mandate",
    );
    let (status, case) = send(
        &host,
        Method::POST,
        apply,
        Some(&mother),
        Some(form_without_applicant()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    assert_eq!(case["status"], "in-progress", "{case}");
    let case_id = case["case_id"].as_str().unwrap().to_owned();

    // The mother sees it; the father, a stranger and a department token do
    // not: 404, as if it did not exist.
    let path = format!("/v1/cases/{case_id}");
    let (status, seen) = send(&host, Method::GET, &path, Some(&mother), None).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["applicant"], MOTHER, "{seen}");
    for other in [&father, &token(Role::Citizen, "STRANGER")] {
        assert_error(
            send(&host, Method::GET, &path, Some(other), None).await,
            StatusCode::NOT_FOUND,
            "case_not_found",
        );
        for action in ["cancel", "supplements", "evidence/confirm"] {
            assert_error(
                send(
                    &host,
                    Method::POST,
                    &format!("{path}/{action}"),
                    Some(other),
                    Some(json!({})),
                )
                .await,
                StatusCode::NOT_FOUND,
                "case_not_found",
            );
        }
    }
    // Still open and untouched after all that.
    let (_, seen) = send(&host, Method::GET, &path, Some(&mother), None).await;
    assert_eq!(seen["status"], "in-progress", "{seen}");

    // An idempotency key is the caller's own: the father's same key makes
    // his own case, it does not replay hers.
    let with_key = |bearer: &str| {
        host.client
            .post(format!("{}{apply}", host.base))
            .bearer_auth(bearer)
            .header("Idempotency-Key", "newborn-zhao")
            .json(&form_without_applicant())
            .send()
    };
    let (_, first) = into_json(with_key(&mother).await.unwrap()).await;
    let (_, again) = into_json(with_key(&mother).await.unwrap()).await;
    let (_, his) = into_json(with_key(&father).await.unwrap()).await;
    assert_eq!(first["case_id"], again["case_id"]);
    assert_ne!(first["case_id"], his["case_id"], "{his}");

    // The mother withdraws her own case.
    let (status, withdrawn) = send(
        &host,
        Method::POST,
        &format!("{path}/cancel"),
        Some(&mother),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{withdrawn}");
}

#[tokio::test]
async fn a_department_sees_and_acts_only_on_its_own_items() {
    let host = TestHost::start(&["newborn"]).await;
    let (_, case) = host
        .post("/v1/scenarios/newborn/cases", &newborn_application())
        .await;
    let item = case["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["department"] == "public-security")
        .unwrap()
        .clone();
    let item_id = item["item_id"].as_str().unwrap();
    let police = token(Role::Department, "public-security");
    let hrss = token(Role::Department, "hrss");

    // Another department's queue: 404.
    assert_error(
        send(
            &host,
            Method::GET,
            "/v1/departments/public-security/items",
            Some(&hrss),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "queue_not_found",
    );
    assert_error(
        send(
            &host,
            Method::POST,
            &format!("/v1/departments/public-security/items/{item_id}/complete"),
            Some(&hrss),
            Some(json!({"result": {}})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "queue_not_found",
    );
    // Its own queue, but another department's item: 404.
    assert_error(
        send(
            &host,
            Method::POST,
            &format!("/v1/departments/hrss/items/{item_id}/complete"),
            Some(&hrss),
            Some(json!({"result": {}})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "item_not_found",
    );
    // The owner: its queue holds the item, and it completes it.
    let (status, queue) = send(
        &host,
        Method::GET,
        "/v1/departments/public-security/items",
        Some(&police),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        queue["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["item_id"] == item_id)
    );
    let (status, done) = send(
        &host,
        Method::POST,
        &format!("/v1/departments/public-security/items/{item_id}/complete"),
        Some(&police),
        Some(json!({"result": {"household_no": "H1"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
}

#[tokio::test]
async fn a_citizen_sees_every_read_of_their_data() {
    let host = TestHost::start(&["newborn"]).await;
    // The father applies; the child joins the mother's household, so the
    // mother's residence record is read for the father's case.
    let mut form = form_without_applicant();
    form["household_of"] = json!("mother");
    let (status, case) = send(
        &host,
        Method::POST,
        "/v1/scenarios/newborn/cases",
        Some(&token(Role::Citizen, FATHER)),
        Some(form),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let case_id = case["case_id"].as_str().unwrap();

    let log = |who: &str| {
        let bearer = token(Role::Citizen, who);
        let host = &host;
        async move { send(host, Method::GET, "/v1/me/access-log", Some(&bearer), None).await }
    };
    // The father sees the reads made for his case, with their purposes;
    // the mother's record among them shows no key.
    let (status, father) = log(FATHER).await;
    assert_eq!(status, StatusCode::OK, "{father}");
    let reads = father["reads"].as_array().unwrap();
    assert_eq!(reads.len(), 2, "{father}");
    assert!(
        reads
            .iter()
            .all(|r| r["case_id"] == case_id && r["scenario"] == "newborn")
    );
    let certificate = reads
        .iter()
        .find(|r| r["dataset"] == "health/birth-certificates")
        .unwrap();
    assert_eq!(certificate["department"], "health");
    assert_eq!(certificate["allowed"], true);
    assert!(
        certificate["purpose"]
            .as_str()
            .unwrap()
            .contains("birth medical certificate")
    );
    let residence = reads
        .iter()
        .find(|r| r["dataset"] == "public-security/residents")
        .unwrap();
    assert_eq!(residence["record"], "read for your case");
    assert!(residence["key"].is_null(), "{residence}");

    // The mother sees the read of her own record, in a case not hers: no
    // case id, her key, who read it and why.
    let (_, mother) = log(MOTHER).await;
    let reads = mother["reads"].as_array().unwrap();
    assert_eq!(reads.len(), 1, "{mother}");
    assert_eq!(reads[0]["record"], "yours");
    assert_eq!(reads[0]["key"], MOTHER);
    assert!(reads[0]["case_id"].is_null(), "{mother}");
    assert_eq!(reads[0]["department"], "public-security");
    assert_eq!(reads[0]["purpose"], "check the household the newborn joins");

    // Nobody else's reads; paging; no token.
    let (_, stranger) = log("STRANGER").await;
    assert_eq!(stranger["reads"], json!([]));
    let bearer = token(Role::Citizen, FATHER);
    let (_, page) = send(
        &host,
        Method::GET,
        "/v1/me/access-log?limit=1",
        Some(&bearer),
        None,
    )
    .await;
    assert_eq!(page["reads"].as_array().unwrap().len(), 1);
    let after = page["next_after"].as_u64().unwrap();
    let (_, rest) = send(
        &host,
        Method::GET,
        &format!("/v1/me/access-log?after={after}"),
        Some(&bearer),
        None,
    )
    .await;
    assert_eq!(rest["reads"].as_array().unwrap().len(), 1, "{rest}");
    assert_error(
        send(
            &host,
            Method::GET,
            "/v1/me/access-log?limit=0",
            Some(&bearer),
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    assert_error(
        send(&host, Method::GET, "/v1/me/access-log", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

#[tokio::test]
async fn without_an_identity_provider_nobody_is_let_in() {
    let host = TestHost::start_with(&["newborn"], |config| {
        config.identity = None;
        config.demo_plugins = false;
    })
    .await;
    assert_error(
        send(
            &host,
            Method::POST,
            "/v1/scenarios/newborn/cases",
            Some(&token(Role::Citizen, MOTHER)),
            Some(form_without_applicant()),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "identity_not_configured",
    );
}

#[tokio::test]
async fn a_device_acts_only_as_a_device() {
    let host = TestHost::start(&["newborn", "ebike-charging"]).await;
    let sensor = token(Role::Device, "S-7");
    let father = token(Role::Citizen, FATHER);
    let audited = host.audit().await.len();

    // The attack: a sensor files a newborn application in the father's
    // name. Newborn does not take device events: 400, before anything runs;
    // without the applicant field all the same.
    let mut in_his_name = form_without_applicant();
    in_his_name["applicant_id"] = json!(FATHER);
    for body in [in_his_name, form_without_applicant()] {
        let message = assert_error(
            send(
                &host,
                Method::POST,
                "/v1/scenarios/newborn/events",
                Some(&sensor),
                Some(body),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "device_events_not_accepted",
        );
        assert!(message.contains("`newborn`"), "{message}");
    }

    // A scenario that takes device events still refuses an event naming a
    // citizen, and names the field.
    let reading = json!({"sensor_id": "S-7", "building": "B", "grid": "G", "detected_at": "t"});
    let mut naming_him = reading.clone();
    naming_him["applicant_id"] = json!(FATHER);
    let message = assert_error(
        send(
            &host,
            Method::POST,
            "/v1/scenarios/ebike-charging/events",
            Some(&sensor),
            Some(naming_him),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    );
    assert!(message.contains("applicant_id"), "{message}");

    // Nothing was made of any of it: no case, no item, no read of anyone's
    // data.
    assert_eq!(host.storage.open_cases().await.unwrap(), 0);
    for department in [
        "public-security",
        "medical-insurance",
        "hrss",
        "disease-control",
        "community-grid",
    ] {
        assert!(host.pending(department).await.is_empty(), "{department}");
    }
    let (status, log) = send(&host, Method::GET, "/v1/me/access-log", Some(&father), None).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log["reads"], json!([]), "{log}");
    assert_eq!(
        host.audit().await.len(),
        audited,
        "nothing new on the audit log"
    );

    // The device's own event still opens a case, which is the device's:
    // it can follow it, a citizen cannot see it.
    let (status, case) = send(
        &host,
        Method::POST,
        "/v1/scenarios/ebike-charging/events",
        Some(&sensor),
        Some(reading),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    let path = format!("/v1/cases/{}", case["case_id"].as_str().unwrap());
    let (status, seen) = send(&host, Method::GET, &path, Some(&sensor), None).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["applicant"], "sensor:S-7", "{seen}");
    for other in [&father, &token(Role::Device, "S-8")] {
        assert_error(
            send(&host, Method::GET, &path, Some(other), None).await,
            StatusCode::NOT_FOUND,
            "case_not_found",
        );
    }
    assert_eq!(host.pending("community-grid").await.len(), 1);
    host.stop().await;
}
