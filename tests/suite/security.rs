//! Hostile clients (issue 14): each hole a security review found, shown closed through the
//! public interfaces. Throttling and token basics live in `auth.rs`; these tests act as an
//! attacker would.
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use sendinchat_tests::app::{
    AppOptions, ChatSocket, EventStream, Response, SocketEvent, StreamItem, TestApp, TestUser, app_with_private_redis,
    funded_pair_on_app_with, private_app,
};
use sendinchat_tests::locks::with_password_changed_meanwhile;
use sendinchat_tests::processes::build::workspace_root;
use sendinchat_tests::tokens::{claims_of, forge_token, now_seconds};
use sendinchat_tests::wait;
use serde_json::{Value, json};

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

/// A thief holding a copy of a refresh token rotates it in a loop while the real user presents
/// the used original (reuse detection) or logs out with it. Whichever wins each race, once the
/// user's request has returned no token of the family may still work.
#[test]
fn no_token_survives_reuse_detection_or_logout_racing_a_rotation() {
    let app = TestApp::shared();
    let trials = 24;
    let survivors: Vec<String> = std::thread::scope(|scope| {
        let trials: Vec<_> = (0..trials)
            .map(|trial| scope.spawn(move || race_rotation_against_revocation(app, trial % 2 == 0)))
            .collect();
        trials.into_iter().filter_map(|trial| trial.join().expect("trial")).collect()
    });
    assert!(survivors.is_empty(), "{} of {trials} families kept a live token: {survivors:?}", survivors.len());
}

/// One race in a fresh family; the description of a token that survived, if one did.
fn race_rotation_against_revocation(app: &TestApp, by_reuse: bool) -> Option<String> {
    const ROTATIONS_MAX: usize = 40;
    let original = app.new_user().refresh_token;
    let first = app.refresh(&original);
    assert_eq!(first.status, 200, "{}", first.text);
    let stolen = first.body["refresh_token"].as_str().expect("refresh token").to_owned();
    let rotations = AtomicUsize::new(0);
    let issued = std::thread::scope(|scope| {
        let thief = scope.spawn(|| {
            let mut issued = vec![stolen];
            while issued.len() <= ROTATIONS_MAX {
                let rotated = app.refresh(issued.last().expect("a token"));
                let Some(successor) = rotated.body["refresh_token"].as_str() else { break };
                issued.push(successor.to_owned());
                rotations.fetch_add(1, Ordering::Release);
            }
            issued
        });
        while rotations.load(Ordering::Acquire) < 2 && !thief.is_finished() {
            std::hint::spin_loop();
        }
        let revocation = if by_reuse { app.refresh(&original) } else { app.logout(&original) };
        assert_eq!(revocation.status, if by_reuse { 401 } else { 204 }, "{}", revocation.text);
        thief.join().expect("thief")
    });
    // Newest first: presenting an older (used) token would itself revoke a surviving family.
    issued.iter().rev().enumerate().find_map(|(age, token)| {
        let refreshed = app.refresh(token);
        (refreshed.status != 401).then(|| {
            let how = if by_reuse { "reuse" } else { "logout" };
            format!("after {how}, token {age} from the newest of {} answered {}", issued.len(), refreshed.status)
        })
    })
}

/// Registration runs bcrypt and answers 409 for a taken name: it is throttled per client address
/// and in total, counted before either.
#[test]
fn registrations_are_throttled_per_address_and_in_total() {
    let Some(app) = private_app(
        AppOptions::default()
            .variable("registrations_per_address_max", "3")
            .variable("registrations_max", "1000")
            .variable("registration_window_seconds", "60"),
    ) else {
        return;
    };
    let register = |name: &str| app.register(&format!("{name}_{}", std::process::id()), "a fine password");
    let statuses: Vec<u16> = ["a1", "a2", "a1", "a3", "a4"].iter().map(|name| register(name).status).collect();
    assert_eq!(statuses, [201, 201, 409, 429, 429], "a taken name counts too");
    let throttled = register("a5");
    assert_eq!(throttled.code(), "rate_limited");
    let retry_after: u32 = throttled.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");

    // Many addresses together: behind a trusted proxy each forwarded client has its own address
    // counter, and the total still stops them.
    let Some(app) = private_app(
        AppOptions::default()
            .variable("registrations_per_address_max", "3")
            .variable("registrations_max", "4")
            .variable("trusted_proxies", "127.0.0.1"),
    ) else {
        return;
    };
    let register_from = |client: &str, name: &str| {
        let body = json!({"username": format!("{name}_{}", std::process::id()), "password": "a fine password"});
        app.post("/users/register", None, &body, &[("x-forwarded-for", client)]).status
    };
    // One address past its own budget: its refused attempts do not spend the total, or one client
    // could shut everyone out of signing up with cheap 429s.
    let statuses: Vec<u16> = (0..6).map(|attempt| register_from("203.0.113.200", &format!("c{attempt}"))).collect();
    assert_eq!(statuses, [201, 201, 201, 429, 429, 429], "one address: {statuses:?}");
    let statuses: Vec<u16> =
        (0..3).map(|client| register_from(&format!("203.0.113.{client}"), &format!("b{client}"))).collect();
    assert_eq!(statuses, [201, 429, 429], "the total limit: {statuses:?}");
}

