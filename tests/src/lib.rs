//! Shared helpers of the end-to-end tests.
//!
//! - [`TestServer`]: an in-process `llmwatch_server::Server` with its own `Processor`, every
//!   listener on 127.0.0.1 port 0.
//! - [`Metrics`]: `/metrics` scraped over real HTTP and parsed into a lookup by name and labels.
//! - OTLP senders: tracer providers with the real `opentelemetry-otlp` exporters, raw OTLP/HTTP
//!   posts, and raw gRPC calls whose bytes the test chooses.
//! - Hand-built OTLP spans for inputs no SDK would produce.
//! - [`serve_http`]: a fake HTTP service (axum) on a free loopback port.
//! - [`quality`]: the fake judge, downstream receivers and service of the quality-pipeline
//!   tests; [`evaluator_plugin`]: the example evaluator plugin.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use llmwatch_core::{Processor, ProcessorConfig};
use llmwatch_server::{BoundAddrs, Server, ServerConfig};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};

pub mod evaluator_plugin;
pub mod quality;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The path of the OTLP/gRPC trace export method.
pub const GRPC_TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// A running llmwatch: receivers and the admin listener on loopback, shut down on drop.
#[derive(Debug)]
pub struct TestServer {
    pub addrs: BoundAddrs,
    pub processor: Arc<Processor>,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// A server config on loopback port 0 with the defaults otherwise; no idle expiry, so nothing
/// disappears under a test.
pub fn loopback_config() -> ServerConfig {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    ServerConfig {
        otlp_grpc: any,
        otlp_http: any,
        metrics: any,
        series_idle_timeout: Duration::ZERO,
        ..ServerConfig::default()
    }
}

impl TestServer {
    /// Defaults everywhere.
    pub async fn start() -> TestServer {
        TestServer::start_with(loopback_config(), ProcessorConfig::default()).await
    }

    /// Binds, serves in a task and returns once `/readyz` says ready.
    pub async fn start_with(config: ServerConfig, processor: ProcessorConfig) -> TestServer {
        let processor = Arc::new(Processor::new(&processor).expect("processor config"));
        TestServer::start_with_processor(config, processor).await
    }

    /// [`TestServer::start_with`] around a processor the test built (and may have wired a judge
    /// queue into).
    pub async fn start_with_processor(
        config: ServerConfig,
        processor: Arc<Processor>,
    ) -> TestServer {
        let server = Server::bind(config, processor.clone())
            .await
            .expect("bind loopback port 0");
        let addrs = server.local_addrs().expect("bound addresses");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = rx.await;
        }));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("HTTP client");
        let ready = format!("http://{}/readyz", addrs.metrics);
        for _ in 0..500 {
            if let Ok(response) = http.get(&ready).send().await
                && response.status() == 200
            {
                return TestServer {
                    addrs,
                    processor,
                    http,
                    shutdown: Some(tx),
                    task: Some(task),
                };
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("llmwatch did not become ready at {ready}");
    }

    /// `http://127.0.0.1:PORT` of the OTLP/gRPC listener.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.addrs.otlp_grpc)
    }

    /// `http://127.0.0.1:PORT` of the OTLP/HTTP listener.
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.addrs.otlp_http)
    }

    pub fn traces_url(&self) -> String {
        format!("http://{}/v1/traces", self.addrs.otlp_http)
    }

    /// Scrapes `/metrics` over HTTP and parses it.
    pub async fn scrape(&self) -> Metrics {
        let response = self
            .http
            .get(format!("http://{}/metrics", self.addrs.metrics))
            .send()
            .await
            .expect("scrape /metrics");
        assert_eq!(response.status(), 200, "GET /metrics");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        Metrics::parse(&response.text().await.expect("metrics body"))
    }

    /// Scrapes until `done` holds for a scrape (at most 20 s) and returns that scrape.
    pub async fn scrape_until(&self, what: &str, done: impl Fn(&Metrics) -> bool) -> Metrics {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let metrics = self.scrape().await;
            if done(&metrics) {
                return metrics;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// POSTs a body to `/v1/traces`.
    pub async fn post_traces(
        &self,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
        body: Vec<u8>,
    ) -> HttpAnswer {
        let mut request = self.http.post(self.traces_url()).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        if let Some(encoding) = content_encoding {
            request = request.header("content-encoding", encoding);
        }
        let response = request.send().await.expect("POST /v1/traces");
        HttpAnswer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.bytes().await.expect("response body").to_vec(),
        }
    }

    /// POSTs an export request as protobuf.
    pub async fn post_protobuf(&self, request: &ExportTraceServiceRequest) -> HttpAnswer {
        use prost::Message;
        self.post_traces(
            Some("application/x-protobuf"),
            None,
            request.encode_to_vec(),
        )
        .await
    }

    /// A gRPC client of the trace service on this server.
    pub async fn trace_client(
        &self,
    ) -> opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient<
        tonic::transport::Channel,
    >{
        opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::connect(
            self.grpc_endpoint(),
        )
        .await
        .expect("gRPC connect")
    }

    /// Calls TraceService/Export with exactly these message bytes (no protobuf encoding).
    pub async fn grpc_raw_export(&self, message: Vec<u8>) -> Result<Vec<u8>, tonic::Status> {
        let channel = tonic::transport::Endpoint::from_shared(self.grpc_endpoint())
            .expect("endpoint")
            .connect()
            .await
            .expect("gRPC connect");
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.expect("gRPC ready");
        grpc.unary(
            tonic::Request::new(message),
            tonic::codegen::http::uri::PathAndQuery::from_static(GRPC_TRACE_EXPORT),
            RawCodec,
        )
        .await
        .map(tonic::Response::into_inner)
    }

    /// Stops serving and waits for the server to drain.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server ran without error");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// What an HTTP request got back.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as a `google.rpc.Status` (how OTLP/HTTP protobuf reports a refused request).
    pub fn rpc_status(&self) -> tonic_types::Status {
        use prost::Message;
        assert_eq!(self.header("content-type"), Some("application/x-protobuf"));
        tonic_types::Status::decode(&self.body[..]).expect("body is a google.rpc.Status")
    }

    /// The body as an export response (protobuf).
    pub fn trace_response(
        &self,
    ) -> opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse {
        use prost::Message;
        assert_eq!(self.status, 200, "{self:?}");
        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::decode(
            &self.body[..],
        )
        .expect("body is an ExportTraceServiceResponse")
    }

    pub fn json(&self) -> serde_json::Value {
        assert_eq!(self.header("content-type"), Some("application/json"));
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// Passes message bytes through untouched, so a test can send what no encoder would.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf;
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n).to_vec()))
    }
}

