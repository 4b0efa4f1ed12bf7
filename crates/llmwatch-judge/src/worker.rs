//! The judge worker: takes sampled calls off the [`JudgeQueue`](crate::JudgeQueue), runs each
//! through the configured evaluators (the LLM judge and evaluator plugins) under a concurrency
//! limit, and records what they say: scores through `Processor::record_evaluation` (which also
//! feeds the SPC charts), outcomes, tokens and cost in the quality metrics, flagged calls in the
//! review queue, and each score as a `gen_ai.evaluation.result` event for the downstream.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use llmwatch_core::Processor;
use llmwatch_core::quality::review::hex;
use llmwatch_core::quality::{
    EvaluationRecord, EvaluationSource, ReviewEntry, ReviewScore, SampledCall,
};
use llmwatch_pricing::{Date, Prices, call_cost};
use llmwatch_semconv::TokenUsage;
use tokio::sync::Semaphore;

use crate::client::{Judge, outcome_of};
use crate::error::{JudgeError, Usage};
use crate::events::{EvaluationEvent, EventSender};
use crate::plugin::Plugin;
use crate::prompt::JudgeRequest;
use crate::queue::JudgeReceiver;
use crate::spend::{SpendCap, SpendGuard};

/// The `evaluator` label of the LLM judge (plugins use their configured names).
pub const JUDGE_EVALUATOR: &str = "judge";

/// Completion tokens reserved per judge call when the config sets no `max_tokens`.
pub const DEFAULT_COMPLETION_ESTIMATE: u64 = 1_024;

/// The LLM judge with its hourly budget.
#[derive(Debug)]
pub struct LlmJudge {
    judge: Judge,
    guard: Option<Mutex<SpendGuard>>,
    /// The judge model's prices when it is in the catalog.
    prices: Option<Prices>,
    completion_estimate: u64,
}

impl LlmJudge {
    /// `cap` in dollars needs `prices`; without them the caller picks a token cap.
    pub fn new(judge: Judge, cap: Option<SpendCap>, prices: Option<Prices>) -> LlmJudge {
        let body = &judge.config().extra_body;
        let completion_estimate = ["max_tokens", "max_completion_tokens"]
            .iter()
            .find_map(|k| body.get(*k).and_then(|v| v.as_u64()))
            .unwrap_or(DEFAULT_COMPLETION_ESTIMATE);
        LlmJudge {
            judge,
            guard: cap.map(|cap| Mutex::new(SpendGuard::hourly(cap))),
            prices,
            completion_estimate,
        }
    }

    /// The prices of `model` in `processor`'s catalog, as of today.
    pub fn catalog_prices(processor: &Processor, model: &str) -> Option<Prices> {
        let catalog = processor.pricer().catalog();
        let resolution = catalog.resolve("", model)?;
        Some(
            resolution
                .entry
                .prices_at(Date::from_unix_nanos(now_nanos()))
                .clone(),
        )
    }

    pub fn judge(&self) -> &Judge {
        &self.judge
    }

    fn usd(&self, usage: &Usage) -> Option<f64> {
        let prices = self.prices.as_ref()?;
        let tokens = TokenUsage {
            input: Some(usage.prompt_tokens),
            output: Some(usage.completion_tokens),
            cache_read: Some(usage.cached_tokens),
            ..TokenUsage::default()
        };
        Some(call_cost(prices, &tokens).0.total())
    }

    /// What the cap counts for `usage`, in its unit.
    fn spend(&self, cap: SpendCap, usage: &Usage) -> f64 {
        match cap {
            SpendCap::Usd(_) => self.usd(usage).unwrap_or(0.0),
            SpendCap::Tokens(_) => usage.total_tokens() as f64,
        }
    }
}

/// What the worker needs besides the evaluators.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Sampled calls evaluated at once.
    pub concurrency: usize,
    /// Judge and plugin scores (0..1) below this flag their call for review.
    pub flag_below: f64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            concurrency: 4,
            flag_below: 0.5,
        }
    }
}

/// One score from one evaluator, on 0..1.
#[derive(Debug, Clone, PartialEq)]
struct Scored {
    evaluator: String,
    source: EvaluationSource,
    name: String,
    value: Option<f64>,
    label: Option<String>,
    explanation: Option<String>,
    flagged: bool,
}

