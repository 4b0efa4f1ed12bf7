//! `llmwatch simulate`: realistic GenAI traffic through the OpenTelemetry OTLP exporter.
//!
//! Two halves that never mix:
//! - [`Generator`] is pure: a seed, a rate, a span count and a [`Scenario`] in, [`SimSpan`]
//!   descriptions (each with the evaluation event a judge sent about it, if any) out. No clock,
//!   no I/O, so the same arguments always give the same spans.
//! - [`send`] builds those spans with the OpenTelemetry API (explicit start and end times, so a
//!   run never sleeps per span) and sends them with the `opentelemetry-otlp` span exporter behind
//!   the SDK's batch span processor, one tracer provider per simulated service, paced to `--rate`
//!   in batches. Evaluation events go the same way through the OTLP log exporter.
//!
//! Traffic is drawn as a [`CallPlan`] per call from the service and model profiles below, then
//! handed to the scenario, which may change it, then rendered as a span shaped like the current
//! OpenTelemetry GenAI semantic conventions.
//!
//! # Scenarios
//!
//! [`Normal`] is steady traffic. The others are normal traffic until a known change point
//! (`--change-after`, by default half-way through the run), then change one thing:
//!
//! | `--scenario`    | after the change                                                        |
//! |-----------------|-------------------------------------------------------------------------|
//! | `output-tokens` | output tokens ×1.5 (at the same speed per token)                        |
//! | `model-swap`    | `gpt-4o` answers as `gpt-4o-2024-11-20` with new system fingerprints    |
//! | `topic-shift`   | prompts ask about travel instead of billing (content on every chat span)|
//! | `judge-sag`     | `correctness` evaluation scores sag from ~0.85 to ~0.65 over 10 minutes |
//! | `error-burst`   | 30% of calls fail with `RateLimitError`                                 |
//! | `cost-spike`    | `docs-summarizer` sends 10× the input tokens                            |
//!
//! A scenario draws its own randomness from a second ChaCha stream of the same seed, so the
//! traffic under it is the normal traffic call for call: spans before the change are the normal
//! spans (plus the content or evaluations `topic-shift` and `judge-sag` add to every call), and
//! after it they differ only in what the scenario changes. `error-burst` is the exception after
//! its change: a failed call has no response id to draw, so later ids differ from normal ones.
//!
//! # Time
//!
//! Span `i` ends at `i / rate` seconds of *simulated* time. With `--time-scale F` (default 1)
//! simulated time runs `F` times faster than the send: the run still sends `--rate` spans per
//! second for `--duration`, but they cover `F × --duration` of simulated time, `--rate / F` spans
//! per simulated second. Span and event timestamps are simulated times, placed so the simulated
//! timeline ends when the send ends: no timestamp is ever later than the moment it is sent, and
//! with `F = 1` every span ends when it is sent. So a detector that windows by arrival sees the
//! change `--change-after` into the send and the judge-sag ramp over `10 min / F`; one that
//! windows by span timestamps sees the change at `F × --change-after` into the simulated timeline
//! and the ramp over 10 minutes.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanId, SpanKind, Status, TraceFlags, TraceId, Tracer as _,
    TracerProvider as _,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{
    BatchConfigBuilder as LogBatchConfigBuilder, BatchLogProcessor, LogBatch, LogExporter,
    SdkLogger, SdkLoggerProvider,
};
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
    /// Shape of the traffic over time: normal, or normal until the change point, then one change
    /// (output-tokens, model-swap, topic-shift, judge-sag, error-burst, cost-spike).
    #[arg(long, value_enum, default_value_t = ScenarioName::Normal)]
    pub scenario: ScenarioName,
    /// When the scenario's change happens, counted from the start of the send, e.g. "45s";
    /// half of --duration by default.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub change_after: Option<Duration>,
    /// How much faster simulated time runs than the send (at least 1): with 20, a 30s run covers
    /// 10 minutes of span timestamps and scenario time (judge-sag's ramp takes 10 simulated
    /// minutes).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
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

    /// Simulated seconds per second of the send.
    pub fn time_scale(&self) -> anyhow::Result<f64> {
        if !(self.time_scale.is_finite() && (1.0..=1e6).contains(&self.time_scale)) {
            bail!(
                "--time-scale must be a number from 1 to 1000000 (simulated seconds per second \
                 sent), got {}",
                self.time_scale
            );
        }
        Ok(self.time_scale)
    }

    /// Spans per second of simulated time: what the [`Generator`] is given.
    pub fn simulated_rate(&self) -> anyhow::Result<f64> {
        Ok(self.rate / self.time_scale()?)
    }

    /// Where the scenario's change falls in a run of `total` spans: the first span sent at or
    /// after `--change-after` (half of `--duration` by default).
    pub fn change_point(&self, total: u64) -> anyhow::Result<ChangePoint> {
        let after = self.change_after.unwrap_or(self.duration / 2);
        if after > self.duration {
            bail!(
                "--change-after {} is past the end of the run (--duration {})",
                humantime::format_duration(after),
                humantime::format_duration(self.duration)
            );
        }
        // Less a hair, so a product like 0.3 × 10 = 3.0000000000000004 is span 3, not 4.
        let index = ((after.as_secs_f64() * self.rate - 1e-6).ceil().max(0.0) as u64).min(total);
        Ok(ChangePoint::new(index, self.simulated_rate()?))
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

/// Where in the run a call happens, for scenarios that change traffic over time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunTime {
    /// The call's index in the run, from 0.
    pub index: u64,
    /// When the call ends, in simulated time counted from the start of the run.
    pub elapsed: Duration,
    /// The whole run, in simulated time.
    pub total: Duration,
}

/// Where a scenario's change happens: span `index` and every later one are changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangePoint {
    pub index: u64,
    /// When span `index` ends, in simulated time from the start of the run.
    pub at: Duration,
}

impl ChangePoint {
    /// The change at span `index` of a run of `rate` spans per simulated second.
    pub fn new(index: u64, rate: f64) -> ChangePoint {
        ChangePoint {
            index,
            at: offset(index, rate),
        }
    }

    /// Whether the call at `at` comes after the change (the call at the change point does).
    pub fn is_past(&self, at: RunTime) -> bool {
        at.index >= self.index
    }

    /// Simulated time since the change; `None` before it.
    pub fn since(&self, at: RunTime) -> Option<Duration> {
        self.is_past(at).then(|| at.elapsed.saturating_sub(self.at))
    }
}

/// A shape of traffic over a run. Scenarios only change planned calls; they never send.
pub trait Scenario: fmt::Debug + Send {
    fn name(&self) -> &'static str;

    /// Where the scenario changes the traffic, if it does.
    fn change(&self) -> Option<ChangePoint> {
        None
    }

    /// Whether the scenario attaches evaluation results to calls (the sender then also builds
    /// OTLP log exporters).
    fn evaluates(&self) -> bool {
        false
    }

    /// Changes one planned call. Draws randomness from `rng` only: the scenario's own stream of
    /// the run's seed, apart from the one the traffic is drawn from, so a run stays a function of
    /// its seed and what a scenario draws never changes the calls themselves.
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

/// After the change, chat calls answer at more length: output tokens ×[`Self::FACTOR`], hidden
/// reasoning included, at the same speed per token (so generation takes longer and time per
/// output token stays). Outputs stay below `max_tokens`, so no finish reason changes: calls that
/// stopped near the limit grow less, and calls cut at the limit stay there.
#[derive(Debug, Clone, Copy)]
pub struct OutputTokens {
    pub change: ChangePoint,
}

impl OutputTokens {
    pub const FACTOR: f64 = 1.5;
}

impl Scenario for OutputTokens {
    fn name(&self) -> &'static str {
        "output-tokens"
    }

    fn change(&self) -> Option<ChangePoint> {
        Some(self.change)
    }

    fn shape(&self, at: RunTime, call: &mut CallPlan, _rng: &mut SimRng) {
        if !self.change.is_past(at) || call.finish == Some(Finish::Length) {
            return;
        }
        let (Some(usage), Some(limit)) = (call.usage.as_mut(), call.max_tokens) else {
            return;
        };
        let Some(output) = usage.output.filter(|&n| n > 0) else {
            return;
        };
        let longer = ((output as f64 * Self::FACTOR).round() as u64)
            .min(limit - 1)
            .max(output);
        usage.output = Some(longer);
        usage.reasoning = usage
            .reasoning
            .map(|r| (r as f64 * longer as f64 / output as f64).round() as u64)
            .map(|r| r.min(longer));
        call.retime();
    }
}

