//! `llmwatch simulate`: realistic GenAI traffic through the OpenTelemetry OTLP exporter.
//!
//! Two halves that never mix:
//! - [`Generator`] is pure: a seed, a rate, a span count and a [`Scenario`] in, [`SimSpan`]
//!   descriptions out. No clock, no I/O, so the same arguments always give the same spans.
//! - [`send`] builds those spans with the OpenTelemetry API (explicit start and end times, so a
//!   run never sleeps per span) and sends them with the `opentelemetry-otlp` span exporter behind
//!   the SDK's batch span processor, one tracer provider per simulated service, paced to `--rate`
//!   in batches.
//!
//! Traffic is drawn as a [`CallPlan`] per call from the service and model profiles below, then
//! handed to the scenario, which may change it (a later drift or fault scenario changes latency,
//! errors, models or tokens there), then rendered as a span shaped like the current OpenTelemetry
//! GenAI semantic conventions. Only the [`Normal`] scenario exists now.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanId, SpanKind, Status, TraceId, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, IdGenerator, RandomIdGenerator, SdkTracer,
    SdkTracerProvider, SpanData, SpanExporter,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The random source of a run: ChaCha8, whose output is fixed for a seed.
pub type SimRng = ChaCha8Rng;

/// Options of `llmwatch simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// OTLP endpoint, e.g. http://127.0.0.1:4317 (gRPC) or http://127.0.0.1:4318 (HTTP; `/v1/traces`
    /// is appended unless the URL already ends with it).
    #[arg(long)]
    pub endpoint: String,
    /// Spans per second, sent in batches at most ten times a second.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// How long to send, e.g. "30s" or "5m"; the run sends rate × duration spans.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Seed of the traffic: the same seed sends the same spans.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, value_enum, default_value_t = Protocol::Grpc)]
    pub protocol: Protocol,
    /// Shape of the traffic over time.
    #[arg(long, value_enum, default_value_t = ScenarioName::Normal)]
    pub scenario: ScenarioName,
}

/// OTLP transports the simulator can send with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

impl Protocol {
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http-protobuf",
        }
    }
}

impl SimulateArgs {
    /// How many spans the run sends: rate × duration, rounded.
    pub fn total_spans(&self) -> anyhow::Result<u64> {
        if !(self.rate.is_finite() && self.rate > 0.0) {
            bail!(
                "--rate must be a positive number of spans per second, got {}",
                self.rate
            );
        }
        let total = (self.rate * self.duration.as_secs_f64()).round();
        if total < 1.0 {
            bail!(
                "--rate {} for --duration {} sends no span",
                self.rate,
                humantime::format_duration(self.duration)
            );
        }
        if total > 1e12 {
            bail!("--rate × --duration is too many spans ({total})");
        }
        Ok(total as u64)
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

/// Where in the run a call happens, for scenarios that change traffic over time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunTime {
    /// When the call ends, counted from the start of the run.
    pub elapsed: Duration,
    /// The whole run.
    pub total: Duration,
}

/// A shape of traffic over a run. Scenarios only change planned calls; they never send.
pub trait Scenario: fmt::Debug + Send {
    fn name(&self) -> &'static str;

    /// Changes one planned call. Draws randomness from `rng` only, so a run stays a function of
    /// its seed.
    fn shape(&self, at: RunTime, call: &mut CallPlan, rng: &mut SimRng);
}

/// Steady traffic with the profiles' mix of services, models, streaming, finish reasons and
/// errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct Normal;

impl Scenario for Normal {
    fn name(&self) -> &'static str {
        "normal"
    }

    fn shape(&self, _at: RunTime, _call: &mut CallPlan, _rng: &mut SimRng) {}
}

/// The scenarios `--scenario` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScenarioName {
    Normal,
}

impl ScenarioName {
    pub fn build(self) -> Box<dyn Scenario> {
        match self {
            ScenarioName::Normal => Box::new(Normal),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Profiles
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    OpenAi,
    Anthropic,
}

impl Provider {
    /// The `gen_ai.provider.name` value.
    pub const fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
        }
    }

    const fn server_address(self) -> &'static str {
        match self {
            Provider::OpenAi => "api.openai.com",
            Provider::Anthropic => "api.anthropic.com",
        }
    }

    /// The provider's own spelling of a finish reason, as instrumentations report it.
    pub const fn finish_reason(self, finish: Finish) -> &'static str {
        match (self, finish) {
            (Provider::OpenAi, Finish::Stop) => "stop",
            (Provider::OpenAi, Finish::Length) => "length",
            (Provider::OpenAi, Finish::ToolCalls) => "tool_calls",
            (Provider::Anthropic, Finish::Stop) => "end_turn",
            (Provider::Anthropic, Finish::Length) => "max_tokens",
            (Provider::Anthropic, Finish::ToolCalls) => "tool_use",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Chat,
    Embeddings,
}

impl Operation {
    /// The `gen_ai.operation.name` value.
    pub const fn name(self) -> &'static str {
        match self {
            Operation::Chat => "chat",
            Operation::Embeddings => "embeddings",
        }
    }
}

/// How a model reports prompt caching.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cache {
    None,
    /// OpenAI: `cached_tokens` in steps of 128 once a prompt reaches 1024 tokens; reported on
    /// every call (0 when nothing was cached).
    OpenAi {
        hit_probability: f64,
    },
    /// Anthropic: cache reads and cache writes at explicit breakpoints; both reported on every
    /// call.
    Anthropic {
        read_probability: f64,
        write_probability: f64,
    },
}

