//! The normalization table: every attribute name that carries a canonical field, per emitter and
//! convention version, in priority order (the first name present wins).
//!
//! This is `shared/reference/semconv.md` §3 turned into data. Keys are looked up through one hash
//! map built once, so a span costs one hash per attribute whatever the number of names known here.

use std::sync::LazyLock;

use rustc_hash::FxHashMap;

/// A canonical field the normalizer reads from span attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Field {
    Operation,
    OpenInferenceKind,
    LangfuseObservationType,
    /// OpenLLMetry's `traceloop.span.kind` (workflow, task, agent, tool): never a model call.
    TraceloopSpanKind,
    Provider,
    RequestModel,
    ResponseModel,
    ResponseId,
    SystemFingerprint,
    FinishReasons,
    InputTokens,
    OutputTokens,
    CacheReadTokens,
    CacheWriteTokens,
    ReasoningTokens,
    LangfuseUsageDetails,
    Streaming,
    TimeToFirstChunk,
    /// OpenLIT's span attribute: equal to the whole duration on non-streamed calls.
    TimeToFirstTokenUntrusted,
    LangfuseCompletionStart,
    ErrorType,
    /// Langfuse's `langfuse.observation.level`; `ERROR` marks a failed call without a span status.
    LangfuseLevel,
    ConversationId,
    UserId,
    ServiceName,
    ApplicationName,
    Environment,
    InvocationParameters,
    OutputType,
    ReportedCost,
    LangfuseCostDetails,
    InputContent,
    OutputContent,
    /// Raw request/response payloads (OpenInference `input.value`/`output.value`): used only when
    /// no message-shaped content, flattened or not, was captured.
    RawInputContent,
    RawOutputContent,
    SystemInstructions,
}

/// Number of [`Field`] variants; sizes the per-span slot array.
pub const FIELD_COUNT: usize = Field::SystemInstructions as usize + 1;

