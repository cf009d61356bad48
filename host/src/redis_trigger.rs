//! The Redis trigger: subscribes to the manifest's channels and delivers each message to a
//! fresh instance of the subscribed component.
//!
//! Messages of one channel are handled one at a time, in the order Redis delivered them;
//! different channels proceed independently. Unlike Spin, which ends `spin up` when the Redis
//! connection drops, a lost connection is logged and re-established with capped exponential
//! backoff, then every channel is subscribed again. Messages published while disconnected are
//! lost, as pub/sub always loses them for an absent subscriber.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use redis::aio::PubSub;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use wasmtime::Engine;

use crate::bindings::redis_trigger::RedisTriggerPre;
use crate::engine;
use crate::host_state::{ComponentContext, InstanceState};
use crate::logging;
use crate::metrics::{self, ComponentLabels, RedisMessageLabels, ServerLabels};
use crate::shutdown::ShutdownSignal;

/// First wait before reconnecting; doubled after each failed attempt up to the cap.
const RECONNECT_DELAY_INITIAL: Duration = Duration::from_millis(100);
const RECONNECT_DELAY_MAX: Duration = Duration::from_secs(5);

/// Messages of one channel waiting for their handler; past this, reading from Redis pauses
/// (and Redis buffers) until the handler catches up.
const CHANNEL_QUEUE_CAPACITY: usize = 10_000;

/// A component subscribed to a channel, ready to be instantiated for each message.
#[derive(Clone)]
pub struct RedisHandler {
    pub engine: Engine,
    pub pre: RedisTriggerPre<InstanceState>,
    pub component: Arc<ComponentContext>,
    pub timeout: Duration,
}

/// Everything subscribed on one Redis server: channel → handlers.
pub struct RedisServer {
    pub address: String,
    pub channels: HashMap<String, Vec<RedisHandler>>,
}

/// A server whose first connection and subscriptions succeeded.
pub struct SubscribedServer {
    server: RedisServer,
    client: redis::Client,
    pubsub: PubSub,
}

impl RedisServer {
    /// Connects and subscribes; failing here fails `up`, as in Spin.
    pub async fn subscribe(self) -> anyhow::Result<SubscribedServer> {
        let client = redis::Client::open(self.address.as_str())
            .with_context(|| format!("invalid Redis trigger address {:?}", display_address(&self.address)))?;
        let pubsub = subscribe_all(&client, self.channels.keys())
            .await
            .with_context(|| format!("Redis trigger cannot subscribe on {}", client.get_connection_info().addr))?;
        Ok(SubscribedServer { server: self, client, pubsub })
    }
}

async fn subscribe_all(client: &redis::Client, channels: impl Iterator<Item = &String>) -> redis::RedisResult<PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    for channel in channels {
        pubsub.subscribe(channel).await?;
    }
    Ok(pubsub)
}

impl SubscribedServer {
    pub fn describe(&self) -> Vec<String> {
        let address = self.client.get_connection_info().addr.to_string();
        self.server
            .channels
            .iter()
            .map(|(channel, handlers)| {
                let components: Vec<&str> = handlers.iter().map(|h| h.component.id.as_str()).collect();
                format!("redis {address} channel {channel} -> {}", components.join(","))
            })
            .collect()
    }

    /// Delivers messages until shutdown, reconnecting whenever the connection is lost; then
    /// lets each channel finish the message it is handling, for at most `shutdown_timeout`.
    pub async fn run(self, shutdown: ShutdownSignal, shutdown_timeout: Duration) {
        let address = self.client.get_connection_info().addr.to_string();
        // The series exists at 0 from the start, so a dashboard or an alert on its increase
        // sees the first reconnect.
        drop(metrics::get().redis_reconnects.get_or_create(&ServerLabels { server: address.clone() }));
        let mut workers = JoinSet::new();
        let queues: HashMap<String, mpsc::Sender<Vec<u8>>> = self
            .server
            .channels
            .into_iter()
            .map(|(channel, handlers)| {
                let (sender, receiver) = mpsc::channel(CHANNEL_QUEUE_CAPACITY);
                workers.spawn(handle_channel(channel.clone(), handlers, receiver));
                (channel, sender)
            })
            .collect();
        let mut pubsub = Some(self.pubsub);
        loop {
            let connection = match pubsub.take() {
                Some(connection) => connection,
                None => tokio::select! {
                    connection = reconnect(&self.client, queues.keys(), &address) => connection,
                    () = shutdown.requested() => break,
                },
            };
            tokio::select! {
                () = forward_messages(connection, &queues) => {
                    logging::warn(format_args!("Redis trigger lost its connection to {address}; reconnecting"));
                }
                () = shutdown.requested() => break,
            }
        }
        drop(queues);
        if tokio::time::timeout(shutdown_timeout, workers.join_all()).await.is_err() {
            logging::warn("Redis trigger: handlers still running at shutdown; stopping anyway");
        }
    }
}