/// One model as the simulator calls it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelProfile {
    pub provider: Provider,
    pub operation: Operation,
    pub request_model: &'static str,
    pub response_model: &'static str,
    /// Inclusive range of input tokens, drawn log-uniformly.
    pub input_tokens: (u64, u64),
    /// Inclusive range of output tokens on a call that stops normally; 0 for embeddings.
    pub output_tokens: (u64, u64),
    pub cache: Cache,
    /// Reasoning models report hidden reasoning tokens, counted in output tokens.
    pub reasoning: bool,
    /// `openai.response.system_fingerprint` values, the first most common; empty for none.
    pub fingerprints: &'static [&'static str],
    /// Latency before any token work: network, queueing.
    pub overhead_seconds: f64,
    pub seconds_per_input_token: f64,
    pub seconds_per_output_token: f64,
    /// Whether the model takes `gen_ai.request.temperature` (reasoning models do not).
    pub temperature: bool,
}

/// Every model the simulator calls.
pub static MODELS: &[ModelProfile] = &[
    ModelProfile {
        provider: Provider::OpenAi,
        operation: Operation::Chat,
        request_model: "gpt-4o",
        response_model: "gpt-4o-2024-08-06",
        input_tokens: (150, 12_000),
        output_tokens: (20, 900),
        cache: Cache::OpenAi {
            hit_probability: 0.6,
        },
        reasoning: false,
        fingerprints: &["fp_7fcd609668", "fp_a288987b44"],
        overhead_seconds: 0.25,
        seconds_per_input_token: 0.000_04,
        seconds_per_output_token: 0.012,
        temperature: true,
    },
    ModelProfile {
        provider: Provider::OpenAi,
        operation: Operation::Chat,
        request_model: "gpt-4o-mini",
        response_model: "gpt-4o-mini-2024-07-18",
        input_tokens: (80, 6_000),
        output_tokens: (10, 600),
        cache: Cache::OpenAi {
            hit_probability: 0.5,
        },
        reasoning: false,
        fingerprints: &["fp_560af6e559", "fp_01aeff40ea"],
        overhead_seconds: 0.18,
        seconds_per_input_token: 0.000_02,
        seconds_per_output_token: 0.007,
        temperature: true,
    },
    ModelProfile {
        provider: Provider::Anthropic,
        operation: Operation::Chat,
        request_model: "claude-sonnet-4-5",
        response_model: "claude-sonnet-4-5-20250929",
        input_tokens: (300, 20_000),
        output_tokens: (30, 1_200),
        cache: Cache::Anthropic {
            read_probability: 0.55,
            write_probability: 0.15,
        },
        reasoning: false,
        fingerprints: &[],
        overhead_seconds: 0.4,
        seconds_per_input_token: 0.000_05,
        seconds_per_output_token: 0.015,
        temperature: true,
    },
    ModelProfile {
        provider: Provider::OpenAi,
        operation: Operation::Chat,
        request_model: "o3-mini",
        response_model: "o3-mini-2025-01-31",
        input_tokens: (200, 8_000),
        output_tokens: (300, 6_000),
        cache: Cache::OpenAi {
            hit_probability: 0.3,
        },
        reasoning: true,
        fingerprints: &["fp_42bfad963b"],
        overhead_seconds: 0.3,
        seconds_per_input_token: 0.000_03,
        seconds_per_output_token: 0.009,
        temperature: false,
    },
    ModelProfile {
        provider: Provider::OpenAi,
        operation: Operation::Embeddings,
        request_model: "text-embedding-3-small",
        response_model: "text-embedding-3-small",
        input_tokens: (8, 2_000),
        output_tokens: (0, 0),
        cache: Cache::None,
        reasoning: false,
        fingerprints: &[],
        overhead_seconds: 0.06,
        seconds_per_input_token: 0.000_03,
        seconds_per_output_token: 0.0,
        temperature: false,
    },
];

/// The model profile with this request model.
pub fn model(request_model: &str) -> Option<&'static ModelProfile> {
    MODELS.iter().find(|m| m.request_model == request_model)
}

/// One application calling models: a resource `service.name` with its own mix.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceProfile {
    pub name: &'static str,
    /// Share of all calls.
    pub weight: f64,
    /// `app.feature` values, equally likely.
    pub features: &'static [&'static str],
    /// Request models and their weights.
    pub models: &'static [(&'static str, f64)],
    pub stream_probability: f64,
    /// Whether calls belong to conversations (`gen_ai.conversation.id`).
    pub conversational: bool,
    /// Distinct users (`user.id`).
    pub users: u32,
    /// `gen_ai.request.max_tokens` of chat calls.
    pub max_tokens: u64,
    /// Weights of stop, length and tool-call finishes of chat calls.
    pub finish_weights: [f64; 3],
}

/// Every simulated service.
pub static SERVICES: &[ServiceProfile] = &[
    ServiceProfile {
        name: "support-chat",
        weight: 0.4,
        features: &["ticket_reply", "triage", "thread_summary"],
        models: &[
            ("gpt-4o", 0.5),
            ("claude-sonnet-4-5", 0.3),
            ("gpt-4o-mini", 0.2),
        ],
        stream_probability: 0.7,
        conversational: true,
        users: 400,
        max_tokens: 1024,
        finish_weights: [0.78, 0.05, 0.17],
    },
    ServiceProfile {
        name: "search-api",
        weight: 0.3,
        features: &["query_embedding", "document_embedding", "answer_snippet"],
        models: &[("text-embedding-3-small", 0.8), ("gpt-4o-mini", 0.2)],
        stream_probability: 0.0,
        conversational: false,
        users: 2000,
        max_tokens: 256,
        finish_weights: [0.96, 0.04, 0.0],
    },
    ServiceProfile {
        name: "code-review",
        weight: 0.15,
        features: &["review_diff", "explain_failure"],
        models: &[("o3-mini", 0.55), ("claude-sonnet-4-5", 0.45)],
        stream_probability: 0.35,
        conversational: true,
        users: 60,
        max_tokens: 8192,
        finish_weights: [0.86, 0.06, 0.08],
    },
    ServiceProfile {
        name: "docs-summarizer",
        weight: 0.15,
        features: &["summarize_page", "changelog_digest"],
        models: &[("gpt-4o-mini", 0.7), ("gpt-4o", 0.3)],
        stream_probability: 0.2,
        conversational: false,
        users: 150,
        max_tokens: 512,
        finish_weights: [0.9, 0.1, 0.0],
    },
];

