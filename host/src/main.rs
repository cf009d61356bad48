//! `sendinchat-host up`: runs the app's spin.toml locally the way `spin up` does.
//!
//! Start-up order: validate the manifest and variables, compile and link every component,
//! subscribe the Redis trigger, bind the HTTP listener and start the HTTP serving threads, then
//! print `listening on ...` and `ready` on stdout. Any failure before `ready` exits non-zero
//! with the reason.

mod app;
mod bindings;
mod cli;
mod coalescing_io;
mod compile_cache;
mod engine;
mod error_response;
mod fd_limit;
mod host_state;
mod http_server;
mod http_threads;
mod instance_pool;
mod logging;
mod manifest;
mod metrics;
mod network_policy;
mod outbound_http;
mod postgres;
mod redis_connections;
mod redis_outbound;
mod redis_trigger;
mod routing;
mod shutdown;
mod spin_headers;
mod template;
mod variables;
mod variables_interface;

use std::process::ExitCode;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::app::LoadedApp;
use crate::cli::{Command, UpOptions};
use crate::http_threads::HttpThreads;
use crate::shutdown::ShutdownSignal;

fn main() -> ExitCode {
    // Error texts handed to guests (as Spin builds them, from `anyhow` errors) must not carry
    // host backtraces, which RUST_BACKTRACE=1 would otherwise capture at ~0.5 s each. Panics
    // still honour RUST_BACKTRACE.
    // SAFETY: no other thread exists yet, so nothing can read the environment concurrently.
    unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    let command = match cli::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Help => {
            println!("{}", cli::USAGE);
            Ok(())
        }
        Command::Up(options) => up(options),
        Command::Compile(options) => app::compile_all(&options),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            logging::error(format_args!("{error:#}"));
            ExitCode::FAILURE
        }
    }
}

fn up(options: UpOptions) -> anyhow::Result<()> {
    logging::set_request_log_enabled(!options.quiet);
    match fd_limit::raise_to_hard_limit() {
        Ok(limit) => logging::info(format_args!("file descriptor limit: {limit}")),
        Err(error) => logging::warn(format_args!("cannot raise the file descriptor limit: {error}")),
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async {
        // Compiling is CPU work that must finish before anything is served; blocking here is
        // intended, but it belongs on a blocking thread, not an async worker.
        let loaded_options = options.clone();
        let app = tokio::task::spawn_blocking(move || app::load(&loaded_options)).await??;
        run(app, &options).await
    })
}

async fn run(mut app: LoadedApp, options: &UpOptions) -> anyhow::Result<()> {
    let shutdown = ShutdownSignal::listen()?;
    let mut subscribed = Vec::new();
    for server in std::mem::take(&mut app.redis_servers) {
        subscribed.push(server.subscribe().await?);
    }
    let listener = match &app.http {
        Some(_) => Some(
            TcpListener::bind(options.listen_address)
                .await
                .with_context(|| format!("cannot listen on {}", options.listen_address))?,
        ),
        None => None,
    };
    let metrics_listener = match options.metrics_listen {
        Some(address) => Some(metrics::bind(address).await?),
        None => None,
    };
    let mut http_threads = app.http.as_ref().map(HttpThreads::start).transpose()?;
    if let Some(listener) = metrics_listener {
        println!("metrics on http://{}/metrics", listener.local_addr()?);
        tokio::spawn(metrics::serve(listener, shutdown.clone()));
    }
    announce(&app, listener.as_ref(), &subscribed)?;
    let http = async {
        if let (Some(listener), Some(threads)) = (listener, http_threads.as_mut()) {
            threads.serve(listener, shutdown.clone(), options.shutdown_timeout).await;
        }
    };
    let redis = futures::future::join_all(
        subscribed.into_iter().map(|server| server.run(shutdown.clone(), options.shutdown_timeout)),
    );
    futures::join!(http, redis);
    // The serving threads stop only now: their runtimes drive connections of the shared pools,
    // which the Redis trigger may have been using until it stopped.
    drop(http_threads);
    logging::info("stopped");
    Ok(())
}

/// The machine-readable start-up lines on stdout: the bound address (useful with port 0), what
/// is served, then `ready`.
fn announce(
    app: &LoadedApp,
    listener: Option<&TcpListener>,
    subscribed: &[redis_trigger::SubscribedServer],
) -> anyhow::Result<()> {
    if let (Some(trigger), Some(listener)) = (&app.http, listener) {
        println!("listening on http://{}", listener.local_addr()?);
        for (route, component) in trigger.router.routes() {
            println!("route {route} -> {component}");
        }
    }
    for line in subscribed.iter().flat_map(|server| server.describe()) {
        println!("{line}");
    }
    println!("ready");
    Ok(())
}
