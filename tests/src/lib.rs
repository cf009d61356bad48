//! Everything the integration suite (`tests/suite`) uses that is not itself a test.
pub mod app;
pub mod contract;
pub mod ledger;
pub mod locks;
pub mod metrics;
pub mod processes;
pub mod secrets_seen;
pub mod tokens;
pub mod wait;
