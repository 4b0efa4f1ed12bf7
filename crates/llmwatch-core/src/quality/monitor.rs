//! The processor's quality stage: per call it scans captured content for safety patterns and
//! decides whether the call is judged; per evaluation (from the judge, a plugin, another tool or
//! a user) it records the score. Slow work happens elsewhere: sampled calls are handed to a
//! [`QualitySink`] that never waits (the judge queue), and results come back through
//! [`QualityMonitor::record_evaluation`].

use std::fmt;
use std::sync::OnceLock;
use std::time::Instant;

use llmwatch_semconv::{CallContentEvent, LlmCall};

use crate::catalog::names;
use crate::labeled::LabeledFamily;
use crate::quality::feedback::{CallBatch, FeedbackConfig, SessionConfig, UserSignals};
use crate::quality::pending::{ContentText, PendingConfig, PendingContent, Released};
use crate::quality::review::{ReviewConfig, ReviewEntry, ReviewLog, ReviewScore, hex};
use crate::quality::safety::{SafetyConfig, SafetyConfigError, SafetyMonitor};
use crate::quality::sampler::{SafetySampling, Sampler, SamplingConfig, SamplingConfigError};
use crate::snapshot::FamilySnapshot;

/// Label sets each quality metric may hold before folding into its overflow series.
pub const DEFAULT_MAX_LABEL_SETS: usize = 2000;

/// What the quality stage does, from configuration.
#[derive(Debug, Clone)]
pub struct QualityConfig {
    /// Which calls are judged; a default rate of 0 and no rules turns sampling off.
    pub sampling: SamplingConfig,
    /// The safety pattern monitor; `None` turns it off.
    pub safety: Option<SafetyConfig>,
    /// Which calls the LLM safety judge sees; `None` turns it off. Independent of `sampling`:
    /// a call can be chosen by either or both, and is queued once.
    pub safety_judge: Option<SafetySampling>,
    /// Label sets per quality metric.
    pub max_label_sets: usize,
    /// Scores from other tools and users on a 0..1 scale below this flag their call.
    pub flag_below: f64,
    /// Explicit user feedback: reading, matching to calls, ratios.
    pub feedback: FeedbackConfig,
    /// Implicit signals from sessions.
    pub sessions: SessionConfig,
    /// Joining sampled spans with content that arrives as log events.
    pub pending: PendingConfig,
    /// The review queue of flagged calls.
    pub review: ReviewConfig,
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig {
            sampling: SamplingConfig::uniform(0.0),
            safety: Some(SafetyConfig::defaults()),
            safety_judge: None,
            max_label_sets: DEFAULT_MAX_LABEL_SETS,
            flag_below: 0.5,
            feedback: FeedbackConfig::default(),
            sessions: SessionConfig::default(),
            pending: PendingConfig::default(),
            review: ReviewConfig::default(),
        }
    }
}

#[derive(Debug)]
pub enum QualityConfigError {
    Sampling(SamplingConfigError),
    Safety(SafetyConfigError),
    /// A rate of the safety judge is not in [0, 1].
    SafetyJudge(SamplingConfigError),
}

impl fmt::Display for QualityConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QualityConfigError::Sampling(e) => write!(f, "sampling: {e}"),
            QualityConfigError::Safety(e) => write!(f, "safety: {e}"),
            QualityConfigError::SafetyJudge(e) => write!(f, "safety judge: {e}"),
        }
    }
}

impl std::error::Error for QualityConfigError {}

/// Who produced an evaluation: the `source` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvaluationSource {
    /// llmwatch's LLM judge.
    Judge,
    /// A `gen_ai.evaluation.result` event from another tool.
    External,
    /// An evaluator plugin llmwatch called.
    Plugin,
    /// The application's user (explicit feedback).
    User,
}

impl EvaluationSource {
    pub const fn as_str(self) -> &'static str {
        match self {
            EvaluationSource::Judge => "judge",
            EvaluationSource::External => "external",
            EvaluationSource::Plugin => "plugin",
            EvaluationSource::User => "user",
        }
    }
}

/// One evaluation result, whatever produced it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvaluationRecord<'a> {
    pub service_name: &'a str,
    /// Empty when the evaluated call is unknown.
    pub request_model: &'a str,
    pub name: &'a str,
    pub score: Option<f64>,
    pub source: EvaluationSource,
    /// The evaluation marks its call for review.
    pub flagged: bool,
}

/// A call chosen for judging, owned so it can cross into the asynchronous judge.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampledCall {
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    pub end_unix_nano: u64,
    pub service_name: String,
    pub operation: String,
    pub provider: String,
    pub request_model: String,
    pub response_model: String,
    pub response_id: Option<String>,
    pub conversation_id: Option<String>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub system_instructions: Option<String>,
    /// Safety categories the pattern monitor raised on this call.
    pub safety_flags: Vec<String>,
    /// The quality sampler chose the call: the judge's rubric and the evaluator plugins run.
    pub quality: bool,
    /// The safety judge's sampler chose the call: the LLM safety judge runs.
    pub safety_judge: bool,
    /// The quality sampler's rate for this call (the adjusted count is its inverse); 0 when
    /// quality sampling is off.
    pub rate: f64,
    /// The safety judge's rate for this call; 0 when the safety judge is off.
    pub safety_rate: f64,
}

