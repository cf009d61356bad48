//! Editing and deleting messages, and learning of it after being away (issue 18): who may change
//! what and when, the events over the WebSocket and the event stream, the changes feed
//! (`?changes_after=`), content really gone from the database, and an edit racing a deletion.
use std::collections::BTreeMap;
use std::time::Duration;

use sendinchat_tests::app::{
    AppOptions, ChatSocket, EventStream, Response, StreamItem, TestApp, TestUser, private_app,
};
use sendinchat_tests::wait;
use serde_json::{Value, json};

fn app() -> &'static TestApp {
    TestApp::shared()
}

const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

fn room_with(app: &TestApp, owner: &TestUser, members: &[&TestUser]) -> i64 {
    let ids: Vec<i64> = members.iter().map(|member| member.id).collect();
    let created = app.create_room(owner, &json!({"name": "Edits", "member_ids": ids}));
    assert_eq!(created.status, 201, "{}", created.text);
    created.body["id"].as_i64().unwrap()
}

/// Sends a text message, which must be stored; returns it.
fn send(app: &TestApp, user: &TestUser, room: i64, content: &str) -> Value {
    let sent = app.send_message(user, &json!({"chat_id": room, "content": content}));
    assert_eq!(sent.status, 201, "{}", sent.text);
    sent.body
}

fn id(message: &Value) -> i64 {
    message["id"].as_i64().expect("id")
}

fn change_seq(message: &Value) -> i64 {
    message["change_seq"].as_i64().expect("change_seq")
}

fn connect(app: &TestApp, room: i64, user: &TestUser) -> ChatSocket {
    ChatSocket::join(app, room, user).unwrap_or_else(|error| panic!("websocket join: {error}\n{}", app.log()))
}

