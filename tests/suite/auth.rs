//! The `auth` component through the host: registration, login, tokens, throttling (issue 5).
use std::time::{Duration, Instant};

use sendinchat_tests::app::{AppOptions, TestApp, TestUser, app_with_private_redis, private_app};
use sendinchat_tests::locks::with_password_changed_meanwhile;
use sendinchat_tests::tokens::{forge_token, now_seconds};
use sendinchat_tests::wait;
use serde_json::json;

fn app() -> &'static TestApp {
    TestApp::shared()
}

#[test]
fn register_login_and_read_users() {
    let username = format!("Alice_{}", std::process::id());
    let registered = app().register(&username, "correct horse battery staple");
    assert_eq!(registered.status, 201, "{}", registered.text);
    assert_eq!(registered.body["username"], username.to_lowercase(), "stored in canonical form");
    let id = registered.body["id"].as_i64().expect("id");
    assert!(registered.body["created_at"].as_str().is_some_and(|at| at.ends_with('Z')));
    assert!(registered.body.get("password_hash").is_none());

    // The seed's OAuth2 password form, with a differently-cased username.
    let form = format!("username={}&password=correct+horse+battery+staple", username.to_uppercase());
    let session =
        app().request("POST", "/users/token", &[], Some(("application/x-www-form-urlencoded", form.into_bytes())));
    assert_eq!(session.status, 200, "{}", session.text);
    assert_eq!(session.body["token_type"], "bearer");
    assert_eq!(session.body["expires_in"], 900);
    assert_eq!(session.header("cache-control"), Some("no-store"));
    let user = TestUser {
        id,
        username: username.clone(),
        password: "correct horse battery staple".to_owned(),
        token: session.body["access_token"].as_str().expect("token").to_owned(),
        refresh_token: session.body["refresh_token"].as_str().expect("refresh token").to_owned(),
    };

    let me = app().me(&user);
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body, registered.body);
    assert_eq!(app().user_by_id(&user, id).body, registered.body);
    let by_name = app().user_by_name(&user, &username.to_uppercase());
    assert_eq!(by_name.body, registered.body);
    assert_eq!(app().user_by_id(&user, 999_999_999).status, 404);
    assert_eq!(app().user_by_name(&user, "nobody_at_all").status, 404);
    assert_eq!(app().get(&format!("/users/{id}"), None).status, 401);
}

#[test]
fn usernames_are_unique_case_insensitively() {
    let name = format!("bob_{}", std::process::id());
    assert_eq!(app().register(&name, "a fine password 1").status, 201);
    let duplicate = app().register(&name.to_uppercase(), "a fine password 2");
    assert_eq!(duplicate.status, 409);
    assert_eq!(duplicate.code(), "username_taken");
}

#[test]
fn concurrent_registrations_of_one_name_admit_exactly_one() {
    let name = format!("racer_{}", std::process::id());
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let attempts: Vec<_> = (0..8)
            .map(|attempt| {
                let name = name.clone();
                scope.spawn(move || app().register(&name, &format!("password number {attempt}")).status)
            })
            .collect();
        attempts.into_iter().map(|attempt| attempt.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|status| **status == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|status| **status == 409).count(), 7, "{statuses:?}");
}