/// The evaluators and where their results go.
#[derive(Debug)]
pub struct Pipeline {
    processor: Arc<Processor>,
    judge: Option<LlmJudge>,
    plugins: Vec<Plugin>,
    events: Option<EventSender>,
    config: PipelineConfig,
}

impl Pipeline {
    pub fn new(
        processor: Arc<Processor>,
        judge: Option<LlmJudge>,
        plugins: Vec<Plugin>,
        events: Option<EventSender>,
        config: PipelineConfig,
    ) -> Pipeline {
        Pipeline {
            processor,
            judge,
            plugins,
            events,
            config,
        }
    }

    /// Takes calls off the queue until `stop` completes or the queue closes. A call is taken
    /// only when a concurrency slot is free, so the rest wait in the bounded queue (and the
    /// queue depth gauge shows the backlog). Calls being evaluated when `stop` completes are
    /// abandoned.
    pub async fn run(
        self: Arc<Self>,
        mut rx: JudgeReceiver,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let slots = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let mut running = tokio::task::JoinSet::new();
        tokio::pin!(stop);
        loop {
            let slot = tokio::select! {
                _ = &mut stop => break,
                slot = slots.clone().acquire_owned() => slot.expect("never closed"),
            };
            let call = tokio::select! {
                _ = &mut stop => break,
                call = rx.recv() => match call {
                    Some(call) => call,
                    None => break,
                },
            };
            let pipeline = self.clone();
            running.spawn(async move {
                pipeline.evaluate(call).await;
                drop(slot);
            });
            // Reap finished evaluations so the set stays as small as the concurrency.
            while running.try_join_next().is_some() {}
        }
        running.abort_all();
    }

    /// Runs every evaluator on one call and records the results.
    pub async fn evaluate(&self, call: SampledCall) {
        let judged = self.run_judge(&call);
        let plugged = futures_util::future::join_all(
            self.plugins
                .iter()
                .map(|plugin| self.run_plugin(plugin, &call)),
        );
        let (mut scores, plugin_scores) = tokio::join!(judged, plugged);
        scores.extend(plugin_scores.into_iter().flatten());
        self.record(&call, &scores);
    }

