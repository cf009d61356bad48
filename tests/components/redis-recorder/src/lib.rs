//! Appends every message it receives to the Redis list named by the `record_key` variable, so a
//! test can check exactly what arrived and in which order.

// A conformance component exercises the host's variables interface itself, not an app's settings.
#![allow(clippy::disallowed_methods)]

use spin_sdk::redis::{Connection, RedisParameter};
use spin_sdk::variables;

#[spin_sdk::redis_subscriber]
async fn on_message(message: bytes::Bytes) -> anyhow::Result<()> {
    let address = variables::get("redis_url").await?;
    let record_key = variables::get("record_key").await?;
    let connection = Connection::open(&address).await?;
    connection
        .execute("RPUSH", [RedisParameter::Binary(record_key.into_bytes()), RedisParameter::Binary(message.to_vec())])
        .await?;
    Ok(())
}