/// Where the quality stage hands work that must not run on the ingest path. Implementations
/// never wait: a full queue drops the call.
pub trait QualitySink: Send + Sync + fmt::Debug {
    /// Queues a sampled call for the evaluators; false when the queue is full (dropped).
    fn offer(&self, call: SampledCall) -> bool;
    /// Sampled calls waiting.
    fn depth(&self) -> usize;
    /// Most sampled calls that may wait.
    fn capacity(&self) -> usize;
}

/// The quality metrics, one bounded family each; other stages (the judge worker, canaries,
/// feedback) record into them too.
#[derive(Debug)]
pub struct QualityMetrics {
    pub evaluation_score: LabeledFamily,
    pub evaluations_flagged: LabeledFamily,
    pub judge_sampled_calls: LabeledFamily,
    pub judge_requests: LabeledFamily,
    pub judge_cost: LabeledFamily,
    pub judge_tokens: LabeledFamily,
    pub evaluation_events_exported: LabeledFamily,
    pub safety_flags: LabeledFamily,
    pub safety_scanned_calls: LabeledFamily,
    pub canary_passing: LabeledFamily,
    pub canary_runs: LabeledFamily,
    pub canary_latency: LabeledFamily,
    pub canary_last_success: LabeledFamily,
    pub embedding_requests: LabeledFamily,
    pub embedding_texts: LabeledFamily,
}

impl QualityMetrics {
    pub fn new(max_label_sets: usize) -> QualityMetrics {
        let family = |name| LabeledFamily::new(name, max_label_sets);
        QualityMetrics {
            evaluation_score: family(names::EVALUATION_SCORE),
            evaluations_flagged: family(names::EVALUATIONS_FLAGGED),
            judge_sampled_calls: family(names::JUDGE_SAMPLED_CALLS),
            judge_requests: family(names::JUDGE_REQUESTS),
            judge_cost: family(names::JUDGE_COST),
            judge_tokens: family(names::JUDGE_TOKENS),
            evaluation_events_exported: family(names::EVALUATION_EVENTS_EXPORTED),
            safety_flags: family(names::SAFETY_FLAGS),
            safety_scanned_calls: family(names::SAFETY_SCANNED_CALLS),
            canary_passing: family(names::CANARY_PASSING),
            canary_runs: family(names::CANARY_RUNS),
            canary_latency: family(names::CANARY_LATENCY),
            canary_last_success: family(names::CANARY_LAST_SUCCESS),
            embedding_requests: family(names::EMBEDDING_REQUESTS),
            embedding_texts: family(names::EMBEDDING_TEXTS),
        }
    }

    fn all(&self) -> [&LabeledFamily; 15] {
        [
            &self.evaluation_score,
            &self.evaluations_flagged,
            &self.judge_sampled_calls,
            &self.judge_requests,
            &self.judge_cost,
            &self.judge_tokens,
            &self.evaluation_events_exported,
            &self.safety_flags,
            &self.safety_scanned_calls,
            &self.canary_passing,
            &self.canary_runs,
            &self.canary_latency,
            &self.canary_last_success,
            &self.embedding_requests,
            &self.embedding_texts,
        ]
    }
}

/// What the quality stage saw of one call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallQuality {
    /// Safety categories raised (input or output).
    pub safety_flags: Vec<String>,
    /// Chosen for quality judging (whether or not it could be queued).
    pub sampled: bool,
    /// Chosen for the LLM safety judge (whether or not it could be queued).
    pub safety_judged: bool,
}

/// The quality stage of the processor.
#[derive(Debug)]
pub struct QualityMonitor {
    config: QualityConfig,
    sampler: Option<Sampler>,
    /// The safety judge's sampler ([`SafetySampling::sampling_config`]).
    safety_sampler: Option<Sampler>,
    safety: Option<SafetyMonitor>,
    sink: OnceLock<Box<dyn QualitySink>>,
    metrics: QualityMetrics,
    /// User feedback and session signals.
    signals: UserSignals,
    /// Sampled spans waiting for content events, and content waiting for its span.
    pending: Option<PendingContent>,
    review: ReviewLog,
    /// The pending buffer's clock.
    started: Instant,
}