/// A client past its address's failure budget cannot go on locking other people out: its refused
/// attempts are not counted against the usernames they name, so each victim still logs in.
#[test]
fn a_throttled_address_cannot_lock_out_other_users() {
    let Some(app) = private_app(
        AppOptions::default()
            .variable("login_max_failures", "3")
            .variable("login_max_failures_per_address", "2")
            .variable("trusted_proxies", "127.0.0.1"),
    ) else {
        return;
    };
    let victims: Vec<TestUser> = (0..3).map(|_| app.new_user()).collect();
    let attacker = [("x-forwarded-for", "203.0.113.66")];
    let statuses: Vec<u16> = victims
        .iter()
        .flat_map(|victim| std::iter::repeat_n(victim, 4))
        .map(|victim| {
            let body = json!({"username": victim.username, "password": "a wrong guess"});
            app.post("/users/token", None, &body, &attacker).status
        })
        .collect();
    assert_eq!(&statuses[..3], [401, 401, 429], "{statuses:?}");
    assert!(statuses[2..].iter().all(|status| *status == 429), "{statuses:?}");
    for (index, victim) in victims.iter().enumerate() {
        let body = json!({"username": victim.username, "password": victim.password});
        let own_address = format!("198.51.100.{index}");
        let login = app.post("/users/token", None, &body, &[("x-forwarded-for", own_address.as_str())]);
        assert_eq!(login.status, 200, "victim {index}: {}", login.text);
    }
}

/// Sends typing notices (frames that are never stored, so only the re-check can stop them) until
/// the socket closes; the close code, or `None` within `timeout`.
fn typing_until_closed(socket: &mut ChatSocket, timeout: Duration) -> Option<u16> {
    wait::until(timeout, || {
        socket.send(&json!({"type": "typing"}));
        match socket.next_event(Duration::from_millis(300))? {
            SocketEvent::Closed(code) => Some(code),
            SocketEvent::Text(_) => None,
        }
    })
}

fn room_of(app: &TestApp, owner: &TestUser, member: &TestUser) -> i64 {
    let created = app.create_room(owner, &json!({"name": "Security", "member_ids": [member.id]}));
    assert_eq!(created.status, 201, "{}", created.text);
    created.body["id"].as_i64().expect("room id")
}

/// A batch of events costs no more than one handshake and the sender's budget: OPEN is answered
/// only as the first event of a socket without a session, and once a frame is past the budget the
/// rest of the batch get the same refusal unread (without one Redis count, or one database call,
/// per frame). Pushpin batches the frames a client sends while its previous ones are answered;
/// the test posts such batches itself, signed with the app's gateway key as Pushpin signs them
/// (Pushpin refuses WebSocket events a client posts to it directly).
#[test]
fn a_batch_of_events_costs_one_handshake_and_the_budget_at_most() {
    let grip_sig_key = "a-gateway-key-for-this-test-only-0123456789";
    let options = AppOptions::default()
        .variable("chat_messages_per_minute", "2")
        .variable("grip_sig_key", grip_sig_key)
        .variable("redis_key_prefix", "batch");
    let Some((app, redis)) = app_with_private_redis(options) else {
        return;
    };
    let (owner, member) = (app.new_user(), app.new_user());
    let room = room_of(&app, &owner, &member);
    let path = format!("/chat/ws/{room}?token={}", member.token);
    let grip_sig =
        forge_token(&json!({"alg": "HS256"}), &json!({"iss": "pushpin", "exp": now_seconds() + 600}), grip_sig_key);
    // Read as bytes: a close event's code is binary.
    let post_events = |meta: &[(&str, &str)], events: String| {
        let mut request = ureq::post(app.url(&path))
            .header("grip-sig", &grip_sig)
            .header("connection-id", "batch")
            .header("content-type", "application/websocket-events");
        for (name, value) in meta {
            request = request.header(*name, *value);
        }
        let mut answer = request.send(events.as_bytes()).expect("the app answers 200");
        String::from_utf8_lossy(&answer.body_mut().read_to_vec().unwrap()).into_owned()
    };

    let opened = post_events(&[], "OPEN\r\n".repeat(3));
    assert_eq!(opened.matches("OPEN\r\n").count(), 1, "{opened}");
    assert!(opened.contains("OPEN comes once, first"), "{opened}");

    let text_event = |payload: Value| format!("TEXT {:x}\r\n{payload}\r\n", payload.to_string().len());
    let message = |index: usize| text_event(json!({"type": "message", "content": index.to_string()}));
    let typing = || text_event(json!({"type": "typing"}));
    let (user, room) = (member.id.to_string(), room.to_string());
    let meta = [("meta-user", user.as_str()), ("meta-room", room.as_str())];
    let count = |what: &str| -> i64 {
        let mut connection = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
        redis::cmd("GET").arg(format!("batch:{what}:{}", member.id)).query(&mut connection).unwrap()
    };

    // Typing past its budget refuses later notices, not the messages, which have their own.
    let mixed = post_events(&meta, [typing(), typing(), typing(), message(0), message(1)].concat());
    assert_eq!(mixed.matches("\"type\":\"ack\"").count(), 2, "{mixed}");
    assert_eq!(mixed.matches("\"code\":\"rate_limited\"").count(), 1, "{mixed}");
    let messages = (2..6).map(message).collect::<String>();
    let answered = post_events(&meta, messages);
    assert_eq!(answered.matches("\"code\":\"rate_limited\"").count(), 4, "{answered}");
    assert_eq!(count("chat-typing"), 3);
    assert_eq!(count("chat-messages"), 3, "the two within the budget and the first past it were counted, no more");
}