#[test]
fn forged_expired_and_malformed_tokens_are_refused() {
    let user = app().new_user();
    let secret = app().jwt_secret();
    let now = now_seconds();
    let claims = |extra: serde_json::Value| {
        let mut claims = json!({"sub": user.id.to_string(), "iss": "sendinchat", "iat": now, "exp": now + 600});
        claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        claims
    };
    let hs256 = json!({"alg": "HS256", "typ": "JWT"});
    let with_forged_token = TestUser { token: forge_token(&hs256, &claims(json!({})), secret), ..user.clone() };
    assert_eq!(app().me(&with_forged_token).status, 200);
    let refused = [
        ("another key", forge_token(&hs256, &claims(json!({})), "not-the-secret-not-the-secret-00")),
        ("alg none", forge_token(&json!({"alg": "none"}), &claims(json!({})), secret)),
        ("alg HS512", forge_token(&json!({"alg": "HS512"}), &claims(json!({})), secret)),
        ("expired", forge_token(&hs256, &claims(json!({"iat": now - 7200, "exp": now - 3600})), secret)),
        ("not yet valid", forge_token(&hs256, &claims(json!({"nbf": now + 3600})), secret)),
        ("issued in the future", forge_token(&hs256, &claims(json!({"iat": now + 3600})), secret)),
        ("wrong issuer", forge_token(&hs256, &claims(json!({"iss": "someone-else"})), secret)),
        ("no subject", forge_token(&hs256, &json!({"iss": "sendinchat", "iat": now, "exp": now + 600}), secret)),
        ("no expiry", forge_token(&hs256, &json!({"sub": "1", "iss": "sendinchat", "iat": now}), secret)),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (case, token) in refused {
        let response = app().get("/users/me", Some(&token));
        assert_eq!(response.status, 401, "{case}: {}", response.text);
        assert_eq!(response.header("www-authenticate"), Some("Bearer"), "{case}");
        assert_eq!(response.code(), "unauthorized", "{case}");
    }
    let missing = app().get("/users/me", None);
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
}

#[test]
fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let user = app().new_user();
    let refresh = |token: &str| app().refresh(token);
    let first = refresh(&user.refresh_token);
    assert_eq!(first.status, 200, "{}", first.text);
    let second_token = first.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_token, user.refresh_token);
    let refreshed = TestUser { token: first.body["access_token"].as_str().unwrap().to_owned(), ..user.clone() };
    assert_eq!(app().me(&refreshed).status, 200);

    // The rotated-out token is refused, and presenting it revokes its successor too.
    let reused = refresh(&user.refresh_token);
    assert_eq!(reused.status, 401);
    assert_eq!(reused.code(), "invalid_refresh_token");
    assert_eq!(refresh(&second_token).status, 401, "the whole family is revoked after reuse");
    assert_eq!(refresh("made-up-token").status, 401);
}

/// A session ends `session_lifetime_seconds` after its log-in, however often it is rotated: every
/// successor's expiry is capped at the session's end, so a thief rotating a stolen token (or its
/// owner) cannot keep it past that.
#[test]
fn a_session_ends_at_its_lifetime_however_often_it_is_rotated() {
    const LIFETIME_SECONDS: u64 = 4;
    let Some(app) =
        private_app(AppOptions::default().variable("session_lifetime_seconds", &LIFETIME_SECONDS.to_string()))
    else {
        return;
    };
    let user = app.new_user();
    let logged_in = Instant::now();
    let mut token = user.refresh_token.clone();
    let mut rotations = 0;
    while logged_in.elapsed() < Duration::from_secs(LIFETIME_SECONDS) - Duration::from_millis(1500) {
        let rotated = app.refresh(&token);
        assert_eq!(rotated.status, 200, "rotation {rotations}, {:?} in: {}", logged_in.elapsed(), rotated.text);
        token = rotated.body["refresh_token"].as_str().unwrap().to_owned();
        rotations += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(rotations >= 2, "rotated {rotations} times");
    std::thread::sleep(
        Duration::from_secs(LIFETIME_SECONDS).saturating_sub(logged_in.elapsed()) + Duration::from_millis(500),
    );
    let ended = app.refresh(&token);
    assert_eq!((ended.status, ended.code()), (401, "invalid_refresh_token"), "{}", ended.text);
}

#[test]
fn concurrent_use_of_one_refresh_token_succeeds_once() {
    let user = app().new_user();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let attempts: Vec<_> = (0..6)
            .map(|_| {
                let token = user.refresh_token.clone();
                scope.spawn(move || app().refresh(&token).status)
            })
            .collect();
        attempts.into_iter().map(|attempt| attempt.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|status| **status == 200).count(), 1, "{statuses:?}");
}

#[test]
fn logout_revokes_the_refresh_token() {
    let user = app().new_user();
    let logout = app().logout(&user.refresh_token);
    assert_eq!(logout.status, 204, "{}", logout.text);
    assert_eq!(app().refresh(&user.refresh_token).status, 401);
    // Idempotent: logging out twice, or with an unknown token, is still 204.
    assert_eq!(app().logout(&user.refresh_token).status, 204);
    assert_eq!(app().logout("never-issued-token").status, 204);
}

