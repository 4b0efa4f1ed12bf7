//! Spans built with the OpenTelemetry API and sent by the real `opentelemetry-otlp` exporters
//! (gRPC, HTTP/protobuf), hand-written OTLP/JSON, and `llmwatch simulate`, each into a running
//! llmwatch; `/metrics` is then scraped over HTTP and every value checked exactly.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use llmwatch::simulate::{
    self, AttrValue, Generator, Normal, Protocol, ScenarioName, SimulateArgs,
};
use llmwatch_tests::{
    Labels, Metrics, TestServer, flush_and_shutdown, grpc_tracer_provider, http_tracer_provider,
};
use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanKind, Status, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::SdkTracerProvider;

const CALLS: &str = "llmwatch_llm_calls_total";
const TOKENS: &str = "llmwatch_tokens_total";
const FINISH: &str = "llmwatch_finish_reasons_total";
const DURATION: &str = "gen_ai_client_operation_duration_seconds";
const TTFT: &str = "gen_ai_client_operation_time_to_first_chunk_seconds";
const TPOT: &str = "gen_ai_client_operation_time_per_output_chunk_seconds";
const TOKEN_USAGE: &str = "gen_ai_client_token_usage";
const RECEIVED: &str = "llmwatch_received_spans_total";

const SERVICE: &str = "checkout-api";

fn reasons(items: &[&str]) -> Value {
    Value::Array(Array::String(
        items
            .iter()
            .map(|s| StringValue::from(s.to_string()))
            .collect(),
    ))
}

/// One span of the fixture: name, kind, duration, attributes, error status message.
struct Call {
    name: &'static str,
    kind: SpanKind,
    duration: Duration,
    attributes: Vec<KeyValue>,
    error: Option<&'static str>,
}

fn chat(model: &str, provider: &str) -> Vec<KeyValue> {
    vec![
        KeyValue::new("gen_ai.operation.name", "chat"),
        KeyValue::new("gen_ai.provider.name", provider.to_owned()),
        KeyValue::new("gen_ai.request.model", model.to_owned()),
    ]
}

