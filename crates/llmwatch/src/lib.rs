//! The llmwatch binary's pieces: configuration, the `serve`, `replay`, `simulate`, `drift` and `spc`
//! commands.

pub mod config;
pub mod drift_cli;
pub mod pricing;
pub mod replay;
pub mod serve;
pub mod simulate;
