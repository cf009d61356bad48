//! `spin:redis/redis@3.0.0`: Redis commands for components.
//!
//! Unlike Spin, which opens a connection for every `open`, connections are multiplexed and
//! reused across requests and instances: one per address (`redis_connections`). Errors are
//! mapped to the WIT cases as Spin maps them.

use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, ConnectionAddr, FromRedisValue, RedisError, Value};
use wasmtime::component::{Accessor, HasData, Resource};

use crate::bindings::redis_wit::{self as wit, Error, Payload, RedisParameter, RedisResult};
use crate::host_state::InstanceState;
use crate::network_policy::AllowedHosts;
use crate::redis_connections::{LiveConnection, RedisConnection};

/// Largest reply the host buffers for a guest, as in Spin (128 MiB).
const MAX_BUFFERED_REPLY_BYTES: usize = 128 << 20;

/// Marker type through which the linker reaches the Redis state of an instance.
pub struct Redis;

impl HasData for Redis {
    type Data<'a> = &'a mut InstanceState;
}

impl wit::Host for InstanceState {}

impl wit::HostConnection for InstanceState {
    async fn drop(&mut self, connection: Resource<RedisConnection>) -> wasmtime::Result<()> {
        self.table().delete(connection)?;
        Ok(())
    }
}

impl wit::HostConnectionWithStore<InstanceState> for Redis {
    async fn open(
        accessor: &Accessor<InstanceState, Self>,
        address: String,
    ) -> Result<Resource<RedisConnection>, Error> {
        let (cached, component) = accessor.with(|mut access| {
            let state = access.get();
            (state.cached_redis_connection(&address), state.component().clone())
        });
        check_target(&component.allowed_hosts, &address)?;
        let live = match cached.filter(LiveConnection::is_alive) {
            Some(live) => live,
            None => component.services.redis.get_or_connect(&address).await.map_err(Error::Other)?,
        };
        accessor.with(|mut access| {
            let state = access.get();
            state.cache_redis_connection(&address, &live);
            let connection = RedisConnection::new(&live);
            state.table().push(connection).map_err(|_| Error::TooManyConnections)
        })
    }

    async fn publish(
        accessor: &Accessor<InstanceState, Self>,
        connection: Resource<RedisConnection>,
        channel: String,
        payload: Payload,
    ) -> Result<(), Error> {
        run(accessor, &connection, move |mut redis| async move { redis.publish(channel, payload).await }).await
    }

