//! The llmwatch binary's pieces: configuration, the `serve`, `replay`, `simulate`, `drift`, `spc` and
//! `report` commands.

pub mod canaries;
pub mod config;
pub mod drift_cli;
pub mod embeddings;
pub mod judging;
pub mod pricing;
pub mod replay;
pub mod report;
pub mod serve;
pub mod simulate;