// ---------------------------------------------------------------------------------------------
// The Prometheus text format
// ---------------------------------------------------------------------------------------------

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    /// Labels with a non-empty value (an empty value means the label is absent).
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed scrape.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub text: String,
    pub samples: Vec<Sample>,
}

/// Label pairs to look a sample up by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Labels(pub BTreeMap<String, String>);

impl Labels {
    pub fn new(pairs: &[(&str, &str)]) -> Labels {
        Labels::default().and(pairs)
    }

    /// The five standard GenAI labels.
    pub fn genai(
        service: &str,
        provider: &str,
        operation: &str,
        request_model: &str,
        response_model: &str,
    ) -> Labels {
        Labels::new(&[
            ("service_name", service),
            ("gen_ai_provider_name", provider),
            ("gen_ai_operation_name", operation),
            ("gen_ai_request_model", request_model),
            ("gen_ai_response_model", response_model),
        ])
    }

    /// These labels plus more (empty values are dropped, as absent labels).
    pub fn and(&self, pairs: &[(&str, &str)]) -> Labels {
        let mut labels = self.0.clone();
        for (name, value) in pairs {
            if value.is_empty() {
                labels.remove(*name);
            } else {
                labels.insert((*name).to_owned(), (*value).to_owned());
            }
        }
        Labels(labels)
    }
}

impl std::fmt::Display for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_char('{')?;
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_char(',')?;
            }
            write!(f, "{name}={value:?}")?;
        }
        f.write_char('}')
    }
}