/// A socket lives no longer than the access token that opened it: once the token has expired
/// (beyond the tolerated clock skew), the socket's next frame closes it with 4401.
#[test]
fn a_socket_closes_once_its_access_token_expires() {
    let app = TestApp::shared();
    let (alice, bob) = (app.new_user(), app.new_user());
    let room = room_of(app, &alice, &bob);
    let (token, refused_at) = token_refused_in(app, &bob, 3);
    let mut socket = ChatSocket::connect(app, room, &token).expect("connect");
    let closed = typing_until_closed(&mut socket, Duration::from_secs(20));
    assert_eq!(closed, Some(4401), "an expired token's socket is closed");
    assert!(now_seconds() >= refused_at, "not before the token expired");
}

/// Leaving a room closes the member's sockets with a published close; when that publish is lost
/// (here: the publish endpoint is unreachable), the socket's next frame, typing included, finds
/// the membership gone and closes it with 4403.
#[test]
fn a_socket_closes_after_its_user_left_even_when_the_close_publish_is_lost() {
    let Some(app) = private_app(
        AppOptions::default()
            .variable("chat_publish_mode", "direct")
            .variable("grip_publish_urls", "http://127.0.0.1:9")
            .variable("grip_publish_hosts", "http://127.0.0.1:9"),
    ) else {
        return;
    };
    let (alice, bob) = (app.new_user(), app.new_user());
    let room = room_of(&app, &alice, &bob);
    let mut socket = ChatSocket::connect(&app, room, &bob.token).expect("connect");
    assert_eq!(typing_until_closed(&mut socket, Duration::from_secs(1)), None, "a member's socket stays open");
    assert_eq!(app.leave_room(&bob, room).status, 204);
    assert_eq!(typing_until_closed(&mut socket, Duration::from_secs(10)), Some(4403));
}

/// Logging out (or reuse detection) ends the session the socket's token belongs to: the socket's
/// next frame closes it with 4401, though the access token itself has not expired. A token that
/// names no session cannot open a socket at all.
#[test]
fn a_socket_closes_once_its_session_is_logged_out() {
    let app = TestApp::shared();
    let (alice, bob) = (app.new_user(), app.new_user());
    let room = room_of(app, &alice, &bob);
    let mut socket = ChatSocket::connect(app, room, &bob.token).expect("connect");
    let mut alice_socket = ChatSocket::connect(app, room, &alice.token).expect("connect");
    assert_eq!(typing_until_closed(&mut socket, Duration::from_secs(1)), None, "open while logged in");
    assert_eq!(app.logout(&bob.refresh_token).status, 204);
    assert_eq!(app.me(&bob).status, 200, "the access token itself is still valid");
    assert_eq!(typing_until_closed(&mut socket, Duration::from_secs(10)), Some(4401));
    assert_eq!(typing_until_closed(&mut alice_socket, Duration::from_secs(1)), None, "other sessions stay open");

    let mut claims = claims_of(&alice.token);
    claims.as_object_mut().expect("claims").remove("sid");
    let sessionless = forge_token(&json!({"alg": "HS256", "typ": "JWT"}), &claims, app.jwt_secret());
    let mut socket = ChatSocket::connect(app, room, &sessionless).expect("connect");
    assert_eq!(typing_until_closed(&mut socket, Duration::from_secs(10)), Some(4401));
}

/// The next close on `socket` within `timeout`, while the client stays quiet (so no frame of its
/// own can trigger a re-check); `None` if none came.
fn quiet_until_closed(socket: &mut ChatSocket, timeout: Duration) -> Option<u16> {
    wait::until(timeout, || match socket.next_event(Duration::from_millis(300))? {
        SocketEvent::Closed(code) => Some(code),
        SocketEvent::Text(_) => None,
    })
}

/// Logging out closes the session's quiet sockets at once, as it closes its event streams: the
/// close is published to the session's channel, which every socket opened with the session's
/// tokens holds, so no frame or keep-alive re-check (20 s and more) is needed. Other sessions'
/// sockets stay open.
#[test]
fn logging_out_closes_the_sessions_quiet_sockets_at_once() {
    let app = TestApp::shared();
    let (alice, bob) = (app.new_user(), app.new_user());
    let room = room_of(app, &alice, &bob);
    let mut socket = ChatSocket::join(app, room, &bob).expect("bob joins");
    let mut alice_socket = ChatSocket::join(app, room, &alice).expect("alice joins");
    assert_eq!(app.logout(&bob.refresh_token).status, 204);
    assert_eq!(quiet_until_closed(&mut socket, Duration::from_secs(10)), Some(4401), "closed by the published close");
    assert_eq!(quiet_until_closed(&mut alice_socket, Duration::from_secs(1)), None, "other sessions stay open");
}

