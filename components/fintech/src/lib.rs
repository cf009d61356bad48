//! The `fintech` component: everything under `/fintech`.
//!
//! | route                                   | handler                  |
//! |-----------------------------------------|--------------------------|
//! | `POST /fintech/transfer`                | [`transfer::transfer`]   |
//! | `POST /fintech/deposits` (operator)     | [`deposit::deposit`]     |
//! | `GET  /fintech/balance`                 | [`history::balance`]     |
//! | `GET  /fintech/transactions[/sent\|/received]` | [`history::list`] |
//! | `GET  /fintech/transactions/{id}`       | [`history::one`]         |
//! | `POST /fintech/transactions/{id}/refunds` | [`refund::refund`]     |
//! | `GET  /fintech/audit` (operator)        | [`audit::audit`]         |
//! | `GET  /fintech/statement`               | [`statement::statement`] (streamed) |
//!
//! The ledger's rules live in SQL (sql/0002_ledger.sql, sql/functions/20_ledger.sql); this component parses requests, checks
//! who is asking, and makes one database call per request.
mod audit;
mod deposit;
mod error;
mod history;
mod rate_limit;
mod refund;
mod settings;
mod statement;
mod transfer;

use http::Method;
use shared::streaming::{self, StreamingReply};
use shared::{ApiError, Reply};
use spin_sdk::http::Request;

use crate::error::FintechError;
use crate::history::Direction;

#[spin_sdk::http_service]
async fn handle(request: Request) -> StreamingReply {
    shared::request_log::serve("fintech", request, async |request| match route(request).await {
        Ok(reply) => reply,
        Err(error) => streaming::complete(ApiError::from(error).into_reply()),
    })
    .await
}

/// The statement is streamed; every other answer is complete.
async fn route(request: Request) -> Result<StreamingReply, FintechError> {
    let settings = settings::load().await?;
    if request.method() == Method::GET && request.uri().path().trim_end_matches('/') == "/fintech/statement" {
        return statement::statement(settings, request).await;
    }
    complete_route(settings, request).await.map(streaming::complete)
}

async fn complete_route(settings: &'static settings::Settings, request: Request) -> Result<Reply, FintechError> {
    let path = request.uri().path().trim_end_matches('/').to_owned();
    let segments: Vec<&str> = path.split('/').skip(2).collect();
    match (request.method().clone(), segments.as_slice()) {
        (Method::POST, ["transfer"]) => transfer::transfer(settings, request).await,
        (Method::POST, ["deposits"]) => deposit::deposit(settings, request).await,
        (Method::GET, ["balance"]) => history::balance(settings, request).await,
        (Method::GET, ["audit"]) => audit::audit(settings, request).await,
        (Method::GET, ["transactions"]) => history::list(settings, request, Direction::All).await,
        (Method::GET, ["transactions", "sent"]) => history::list(settings, request, Direction::Sent).await,
        (Method::GET, ["transactions", "received"]) => history::list(settings, request, Direction::Received).await,
        (Method::GET, ["transactions", id]) => history::one(settings, request, id).await,
        (Method::POST, ["transactions", id, "refunds"]) => refund::refund(settings, request, id).await,
        (_, ["transfer" | "deposits"] | ["transactions", _, "refunds"]) => {
            Err(ApiError::method_not_allowed("POST").into())
        }
        (_, ["balance" | "transactions" | "audit" | "statement"] | ["transactions", _]) => {
            Err(ApiError::method_not_allowed("GET").into())
        }
        _ => Err(ApiError::not_found("no such route").into()),
    }
}
