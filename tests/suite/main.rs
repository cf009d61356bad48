//! The integration test suite: one test binary, one module per area.

mod auth;
mod chat;
mod deployment;
mod docs;
mod fintech;
mod foundation;
mod host;
mod ledger_invariants;
mod operations;
mod support;
mod web;