/// Every known attribute name and the field it carries, highest priority first within a field.
pub const ATTRIBUTE_TABLE: &[(&str, Field)] = &[
    // Operation and the emitter-specific span kinds that say "this is a model call".
    ("gen_ai.operation.name", Field::Operation),
    ("llm.request.type", Field::Operation),
    ("openinference.span.kind", Field::OpenInferenceKind),
    ("langfuse.observation.type", Field::LangfuseObservationType),
    ("traceloop.span.kind", Field::TraceloopSpanKind),
    // Provider: spec >= 1.37, then the deprecated system, then OpenInference.
    ("gen_ai.provider.name", Field::Provider),
    ("gen_ai.system", Field::Provider),
    ("llm.provider", Field::Provider),
    ("llm.system", Field::Provider),
    // Models.
    ("gen_ai.request.model", Field::RequestModel),
    ("llm.request.model_name", Field::RequestModel),
    ("embedding.model_name", Field::RequestModel),
    ("gen_ai.response.model", Field::ResponseModel),
    ("llm.response.model_name", Field::ResponseModel),
    ("llm.model_name", Field::ResponseModel),
    ("langfuse.observation.model.name", Field::ResponseModel),
    ("gen_ai.response.id", Field::ResponseId),
    (
        "openai.response.system_fingerprint",
        Field::SystemFingerprint,
    ),
    (
        "gen_ai.openai.response.system_fingerprint",
        Field::SystemFingerprint,
    ),
    ("gen_ai.openai.system_fingerprint", Field::SystemFingerprint),
    // Finish reasons: the array attribute, then OpenInference's single value. The indexed
    // `gen_ai.completion.{i}.finish_reason` form is handled apart (see `span.rs`).
    ("gen_ai.response.finish_reasons", Field::FinishReasons),
    ("llm.finish_reason", Field::FinishReasons),
    // Usage.
    ("gen_ai.usage.input_tokens", Field::InputTokens),
    ("gen_ai.usage.prompt_tokens", Field::InputTokens),
    ("llm.token_count.prompt", Field::InputTokens),
    ("gen_ai.usage.output_tokens", Field::OutputTokens),
    ("gen_ai.usage.completion_tokens", Field::OutputTokens),
    ("llm.token_count.completion", Field::OutputTokens),
    (
        "gen_ai.usage.cache_read.input_tokens",
        Field::CacheReadTokens,
    ),
    (
        "gen_ai.usage.cache_read_input_tokens",
        Field::CacheReadTokens,
    ),
    (
        "llm.token_count.prompt_details.cache_read",
        Field::CacheReadTokens,
    ),
    (
        "gen_ai.usage.prompt_tokens_details.cached_tokens",
        Field::CacheReadTokens,
    ),
    (
        "gen_ai.usage.cache_write.input_tokens",
        Field::CacheWriteTokens,
    ),
    (
        "gen_ai.usage.cache_creation.input_tokens",
        Field::CacheWriteTokens,
    ),
    (
        "llm.token_count.prompt_details.cache_write",
        Field::CacheWriteTokens,
    ),
    (
        "gen_ai.usage.cache_creation_input_tokens",
        Field::CacheWriteTokens,
    ),
    (
        "gen_ai.usage.reasoning.output_tokens",
        Field::ReasoningTokens,
    ),
    ("gen_ai.usage.reasoning_tokens", Field::ReasoningTokens),
    ("llm.usage.reasoning_tokens", Field::ReasoningTokens),
    (
        "llm.token_count.completion_details.reasoning",
        Field::ReasoningTokens,
    ),
    (
        "gen_ai.usage.completion_tokens_details.reasoning_tokens",
        Field::ReasoningTokens,
    ),
    (
        "langfuse.observation.usage_details",
        Field::LangfuseUsageDetails,
    ),
    // Streaming and time to first token.
    ("gen_ai.request.stream", Field::Streaming),
    ("gen_ai.request.is_stream", Field::Streaming),
    ("gen_ai.is_streaming", Field::Streaming),
    ("llm.is_streaming", Field::Streaming),
    (
        "gen_ai.response.time_to_first_chunk",
        Field::TimeToFirstChunk,
    ),
    (
        "gen_ai.server.time_to_first_token",
        Field::TimeToFirstTokenUntrusted,
    ),
    (
        "langfuse.observation.completion_start_time",
        Field::LangfuseCompletionStart,
    ),
    ("error.type", Field::ErrorType),
    ("langfuse.observation.level", Field::LangfuseLevel),
    // Who and where.
    ("gen_ai.conversation.id", Field::ConversationId),
    ("session.id", Field::ConversationId),
    ("langfuse.session.id", Field::ConversationId),
    (
        "traceloop.association.properties.session_id",
        Field::ConversationId,
    ),
    ("user.id", Field::UserId),
    ("enduser.id", Field::UserId),
    ("langfuse.user.id", Field::UserId),
    ("traceloop.association.properties.user_id", Field::UserId),
    ("gen_ai.user", Field::UserId),
    ("llm.user", Field::UserId),
    ("gen_ai.request.user", Field::UserId),
    ("service.name", Field::ServiceName),
    ("gen_ai.application_name", Field::ApplicationName),
    ("deployment.environment.name", Field::Environment),
    ("deployment.environment", Field::Environment),
    ("gen_ai.environment", Field::Environment),
    ("langfuse.environment", Field::Environment),
    ("llm.invocation_parameters", Field::InvocationParameters),
    ("gen_ai.output.type", Field::OutputType),
    // Cost the emitter computed itself (kept to cross-check our own catalog).
    ("gen_ai.usage.cost", Field::ReportedCost),
    ("llm.cost.total", Field::ReportedCost),
    (
        "langfuse.observation.cost_details",
        Field::LangfuseCostDetails,
    ),
    // Captured content, structured or as JSON strings.
    ("gen_ai.input.messages", Field::InputContent),
    ("gen_ai.prompt", Field::InputContent),
    ("llm.input_messages", Field::InputContent),
    ("langfuse.observation.input", Field::InputContent),
    ("gen_ai.output.messages", Field::OutputContent),
    ("gen_ai.completion", Field::OutputContent),
    ("llm.output_messages", Field::OutputContent),
    ("langfuse.observation.output", Field::OutputContent),
    ("input.value", Field::RawInputContent),
    ("output.value", Field::RawOutputContent),
    ("gen_ai.system_instructions", Field::SystemInstructions),
];

/// Attribute name → (field, priority rank within the field; 0 is best).
pub static ATTRIBUTE_INDEX: LazyLock<FxHashMap<&'static str, (Field, u8)>> = LazyLock::new(|| {
    let mut index = FxHashMap::default();
    let mut next_rank = [0u8; FIELD_COUNT];
    for &(key, field) in ATTRIBUTE_TABLE {
        let rank = &mut next_rank[field as usize];
        let previous = index.insert(key, (field, *rank));
        assert!(previous.is_none(), "attribute {key} listed twice");
        *rank += 1;
    }
    index
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_ranks_follow_listing_order() {
        assert_eq!(
            ATTRIBUTE_INDEX["gen_ai.provider.name"],
            (Field::Provider, 0)
        );
        assert_eq!(ATTRIBUTE_INDEX["gen_ai.system"], (Field::Provider, 1));
        assert_eq!(ATTRIBUTE_INDEX["llm.system"], (Field::Provider, 3));
        assert_eq!(ATTRIBUTE_INDEX.len(), ATTRIBUTE_TABLE.len());
    }
}
