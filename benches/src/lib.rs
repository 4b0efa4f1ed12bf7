//! A realistic OTLP GenAI trace workload, for the benchmarks and for load generation.
//!
//! [`Generator`] builds `ExportTraceServiceRequest`s whose spans are shaped the way the major
//! instrumentations shape an LLM chat call (see `shared/reference/semconv.md` §2):
//!
//! * official semantic conventions v1.37+ (`opentelemetry-instrumentation-openai-v2` with
//!   `gen_ai_latest_experimental`, and its successor),
//! * Traceloop OpenLLMetry ≥ 0.55 (plus its non-LLM workflow spans),
//! * Arize OpenInference (flattened messages, JSON invocation parameters),
//! * OpenLIT (≈30 attributes, TTFT as a span attribute, cost),
//! * Langfuse (JSON usage details, completion start time),
//! * and plain HTTP client spans (httpx/requests instrumentations) that are not model calls.
//!
//! Spans carry the request parameters, `server.address`, response ids and system fingerprints,
//! captured content JSON on part of them, chunk events on streamed OpenLLMetry calls, exception
//! events on failures, and baggage attributes (`app.feature`, `tenant.id`) that the benchmarks
//! use as configured dimensions. Resources look like a Python SDK's on Kubernetes. Everything
//! is derived from a seed, so a given configuration always yields the same bytes.

use std::fmt::Write as _;

use llmwatch_semconv::Dimension;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use serde_json::json;

/// Spans in one benchmark export request (a typical BatchSpanProcessor export is 512).
pub const SPANS_PER_REQUEST: usize = 512;

/// The seed of the benchmark request.
pub const DEFAULT_SEED: u64 = 0x6c6c_6d77_6174_6368;

/// 2026-05-01T00:00:00Z, the start of the synthetic timeline.
const BASE_UNIX_SECONDS: u64 = 1_777_593_600;
const NANOS: u64 = 1_000_000_000;
/// Each request covers this much of the timeline.
const REQUEST_WINDOW_NANOS: u64 = 10 * NANOS;
/// `OTEL_SPAN_EVENT_COUNT_LIMIT` default: the SDK drops chunk events past it.
const MAX_SPAN_EVENTS: u64 = 128;

/// A small, fast, seedable generator (SplitMix64), stable across platforms and crate versions.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Log-uniform in `[lo, hi)`: many small values, a long tail of large ones.
    pub fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + self.unit() * (hi.ln() - lo.ln())).exp()
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// An index drawn with the given relative weights.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut draw = self.below(total);
        for (index, &weight) in weights.iter().enumerate() {
            if draw < u64::from(weight) {
                return index;
            }
            draw -= u64::from(weight);
        }
        weights.len() - 1
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        // All-zero ids are invalid; never produce one.
        out[0] |= 1;
        out
    }

    fn alphanumeric(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..len).map(|_| self.pick(CHARS) as char).collect()
    }

    fn hex(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"0123456789abcdef";
        (0..len).map(|_| self.pick(CHARS) as char).collect()
    }
}

/// Which instrumentation shaped a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Emitter {
    /// Semantic conventions v1.37+: openai-v2 `gen_ai_latest_experimental` / genai-openai.
    Semconv,
    /// Traceloop OpenLLMetry ≥ 0.55 (`traceloop-sdk`), including its workflow spans.
    OpenLlmetry,
    OpenInference,
    OpenLit,
    Langfuse,
    /// httpx/requests client spans: not model calls.
    HttpClient,
}

impl Emitter {
    pub const ALL: [Emitter; 6] = [
        Emitter::Semconv,
        Emitter::OpenLlmetry,
        Emitter::OpenInference,
        Emitter::OpenLit,
        Emitter::Langfuse,
        Emitter::HttpClient,
    ];

    /// Share of the spans of a request, in per mille.
    const WEIGHTS: [u32; 6] = [250, 220, 160, 160, 130, 80];

    pub const fn name(self) -> &'static str {
        match self {
            Emitter::Semconv => "semconv-1.37+",
            Emitter::OpenLlmetry => "openllmetry-0.55+",
            Emitter::OpenInference => "openinference",
            Emitter::OpenLit => "openlit",
            Emitter::Langfuse => "langfuse",
            Emitter::HttpClient => "http-client",
        }
    }

    fn scope(self) -> InstrumentationScope {
        let (name, version) = match self {
            Emitter::Semconv => ("opentelemetry.instrumentation.openai_v2", "2.4b0"),
            Emitter::OpenLlmetry => ("opentelemetry.instrumentation.openai.v1", "0.62.4"),
            Emitter::OpenInference => ("openinference.instrumentation.openai", "0.1.30"),
            Emitter::OpenLit => ("openlit.otel.tracing", "1.45.0"),
            Emitter::Langfuse => ("langfuse-sdk", "3.8.1"),
            Emitter::HttpClient => ("opentelemetry.instrumentation.httpx", "0.59b0"),
        };
        InstrumentationScope {
            name: name.to_owned(),
            version: version.to_owned(),
            ..Default::default()
        }
    }

    fn schema_url(self) -> &'static str {
        match self {
            Emitter::Semconv => "https://opentelemetry.io/schemas/1.37.0",
            Emitter::HttpClient => "https://opentelemetry.io/schemas/1.21.0",
            _ => "",
        }
    }
}

/// A model provider as each emitter spells it.
#[derive(Debug)]
struct Provider {
    /// `gen_ai.provider.name` (semconv ≥ 1.37).
    semconv: &'static str,
    /// OpenInference `llm.system` / `llm.provider`.
    oi_system: &'static str,
    oi_provider: &'static str,
    host: &'static str,
    api_base: &'static str,
    /// OpenLLMetry's span-name prefix (`openai.chat`, `anthropic.chat`, …).
    span_prefix: &'static str,
    /// Langfuse generation name of the provider's integration.
    langfuse_name: &'static str,
    openai_compatible: bool,
}

const OPENAI: Provider = Provider {
    semconv: "openai",
    oi_system: "openai",
    oi_provider: "openai",
    host: "api.openai.com",
    api_base: "https://api.openai.com/v1/",
    span_prefix: "openai",
    langfuse_name: "OpenAI-generation",
    openai_compatible: true,
};
const ANTHROPIC: Provider = Provider {
    semconv: "anthropic",
    oi_system: "anthropic",
    oi_provider: "anthropic",
    host: "api.anthropic.com",
    api_base: "https://api.anthropic.com",
    span_prefix: "anthropic",
    langfuse_name: "Anthropic-generation",
    openai_compatible: false,
};
const VERTEX: Provider = Provider {
    semconv: "gcp.vertex_ai",
    oi_system: "vertexai",
    oi_provider: "google",
    host: "us-central1-aiplatform.googleapis.com",
    api_base: "https://us-central1-aiplatform.googleapis.com/v1/",
    span_prefix: "vertexai",
    langfuse_name: "VertexAI-generation",
    openai_compatible: false,
};
const MISTRAL: Provider = Provider {
    semconv: "mistral_ai",
    oi_system: "mistralai",
    oi_provider: "mistralai",
    host: "api.mistral.ai",
    api_base: "https://api.mistral.ai/v1/",
    span_prefix: "mistralai",
    langfuse_name: "Mistral-generation",
    openai_compatible: false,
};

