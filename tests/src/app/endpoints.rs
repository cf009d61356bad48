//! One method per endpoint of the API (README.md, openapi.yaml), in the spec's order, and a few
//! conveniences built on them. Every method returns the [`Response`] as it came; tests assert on
//! it. Tests of malformed input (wrong content types, raw bodies, forged tokens) use the generic
//! `request`/`get`/`post`/`delete` instead.
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use super::{Response, TestApp, TestUser};

/// `path`, with `?query` when `query` is not empty.
fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() { path.to_owned() } else { format!("{path}?{query}") }
}

/// Users: registration, sessions and look-ups (the `auth` component).
impl TestApp {
    /// `POST /users/register`.
    pub fn register(&self, username: &str, password: &str) -> Response {
        self.post("/users/register", None, &json!({"username": username, "password": password}), &[])
    }

    /// `POST /users/token`, with a JSON body.
    pub fn login(&self, username: &str, password: &str) -> Response {
        self.post("/users/token", None, &json!({"username": username, "password": password}), &[])
    }

    /// `POST /users/refresh`.
    pub fn refresh(&self, refresh_token: &str) -> Response {
        self.post("/users/refresh", None, &json!({"refresh_token": refresh_token}), &[])
    }

    /// `POST /users/logout`.
    pub fn logout(&self, refresh_token: &str) -> Response {
        self.post("/users/logout", None, &json!({"refresh_token": refresh_token}), &[])
    }

    /// `GET /users/me`.
    pub fn me(&self, user: &TestUser) -> Response {
        self.get("/users/me", Some(&user.token))
    }

    /// `POST /users/me/password`.
    pub fn change_password(&self, user: &TestUser, current: &str, new: &str) -> Response {
        let body = json!({"current_password": current, "new_password": new});
        self.post("/users/me/password", Some(&user.token), &body, &[])
    }

    /// `GET /users/{user_id}`.
    pub fn user_by_id(&self, user: &TestUser, user_id: i64) -> Response {
        self.get(&format!("/users/{user_id}"), Some(&user.token))
    }

    /// `GET /users?username=`.
    pub fn user_by_name(&self, user: &TestUser, username: &str) -> Response {
        self.get(&format!("/users?username={username}"), Some(&user.token))
    }
}

/// Money: transfers, deposits, balances and history (the `fintech` component).
impl TestApp {
    /// `POST /fintech/transfer`.
    pub fn transfer(&self, user: &TestUser, body: &Value) -> Response {
        self.post("/fintech/transfer", Some(&user.token), body, &[])
    }

    /// `POST /fintech/transfer` with an `Idempotency-Key`.
    pub fn transfer_with_key(&self, user: &TestUser, body: &Value, idempotency_key: &str) -> Response {
        self.post("/fintech/transfer", Some(&user.token), body, &[("idempotency-key", idempotency_key)])
    }

    /// `POST /fintech/deposits` with `X-Operator-Token: operator_token` (none when `None`).
    pub fn deposit(&self, body: &Value, operator_token: Option<&str>) -> Response {
        let headers: Vec<(&str, &str)> = operator_token.iter().map(|token| ("x-operator-token", *token)).collect();
        self.post("/fintech/deposits", None, body, &headers)
    }

    /// `GET /fintech/audit` with `X-Operator-Token: operator_token` (none when `None`).
    pub fn audit(&self, operator_token: Option<&str>) -> Response {
        let headers: Vec<(&str, &str)> = operator_token.iter().map(|token| ("x-operator-token", *token)).collect();
        self.request("GET", "/fintech/audit", &headers, None)
    }

    /// `GET /fintech/balance`.
    pub fn balances(&self, user: &TestUser) -> Response {
        self.get("/fintech/balance", Some(&user.token))
    }

    /// `GET /fintech/transactions?query`.
    pub fn transactions(&self, user: &TestUser, query: &str) -> Response {
        self.get(&with_query("/fintech/transactions", query), Some(&user.token))
    }

    /// `GET /fintech/transactions/sent?query`.
    pub fn sent_transactions(&self, user: &TestUser, query: &str) -> Response {
        self.get(&with_query("/fintech/transactions/sent", query), Some(&user.token))
    }

    /// `GET /fintech/transactions/received?query`.
    pub fn received_transactions(&self, user: &TestUser, query: &str) -> Response {
        self.get(&with_query("/fintech/transactions/received", query), Some(&user.token))
    }

    /// `GET /fintech/transactions/{transfer_id}`.
    pub fn transaction(&self, user: &TestUser, transfer_id: i64) -> Response {
        self.get(&format!("/fintech/transactions/{transfer_id}"), Some(&user.token))
    }

    /// `POST /fintech/transactions/{transfer_id}/refunds`.
    pub fn refund(&self, user: &TestUser, transfer_id: i64, body: &Value) -> Response {
        self.post(&format!("/fintech/transactions/{transfer_id}/refunds"), Some(&user.token), body, &[])
    }

