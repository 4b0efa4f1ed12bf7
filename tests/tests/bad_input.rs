//! Bad and hostile input against a running llmwatch: each refusal has its exact status and a
//! counted reason, and the service keeps serving valid requests afterwards.

use std::time::Duration;

use llmwatch_core::ProcessorConfig;
use llmwatch_tests::{
    Labels, TestServer, V, chat_span, gzip, kv, loopback_config, request, s, span, strings,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic::codec::CompressionEncoding;
use tonic_types::StatusExt;

const CALLS: &str = "llmwatch_llm_calls_total";
const TOKENS: &str = "llmwatch_tokens_total";
const FINISH: &str = "llmwatch_finish_reasons_total";
const RECEIVED: &str = "llmwatch_received_spans_total";
const REJECTED_REQUESTS: &str = "llmwatch_rejected_requests_total";
const REJECTED_SPANS: &str = "llmwatch_rejected_spans_total";

const MIB: usize = 1 << 20;

fn rejected_requests(transport: &str, reason: &str) -> Labels {
    Labels::new(&[
        ("signal", "traces"),
        ("transport", transport),
        ("reason", reason),
    ])
}

fn received(transport: &str) -> Labels {
    Labels::new(&[("transport", transport)])
}

fn gpt(service: &str, model: &str) -> Labels {
    Labels::genai(service, "openai", "chat", model, model)
}

/// One valid call for `service`, sent over HTTP/protobuf and over gRPC, must be counted once
/// per transport: proof the service still serves.
async fn still_serving(server: &TestServer, service: &str) {
    let answer = server
        .post_protobuf(&request(
            service,
            vec![chat_span(900, "gpt-4o", V::I(7), V::I(3))],
        ))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.trace_response().partial_success, None);
    let response = server
        .trace_client()
        .await
        .export(request(
            service,
            vec![chat_span(901, "gpt-4o", V::I(7), V::I(3))],
        ))
        .await
        .expect("valid gRPC export")
        .into_inner();
    assert_eq!(response.partial_success, None);
    let m = server.scrape().await;
    assert_eq!(m.value(CALLS, &gpt(service, "gpt-4o")), 2.0);
    assert_eq!(
        m.value(
            TOKENS,
            &gpt(service, "gpt-4o").and(&[("token_type", "input")])
        ),
        14.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_protobuf_is_refused_on_http_and_grpc() {
    let server = TestServer::start().await;
    let full =
        request("truncated", vec![chat_span(1, "gpt-4o", V::I(10), V::I(2))]).encode_to_vec();
    let truncated = full[..full.len() - 5].to_vec();
    assert!(ExportTraceServiceRequest::decode(&truncated[..]).is_err());

    let answer = server
        .post_traces(Some("application/x-protobuf"), None, truncated.clone())
        .await;
    assert_eq!(answer.status, 400);
    let status = answer.rpc_status();
    assert_eq!(status.code, Code::InvalidArgument as i32);
    assert!(
        status.message.starts_with("invalid protobuf body"),
        "{}",
        status.message
    );

    let error = server.grpc_raw_export(truncated).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");
    // The same bytes untruncated go through the raw path fine.
    server.grpc_raw_export(full).await.expect("whole message");

    still_serving(&server, "after-truncated").await;
    let m = server.scrape().await;
    assert_eq!(
        m.value(
            REJECTED_REQUESTS,
            &rejected_requests("http_protobuf", "undecodable")
        ),
        1.0
    );
    assert_eq!(
        m.value(REJECTED_REQUESTS, &rejected_requests("grpc", "undecodable")),
        1.0
    );
    assert_eq!(m.total(REJECTED_REQUESTS), 2.0);
    // Nothing of the refused requests counts as received.
    assert_eq!(m.value(RECEIVED, &received("http_protobuf")), 1.0);
    assert_eq!(m.value(RECEIVED, &received("grpc")), 2.0);
    assert_eq!(m.value(CALLS, &gpt("truncated", "gpt-4o")), 1.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_content_type_and_encoding_are_415() {
    let server = TestServer::start().await;
    let body = request("typed", vec![chat_span(1, "gpt-4o", V::I(10), V::I(2))]).encode_to_vec();
    for content_type in [Some("text/plain"), None, Some("application/grpc")] {
        let answer = server.post_traces(content_type, None, body.clone()).await;
        assert_eq!(answer.status, 415, "{content_type:?}");
        let status = answer.rpc_status();
        assert!(
            status.message.contains("unsupported Content-Type"),
            "{}",
            status.message
        );
    }
    let answer = server
        .post_traces(Some("application/x-protobuf"), Some("br"), body.clone())
        .await;
    assert_eq!(answer.status, 415);
    assert!(
        answer
            .rpc_status()
            .message
            .contains("unsupported Content-Encoding")
    );
    // Parameters and case do not matter.
    let answer = server
        .post_traces(
            Some("Application/X-Protobuf; charset=binary"),
            None,
            body.clone(),
        )
        .await;
    assert_eq!(answer.status, 200);

    still_serving(&server, "after-415").await;
    let m = server.scrape().await;
    assert_eq!(
        m.value(
            REJECTED_REQUESTS,
            &rejected_requests("http_protobuf", "unsupported_media_type")
        ),
        3.0
    );
    assert_eq!(
        m.value(
            REJECTED_REQUESTS,
            &rejected_requests("http_protobuf", "unsupported_encoding")
        ),
        1.0
    );
    assert_eq!(m.total(REJECTED_REQUESTS), 4.0);
    assert_eq!(m.value(CALLS, &gpt("typed", "gpt-4o")), 1.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_is_400_with_a_json_status() {
    let server = TestServer::start().await;
    for body in [
        &b"{\"resourceSpans\": [ {"[..],
        b"{\"resourceSpans\": 5}",
        b"\xff\xfe not even UTF-8",
    ] {
        let answer = server
            .post_traces(Some("application/json"), None, body.to_vec())
            .await;
        assert_eq!(answer.status, 400, "{:?}", String::from_utf8_lossy(body));
        let status = answer.json();
        assert_eq!(status["code"], Code::InvalidArgument as i32);
        let message = status["message"].as_str().unwrap();
        assert!(message.starts_with("invalid"), "{message}");
    }
    still_serving(&server, "after-json").await;
    let m = server.scrape().await;
    assert_eq!(
        m.value(
            REJECTED_REQUESTS,
            &rejected_requests("http_json", "undecodable")
        ),
        3.0
    );
    assert_eq!(m.total(REJECTED_REQUESTS), 3.0);
    assert_eq!(m.value(RECEIVED, &received("http_json")), 0.0);
    server.stop().await;
}

/// A request whose one span carries `bytes` of a compressible attribute value.
fn big_request(bytes: usize) -> ExportTraceServiceRequest {
    let mut chat = chat_span(1, "gpt-4o", V::I(10), V::I(2));
    chat.attributes
        .push(kv("gen_ai.input.messages", s("a".repeat(bytes))));
    request("big", vec![chat])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_and_gzip_bombs_are_refused_as_too_large() {
    let mut config = loopback_config();
    config.max_request_bytes = MIB;
    let server = TestServer::start_with(config, ProcessorConfig::default()).await;

    // HTTP: a body over the limit as sent.
    let answer = server
        .post_traces(Some("application/x-protobuf"), None, vec![0u8; MIB + 1024])
        .await;
    assert_eq!(answer.status, 413);
    assert!(
        answer.rpc_status().message.contains("exceeds the limit"),
        "{:?}",
        answer.rpc_status()
    );

    // HTTP: a gzip bomb, 16 MiB of zeros in a few KiB.
    let bomb = gzip(&vec![0u8; 16 * MIB]);
    assert!(bomb.len() < 64 << 10, "{}", bomb.len());
    let answer = server
        .post_traces(Some("application/x-protobuf"), Some("gzip"), bomb)
        .await;
    assert_eq!(answer.status, 413);
    assert!(
        answer
            .rpc_status()
            .message
            .contains("decompressed body exceeds the limit"),
        "{:?}",
        answer.rpc_status()
    );

    // gRPC: a message over the limit as sent. RESOURCE_EXHAUSTED without RetryInfo, which OTLP
    // exporters do not retry (tonic's own OUT_OF_RANGE would make them resend it).
    let mut client = server.trace_client().await;
    let error = client.export(big_request(MIB + MIB / 2)).await.unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted, "{error:?}");
    assert!(
        tonic_types::StatusExt::get_details_retry_info(&error).is_none(),
        "{error:?}"
    );

    // gRPC: the same with gzip, small on the wire, over the limit decompressed.
    let mut client = server
        .trace_client()
        .await
        .send_compressed(CompressionEncoding::Gzip);
    let error = client.export(big_request(2 * MIB)).await.unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted, "{error:?}");
    assert!(error.message().contains("size limit"), "{error:?}");

    // Under the limit, gzip is fine on both transports.
    let small = big_request(MIB / 2);
    let answer = server
        .post_traces(
            Some("application/x-protobuf"),
            Some("gzip"),
            gzip(&small.encode_to_vec()),
        )
        .await;
    assert_eq!(answer.status, 200);
    client.export(small).await.expect("compressed, under limit");

    still_serving(&server, "after-too-large").await;
    let m = server.scrape().await;
    assert_eq!(
        m.value(
            REJECTED_REQUESTS,
            &rejected_requests("http_protobuf", "too_large")
        ),
        2.0
    );
    assert_eq!(
        m.value(REJECTED_REQUESTS, &rejected_requests("grpc", "too_large")),
        2.0
    );
    assert_eq!(m.total(REJECTED_REQUESTS), 4.0);
    assert_eq!(m.value(CALLS, &gpt("big", "gpt-4o")), 2.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_token_counts_reject_only_their_spans() {
    let server = TestServer::start().await;
    let spans = vec![
        chat_span(1, "gpt-4o", V::I(100), V::I(10)),
        chat_span(2, "gpt-4o", V::I(-5), V::I(10)),
        chat_span(3, "gpt-4o", V::I(100), V::I(5_000_000_000)),
        chat_span(4, "gpt-4o", s("lots"), V::I(10)),
        chat_span(5, "gpt-4o", V::I(300), V::I(30)),
    ];
    let answer = server.post_protobuf(&request("tokens", spans)).await;
    assert_eq!(answer.status, 200);
    let partial = answer
        .trace_response()
        .partial_success
        .expect("partial success");
    assert_eq!(partial.rejected_spans, 3);
    for needle in [
        "attribute gen_ai.usage.input_tokens = -5",
        "attribute gen_ai.usage.output_tokens = 5000000000",
        "attribute gen_ai.usage.input_tokens must be a non-negative integer, got string \"lots\"",
    ] {
        assert!(
            partial.error_message.contains(needle),
            "{needle:?} not in {:?}",
            partial.error_message
        );
    }

    let response = server
        .trace_client()
        .await
        .export(request(
            "tokens",
            vec![
                chat_span(6, "gpt-4o", V::I(-1), V::I(1)),
                chat_span(7, "gpt-4o", V::I(1000), V::I(100)),
            ],
        ))
        .await
        .expect("gRPC export")
        .into_inner();
    let partial = response.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial
            .error_message
            .contains("attribute gen_ai.usage.input_tokens = -1"),
        "{}",
        partial.error_message
    );

    let m = server.scrape().await;
    let labels = gpt("tokens", "gpt-4o");
    assert_eq!(m.value(CALLS, &labels), 3.0);
    assert_eq!(
        m.value(TOKENS, &labels.and(&[("token_type", "input")])),
        1400.0
    );
    assert_eq!(
        m.value(TOKENS, &labels.and(&[("token_type", "output")])),
        140.0
    );
    let spans_rejected = |transport: &str| {
        m.value(
            REJECTED_SPANS,
            &Labels::new(&[("transport", transport), ("reason", "invalid_token_count")]),
        )
    };
    assert_eq!(spans_rejected("http_protobuf"), 3.0);
    assert_eq!(spans_rejected("grpc"), 1.0);
    assert_eq!(m.total(REJECTED_SPANS), 4.0);
    assert_eq!(m.value(RECEIVED, &received("http_protobuf")), 5.0);
    assert_eq!(m.value(RECEIVED, &received("grpc")), 2.0);
    assert_eq!(m.total(REJECTED_REQUESTS), 0.0);
    still_serving(&server, "after-tokens").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabyte_attribute_values_count_but_never_reach_a_label() {
    let mut config = loopback_config();
    config.max_request_bytes = 8 * MIB;
    let server = TestServer::start_with(config, ProcessorConfig::default()).await;
    let huge = |c: char| c.to_string().repeat(MIB);
    let mut content = chat_span(1, "gpt-4o", V::I(10), V::I(1));
    content
        .attributes
        .push(kv("gen_ai.input.messages", s(huge('c'))));
    let mut feature = chat_span(2, "gpt-4o", V::I(10), V::I(1));
    feature.attributes.push(kv("app.feature", s(huge('f'))));
    feature
        .attributes
        .push(kv("gen_ai.conversation.id", s(huge('v'))));
    let model = span(
        3,
        "chat mmm",
        250_000_000,
        vec![
            kv("gen_ai.operation.name", s("chat")),
            kv("gen_ai.provider.name", s("openai")),
            kv("gen_ai.request.model", s(huge('m'))),
            kv("gen_ai.response.model", s("gpt-4o")),
            kv("gen_ai.usage.input_tokens", V::I(10)),
            kv("gen_ai.response.finish_reasons", strings(&["stop"])),
        ],
    );
    let answer = server
        .post_protobuf(&request("huge", vec![content, feature, model]))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.trace_response().partial_success, None);

    let m = server.scrape().await;
    assert_eq!(m.value(CALLS, &gpt("huge", "gpt-4o")), 2.0);
    // A model name is a label: cut to 128 bytes.
    let cut = Labels::genai("huge", "openai", "chat", &"m".repeat(128), "gpt-4o");
    assert_eq!(m.value(CALLS, &cut), 1.0);
    assert_eq!(m.total(CALLS), 3.0);
    let longest = m
        .samples
        .iter()
        .flat_map(|s| s.labels.values())
        .map(String::len)
        .max()
        .unwrap();
    assert_eq!(longest, 128);
    assert!(m.text.len() < 128 << 10, "{} bytes", m.text.len());
    assert!(!m.text.contains(&"c".repeat(200)));
    assert!(!m.text.contains(&"f".repeat(200)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_models_fold_into_overflow_with_exact_totals() {
    const MODELS: u64 = 100_000;
    const LIMIT: usize = 100;
    const BATCH: u64 = 10_000;
    let server = TestServer::start_with(
        loopback_config(),
        ProcessorConfig {
            max_series: LIMIT,
            ..ProcessorConfig::default()
        },
    )
    .await;
    for batch in 0..MODELS / BATCH {
        let spans = (batch * BATCH..(batch + 1) * BATCH)
            .map(|i| chat_span(i, &format!("model-{i:06}"), V::I(10), V::I(1)))
            .collect();
        let answer = server.post_protobuf(&request("many", spans)).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.trace_response().partial_success, None);
    }

    let m = server.scrape().await;
    let overflow = Labels::new(&[("otel_metric_overflow", "true")]);
    assert_eq!(m.total(CALLS), MODELS as f64);
    assert_eq!(m.value(CALLS, &overflow), (MODELS - LIMIT as u64) as f64);
    // The first LIMIT models got their own series, one call each; later ones folded.
    for i in 0..MODELS {
        let model = format!("model-{i:06}");
        let expected = (i < LIMIT as u64).then_some(1.0);
        if i < 2 * LIMIT as u64 || i % 997 == 0 {
            assert_eq!(m.get(CALLS, &gpt("many", &model)), expected, "{model}");
        }
    }
    assert_eq!(m.named(CALLS).count(), LIMIT + 1);
    assert_eq!(
        m.value("llmwatch_series_overflow_records_total", &Labels::default()),
        (MODELS - LIMIT as u64) as f64
    );
    assert_eq!(
        m.value("llmwatch_label_sets", &Labels::default()),
        (LIMIT + 1) as f64
    );
    assert_eq!(
        m.value("llmwatch_series_limit", &Labels::default()),
        LIMIT as f64
    );
    assert_eq!(
        m.value("llmwatch_series", &Labels::new(&[("metric", CALLS)])),
        (LIMIT + 1) as f64
    );
    // Totals are preserved across the fold.
    assert_eq!(
        m.total_where(TOKENS, &Labels::new(&[("token_type", "input")])),
        10.0 * MODELS as f64
    );
    assert_eq!(
        m.value(TOKENS, &overflow.and(&[("token_type", "output")])),
        (MODELS - LIMIT as u64) as f64
    );
    assert_eq!(
        m.count(
            "gen_ai_client_operation_duration_seconds",
            &overflow.and(&[("gen_ai_request_stream", "unknown")])
        ),
        (MODELS - LIMIT as u64) as f64
    );
    assert_eq!(m.value(RECEIVED, &received("http_protobuf")), MODELS as f64);
    // The scrape stays bounded whatever the traffic: per label set, one call, one finish
    // reason, two token types, a duration histogram and two token histograms (17 lines each).
    let genai_lines = m
        .samples
        .iter()
        .filter(|s| {
            !s.name.starts_with("llmwatch_") || [CALLS, TOKENS, FINISH].contains(&s.name.as_str())
        })
        .filter(|s| !s.name.starts_with("process_"))
        .count();
    assert_eq!(genai_lines, (LIMIT + 1) * (1 + 1 + 2 + 17 + 2 * 17));
    server.stop().await;
}

/// Reads an HTTP/1.1 response's status line and headers from a raw connection.
async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
            .await
            .expect("response in time")
            .expect("read");
        assert_eq!(
            n,
            1,
            "connection closed after {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("ASCII head")
}

/// With one request allowed in flight, a request whose body is still arriving holds the only
/// permit: others are refused with 429 / RESOURCE_EXHAUSTED and told when to retry, then the
/// held request completes normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_refused_with_retry_advice_and_counted() {
    let mut config = loopback_config();
    config.max_inflight_requests = 1;
    config.retry_after = Duration::from_secs(2);
    let server = TestServer::start_with(config, ProcessorConfig::default()).await;
    let body = request("held", vec![chat_span(1, "gpt-4o", V::I(10), V::I(2))]).encode_to_vec();
    let half = body.len() / 2;
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-protobuf\r\n\
         content-length: {}\r\n\r\n",
        server.addrs.otlp_http,
        body.len()
    );

    // The held request's handler takes the permit once its head arrives. Probes (empty, valid
    // requests: 200 and nothing counted) find out when; should a probe ever hold the permit at
    // that very moment, the held request is the one refused, and the attempt starts over.
    let mut http_refusals = 0.0;
    let mut held = None;
    for _attempt in 0..3 {
        let mut stream = tokio::net::TcpStream::connect(server.addrs.otlp_http)
            .await
            .expect("connect");
        stream.write_all(head.as_bytes()).await.expect("write head");
        stream.write_all(&body[..half]).await.expect("write half");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut refused = None;
        for _probe in 0..250 {
            let answer = server
                .post_traces(Some("application/x-protobuf"), None, Vec::new())
                .await;
            if answer.status == 429 {
                refused = Some(answer);
                break;
            }
            assert_eq!(answer.status, 200);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        http_refusals += 1.0;
        match refused {
            Some(answer) => {
                held = Some((stream, answer));
                break;
            }
            None => {
                let response = read_head(&mut stream).await;
                assert!(response.starts_with("HTTP/1.1 429"), "{response}");
            }
        }
    }
    let (mut stream, refused) = held.expect("a request held the only permit");
    assert_eq!(refused.header("retry-after"), Some("2"));
    let status = refused.rpc_status();
    assert_eq!(status.code, Code::ResourceExhausted as i32);
    assert!(
        status
            .message
            .contains("too many export requests in flight")
    );

    // gRPC shares the limit, and says when to retry in RetryInfo.
    let error = server
        .trace_client()
        .await
        .export(request(
            "refused",
            vec![chat_span(2, "gpt-4o", V::I(1), V::I(1))],
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted, "{error:?}");
    assert_eq!(
        error
            .get_details_retry_info()
            .expect("RetryInfo")
            .retry_delay,
        Some(Duration::from_secs(2))
    );

    // The rest of the body arrives: the held request completes and counts.
    stream.write_all(&body[half..]).await.expect("write rest");
    let response = read_head(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    drop(stream);

    still_serving(&server, "after-overload").await;
    let m = server.scrape().await;
    assert_eq!(
        m.value(
            REJECTED_REQUESTS,
            &rejected_requests("http_protobuf", "overloaded")
        ),
        http_refusals
    );
    assert_eq!(
        m.value(REJECTED_REQUESTS, &rejected_requests("grpc", "overloaded")),
        1.0
    );
    assert_eq!(m.value(CALLS, &gpt("held", "gpt-4o")), 1.0);
    assert_eq!(m.get(CALLS, &gpt("refused", "gpt-4o")), None);
    assert_eq!(m.value(RECEIVED, &received("http_protobuf")), 2.0);
    server.stop().await;
}

/// A sender that stops halfway through its body is answered 408 once the read timeout passes,
/// counted with reason `timeout`, and its processing slot is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_times_out_and_frees_its_slot() {
    let mut config = loopback_config();
    config.max_inflight_requests = 1;
    config.body_read_timeout = Duration::from_millis(300);
    let server = TestServer::start_with(config, ProcessorConfig::default()).await;
    let body = request("stalled", vec![chat_span(1, "gpt-4o", V::I(10), V::I(2))]).encode_to_vec();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-protobuf\r\n\
         content-length: {}\r\n\r\n",
        server.addrs.otlp_http,
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(server.addrs.otlp_http)
        .await
        .expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream
        .write_all(&body[..body.len() / 2])
        .await
        .expect("write half");
    let answer = read_head(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // The slot is free: a complete request is accepted and counted.
    let complete = request("complete", vec![chat_span(2, "gpt-4o", V::I(10), V::I(2))]);
    assert_eq!(server.post_protobuf(&complete).await.status, 200);
    let metrics = server.scrape().await;
    assert_eq!(
        metrics.value(
            REJECTED_REQUESTS,
            &rejected_requests("http_protobuf", "timeout")
        ),
        1.0
    );
    assert_eq!(metrics.value(RECEIVED, &received("http_protobuf")), 1.0);
    server.stop().await;
}