    async fn run_judge(&self, call: &SampledCall) -> Vec<Scored> {
        let Some(llm) = &self.judge else {
            return Vec::new();
        };
        let metrics = self.processor.quality().metrics();
        let request = JudgeRequest {
            prompt: call.input.clone().unwrap_or_default(),
            response: call.output.clone().unwrap_or_default(),
            context: None,
            system_instructions: call.system_instructions.clone(),
        };
        let reservation = match &llm.guard {
            None => None,
            Some(guard) => {
                let prompt = llm.judge.estimate_prompt_tokens(&request);
                let estimate = Usage {
                    prompt_tokens: prompt,
                    completion_tokens: llm.completion_estimate,
                    cached_tokens: 0,
                };
                let mut guard = guard.lock().expect("spend guard");
                let amount = llm.spend(guard.cap(), &estimate);
                match guard.try_reserve(Instant::now(), amount) {
                    Some(reservation) => Some(reservation),
                    None => {
                        metrics
                            .judge_requests
                            .add(&[JUDGE_EVALUATOR, "spend_cap"], 1.0);
                        return Vec::new();
                    }
                }
            }
        };
        let result = llm.judge.evaluate(&request).await;
        let usage = match &result {
            Ok(verdict) => verdict.usage,
            Err(error) => error.usage(),
        };
        if let (Some(guard), Some(reservation)) = (&llm.guard, reservation) {
            let mut guard = guard.lock().expect("spend guard");
            let actual = llm.spend(guard.cap(), &usage);
            guard.record(Instant::now(), reservation, actual);
        }
        metrics
            .judge_requests
            .add(&[JUDGE_EVALUATOR, outcome_of(&result).as_str()], 1.0);
        metrics
            .judge_tokens
            .add(&[JUDGE_EVALUATOR, "input"], usage.prompt_tokens as f64);
        metrics
            .judge_tokens
            .add(&[JUDGE_EVALUATOR, "output"], usage.completion_tokens as f64);
        if let Some(usd) = llm.usd(&usage) {
            metrics.judge_cost.add(&[JUDGE_EVALUATOR], usd);
        }
        let verdict = match result {
            Ok(verdict) => verdict,
            Err(JudgeError::NoApplicableDimension) => return Vec::new(),
            Err(error) => {
                tracing::debug!(%error, "judge gave no verdict");
                return Vec::new();
            }
        };
        let rubric = &llm.judge.config().rubric;
        verdict
            .scores
            .iter()
            .filter_map(|(name, raw)| {
                let dimension = rubric.iter().find(|d| &d.name == name)?;
                // Every dimension is recorded on 0..1 so scales can be compared and charted.
                let value =
                    (raw - dimension.scale_min) / (dimension.scale_max - dimension.scale_min);
                let reason = verdict
                    .reasons
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, r)| r.clone());
                Some(Scored {
                    evaluator: JUDGE_EVALUATOR.to_owned(),
                    source: EvaluationSource::Judge,
                    name: name.clone(),
                    value: Some(value),
                    label: None,
                    explanation: reason,
                    flagged: value < self.config.flag_below,
                })
            })
            .collect()
    }

    async fn run_plugin(&self, plugin: &Plugin, call: &SampledCall) -> Vec<Scored> {
        let result = plugin.evaluate(call).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(outcome) => outcome.as_str(),
        };
        self.processor
            .quality()
            .metrics()
            .judge_requests
            .add(&[plugin.name(), outcome], 1.0);
        let Ok(scores) = result else {
            return Vec::new();
        };
        scores
            .into_iter()
            .map(|s| Scored {
                evaluator: plugin.name().to_owned(),
                source: EvaluationSource::Plugin,
                flagged: s.flagged || s.value.is_some_and(|v| v < self.config.flag_below),
                name: s.name,
                value: s.value,
                label: s.label,
                explanation: s.explanation,
            })
            .collect()
    }

    fn record(&self, call: &SampledCall, scores: &[Scored]) {
        let now = now_nanos();
        for score in scores {
            self.processor.record_evaluation(&EvaluationRecord {
                service_name: &call.service_name,
                request_model: &call.request_model,
                name: &score.name,
                score: score.value,
                source: score.source,
                flagged: score.flagged,
            });
            if let Some(events) = &self.events {
                events.send(EvaluationEvent {
                    trace_id: call.trace_id.clone(),
                    span_id: call.span_id.clone(),
                    service_name: call.service_name.clone(),
                    name: score.name.clone(),
                    value: score.value,
                    label: score.label.clone(),
                    explanation: score.explanation.clone(),
                    response_id: call.response_id.clone(),
                    evaluator: score.evaluator.clone(),
                    time_unix_nano: now,
                });
            }
        }
        let flagged = scores.iter().any(|s| s.flagged);
        let review = self.processor.quality().review();
        if (!flagged && call.safety_flags.is_empty()) || !review.enabled() {
            return;
        }
        let mut reasons: Vec<String> = scores
            .iter()
            .filter(|s| s.flagged)
            .map(|s| {
                let value = s.value.map_or(String::new(), |v| format!(" = {v:.3}"));
                match &s.explanation {
                    Some(why) => format!("{} ({}){value}: {why}", s.name, s.evaluator),
                    None => format!("{} ({}){value}", s.name, s.evaluator),
                }
            })
            .collect();
        reasons.extend(call.safety_flags.iter().map(|f| format!("safety: {f}")));
        review.push(ReviewEntry {
            flagged_unix_nano: now,
            trace_id: hex(&call.trace_id),
            span_id: hex(&call.span_id),
            service_name: call.service_name.clone(),
            request_model: call.request_model.clone(),
            response_id: call.response_id.clone(),
            scores: scores
                .iter()
                .map(|s| ReviewScore {
                    name: s.name.clone(),
                    source: s.source.as_str().to_owned(),
                    evaluator: Some(s.evaluator.clone()),
                    value: s.value,
                    label: s.label.clone(),
                    flagged: s.flagged,
                })
                .collect(),
            reasons,
            safety_flags: call.safety_flags.clone(),
            input: review.content(call.input.as_deref()),
            output: review.content(call.output.as_deref()),
        });
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