impl Metrics {
    /// Parses the text exposition format; panics on a line it cannot read.
    pub fn parse(text: &str) -> Metrics {
        let mut samples = Vec::new();
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            samples.push(parse_line(line).unwrap_or_else(|| panic!("bad sample line {line:?}")));
        }
        Metrics {
            text: text.to_owned(),
            samples,
        }
    }

    /// Samples called `name`.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The sample with exactly these labels (empty values count as absent), if any.
    pub fn get(&self, name: &str, labels: &Labels) -> Option<f64> {
        let mut found = self.named(name).filter(|s| s.labels == labels.0);
        let first = found.next()?;
        assert!(found.next().is_none(), "two samples {name}{labels}");
        Some(first.value)
    }

    /// The sample with exactly these labels, 0 when that series does not exist (yet).
    pub fn at(&self, name: &str, labels: &Labels) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// The sample with exactly these labels; panics, listing what is there, when missing.
    pub fn value(&self, name: &str, labels: &Labels) -> f64 {
        self.get(name, labels).unwrap_or_else(|| {
            let have: Vec<String> = self
                .named(name)
                .map(|s| format!("{}{} {}", s.name, Labels(s.labels.clone()), s.value))
                .collect();
            panic!(
                "no sample {name}{labels}; samples of {name}:\n{}",
                have.join("\n")
            )
        })
    }

    /// The cumulative count of a histogram bucket.
    pub fn bucket(&self, histogram: &str, labels: &Labels, le: f64) -> f64 {
        let name = format!("{histogram}_bucket");
        let mut found = self.named(&name).filter(|s| {
            let mut rest = s.labels.clone();
            let bound = rest.remove("le").and_then(|v| parse_float(&v));
            bound == Some(le) && rest == labels.0
        });
        let sample = found
            .next()
            .unwrap_or_else(|| panic!("no bucket {name}{labels} le={le}"));
        sample.value
    }

    pub fn count(&self, histogram: &str, labels: &Labels) -> f64 {
        self.value(&format!("{histogram}_count"), labels)
    }

    pub fn sum_of(&self, histogram: &str, labels: &Labels) -> f64 {
        self.value(&format!("{histogram}_sum"), labels)
    }

    /// Sum of every sample of `name`.
    pub fn total(&self, name: &str) -> f64 {
        self.named(name).map(|s| s.value).sum()
    }

    /// Sum of the samples of `name` that have all these labels (others may be present too).
    pub fn total_where(&self, name: &str, labels: &Labels) -> f64 {
        self.named(name)
            .filter(|s| labels.0.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| s.value)
            .sum()
    }
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

fn parse_line(line: &str) -> Option<Sample> {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => return None,
    };
    let mut labels = BTreeMap::new();
    let rest = if let Some(mut rest) = rest.strip_prefix('{') {
        loop {
            rest = rest.trim_start_matches(',');
            if let Some(after) = rest.strip_prefix('}') {
                break after;
            }
            let eq = rest.find('=')?;
            let label = rest[..eq].trim().to_owned();
            let mut chars = rest[eq + 1..].strip_prefix('"')?.char_indices();
            let mut value = String::new();
            let end = loop {
                let (i, c) = chars.next()?;
                match c {
                    '"' => break i,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    c => value.push(c),
                }
            };
            rest = &rest[eq + 1..][1 + end + 1..];
            if !value.is_empty() {
                labels.insert(label, value);
            }
        }
    } else {
        rest
    };
    let value = parse_float(rest.split_whitespace().next()?)?;
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

// ---------------------------------------------------------------------------------------------
// OTLP senders
// ---------------------------------------------------------------------------------------------

/// A tracer provider exporting to llmwatch with the real OTLP/gRPC exporter behind the SDK's
/// batch span processor. Call inside a Tokio runtime (the channel lives on it).
pub fn grpc_tracer_provider(endpoint: &str, service: &str) -> SdkTracerProvider {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_secs(10))
        .build()
        .expect("OTLP/gRPC exporter");
    tracer_provider(BatchSpanProcessor::builder(exporter), service)
}

/// The same with the OTLP/HTTP protobuf exporter (`traces_url` is the full `/v1/traces` URL).
pub fn http_tracer_provider(traces_url: &str, service: &str) -> SdkTracerProvider {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(blocking_http_client())
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(traces_url)
        .with_timeout(Duration::from_secs(10))
        .build()
        .expect("OTLP/HTTP exporter");
    tracer_provider(BatchSpanProcessor::builder(exporter), service)
}

/// A blocking HTTP client (10 s timeout) for an OTLP/HTTP exporter: the SDK's batch processors
/// export from their own thread, outside any async runtime. Built off the runtime, as reqwest
/// requires.
pub fn blocking_http_client() -> reqwest::blocking::Client {
    std::thread::spawn(|| {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
    })
    .join()
    .expect("client thread")
    .expect("blocking HTTP client")
}

fn tracer_provider<E>(
    builder: opentelemetry_sdk::trace::BatchSpanProcessorBuilder<E>,
    service: &str,
) -> SdkTracerProvider
where
    E: opentelemetry_sdk::trace::SpanExporter + Send + 'static,
{
    let processor = builder
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(65_536)
                .with_max_export_batch_size(512)
                // Exports happen on flush in these tests, never by the timer.
                .with_scheduled_delay(Duration::from_secs(3600))
                .build(),
        )
        .build();
    SdkTracerProvider::builder()
        .with_resource(
            opentelemetry_sdk::Resource::builder_empty()
                .with_service_name(service.to_owned())
                .build(),
        )
        .with_span_processor(processor)
        .build()
}