/// Six model calls and one unrelated span, every number fixed.
fn fixture() -> Vec<Call> {
    let with = |mut base: Vec<KeyValue>, more: Vec<KeyValue>| {
        base.extend(more);
        base
    };
    vec![
        Call {
            name: "chat gpt-4o",
            kind: SpanKind::Client,
            duration: Duration::from_millis(1500),
            attributes: with(
                chat("gpt-4o", "openai"),
                vec![
                    KeyValue::new("gen_ai.response.model", "gpt-4o-2024-08-06"),
                    KeyValue::new("gen_ai.request.stream", false),
                    KeyValue::new("gen_ai.usage.input_tokens", 1200i64),
                    KeyValue::new("gen_ai.usage.cache_read.input_tokens", 1024i64),
                    KeyValue::new("gen_ai.usage.output_tokens", 80i64),
                    KeyValue::new("gen_ai.response.finish_reasons", reasons(&["stop"])),
                    KeyValue::new("openai.response.system_fingerprint", "fp_7fcd609668"),
                    KeyValue::new("gen_ai.conversation.id", "conv_1"),
                    KeyValue::new("user.id", "user-1"),
                    KeyValue::new("app.feature", "cart_assistant"),
                ],
            ),
            error: None,
        },
        Call {
            name: "chat gpt-4o",
            kind: SpanKind::Client,
            duration: Duration::from_millis(2000),
            attributes: with(
                chat("gpt-4o", "openai"),
                vec![
                    KeyValue::new("gen_ai.response.model", "gpt-4o-2024-08-06"),
                    KeyValue::new("gen_ai.request.stream", true),
                    KeyValue::new("gen_ai.response.time_to_first_chunk", 0.3),
                    KeyValue::new("gen_ai.usage.input_tokens", 300i64),
                    KeyValue::new("gen_ai.usage.output_tokens", 101i64),
                    // Two choices.
                    KeyValue::new(
                        "gen_ai.response.finish_reasons",
                        reasons(&["stop", "length"]),
                    ),
                ],
            ),
            error: None,
        },
        Call {
            name: "chat gpt-4o",
            kind: SpanKind::Client,
            duration: Duration::from_millis(120),
            attributes: with(
                chat("gpt-4o", "openai"),
                vec![KeyValue::new("error.type", "RateLimitError")],
            ),
            error: Some("Error code: 429 - Rate limit reached"),
        },
        Call {
            name: "chat claude-sonnet-4-5",
            kind: SpanKind::Client,
            duration: Duration::from_secs(3),
            attributes: with(
                chat("claude-sonnet-4-5", "anthropic"),
                vec![
                    KeyValue::new("gen_ai.response.model", "claude-sonnet-4-5-20250929"),
                    KeyValue::new("gen_ai.usage.input_tokens", 5000i64),
                    KeyValue::new("gen_ai.usage.cache_read.input_tokens", 3000i64),
                    KeyValue::new("gen_ai.usage.cache_creation.input_tokens", 1500i64),
                    KeyValue::new("gen_ai.usage.output_tokens", 200i64),
                    KeyValue::new("gen_ai.response.finish_reasons", reasons(&["tool_use"])),
                ],
            ),
            error: None,
        },
        Call {
            name: "chat o3-mini",
            kind: SpanKind::Client,
            duration: Duration::from_secs(12),
            attributes: with(
                chat("o3-mini", "openai"),
                vec![
                    KeyValue::new("gen_ai.response.model", "o3-mini-2025-01-31"),
                    KeyValue::new("gen_ai.usage.input_tokens", 400i64),
                    KeyValue::new("gen_ai.usage.output_tokens", 2000i64),
                    KeyValue::new("gen_ai.usage.reasoning.output_tokens", 1500i64),
                    KeyValue::new("gen_ai.response.finish_reasons", reasons(&["length"])),
                ],
            ),
            error: None,
        },
        Call {
            name: "embeddings text-embedding-3-small",
            kind: SpanKind::Client,
            duration: Duration::from_millis(50),
            attributes: vec![
                KeyValue::new("gen_ai.operation.name", "embeddings"),
                KeyValue::new("gen_ai.provider.name", "openai"),
                KeyValue::new("gen_ai.request.model", "text-embedding-3-small"),
                KeyValue::new("gen_ai.response.model", "text-embedding-3-small"),
                KeyValue::new("gen_ai.usage.input_tokens", 50i64),
            ],
            error: None,
        },
        Call {
            name: "GET /api/cart",
            kind: SpanKind::Server,
            duration: Duration::from_millis(2500),
            attributes: vec![
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("http.route", "/api/cart"),
                KeyValue::new("http.response.status_code", 200i64),
            ],
            error: None,
        },
    ]
}

fn send_fixture(provider: &SdkTracerProvider) {
    let tracer = provider.tracer("llmwatch-tests");
    let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for (i, call) in fixture().into_iter().enumerate() {
        let start = t0 + Duration::from_secs(10 * i as u64);
        let mut span = tracer.build(
            SpanBuilder::from_name(call.name)
                .with_kind(call.kind)
                .with_start_time(start)
                .with_attributes(call.attributes),
        );
        if let Some(message) = call.error {
            span.set_status(Status::error(message));
        }
        span.end_with_timestamp(start + call.duration);
    }
}

