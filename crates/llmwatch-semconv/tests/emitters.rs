//! Every emitter and convention version, shaped as it really writes a model call, normalized to the
//! exact values a reader of its documentation would derive by hand.
//!
//! Times are chosen so that every expected number is exact in binary floating point: a duration
//! of n ms is `n / 1000` exactly as Rust parses the literal, and the time per output token
//! (duration − TTFT) / (output − 1) is a power-of-two fraction.

mod common;

use common::*;
use llmwatch_semconv::{
    Dimension, Evaluation, Feedback, FeedbackKind, FeedbackRules, FeedbackSignal,
    FinishReason as R, InputAccounting, LogEvent, MAX_TOKENS_PER_CALL, Normalizer, RejectReason,
    TokenUsage,
};
use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

fn plain() -> Normalizer {
    Normalizer::default()
}

/// A deployment that labels calls with a `feature`, from the app's own attribute or else from
/// OpenLLMetry's workflow name.
fn with_feature() -> Normalizer {
    Normalizer::new(vec![Dimension {
        label: "feature".to_owned(),
        attributes: vec![
            "app.feature".to_owned(),
            "traceloop.workflow.name".to_owned(),
        ],
    }])
    .expect("valid dimension")
}

fn usage(
    input: Option<u64>,
    output: Option<u64>,
    cache_read: Option<u64>,
    cache_write: Option<u64>,
    reasoning: Option<u64>,
    reported_accounting: InputAccounting,
) -> TokenUsage {
    TokenUsage {
        input,
        output,
        cache_read,
        cache_write,
        cache_write_1h: None,
        reasoning,
        reported_accounting,
    }
}

fn io(input: u64, output: u64) -> TokenUsage {
    usage(
        Some(input),
        Some(output),
        None,
        None,
        None,
        InputAccounting::Inclusive,
    )
}

// ---------------------------------------------------------------------------------------------
// Official OpenTelemetry GenAI semantic conventions
// ---------------------------------------------------------------------------------------------

