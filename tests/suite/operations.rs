//! Running the system (issue 8): health routes and the run command.
use std::time::Duration;

use sendinchat_tests::app::{AppOptions, RunCommand, TestApp, scratch_data_folder};
use sendinchat_tests::host::free_port;
use serde_json::{Value, json};

use crate::support::app_with_private_redis;

#[test]
fn liveness_and_readiness_answer_when_everything_is_up() {
    let live = TestApp::shared().get("/health", None);
    assert_eq!((live.status, live.body["status"].as_str()), (200, Some("ok")));
    let ready = TestApp::shared().get("/health/ready", None);
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.body["postgres"], "ok");
    assert_eq!(ready.body["redis"], "ok");
}

#[test]
fn readiness_is_503_while_redis_is_down() {
    let Some((app, mut redis)) = app_with_private_redis(AppOptions::default()) else {
        return;
    };
    redis.stop().expect("stop redis");
    let ready = app.get("/health/ready", None);
    assert_eq!((ready.status, ready.code()), (503, "unavailable"), "{}", ready.text);
    assert!(ready.header("retry-after").is_some());
    assert_eq!(app.get("/health", None).status, 200, "liveness does not depend on Redis");
    redis.restart().expect("restart redis");
    assert_eq!(app.get("/health/ready", None).status, 200);
}

/// Spin cannot refuse to start an app whose secret is too short; readiness is where an
/// orchestrator learns of it, and requests that need the secret fail without leaking it.
#[test]
fn readiness_fails_while_a_secret_is_too_short() {
    if TestApp::is_external() {
        return eprintln!("skipped: starts an app with its own variables");
    }
    let short_secret = "only-twenty-six-bytes-long";
    let app = TestApp::start(AppOptions::default().variable("jwt_secret", short_secret)).expect("app starts");
    let ready = app.get("/health/ready", None);
    assert_eq!((ready.status, ready.code()), (500, "internal"), "{}", ready.text);
    assert_eq!(app.get("/health", None).status, 200, "liveness does not read secrets");
    let me = app.get("/users/me", Some("any-token"));
    assert_eq!((me.status, me.code()), (500, "internal"), "{}", me.text);
    assert!(!ready.text.contains(short_secret) && !me.text.contains(short_secret));
    assert!(app.log().contains("variable jwt_secret is 26 bytes; at least 32 are required"), "{}", app.log());
}

/// From a clean data folder the README's run command reaches `ready`; a smoke run (two users,
/// a deposit, a transfer, a room, WebSocket messages) passes; stopping it stops everything it
/// started; starting it again keeps the data.
#[test]
fn the_run_command_serves_the_whole_system_and_keeps_data_across_restarts() {
    if TestApp::is_external() {
        return eprintln!("skipped: starts its own system");
    }
    let data = scratch_data_folder("run").unwrap();
    let (app_port, ws_port) = (free_port().unwrap(), free_port().unwrap());
    let run = RunCommand::start(&data, app_port, ws_port, Duration::from_secs(600)).expect("the run command is ready");
    let operator_token = secret(&data, "ADMIN_TOKEN");
    let client = Client::new(&run.base_url);

    let alice = client.register_and_login("smoke_alice");
    let bob = client.register_and_login("smoke_bob");
    let deposit = client.post(
        "/fintech/deposits",
        &json!({"user_id": alice.0, "amount": "40"}),
        &[("x-operator-token", &operator_token)],
    );
    assert_eq!(deposit.0, 201, "{}", deposit.1);
    let transfer = client.post(
        "/fintech/transfer",
        &json!({"receiver_id": bob.0, "amount": "15.25"}),
        &[("authorization", &alice.1)],
    );
    assert_eq!(transfer.0, 201, "{}", transfer.1);
    let room = client.post(
        "/chat/create_room",
        &json!({"name": "smoke", "member_ids": [bob.0]}),
        &[("authorization", &alice.1)],
    );
    assert_eq!(room.0, 201, "{}", room.1);
    let room_id = room.1["id"].as_i64().unwrap();

    let socket_url = format!("{}/chat/ws/{room_id}?token={}", run.ws_base_url, bob.1.trim_start_matches("Bearer "));
    let (mut socket, _) = tungstenite::connect(socket_url).expect("websocket through the run command's Pushpin");
    let sent = client.post(
        "/chat/send_message",
        &json!({"chat_id": room_id, "content": "smoke"}),
        &[("authorization", &alice.1)],
    );
    assert_eq!(sent.0, 201, "{}", sent.1);
    let event = (0..20)
        .find_map(|_| match socket.read() {
            Ok(tungstenite::Message::Text(text)) if text.contains("\"smoke\"") => Some(text),
            _ => None,
        })
        .expect("the message arrives over the WebSocket");
    assert!(event.contains("\"type\":\"message\""), "{event}");
    drop(socket);

    let log = run.stop(Duration::from_secs(60)).expect("the run command stops");
    assert!(!log.contains("ERROR"), "{log}");
    let leftovers = std::process::Command::new("pgrep").arg("-f").arg(data.display().to_string()).output().unwrap();
    assert!(
        leftovers.stdout.is_empty(),
        "processes outlived the run command: {}",
        String::from_utf8_lossy(&leftovers.stdout)
    );

    let again = RunCommand::start(&data, app_port, ws_port, Duration::from_secs(300)).expect("ready again");
    let client = Client::new(&again.base_url);
    let alice_again = client.login("smoke_alice");
    let balance = client.get("/fintech/balance", &alice_again);
    assert_eq!(balance.1["balances"][0]["balance"], "24.75", "balances survive a restart");
    again.stop(Duration::from_secs(60)).expect("stops again");
    let _ = std::fs::remove_dir_all(&data);
}

fn secret(data: &std::path::Path, name: &str) -> String {
    let secrets = std::fs::read_to_string(data.join("secrets.env")).expect("secrets.env");
    let line = secrets.lines().find(|line| line.starts_with(&format!("{name}="))).expect("secret present");
    line[name.len() + 1..].to_owned()
}

/// A minimal client for an app this suite did not start through [`TestApp`].
struct Client {
    base_url: String,
    agent: ureq::Agent,
}

impl Client {
    fn new(base_url: &str) -> Self {
        Self { base_url: base_url.to_owned(), agent: sendinchat_tests::host::http_client(Duration::from_secs(30)) }
    }

    fn post(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = self.agent.post(format!("{}{path}", self.base_url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = request.header("content-type", "application/json").send(body.to_string()).expect("request");
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (response.status().as_u16(), serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn get(&self, path: &str, authorization: &str) -> (u16, Value) {
        let mut response = self
            .agent
            .get(format!("{}{path}", self.base_url))
            .header("authorization", authorization)
            .call()
            .expect("request");
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (response.status().as_u16(), serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Registers `username` and returns its id and `Bearer <token>`.
    fn register_and_login(&self, username: &str) -> (i64, String) {
        let registered =
            self.post("/users/register", &json!({"username": username, "password": "smoke test password"}), &[]);
        assert_eq!(registered.0, 201, "{}", registered.1);
        (registered.1["id"].as_i64().unwrap(), self.login(username))
    }

    fn login(&self, username: &str) -> String {
        let session = self.post("/users/token", &json!({"username": username, "password": "smoke test password"}), &[]);
        assert_eq!(session.0, 200, "{}", session.1);
        format!("Bearer {}", session.1["access_token"].as_str().unwrap())
    }
}