fn assert_fixture(m: &Metrics, transport: &str) {
    let gpt = Labels::genai(SERVICE, "openai", "chat", "gpt-4o", "gpt-4o-2024-08-06");
    let gpt_failed = Labels::genai(SERVICE, "openai", "chat", "gpt-4o", "");
    let claude = Labels::genai(
        SERVICE,
        "anthropic",
        "chat",
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
    );
    let o3 = Labels::genai(SERVICE, "openai", "chat", "o3-mini", "o3-mini-2025-01-31");
    let embeddings = Labels::genai(
        SERVICE,
        "openai",
        "embeddings",
        "text-embedding-3-small",
        "text-embedding-3-small",
    );
    let token = |labels: &Labels, kind: &str| m.get(TOKENS, &labels.and(&[("token_type", kind)]));
    let finish =
        |labels: &Labels, reason: &str| m.get(FINISH, &labels.and(&[("finish_reason", reason)]));

    // Calls, by label set and error type; the HTTP server span is not a model call.
    assert_eq!(m.value(CALLS, &gpt), 2.0);
    assert_eq!(
        m.value(CALLS, &gpt_failed.and(&[("error_type", "RateLimitError")])),
        1.0
    );
    assert_eq!(m.value(CALLS, &gpt_failed), 0.0);
    assert_eq!(m.value(CALLS, &claude), 1.0);
    assert_eq!(m.value(CALLS, &o3), 1.0);
    assert_eq!(m.value(CALLS, &embeddings), 1.0);
    assert_eq!(m.total(CALLS), 6.0);

    // Tokens by type: input includes cache, output includes reasoning; absent types absent.
    assert_eq!(token(&gpt, "input"), Some(1500.0));
    assert_eq!(token(&gpt, "output"), Some(181.0));
    assert_eq!(token(&gpt, "cache_read"), Some(1024.0));
    assert_eq!(token(&gpt, "cache_write"), None);
    assert_eq!(token(&gpt, "reasoning"), None);
    assert_eq!(token(&gpt_failed, "input"), None);
    assert_eq!(token(&claude, "input"), Some(5000.0));
    assert_eq!(token(&claude, "cache_read"), Some(3000.0));
    assert_eq!(token(&claude, "cache_write"), Some(1500.0));
    assert_eq!(token(&claude, "output"), Some(200.0));
    assert_eq!(token(&o3, "input"), Some(400.0));
    assert_eq!(token(&o3, "output"), Some(2000.0));
    assert_eq!(token(&o3, "reasoning"), Some(1500.0));
    assert_eq!(token(&embeddings, "input"), Some(50.0));
    assert_eq!(token(&embeddings, "output"), None);
    assert_eq!(
        m.total(TOKENS),
        1500.0 + 181.0 + 1024.0 + 9700.0 + 3900.0 + 50.0
    );

    // Finish reasons, one per choice, mapped to the small vocabulary.
    assert_eq!(finish(&gpt, "stop"), Some(2.0));
    assert_eq!(finish(&gpt, "length"), Some(1.0));
    assert_eq!(finish(&gpt, "tool_call"), None);
    assert_eq!(finish(&claude, "tool_call"), Some(1.0));
    assert_eq!(finish(&o3, "length"), Some(1.0));
    assert_eq!(finish(&embeddings, "stop"), None);
    assert_eq!(m.total(FINISH), 5.0);

    // Duration by stream mode: gpt-4o's 1.5 s call did not stream and its 2.0 s call did (both
    // above 1.28 and within 2.56); the other spans do not say.
    let stream = |labels: &Labels, mode: &str| labels.and(&[("gen_ai_request_stream", mode)]);
    let (gpt_streamed, gpt_unary) = (stream(&gpt, "true"), stream(&gpt, "false"));
    assert_eq!(m.count(DURATION, &gpt_streamed), 1.0);
    assert_eq!(m.sum_of(DURATION, &gpt_streamed), 2.0);
    assert_eq!(m.count(DURATION, &gpt_unary), 1.0);
    assert_eq!(m.sum_of(DURATION, &gpt_unary), 1.5);
    assert_eq!(
        m.get(&format!("{DURATION}_count"), &stream(&gpt, "unknown")),
        None
    );
    for gpt_call in [&gpt_streamed, &gpt_unary] {
        assert_eq!(m.bucket(DURATION, gpt_call, 1.28), 0.0);
        assert_eq!(m.bucket(DURATION, gpt_call, 2.56), 1.0);
    }
    let rate_limited = stream(&gpt_failed, "unknown").and(&[("error_type", "RateLimitError")]);
    assert_eq!(m.count(DURATION, &rate_limited), 1.0);
    assert_eq!(m.bucket(DURATION, &rate_limited, 0.08), 0.0);
    assert_eq!(m.bucket(DURATION, &rate_limited, 0.16), 1.0);
    let claude_any = stream(&claude, "unknown");
    assert_eq!(m.bucket(DURATION, &claude_any, 2.56), 0.0);
    assert_eq!(m.bucket(DURATION, &claude_any, 5.12), 1.0);
    let o3_any = stream(&o3, "unknown");
    assert_eq!(m.bucket(DURATION, &o3_any, 10.24), 0.0);
    assert_eq!(m.bucket(DURATION, &o3_any, 20.48), 1.0);
    let embeddings_any = stream(&embeddings, "unknown");
    assert_eq!(m.bucket(DURATION, &embeddings_any, 0.04), 0.0);
    assert_eq!(m.bucket(DURATION, &embeddings_any, 0.08), 1.0);

    // Time to first chunk: the one streamed call, 0.3 s, in le=0.32 and not in le=0.16.
    assert_eq!(m.count(TTFT, &gpt), 1.0);
    assert_eq!(m.sum_of(TTFT, &gpt), 0.3);
    assert_eq!(m.bucket(TTFT, &gpt, 0.16), 0.0);
    assert_eq!(m.bucket(TTFT, &gpt, 0.32), 1.0);
    assert_eq!(m.get(&format!("{TTFT}_count"), &o3), None);
    // Time per output chunk: (2.0 - 0.3) / (101 - 1) = 0.017 s.
    assert_eq!(m.count(TPOT, &gpt), 1.0);
    assert_eq!(m.bucket(TPOT, &gpt, 0.01), 0.0);
    assert_eq!(m.bucket(TPOT, &gpt, 0.02), 1.0);

    // Token usage histograms: input 1200 and 300, output 80 and 101.
    let input = gpt.and(&[("gen_ai_token_type", "input")]);
    assert_eq!(m.count(TOKEN_USAGE, &input), 2.0);
    assert_eq!(m.sum_of(TOKEN_USAGE, &input), 1500.0);
    assert_eq!(m.bucket(TOKEN_USAGE, &input, 256.0), 0.0);
    assert_eq!(m.bucket(TOKEN_USAGE, &input, 1024.0), 1.0);
    assert_eq!(m.bucket(TOKEN_USAGE, &input, 4096.0), 2.0);
    let output = gpt.and(&[("gen_ai_token_type", "output")]);
    assert_eq!(m.count(TOKEN_USAGE, &output), 2.0);
    assert_eq!(m.bucket(TOKEN_USAGE, &output, 64.0), 0.0);
    assert_eq!(m.bucket(TOKEN_USAGE, &output, 256.0), 2.0);
    let embedded = embeddings.and(&[("gen_ai_token_type", "input")]);
    assert_eq!(m.bucket(TOKEN_USAGE, &embedded, 16.0), 0.0);
    assert_eq!(m.bucket(TOKEN_USAGE, &embedded, 64.0), 1.0);

    // Self-metrics: all seven spans received on this transport, nothing else anywhere.
    for other in ["grpc", "http_protobuf", "http_json", "file"] {
        let expected = if other == transport { 7.0 } else { 0.0 };
        assert_eq!(
            m.value(RECEIVED, &Labels::new(&[("transport", other)])),
            expected,
            "{other}"
        );
    }
    let normalized = |record: &str| {
        m.value(
            "llmwatch_normalized_records_total",
            &Labels::new(&[("signal", "traces"), ("record", record)]),
        )
    };
    assert_eq!(normalized("llm_call"), 6.0);
    assert_eq!(normalized("ignored"), 1.0);
    assert_eq!(m.total("llmwatch_rejected_spans_total"), 0.0);
    assert_eq!(m.total("llmwatch_rejected_requests_total"), 0.0);
    assert_eq!(m.value("llmwatch_label_sets", &Labels::default()), 5.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_grpc_exporter_spans_become_exact_metrics() {
    let server = TestServer::start().await;
    let provider = grpc_tracer_provider(&server.grpc_endpoint(), SERVICE);
    send_fixture(&provider);
    flush_and_shutdown(provider).await;
    assert_fixture(&server.scrape().await, "grpc");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_http_protobuf_exporter_spans_become_exact_metrics() {
    let server = TestServer::start().await;
    let provider = http_tracer_provider(&server.traces_url(), SERVICE);
    send_fixture(&provider);
    flush_and_shutdown(provider).await;
    assert_fixture(&server.scrape().await, "http_protobuf");
    server.stop().await;
}

/// OTLP/JSON as the specification writes it: hex ids, enum names, 64-bit integers as strings.
const HAND_WRITTEN_JSON: &str = r#"{
  "resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-app"}}]},
    "scopeSpans": [{
      "scope": {"name": "hand-written", "version": "1.0"},
      "spans": [
        {
          "traceId": "5b8efff798038103d269b633813fc60c",
          "spanId": "eee19b7ec3c1b174",
          "name": "chat gpt-4o-mini",
          "kind": "SPAN_KIND_CLIENT",
          "startTimeUnixNano": "1700000000000000000",
          "endTimeUnixNano": "1700000000750000000",
          "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
            {"key": "gen_ai.response.model", "value": {"stringValue": "gpt-4o-mini-2024-07-18"}},
            {"key": "gen_ai.request.stream", "value": {"boolValue": true}},
            {"key": "gen_ai.response.time_to_first_chunk", "value": {"doubleValue": 0.3}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "2048"}},
            {"key": "gen_ai.usage.cache_read.input_tokens", "value": {"intValue": "1024"}},
            {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "64"}},
            {"key": "gen_ai.response.finish_reasons",
             "value": {"arrayValue": {"values": [{"stringValue": "tool_calls"}]}}}
          ],
          "status": {}
        },
        {
          "traceId": "5b8efff798038103d269b633813fc60c",
          "spanId": "eee19b7ec3c1b175",
          "parentSpanId": "eee19b7ec3c1b174",
          "name": "chat gpt-4o-mini",
          "kind": "SPAN_KIND_CLIENT",
          "startTimeUnixNano": "1700000001000000000",
          "endTimeUnixNano": "1700000031000000000",
          "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
            {"key": "error.type", "value": {"stringValue": "APITimeoutError"}}
          ],
          "status": {"code": "STATUS_CODE_ERROR", "message": "Request timed out."}
        }
      ]
    }]
  }]
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_written_otlp_json_becomes_exact_metrics() {
    let server = TestServer::start().await;
    let answer = server
        .post_traces(
            Some("application/json"),
            None,
            HAND_WRITTEN_JSON.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(
        answer.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&answer.body)
    );
    let body = answer.json();
    assert!(
        body.get("partialSuccess").is_none_or(|p| p.is_null()),
        "{body}"
    );

    let m = server.scrape().await;
    let ok = Labels::genai(
        "json-app",
        "openai",
        "chat",
        "gpt-4o-mini",
        "gpt-4o-mini-2024-07-18",
    );
    let timed_out = Labels::genai("json-app", "openai", "chat", "gpt-4o-mini", "")
        .and(&[("error_type", "APITimeoutError")]);
    assert_eq!(m.value(CALLS, &ok), 1.0);
    assert_eq!(m.value(CALLS, &timed_out), 1.0);
    assert_eq!(m.total(CALLS), 2.0);
    assert_eq!(m.value(TOKENS, &ok.and(&[("token_type", "input")])), 2048.0);
    assert_eq!(
        m.value(TOKENS, &ok.and(&[("token_type", "cache_read")])),
        1024.0
    );
    assert_eq!(m.value(TOKENS, &ok.and(&[("token_type", "output")])), 64.0);
    assert_eq!(
        m.value(FINISH, &ok.and(&[("finish_reason", "tool_call")])),
        1.0
    );
    let ok_streamed = ok.and(&[("gen_ai_request_stream", "true")]);
    assert_eq!(m.bucket(DURATION, &ok_streamed, 0.64), 0.0);
    assert_eq!(m.bucket(DURATION, &ok_streamed, 1.28), 1.0);
    assert_eq!(m.sum_of(DURATION, &ok_streamed), 0.75);
    let timed_out_unknown = timed_out.and(&[("gen_ai_request_stream", "unknown")]);
    assert_eq!(m.bucket(DURATION, &timed_out_unknown, 20.48), 0.0);
    assert_eq!(m.bucket(DURATION, &timed_out_unknown, 40.96), 1.0);
    assert_eq!(m.bucket(TTFT, &ok, 0.16), 0.0);
    assert_eq!(m.bucket(TTFT, &ok, 0.32), 1.0);
    // (0.75 - 0.3) / 63 ≈ 0.0071 s per chunk.
    assert_eq!(m.bucket(TPOT, &ok, 0.01), 1.0);
    assert_eq!(
        m.value(RECEIVED, &Labels::new(&[("transport", "http_json")])),
        2.0
    );
    assert_eq!(
        m.value(RECEIVED, &Labels::new(&[("transport", "http_protobuf")])),
        0.0
    );
    server.stop().await;
}

