//! Helpers shared by the app test modules.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Mac, SimpleHmac};
use sendinchat_tests::app::{AppOptions, TestApp};
use sendinchat_tests::host::RedisServer;

/// A JWT with the given header and claims, signed HS256 with `secret` whatever the header says.
pub fn forge_token(header: &serde_json::Value, claims: &serde_json::Value, secret: &str) -> String {
    let signing_input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut mac = SimpleHmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

pub fn now_seconds() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A private app with `options`, or `None` (with a note) when the suite targets an external app
/// this process cannot reconfigure.
pub fn private_app(options: AppOptions) -> Option<TestApp> {
    if TestApp::is_external() {
        eprintln!("skipped: needs a private app, and SENDINCHAT_BASE_URL points at an external one");
        return None;
    }
    Some(TestApp::start(options).expect("private app starts"))
}

/// A private app on its own Redis server, for tests that stop and restart Redis; `None` (with a
/// note) against an external app.
pub fn app_with_private_redis(options: AppOptions) -> Option<(TestApp, RedisServer)> {
    if TestApp::is_external() {
        eprintln!("skipped: stops Redis, which only a private app allows");
        return None;
    }
    let redis = sendinchat_tests::app::private_redis().expect("private redis");
    let options = options.variable("redis_url", &redis.url()).variable("redis_host", &redis.host_and_port());
    Some((TestApp::start(options).expect("private app starts"), redis))
}