/// Reads messages until the connection ends, queueing each for its channel's worker.
async fn forward_messages(pubsub: PubSub, queues: &HashMap<String, mpsc::Sender<Vec<u8>>>) {
    let mut messages = pubsub.into_on_message();
    while let Some(message) = messages.next().await {
        if let Some(queue) = queues.get(message.get_channel_name()) {
            // Only fails when the worker is gone, i.e. during shutdown.
            let _ = queue.send(message.get_payload_bytes().to_vec()).await;
        }
    }
}

/// Retries with capped exponential backoff until connected and subscribed again.
async fn reconnect<'a>(
    client: &redis::Client,
    channels: impl Iterator<Item = &'a String> + Clone,
    address: &str,
) -> PubSub {
    let mut delay = RECONNECT_DELAY_INITIAL;
    loop {
        tokio::time::sleep(delay).await;
        match subscribe_all(client, channels.clone()).await {
            Ok(pubsub) => {
                logging::info(format_args!("Redis trigger reconnected to {address} and subscribed again"));
                metrics::get().redis_reconnects.get_or_create(&ServerLabels { server: address.to_owned() }).inc();
                return pubsub;
            }
            Err(error) => {
                logging::warn(format_args!(
                    "Redis trigger cannot reconnect to {address}: {error}; retrying in {}ms",
                    delay.as_millis()
                ));
                delay = (delay * 2).min(RECONNECT_DELAY_MAX);
            }
        }
    }
}

/// Handles one channel's messages in order; each message goes to every subscribed component
/// at once, as Spin dispatches it.
async fn handle_channel(channel: String, handlers: Vec<RedisHandler>, mut messages: mpsc::Receiver<Vec<u8>>) {
    while let Some(payload) = messages.recv().await {
        let deliveries = handlers.iter().map(|handler| deliver(&channel, handler, payload.clone()));
        futures::future::join_all(deliveries).await;
    }
}

async fn deliver(channel: &str, handler: &RedisHandler, payload: Vec<u8>) {
    let started = Instant::now();
    let outcome = match tokio::time::timeout(handler.timeout, call_handler(handler, payload)).await {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(error)) => {
            logging::warn(format_args!(
                "component {:?} failed to handle a message on {channel:?}: {error:#}",
                handler.component.id
            ));
            "error".to_owned()
        }
        Err(_) => "timeout".to_owned(),
    };
    logging::redis_message(channel, &handler.component.id, &outcome, started.elapsed());
    record_message(channel, &handler.component.id, outcome, started.elapsed());
}

fn record_message(channel: &str, component: &str, outcome: String, duration: Duration) {
    let metrics = metrics::get();
    let labels = RedisMessageLabels { component: component.to_owned(), channel: channel.to_owned(), outcome };
    metrics.redis_messages.get_or_create(&labels).inc();
    let component = ComponentLabels { component: labels.component };
    metrics::observe(&metrics.redis_message_duration.get_or_create(&component), duration);
}

/// Runs the component's `handle-message` in a fresh instance, dropped afterwards.
async fn call_handler(handler: &RedisHandler, payload: Vec<u8>) -> anyhow::Result<()> {
    let mut store = engine::new_store(&handler.engine, handler.component.clone());
    let instance = handler.pre.instantiate_async(&mut store).await?;
    let result = store
        .run_concurrent(async |accessor| {
            instance.spin_redis_inbound_redis().call_handle_message(accessor, payload).await
        })
        .await??;
    result.map_err(|error| anyhow::anyhow!("handler returned an error: {error:?}"))
}

/// The address without its password, for messages.
fn display_address(address: &str) -> String {
    match url::Url::parse(address) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => address.to_owned(),
    }
}
