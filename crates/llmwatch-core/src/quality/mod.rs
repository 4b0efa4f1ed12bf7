//! Output quality: which calls are judged ([`sampler`]), a fast safety pattern monitor on
//! captured content ([`safety`]), what a canary probe's answer must be ([`canary`]), and the
//! processor stage that records every evaluation ([`monitor`]).
//!
//! No I/O, no async: slow work (the judge, plugins) is handed to a [`QualitySink`] that never
//! waits, and its results come back as [`EvaluationRecord`]s.

pub mod canary;
pub mod feedback;
pub mod monitor;
pub mod pending;
pub mod recent;
pub mod review;
pub mod safety;
pub mod sampler;
pub mod sessions;
pub mod window;

pub use canary::{CanaryOutcome, Expectation, ExpectationConfig, ExpectationError, RunCheck};
pub use feedback::{
    CallBatch, Channel, Due, FeedbackConfig, FeedbackReceipt, HeldTurn, SessionConfig,
    SurvivorshipConfig, UserSignals, WaitingFeedback,
};
pub use monitor::{
    CallQuality, EvaluationRecord, EvaluationSource, QualityConfig, QualityConfigError,
    QualityMetrics, QualityMonitor, QualitySink, SampledCall,
};

pub use pending::{
    Commit, ContentText, Dropped, Joined, PendingConfig, PendingContent, Released, SpanRecord,
};
pub use review::{ReviewConfig, ReviewEntry, ReviewLog, ReviewScore};
pub use safety::{
    AppliesTo, Category, Flag, MatchCheck, SafetyConfig, SafetyConfigError, SafetyMonitor, Source,
};
pub use sampler::{Decision, Rule, SafetySampling, Sampler, SamplingConfig, SamplingConfigError};
