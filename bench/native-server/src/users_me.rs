//! `GET /users/me` natively: the same token check and the same query as the app's `auth`
//! component, with what a hand-written Rust service would use: one prepared statement per pooled
//! connection, connections shared round-robin (tokio-postgres pipelines concurrent queries).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode, header};
use sha2::Sha256;
use tokio_postgres::{Client, NoTls, Statement};

const USER_BY_ID: &str = "SELECT user_json(users)::text FROM users WHERE id = $1";

/// As many connections as the benchmark has clients, like the app's pool under that load.
const CONNECTIONS: usize = 16;

struct Service {
    connections: Vec<(Client, Statement)>,
    next: AtomicUsize,
    key: Hmac<Sha256>,
    issuer: String,
}

pub async fn serve(address: &str, database_url: &str, secret: &str, issuer: &str) -> std::io::Result<()> {
    let mut connections = Vec::new();
    for _ in 0..CONNECTIONS {
        let (client, connection) = tokio_postgres::connect(database_url, NoTls).await.map_err(std::io::Error::other)?;
        tokio::spawn(connection);
        let statement = client.prepare(USER_BY_ID).await.map_err(std::io::Error::other)?;
        connections.push((client, statement));
    }
    let key = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    let service = Arc::new(Service { connections, next: AtomicUsize::new(0), key, issuer: issuer.to_owned() });
    crate::serve_with(address, move |request| {
        let service = service.clone();
        async move { service.answer(request).await }
    })
    .await
}

impl Service {
    async fn answer(&self, request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let Some(user_id) = self.authenticate(&request) else {
            return reply(StatusCode::UNAUTHORIZED, r#"{"error":{"code":"invalid_token"}}"#.to_owned());
        };
        let (client, statement) = &self.connections[self.next.fetch_add(1, Ordering::Relaxed) % CONNECTIONS];
        match client.query_opt(statement, &[&user_id]).await {
            Ok(Some(row)) => reply(StatusCode::OK, row.get(0)),
            Ok(None) => reply(StatusCode::NOT_FOUND, r#"{"error":{"code":"user_not_found"}}"#.to_owned()),
            Err(_) => reply(StatusCode::SERVICE_UNAVAILABLE, r#"{"error":{"code":"unavailable"}}"#.to_owned()),
        }
    }

    /// The user id of a valid `Authorization: Bearer` HS256 token: signature, expiry and issuer.
    fn authenticate(&self, request: &Request<hyper::body::Incoming>) -> Option<i64> {
        let token = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")?;
        let (signed, signature) = token.rsplit_once('.')?;
        let mut mac = self.key.clone();
        mac.update(signed.as_bytes());
        mac.verify_slice(&URL_SAFE_NO_PAD.decode(signature).ok()?).ok()?;
        let (header, claims) = signed.split_once('.')?;
        let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
        let valid = header["alg"] == "HS256" && claims["exp"].as_i64()? > now && claims["iss"] == self.issuer.as_str();
        valid.then(|| claims["sub"].as_str()?.parse().ok()).flatten()
    }
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("valid response")
}