/// The seed scenario: the provider updates the model behind a request model and nothing else
/// changes. After the change, successful calls to [`Self::REQUEST_MODEL`] report
/// [`Self::RESPONSE_MODEL`] and each old `openai.response.system_fingerprint` is replaced by a new
/// one (same shares); tokens, latency and everything else are drawn as before.
#[derive(Debug, Clone, Copy)]
pub struct ModelSwap {
    pub change: ChangePoint,
}

impl ModelSwap {
    pub const REQUEST_MODEL: &'static str = "gpt-4o";
    pub const RESPONSE_MODEL: &'static str = "gpt-4o-2024-11-20";
    /// Old fingerprint → new fingerprint.
    pub const FINGERPRINTS: [(&'static str, &'static str); 2] = [
        ("fp_7fcd609668", "fp_b705f0c291"),
        ("fp_a288987b44", "fp_d8d2b2c1b6"),
    ];
}

impl Scenario for ModelSwap {
    fn name(&self) -> &'static str {
        "model-swap"
    }

    fn change(&self) -> Option<ChangePoint> {
        Some(self.change)
    }

    fn shape(&self, at: RunTime, call: &mut CallPlan, _rng: &mut SimRng) {
        if !self.change.is_past(at)
            || call.model.request_model != Self::REQUEST_MODEL
            || call.usage.is_none()
        {
            return;
        }
        call.response_model = Self::RESPONSE_MODEL;
        if let Some(old) = call.fingerprint {
            call.fingerprint = Self::FINGERPRINTS
                .iter()
                .find(|(from, _)| *from == old)
                .map(|(_, to)| *to)
                .or(Some(Self::FINGERPRINTS[0].1));
        }
    }
}

/// Every chat call carries captured content (`gen_ai.input.messages`, and on success
/// `gen_ai.output.messages`, as JSON strings in the v1.37+ `parts` shape). Users ask billing
/// questions before the change and travel questions after it. An answer is
/// [`CHARS_PER_TOKEN`] characters per visible output token (at most [`MAX_ANSWER_CHARS`]), so
/// answer lengths follow output tokens, which do not change.
#[derive(Debug, Clone, Copy)]
pub struct TopicShift {
    pub change: ChangePoint,
}

impl TopicShift {
    /// The topic of calls before the change.
    pub const BEFORE: &'static Topic = &BILLING;
    /// The topic of calls after the change.
    pub const AFTER: &'static Topic = &TRAVEL;
}

impl Scenario for TopicShift {
    fn name(&self) -> &'static str {
        "topic-shift"
    }

    fn change(&self) -> Option<ChangePoint> {
        Some(self.change)
    }

    fn shape(&self, at: RunTime, call: &mut CallPlan, rng: &mut SimRng) {
        if call.model.operation != Operation::Chat {
            return;
        }
        let topic = if self.change.is_past(at) {
            Self::AFTER
        } else {
            Self::BEFORE
        };
        let question = topic.question(rng);
        let answer = call.usage.map(|usage| {
            let visible = usage.output.unwrap_or(0) - usage.reasoning.unwrap_or(0);
            let chars = (visible * CHARS_PER_TOKEN).clamp(1, MAX_ANSWER_CHARS);
            topic.answer(rng, chars as usize)
        });
        call.content = Some(Content::chat(&question, answer.as_deref(), call.finish));
    }
}

/// Characters of answer text per visible output token in `topic-shift` content.
pub const CHARS_PER_TOKEN: u64 = 4;
/// Longest answer text in `topic-shift` content, to keep spans a sensible size.
pub const MAX_ANSWER_CHARS: u64 = 4000;

/// An LLM judge grades [`JudgeSag::SAMPLE`] of successful chat calls for `correctness`: scores
/// ~N(0.85, 0.05) until the change, then the mean sags linearly to 0.65 over 10 minutes of
/// simulated time and stays there. Each grade is a `gen_ai.evaluation.result` event with the
/// trace and span id and `gen_ai.response.id` of the call it grades; the calls do not change.
#[derive(Debug, Clone, Copy)]
pub struct JudgeSag {
    pub change: ChangePoint,
}

impl JudgeSag {
    pub const EVALUATION: &'static str = "correctness";
    /// Share of successful chat calls graded.
    pub const SAMPLE: f64 = 0.2;
    pub const MEAN_BEFORE: f64 = 0.85;
    pub const MEAN_AFTER: f64 = 0.65;
    pub const SPREAD: f64 = 0.05;
    /// Simulated time the mean takes to sag from before to after.
    pub const RAMP: Duration = Duration::from_secs(600);

    /// The mean score of a call `since` the change (`None`: before it).
    pub fn mean(since: Option<Duration>) -> f64 {
        match since {
            None => Self::MEAN_BEFORE,
            Some(since) => {
                let progress = (since.as_secs_f64() / Self::RAMP.as_secs_f64()).min(1.0);
                Self::MEAN_BEFORE + (Self::MEAN_AFTER - Self::MEAN_BEFORE) * progress
            }
        }
    }
}

impl Scenario for JudgeSag {
    fn name(&self) -> &'static str {
        "judge-sag"
    }

    fn change(&self) -> Option<ChangePoint> {
        Some(self.change)
    }

    fn evaluates(&self) -> bool {
        true
    }

    fn shape(&self, at: RunTime, call: &mut CallPlan, rng: &mut SimRng) {
        if call.model.operation != Operation::Chat || call.usage.is_none() {
            return;
        }
        if !rng.random_bool(Self::SAMPLE) {
            return;
        }
        let score = Self::mean(self.change.since(at)) + Self::SPREAD * standard_normal(rng);
        // Scores are rounded as judges report them, and stay in [0, 1].
        call.evaluation = Some(((score * 1000.0).round() / 1000.0).clamp(0.0, 1.0));
    }
}

/// After the change, a rate limit hits: [`ErrorBurst::ERROR_RATIO`] of all calls fail (the normal
/// failures included), the new failures with `RateLimitError` (HTTP 429, status ERROR) after a
/// short wait like the normal rate-limit failures. Until the end of the run.
#[derive(Debug, Clone, Copy)]
pub struct ErrorBurst {
    pub change: ChangePoint,
}

impl ErrorBurst {
    pub const ERROR_RATIO: f64 = 0.3;

    /// The share of otherwise successful calls that fail, so all failures make
    /// [`Self::ERROR_RATIO`].
    pub fn extra_failure_probability() -> f64 {
        let normal = 1.0
            - ERROR_PROBABILITIES
                .iter()
                .map(|(_, p)| 1.0 - p)
                .product::<f64>();
        (Self::ERROR_RATIO - normal) / (1.0 - normal)
    }
}

impl Scenario for ErrorBurst {
    fn name(&self) -> &'static str {
        "error-burst"
    }

    fn change(&self) -> Option<ChangePoint> {
        Some(self.change)
    }

    fn shape(&self, at: RunTime, call: &mut CallPlan, rng: &mut SimRng) {
        if !self.change.is_past(at) || call.error.is_some() {
            return;
        }
        if rng.random_bool(Self::extra_failure_probability()) {
            call.fail(CallError::RateLimit, rate_limit_seconds(rng));
        }
    }
}

/// After the change, one service ([`CostSpike::SERVICE`]) sends [`CostSpike::FACTOR`] times the
/// input tokens (a chunker bug that sends whole documents): the extra tokens are never cached,
/// so cached tokens stay, and prefill takes longer at the same speed per token. Other services
/// and output tokens do not change.
#[derive(Debug, Clone, Copy)]
pub struct CostSpike {
    pub change: ChangePoint,
}

impl CostSpike {
    pub const SERVICE: &'static str = "docs-summarizer";
    pub const FACTOR: u64 = 10;
}

impl Scenario for CostSpike {
    fn name(&self) -> &'static str {
        "cost-spike"
    }

    fn change(&self) -> Option<ChangePoint> {
        Some(self.change)
    }

    fn shape(&self, at: RunTime, call: &mut CallPlan, _rng: &mut SimRng) {
        if !self.change.is_past(at) || call.service.name != Self::SERVICE {
            return;
        }
        if let Some(usage) = call.usage.as_mut() {
            usage.input *= Self::FACTOR;
            call.retime();
        }
    }
}

