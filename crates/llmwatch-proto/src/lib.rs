//! llmwatch's own gRPC APIs, generated at build time from `proto/` (see build.rs): the evaluator
//! plugin service llmwatch calls for sampled calls, and the feedback service apps call.
//!
//! Clients and servers are both exported: llmwatch is the client of `Evaluator`; a plugin written
//! in Rust implements [`v1::evaluator_server::Evaluator`].

/// Package `llmwatch.v1`.
#[allow(missing_debug_implementations, clippy::all)]
pub mod v1 {
    tonic::include_proto!("llmwatch.v1");
}

pub use v1::evaluator_client::EvaluatorClient;
pub use v1::evaluator_server::{Evaluator, EvaluatorServer};
pub use v1::feedback_service_client::FeedbackServiceClient;
pub use v1::feedback_service_server::{FeedbackService, FeedbackServiceServer};
pub use v1::{EvaluateRequest, EvaluateResponse, Score};
pub use v1::{SubmitFeedbackRequest, SubmitFeedbackResponse};