/// (request model, response model, provider, popularity weight, reasons).
const BASE_MODELS: [(&str, &str, &Provider, u32, bool); 6] = [
    ("gpt-4o", "gpt-4o-2024-08-06", &OPENAI, 25, false),
    ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", &OPENAI, 35, false),
    ("o4-mini", "o4-mini-2025-04-16", &OPENAI, 10, true),
    (
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
        &ANTHROPIC,
        15,
        false,
    ),
    ("gemini-2.5-flash", "gemini-2.5-flash", &VERTEX, 10, false),
    (
        "mistral-large-latest",
        "mistral-large-2411",
        &MISTRAL,
        5,
        false,
    ),
];

/// One model the workload calls.
#[derive(Debug, Clone)]
struct Model {
    request: String,
    response: String,
    provider: &'static Provider,
    reasons: bool,
    /// Index of the base model, whose system fingerprints it shares.
    base: usize,
}

const SERVICES: [&str; 3] = ["checkout-assistant", "support-bot", "doc-search"];
const FEATURES: [&str; 4] = ["answer", "summarize", "classify", "extract"];
const TENANTS: [&str; 6] = ["acme", "globex", "initech", "umbrella", "hooli", "stark"];

/// (`error.type`, exception type, message, HTTP status).
const ERRORS: [(&str, &str, &str, i64); 4] = [
    (
        "RateLimitError",
        "openai.RateLimitError",
        "Error code: 429 - {'error': {'message': 'Rate limit reached for requests', 'type': 'requests', 'code': 'rate_limit_exceeded'}}",
        429,
    ),
    (
        "APITimeoutError",
        "openai.APITimeoutError",
        "Request timed out.",
        0,
    ),
    (
        "InternalServerError",
        "openai.InternalServerError",
        "Error code: 500 - {'error': {'message': 'The server had an error while processing your request.', 'type': 'server_error'}}",
        500,
    ),
    (
        "BadRequestError",
        "openai.BadRequestError",
        "Error code: 400 - {'error': {'message': \"This model's maximum context length is 128000 tokens.\", 'type': 'invalid_request_error', 'code': 'context_length_exceeded'}}",
        400,
    ),
];

const WORDS: [&str; 48] = [
    "order",
    "refund",
    "shipping",
    "invoice",
    "customer",
    "account",
    "delivery",
    "status",
    "please",
    "check",
    "the",
    "latest",
    "update",
    "for",
    "my",
    "package",
    "summarize",
    "this",
    "document",
    "section",
    "policy",
    "return",
    "window",
    "days",
    "item",
    "damaged",
    "replace",
    "warranty",
    "support",
    "ticket",
    "priority",
    "answer",
    "question",
    "about",
    "pricing",
    "plan",
    "upgrade",
    "annual",
    "discount",
    "billing",
    "address",
    "change",
    "payment",
    "method",
    "card",
    "expired",
    "thanks",
    "help",
];

const SYSTEM_PROMPTS: [&str; 3] = [
    "You are a helpful customer support assistant for an online store. Answer briefly and cite the order id when relevant.",
    "You summarize internal documents for employees. Keep answers under five sentences and never invent facts.",
    "Classify the user's request into one of: billing, shipping, returns, account, other. Reply with JSON.",
];

/// What the workload looks like; every field has a realistic default.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    pub seed: u64,
    pub spans_per_request: usize,
    /// Distinct request models. Up to 6 are the base models with their popularity; more adds
    /// fine-tuned variants (`ft:gpt-4o-mini:acme:v7`), drawn uniformly, to create label sets.
    pub models: usize,
    /// Share of calls that stream.
    pub streaming_ratio: f64,
    /// Share of calls with captured prompts and completions (where the emitter allows it).
    pub content_ratio: f64,
    /// Share of calls that fail.
    pub error_ratio: f64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            seed: DEFAULT_SEED,
            spans_per_request: SPANS_PER_REQUEST,
            models: BASE_MODELS.len(),
            streaming_ratio: 0.3,
            content_ratio: 0.4,
            error_ratio: 0.03,
        }
    }
}

/// Produces export requests, each with fresh ids and a later time window.
#[derive(Debug, Clone)]
pub struct Generator {
    config: WorkloadConfig,
    rng: Rng,
    /// Two system fingerprints per base model (OpenAI rotates them slowly).
    fingerprints: Vec<[String; 2]>,
    resources: Vec<Resource>,
    requests: u64,
}

impl Generator {
    pub fn new(config: WorkloadConfig) -> Generator {
        let mut rng = Rng::new(config.seed);
        let fingerprints = BASE_MODELS
            .iter()
            .map(|_| [0, 1].map(|_| format!("fp_{}", rng.hex(10))))
            .collect();
        let mut resources = Vec::new();
        for (service_index, service) in SERVICES.iter().enumerate() {
            for emitter in &Emitter::ALL[..5] {
                resources.push(resource(&mut rng, service_index, service, *emitter));
            }
        }
        Generator {
            config,
            rng,
            fingerprints,
            resources,
            requests: 0,
        }
    }

    pub fn config(&self) -> &WorkloadConfig {
        &self.config
    }