/// The scenarios `--scenario` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScenarioName {
    Normal,
    OutputTokens,
    ModelSwap,
    TopicShift,
    JudgeSag,
    ErrorBurst,
    CostSpike,
}

impl ScenarioName {
    pub const ALL: [ScenarioName; 7] = [
        ScenarioName::Normal,
        ScenarioName::OutputTokens,
        ScenarioName::ModelSwap,
        ScenarioName::TopicShift,
        ScenarioName::JudgeSag,
        ScenarioName::ErrorBurst,
        ScenarioName::CostSpike,
    ];

    /// The scenario, changing traffic from `change` on (`normal` ignores it).
    pub fn build(self, change: ChangePoint) -> Box<dyn Scenario> {
        match self {
            ScenarioName::Normal => Box::new(Normal),
            ScenarioName::OutputTokens => Box::new(OutputTokens { change }),
            ScenarioName::ModelSwap => Box::new(ModelSwap { change }),
            ScenarioName::TopicShift => Box::new(TopicShift { change }),
            ScenarioName::JudgeSag => Box::new(JudgeSag { change }),
            ScenarioName::ErrorBurst => Box::new(ErrorBurst { change }),
            ScenarioName::CostSpike => Box::new(CostSpike { change }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Captured content
// ---------------------------------------------------------------------------------------------

/// What users talk about: question and answer templates whose `{slot}`s are filled from the
/// slot vocabularies. Deterministic for a seed, varied enough that texts rarely repeat.
#[derive(Debug)]
pub struct Topic {
    pub name: &'static str,
    pub questions: &'static [&'static str],
    pub answers: &'static [&'static str],
    pub slots: &'static [(&'static str, &'static [&'static str])],
}

impl Topic {
    /// A user question.
    pub fn question(&self, rng: &mut SimRng) -> String {
        let template = self.questions[rng.random_range(0..self.questions.len())];
        self.fill(rng, template)
    }

    /// An answer of exactly `chars` characters: whole sentences, the last one cut.
    pub fn answer(&self, rng: &mut SimRng, chars: usize) -> String {
        let mut text = String::with_capacity(chars + 160);
        while text.len() < chars {
            if !text.is_empty() {
                text.push(' ');
            }
            let template = self.answers[rng.random_range(0..self.answers.len())];
            text.push_str(&self.fill(rng, template));
        }
        text.truncate(chars);
        if text.ends_with(' ') {
            text.pop();
            text.push('.');
        }
        text
    }

    fn fill(&self, rng: &mut SimRng, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + 24);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = open + rest[open..].find('}').expect("templates close their slots");
            let name = &rest[open + 1..close];
            let (_, words) = self
                .slots
                .iter()
                .find(|(slot, _)| *slot == name)
                .expect("templates name known slots");
            out.push_str(words[rng.random_range(0..words.len())]);
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        out
    }
}

const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Before `topic-shift`'s change: questions about invoices, charges and plans.
pub static BILLING: Topic = Topic {
    name: "billing",
    questions: &[
        "Why was I charged twice for my {plan} plan in {month}?",
        "Can I get a refund for the {amount} charge on invoice {invoice}?",
        "How do I update the credit card used for my {plan} subscription?",
        "Invoice {invoice} shows {amount} but I am on the {plan} plan. Why the difference?",
        "When will the prorated credit for leaving the {plan} plan appear on my bill?",
        "Please explain the tax line on my {month} invoice.",
        "My payment of {amount} failed. Will my {plan} subscription be cancelled?",
        "Can you send me a copy of invoice {invoice} with our company VAT number?",
    ],
    answers: &[
        "I checked your account and invoice {invoice} covers the {plan} plan for {month}.",
        "Refunds for duplicate charges go back to the original card within five to ten business days.",
        "You can change the card on file under Settings, Billing, Payment methods.",
        "Prorated credits appear on the next invoice after the plan change takes effect.",
        "Sales tax on the invoice is calculated from the billing address on file at the time of the charge.",
        "The {amount} charge is the annual renewal of the {plan} plan, billed on the first of {month}.",
        "A failed payment is retried three times before the subscription is paused, and no data is deleted.",
        "I have issued a corrected invoice {invoice} with the VAT number and sent it to the billing contact.",
        "If the charge still looks wrong, reply with the last four digits of the card and I will open a billing ticket.",
    ],
    slots: &[
        (
            "plan",
            &["Starter", "Team", "Business", "Enterprise", "Pro annual"],
        ),
        ("month", MONTHS),
        (
            "amount",
            &[
                "$19.00",
                "$49.99",
                "$120.00",
                "$299.00",
                "$1,188.00",
                "$12.50",
            ],
        ),
        (
            "invoice",
            &[
                "INV-20417",
                "INV-20988",
                "INV-31250",
                "INV-31977",
                "INV-40466",
                "INV-41803",
            ],
        ),
    ],
};

/// After `topic-shift`'s change: questions about trips, flights and hotels.
pub static TRAVEL: Topic = Topic {
    name: "travel",
    questions: &[
        "What is the cheapest way to get from {city} to {city} in {month}?",
        "Can you find me a hotel near the old town in {city} for {nights} nights?",
        "Do I need a visa to visit {country} for {nights} nights?",
        "Which train goes from the {city} airport to the city center?",
        "Is {month} a good time to go hiking near {city}?",
        "Can I move my flight to {city} to a later date without a fee?",
        "What should I pack for a week in {country} in {month}?",
        "How early should I be at the {city} airport for an international flight?",
    ],
    answers: &[
        "The fastest way from {city} to {city} is the direct train, which takes about {hours} hours.",
        "Budget airlines fly that route several times a week, but add the baggage fees before comparing fares.",
        "Hotels near the old town in {city} fill up early in {month}, so book at least a month ahead.",
        "Visa rules for {country} depend on the length of stay, so check the embassy website before you book.",
        "The airport express leaves every fifteen minutes and tickets are sold on the platform.",
        "Most fares allow one free change within a day of booking; after that a fee applies.",
        "In {month} the weather in {country} is mild, so pack layers and a light rain jacket.",
        "Arrive at the {city} airport three hours before an international departure.",
        "I found {nights} nights at a guesthouse in {city} with free cancellation until the day before arrival.",
    ],
    slots: &[
        (
            "city",
            &[
                "Lisbon",
                "Kyoto",
                "Vancouver",
                "Marrakesh",
                "Oslo",
                "Buenos Aires",
                "Prague",
            ],
        ),
        (
            "country",
            &[
                "Japan",
                "Portugal",
                "Canada",
                "Morocco",
                "Norway",
                "Argentina",
            ],
        ),
        ("month", MONTHS),
        ("nights", &["two", "three", "four", "five", "seven", "ten"]),
        ("hours", &["two", "three", "four", "six"]),
    ],
};

/// Captured content of a call: `gen_ai.input.messages` and `gen_ai.output.messages` as JSON
/// strings.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    pub input: String,
    /// `None` on a failed call.
    pub output: Option<String>,
}