#[test]
fn semconv_v1_26_prompt_tokens_and_content_span_events() {
    // v1.26: no `gen_ai.operation.name` yet, `prompt_tokens`/`completion_tokens`, content in the
    // `gen_ai.content.*` span events as OpenAI-format JSON strings; environment before the
    // `.name` rename.
    let res = resource(vec![
        kv("service.name", s("support-bot")),
        kv("deployment.environment", s("staging")),
    ]);
    let span = SpanBuilder::new("chat gpt-4", SpanKind::Client)
        .lasting(1_500 * MS)
        .attr("gen_ai.system", s("openai"))
        .attr("gen_ai.request.model", s("gpt-4"))
        .attr("gen_ai.request.max_tokens", i(200))
        .attr("gen_ai.request.temperature", f(0.2))
        .attr("gen_ai.request.top_p", f(1.0))
        .attr("gen_ai.response.id", s("chatcmpl-9J3nqXbQ"))
        .attr("gen_ai.response.model", s("gpt-4-0613"))
        .attr("gen_ai.response.finish_reasons", strs(&["stop"]))
        .attr("gen_ai.usage.prompt_tokens", i(42))
        .attr("gen_ai.usage.completion_tokens", i(17))
        .event(
            "gen_ai.content.prompt",
            2 * MS,
            vec![kv(
                "gen_ai.prompt",
                s(r#"[{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Capital of France?"}]"#),
            )],
        )
        .event(
            "gen_ai.content.completion",
            1_499 * MS,
            vec![kv(
                "gen_ai.completion",
                s(r#"[{"role": "assistant", "content": "Paris."}]"#),
            )],
        )
        .build();
    let call = call(&plain(), Some(&res), &span);
    assert_call(
        &call,
        &span,
        &Expected {
            // No operation attribute existed: a model call of unknown operation.
            operation: "_OTHER",
            provider: "openai",
            request_model: "gpt-4",
            response_model: "gpt-4-0613",
            response_id: Some("chatcmpl-9J3nqXbQ"),
            usage: io(42, 17),
            finish_reasons: &[(R::Stop, 1)],
            duration_seconds: 1.5,
            service_name: "support-bot",
            environment: Some("staging"),
            input_text: Some("You are terse.\nCapital of France?"),
            output_text: Some("Paris."),
            ..Expected::default()
        },
    );
}

#[test]
fn semconv_v1_26_failed_call_without_usage_is_still_counted() {
    // A timed-out v1.26 call reports no usage and no operation: provider plus requested model
    // still make it a model call, so the error is counted.
    let res = resource(vec![kv("service.name", s("support-bot"))]);
    let span = SpanBuilder::new("chat gpt-4", SpanKind::Client)
        .lasting(30_000 * MS)
        .attr("gen_ai.system", s("openai"))
        .attr("gen_ai.request.model", s("gpt-4"))
        .attr("gen_ai.request.max_tokens", i(200))
        .status(StatusCode::Error, "Request timed out.")
        .event(
            "exception",
            30_000 * MS,
            vec![
                kv("exception.type", s("APITimeoutError")),
                kv("exception.message", s("Request timed out.")),
                kv(
                    "exception.stacktrace",
                    s("Traceback (most recent call last):\n  ..."),
                ),
                kv("exception.escaped", s("False")),
            ],
        )
        .build();
    let call = call(&plain(), Some(&res), &span);
    assert_call(
        &call,
        &span,
        &Expected {
            operation: "_OTHER",
            provider: "openai",
            request_model: "gpt-4",
            duration_seconds: 30.0,
            error_type: Some("APITimeoutError"),
            service_name: "support-bot",
            ..Expected::default()
        },
    );
}

#[test]
fn semconv_v1_28_to_v1_36_openai_v2_legacy_path() {
    // opentelemetry-instrumentation-openai-v2 default path: `gen_ai.system`, `gen_ai.openai.*`,
    // input/output tokens, two choices, content only in log events (none on the span).
    let res = resource(vec![
        kv("service.name", s("demo-v2")),
        kv("deployment.environment.name", s("prod")),
        kv("telemetry.sdk.language", s("python")),
    ]);
    let span = SpanBuilder::new("chat gpt-4o-mini", SpanKind::Client)
        .lasting(800 * MS)
        .attr("gen_ai.operation.name", s("chat"))
        .attr("gen_ai.system", s("openai"))
        .attr("gen_ai.request.model", s("gpt-4o-mini"))
        .attr("gen_ai.request.temperature", f(0.5))
        .attr("gen_ai.request.seed", i(7))
        .attr("gen_ai.request.choice.count", i(2))
        .attr("gen_ai.openai.request.service_tier", s("auto"))
        .attr("server.address", s("api.openai.com"))
        .attr("gen_ai.response.model", s("gpt-4o-mini-2024-07-18"))
        .attr("gen_ai.response.id", s("chatcmpl-AB12cd"))
        .attr("gen_ai.response.finish_reasons", strs(&["stop", "length"]))
        .attr("gen_ai.openai.response.service_tier", s("default"))
        .attr(
            "gen_ai.openai.response.system_fingerprint",
            s("fp_0ba0d124f1"),
        )
        .attr("gen_ai.usage.input_tokens", i(120))
        .attr("gen_ai.usage.output_tokens", i(64))
        .build();
    let call = call(&plain(), Some(&res), &span);
    assert_call(
        &call,
        &span,
        &Expected {
            operation: "chat",
            provider: "openai",
            request_model: "gpt-4o-mini",
            response_model: "gpt-4o-mini-2024-07-18",
            response_id: Some("chatcmpl-AB12cd"),
            system_fingerprint: Some("fp_0ba0d124f1"),
            usage: io(120, 64),
            finish_reasons: &[(R::Stop, 1), (R::Length, 1)],
            duration_seconds: 0.8,
            service_name: "demo-v2",
            environment: Some("prod"),
            ..Expected::default()
        },
    );
}

#[test]
fn semconv_v1_41_streamed_call_with_cache_reasoning_and_output_messages() {
    // v1.37+ `gen_ai.provider.name`, `openai.*`; v1.40 cache; v1.41 reasoning, stream flag and
    // time to first chunk; finish reasons only inside `gen_ai.output.messages` (no array).
    let res = resource(vec![
        kv("service.name", s("faq-service")),
        kv("deployment.environment.name", s("prod")),
    ]);
    let span = SpanBuilder::new("chat gpt-5-mini", SpanKind::Client)
        .lasting(3_000 * MS)
        .attr("gen_ai.operation.name", s("chat"))
        .attr("gen_ai.provider.name", s("openai"))
        .attr("gen_ai.request.model", s("gpt-5-mini"))
        .attr("gen_ai.request.stream", b(true))
        .attr("gen_ai.request.choice.count", i(2))
        .attr("server.address", s("api.openai.com"))
        .attr("server.port", i(443))
        .attr("gen_ai.response.model", s("gpt-5-mini-2025-08-07"))
        .attr("gen_ai.response.id", s("chatcmpl-C1xYz"))
        .attr("gen_ai.response.time_to_first_chunk", f(0.5))
        .attr("openai.response.system_fingerprint", s("fp_6f2d7e"))
        .attr("openai.response.service_tier", s("default"))
        .attr("gen_ai.output.type", s("text"))
        .attr("gen_ai.conversation.id", s("conv_42"))
        .attr("gen_ai.usage.input_tokens", i(2048))
        .attr("gen_ai.usage.output_tokens", i(513))
        .attr("gen_ai.usage.cache_read.input_tokens", i(1024))
        .attr("gen_ai.usage.reasoning.output_tokens", i(256))
        .attr(
            "gen_ai.system_instructions",
            s(r#"[{"type": "text", "content": "Answer in French."}]"#),
        )
        .attr(
            "gen_ai.input.messages",
            s(r#"[{"role": "user", "parts": [{"type": "text", "content": "What is the capital of France?"}]}]"#),
        )
        .attr(
            "gen_ai.output.messages",
            s(r#"[{"role": "assistant", "parts": [{"type": "text", "content": "Paris."}], "finish_reason": "stop"}, {"role": "assistant", "parts": [{"type": "text", "content": "La capitale est"}], "finish_reason": "length"}]"#),
        )
        .attr("app.feature", s("faq"))
        .attr("user.id", s("u-7"))
        .build();
    let call = call(&with_feature(), Some(&res), &span);
    assert_call(
        &call,
        &span,
        &Expected {
            operation: "chat",
            provider: "openai",
            request_model: "gpt-5-mini",
            response_model: "gpt-5-mini-2025-08-07",
            response_id: Some("chatcmpl-C1xYz"),
            system_fingerprint: Some("fp_6f2d7e"),
            streaming: Some(true),
            usage: usage(
                Some(2048),
                Some(513),
                Some(1024),
                None,
                Some(256),
                InputAccounting::Inclusive,
            ),
            finish_reasons: &[(R::Stop, 1), (R::Length, 1)],
            duration_seconds: 3.0,
            time_to_first_token_seconds: Some(0.5),
            // (3.0 − 0.5) / (513 − 1) = 2.5 / 512
            time_per_output_token_seconds: Some(0.004_882_812_5),
            service_name: "faq-service",
            environment: Some("prod"),
            conversation_id: Some("conv_42"),
            user_id: Some("u-7"),
            output_type: Some("text"),
            dimensions: &[Some("faq")],
            input_text: Some("What is the capital of France?"),
            output_text: Some("Paris.\nLa capitale est"),
            system_text: Some("Answer in French."),
            ..Expected::default()
        },
    );
}

#[test]
fn semconv_v1_40_anthropic_inclusive_cache_creation() {
    // The spec tells Anthropic instrumentations to sum: input 3510 = 10 uncached + 3000 read +
    // 500 written. Inclusive, kept as is.
    let res = resource(vec![kv("service.name", s("coder"))]);
    let span = SpanBuilder::new("chat claude-sonnet-4-5", SpanKind::Client)
        .lasting(2_000 * MS)
        .attr("gen_ai.operation.name", s("chat"))
        .attr("gen_ai.provider.name", s("anthropic"))
        .attr("gen_ai.request.model", s("claude-sonnet-4-5"))
        .attr("gen_ai.request.max_tokens", i(1024))
        .attr("gen_ai.response.model", s("claude-sonnet-4-5-20250929"))
        .attr("gen_ai.response.id", s("msg_01XFDUDYJgAACzvnptvVoYEL"))
        .attr("gen_ai.response.finish_reasons", strs(&["end_turn"]))
        .attr("gen_ai.usage.input_tokens", i(3510))
        .attr("gen_ai.usage.output_tokens", i(200))
        .attr("gen_ai.usage.cache_read.input_tokens", i(3000))
        .attr("gen_ai.usage.cache_creation.input_tokens", i(500))
        .build();
    let call = call(&plain(), Some(&res), &span);
    assert_call(
        &call,
        &span,
        &Expected {
            operation: "chat",
            provider: "anthropic",
            request_model: "claude-sonnet-4-5",
            response_model: "claude-sonnet-4-5-20250929",
            response_id: Some("msg_01XFDUDYJgAACzvnptvVoYEL"),
            usage: usage(
                Some(3510),
                Some(200),
                Some(3000),
                Some(500),
                None,
                InputAccounting::Inclusive,
            ),
            finish_reasons: &[(R::Stop, 1)],
            duration_seconds: 2.0,
            service_name: "coder",
            ..Expected::default()
        },
    );
    assert_eq!(call.usage.uncached_input(), Some(10));
}

#[test]
fn genai_unreleased_cache_write_and_structured_output_messages() {
    // semantic-conventions-genai (unreleased): `cache_write` replaces `cache_creation`, per
    // modality counts, int `top_k`; output messages as a structured array of key-value lists.
    let res = resource(vec![kv("service.name", s("translator"))]);
    let text_part = kvlist(vec![kv("type", s("text")), kv("content", s("Bonjour"))]);
    let output_messages = array(vec![kvlist(vec![
        kv("role", s("assistant")),
        kv("parts", array(vec![text_part])),
        kv("finish_reason", s("end_turn")),
    ])]);
    let span = SpanBuilder::new("chat claude-opus-4-1", SpanKind::Client)
        .lasting(1_000 * MS)
        .attr("gen_ai.operation.name", s("chat"))
        .attr("gen_ai.provider.name", s("anthropic"))
        .attr("gen_ai.request.model", s("claude-opus-4-1"))
        .attr("gen_ai.request.top_k", i(40))
        .attr("gen_ai.request.stream", b(false))
        .attr("gen_ai.response.model", s("claude-opus-4-1-20250805"))
        .attr("gen_ai.response.id", s("msg_02"))
        .attr("gen_ai.usage.input_tokens", i(1500))
        .attr("gen_ai.usage.output_tokens", i(150))
        .attr("gen_ai.usage.cache_read.input_tokens", i(1000))
        .attr("gen_ai.usage.cache_write.input_tokens", i(300))
        .attr("gen_ai.usage.text.input_tokens", i(1500))
        .attr("gen_ai.usage.text.output_tokens", i(150))
        .attr("gen_ai.output.messages", output_messages)
        .build();
    let call = call(&plain(), Some(&res), &span);
    assert_call(
        &call,
        &span,
        &Expected {
            operation: "chat",
            provider: "anthropic",
            request_model: "claude-opus-4-1",
            response_model: "claude-opus-4-1-20250805",
            response_id: Some("msg_02"),
            streaming: Some(false),
            usage: usage(
                Some(1500),
                Some(150),
                Some(1000),
                Some(300),
                None,
                InputAccounting::Inclusive,
            ),
            finish_reasons: &[(R::Stop, 1)],
            duration_seconds: 1.0,
            service_name: "translator",
            output_text: Some("Bonjour"),
            ..Expected::default()
        },
    );
    assert_eq!(call.usage.uncached_input(), Some(200));
}

#[test]
fn anthropic_native_usage_copied_verbatim_is_converted_to_inclusive() {
    // An instrumentation that copies Anthropic's `usage` as is: `input_tokens` excludes the
    // cache, so cache (1000 + 300) exceeds input (25). Reported exclusive, stored inclusive:
    // 25 + 1000 + 300 = 1325.
    let res = resource(vec![kv("service.name", s("agent"))]);
    let span = SpanBuilder::new("chat claude-3-5-sonnet-latest", SpanKind::Client)
        .lasting(4_000 * MS)
        .attr("gen_ai.operation.name", s("chat"))
        .attr("gen_ai.provider.name", s("anthropic"))
        .attr("gen_ai.request.model", s("claude-3-5-sonnet-latest"))
        .attr("gen_ai.response.model", s("claude-3-5-sonnet-20241022"))
        .attr("gen_ai.response.finish_reasons", strs(&["tool_use"]))
        .attr("gen_ai.usage.input_tokens", i(25))
        .attr("gen_ai.usage.output_tokens", i(80))
        .attr("gen_ai.usage.cache_read.input_tokens", i(1000))
        .attr("gen_ai.usage.cache_creation.input_tokens", i(300))
        .build();
    let call = call(&plain(), Some(&res), &span);
    assert_call(
        &call,
        &span,
        &Expected {
            operation: "chat",
            provider: "anthropic",
            request_model: "claude-3-5-sonnet-latest",
            response_model: "claude-3-5-sonnet-20241022",
            usage: usage(
                Some(1325),
                Some(80),
                Some(1000),
                Some(300),
                None,
                InputAccounting::Exclusive,
            ),
            finish_reasons: &[(R::ToolCall, 1)],
            duration_seconds: 4.0,
            service_name: "agent",
            ..Expected::default()
        },
    );
    assert_eq!(call.usage.uncached_input(), Some(25));
}

// ---------------------------------------------------------------------------------------------
// Traceloop OpenLLMetry
// ---------------------------------------------------------------------------------------------

#[test]
fn openllmetry_up_to_0_47_streamed_chat_with_chunk_events() {
    // `llm.request.type`, `prompt_tokens`, `llm.is_streaming`, flattened prompt/completion and
    // one `llm.content.completion.chunk` event per chunk: TTFT = first chunk − span start.
    let res = resource(vec![kv("service.name", s("demo-llmetry"))]);
    let mut builder = SpanBuilder::new("openai.chat", SpanKind::Client)
        .lasting(1_250 * MS)
        .attr("llm.request.type", s("chat"))
        .attr("gen_ai.system", s("openai"))
        .attr("gen_ai.request.model", s("gpt-4o"))
        .attr("llm.headers", s("None"))
        .attr("llm.is_streaming", b(true))
        .attr("gen_ai.openai.api_base", s("http://127.0.0.1:8000/v1/"))
        .attr("traceloop.workflow.name", s("joke_flow"))
        .attr("traceloop.association.properties.user_id", s("alice"))
        .attr("traceloop.association.properties.session_id", s("sess-1"))
        .attr("gen_ai.prompt.0.role", s("user"))
        .attr(
            "gen_ai.prompt.0.content",
            s("Tell me a joke about OpenTelemetry"),
        )
        .attr("gen_ai.response.model", s("gpt-4o-2024-08-06"))
        .attr("gen_ai.response.id", s("chatcmpl-stream1"))
        .attr("gen_ai.usage.prompt_tokens", i(12))
        .attr("gen_ai.usage.completion_tokens", i(9))
        .attr("llm.usage.total_tokens", i(21))
        .attr("gen_ai.completion.0.finish_reason", s("stop"))
        .attr("gen_ai.completion.0.role", s("assistant"))
        .attr(
            "gen_ai.completion.0.content",
            s("Why did the span cross the road?"),
        );
    // Ten chunks (role, eight content chunks, finish), the first 250 ms after the start.
    for n in 0..10 {
        builder = builder.event("llm.content.completion.chunk", (250 + 100 * n) * MS, vec![]);
    }
    let span = builder.build();
    let call = call(&with_feature(), Some(&res), &span);
    assert_call(
        &call,
        &span,
        &Expected {
            operation: "chat",
            provider: "openai",
            request_model: "gpt-4o",
            response_model: "gpt-4o-2024-08-06",
            response_id: Some("chatcmpl-stream1"),
            streaming: Some(true),
            usage: io(12, 9),
            finish_reasons: &[(R::Stop, 1)],
            duration_seconds: 1.25,
            time_to_first_token_seconds: Some(0.25),
            // (1.25 − 0.25) / (9 − 1)
            time_per_output_token_seconds: Some(0.125),
            service_name: "demo-llmetry",
            conversation_id: Some("sess-1"),
            user_id: Some("alice"),
            dimensions: &[Some("joke_flow")],
            input_text: Some("Tell me a joke about OpenTelemetry"),
            output_text: Some("Why did the span cross the road?"),
            ..Expected::default()
        },
    );
}

#[test]
fn openllmetry_0_48_to_0_54_azure_tool_call_with_cache_read() {
    // Mid era: `input_tokens`, `cache_read_input_tokens`, `llm.usage.reasoning_tokens`,
    // capitalised `Azure` system, per-choice `tool_calls` finish reason, `llm.user`.
    let res = resource(vec![kv("service.name", s("weather-bot"))]);
    let span = SpanBuilder::new("openai.chat", SpanKind::Client)
        .lasting(600 * MS)
        .attr("llm.request.type", s("chat"))
        .attr("gen_ai.system", s("Azure"))
        .attr("gen_ai.request.model", s("gpt-4o"))
        .attr("llm.is_streaming", b(false))
        .attr("llm.user", s("user-123"))
        .attr(
            "gen_ai.openai.api_base",
            s("https://contoso.openai.azure.com/openai/deployments/gpt-4o"),
        )
        .attr("gen_ai.prompt.0.role", s("user"))
        .attr("gen_ai.prompt.0.content", s("Weather in Paris?"))
        .attr("llm.request.functions.0.name", s("get_weather"))
        .attr("gen_ai.response.model", s("gpt-4o-2024-11-20"))
        .attr("gen_ai.response.id", s("chatcmpl-tool1"))
        .attr("gen_ai.openai.system_fingerprint", s("fp_ee1d74bde0"))
        .attr("gen_ai.usage.input_tokens", i(350))
        .attr("gen_ai.usage.output_tokens", i(40))
        .attr("llm.usage.total_tokens", i(390))
        .attr("gen_ai.usage.cache_read_input_tokens", i(128))
        .attr("llm.usage.reasoning_tokens", i(0))
        .attr("gen_ai.completion.0.finish_reason", s("tool_calls"))
        .attr("gen_ai.completion.0.role", s("assistant"))
        .attr("gen_ai.completion.0.tool_calls.0.id", s("call_abc"))
        .attr("gen_ai.completion.0.tool_calls.0.name", s("get_weather"))
        .attr(
            "gen_ai.completion.0.tool_calls.0.arguments",
            s(r#"{"city": "Paris"}"#),
        )
        .build();
    let call = call(&plain(), Some(&res), &span);
    assert_call(
        &call,
        &span,
        &Expected {
            operation: "chat",
            provider: "azure.ai.openai",
            request_model: "gpt-4o",
            response_model: "gpt-4o-2024-11-20",
            response_id: Some("chatcmpl-tool1"),
            system_fingerprint: Some("fp_ee1d74bde0"),
            streaming: Some(false),
            usage: usage(
                Some(350),
                Some(40),
                Some(128),
                None,
                Some(0),
                InputAccounting::Inclusive,
            ),
            finish_reasons: &[(R::ToolCall, 1)],
            duration_seconds: 0.6,
            service_name: "weather-bot",
            user_id: Some("user-123"),
            input_text: Some("Weather in Paris?"),
            ..Expected::default()
        },
    );
}

#[test]
fn openllmetry_0_55_and_later_streamed_tool_call_with_reasoning() {
    // New era: `gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.is_streaming`,
    // `gen_ai.usage.reasoning_tokens` (not the spec name), cache read 0 when absent, finish
    // reason `tool_call`, parts-format messages, `gen_ai.content.completion.chunk` events.
    let res = resource(vec![kv("service.name", s("concierge"))]);
    let mut builder = SpanBuilder::new("openai.chat", SpanKind::Client)
        .lasting(2_500 * MS)
        .attr("gen_ai.operation.name", s("chat"))
        .attr("gen_ai.provider.name", s("openai"))
        .attr("gen_ai.request.model", s("o4-mini"))
        .attr("gen_ai.request.reasoning_effort", s("low"))
        .attr("gen_ai.is_streaming", b(true))
        .attr("gen_ai.user", s("user-9"))
        .attr("gen_ai.openai.api_base", s("http://127.0.0.1:8000/v1/"))
        .attr("traceloop.association.properties.session_id", s("s-55"))
        .attr("gen_ai.response.model", s("o4-mini-2025-04-16"))
        .attr("gen_ai.response.id", s("chatcmpl-new1"))
        .attr("gen_ai.usage.input_tokens", i(300))
        .attr("gen_ai.usage.output_tokens", i(129))
        .attr("gen_ai.usage.total_tokens", i(429))
        .attr("gen_ai.usage.cache_read.input_tokens", i(0))
        .attr("gen_ai.usage.reasoning_tokens", i(64))
        .attr("gen_ai.response.finish_reasons", strs(&["tool_call"]))
        .attr(
            "gen_ai.input.messages",
            s(r#"[{"role": "user", "parts": [{"type": "text", "content": "Book a table for two"}]}]"#),
        )
        .attr(
            "gen_ai.output.messages",
            s(r#"[{"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "book_table", "arguments": {"people": 2}}], "finish_reason": "tool_call"}]"#),
        );
    for n in 0..5 {
        builder = builder.event(
            "gen_ai.content.completion.chunk",
            (500 + 200 * n) * MS,
            vec![],
        );
    }
    let span = builder.build();
    let call = call(&plain(), Some(&res), &span);
    assert_call(
        &call,
        &span,
        &Expected {
            operation: "chat",
            provider: "openai",
            request_model: "o4-mini",
            response_model: "o4-mini-2025-04-16",
            response_id: Some("chatcmpl-new1"),
            streaming: Some(true),
            usage: usage(
                Some(300),
                Some(129),
                Some(0),
                None,
                Some(64),
                InputAccounting::Inclusive,
            ),
            finish_reasons: &[(R::ToolCall, 1)],
            duration_seconds: 2.5,
            time_to_first_token_seconds: Some(0.5),
            // (2.5 − 0.5) / (129 − 1) = 2 / 128
            time_per_output_token_seconds: Some(0.015_625),
            service_name: "concierge",
            conversation_id: Some("s-55"),
            user_id: Some("user-9"),
            input_text: Some("Book a table for two"),
            // Only a tool call came back: captured, but no text.
            output_text: Some(""),
            ..Expected::default()
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Arize OpenInference
// ---------------------------------------------------------------------------------------------

#[test]
fn openinference_streamed_chat_completion() {
    // `openinference.span.kind=LLM`, response model in `llm.model_name`, request model and the
    // stream flag only inside the JSON `llm.invocation_parameters`, `llm.token_count.*`,
    // flattened messages, the "First Token Stream Event", session and user; project name on the
    // resource with the SDK's placeholder service name.
    let res = resource(vec![
        kv("service.name", s("unknown_service")),
        kv("openinference.project.name", s("rag-demo")),
    ]);
    let span = SpanBuilder::new("ChatCompletion", SpanKind::Internal)
        .lasting(625 * MS)
        .attr("openinference.span.kind", s("LLM"))
        .attr("llm.system", s("openai"))
        .attr("llm.provider", s("openai"))
        .attr("llm.model_name", s("gpt-4o-mini-2024-07-18"))
        .attr(
            "llm.invocation_parameters",
            s(r#"{"model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true}, "temperature": 0.3}"#),
        )
        .attr(
            "input.value",
            s(r#"{"messages": [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "Summarize: the cat sat on the mat."}], "model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true}, "temperature": 0.3}"#),
        )
        .attr("input.mime_type", s("application/json"))
        .attr("llm.input_messages.0.message.role", s("system"))
        .attr("llm.input_messages.0.message.content", s("You are helpful."))
        .attr("llm.input_messages.1.message.role", s("user"))
        .attr(
            "llm.input_messages.1.message.content",
            s("Summarize: the cat sat on the mat."),
        )
        .attr(
            "output.value",
            s(r#"{"id": "chatcmpl-oi1", "choices": [{"index": 0, "message": {"role": "assistant", "content": "A cat sat."}, "finish_reason": "stop"}], "model": "gpt-4o-mini-2024-07-18"}"#),
        )
        .attr("output.mime_type", s("application/json"))
        .attr("llm.output_messages.0.message.role", s("assistant"))
        .attr("llm.output_messages.0.message.content", s("A cat sat."))
        .attr("llm.token_count.prompt", i(25))
        .attr("llm.token_count.completion", i(5))
        .attr("llm.token_count.total", i(30))
        .attr("llm.finish_reason", s("stop"))
        .attr("session.id", s("sess-oi"))
        .attr("user.id", s("user-oi"))
        .attr("metadata", s(r#"{"tier": "free"}"#))
        .attr("tag.tags", strs(&["beta"]))
        .event("First Token Stream Event", 125 * MS, vec![])
        .build();
    let call = call(&plain(), Some(&res), &span);
    assert_call(
        &call,
        &span,
        &Expected {
            operation: "chat",
            provider: "openai",
            request_model: "gpt-4o-mini",
            response_model: "gpt-4o-mini-2024-07-18",
            streaming: Some(true),
            usage: io(25, 5),
            finish_reasons: &[(R::Stop, 1)],
            duration_seconds: 0.625,
            time_to_first_token_seconds: Some(0.125),
            // (0.625 − 0.125) / (5 − 1)
            time_per_output_token_seconds: Some(0.125),
            service_name: "rag-demo",
            conversation_id: Some("sess-oi"),
            user_id: Some("user-oi"),
            input_text: Some("You are helpful.\nSummarize: the cat sat on the mat."),
            output_text: Some("A cat sat."),
            ..Expected::default()
        },
    );
}

#[test]
fn openinference_responses_api_prefers_flattened_messages_over_raw_payload() {
    // For the Responses API the raw `input.value` keeps the instructions under `instructions`
    // and the user text under `input`: only the flattened messages (including multimodal
    // `message.contents.{j}.message_content.text`) say what was asked.
    let res = resource(vec![kv("service.name", s("vision"))]);
    let span = SpanBuilder::new("Response", SpanKind::Internal)
        .lasting(1_000 * MS)
        .attr("openinference.span.kind", s("LLM"))
        .attr("llm.system", s("openai"))
        .attr("llm.model_name", s("gpt-4.1-2025-04-14"))
        .attr(
            "llm.invocation_parameters",
            s(r#"{"model": "gpt-4.1", "max_output_tokens": 100}"#),
        )
        .attr(
            "input.value",
            s(r#"{"input": "https://example.com/cat.png", "instructions": "Be brief.", "model": "gpt-4.1"}"#),
        )
        .attr("llm.input_messages.0.message.role", s("system"))
        .attr("llm.input_messages.0.message.content", s("Be brief."))
        .attr("llm.input_messages.1.message.role", s("user"))
        .attr(
            "llm.input_messages.1.message.contents.0.message_content.type",
            s("text"),
        )
        .attr(
            "llm.input_messages.1.message.contents.0.message_content.text",
            s("What is in this image?"),
        )
        .attr(
            "llm.input_messages.1.message.contents.1.message_content.type",
            s("image"),
        )
        .attr(
            "llm.input_messages.1.message.contents.1.message_content.image.image.url",
            s("https://example.com/cat.png"),
        )
        .attr(
            "output.value",
            s(r#"{"id": "resp_123", "output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "A cat."}]}], "status": "completed"}"#),
        )
        .attr("llm.output_messages.0.message.role", s("assistant"))
        .attr("llm.output_messages.0.message.content", s("A cat."))
        .attr("llm.token_count.prompt", i(1200))
        .attr("llm.token_count.completion", i(30))
        .attr("llm.token_count.total", i(1230))
        .attr("llm.token_count.prompt_details.cache_read", i(1024))
        .build();
    let call = call(&plain(), Some(&res), &span);
    assert_call(
        &call,
        &span,
        &Expected {
            operation: "chat",
            provider: "openai",
            request_model: "gpt-4.1",
            response_model: "gpt-4.1-2025-04-14",
            usage: usage(
                Some(1200),
                Some(30),
                Some(1024),
                None,
                None,
                InputAccounting::Inclusive,
            ),
            duration_seconds: 1.0,
            service_name: "vision",
            input_text: Some("Be brief.\nWhat is in this image?"),
            output_text: Some("A cat."),
            ..Expected::default()
        },
    );
}

#[test]
fn openinference_raw_payload_is_the_fallback_without_messages() {
    // With message capture hidden (`OPENINFERENCE_HIDE_INPUT_MESSAGES`) the raw payloads remain.
    let span = SpanBuilder::new("ChatCompletion", SpanKind::Internal)
        .attr("openinference.span.kind", s("LLM"))
        .attr("llm.system", s("openai"))
        .attr("llm.model_name", s("gpt-4o-2024-08-06"))
        .attr(
            "input.value",
            s(r#"{"messages": [{"role": "user", "content": "Hi"}], "model": "gpt-4o"}"#),
        )
        .attr(
            "output.value",
            s(r#"{"choices": [{"message": {"role": "assistant", "content": "Hello!"}}]}"#),
        )
        .attr("llm.token_count.prompt", i(8))
        .attr("llm.token_count.completion", i(2))
        .build();
    let call = call(&plain(), None, &span);
    assert_call(
        &call,
        &span,
        &Expected {
            operation: "chat",
            provider: "openai",
            request_model: "gpt-4o-2024-08-06",
            response_model: "gpt-4o-2024-08-06",
            usage: io(8, 2),
            input_text: Some("Hi"),
            output_text: Some("Hello!"),
            ..Expected::default()
        },
    );
}

// ---------------------------------------------------------------------------------------------
// OpenLIT
// ---------------------------------------------------------------------------------------------

#[test]
fn openlit_up_to_1_33_8_application_name_environment_and_cost() {
    // Old era: span named after the endpoint, `gen_ai.application_name` / `gen_ai.environment`
    // on the span (here under an app-provided tracer whose resource names no service),
    // `gen_ai.request.is_stream`, empty `gen_ai.request.user`, cost, content in span events as
    // plain text.
    let res = resource(vec![
        kv("service.name", s("unknown_service")),
        kv("telemetry.sdk.language", s("python")),
    ]);
    let span = SpanBuilder::new("openai.chat.completions", SpanKind::Client)
        .lasting(500 * MS)
        .attr("telemetry.sdk.name", s("openlit"))
        .attr("gen_ai.system", s("openai"))
        .attr("gen_ai.operation.name", s("chat"))
        .attr("gen_ai.endpoint", s("openai.chat.completions"))
        .attr("gen_ai.response.id", s("chatcmpl-old1"))
        .attr("gen_ai.environment", s("production"))
        .attr("gen_ai.application_name", s("chatbot"))
        .attr("gen_ai.request.model", s("gpt-3.5-turbo"))
        .attr("gen_ai.request.top_p", f(1.0))
        .attr("gen_ai.request.max_tokens", i(-1))
        .attr("gen_ai.request.user", s(""))
        .attr("gen_ai.request.temperature", f(1.0))
        .attr("gen_ai.request.presence_penalty", f(0.0))
        .attr("gen_ai.request.frequency_penalty", f(0.0))
        .attr("gen_ai.request.seed", s(""))
        .attr("gen_ai.request.is_stream", b(false))
        .attr("gen_ai.response.model", s("gpt-3.5-turbo-0125"))
        .attr("gen_ai.response.finish_reasons", strs(&["stop"]))
        .attr("gen_ai.usage.input_tokens", i(14))
        .attr("gen_ai.usage.output_tokens", i(8))
        .attr("gen_ai.usage.total_tokens", i(22))
        // 14 × $0.0005/1K + 8 × $0.0015/1K
        .attr("gen_ai.usage.cost", f(0.000_019))
        .event(
            "gen_ai.content.prompt",
            499 * MS,
            vec![kv("gen_ai.prompt", s("user: What is 2+2?"))],
        )
        .event(
            "gen_ai.content.completion",
            499 * MS,
            vec![kv("gen_ai.completion", s("2 + 2 = 4."))],
        )
        .build();
    let call = call(&plain(), Some(&res), &span);
    assert_call(
        &call,
        &span,
        &Expected {
            operation: "chat",
            provider: "openai",
            request_model: "gpt-3.5-turbo",
            response_model: "gpt-3.5-turbo-0125",
            response_id: Some("chatcmpl-old1"),
            streaming: Some(false),
            usage: io(14, 8),
            finish_reasons: &[(R::Stop, 1)],
            duration_seconds: 0.5,
            service_name: "chatbot",
            environment: Some("production"),
            reported_cost_usd: Some(0.000_019),
            input_text: Some("user: What is 2+2?"),
            output_text: Some("2 + 2 = 4."),
            ..Expected::default()
        },
    );
}

#[test]
fn openlit_1_33_9_to_1_36_8_streamed_with_server_ttft() {
    // Mid era: span `service.name` / `deployment.environment`, still `gen_ai.system`,
    // `gen_ai.server.time_to_first_token` trusted because the call streamed, content as both
    // span attributes and events. OpenLIT writes the service tier into
    // `gen_ai.response.system_fingerprint`: that name is deliberately not read.
    let res = resource(vec![
        kv("service.name", s("rag-api")),
        kv("deployment.environment", s("prod")),
        kv("telemetry.sdk.name", s("openlit")),
    ]);
    let span = SpanBuilder::new("chat gpt-4o", SpanKind::Client)
        .lasting(1_000 * MS)
        .attr("telemetry.sdk.name", s("openlit"))
        .attr("gen_ai.operation.name", s("chat"))
        .attr("gen_ai.system", s("openai"))
        .attr("gen_ai.endpoint", s("openai.chat.completions"))
        .attr("server.address", s("api.openai.com"))
        .attr("server.port", i(443))
        .attr("gen_ai.request.model", s("gpt-4o"))
        .attr("gen_ai.request.is_stream", b(true))
        .attr("gen_ai.request.user", s(""))
        .attr("gen_ai.request.service_tier", s("auto"))
        .attr("gen_ai.response.id", s("chatcmpl-mid1"))
        .attr("gen_ai.response.model", s("gpt-4o-2024-08-06"))
        .attr("gen_ai.response.finish_reasons", strs(&["stop"]))
        .attr("gen_ai.response.service_tier", s("default"))
        .attr("gen_ai.response.system_fingerprint", s("default"))
        .attr("gen_ai.output.type", s("text"))
        .attr("gen_ai.usage.input_tokens", i(20))
        .attr("gen_ai.usage.output_tokens", i(6))
        .attr("gen_ai.client.token.usage", i(26))
        .attr("gen_ai.usage.cost", f(0.000_11))
        .attr("deployment.environment", s("prod"))
        .attr("service.name", s("rag-api"))
        .attr("gen_ai.server.time_to_first_token", f(0.375))
        .attr("gen_ai.server.time_per_output_token", f(0.125))
        .attr("gen_ai.prompt", s("user: hi"))
        .attr("gen_ai.completion", s("Hello! How can I help?"))
        .event(
            "gen_ai.content.prompt",
            999 * MS,
            vec![kv("gen_ai.prompt", s("user: hi"))],
        )
        .event(
            "gen_ai.content.completion",
            999 * MS,
            vec![kv("gen_ai.completion", s("Hello! How can I help?"))],
        )
        .build();
    let call = call(&plain(), Some(&res), &span);
    assert_call(
        &call,
        &span,
        &Expected {
            operation: "chat",
            provider: "openai",
            request_model: "gpt-4o",
            response_model: "gpt-4o-2024-08-06",
            response_id: Some("chatcmpl-mid1"),
            streaming: Some(true),
            usage: io(20, 6),
            finish_reasons: &[(R::Stop, 1)],
            duration_seconds: 1.0,
            time_to_first_token_seconds: Some(0.375),
            // (1.0 − 0.375) / (6 − 1)
            time_per_output_token_seconds: Some(0.125),
            service_name: "rag-api",
            environment: Some("prod"),
            output_type: Some("text"),
            reported_cost_usd: Some(0.000_11),
            input_text: Some("user: hi"),
            output_text: Some("Hello! How can I help?"),
            ..Expected::default()
        },
    );
}

#[test]
fn openlit_1_42_streamed_with_provider_cache_and_messages() {
    // New era: `gen_ai.provider.name`, `gen_ai.request.stream` (1.42+), cache read and creation
    // set even when 0, reasoning only when > 0, `openai.response.*`, parts-format messages.
    let res = resource(vec![
        kv("service.name", s("support-api")),
        kv("deployment.environment", s("staging")),
    ]);
    let span = SpanBuilder::new("chat gpt-4.1-mini", SpanKind::Client)
        .lasting(1_250 * MS)
        .attr("telemetry.sdk.name", s("openlit"))
        .attr("gen_ai.operation.name", s("chat"))
        .attr("gen_ai.provider.name", s("openai"))
        .attr("server.address", s("api.openai.com"))
        .attr("server.port", i(443))
        .attr("gen_ai.request.model", s("gpt-4.1-mini"))
        .attr("gen_ai.request.stream", b(true))
        .attr("gen_ai.response.model", s("gpt-4.1-mini-2025-04-14"))
        .attr("gen_ai.response.id", s("chatcmpl-lit142"))
        .attr("gen_ai.response.finish_reasons", strs(&["stop"]))
        .attr("gen_ai.output.type", s("text"))
        .attr("openai.response.system_fingerprint", s("fp_4c2851f862"))
        .attr("openai.response.service_tier", s("default"))
        .attr("gen_ai.usage.input_tokens", i(4096))
        .attr("gen_ai.usage.output_tokens", i(33))
        .attr("gen_ai.usage.cache_read.input_tokens", i(2048))
        .attr("gen_ai.usage.cache_creation.input_tokens", i(0))
        .attr("gen_ai.client.token.usage", i(4129))
        .attr("gen_ai.usage.cost", f(0.0025))
        .attr("gen_ai.server.time_to_first_token", f(0.25))
        .attr("gen_ai.server.time_per_output_token", f(0.03))
        .attr("service.name", s("support-api"))
        .attr("deployment.environment", s("staging"))
        .attr(
            "gen_ai.input.messages",
            s(r#"[{"role": "user", "parts": [{"type": "text", "content": "Reset my password"}]}]"#),
        )
        .attr(
            "gen_ai.output.messages",
            s(r#"[{"role": "assistant", "parts": [{"type": "text", "content": "Use the reset link."}], "finish_reason": "stop"}]"#),
        )
        .build();
    let call = call(&plain(), Some(&res), &span);
    assert_call(
        &call,
        &span,
        &Expected {
            operation: "chat",
            provider: "openai",
            request_model: "gpt-4.1-mini",
            response_model: "gpt-4.1-mini-2025-04-14",
            response_id: Some("chatcmpl-lit142"),
            system_fingerprint: Some("fp_4c2851f862"),
            streaming: Some(true),
            usage: usage(
                Some(4096),
                Some(33),
                Some(2048),
                Some(0),
                None,
                InputAccounting::Inclusive,
            ),
            finish_reasons: &[(R::Stop, 1)],
            duration_seconds: 1.25,
            time_to_first_token_seconds: Some(0.25),
            // (1.25 − 0.25) / (33 − 1)
            time_per_output_token_seconds: Some(0.031_25),
            service_name: "support-api",
            environment: Some("staging"),
            output_type: Some("text"),
            reported_cost_usd: Some(0.0025),
            input_text: Some("Reset my password"),
            output_text: Some("Use the reset link."),
            ..Expected::default()
        },
    );
}

#[test]
fn openlit_non_streamed_ttft_equal_to_duration_is_not_a_ttft() {
    // OpenLIT ≥1.36.9 sets TTFT = whole duration and TBT = 0 on non-streamed calls.
    let build = |with_flag: bool| {
        let mut builder = SpanBuilder::new("chat gpt-4o-mini", SpanKind::Client)
            .lasting(900 * MS)
            .attr("gen_ai.operation.name", s("chat"))
            .attr("gen_ai.provider.name", s("openai"))
            .attr("gen_ai.request.model", s("gpt-4o-mini"))
            .attr("gen_ai.response.model", s("gpt-4o-mini-2024-07-18"))
            .attr("gen_ai.response.finish_reasons", strs(&["stop"]))
            .attr("gen_ai.usage.input_tokens", i(50))
            .attr("gen_ai.usage.output_tokens", i(10))
            .attr("gen_ai.usage.cache_read.input_tokens", i(0))
            .attr("gen_ai.usage.cache_creation.input_tokens", i(0))
            .attr("gen_ai.server.time_to_first_token", f(0.9))
            .attr("gen_ai.server.time_per_output_token", f(0.0));
        if with_flag {
            builder = builder.attr("gen_ai.request.is_stream", b(false));
        }
        builder.build()
    };
    let expected = Expected {
        operation: "chat",
        provider: "openai",
        request_model: "gpt-4o-mini",
        response_model: "gpt-4o-mini-2024-07-18",
        usage: usage(
            Some(50),
            Some(10),
            Some(0),
            Some(0),
            None,
            InputAccounting::Inclusive,
        ),
        finish_reasons: &[(R::Stop, 1)],
        duration_seconds: 0.9,
        ..Expected::default()
    };
    let flagged = build(true);
    assert_call(
        &call(&plain(), None, &flagged),
        &flagged,
        &Expected {
            streaming: Some(false),
            ..expected.clone()
        },
    );
    // Without any stream flag (a pipeline dropped it) the untrusted TTFT is not trusted either.
    let unflagged = build(false);
    assert_call(&call(&plain(), None, &unflagged), &unflagged, &expected);
}

#[test]
fn empty_finish_reason_strings_are_not_counted() {
    // OpenLIT writes `[scope._finish_reason or ""]`; an empty `gen_ai.request.user` too.
    let span = SpanBuilder::new("chat llama3", SpanKind::Client)
        .attr("gen_ai.operation.name", s("chat"))
        .attr("gen_ai.provider.name", s("ollama"))
        .attr("gen_ai.request.model", s("llama3"))
        .attr("gen_ai.response.finish_reasons", strs(&[""]))
        .attr("gen_ai.request.user", s(""))
        .attr("gen_ai.usage.input_tokens", i(5))
        .attr("gen_ai.usage.output_tokens", i(3))
        .build();
    let call = call(&plain(), None, &span);
    assert_call(
        &call,
        &span,
        &Expected {
            operation: "chat",
            provider: "ollama",
            request_model: "llama3",
            usage: io(5, 3),
            ..Expected::default()
        },
    );
}

#[test]
fn empty_higher_ranked_attribute_does_not_hide_a_lower_ranked_one() {
    // `user.id` ranks above `gen_ai.request.user`; an empty one must not mask the real one.
    let span = SpanBuilder::new("chat gpt-4o", SpanKind::Client)
        .attr("gen_ai.operation.name", s("chat"))
        .attr("gen_ai.provider.name", s("openai"))
        .attr("gen_ai.request.model", s("gpt-4o"))
        .attr("user.id", s(""))
        .attr("gen_ai.request.user", s("end-user-3"))
        .build();
    let call = call(&plain(), None, &span);
    assert_eq!(call.user_id, Some("end-user-3"));
}

// ---------------------------------------------------------------------------------------------
// Langfuse
// ---------------------------------------------------------------------------------------------

fn langfuse_resource() -> opentelemetry_proto::tonic::resource::v1::Resource {
    // The Langfuse SDK's own TracerProvider: OTel's placeholder service name.
    resource(vec![
        kv("service.name", s("unknown_service")),
        kv("telemetry.sdk.language", s("python")),
        kv("telemetry.sdk.name", s("opentelemetry")),
    ])
}

#[test]
fn langfuse_openai_wrapper_streamed_generation() {
    // `langfuse.openai` streaming: raw OpenAI usage JSON (inclusive), completion start as a
    // JSON-serialized ISO datetime, response model, user and session.
    let res = langfuse_resource();
    let span = SpanBuilder::new("OpenAI-generation", SpanKind::Internal)
        .lasting(1_250 * MS)
        .attr("langfuse.observation.type", s("generation"))
        .attr("langfuse.environment", s("production"))
        .attr("user.id", s("lf-user"))
        .attr("session.id", s("lf-session"))
        .attr(
            "langfuse.observation.input",
            s(r#"[{"role": "user", "content": "Say hello"}]"#),
        )
        .attr(
            "langfuse.observation.model.parameters",
            s(r#"{"temperature": 1, "max_tokens": "Infinity", "top_p": 1, "frequency_penalty": 0, "presence_penalty": 0}"#),
        )
        .attr("langfuse.observation.model.name", s("gpt-4o-2024-08-06"))
        .attr("langfuse.observation.output", s("Hello there"))
        .attr(
            "langfuse.observation.usage_details",
            s(r#"{"completion_tokens": 33, "prompt_tokens": 1000, "total_tokens": 1033, "completion_tokens_details": {"accepted_prediction_tokens": 0, "audio_tokens": 0, "reasoning_tokens": 10, "rejected_prediction_tokens": 0}, "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 512}}"#),
        )
        .attr(
            "langfuse.observation.completion_start_time",
            s(r#""2026-01-01T00:00:00.250000Z""#),
        )
        .build();
    let call = call(&plain(), Some(&res), &span);
    assert_call(
        &call,
        &span,
        &Expected {
            operation: "chat",
            request_model: "gpt-4o-2024-08-06",
            response_model: "gpt-4o-2024-08-06",
            streaming: Some(true),
            usage: usage(
                Some(1000),
                Some(33),
                Some(512),
                None,
                Some(10),
                InputAccounting::Inclusive,
            ),
            duration_seconds: 1.25,
            time_to_first_token_seconds: Some(0.25),
            // (1.25 − 0.25) / (33 − 1)
            time_per_output_token_seconds: Some(0.031_25),
            service_name: "unknown_service",
            environment: Some("production"),
            conversation_id: Some("lf-session"),
            user_id: Some("lf-user"),
            input_text: Some("Say hello"),
            output_text: Some("Hello there"),
            ..Expected::default()
        },
    );
}

#[test]
fn langfuse_exclusive_buckets_and_cost_details() {
    // Langfuse's own buckets are exclusive: input 70 + cached 30 + audio 10 = 110 inclusive,
    // output 25 + reasoning 5 = 30. `cost_details.total` is the reported cost.
    let span = SpanBuilder::new("summarize", SpanKind::Internal)
        .lasting(2_000 * MS)
        .attr("langfuse.observation.type", s("generation"))
        .attr("langfuse.observation.model.name", s("gpt-4o-audio-preview"))
        .attr(
            "langfuse.observation.usage_details",
            s(r#"{"input": 70, "input_cached_tokens": 30, "input_audio_tokens": 10, "output": 25, "output_reasoning_tokens": 5, "total": 140}"#),
        )
        .attr(
            "langfuse.observation.cost_details",
            s(r#"{"input": 0.0001, "output": 0.0002, "total": 0.0003}"#),
        )
        .build();
    let res = langfuse_resource();
    let call = call(&plain(), Some(&res), &span);
    assert_call(
        &call,
        &span,
        &Expected {
            operation: "chat",
            request_model: "gpt-4o-audio-preview",
            response_model: "gpt-4o-audio-preview",
            usage: usage(
                Some(110),
                Some(30),
                Some(30),
                None,
                Some(5),
                InputAccounting::Exclusive,
            ),
            duration_seconds: 2.0,
            service_name: "unknown_service",
            reported_cost_usd: Some(0.0003),
            ..Expected::default()
        },
    );
    assert_eq!(call.usage.uncached_input(), Some(80));
    assert_eq!(call.usage.non_reasoning_output(), Some(25));
}

#[test]
fn langfuse_langchain_and_anthropic_shapes() {
    // The LangChain callback handler: `input`/`output` minus every detail, which keeps its
    // own `input_*`/`output_*` key; raw Anthropic usage: `input_tokens` beside the cache keys.
    let langchain = SpanBuilder::new("ChatAnthropic", SpanKind::Internal)
        .attr("langfuse.observation.type", s("generation"))
        .attr("langfuse.observation.model.name", s("claude-3-5-haiku-20241022"))
        .attr(
            "langfuse.observation.usage_details",
            s(r#"{"input": 20, "output": 40, "total": 1360, "input_cache_read": 1000, "input_cache_creation": 300}"#),
        )
        .build();
    let anthropic = SpanBuilder::new("Anthropic-generation", SpanKind::Internal)
        .attr("langfuse.observation.type", s("generation"))
        .attr("langfuse.observation.model.name", s("claude-3-5-haiku-20241022"))
        .attr(
            "langfuse.observation.usage_details",
            s(r#"{"input_tokens": 20, "output_tokens": 40, "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 300, "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 100}, "server_tool_use": null, "service_tier": "standard"}"#),
        )
        .build();
    // Raw Anthropic usage also says which cache writes have the 1-hour lifetime.
    for (span, cache_write_1h) in [(&langchain, None), (&anthropic, Some(100))] {
        let call = call(&plain(), None, span);
        assert_call(
            &call,
            span,
            &Expected {
                operation: "chat",
                request_model: "claude-3-5-haiku-20241022",
                response_model: "claude-3-5-haiku-20241022",
                usage: TokenUsage {
                    cache_write_1h,
                    ..usage(
                        Some(1320),
                        Some(40),
                        Some(1000),
                        Some(300),
                        None,
                        InputAccounting::Exclusive,
                    )
                },
                ..Expected::default()
            },
        );
    }
}

#[test]
fn langfuse_openai_responses_api_usage_is_inclusive() {
    // `langfuse.openai` on the Responses API copies its usage as is: inclusive, details subsets.
    let span = SpanBuilder::new("OpenAI-generation", SpanKind::Internal)
        .lasting(4_000 * MS)
        .attr("langfuse.observation.type", s("generation"))
        .attr("langfuse.observation.model.name", s("o3-2025-04-16"))
        .attr(
            "langfuse.observation.usage_details",
            s(r#"{"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 1024}, "output_tokens": 300, "output_tokens_details": {"reasoning_tokens": 256}, "total_tokens": 1500}"#),
        )
        .build();
    let call = call(&plain(), None, &span);
    assert_call(
        &call,
        &span,
        &Expected {
            operation: "chat",
            request_model: "o3-2025-04-16",
            response_model: "o3-2025-04-16",
            usage: usage(
                Some(1200),
                Some(300),
                Some(1024),
                None,
                Some(256),
                InputAccounting::Inclusive,
            ),
            duration_seconds: 4.0,
            ..Expected::default()
        },
    );
}

#[test]
fn langfuse_failed_generation_is_an_error() {
    // `langfuse.openai` on an exception: level ERROR, a status message, zero cost; the OTel
    // status is left unset.
    let span = SpanBuilder::new("OpenAI-generation", SpanKind::Internal)
        .lasting(100 * MS)
        .attr("langfuse.observation.type", s("generation"))
        .attr("langfuse.observation.model.name", s("gpt-4o"))
        .attr("langfuse.observation.level", s("ERROR"))
        .attr(
            "langfuse.observation.status_message",
            s("Connection error."),
        )
        .attr(
            "langfuse.observation.cost_details",
            s(r#"{"input": 0, "output": 0, "total": 0}"#),
        )
        .build();
    let res = langfuse_resource();
    let call = call(&plain(), Some(&res), &span);
    assert_call(
        &call,
        &span,
        &Expected {
            operation: "chat",
            request_model: "gpt-4o",
            response_model: "gpt-4o",
            duration_seconds: 0.1,
            error_type: Some("_OTHER"),
            service_name: "unknown_service",
            reported_cost_usd: Some(0.0),
            ..Expected::default()
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Cross-cutting: finish reasons, errors, what is not a call, rejections, sampling
// ---------------------------------------------------------------------------------------------

type Case<'a> = (&'a str, &'a [&'a str], &'a [(R, u16)]);

#[test]
fn finish_reason_vocabulary_across_providers() {
    // (provider, reported reasons, expected counts)
    let cases: &[Case] = &[
        (
            "openai",
            &["stop", "stop", "length"],
            &[(R::Stop, 2), (R::Length, 1)],
        ),
        (
            "openai",
            &["tool_calls", "function_call", "content_filter"],
            &[(R::ContentFilter, 1), (R::ToolCall, 2)],
        ),
        (
            "anthropic",
            &[
                "end_turn",
                "stop_sequence",
                "max_tokens",
                "tool_use",
                "refusal",
                "pause_turn",
            ],
            &[
                (R::Stop, 2),
                (R::Length, 1),
                (R::ContentFilter, 1),
                (R::ToolCall, 1),
                (R::Other, 1),
            ],
        ),
        (
            "gcp.gemini",
            &[
                "STOP",
                "MAX_TOKENS",
                "SAFETY",
                "RECITATION",
                "MALFORMED_FUNCTION_CALL",
            ],
            &[
                (R::Stop, 1),
                (R::Length, 1),
                (R::ContentFilter, 2),
                (R::Error, 1),
            ],
        ),
        (
            "aws.bedrock",
            &[
                "end_turn",
                "guardrail_intervened",
                "content_filtered",
                "tool_use",
            ],
            &[(R::Stop, 1), (R::ContentFilter, 2), (R::ToolCall, 1)],
        ),
        (
            "cohere",
            &["COMPLETE", "MAX_TOKENS", "ERROR_TOXIC"],
            &[(R::Stop, 1), (R::Length, 1), (R::ContentFilter, 1)],
        ),
        (
            "mistral_ai",
            &["stop", "model_length", "tool_calls", "error"],
            &[
                (R::Stop, 1),
                (R::Length, 1),
                (R::ToolCall, 1),
                (R::Error, 1),
            ],
        ),
    ];
    for &(provider, reasons, expected) in cases {
        let span = SpanBuilder::new("chat m", SpanKind::Client)
            .attr("gen_ai.operation.name", s("chat"))
            .attr("gen_ai.provider.name", s(provider))
            .attr("gen_ai.request.model", s("m"))
            .attr("gen_ai.response.finish_reasons", strs(reasons))
            .build();
        let call = call(&plain(), None, &span);
        assert_eq!(call.provider, provider);
        assert_eq!(
            call.finish_reasons.iter().collect::<Vec<_>>(),
            expected.to_vec(),
            "{provider}: {reasons:?}"
        );
    }
    // OpenInference's single `llm.finish_reason`, and a JSON-encoded array some SDKs write.
    let single = SpanBuilder::new("ChatCompletion", SpanKind::Internal)
        .attr("openinference.span.kind", s("LLM"))
        .attr("llm.finish_reason", s("length"))
        .build();
    let call_single = call(&plain(), None, &single);
    assert_eq!(
        call_single.finish_reasons.iter().collect::<Vec<_>>(),
        vec![(R::Length, 1)]
    );
    let json = SpanBuilder::new("chat m", SpanKind::Client)
        .attr("gen_ai.operation.name", s("chat"))
        .attr(
            "gen_ai.response.finish_reasons",
            s(r#"["stop", "tool_calls"]"#),
        )
        .build();
    let call_json = call(&plain(), None, &json);
    assert_eq!(
        call_json.finish_reasons.iter().collect::<Vec<_>>(),
        vec![(R::Stop, 1), (R::ToolCall, 1)]
    );
}

fn chat_span() -> SpanBuilder {
    SpanBuilder::new("chat gpt-4o", SpanKind::Client)
        .attr("gen_ai.operation.name", s("chat"))
        .attr("gen_ai.provider.name", s("openai"))
        .attr("gen_ai.request.model", s("gpt-4o"))
}

#[test]
fn errors_from_status_exception_events_and_error_type() {
    // OpenLLMetry ≤0.47: status ERROR plus the SDK's `exception` event, no `error.type`.
    let llmetry = SpanBuilder::new("openai.chat", SpanKind::Client)
        .attr("llm.request.type", s("chat"))
        .attr("gen_ai.system", s("openai"))
        .attr("gen_ai.request.model", s("gpt-4o"))
        .status(StatusCode::Error, "Error code: 429")
        .event(
            "exception",
            5 * MS,
            vec![
                kv("exception.type", s("RateLimitError")),
                kv(
                    "exception.message",
                    s("Error code: 429 - rate limit exceeded"),
                ),
                kv("exception.stacktrace", s("Traceback ...")),
                kv("exception.escaped", s("False")),
            ],
        )
        .build();
    assert_eq!(
        call(&plain(), None, &llmetry).error_type,
        Some("RateLimitError")
    );
    // openai-v2: `error.type` (the exception class) and status ERROR, no event.
    let v2 = chat_span()
        .attr("error.type", s("APIConnectionError"))
        .status(StatusCode::Error, "Connection error.")
        .build();
    assert_eq!(
        call(&plain(), None, &v2).error_type,
        Some("APIConnectionError")
    );
    // `error.type` wins over the exception event's type.
    let both = chat_span()
        .attr("error.type", s("timeout"))
        .status(StatusCode::Error, "")
        .event("exception", 0, vec![kv("exception.type", s("ReadTimeout"))])
        .build();
    assert_eq!(call(&plain(), None, &both).error_type, Some("timeout"));
    // Status ERROR alone: the convention's fallback value.
    let bare = chat_span().status(StatusCode::Error, "boom").build();
    assert_eq!(call(&plain(), None, &bare).error_type, Some("_OTHER"));
    // A recorded but handled exception on a successful span is not a failure.
    let handled = chat_span()
        .status(StatusCode::Ok, "")
        .event(
            "exception",
            0,
            vec![kv("exception.type", s("RetryableError"))],
        )
        .build();
    assert_eq!(call(&plain(), None, &handled).error_type, None);
    let unset = chat_span()
        .event(
            "exception",
            0,
            vec![kv("exception.type", s("RetryableError"))],
        )
        .build();
    assert_eq!(call(&plain(), None, &unset).error_type, None);
}

#[test]
fn spans_that_are_not_model_calls() {
    let not_calls = [
        // OpenLIT auto-enables httpx: the HTTP client span under every OpenAI call.
        SpanBuilder::new("POST", SpanKind::Client)
            .attr("http.request.method", s("POST"))
            .attr("url.full", s("https://api.openai.com/v1/chat/completions"))
            .attr("server.address", s("api.openai.com"))
            .attr("server.port", i(443))
            .attr("http.response.status_code", i(200))
            .build(),
        SpanBuilder::new("execute_tool get_weather", SpanKind::Internal)
            .attr("gen_ai.operation.name", s("execute_tool"))
            .attr("gen_ai.tool.name", s("get_weather"))
            .attr("gen_ai.tool.call.id", s("call_1"))
            .build(),
        // An agent span summing the usage of the calls under it.
        SpanBuilder::new("invoke_agent planner", SpanKind::Internal)
            .attr("gen_ai.operation.name", s("invoke_agent"))
            .attr("gen_ai.provider.name", s("openai"))
            .attr("gen_ai.agent.name", s("planner"))
            .attr("gen_ai.request.model", s("gpt-4o"))
            .attr("gen_ai.usage.input_tokens", i(5000))
            .attr("gen_ai.usage.output_tokens", i(700))
            .build(),
        // OpenLLMetry CrewAI crew/agent spans: usage and a model, but a traceloop span kind.
        SpanBuilder::new("crew.kickoff", SpanKind::Internal)
            .attr("traceloop.span.kind", s("workflow"))
            .attr("gen_ai.system", s("crewai"))
            .attr("gen_ai.request.model", s("gpt-4o"))
            .attr("gen_ai.usage.prompt_tokens", i(5000))
            .attr("gen_ai.usage.completion_tokens", i(700))
            .build(),
        SpanBuilder::new("Researcher.agent", SpanKind::Client)
            .attr("traceloop.span.kind", s("agent"))
            .attr("gen_ai.system", s("crewai"))
            .attr("gen_ai.request.model", s("gpt-4o"))
            .build(),
        // OpenInference chain with rolled-up token counts.
        SpanBuilder::new("RunnableSequence", SpanKind::Internal)
            .attr("openinference.span.kind", s("CHAIN"))
            .attr("llm.token_count.prompt", i(100))
            .attr("llm.token_count.completion", i(20))
            .build(),
        // A Langfuse span observation.
        SpanBuilder::new("retrieve", SpanKind::Internal)
            .attr("langfuse.observation.type", s("span"))
            .attr("langfuse.observation.usage_details", s(r#"{"input": 3}"#))
            .build(),
        // A model named without a provider (e.g. app code annotating its own span).
        SpanBuilder::new("handler", SpanKind::Server)
            .attr("gen_ai.request.model", s("gpt-4o"))
            .build(),
    ];
    for span in &not_calls {
        assert!(
            normalize(&plain(), None, span).unwrap().is_none(),
            "{} must not be a model call",
            span.name
        );
    }
    // Not a call, so its broken timestamps are not ours to reject either.
    let http_backwards = SpanBuilder::new("GET", SpanKind::Client)
        .attr("http.request.method", s("GET"))
        .times(T0, T0 - 1)
        .build();
    assert!(
        normalize(&plain(), None, &http_backwards)
            .unwrap()
            .is_none()
    );
}

#[test]
fn embeddings_and_completions_operations() {
    let embeddings = SpanBuilder::new("embeddings text-embedding-3-small", SpanKind::Client)
        .attr("gen_ai.operation.name", s("embeddings"))
        .attr("gen_ai.provider.name", s("openai"))
        .attr("gen_ai.request.model", s("text-embedding-3-small"))
        .attr("gen_ai.usage.input_tokens", i(8))
        .build();
    let call_e = call(&plain(), None, &embeddings);
    assert_eq!(call_e.operation, "embeddings");
    assert_eq!(call_e.usage.input, Some(8));
    assert_eq!(call_e.usage.output, None);
    // OpenLLMetry's `llm.request.type` values.
    for (raw, operation) in [
        ("completion", "text_completion"),
        ("embedding", "embeddings"),
    ] {
        let span = SpanBuilder::new("openai.x", SpanKind::Client)
            .attr("llm.request.type", s(raw))
            .build();
        assert_eq!(call(&plain(), None, &span).operation, operation);
    }
    let rerank = SpanBuilder::new("cohere.rerank", SpanKind::Client)
        .attr("llm.request.type", s("rerank"))
        .build();
    assert!(normalize(&plain(), None, &rerank).unwrap().is_none());
    // Usage with no operation and no provider: a call of unknown operation.
    let bare = SpanBuilder::new("llm", SpanKind::Client)
        .attr("gen_ai.usage.output_tokens", i(3))
        .build();
    assert_eq!(call(&plain(), None, &bare).operation, "_OTHER");
}

fn rejection(span: &opentelemetry_proto::tonic::trace::v1::Span) -> RejectReason {
    match normalize(&plain(), None, span) {
        Err(error) => error.reason,
        Ok(other) => panic!(
            "{} was not rejected: {:?}",
            span.name,
            other.map(|c| c.usage)
        ),
    }
}

#[test]
fn invalid_token_counts_are_rejected() {
    let with = |key: &str, value: AnyValue| chat_span().attr(key, value).build();
    assert_eq!(
        rejection(&with("gen_ai.usage.input_tokens", i(-5))),
        RejectReason::InvalidTokenCount
    );
    assert_eq!(
        rejection(&with(
            "gen_ai.usage.output_tokens",
            i(MAX_TOKENS_PER_CALL + 1)
        )),
        RejectReason::InvalidTokenCount
    );
    assert_eq!(
        rejection(&with("gen_ai.usage.input_tokens", s("n/a"))),
        RejectReason::InvalidTokenCount
    );
    assert_eq!(
        rejection(&with("gen_ai.usage.cache_read.input_tokens", f(12.5))),
        RejectReason::InvalidTokenCount
    );
    assert_eq!(
        rejection(&with(
            "llm.token_count.completion_details.reasoning",
            b(true)
        )),
        RejectReason::InvalidTokenCount
    );
    let langfuse_negative = SpanBuilder::new("gen", SpanKind::Internal)
        .attr("langfuse.observation.type", s("generation"))
        .attr(
            "langfuse.observation.usage_details",
            s(r#"{"prompt_tokens": -1, "completion_tokens": 2}"#),
        )
        .build();
    assert_eq!(
        rejection(&langfuse_negative),
        RejectReason::InvalidTokenCount
    );
    let langfuse_fraction = SpanBuilder::new("gen", SpanKind::Internal)
        .attr("langfuse.observation.type", s("generation"))
        .attr(
            "langfuse.observation.usage_details",
            s(r#"{"input": 2.5, "output": 1}"#),
        )
        .build();
    assert_eq!(
        rejection(&langfuse_fraction),
        RejectReason::InvalidTokenCount
    );

    // The boundary itself, integral doubles and numeric strings are accepted.
    let at_max = with("gen_ai.usage.output_tokens", i(MAX_TOKENS_PER_CALL));
    assert_eq!(
        call(&plain(), None, &at_max).usage.output,
        Some(MAX_TOKENS_PER_CALL as u64)
    );
    let lenient = chat_span()
        .attr("gen_ai.usage.input_tokens", f(12.0))
        .attr("gen_ai.usage.output_tokens", s("42"))
        .build();
    assert_eq!(call(&plain(), None, &lenient).usage, io(12, 42));
}

#[test]
fn invalid_ids_and_timestamps_are_rejected() {
    let ids = |trace: &[u8], span: &[u8]| chat_span().ids(trace, span).build();
    assert_eq!(
        rejection(&ids(&[1; 8], &SPAN_ID)),
        RejectReason::InvalidTraceId
    );
    assert_eq!(
        rejection(&ids(&[0; 16], &SPAN_ID)),
        RejectReason::InvalidTraceId
    );
    assert_eq!(rejection(&ids(&[], &SPAN_ID)), RejectReason::InvalidTraceId);
    assert_eq!(
        rejection(&ids(&TRACE_ID, &[1; 16])),
        RejectReason::InvalidSpanId
    );
    assert_eq!(rejection(&ids(&TRACE_ID, &[])), RejectReason::InvalidSpanId);
    assert_eq!(
        rejection(&ids(&TRACE_ID, &[0; 8])),
        RejectReason::InvalidSpanId
    );
    assert_eq!(
        rejection(&chat_span().times(T0, T0 - 1).build()),
        RejectReason::InvalidTimestamps
    );
    assert_eq!(
        rejection(&chat_span().times(0, T0).build()),
        RejectReason::InvalidTimestamps
    );
    // A malformed span that is not a model call is ignored, not reported as the client's error.
    let http = SpanBuilder::new("GET /v1/models", SpanKind::Client)
        .ids(&[1; 8], &[])
        .attr("http.request.method", s("GET"))
        .build();
    assert!(normalize(&plain(), None, &http).unwrap().is_none());
    // A zero-length call is a valid one.
    let instant = chat_span().times(T0, T0).build();
    assert_eq!(call(&plain(), None, &instant).duration_seconds, 0.0);
}

#[test]
fn ttft_outside_the_span_is_dropped() {
    // A first-chunk time after the span ended is a clock problem, not a TTFT.
    let late = chat_span()
        .lasting(1_000 * MS)
        .attr("gen_ai.request.stream", b(true))
        .attr("gen_ai.response.time_to_first_chunk", f(1.5))
        .build();
    let call_late = call(&plain(), None, &late);
    assert_eq!(call_late.streaming, Some(true));
    assert_eq!(call_late.time_to_first_token_seconds, None);
    // Within a millisecond of the end is rounding.
    let edge = chat_span()
        .lasting(1_000 * MS)
        .attr("gen_ai.request.stream", b(true))
        .attr("gen_ai.response.time_to_first_chunk", f(1.0005))
        .build();
    assert_eq!(
        call(&plain(), None, &edge).time_to_first_token_seconds,
        Some(1.0005)
    );
}

#[test]
fn upstream_sampling_threshold_sets_the_adjusted_count() {
    // `th:8` rejects the lower half of the randomness space: each kept span stands for two.
    let span = chat_span()
        .attr("gen_ai.usage.input_tokens", i(10))
        .attr("gen_ai.usage.output_tokens", i(2))
        .trace_state("vendor=abc,ot=th:8;rv:00112233445566")
        .build();
    let call = call(&plain(), None, &span);
    assert_call(
        &call,
        &span,
        &Expected {
            operation: "chat",
            provider: "openai",
            request_model: "gpt-4o",
            usage: io(10, 2),
            adjusted_count: 2.0,
            ..Expected::default()
        },
    );
    assert_eq!(call.sampling.randomness, Some(0x0000_1122_3344_5566));
}

#[test]
fn dimensions_read_span_before_resource() {
    let normalizer = with_feature();
    let res = resource(vec![
        kv("service.name", s("svc")),
        kv("app.feature", s("from-resource")),
    ]);
    let resource_only = chat_span().build();
    assert_eq!(
        call(&normalizer, Some(&res), &resource_only).dimensions[0].as_deref(),
        Some("from-resource")
    );
    // The span's lower-ranked key still beats the resource.
    let span_workflow = chat_span()
        .attr("traceloop.workflow.name", s("checkout"))
        .build();
    assert_eq!(
        call(&normalizer, Some(&res), &span_workflow).dimensions[0].as_deref(),
        Some("checkout")
    );
    // Within the span, the higher-ranked key wins whatever the order; numbers are formatted.
    let both = chat_span()
        .attr("traceloop.workflow.name", s("checkout"))
        .attr("app.feature", i(7))
        .build();
    assert_eq!(
        call(&normalizer, Some(&res), &both).dimensions[0].as_deref(),
        Some("7")
    );
}

// ---------------------------------------------------------------------------------------------
// Log records
// ---------------------------------------------------------------------------------------------

#[test]
fn evaluation_result_from_the_event_name_field() {
    let res = resource(vec![kv("service.name", s("evaluator"))]);
    let record = log_record(
        "gen_ai.evaluation.result",
        vec![
            kv("gen_ai.evaluation.name", s("relevance")),
            kv("gen_ai.evaluation.score.value", f(0.75)),
            kv("gen_ai.evaluation.score.label", s("relevant")),
            kv("gen_ai.evaluation.explanation", s("Answers the question.")),
            kv("gen_ai.response.id", s("chatcmpl-1")),
        ],
        None,
    );
    let normalizer = plain();
    let info = normalizer.resource(Some(&res));
    let Some(LogEvent::Evaluation(evaluation)) = normalizer.log_record(&info, &record).unwrap()
    else {
        panic!("not an evaluation");
    };
    assert_eq!(
        evaluation,
        Evaluation {
            trace_id: &TRACE_ID,
            span_id: &SPAN_ID,
            name: "relevance",
            score: Some(0.75),
            label: Some("relevant"),
            explanation: Some("Answers the question."),
            response_id: Some("chatcmpl-1"),
            error_type: None,
            service_name: "evaluator",
        }
    );
}

#[test]
fn evaluation_result_from_the_older_event_name_attribute() {
    // Older SDKs: no `event_name` field, an `event.name` attribute; no trace context; an int
    // score.
    let mut record = log_record(
        "",
        vec![
            kv("event.name", s("gen_ai.evaluation.result")),
            kv("gen_ai.evaluation.name", s("toxicity")),
            kv("gen_ai.evaluation.score.value", i(1)),
            kv("error.type", s("judge_timeout")),
        ],
        None,
    );
    record.trace_id.clear();
    record.span_id.clear();
    let normalizer = plain();
    let info = normalizer.resource(None);
    let Some(LogEvent::Evaluation(evaluation)) = normalizer.log_record(&info, &record).unwrap()
    else {
        panic!("not an evaluation");
    };
    assert_eq!(
        evaluation,
        Evaluation {
            trace_id: &[],
            span_id: &[],
            name: "toxicity",
            score: Some(1.0),
            label: None,
            explanation: None,
            response_id: None,
            error_type: Some("judge_timeout"),
            service_name: "",
        }
    );
}

#[test]
fn invalid_evaluations_are_rejected() {
    let normalizer = plain();
    let info = normalizer.resource(None);
    let reason = |record: &opentelemetry_proto::tonic::logs::v1::LogRecord| {
        normalizer.log_record(&info, record).unwrap_err().reason
    };
    let unnamed = log_record(
        "gen_ai.evaluation.result",
        vec![kv("gen_ai.evaluation.score.value", f(0.5))],
        None,
    );
    assert_eq!(reason(&unnamed), RejectReason::InvalidEvaluation);
    let empty_name = log_record(
        "gen_ai.evaluation.result",
        vec![kv("gen_ai.evaluation.name", s(""))],
        None,
    );
    assert_eq!(reason(&empty_name), RejectReason::InvalidEvaluation);
    let wordy_score = log_record(
        "gen_ai.evaluation.result",
        vec![
            kv("gen_ai.evaluation.name", s("relevance")),
            kv("gen_ai.evaluation.score.value", s("high")),
        ],
        None,
    );
    assert_eq!(reason(&wordy_score), RejectReason::InvalidEvaluation);
    let mut short_trace = log_record(
        "gen_ai.evaluation.result",
        vec![kv("gen_ai.evaluation.name", s("relevance"))],
        None,
    );
    short_trace.trace_id = vec![1; 8];
    assert_eq!(reason(&short_trace), RejectReason::InvalidTraceId);
    let mut long_span = log_record("gen_ai.choice", vec![], None);
    long_span.span_id = vec![1; 16];
    assert_eq!(reason(&long_span), RejectReason::InvalidSpanId);
}

/// The feedback event as a web app emits it when a user clicks, under the call's trace context.
#[test]
fn user_feedback_event_with_trace_context() {
    let res = resource(vec![kv("service.name", s("support-bot"))]);
    let record = log_record(
        "gen_ai.user.feedback",
        vec![
            kv("gen_ai.feedback.signal", s("thumbs_down")),
            kv("gen_ai.feedback.comment", s("Wrong order number")),
            kv("gen_ai.response.id", s("chatcmpl-9")),
            kv("gen_ai.conversation.id", s("conv-17")),
        ],
        None,
    );
    let normalizer = plain();
    let info = normalizer.resource(Some(&res));
    let Some(LogEvent::Feedback(feedback)) = normalizer.log_record(&info, &record).unwrap() else {
        panic!("not feedback");
    };
    assert_eq!(
        feedback,
        Feedback {
            trace_id: &TRACE_ID,
            span_id: &SPAN_ID,
            response_id: Some("chatcmpl-9"),
            conversation_id: Some("conv-17"),
            service_name: "support-bot",
            signal: FeedbackSignal::ThumbsDown,
            rating: None,
            score: Some(0.0),
            evaluation_name: "user_feedback",
            has_comment: true,
        }
    );
}

/// A rating on a 0–10 scale from an older SDK (`event.name` attribute, int rating as a string,
/// session id instead of a conversation id, no trace context).
#[test]
fn user_feedback_rating_on_its_own_scale() {
    let mut record = log_record(
        "",
        vec![
            kv("event.name", s("gen_ai.user.feedback")),
            kv("gen_ai.feedback.rating", s("7")),
            kv("gen_ai.feedback.rating.min", i(0)),
            kv("gen_ai.feedback.rating.max", i(10)),
            kv("session.id", s("s-1")),
        ],
        None,
    );
    record.trace_id.clear();
    record.span_id.clear();
    let normalizer = plain();
    let info = normalizer.resource(None);
    let Some(LogEvent::Feedback(feedback)) = normalizer.log_record(&info, &record).unwrap() else {
        panic!("not feedback");
    };
    assert_eq!(feedback.signal, FeedbackSignal::Rating);
    assert_eq!((feedback.rating, feedback.score), (Some(7.0), Some(0.7)));
    assert_eq!(feedback.evaluation_name, "user_rating");
    assert_eq!(feedback.conversation_id, Some("s-1"));
    assert_eq!((feedback.trace_id, feedback.service_name), (&[][..], ""));
}

/// `gen_ai.evaluation.result` with a configured user-feedback name is feedback (thumbs from the
/// score, stars on the default 1–5 scale); other names stay evaluations.
#[test]
fn evaluation_results_with_feedback_names_are_user_feedback() {
    let normalizer = plain();
    let info = normalizer.resource(None);
    let thumbs = log_record(
        "gen_ai.evaluation.result",
        vec![
            kv("gen_ai.evaluation.name", s("user_feedback")),
            kv("gen_ai.evaluation.score.value", i(1)),
        ],
        None,
    );
    let Some(LogEvent::Feedback(up)) = normalizer.log_record(&info, &thumbs).unwrap() else {
        panic!("not feedback");
    };
    assert_eq!((up.signal, up.score), (FeedbackSignal::ThumbsUp, Some(1.0)));
    let stars = log_record(
        "gen_ai.evaluation.result",
        vec![
            kv("gen_ai.evaluation.name", s("user_rating")),
            kv("gen_ai.evaluation.score.value", f(2.0)),
        ],
        None,
    );
    let Some(LogEvent::Feedback(two)) = normalizer.log_record(&info, &stars).unwrap() else {
        panic!("not feedback");
    };
    assert_eq!(
        (two.signal, two.score),
        (FeedbackSignal::Rating, Some(0.25))
    );
    assert_eq!(two.evaluation_name, "user_rating");
    let custom = Normalizer::default().with_feedback_rules(FeedbackRules {
        evaluation_names: vec![("csat".to_owned(), FeedbackKind::Score)],
        ..FeedbackRules::default()
    });
    let csat = log_record(
        "gen_ai.evaluation.result",
        vec![
            kv("gen_ai.evaluation.name", s("csat")),
            kv("gen_ai.evaluation.score.value", f(0.5)),
        ],
        None,
    );
    let Some(LogEvent::Feedback(half)) = custom.log_record(&info, &csat).unwrap() else {
        panic!("not feedback");
    };
    assert_eq!((half.score, half.evaluation_name), (Some(0.5), "csat"));
    // With custom rules, user_feedback is an ordinary evaluation again.
    assert!(matches!(
        custom.log_record(&info, &thumbs).unwrap(),
        Some(LogEvent::Evaluation(_))
    ));
}

#[test]
fn invalid_feedback_is_rejected_with_a_reason() {
    let normalizer = plain();
    let info = normalizer.resource(None);
    let detail = |attributes| {
        let record = log_record("gen_ai.user.feedback", attributes, None);
        let error = normalizer.log_record(&info, &record).unwrap_err();
        assert_eq!(error.reason, RejectReason::InvalidFeedback);
        error.detail
    };
    assert_eq!(
        detail(vec![kv("gen_ai.feedback.signal", s("meh"))]),
        "unknown signal \"meh\": expected thumbs_up, thumbs_down, rating, correction or report"
    );
    assert_eq!(
        detail(vec![kv("gen_ai.feedback.comment", s("hi"))]),
        "no signal: expected thumbs_up, thumbs_down, rating, correction or report"
    );
    assert_eq!(
        detail(vec![kv("gen_ai.feedback.rating", i(9))]),
        "rating 9 is outside the scale 1..5"
    );
    assert_eq!(
        detail(vec![kv("gen_ai.feedback.rating", s("great"))]),
        "gen_ai.feedback.rating must be a finite number, got string \"great\""
    );
    let half_thumb = log_record(
        "gen_ai.evaluation.result",
        vec![
            kv("gen_ai.evaluation.name", s("user_feedback")),
            kv("gen_ai.evaluation.score.value", f(0.5)),
        ],
        None,
    );
    assert_eq!(
        normalizer
            .log_record(&info, &half_thumb)
            .unwrap_err()
            .reason,
        RejectReason::InvalidFeedback
    );
}

#[test]
fn choice_and_message_events_carry_finish_reasons_and_content() {
    let normalizer = plain();
    let info = normalizer.resource(None);
    // openai-v2 legacy `gen_ai.choice`: body {index, finish_reason, message{role, content}}.
    let choice = log_record(
        "gen_ai.choice",
        vec![kv("gen_ai.system", s("openai"))],
        Some(kvlist(vec![
            kv("index", i(0)),
            kv("finish_reason", s("tool_calls")),
            kv(
                "message",
                kvlist(vec![
                    kv("role", s("assistant")),
                    kv("content", s("Let me check.")),
                    kv(
                        "tool_calls",
                        array(vec![kvlist(vec![
                            kv("id", s("call_1")),
                            kv("type", s("function")),
                            kv(
                                "function",
                                kvlist(vec![
                                    kv("name", s("get_weather")),
                                    kv("arguments", s(r#"{"city": "Paris"}"#)),
                                ]),
                            ),
                        ])]),
                    ),
                ]),
            ),
        ])),
    );
    let Some(LogEvent::CallContent(event)) = normalizer.log_record(&info, &choice).unwrap() else {
        panic!("not a content event");
    };
    assert_eq!(event.event_name, "gen_ai.choice");
    // No resource: no service name (the records of a resource carry its `service.name`).
    assert_eq!(event.service_name, "");
    assert_eq!(event.trace_id, TRACE_ID.as_slice());
    assert_eq!(event.span_id, SPAN_ID.as_slice());
    assert_eq!(
        event.finish_reasons.iter().collect::<Vec<_>>(),
        vec![(R::ToolCall, 1)]
    );
    assert_eq!(
        event.content.output.map(|c| c.to_text()),
        Some("Let me check.".to_owned())
    );
    assert!(event.content.input.is_none() && event.content.system_instructions.is_none());

    // `gen_ai.user.message` via the older attribute, and the system message.
    let user = log_record(
        "",
        vec![
            kv("event.name", s("gen_ai.user.message")),
            kv("gen_ai.system", s("openai")),
        ],
        Some(kvlist(vec![kv("content", s("Weather in Paris?"))])),
    );
    let Some(LogEvent::CallContent(event)) = normalizer.log_record(&info, &user).unwrap() else {
        panic!("not a content event");
    };
    assert_eq!(event.event_name, "gen_ai.user.message");
    assert!(event.finish_reasons.is_empty());
    assert_eq!(
        event.content.input.map(|c| c.to_text()),
        Some("Weather in Paris?".to_owned())
    );
    let system = log_record(
        "gen_ai.system.message",
        vec![],
        Some(kvlist(vec![kv("content", s("Be concise."))])),
    );
    let Some(LogEvent::CallContent(event)) = normalizer.log_record(&info, &system).unwrap() else {
        panic!("not a content event");
    };
    assert_eq!(
        event.content.system_instructions.map(|c| c.to_text()),
        Some("Be concise.".to_owned())
    );

    // v1.37+ `gen_ai.client.inference.operation.details`: structured attributes.
    let details = log_record(
        "gen_ai.client.inference.operation.details",
        vec![
            kv("gen_ai.operation.name", s("chat")),
            kv(
                "gen_ai.response.finish_reasons",
                strs(&["stop", "", "length"]),
            ),
            kv(
                "gen_ai.input.messages",
                array(vec![kvlist(vec![
                    kv("role", s("user")),
                    kv(
                        "parts",
                        array(vec![kvlist(vec![
                            kv("type", s("text")),
                            kv("content", s("Hi")),
                        ])]),
                    ),
                ])]),
            ),
            kv(
                "gen_ai.output.messages",
                s(
                    r#"[{"role": "assistant", "parts": [{"type": "text", "content": "Hello"}], "finish_reason": "stop"}]"#,
                ),
            ),
        ],
        None,
    );
    let Some(LogEvent::CallContent(event)) = normalizer.log_record(&info, &details).unwrap() else {
        panic!("not a content event");
    };
    assert_eq!(
        event.finish_reasons.iter().collect::<Vec<_>>(),
        vec![(R::Stop, 1), (R::Length, 1)]
    );
    assert_eq!(
        event.content.input.map(|c| c.to_text()),
        Some("Hi".to_owned())
    );
    assert_eq!(
        event.content.output.map(|c| c.to_text()),
        Some("Hello".to_owned())
    );

    // Any other log record is not ours.
    let app_log = log_record("", vec![kv("logger", s("app"))], Some(s("request served")));
    assert!(normalizer.log_record(&info, &app_log).unwrap().is_none());
    let other_event = log_record("browser.page_view", vec![], None);
    assert!(
        normalizer
            .log_record(&info, &other_event)
            .unwrap()
            .is_none()
    );
}

#[test]
fn openinference_embedding_span_carries_its_vector() {
    // `CreateEmbeddings`: the model in `embedding.model_name`, each input's vector flattened.
    let span = SpanBuilder::new("CreateEmbeddings", SpanKind::Internal)
        .attr("openinference.span.kind", s("EMBEDDING"))
        .attr("embedding.model_name", s("text-embedding-3-small"))
        .attr("llm.token_count.prompt", i(8))
        .attr("embedding.embeddings.0.embedding.text", s("hello"))
        .attr(
            "embedding.embeddings.0.embedding.vector",
            array(vec![f(0.25), f(-0.5), f(0.75)]),
        )
        .attr(
            "embedding.embeddings.1.embedding.vector",
            array(vec![f(1.0), f(0.0), f(0.0)]),
        )
        .build();
    let call = call(&plain(), None, &span);
    assert_eq!(call.operation, "embeddings");
    assert_eq!(call.request_model, "text-embedding-3-small");
    assert_eq!(call.usage.input, Some(8));
    assert_eq!(call.embedding(), Some(vec![0.25, -0.5, 0.75]));

    // Written as a JSON string by some SDKs; a non-number component gives no vector.
    let json = SpanBuilder::new("CreateEmbeddings", SpanKind::Internal)
        .attr("openinference.span.kind", s("EMBEDDING"))
        .attr("embedding.embeddings.0.embedding.vector", s("[0.5, 0.5]"))
        .build();
    assert_eq!(call_of(&json).embedding(), Some(vec![0.5, 0.5]));
    let broken = SpanBuilder::new("CreateEmbeddings", SpanKind::Internal)
        .attr("openinference.span.kind", s("EMBEDDING"))
        .attr(
            "embedding.embeddings.0.embedding.vector",
            array(vec![f(0.5), s("x")]),
        )
        .build();
    assert_eq!(call_of(&broken).embedding(), None);
}

fn call_of(span: &opentelemetry_proto::tonic::trace::v1::Span) -> llmwatch_semconv::LlmCall<'_> {
    call(&plain(), None, span)
}