    /// The next export request: `spans_per_request` spans grouped by service and SDK, the way a
    /// collector batches several applications' exports.
    pub fn next_request(&mut self) -> ExportTraceServiceRequest {
        let window_start =
            BASE_UNIX_SECONDS * NANOS + self.requests * REQUEST_WINDOW_NANOS + NANOS / 7;
        self.requests += 1;
        // (service, emitter of the SDK) → (emitter scope spans, http client scope spans).
        let mut groups: Vec<Option<(Vec<Span>, Vec<Span>)>> = vec![None; SERVICES.len() * 5];
        let mut order = Vec::new();
        for _ in 0..self.config.spans_per_request {
            let emitter = Emitter::ALL[self.rng.weighted(&Emitter::WEIGHTS)];
            let service = self.rng.below(SERVICES.len() as u64) as usize;
            // HTTP client spans come from the same processes as the LLM spans.
            let sdk = match emitter {
                Emitter::HttpClient => Emitter::ALL[self.rng.below(5) as usize],
                other => other,
            };
            let group = service * 5 + Emitter::ALL.iter().position(|e| *e == sdk).unwrap_or(0);
            let span = self.span(emitter, service, window_start);
            let slot = groups[group].get_or_insert_with(|| {
                order.push(group);
                (Vec::new(), Vec::new())
            });
            if emitter == Emitter::HttpClient {
                slot.1.push(span);
            } else {
                slot.0.push(span);
            }
        }
        let resource_spans = order
            .into_iter()
            .map(|group| {
                let (llm, http) = groups[group].take().unwrap_or_default();
                let sdk = Emitter::ALL[group % 5];
                let mut scope_spans = Vec::new();
                if !llm.is_empty() {
                    scope_spans.push(ScopeSpans {
                        scope: Some(sdk.scope()),
                        spans: llm,
                        schema_url: sdk.schema_url().to_owned(),
                    });
                }
                if !http.is_empty() {
                    scope_spans.push(ScopeSpans {
                        scope: Some(Emitter::HttpClient.scope()),
                        spans: http,
                        schema_url: Emitter::HttpClient.schema_url().to_owned(),
                    });
                }
                ResourceSpans {
                    resource: Some(self.resources[group].clone()),
                    scope_spans,
                    schema_url: String::new(),
                }
            })
            .collect();
        ExportTraceServiceRequest { resource_spans }
    }

    fn span(&mut self, emitter: Emitter, service: usize, window_start: u64) -> Span {
        let (call, model) = self.call(service, window_start);
        let model = &model;
        let rng = &mut self.rng;
        match emitter {
            Emitter::Semconv => semconv_span(rng, &call, model),
            Emitter::OpenLlmetry if rng.chance(0.1) => openllmetry_workflow_span(rng, &call),
            Emitter::OpenLlmetry => openllmetry_span(rng, &call, model),
            Emitter::OpenInference => openinference_span(rng, &call, model),
            Emitter::OpenLit => openlit_span(rng, &call, model),
            Emitter::Langfuse => langfuse_span(rng, &call, model),
            Emitter::HttpClient => http_span(rng, &call, model),
        }
    }

    /// Model `index`: a base model, or past them a fine-tuned variant of one.
    fn model(index: usize) -> Model {
        let base = index % BASE_MODELS.len();
        let (request, response, provider, _, reasons) = BASE_MODELS[base];
        let variant = index / BASE_MODELS.len();
        let (request, response) = if variant == 0 {
            (request.to_owned(), response.to_owned())
        } else {
            let tenant = TENANTS[variant % TENANTS.len()];
            let name = format!("ft:{request}:{tenant}:v{variant}");
            (name.clone(), name)
        };
        Model {
            request,
            response,
            provider,
            reasons,
            base,
        }
    }

    /// The facts of one call, before any emitter shapes them.
    fn call(&mut self, service: usize, window_start: u64) -> (Call, Model) {
        let config = &self.config;
        let rng = &mut self.rng;
        // The base models by popularity; past them, every variant is equally likely.
        let model_index = if config.models <= BASE_MODELS.len() {
            let weights = BASE_MODELS.map(|m| m.3);
            rng.weighted(&weights[..config.models.max(1)])
        } else {
            rng.below(config.models as u64) as usize
        };
        let model = Generator::model(model_index);
        let streaming = rng.chance(config.streaming_ratio);
        let error = rng
            .chance(config.error_ratio)
            .then(|| rng.below(ERRORS.len() as u64) as usize);
        let input_tokens = rng.log_uniform(40.0, 8000.0) as u64;
        let output_tokens = rng.log_uniform(4.0, 900.0) as u64;
        let cache_read = if input_tokens > 1024 && rng.chance(0.35) {
            (input_tokens / 128) * rng.below(90) / 100 * 128
        } else {
            0
        };
        let reasoning = if model.reasons {
            (output_tokens as f64 * rng.unit() * 0.7) as u64
        } else {
            0
        };
        let finish = rng.pick(&[
            "stop",
            "stop",
            "stop",
            "stop",
            "stop",
            "stop",
            "stop",
            "stop",
            "length",
            "tool_calls",
        ]);
        let start = window_start + rng.below(REQUEST_WINDOW_NANOS);
        let ttft = (rng.log_uniform(0.12, 1.8) * NANOS as f64) as u64;
        let duration = if error.is_some() {
            (rng.log_uniform(0.05, 3.0) * NANOS as f64) as u64
        } else {
            let per_token = rng.log_uniform(0.006, 0.03);
            ttft + (output_tokens as f64 * per_token * NANOS as f64) as u64
        };
        let content = rng.chance(config.content_ratio).then(|| Content {
            system: rng.pick(&SYSTEM_PROMPTS).to_string(),
            user: sentence(rng, 12, 60),
            assistant: sentence(rng, 15, 90),
        });
        let trace_id = rng.bytes::<16>();
        let span_id = rng.bytes::<8>();
        let parent_span_id = rng.chance(0.85).then(|| rng.bytes::<8>());
        let response_id = match model.provider.semconv {
            "openai" => format!("chatcmpl-{}", rng.alphanumeric(29)),
            "anthropic" => format!("msg_01{}", rng.alphanumeric(22)),
            "mistral_ai" => rng.hex(32),
            _ => rng.alphanumeric(24),
        };
        let fingerprint = model
            .provider
            .openai_compatible
            .then(|| self.fingerprints[model.base][usize::from(rng.chance(0.2))].clone());
        let call = Call {
            service,
            trace_id,
            span_id,
            parent_span_id,
            start,
            end: start + duration,
            streaming,
            ttft,
            input_tokens,
            output_tokens,
            cache_read,
            reasoning,
            finish,
            error,
            temperature: rng.pick(&[0.0, 0.2, 0.7, 1.0]),
            top_p: rng.pick(&[1.0, 0.95, 0.9]),
            max_tokens: rng.pick(&[256, 512, 1024, 2048, 4096]),
            seed: rng.chance(0.3).then(|| rng.below(100_000) as i64),
            user: rng.chance(0.6).then(|| format!("user-{}", rng.below(5000))),
            session: rng.chance(0.5).then(|| format!("sess-{}", rng.hex(16))),
            feature: rng.pick(&FEATURES),
            tenant: rng.chance(0.7).then(|| rng.pick(&TENANTS)),
            content,
            response_id,
            fingerprint,
        };
        (call, model)
    }
}

#[derive(Debug)]
struct Call {
    service: usize,
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent_span_id: Option<[u8; 8]>,
    start: u64,
    end: u64,
    streaming: bool,
    ttft: u64,
    input_tokens: u64,
    output_tokens: u64,
    cache_read: u64,
    reasoning: u64,
    finish: &'static str,
    error: Option<usize>,
    temperature: f64,
    top_p: f64,
    max_tokens: i64,
    seed: Option<i64>,
    user: Option<String>,
    session: Option<String>,
    feature: &'static str,
    tenant: Option<&'static str>,
    content: Option<Content>,
    response_id: String,
    fingerprint: Option<String>,
}