impl Content {
    /// A one-turn chat in the v1.37+ `parts` shape.
    pub fn chat(question: &str, answer: Option<&str>, finish: Option<Finish>) -> Content {
        let input = serde_json::json!([
            {"role": "user", "parts": [{"type": "text", "content": question}]}
        ]);
        let output = answer.map(|answer| {
            let finish = match finish {
                Some(Finish::Length) => "length",
                Some(Finish::ToolCalls) => "tool_call",
                Some(Finish::Stop) | None => "stop",
            };
            serde_json::json!([{
                "role": "assistant",
                "parts": [{"type": "text", "content": answer}],
                "finish_reason": finish,
            }])
            .to_string()
        });
        Content {
            input: input.to_string(),
            output,
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

/// The log-normal factors a call's latency phases were drawn with, kept so that a scenario that
/// changes token counts can recompute the latency at the same speed ([`CallPlan::retime`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// Of overhead, prefill and hidden reasoning: the time to the first chunk.
    pub first_chunk: f64,
    /// Of generating the visible output.
    pub generation: f64,
}

/// One call before it becomes a span: what scenarios read and change.
#[derive(Debug, Clone, PartialEq)]
pub struct CallPlan {
    pub service: &'static ServiceProfile,
    pub model: &'static ModelProfile,
    /// `gen_ai.response.model` on success: the profile's unless a scenario swaps it.
    pub response_model: &'static str,
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
    pub pace: Pace,
    /// Captured content; only scenarios capture it.
    pub content: Option<Content>,
    /// The score a judge gave this call, sent as a `gen_ai.evaluation.result` event.
    pub evaluation: Option<f64>,
}

impl CallPlan {
    /// Recomputes the time to the first chunk and the duration of a successful call from its
    /// usage and pace: overhead, then prefill (cached tokens cost a fifth), then generation;
    /// hidden reasoning comes before the first visible chunk.
    pub fn retime(&mut self) {
        let (Some(usage), None) = (&self.usage, self.error) else {
            return;
        };
        let model = self.model;
        let input = usage.input;
        let cached = usage.cache_read.unwrap_or(0);
        let prefill =
            ((input - cached) as f64 + cached as f64 * 0.2) * model.seconds_per_input_token;
        let reasoning = usage.reasoning.unwrap_or(0) as f64 * model.seconds_per_output_token;
        let visible_output = usage.output.unwrap_or(0) - usage.reasoning.unwrap_or(0);
        let generation = visible_output as f64 * model.seconds_per_output_token;
        let first_chunk = (model.overhead_seconds + prefill + reasoning) * self.pace.first_chunk;
        let rest = generation * self.pace.generation;
        let ttft = whole_micros(first_chunk);
        self.duration = whole_micros(first_chunk + rest).max(ttft + Duration::from_millis(1));
        self.time_to_first_chunk = self.streamed.then_some(ttft);
    }

    /// Turns the call into a failure after `seconds`: no response, so no usage, finish reason,
    /// fingerprint, first chunk, output content or evaluation.
    pub fn fail(&mut self, error: CallError, seconds: f64) {
        self.error = Some(error);
        self.usage = None;
        self.finish = None;
        self.fingerprint = None;
        self.time_to_first_chunk = None;
        self.evaluation = None;
        if let Some(content) = &mut self.content {
            content.output = None;
        }
        self.duration = whole_micros(seconds);
    }
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
    /// The `gen_ai.evaluation.result` event a judge sent about this call, if one did.
    pub evaluation: Option<SimEvaluation>,
}

/// A `gen_ai.evaluation.result` log event about a span: sent with the span's trace and span id,
/// timestamped at the span's end.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEvaluation {
    /// `gen_ai.evaluation.name`.
    pub name: &'static str,
    /// `gen_ai.evaluation.score.value`.
    pub score: f64,
    /// `gen_ai.response.id` of the evaluated call.
    pub response_id: String,
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
    /// What the scenario draws from: another stream of the same seed.
    scenario_rng: SimRng,
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
        let mut scenario_rng = SimRng::seed_from_u64(seed);
        scenario_rng.set_stream(1);
        Generator {
            rng: SimRng::seed_from_u64(seed),
            scenario_rng,
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

    /// Where the scenario changes the traffic, if it does.
    pub fn change(&self) -> Option<ChangePoint> {
        self.scenario.change()
    }

    /// Whether spans may carry evaluation events.
    pub fn evaluates(&self) -> bool {
        self.scenario.evaluates()
    }

    /// When span `index` ends, in simulated time from the start of the run.
    pub fn end_offset(&self, index: u64) -> Duration {
        offset(index, self.rate)
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
            response_model: model.response_model,
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
            pace: Pace {
                first_chunk: 1.0,
                generation: 1.0,
            },
            content: None,
            evaluation: None,
        };
        if let Some(error) = error {
            let seconds = match error {
                CallError::RateLimit => rate_limit_seconds(rng),
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

        // Latency: each phase jitters log-normally (see `CallPlan::retime`).
        plan.pace = Pace {
            first_chunk: jitter(rng, 0.3),
            generation: jitter(rng, 0.2),
        };
        plan.usage = Some(usage);
        plan.finish = finish;
        plan.fingerprint = fingerprint;
        plan.retime();
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
        let mut evaluation = None;
        if let Some(usage) = &plan.usage {
            if model.operation == Operation::Chat {
                let id = response_id(rng, provider);
                evaluation = plan.evaluation.map(|score| SimEvaluation {
                    name: JudgeSag::EVALUATION,
                    score,
                    response_id: id.clone(),
                });
                put("gen_ai.response.id", AttrValue::Str(id));
            }
            put("gen_ai.response.model", text(plan.response_model));
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
        if let Some(content) = &plan.content {
            put("gen_ai.input.messages", text(&content.input));
            if let Some(output) = &content.output {
                put("gen_ai.output.messages", text(output));
            }
        }

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
            evaluation,
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
            index,
            elapsed: end_offset,
            total: self.end_offset(self.total),
        };
        self.scenario.shape(at, &mut plan, &mut self.scenario_rng);
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

/// A standard normal draw (Box–Muller).
fn standard_normal(rng: &mut SimRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A log-normal factor around 1 with the given spread.
fn jitter(rng: &mut SimRng, sigma: f64) -> f64 {
    (sigma * standard_normal(rng)).exp()
}

/// How long a rate-limited call waits for its 429.
fn rate_limit_seconds(rng: &mut SimRng) -> f64 {
    rng.random_range(0.03..0.3)
}

/// When span `index` of a run of `rate` spans per second ends.
fn offset(index: u64, rate: f64) -> Duration {
    Duration::from_secs_f64(index as f64 / rate)
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
    /// Simulated seconds per second sent.
    pub time_scale: f64,
    /// Where the scenario changed the traffic: the first changed span, and when it was sent,
    /// counted from the start of the send.
    pub change: Option<(u64, Duration)>,
    /// `gen_ai.evaluation.result` events generated, delivered, and in batches given up on.
    pub evaluations: u64,
    pub evaluations_sent: u64,
    pub evaluations_failed: u64,
}

impl Summary {
    /// Spans that never reached the exporter (the batch processor's queue was full).
    pub fn dropped(&self) -> u64 {
        self.generated.saturating_sub(self.sent + self.failed)
    }

    /// Evaluation events that never reached the exporter.
    pub fn evaluations_dropped(&self) -> u64 {
        self.evaluations
            .saturating_sub(self.evaluations_sent + self.evaluations_failed)
    }
}

/// Seconds, as briefly as they print exactly to the millisecond: `15s`, `0.35s`.
fn seconds(d: Duration) -> String {
    format!("{}s", (d.as_secs_f64() * 1000.0).round() / 1000.0)
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
        )?;
        if let Some((index, at)) = self.change {
            write!(f, ", change at span {index} (t={}", seconds(at))?;
            if self.time_scale != 1.0 {
                write!(f, ", simulated t={}", seconds(at.mul_f64(self.time_scale)))?;
            }
            write!(f, ")")?;
        }
        if self.time_scale != 1.0 {
            write!(f, ", time scale {}", self.time_scale)?;
        }
        if self.evaluations > 0 {
            write!(
                f,
                "; sent {} of {} evaluation events ({} failed, {} dropped)",
                self.evaluations_sent,
                self.evaluations,
                self.evaluations_failed,
                self.evaluations_dropped()
            )?;
        }
        Ok(())
    }
}

/// `llmwatch simulate`: sends, prints the summary, fails when any span or event did not get
/// through.
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
    if summary.evaluations_sent < summary.evaluations {
        bail!(
            "{} of {} evaluation events did not get through; does the OTLP receiver at {} ({}) \
             take logs?",
            summary.evaluations - summary.evaluations_sent,
            summary.evaluations,
            summary.endpoint,
            summary.protocol.as_str()
        );
    }
    Ok(())
}

/// Most time between two batches of spans.
const TICK: Duration = Duration::from_millis(100);

/// Generates and sends a run, paced to the rate, and waits until every span and event was
/// exported.
pub async fn send(args: &SimulateArgs) -> anyhow::Result<Summary> {
    let total = args.total_spans()?;
    let time_scale = args.time_scale()?;
    let change = args.change_point(total)?;
    let generator = Generator::new(
        args.seed,
        args.simulated_rate()?,
        total,
        args.scenario.build(change),
    );
    let scenario = generator.scenario_name();
    let change = generator
        .change()
        .map(|c| (c.index, offset(c.index, args.rate)));
    let stats = Arc::new(ExportStats::default());
    let log_stats = Arc::new(ExportStats::default());
    let ids = Arc::new(PlannedIds::default());
    let queue = (args.rate * 2.0).clamp(2048.0, 1_000_000.0) as usize;
    let mut providers = Vec::with_capacity(SERVICES.len());
    let mut logger_providers = Vec::new();
    for service in SERVICES {
        providers.push(provider(args, service.name, queue, &stats, &ids).await?);
        if generator.evaluates() {
            logger_providers.push(logger_provider(args, service.name, queue, &log_stats).await?);
        }
    }
    let scope = InstrumentationScope::builder("llmwatch.simulate")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    let tracers: Vec<SdkTracer> = providers
        .iter()
        .map(|p| p.tracer_with_scope(scope.clone()))
        .collect();
    let loggers: Vec<SdkLogger> = logger_providers
        .iter()
        .map(|p| p.logger_with_scope(scope.clone()))
        .collect();

    // Simulated time ends when the send does: with a time scale above 1 the simulated timeline
    // is longer than the send, so it starts that much earlier.
    let base = SystemTime::now();
    let sent_for = offset(total, args.rate);
    let simulated_base = base - sent_for.mul_f64(time_scale - 1.0);
    let clock = tokio::time::Instant::now();
    let mut woke = clock;
    let (mut errors, mut streamed, mut evaluations) = (0u64, 0u64, 0u64);
    let mut services = [false; 8];
    let mut models = std::collections::BTreeSet::new();
    for span in generator {
        let due = clock + span.end_offset.div_f64(time_scale);
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
        if let (Some(evaluation), Some(logger)) = (&span.evaluation, loggers.get(span.service)) {
            evaluations += 1;
            emit_evaluation(logger, simulated_base, &span, evaluation);
        }
        emit(&tracers[span.service], &ids, simulated_base, span);
    }
    drop(tracers);
    drop(loggers);
    // Shutting a provider down exports what its batch processor still holds; it blocks, so it
    // runs off the async workers.
    tokio::task::spawn_blocking(move || {
        for provider in providers {
            if let Err(error) = provider.shutdown() {
                tracing::warn!(%error, "shutting the tracer provider down");
            }
        }
        for provider in logger_providers {
            if let Err(error) = provider.shutdown() {
                tracing::warn!(%error, "shutting the logger provider down");
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
        time_scale,
        change,
        evaluations,
        evaluations_sent: log_stats.sent.load(Relaxed),
        evaluations_failed: log_stats.failed.load(Relaxed),
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

/// Emits a `gen_ai.evaluation.result` event through the SDK's logs API, parented to the span it
/// evaluates by trace and span id, at the span's end.
fn emit_evaluation(
    logger: &SdkLogger,
    base: SystemTime,
    span: &SimSpan,
    evaluation: &SimEvaluation,
) {
    let at = base + span.end_offset;
    let mut record = logger.create_log_record();
    record.set_event_name(EVALUATION_EVENT);
    record.set_timestamp(at);
    record.set_observed_timestamp(at);
    record.set_severity_number(Severity::Info);
    record.set_severity_text("INFO");
    record.add_attribute("gen_ai.evaluation.name", evaluation.name);
    record.add_attribute("gen_ai.evaluation.score.value", evaluation.score);
    record.add_attribute("gen_ai.response.id", evaluation.response_id.clone());
    record.set_trace_context(
        TraceId::from_bytes(span.trace_id),
        SpanId::from_bytes(span.span_id),
        Some(TraceFlags::SAMPLED),
    );
    logger.emit(record);
}

/// The event name of evaluation results.
pub const EVALUATION_EVENT: &str = "gen_ai.evaluation.result";

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

/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The OTLP exporter of one signal (`SpanExporter`, `LogExporter`) for the chosen protocol. The
/// two builders share no trait, hence a macro; `$url` turns the base endpoint into the signal's
/// OTLP/HTTP URL.
macro_rules! otlp_exporter {
    ($exporter:path, $args:expr, $url:expr) => {
        match $args.protocol {
            Protocol::Grpc => <$exporter>::builder()
                .with_tonic()
                .with_endpoint($args.endpoint.clone())
                .with_timeout(EXPORT_TIMEOUT)
                .build(),
            Protocol::HttpProtobuf => <$exporter>::builder()
                .with_http()
                .with_http_client(blocking_http_client().await?)
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint($url(&$args.endpoint))
                .with_timeout(EXPORT_TIMEOUT)
                .build(),
        }
    };
}

/// The HTTP client of the OTLP/HTTP exporters. The batch processors export on their own
/// threads, outside any async runtime, so they get the blocking client, built off the runtime as
/// reqwest requires.
async fn blocking_http_client() -> anyhow::Result<reqwest::blocking::Client> {
    tokio::task::spawn_blocking(|| {
        reqwest::blocking::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .build()
    })
    .await?
    .context("building the HTTP client")
}

/// One service's tracer provider: its resource, the OTLP exporter and the batch processor.
async fn provider(
    args: &SimulateArgs,
    service: &'static str,
    queue: usize,
    stats: &Arc<ExportStats>,
    ids: &Arc<PlannedIds>,
) -> anyhow::Result<SdkTracerProvider> {
    let exporter = otlp_exporter!(opentelemetry_otlp::SpanExporter, args, traces_url)
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
    Ok(SdkTracerProvider::builder()
        .with_resource(service_resource(service))
        .with_id_generator(SharedIds(ids.clone()))
        .with_span_processor(processor)
        .build())
}

/// The resource a simulated service sends under.
fn service_resource(service: &'static str) -> Resource {
    Resource::builder_empty()
        .with_service_name(service)
        .with_attributes([
            KeyValue::new("service.version", "1.4.2"),
            KeyValue::new("deployment.environment.name", "simulation"),
            KeyValue::new("telemetry.sdk.language", "rust"),
            KeyValue::new("telemetry.sdk.name", "opentelemetry"),
        ])
        .build()
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

/// The OTLP/HTTP logs URL for a base endpoint (or for its traces URL).
pub fn logs_url(endpoint: &str) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    let base = endpoint.strip_suffix("/v1/traces").unwrap_or(endpoint);
    if base.ends_with("/v1/logs") {
        base.to_owned()
    } else {
        format!("{base}/v1/logs")
    }
}

/// One service's logger provider, for evaluation events: the OTLP log exporter behind the
/// SDK's batch log processor, under the same resource as the service's spans.
async fn logger_provider(
    args: &SimulateArgs,
    service: &'static str,
    queue: usize,
    stats: &Arc<ExportStats>,
) -> anyhow::Result<SdkLoggerProvider> {
    let exporter = otlp_exporter!(opentelemetry_otlp::LogExporter, args, logs_url)
        .with_context(|| format!("building the OTLP log exporter for {}", args.endpoint))?;
    let processor = BatchLogProcessor::builder(Counted {
        inner: exporter,
        stats: stats.clone(),
    })
    .with_batch_config(
        LogBatchConfigBuilder::default()
            .with_max_queue_size(queue)
            .with_max_export_batch_size(512)
            .with_scheduled_delay(Duration::from_millis(500))
            .build(),
    )
    .build();
    Ok(SdkLoggerProvider::builder()
        .with_resource(service_resource(service))
        .with_log_processor(processor)
        .build())
}

/// Spans (or log records) the exporters delivered or gave up on, over all providers.
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

impl<E: LogExporter> LogExporter for Counted<E> {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let n = batch.iter().count() as u64;
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
    use std::collections::BTreeSet;

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
            change_after: None,
            time_scale: 1.0,
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

    /// FNV-1a over everything a span is.
    fn digest(spans: impl Iterator<Item = SimSpan>) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for s in spans {
            let text = format!(
                "{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}",
                s.service,
                s.name,
                s.trace_id,
                s.span_id,
                s.end_offset,
                s.duration,
                s.attributes,
                s.error
            );
            for byte in text.bytes() {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x100_0000_01b3);
            }
        }
        hash
    }

    #[test]
    fn normal_traffic_is_what_it_was_before_scenarios() {
        // Pinned on the generator as it was before drift scenarios: normal runs of a seed send
        // the same spans as before.
        let run = Generator::new(7, 50.0, 3000, Box::new(Normal));
        assert_eq!(digest(run), 0xd282_ce9d_3f15_e6f3);
        assert!(
            spans(7, 3000)
                .iter()
                .all(|s| s.evaluation.is_none() && s.attribute("gen_ai.input.messages").is_none())
        );
    }

    /// Spans per simulated second of the scenario tests.
    const RATE: f64 = 2.0;

    fn run_of(name: ScenarioName, seed: u64, total: u64, change: u64) -> Vec<SimSpan> {
        let change = ChangePoint::new(change, RATE);
        Generator::new(seed, RATE, total, name.build(change)).collect()
    }

    fn normal_run(seed: u64, total: u64) -> Vec<SimSpan> {
        run_of(ScenarioName::Normal, seed, total, 0)
    }

    /// What differs between two spans: attribute keys, or `duration`, `end`, `ids`, `name`,
    /// `service`, `status`, `evaluation`.
    fn differences(a: &SimSpan, b: &SimSpan) -> BTreeSet<&'static str> {
        let mut out = BTreeSet::new();
        let keys: BTreeSet<&'static str> = a
            .attributes
            .iter()
            .chain(&b.attributes)
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            if a.attribute(key) != b.attribute(key) {
                out.insert(key);
            }
        }
        for (field, differs) in [
            ("service", a.service != b.service),
            ("name", a.name != b.name),
            ("ids", (a.trace_id, a.span_id) != (b.trace_id, b.span_id)),
            ("end", a.end_offset != b.end_offset),
            ("duration", a.duration != b.duration),
            ("status", a.error != b.error),
            ("evaluation", a.evaluation != b.evaluation),
        ] {
            if differs {
                out.insert(field);
            }
        }
        out
    }

    /// Asserts every span differs from its normal twin in `allowed` at most, and returns how many
    /// differ at all.
    fn differing(scenario: &[SimSpan], normal: &[SimSpan], allowed: &[&str]) -> usize {
        assert_eq!(scenario.len(), normal.len());
        let mut changed = 0;
        for (s, n) in scenario.iter().zip(normal) {
            let diff = differences(s, n);
            assert!(
                diff.iter().all(|d| allowed.contains(d)),
                "{:?} changed beyond {allowed:?}:\n{s:?}\n{n:?}",
                diff
            );
            changed += usize::from(!diff.is_empty());
        }
        changed
    }

    fn mean(values: impl Iterator<Item = f64>) -> f64 {
        let (mut sum, mut n) = (0.0, 0.0);
        for v in values {
            sum += v;
            n += 1.0;
        }
        assert!(n > 0.0, "mean of nothing");
        sum / n
    }

    fn std_dev(values: &[f64]) -> f64 {
        let m = mean(values.iter().copied());
        (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (values.len() as f64 - 1.0)).sqrt()
    }

    fn is_chat(span: &SimSpan) -> bool {
        span.str("gen_ai.operation.name") == Some("chat")
    }

    fn output_tokens(span: &SimSpan) -> Option<f64> {
        span.int("gen_ai.usage.output_tokens").map(|n| n as f64)
    }

    const TOTAL: u64 = 4000;
    const CHANGE: u64 = 2000;

    #[test]
    fn every_scenario_is_normal_traffic_before_its_change() {
        let normal = normal_run(5, TOTAL);
        for name in ScenarioName::ALL {
            let run = run_of(name, 5, TOTAL, CHANGE);
            let (before, after) = run.split_at(CHANGE as usize);
            // Before the change only topic-shift's content and judge-sag's grades are there.
            let allowed: &[&str] = match name {
                ScenarioName::TopicShift => &["gen_ai.input.messages", "gen_ai.output.messages"],
                ScenarioName::JudgeSag => &["evaluation"],
                _ => &[],
            };
            differing(before, &normal[..CHANGE as usize], allowed);
            // And the change point is where the scenario starts changing what it changes.
            if !matches!(name, ScenarioName::Normal) {
                let first_after = differences(&after[0], &normal[CHANGE as usize]);
                let changes_soon = after
                    .iter()
                    .zip(&normal[CHANGE as usize..])
                    .take(100)
                    .any(|(s, n)| !differences(s, n).is_empty());
                assert!(changes_soon, "{name:?}: {first_after:?}");
            }
        }
    }

    #[test]
    fn every_scenario_is_a_function_of_its_seed() {
        for name in ScenarioName::ALL {
            let a = run_of(name, 9, 1500, 600);
            assert_eq!(a, run_of(name, 9, 1500, 600), "{name:?}");
            assert_ne!(a, run_of(name, 10, 1500, 600), "{name:?}");
            // A shorter run with the same change point is a prefix.
            assert_eq!(run_of(name, 9, 900, 600), a[..900], "{name:?}");
        }
    }

    #[test]
    fn every_scenario_keeps_spans_consistent() {
        for name in ScenarioName::ALL {
            for span in run_of(name, 13, 3000, 1000) {
                let input = span.int("gen_ai.usage.input_tokens");
                match &span.error {
                    Some(_) => {
                        assert!(span.str("error.type").is_some());
                        assert_eq!(input, None);
                        assert_eq!(span.attribute("gen_ai.output.messages"), None);
                        assert_eq!(span.evaluation, None);
                    }
                    None => {
                        let input = input.unwrap();
                        let cached = span
                            .int("gen_ai.usage.cache_read.input_tokens")
                            .unwrap_or(0)
                            + span
                                .int("gen_ai.usage.cache_creation.input_tokens")
                                .unwrap_or(0);
                        assert!(cached <= input, "{span:?}");
                        if let Some(output) = span.int("gen_ai.usage.output_tokens") {
                            let max = span.int("gen_ai.request.max_tokens").unwrap();
                            assert!(output <= max, "{span:?}");
                            let reasoning = span
                                .int("gen_ai.usage.reasoning.output_tokens")
                                .unwrap_or(0);
                            assert!(reasoning <= output, "{span:?}");
                        }
                        if let Some(AttrValue::Float(ttft)) =
                            span.attribute("gen_ai.response.time_to_first_chunk")
                        {
                            assert!(*ttft > 0.0 && *ttft < span.duration.as_secs_f64());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn output_tokens_grow_by_half_and_only_they() {
        let normal = normal_run(21, TOTAL);
        let run = run_of(ScenarioName::OutputTokens, 21, TOTAL, CHANGE);
        let c = CHANGE as usize;
        let changed = differing(
            &run[c..],
            &normal[c..],
            &[
                "gen_ai.usage.output_tokens",
                "gen_ai.usage.reasoning.output_tokens",
                "gen_ai.response.time_to_first_chunk",
                "duration",
            ],
        );
        assert!(changed > 800, "{changed}");
        for (s, n) in run[c..].iter().zip(&normal[c..]) {
            let (Some(new), Some(old)) = (
                s.int("gen_ai.usage.output_tokens"),
                n.int("gen_ai.usage.output_tokens"),
            ) else {
                continue;
            };
            let max = n.int("gen_ai.request.max_tokens").unwrap();
            let length = matches!(n.attribute("gen_ai.response.finish_reasons"),
                Some(AttrValue::StrArray(r)) if r[0] == "length" || r[0] == "max_tokens");
            let expected = if length {
                old
            } else {
                ((old as f64 * 1.5).round() as i64).min(max - 1).max(old)
            };
            assert_eq!(new, expected, "{s:?}");
            // Same speed: time per visible output token is unchanged (to the microsecond the
            // durations are rounded to), and time to the first chunk too unless hidden
            // reasoning grew.
            let reasoning = |x: &SimSpan| x.int("gen_ai.usage.reasoning.output_tokens");
            if let (Some(AttrValue::Float(a)), Some(AttrValue::Float(b))) = (
                s.attribute("gen_ai.response.time_to_first_chunk"),
                n.attribute("gen_ai.response.time_to_first_chunk"),
            ) {
                if reasoning(n).is_none() {
                    assert_eq!(a, b);
                }
                let visible = |x: &SimSpan, ttft: f64| {
                    let v =
                        x.int("gen_ai.usage.output_tokens").unwrap() - reasoning(x).unwrap_or(0);
                    (v > 20).then(|| (x.duration.as_secs_f64() - ttft) / v as f64)
                };
                if let (Some(a), Some(b)) = (visible(s, *a), visible(n, *b)) {
                    assert!((a - b).abs() < 1e-6, "{a} {b}");
                }
            }
        }
        // Call for call, the typical output grows by half; in all a little less, as max_tokens
        // caps the longest answers.
        let mut ratios: Vec<f64> = run[c..]
            .iter()
            .zip(&normal[c..])
            .filter_map(|(s, n)| Some(output_tokens(s)? / output_tokens(n)?))
            .collect();
        ratios.sort_by(f64::total_cmp);
        assert_eq!(ratios[ratios.len() / 2], 1.5);
        let total = |spans: &[SimSpan]| spans.iter().filter_map(output_tokens).sum::<f64>();
        let ratio = total(&run[c..]) / total(&normal[c..]);
        assert!((1.2..1.5).contains(&ratio), "output ratio {ratio}");
        // Before and after in the run itself: the median output up by about half, the median
        // input not.
        let median = |spans: &[SimSpan], key: &str| {
            let mut v: Vec<i64> = spans
                .iter()
                .filter(|s| is_chat(s))
                .filter_map(|s| s.int(key))
                .collect();
            v.sort_unstable();
            v[v.len() / 2] as f64
        };
        let output = "gen_ai.usage.output_tokens";
        let ratio = median(&run[c..], output) / median(&run[..c], output);
        assert!((1.3..1.7).contains(&ratio), "median output ratio {ratio}");
        let input = "gen_ai.usage.input_tokens";
        let ratio = median(&run[c..], input) / median(&run[..c], input);
        assert!((0.8..1.25).contains(&ratio), "median input ratio {ratio}");
    }

    #[test]
    fn model_swap_changes_only_the_response_model_and_fingerprint_of_gpt_4o() {
        let normal = normal_run(22, TOTAL);
        let run = run_of(ScenarioName::ModelSwap, 22, TOTAL, CHANGE);
        let c = CHANGE as usize;
        let changed = differing(
            &run[c..],
            &normal[c..],
            &[
                "gen_ai.response.model",
                "openai.response.system_fingerprint",
            ],
        );
        let new_fingerprints = ModelSwap::FINGERPRINTS.map(|(_, to)| to);
        let mut swapped = 0;
        for (index, span) in run.iter().enumerate() {
            let Some(response_model) = span.str("gen_ai.response.model") else {
                continue;
            };
            let fingerprint = span.str("openai.response.system_fingerprint");
            let gpt_4o = span.str("gen_ai.request.model") == Some("gpt-4o");
            if gpt_4o && index >= c {
                assert_eq!(response_model, ModelSwap::RESPONSE_MODEL);
                assert!(new_fingerprints.contains(&fingerprint.unwrap()));
                swapped += 1;
            } else {
                assert_ne!(response_model, ModelSwap::RESPONSE_MODEL);
                assert!(!new_fingerprints.contains(&fingerprint.unwrap_or("")));
            }
        }
        assert_eq!(changed, swapped);
        assert!(swapped > 300, "{swapped}");
        // The new fingerprints keep the old ones' shares (about 9 to 1).
        let main = run[c..]
            .iter()
            .filter(|s| s.str("openai.response.system_fingerprint") == Some(new_fingerprints[0]))
            .count();
        assert!(main as f64 > 0.8 * swapped as f64, "{main} of {swapped}");
    }

    fn texts(span: &SimSpan, key: &str) -> Option<Vec<String>> {
        let json: serde_json::Value = serde_json::from_str(span.str(key)?).unwrap();
        let messages = json.as_array().unwrap();
        assert_eq!(messages.len(), 1);
        let role = if key == "gen_ai.input.messages" {
            "user"
        } else {
            "assistant"
        };
        assert_eq!(messages[0]["role"], role);
        Some(
            messages[0]["parts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|part| {
                    assert_eq!(part["type"], "text");
                    part["content"].as_str().unwrap().to_owned()
                })
                .collect(),
        )
    }

    const BILLING_WORDS: [&str; 9] = [
        "invoice",
        "charge",
        "refund",
        "card",
        "bill",
        "payment",
        "tax",
        "subscription",
        "vat",
    ];
    const TRAVEL_WORDS: [&str; 12] = [
        "flight",
        "hotel",
        "train",
        "visa",
        "airport",
        "hiking",
        "pack",
        "fares",
        "guesthouse",
        "trip",
        "travel",
        "cheapest way",
    ];

    #[test]
    fn topic_shift_changes_what_users_ask_and_nothing_else() {
        let normal = normal_run(23, TOTAL);
        let run = run_of(ScenarioName::TopicShift, 23, TOTAL, CHANGE);
        let c = CHANGE as usize;
        differing(
            &run,
            &normal,
            &["gen_ai.input.messages", "gen_ai.output.messages"],
        );
        let mut lengths = (Vec::new(), Vec::new());
        for (index, span) in run.iter().enumerate() {
            if !is_chat(span) {
                assert_eq!(span.attribute("gen_ai.input.messages"), None);
                assert_eq!(span.attribute("gen_ai.output.messages"), None);
                continue;
            }
            let question = texts(span, "gen_ai.input.messages").expect("every chat call has input");
            let answer = texts(span, "gen_ai.output.messages");
            assert_eq!(answer.is_some(), span.error.is_none(), "{span:?}");
            let all = question
                .iter()
                .chain(answer.iter().flatten())
                .map(|t| t.to_lowercase());
            let text: String = all.collect::<Vec<_>>().join(" ");
            let (own, other) = if index >= c {
                (&TRAVEL_WORDS[..], &BILLING_WORDS[..])
            } else {
                (&BILLING_WORDS[..], &TRAVEL_WORDS[..])
            };
            assert!(own.iter().any(|w| text.contains(w)), "{index}: {text}");
            assert!(!other.iter().any(|w| text.contains(w)), "{index}: {text}");
            if let Some(answer) = answer {
                // Answer length follows the visible output tokens, which do not change.
                let visible = span.int("gen_ai.usage.output_tokens").unwrap()
                    - span
                        .int("gen_ai.usage.reasoning.output_tokens")
                        .unwrap_or(0);
                let expected = (visible as u64 * CHARS_PER_TOKEN).clamp(1, MAX_ANSWER_CHARS);
                assert_eq!(answer[0].chars().count() as u64, expected);
                if index >= c {
                    &mut lengths.1
                } else {
                    &mut lengths.0
                }
                .push(expected as f64);
            }
        }
        let ratio = mean(lengths.1.iter().copied()) / mean(lengths.0.iter().copied());
        assert!((0.85..1.15).contains(&ratio), "answer length ratio {ratio}");
        // Texts vary within a topic.
        let questions: BTreeSet<_> = run[..c]
            .iter()
            .filter_map(|s| s.str("gen_ai.input.messages"))
            .collect();
        assert!(questions.len() > 150, "{}", questions.len());
    }

    #[test]
    fn judge_sag_grades_a_fifth_of_calls_and_scores_sag_over_ten_minutes() {
        // 1 span per simulated second: change at 2000 s, ramp over by 2600 s, run ends at 4000 s.
        let rate = 1.0;
        let change = ChangePoint::new(CHANGE, rate);
        let run: Vec<SimSpan> =
            Generator::new(24, rate, TOTAL, ScenarioName::JudgeSag.build(change)).collect();
        let normal: Vec<SimSpan> = Generator::new(24, rate, TOTAL, Box::new(Normal)).collect();
        differing(&run, &normal, &["evaluation"]);
        let (mut before, mut ramp, mut after) = (Vec::new(), Vec::new(), Vec::new());
        let mut graded = 0;
        let gradable = run
            .iter()
            .filter(|s| is_chat(s) && s.error.is_none())
            .count();
        for (index, span) in run.iter().enumerate() {
            let Some(evaluation) = &span.evaluation else {
                continue;
            };
            graded += 1;
            assert!(is_chat(span) && span.error.is_none(), "{span:?}");
            assert_eq!(evaluation.name, "correctness");
            assert_eq!(
                Some(evaluation.response_id.as_str()),
                span.str("gen_ai.response.id")
            );
            assert!((0.0..=1.0).contains(&evaluation.score));
            let t = span.end_offset.as_secs_f64();
            if (index as u64) < CHANGE {
                before.push(evaluation.score);
            } else if t < 2000.0 + 600.0 {
                ramp.push((t - 2000.0, evaluation.score));
            } else {
                after.push(evaluation.score);
            }
        }
        let share = graded as f64 / gradable as f64;
        assert!((0.17..0.23).contains(&share), "{share}");
        let m = mean(before.iter().copied());
        assert!((m - 0.85).abs() < 0.01, "before {m}");
        assert!(
            (std_dev(&before) - 0.05).abs() < 0.01,
            "{}",
            std_dev(&before)
        );
        let m = mean(after.iter().copied());
        assert!((m - 0.65).abs() < 0.01, "after {m}");
        assert!((std_dev(&after) - 0.05).abs() < 0.01, "{}", std_dev(&after));
        // Half-way down the ramp the mean is half-way too.
        let early = mean(ramp.iter().filter(|(t, _)| *t < 300.0).map(|(_, s)| *s));
        let late = mean(ramp.iter().filter(|(t, _)| *t >= 300.0).map(|(_, s)| *s));
        assert!((early - 0.80).abs() < 0.02, "{early}");
        assert!((late - 0.70).abs() < 0.02, "{late}");
        assert_eq!(JudgeSag::mean(None), 0.85);
        assert_eq!(JudgeSag::mean(Some(Duration::from_secs(300))), 0.75);
        assert_eq!(JudgeSag::mean(Some(Duration::from_secs(6000))), 0.65);
    }

    #[test]
    fn error_burst_fails_three_calls_in_ten_with_rate_limits() {
        let run = run_of(ScenarioName::ErrorBurst, 25, TOTAL, CHANGE);
        let c = CHANGE as usize;
        let (before, after) = run.split_at(c);
        let ratio = |spans: &[SimSpan]| {
            spans.iter().filter(|s| s.error.is_some()).count() as f64 / spans.len() as f64
        };
        assert!(ratio(before) < 0.05, "{}", ratio(before));
        assert!((0.27..0.33).contains(&ratio(after)), "{}", ratio(after));
        let rate_limited = after
            .iter()
            .filter(|s| s.str("error.type") == Some("RateLimitError"))
            .count();
        assert!(rate_limited as f64 > 0.25 * after.len() as f64);
        for span in after.iter().filter(|s| s.error.is_some()) {
            assert!(
                span.error.as_deref().unwrap().starts_with("Error code")
                    || span.error.as_deref() == Some("Request timed out.")
            );
        }
        // The calls that still succeed are the normal mix: services, models, streaming and
        // token counts as before the change.
        let ok = |spans: &[SimSpan]| -> Vec<SimSpan> {
            spans
                .iter()
                .filter(|s| s.error.is_none())
                .cloned()
                .collect()
        };
        let (ok_before, ok_after) = (ok(before), ok(after));
        let share = |spans: &[SimSpan], pred: &dyn Fn(&SimSpan) -> bool| {
            spans.iter().filter(|s| pred(s)).count() as f64 / spans.len() as f64
        };
        for service in 0..SERVICES.len() {
            let (a, b) = (
                share(&ok_before, &|s| s.service == service),
                share(&ok_after, &|s| s.service == service),
            );
            assert!((a - b).abs() < 0.04, "service {service}: {a} {b}");
        }
        for model in MODELS {
            let is = |s: &SimSpan| s.str("gen_ai.request.model") == Some(model.request_model);
            let (a, b) = (share(&ok_before, &is), share(&ok_after, &is));
            assert!((a - b).abs() < 0.04, "{}: {a} {b}", model.request_model);
        }
        let output = |spans: &[SimSpan]| mean(spans.iter().filter_map(output_tokens));
        let r = output(&ok_after) / output(&ok_before);
        assert!((0.8..1.25).contains(&r), "{r}");
        assert!((ErrorBurst::extra_failure_probability() - 0.2784).abs() < 0.001);
    }

    #[test]
    fn cost_spike_multiplies_input_tokens_of_one_service() {
        let normal = normal_run(26, TOTAL);
        let run = run_of(ScenarioName::CostSpike, 26, TOTAL, CHANGE);
        let c = CHANGE as usize;
        let spiked = differing(
            &run[c..],
            &normal[c..],
            &[
                "gen_ai.usage.input_tokens",
                "gen_ai.response.time_to_first_chunk",
                "duration",
            ],
        );
        let mut expected = 0;
        for (s, n) in run[c..].iter().zip(&normal[c..]) {
            if s.service_name() == CostSpike::SERVICE && n.error.is_none() {
                expected += 1;
                assert_eq!(
                    s.int("gen_ai.usage.input_tokens").unwrap(),
                    10 * n.int("gen_ai.usage.input_tokens").unwrap()
                );
                assert!(s.duration > n.duration);
            } else {
                assert!(differences(s, n).is_empty(), "{s:?}");
            }
        }
        assert_eq!(spiked, expected);
        assert!(expected > 200, "{expected}");
        let input = |spans: &[SimSpan]| {
            mean(
                spans
                    .iter()
                    .filter(|s| s.service_name() == CostSpike::SERVICE)
                    .filter_map(|s| s.int("gen_ai.usage.input_tokens"))
                    .map(|n| n as f64),
            )
        };
        let ratio = input(&run[c..]) / input(&run[..c]);
        assert!((7.0..14.0).contains(&ratio), "{ratio}");
    }

    #[test]
    fn the_change_point_and_time_scale_follow_the_arguments() {
        let args = |change_after: Option<&str>, time_scale: f64| SimulateArgs {
            endpoint: "http://127.0.0.1:4317".to_owned(),
            rate: 20.0,
            duration: Duration::from_secs(30),
            seed: 1,
            protocol: Protocol::Grpc,
            scenario: ScenarioName::ModelSwap,
            change_after: change_after.map(|d| humantime::parse_duration(d).unwrap()),
            time_scale,
        };
        let total = 600;
        assert_eq!(
            args(None, 1.0).change_point(total).unwrap(),
            ChangePoint {
                index: 300,
                at: Duration::from_secs(15)
            }
        );
        assert_eq!(
            args(Some("10s"), 1.0).change_point(total).unwrap().index,
            200
        );
        assert_eq!(
            args(Some("0.3s"), 1.0).change_point(total).unwrap().index,
            6
        );
        assert_eq!(
            args(Some("30s"), 1.0).change_point(total).unwrap().index,
            600
        );
        assert!(args(Some("31s"), 1.0).change_point(total).is_err());
        // With simulated time 20 times faster, the change is 5 simulated minutes in.
        let scaled = args(None, 20.0);
        assert_eq!(scaled.simulated_rate().unwrap(), 1.0);
        assert_eq!(
            scaled.change_point(total).unwrap(),
            ChangePoint {
                index: 300,
                at: Duration::from_secs(300)
            }
        );
        for bad in [0.5, 0.0, f64::NAN, f64::INFINITY] {
            assert!(args(None, bad).time_scale().is_err(), "{bad}");
        }
        let summary = Summary {
            endpoint: "http://127.0.0.1:4317".to_owned(),
            protocol: Protocol::Grpc,
            seed: 1,
            scenario: "judge-sag",
            generated: 600,
            sent: 600,
            failed: 0,
            services: 4,
            models: 5,
            errors: 17,
            streamed: 200,
            elapsed: Duration::from_secs(30),
            time_scale: 1.0,
            change: Some((300, Duration::from_secs(15))),
            evaluations: 60,
            evaluations_sent: 60,
            evaluations_failed: 0,
        };
        let line = summary.to_string();
        assert!(
            line.contains(
                "scenario judge-sag, change at span 300 (t=15s); sent 60 of 60 evaluation events"
            ),
            "{line}"
        );
        let line = Summary {
            time_scale: 20.0,
            ..summary
        }
        .to_string();
        assert!(
            line.contains("change at span 300 (t=15s, simulated t=300s), time scale 20"),
            "{line}"
        );
        assert_eq!(
            logs_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/logs"
        );
        assert_eq!(logs_url("http://h:1/v1/traces"), "http://h:1/v1/logs");
        assert_eq!(logs_url("http://h:1/v1/logs/"), "http://h:1/v1/logs");
    }
}
