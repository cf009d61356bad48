//! Request ids and the components' request log (issue 15): every response names its request, and
//! every request is one JSON line that an operator can search by id, route, user or error.
use std::time::Duration;

use sendinchat_tests::app::{AppOptions, TestApp, TestUser, private_app, unique_suffix};
use sendinchat_tests::wait;
use serde_json::{Value, json};

fn app() -> &'static TestApp {
    TestApp::shared()
}

fn is_generated_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// The JSON log lines (of any component) that carry `request_id`.
fn lines_for(app: &TestApp, request_id: &str) -> Vec<Value> {
    let needle = format!("\"request_id\":\"{request_id}\"");
    app.log()
        .lines()
        .filter(|line| line.contains(&needle))
        .filter_map(|line| serde_json::from_str(&line[line.find('{')?..]).ok())
        .collect()
}

fn bearer(user: &TestUser) -> String {
    format!("Bearer {}", user.token)
}

#[test]
fn every_response_carries_a_request_id_the_clients_own_when_well_formed() {
    let kept = app().request("GET", "/health", &[("x-request-id", "trace-abc.1_2")], None);
    assert_eq!(kept.header("x-request-id"), Some("trace-abc.1_2"));

    let too_long = "x".repeat(65);
    for bad in ["has space", "quote\"d", too_long.as_str()] {
        let replaced = app().request("GET", "/health", &[("x-request-id", bad)], None);
        let id = replaced.header("x-request-id").expect("an id is always returned");
        assert!(is_generated_id(id), "{bad:?} was not replaced by a generated id: {id:?}");
    }

    // Errors carry one too, from every component, and no two requests share a generated id.
    let first = app().get("/fintech/balance", None);
    let second = app().get("/chat/rooms", None);
    assert_eq!((first.status, second.status), (401, 401));
    let (first, second) = (first.header("x-request-id").unwrap(), second.header("x-request-id").unwrap());
    assert!(is_generated_id(first) && is_generated_id(second));
    assert_ne!(first, second);
}

#[test]
fn each_request_is_one_json_line_with_route_status_user_and_timings() {
    if TestApp::is_external() {
        eprintln!("skipped: reads the host's log, which an external app does not share");
        return;
    }
    let user = app().new_user();
    app().fund(&user, "10");
    let receiver = app().new_user();
    let sent = app().transfer(&user, &json!({"receiver_id": receiver.id, "amount": "1.00"}));
    assert_eq!(sent.status, 201, "{}", sent.text);
    let transfer_id = sent.body["id"].as_i64().unwrap();

    let request_id = format!("log-ok-{}", unique_suffix());
    let path = format!("/fintech/transactions/{transfer_id}");
    let read = app().request("GET", &path, &[("x-request-id", &request_id), ("authorization", &bearer(&user))], None);
    assert_eq!(read.status, 200);
    let lines = wait::until(Duration::from_secs(5), || Some(lines_for(app(), &request_id)).filter(|l| !l.is_empty()))
        .unwrap_or_else(|| panic!("no log line for {request_id}:\n{}", app().log()));
    assert_eq!(lines.len(), 1, "one line per request: {lines:?}");
    let line = &lines[0];
    assert_eq!(line["level"], "info");
    assert_eq!(line["component"], "fintech");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/fintech/transactions/{id}", "the route template, not the raw path");
    assert_eq!(line["status"], 200);
    assert_eq!(line["user_id"], user.id);
    assert!(line["duration_ms"].as_f64().unwrap() > 0.0, "{line}");
    let database_ms = line["db_ms"].as_f64().unwrap();
    assert!(database_ms > 0.0 && database_ms <= line["duration_ms"].as_f64().unwrap(), "{line}");
    let time = line["time"].as_str().unwrap();
    let rfc3339_utc = regex_lite::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$").unwrap();
    assert!(rfc3339_utc.is_match(time), "{time}");
    assert!(line.get("error").is_none());

    let missing_id = format!("log-missing-{}", unique_suffix());
    let missing = app().request(
        "GET",
        "/fintech/transactions/999999999",
        &[("x-request-id", &missing_id), ("authorization", &bearer(&user))],
        None,
    );
    assert_eq!(missing.status, 404);
    let lines = wait::until(Duration::from_secs(5), || Some(lines_for(app(), &missing_id)).filter(|l| !l.is_empty()))
        .expect("a line for the failed request");
    assert_eq!(lines[0]["error"], "not_found");
    assert_eq!(lines[0]["status"], 404);
}

#[test]
fn a_chat_message_can_be_followed_from_send_to_its_publish() {
    if TestApp::is_external() {
        eprintln!("skipped: reads the host's log, which an external app does not share");
        return;
    }
    let (alice, bob) = (app().new_user(), app().new_user());
    let room = app().create_room(&alice, &json!({"name": "traced", "member_ids": [bob.id]}));
    assert_eq!(room.status, 201, "{}", room.text);
    let request_id = format!("trace-chat-{}", unique_suffix());
    let body = serde_json::to_vec(&json!({"chat_id": room.body["id"], "content": "follow me"})).unwrap();
    let sent = app().request(
        "POST",
        "/chat/send_message",
        &[("x-request-id", &request_id), ("authorization", &bearer(&alice))],
        Some(("application/json", body)),
    );
    assert_eq!(sent.status, 201, "{}", sent.text);
    let components = || {
        let lines = lines_for(app(), &request_id);
        let names: Vec<String> =
            lines.iter().filter_map(|line| line["component"].as_str().map(str::to_owned)).collect();
        (names.iter().any(|name| name == "chat") && names.iter().any(|name| name == "chat-fanout")).then_some(lines)
    };
    let lines = wait::until(Duration::from_secs(10), components)
        .unwrap_or_else(|| panic!("{request_id} not followed to chat-fanout:\n{}", app().log()));
    let fanout = lines.iter().find(|line| line["component"] == "chat-fanout").unwrap();
    assert_eq!(fanout["outcome"], "published");
}

#[test]
fn log_level_warn_switches_the_request_lines_off() {
    let Some(app) = private_app(AppOptions::default().variable("log_level", "warn")) else {
        return;
    };
    let host_lines = |app: &TestApp| app.log().matches("GET /health component=health").count();
    let before = host_lines(&app);
    let quiet_id = format!("quiet-{}", unique_suffix());
    let answered = app.request("GET", "/health", &[("x-request-id", &quiet_id)], None);
    assert_eq!(answered.status, 200);
    assert_eq!(answered.header("x-request-id"), Some(quiet_id.as_str()));
    // The host logs each request after the component has answered (and so after the component's
    // own line would have been written): once the host's line is there, the absence means off.
    wait::until(Duration::from_secs(5), || (host_lines(&app) > before).then_some(()))
        .unwrap_or_else(|| panic!("the host did not log the request:\n{}", app.log()));
    assert!(lines_for(&app, &quiet_id).is_empty(), "an info line was written at log_level=warn:\n{}", app.log());
}
