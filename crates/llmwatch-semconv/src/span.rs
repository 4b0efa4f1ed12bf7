//! Span → [`LlmCall`]: recognise model calls and read every field from whichever emitter wrote it.

use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value};
use opentelemetry_proto::tonic::trace::v1::{Span, status::StatusCode};
use serde::Deserialize;

use crate::call::{InputAccounting, LlmCall, MAX_DIMENSIONS, TokenUsage};
use crate::content::{CapturedContent, ContentRef};
use crate::error::{RecordError, RejectReason};
use crate::fields::{ATTRIBUTE_INDEX, FIELD_COUNT, Field};
use crate::finish_reason::{FinishReason, FinishReasonCounts};
use crate::normalizer::Normalizer;
use crate::resource::ResourceInfo;
use crate::sampling::Sampling;
use crate::value::{Count, as_bool, as_count, as_f64, as_label, as_str, describe, find_str};
use crate::{MAX_TOKENS_PER_CALL, provider, timestamp};

/// Span events that mark the first streamed chunk (OpenLLMetry new and old, OpenInference).
const FIRST_CHUNK_EVENTS: [&str; 3] = [
    "gen_ai.content.completion.chunk",
    "llm.content.completion.chunk",
    "First Token Stream Event",
];

/// A reported TTFT may exceed the span's duration by clock rounding, never by more.
const TTFT_TOLERANCE_SECONDS: f64 = 0.001;

/// The best-ranked value seen for each field.
struct Slots<'a> {
    values: [Option<(u8, &'a AnyValue, &'a str)>; FIELD_COUNT],
}

impl<'a> Slots<'a> {
    fn offer(&mut self, field: Field, rank: u8, value: &'a AnyValue, key: &'a str) {
        let slot = &mut self.values[field as usize];
        if slot.is_none_or(|(best, _, _)| rank < best) {
            *slot = Some((rank, value, key));
        }
    }

    fn get(&self, field: Field) -> Option<&'a AnyValue> {
        self.values[field as usize].map(|(_, value, _)| value)
    }

    fn key_value(&self, field: Field) -> Option<(&'a str, &'a AnyValue)> {
        self.values[field as usize].map(|(_, value, key)| (key, value))
    }

    fn str(&self, field: Field) -> Option<&'a str> {
        self.get(field).and_then(as_str).filter(|s| !s.is_empty())
    }
}

/// Flattened indexed attributes seen on the span (OpenLLMetry ≤0.54, OpenInference).
#[derive(Default)]
struct Flattened<'a> {
    finish_reasons: FinishReasonCounts,
    input: Option<&'static str>,
    output: Option<&'static str>,
    /// The first embedding vector an OpenInference embedding span carries.
    embedding_vector: Option<&'a AnyValue>,
}

/// OpenInference's JSON `llm.invocation_parameters`: the request kwargs.
#[derive(Deserialize, Default)]
struct InvocationParameters<'a> {
    #[serde(borrow, default)]
    model: Option<&'a str>,
    #[serde(default)]
    stream: Option<bool>,
}