/// Exports everything the provider holds and shuts it down; panics when an export failed.
pub async fn flush_and_shutdown(provider: SdkTracerProvider) {
    tokio::task::spawn_blocking(move || {
        provider.force_flush().expect("export succeeded");
        provider.shutdown().expect("shutdown");
    })
    .await
    .expect("flush task");
}

// ---------------------------------------------------------------------------------------------
// Hand-built OTLP
// ---------------------------------------------------------------------------------------------

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    S(String),
    I(i64),
    F(f64),
    B(bool),
    A(Vec<String>),
}

pub fn s(text: impl Into<String>) -> V {
    V::S(text.into())
}

pub fn strings(items: &[&str]) -> V {
    V::A(items.iter().map(|s| (*s).to_owned()).collect())
}

pub fn any_value(value: V) -> AnyValue {
    let value = match value {
        V::S(s) => Value::StringValue(s),
        V::I(i) => Value::IntValue(i),
        V::F(f) => Value::DoubleValue(f),
        V::B(b) => Value::BoolValue(b),
        V::A(items) => Value::ArrayValue(ArrayValue {
            values: items
                .into_iter()
                .map(|s| AnyValue {
                    value: Some(Value::StringValue(s)),
                })
                .collect(),
        }),
    };
    AnyValue { value: Some(value) }
}

pub fn kv(key: &str, value: V) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(any_value(value)),
        ..Default::default()
    }
}

/// 2023-11-14T22:13:20Z: explicit, so durations are exact.
pub const T0_NANOS: u64 = 1_700_000_000_000_000_000;

/// A CLIENT span with ids derived from `n` (never zero), starting at [`T0_NANOS`] + `n` ms.
pub fn span(n: u64, name: &str, duration_nanos: u64, attributes: Vec<KeyValue>) -> Span {
    let mut trace_id = vec![0u8; 16];
    trace_id[8..].copy_from_slice(&(n + 1).to_be_bytes());
    trace_id[0] = 0x5b;
    let start = T0_NANOS + n * 1_000_000;
    Span {
        trace_id,
        span_id: (n + 1).to_be_bytes().to_vec(),
        name: name.to_owned(),
        kind: 3, // CLIENT
        start_time_unix_nano: start,
        end_time_unix_nano: start + duration_nanos,
        attributes,
        ..Default::default()
    }
}

/// A successful `chat {model}` span (openai) with these token counts, lasting 0.5 s.
pub fn chat_span(n: u64, model: &str, input: V, output: V) -> Span {
    span(
        n,
        &format!("chat {model}"),
        500_000_000,
        vec![
            kv("gen_ai.operation.name", s("chat")),
            kv("gen_ai.provider.name", s("openai")),
            kv("gen_ai.request.model", s(model)),
            kv("gen_ai.response.model", s(model)),
            kv("gen_ai.usage.input_tokens", input),
            kv("gen_ai.usage.output_tokens", output),
            kv("gen_ai.response.finish_reasons", strings(&["stop"])),
        ],
    )
}

/// Marks a span failed (status ERROR).
pub fn failed(mut span: Span, message: &str) -> Span {
    span.status = Some(Status {
        code: status::StatusCode::Error as i32,
        message: message.to_owned(),
    });
    span
}

/// One resource (`service.name`) and one scope holding these spans.
pub fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", s(service))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "llmwatch-tests".to_owned(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// One resource (`service.name`) and one scope holding these log records.
pub fn logs_request(service: &str, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", s(service))],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Lowercase hex of `bytes`, as the admin APIs print trace and span ids.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Serves `app` on a free 127.0.0.1 port in a task; returns the address.
pub async fn serve_http(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback port 0");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Gzip of `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_text_format() {
        let text = "# HELP x_total Some help.\n# TYPE x_total counter\n\
            x_total{a=\"1\",b=\"\",c=\"q\\\"uote\\\\ back\\nline\"} 3\n\
            y 4.5\n\
            h_bucket{le=\"0.32\"} 1\nh_bucket{le=\"+Inf\"} 2\n";
        let metrics = Metrics::parse(text);
        assert_eq!(
            metrics.value(
                "x_total",
                &Labels::new(&[("a", "1"), ("c", "q\"uote\\ back\nline")])
            ),
            3.0
        );
        // Labels match exactly: a missing one is no match.
        assert_eq!(
            metrics.get("x_total", &Labels::new(&[("a", "1"), ("b", "")])),
            None
        );
        assert_eq!(metrics.value("y", &Labels::default()), 4.5);
        assert_eq!(metrics.bucket("h", &Labels::default(), 0.32), 1.0);
        assert_eq!(metrics.bucket("h", &Labels::default(), f64::INFINITY), 2.0);
        assert_eq!(metrics.total("x_total"), 3.0);
    }
}
