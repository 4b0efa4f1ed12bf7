//! The judge worker: takes sampled calls off the [`JudgeQueue`](crate::JudgeQueue), runs each
//! through the configured evaluators under a concurrency limit (the LLM judge's rubric and the
//! evaluator plugins for calls the quality sampler chose, the LLM safety judge for calls the
//! safety sampler chose; both at once for a call both chose), and records what they say: scores
//! through `Processor::record_evaluation` (which also feeds the SPC charts), safety verdicts in
//! `llmwatch_safety_flags_total{source="judge"}`, outcomes, tokens and cost in the quality
//! metrics, flagged calls in the review queue (one entry per call, whatever flagged it), and
//! each score and safety verdict as a `gen_ai.evaluation.result` event for the downstream.

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

use crate::client::{Judge, Verdict};
use crate::error::{JudgeError, Outcome, Usage};
use crate::events::{EvaluationEvent, EventSender};
use crate::plugin::Plugin;
use crate::prompt::JudgeRequest;
use crate::queue::JudgeReceiver;
use crate::safety::{SAFETY_EVALUATOR, SafetyCategory, SafetyVerdict};
use crate::spend::{SpendCap, SpendGuard};

/// The `evaluator` label of the LLM judge (plugins use their configured names).
pub const JUDGE_EVALUATOR: &str = "judge";

/// Completion tokens reserved per judge call when the config sets no `max_tokens`.
pub const DEFAULT_COMPLETION_ESTIMATE: u64 = 1_024;

/// The `source` label of the LLM safety judge's flags in `llmwatch_safety_flags_total` (the
/// pattern monitor's are `input` and `output`).
pub const SAFETY_JUDGE_SOURCE: &str = "judge";

/// The evaluation event label and review score label of a safety verdict.
pub const FLAGGED_LABEL: &str = "flagged";
pub const NOT_FLAGGED_LABEL: &str = "not_flagged";

/// The LLM judge with its hourly budget, and the safety judge's categories: both kinds of
/// request share the client, the budget and the prices.
#[derive(Debug)]
pub struct LlmJudge {
    judge: Judge,
    guard: Option<Mutex<SpendGuard>>,
    /// The judge model's prices when it is in the catalog.
    prices: Option<Prices>,
    completion_estimate: u64,
    /// What the safety judge asks about; empty: no safety judge.
    safety: Vec<SafetyCategory>,
}

/// What a request billed, whichever kind of verdict it returned.
trait Billed {
    fn usage(&self) -> Usage;
}

impl Billed for Verdict {
    fn usage(&self) -> Usage {
        self.usage
    }
}

