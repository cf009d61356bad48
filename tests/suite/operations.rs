//! Running the system (issue 8): the README's run command, end to end.
use std::path::Path;
use std::time::Duration;

use sendinchat_tests::app::{ChatSocket, RunCommand, RunPorts, TestApp, scratch_data_folder};
use sendinchat_tests::metrics::sample;
use sendinchat_tests::processes::build::workspace_root;
use sendinchat_tests::processes::free_port;
use serde_json::json;

/// From a clean data folder the README's run command reaches `ready`; a smoke run (two users,
/// a deposit, a transfer, a room, WebSocket messages) passes; stopping it stops everything it
/// started; starting it again keeps the data.
#[test]
fn the_run_command_serves_the_whole_system_and_keeps_data_across_restarts() {
    if TestApp::is_external() {
        return eprintln!("skipped: starts its own system");
    }
    let data = scratch_data_folder("run").unwrap();
    let ports = RunPorts { app: free_port().unwrap(), web_socket: free_port().unwrap(), metrics: free_port().unwrap() };
    let run = RunCommand::start(&data, &ports, &[], Duration::from_secs(600)).expect("the run command is ready");
    assert!(run.log().contains(&run.metrics_url), "the run command prints its metrics URL:\n{}", run.log());
    let app = app_of(&run, &data);

    let alice = app.sign_up("smoke_alice", SMOKE_PASSWORD);
    let bob = app.sign_up("smoke_bob", SMOKE_PASSWORD);
    app.fund(&alice, "40");
    let transfer = app.transfer(&alice, &json!({"receiver_id": bob.id, "amount": "15.25"}));
    assert_eq!(transfer.status, 201, "{}", transfer.text);
    let room = app.create_room(&alice, &json!({"name": "smoke", "member_ids": [bob.id]}));
    assert_eq!(room.status, 201, "{}", room.text);
    let room_id = room.body["id"].as_i64().unwrap();

    let mut socket = ChatSocket::join(&app, room_id, &bob).expect("websocket through the run command's Pushpin");
    let sent = app.send_message(&alice, &json!({"chat_id": room_id, "content": "smoke"}));
    assert_eq!(sent.status, 201, "{}", sent.text);
    let event =
        socket.next_of_type("message", Duration::from_secs(10)).expect("the message arrives over the WebSocket");
    assert_eq!(event["message"]["content"], "smoke");
    drop(socket);

    // Pushpin passes the request id both ways: through the gateway, the app's answer names the
    // id the client sent.
    let gateway = run.ws_base_url.replacen("ws://", "http://", 1);
    let through_pushpin = ureq::get(format!("{gateway}/health"))
        .header("x-request-id", "through-pushpin-1")
        .call()
        .expect("Pushpin proxies plain HTTP to the app");
    assert_eq!(
        through_pushpin.headers().get("x-request-id").and_then(|value| value.to_str().ok()),
        Some("through-pushpin-1")
    );

    // The run command turns the local host's metrics on: the deposit and the transfer above are
    // counted (fintech's routes share one label, so as two POSTs answered 201).
    let metrics = ureq::get(&run.metrics_url).call().expect("metrics are served").into_body().read_to_string().unwrap();
    let created = ["component=\"fintech\"", "method=\"POST\"", "status=\"201\""];
    let fintech_created = sample(&metrics, "sendinchat_host_http_requests_total", &created);
    assert_eq!(fintech_created, 2.0, "the deposit and the transfer:\n{metrics}");

    let log = run.stop(Duration::from_secs(60)).expect("the run command stops");
    assert!(!log.contains("ERROR"), "{log}");
    let leftovers = std::process::Command::new("pgrep").arg("-f").arg(data.display().to_string()).output().unwrap();
    assert!(
        leftovers.stdout.is_empty(),
        "processes outlived the run command: {}",
        String::from_utf8_lossy(&leftovers.stdout)
    );

    let again = RunCommand::start(&data, &ports, &["--seed"], Duration::from_secs(300)).expect("ready again");
    let app = app_of(&again, &data);
    let alice_again = app.log_in("smoke_alice", SMOKE_PASSWORD);
    assert_eq!(app.balance(&alice_again), "24.75", "balances survive a restart");

    // The demo data, seeded by --seed above and seeded again: funded once, one room.
    let reseeded = std::process::Command::new(workspace_root().join("scripts/seed.sh"))
        .args([again.base_url.as_str(), &secret(&data, "ADMIN_TOKEN")])
        .output()
        .expect("seed.sh runs");
    let said = String::from_utf8_lossy(&reseeded.stdout);
    assert!(reseeded.status.success() && said.contains("Demo (already there)"), "{said}");
    let demo_alice = app.log_in("alice", "sendinchat-demo");
    assert_eq!(app.balance(&demo_alice), "100.00", "funded once");
    let demo_rooms = app.rooms(&demo_alice, "");
    let named_demo = demo_rooms.body["items"].as_array().unwrap().iter().filter(|room| room["name"] == "Demo").count();
    assert_eq!(named_demo, 1, "{}", demo_rooms.text);
    again.stop(Duration::from_secs(60)).expect("stops again");
    let _ = std::fs::remove_dir_all(&data);
}

const SMOKE_PASSWORD: &str = "smoke test password";

/// The run command's app, with the credentials it generated in its data folder.
fn app_of(run: &RunCommand, data: &Path) -> TestApp {
    TestApp::attach(&run.base_url, &run.ws_base_url, &secret(data, "ADMIN_TOKEN"), &secret(data, "JWT_SECRET"))
}

fn secret(data: &Path, name: &str) -> String {
    let secrets = std::fs::read_to_string(data.join("secrets.env")).expect("secrets.env");
    let line = secrets.lines().find(|line| line.starts_with(&format!("{name}="))).expect("secret present");
    line[name.len() + 1..].to_owned()
}