/// A password change needs the current password and follows the rules of registration; it ends
/// every other session of the user (their refresh tokens are refused) while the caller's goes on.
#[test]
fn a_password_change_ends_the_other_sessions_and_keeps_this_one() {
    let user = app().new_user();
    let new_password = format!("new-{}", sendinchat_tests::app::random_secret());
    let refusals = [
        ("not my password", new_password.as_str(), 403, "wrong_password"),
        (user.password.as_str(), user.password.as_str(), 422, "same_password"),
        (user.password.as_str(), "short", 422, "invalid_password"),
        (user.password.as_str(), "Password123", 422, "common_password"),
    ];
    for (current, new, status, code) in refusals {
        let refused = app().change_password(&user, current, new);
        assert_eq!((refused.status, refused.code()), (status, code), "{current} -> {new}: {}", refused.text);
    }
    let stranger = TestUser { token: "not-a-token".into(), ..user.clone() };
    assert_eq!(app().change_password(&stranger, &user.password, &new_password).status, 401);
    // Nothing changed so far: the password still logs in, here opening a second session.
    let elsewhere = app().session(user.id, &user.username, &user.password);

    let changed = app().change_password(&user, &user.password, &new_password);
    assert_eq!(changed.status, 204, "{}", changed.text);
    let old = app().login(&user.username, &user.password);
    assert_eq!((old.status, old.code()), (401, "invalid_credentials"), "{}", old.text);
    assert_eq!(app().login(&user.username, &new_password).status, 200, "the new password logs in");
    let ended = app().refresh(&elsewhere.refresh_token);
    assert_eq!((ended.status, ended.code()), (401, "invalid_refresh_token"), "the other session ended");
    assert_eq!(app().refresh(&user.refresh_token).status, 200, "the caller's own session goes on");
}

/// The password hash of `user`, as stored.
fn stored_hash(user: &TestUser) -> String {
    app().database().query_one("SELECT password_hash FROM users WHERE id = $1", &[&user.id]).unwrap().get(0)
}

/// A password change that commits while a log-in is checking the old password fails that log-in
/// too: its session starts only under the hash it verified, read under a share lock, so no session
/// opened with the old password outlives the change. The test holds the user's row, lets the
/// log-in queue on it after its password check, and changes the password (to another user's)
/// meanwhile.
#[test]
fn a_log_in_racing_a_password_change_opens_no_session_with_the_old_password() {
    let (user, donor) = (app().new_user(), app().new_user());
    let login =
        with_password_changed_meanwhile(app(), user.id, "auth_issue_refresh_token", &stored_hash(&donor), || {
            app().login(&user.username, &user.password)
        });
    assert_eq!((login.status, login.code()), (401, "invalid_credentials"), "{}", login.text);
    assert_eq!(app().login(&user.username, &donor.password).status, 200, "the new password logs in");
}

/// Two password changes from the same current password, the second checked before the first
/// committed: the second is refused as a wrong current password, not written over the first.
#[test]
fn a_password_change_racing_another_is_refused_not_written_over_it() {
    let (user, donor) = (app().new_user(), app().new_user());
    let second = with_password_changed_meanwhile(app(), user.id, "auth_change_password", &stored_hash(&donor), || {
        app().change_password(&user, &user.password, "a brand new password")
    });
    assert_eq!((second.status, second.code()), (403, "wrong_password"), "{}", second.text);
    assert_eq!(stored_hash(&user), stored_hash(&donor), "the first change stays");
    assert_eq!(app().login(&user.username, "a brand new password").status, 401);
}

/// A password change racing a log-in's rehash of the same password (after `bcrypt_cost` changed)
/// goes on over the rehashed hash, which the current password still verifies against.
#[test]
fn a_password_change_racing_a_rehash_of_the_same_password_goes_on() {
    let user = app().new_user();
    // Another hash of the same password, as a rehash would store.
    let twin = app().sign_up(&format!("twin_{}", sendinchat_tests::app::unique_suffix()), &user.password);
    let elsewhere = app().session(user.id, &user.username, &user.password);
    let changed = with_password_changed_meanwhile(app(), user.id, "auth_change_password", &stored_hash(&twin), || {
        app().change_password(&user, &user.password, "a brand new password")
    });
    assert_eq!(changed.status, 204, "{}", changed.text);
    assert_eq!(app().login(&user.username, "a brand new password").status, 200, "the new password logs in");
    assert_eq!(app().refresh(&elsewhere.refresh_token).status, 401, "the other session ended");
}

