//! The integration test suite: one test binary, one module per area.

mod auth;
mod chat;
mod fintech;
mod host;
mod ledger_invariants;
mod support;
