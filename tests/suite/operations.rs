//! Running the system (issue 8): health routes.
use sendinchat_tests::app::{AppOptions, TestApp};

use crate::support::private_app;

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
    if TestApp::is_external() {
        return eprintln!("skipped: stops Redis, which only a private app allows");
    }
    let mut redis = sendinchat_tests::app::private_redis().expect("private redis");
    let app = private_app(
        AppOptions::default().variable("redis_url", &redis.url()).variable("redis_host", &redis.host_and_port()),
    )
    .expect("a private app");
    redis.stop().expect("stop redis");
    let ready = app.get("/health/ready", None);
    assert_eq!((ready.status, ready.code()), (503, "unavailable"), "{}", ready.text);
    assert!(ready.header("retry-after").is_some());
    assert_eq!(app.get("/health", None).status, 200, "liveness does not depend on Redis");
    redis.restart().expect("restart redis");
    assert_eq!(app.get("/health/ready", None).status, 200);
}