/// Per-call probabilities of each failure (drawn once per call, in this order).
const ERROR_PROBABILITIES: [(CallError, f64); 3] = [
    (CallError::RateLimit, 0.02),
    (CallError::Timeout, 0.006),
    (CallError::ServerError, 0.004),
];

/// Client-side timeout the simulated apps configure.
const CHAT_TIMEOUT_SECONDS: f64 = 30.0;
const EMBEDDINGS_TIMEOUT_SECONDS: f64 = 10.0;

// ---------------------------------------------------------------------------------------------
// Plans and spans
// ---------------------------------------------------------------------------------------------

/// How a chat call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Stop,
    Length,
    ToolCalls,
}

/// How a call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// HTTP 429.
    RateLimit,
    /// The client gave up after its timeout.
    Timeout,
    /// HTTP 500 (OpenAI) or 529 (Anthropic).
    ServerError,
}

impl CallError {
    /// The `error.type` value: the SDK's exception class, as instrumentations record it.
    pub const fn error_type(self) -> &'static str {
        match self {
            CallError::RateLimit => "RateLimitError",
            CallError::Timeout => "APITimeoutError",
            CallError::ServerError => "InternalServerError",
        }
    }

    fn description(self, provider: Provider, model: &str) -> String {
        match (self, provider) {
            (CallError::RateLimit, _) => {
                format!("Error code: 429 - Rate limit reached for {model} on tokens per min")
            }
            (CallError::Timeout, _) => "Request timed out.".to_owned(),
            (CallError::ServerError, Provider::OpenAi) => {
                "Error code: 500 - The server had an error while processing your request."
                    .to_owned()
            }
            (CallError::ServerError, Provider::Anthropic) => {
                "Error code: 529 - overloaded_error: Overloaded".to_owned()
            }
        }
    }
}

/// Token counts as the conventions count them: input includes cache reads and writes, output
/// includes reasoning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub input: u64,
    /// `None` for embeddings.
    pub output: Option<u64>,
    pub cache_read: Option<u64>,
    pub cache_write: Option<u64>,
    pub reasoning: Option<u64>,
}

/// One call before it becomes a span: what scenarios read and change.
#[derive(Debug, Clone, PartialEq)]
pub struct CallPlan {
    pub service: &'static ServiceProfile,
    pub model: &'static ModelProfile,
    pub feature: &'static str,
    /// `user.id`.
    pub user: String,
    /// `gen_ai.conversation.id`.
    pub conversation: Option<String>,
    pub streamed: bool,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    /// `None` on a failed call: no response came back.
    pub usage: Option<Usage>,
    pub finish: Option<Finish>,
    pub fingerprint: Option<&'static str>,
    /// Streamed successful calls only.
    pub time_to_first_chunk: Option<Duration>,
    pub duration: Duration,
    pub error: Option<CallError>,
}

/// An attribute value of a simulated span.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    StrArray(Vec<String>),
}

/// One span to send: everything but the wall-clock start of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct SimSpan {
    /// Index into [`SERVICES`]: the resource the span is sent under.
    pub service: usize,
    pub name: String,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// When the call ended, counted from the start of the run.
    pub end_offset: Duration,
    pub duration: Duration,
    pub attributes: Vec<(&'static str, AttrValue)>,
    /// Status description of a failed call (status ERROR); `None` leaves the status unset.
    pub error: Option<String>,
}