/// The next text event on `socket`, skipping typing notices (the event stream's prober sends them).
fn next_event(socket: &mut ChatSocket) -> Value {
    loop {
        match socket.next_event(EVENT_TIMEOUT) {
            Some(sendinchat_tests::app::SocketEvent::Text(event)) if event["type"] == "typing" => continue,
            Some(sendinchat_tests::app::SocketEvent::Text(event)) => return event,
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

fn replayed(response: &Response) -> bool {
    response.header("idempotent-replayed") == Some("true")
}

#[test]
fn an_author_edits_a_text_message_within_the_window_and_the_room_is_told() {
    let (alice, bob, outsider) = (app().new_user(), app().new_user(), app().new_user());
    let room = room_with(app(), &alice, &[&bob]);
    let mut bob_socket = connect(app(), room, &bob);
    let mut prober = connect(app(), room, &alice);
    let stream = EventStream::open(app(), room, &bob, None).expect("bob's event stream");
    stream.await_subscription(&mut prober, &alice).expect("the stream is live");

    let draft = send(app(), &alice, room, "first draft");
    assert_eq!(next_event(&mut bob_socket)["type"], "message");
    let edited = app().edit_message(&alice, room, id(&draft), "final words");
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert!(!replayed(&edited));
    for field in ["id", "seq", "sender_id", "created_at", "client_msg_id"] {
        assert_eq!(edited.body[field], draft[field], "an edit keeps {field}");
    }
    assert_eq!(edited.body["content"], "final words");
    assert!(edited.body["edited_at"].is_string());
    assert_eq!(change_seq(&edited.body), change_seq(&draft) + 1, "the edit is the room's next change");

    let event = next_event(&mut bob_socket);
    assert_eq!((event["type"].as_str(), &event["message"]), (Some("message_edited"), &edited.body));
    let streamed = wait::until(EVENT_TIMEOUT, || match stream.next_item(Duration::from_millis(200)) {
        Some(StreamItem::Event { id, data }) if data["type"] == "message_edited" => Some((id, data)),
        _ => None,
    })
    .expect("the edit reaches the event stream");
    assert_eq!(streamed.1["message"], edited.body);
    assert_eq!(streamed.0, None, "no SSE id: Last-Event-ID stays at the last new message");

    let retried = app().edit_message(&alice, room, id(&draft), "final words");
    assert_eq!((retried.status, replayed(&retried)), (200, true), "{}", retried.text);
    assert_eq!(retried.body, edited.body, "a retried edit changes nothing");
    let next = send(app(), &alice, room, "after the edit");
    let event = next_event(&mut bob_socket);
    assert_eq!((event["type"].as_str(), &event["message"]), (Some("message"), &next), "the retry was not announced");

    let history = app().messages(&bob, room, "");
    assert_eq!(history.body["items"][0], edited.body, "history shows the edit");

    let by_bob = app().edit_message(&bob, room, id(&draft), "not mine");
    assert_eq!((by_bob.status, by_bob.code()), (403, "not_author"));
    let by_outsider = app().edit_message(&outsider, room, id(&draft), "let me");
    assert_eq!((by_outsider.status, by_outsider.code()), (404, "room_not_found"));
    let other_room = room_with(app(), &alice, &[]);
    let elsewhere = app().edit_message(&alice, other_room, id(&draft), "wrong room");
    assert_eq!((elsewhere.status, elsewhere.code()), (404, "message_not_found"));
    let cases = [("   ", 422, "empty_message"), ("bell\u{7}", 422, "invalid_content")];
    for (content, status, code) in cases {
        let refused = app().edit_message(&alice, room, id(&draft), content);
        assert_eq!((refused.status, refused.code()), (status, code), "{}", refused.text);
    }
    let oversized = app().edit_message(&alice, room, id(&draft), &"x".repeat(4097));
    assert_eq!((oversized.status, oversized.code()), (413, "message_too_large"));
    let authorization = format!("Bearer {}", alice.token);
    let path = format!("/chat/rooms/{room}/messages/{}", id(&draft));
    let unknown = json!({"content": "x", "kind": "payment"}).to_string().into_bytes();
    let unknown =
        app().request("PATCH", &path, &[("authorization", &authorization)], Some(("application/json", unknown)));
    assert_eq!((unknown.status, unknown.code()), (422, "unknown_field"));
    let not_an_id = app().edit_message(&alice, room, 0, "x");
    assert_eq!((not_an_id.status, not_an_id.code()), (404, "message_not_found"));
    let wrong_method = app().post(&path, Some(&alice.token), &json!({"content": "x"}), &[]);
    assert_eq!((wrong_method.status, wrong_method.header("allow")), (405, Some("PATCH, DELETE")));
    assert_eq!(app().messages(&bob, room, "").body["items"][0], edited.body, "refused edits changed nothing");
}

#[test]
fn payments_and_payment_requests_cannot_be_edited_or_deleted() {
    let (alice, bob) = (app().new_user(), app().new_user());
    app().fund(&alice, "10");
    let room = room_with(app(), &alice, &[&bob]);
    let paid = app().pay_in_room(&alice, room, &json!({"receiver_id": bob.id, "amount": "1", "note": "coffee"}));
    assert_eq!(paid.status, 201, "{}", paid.text);
    let asked = app().request_payment(&alice, room, &json!({"payer_id": bob.id, "amount": "2", "note": "lunch"}));
    assert_eq!(asked.status, 201, "{}", asked.text);
    for message in [&paid.body, &asked.body] {
        let edit = app().edit_message(&alice, room, id(message), "a different note");
        assert_eq!((edit.status, edit.code()), (422, "payment_message"), "{}", edit.text);
        let delete = app().delete_message(&alice, room, id(message));
        assert_eq!((delete.status, delete.code()), (422, "payment_message"), "the owner and author cannot either");
    }
    let items = app().messages(&bob, room, "").body["items"].clone();
    assert_eq!(items[0], paid.body, "the payment is as it was");
    assert_eq!(items[1], asked.body);
    // Postgres refuses it too, whatever the code above it does.
    let mut database = app().database();
    let refused =
        database.execute("UPDATE messages SET deleted_at = now(), content = NULL WHERE id = $1", &[&id(&paid.body)]);
    let error = refused.expect_err("a payment message cannot be deleted in the database");
    assert_eq!(error.as_db_error().and_then(|error| error.constraint()), Some("messages_only_text_changes"));
}

#[test]
fn deleting_leaves_a_tombstone_and_the_content_is_gone_from_the_database() {
    let (owner, author, member) = (app().new_user(), app().new_user(), app().new_user());
    let room = room_with(app(), &owner, &[&author, &member]);
    let secret = format!("the secret plan {}", sendinchat_tests::app::unique_suffix());
    let message = send(app(), &author, room, &secret);
    let also = send(app(), &author, room, "the owner will remove this");
    let mut owner_socket = connect(app(), room, &owner);

    let by_member = app().delete_message(&member, room, id(&message));
    assert_eq!((by_member.status, by_member.code()), (403, "not_author_or_owner"));
    let deleted = app().delete_message(&author, room, id(&message));
    assert_eq!((deleted.status, replayed(&deleted)), (200, false), "{}", deleted.text);
    let tombstone = &deleted.body;
    for field in ["id", "seq", "sender_id", "created_at", "kind"] {
        assert_eq!(tombstone[field], message[field], "a tombstone keeps {field}");
    }
    assert_eq!(tombstone["content"], Value::Null);
    assert!(tombstone["deleted_at"].is_string());
    assert!(change_seq(tombstone) > change_seq(&also), "the deletion is the room's newest change");
    let event = next_event(&mut owner_socket);
    assert_eq!((event["type"].as_str(), &event["message"]), (Some("message_deleted"), tombstone));

    let mut database = app().database();
    let row = database
        .query_one("SELECT content, deleted_at IS NOT NULL FROM messages WHERE id = $1", &[&id(&message)])
        .expect("the tombstone's row");
    assert_eq!((row.get::<_, Option<String>>(0), row.get::<_, bool>(1)), (None, true));
    let copies: i64 = database
        .query_one("SELECT count(*) FROM messages WHERE content LIKE '%' || $1 || '%'", &[&secret])
        .expect("count")
        .get(0);
    assert_eq!(copies, 0, "no message row holds the deleted text");

    let again = app().delete_message(&author, room, id(&message));
    assert_eq!((again.status, replayed(&again)), (200, true), "{}", again.text);
    assert_eq!(&again.body, tombstone, "deleting again changes nothing");
    let edit = app().edit_message(&author, room, id(&message), "undo");
    assert_eq!((edit.status, edit.code()), (409, "message_deleted"));

    let by_owner = app().delete_message(&owner, room, id(&also));
    assert_eq!(by_owner.status, 200, "the room's owner may delete others' messages: {}", by_owner.text);
    let event = next_event(&mut owner_socket);
    assert_eq!((event["type"].as_str(), &event["message"]), (Some("message_deleted"), &by_owner.body));
    let history = app().messages(&member, room, "").body["items"].clone();
    assert_eq!(history, json!([tombstone, by_owner.body]), "history shows the tombstones in place");
    let missing = app().delete_message(&owner, room, i64::MAX);
    assert_eq!((missing.status, missing.code()), (404, "message_not_found"));
}

#[test]
fn edits_after_the_window_are_refused() {
    let Some(app) = private_app(AppOptions::default().variable("message_edit_window_seconds", "2")) else {
        return;
    };
    let alice = app.new_user();
    let room = room_with(&app, &alice, &[]);
    let message = send(&app, &alice, room, "typo");
    let fixed = app.edit_message(&alice, room, id(&message), "fixed");
    assert_eq!(fixed.status, 200, "within the 2-second window: {}", fixed.text);
    // The window is measured by the database's clock: wait until it has passed there.
    let mut database = app.database();
    let closed = wait::until(Duration::from_secs(10), || {
        let row = database
            .query_one("SELECT now() > created_at + interval '2 seconds' FROM messages WHERE id = $1", &[&id(&message)])
            .expect("the message");
        row.get::<_, bool>(0).then_some(())
    });
    assert!(closed.is_some(), "two seconds pass");
    let late = app.edit_message(&alice, room, id(&message), "too late");
    assert_eq!((late.status, late.code()), (409, "edit_window_closed"), "{}", late.text);
    assert_eq!(app.messages(&alice, room, "").body["items"][0], fixed.body, "the refused edit changed nothing");
    let deleted = app.delete_message(&alice, room, id(&message));
    assert_eq!(deleted.status, 200, "deleting has no time limit: {}", deleted.text);
}

/// A client that was away walks `?changes_after=<highest change_seq it had>` page by page and ends
/// with the room exactly as history shows it, each changed message once, as it is now; a client
/// that stayed connected saw every change as an event, numbered without gaps.
#[test]
fn a_returning_client_learns_of_edits_and_deletes_made_while_it_was_away() {
    let (alice, bob, outsider) = (app().new_user(), app().new_user(), app().new_user());
    let room = room_with(app(), &alice, &[&bob]);
    let sent: Vec<Value> = (0..6).map(|index| send(app(), &alice, room, &format!("m{index}"))).collect();
    let page = app().messages(&bob, room, "");
    let mut shown: BTreeMap<i64, Value> =
        page.body["items"].as_array().unwrap().iter().map(|message| (id(message), message.clone())).collect();
    let seen = shown.values().map(change_seq).max().unwrap();
    let mut live = connect(app(), room, &alice);

    assert_eq!(app().edit_message(&alice, room, id(&sent[1]), "m1, edited").status, 200);
    assert_eq!(app().delete_message(&alice, room, id(&sent[2])).status, 200);
    let newer = send(app(), &alice, room, "m6");
    assert_eq!(app().edit_message(&alice, room, id(&newer), "m6, edited").status, 200);
    assert_eq!(app().edit_message(&alice, room, id(&sent[1]), "m1, edited twice").status, 200);

    let mut cursor = seen;
    let mut walked = Vec::new();
    loop {
        let changes = app().message_changes(&bob, room, cursor, "limit=2");
        assert_eq!(changes.status, 200, "{}", changes.text);
        let items = changes.body["items"].as_array().unwrap().clone();
        for message in &items {
            assert!(change_seq(message) > cursor, "in change order, after the cursor");
            cursor = change_seq(message);
            shown.insert(id(message), message.clone());
            walked.push(message["content"].clone());
        }
        if changes.body["has_more"] != true {
            break;
        }
    }
    assert_eq!(
        walked,
        [json!(null), json!("m6, edited"), json!("m1, edited twice")],
        "each changed message once, as it is now"
    );
    let history = app().messages(&bob, room, "").body["items"].clone();
    assert_eq!(Value::from(shown.into_values().collect::<Vec<_>>()), history, "the client's view is the room's");
    let new_only = app().messages(&bob, room, &format!("after={}", id(&sent[5])));
    assert_eq!(new_only.body["items"].as_array().map(Vec::len), Some(1), "`after` still lists new messages only");
    let nothing = app().message_changes(&bob, room, cursor, "");
    assert_eq!((nothing.body["items"].clone(), nothing.body["has_more"].clone()), (json!([]), json!(false)));

    let mut numbers: Vec<i64> = (0..5).map(|_| change_seq(&next_event(&mut live)["message"])).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, ((seen + 1)..=(seen + 5)).collect::<Vec<_>>(), "every change took the next number");

    let combined = format!("changes_after=1&after={}", id(&sent[0]));
    for query in ["changes_after=-1", "changes_after=x", &combined] {
        let refused = app().messages(&bob, room, query);
        assert_eq!((refused.status, refused.code()), (400, "invalid_cursor"), "{query}: {}", refused.text);
    }
    let by_outsider = app().message_changes(&outsider, room, 0, "");
    assert_eq!((by_outsider.status, by_outsider.code()), (404, "room_not_found"));
}

/// An edit or deletion whose transaction began before the message it finds was created (it waited
/// for the room's lock meanwhile) is dated no earlier than the message: the test dates a message a
/// minute ahead, as such an edit would see it. Dated now(), the change broke the
/// `messages_changed_after_created` CHECK: a 500.
#[test]
fn a_change_is_never_dated_before_its_message() {
    let author = app().new_user();
    let room = room_with(app(), &author, &[]);
    let mut database = app().database();
    for change in ["edit", "delete"] {
        let message = send(app(), &author, room, &format!("to {change}"));
        let moved = "UPDATE messages SET created_at = created_at + interval '1 minute' WHERE id = $1";
        assert_eq!(database.execute(moved, &[&id(&message)]).unwrap(), 1);
        let changed = match change {
            "edit" => app().edit_message(&author, room, id(&message), "edited"),
            _ => app().delete_message(&author, room, id(&message)),
        };
        assert_eq!(changed.status, 200, "{change}: {}", changed.text);
        let at = if change == "edit" { "edited_at" } else { "deleted_at" };
        assert!(changed.body[at].as_str() >= changed.body["created_at"].as_str(), "{change}: {}", changed.text);
    }
}

/// An edit and two deletions (by the author and the owner) of one message at the same moment end
/// in one state: deleted, content gone, one deletion announced; an edit that got in first is
/// numbered before the deletion, one that came after is refused.
#[test]
fn an_edit_racing_a_delete_ends_in_one_consistent_state() {
    let (owner, author) = (app().new_user(), app().new_user());
    let room = room_with(app(), &owner, &[&author]);
    let mut database = app().database();
    let mut observer = connect(app(), room, &owner);
    let mut deleted_ids = Vec::new();
    for round in 0..8 {
        let message = send(app(), &author, room, &format!("round {round}"));
        deleted_ids.push(id(&message));
        let barrier = std::sync::Barrier::new(3);
        let (edit, by_author, by_owner) = std::thread::scope(|scope| {
            let (barrier, author, owner) = (&barrier, &author, &owner);
            let message_id = id(&message);
            let edit = scope.spawn(move || {
                barrier.wait();
                app().edit_message(author, room, message_id, &format!("round {round}, edited"))
            });
            let by_author = scope.spawn(move || {
                barrier.wait();
                app().delete_message(author, room, message_id)
            });
            let by_owner = scope.spawn(move || {
                barrier.wait();
                app().delete_message(owner, room, message_id)
            });
            (edit.join().unwrap(), by_author.join().unwrap(), by_owner.join().unwrap())
        });
        assert_eq!((by_author.status, by_owner.status), (200, 200), "{} / {}", by_author.text, by_owner.text);
        assert_eq!(by_author.body, by_owner.body, "round {round}: both see the one tombstone");
        assert_eq!(replayed(&by_author) as u8 + replayed(&by_owner) as u8, 1, "round {round}: deleted once");
        let tombstone = &by_author.body;
        match (edit.status, edit.code()) {
            (200, _) => assert!(change_seq(&edit.body) < change_seq(tombstone), "round {round}: the edit came first"),
            (409, "message_deleted") => {}
            other => panic!("round {round}: the edit ended {other:?}: {}", edit.text),
        }
        let row = database
            .query_one(
                "SELECT m.content, m.deleted_at IS NOT NULL, m.change_seq = r.last_change_seq
                 FROM messages m JOIN rooms r ON r.id = m.room_id WHERE m.id = $1",
                &[&id(&message)],
            )
            .expect("the message");
        assert_eq!(
            (row.get::<_, Option<String>>(0), row.get::<_, bool>(1), row.get::<_, bool>(2)),
            (None, true, true),
            "round {round}: deleted, content gone, and the deletion is the room's last change"
        );
    }
    let mut announced = Vec::new();
    while let Some(event) = observer.next_of_type("message_deleted", Duration::from_secs(2)) {
        announced.push(id(&event["message"]));
    }
    assert_eq!(announced, deleted_ids, "each deletion announced once, in order");
}

/// Edits of one message at the same moment are serialised: each takes its own change number, and
/// the message ends with the text of the one numbered last.
#[test]
fn concurrent_edits_each_take_a_change_and_the_last_one_stays() {
    let author = app().new_user();
    let room = room_with(app(), &author, &[]);
    let message = send(app(), &author, room, "draft");
    let barrier = std::sync::Barrier::new(6);
    let edits: Vec<Response> = std::thread::scope(|scope| {
        let (barrier, author, message_id) = (&barrier, &author, id(&message));
        let threads: Vec<_> = (0..6)
            .map(|attempt| {
                scope.spawn(move || {
                    barrier.wait();
                    app().edit_message(author, room, message_id, &format!("version {attempt}"))
                })
            })
            .collect();
        threads.into_iter().map(|thread| thread.join().unwrap()).collect()
    });
    let mut numbered: Vec<(i64, Value)> = edits
        .iter()
        .map(|edit| {
            assert_eq!(edit.status, 200, "{}", edit.text);
            (change_seq(&edit.body), edit.body["content"].clone())
        })
        .collect();
    numbered.sort_by_key(|(change, _)| *change);
    let changes: Vec<i64> = numbered.iter().map(|(change, _)| *change).collect();
    assert_eq!(changes, ((change_seq(&message) + 1)..=(change_seq(&message) + 6)).collect::<Vec<_>>());
    let stored = app().messages(&author, room, "").body["items"][0].clone();
    assert_eq!(stored["content"], numbered.last().unwrap().1, "the edit numbered last is the text");
}