impl Normalizer {
    /// Normalizes one span: `Ok(None)` for spans that are not model calls (HTTP clients, agents,
    /// tools, workflows), an error for a model call too broken to count.
    pub fn span<'a>(
        &self,
        resource: &ResourceInfo<'a>,
        span: &'a Span,
    ) -> Result<Option<LlmCall<'a>>, RecordError> {
        let mut slots = Slots {
            values: [None; FIELD_COUNT],
        };
        let mut flattened = Flattened::default();
        let mut dimensions = resource.dimensions.clone();
        let mut dimension_ranks = [usize::MAX; MAX_DIMENSIONS];
        for kv in &span.attributes {
            let Some(value) = kv.value.as_ref() else {
                continue;
            };
            // An empty string says nothing, and must not shadow a lower-ranked name that does
            // (OpenLIT writes `gen_ai.request.user = ""` when the request had no user).
            if matches!(&value.value, Some(Value::StringValue(s)) if s.is_empty()) {
                continue;
            }
            let key = kv.key.as_str();
            if let Some(&(field, rank)) = ATTRIBUTE_INDEX.get(key) {
                slots.offer(field, rank, value, key);
            } else {
                flattened.observe(key, value);
            }
            if !self.dimension_keys.is_empty()
                && let Some(&(index, rank)) = self.dimension_keys.get(key)
                && rank < dimension_ranks[index]
                && let Some(label) = as_label(value)
            {
                dimension_ranks[index] = rank;
                dimensions[index] = Some(label);
            }
        }

        let Some(operation) = classify(&slots) else {
            return Ok(None);
        };
        // Only spans that count are validated: a malformed span llmwatch ignores anyway is not
        // the client's error to hear about.
        check_ids(&span.trace_id, &span.span_id)?;
        if span.start_time_unix_nano == 0 || span.end_time_unix_nano < span.start_time_unix_nano {
            return Err(RecordError::new(
                RejectReason::InvalidTimestamps,
                format!(
                    "span {:?}: start_time_unix_nano {} and end_time_unix_nano {} do not form a duration",
                    span.name, span.start_time_unix_nano, span.end_time_unix_nano
                ),
            ));
        }
        let duration_seconds = (span.end_time_unix_nano - span.start_time_unix_nano) as f64 / 1e9;

        let invocation = slots
            .str(Field::InvocationParameters)
            .and_then(|json| serde_json::from_str::<InvocationParameters<'a>>(json).ok())
            .unwrap_or_default();

        let usage = token_usage(&slots, &span.name)?;
        let streaming_flag = slots
            .get(Field::Streaming)
            .and_then(as_bool)
            .or(invocation.stream);
        let first_chunk_nanos = span
            .events
            .iter()
            .filter(|event| FIRST_CHUNK_EVENTS.contains(&event.name.as_str()))
            .map(|event| event.time_unix_nano)
            .min();
        let spec_ttft = slots.get(Field::TimeToFirstChunk).and_then(as_f64);
        let completion_start_nanos = slots
            .str(Field::LangfuseCompletionStart)
            .and_then(timestamp::parse_rfc3339_nanos);
        let streaming = streaming_flag.or_else(|| {
            (first_chunk_nanos.is_some() || spec_ttft.is_some() || completion_start_nanos.is_some())
                .then_some(true)
        });
        let since_start = |nanos: u64| {
            nanos
                .checked_sub(span.start_time_unix_nano)
                .map(|d| d as f64 / 1e9)
        };
        let time_to_first_token_seconds = if streaming == Some(true) {
            spec_ttft
                .or_else(|| first_chunk_nanos.and_then(since_start))
                .or_else(|| slots.get(Field::TimeToFirstTokenUntrusted).and_then(as_f64))
                .or_else(|| completion_start_nanos.and_then(since_start))
                .filter(|&t| t >= 0.0 && t <= duration_seconds + TTFT_TOLERANCE_SECONDS)
        } else {
            None
        };

        let response_model = slots.str(Field::ResponseModel).unwrap_or("");
        let request_model = slots
            .str(Field::RequestModel)
            .or(invocation.model)
            .unwrap_or(response_model);
        let service_name = resource
            .service_name
            .or_else(|| slots.str(Field::ServiceName))
            .or_else(|| slots.str(Field::ApplicationName))
            .unwrap_or(resource.fallback_service_name);

        Ok(Some(LlmCall {
            trace_id: &span.trace_id,
            span_id: &span.span_id,
            start_unix_nano: span.start_time_unix_nano,
            end_unix_nano: span.end_time_unix_nano,
            operation,
            provider: slots
                .str(Field::Provider)
                .map(provider::normalize)
                .unwrap_or(""),
            request_model,
            response_model,
            response_id: slots.str(Field::ResponseId),
            system_fingerprint: slots.str(Field::SystemFingerprint),
            streaming,
            usage,
            finish_reasons: finish_reasons(&slots, &flattened),
            duration_seconds,
            time_to_first_token_seconds,
            error_type: error_type(&slots, span),
            service_name,
            environment: resource
                .environment
                .or_else(|| slots.str(Field::Environment)),
            conversation_id: slots.str(Field::ConversationId),
            user_id: slots.str(Field::UserId),
            output_type: slots.str(Field::OutputType),
            reported_cost_usd: reported_cost(&slots),
            dimensions,
            content: captured_content(&slots, &flattened, span),
            embedding_vector: flattened.embedding_vector,
            sampling: if span.trace_state.is_empty() {
                Sampling::default()
            } else {
                Sampling::from_tracestate(&span.trace_state)
            },
        }))
    }
}

