//! `/probe/redis/...`: every `spin:redis@3.0.0` function, and publishing bursts for the trigger
//! tests.

use http::StatusCode;
use serde_json::{Value, json};
use spin_sdk::redis::{Connection, Error, RedisParameter, RedisResult};
use spin_sdk::variables;

use crate::Reply;

pub async fn handle(path: &[&str]) -> Reply {
    let result = match path {
        ["commands", prefix] => commands(prefix).await,
        ["publish", channel, count] => publish(channel, count).await,
        ["undeclared"] => undeclared().await,
        ["execute", command, arguments @ ..] => execute(command, arguments).await,
        _ => {
            return (StatusCode::NOT_FOUND, json!({ "error": "unknown redis probe" }));
        }
    };
    match result {
        Ok(value) => (StatusCode::OK, value),
        Err(error) => (StatusCode::OK, json!({ "error": format!("{error:?}") })),
    }
}

async fn connect() -> Result<Connection, Error> {
    let address = variables::get("redis_url").await.map_err(|e| Error::Other(format!("{e:?}")))?;
    Connection::open(address).await
}

/// Runs each command on keys under `prefix` and reports every result.
async fn commands(prefix: &str) -> Result<Value, Error> {
    let redis = connect().await?;
    let (key, counter, set) = (format!("{prefix}:key"), format!("{prefix}:counter"), format!("{prefix}:set"));
    redis.set(&key, b"value").await?;
    let got = redis.get(&key).await?.map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    let missing = redis.get(format!("{prefix}:missing")).await?;
    let incremented = [redis.incr(&counter).await?, redis.incr(&counter).await?];
    let incr_not_a_number = redis.incr(&key).await.err().map(|error| format!("{error:?}"));
    let added = redis.sadd(&set, ["a", "b", "c"]).await?;
    let mut members = redis.smembers(&set).await?;
    members.sort();
    let removed = redis.srem(&set, ["a", "z"]).await?;
    let sadd_wrong_type = redis.sadd(&key, ["x"]).await.err().map(|error| format!("{error:?}"));
    let executed = redis
        .execute("MSET", [binary(&format!("{prefix}:m1")), binary("1"), binary(&format!("{prefix}:m2")), binary("2")])
        .await?;
    let fetched = redis.execute("MGET", [binary(&format!("{prefix}:m1")), binary(&format!("{prefix}:absent"))]).await?;
    let appended = redis.execute("APPEND", [binary(&key), RedisParameter::Int64(7)]).await?;
    let deleted = redis.del([&key, &counter, &set, &format!("{prefix}:m1"), &format!("{prefix}:m2")]).await?;
    Ok(json!({
        "get": got,
        "get_missing": missing,
        "incr": incremented,
        "incr_not_a_number": incr_not_a_number,
        "sadd": added,
        "smembers": members,
        "srem": removed,
        "sadd_wrong_type": sadd_wrong_type,
        "execute_mset": describe(&executed),
        "execute_mget": describe(&fetched),
        "execute_append": describe(&appended),
        "del": deleted,
    }))
}

fn binary(text: &str) -> RedisParameter {
    RedisParameter::Binary(text.as_bytes().to_vec())
}

fn describe(results: &[RedisResult]) -> Vec<String> {
    results
        .iter()
        .map(|result| match result {
            RedisResult::Nil => "nil".to_owned(),
            RedisResult::Status(status) => format!("status:{status}"),
            RedisResult::Int64(number) => format!("int64:{number}"),
            RedisResult::Binary(bytes) => format!("binary:{}", String::from_utf8_lossy(bytes)),
        })
        .collect()
}

/// Publishes `count` messages `0`, `1`, ... on `channel` through one connection.
async fn publish(channel: &str, count: &str) -> Result<Value, Error> {
    let count: u32 = count.parse().unwrap_or(0);
    let redis = connect().await?;
    for number in 0..count {
        redis.publish(channel, number.to_string()).await?;
    }
    Ok(json!({ "published": count }))
}

async fn undeclared() -> Result<Value, Error> {
    Connection::open("redis://127.0.0.2:6379").await?;
    Ok(json!({ "connected": true }))
}

/// Runs one command with the given arguments (as binary) and describes its result.
async fn execute(command: &str, arguments: &[&str]) -> Result<Value, Error> {
    let redis = connect().await?;
    let arguments: Vec<RedisParameter> = arguments.iter().map(|argument| binary(argument)).collect();
    let results = redis.execute(command, arguments).await?;
    Ok(json!({ "results": describe(&results) }))
}