    async fn get(
        accessor: &Accessor<InstanceState, Self>,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> Result<Option<Payload>, Error> {
        let value: Option<Vec<u8>> =
            run(accessor, &connection, move |mut redis| async move { redis.get(key).await }).await?;
        // Counted as Spin counts it: the value's bytes and the Option holding them.
        if std::mem::size_of::<Option<Vec<u8>>>() + value.as_ref().map_or(0, Vec::len) > MAX_BUFFERED_REPLY_BYTES {
            return Err(reply_too_large());
        }
        Ok(value)
    }

    async fn set(
        accessor: &Accessor<InstanceState, Self>,
        connection: Resource<RedisConnection>,
        key: String,
        value: Payload,
    ) -> Result<(), Error> {
        run(accessor, &connection, move |mut redis| async move { redis.set(key, value).await }).await
    }

    async fn incr(
        accessor: &Accessor<InstanceState, Self>,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> Result<i64, Error> {
        run(accessor, &connection, move |mut redis| async move { redis.incr(key, 1).await }).await
    }

    async fn del(
        accessor: &Accessor<InstanceState, Self>,
        connection: Resource<RedisConnection>,
        keys: Vec<String>,
    ) -> Result<u32, Error> {
        run(accessor, &connection, move |mut redis| async move { redis.del(keys).await }).await
    }

    async fn sadd(
        accessor: &Accessor<InstanceState, Self>,
        connection: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> Result<u32, Error> {
        let result =
            run_raw(accessor, &connection, move |mut redis| async move { redis.sadd(key, values).await }).await;
        // Of all the commands, Spin reports a wrong-type failure as `type-error` only for SADD.
        result.map_err(|error| match error.kind() {
            redis::ErrorKind::TypeError => Error::TypeError,
            _ => other(error),
        })
    }

    async fn smembers(
        accessor: &Accessor<InstanceState, Self>,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> Result<Vec<String>, Error> {
        run(accessor, &connection, move |mut redis| async move { redis.smembers(key).await }).await
    }

    async fn srem(
        accessor: &Accessor<InstanceState, Self>,
        connection: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> Result<u32, Error> {
        run(accessor, &connection, move |mut redis| async move { redis.srem(key, values).await }).await
    }

    async fn execute(
        accessor: &Accessor<InstanceState, Self>,
        connection: Resource<RedisConnection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> Result<Vec<RedisResult>, Error> {
        if changes_or_blocks_its_connection(&command, &arguments) {
            return Err(Error::Other(format!(
                "{command} is not supported by this local host: it changes or blocks the connection, which the host \
                 shares between requests (Spin opens one per `open`)"
            )));
        }
        let mut command = redis::cmd(&command);
        for argument in arguments {
            match argument {
                RedisParameter::Int64(value) => command.arg(value),
                RedisParameter::Binary(value) => command.arg(value),
            };
        }
        let FlatResults(results) =
            run(accessor, &connection, move |mut redis| async move { command.query_async(&mut redis).await }).await?;
        // Counted as Spin counts it: each result and the list holding them.
        let bytes = std::mem::size_of::<Vec<RedisResult>>() + results.iter().map(memory_size).sum::<usize>();
        if bytes > MAX_BUFFERED_REPLY_BYTES {
            return Err(reply_too_large());
        }
        Ok(results)
    }
}

/// Commands that change the state of the connection they run on (its database, protocol, replies,
/// a transaction, subscriptions) or block it until something happens. Spin gives each `open` a
/// connection of its own; here one is shared by every request that names the address, so their
/// effects would carry over to other requests, or stall them: they are refused instead.
const CONNECTION_COMMANDS: &[&str] = &[
    "SELECT",
    "AUTH",
    "HELLO",
    "CLIENT",
    "RESET",
    "QUIT",
    "MULTI",
    "EXEC",
    "DISCARD",
    "WATCH",
    "UNWATCH",
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "SSUBSCRIBE",
    "UNSUBSCRIBE",
    "PUNSUBSCRIBE",
    "SUNSUBSCRIBE",
    "MONITOR",
    "READONLY",
    "READWRITE",
    "ASKING",
    "BLPOP",
    "BRPOP",
    "BRPOPLPUSH",
    "BLMOVE",
    "BLMPOP",
    "BZPOPMIN",
    "BZPOPMAX",
    "BZMPOP",
    "WAIT",
    "WAITAOF",
    "SYNC",
    "PSYNC",
    "REPLCONF",
];

/// Whether `command` is one of [`CONNECTION_COMMANDS`], or a stream read that blocks (a `BLOCK`
/// option, before `STREAMS`: what follows are keys and ids).
fn changes_or_blocks_its_connection(command: &str, arguments: &[RedisParameter]) -> bool {
    let name = command.split_whitespace().next().unwrap_or_default();
    let is = |candidate: &&str| candidate.eq_ignore_ascii_case(name);
    let word = |argument: &RedisParameter, expected: &[u8]| matches!(argument, RedisParameter::Binary(word) if word.eq_ignore_ascii_case(expected));
    let blocks =
        || arguments.iter().take_while(|argument| !word(argument, b"STREAMS")).any(|argument| word(argument, b"BLOCK"));
    CONNECTION_COMMANDS.iter().any(is) || (["XREAD", "XREADGROUP"].iter().any(is) && blocks())
}

/// Runs one command on the guest's connection, mapping failures as Spin does.
async fn run<R, F>(
    accessor: &Accessor<InstanceState, Redis>,
    connection: &Resource<RedisConnection>,
    command: impl FnOnce(MultiplexedConnection) -> F,
) -> Result<R, Error>
where
    F: Future<Output = redis::RedisResult<R>> + Send,
{
    run_raw(accessor, connection, command).await.map_err(other)
}

/// Runs one command on the guest's connection.
async fn run_raw<R, F>(
    accessor: &Accessor<InstanceState, Redis>,
    connection: &Resource<RedisConnection>,
    command: impl FnOnce(MultiplexedConnection) -> F,
) -> redis::RedisResult<R>
where
    F: Future<Output = redis::RedisResult<R>> + Send,
{
    let redis = accessor
        .with(|mut access| {
            let state = access.get();
            state.table().get(connection).map(|c| c.connection.clone())
        })
        .map_err(|_| RedisError::from((redis::ErrorKind::ClientError, "no such connection")))?;
    command(redis).await
}

/// Checks the server `address` names, as the Redis client parses it (the host and port it will
/// dial), against the component's `allowed_outbound_hosts`, under the address's own scheme.
fn check_target(allowed_hosts: &AllowedHosts, address: &str) -> Result<(), Error> {
    // As in Spin: an address the client cannot parse is `invalid-address`.
    let client = redis::Client::open(address).map_err(|_| Error::InvalidAddress)?;
    let ConnectionAddr::Tcp(host, port) = &client.get_connection_info().addr else {
        return Err(Error::Other("only redis:// (plain TCP) is supported by this local host".to_owned()));
    };
    let scheme = address.split_once("://").map_or("redis", |(scheme, _)| scheme);
    if allowed_hosts.allows(scheme, host, Some(*port)) { Ok(()) } else { Err(Error::InvalidAddress) }
}

fn other(error: impl std::fmt::Display) -> Error {
    Error::Other(error.to_string())
}

fn reply_too_large() -> Error {
    Error::Other(format!("query result exceeds limit of {MAX_BUFFERED_REPLY_BYTES} bytes"))
}

fn memory_size(result: &RedisResult) -> usize {
    std::mem::size_of::<RedisResult>()
        + match result {
            RedisResult::Binary(bytes) => bytes.len(),
            RedisResult::Status(status) => status.len(),
            RedisResult::Nil | RedisResult::Int64(_) => 0,
        }
}

/// A reply of `execute`, flattened into WIT results as Spin flattens it: arrays and sets are
/// spliced in, doubles and big numbers become text, booleans 0/1; maps and other RESP3 shapes
/// are refused.
struct FlatResults(Vec<RedisResult>);

impl FromRedisValue for FlatResults {
    fn from_redis_value(value: &Value) -> redis::RedisResult<Self> {
        let mut results = Vec::new();
        flatten(value, &mut results)?;
        Ok(Self(results))
    }
}

fn flatten(value: &Value, results: &mut Vec<RedisResult>) -> redis::RedisResult<()> {
    let unsupported = |what: &str| {
        Err(RedisError::from((
            redis::ErrorKind::TypeError,
            "Could not convert Redis response",
            format!("Redis {what} is not supported"),
        )))
    };
    match value {
        Value::Nil => results.push(RedisResult::Nil),
        Value::Int(number) => results.push(RedisResult::Int64(*number)),
        Value::BulkString(bytes) => results.push(RedisResult::Binary(bytes.clone())),
        Value::SimpleString(status) => results.push(RedisResult::Status(status.clone())),
        Value::Okay => results.push(RedisResult::Status("OK".to_owned())),
        Value::Array(values) | Value::Set(values) => {
            return values.iter().try_for_each(|value| flatten(value, results));
        }
        Value::Double(number) => results.push(RedisResult::Binary(number.to_string().into_bytes())),
        Value::Boolean(flag) => results.push(RedisResult::Int64(i64::from(*flag))),
        Value::BigNumber(number) => results.push(RedisResult::Binary(number.to_string().into_bytes())),
        Value::Map(_) => return unsupported("Map type"),
        Value::Attribute { .. } => return unsupported("Attribute type"),
        Value::VerbatimString { .. } => return unsupported("string with format attribute"),
        Value::Push { .. } => return unsupported("Pub/Sub types"),
        Value::ServerError(error) => {
            return Err(RedisError::from((redis::ErrorKind::ResponseError, "Server error", format!("{error:?}"))));
        }
    }
    Ok(())
}