/// A password change ends the user's other sessions as a logout ends one: their quiet sockets
/// close at once, and the socket of the session that changed the password stays open.
#[test]
fn a_password_change_closes_the_other_sessions_sockets() {
    let app = TestApp::shared();
    let (alice, bob) = (app.new_user(), app.new_user());
    let room = room_of(app, &alice, &bob);
    let bob_elsewhere = app.session(bob.id, &bob.username, &bob.password);
    let mut other = ChatSocket::join(app, room, &bob_elsewhere).expect("bob joins elsewhere");
    let mut this = ChatSocket::join(app, room, &bob).expect("bob joins here");
    let changed = app.change_password(&bob, &bob.password, "a brand new password");
    assert_eq!(changed.status, 204, "{}", changed.text);
    assert_eq!(quiet_until_closed(&mut other, Duration::from_secs(10)), Some(4401), "the other session's socket");
    assert_eq!(quiet_until_closed(&mut this, Duration::from_secs(1)), None, "this session's socket stays open");
}

/// A quiet socket closes when its access token is refused, although its re-check interval is far
/// longer: the keep-alive request that re-checks it is timed for the token's expiry (plus the
/// tolerated clock skew), not only for the interval.
#[test]
fn a_quiet_socket_closes_when_its_token_expires_whatever_its_recheck_interval() {
    const REFUSED_IN_SECONDS: i64 = 25;
    let Some(app) = private_app(AppOptions::default().variable("socket_recheck_interval_seconds", "600")) else {
        return;
    };
    let (alice, bob) = (app.new_user(), app.new_user());
    let room = room_of(&app, &alice, &bob);
    let (token, refused_at) = token_refused_in(&app, &bob, REFUSED_IN_SECONDS);
    let mut socket = ChatSocket::connect(&app, room, &token).expect("connect");
    let closed = quiet_until_closed(&mut socket, Duration::from_secs(REFUSED_IN_SECONDS as u64 + 20));
    assert_eq!(closed, Some(4401), "closed by the keep-alive re-check at the token's expiry");
    assert!(now_seconds() >= refused_at, "not before the token was refused");
}

/// A socket that sends only unsolicited PONG frames (RFC 6455 allows them) closes once its token
/// is refused. Each frame's request resets Pushpin's keep-alive timer, so no keep-alive request
/// ever comes to re-check such a socket: the frame's own request must re-check it.
#[test]
fn a_socket_sending_only_pongs_closes_when_its_token_expires() {
    const REFUSED_IN_SECONDS: i64 = 6;
    let app = TestApp::shared();
    let (alice, bob) = (app.new_user(), app.new_user());
    let room = room_of(app, &alice, &bob);
    let (token, refused_at) = token_refused_in(app, &bob, REFUSED_IN_SECONDS);
    let mut socket = ChatSocket::connect(app, room, &token).expect("connect");
    let closed = wait::until(Duration::from_secs(REFUSED_IN_SECONDS as u64 + 20), || {
        // Fails once the socket is closed; its close is still read below.
        let _ = socket.try_send_raw(tungstenite::Message::Pong(Vec::new().into()));
        match socket.next_event(Duration::from_secs(2))? {
            SocketEvent::Closed(code) => Some(code),
            SocketEvent::Text(_) => None,
        }
    });
    assert_eq!(closed, Some(4401), "closed by the re-check of a PONG's request");
    assert!(now_seconds() >= refused_at, "not before the token was refused");
}

/// A token of `user`'s session that the app refuses `seconds` from now (its expiry is that much
/// earlier than the tolerated clock skew), and that moment in Unix seconds.
fn token_refused_in(app: &TestApp, user: &TestUser, seconds: i64) -> (String, i64) {
    const CLOCK_SKEW_SECONDS: i64 = 30;
    let refused_at = now_seconds() + seconds;
    let session = claims_of(&user.token)["sid"].clone();
    let claims = json!({"sub": user.id.to_string(), "iss": "sendinchat", "sid": session, "iat": now_seconds() - 60,
                        "exp": refused_at - CLOCK_SKEW_SECONDS});
    (forge_token(&json!({"alg": "HS256", "typ": "JWT"}), &claims, app.jwt_secret()), refused_at)
}

/// An event stream is re-checked as a socket is: at the stream's next link Pushpin asks the app
/// whether it may go on. While its token is valid, its session live and its user a member, it goes
/// on (a message after the first re-check still arrives); once the token is refused it ends. So a
/// stream outlives neither its token nor a departure whose close it missed while opening.
#[test]
fn an_event_stream_goes_on_past_its_rechecks_and_ends_once_its_token_is_refused() {
    const RECHECK_SECONDS: i64 = 20;
    const REFUSED_IN_SECONDS: i64 = 35;
    let Some(app) = private_app(AppOptions::default().variable("socket_recheck_interval_seconds", "20")) else {
        return;
    };
    let (alice, bob) = (app.new_user(), app.new_user());
    let room = room_of(&app, &alice, &bob);
    let (token, refused_at) = token_refused_in(&app, &bob, REFUSED_IN_SECONDS);
    let stream = EventStream::open_path(&app, &format!("/chat/rooms/{room}/events?token={token}"), &[]).expect("opens");
    assert_eq!(stream.head.status, 200, "{}", stream.head.text);

    std::thread::sleep(Duration::from_secs(RECHECK_SECONDS as u64 + 3));
    let sent = app.send_message(&alice, &json!({"chat_id": room, "content": "after the first re-check"}));
    assert_eq!(sent.status, 201, "{}", sent.text);
    let arrived = wait::until(Duration::from_secs(5), || match stream.next_item(Duration::from_millis(300))? {
        StreamItem::Event { data, .. } if data["type"] == "message" => Some(Ok(data)),
        StreamItem::Event { .. } => None,
        StreamItem::Ended => Some(Err("the stream ended at its first re-check")),
    });
    assert_eq!(
        arrived.expect("the message arrives").expect("still open")["message"]["content"],
        "after the first re-check"
    );

    assert!(stream_ends_within(&stream, Duration::from_secs(2 * RECHECK_SECONDS as u64)), "ended by a re-check");
    assert!(now_seconds() >= refused_at, "not before the token was refused");
    assert!(now_seconds() <= refused_at + 3, "within a moment of the refusal, not at the next interval");
}

