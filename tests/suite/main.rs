//! The integration test suite: one test binary, one module per area. Helpers live in the
//! `sendinchat_tests` library (tests/src); see tests/README.md.

mod auth;
mod chat;
mod deployment;
mod docs;
mod fintech;
mod health;
mod host;
mod manifest;
mod message_changes;
mod observability;
mod operations;
mod refunds;
mod security;
mod splits;
mod statements;
mod topology;
mod web;