/// A wrong current password is a failed login of the username: a stolen access token is no
/// unthrottled way to guess the password, and the guesses lock the username's logins too.
#[test]
fn wrong_current_passwords_count_as_failed_logins() {
    let Some(app) = private_app(
        AppOptions::default()
            .variable("login_max_failures", "2")
            .variable("login_max_failures_per_address", "1000")
            .variable("login_failure_window_seconds", "600"),
    ) else {
        return;
    };
    let user = app.new_user();
    for attempt in 1..=2 {
        let wrong = app.change_password(&user, &format!("guess {attempt}"), "a brand new password");
        assert_eq!((wrong.status, wrong.code()), (403, "wrong_password"), "guess {attempt}: {}", wrong.text);
    }
    let throttled = app.change_password(&user, &user.password, "a brand new password");
    assert_eq!(throttled.status, 429, "{}", throttled.text);
    assert_eq!(app.login(&user.username, &user.password).status, 429, "the username's logins are throttled too");
}

#[test]
fn bad_input_gets_the_right_4xx_and_never_a_500() {
    let oversized = json!({"username": "someone", "password": "x".repeat(17 * 1024)}).to_string();
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("/users/register", "application/json", b"{\"username\":".to_vec(), 400, "malformed_json"),
        ("/users/register", "application/json", b"[1,2]".to_vec(), 400, "malformed_json"),
        // Parsers disagree on which of two values wins: neither is guessed at.
        (
            "/users/register",
            "application/json",
            b"{\"username\":\"ab_one\",\"password\":\"p\",\"username\":\"ab_two\"}".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "/users/token",
            "application/x-www-form-urlencoded",
            b"username=a&username=b&password=p".to_vec(),
            400,
            "malformed_form",
        ),
        ("/users/register", "text/plain", b"{}".to_vec(), 415, "unsupported_media_type"),
        ("/users/register", "application/json", b"{\"username\":\"abc\"}".to_vec(), 422, "missing_field"),
        ("/users/register", "application/json", b"{\"username\":7,\"password\":\"x\"}".to_vec(), 422, "invalid_field"),
        ("/users/register", "application/json", oversized.into_bytes(), 413, "payload_too_large"),
        ("/users/register", "application/json", b"{\"username\":\"\xff\xfe\"}".to_vec(), 400, "invalid_encoding"),
        (
            "/users/register",
            "application/json",
            json!({"username": "ok_name", "password": "x".repeat(73)}).to_string().into_bytes(),
            422,
            "invalid_password",
        ),
        (
            "/users/register",
            "application/json",
            json!({"username": "ok_name", "password": "short"}).to_string().into_bytes(),
            422,
            "invalid_password",
        ),
        (
            "/users/register",
            "application/json",
            json!({"username": "ok_name", "password": "password123"}).to_string().into_bytes(),
            422,
            "common_password",
        ),
        (
            "/users/register",
            "application/json",
            json!({"username": "no spaces", "password": "a fine password"}).to_string().into_bytes(),
            422,
            "invalid_username",
        ),
        (
            "/users/register",
            "application/json",
            json!({"username": "ok_name", "password": "a fine password", "admin": true}).to_string().into_bytes(),
            422,
            "unknown_field",
        ),
        ("/users/token", "application/x-www-form-urlencoded", b"username=a%zz".to_vec(), 400, "malformed_form"),
        ("/users/token", "application/x-www-form-urlencoded", b"username=abc".to_vec(), 422, "missing_field"),
        (
            "/users/token",
            "application/x-www-form-urlencoded",
            b"grant_type=client_credentials&username=abc&password=x".to_vec(),
            400,
            "unsupported_grant_type",
        ),
        ("/users/refresh", "application/json", b"{}".to_vec(), 422, "missing_field"),
    ];
    for (path, content_type, body, status, code) in cases {
        let response = app().request("POST", path, &[], Some((content_type, body)));
        assert_eq!((response.status, response.code()), (status, code), "{path} {content_type}: {}", response.text);
        assert!(response.body["error"]["message"].is_string());
    }
    let wrong_method = app().request("GET", "/users/register", &[], None);
    assert_eq!((wrong_method.status, wrong_method.code()), (405, "method_not_allowed"));
    assert_eq!(wrong_method.header("allow"), Some("POST"));
    assert_eq!(app().get("/users/a/b/c", None).status, 404);
}