    /// `POST /fintech/transactions/{transfer_id}/refunds` with an `Idempotency-Key`.
    pub fn refund_with_key(&self, user: &TestUser, transfer_id: i64, body: &Value, idempotency_key: &str) -> Response {
        let headers = [("idempotency-key", idempotency_key)];
        self.post(&format!("/fintech/transactions/{transfer_id}/refunds"), Some(&user.token), body, &headers)
    }
}

/// Chat: rooms, messages and payments in rooms (the `chat` component; its WebSocket is
/// [`super::ChatSocket`]).
impl TestApp {
    /// `POST /chat/create_room`.
    pub fn create_room(&self, user: &TestUser, body: &Value) -> Response {
        self.post("/chat/create_room", Some(&user.token), body, &[])
    }

    /// `POST /chat/direct`: the direct room of `user` and `peer_id`.
    pub fn open_direct_room(&self, user: &TestUser, peer_id: i64) -> Response {
        self.post("/chat/direct", Some(&user.token), &json!({"user_id": peer_id}), &[])
    }

    /// `GET /chat/rooms?query`.
    pub fn rooms(&self, user: &TestUser, query: &str) -> Response {
        self.get(&with_query("/chat/rooms", query), Some(&user.token))
    }

    /// `POST /chat/rooms/{room_id}/members`: `user` adds `member_id`.
    pub fn add_member(&self, user: &TestUser, room_id: i64, member_id: i64) -> Response {
        self.post(&format!("/chat/rooms/{room_id}/members"), Some(&user.token), &json!({"user_id": member_id}), &[])
    }

    /// `DELETE /chat/rooms/{room_id}/members/me`.
    pub fn leave_room(&self, user: &TestUser, room_id: i64) -> Response {
        self.delete(&format!("/chat/rooms/{room_id}/members/me"), &user.token)
    }

    /// `POST /chat/send_message`.
    pub fn send_message(&self, user: &TestUser, body: &Value) -> Response {
        self.post("/chat/send_message", Some(&user.token), body, &[])
    }

    /// `GET /chat/messages/{room_id}?query`.
    pub fn messages(&self, user: &TestUser, room_id: i64, query: &str) -> Response {
        self.get(&with_query(&format!("/chat/messages/{room_id}"), query), Some(&user.token))
    }

    /// `POST /chat/rooms/{room_id}/read`: `user` has read up to `message_id`.
    pub fn mark_read(&self, user: &TestUser, room_id: i64, message_id: i64) -> Response {
        self.post(&format!("/chat/rooms/{room_id}/read"), Some(&user.token), &json!({"up_to_id": message_id}), &[])
    }

    /// `PATCH /chat/rooms/{room_id}/messages/{message_id}`: `user` rewrites a message.
    pub fn edit_message(&self, user: &TestUser, room_id: i64, message_id: i64, content: &str) -> Response {
        let authorization = format!("Bearer {}", user.token);
        let body = json!({"content": content}).to_string().into_bytes();
        let path = format!("/chat/rooms/{room_id}/messages/{message_id}");
        self.request("PATCH", &path, &[("authorization", &authorization)], Some(("application/json", body)))
    }

    /// `DELETE /chat/rooms/{room_id}/messages/{message_id}`.
    pub fn delete_message(&self, user: &TestUser, room_id: i64, message_id: i64) -> Response {
        self.delete(&format!("/chat/rooms/{room_id}/messages/{message_id}"), &user.token)
    }

    /// `GET /chat/messages/{room_id}?changes_after=&query`: what changed after change `changes_after`.
    pub fn message_changes(&self, user: &TestUser, room_id: i64, changes_after: i64, query: &str) -> Response {
        let path = with_query(&format!("/chat/messages/{room_id}"), &format!("changes_after={changes_after}"));
        self.get(&if query.is_empty() { path } else { format!("{path}&{query}") }, Some(&user.token))
    }

    /// `POST /chat/rooms/{room_id}/payments`.
    pub fn pay_in_room(&self, user: &TestUser, room_id: i64, body: &Value) -> Response {
        self.post(&format!("/chat/rooms/{room_id}/payments"), Some(&user.token), body, &[])
    }

    /// `POST /chat/rooms/{room_id}/payments` with an `Idempotency-Key`.
    pub fn pay_in_room_with_key(&self, user: &TestUser, room_id: i64, body: &Value, idempotency_key: &str) -> Response {
        let headers = [("idempotency-key", idempotency_key)];
        self.post(&format!("/chat/rooms/{room_id}/payments"), Some(&user.token), body, &headers)
    }

    /// `POST /chat/rooms/{room_id}/payment_requests`.
    pub fn request_payment(&self, user: &TestUser, room_id: i64, body: &Value) -> Response {
        self.post(&format!("/chat/rooms/{room_id}/payment_requests"), Some(&user.token), body, &[])
    }

    /// `POST /chat/rooms/{room_id}/payment_requests/{request_id}/accept`.
    pub fn accept_payment_request(&self, user: &TestUser, room_id: i64, request_id: i64) -> Response {
        let path = format!("/chat/rooms/{room_id}/payment_requests/{request_id}/accept");
        self.post(&path, Some(&user.token), &json!({}), &[])
    }

