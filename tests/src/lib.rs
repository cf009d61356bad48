pub mod app;
pub mod contract;
pub mod host;
