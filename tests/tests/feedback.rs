//! User feedback and implicit session signals end to end.
//!
//! - Feedback through all three paths against a running llmwatch: `gen_ai.user.feedback` and a
//!   feedback-named `gen_ai.evaluation.result` sent by the OpenTelemetry SDK's OTLP log exporter,
//!   `POST /v1/feedback`, and the gRPC `FeedbackService` client; each matched to the right call
//!   and model, checked through `/metrics`.
//! - Invalid feedback on every path: the status, the message, the counted reason, and the valid
//!   items of the same request still counted.
//! - A scripted session stream on an explicit clock: exact follow-up, retry, correction and
//!   abandonment counts, and the survivorship-bias indicator at 1 and at 0.
//! - The server's own sweep ending quiet sessions, and bounded state under many sessions.
//! - Feedback sent before its call's span: recorded when the span arrives exactly as if the span
//!   had come first, and counted unmatched after the configured wait when it never does.
//! - Session signals from content sent only as openai-v2 style `gen_ai.user.message` log events,
//!   before or after the spans, equal to those from the same content on the spans.

use std::time::Duration;

use llmwatch_core::quality::{FeedbackConfig, QualityConfig, SessionConfig, SurvivorshipConfig};
use llmwatch_core::snapshot::{FamilySnapshot, Sample, matching};
use llmwatch_core::{Processor, ProcessorConfig, Transport};
use llmwatch_proto::v1::{Feedback, Signal};
use llmwatch_proto::{FeedbackServiceClient, SubmitFeedbackRequest};
use llmwatch_server::ServerConfig;
use llmwatch_tests::*;
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_sdk::logs::{BatchLogProcessor, SdkLoggerProvider};

const SERVICE: &str = "support-bot";

/// A chat span of `model` with a response id; ids from `n` as [`span`] makes them.
fn chat(n: u64, model: &str, response_id: &str) -> Span {
    let mut span = chat_span(n, model, V::I(100), V::I(20));
    span.attributes
        .push(kv("gen_ai.response.id", s(response_id)));
    span
}

fn feedback_labels(model: &str, signal: &str, channel: &str) -> Labels {
    Labels::new(&[
        ("service_name", SERVICE),
        ("gen_ai_request_model", model),
        ("signal", signal),
        ("channel", channel),
    ])
}

fn score_labels(model: &str, name: &str) -> Labels {
    Labels::new(&[
        ("service_name", SERVICE),
        ("gen_ai_request_model", model),
        ("evaluation_name", name),
        ("source", "user"),
    ])
}

