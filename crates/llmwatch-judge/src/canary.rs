//! Canary probes: a fixed prompt asked on a schedule of any OpenAI-compatible chat-completions
//! endpoint, the answer checked against the probe's expectations
//! ([`llmwatch_core::quality::canary`]), the result recorded in the processor.
//!
//! **One run** is one request, no retry (the next scheduled run is the retry), bounded by
//! `timeout` from sending to the last byte. Its outcome, by precedence: `error` (no answer: a
//! non-2xx status, a timeout, a transport error, a reply without `choices[0].message.content`
//! or `refusal`) > `fail` > `slow` > `pass`.
//!
//! **Recorded** per run, labelled `{probe, gen_ai_request_model}`:
//! `llmwatch_canary_runs_total{outcome}` +1; `llmwatch_canary_passing` = 1 on `pass`, else 0;
//! `llmwatch_canary_latency_seconds` observes the latency of runs that got an answer (`pass`,
//! `fail`, `slow`; an error's "latency" is mostly the timeout); on `pass`,
//! `llmwatch_canary_last_success_timestamp_seconds` = the Unix time the run ended. Every answer
//! also joins the probe's embedding drift signal (see `llmwatch_core::drift`).
//!
//! **Schedule**: each probe runs at start, then every `interval` (a run that overruns delays
//! the next, never overlaps it), on its own task until stopped.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use llmwatch_core::Processor;
use llmwatch_core::drift::monitor::ProbeWindows;
use llmwatch_core::quality::{CanaryOutcome, Expectation, ExpectationConfig};
use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::endpoint::{Access, Endpoint, Exchange, SetupError, Transient, endpoint_url};
use crate::error::excerpt;

/// The largest reply read; a longer one is an `error` run.
const MAX_REPLY_BYTES: usize = 1 << 20;
/// Characters of an answer or error body kept for the log.
const LOG_EXCERPT_CHARS: usize = 200;

/// One probe.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryConfig {
    /// The `probe` label: 1 to 64 ASCII letters, digits, `_`, `-` or `.`.
    pub name: String,
    /// The OpenAI-compatible API root; requests go to `{base_url}/chat/completions`.
    pub base_url: String,
    pub model: String,
    /// The variable holding the API key; `None` sends no `Authorization`.
    pub api_key_env: Option<String>,
    pub extra_headers: BTreeMap<String, String>,
    /// Fields merged into the request body (e.g. `temperature`, `seed`, `max_tokens`); not
    /// `model` or `messages`.
    pub extra_body: BTreeMap<String, Value>,
    /// An optional system message before the prompt.
    pub system: Option<String>,
    pub prompt: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub expectation: ExpectationConfig,
    /// The answers forming the probe's drift baseline and current window.
    pub drift: ProbeWindows,
}

impl CanaryConfig {
    /// Checks every setting but the API key; errors name the field.
    pub fn validate(&self) -> Result<(), SetupError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !name_ok {
            return Err(SetupError::new(
                "name",
                format!(
                    "expected 1 to 64 ASCII letters, digits, '_', '-' or '.', got {:?}",
                    self.name
                ),
            ));
        }
        endpoint_url(&self.base_url, "chat/completions")?;
        if self.model.trim().is_empty() {
            return Err(SetupError::new("model", "expected a model name"));
        }
        if self.prompt.trim().is_empty() {
            return Err(SetupError::new("prompt", "expected a non-empty prompt"));
        }
        if self.api_key_env.as_deref().is_some_and(str::is_empty) {
            return Err(SetupError::new("api_key_env", "expected a variable name"));
        }
        if self.interval.is_zero() {
            return Err(SetupError::new(
                "interval",
                "expected a duration longer than 0",
            ));
        }
        if self.timeout.is_zero() {
            return Err(SetupError::new(
                "timeout",
                "expected a duration longer than 0",
            ));
        }
        if let Some(max) = self.expectation.max_latency
            && max >= self.timeout
        {
            return Err(SetupError::new(
                "max_latency",
                format!(
                    "expected less than the timeout ({:?}), or no run could ever be slow, got {max:?}",
                    self.timeout
                ),
            ));
        }
        for key in self.extra_body.keys() {
            if key == "model" || key == "messages" {
                return Err(SetupError::new(
                    "extra_body",
                    format!("{key:?} is set by the probe and cannot be overridden"),
                ));
            }
        }
        for (field, value) in [
            ("baseline_answers", self.drift.baseline),
            ("window_answers", self.drift.window),
        ] {
            if value < 2 {
                return Err(SetupError::new(
                    field,
                    format!("expected at least 2, got {value}"),
                ));
            }
        }
        Expectation::new(self.expectation.clone())
            .map(|_| ())
            .map_err(|e| SetupError::new(&e.field, e.message))
    }
}

