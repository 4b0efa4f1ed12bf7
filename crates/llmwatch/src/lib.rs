//! The llmwatch binary's pieces: configuration, the `serve`, `replay` and `simulate` commands.

pub mod config;
pub mod pricing;
pub mod replay;
pub mod serve;
pub mod simulate;