    /// `POST /chat/rooms/{room_id}/payment_requests/{request_id}/decline`.
    pub fn decline_payment_request(&self, user: &TestUser, room_id: i64, request_id: i64) -> Response {
        let path = format!("/chat/rooms/{room_id}/payment_requests/{request_id}/decline");
        self.post(&path, Some(&user.token), &json!({}), &[])
    }

    /// `POST /chat/rooms/{room_id}/payment_requests/{request_id}/accept` with an `Idempotency-Key`.
    pub fn accept_payment_request_with_key(
        &self,
        user: &TestUser,
        room_id: i64,
        request_id: i64,
        idempotency_key: &str,
    ) -> Response {
        let path = format!("/chat/rooms/{room_id}/payment_requests/{request_id}/accept");
        self.post(&path, Some(&user.token), &json!({}), &[("idempotency-key", idempotency_key)])
    }

    /// `POST /chat/rooms/{room_id}/split_requests`.
    pub fn request_split(&self, user: &TestUser, room_id: i64, body: &Value) -> Response {
        self.post(&format!("/chat/rooms/{room_id}/split_requests"), Some(&user.token), body, &[])
    }

    /// `POST /chat/rooms/{room_id}/split_requests` with an `Idempotency-Key`.
    pub fn request_split_with_key(
        &self,
        user: &TestUser,
        room_id: i64,
        body: &Value,
        idempotency_key: &str,
    ) -> Response {
        let headers = [("idempotency-key", idempotency_key)];
        self.post(&format!("/chat/rooms/{room_id}/split_requests"), Some(&user.token), body, &headers)
    }

    /// `GET /chat/rooms/{room_id}/split_requests/{split_id}`.
    pub fn split(&self, user: &TestUser, room_id: i64, split_id: i64) -> Response {
        self.get(&format!("/chat/rooms/{room_id}/split_requests/{split_id}"), Some(&user.token))
    }
}

/// Operations and documentation (the `health` and `docs` components).
impl TestApp {
    /// `GET /health`: liveness.
    pub fn health(&self) -> Response {
        self.get("/health", None)
    }

    /// `GET /health/ready`: readiness.
    pub fn readiness(&self) -> Response {
        self.get("/health/ready", None)
    }

    /// `GET /openapi.yaml`.
    pub fn openapi_yaml(&self) -> Response {
        self.get("/openapi.yaml", None)
    }

    /// `GET /docs` and `GET /docs/{file}` (`file` empty, or starting with `/`).
    pub fn swagger_ui(&self, file: &str) -> Response {
        self.get(&format!("/docs{file}"), None)
    }

    /// `GET /redoc` and `GET /redoc/{file}` (`file` empty, or starting with `/`).
    pub fn redoc(&self, file: &str) -> Response {
        self.get(&format!("/redoc{file}"), None)
    }
}

/// Conveniences: users and money a test needs before it tests something else.
impl TestApp {
    /// Registers and logs in a new user with a unique name.
    pub fn new_user(&self) -> TestUser {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let username = format!("u{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        self.sign_up(&username, &format!("pw-{}", super::random_secret()))
    }

    /// Registers `username` and logs it in; both must succeed.
    pub fn sign_up(&self, username: &str, password: &str) -> TestUser {
        let registered = self.register(username, password);
        assert_eq!(registered.status, 201, "register {username}: {}", registered.text);
        self.session(registered.body["id"].as_i64().expect("user id"), username, password)
    }

    /// Logs in an existing user; the login and reading its id must succeed.
    pub fn log_in(&self, username: &str, password: &str) -> TestUser {
        let user = self.session(0, username, password);
        let me = self.me(&user);
        assert_eq!(me.status, 200, "me {username}: {}", me.text);
        TestUser { id: me.body["id"].as_i64().expect("user id"), ..user }
    }

    /// Logs `username` in once more: another session of the same user.
    pub fn session(&self, id: i64, username: &str, password: &str) -> TestUser {
        let session = self.login(username, password);
        assert_eq!(session.status, 200, "login {username}: {}", session.text);
        TestUser {
            id,
            username: username.to_owned(),
            password: password.to_owned(),
            token: session.body["access_token"].as_str().expect("access token").to_owned(),
            refresh_token: session.body["refresh_token"].as_str().expect("refresh token").to_owned(),
        }
    }

    /// Deposits `amount` (default currency) for `user` as the operator; the deposit must succeed.
    pub fn fund(&self, user: &TestUser, amount: &str) -> Response {
        let response = self.deposit(&json!({"user_id": user.id, "amount": amount}), Some(self.admin_token()));
        assert_eq!(response.status, 201, "deposit: {}", response.text);
        response
    }

    /// The user's balance in the default currency, as the API renders it.
    pub fn balance(&self, user: &TestUser) -> String {
        let response = self.balances(user);
        assert_eq!(response.status, 200, "balance: {}", response.text);
        response.body["balances"][0]["balance"].as_str().expect("balance").to_owned()
    }
}
