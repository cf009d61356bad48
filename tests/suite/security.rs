//! Hostile clients (issue 14): each hole a security review found, shown closed through the
//! public interfaces. Throttling and token basics live in `auth.rs`; these tests act as an
//! attacker would.
use std::sync::atomic::{AtomicBool, Ordering};

use sendinchat_tests::app::{AppOptions, Response, TestApp, private_app};
use serde_json::json;

/// A login for a made-up username, with the given extra headers.
fn failed_login(app: &TestApp, attempt: usize, headers: &[(&str, &str)]) -> Response {
    let body = json!({"username": format!("nobody_{attempt}"), "password": "guess"});
    app.post("/users/token", None, &body, headers)
}

/// A client that writes its own `spin-client-addr` (and `X-Forwarded-For`) on every request
/// neither escapes its address's counter nor fills someone else's: the platform's value is the
/// only one used, and a request carrying a second one is refused before any password check.
#[test]
fn forged_client_addresses_do_not_dodge_the_address_throttle() {
    let Some(app) = private_app(
        AppOptions::default()
            .variable("login_max_failures", "100")
            .variable("login_max_failures_per_address", "4")
            .variable("login_failure_window_seconds", "60"),
    ) else {
        return;
    };
    for attempt in 0..20 {
        let forged_peer = format!("198.51.100.{attempt}:4000");
        let forged_client = format!("203.0.113.{attempt}");
        let headers = [("spin-client-addr", forged_peer.as_str()), ("x-forwarded-for", forged_client.as_str())];
        let refused = failed_login(&app, attempt, &headers);
        assert_eq!((refused.status, refused.code()), (400, "forged_client_address"), "{}", refused.text);
    }
    // X-Forwarded-For alone, from a peer nobody trusts, is ignored: one client, one counter.
    let statuses: Vec<u16> = (0..8)
        .map(|attempt| {
            let forged_client = format!("203.0.113.{attempt}");
            failed_login(&app, attempt, &[("x-forwarded-for", forged_client.as_str())]).status
        })
        .collect();
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429, 429, 429], "forged X-Forwarded-For: {statuses:?}");
}

/// A client cannot claim to be a trusted proxy by naming one as its peer.
#[test]
fn a_client_cannot_pose_as_a_trusted_proxy() {
    let Some(app) = private_app(
        AppOptions::default()
            .variable("login_max_failures", "100")
            .variable("login_max_failures_per_address", "2")
            .variable("trusted_proxies", "10.0.0.0/8"),
    ) else {
        return;
    };
    let headers = [("spin-client-addr", "10.1.2.3:80"), ("x-forwarded-for", "203.0.113.77")];
    assert_eq!(failed_login(&app, 0, &headers).code(), "forged_client_address");
    let statuses: Vec<u16> =
        (0..3).map(|attempt| failed_login(&app, attempt, &[("x-forwarded-for", "203.0.113.77")]).status).collect();
    assert_eq!(statuses, [401, 401, 429], "the direct peer (untrusted) is counted");
}

/// Parallel guesses at one password: each is counted before its password is checked, so no more
/// than the limit are ever checked.
#[test]
fn parallel_guesses_are_counted_before_the_password_check() {
    let limit = 3;
    let Some(app) = private_app(
        AppOptions::default()
            .variable("login_max_failures", &limit.to_string())
            .variable("login_max_failures_per_address", "1000")
            .variable("login_failure_window_seconds", "60")
            // Production-like hashing: a check before a slow hash is exactly the race.
            .variable("bcrypt_cost", "10"),
    ) else {
        return;
    };
    let user = app.new_user();
    let started = AtomicBool::new(false);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let guesses: Vec<_> = (0..16)
            .map(|guess| {
                let (app, user, started) = (&app, &user, &started);
                scope.spawn(move || {
                    while !started.load(Ordering::Acquire) {
                        std::hint::spin_loop();
                    }
                    app.login(&user.username, &format!("wrong guess {guess}")).status
                })
            })
            .collect();
        started.store(true, Ordering::Release);
        guesses.into_iter().map(|guess| guess.join().expect("guess")).collect()
    });
    let checked = statuses.iter().filter(|status| **status == 401).count();
    let throttled = statuses.iter().filter(|status| **status == 429).count();
    assert_eq!(checked + throttled, statuses.len(), "only 401 or 429: {statuses:?}");
    assert_eq!(checked, limit, "exactly the limit of guesses is checked: {statuses:?}");
}