#[test]
fn passwords_and_tokens_never_reach_the_log() {
    if TestApp::is_external() {
        eprintln!("skipped: reads the host's log, which an external app does not share");
        return;
    }
    let user = app().new_user();
    let wrong_password = "a wrong password indeed";
    let refused = app().login(&user.username, wrong_password);
    assert_eq!(refused.status, 401, "{}", refused.text);
    let refreshed = app().refresh(&user.refresh_token);
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    // Both requests' log lines are written by then (a guest's line can follow its response).
    for response in [&refused, &refreshed] {
        let request_id = response.header("x-request-id").expect("a request id");
        assert!(app().logged(&format!("\"request_id\":\"{request_id}\"")), "request {request_id} was never logged");
    }
    let log = app().log();
    let new_tokens =
        [&refreshed.body["access_token"], &refreshed.body["refresh_token"]].map(|token| token.as_str().unwrap());
    let secrets =
        [user.password.as_str(), &user.token, &user.refresh_token, wrong_password].into_iter().chain(new_tokens);
    for secret in secrets {
        assert!(!log.contains(secret), "a secret appeared in the log");
    }
}

#[test]
fn repeated_failures_are_throttled_then_the_window_passes() {
    let Some(app) = private_app(
        AppOptions::default()
            .variable("login_max_failures", "3")
            .variable("login_max_failures_per_address", "1000")
            .variable("login_failure_window_seconds", "2"),
    ) else {
        return;
    };
    let user = app.new_user();
    for attempt in 1..=3 {
        let failure = app.login(&user.username, "not my password");
        assert_eq!(failure.status, 401, "attempt {attempt}: {}", failure.text);
        assert_eq!(failure.code(), "invalid_credentials");
    }
    let throttled = app.login(&user.username, &user.password);
    assert_eq!(throttled.status, 429, "{}", throttled.text);
    let retry_after: u64 = throttled.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    // Another user is not affected by this user's counter.
    let other = app.new_user();
    assert_eq!(app.login(&other.username, &other.password).status, 200);

    // Until the window ends (within `retry_after` seconds, rounded up) the real user is still
    // refused, with 429 and no other answer; then gets back in.
    let back_in = wait::until(Duration::from_secs(retry_after + 1), || {
        let login = app.login(&user.username, &user.password);
        assert!([200, 429].contains(&login.status), "{}", login.text);
        (login.status == 200).then_some(())
    });
    assert!(back_in.is_some(), "the real user gets back in");
}

/// Attempts are counted before the password is checked, and a success clears the username's
/// count: a user who gets in between mistakes starts afresh rather than nearer a lock-out.
#[test]
fn a_successful_login_clears_the_usernames_failures() {
    let Some(app) = private_app(
        AppOptions::default()
            .variable("login_max_failures", "3")
            .variable("login_max_failures_per_address", "1000")
            .variable("login_failure_window_seconds", "600"),
    ) else {
        return;
    };
    let user = app.new_user();
    let (right, wrong) = (user.password.as_str(), "not my password");
    let attempts = [(wrong, 401), (wrong, 401), (right, 200), (wrong, 401), (wrong, 401), (wrong, 401), (right, 429)];
    for (number, (password, status)) in attempts.into_iter().enumerate() {
        let login = app.login(&user.username, password);
        assert_eq!(login.status, status, "attempt {}: {}", number + 1, login.text);
    }
}

