//! LLM-as-a-judge: scores a model call on a rubric by asking another model through any
//! OpenAI-compatible chat-completions endpoint.
//!
//! # The contract
//!
//! **Request.** [`Judge::evaluate`] takes a [`JudgeRequest`] (prompt, response, optional
//! context and system instructions) and POSTs one body to `{base_url}/chat/completions`
//! ([`Judge::request_body`] shows it): the configured `model`; a system message listing each
//! rubric dimension with its scale and instructions and the exact JSON shape to answer with; a
//! user message holding the call in tagged sections (`<system_instructions>`, `<context>`,
//! `<prompt>`, `<response>`), each cut to `max_content_chars`; and `response_format`, either
//! strict `json_schema` with [`verdict_schema`] or `json_object`; then `extra_body`.
//! Dimensions with `needs_context` are left out of all of it when the request has no
//! (non-blank) context; when no dimension is left nothing is sent and the result is
//! [`JudgeError::NoApplicableDimension`]. Headers: `Authorization: Bearer <key>` with the key
//! read once, at construction, from the variable named by `api_key_env`, plus
//! `extra_headers`.
//!
//! **Verdict.** The reply's `choices[0].message.content` must be a JSON object
//! `{"reasons": {dim: string}, "scores": {dim: number}}` (one surrounding Markdown code fence
//! is tolerated). Every applicable dimension needs a score that is a JSON number, finite,
//! within `[scale_min, scale_max]` and whole on an integer scale, and a reason string; keys
//! for other dimensions are ignored. Anything else (not JSON, a missing or out-of-range score,
//! a refusal, a reply cut at the token limit) is a parse failure. **A parse failure is
//! retried once, at once; a second one is [`JudgeError::Parse`]. No score is ever defaulted,
//! clamped or guessed.** A [`Verdict`] has the scores and reasons in rubric order, the
//! tokens billed over all attempts, the model that answered, and the attempts made.
//!
//! **Retries.** Each request is bounded by `timeout` from sending to the last byte read.
//! 429, 5xx, timeouts and transport errors are retried with exponential backoff
//! (`backoff.initial`, doubling, at most `backoff.max`); a `Retry-After` header (seconds or an
//! HTTP date) replaces the computed wait, capped at `backoff.max`. At most `max_attempts`
//! requests are spent on those failures; the single parse retry comes on top, so an
//! evaluation makes at most `max_attempts + 1` requests. Any other status (4xx other than
//! 429, or a 3xx: redirects are not followed) fails at once as [`JudgeError::Rejected`].
//! Every result maps to one bounded label value ([`Outcome`], via [`outcome_of`],
//! [`Verdict::outcome`] or [`JudgeError::outcome`]): `ok`, `parse_failure`, `rate_limited`,
//! `server_error`, `timeout`, `rejected`, `transport_error`, and `skipped` for
//! [`JudgeError::NoApplicableDimension`]. Errors carry the attempts made and the tokens
//! billed, so spend is accounted for failures too.
//!
//! **Budget.** [`SpendGuard`] caps spend per hour in dollars (priced by the caller) or tokens:
//! reserve an estimate before a call ([`Judge::estimate_prompt_tokens`] helps), record the
//! actual cost after. It is pure bookkeeping; the caller owns the clock, the queue, the
//! concurrency limit and the counting of what it drops.
//!
//! The judge never touches the ingest path itself: `evaluate` is an async function the
//! service runs from its own bounded queue. Dropping its future cancels the request.
//!
//! # The pipeline
//!
//! [`JudgeQueue`] is the processor's non-blocking sink for sampled calls; [`Pipeline`] drains
//! it under a concurrency limit through the LLM judge ([`LlmJudge`]: scores normalized to 0..1
//! over each dimension's scale, an hourly [`SpendGuard`]), the LLM safety judge (the same
//! [`LlmJudge`] with safety categories, for the calls the safety sampler chose) and evaluator
//! [`Plugin`]s (gRPC, `proto/llmwatch/v1/evaluator.proto`), records scores, safety flags and
//! outcomes in the processor, puts flagged calls in its review queue and sends each score and
//! safety verdict downstream as a `gen_ai.evaluation.result` event ([`EventSender`],
//! [`EventExporter`]).
//!
//! **Safety verdicts.** [`Judge::evaluate_safety`] asks the same endpoint, with the same retry
//! and parse rules, whether a call shows each of a list of [`SafetyCategory`]s: its own request
//! ([`safety_request_body`], schema [`safety_schema`]) answered with a boolean and a reason per
//! category. See the `safety` module for the contract and why it is a separate request.
//!
//! # Canary probes and remote embeddings
//!
//! [`spawn_canaries`] runs scheduled [`Canary`] probes (see the `canary` module docs: outcome
//! precedence error > fail > slow > pass, one request per run) and records them in the
//! processor; [`start_embeddings`] connects an OpenAI-compatible `/embeddings` client to the
//! drift monitors (batched, LRU-cached, token-budgeted, behind a bounded queue). Both share the
//! judge's endpoint handling (key, headers, timeouts, `Retry-After`).
//!
//! HTTPS endpoints need the crate's `rustls` feature (the workspace builds reqwest without
//! TLS); without it an `https` base URL is refused by [`Judge::new`].

mod cache;
mod canary;
mod client;
mod config;
mod embeddings;
mod endpoint;
mod error;
mod events;
mod parse;
mod plugin;
mod prompt;
mod queue;
mod safety;
mod spend;
mod worker;

pub use canary::{Canary, CanaryConfig, CanaryRun, CanaryTasks, spawn_canaries};
pub use client::{Judge, Verdict, outcome_of};
pub use config::{Backoff, Dimension, JudgeConfig};
pub use embeddings::{
    EmbeddingQueue, EmbeddingTasks, EmbeddingsConfig, start_embeddings, start_embeddings_with_env,
};
pub use endpoint::SetupError;
pub use error::{JudgeError, Outcome, Usage};
pub use events::{
    DownstreamConfig, EVENT_NAME, EvaluationEvent, EventExporter, EventSender, Protocol,
    downstream, export_request,
};
pub use plugin::{Plugin, PluginConfig, PluginScore};
pub use prompt::{
    JudgeRequest, SCHEMA_NAME, applicable_dimensions, request_body, response_format,
    system_message, user_message, verdict_schema,
};
pub use queue::{JudgeQueue, JudgeReceiver};
pub use safety::{
    CategoryVerdict, SAFETY_EVALUATOR, SAFETY_SCHEMA_NAME, SafetyCategory, SafetyVerdict,
    default_safety_categories, safety_request_body, safety_schema, safety_system_message,
    valid_category_name,
};
pub use spend::{Reservation, SpendCap, SpendGuard};
pub use worker::{JUDGE_EVALUATOR, LlmJudge, Pipeline, PipelineConfig};