impl SimSpan {
    pub fn attribute(&self, key: &str) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    pub fn int(&self, key: &str) -> Option<i64> {
        match self.attribute(key)? {
            AttrValue::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        match self.attribute(key)? {
            AttrValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn service_name(&self) -> &'static str {
        SERVICES[self.service].name
    }
}

// ---------------------------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------------------------

/// Seed → spans. Pure and deterministic: the same arguments give the same spans in the same
/// order, whatever the clock.
#[derive(Debug)]
pub struct Generator {
    rng: SimRng,
    scenario: Box<dyn Scenario>,
    rate: f64,
    total: u64,
    next: u64,
    /// Per (service, user): how many conversations that user has started.
    conversations: BTreeMap<(usize, u32), u64>,
    seed: u64,
}

impl Generator {
    /// `total` spans, one every `1 / rate` seconds.
    pub fn new(seed: u64, rate: f64, total: u64, scenario: Box<dyn Scenario>) -> Generator {
        assert!(rate.is_finite() && rate > 0.0, "rate must be positive");
        Generator {
            rng: SimRng::seed_from_u64(seed),
            scenario,
            rate,
            total,
            next: 0,
            conversations: BTreeMap::new(),
            seed,
        }
    }

    pub fn scenario_name(&self) -> &'static str {
        self.scenario.name()
    }

    fn end_offset(&self, index: u64) -> Duration {
        Duration::from_secs_f64(index as f64 / self.rate)
    }

    /// Draws one call of the normal mix.
    fn plan(&mut self) -> CallPlan {
        let rng = &mut self.rng;
        let service_index = pick_weighted(rng, SERVICES.iter().map(|s| s.weight));
        let service = &SERVICES[service_index];
        let model_name = service.models[pick_weighted(rng, service.models.iter().map(|m| m.1))].0;
        let model = model(model_name).expect("service profiles name known models");
        let feature = service.features[rng.random_range(0..service.features.len())];
        // A few heavy users make most calls.
        let user_index = (f64::from(service.users) * rng.random::<f64>().powi(2)) as u32;
        let user = format!("user-{user_index:05}");
        let conversation = service.conversational.then(|| {
            let started = self
                .conversations
                .entry((service_index, user_index))
                .or_insert(1);
            if rng.random_bool(0.12) {
                *started += 1;
            }
            let id = mix(self.seed ^ mix(service_index as u64) ^ mix(u64::from(user_index) << 20))
                ^ mix(*started);
            format!("conv_{id:016x}")
        });
        let chat = model.operation == Operation::Chat;
        let streamed = chat && rng.random_bool(service.stream_probability);
        let max_tokens = chat.then_some(service.max_tokens);
        let temperature =
            (chat && model.temperature).then(|| [0.0, 0.2, 0.7, 1.0][rng.random_range(0..4)]);
        let fingerprint = match model.fingerprints {
            [] => None,
            [only] => Some(*only),
            [first, rest @ ..] => Some(if rng.random_bool(0.9) {
                *first
            } else {
                rest[rng.random_range(0..rest.len())]
            }),
        };

        let mut error = None;
        for (kind, probability) in ERROR_PROBABILITIES {
            if rng.random_bool(probability) && error.is_none() {
                error = Some(kind);
            }
        }
        let mut plan = CallPlan {
            service,
            model,
            feature,
            user,
            conversation,
            streamed,
            max_tokens,
            temperature,
            usage: None,
            finish: None,
            fingerprint: None,
            time_to_first_chunk: None,
            duration: Duration::ZERO,
            error,
        };
        if let Some(error) = error {
            let seconds = match error {
                CallError::RateLimit => rng.random_range(0.03..0.3),
                CallError::Timeout if chat => CHAT_TIMEOUT_SECONDS + rng.random_range(0.0..0.05),
                CallError::Timeout => EMBEDDINGS_TIMEOUT_SECONDS + rng.random_range(0.0..0.05),
                CallError::ServerError => rng.random_range(0.2..2.0),
            };
            plan.duration = whole_micros(seconds);
            return plan;
        }

        let input = log_uniform(rng, model.input_tokens);
        let (cache_read, cache_write) = match model.cache {
            Cache::None => (None, None),
            Cache::OpenAi { hit_probability } => {
                let cached = if input >= 1024 && rng.random_bool(hit_probability) {
                    1024 + 128 * rng.random_range(0..=(input - 1024) / 128)
                } else {
                    0
                };
                (Some(cached), None)
            }
            Cache::Anthropic {
                read_probability,
                write_probability,
            } => {
                let read = if rng.random_bool(read_probability) {
                    (input as f64 * rng.random_range(0.5..0.95)) as u64
                } else {
                    0
                };
                let write = if rng.random_bool(write_probability) {
                    ((input as f64 * rng.random_range(0.2..0.6)) as u64).min(input - read)
                } else {
                    0
                };
                (Some(read), Some(write))
            }
        };

        let (usage, finish) = if chat {
            let weights = service.finish_weights;
            let finish = [Finish::Stop, Finish::Length, Finish::ToolCalls]
                [pick_weighted(rng, weights.into_iter())];
            let limit = service.max_tokens;
            let output = match finish {
                Finish::Length => limit,
                Finish::ToolCalls => rng.random_range(15..=180).min(limit - 1),
                Finish::Stop => log_uniform(rng, model.output_tokens).min(limit - 1),
            };
            let reasoning = model
                .reasoning
                .then(|| (output as f64 * rng.random_range(0.4..0.85)) as u64);
            let usage = Usage {
                input,
                output: Some(output),
                cache_read,
                cache_write,
                reasoning,
            };
            (usage, Some(finish))
        } else {
            let usage = Usage {
                input,
                ..Usage::default()
            };
            (usage, None)
        };

        // Latency: overhead, then prefill (cached tokens cost a fifth), then generation; hidden
        // reasoning comes before the first visible chunk. Each phase jitters log-normally.
        let cached = usage.cache_read.unwrap_or(0);
        let prefill =
            ((input - cached) as f64 + cached as f64 * 0.2) * model.seconds_per_input_token;
        let reasoning = usage.reasoning.unwrap_or(0) as f64 * model.seconds_per_output_token;
        let visible_output = usage.output.unwrap_or(0) - usage.reasoning.unwrap_or(0);
        let generation = visible_output as f64 * model.seconds_per_output_token;
        let first_chunk = (model.overhead_seconds + prefill + reasoning) * jitter(rng, 0.3);
        let rest = generation * jitter(rng, 0.2);
        let ttft = whole_micros(first_chunk);
        let duration = whole_micros(first_chunk + rest).max(ttft + Duration::from_millis(1));
        plan.usage = Some(usage);
        plan.finish = finish;
        plan.fingerprint = fingerprint;
        plan.time_to_first_chunk = streamed.then_some(ttft);
        plan.duration = duration;
        plan
    }

    /// Renders a planned call as a span shaped like the OpenTelemetry GenAI conventions.
    fn render(&mut self, plan: &CallPlan, end_offset: Duration) -> SimSpan {
        let rng = &mut self.rng;
        let model = plan.model;
        let provider = model.provider;
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        rng.fill(&mut trace_id);
        rng.fill(&mut span_id);
        // All-zero ids are invalid; with 64 random bits this never happens, but never is cheap.
        trace_id[0] |= 1;
        span_id[0] |= 1;

        let mut attributes: Vec<(&'static str, AttrValue)> = Vec::with_capacity(24);
        let mut put = |key: &'static str, value: AttrValue| attributes.push((key, value));
        let text = |s: &str| AttrValue::Str(s.to_owned());
        let int = |n: u64| AttrValue::Int(n as i64);
        put("gen_ai.operation.name", text(model.operation.name()));
        put("gen_ai.provider.name", text(provider.name()));
        put("gen_ai.request.model", text(model.request_model));
        put("server.address", text(provider.server_address()));
        put("server.port", AttrValue::Int(443));
        if let Some(max_tokens) = plan.max_tokens {
            put("gen_ai.request.max_tokens", int(max_tokens));
        }
        if let Some(temperature) = plan.temperature {
            put("gen_ai.request.temperature", AttrValue::Float(temperature));
        }
        match model.operation {
            Operation::Chat => put("gen_ai.request.stream", AttrValue::Bool(plan.streamed)),
            Operation::Embeddings => {
                put("gen_ai.embeddings.dimension.count", AttrValue::Int(1536));
                put(
                    "gen_ai.request.encoding_formats",
                    AttrValue::StrArray(vec!["float".to_owned()]),
                );
            }
        }
        if let Some(usage) = &plan.usage {
            if model.operation == Operation::Chat {
                put(
                    "gen_ai.response.id",
                    AttrValue::Str(response_id(rng, provider)),
                );
            }
            put("gen_ai.response.model", text(model.response_model));
            if let Some(finish) = plan.finish {
                put(
                    "gen_ai.response.finish_reasons",
                    AttrValue::StrArray(vec![provider.finish_reason(finish).to_owned()]),
                );
            }
            put("gen_ai.usage.input_tokens", int(usage.input));
            if let Some(output) = usage.output {
                put("gen_ai.usage.output_tokens", int(output));
            }
            if let Some(n) = usage.cache_read {
                put("gen_ai.usage.cache_read.input_tokens", int(n));
            }
            if let Some(n) = usage.cache_write {
                put("gen_ai.usage.cache_creation.input_tokens", int(n));
            }
            if let Some(n) = usage.reasoning {
                put("gen_ai.usage.reasoning.output_tokens", int(n));
            }
            if let Some(ttft) = plan.time_to_first_chunk {
                put(
                    "gen_ai.response.time_to_first_chunk",
                    AttrValue::Float(ttft.as_secs_f64()),
                );
            }
            if let Some(fingerprint) = plan.fingerprint {
                put("openai.response.system_fingerprint", text(fingerprint));
            }
            if provider == Provider::OpenAi {
                put("openai.response.service_tier", text("default"));
            }
        }
        if let Some(error) = plan.error {
            put("error.type", text(error.error_type()));
        }
        if let Some(conversation) = &plan.conversation {
            put("gen_ai.conversation.id", text(conversation));
        }
        put("user.id", text(&plan.user));
        put("app.feature", text(plan.feature));

        SimSpan {
            service: SERVICES
                .iter()
                .position(|s| s.name == plan.service.name)
                .expect("plans name known services"),
            name: format!("{} {}", model.operation.name(), model.request_model),
            trace_id,
            span_id,
            end_offset,
            duration: plan.duration,
            attributes,
            error: plan
                .error
                .map(|e| e.description(provider, model.request_model)),
        }
    }
}

impl Iterator for Generator {
    type Item = SimSpan;

    fn next(&mut self) -> Option<SimSpan> {
        if self.next >= self.total {
            return None;
        }
        let index = self.next;
        self.next += 1;
        let end_offset = self.end_offset(index);
        let mut plan = self.plan();
        let at = RunTime {
            elapsed: end_offset,
            total: self.end_offset(self.total),
        };
        self.scenario.shape(at, &mut plan, &mut self.rng);
        Some(self.render(&plan, end_offset))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.total - self.next).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

fn pick_weighted(rng: &mut SimRng, weights: impl Iterator<Item = f64> + Clone) -> usize {
    let total: f64 = weights.clone().sum();
    let mut point = rng.random::<f64>() * total;
    let mut last = 0;
    for (index, weight) in weights.enumerate() {
        if weight <= 0.0 {
            continue;
        }
        last = index;
        if point < weight {
            return index;
        }
        point -= weight;
    }
    last
}

fn log_uniform(rng: &mut SimRng, (low, high): (u64, u64)) -> u64 {
    if low >= high {
        return low;
    }
    let (a, b) = ((low as f64).ln(), (high as f64 + 1.0).ln());
    (rng.random_range(a..b).exp() as u64).clamp(low, high)
}

/// A log-normal factor around 1 with the given spread (Box–Muller).
fn jitter(rng: &mut SimRng, sigma: f64) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (sigma * normal).exp()
}

fn whole_micros(seconds: f64) -> Duration {
    Duration::from_micros((seconds * 1e6).round().max(1.0) as u64)
}

fn response_id(rng: &mut SimRng, provider: Provider) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let (prefix, len) = match provider {
        Provider::OpenAi => ("chatcmpl-", 29),
        Provider::Anthropic => ("msg_01", 22),
    };
    let mut id = String::with_capacity(prefix.len() + len);
    id.push_str(prefix);
    for _ in 0..len {
        id.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    id
}

/// SplitMix64 finalizer: spreads small integers over 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// ---------------------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------------------

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub endpoint: String,
    pub protocol: Protocol,
    pub seed: u64,
    pub scenario: &'static str,
    pub generated: u64,
    /// Spans the exporter delivered (the receiver answered success).
    pub sent: u64,
    /// Spans in batches the exporter gave up on.
    pub failed: u64,
    pub services: usize,
    pub models: usize,
    pub errors: u64,
    pub streamed: u64,
    pub elapsed: Duration,
}

impl Summary {
    /// Spans that never reached the exporter (the batch processor's queue was full).
    pub fn dropped(&self) -> u64 {
        self.generated.saturating_sub(self.sent + self.failed)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "simulate: sent {} of {} spans to {} over {} in {:.1}s ({} failed, {} dropped): \
             {} services, {} models, {} errors, {} streamed; seed {}, scenario {}",
            self.sent,
            self.generated,
            self.endpoint,
            self.protocol.as_str(),
            self.elapsed.as_secs_f64(),
            self.failed,
            self.dropped(),
            self.services,
            self.models,
            self.errors,
            self.streamed,
            self.seed,
            self.scenario,
        )
    }
}

