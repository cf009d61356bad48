//! Sending realtime events towards Pushpin after the change they describe has committed, from any
//! component: through Redis and the `chat-fanout` trigger, or straight to every Pushpin node.
//!
//! Publishing never fails a request: the change is already stored, and a client that misses an
//! event (Redis or Pushpin down, a dropped connection) catches up with `?after=`; a missed close is
//! made up for by the sockets' keep-alive re-check.
use crate::ApiError;
use crate::config::VariableSource;
use crate::grip::{Event, PublishEndpoints};

/// How events reach Pushpin (`chat_publish_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishMode {
    /// Through Redis and the `chat-fanout` trigger.
    Redis,
    /// Straight to Pushpin's publish endpoint, for platforms without a Redis trigger.
    Direct,
}

pub struct Publisher {
    pub mode: PublishMode,
    redis_url: String,
    /// The Redis channel `chat-fanout` listens on (`chat_events_channel`).
    events_channel: String,
    /// Every Pushpin node, for `direct` publishing (`grip_publish_urls`).
    endpoints: PublishEndpoints,
}

impl Publisher {
    /// Reads the publishing variables; a component that publishes is given them in spin.toml
    /// (its settings-loader test checks that).
    pub async fn read(variables: &impl VariableSource) -> Result<Self, ApiError> {
        let mode = match variables.text("chat_publish_mode").await?.as_str() {
            "redis" => PublishMode::Redis,
            "direct" => PublishMode::Direct,
            other => {
                return Err(ApiError::internal(format!("chat_publish_mode {other:?} is neither redis nor direct")));
            }
        };
        Ok(Self {
            mode,
            redis_url: variables.text("redis_url").await?,
            events_channel: variables.text("chat_events_channel").await?,
            endpoints: PublishEndpoints::parse(&variables.text("grip_publish_urls").await?)
                .map_err(ApiError::internal)?,
        })
    }

    /// Sends `event` towards Pushpin, tagged with the current request's id; a failure is logged.
    pub async fn publish(&self, mut event: Event) {
        event.request_id = crate::request_log::current_request_id();
        let outcome = match self.mode {
            PublishMode::Redis => self.publish_to_redis(&event).await,
            PublishMode::Direct => self.endpoints.publish(&event).await,
        };
        if let Err(error) = outcome {
            crate::request_log::warn(format_args!("event for {} not published: {error}", event.channel));
        }
    }

    async fn publish_to_redis(&self, event: &Event) -> Result<(), String> {
        let payload = serde_json::to_vec(event).map_err(|error| error.to_string())?;
        let connection = spin_sdk::redis::Connection::open(&self.redis_url)
            .await
            .map_err(|error| format!("connecting to Redis: {error:?}"))?;
        connection
            .publish(&self.events_channel, &payload)
            .await
            .map_err(|error| format!("publishing to Redis: {error:?}"))
    }
}