impl QualityMonitor {
    pub fn new(config: QualityConfig) -> Result<QualityMonitor, QualityConfigError> {
        let sampling_on = config.sampling.default_rate > 0.0 || !config.sampling.rules.is_empty();
        let sampler = if sampling_on {
            Some(Sampler::new(config.sampling.clone()).map_err(QualityConfigError::Sampling)?)
        } else {
            None
        };
        let safety_sampler = match &config.safety_judge {
            Some(rates) => Some(
                Sampler::new(rates.sampling_config()).map_err(QualityConfigError::SafetyJudge)?,
            ),
            None => None,
        };
        let safety = match &config.safety {
            Some(safety) => Some(SafetyMonitor::new(safety).map_err(QualityConfigError::Safety)?),
            None => None,
        };
        let max_rate = config
            .sampling
            .rules
            .iter()
            .map(|r| r.rate)
            .chain(config.safety_judge.map(|s| s.max_rate()))
            .fold(config.sampling.default_rate, f64::max);
        let pending = ((sampler.is_some() || safety_sampler.is_some())
            && config.pending.max_entries > 0)
            .then(|| PendingContent::new(config.pending.clone(), max_rate));
        Ok(QualityMonitor {
            metrics: QualityMetrics::new(config.max_label_sets),
            signals: UserSignals::new(
                config.feedback.clone(),
                config.sessions.clone(),
                config.max_label_sets,
            ),
            review: ReviewLog::new(config.review.clone()),
            config,
            sampler,
            safety_sampler,
            safety,
            sink: OnceLock::new(),
            pending,
            started: Instant::now(),
        })
    }

    pub fn config(&self) -> &QualityConfig {
        &self.config
    }

    pub fn metrics(&self) -> &QualityMetrics {
        &self.metrics
    }

    /// The review queue of flagged calls.
    pub fn review(&self) -> &ReviewLog {
        &self.review
    }

    /// Connects the judge queue; set once at start. Until then sampled calls count as
    /// `queue_full` (nothing can take them).
    pub fn set_sink(&self, sink: Box<dyn QualitySink>) -> Result<(), Box<dyn QualitySink>> {
        self.sink.set(sink)
    }

    /// Safety scan and sampling decision for one call. Content is turned into text only when the
    /// app captured it and a stage needs it.
    pub fn observe_call(&self, call: &LlmCall<'_>) -> CallQuality {
        self.observe_call_at(call, crate::processor::unix_now_seconds().max(0) as u64)
    }

    /// [`Self::observe_call`] at `now` (Unix seconds), the clock of the feedback and session
    /// windows.
    pub fn observe_call_at(&self, call: &LlmCall<'_>, now: u64) -> CallQuality {
        let mut batch = CallBatch::default();
        let outcome = self.observe_call_batched(call, now, &mut batch);
        self.signals.flush(batch, now);
        outcome
    }