/// A probe ready to run: its endpoint, request body and compiled expectation.
#[derive(Debug)]
pub struct Canary {
    config: CanaryConfig,
    endpoint: Endpoint,
    expectation: Expectation,
    body: String,
}

/// What one run came to.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryRun {
    pub outcome: CanaryOutcome,
    /// From sending to the last byte of the answer; `None` for an `error` run.
    pub latency: Option<Duration>,
    /// The answer (`content`, or `refusal` when the model refused through that field).
    pub answer: Option<String>,
    /// Why it is not `pass`.
    pub failures: Vec<String>,
    /// When the run ended.
    pub ended: SystemTime,
}

impl Canary {
    /// Builds the probe, reading its API key from the environment.
    pub fn new(config: CanaryConfig) -> Result<Canary, SetupError> {
        Canary::with_env(config, |name| std::env::var(name).ok())
    }

    /// [`Canary::new`] with the environment read through `lookup`.
    pub fn with_env(
        config: CanaryConfig,
        lookup: impl FnOnce(&str) -> Option<String>,
    ) -> Result<Canary, SetupError> {
        config.validate()?;
        let access = Access {
            base_url: &config.base_url,
            api_key_env: config.api_key_env.as_deref(),
            extra_headers: &config.extra_headers,
        };
        let endpoint = Endpoint::new(access, "chat/completions", lookup)?;
        let expectation = Expectation::new(config.expectation.clone())
            .map_err(|e| SetupError::new(&e.field, e.message))?;
        let body = request_body(&config).to_string();
        Ok(Canary {
            config,
            endpoint,
            expectation,
            body,
        })
    }

    pub fn config(&self) -> &CanaryConfig {
        &self.config
    }

    /// Asks once and judges the answer; records nothing.
    pub async fn run_once(&self) -> CanaryRun {
        let started = Instant::now();
        let exchange = self
            .endpoint
            .post(self.body.clone(), self.config.timeout, MAX_REPLY_BYTES)
            .await;
        let latency = started.elapsed();
        let error = |reason: String| CanaryRun {
            outcome: CanaryOutcome::Error,
            latency: None,
            answer: None,
            failures: vec![reason],
            ended: SystemTime::now(),
        };
        let body = match exchange {
            Exchange::Success {
                complete: false, ..
            } => return error(format!("reply larger than {MAX_REPLY_BYTES} bytes")),
            Exchange::Success { body, .. } => body,
            Exchange::Retry(failure) => return error(describe(&failure)),
            Exchange::Rejected {
                status,
                body_excerpt,
            } => return error(format!("rejected with {status}: {body_excerpt:?}")),
        };
        let Some(answer) = answer_of(&body) else {
            return error(format!(
                "reply has no choices[0].message.content: {:?}",
                excerpt(&String::from_utf8_lossy(&body), LOG_EXCERPT_CHARS)
            ));
        };
        let check = self.expectation.check(&answer, latency);
        CanaryRun {
            outcome: check.outcome,
            latency: Some(latency),
            answer: Some(answer),
            failures: check.failures,
            ended: SystemTime::now(),
        }
    }

