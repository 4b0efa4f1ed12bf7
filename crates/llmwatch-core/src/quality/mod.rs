//! Output quality: which calls are judged ([`sampler`]) and a fast safety pattern monitor on
//! captured content ([`safety`]).
//!
//! Pure: no I/O, no async. Both are built once from their configuration and then only read.

pub mod safety;
pub mod sampler;

pub use safety::{
    AppliesTo, Category, Flag, MatchCheck, SafetyConfig, SafetyConfigError, SafetyMonitor, Source,
};
pub use sampler::{Decision, Rule, Sampler, SamplingConfig, SamplingConfigError};