/// Ending a session closes its event streams at once: logout and refresh-token reuse publish a
/// close to the session's channel, which every stream opened with that session's tokens holds.
/// Nothing else would end them before their next re-check, and a stream opened after the logout
/// with a token of that session is refused. Other sessions stay open.
/// (Sockets listen on the same channel; see the test above.)
#[test]
fn ending_a_session_closes_its_event_streams_at_once() {
    let app = TestApp::shared();
    let (alice, bob) = (app.new_user(), app.new_user());
    let room = room_of(app, &alice, &bob);
    let mut alice_socket = ChatSocket::join(app, room, &alice).expect("alice joins");
    let bob_stream = EventStream::open(app, room, &bob, None).expect("bob's stream opens");
    bob_stream.await_subscription(&mut alice_socket, &alice).expect("bob's stream is live");
    let second_session = app.log_in(&bob.username, &bob.password);
    let second_stream = EventStream::open(app, room, &second_session, None).expect("bob's second stream opens");
    second_stream.await_subscription(&mut alice_socket, &alice).expect("the second stream is live");

    assert_eq!(app.logout(&bob.refresh_token).status, 204);
    assert!(stream_ends(&bob_stream), "the logged-out session's stream ends");
    // Its access token has not expired, but a stream opened with it now would never hear the
    // close that logout published: it is refused.
    let after_logout = EventStream::open(app, room, &bob, None).expect("answer");
    assert_eq!(
        (after_logout.head.status, after_logout.head.code()),
        (401, "unauthorized"),
        "{}",
        after_logout.head.text
    );
    assert_eq!(typing_until_closed(&mut alice_socket, Duration::from_secs(1)), None, "alice's socket stays open");
    assert!(!second_stream.next_item(Duration::from_secs(1)).is_some_and(|item| item == StreamItem::Ended));

    // Reuse detection revokes the second session: presenting its spent refresh token again.
    assert_eq!(app.refresh(&second_session.refresh_token).status, 200);
    assert_eq!(app.refresh(&second_session.refresh_token).status, 401);
    assert!(stream_ends(&second_stream), "the revoked session's stream ends");
}

/// Whether `stream` ends within 10 s (events before the end are skipped).
fn stream_ends(stream: &EventStream) -> bool {
    stream_ends_within(stream, Duration::from_secs(10))
}

/// Whether `stream` ends within `timeout` (events before the end are skipped).
fn stream_ends_within(stream: &EventStream, timeout: Duration) -> bool {
    wait::until(timeout, || match stream.next_item(Duration::from_millis(300))? {
        StreamItem::Ended => Some(()),
        StreamItem::Event { .. } => None,
    })
    .is_some()
}

