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

/// Takes one hit back from `KEYS[1]` if its window is still open. Never creates the key: a
/// `DECR` on a key that just expired would leave a counter without a lifetime.
const UNCOUNT: &str = "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('DECR', KEYS[1]) end return 0";

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
    let arguments = script_arguments(COUNT_IN_WINDOW, key, Some(window_seconds.into()));
    match connection.execute("EVAL", arguments).await?.as_slice() {
        [RedisResult::Int64(count), RedisResult::Int64(seconds_left)] => {
            Ok(Window { count: *count, seconds_left: *seconds_left })
        }
        other => Err(Error::Other(format!("unexpected reply to window script: {other:?}"))),
    }
}

/// Takes back one hit counted on `key` (one that turned out not to matter, like a login that
/// succeeded), unless its window has ended.
pub async fn uncount(connection: &Connection, key: &str) -> Result<(), Error> {
    connection.execute("EVAL", script_arguments(UNCOUNT, key, None)).await?;
    Ok(())
}

fn script_arguments(script: &str, key: &str, argument: Option<i64>) -> Vec<RedisParameter> {
    let mut arguments = vec![
        RedisParameter::Binary(script.as_bytes().to_vec()),
        RedisParameter::Int64(1),
        RedisParameter::Binary(key.as_bytes().to_vec()),
    ];
    arguments.extend(argument.map(RedisParameter::Int64));
    arguments
}