/// A logger provider exporting with the real OTLP/HTTP log exporter (blocking client, batch
/// processor flushed by the test).
fn http_logger_provider(logs_url: &str, service: &str) -> SdkLoggerProvider {
    let exporter = opentelemetry_otlp::LogExporter::builder()
        .with_http()
        .with_http_client(blocking_http_client())
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(logs_url)
        .build()
        .expect("OTLP/HTTP log exporter");
    SdkLoggerProvider::builder()
        .with_resource(
            opentelemetry_sdk::Resource::builder_empty()
                .with_service_name(service.to_owned())
                .build(),
        )
        .with_log_processor(BatchLogProcessor::builder(exporter).build())
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_through_all_three_paths_is_matched_to_its_call() {
    let server = TestServer::start().await;
    let calls = [
        chat(1, "gpt-4o", "chatcmpl-1"),
        chat(2, "claude-sonnet-4", "msg-2"),
        chat(3, "gemini-2.5-pro", "resp-3"),
    ];
    let answer = server
        .post_protobuf(&request(SERVICE, calls.to_vec()))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");

    // 1. OTLP log events from the SDK: a thumbs down under call 1's trace context, and a
    //    `user_rating` evaluation (4 stars) naming call 2 by its response id only.
    let logs_url = format!("{}/v1/logs", server.http_endpoint());
    let provider = http_logger_provider(&logs_url, SERVICE);
    let logger = provider.logger("feedback-widget");
    let mut thumbs = logger.create_log_record();
    thumbs.set_event_name("gen_ai.user.feedback");
    thumbs.set_severity_number(Severity::Info);
    thumbs.add_attribute("gen_ai.feedback.signal", "thumbs_down");
    thumbs.add_attribute("gen_ai.feedback.comment", "wrong order number");
    thumbs.set_trace_context(
        TraceId::from_bytes(calls[0].trace_id[..].try_into().unwrap()),
        SpanId::from_bytes(calls[0].span_id[..].try_into().unwrap()),
        Some(TraceFlags::SAMPLED),
    );
    logger.emit(thumbs);
    let mut stars = logger.create_log_record();
    stars.set_event_name("gen_ai.evaluation.result");
    stars.add_attribute("gen_ai.evaluation.name", "user_rating");
    stars.add_attribute("gen_ai.evaluation.score.value", 4.0);
    stars.add_attribute("gen_ai.response.id", "msg-2");
    logger.emit(stars);
    tokio::task::spawn_blocking(move || {
        provider.force_flush().expect("logs exported");
        provider.shutdown().expect("shutdown");
    })
    .await
    .unwrap();

    // 2. POST /v1/feedback: a batch naming call 3 by trace and span id, call 1 by response id
    //    (5 stars), and a report about no known call.
    let batch = serde_json::json!([
        {"trace_id": hex(&calls[2].trace_id), "span_id": hex(&calls[2].span_id), "signal": "thumbs_up"},
        {"response_id": "chatcmpl-1", "rating": 5},
        {"service_name": "web", "signal": "report", "comment": "offensive"},
    ]);
    let response = server
        .http
        .post(format!("{}/v1/feedback", server.http_endpoint()))
        .header("content-type", "application/json")
        .body(batch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"accepted": 3, "matched": 2, "rejected": 0, "errors": []})
    );

    // 3. gRPC FeedbackService: a correction of call 2 by its ids.
    let mut client = FeedbackServiceClient::connect(server.grpc_endpoint())
        .await
        .unwrap();
    let answer = client
        .submit(SubmitFeedbackRequest {
            feedback: vec![Feedback {
                trace_id: calls[1].trace_id.clone(),
                span_id: calls[1].span_id.clone(),
                signal: Signal::Correction as i32,
                comment: "The refund takes 5 days, not 2".into(),
                ..Feedback::default()
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (answer.accepted, answer.matched, answer.rejected),
        (1, 1, 0)
    );
    assert_eq!(answer.error_message, "");

    let metrics = server.scrape().await;
    let feedback = |model, signal, channel| {
        metrics.value(
            "llmwatch_feedback_total",
            &feedback_labels(model, signal, channel),
        )
    };
    assert_eq!(feedback("gpt-4o", "thumbs_down", "otlp"), 1.0);
    assert_eq!(feedback("claude-sonnet-4", "rating", "otlp"), 1.0);
    assert_eq!(feedback("gemini-2.5-pro", "thumbs_up", "http"), 1.0);
    assert_eq!(feedback("gpt-4o", "rating", "http"), 1.0);
    assert_eq!(feedback("claude-sonnet-4", "correction", "grpc"), 1.0);
    assert_eq!(
        metrics.value(
            "llmwatch_feedback_total",
            &Labels::new(&[
                ("service_name", "web"),
                ("signal", "report"),
                ("channel", "http")
            ]),
        ),
        1.0
    );
    assert_eq!(metrics.total("llmwatch_feedback_total"), 6.0);
    // Thumbs and ratings are user evaluations: down 0, 4 of 1..5 → 0.75, 5 → 1, up 1.
    let score = "llmwatch_evaluation_score";
    assert_eq!(
        metrics.count(score, &score_labels("gpt-4o", "user_feedback")),
        1.0
    );
    assert_eq!(
        metrics.sum_of(score, &score_labels("gpt-4o", "user_feedback")),
        0.0
    );
    assert_eq!(
        metrics.sum_of(score, &score_labels("claude-sonnet-4", "user_rating")),
        0.75
    );
    assert_eq!(
        metrics.sum_of(score, &score_labels("gpt-4o", "user_rating")),
        1.0
    );
    assert_eq!(
        metrics.sum_of(score, &score_labels("gemini-2.5-pro", "user_feedback")),
        1.0
    );
    // The thumbs down, the correction and the report flag their calls.
    let flagged = "llmwatch_evaluations_flagged_total";
    assert_eq!(
        metrics.value(flagged, &score_labels("gpt-4o", "user_feedback")),
        1.0
    );
    assert_eq!(
        metrics.value(flagged, &score_labels("claude-sonnet-4", "user_correction")),
        1.0
    );
    assert_eq!(
        metrics.value(
            flagged,
            &Labels::new(&[
                ("service_name", "web"),
                ("evaluation_name", "user_report"),
                ("source", "user")
            ]),
        ),
        1.0
    );
    assert_eq!(metrics.total(flagged), 3.0);
    // They are in the review queue, newest first, under the matched call's ids.
    let review = server.processor.quality().review().list(10);
    let listed: Vec<_> = review
        .iter()
        .map(|e| {
            (
                e.trace_id.as_str(),
                e.span_id.as_str(),
                e.reasons[0].as_str(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (
                hex(&calls[1].trace_id).as_str(),
                hex(&calls[1].span_id).as_str(),
                "user_correction"
            ),
            ("", "", "user_report"),
            (
                hex(&calls[0].trace_id).as_str(),
                hex(&calls[0].span_id).as_str(),
                "user_feedback = 0"
            ),
        ]
    );
    // support-bot: 5 feedback, 3 positive (4 and 5 stars, thumbs up); all 3 calls covered once.
    let service = Labels::new(&[("service_name", SERVICE)]);
    assert_eq!(
        metrics.value("llmwatch_feedback_positive_ratio", &service),
        0.6
    );
    assert_eq!(
        metrics.value("llmwatch_feedback_coverage_ratio", &service),
        1.0
    );
    assert_eq!(
        metrics.value(
            "llmwatch_normalized_records_total",
            &Labels::new(&[("signal", "logs"), ("record", "feedback")]),
        ),
        2.0
    );
    server.stop().await;
}

fn rejected(metrics: &Metrics, channel: &str, reason: &str) -> f64 {
    metrics.at(
        "llmwatch_feedback_rejected_total",
        &Labels::new(&[("channel", channel), ("reason", reason)]),
    )
}

fn log_record(event: &str, attributes: Vec<KeyValue>) -> LogRecord {
    LogRecord {
        event_name: event.to_owned(),
        attributes,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_feedback_is_refused_with_status_and_counted_while_valid_items_count() {
    let server = TestServer::start().await;
    let url = format!("{}/v1/feedback", server.http_endpoint());
    let post = |body: Vec<u8>, content_type: &'static str| {
        let request = server
            .http
            .post(&url)
            .header("content-type", content_type)
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value =
                serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
            (status, body)
        }
    };

    let (status, body) = post(b"thumbs up!".to_vec(), "application/json").await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON body: "),
        "{body}"
    );
    let (status, body) = post(b"{}".to_vec(), "text/plain").await;
    assert_eq!(status, 415);
    assert_eq!(
        body["message"],
        "unsupported Content-Type \"text/plain\"; feedback is application/json"
    );

    // One valid item among three invalid ones: 200, the valid one recorded, each refusal named.
    let mixed = serde_json::json!([
        {"service_name": "web", "signal": "thumbs_up"},
        {"signal": "meh"},
        {"trace_id": "xyz", "signal": "thumbs_up"},
        {"singal": "thumbs_up"},
    ]);
    let (status, body) = post(mixed.to_string().into_bytes(), "application/json").await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(
        body["errors"][0],
        "item 1: invalid_feedback: unknown signal \"meh\": expected thumbs_up, thumbs_down, rating, correction or report"
    );
    assert_eq!(
        body["errors"][1],
        "item 2: invalid_trace_id: trace_id must be 32 hex digits, got \"xyz\""
    );
    assert!(
        body["errors"][2]
            .as_str()
            .unwrap()
            .starts_with("item 3: invalid_feedback: unknown field `singal`"),
        "{body}"
    );

    // Every item invalid: 400 with the reasons.
    let (status, body) = post(br#"{"rating": 9}"#.to_vec(), "application/json").await;
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "item 0: invalid_feedback: rating 9 is outside the scale 1..5"
    );
    let too_many: Vec<_> = (0..1001)
        .map(|_| serde_json::json!({"signal": "thumbs_up"}))
        .collect();
    let (status, body) = post(
        serde_json::Value::from(too_many).to_string().into_bytes(),
        "application/json",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "too_many_items: 1001 items in one request, at most 1000"
    );

    // gRPC: every item invalid is INVALID_ARGUMENT; a mixed request answers OK with the counts.
    let mut client = FeedbackServiceClient::connect(server.grpc_endpoint())
        .await
        .unwrap();
    let status = client
        .submit(SubmitFeedbackRequest {
            feedback: vec![Feedback::default()],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "item 0: invalid_feedback: no signal: expected thumbs_up, thumbs_down, rating, correction or report"
    );
    let answer = client
        .submit(SubmitFeedbackRequest {
            feedback: vec![
                Feedback {
                    service_name: "web".into(),
                    signal: Signal::ThumbsDown as i32,
                    ..Feedback::default()
                },
                Feedback {
                    trace_id: vec![1, 2, 3],
                    signal: Signal::ThumbsUp as i32,
                    ..Feedback::default()
                },
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((answer.accepted, answer.rejected), (1, 1));
    assert_eq!(
        answer.error_message,
        "item 1: invalid_trace_id: trace_id must be empty or 16 bytes (32 hex digits), got 3 bytes"
    );

    // OTLP: a bad feedback event is a rejected log record (partial success); its neighbour counts.
    let logs = logs_request(
        "web",
        vec![
            log_record(
                "gen_ai.user.feedback",
                vec![kv("gen_ai.feedback.signal", s("thumbs_up"))],
            ),
            log_record(
                "gen_ai.user.feedback",
                vec![kv("gen_ai.feedback.rating", s("great"))],
            ),
        ],
    );
    let answer = server
        .http
        .post(format!("{}/v1/logs", server.http_endpoint()))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&logs).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
    assert_eq!(body["partialSuccess"]["rejectedLogRecords"], 1, "{body}");
    assert_eq!(
        body["partialSuccess"]["errorMessage"],
        "invalid_feedback: gen_ai.feedback.rating must be a finite number, got string \"great\""
    );

    let metrics = server.scrape().await;
    assert_eq!(rejected(&metrics, "http", "undecodable"), 1.0);
    assert_eq!(rejected(&metrics, "http", "unsupported_media_type"), 1.0);
    assert_eq!(rejected(&metrics, "http", "invalid_feedback"), 3.0);
    assert_eq!(rejected(&metrics, "http", "invalid_trace_id"), 1.0);
    assert_eq!(rejected(&metrics, "http", "too_many_items"), 1.0);
    assert_eq!(rejected(&metrics, "grpc", "invalid_feedback"), 1.0);
    assert_eq!(rejected(&metrics, "grpc", "invalid_trace_id"), 1.0);
    assert_eq!(rejected(&metrics, "otlp", "invalid_feedback"), 1.0);
    assert_eq!(metrics.total("llmwatch_feedback_rejected_total"), 10.0);
    assert_eq!(
        metrics.value(
            "llmwatch_rejected_log_records_total",
            &Labels::new(&[("transport", "http_json"), ("reason", "invalid_feedback")]),
        ),
        1.0
    );
    // The valid items: one per path, all from `web`, matched to nothing.
    for channel in ["http", "grpc", "otlp"] {
        assert_eq!(
            metrics.total_where(
                "llmwatch_feedback_total",
                &Labels::new(&[("service_name", "web"), ("channel", channel)]),
            ),
            1.0,
            "{channel}"
        );
    }
    // The refused gRPC request is not also counted as an undecodable OTLP export.
    assert_eq!(metrics.total("llmwatch_rejected_requests_total"), 0.0);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Sessions on an explicit clock
// ---------------------------------------------------------------------------------------------

/// The wall clock of the scripted stream (Unix seconds).
const NOW: u64 = 1_800_000_000;
const SEC: u64 = 1_000_000_000;

/// One chat turn of `conversation`: its own trace (from `n`), starting `at` seconds after
/// [`NOW`] and lasting two seconds; the captured input is `messages` (OpenAI shape) when given.
fn turn(n: u64, conversation: &str, at: u64, user_messages: &[&str]) -> Span {
    let mut span = chat_span(n, "gpt-4o", V::I(50), V::I(10));
    span.start_time_unix_nano = (NOW + at) * SEC;
    span.end_time_unix_nano = (NOW + at + 2) * SEC;
    span.attributes
        .push(kv("gen_ai.conversation.id", s(conversation)));
    span.attributes
        .push(kv("gen_ai.response.id", s(format!("r-{n}"))));
    if !user_messages.is_empty() {
        let messages: Vec<_> = user_messages
            .iter()
            .map(|m| serde_json::json!({"role": "user", "content": m}))
            .collect();
        span.attributes.push(kv(
            "gen_ai.input.messages",
            s(serde_json::Value::from(messages).to_string()),
        ));
    }
    span
}

fn processor(sessions: SessionConfig) -> Processor {
    Processor::new(&ProcessorConfig {
        quality: QualityConfig {
            sessions,
            feedback: FeedbackConfig {
                survivorship: SurvivorshipConfig {
                    positive_ratio_above: 0.8,
                    abandonment_ratio_above: 0.5,
                    min_feedback: 10,
                    min_sessions: 10,
                },
                ..FeedbackConfig::default()
            },
            ..QualityConfig::default()
        },
        ..ProcessorConfig::default()
    })
    .unwrap()
}

fn gauge(families: &[FamilySnapshot], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    matching(families, name, labels).next().map(Sample::scalar)
}

#[test]
fn a_scripted_session_stream_gives_exact_signals_and_survivorship_bias() {
    let processor = processor(SessionConfig {
        follow_up_window: 120,
        inactivity_timeout: 900,
        ..SessionConfig::default()
    });
    // happy-bot: 10 conversations, every one going on for three turns (follow-up, a regenerate,
    // a correction), and 10 thumbs up.
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    let mut happy = Vec::new();
    for c in 0..10 {
        let id = format!("h{c}");
        happy.push(turn(next(), &id, 0, &["Where is my order?"]));
        happy.push(turn(
            next(),
            &id,
            30,
            &["Where is my order?", "And the invoice?"],
        ));
        // Regenerate: the same input again.
        happy.push(turn(
            next(),
            &id,
            40,
            &["Where is my order?", "And the invoice?"],
        ));
        happy.push(turn(
            next(),
            &id,
            50,
            &["Where is my order?", "No, the other order"],
        ));
    }
    // leaky-bot: 12 conversations; 8 end after the first answer, 4 come back after 10 minutes
    // (no content captured: a turn without a signal). 12 thumbs up all the same.
    let mut leaky = Vec::new();
    for c in 0..12 {
        let id = format!("l{c}");
        leaky.push(turn(next(), &id, 0, &[]));
        if c < 4 {
            leaky.push(turn(next(), &id, 600, &[]));
        }
    }
    let report =
        processor.ingest_traces_at(&request("happy-bot", happy.clone()), Transport::Grpc, NOW);
    assert_eq!((report.accepted, report.rejected), (40, 0));
    let report = processor.ingest_traces_at(
        &request("leaky-bot", leaky.clone()),
        Transport::Grpc,
        NOW + 600,
    );
    assert_eq!((report.accepted, report.rejected), (16, 0));
    for (service, spans) in [("happy-bot", &happy), ("leaky-bot", &leaky)] {
        for span in spans
            .iter()
            .step_by(if service == "happy-bot" { 4 } else { 1 })
            .take(12)
        {
            let fields = llmwatch_semconv::FeedbackFields {
                trace_id: &span.trace_id,
                span_id: &span.span_id,
                signal: Some("thumbs_up"),
                ..Default::default()
            };
            let receipt = processor
                .submit_feedback_at(&fields, llmwatch_core::quality::Channel::Http, NOW + 700)
                .unwrap();
            assert_eq!(&*receipt.service, service);
        }
    }
    assert_eq!(processor.quality().signals().active_sessions(), 22);
    // At NOW + 1000 happy-bot's sessions (last active at NOW) have been quiet for more than
    // 900 s; leaky-bot's (NOW + 600) have not.
    processor.sweep_sessions(NOW + 1_000);
    assert_eq!(processor.quality().signals().active_sessions(), 12);
    processor.sweep_sessions(NOW + 1_501);
    assert_eq!(processor.quality().signals().active_sessions(), 0);

    let families = processor.snapshot_at(Some((NOW + 1_501) as i64));
    let signals = |service, signal| {
        gauge(
            &families,
            "llmwatch_session_signals_total",
            &[("service_name", service), ("signal", signal)],
        )
    };
    assert_eq!(signals("happy-bot", "follow_up"), Some(10.0));
    assert_eq!(signals("happy-bot", "retry"), Some(10.0));
    assert_eq!(signals("happy-bot", "correction"), Some(10.0));
    assert_eq!(signals("happy-bot", "abandonment"), None);
    assert_eq!(signals("leaky-bot", "abandonment"), Some(8.0));
    assert_eq!(signals("leaky-bot", "follow_up"), None);
    let ratio = |service, signal| {
        gauge(
            &families,
            "llmwatch_session_signal_ratio",
            &[("service_name", service), ("signal", signal)],
        )
    };
    // happy-bot: 40 turns; leaky-bot: 16 turns, 12 ended sessions.
    assert_eq!(ratio("happy-bot", "follow_up"), Some(0.25));
    assert_eq!(ratio("happy-bot", "retry"), Some(0.25));
    assert_eq!(ratio("happy-bot", "correction"), Some(0.25));
    assert_eq!(ratio("happy-bot", "abandonment"), Some(0.0));
    assert_eq!(ratio("leaky-bot", "abandonment"), Some(8.0 / 12.0));
    assert_eq!(ratio("leaky-bot", "follow_up"), Some(0.0));
    let per_service = |name, service| gauge(&families, name, &[("service_name", service)]);
    assert_eq!(
        per_service("llmwatch_sessions_total", "happy-bot"),
        Some(10.0)
    );
    assert_eq!(
        per_service("llmwatch_sessions_total", "leaky-bot"),
        Some(12.0)
    );
    assert_eq!(
        per_service("llmwatch_feedback_positive_ratio", "leaky-bot"),
        Some(1.0)
    );
    // Every thumbs up was on its own call: 10 of 40 happy-bot calls, 12 of 16 leaky-bot calls.
    assert_eq!(
        per_service("llmwatch_feedback_coverage_ratio", "happy-bot"),
        Some(0.25)
    );
    assert_eq!(
        per_service("llmwatch_feedback_coverage_ratio", "leaky-bot"),
        Some(0.75)
    );
    // Feedback is all positive for both; only leaky-bot loses most sessions after one answer.
    assert_eq!(
        per_service("llmwatch_survivorship_bias", "leaky-bot"),
        Some(1.0)
    );
    assert_eq!(
        per_service("llmwatch_survivorship_bias", "happy-bot"),
        Some(0.0)
    );
    // An hour later the window is empty: no ratio, no indicator.
    let later = processor.snapshot_at(Some((NOW + 1_501 + 3_600) as i64));
    assert_eq!(gauge(&later, "llmwatch_survivorship_bias", &[]), None);
    assert_eq!(
        gauge(
            &later,
            "llmwatch_session_signals_total",
            &[("signal", "abandonment")]
        ),
        Some(8.0),
        "counters keep their totals"
    );
}

#[test]
fn state_stays_bounded_under_many_sessions_and_calls() {
    let processor = Processor::new(&ProcessorConfig {
        quality: QualityConfig {
            sessions: SessionConfig {
                max_sessions: 800,
                ..SessionConfig::default()
            },
            feedback: FeedbackConfig {
                max_recent_calls: 1_600,
                ..FeedbackConfig::default()
            },
            ..QualityConfig::default()
        },
        ..ProcessorConfig::default()
    })
    .unwrap();
    for batch in 0..50u64 {
        let spans = (0..1_000)
            .map(|i| {
                let n = batch * 1_000 + i;
                turn(n, &format!("c{n}"), 0, &[])
            })
            .collect();
        processor.ingest_traces_at(&request(SERVICE, spans), Transport::Grpc, NOW + batch);
    }
    let signals = processor.quality().signals();
    assert_eq!(signals.active_sessions(), 800);
    // The first call is long overwritten: its feedback no longer matches; the last one does.
    let first = turn(0, "c0", 0, &[]);
    let last = turn(49_999, "c49999", 0, &[]);
    let submit = |span: &Span| {
        processor
            .submit_feedback_at(
                &llmwatch_semconv::FeedbackFields {
                    trace_id: &span.trace_id,
                    span_id: &span.span_id,
                    service_name: Some(SERVICE),
                    signal: Some("thumbs_up"),
                    ..Default::default()
                },
                llmwatch_core::quality::Channel::Grpc,
                NOW + 50,
            )
            .unwrap()
            .matched
            .is_some()
    };
    assert!(!submit(&first));
    assert!(submit(&last));
    let families = processor.snapshot_at(Some((NOW + 50) as i64));
    let service = [("service_name", SERVICE)];
    assert_eq!(
        gauge(&families, "llmwatch_sessions_evicted_total", &service),
        Some(49_200.0)
    );
    assert_eq!(
        gauge(&families, "llmwatch_sessions_total", &service),
        Some(49_200.0)
    );
    assert_eq!(
        gauge(&families, "llmwatch_sessions_active", &[]),
        Some(800.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_sweep_ends_quiet_sessions() {
    let config = ServerConfig {
        session_sweep_interval: Duration::from_millis(50),
        ..loopback_config()
    };
    let processor = ProcessorConfig {
        quality: QualityConfig {
            sessions: SessionConfig {
                inactivity_timeout: 1,
                ..SessionConfig::default()
            },
            ..QualityConfig::default()
        },
        ..ProcessorConfig::default()
    };
    let server = TestServer::start_with(config, processor).await;
    let spans = vec![
        turn(1, "once", 0, &["Hi"]),
        turn(2, "twice", 0, &["Hi"]),
        turn(3, "twice", 10, &["Hi", "No, that's wrong"]),
    ];
    assert_eq!(
        server.post_protobuf(&request(SERVICE, spans)).await.status,
        200
    );
    let service = Labels::new(&[("service_name", SERVICE)]);
    let mut metrics = server.scrape().await;
    for _ in 0..100 {
        if metrics.get("llmwatch_sessions_total", &service) == Some(2.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        metrics = server.scrape().await;
    }
    assert_eq!(metrics.value("llmwatch_sessions_total", &service), 2.0);
    assert_eq!(
        metrics.value("llmwatch_sessions_active", &Labels::default()),
        0.0
    );
    let signal = |name| service.and(&[("signal", name)]);
    assert_eq!(
        metrics.value("llmwatch_session_signals_total", &signal("abandonment")),
        1.0
    );
    assert_eq!(
        metrics.value("llmwatch_session_signals_total", &signal("correction")),
        1.0
    );
    assert_eq!(
        metrics.value("llmwatch_session_signal_ratio", &signal("abandonment")),
        0.5
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Feedback before its span; content in log events
// ---------------------------------------------------------------------------------------------

/// Posts log records of `service` to the OTLP/HTTP listener (protobuf).
async fn post_logs(server: &TestServer, service: &str, records: Vec<LogRecord>) {
    use prost::Message;
    let body = logs_request(service, records);
    let answer = server
        .http
        .post(format!("{}/v1/logs", server.http_endpoint()))
        .header("content-type", "application/x-protobuf")
        .body(body.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "POST /v1/logs");
}

/// An openai-v2 `gen_ai.user.message` event of `span`'s call: body `{"content": text}`.
fn user_message(span: &Span, text: &str) -> LogRecord {
    LogRecord {
        trace_id: span.trace_id.clone(),
        span_id: span.span_id.clone(),
        event_name: "gen_ai.user.message".to_owned(),
        body: Some(AnyValue {
            value: Some(Value::KvlistValue(KeyValueList {
                values: vec![kv("content", s(text))],
            })),
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_signals_from_content_in_log_events_equal_those_from_span_content() {
    let server = TestServer::start().await;
    // (conversation, start in seconds, the user messages, events before the span)
    let script: [(&str, u64, &[&str], bool); 8] = [
        ("a", 0, &["Where is my order?"], true),
        // A follow-up, its regenerate (a retry), a correction.
        ("a", 30, &["Where is my order?", "And the invoice?"], false),
        ("a", 40, &["Where is my order?", "And the invoice?"], true),
        (
            "a",
            50,
            &["Where is my order?", "No, the other order"],
            false,
        ),
        // Ten minutes later: a turn without a signal.
        (
            "a",
            600,
            &["Where is my order?", "No, the other order", "Thanks"],
            false,
        ),
        ("b", 0, &["Cancel my order"], false),
        // Asked again, then corrected.
        ("b", 10, &["Cancel my order"], false),
        ("b", 20, &["Cancel my order", "Actually, keep it"], true),
    ];
    for (i, (conversation, at, messages, events_first)) in script.iter().enumerate() {
        // The content on the span (gen_ai.input.messages)...
        let on_span = turn(100 + i as u64, conversation, *at, messages);
        let answer = server
            .post_protobuf(&request("spans-bot", vec![on_span]))
            .await;
        assert_eq!(answer.status, 200);
        // ...and the same call with its content only in events, before or after its span.
        let bare = turn(200 + i as u64, conversation, *at, &[]);
        let events: Vec<LogRecord> = messages.iter().map(|m| user_message(&bare, m)).collect();
        let spans = request("events-bot", vec![bare]);
        if *events_first {
            post_logs(&server, "events-bot", events).await;
            assert_eq!(server.post_protobuf(&spans).await.status, 200);
        } else {
            assert_eq!(server.post_protobuf(&spans).await.status, 200);
            post_logs(&server, "events-bot", events).await;
        }
    }
    let metrics = server.scrape().await;
    let signal = |service, signal| {
        metrics
            .get(
                "llmwatch_session_signals_total",
                &Labels::new(&[("service_name", service), ("signal", signal)]),
            )
            .unwrap_or(0.0)
    };
    let ratio = |service, signal| {
        metrics.get(
            "llmwatch_session_signal_ratio",
            &Labels::new(&[("service_name", service), ("signal", signal)]),
        )
    };
    for (name, expected) in [("follow_up", 1.0), ("retry", 2.0), ("correction", 2.0)] {
        assert_eq!(signal("spans-bot", name), expected, "{name}");
        assert_eq!(signal("events-bot", name), expected, "{name}");
        // Per turn: 8 turns each.
        assert_eq!(ratio("spans-bot", name), Some(expected / 8.0), "{name}");
        assert_eq!(
            ratio("events-bot", name),
            ratio("spans-bot", name),
            "{name}"
        );
    }
    assert_eq!(
        metrics.value("llmwatch_sessions_active", &Labels::default()),
        4.0
    );
    assert_eq!(metrics.total("llmwatch_quality_join_dropped_total"), 0.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_before_its_span_is_matched_when_the_span_arrives_else_unmatched_after_the_wait() {
    let config = ServerConfig {
        session_sweep_interval: Duration::from_millis(100),
        ..loopback_config()
    };
    let processor = ProcessorConfig {
        quality: QualityConfig {
            feedback: FeedbackConfig {
                call_wait: 1,
                ..FeedbackConfig::default()
            },
            ..QualityConfig::default()
        },
        ..ProcessorConfig::default()
    };
    // The same feedback and spans, the feedback first on one server and last on the other.
    let early = TestServer::start_with(config.clone(), processor.clone()).await;
    let late = TestServer::start_with(config, processor).await;
    let calls = vec![
        chat(1, "gpt-4o", "chatcmpl-1"),
        chat(2, "claude-sonnet-4", "msg-2"),
    ];
    let items = serde_json::json!([
        {"trace_id": hex(&calls[0].trace_id), "span_id": hex(&calls[0].span_id), "signal": "thumbs_down"},
        {"response_id": "msg-2", "rating": 5},
    ])
    .to_string();
    let post_feedback = |server: &TestServer| {
        let request = server
            .http
            .post(format!("{}/v1/feedback", server.http_endpoint()))
            .header("content-type", "application/json")
            .body(items.clone());
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            serde_json::from_slice::<serde_json::Value>(&response.bytes().await.unwrap()).unwrap()
        }
    };
    // Feedback first: accepted, matched to nothing yet, and not counted while it waits.
    assert_eq!(
        post_feedback(&early).await,
        serde_json::json!({"accepted": 2, "matched": 0, "rejected": 0, "errors": []})
    );
    assert_eq!(early.scrape().await.total("llmwatch_feedback_total"), 0.0);
    let answer = early.post_protobuf(&request(SERVICE, calls.clone())).await;
    assert_eq!(answer.status, 200);
    // The spans first.
    let answer = late.post_protobuf(&request(SERVICE, calls.clone())).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        post_feedback(&late).await,
        serde_json::json!({"accepted": 2, "matched": 2, "rejected": 0, "errors": []})
    );

    let (a, b) = (early.scrape().await, late.scrape().await);
    let service = Labels::new(&[("service_name", SERVICE)]);
    for (name, labels, expected) in [
        (
            "llmwatch_feedback_total",
            feedback_labels("gpt-4o", "thumbs_down", "http"),
            1.0,
        ),
        (
            "llmwatch_feedback_total",
            feedback_labels("claude-sonnet-4", "rating", "http"),
            1.0,
        ),
        (
            "llmwatch_evaluations_flagged_total",
            score_labels("gpt-4o", "user_feedback"),
            1.0,
        ),
        ("llmwatch_feedback_positive_ratio", service.clone(), 0.5),
        ("llmwatch_feedback_coverage_ratio", service.clone(), 1.0),
    ] {
        assert_eq!(a.value(name, &labels), expected, "{name} {labels:?}");
        assert_eq!(b.value(name, &labels), expected, "{name} {labels:?}");
    }
    assert_eq!(a.total("llmwatch_feedback_total"), 2.0);
    let score = "llmwatch_evaluation_score";
    for (model, name, sum) in [
        ("gpt-4o", "user_feedback", 0.0),
        ("claude-sonnet-4", "user_rating", 1.0),
    ] {
        let labels = score_labels(model, name);
        assert_eq!(
            (a.count(score, &labels), a.sum_of(score, &labels)),
            (1.0, sum)
        );
        assert_eq!(
            (b.count(score, &labels), b.sum_of(score, &labels)),
            (1.0, sum)
        );
    }
    // The thumbs down put its call in the review queue, under the call's ids, in both orders.
    let reviewed = |server: &TestServer| -> Vec<(String, String, String, String)> {
        server
            .processor
            .quality()
            .review()
            .list(10)
            .iter()
            .map(|e| {
                (
                    e.trace_id.clone(),
                    e.span_id.clone(),
                    e.request_model.clone(),
                    e.reasons[0].clone(),
                )
            })
            .collect()
    };
    assert_eq!(reviewed(&early), reviewed(&late));
    assert_eq!(
        reviewed(&early),
        [(
            hex(&calls[0].trace_id),
            hex(&calls[0].span_id),
            String::new(),
            "user_feedback = 0".to_owned()
        )]
    );

    // Feedback on a call that never comes: counted unmatched, under its own service, after the
    // one-second wait (the server's sweep settles it).
    let mut client = FeedbackServiceClient::connect(early.grpc_endpoint())
        .await
        .unwrap();
    let answer = client
        .submit(SubmitFeedbackRequest {
            feedback: vec![Feedback {
                trace_id: vec![7; 16],
                span_id: vec![7; 8],
                service_name: "web".into(),
                signal: Signal::ThumbsUp as i32,
                ..Feedback::default()
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((answer.accepted, answer.matched), (1, 0));
    let unmatched = Labels::new(&[
        ("service_name", "web"),
        ("gen_ai_request_model", ""),
        ("signal", "thumbs_up"),
        ("channel", "grpc"),
    ]);
    let expired = Labels::new(&[("item", "feedback"), ("reason", "expired")]);
    let waited = std::time::Instant::now();
    let metrics = early.scrape().await;
    assert_eq!(metrics.get("llmwatch_feedback_total", &unmatched), None);
    assert_eq!(
        metrics.value("llmwatch_quality_join_dropped_total", &expired),
        0.0
    );
    let mut metrics = metrics;
    while metrics.get("llmwatch_feedback_total", &unmatched).is_none() {
        assert!(waited.elapsed() < Duration::from_secs(10), "never counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
        metrics = early.scrape().await;
    }
    // Not before the wait was over (whole seconds: at least one, at most two and a sweep).
    assert!(
        waited.elapsed() >= Duration::from_millis(900),
        "{:?}",
        waited.elapsed()
    );
    assert_eq!(metrics.value("llmwatch_feedback_total", &unmatched), 1.0);
    assert_eq!(
        metrics.value("llmwatch_quality_join_dropped_total", &expired),
        1.0
    );
    assert_eq!(metrics.total("llmwatch_feedback_total"), 3.0);
    early.stop().await;
    late.stop().await;
}
