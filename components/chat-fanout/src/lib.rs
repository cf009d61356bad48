//! The `chat-fanout` component: a Redis trigger on the chat events channel. Each message is one
//! [`shared::grip::Event`] published by `chat` after a commit; this forwards it to Pushpin, which
//! delivers it to every WebSocket subscribed to its channel, on every Pushpin node.
//!
//! Every replica of the app receives every Redis message. That is harmless: events carry a
//! Pushpin item id, so a second publish of the same event is not delivered twice.
use std::time::Instant;

use anyhow::Context;
use serde_json::json;
use shared::grip::Event;
use shared::request_log::{self, LogLevel};

mod settings;

#[spin_sdk::redis_subscriber]
async fn on_message(message: bytes::Bytes) -> anyhow::Result<()> {
    request_log::load_level().await;
    let started = Instant::now();
    let event: Event = serde_json::from_slice(&message).context("chat event is not valid JSON")?;
    let settings = settings::load().await.map_err(|_| anyhow::anyhow!("unusable settings (cause logged above)"))?;
    let outcome = shared::grip::publish(&settings.grip_publish_url, &event).await;
    log_delivery(&event, outcome.as_ref().err(), started.elapsed());
    outcome.map_err(anyhow::Error::msg)
}

/// One line per event, carrying the id of the request that caused it.
fn log_delivery(event: &Event, error: Option<&String>, elapsed: std::time::Duration) {
    let level = if error.is_some() { LogLevel::Warn } else { LogLevel::Info };
    let mut fields = vec![
        ("component", json!("chat-fanout")),
        ("channel", json!(event.channel)),
        ("outcome", json!(if error.is_some() { "publish_failed" } else { "published" })),
        ("duration_ms", json!(elapsed.as_secs_f64() * 1000.0)),
    ];
    fields.extend(event.request_id.as_ref().map(|id| ("request_id", json!(id))));
    fields.extend(error.map(|error| ("message", json!(error))));
    request_log::event(level, &fields);
}
