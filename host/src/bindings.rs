//! Rust bindings for the Spin interfaces the host implements and the Redis trigger it calls,
//! generated from the WIT files in `host/wit`.

wasmtime::component::bindgen!({
    path: "wit",
    world: "spin-imports",
    // Every import is async on the host side: each one waits on a database or Redis.
    // A constructor that cannot store its resource traps, as Spin's does (never a host panic).
    imports: { default: async, "spin:postgres/postgres@4.2.0.[constructor]connection-builder": async | trappable },
    with: {
        "spin:postgres/postgres@4.2.0.connection": crate::postgres::resources::PostgresConnection,
        "spin:postgres/postgres@4.2.0.connection-builder": crate::postgres::resources::PostgresConnectionBuilder,
        "spin:redis/redis@3.0.0.connection": crate::redis_connections::RedisConnection,
    },
});

pub mod redis_trigger {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "redis-trigger",
        exports: { default: async },
    });
}

pub use spin::postgres::postgres as postgres_wit;
pub use spin::redis::redis as redis_wit;
pub use spin::variables::variables as variables_wit;
