//! Shared pieces of the quality-pipeline tests (`tests/quality_judge.rs`,
//! `tests/safety_judge.rs`):
//!
//! - [`FakeJudge`]: a fake OpenAI-compatible judge on 127.0.0.1 that records every request and
//!   answers with the test's own [`Reply`] function.
//! - [`Downstream`]: OTLP log receivers (gRPC or HTTP) standing in for the evaluation events'
//!   destination.
//! - [`Service`]: llmwatch started from a config file with its judge pipeline, as `llmwatch
//!   serve` wires it, and [`judge_config`] for that file.
//! - Chat spans with explicit ids ([`content_span`], [`bare_span`]), fixed trace ids
//!   ([`trace_ids`]) and the sampling decision computed independently of llmwatch
//!   ([`sampled_at`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use llmwatch::config::Config;
use llmwatch::judging::QualityTasks;
use llmwatch_core::Processor;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value as Json, json};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::{
    Metrics, T0_NANOS, TestServer, V, kv, logs_request, loopback_config, request, s, serve_http,
    strings,
};

// ---------------------------------------------------------------------------------------------
// The fake judge
// ---------------------------------------------------------------------------------------------

/// One answer of the fake judge.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    /// The `retry-after` header.
    pub retry_after: &'static str,
    pub body: String,
    /// How long the fake waits before answering.
    pub delay: Duration,
}

impl Reply {
    /// A 200 chat completion with this message content; usage 120 prompt + 30 completion tokens.
    pub fn completion(content: &str) -> Reply {
        let body = json!({
            "id": "chatcmpl-judge",
            "object": "chat.completion",
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
        });
        Reply::status(StatusCode::OK, "0", &body.to_string())
    }

