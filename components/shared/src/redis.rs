//! Redis through Spin's outbound interface: connections and fixed-window counters.
use spin_sdk::redis::{Connection, Error, RedisParameter, RedisResult};

use crate::ApiError;

/// Increments `KEYS[1]`, giving it a lifetime of `ARGV[1]` seconds when it is new (or somehow has
/// none), and returns the count and the seconds left. One script, so no crash between the
/// increment and the expiry can leave a counter that never expires.
const COUNT_IN_WINDOW: &str = "local n = redis.call('INCR', KEYS[1]) \
    local ttl = redis.call('TTL', KEYS[1]) \
    if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) ttl = tonumber(ARGV[1]) end \
    return {n, ttl}";

/// Returns the current count of `KEYS[1]` and its seconds left, without counting.
const PEEK_WINDOW: &str = "local n = tonumber(redis.call('GET', KEYS[1]) or '0') \
    return {n, redis.call('TTL', KEYS[1])}";

/// A counter's state: how many hits in the current window, and when the window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub count: i64,
    pub seconds_left: i64,
}

pub async fn connect(url: &str) -> Result<Connection, ApiError> {
    Connection::open(url).await.map_err(failure)
}

/// Redis is unreachable or refused: a retryable 503.
pub fn failure(error: Error) -> ApiError {
    ApiError::unavailable("redis", format!("{error:?}"))
}

/// Counts one hit on `key` in a window of `window_seconds` that starts at the first hit.
pub async fn count_in_window(connection: &Connection, key: &str, window_seconds: u32) -> Result<Window, Error> {
    run_window_script(connection, COUNT_IN_WINDOW, key, Some(window_seconds)).await
}

/// The current state of `key`'s window, without counting a hit.
pub async fn peek_window(connection: &Connection, key: &str) -> Result<Window, Error> {
    run_window_script(connection, PEEK_WINDOW, key, None).await
}

async fn run_window_script(
    connection: &Connection,
    script: &str,
    key: &str,
    window_seconds: Option<u32>,
) -> Result<Window, Error> {
    let mut arguments = vec![
        RedisParameter::Binary(script.as_bytes().to_vec()),
        RedisParameter::Int64(1),
        RedisParameter::Binary(key.as_bytes().to_vec()),
    ];
    arguments.extend(window_seconds.map(|seconds| RedisParameter::Int64(seconds.into())));
    match connection.execute("EVAL", arguments).await?.as_slice() {
        [RedisResult::Int64(count), RedisResult::Int64(seconds_left)] => {
            Ok(Window { count: *count, seconds_left: *seconds_left })
        }
        other => Err(Error::Other(format!("unexpected reply to window script: {other:?}"))),
    }
}
