//! Output quality: which calls are judged ([`sampler`]).
//!
//! Pure: no I/O, no async. Built once from configuration and then only read.

pub mod sampler;

pub use sampler::{Decision, Rule, Sampler, SamplingConfig, SamplingConfigError};