impl<'a> Flattened<'a> {
    fn observe(&mut self, key: &str, value: &'a AnyValue) {
        if key.starts_with("embedding.embeddings.") && key.ends_with(".embedding.vector") {
            if self.embedding_vector.is_none() {
                self.embedding_vector = Some(value);
            }
        } else if let Some(rest) = key.strip_prefix("gen_ai.completion.") {
            if rest.ends_with(".finish_reason") {
                if let Some(reason) = as_str(value) {
                    self.finish_reasons.add(FinishReason::parse(reason));
                }
            } else if rest.ends_with(".content") {
                self.output = Some("gen_ai.completion.");
            }
        } else if key.starts_with("gen_ai.prompt.") && key.ends_with(".content") {
            self.input = Some("gen_ai.prompt.");
        } else if key.starts_with("llm.input_messages.") && is_flattened_content(key) {
            self.input = Some("llm.input_messages.");
        } else if key.starts_with("llm.output_messages.") && is_flattened_content(key) {
            self.output = Some("llm.output_messages.");
        }
    }
}

/// A flattened key holding message text: `….content`, or OpenInference's multimodal
/// `….message.contents.{j}.message_content.text`.
pub(crate) fn is_flattened_content(key: &str) -> bool {
    key.ends_with("content") || key.ends_with("message_content.text")
}

/// Trace and span ids must have the lengths OTLP requires and not be all zeros.
pub(crate) fn check_ids(trace_id: &[u8], span_id: &[u8]) -> Result<(), RecordError> {
    if trace_id.len() != 16 || trace_id.iter().all(|&b| b == 0) {
        return Err(RecordError::new(
            RejectReason::InvalidTraceId,
            format!(
                "trace_id must be 16 bytes, not all zero (got {} bytes)",
                trace_id.len()
            ),
        ));
    }
    if span_id.len() != 8 || span_id.iter().all(|&b| b == 0) {
        return Err(RecordError::new(
            RejectReason::InvalidSpanId,
            format!(
                "span_id must be 8 bytes, not all zero (got {} bytes)",
                span_id.len()
            ),
        ));
    }
    Ok(())
}

/// Which operation a span performs, or `None` when it is not a model call.
fn classify<'a>(slots: &Slots<'a>) -> Option<&'a str> {
    if let Some(operation) = slots.str(Field::Operation) {
        return match operation {
            "chat" | "text_completion" | "generate_content" | "embeddings" => Some(operation),
            // OpenLLMetry's `llm.request.type` values.
            "completion" => Some("text_completion"),
            "embedding" => Some("embeddings"),
            _ => None,
        };
    }
    if let Some(kind) = slots.str(Field::OpenInferenceKind) {
        return match kind {
            "LLM" => Some("chat"),
            "EMBEDDING" => Some("embeddings"),
            _ => None,
        };
    }
    if let Some(kind) = slots.str(Field::LangfuseObservationType) {
        return match kind {
            "generation" => Some("chat"),
            "embedding" => Some("embeddings"),
            _ => None,
        };
    }
    // OpenLLMetry's workflow/task/agent/tool spans may aggregate the usage of the calls under
    // them (CrewAI crews, agents): counting them would count those calls twice.
    if slots.get(Field::TraceloopSpanKind).is_some() {
        return None;
    }
    // No operation named: usage, or a provider and a requested model (semantic conventions
    // v1.26, which had no `gen_ai.operation.name`; a failed call there reports no usage), make
    // it a model call of an unknown operation.
    let has_usage = [
        Field::InputTokens,
        Field::OutputTokens,
        Field::LangfuseUsageDetails,
    ]
    .iter()
    .any(|&field| slots.get(field).is_some());
    let names_a_model =
        slots.get(Field::Provider).is_some() && slots.get(Field::RequestModel).is_some();
    (has_usage || names_a_model).then_some("_OTHER")
}

