pub mod app;
pub mod host;