    /// A reply with this status, `retry-after` header and body.
    pub fn status(status: StatusCode, retry_after: &'static str, body: &str) -> Reply {
        Reply {
            status,
            retry_after,
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }

    /// The same reply, sent after `delay`.
    pub fn after(self, delay: Duration) -> Reply {
        Reply { delay, ..self }
    }
}

type ReplyFn = Box<dyn Fn(&Json) -> Reply + Send + Sync>;

/// A fake OpenAI-compatible judge: `POST /v1/chat/completions` records the request body and
/// answers with the reply function given to [`FakeJudge::start`].
pub struct FakeJudge {
    bodies: Mutex<Vec<Json>>,
    reply: ReplyFn,
}

impl FakeJudge {
    /// Starts the fake on a free loopback port; returns it and its API root (`base_url`).
    pub async fn start(
        reply: impl Fn(&Json) -> Reply + Send + Sync + 'static,
    ) -> (Arc<FakeJudge>, String) {
        let fake = Arc::new(FakeJudge {
            bodies: Mutex::new(Vec::new()),
            reply: Box::new(reply),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .with_state(fake.clone());
        let addr = serve_http(app).await;
        (fake, format!("http://{addr}/v1"))
    }

    /// Every request body, in arrival order.
    pub fn bodies(&self) -> Vec<Json> {
        self.bodies.lock().unwrap().clone()
    }

    /// How many requests arrived.
    pub fn total(&self) -> usize {
        self.bodies.lock().unwrap().len()
    }

    /// The user message of every request, in arrival order.
    pub fn user_messages(&self) -> Vec<String> {
        self.bodies().iter().map(user_message).collect()
    }

    /// How many requests had `marker` in their user message.
    pub fn requests_with(&self, marker: &str) -> usize {
        self.user_messages()
            .iter()
            .filter(|m| m.contains(marker))
            .count()
    }
}

impl std::fmt::Debug for FakeJudge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeJudge")
            .field("bodies", &self.bodies)
            .finish_non_exhaustive()
    }
}

/// The user message (the judged prompt and answer) of a judge request.
pub fn user_message(body: &Json) -> String {
    body["messages"][1]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The hex trace id a test wrote into a judged answer as `trace=<32 hex digits>`.
pub fn trace_marker(message: &str) -> String {
    let at = message.find("trace=").expect("a trace marker") + 6;
    message[at..at + 32].to_owned()
}

async fn chat_completions(
    State(fake): State<Arc<FakeJudge>>,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let body: Json = serde_json::from_slice(&body).expect("the judge sends JSON");
    fake.bodies.lock().unwrap().push(body.clone());
    let reply = (fake.reply)(&body);
    tokio::time::sleep(reply.delay).await;
    (
        reply.status,
        [("retry-after", reply.retry_after)],
        reply.body,
    )
}

// ---------------------------------------------------------------------------------------------
// Downstream OTLP receivers for the evaluation events
// ---------------------------------------------------------------------------------------------

/// An OTLP log receiver keeping every record with the `service.name` of its resource.
#[derive(Debug, Default, Clone)]
pub struct Downstream {
    records: Arc<Mutex<Vec<(String, LogRecord)>>>,
}

impl Downstream {
    /// An OTLP/gRPC receiver on a free loopback port.
    pub async fn start_grpc() -> (Downstream, SocketAddr) {
        let downstream = Downstream::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(LogsServiceServer::new(downstream.clone()))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        (downstream, addr)
    }

    /// An OTLP/HTTP protobuf receiver (`/v1/logs`) on a free loopback port.
    pub async fn start_http() -> (Downstream, SocketAddr) {
        let downstream = Downstream::default();
        let app = Router::new()
            .route("/v1/logs", post(http_logs))
            .with_state(downstream.clone());
        (downstream.clone(), serve_http(app).await)
    }

    /// Every record received so far, with its service name, in arrival order.
    pub fn records(&self) -> Vec<(String, LogRecord)> {
        self.records.lock().unwrap().clone()
    }

    fn keep(&self, request: ExportLogsServiceRequest) {
        let mut records = self.records.lock().unwrap();
        for resource in request.resource_logs {
            let service = resource
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope in resource.scope_logs {
                for record in scope.log_records {
                    records.push((service.clone(), record));
                }
            }
        }
    }
}

#[tonic::async_trait]
impl LogsService for Downstream {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.keep(request.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

async fn http_logs(State(downstream): State<Downstream>, body: Bytes) -> StatusCode {
    downstream.keep(ExportLogsServiceRequest::decode(body).expect("OTLP protobuf"));
    StatusCode::OK
}

/// The value of a log record's attribute `key`, if it has one.
pub fn attribute<'a>(record: &'a LogRecord, key: &str) -> Option<&'a Value> {
    record
        .attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

// ---------------------------------------------------------------------------------------------
// The service under test
// ---------------------------------------------------------------------------------------------

/// llmwatch with the judge pipeline of a config file, listening on loopback.
#[derive(Debug)]
pub struct Service {
    pub server: TestServer,
    tasks: Option<QualityTasks>,
}

impl Service {
    /// Parses `text` as the config file and starts llmwatch with its judge pipeline: the
    /// config's server settings, but every listener on 127.0.0.1 port 0 and no idle expiry.
    pub async fn start(text: &str) -> Service {
        let config = Config::parse(text, "llmwatch.toml").expect("config");
        let processor = Arc::new(Processor::new(&config.processor_config().unwrap()).unwrap());
        let tasks = llmwatch::judging::start(&config, &processor).expect("judge pipeline");
        let loopback = loopback_config();
        let server_config = llmwatch_server::ServerConfig {
            otlp_grpc: loopback.otlp_grpc,
            otlp_http: loopback.otlp_http,
            metrics: loopback.metrics,
            series_idle_timeout: Duration::ZERO,
            ..config.server_config()
        };
        let server = TestServer::start_with_processor(server_config, processor).await;
        Service {
            server,
            tasks: Some(tasks),
        }
    }

    /// Stops the judge pipeline, then the server.
    pub async fn stop(mut self) {
        if let Some(tasks) = self.tasks.take() {
            tasks.stop().await;
        }
        self.server.stop().await;
    }

    /// Sends these spans as service `checkout` over OTLP/HTTP protobuf.
    pub async fn send(&self, spans: Vec<Span>) {
        let answer = self.server.post_protobuf(&request("checkout", spans)).await;
        assert_eq!(answer.status, 200, "POST /v1/traces");
    }

    /// Sends these log records as service `checkout` over OTLP/HTTP protobuf.
    pub async fn send_logs(&self, records: Vec<LogRecord>) {
        let answer = self
            .server
            .http
            .post(format!("{}/v1/logs", self.server.http_endpoint()))
            .header("content-type", "application/x-protobuf")
            .body(logs_request("checkout", records).encode_to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "POST /v1/logs");
    }

    pub async fn scrape(&self) -> Metrics {
        self.server.scrape().await
    }

    /// Scrapes until `done` holds (see [`TestServer::scrape_until`]).
    pub async fn until(&self, what: &str, done: impl Fn(&Metrics) -> bool) -> Metrics {
        self.server.scrape_until(what, done).await
    }

    /// `GET /api/v1/review{query}`: the status and the body as JSON (as a string when it is not
    /// JSON).
    pub async fn review(&self, query: &str) -> (u16, Json) {
        let response = self
            .server
            .http
            .get(format!(
                "http://{}/api/v1/review{query}",
                self.server.addrs.metrics
            ))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Json::String(text)),
        )
    }
}

/// A config file: the data directory `dir`, then `extra` (the sections under test), then a
/// judge at `judge_url` (gpt-4o-mini, a 1..5 correctness rubric, fast retries) whose
/// `[judge]` section ends with the keys `judge_keys` (queue, concurrency, flagging).
pub fn judge_config(
    dir: &std::path::Path,
    judge_url: &str,
    judge_keys: &str,
    extra: &str,
) -> String {
    format!(
        r#"
data_dir = "{dir}"
{extra}

[judge]
base_url = "{judge_url}"
model = "gpt-4o-mini"
timeout = "2s"
max_attempts = 3
backoff = {{ initial = "10ms", max = "50ms" }}
{judge_keys}

[[judge.rubric]]
name = "correctness"
scale_min = 1
scale_max = 5
instructions = "Is the answer factually correct?"
"#,
        dir = dir.display()
    )
}

// ---------------------------------------------------------------------------------------------
// Judged calls
// ---------------------------------------------------------------------------------------------

/// A `chat gpt-4o` span (openai, response id `chatcmpl-{span_id}`, 10 + 5 tokens, 0.5 s at
/// [`T0_NANOS`]) with trace id `trace_id`, span id `span_id` repeated, and no content.
pub fn bare_span(trace_id: [u8; 16], span_id: u8) -> Span {
    let start = T0_NANOS;
    Span {
        trace_id: trace_id.to_vec(),
        span_id: vec![span_id; 8],
        name: "chat gpt-4o".into(),
        kind: 3,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 500_000_000,
        attributes: vec![
            kv("gen_ai.operation.name", s("chat")),
            kv("gen_ai.provider.name", s("openai")),
            kv("gen_ai.request.model", s("gpt-4o")),
            kv("gen_ai.response.model", s("gpt-4o")),
            kv("gen_ai.response.id", s(format!("chatcmpl-{span_id}"))),
            kv("gen_ai.usage.input_tokens", V::I(10)),
            kv("gen_ai.usage.output_tokens", V::I(5)),
            kv("gen_ai.response.finish_reasons", strings(&["stop"])),
        ],
        ..Default::default()
    }
}

/// [`bare_span`] with the prompt `input` and the answer `output` on it.
pub fn content_span(trace_id: [u8; 16], span_id: u8, input: &str, output: &str) -> Span {
    let mut span = bare_span(trace_id, span_id);
    span.attributes.push(kv("gen_ai.input.messages", s(input)));
    span.attributes
        .push(kv("gen_ai.output.messages", s(output)));
    span
}

/// Trace ids from a fixed generator (SplitMix64), so the sampled sets are fixed; all with
/// randomness in the low 56 bits, as the W3C random flag promises.
pub fn trace_ids(n: usize) -> Vec<[u8; 16]> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            let mut id = [0u8; 16];
            for chunk in id.chunks_mut(8) {
                state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                chunk.copy_from_slice(&(z ^ (z >> 31)).to_be_bytes());
            }
            id
        })
        .collect()
}

/// Whether a trace is sampled at `rate` (a multiple of 1/256, so exact): R ≥ (1 − rate) × 2^56,
/// R the id's low 56 bits; computed here independently of llmwatch.
pub fn sampled_at(id: &[u8; 16], rate: f64) -> bool {
    let r = id[9..].iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b));
    let kept = (rate * 256.0) as u64;
    assert_eq!(kept as f64, rate * 256.0, "use a multiple of 1/256");
    r >= (256 - kept) << 48
}