fn token_usage(slots: &Slots<'_>, span_name: &str) -> Result<TokenUsage, RecordError> {
    let read = |field: Field| -> Result<Option<u64>, RecordError> {
        let Some((key, value)) = slots.key_value(field) else {
            return Ok(None);
        };
        checked_tokens(key, value, span_name)
    };
    let input = read(Field::InputTokens)?;
    let output = read(Field::OutputTokens)?;
    if input.is_none()
        && output.is_none()
        && let Some(details) = slots.str(Field::LangfuseUsageDetails)
    {
        return langfuse_usage(details, span_name);
    }
    let cache_read = read(Field::CacheReadTokens)?;
    let cache_write = read(Field::CacheWriteTokens)?;
    let reasoning = read(Field::ReasoningTokens)?;
    // Inclusive input can never be smaller than the cache tokens it includes.
    let cache = cache_read.unwrap_or(0) + cache_write.unwrap_or(0);
    let accounting = match input {
        Some(n) if n < cache => InputAccounting::Exclusive,
        _ => InputAccounting::Inclusive,
    };
    Ok(TokenUsage::from_reported(
        input,
        output,
        cache_read,
        cache_write,
        reasoning,
        accounting,
    ))
}

fn checked_tokens(
    key: &str,
    value: &AnyValue,
    span_name: &str,
) -> Result<Option<u64>, RecordError> {
    match as_count(value) {
        Count::Valid(n) if (0..=MAX_TOKENS_PER_CALL).contains(&n) => Ok(Some(n as u64)),
        Count::Valid(n) => Err(RecordError::new(
            RejectReason::InvalidTokenCount,
            format!(
                "span {span_name:?}: attribute {key} = {n} is outside 0..={MAX_TOKENS_PER_CALL}"
            ),
        )),
        Count::NotAnInteger => Err(RecordError::new(
            RejectReason::InvalidTokenCount,
            format!(
                "span {span_name:?}: attribute {key} must be a non-negative integer, got {}",
                describe(value)
            ),
        )),
    }
}

