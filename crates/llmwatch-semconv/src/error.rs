//! Why a span or log record is rejected. Each reason is a bounded label value.

use std::fmt;

/// A reason to reject one span or log record; the others in the same request still count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub reason: RejectReason,
    /// What exactly was wrong, for the partial-success message.
    pub detail: String,
}

/// The bounded set of rejection reasons, used as the `reason` label of self-metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    InvalidTraceId,
    InvalidSpanId,
    InvalidTimestamps,
    InvalidTokenCount,
    InvalidEvaluation,
    InvalidFeedback,
}

impl RejectReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectReason::InvalidTraceId => "invalid_trace_id",
            RejectReason::InvalidSpanId => "invalid_span_id",
            RejectReason::InvalidTimestamps => "invalid_timestamps",
            RejectReason::InvalidTokenCount => "invalid_token_count",
            RejectReason::InvalidEvaluation => "invalid_evaluation",
            RejectReason::InvalidFeedback => "invalid_feedback",
        }
    }
}

impl RecordError {
    pub(crate) fn new(reason: RejectReason, detail: impl Into<String>) -> RecordError {
        RecordError {
            reason,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.detail)
    }
}

impl std::error::Error for RecordError {}