/// `llmwatch simulate`: sends, prints the summary, fails when any span did not get through.
pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let summary = send(&args).await?;
    println!("{summary}");
    if summary.sent < summary.generated {
        bail!(
            "{} of {} spans did not get through; is an OTLP receiver listening at {} ({})?",
            summary.generated - summary.sent,
            summary.generated,
            summary.endpoint,
            summary.protocol.as_str()
        );
    }
    Ok(())
}

/// Most time between two batches of spans.
const TICK: Duration = Duration::from_millis(100);

/// Generates and sends a run, paced to the rate, and waits until every span was exported.
pub async fn send(args: &SimulateArgs) -> anyhow::Result<Summary> {
    let total = args.total_spans()?;
    let generator = Generator::new(args.seed, args.rate, total, args.scenario.build());
    let scenario = generator.scenario_name();
    let stats = Arc::new(ExportStats::default());
    let ids = Arc::new(PlannedIds::default());
    let queue = (args.rate * 2.0).clamp(2048.0, 1_000_000.0) as usize;
    let mut providers = Vec::with_capacity(SERVICES.len());
    for service in SERVICES {
        providers.push(provider(args, service.name, queue, &stats, &ids).await?);
    }
    let tracers: Vec<SdkTracer> = providers
        .iter()
        .map(|p| {
            p.tracer_with_scope(
                InstrumentationScope::builder("llmwatch.simulate")
                    .with_version(env!("CARGO_PKG_VERSION"))
                    .build(),
            )
        })
        .collect();

    let base = SystemTime::now();
    let clock = tokio::time::Instant::now();
    let mut woke = clock;
    let (mut errors, mut streamed) = (0u64, 0u64);
    let mut services = [false; 8];
    let mut models = std::collections::BTreeSet::new();
    for span in generator {
        let due = clock + span.end_offset;
        if due > tokio::time::Instant::now() {
            woke = due.max(woke + TICK);
            tokio::time::sleep_until(woke).await;
        }
        errors += u64::from(span.error.is_some());
        streamed += u64::from(matches!(
            span.attribute("gen_ai.request.stream"),
            Some(AttrValue::Bool(true))
        ));
        services[span.service] = true;
        if let Some(AttrValue::Str(model)) = span.attribute("gen_ai.request.model") {
            models.insert(model.clone());
        }
        emit(&tracers[span.service], &ids, base, span);
    }
    drop(tracers);
    // Shutting a provider down exports what its batch processor still holds; it blocks, so it
    // runs off the async workers.
    tokio::task::spawn_blocking(move || {
        for provider in providers {
            if let Err(error) = provider.shutdown() {
                tracing::warn!(%error, "shutting the tracer provider down");
            }
        }
    })
    .await
    .context("shutting the exporters down")?;

    Ok(Summary {
        endpoint: args.endpoint.clone(),
        protocol: args.protocol,
        seed: args.seed,
        scenario,
        generated: total,
        sent: stats.sent.load(Relaxed),
        failed: stats.failed.load(Relaxed),
        services: services.iter().filter(|&&s| s).count(),
        models: models.len(),
        errors,
        streamed,
        elapsed: clock.elapsed(),
    })
}