    /// [`Self::observe_call_at`] for one call of an export request: what the feedback index
    /// keeps of it goes to `batch`, flushed once for the request ([`UserSignals::flush`]).
    pub fn observe_call_batched<'a>(
        &self,
        call: &LlmCall<'a>,
        now: u64,
        batch: &mut CallBatch<'a>,
    ) -> CallQuality {
        let mut outcome = CallQuality::default();
        let (has_input, has_output) = (call.content.input.is_some(), call.content.output.is_some());
        if !has_input && !has_output && self.sampler.is_none() && self.safety_sampler.is_none() {
            self.signals.observe_batched(call, None, None, now, batch);
            return outcome;
        }
        // One parse of the input gives its text and its last user message (for sessions).
        let (input, user_text) = match call.content.input {
            Some(content) => {
                let (text, user) = content.text_and_last_user_text();
                (Some(text), user)
            }
            None => (None, None),
        };
        let output = call.content.output.map(|c| c.to_text());
        self.signals
            .observe_batched(call, input.as_deref(), user_text.as_deref(), now, batch);
        if let Some(safety) = &self.safety
            && (has_input || has_output)
        {
            let model = call.request_model;
            self.metrics
                .safety_scanned_calls
                .add(&[call.service_name, model], 1.0);
            for flag in safety.scan(input.as_deref(), output.as_deref()) {
                self.metrics.safety_flags.add(
                    &[
                        call.service_name,
                        model,
                        flag.category,
                        flag.source.as_str(),
                    ],
                    1.0,
                );
                if !outcome.safety_flags.iter().any(|c| c == flag.category) {
                    outcome.safety_flags.push(flag.category.to_owned());
                }
            }
        }
        // Each sampler decides on its own; a call either chose is queued once, marked with what
        // to run on it.
        let flagged = !outcome.safety_flags.is_empty();
        let quality = self.sampler.as_ref().map(|s| s.decide(call, flagged));
        let safety = self
            .safety_sampler
            .as_ref()
            .map(|s| s.decide(call, flagged));
        outcome.sampled = quality.is_some_and(|d| d.sampled);
        outcome.safety_judged = safety.is_some_and(|d| d.sampled);
        if !outcome.sampled && !outcome.safety_judged {
            if let Some(pending) = &self.pending {
                pending.discard(call.trace_id, call.span_id);
            }
            self.review_safety(call, &outcome.safety_flags, input, output);
            return outcome;
        }
        let sampled = SampledCall {
            trace_id: call.trace_id.to_vec(),
            span_id: call.span_id.to_vec(),
            end_unix_nano: call.end_unix_nano,
            service_name: call.service_name.to_owned(),
            operation: call.operation.to_owned(),
            provider: call.provider.to_owned(),
            request_model: call.request_model.to_owned(),
            response_model: call.response_model.to_owned(),
            response_id: call.response_id.map(str::to_owned),
            conversation_id: call.conversation_id.map(str::to_owned),
            input,
            output,
            system_instructions: call.content.system_instructions.map(|c| c.to_text()),
            safety_flags: outcome.safety_flags.clone(),
            quality: outcome.sampled,
            safety_judge: outcome.safety_judged,
            rate: quality.map_or(0.0, |d| d.rate),
            safety_rate: safety.map_or(0.0, |d| d.rate),
        };
        match &self.pending {
            // The output may come as a log event: wait for it.
            Some(pending) if sampled.output.is_none() => {
                let released = pending.hold(sampled, self.millis());
                self.settle(released);
            }
            _ => self.offer(sampled),
        }
        outcome
    }

    /// Queues a sampled call (or counts why not). A safety-flagged call that cannot be judged
    /// goes to the review queue as it is.
    fn offer(&self, call: SampledCall) {
        let service = call.service_name.clone();
        let result = if call.output.is_none() {
            self.review_sampled(&call);
            "no_content"
        } else if call.safety_flags.is_empty() {
            match self.sink.get().map(|sink| sink.offer(call)) {
                Some(true) => "queued",
                Some(false) | None => "queue_full",
            }
        } else {
            // The judge's entry carries the safety flags; keep a copy for when it is dropped.
            let copy = call.clone();
            match self.sink.get().map(|sink| sink.offer(call)) {
                Some(true) => "queued",
                Some(false) | None => {
                    self.review_sampled(&copy);
                    "queue_full"
                }
            }
        };
        self.metrics
            .judge_sampled_calls
            .add(&[service.as_str(), result], 1.0);
    }

    fn settle(&self, released: Released) {
        for call in released.ready {
            self.offer(call);
        }
        for service in released.without_content {
            self.metrics
                .judge_sampled_calls
                .add(&[service.as_str(), "no_content"], 1.0);
        }
    }

    fn millis(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Content from a message or choice event: kept (bounded) until its sampled span joins it.
    pub fn observe_content(&self, event: &CallContentEvent<'_>) {
        let Some(pending) = &self.pending else {
            return;
        };
        if !pending.could_sample(event.trace_id) {
            return;
        }
        let content = ContentText {
            input: event.content.input.map(|c| c.to_text()),
            output: event.content.output.map(|c| c.to_text()),
            system_instructions: event.content.system_instructions.map(|c| c.to_text()),
        };
        pending.add_content(event.trace_id, event.span_id, content, self.millis());
    }

    /// Queues the sampled calls whose content events have all arrived (call once per export
    /// request, after its records) and expires what waited too long.
    pub fn release_pending(&self) {
        if let Some(pending) = &self.pending {
            self.settle(pending.release(self.millis()));
        }
    }

    fn review_safety(
        &self,
        call: &LlmCall<'_>,
        flags: &[String],
        input: Option<String>,
        output: Option<String>,
    ) {
        if flags.is_empty() || !self.review.enabled() {
            return;
        }
        self.review.push(ReviewEntry {
            flagged_unix_nano: call.end_unix_nano,
            trace_id: hex(call.trace_id),
            span_id: hex(call.span_id),
            service_name: call.service_name.to_owned(),
            request_model: call.request_model.to_owned(),
            response_id: call.response_id.map(str::to_owned),
            scores: Vec::new(),
            reasons: flags.iter().map(|f| format!("safety: {f}")).collect(),
            safety_flags: flags.to_vec(),
            input: self.review.content(input.as_deref()),
            output: self.review.content(output.as_deref()),
        });
    }

    fn review_sampled(&self, call: &SampledCall) {
        if call.safety_flags.is_empty() || !self.review.enabled() {
            return;
        }
        self.review.push(ReviewEntry {
            flagged_unix_nano: call.end_unix_nano,
            trace_id: hex(&call.trace_id),
            span_id: hex(&call.span_id),
            service_name: call.service_name.clone(),
            request_model: call.request_model.clone(),
            response_id: call.response_id.clone(),
            scores: Vec::new(),
            reasons: call
                .safety_flags
                .iter()
                .map(|f| format!("safety: {f}"))
                .collect(),
            safety_flags: call.safety_flags.clone(),
            input: self.review.content(call.input.as_deref()),
            output: self.review.content(call.output.as_deref()),
        });
    }

    /// Puts a flagged evaluation from another tool or a user in the review queue.
    pub fn review_external(
        &self,
        trace_id: &[u8],
        span_id: &[u8],
        service_name: &str,
        score: ReviewScore,
        explanation: Option<&str>,
        response_id: Option<&str>,
    ) {
        if !self.review.enabled() {
            return;
        }
        let reason = match (score.value, explanation) {
            (Some(v), Some(why)) => format!("{} = {v}: {why}", score.name),
            (Some(v), None) => format!("{} = {v}", score.name),
            (None, Some(why)) => format!("{}: {why}", score.name),
            (None, None) => score.name.clone(),
        };
        self.review.push(ReviewEntry {
            flagged_unix_nano: crate::processor::unix_now_seconds().max(0) as u64 * 1_000_000_000,
            trace_id: hex(trace_id),
            span_id: hex(span_id),
            service_name: service_name.to_owned(),
            request_model: String::new(),
            response_id: response_id.map(str::to_owned),
            scores: vec![score],
            reasons: vec![reason],
            safety_flags: Vec::new(),
            input: None,
            output: None,
        });
    }

    /// Records one evaluation result.
    pub fn record_evaluation(&self, record: &EvaluationRecord<'_>) {
        let labels = [
            record.service_name,
            record.request_model,
            record.name,
            record.source.as_str(),
        ];
        if let Some(score) = record.score.filter(|s| s.is_finite()) {
            self.metrics.evaluation_score.observe(&labels, score);
        }
        if record.flagged {
            self.metrics.evaluations_flagged.add(&labels, 1.0);
        }
    }

    /// Whether a score reported by another tool or a user flags its call: on a 0..1 scale,
    /// below the configured floor.
    pub fn flags_external_score(&self, score: f64) -> bool {
        (0.0..=1.0).contains(&score) && score < self.config.flag_below
    }

    /// User feedback and session signals.
    pub fn signals(&self) -> &UserSignals {
        &self.signals
    }

    /// Ends the sessions inactive past the timeout (called on an interval).
    pub fn sweep(&self, now: u64) {
        self.signals.sweep(now);
    }

    pub fn snapshot(&self, families: &mut Vec<FamilySnapshot>) {
        self.snapshot_at(families, crate::processor::unix_now_seconds().max(0) as u64);
    }

    /// Every quality metric, the feedback and session ratios over the window ending at `now`.
    pub fn snapshot_at(&self, families: &mut Vec<FamilySnapshot>, now: u64) {
        let all = self.metrics.all();
        for family in all {
            family.snapshot_into(families);
        }
        self.signals.snapshot(families, now);
        let mut depth = FamilySnapshot::new(crate::catalog::def(names::JUDGE_QUEUE_DEPTH));
        let mut capacity = FamilySnapshot::new(crate::catalog::def(names::JUDGE_QUEUE_CAPACITY));
        let (now, most) = self
            .sink
            .get()
            .map_or((0, 0), |sink| (sink.depth(), sink.capacity()));
        depth.push_scalar(Vec::new(), now as f64);
        capacity.push_scalar(Vec::new(), most as f64);
        families.push(depth);
        families.push(capacity);
        let mut review = FamilySnapshot::new(crate::catalog::def(names::REVIEW_QUEUE_ENTRIES));
        review.push_scalar(Vec::new(), self.review.len() as f64);
        families.push(review);
        let mut overflow = FamilySnapshot::new(crate::catalog::def(names::QUALITY_OVERFLOW));
        for family in all.into_iter().chain(self.signals.families()) {
            overflow.push_scalar(
                vec![("metric".to_owned(), family.def().name.to_owned())],
                family.overflowed() as f64,
            );
        }
        for (metric, dropped) in self.signals.window_overflow() {
            overflow.push_scalar(
                vec![("metric".to_owned(), metric.to_owned())],
                dropped as f64,
            );
        }
        families.push(overflow);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::snapshot::{SampleValue, family};
    use llmwatch_semconv::{CapturedContent, ContentRef};
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value};

    /// A queue of fixed capacity that keeps what it accepts.
    #[derive(Debug)]
    struct Queue {
        capacity: usize,
        calls: Mutex<Vec<SampledCall>>,
    }

    impl QualitySink for std::sync::Arc<Queue> {
        fn offer(&self, call: SampledCall) -> bool {
            let mut calls = self.calls.lock().unwrap();
            if calls.len() >= self.capacity {
                return false;
            }
            calls.push(call);
            true
        }
        fn depth(&self) -> usize {
            self.calls.lock().unwrap().len()
        }
        fn capacity(&self) -> usize {
            self.capacity
        }
    }

    fn text(s: &str) -> AnyValue {
        AnyValue {
            value: Some(Value::StringValue(s.into())),
        }
    }

    fn call<'a>(
        trace_id: &'a [u8],
        input: Option<&'a AnyValue>,
        output: Option<&'a AnyValue>,
    ) -> LlmCall<'a> {
        LlmCall {
            trace_id,
            span_id: &[1; 8],
            start_unix_nano: 0,
            end_unix_nano: 1,
            operation: "chat",
            provider: "openai",
            request_model: "gpt-4o",
            response_model: "gpt-4o-2024-08-06",
            response_id: None,
            system_fingerprint: None,
            streaming: None,
            usage: Default::default(),
            finish_reasons: Default::default(),
            duration_seconds: 1.0,
            time_to_first_token_seconds: None,
            error_type: None,
            service_name: "svc",
            environment: None,
            conversation_id: None,
            user_id: None,
            output_type: None,
            reported_cost_usd: None,
            dimensions: Default::default(),
            content: CapturedContent {
                input: input.map(ContentRef::Value),
                output: output.map(ContentRef::Value),
                system_instructions: None,
            },
            embedding_vector: None,
            sampling: Default::default(),
        }
    }

    fn counter(families: &[FamilySnapshot], name: &str, labels: &[(&str, &str)]) -> f64 {
        family(families, name)
            .unwrap()
            .samples
            .iter()
            .filter(|s| {
                labels
                    .iter()
                    .all(|(n, v)| s.labels.iter().any(|(ln, lv)| ln == n && lv == v))
            })
            .map(|s| match s.value {
                SampleValue::Counter(v) | SampleValue::Gauge(v) => v,
                SampleValue::Histogram(_) => panic!("{name} is a histogram"),
            })
            .sum()
    }

    /// Trace ids whose last seven bytes are R = `r` << 48.
    fn trace_id(r: u8) -> [u8; 16] {
        let mut id = [0u8; 16];
        id[9] = r;
        id
    }

    #[test]
    fn sampled_calls_are_queued_skipped_without_content_or_dropped_when_full() {
        let monitor = QualityMonitor::new(QualityConfig {
            sampling: SamplingConfig::uniform(0.5),
            // No join buffer: a call without output is counted at once.
            pending: PendingConfig {
                max_entries: 0,
                ..PendingConfig::default()
            },
            ..QualityConfig::default()
        })
        .unwrap();
        let queue = std::sync::Arc::new(Queue {
            capacity: 2,
            calls: Mutex::new(Vec::new()),
        });
        monitor.set_sink(Box::new(queue.clone())).unwrap();
        let (question, answer) = (text("What is 2+2?"), text("4"));
        // R ≥ 2^55 (top bit of the 56) is sampled at rate 0.5.
        let ids = [
            trace_id(0x80),
            trace_id(0x7f),
            trace_id(0xff),
            trace_id(0x90),
        ];
        assert!(
            monitor
                .observe_call(&call(&ids[0], Some(&question), Some(&answer)))
                .sampled
        );
        assert!(
            !monitor
                .observe_call(&call(&ids[1], Some(&question), Some(&answer)))
                .sampled
        );
        assert!(
            monitor
                .observe_call(&call(&ids[2], Some(&question), None))
                .sampled
        );
        monitor.observe_call(&call(&ids[3], Some(&question), Some(&answer)));
        monitor.observe_call(&call(&ids[0], Some(&question), Some(&answer)));
        let mut families = Vec::new();
        monitor.snapshot(&mut families);
        let sampled = |result| {
            counter(
                &families,
                names::JUDGE_SAMPLED_CALLS,
                &[("service_name", "svc"), ("result", result)],
            )
        };
        assert_eq!(sampled("queued"), 2.0);
        assert_eq!(sampled("no_content"), 1.0);
        assert_eq!(sampled("queue_full"), 1.0);
        let queued = queue.calls.lock().unwrap();
        assert_eq!(queued[0].trace_id, ids[0]);
        assert_eq!(queued[0].output.as_deref(), Some("4"));
        assert_eq!(queued[1].trace_id, ids[3]);
        assert_eq!(counter(&families, names::JUDGE_QUEUE_DEPTH, &[]), 2.0);
        assert_eq!(counter(&families, names::JUDGE_QUEUE_CAPACITY, &[]), 2.0);
    }

    #[test]
    fn content_from_log_events_joins_its_sampled_span_in_either_order() {
        use llmwatch_semconv::CallContentEvent;
        let monitor = QualityMonitor::new(QualityConfig {
            sampling: SamplingConfig::uniform(0.5),
            ..QualityConfig::default()
        })
        .unwrap();
        let queue = std::sync::Arc::new(Queue {
            capacity: 8,
            calls: Mutex::new(Vec::new()),
        });
        monitor.set_sink(Box::new(queue.clone())).unwrap();
        let (question, answer) = (text("What is 2+2?"), text("4"));
        let event = |trace_id: &'static [u8], input, output| CallContentEvent {
            trace_id,
            span_id: &[1; 8],
            event_name: "gen_ai.choice",
            finish_reasons: Default::default(),
            content: CapturedContent {
                input,
                output,
                system_instructions: None,
            },
        };
        static SPAN_FIRST: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0];
        static EVENTS_FIRST: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0];
        static NEVER: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0xa0, 0, 0, 0, 0, 0, 0];
        // The span first (no content on it), then its events in one export request.
        assert!(monitor.observe_call(&call(&SPAN_FIRST, None, None)).sampled);
        assert_eq!(queue.calls.lock().unwrap().len(), 0);
        monitor.observe_content(&event(
            &SPAN_FIRST,
            Some(ContentRef::Value(&question)),
            None,
        ));
        monitor.observe_content(&event(&SPAN_FIRST, None, Some(ContentRef::Value(&answer))));
        monitor.release_pending();
        // The events first, then the span.
        monitor.observe_content(&event(
            &EVENTS_FIRST,
            None,
            Some(ContentRef::Value(&answer)),
        ));
        monitor.release_pending();
        monitor.observe_call(&call(&EVENTS_FIRST, Some(&question), None));
        // A span whose content never comes stays pending (counted when it expires).
        monitor.observe_call(&call(&NEVER, None, None));
        let queued = queue.calls.lock().unwrap().clone();
        assert_eq!(queued.len(), 2);
        assert_eq!(queued[0].trace_id, SPAN_FIRST);
        assert_eq!(queued[0].input.as_deref(), Some("What is 2+2?"));
        assert_eq!(queued[0].output.as_deref(), Some("4"));
        assert_eq!(queued[1].trace_id, EVENTS_FIRST);
        assert_eq!(queued[1].output.as_deref(), Some("4"));
        let mut families = Vec::new();
        monitor.snapshot(&mut families);
        let sampled = |result| {
            counter(
                &families,
                names::JUDGE_SAMPLED_CALLS,
                &[("service_name", "svc"), ("result", result)],
            )
        };
        assert_eq!(sampled("queued"), 2.0);
        assert_eq!(sampled("no_content"), 0.0);
    }

    #[test]
    fn safety_flagged_calls_go_to_the_review_queue_once() {
        let monitor = QualityMonitor::new(QualityConfig {
            sampling: SamplingConfig::uniform(0.5),
            ..QualityConfig::default()
        })
        .unwrap();
        let queue = std::sync::Arc::new(Queue {
            capacity: 8,
            calls: Mutex::new(Vec::new()),
        });
        monitor.set_sink(Box::new(queue.clone())).unwrap();
        let leaky = text("Mail me at jane.doe@example.com");
        let answer = text("Done.");
        // Not sampled: reviewed at once. Sampled and queued: the judge's entry will carry it.
        monitor.observe_call(&call(&trace_id(0x10), Some(&leaky), Some(&answer)));
        monitor.observe_call(&call(&trace_id(0x90), Some(&leaky), Some(&answer)));
        let entries = monitor.review().list(10);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].trace_id, hex(&trace_id(0x10)));
        assert_eq!(entries[0].safety_flags, ["pii_email"]);
        assert_eq!(entries[0].reasons, ["safety: pii_email"]);
        assert_eq!(entries[0].input, None);
        assert_eq!(queue.calls.lock().unwrap()[0].safety_flags, ["pii_email"]);
        let mut families = Vec::new();
        monitor.snapshot(&mut families);
        assert_eq!(counter(&families, names::REVIEW_QUEUE_ENTRIES, &[]), 1.0);
    }

    #[test]
    fn the_safety_judge_sampler_queues_calls_once_marked_with_what_to_run() {
        let monitor = QualityMonitor::new(QualityConfig {
            sampling: SamplingConfig::uniform(0.5),
            safety_judge: Some(SafetySampling {
                rate: 0.25,
                flagged_rate: 1.0,
            }),
            ..QualityConfig::default()
        })
        .unwrap();
        let queue = std::sync::Arc::new(Queue {
            capacity: 8,
            calls: Mutex::new(Vec::new()),
        });
        monitor.set_sink(Box::new(queue.clone())).unwrap();
        let (question, answer) = (text("What is 2+2?"), text("4"));
        let leaky = text("Mail me at jane.doe@example.com");
        // R ≥ 0.75 × 2^56: both; R ≥ 0.5 × 2^56 only: quality; below: neither, unless flagged.
        let both = monitor.observe_call(&call(&trace_id(0xd0), Some(&question), Some(&answer)));
        let quality = monitor.observe_call(&call(&trace_id(0x90), Some(&question), Some(&answer)));
        let neither = monitor.observe_call(&call(&trace_id(0x10), Some(&question), Some(&answer)));
        let flagged = monitor.observe_call(&call(&trace_id(0x10), Some(&leaky), Some(&answer)));
        assert_eq!((both.sampled, both.safety_judged), (true, true));
        assert_eq!((quality.sampled, quality.safety_judged), (true, false));
        assert_eq!((neither.sampled, neither.safety_judged), (false, false));
        assert_eq!((flagged.sampled, flagged.safety_judged), (false, true));
        let queued = queue.calls.lock().unwrap().clone();
        let marks: Vec<(u8, bool, bool, f64, f64)> = queued
            .iter()
            .map(|c| {
                (
                    c.trace_id[9],
                    c.quality,
                    c.safety_judge,
                    c.rate,
                    c.safety_rate,
                )
            })
            .collect();
        assert_eq!(
            marks,
            [
                (0xd0, true, true, 0.5, 0.25),
                (0x90, true, false, 0.5, 0.25),
                (0x10, false, true, 0.5, 1.0),
            ]
        );
        assert_eq!(queued[2].safety_flags, ["pii_email"]);
        // The flagged call is queued, so the judge's review entry will carry its pattern flag.
        assert!(monitor.review().is_empty());
        let mut families = Vec::new();
        monitor.snapshot(&mut families);
        assert_eq!(
            counter(
                &families,
                names::JUDGE_SAMPLED_CALLS,
                &[("service_name", "svc"), ("result", "queued")]
            ),
            3.0
        );
    }

    #[test]
    fn the_safety_judge_alone_waits_for_content_from_log_events() {
        use llmwatch_semconv::CallContentEvent;
        let monitor = QualityMonitor::new(QualityConfig {
            safety_judge: Some(SafetySampling {
                rate: 0.5,
                flagged_rate: 1.0,
            }),
            ..QualityConfig::default()
        })
        .unwrap();
        let queue = std::sync::Arc::new(Queue {
            capacity: 8,
            calls: Mutex::new(Vec::new()),
        });
        monitor.set_sink(Box::new(queue.clone())).unwrap();
        static ID: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0];
        let answer = text("4");
        let outcome = monitor.observe_call(&call(&ID, None, None));
        assert_eq!((outcome.sampled, outcome.safety_judged), (false, true));
        monitor.observe_content(&CallContentEvent {
            trace_id: &ID,
            span_id: &[1; 8],
            event_name: "gen_ai.choice",
            finish_reasons: Default::default(),
            content: CapturedContent {
                input: None,
                output: Some(ContentRef::Value(&answer)),
                system_instructions: None,
            },
        });
        monitor.release_pending();
        let queued = queue.calls.lock().unwrap().clone();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].output.as_deref(), Some("4"));
        assert_eq!((queued[0].quality, queued[0].safety_judge), (false, true));
    }

    #[test]
    fn safety_flags_count_by_category_and_side_and_raise_the_sampling_rule() {
        use crate::quality::sampler::Rule;
        let monitor = QualityMonitor::new(QualityConfig {
            sampling: SamplingConfig {
                default_rate: 0.0,
                rules: vec![Rule {
                    safety_flagged: Some(true),
                    rate: 1.0,
                    ..Rule::default()
                }],
            },
            ..QualityConfig::default()
        })
        .unwrap();
        let leaky = text("Mail me at jane.doe@example.com");
        let refusal = text("I'm sorry, but I can't help with that.");
        let clean = text("Sure.");
        let flagged = monitor.observe_call(&call(&trace_id(1), Some(&leaky), Some(&refusal)));
        assert_eq!(flagged.safety_flags, ["pii_email", "refusal"]);
        assert!(flagged.sampled);
        let clean = monitor.observe_call(&call(&trace_id(1), Some(&clean), Some(&clean)));
        assert!(clean.safety_flags.is_empty() && !clean.sampled);
        let mut families = Vec::new();
        monitor.snapshot(&mut families);
        let flags = |category, source| {
            counter(
                &families,
                names::SAFETY_FLAGS,
                &[("category", category), ("source", source)],
            )
        };
        assert_eq!(flags("pii_email", "input"), 1.0);
        assert_eq!(flags("refusal", "output"), 1.0);
        assert_eq!(flags("pii_email", "output"), 0.0);
        assert_eq!(
            counter(
                &families,
                names::SAFETY_SCANNED_CALLS,
                &[("service_name", "svc")]
            ),
            2.0
        );
        // No sink connected: the sampled call could not be queued.
        assert_eq!(
            counter(
                &families,
                names::JUDGE_SAMPLED_CALLS,
                &[("result", "queue_full")]
            ),
            1.0
        );
    }

    #[test]
    fn evaluations_record_scores_and_flags_by_source() {
        let monitor = QualityMonitor::new(QualityConfig::default()).unwrap();
        for (score, source) in [
            (0.25, EvaluationSource::External),
            (0.75, EvaluationSource::External),
            (1.0, EvaluationSource::Judge),
        ] {
            monitor.record_evaluation(&EvaluationRecord {
                service_name: "svc",
                request_model: "m",
                name: "correctness",
                score: Some(score),
                source,
                flagged: monitor.flags_external_score(score),
            });
        }
        let mut families = Vec::new();
        monitor.snapshot(&mut families);
        let scores = family(&families, names::EVALUATION_SCORE).unwrap();
        let external = scores
            .samples
            .iter()
            .find(|s| s.labels.contains(&("source".into(), "external".into())))
            .unwrap();
        match &external.value {
            SampleValue::Histogram(h) => assert_eq!((h.count, h.sum), (2, 1.0)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            counter(
                &families,
                names::EVALUATIONS_FLAGGED,
                &[("source", "external")]
            ),
            1.0
        );
        assert!(!monitor.flags_external_score(3.0));
    }
}