#[derive(Debug)]
struct Content {
    system: String,
    user: String,
    assistant: String,
}

impl Call {
    fn ok(&self) -> bool {
        self.error.is_none()
    }

    fn duration_seconds(&self) -> f64 {
        (self.end - self.start) as f64 / NANOS as f64
    }

    fn ttft_seconds(&self) -> f64 {
        self.ttft as f64 / NANOS as f64
    }

    fn tool_call(&self) -> bool {
        self.finish == "tool_calls"
    }

    fn span(&self, name: String, kind: SpanKind, attributes: Attributes) -> Span {
        Span {
            trace_id: self.trace_id.to_vec(),
            span_id: self.span_id.to_vec(),
            trace_state: String::new(),
            parent_span_id: self.parent_span_id.map(|p| p.to_vec()).unwrap_or_default(),
            flags: 0x101,
            name,
            kind: kind as i32,
            start_time_unix_nano: self.start,
            end_time_unix_nano: self.end,
            attributes: attributes.0,
            status: Some(Status {
                message: String::new(),
                code: StatusCode::Unset as i32,
            }),
            ..Default::default()
        }
    }

    /// Marks the span failed with an `exception` event, as the Python SDK records it.
    fn fail(&self, span: &mut Span) {
        let Some(error) = self.error else { return };
        let (_, exception_type, message, _) = ERRORS[error];
        span.status = Some(Status {
            message: format!("{exception_type}: {message}"),
            code: StatusCode::Error as i32,
        });
        span.events.push(Event {
            time_unix_nano: self.end,
            name: "exception".to_owned(),
            attributes: Attributes::default()
                .str("exception.type", exception_type)
                .str("exception.message", message)
                .str("exception.stacktrace", &stacktrace(exception_type, message))
                .str("exception.escaped", "False")
                .0,
            dropped_attributes_count: 0,
        });
    }

    fn input_messages_json(&self, content: &Content) -> String {
        json!([
            {"role": "user", "parts": [{"type": "text", "content": content.user}]}
        ])
        .to_string()
    }

    fn output_messages_json(&self, content: &Content) -> String {
        let part = if self.tool_call() {
            json!({"type": "tool_call", "id": format!("call_{}", &self.response_id[..12.min(self.response_id.len())]),
                   "name": "get_order_status", "arguments": {"order_id": "A-10442"}})
        } else {
            json!({"type": "text", "content": content.assistant})
        };
        let finish = if self.tool_call() {
            "tool_call"
        } else {
            self.finish
        };
        json!([{"role": "assistant", "parts": [part], "finish_reason": finish}]).to_string()
    }

    fn system_instructions_json(&self, content: &Content) -> String {
        json!([{"type": "text", "content": content.system}]).to_string()
    }

    /// The OpenAI-style chat request body, as OpenInference and Langfuse capture it.
    fn request_json(&self, model: &Model, content: &Content) -> String {
        json!({
            "messages": [
                {"role": "system", "content": content.system},
                {"role": "user", "content": content.user},
            ],
            "model": model.request,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "stream": self.streaming,
        })
        .to_string()
    }

    fn usage_json(&self) -> serde_json::Value {
        json!({
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cache_read, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": self.reasoning, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0
            },
        })
    }

    /// The OpenAI-style chat response body, as OpenInference captures it in `output.value`.
    fn response_json(&self, model: &Model, content: &Content) -> String {
        json!({
            "id": self.response_id,
            "choices": [{
                "finish_reason": self.finish,
                "index": 0,
                "logprobs": null,
                "message": {"content": content.assistant, "role": "assistant", "refusal": null},
            }],
            "created": self.start / NANOS,
            "model": model.response,
            "object": "chat.completion",
            "service_tier": "default",
            "system_fingerprint": self.fingerprint,
            "usage": self.usage_json(),
        })
        .to_string()
    }
}

/// Attribute list builder.
#[derive(Debug, Default)]
struct Attributes(Vec<KeyValue>);

impl Attributes {
    fn value(mut self, key: &str, value: Value) -> Self {
        self.0.push(KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        });
        self
    }

    fn str(self, key: &str, value: &str) -> Self {
        self.value(key, Value::StringValue(value.to_owned()))
    }

    fn int(self, key: &str, value: i64) -> Self {
        self.value(key, Value::IntValue(value))
    }

    fn uint(self, key: &str, value: u64) -> Self {
        self.int(key, value as i64)
    }

    fn float(self, key: &str, value: f64) -> Self {
        self.value(key, Value::DoubleValue(value))
    }

    fn bool(self, key: &str, value: bool) -> Self {
        self.value(key, Value::BoolValue(value))
    }

    fn strs(self, key: &str, values: &[&str]) -> Self {
        let values = values
            .iter()
            .map(|v| AnyValue {
                value: Some(Value::StringValue((*v).to_owned())),
            })
            .collect();
        self.value(key, Value::ArrayValue(ArrayValue { values }))
    }

    fn opt_str(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(value) => self.str(key, value),
            None => self,
        }
    }

    fn when(self, condition: bool, add: impl FnOnce(Self) -> Self) -> Self {
        if condition { add(self) } else { self }
    }
}