fn emit(tracer: &SdkTracer, ids: &PlannedIds, base: SystemTime, span: SimSpan) {
    let end = base + span.end_offset;
    let start = end - span.duration;
    let attributes: Vec<KeyValue> = span
        .attributes
        .into_iter()
        .map(|(key, value)| KeyValue::new(key, otel_value(value)))
        .collect();
    ids.plan(span.trace_id, span.span_id);
    let mut otel_span = tracer.build(
        SpanBuilder::from_name(span.name)
            .with_kind(SpanKind::Client)
            .with_start_time(start)
            .with_attributes(attributes),
    );
    if let Some(description) = span.error {
        otel_span.set_status(Status::error(description));
    }
    otel_span.end_with_timestamp(end);
}

fn otel_value(value: AttrValue) -> Value {
    match value {
        AttrValue::Str(s) => Value::from(s),
        AttrValue::Int(n) => Value::I64(n),
        AttrValue::Float(x) => Value::F64(x),
        AttrValue::Bool(b) => Value::Bool(b),
        AttrValue::StrArray(items) => Value::Array(Array::String(
            items.into_iter().map(StringValue::from).collect(),
        )),
    }
}

/// One service's tracer provider: its resource, the OTLP exporter and the batch processor.
async fn provider(
    args: &SimulateArgs,
    service: &'static str,
    queue: usize,
    stats: &Arc<ExportStats>,
    ids: &Arc<PlannedIds>,
) -> anyhow::Result<SdkTracerProvider> {
    const TIMEOUT: Duration = Duration::from_secs(10);
    let exporter = match args.protocol {
        Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(args.endpoint.clone())
            .with_timeout(TIMEOUT)
            .build(),
        Protocol::HttpProtobuf => {
            // The batch processor exports on its own thread, outside any async runtime, so the
            // HTTP exporter gets the blocking client, built off the runtime as reqwest requires.
            let client = tokio::task::spawn_blocking(|| {
                reqwest::blocking::Client::builder()
                    .timeout(TIMEOUT)
                    .build()
            })
            .await?
            .context("building the HTTP client")?;
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_http_client(client)
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(traces_url(&args.endpoint))
                .with_timeout(TIMEOUT)
                .build()
        }
    }
    .with_context(|| format!("building the OTLP exporter for {}", args.endpoint))?;
    let processor = BatchSpanProcessor::builder(Counted {
        inner: exporter,
        stats: stats.clone(),
    })
    .with_batch_config(
        BatchConfigBuilder::default()
            .with_max_queue_size(queue)
            .with_max_export_batch_size(512)
            .with_scheduled_delay(Duration::from_millis(500))
            .build(),
    )
    .build();
    let resource = Resource::builder_empty()
        .with_service_name(service)
        .with_attributes([
            KeyValue::new("service.version", "1.4.2"),
            KeyValue::new("deployment.environment.name", "simulation"),
            KeyValue::new("telemetry.sdk.language", "rust"),
            KeyValue::new("telemetry.sdk.name", "opentelemetry"),
        ])
        .build();
    Ok(SdkTracerProvider::builder()
        .with_resource(resource)
        .with_id_generator(SharedIds(ids.clone()))
        .with_span_processor(processor)
        .build())
}