/// The finish-reason label a provider's spelling maps to.
fn finish_label(reason: &str) -> &'static str {
    match reason {
        "stop" | "end_turn" => "stop",
        "length" | "max_tokens" => "length",
        "tool_calls" | "tool_use" => "tool_call",
        other => panic!("simulate sent an unexpected finish reason {other}"),
    }
}

/// What `/metrics` must show after a simulated run: recomputed from the pure generator.
#[derive(Default)]
struct Expected {
    calls: BTreeMap<Labels, f64>,
    /// Calls by label set, error type and stream mode.
    durations: BTreeMap<Labels, f64>,
    tokens: BTreeMap<Labels, f64>,
    finishes: BTreeMap<Labels, f64>,
    first_chunks: BTreeMap<Labels, f64>,
}

fn expected_from(generator: Generator) -> Expected {
    let mut expected = Expected::default();
    for span in generator {
        let text = |key: &str| span.str(key).unwrap_or("").to_owned();
        let labels = Labels::genai(
            span.service_name(),
            &text("gen_ai.provider.name"),
            &text("gen_ai.operation.name"),
            &text("gen_ai.request.model"),
            &text("gen_ai.response.model"),
        );
        let with_error = labels.and(&[("error_type", &text("error.type"))]);
        let stream = match span.attribute("gen_ai.request.stream") {
            Some(AttrValue::Bool(true)) => "true",
            Some(AttrValue::Bool(false)) => "false",
            _ => "unknown",
        };
        *expected
            .durations
            .entry(with_error.and(&[("gen_ai_request_stream", stream)]))
            .or_default() += 1.0;
        *expected.calls.entry(with_error).or_default() += 1.0;
        for (key, token_type) in [
            ("gen_ai.usage.input_tokens", "input"),
            ("gen_ai.usage.output_tokens", "output"),
            ("gen_ai.usage.cache_read.input_tokens", "cache_read"),
            ("gen_ai.usage.cache_creation.input_tokens", "cache_write"),
            ("gen_ai.usage.reasoning.output_tokens", "reasoning"),
        ] {
            if let Some(n) = span.int(key) {
                *expected
                    .tokens
                    .entry(labels.and(&[("token_type", token_type)]))
                    .or_default() += n as f64;
            }
        }
        if let Some(AttrValue::StrArray(reasons)) = span.attribute("gen_ai.response.finish_reasons")
        {
            for reason in reasons {
                *expected
                    .finishes
                    .entry(labels.and(&[("finish_reason", finish_label(reason))]))
                    .or_default() += 1.0;
            }
        }
        if span
            .attribute("gen_ai.response.time_to_first_chunk")
            .is_some()
        {
            *expected.first_chunks.entry(labels).or_default() += 1.0;
        }
    }
    expected
}