/// Semantic conventions v1.37+ as openai-v2 (`gen_ai_latest_experimental`) and genai-openai write
/// them: `chat {model}`, `gen_ai.provider.name`, content as JSON strings in the parts format.
fn semconv_span(rng: &mut Rng, call: &Call, model: &Model) -> Span {
    let is_openai = model.provider.openai_compatible;
    let attributes = Attributes::default()
        .str("gen_ai.operation.name", "chat")
        .str("gen_ai.provider.name", model.provider.semconv)
        .str("gen_ai.request.model", &model.request)
        .float("gen_ai.request.temperature", call.temperature)
        .when(call.top_p < 1.0, |a| {
            a.float("gen_ai.request.top_p", call.top_p)
        })
        .int("gen_ai.request.max_tokens", call.max_tokens)
        .when(call.seed.is_some(), |a| {
            a.int("gen_ai.request.seed", call.seed.unwrap_or_default())
        })
        .when(rng.chance(0.2), |a| {
            a.float("gen_ai.request.frequency_penalty", 0.0)
                .float("gen_ai.request.presence_penalty", 0.0)
        })
        .when(rng.chance(0.15), |a| {
            a.strs("gen_ai.request.stop_sequences", &["\n\nUser:", "END"])
        })
        .str("gen_ai.output.type", "text")
        .when(is_openai, |a| a.str("openai.request.service_tier", "auto"))
        .str("server.address", model.provider.host)
        .when(call.streaming, |a| a.bool("gen_ai.request.stream", true))
        .str("app.feature", call.feature)
        .opt_str("tenant.id", call.tenant)
        .when(call.ok(), |a| {
            a.str("gen_ai.response.model", &model.response)
                .str("gen_ai.response.id", &call.response_id)
                .strs("gen_ai.response.finish_reasons", &[call.finish])
                .when(is_openai, |a| {
                    a.str("openai.response.service_tier", "default").opt_str(
                        "openai.response.system_fingerprint",
                        call.fingerprint.as_deref(),
                    )
                })
                .uint("gen_ai.usage.input_tokens", call.input_tokens)
                .uint("gen_ai.usage.output_tokens", call.output_tokens)
                .when(call.cache_read > 0, |a| {
                    a.uint("gen_ai.usage.cache_read.input_tokens", call.cache_read)
                })
                .when(call.reasoning > 0, |a| {
                    a.uint("gen_ai.usage.reasoning.output_tokens", call.reasoning)
                })
                .when(call.streaming, |a| {
                    a.float("gen_ai.response.time_to_first_chunk", call.ttft_seconds())
                })
        })
        .when(!call.ok(), |a| {
            a.str("error.type", ERRORS[call.error.unwrap_or_default()].0)
        });
    let attributes = match &call.content {
        Some(content) => attributes
            .str(
                "gen_ai.system_instructions",
                &call.system_instructions_json(content),
            )
            .str("gen_ai.input.messages", &call.input_messages_json(content))
            .when(call.ok(), |a| {
                a.str(
                    "gen_ai.output.messages",
                    &call.output_messages_json(content),
                )
            }),
        None => attributes,
    };
    let mut span = call.span(
        format!("chat {}", model.request),
        SpanKind::Client,
        attributes,
    );
    call.fail(&mut span);
    span
}

/// OpenLLMetry ≥ 0.55: `openai.chat`, `gen_ai.is_streaming`, total tokens, content by default,
/// one `gen_ai.content.completion.chunk` event per streamed chunk.
fn openllmetry_span(rng: &mut Rng, call: &Call, model: &Model) -> Span {
    let attributes = Attributes::default()
        .str("gen_ai.operation.name", "chat")
        .str("gen_ai.provider.name", model.provider.semconv)
        .str("gen_ai.request.model", &model.request)
        .int("gen_ai.request.max_tokens", call.max_tokens)
        .float("gen_ai.request.temperature", call.temperature)
        .when(call.top_p < 1.0, |a| {
            a.float("gen_ai.request.top_p", call.top_p)
        })
        .str("gen_ai.openai.api_base", model.provider.api_base)
        .bool("gen_ai.is_streaming", call.streaming)
        .str("traceloop.workflow.name", call.feature)
        .str("traceloop.entity.path", "")
        .opt_str(
            "traceloop.association.properties.user_id",
            call.user.as_deref(),
        )
        .opt_str(
            "traceloop.association.properties.session_id",
            call.session.as_deref(),
        )
        .opt_str("traceloop.association.properties.tenant_id", call.tenant)
        .when(call.ok(), |a| {
            a.str("gen_ai.response.model", &model.response)
                .str("gen_ai.response.id", &call.response_id)
                .opt_str(
                    "gen_ai.openai.response.system_fingerprint",
                    call.fingerprint.as_deref(),
                )
                .when(model.provider.openai_compatible, |a| {
                    a.str("openai.response.service_tier", "default")
                })
                .strs(
                    "gen_ai.response.finish_reasons",
                    &[if call.tool_call() {
                        "tool_call"
                    } else {
                        call.finish
                    }],
                )
                .uint("gen_ai.usage.cache_read.input_tokens", call.cache_read)
                .uint("gen_ai.usage.input_tokens", call.input_tokens)
                .uint("gen_ai.usage.output_tokens", call.output_tokens)
                .when(!call.streaming, |a| {
                    a.uint("gen_ai.usage.reasoning_tokens", call.reasoning)
                })
                .uint(
                    "gen_ai.usage.total_tokens",
                    call.input_tokens + call.output_tokens,
                )
        })
        .when(!call.ok(), |a| {
            a.str("error.type", ERRORS[call.error.unwrap_or_default()].0)
        });
    // Content is captured by default (`TRACELOOP_TRACE_CONTENT=true`).
    let attributes = match &call.content {
        Some(content) => attributes
            .str("gen_ai.input.messages", &{
                json!([
                    {"role": "system", "parts": [{"type": "text", "content": content.system}]},
                    {"role": "user", "parts": [{"type": "text", "content": content.user}]},
                ])
                .to_string()
            })
            .when(call.ok(), |a| {
                a.str(
                    "gen_ai.output.messages",
                    &call.output_messages_json(content),
                )
            })
            .when(call.tool_call(), |a| {
                a.str("gen_ai.tool.definitions", TOOL_DEFINITIONS)
            }),
        None => attributes,
    };
    let name = format!("{}.chat", model.provider.span_prefix);
    let mut span = call.span(name, SpanKind::Client, attributes);
    if call.streaming && call.ok() {
        // One event per chunk, up to the SDK's event limit; the chunks arrive after the TTFT.
        let chunks = call.output_tokens.clamp(1, MAX_SPAN_EVENTS);
        let first = call.start + call.ttft;
        let step = (call.end - first) / chunks;
        span.events = (0..chunks)
            .map(|i| Event {
                time_unix_nano: first + i * step + rng.below(step.max(1) / 4 + 1),
                name: "gen_ai.content.completion.chunk".to_owned(),
                ..Default::default()
            })
            .collect();
        span.dropped_events_count = (call.output_tokens.saturating_sub(MAX_SPAN_EVENTS)) as u32;
    }
    call.fail(&mut span);
    span
}

/// A `traceloop-sdk` `@workflow`/`@task` span: not a model call, though it wraps some.
fn openllmetry_workflow_span(rng: &mut Rng, call: &Call) -> Span {
    let kind = rng.pick(&["workflow", "task", "agent"]);
    let attributes = Attributes::default()
        .str("traceloop.span.kind", kind)
        .str("traceloop.workflow.name", call.feature)
        .str("traceloop.entity.name", call.feature)
        .str("traceloop.entity.path", "")
        .opt_str(
            "traceloop.association.properties.user_id",
            call.user.as_deref(),
        )
        .opt_str("traceloop.association.properties.tenant_id", call.tenant);
    let attributes = match &call.content {
        Some(content) => attributes
            .str(
                "traceloop.entity.input",
                &json!({"args": [content.user], "kwargs": {}}).to_string(),
            )
            .str(
                "traceloop.entity.output",
                &json!(content.assistant).to_string(),
            ),
        None => attributes,
    };
    call.span(
        format!("{}.{kind}", call.feature),
        SpanKind::Internal,
        attributes,
    )
}