    /// Records a run in the processor's canary metrics and the probe's drift signal.
    pub fn record(&self, processor: &Processor, run: &CanaryRun) {
        let labels = [self.config.name.as_str(), self.config.model.as_str()];
        let metrics = processor.quality().metrics();
        let outcome = [labels[0], labels[1], run.outcome.as_str()];
        metrics.canary_runs.add(&outcome, 1.0);
        let passed = run.outcome == CanaryOutcome::Pass;
        metrics
            .canary_passing
            .set(&labels, f64::from(u8::from(passed)));
        if let Some(latency) = run.latency {
            metrics
                .canary_latency
                .observe(&labels, latency.as_secs_f64());
        }
        if passed {
            let ended = run
                .ended
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            metrics.canary_last_success.set(&labels, ended);
        } else {
            tracing::warn!(
                probe = %self.config.name,
                model = %self.config.model,
                outcome = run.outcome.as_str(),
                failures = ?run.failures,
                answer = ?run.answer.as_deref().map(|a| excerpt(a, LOG_EXCERPT_CHARS)),
                "canary probe did not pass"
            );
        }
        if let Some(answer) = &run.answer {
            processor
                .drift()
                .observe_probe_answer(&self.config.name, &self.config.model, answer);
        }
    }
}

/// The chat-completions body: the model, an optional system message, the prompt, then
/// `extra_body`.
fn request_body(config: &CanaryConfig) -> Value {
    let mut messages = Vec::new();
    if let Some(system) = &config.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    messages.push(json!({"role": "user", "content": config.prompt}));
    let mut body = Map::new();
    body.insert("model".into(), Value::String(config.model.clone()));
    body.insert("messages".into(), Value::Array(messages));
    for (key, value) in &config.extra_body {
        body.insert(key.clone(), value.clone());
    }
    Value::Object(body)
}

/// `choices[0].message.content`, or its `refusal` when the model refused through that field.
fn answer_of(body: &[u8]) -> Option<String> {
    let reply: Value = serde_json::from_slice(body).ok()?;
    let message = &reply["choices"][0]["message"];
    message["content"]
        .as_str()
        .or_else(|| message["refusal"].as_str())
        .map(str::to_owned)
}

fn describe(failure: &Transient) -> String {
    match failure {
        Transient::RateLimited { body_excerpt, .. } => {
            format!("rate limited (429): {body_excerpt:?}")
        }
        Transient::Server {
            status,
            body_excerpt,
            ..
        } => format!("server error {status}: {body_excerpt:?}"),
        Transient::Timeout => "timed out".into(),
        Transient::Transport(message) => format!("transport error: {message}"),
    }
}

