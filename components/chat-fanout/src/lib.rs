//! The `chat-fanout` component: a Redis trigger on the chat events channel. Each message is one
//! [`shared::grip::Event`] published by `chat` after a commit; this forwards it to every Pushpin
//! node (`grip_publish_urls`), and each node delivers it to its clients subscribed to the channel
//! (WebSockets and Server-Sent Events streams).
//!
//! Every replica of the app receives every Redis message. That is harmless: events carry a
//! Pushpin item id, so a second publish of the same event is not delivered twice.
use anyhow::Context;
use shared::grip::Event;

mod settings;

#[spin_sdk::redis_subscriber]
async fn on_message(message: bytes::Bytes) -> anyhow::Result<()> {
    let event: Event = serde_json::from_slice(&message).context("chat event is not valid JSON")?;
    let settings = settings::load().await.map_err(|_| anyhow::anyhow!("unusable settings (cause logged above)"))?;
    settings.publish_endpoints.publish(&event).await.map_err(anyhow::Error::msg)
}