/// OpenInference: `ChatCompletion`, `openinference.span.kind=LLM`, the request model only in the
/// JSON invocation parameters, flattened messages, raw request/response bodies.
fn openinference_span(rng: &mut Rng, call: &Call, model: &Model) -> Span {
    let invocation = json!({
        "model": model.request,
        "temperature": call.temperature,
        "max_tokens": call.max_tokens,
        "stream": call.streaming,
    })
    .to_string();
    let attributes = Attributes::default()
        .str("openinference.span.kind", "LLM")
        .str("llm.system", model.provider.oi_system)
        .str("llm.provider", model.provider.oi_provider)
        .str(
            "llm.model_name",
            if call.ok() {
                &model.response
            } else {
                &model.request
            },
        )
        .str("llm.invocation_parameters", &invocation)
        .opt_str("session.id", call.session.as_deref())
        .opt_str("user.id", call.user.as_deref())
        .str(
            "metadata",
            &json!({"feature": call.feature, "tenant": call.tenant}).to_string(),
        )
        .when(rng.chance(0.3), |a| {
            a.strs("tag.tags", &[call.feature, "production"])
        })
        .when(call.ok(), |a| {
            a.uint("llm.token_count.prompt", call.input_tokens)
                .uint("llm.token_count.completion", call.output_tokens)
                .uint(
                    "llm.token_count.total",
                    call.input_tokens + call.output_tokens,
                )
                .when(call.cache_read > 0, |a| {
                    a.uint("llm.token_count.prompt_details.cache_read", call.cache_read)
                })
                .when(call.reasoning > 0, |a| {
                    a.uint(
                        "llm.token_count.completion_details.reasoning",
                        call.reasoning,
                    )
                })
                .str("llm.finish_reason", call.finish)
        });
    let attributes = match &call.content {
        Some(content) => attributes
            .str("input.mime_type", "application/json")
            .str("input.value", &call.request_json(model, content))
            .str("llm.input_messages.0.message.role", "system")
            .str("llm.input_messages.0.message.content", &content.system)
            .str("llm.input_messages.1.message.role", "user")
            .str("llm.input_messages.1.message.content", &content.user)
            .when(call.ok(), |a| {
                a.str("output.mime_type", "application/json")
                    .str("output.value", &call.response_json(model, content))
                    .str("llm.output_messages.0.message.role", "assistant")
                    .str("llm.output_messages.0.message.content", &content.assistant)
            }),
        None => attributes,
    };
    let mut span = call.span("ChatCompletion".to_owned(), SpanKind::Internal, attributes);
    if call.streaming && call.ok() {
        span.events.push(Event {
            time_unix_nano: call.start + call.ttft,
            name: "First Token Stream Event".to_owned(),
            ..Default::default()
        });
    }
    call.fail(&mut span);
    span
}

/// OpenLIT 1.45: ~30 attributes, `service.name`/`deployment.environment` on the span, TTFT and
/// TBT as span attributes (TTFT = the whole duration when not streamed), its own cost.
fn openlit_span(rng: &mut Rng, call: &Call, model: &Model) -> Span {
    let is_openai = model.provider.openai_compatible;
    let duration = call.duration_seconds();
    let ttft = if call.streaming {
        call.ttft_seconds()
    } else {
        duration
    };
    let tbt = if call.streaming && call.output_tokens > 1 {
        (duration - ttft) / (call.output_tokens - 1) as f64
    } else {
        0.0
    };
    let cost = (call.input_tokens as f64 * 2.5 + call.output_tokens as f64 * 10.0) / 1e6;
    let attributes = Attributes::default()
        .str("telemetry.sdk.name", "openlit")
        .str("gen_ai.operation.name", "chat")
        .str("gen_ai.provider.name", model.provider.semconv)
        .str("server.address", model.provider.host)
        .int("server.port", 443)
        .str("gen_ai.request.model", &model.request)
        .str("service.name", SERVICES[call.service])
        .str("deployment.environment", "production")
        .bool("gen_ai.request.stream", call.streaming)
        .str("gen_ai.sdk.version", "1.45.0")
        .float("gen_ai.request.temperature", call.temperature)
        .float("gen_ai.request.top_p", call.top_p)
        .int("gen_ai.request.max_tokens", call.max_tokens)
        .float("gen_ai.request.frequency_penalty", 0.0)
        .float("gen_ai.request.presence_penalty", 0.0)
        .int("gen_ai.request.seed", call.seed.unwrap_or(0))
        .strs("gen_ai.request.stop_sequences", &[])
        .str("gen_ai.request.user", call.user.as_deref().unwrap_or(""))
        .str("app.feature", call.feature)
        .opt_str("tenant.id", call.tenant)
        .when(call.ok(), |a| {
            a.str("gen_ai.response.model", &model.response)
                .str("gen_ai.response.id", &call.response_id)
                .strs("gen_ai.response.finish_reasons", &[call.finish])
                .str("gen_ai.output.type", "text")
                .float("gen_ai.server.time_to_first_token", ttft)
                .float("gen_ai.server.time_per_output_token", tbt)
                .uint("gen_ai.usage.input_tokens", call.input_tokens)
                .uint("gen_ai.usage.output_tokens", call.output_tokens)
                .uint(
                    "gen_ai.client.token.usage",
                    call.input_tokens + call.output_tokens,
                )
                .float("gen_ai.usage.cost", cost)
                .when(call.reasoning > 0, |a| {
                    a.uint("gen_ai.usage.reasoning_tokens", call.reasoning)
                })
                .uint("gen_ai.usage.cache_read.input_tokens", call.cache_read)
                .int("gen_ai.usage.cache_creation.input_tokens", 0)
                .when(is_openai, |a| {
                    a.opt_str(
                        "openai.response.system_fingerprint",
                        call.fingerprint.as_deref(),
                    )
                    .str("openai.response.service_tier", "default")
                    .str("openai.api.type", "chat")
                })
        })
        .when(!call.ok(), |a| {
            a.str("error.type", ERRORS[call.error.unwrap_or_default()].0)
        });
    let attributes = match &call.content {
        Some(content) if rng.chance(0.9) => attributes
            .str(
                "gen_ai.system_instructions",
                &call.system_instructions_json(content),
            )
            .str("gen_ai.input.messages", &call.input_messages_json(content))
            .when(call.ok(), |a| {
                a.str(
                    "gen_ai.output.messages",
                    &call.output_messages_json(content),
                )
            }),
        _ => attributes,
    };
    let mut span = call.span(
        format!("chat {}", model.request),
        SpanKind::Client,
        attributes,
    );
    call.fail(&mut span);
    span
}

