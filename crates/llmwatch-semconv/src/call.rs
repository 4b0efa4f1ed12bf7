//! The typed records normalization produces.

use std::borrow::Cow;

use crate::content::CapturedContent;
use crate::finish_reason::FinishReasonCounts;
use crate::sampling::Sampling;

/// Most extra dimensions a deployment may configure; keeps a call free of heap allocation.
pub const MAX_DIMENSIONS: usize = 8;

/// Values of the configured extra dimensions, in configuration order.
pub type DimensionValues<'a> = [Option<Cow<'a, str>>; MAX_DIMENSIONS];

/// One call to a model (chat, completion, content generation or embeddings), whatever emitted it.
///
/// Borrows from the OTLP span it came from, so building one allocates nothing in the usual case.
#[derive(Debug, Clone)]
pub struct LlmCall<'a> {
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    /// `chat`, `text_completion`, `generate_content`, `embeddings`, or `_OTHER` when an emitter
    /// recorded usage, or named a provider and a requested model (conventions v1.26), without
    /// naming the operation.
    pub operation: &'a str,
    /// `gen_ai.provider.name` value (legacy spellings mapped); empty when unknown.
    pub provider: &'a str,
    /// Empty when unknown.
    pub request_model: &'a str,
    /// Empty when unknown.
    pub response_model: &'a str,
    pub response_id: Option<&'a str>,
    pub system_fingerprint: Option<&'a str>,
    /// `Some(true)` when the call streamed (from a flag, a chunk event or a first-chunk time).
    pub streaming: Option<bool>,
    pub usage: TokenUsage,
    pub finish_reasons: FinishReasonCounts,
    pub duration_seconds: f64,
    /// Time to first token, kept only for streamed calls.
    pub time_to_first_token_seconds: Option<f64>,
    /// `error.type`, else the exception type, else `_OTHER` for an error status; `None` on success.
    pub error_type: Option<&'a str>,
    pub service_name: &'a str,
    pub environment: Option<&'a str>,
    pub conversation_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub output_type: Option<&'a str>,
    /// Cost in USD the emitter computed itself (OpenLIT, OpenInference, Langfuse), if any.
    pub reported_cost_usd: Option<f64>,
    pub dimensions: DimensionValues<'a>,
    pub content: CapturedContent<'a>,
    /// An embedding vector the span carries (OpenInference embedding spans), used as it is.
    pub embedding_vector: Option<&'a opentelemetry_proto::tonic::common::v1::AnyValue>,
    pub sampling: Sampling,
}

impl LlmCall<'_> {
    /// The carried embedding vector as numbers, when every component is a finite number.
    pub fn embedding(&self) -> Option<Vec<f64>> {
        use opentelemetry_proto::tonic::common::v1::any_value::Value;
        match &self.embedding_vector?.value {
            Some(Value::ArrayValue(array)) if !array.values.is_empty() => {
                array.values.iter().map(crate::value::as_f64).collect()
            }
            // Some SDKs write the vector as a JSON string.
            Some(Value::StringValue(json)) => serde_json::from_str::<Vec<f64>>(json)
                .ok()
                .filter(|v| !v.is_empty() && v.iter().all(|x| x.is_finite())),
            _ => None,
        }
    }
}

impl LlmCall<'_> {
    /// Time per output token of a streamed call: (duration − TTFT) / (output tokens − 1).
    pub fn time_per_output_token_seconds(&self) -> Option<f64> {
        let ttft = self.time_to_first_token_seconds?;
        let output = self.usage.output?;
        (output > 1).then(|| ((self.duration_seconds - ttft) / (output - 1) as f64).max(0.0))
    }
}

/// How the emitter counted cache tokens against input tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputAccounting {
    /// Input includes cache reads and writes (OpenTelemetry conventions, OpenAI-style usage).
    #[default]
    Inclusive,
    /// Input excludes cache reads and writes (Anthropic-native usage, Langfuse's own buckets).
    Exclusive,
}

/// Token counts in one accounting: `input` includes cache reads and writes, `output` includes
/// reasoning, as the conventions count. Subsets are never to be added to their totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenUsage {
    pub input: Option<u64>,
    pub output: Option<u64>,
    pub cache_read: Option<u64>,
    pub cache_write: Option<u64>,
    /// The part of `cache_write` written with a 1-hour lifetime (priced apart by Anthropic),
    /// when the emitter says; the rest has the default 5-minute lifetime.
    pub cache_write_1h: Option<u64>,
    pub reasoning: Option<u64>,
    /// How the emitter reported input; `input` above is already converted to inclusive.
    pub reported_accounting: InputAccounting,
}

impl TokenUsage {
    /// The `token_type` label values, in the order of [`TokenUsage::by_type`].
    pub const TYPES: [&'static str; 5] =
        ["input", "output", "cache_read", "cache_write", "reasoning"];

    /// The counts in the order of [`TokenUsage::TYPES`].
    pub fn by_type(&self) -> [Option<u64>; 5] {
        [
            self.input,
            self.output,
            self.cache_read,
            self.cache_write,
            self.reasoning,
        ]
    }

    /// Builds inclusive counts from what an emitter reported in its own accounting.
    pub fn from_reported(
        input: Option<u64>,
        output: Option<u64>,
        cache_read: Option<u64>,
        cache_write: Option<u64>,
        reasoning: Option<u64>,
        accounting: InputAccounting,
    ) -> TokenUsage {
        let cache = cache_read.unwrap_or(0) + cache_write.unwrap_or(0);
        let input = match accounting {
            InputAccounting::Inclusive => input,
            InputAccounting::Exclusive => input.map(|n| n + cache),
        };
        TokenUsage {
            input,
            output,
            cache_read,
            cache_write,
            cache_write_1h: None,
            reasoning,
            reported_accounting: accounting,
        }
    }

    /// Input tokens that were neither read from nor written to a cache.
    pub fn uncached_input(&self) -> Option<u64> {
        let cache = self.cache_read.unwrap_or(0) + self.cache_write.unwrap_or(0);
        self.input.map(|n| n.saturating_sub(cache))
    }

    /// Output tokens that were not reasoning.
    pub fn non_reasoning_output(&self) -> Option<u64> {
        self.output
            .map(|n| n.saturating_sub(self.reasoning.unwrap_or(0)))
    }
}

/// A `gen_ai.evaluation.result` event: a score for a call from any evaluator.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation<'a> {
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub name: &'a str,
    pub score: Option<f64>,
    pub label: Option<&'a str>,
    pub explanation: Option<&'a str>,
    pub response_id: Option<&'a str>,
    pub error_type: Option<&'a str>,
    pub service_name: &'a str,
}

/// A message or choice event carrying content or a finish reason for a call that a span counts
/// (`gen_ai.choice`, `gen_ai.{role}.message`, `gen_ai.client.inference.operation.details`).
///
/// It is not a second count of the call; later stages join it to its span by ids.
#[derive(Debug, Clone)]
pub struct CallContentEvent<'a> {
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub event_name: &'a str,
    /// The resource's `service.name` (else the fallback name), to tell which services send
    /// their content as events.
    pub service_name: &'a str,
    pub finish_reasons: FinishReasonCounts,
    pub content: CapturedContent<'a>,
}

/// What a log record turned out to be.
#[derive(Debug, Clone)]
pub enum LogEvent<'a> {
    Evaluation(Evaluation<'a>),
    CallContent(CallContentEvent<'a>),
    /// Explicit user feedback: a `gen_ai.user.feedback` event, or an evaluation whose name is
    /// configured as user feedback.
    Feedback(crate::feedback::Feedback<'a>),
}