/// The probes' tasks; [`CanaryTasks::stop`] ends them.
#[derive(Debug)]
pub struct CanaryTasks {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl CanaryTasks {
    /// Stops every probe (a run in flight is abandoned, not recorded).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Registers each probe's drift signal, pre-registers its run counters at 0, and starts one
/// task per probe. Register before the processor's saved drift state is restored, so that
/// probe baselines are restored too. Must be called inside a tokio runtime.
pub fn spawn_canaries(canaries: Vec<Canary>, processor: Arc<Processor>) -> CanaryTasks {
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    for canary in canaries {
        let config = canary.config();
        if !processor
            .drift()
            .register_probe(&config.name, &config.model, config.drift)
        {
            tracing::warn!(probe = %config.name, "too many canary probes for drift monitoring; this one's answers are not monitored for drift");
        }
        let metrics = processor.quality().metrics();
        for outcome in CanaryOutcome::ALL {
            metrics
                .canary_runs
                .add(&[&config.name, &config.model, outcome.as_str()], 0.0);
        }
        let processor = processor.clone();
        let mut stopped = stopped.clone();
        tasks.push(tokio::spawn(async move {
            let stop = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            schedule(canary, processor, stop).await;
        }));
    }
    CanaryTasks { stop, tasks }
}

/// Runs `canary` at once and then every interval until `stop`.
async fn schedule(canary: Canary, processor: Arc<Processor>, stop: impl Future<Output = ()>) {
    let mut tick = tokio::time::interval(canary.config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        tokio::select! {
            _ = &mut stop => return,
            run = canary.run_once() => canary.record(&processor, &run),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CanaryConfig {
        CanaryConfig {
            name: "capital".into(),
            base_url: "http://127.0.0.1:1/v1".into(),
            model: "gpt-4o-mini".into(),
            api_key_env: None,
            extra_headers: BTreeMap::new(),
            extra_body: BTreeMap::from([("temperature".to_owned(), json!(0))]),
            system: Some("Answer in one sentence.".into()),
            prompt: "What is the capital of France?".into(),
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            expectation: ExpectationConfig {
                contains: vec!["Paris".into()],
                max_latency: Some(Duration::from_secs(5)),
                ..Default::default()
            },
            drift: ProbeWindows::default(),
        }
    }

    #[test]
    fn the_request_is_the_system_message_the_prompt_and_extra_body() {
        assert_eq!(
            request_body(&config()),
            json!({
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "Answer in one sentence."},
                    {"role": "user", "content": "What is the capital of France?"}
                ],
                "temperature": 0
            })
        );
    }

    #[test]
    fn answers_are_the_content_or_the_refusal() {
        let reply = |message: Value| {
            json!({"choices": [{"index": 0, "message": message}]})
                .to_string()
                .into_bytes()
        };
        assert_eq!(
            answer_of(&reply(json!({"role": "assistant", "content": "Paris."}))),
            Some("Paris.".into())
        );
        assert_eq!(
            answer_of(&reply(
                json!({"role": "assistant", "content": null, "refusal": "I can't."})
            )),
            Some("I can't.".into())
        );
        assert_eq!(
            answer_of(&reply(json!({"role": "assistant", "tool_calls": []}))),
            None
        );
        assert_eq!(answer_of(b"not json"), None);
    }

    #[test]
    fn settings_are_checked_and_errors_name_the_field() {
        assert_eq!(config().validate(), Ok(()));
        type Mutation = Box<dyn Fn(&mut CanaryConfig)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|c| c.name = "has space".into()), "name"),
            (
                Box::new(|c| c.base_url = "localhost:8000".into()),
                "base_url",
            ),
            (
                Box::new(|c| c.base_url = "http://h/v1?x=1".into()),
                "base_url",
            ),
            (Box::new(|c| c.model = " ".into()), "model"),
            (Box::new(|c| c.prompt = String::new()), "prompt"),
            (Box::new(|c| c.interval = Duration::ZERO), "interval"),
            (Box::new(|c| c.timeout = Duration::ZERO), "timeout"),
            (
                Box::new(|c| c.expectation.max_latency = Some(Duration::from_secs(10))),
                "max_latency",
            ),
            (
                Box::new(|c| {
                    c.extra_body.insert("messages".into(), json!([]));
                }),
                "extra_body",
            ),
            (Box::new(|c| c.drift.window = 1), "window_answers"),
            (
                Box::new(|c| c.expectation.regex = Some("(".into())),
                "regex",
            ),
            (
                Box::new(|c| c.api_key_env = Some(String::new())),
                "api_key_env",
            ),
        ];
        for (mutate, want) in cases {
            let mut c = config();
            mutate(&mut c);
            assert_eq!(c.validate().unwrap_err().key, want);
        }
        let error = Canary::with_env(
            CanaryConfig {
                api_key_env: Some("LLMWATCH_CANARY_KEY".into()),
                ..config()
            },
            |_| None,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "api_key_env: the variable LLMWATCH_CANARY_KEY is not set"
        );
    }
}