/// Langfuse Python SDK v3 (OpenAI integration): a `generation` observation with JSON usage,
/// model parameters, completion start time; errors as `level=ERROR`, the status left unset.
fn langfuse_span(rng: &mut Rng, call: &Call, model: &Model) -> Span {
    let attributes = Attributes::default()
        .str("langfuse.observation.type", "generation")
        .str(
            "langfuse.observation.model.name",
            if call.ok() {
                &model.response
            } else {
                &model.request
            },
        )
        .str(
            "langfuse.observation.model.parameters",
            &json!({
                "temperature": call.temperature,
                "max_tokens": call.max_tokens,
                "top_p": call.top_p,
            })
            .to_string(),
        )
        .str("langfuse.trace.name", call.feature)
        .opt_str("langfuse.trace.metadata.tenant", call.tenant)
        .when(rng.chance(0.5), |a| {
            a.strs("langfuse.trace.tags", &[call.feature, "prod"])
        })
        .opt_str("user.id", call.user.as_deref())
        .opt_str("session.id", call.session.as_deref())
        .str("langfuse.environment", "production")
        .str("langfuse.release", "2026.04.3")
        .str("langfuse.version", "3.8.1")
        .str(
            "langfuse.observation.metadata.ls_provider",
            model.provider.semconv,
        )
        .when(call.ok(), |a| {
            a.str(
                "langfuse.observation.usage_details",
                &call.usage_json().to_string(),
            )
            .when(call.streaming, |a| {
                a.str(
                    "langfuse.observation.completion_start_time",
                    &format!("\"{}\"", rfc3339(call.start + call.ttft)),
                )
            })
        })
        .when(!call.ok(), |a| {
            let (_, exception_type, message, _) = ERRORS[call.error.unwrap_or_default()];
            a.str("langfuse.observation.level", "ERROR").str(
                "langfuse.observation.status_message",
                &format!("{exception_type}: {message}"),
            )
        });
    let attributes = match &call.content {
        Some(content) => attributes
            .str(
                "langfuse.observation.input",
                &json!([
                    {"role": "system", "content": content.system},
                    {"role": "user", "content": content.user},
                ])
                .to_string(),
            )
            .when(call.ok(), |a| {
                a.str(
                    "langfuse.observation.output",
                    &json!({"role": "assistant", "content": content.assistant}).to_string(),
                )
            }),
        None => attributes,
    };
    call.span(
        model.provider.langfuse_name.to_owned(),
        SpanKind::Internal,
        attributes,
    )
}

/// The HTTP client span under a model call (httpx instrumentation, new or old HTTP semconv).
fn http_span(rng: &mut Rng, call: &Call, model: &Model) -> Span {
    let status = call.error.map_or(200, |e| ERRORS[e].3);
    let url = format!("{}chat/completions", model.provider.api_base);
    let attributes = if rng.chance(0.6) {
        Attributes::default()
            .str("http.request.method", "POST")
            .str("url.full", &url)
            .str("server.address", model.provider.host)
            .int("server.port", 443)
            .str("network.protocol.version", "1.1")
            .when(status > 0, |a| a.int("http.response.status_code", status))
            .when(status >= 400, |a| a.str("error.type", &status.to_string()))
    } else {
        Attributes::default()
            .str("http.method", "POST")
            .str("http.url", &url)
            .str("http.scheme", "https")
            .str("net.peer.name", model.provider.host)
            .str("http.flavor", "1.1")
            .when(status > 0, |a| a.int("http.status_code", status))
    };
    let mut span = call.span("POST".to_owned(), SpanKind::Client, attributes);
    if status >= 400 {
        span.status = Some(Status {
            message: String::new(),
            code: StatusCode::Error as i32,
        });
    }
    span
}

const TOOL_DEFINITIONS: &str = r#"[{"type": "function", "name": "get_order_status", "description": "Look up the status of a customer order by id.", "parameters": {"type": "object", "properties": {"order_id": {"type": "string", "description": "The order id, e.g. A-10442"}}, "required": ["order_id"]}}]"#;

/// A Python SDK's resource on Kubernetes (`OTEL_RESOURCE_ATTRIBUTES` + detectors).
fn resource(rng: &mut Rng, service_index: usize, service: &str, sdk: Emitter) -> Resource {
    let pod = format!(
        "{service}-{}-{}",
        rng.hex(10),
        rng.alphanumeric(5).to_lowercase()
    );
    let sdk_name = match sdk {
        Emitter::OpenLit => "openlit",
        _ => "opentelemetry",
    };
    let attributes = Attributes::default()
        .str("service.name", service)
        .str(
            "service.version",
            &format!("1.{}.{}", 4 + service_index, rng.below(20)),
        )
        .str("service.namespace", "shop")
        .str(
            "service.instance.id",
            &format!(
                "{}-{}-4{}-a{}-{}",
                rng.hex(8),
                rng.hex(4),
                rng.hex(3),
                rng.hex(3),
                rng.hex(12)
            ),
        )
        .str("deployment.environment.name", "production")
        .str("telemetry.sdk.language", "python")
        .str("telemetry.sdk.name", sdk_name)
        .str("telemetry.sdk.version", "1.38.0")
        .when(sdk == Emitter::Semconv, |a| {
            a.str("telemetry.auto.version", "0.59b0")
        })
        .when(sdk == Emitter::OpenInference, |a| {
            a.str("openinference.project.name", service)
        })
        .str("host.name", &pod)
        .str("host.arch", "amd64")
        .str("os.type", "linux")
        .str("os.description", "Linux 6.1.141-155.222.amzn2023.x86_64")
        .int("process.pid", 1 + rng.below(64) as i64)
        .str("process.executable.name", "python3.12")
        .str("process.executable.path", "/usr/local/bin/python3.12")
        .strs(
            "process.command_args",
            &["/usr/local/bin/python3.12", "-m", "uvicorn", "app.main:app"],
        )
        .str("process.owner", "app")
        .str("process.runtime.name", "cpython")
        .str("process.runtime.version", "3.12.11")
        .str(
            "process.runtime.description",
            "3.12.11 (main, Jun  4 2026, 22:10:19) [GCC 12.2.0]",
        )
        .str("container.id", &rng.hex(64))
        .str("k8s.namespace.name", "llm-apps")
        .str("k8s.pod.name", &pod)
        .str("k8s.deployment.name", service)
        .str(
            "k8s.node.name",
            &format!("ip-10-0-{}-{}.ec2.internal", rng.below(8), rng.below(250)),
        )
        .str("cloud.provider", "aws")
        .str("cloud.region", "us-east-1");
    Resource {
        attributes: attributes.0,
        ..Default::default()
    }
}

fn sentence(rng: &mut Rng, min_words: u64, max_words: u64) -> String {
    let words = min_words + rng.below(max_words - min_words + 1);
    let mut out = String::new();
    for i in 0..words {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(rng.pick(&WORDS));
    }
    out.push('.');
    out
}

