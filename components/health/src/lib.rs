//! The `health` component, for load balancers and orchestrators:
//!
//! - `GET /health`: liveness; the component runs (no dependency is touched).
//! - `GET /health/ready`: readiness; Postgres answers a query and Redis a PING, each reported
//!   with its state and round-trip time. Without Postgres nothing works: 503 (with
//!   `Retry-After`), so traffic is held back until it recovers. Without Redis the app still
//!   serves (messages are stored and answered, payments made; realtime waits, logins get their
//!   own 503): 200 `degraded`, since an orchestrator taking every replica out of service would
//!   turn a Redis outage into a total one.
//!   A secret shorter than the components accept, an example's placeholder (`CHANGE-ME`), or one
//!   value used for two secrets is a logged 500: Spin has no start-up hook to refuse it, so
//!   readiness is where an orchestrator learns of it before sending traffic.
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use serde_json::json;
use shared::response::json_reply;
use shared::{ApiError, Reply};
use spin_sdk::http::Request;

mod settings;

#[spin_sdk::http_service]
async fn handle(request: Request) -> Reply {
    shared::request_log::serve("health", request, route).await
}

async fn route(request: Request) -> Reply {
    let is_get = request.method() == Method::GET;
    match request.uri().path().trim_end_matches('/') {
        "/health" | "/health/ready" if !is_get => ApiError::method_not_allowed("GET").into_reply(),
        "/health" => json_reply(StatusCode::OK, &json!({"status": "ok"})),
        "/health/ready" => readiness().await,
        _ => ApiError::not_found("no such route").into_reply(),
    }
}

async fn readiness() -> Reply {
    let settings = match settings::load().await {
        Ok(settings) => settings,
        Err(error) => return error.into_reply(),
    };
    let postgres = Check::run(postgres_ready(&settings.database_url)).await;
    let redis = Check::run(redis_ready(&settings.redis_url)).await;
    let dependencies = json!({"postgres": postgres.report(), "redis": redis.report()});
    if let Err(error) = postgres.outcome {
        return error.with_detail("dependencies", dependencies).into_reply();
    }
    let (status, redis) = if redis.outcome.is_ok() { ("ready", "ok") } else { ("degraded", "unavailable") };
    json_reply(
        StatusCode::OK,
        &json!({"status": status, "postgres": "ok", "redis": redis, "dependencies": dependencies}),
    )
}

/// One dependency's check: whether it answered, and how long the round trip took (connecting
/// included, as every request pays it).
struct Check {
    outcome: Result<(), ApiError>,
    elapsed: Duration,
}

impl Check {
    async fn run(check: impl Future<Output = Result<(), ApiError>>) -> Self {
        let started = Instant::now();
        let outcome = check.await;
        Self { outcome, elapsed: started.elapsed() }
    }

    fn report(&self) -> serde_json::Value {
        let state = if self.outcome.is_ok() { "ok" } else { "unavailable" };
        let rtt_ms = (self.elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0;
        json!({"state": state, "rtt_ms": rtt_ms})
    }
}

async fn postgres_ready(url: &str) -> Result<(), ApiError> {
    let database = shared::db::connect(url).await?;
    shared::db::optional_row(&database, "SELECT 1 AS ready", vec![]).await.map_err(shared::db::failure)?;
    Ok(())
}

async fn redis_ready(url: &str) -> Result<(), ApiError> {
    let connection = shared::redis::connect(url).await?;
    connection.execute("PING", []).await.map_err(shared::redis::failure)?;
    Ok(())
}