/// Langfuse's `usage_details` JSON: its own exclusive buckets (`input`, `output`,
/// `input_cached_tokens`, …), raw OpenAI usage (inclusive) or raw Anthropic usage (exclusive).
fn langfuse_usage(details: &str, span_name: &str) -> Result<TokenUsage, RecordError> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(details)
    else {
        return Ok(TokenUsage::default());
    };
    let number = |path: &[&str]| -> Result<Option<u64>, RecordError> {
        let mut node = map.get(path[0]);
        for part in &path[1..] {
            node = node.and_then(|n| n.get(part));
        }
        match node {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Number(n)) => match n.as_i64() {
                Some(v) if (0..=MAX_TOKENS_PER_CALL).contains(&v) => Ok(Some(v as u64)),
                _ => Err(RecordError::new(
                    RejectReason::InvalidTokenCount,
                    format!(
                        "span {span_name:?}: usage_details.{} = {n} is not a valid count",
                        path.join(".")
                    ),
                )),
            },
            Some(other) => Err(RecordError::new(
                RejectReason::InvalidTokenCount,
                format!(
                    "span {span_name:?}: usage_details.{} must be a number, got {other}",
                    path.join(".")
                ),
            )),
        }
    };
    let first = |paths: &[&[&str]]| -> Result<Option<u64>, RecordError> {
        for path in paths {
            if let Some(n) = number(path)? {
                return Ok(Some(n));
            }
        }
        Ok(None)
    };
    if map.contains_key("prompt_tokens") {
        // Raw OpenAI Chat Completions usage: inclusive.
        return Ok(TokenUsage::from_reported(
            number(&["prompt_tokens"])?,
            number(&["completion_tokens"])?,
            number(&["prompt_tokens_details", "cached_tokens"])?,
            None,
            number(&["completion_tokens_details", "reasoning_tokens"])?,
            InputAccounting::Inclusive,
        ));
    }
    if [
        "input_tokens_details",
        "output_tokens_details",
        "input_token_details",
        "output_token_details",
    ]
    .iter()
    .any(|key| map.contains_key(*key))
    {
        // Raw OpenAI Responses usage (`input_tokens_details.cached_tokens`) or LangChain usage
        // metadata (`input_token_details.cache_read`): both inclusive, details are subsets.
        return Ok(TokenUsage::from_reported(
            number(&["input_tokens"])?,
            number(&["output_tokens"])?,
            first(&[
                &["input_tokens_details", "cached_tokens"],
                &["input_token_details", "cache_read"],
            ])?,
            number(&["input_token_details", "cache_creation"])?,
            first(&[
                &["output_tokens_details", "reasoning_tokens"],
                &["output_token_details", "reasoning"],
            ])?,
            InputAccounting::Inclusive,
        ));
    }
    let cache_read = first(&[
        &["input_cached_tokens"],
        &["cache_read_input_tokens"],
        &["input_cache_read"],
    ])?;
    // Anthropic splits cache writes by lifetime: Langfuse's `input_cache_creation_5m`/`_1h`
    // buckets, or raw usage's `cache_creation: {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}`.
    let split_5m = first(&[
        &["input_cache_creation_5m"],
        &["cache_creation", "ephemeral_5m_input_tokens"],
    ])?;
    let cache_write_1h = first(&[
        &["input_cache_creation_1h"],
        &["cache_creation", "ephemeral_1h_input_tokens"],
    ])?;
    let has_cache_write_total = map.contains_key("input_cache_creation");
    let cache_write = match first(&[
        &["cache_creation_input_tokens"],
        &["input_cache_creation"],
        &["input_cache_write"],
    ])? {
        Some(total) => Some(total),
        None if split_5m.is_some() || cache_write_1h.is_some() => {
            Some(split_5m.unwrap_or(0) + cache_write_1h.unwrap_or(0))
        }
        None => None,
    };
    let reasoning = first(&[&["output_reasoning_tokens"], &["output_reasoning"]])?;
    // Exclusive buckets: Langfuse's own (`input`, `input_cached_tokens`, `input_audio_tokens`,
    // `output`, `output_reasoning_tokens`, … each subtracted from its side) or raw Anthropic
    // usage (`input_tokens` beside `cache_read_input_tokens`). A side's inclusive total is the
    // sum of every bucket on that side; keys holding objects (`cache_creation: {…}`) are details.
    let mut input: Option<u64> = None;
    let mut output: Option<u64> = None;
    for (key, value) in &map {
        let side = if key == "input"
            || key.starts_with("input_")
            || key == "cache_read_input_tokens"
            || key == "cache_creation_input_tokens"
        {
            &mut input
        } else if key == "output" || key.starts_with("output_") {
            &mut output
        } else {
            continue;
        };
        let split_of_total = has_cache_write_total
            && matches!(
                key.as_str(),
                "input_cache_creation_5m" | "input_cache_creation_1h"
            );
        if value.is_number() && !split_of_total {
            let n = number(&[key.as_str()])?.unwrap_or(0);
            *side = Some(side.unwrap_or(0) + n);
        }
    }
    Ok(TokenUsage {
        input,
        output,
        cache_read,
        cache_write,
        cache_write_1h,
        reasoning,
        reported_accounting: InputAccounting::Exclusive,
    })
}

fn finish_reasons(slots: &Slots<'_>, flattened: &Flattened) -> FinishReasonCounts {
    let mut counts = FinishReasonCounts::default();
    if let Some(value) = slots.get(Field::FinishReasons) {
        add_reasons(value, &mut counts);
    }
    if counts.is_empty() {
        counts = flattened.finish_reasons;
    }
    if counts.is_empty() {
        // Spec ≥1.37 output messages carry `finish_reason` per message.
        if let Some(value) = slots.get(Field::OutputContent) {
            add_message_finish_reasons(value, &mut counts);
        }
    }
    counts
}