fn stacktrace(exception_type: &str, message: &str) -> String {
    let mut out = String::from("Traceback (most recent call last):\n");
    for (file, line, function) in [
        ("app/handlers/chat.py", 88, "answer"),
        ("openai/_utils/_utils.py", 287, "wrapper"),
        (
            "openai/resources/chat/completions/completions.py",
            1147,
            "create",
        ),
        ("openai/_base_client.py", 1259, "post"),
        ("openai/_base_client.py", 1047, "request"),
    ] {
        let _ = writeln!(
            out,
            "  File \"/usr/local/lib/python3.12/site-packages/{file}\", line {line}, in {function}"
        );
    }
    let _ = writeln!(out, "{exception_type}: {message}");
    out
}

/// `2026-05-01T00:00:07.123456Z`, as Python's `datetime.isoformat()` writes it for Langfuse.
fn rfc3339(unix_nanos: u64) -> String {
    let seconds = unix_nanos / NANOS;
    let micros = (unix_nanos % NANOS) / 1000;
    let days = (seconds / 86_400) as i64;
    let rem = seconds % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The benchmark request: [`SPANS_PER_REQUEST`] spans from the default workload.
pub fn realistic_request() -> ExportTraceServiceRequest {
    Generator::new(WorkloadConfig::default()).next_request()
}

/// Protobuf encoding, as it arrives on the wire (gRPC message or OTLP/HTTP body).
pub fn encode(request: &ExportTraceServiceRequest) -> Vec<u8> {
    request.encode_to_vec()
}

/// Two extra dimensions read from the workload's baggage and emitter-specific attributes.
pub fn bench_dimensions() -> Vec<Dimension> {
    vec![
        Dimension {
            label: "feature".to_owned(),
            attributes: vec![
                "app.feature".to_owned(),
                "traceloop.workflow.name".to_owned(),
                "langfuse.trace.name".to_owned(),
            ],
        },
        Dimension {
            label: "tenant".to_owned(),
            attributes: vec![
                "tenant.id".to_owned(),
                "traceloop.association.properties.tenant_id".to_owned(),
                "langfuse.trace.metadata.tenant".to_owned(),
            ],
        },
    ]
}

/// What a request contains, to check a workload is the one intended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestStats {
    pub resources: usize,
    pub spans: usize,
    pub encoded_bytes: usize,
    pub min_attributes: usize,
    pub max_attributes: usize,
    pub mean_attributes: f64,
    pub mean_resource_attributes: f64,
    pub spans_with_events: usize,
    pub events: usize,
    /// Spans with an attribute of at least 200 bytes (captured content, JSON payloads).
    pub spans_with_large_values: usize,
}

impl RequestStats {
    pub fn of(request: &ExportTraceServiceRequest) -> RequestStats {
        let mut stats = RequestStats {
            resources: request.resource_spans.len(),
            encoded_bytes: request.encoded_len(),
            min_attributes: usize::MAX,
            ..Default::default()
        };
        let mut attributes = 0;
        let mut resource_attributes = 0;
        for resource_spans in &request.resource_spans {
            resource_attributes += resource_spans
                .resource
                .as_ref()
                .map_or(0, |r| r.attributes.len());
            for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
                stats.spans += 1;
                attributes += span.attributes.len();
                stats.min_attributes = stats.min_attributes.min(span.attributes.len());
                stats.max_attributes = stats.max_attributes.max(span.attributes.len());
                stats.events += span.events.len();
                stats.spans_with_events += usize::from(!span.events.is_empty());
                let large = span.attributes.iter().any(|kv| {
                    matches!(&kv.value, Some(AnyValue { value: Some(Value::StringValue(s)) }) if s.len() >= 200)
                });
                stats.spans_with_large_values += usize::from(large);
            }
        }
        stats.mean_attributes = attributes as f64 / stats.spans.max(1) as f64;
        stats.mean_resource_attributes = resource_attributes as f64 / stats.resources.max(1) as f64;
        stats
    }
}

/// Peak resident set size of this process in KiB (`VmHWM`), on Linux.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use llmwatch_core::{Processor, ProcessorConfig, Transport};

    use super::*;

    #[test]
    fn the_request_is_deterministic() {
        assert_eq!(encode(&realistic_request()), encode(&realistic_request()));
        let mut generator = Generator::new(WorkloadConfig::default());
        let first = generator.next_request();
        let second = generator.next_request();
        assert_ne!(encode(&first), encode(&second));
    }

    #[test]
    fn the_request_looks_like_real_exports() {
        let request = realistic_request();
        let stats = RequestStats::of(&request);
        assert_eq!(stats.spans, SPANS_PER_REQUEST);
        assert!(stats.resources >= 12, "{stats:?}");
        assert!((14.0..=30.0).contains(&stats.mean_attributes), "{stats:?}");
        assert!(stats.max_attributes <= 45, "{stats:?}");
        assert!(stats.mean_resource_attributes >= 20.0, "{stats:?}");
        assert!(stats.spans_with_events > 20, "{stats:?}");
        assert!(stats.spans_with_large_values > 100, "{stats:?}");
    }

    #[test]
    fn every_span_is_accepted_and_most_are_model_calls() {
        let processor = Processor::new(&ProcessorConfig {
            dimensions: bench_dimensions(),
            ..Default::default()
        })
        .unwrap();
        let request = realistic_request();
        let report = processor.ingest_traces(&request, Transport::Grpc);
        assert_eq!(report.rejected, 0, "{}", report.error_message);
        assert_eq!(report.accepted, SPANS_PER_REQUEST as u64);
        let series = processor.store().series_count();
        assert!((20..2000).contains(&series), "{series} series");
    }

    #[test]
    fn langfuse_timestamps_are_rfc3339() {
        assert_eq!(
            rfc3339(BASE_UNIX_SECONDS * NANOS + 7 * NANOS + 123_456_789),
            "2026-05-01T00:00:07.123456Z"
        );
        assert_eq!(
            llmwatch_semconv::parse_rfc3339_nanos("\"2026-05-01T00:00:07.123456Z\""),
            Some(BASE_UNIX_SECONDS * NANOS + 7 * NANOS + 123_456_000)
        );
    }

    #[test]
    fn model_variants_add_distinct_models() {
        let mut generator = Generator::new(WorkloadConfig {
            models: 600,
            ..Default::default()
        });
        let request = generator.next_request();
        let mut models = std::collections::HashSet::new();
        for span in request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
        {
            if let Some(kv) = span
                .attributes
                .iter()
                .find(|kv| kv.key == "gen_ai.request.model")
            {
                models.insert(format!("{:?}", kv.value));
            }
        }
        assert!(models.len() > 100, "{} models", models.len());
    }
}