#[test]
fn failures_from_one_address_are_throttled_across_usernames() {
    let Some(app) = private_app(
        AppOptions::default()
            .variable("login_max_failures", "100")
            .variable("login_max_failures_per_address", "4")
            .variable("login_failure_window_seconds", "60"),
    ) else {
        return;
    };
    for attempt in 0..4 {
        assert_eq!(app.login(&format!("nobody_{attempt}"), "guess").status, 401);
    }
    assert_eq!(app.login("nobody_else", "guess").status, 429);
}

#[test]
fn login_fails_closed_with_503_while_redis_is_down_and_recovers() {
    let Some((app, mut redis)) = app_with_private_redis(AppOptions::default()) else {
        return;
    };
    let user = app.new_user();
    redis.stop().expect("stop redis");

    let login = app.login(&user.username, &user.password);
    assert_eq!((login.status, login.code()), (503, "unavailable"), "{}", login.text);
    assert!(login.header("retry-after").is_some());
    let registered = app.register(&format!("{}_2", user.username), "a fine password");
    assert_eq!(registered.status, 201, "registration does not need Redis: {}", registered.text);
    assert_eq!(app.me(&user).status, 200, "nor do token checks");

    redis.restart().expect("restart redis");
    assert_eq!(app.login(&user.username, &user.password).status, 200, "login works again");
}

