//! The `health` component: liveness, and readiness as an orchestrator sees it while a dependency
//! is down or a secret is unusable.
use sendinchat_tests::app::{AppOptions, TestApp, app_with_private_redis, private_app};

#[test]
fn liveness_and_readiness_answer_when_everything_is_up() {
    let live = TestApp::shared().health();
    assert_eq!((live.status, live.body["status"].as_str()), (200, Some("ok")));
    let ready = TestApp::shared().readiness();
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.body["postgres"], "ok");
    assert_eq!(ready.body["redis"], "ok");
    for dependency in ["postgres", "redis"] {
        let check = &ready.body["dependencies"][dependency];
        assert_eq!(check["state"], "ok", "{}", ready.text);
        assert!(check["rtt_ms"].as_f64().is_some_and(|rtt| rtt > 0.0), "{}", ready.text);
    }
}

/// Without Redis the app still serves (here: a message is stored and answered), so readiness
/// says `degraded` rather than 503, which would have an orchestrator take every replica out.
#[test]
fn readiness_is_degraded_not_refused_while_redis_is_down() {
    let Some((app, mut redis)) = app_with_private_redis(AppOptions::default()) else {
        return;
    };
    let user = app.new_user();
    let room = app.create_room(&user, &serde_json::json!({"name": "without redis"}));
    let room = room.body["id"].as_i64().expect("a room");
    redis.stop().expect("stop redis");
    let ready = app.readiness();
    assert_eq!((ready.status, ready.body["status"].as_str()), (200, Some("degraded")), "{}", ready.text);
    assert_eq!(ready.body["redis"], "unavailable", "{}", ready.text);
    assert_eq!(ready.body["dependencies"]["redis"]["state"], "unavailable", "{}", ready.text);
    assert_eq!(ready.body["dependencies"]["postgres"]["state"], "ok", "{}", ready.text);
    let sent = app.send_message(&user, &serde_json::json!({"chat_id": room, "content": "stored"}));
    assert_eq!(sent.status, 201, "{}", sent.text);
    assert_eq!(app.health().status, 200, "liveness does not depend on Redis");
    redis.restart().expect("restart redis");
    assert_eq!(app.readiness().body["status"], "ready");
}

/// Spin cannot refuse to start an app whose secret is too short; readiness is where an
/// orchestrator learns of it, and requests that need the secret fail without leaking it.
#[test]
fn readiness_fails_while_a_secret_is_too_short() {
    let short_secret = "only-twenty-six-bytes-long";
    let Some(app) = private_app(AppOptions::default().variable("jwt_secret", short_secret)) else {
        return;
    };
    let ready = app.readiness();
    assert_eq!((ready.status, ready.code()), (500, "internal"), "{}", ready.text);
    assert_eq!(app.health().status, 200, "liveness does not read secrets");
    let me = app.get("/users/me", Some("any-token"));
    assert_eq!((me.status, me.code()), (500, "internal"), "{}", me.text);
    assert!(!ready.text.contains(short_secret) && !me.text.contains(short_secret));
    assert!(app.logged("variable jwt_secret is 26 bytes; at least 32 are required"), "{}", app.log());
}