/// Every error code the code can emit (components and the host's own errors) is documented in
/// openapi.yaml (in an operation's responses, or as a rule for all of them), so a client (or a fuzzer) never meets a code outside the contract. Codes are
/// collected from the source: the literal after a status (`ApiError::new(StatusCode::X, "code"`,
/// outcome tables, the host's envelopes) or as the first argument of the code-taking
/// constructors.
#[test]
fn every_error_code_in_the_code_is_in_the_spec() {
    let root = workspace_root();
    let after_status = regex_lite::Regex::new(r#"(?:StatusCode|Status)::[A-Z_]+,\s*"([a-z][a-z_]*)""#).expect("regex");
    let constructor =
        regex_lite::Regex::new(r#"\b(?:bad_request|unprocessable|forbidden|conflict)\(\s*"([a-z][a-z_]*)""#)
            .expect("regex");
    let mut sources = rust_files(&root.join("components"));
    sources.push(root.join("host/src/error_response.rs"));
    let mut emitted = std::collections::BTreeMap::new();
    for source in &sources {
        let text = std::fs::read_to_string(source).expect("source file");
        for found in after_status.captures_iter(&text).chain(constructor.captures_iter(&text)) {
            emitted.entry(found[1].to_owned()).or_insert_with(|| source.display().to_string());
        }
    }
    assert!(emitted.len() > 40, "the patterns still find the codes: {emitted:?}");
    let spec: serde_json::Value =
        serde_norway::from_str(&std::fs::read_to_string(root.join("openapi.yaml")).expect("openapi.yaml"))
            .expect("YAML");
    let mut documented = std::collections::BTreeSet::new();
    collect_code_enums(&spec, &mut documented);
    // Rules that hold for every operation (wrong method, deadline) are written once, in the
    // description, as `405 method_not_allowed`.
    let general_rule = regex_lite::Regex::new(r"`\d{3} ([a-z][a-z_]*)`").expect("regex");
    let description = spec["info"]["description"].as_str().unwrap_or_default();
    documented.extend(general_rule.captures_iter(description).map(|found| found[1].to_owned()));
    let undocumented: Vec<String> = emitted
        .iter()
        .filter(|(code, _)| !documented.contains(*code))
        .map(|(code, source)| format!("{code} ({source})"))
        .collect();
    assert!(undocumented.is_empty(), "error codes missing from openapi.yaml: {undocumented:?}");
}

fn rust_files(folder: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).expect("folder").map(|entry| entry.expect("entry").path()) {
        if entry.is_dir() && entry.file_name().is_some_and(|name| name != "target") {
            files.extend(rust_files(&entry));
        } else if entry.extension().is_some_and(|extension| extension == "rs") {
            files.push(entry);
        }
    }
    files
}

/// The values of every `enum` under a property named `code`, anywhere in the spec.
fn collect_code_enums(node: &serde_json::Value, codes: &mut std::collections::BTreeSet<String>) {
    match node {
        serde_json::Value::Object(object) => {
            if let Some(values) = object.get("code").and_then(|code| code["enum"].as_array()) {
                codes.extend(values.iter().filter_map(|value| value.as_str().map(str::to_owned)));
            }
            object.values().for_each(|child| collect_code_enums(child, codes));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| collect_code_enums(item, codes)),
        _ => {}
    }
}

/// The example Secret's placeholders are long enough to pass the length rule; readiness refuses
/// them, and one value used for two secrets, naming the variables and never the values.
#[test]
fn readiness_refuses_placeholder_and_shared_secrets() {
    let placeholder = "CHANGE-ME-to-64-random-hex-characters";
    let shared_value = "one-value-for-two-secrets-0123456789abcdef";
    for (options, logged) in [
        (
            AppOptions::default().variable("admin_token", placeholder),
            "variable admin_token is still an example's placeholder",
        ),
        (
            AppOptions::default().variable("admin_token", shared_value).variable("grip_sig_key", shared_value),
            "variables admin_token and grip_sig_key hold the same value",
        ),
    ] {
        let Some(app) = private_app(options) else {
            return;
        };
        let ready = app.readiness();
        assert_eq!((ready.status, ready.code()), (500, "internal"), "{}", ready.text);
        assert!(!ready.text.contains(placeholder) && !ready.text.contains(shared_value));
        assert!(app.logged(logged), "{}", app.log());
    }
}

/// A load balancer that rewrites client addresses would put every client behind one address
/// counter: the public Service in front of Pushpin keeps them.
#[test]
fn the_public_kubernetes_service_preserves_client_addresses() {
    let text = std::fs::read_to_string(workspace_root().join("deploy/kubernetes/pushpin.yaml")).expect("manifest");
    let public: Vec<serde_json::Value> = text
        .split("\n---")
        .map(|document| serde_norway::from_str::<serde_json::Value>(document).expect("YAML"))
        .filter(|document| document["kind"] == "Service" && document["spec"]["type"] == "LoadBalancer")
        .collect();
    assert!(!public.is_empty(), "a public Service");
    for service in public {
        assert_eq!(service["spec"]["externalTrafficPolicy"], "Local", "{service}");
    }
}

/// Unknown users are checked against a dummy hash of the configured cost; a user whose hash has
/// another cost (from before `bcrypt_cost` changed) would stand out by timing, so a successful
/// login stores the hash again with the configured cost. The old-cost hash is made by an app
/// configured with the old cost, and planted in the database as a migration would have left it.
#[test]
fn a_login_rehashes_a_password_stored_with_another_cost() {
    let (Some(before), Some(after)) = (
        private_app(AppOptions::default().variable("bcrypt_cost", "5")),
        private_app(AppOptions::default().variable("bcrypt_cost", "4")),
    ) else {
        return;
    };
    let stored_hash = |app: &TestApp, username: &str| -> String {
        let row = app
            .database()
            .query_one("SELECT password_hash FROM users WHERE username = $1", &[&username])
            .expect("user");
        row.get(0)
    };
    let user = before.new_user();
    let old_hash = stored_hash(&before, &user.username);
    assert!(old_hash.starts_with("$2b$05$"), "{old_hash}");
    // Its own id: the two apps' databases number their users apart.
    let user_id = after.sign_up(&user.username, &user.password).id;
    after
        .database()
        .execute("UPDATE users SET password_hash = $1 WHERE username = $2", &[&old_hash, &user.username])
        .expect("plant the old hash");

    assert_eq!(after.login(&user.username, &user.password).status, 200, "the old hash still verifies");
    let new_hash = stored_hash(&after, &user.username);
    assert!(new_hash.starts_with("$2b$04$"), "rehashed with the configured cost: {new_hash}");
    assert_eq!(after.login(&user.username, &user.password).status, 200, "and verifies");
    assert_eq!(after.login(&user.username, "a wrong password").status, 401);

    // Two log-ins rehashing at once both get in: the test holds the user's row, lets one log-in's
    // rehash queue on it, and stores the other's (the same password, the configured cost).
    let plant = "UPDATE users SET password_hash = $1 WHERE id = $2";
    let rehash = "UPDATE users SET password_hash";
    after.database().execute(plant, &[&old_hash, &user_id]).expect("plant the old hash");
    let login = with_password_changed_meanwhile(&after, user_id, rehash, &new_hash, || {
        after.login(&user.username, &user.password)
    });
    assert_eq!(login.status, 200, "a concurrent rehash of the same password: {}", login.text);

    // A password change committed while a log-in rehashes the old password keeps the new one:
    // the same, the password changed to another user's meanwhile.
    let donor = after.new_user();
    let donor_hash = stored_hash(&after, &donor.username);
    after.database().execute(plant, &[&old_hash, &user_id]).expect("plant the old hash");
    let login = with_password_changed_meanwhile(&after, user_id, rehash, &donor_hash, || {
        after.login(&user.username, &user.password)
    });
    assert_eq!((login.status, login.code()), (401, "invalid_credentials"), "{}", login.text);
    assert_eq!(stored_hash(&after, &user.username), donor_hash, "the changed password stays");
    assert_eq!(after.login(&user.username, &user.password).status, 401, "the old password is gone");
}

/// User ids are sequential: look-ups of others are limited per caller, so one account cannot
/// walk the directory; another caller is not affected, and the caller's own `/users/me` is not
/// a look-up.
#[test]
fn the_user_directory_cannot_be_walked_by_id() {
    let Some(app) = private_app(AppOptions::default().variable("user_lookups_per_minute", "5")) else {
        return;
    };
    let (walker, other) = (app.new_user(), app.new_user());
    let statuses: Vec<u16> = (1..=7).map(|id| app.user_by_id(&walker, id).status).collect();
    assert_eq!(&statuses[5..], [429, 429], "{statuses:?}");
    assert!(statuses[..5].iter().all(|status| [200, 404].contains(status)), "{statuses:?}");
    let throttled = app.user_by_name(&walker, &other.username);
    assert_eq!(throttled.status, 429, "look-ups by name share the budget");
    assert!(throttled.header("retry-after").is_some());
    assert_eq!(app.me(&walker).status, 200);
    assert_eq!(app.user_by_id(&other, walker.id).status, 200, "another caller has its own budget");
}

/// Found by the deep fuzz: a refresh token holding a NUL byte reached Postgres, whose text
/// cannot hold one (500). Tokens are base64url; anything else is refused before any query.
#[test]
fn refresh_tokens_that_were_never_issuable_are_refused_without_a_query() {
    let app = TestApp::shared();
    for token in ["with\u{0}nul", "with space", "ünïcödé"] {
        let refreshed = app.refresh(token);
        assert_eq!(
            (refreshed.status, refreshed.code()),
            (401, "invalid_refresh_token"),
            "{token:?}: {}",
            refreshed.text
        );
        let logged_out = app.logout(token);
        assert_eq!(
            (logged_out.status, logged_out.code()),
            (401, "invalid_refresh_token"),
            "{token:?}: {}",
            logged_out.text
        );
    }
}

/// Every component reads a username with the same rules: ASCII case only. Unicode case mapping
/// would let "\u{212A}" (KELVIN SIGN) stand for "k", so a name the registration refuses would
/// still reach a user in a transfer.
#[test]
fn a_transfer_by_username_reads_names_as_registration_does() {
    let app = TestApp::shared();
    let payer = app.new_user();
    app.fund(&payer, "5");
    let payee = app.sign_up(&format!("k{}_payee", std::process::id()), "a fine password");
    let look_alike = format!("\u{212A}{}", &payee.username[1..]);
    assert_eq!(app.register(&look_alike, "a fine password").code(), "invalid_username");
    let sent = app.transfer(&payer, &json!({"receiver_username": look_alike, "amount": "1"}));
    assert_eq!((sent.status, sent.code()), (404, "receiver_not_found"), "{}", sent.text);
    let sent = app.transfer(&payer, &json!({"receiver_username": payee.username.to_uppercase(), "amount": "1"}));
    assert_eq!(sent.status, 201, "ASCII case still does not matter: {}", sent.text);
}

/// A socket that never speaks is re-checked too: Pushpin's keep-alive request (after 20 to 30 s
/// of quiet here) finds the membership gone and closes the socket, although the close published at
/// leave time was lost.
#[test]
fn a_quiet_socket_is_closed_after_its_user_left_even_when_the_close_publish_is_lost() {
    // Publishing to a closed port loses every event, the close at leave time included.
    let Some(app) = private_app(
        AppOptions::default()
            .variable("chat_publish_mode", "direct")
            .variable("grip_publish_urls", "http://127.0.0.1:9")
            .variable("grip_publish_hosts", "http://127.0.0.1:9")
            .variable("socket_recheck_interval_seconds", "20"),
    ) else {
        return;
    };
    let (alice, bob) = (app.new_user(), app.new_user());
    let room = room_of(&app, &alice, &bob);
    let mut socket = ChatSocket::connect(&app, room, &bob.token).expect("connect");
    assert_eq!(app.leave_room(&bob, room).status, 204);
    let closed = wait::until(Duration::from_secs(45), || match socket.next_event(Duration::from_secs(1))? {
        SocketEvent::Closed(code) => Some(code),
        SocketEvent::Text(_) => None,
    });
    assert_eq!(closed, Some(4403), "closed by the keep-alive re-check");
}

/// Payments, payment requests, their resolutions and read markers cost what a message costs:
/// none of them is a way around the per-user budget.
#[test]
fn payments_requests_and_read_markers_are_rate_limited_like_messages() {
    let Some((app, alice, bob)) = funded_pair_on_app_with("chat_messages_per_minute", "2", "10") else {
        return;
    };
    let room = room_of(&app, &alice, &bob);
    let limited = |response: &Response| (response.status, response.code()) == (429, "rate_limited");

    // Alice's budget: two payment-related posts, then 429 for the next one of either kind.
    let pay = |app: &TestApp| app.pay_in_room(&alice, room, &json!({"receiver_id": bob.id, "amount": "0.01"}));
    assert_eq!(pay(&app).status, 201);
    let asked = app.request_payment(&alice, room, &json!({"payer_id": bob.id, "amount": "1.00"}));
    assert_eq!(asked.status, 201, "{}", asked.text);
    let third = pay(&app);
    assert!(limited(&third), "{}", third.text);
    assert!(third.header("retry-after").is_some());
    assert!(limited(&app.request_payment(&alice, room, &json!({"payer_id": bob.id, "amount": "1.00"}))));
    assert!(limited(&app.request_split(&alice, room, &json!({"amount": "1.00", "payer_ids": [bob.id, alice.id]}))));
    let message = app.send_message(&alice, &json!({"chat_id": room, "content": "and a plain message"}));
    assert!(limited(&message), "payments spent the messages' budget: {}", message.text);

    // Bob's own budget: resolving a request spends it too.
    let request_id = asked.body["payment_request"]["id"].as_i64().unwrap();
    for _ in 0..2 {
        let declined = app.decline_payment_request(&bob, room, request_id);
        assert!(!limited(&declined), "{}", declined.text);
    }
    assert!(limited(&app.decline_payment_request(&bob, room, request_id)));

    // Read markers have a counter of their own, with the same size.
    let message_id = asked.body["id"].as_i64().unwrap();
    for _ in 0..2 {
        assert_eq!(app.mark_read(&alice, room, message_id).status, 200);
    }
    assert!(limited(&app.mark_read(&alice, room, message_id)));
}

/// A refund of a chat payment posts into its room, so it spends the refunder's chat budget: a
/// payment refunded a cent at a time is no way around it. A receiver who has left the room still
/// refunds, but posts nothing into the room (a refund's note would otherwise reach its members).
#[test]
fn refunds_spend_the_chat_budget_and_a_former_member_posts_nothing() {
    let Some((app, alice, bob)) = funded_pair_on_app_with("chat_messages_per_minute", "2", "10") else {
        return;
    };
    let carol = app.new_user();
    let paid = |receiver: &TestUser, room: i64| {
        let paid = app.pay_in_room(&alice, room, &json!({"receiver_id": receiver.id, "amount": "1.00"}));
        assert_eq!(paid.status, 201, "{}", paid.text);
        paid.body["transfer"]["id"].as_i64().unwrap()
    };
    let (bobs_room, carols_room) = (room_of(&app, &alice, &bob), room_of(&app, &alice, &carol));
    let (to_bob, to_carol) = (paid(&bob, bobs_room), paid(&carol, carols_room));
    let refund = |user: &TestUser, payment: i64| app.refund(user, payment, &json!({"amount": "0.01", "note": "ha"}));
    for _ in 0..2 {
        let refunded = refund(&bob, to_bob);
        assert_eq!(refunded.status, 201, "{}", refunded.text);
    }
    let third = refund(&bob, to_bob);
    assert_eq!((third.status, third.code()), (429, "rate_limited"), "{}", third.text);
    assert!(third.header("retry-after").is_some());
    assert_eq!(app.balance(&bob), "0.98", "the refused refund moved nothing");

    assert_eq!(app.leave_room(&carol, carols_room).status, 204);
    let refunded = refund(&carol, to_carol);
    assert_eq!(refunded.status, 201, "{}", refunded.text);
    let messages = app.messages(&alice, carols_room, "");
    let last = messages.body["items"].as_array().and_then(|items| items.last()).cloned().unwrap_or_default();
    assert_eq!(last["kind"], "payment", "no refund message: {}", messages.text);
    assert_eq!(last["transfer"]["refunded_amount"], "0.01", "{}", messages.text);
    assert_eq!(app.balance(&alice), "8.03");
}

/// Leaving is the leaver's decision: neither the owner (adding members) nor the other party of a
/// direct room (opening it again) can put someone back; opening the direct chat oneself can.
#[test]
fn nobody_can_put_back_a_user_who_left() {
    let app = TestApp::shared();
    let (alice, bob, carol) = (app.new_user(), app.new_user(), app.new_user());
    let group = room_of(app, &alice, &bob);
    assert_eq!(app.leave_room(&bob, group).status, 204);
    let readded = app.add_member(&alice, group, bob.id);
    assert_eq!((readded.status, readded.code()), (409, "member_left"), "{}", readded.text);
    assert_eq!(app.add_member(&alice, group, carol.id).status, 201, "others can still be added");

    let direct = app.open_direct_room(&alice, bob.id);
    let direct_id = direct.body["id"].as_i64().unwrap();
    assert_eq!(app.leave_room(&bob, direct_id).status, 204);
    let reopened = app.open_direct_room(&alice, bob.id);
    assert_eq!((reopened.status, reopened.body["id"].as_i64()), (200, Some(direct_id)), "{}", reopened.text);
    assert_eq!(reopened.body["member_count"], 1, "bob is not brought back: {}", reopened.text);
    assert_eq!(app.messages(&bob, direct_id, "").status, 404, "bob sees nothing of the room he left");

    let rejoined = app.open_direct_room(&bob, alice.id);
    assert_eq!(rejoined.body["member_count"], 2, "bob's own action brings him back: {}", rejoined.text);
    assert_eq!(app.messages(&bob, direct_id, "").status, 200);
}