async fn simulate_round_trip(protocol: Protocol, transport: &str) {
    const SEED: u64 = 42;
    const RATE: f64 = 400.0;
    let server = TestServer::start().await;
    let args = SimulateArgs {
        endpoint: match protocol {
            Protocol::Grpc => server.grpc_endpoint(),
            Protocol::HttpProtobuf => server.http_endpoint(),
        },
        rate: RATE,
        duration: Duration::from_secs(1),
        seed: SEED,
        protocol,
        scenario: ScenarioName::Normal,
        change_after: None,
        time_scale: 1.0,
    };
    let started = SystemTime::now();
    let summary = simulate::send(&args).await.expect("simulate");
    assert_eq!(
        (summary.generated, summary.sent, summary.failed),
        (400, 400, 0),
        "{summary}"
    );
    assert_eq!((summary.services, summary.models), (4, 5), "{summary}");
    // Paced: 400 spans at 400/s take about a second, not less.
    assert!(started.elapsed().unwrap() >= Duration::from_millis(900));

    let expected = expected_from(Generator::new(SEED, RATE, 400, Box::new(Normal)));
    let m = server.scrape().await;
    for (labels, calls) in &expected.calls {
        assert_eq!(m.value(CALLS, labels), *calls, "{CALLS}{labels}");
    }
    for (labels, calls) in &expected.durations {
        assert_eq!(m.count(DURATION, labels), *calls, "{DURATION}{labels}");
    }
    let duration_series = m.named(&format!("{DURATION}_count")).count();
    assert_eq!(duration_series, expected.durations.len());
    // Every nonzero call series was expected (label sets with only failed calls also expose a
    // zero success series).
    let nonzero = m.named(CALLS).filter(|s| s.value > 0.0).count();
    assert_eq!(nonzero, expected.calls.len());
    assert_eq!(m.total(CALLS), 400.0);
    let errors: f64 = expected
        .calls
        .iter()
        .filter(|(labels, _)| labels.0.contains_key("error_type"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(errors, summary.errors as f64);
    for (labels, tokens) in &expected.tokens {
        assert_eq!(m.value(TOKENS, labels), *tokens, "{TOKENS}{labels}");
    }
    assert_eq!(m.named(TOKENS).count(), expected.tokens.len());
    for (labels, n) in &expected.finishes {
        assert_eq!(m.value(FINISH, labels), *n, "{FINISH}{labels}");
    }
    assert_eq!(m.named(FINISH).count(), expected.finishes.len());
    for (labels, n) in &expected.first_chunks {
        assert_eq!(m.count(TTFT, labels), *n, "{TTFT}{labels}");
    }
    assert_eq!(
        expected.first_chunks.values().sum::<f64>(),
        summary.streamed as f64 - (errors_streamed(SEED, RATE) as f64)
    );
    assert_eq!(
        m.value(RECEIVED, &Labels::new(&[("transport", transport)])),
        400.0
    );
    server.stop().await;
}

/// Streamed calls that failed: they have no first chunk.
fn errors_streamed(seed: u64, rate: f64) -> usize {
    Generator::new(seed, rate, 400, Box::new(Normal))
        .filter(|s| {
            s.error.is_some()
                && matches!(
                    s.attribute("gen_ai.request.stream"),
                    Some(AttrValue::Bool(true))
                )
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_over_grpc_delivers_exactly_what_it_generates() {
    simulate_round_trip(Protocol::Grpc, "grpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_over_http_protobuf_delivers_exactly_what_it_generates() {
    simulate_round_trip(Protocol::HttpProtobuf, "http_protobuf").await;
}