fn add_reasons(value: &AnyValue, counts: &mut FinishReasonCounts) {
    match &value.value {
        Some(Value::ArrayValue(array)) => {
            for reason in array.values.iter().filter_map(as_str) {
                add_reason(reason, counts);
            }
        }
        Some(Value::StringValue(s)) if s.trim_start().starts_with('[') => {
            if let Ok(reasons) = serde_json::from_str::<Vec<String>>(s) {
                reasons.iter().for_each(|r| add_reason(r, counts));
            }
        }
        Some(Value::StringValue(s)) if !s.is_empty() => counts.add(FinishReason::parse(s)),
        _ => {}
    }
}

/// Counts one reported reason; an empty one (OpenLIT writes `[""]` when none came back) is no
/// reason at all rather than `other`.
fn add_reason(reason: &str, counts: &mut FinishReasonCounts) {
    if !reason.trim().is_empty() {
        counts.add(FinishReason::parse(reason));
    }
}

fn add_message_finish_reasons(value: &AnyValue, counts: &mut FinishReasonCounts) {
    match &value.value {
        Some(Value::StringValue(s)) if s.trim_start().starts_with('[') => {
            if let Ok(serde_json::Value::Array(messages)) = serde_json::from_str(s) {
                for reason in messages
                    .iter()
                    .filter_map(|m| m.get("finish_reason")?.as_str())
                {
                    add_reason(reason, counts);
                }
            }
        }
        Some(Value::ArrayValue(messages)) => {
            for message in &messages.values {
                if let Some(Value::KvlistValue(fields)) = &message.value
                    && let Some(reason) = find_str(&fields.values, "finish_reason")
                {
                    add_reason(reason, counts);
                }
            }
        }
        _ => {}
    }
}

fn error_type<'a>(slots: &Slots<'a>, span: &'a Span) -> Option<&'a str> {
    if let Some(error_type) = slots.str(Field::ErrorType) {
        return Some(error_type);
    }
    let failed = span
        .status
        .as_ref()
        .is_some_and(|s| s.code == StatusCode::Error as i32)
        // Langfuse marks a failed generation with its level only; the span status stays unset.
        || slots
            .str(Field::LangfuseLevel)
            .is_some_and(|level| level.eq_ignore_ascii_case("ERROR"));
    failed.then(|| {
        span.events
            .iter()
            .filter(|event| event.name == "exception")
            .find_map(|event| find_str(&event.attributes, "exception.type"))
            .unwrap_or("_OTHER")
    })
}

fn reported_cost(slots: &Slots<'_>) -> Option<f64> {
    slots.get(Field::ReportedCost).and_then(as_f64).or_else(|| {
        let details = slots.str(Field::LangfuseCostDetails)?;
        let json: serde_json::Value = serde_json::from_str(details).ok()?;
        json.get("total")?.as_f64()
    })
}

fn captured_content<'a>(
    slots: &Slots<'a>,
    flattened: &Flattened,
    span: &'a Span,
) -> CapturedContent<'a> {
    let event_attribute = |event_name: &str, key: &str| {
        span.events
            .iter()
            .find(|event| event.name == event_name)
            .and_then(|event| event.attributes.iter().find(|kv| kv.key == key))
            .and_then(|kv| kv.value.as_ref())
            .map(ContentRef::Value)
    };
    let flattened_ref = |prefix: Option<&'static str>| {
        prefix.map(|prefix| ContentRef::Flattened {
            attributes: &span.attributes,
            prefix,
        })
    };
    CapturedContent {
        input: slots
            .get(Field::InputContent)
            .map(ContentRef::Value)
            .or_else(|| flattened_ref(flattened.input))
            .or_else(|| slots.get(Field::RawInputContent).map(ContentRef::Value))
            .or_else(|| event_attribute("gen_ai.content.prompt", "gen_ai.prompt")),
        output: slots
            .get(Field::OutputContent)
            .map(ContentRef::Value)
            .or_else(|| flattened_ref(flattened.output))
            .or_else(|| slots.get(Field::RawOutputContent).map(ContentRef::Value))
            .or_else(|| event_attribute("gen_ai.content.completion", "gen_ai.completion")),
        system_instructions: slots.get(Field::SystemInstructions).map(ContentRef::Value),
    }
}