impl Billed for SafetyVerdict {
    fn usage(&self) -> Usage {
        self.usage
    }
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
            safety: Vec::new(),
        }
    }

    /// The safety judge's categories: sampled calls marked `safety_judge` are asked about them
    /// (an empty list turns the safety judge off).
    pub fn with_safety(mut self, categories: Vec<SafetyCategory>) -> LlmJudge {
        self.safety = categories;
        self
    }

    pub fn safety_categories(&self) -> &[SafetyCategory] {
        &self.safety
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

/// One score from one evaluator, on 0..1, or one safety verdict.
#[derive(Debug, Clone, PartialEq)]
struct Scored {
    /// A safety judge verdict: `name` is the category, `flagged` the verdict, `explanation` the
    /// reason; counted as a safety flag, not as an evaluation score.
    safety: bool,
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

    /// Runs every evaluator the call was chosen for and records the results.
    pub async fn evaluate(&self, call: SampledCall) {
        let judged = async {
            if call.quality {
                self.run_judge(&call).await
            } else {
                Vec::new()
            }
        };
        let plugged = futures_util::future::join_all(
            self.plugins
                .iter()
                .filter(|_| call.quality)
                .map(|plugin| self.run_plugin(plugin, &call)),
        );
        let safety = async {
            if call.safety_judge {
                self.run_safety(&call).await
            } else {
                Vec::new()
            }
        };
        let (mut scores, plugin_scores, verdicts) = tokio::join!(judged, plugged, safety);
        scores.extend(plugin_scores.into_iter().flatten());
        scores.extend(verdicts);
        self.record(&call, &scores);
    }

    /// Sends one judge request (`send`) under the hourly cap: reserves the estimate of
    /// `prompt_tokens` plus the completion estimate first, settles with what was billed, and
    /// counts the outcome, tokens and cost under `evaluator`. `None` when the cap refused it
    /// (counted as `spend_cap`; nothing was sent).
    async fn billed<T: Billed>(
        &self,
        llm: &LlmJudge,
        evaluator: &str,
        prompt_tokens: u64,
        send: impl std::future::Future<Output = Result<T, JudgeError>>,
    ) -> Option<Result<T, JudgeError>> {
        let metrics = self.processor.quality().metrics();
        let reservation = match &llm.guard {
            None => None,
            Some(guard) => {
                let estimate = Usage {
                    prompt_tokens,
                    completion_tokens: llm.completion_estimate,
                    cached_tokens: 0,
                };
                let mut guard = guard.lock().expect("spend guard");
                let amount = llm.spend(guard.cap(), &estimate);
                match guard.try_reserve(Instant::now(), amount) {
                    Some(reservation) => Some(reservation),
                    None => {
                        metrics.judge_requests.add(&[evaluator, "spend_cap"], 1.0);
                        return None;
                    }
                }
            }
        };
        let result = send.await;
        let (usage, outcome) = match &result {
            Ok(verdict) => (verdict.usage(), Outcome::Ok),
            Err(error) => (error.usage(), error.outcome()),
        };
        if let (Some(guard), Some(reservation)) = (&llm.guard, reservation) {
            let mut guard = guard.lock().expect("spend guard");
            let actual = llm.spend(guard.cap(), &usage);
            guard.record(Instant::now(), reservation, actual);
        }
        metrics
            .judge_requests
            .add(&[evaluator, outcome.as_str()], 1.0);
        metrics
            .judge_tokens
            .add(&[evaluator, "input"], usage.prompt_tokens as f64);
        metrics
            .judge_tokens
            .add(&[evaluator, "output"], usage.completion_tokens as f64);
        if let Some(usd) = llm.usd(&usage) {
            metrics.judge_cost.add(&[evaluator], usd);
        }
        Some(result)
    }

    fn request(call: &SampledCall) -> JudgeRequest {
        JudgeRequest {
            prompt: call.input.clone().unwrap_or_default(),
            response: call.output.clone().unwrap_or_default(),
            context: None,
            system_instructions: call.system_instructions.clone(),
        }
    }

    async fn run_judge(&self, call: &SampledCall) -> Vec<Scored> {
        let Some(llm) = &self.judge else {
            return Vec::new();
        };
        let request = Self::request(call);
        let prompt_tokens = llm.judge.estimate_prompt_tokens(&request);
        let result = self
            .billed(
                llm,
                JUDGE_EVALUATOR,
                prompt_tokens,
                llm.judge.evaluate(&request),
            )
            .await;
        let verdict = match result {
            None => return Vec::new(),
            Some(Ok(verdict)) => verdict,
            Some(Err(JudgeError::NoApplicableDimension)) => return Vec::new(),
            Some(Err(error)) => {
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
                    safety: false,
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

    /// The LLM safety judge on one call: one verdict per category, or nothing when the request
    /// failed (a parse failure included: it is counted, never turned into a verdict).
    async fn run_safety(&self, call: &SampledCall) -> Vec<Scored> {
        let Some(llm) = self.judge.as_ref().filter(|j| !j.safety.is_empty()) else {
            return Vec::new();
        };
        let request = Self::request(call);
        let prompt_tokens = llm
            .judge
            .estimate_safety_prompt_tokens(&llm.safety, &request);
        let result = self
            .billed(
                llm,
                SAFETY_EVALUATOR,
                prompt_tokens,
                llm.judge.evaluate_safety(&llm.safety, &request),
            )
            .await;
        let verdict = match result {
            None => return Vec::new(),
            Some(Ok(verdict)) => verdict,
            Some(Err(error)) => {
                tracing::debug!(%error, "safety judge gave no verdict");
                return Vec::new();
            }
        };
        verdict
            .categories
            .into_iter()
            .map(|c| Scored {
                safety: true,
                evaluator: SAFETY_EVALUATOR.to_owned(),
                source: EvaluationSource::Judge,
                label: Some(
                    if c.flagged {
                        FLAGGED_LABEL
                    } else {
                        NOT_FLAGGED_LABEL
                    }
                    .to_owned(),
                ),
                name: c.name,
                value: None,
                explanation: Some(c.reason),
                flagged: c.flagged,
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
                safety: false,
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
        let metrics = self.processor.quality().metrics();
        for score in scores {
            if score.safety {
                // A safety verdict is a safety flag (beside the pattern monitor's), not a score:
                // it stays out of the score histograms, their flagged counts and SPC charts.
                if score.flagged {
                    metrics.safety_flags.add(
                        &[
                            &call.service_name,
                            &call.request_model,
                            &score.name,
                            SAFETY_JUDGE_SOURCE,
                        ],
                        1.0,
                    );
                }
            } else {
                self.processor.record_evaluation(&EvaluationRecord {
                    service_name: &call.service_name,
                    request_model: &call.request_model,
                    name: &score.name,
                    score: score.value,
                    source: score.source,
                    flagged: score.flagged,
                });
            }
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
                if s.safety {
                    let why = s.explanation.as_deref().unwrap_or_default();
                    return format!("safety judge: {}: {why}", s.name);
                }
                let value = s.value.map_or(String::new(), |v| format!(" = {v:.3}"));
                match &s.explanation {
                    Some(why) => format!("{} ({}){value}: {why}", s.name, s.evaluator),
                    None => format!("{} ({}){value}", s.name, s.evaluator),
                }
            })
            .collect();
        reasons.extend(call.safety_flags.iter().map(|f| format!("safety: {f}")));
        // Every safety category raised on the call, by the patterns or the safety judge, so a
        // reader filtering on `safety_flags` sees both.
        let mut safety_flags = call.safety_flags.clone();
        for s in scores.iter().filter(|s| s.safety && s.flagged) {
            if !safety_flags.contains(&s.name) {
                safety_flags.push(s.name.clone());
            }
        }
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
            safety_flags,
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