/// The OTLP/HTTP traces URL for a base endpoint.
pub fn traces_url(endpoint: &str) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    if endpoint.ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{endpoint}/v1/traces")
    }
}

/// Spans the exporter delivered or gave up on, over all providers.
#[derive(Debug, Default)]
struct ExportStats {
    sent: AtomicU64,
    failed: AtomicU64,
}

/// The OTLP exporter, counting what it delivers.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    stats: Arc<ExportStats>,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len() as u64;
        let result = self.inner.export(batch).await;
        match result {
            Ok(()) => self.stats.sent.fetch_add(n, Relaxed),
            Err(_) => self.stats.failed.fetch_add(n, Relaxed),
        };
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Hands the SDK the ids the generator drew for the next span, so a run's ids follow from its
/// seed. Spans are built one at a time by one task, which sets the ids just before.
#[derive(Debug, Default)]
struct PlannedIds {
    trace: Mutex<Option<TraceId>>,
    span: Mutex<Option<SpanId>>,
    fallback: RandomIdGenerator,
}

impl PlannedIds {
    fn plan(&self, trace_id: [u8; 16], span_id: [u8; 8]) {
        *self.trace.lock().unwrap_or_else(|e| e.into_inner()) = Some(TraceId::from_bytes(trace_id));
        *self.span.lock().unwrap_or_else(|e| e.into_inner()) = Some(SpanId::from_bytes(span_id));
    }
}

#[derive(Debug)]
struct SharedIds(Arc<PlannedIds>);

