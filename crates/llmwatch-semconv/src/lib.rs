//! Normalization of OpenTelemetry GenAI telemetry into typed records.
//!
//! Every major emitter and every version of the GenAI semantic conventions says the same things
//! with different attribute names, token accounting and units. This crate turns
//! (resource, scope, span) into an [`LlmCall`] and (resource, scope, log record) into a
//! [`LogEvent`], or nothing, so that everything downstream reads one shape.
//!
//! Pure: no I/O, no async, no global state beyond the static attribute table.

mod call;
mod content;
mod error;
mod feedback;
mod fields;
mod finish_reason;
mod log;
mod normalizer;
pub mod provider;
mod resource;
mod sampling;
mod span;
mod text;
mod timestamp;
pub mod value;

pub use call::{
    CallContentEvent, DimensionValues, Evaluation, InputAccounting, LlmCall, LogEvent,
    MAX_DIMENSIONS, TokenUsage,
};
pub use content::{CapturedContent, ContentRef};
pub use error::{RecordError, RejectReason};
pub use feedback::{
    CORRECTION_EVALUATION, FEEDBACK_EVENT, Feedback, FeedbackFields, FeedbackKind, FeedbackRules,
    FeedbackSignal, RATING_EVALUATION, REPORT_EVALUATION, RatingScale, THUMBS_EVALUATION,
};
pub use fields::{ATTRIBUTE_TABLE, Field};
pub use finish_reason::{FinishReason, FinishReasonCounts};
pub use normalizer::{Dimension, Normalizer, NormalizerError};
pub use resource::ResourceInfo;
pub use sampling::Sampling;
pub use timestamp::parse_rfc3339_nanos;

/// Largest token count one call may report; anything above is a broken emitter, not a call.
pub const MAX_TOKENS_PER_CALL: i64 = 1_000_000_000;