/// Unknown users are checked against a dummy hash of the same cost, so their logins take as long
/// as wrong-password logins (measured with production-like hashing).
#[test]
fn unknown_users_and_wrong_passwords_take_the_same_time() {
    let Some(app) = private_app(
        AppOptions::default()
            .variable("bcrypt_cost", "10")
            .variable("login_max_failures", "1000")
            .variable("login_max_failures_per_address", "1000"),
    ) else {
        return;
    };
    let user = app.new_user();
    let timed_login = |username: &str| {
        let started = Instant::now();
        assert_eq!(app.login(username, "wrong password here").status, 401);
        started.elapsed().as_secs_f64()
    };
    timed_login(&user.username); // warm-up: compiled code, pooled connections
    // Alternating the two kinds of attempt exposes both to the same background load (other
    // tests run in parallel), so the comparison stays fair; the median of the pairs' ratios is
    // not moved by the odd attempt a busy machine stalls.
    let tries = 30;
    let mut ratios: Vec<f64> = (0..tries)
        .map(|_| {
            let known = timed_login(&user.username);
            timed_login("no_such_user_anywhere") / known
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    eprintln!(
        "unknown user / wrong password over {tries} pairs: median {median:.3}, range {:.3}..{:.3}",
        ratios[0],
        ratios[tries - 1]
    );
    assert!((0.8..=1.2).contains(&median), "unknown/known = {median:.3}");
}

/// Behind a trusted proxy, failures count per real client (`X-Forwarded-For`); without that
/// trust, the header is ignored and every request counts against the direct peer.
#[test]
fn per_address_throttling_sees_through_trusted_proxies_only() {
    let options = |trusted: &str| {
        AppOptions::default()
            .variable("login_max_failures", "100")
            .variable("login_max_failures_per_address", "2")
            .variable("trusted_proxies", trusted)
    };
    let login_from = |app: &TestApp, client: &str| {
        let body = json!({"username": "nobody_here", "password": "guess"}).to_string().into_bytes();
        app.request("POST", "/users/token", &[("x-forwarded-for", client)], Some(("application/json", body))).status
    };
    let Some(behind_proxy) = private_app(options("127.0.0.1")) else {
        return;
    };
    assert_eq!([login_from(&behind_proxy, "203.0.113.1"), login_from(&behind_proxy, "203.0.113.1")], [401, 401]);
    assert_eq!(login_from(&behind_proxy, "203.0.113.1"), 429, "that client is throttled");
    assert_eq!(login_from(&behind_proxy, "203.0.113.2"), 401, "another client behind the same proxy is not");
    // An IPv6 client is its /64: its other addresses share its count, another /64 does not.
    assert_eq!(
        [login_from(&behind_proxy, "2001:db8:1:2::1"), login_from(&behind_proxy, "2001:db8:1:2::2")],
        [401, 401]
    );
    assert_eq!(login_from(&behind_proxy, "2001:db8:1:2:ffff::3"), 429, "the same /64");
    assert_eq!(login_from(&behind_proxy, "2001:db8:1:3::1"), 401, "another /64");

    let direct = private_app(options("")).expect("a private app");
    assert_eq!([login_from(&direct, "203.0.113.1"), login_from(&direct, "203.0.113.2")], [401, 401]);
    assert_eq!(login_from(&direct, "203.0.113.3"), 429, "an untrusted peer cannot pick its address");
}

/// A private app with one setting changed, and a user signed up on it (which logs in once).
fn user_on_app_with(variable: &str, value: &str) -> Option<(TestApp, TestUser)> {
    let app = private_app(AppOptions::default().variable(variable, value))?;
    let user = app.sign_up(&format!("u_{}", sendinchat_tests::app::unique_suffix()), "a fine password");
    Some((app, user))
}

/// Each login costs a bcrypt hash, so a client's correct logins count against its address too:
/// logging into its own accounts in a loop cannot take the CPU from everyone else's.
#[test]
fn successful_logins_count_against_their_address() {
    let Some((app, user)) = user_on_app_with("login_max_attempts_per_address", "3") else {
        return;
    };
    assert!(user.id > 0, "signing up logs in once");
    let statuses: Vec<u16> = (0..3).map(|_| app.login(&user.username, &user.password).status).collect();
    assert_eq!(statuses, [200, 200, 429], "the fourth attempt from the address");
}

/// Clients write "you paid bob": a user named `you` would pass for the reader.
#[test]
fn names_that_read_as_the_reader_or_the_service_cannot_be_registered() {
    let app = app();
    for reserved in ["you", "You", "myself", "operator"] {
        let response = app.register(reserved, "a fine password");
        assert_eq!((response.status, response.code()), (409, "username_taken"), "{reserved}: {}", response.text);
    }
}

/// Every rotation stores a token that reuse detection keeps until it expires: refreshing in a
/// loop would fill the table, so refreshes are counted per client address.
#[test]
fn refreshes_are_counted_per_address() {
    let Some((app, user)) = user_on_app_with("token_refreshes_per_minute", "2") else {
        return;
    };
    let mut refresh_token = user.refresh_token.clone();
    for _ in 0..2 {
        let rotated = app.refresh(&refresh_token);
        assert_eq!(rotated.status, 200, "{}", rotated.text);
        refresh_token = rotated.body["refresh_token"].as_str().unwrap().to_owned();
    }
    let throttled = app.refresh(&refresh_token);
    assert_eq!((throttled.status, throttled.code()), (429, "rate_limited"), "{}", throttled.text);
    assert!(throttled.header("retry-after").is_some());
}

/// Expired tokens are of no use (an expired token is refused whether it is stored or not): a
/// log-in deletes the user's, so sessions abandoned without a logout do not stay for good.
#[test]
fn a_log_in_clears_the_users_expired_tokens() {
    let Some((app, user)) = user_on_app_with("refresh_token_ttl_seconds", "1") else {
        return;
    };
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(app.refresh(&user.refresh_token).status, 401, "expired");
    assert_eq!(app.login(&user.username, &user.password).status, 200);
    let stored: i64 = app
        .database()
        .query_one("SELECT count(*) FROM refresh_tokens WHERE user_id = $1", &[&user.id])
        .expect("count")
        .get(0);
    assert_eq!(stored, 1, "only the new session's token is left");
}

/// Users who never come back cannot clear their own: each log-in also deletes a few of anyone's
/// expired tokens.
#[test]
fn a_log_in_clears_other_users_expired_tokens_too() {
    let Some((app, gone)) = user_on_app_with("refresh_token_ttl_seconds", "1") else {
        return;
    };
    std::thread::sleep(Duration::from_millis(1500));
    let newcomer = app.sign_up(&format!("u_{}", sendinchat_tests::app::unique_suffix()), "a fine password");
    let stored = |user: i64| -> i64 {
        let query = "SELECT count(*) FROM refresh_tokens WHERE user_id = $1";
        app.database().query_one(query, &[&user]).expect("count").get(0)
    };
    assert_eq!(stored(gone.id), 0, "the expired token of a user who did not log in again");
    assert_eq!(stored(newcomer.id), 1, "the new session's token");
}