impl IdGenerator for SharedIds {
    fn new_trace_id(&self) -> TraceId {
        let planned = self
            .0
            .trace
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        planned.unwrap_or_else(|| self.0.fallback.new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        let planned = self.0.span.lock().unwrap_or_else(|e| e.into_inner()).take();
        planned.unwrap_or_else(|| self.0.fallback.new_span_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(seed: u64, total: u64) -> Vec<SimSpan> {
        Generator::new(seed, 50.0, total, Box::new(Normal)).collect()
    }

    #[test]
    fn same_seed_same_spans_other_seed_other_spans() {
        let a = spans(7, 500);
        assert_eq!(a.len(), 500);
        assert_eq!(a, spans(7, 500));
        let b = spans(8, 500);
        assert_ne!(a, b);
        // A shorter run is a prefix of a longer one with the same seed and rate.
        assert_eq!(spans(7, 120), a[..120]);
        // Ids are distinct.
        let mut trace_ids: Vec<_> = a.iter().map(|s| s.trace_id).collect();
        trace_ids.sort_unstable();
        trace_ids.dedup();
        assert_eq!(trace_ids.len(), 500);
    }

    #[test]
    fn spans_are_paced_by_the_rate() {
        let run: Vec<_> = Generator::new(1, 4.0, 9, Box::new(Normal)).collect();
        let offsets: Vec<_> = run.iter().map(|s| s.end_offset.as_millis()).collect();
        assert_eq!(offsets, [0, 250, 500, 750, 1000, 1250, 1500, 1750, 2000]);
    }

    #[test]
    fn spans_have_the_genai_semconv_shape() {
        let run = spans(3, 4000);
        for span in &run {
            let operation = span.str("gen_ai.operation.name").unwrap();
            let model = span.str("gen_ai.request.model").unwrap();
            assert_eq!(span.name, format!("{operation} {model}"));
            let profile = super::model(model).unwrap();
            assert_eq!(
                span.str("gen_ai.provider.name"),
                Some(profile.provider.name())
            );
            assert!(span.str("user.id").unwrap().starts_with("user-"));
            assert!(span.str("app.feature").is_some());
            assert!(span.duration > Duration::ZERO);
            assert!(span.trace_id.iter().any(|&b| b != 0));
            let service = &SERVICES[span.service];
            assert!(service.models.iter().any(|(m, _)| *m == model));
            assert_eq!(
                span.str("gen_ai.conversation.id").is_some(),
                service.conversational
            );
            match &span.error {
                Some(description) => {
                    assert!(!description.is_empty());
                    let error_type = span.str("error.type").unwrap();
                    assert!(
                        ["RateLimitError", "APITimeoutError", "InternalServerError"]
                            .contains(&error_type)
                    );
                    // No response: no usage, response model or finish reason.
                    assert_eq!(span.int("gen_ai.usage.input_tokens"), None);
                    assert_eq!(span.str("gen_ai.response.model"), None);
                    assert_eq!(span.attribute("gen_ai.response.finish_reasons"), None);
                }
                None => {
                    assert_eq!(span.attribute("error.type"), None);
                    assert_eq!(
                        span.str("gen_ai.response.model"),
                        Some(profile.response_model)
                    );
                    let input = span.int("gen_ai.usage.input_tokens").unwrap();
                    assert!(input > 0);
                    let cached = span
                        .int("gen_ai.usage.cache_read.input_tokens")
                        .unwrap_or(0)
                        + span
                            .int("gen_ai.usage.cache_creation.input_tokens")
                            .unwrap_or(0);
                    assert!(cached <= input, "{span:?}");
                    if profile.operation == Operation::Chat {
                        let output = span.int("gen_ai.usage.output_tokens").unwrap();
                        let max = span.int("gen_ai.request.max_tokens").unwrap();
                        assert!(output <= max);
                        let reasoning = span.int("gen_ai.usage.reasoning.output_tokens");
                        assert_eq!(reasoning.is_some(), profile.reasoning);
                        assert!(reasoning.unwrap_or(0) <= output);
                        let Some(AttrValue::StrArray(reasons)) =
                            span.attribute("gen_ai.response.finish_reasons")
                        else {
                            panic!("{span:?}")
                        };
                        assert_eq!(reasons.len(), 1);
                        if ["length", "max_tokens"].contains(&reasons[0].as_str()) {
                            assert_eq!(output, max);
                        }
                        assert!(span.str("gen_ai.response.id").is_some());
                    } else {
                        assert_eq!(span.int("gen_ai.usage.output_tokens"), None);
                        assert_eq!(span.attribute("gen_ai.response.finish_reasons"), None);
                        assert_eq!(span.attribute("gen_ai.request.stream"), None);
                    }
                    if profile.provider == Provider::OpenAi && profile.operation == Operation::Chat
                    {
                        assert!(span.str("openai.response.system_fingerprint").is_some());
                    }
                }
            }
            match span.attribute("gen_ai.request.stream") {
                Some(AttrValue::Bool(true)) if span.error.is_none() => {
                    let Some(AttrValue::Float(ttft)) =
                        span.attribute("gen_ai.response.time_to_first_chunk")
                    else {
                        panic!("streamed without a first-chunk time: {span:?}")
                    };
                    assert!(
                        *ttft > 0.0 && *ttft < span.duration.as_secs_f64(),
                        "{span:?}"
                    );
                }
                _ => assert_eq!(span.attribute("gen_ai.response.time_to_first_chunk"), None),
            }
        }
    }

    #[test]
    fn a_run_covers_the_whole_mix() {
        let run = spans(11, 4000);
        let count = |pred: &dyn Fn(&SimSpan) -> bool| run.iter().filter(|s| pred(s)).count();
        for service in 0..SERVICES.len() {
            assert!(count(&|s| s.service == service) > 200, "service {service}");
        }
        for model in MODELS {
            assert!(
                count(&|s| s.str("gen_ai.request.model") == Some(model.request_model)) > 100,
                "{}",
                model.request_model
            );
        }
        for reason in [
            "stop",
            "length",
            "tool_calls",
            "end_turn",
            "tool_use",
            "max_tokens",
        ] {
            let has = |s: &SimSpan| {
                matches!(s.attribute("gen_ai.response.finish_reasons"),
                    Some(AttrValue::StrArray(r)) if r[0] == reason)
            };
            assert!(count(&has) > 0, "{reason}");
        }
        for error_type in ["RateLimitError", "APITimeoutError", "InternalServerError"] {
            assert!(
                count(&|s| s.str("error.type") == Some(error_type)) > 0,
                "{error_type}"
            );
        }
        let errors = count(&|s| s.error.is_some());
        assert!(
            (40..=180).contains(&errors),
            "{errors} errors in 4000 calls"
        );
        let streamed = count(&|s| {
            matches!(
                s.attribute("gen_ai.request.stream"),
                Some(AttrValue::Bool(true))
            )
        });
        assert!((800..=2000).contains(&streamed), "{streamed} streamed");
        let positive = |key: &str| count(&|s| s.int(key).is_some_and(|n| n > 0));
        assert!(positive("gen_ai.usage.cache_read.input_tokens") > 100);
        assert!(positive("gen_ai.usage.cache_creation.input_tokens") > 20);
        assert!(positive("gen_ai.usage.reasoning.output_tokens") > 100);
        // OpenAI caches in steps of 128 from 1024 tokens.
        for span in &run {
            if span.str("gen_ai.provider.name") == Some("openai")
                && let Some(cached) = span.int("gen_ai.usage.cache_read.input_tokens")
            {
                assert!(
                    cached == 0 || (cached >= 1024 && cached % 128 == 0),
                    "{cached}"
                );
            }
        }
        // Users return to their conversations.
        let mut conversations: Vec<_> = run
            .iter()
            .filter_map(|s| s.str("gen_ai.conversation.id"))
            .collect();
        let with_conversation = conversations.len();
        conversations.sort_unstable();
        conversations.dedup();
        assert!(conversations.len() < with_conversation / 2);
    }

    #[test]
    fn arguments_are_checked() {
        let args = |rate: f64, duration: &str| SimulateArgs {
            endpoint: "http://127.0.0.1:4317".to_owned(),
            rate,
            duration: humantime::parse_duration(duration).unwrap(),
            seed: 1,
            protocol: Protocol::Grpc,
            scenario: ScenarioName::Normal,
        };
        assert_eq!(args(20.0, "30s").total_spans().unwrap(), 600);
        assert_eq!(args(2.5, "1m").total_spans().unwrap(), 150);
        assert!(args(0.0, "30s").total_spans().is_err());
        assert!(args(f64::NAN, "30s").total_spans().is_err());
        assert!(args(1.0, "100ms").total_spans().is_err());
        assert_eq!(
            traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://127.0.0.1:4318/"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(traces_url("http://h:1/v1/traces"), "http://h:1/v1/traces");
    }
}
