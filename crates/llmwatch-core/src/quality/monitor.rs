//! The processor's quality stage: per call it scans captured content for safety patterns and
//! decides whether the call is judged; per evaluation (from the judge, a plugin, another tool or
//! a user) it records the score. Slow work happens elsewhere: sampled calls are handed to a
//! [`QualitySink`] that never waits (the judge queue), and results come back through
//! [`QualityMonitor::record_evaluation`].

use std::fmt;
use std::sync::OnceLock;
use std::time::Instant;

use llmwatch_semconv::{CallContentEvent, ContentRef, LlmCall};

use crate::catalog::names;
use crate::labeled::LabeledFamily;
use crate::quality::feedback::{CallBatch, FeedbackConfig, HeldTurn, SessionConfig, UserSignals};
use crate::quality::pending::{
    ContentText, Joined, PendingConfig, PendingContent, Released, SpanRecord,
};
use crate::quality::review::{ReviewConfig, ReviewEntry, ReviewLog, ReviewScore, hex};
use crate::quality::safety::{SafetyConfig, SafetyConfigError, SafetyMonitor, Source};
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
    /// Joining spans with content that arrives as log events.
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
    /// Queues a sampled call for the evaluators: `None` when queued, the call handed back when
    /// the queue is full.
    fn offer(&self, call: SampledCall) -> Option<SampledCall>;
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
    /// Content events waiting for their span, and spans whose content events may still come.
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
        // The safety monitor and sessions need content of every call; the judges only of the
        // calls they could sample.
        let keep_all = safety.is_some() || config.sessions.enabled;
        let any_sampler = sampler.is_some() || safety_sampler.is_some();
        let pending = (config.pending.max_entries > 0 && (keep_all || any_sampler))
            .then(|| PendingContent::new(config.pending.clone(), max_rate, keep_all));
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
        // Content sent as log events before the span is the span's own from here on; content
        // that comes after it is joined by `observe_content` to the span's record.
        let sender = self.sends_content(call);
        let mut events = self.take_event_content(call, sender);
        let awaits = sender && self.pending.as_ref().is_some_and(PendingContent::keeps_all);
        let (has_input, has_output) = (
            call.content.input.is_some() || events.input.is_some(),
            call.content.output.is_some() || events.output.is_some(),
        );
        if !has_input && !has_output && self.sampler.is_none() && self.safety_sampler.is_none() {
            let turn = self
                .signals
                .observe_batched(call, None, None, awaits, now, batch);
            self.await_content(call, [false, false], awaits, turn, now);
            return outcome;
        }
        // One parse of the input gives its text and, when a session will read it, its last user
        // message.
        let in_session =
            self.config.sessions.enabled && call.conversation_id.is_some_and(|c| !c.is_empty());
        let (input, user_text) = match call.content.input {
            Some(content) if in_session => {
                let (text, user) = content.text_and_last_user_text();
                (Some(text), user)
            }
            Some(content) => (Some(content.to_text()), None),
            None => (events.input.take(), events.user_text.take()),
        };
        let output = call
            .content
            .output
            .map(|c| c.to_text())
            .or(events.output.take());
        let turn = self.signals.observe_batched(
            call,
            input.as_deref(),
            user_text.as_deref(),
            awaits && input.is_none(),
            now,
            batch,
        );
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
        self.await_content(call, [has_input, has_output], awaits, turn, now);
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
            system_instructions: call
                .content
                .system_instructions
                .map(|c| c.to_text())
                .or(events.system_instructions),
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
                self.settle(released, now);
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
        } else {
            let refused = match self.sink.get() {
                Some(sink) => sink.offer(call),
                None => Some(call),
            };
            match refused {
                None => "queued",
                // The judge's review entry would have carried its safety flags.
                Some(call) => {
                    self.review_sampled(&call);
                    "queue_full"
                }
            }
        };
        self.metrics
            .judge_sampled_calls
            .add(&[service.as_str(), result], 1.0);
    }

    /// Handles what left the join buffer; `now` (Unix seconds) is the session clock.
    fn settle(&self, released: Released, now: u64) {
        for joined in released.joined {
            self.join_content(joined, now);
        }
        for call in released.without_content {
            self.review_sampled(&call);
            self.metrics
                .judge_sampled_calls
                .add(&[call.service_name.as_str(), "no_content"], 1.0);
        }
        for turn in released.turns {
            self.signals.resolve_turn(turn, None, None, now);
        }
    }

    fn millis(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Content that came as log events before the span: taken by the span (empty when none).
    /// Only a service that sends content events can have some waiting (its events came first).
    fn take_event_content(&self, call: &LlmCall<'_>, sender: bool) -> ContentText {
        self.pending
            .as_ref()
            .filter(|_| sender)
            .and_then(|p| p.take(call.trace_id, call.span_id))
            .unwrap_or_default()
    }

    /// Whether the call's service sent content events lately: some may wait for this span, or
    /// come after it. Spans of other services never touch the join buffer's lock.
    fn sends_content(&self, call: &LlmCall<'_>) -> bool {
        self.pending.as_ref().is_some_and(|p| {
            p.has_senders()
                && call.operation != "embeddings"
                && call.trace_id.len() == 16
                && call.span_id.len() == 8
                && p.is_sender(call.service_name, self.millis())
        })
    }

    /// Records a span whose content may still come as events (`sender`: its service sends them,
    /// and the safety monitor or sessions want them), with the sides it covered and its held
    /// turn.
    fn await_content(
        &self,
        call: &LlmCall<'_>,
        covered: [bool; 2],
        sender: bool,
        turn: Option<HeldTurn>,
        now: u64,
    ) {
        let Some(pending) = self.pending.as_ref().filter(|_| sender) else {
            return;
        };
        let record = SpanRecord {
            service_name: call.service_name.to_owned(),
            request_model: call.request_model.to_owned(),
            response_id: call.response_id.map(str::to_owned),
            end_unix_nano: call.end_unix_nano,
            covered,
            turn,
        };
        let released = pending.register(call.trace_id, call.span_id, record, sender, self.millis());
        self.settle(released, now);
    }

    /// Content that came after its span: scanned on the sides the span did not carry, each
    /// category and side counted once per call, flagged calls reviewed; the held session turn
    /// completed with the input; a sampled call judged once it has an output.
    fn join_content(&self, joined: Joined, now: u64) {
        let mut fresh_flags: Vec<String> = Vec::new();
        if let (Some(safety), Some(pending)) = (&self.safety, &self.pending) {
            let (input, output) = (
                joined.to_scan(Source::Input),
                joined.to_scan(Source::Output),
            );
            if input.is_some() || output.is_some() {
                let flags = safety.scan(input, output);
                let keys: Vec<(&str, Source)> =
                    flags.iter().map(|f| (f.category, f.source)).collect();
                let commit = pending.commit(&joined.trace_id, &joined.span_id, &keys);
                let (service, model) = (
                    joined.record.service_name.as_str(),
                    joined.record.request_model.as_str(),
                );
                if commit.first_scan {
                    self.metrics
                        .safety_scanned_calls
                        .add(&[service, model], 1.0);
                }
                for (flag, fresh) in flags.iter().zip(commit.fresh) {
                    if !fresh {
                        continue;
                    }
                    self.metrics
                        .safety_flags
                        .add(&[service, model, flag.category, flag.source.as_str()], 1.0);
                    if !fresh_flags.iter().any(|c| c == flag.category) {
                        fresh_flags.push(flag.category.to_owned());
                    }
                }
            }
        }
        let Joined {
            trace_id,
            span_id,
            record,
            content,
            turn,
            sampled,
            sampled_waiting,
        } = joined;
        if let Some(turn) = turn {
            self.signals.resolve_turn(
                turn,
                content.input.as_deref(),
                content.user_text.as_deref(),
                now,
            );
        }
        if let Some(mut call) = sampled {
            for flag in fresh_flags {
                if !call.safety_flags.contains(&flag) {
                    call.safety_flags.push(flag);
                }
            }
            self.offer(call);
            return;
        }
        // A sampled call still waiting for its output carries the flags to review.
        if fresh_flags.is_empty() || sampled_waiting || !self.review.enabled() {
            return;
        }
        self.review.push(ReviewEntry {
            flagged_unix_nano: record.end_unix_nano,
            trace_id: hex(&trace_id),
            span_id: hex(&span_id),
            service_name: record.service_name,
            request_model: record.request_model,
            response_id: record.response_id,
            scores: Vec::new(),
            reasons: fresh_flags.iter().map(|f| format!("safety: {f}")).collect(),
            safety_flags: fresh_flags,
            input: self.review.content(content.input.as_deref()),
            output: self.review.content(content.output.as_deref()),
        });
    }

    /// Content from a message, choice or inference-details event: joined to its span whichever
    /// arrives first (bounded, expiring). Call [`Self::release_pending_at`] once per export
    /// request, after its records.
    pub fn observe_content(&self, event: &CallContentEvent<'_>) {
        let Some(pending) = &self.pending else {
            return;
        };
        if !pending.keeps(event.trace_id) {
            return;
        }
        let text = |content: Option<ContentRef<'_>>| {
            content
                .map(|c| c.to_text())
                .filter(|t| !t.trim().is_empty())
        };
        let (input, user_text) = match event.content.input {
            None => (None, None),
            // The body of a user message event is the user's message.
            Some(content) if event.event_name == "gen_ai.user.message" => {
                let input = text(Some(content));
                (input.clone(), input)
            }
            Some(content) => {
                let (input, user) = content.text_and_last_user_text();
                (Some(input).filter(|t| !t.trim().is_empty()), user)
            }
        };
        // Assistant and tool messages are history, not what the user said.
        let user_text = user_text.filter(|_| {
            !matches!(
                event.event_name,
                "gen_ai.assistant.message" | "gen_ai.tool.message" | "gen_ai.tools.message"
            )
        });
        let content = ContentText {
            input,
            output: text(event.content.output),
            system_instructions: text(event.content.system_instructions),
            user_text,
        };
        pending.add_content(
            event.trace_id,
            event.span_id,
            event.service_name,
            content,
            self.millis(),
        );
    }

    /// [`Self::release_pending_at`] now.
    pub fn release_pending(&self) {
        self.release_pending_at(crate::processor::unix_now_seconds().max(0) as u64);
    }

    /// Joins the content events of an export request to the spans already here (call once per
    /// request, after its records) and expires what waited too long; `now` (Unix seconds) is
    /// the session clock.
    pub fn release_pending_at(&self, now: u64) {
        if let Some(pending) = &self.pending {
            self.settle(pending.release(self.millis()), now);
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

    /// Expires what waited too long for its other half, and ends the sessions inactive past
    /// the timeout (called on an interval).
    pub fn sweep(&self, now: u64) {
        self.release_pending_at(now);
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
        let mut join = FamilySnapshot::new(crate::catalog::def(names::QUALITY_JOIN_DROPPED));
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        let (content_expired, content_full, span_full) =
            self.pending.as_ref().map_or((0, 0, 0), |p| {
                let d = p.dropped();
                (
                    load(&d.content_expired),
                    load(&d.content_full),
                    load(&d.span_full),
                )
            });
        let (feedback_expired, feedback_full) = self.signals.waiting_dropped();
        for (item, reason, count) in [
            ("content", "expired", content_expired),
            ("content", "full", content_full),
            ("span", "full", span_full),
            ("feedback", "expired", feedback_expired),
            ("feedback", "full", feedback_full),
        ] {
            join.push_scalar(
                vec![
                    ("item".to_owned(), item.to_owned()),
                    ("reason".to_owned(), reason.to_owned()),
                ],
                count as f64,
            );
        }
        families.push(join);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::snapshot::{Sample, SampleValue, family, matching};
    use llmwatch_semconv::{CapturedContent, ContentRef};
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value};

    /// A queue of fixed capacity that keeps what it accepts.
    #[derive(Debug)]
    struct Queue {
        capacity: usize,
        calls: Mutex<Vec<SampledCall>>,
    }

    impl QualitySink for std::sync::Arc<Queue> {
        fn offer(&self, call: SampledCall) -> Option<SampledCall> {
            let mut calls = self.calls.lock().unwrap();
            if calls.len() >= self.capacity {
                return Some(call);
            }
            calls.push(call);
            None
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

    /// A judge queue of `capacity` connected as the monitor's sink.
    fn connect_queue(monitor: &QualityMonitor, capacity: usize) -> std::sync::Arc<Queue> {
        let queue = std::sync::Arc::new(Queue {
            capacity,
            calls: Mutex::new(Vec::new()),
        });
        monitor.set_sink(Box::new(queue.clone())).unwrap();
        queue
    }

    /// The monitor's families as `/metrics` would show them now.
    fn snapshot(monitor: &QualityMonitor) -> Vec<FamilySnapshot> {
        let mut families = Vec::new();
        monitor.snapshot(&mut families);
        families
    }

    /// `llmwatch_judge_sampled_calls_total` of service `svc` with this result.
    fn sampled_calls(families: &[FamilySnapshot], result: &str) -> f64 {
        counter(
            families,
            names::JUDGE_SAMPLED_CALLS,
            &[("service_name", "svc"), ("result", result)],
        )
    }

    fn counter(families: &[FamilySnapshot], name: &str, labels: &[(&str, &str)]) -> f64 {
        assert!(family(families, name).is_some(), "no family {name}");
        matching(families, name, labels).map(Sample::scalar).sum()
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
        let queue = connect_queue(&monitor, 2);
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
        let families = snapshot(&monitor);
        let sampled = |result| sampled_calls(&families, result);
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
        let queue = connect_queue(&monitor, 8);
        let (question, answer) = (text("What is 2+2?"), text("4"));
        let event = |trace_id: &'static [u8], input, output| CallContentEvent {
            trace_id,
            span_id: &[1; 8],
            event_name: "gen_ai.choice",
            service_name: "svc",
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
        let families = snapshot(&monitor);
        let sampled = |result| sampled_calls(&families, result);
        assert_eq!(sampled("queued"), 2.0);
        assert_eq!(sampled("no_content"), 0.0);
    }

    /// A content event of `name` for (trace, span [`SPAN`]) whose body is `body` (the side is the
    /// one the event carries).
    fn content_event<'a>(
        trace_id: &'a [u8],
        span_id: &'a [u8],
        name: &'a str,
        body: &'a AnyValue,
    ) -> CallContentEvent<'a> {
        let value = Some(ContentRef::Value(body));
        let (input, output) = match name {
            "gen_ai.choice" => (None, value),
            _ => (value, None),
        };
        CallContentEvent {
            trace_id,
            span_id,
            event_name: name,
            service_name: "svc",
            finish_reasons: Default::default(),
            content: CapturedContent {
                input,
                output,
                system_instructions: None,
            },
        }
    }

    fn flags_of(families: &[FamilySnapshot], category: &str, source: &str) -> f64 {
        counter(
            families,
            names::SAFETY_FLAGS,
            &[
                ("service_name", "svc"),
                ("gen_ai_request_model", "gpt-4o"),
                ("category", category),
                ("source", source),
            ],
        )
    }

    #[test]
    fn content_from_events_is_scanned_once_per_call_category_and_side_in_either_order() {
        let monitor = QualityMonitor::new(QualityConfig::default()).unwrap();
        let (mail, again) = (
            text("Mail me at jane.doe@example.com"),
            text("Again: jane.doe@example.com"),
        );
        let key = text("Your key is sk-proj-abcdefghijklmnopqrstuvwx1234");
        let clean = text("Noted.");
        let (a, b, c) = (trace_id(1), trace_id(2), trace_id(3));
        // A: its events first (two user messages and a choice in one export request), then its
        // span without content.
        for event in [
            content_event(&a, &[1; 8], "gen_ai.user.message", &mail),
            content_event(&a, &[1; 8], "gen_ai.user.message", &again),
            content_event(&a, &[1; 8], "gen_ai.choice", &key),
        ] {
            monitor.observe_content(&event);
        }
        monitor.release_pending();
        assert!(monitor.review().is_empty());
        monitor.observe_call(&call(&a, None, None));
        // B: the span first (its service now sends content events), then its events, then the
        // choice again in a later export request.
        monitor.observe_call(&call(&b, None, None));
        monitor.observe_content(&content_event(&b, &[1; 8], "gen_ai.user.message", &mail));
        monitor.observe_content(&content_event(&b, &[1; 8], "gen_ai.choice", &key));
        monitor.release_pending();
        monitor.observe_content(&content_event(&b, &[1; 8], "gen_ai.choice", &key));
        monitor.release_pending();
        // C: content on the span (the input flagged there) and the same in events afterwards:
        // the input is the span's; the events' output is new.
        monitor.observe_call(&call(&c, Some(&mail), None));
        monitor.observe_content(&content_event(&c, &[1; 8], "gen_ai.user.message", &mail));
        monitor.observe_content(&content_event(&c, &[1; 8], "gen_ai.choice", &again));
        monitor.observe_content(&content_event(&c, &[1; 8], "gen_ai.choice", &clean));
        monitor.release_pending();

        let families = snapshot(&monitor);
        assert_eq!(flags_of(&families, "pii_email", "input"), 3.0);
        assert_eq!(flags_of(&families, "pii_email", "output"), 1.0);
        assert_eq!(flags_of(&families, "secret_api_key", "output"), 2.0);
        assert_eq!(counter(&families, names::SAFETY_FLAGS, &[]), 6.0);
        assert_eq!(
            counter(
                &families,
                names::SAFETY_SCANNED_CALLS,
                &[("service_name", "svc"), ("gen_ai_request_model", "gpt-4o")]
            ),
            3.0
        );
        // One entry per call and new categories: A and B once each, C for its span's input and
        // for its events' output.
        let entries = monitor.review().list(10);
        let listed: Vec<(String, Vec<String>)> = entries
            .iter()
            .map(|e| (e.trace_id.clone(), e.safety_flags.clone()))
            .collect();
        let both = vec!["pii_email".to_owned(), "secret_api_key".to_owned()];
        assert_eq!(
            listed,
            [
                (hex(&c), vec!["pii_email".to_owned()]),
                (hex(&c), vec!["pii_email".to_owned()]),
                (hex(&b), both.clone()),
                (hex(&a), both),
            ]
        );
        assert_eq!(
            (&*entries[2].service_name, &*entries[2].request_model),
            ("svc", "gpt-4o")
        );
        assert_eq!(entries[2].span_id, hex(&[1; 8]));
        // Nothing is left but the records of the three spans (for late events), which expire.
        assert_eq!(monitor.pending.as_ref().unwrap().len(), 3);
        assert_eq!(counter(&families, names::QUALITY_JOIN_DROPPED, &[]), 0.0);
    }

    #[test]
    fn content_events_whose_span_never_comes_are_counted_dropped() {
        let monitor = QualityMonitor::new(QualityConfig {
            pending: PendingConfig {
                max_entries: 1,
                ttl_millis: 0,
                ..PendingConfig::default()
            },
            ..QualityConfig::default()
        })
        .unwrap();
        let mail = text("jane.doe@example.com");
        monitor.observe_content(&content_event(
            &trace_id(1),
            &[1; 8],
            "gen_ai.user.message",
            &mail,
        ));
        monitor.observe_content(&content_event(
            &trace_id(2),
            &[1; 8],
            "gen_ai.user.message",
            &mail,
        ));
        std::thread::sleep(std::time::Duration::from_millis(2));
        monitor.release_pending();
        let families = snapshot(&monitor);
        let dropped = |item, reason| {
            counter(
                &families,
                names::QUALITY_JOIN_DROPPED,
                &[("item", item), ("reason", reason)],
            )
        };
        assert_eq!(dropped("content", "full"), 1.0);
        assert_eq!(dropped("content", "expired"), 1.0);
        assert_eq!(dropped("span", "full"), 0.0);
        assert_eq!(counter(&families, names::SAFETY_FLAGS, &[]), 0.0);
    }

    /// Turns of one conversation with these user messages, 10 s apart after the first two.
    fn conversation_turns() -> Vec<(u64, AnyValue, Vec<&'static str>)> {
        let turns: [(u64, &[&'static str]); 5] = [
            (0, &["Where is my order?"]),
            (30, &["Where is my order?", "And the invoice?"]),
            (40, &["Where is my order?", "And the invoice?"]),
            (50, &["Where is my order?", "No, the other order"]),
            (60, &["Where is my order?", "No, the other order", "Thanks"]),
        ];
        turns
            .iter()
            .map(|(at, messages)| {
                let list: Vec<_> = messages
                    .iter()
                    .map(|m| serde_json::json!({"role": "user", "content": m}))
                    .collect();
                (
                    *at,
                    text(&serde_json::Value::from(list).to_string()),
                    messages.to_vec(),
                )
            })
            .collect()
    }

    fn session_signals(monitor: &QualityMonitor) -> [f64; 3] {
        let mut families = Vec::new();
        monitor.snapshot_at(&mut families, 1_800_000_100);
        ["follow_up", "retry", "correction"].map(|signal| {
            counter(
                &families,
                names::SESSION_SIGNALS,
                &[("service_name", "svc"), ("signal", signal)],
            )
        })
    }

    #[test]
    fn sessions_read_the_user_message_from_events_as_from_the_span() {
        const NOW: u64 = 1_800_000_000;
        const S: u64 = 1_000_000_000;
        let turns = conversation_turns();
        let traces: Vec<[u8; 16]> = (1..=turns.len() as u8).map(trace_id).collect();
        let turn_call = |i: usize, input: Option<&'static AnyValue>| {
            let mut call = call(&traces[i], input, None);
            call.conversation_id = Some("conv-1");
            call.start_unix_nano = (NOW + turns[i].0) * S;
            call.end_unix_nano = (NOW + turns[i].0 + 2) * S;
            call
        };
        // Content on the spans.
        let on_spans = QualityMonitor::new(QualityConfig::default()).unwrap();
        let inputs: &'static [(u64, AnyValue, Vec<&str>)] = Box::leak(turns.clone().into());
        for (i, (at, input, _)) in inputs.iter().enumerate() {
            on_spans.observe_call_at(&turn_call(i, Some(input)), NOW + at);
        }
        // The same content only in gen_ai.user.message events, before the span for the first
        // and the fourth turns, after it for the others.
        let in_events = QualityMonitor::new(QualityConfig::default()).unwrap();
        let bodies: Vec<Vec<AnyValue>> = turns
            .iter()
            .map(|(_, _, messages)| messages.iter().map(|m| text(m)).collect())
            .collect();
        for (i, (at, _, _)) in turns.iter().enumerate() {
            let now = NOW + at;
            let send_events = || {
                for body in &bodies[i] {
                    in_events.observe_content(&content_event(
                        &traces[i],
                        &[1; 8],
                        "gen_ai.user.message",
                        body,
                    ));
                }
                in_events.release_pending_at(now);
            };
            if i == 0 || i == 3 {
                send_events();
                in_events.observe_call_at(&turn_call(i, None), now);
            } else {
                in_events.observe_call_at(&turn_call(i, None), now);
                // Held until its user message comes: no signal yet.
                let before = session_signals(&in_events);
                send_events();
                assert!(session_signals(&in_events) != before || i == 0, "turn {i}");
            }
        }
        assert_eq!(session_signals(&on_spans), [2.0, 1.0, 1.0]);
        assert_eq!(session_signals(&in_events), session_signals(&on_spans));
    }

    #[test]
    fn a_held_turn_whose_events_never_come_is_counted_without_content() {
        const NOW: u64 = 1_800_000_000;
        const S: u64 = 1_000_000_000;
        let monitor = QualityMonitor::new(QualityConfig {
            pending: PendingConfig {
                ttl_millis: 0,
                ..PendingConfig::default()
            },
            ..QualityConfig::default()
        })
        .unwrap();
        let hello = text("Hello");
        // The service sends content events (another call's).
        monitor.observe_content(&content_event(
            &trace_id(9),
            &[9; 8],
            "gen_ai.user.message",
            &hello,
        ));
        let (t1, t2) = (trace_id(1), trace_id(2));
        let turn = |trace: &'static [u8; 16], at: u64| {
            let mut call = call(trace, None, None);
            call.conversation_id = Some("conv-2");
            call.start_unix_nano = (NOW + at) * S;
            call.end_unix_nano = (NOW + at + 2) * S;
            call
        };
        static T1: std::sync::OnceLock<[u8; 16]> = std::sync::OnceLock::new();
        static T2: std::sync::OnceLock<[u8; 16]> = std::sync::OnceLock::new();
        let (t1, t2) = (T1.get_or_init(|| t1), T2.get_or_init(|| t2));
        monitor.observe_call_at(&turn(t1, 0), NOW);
        // The second turn comes before the first's events: the first is counted as it is, then
        // the second waits.
        monitor.observe_call_at(&turn(t2, 20), NOW + 20);
        assert_eq!(monitor.signals().active_sessions(), 1);
        assert_eq!(session_signals(&monitor), [0.0, 0.0, 0.0]);
        // Its events never come: the sweep gives up on them and counts the turn (a follow-up).
        std::thread::sleep(std::time::Duration::from_millis(2));
        monitor.sweep(NOW + 30);
        assert_eq!(session_signals(&monitor), [1.0, 0.0, 0.0]);
    }

    #[test]
    fn a_sampled_span_first_call_is_judged_with_the_flags_of_its_events() {
        let monitor = QualityMonitor::new(QualityConfig {
            sampling: SamplingConfig::uniform(1.0),
            ..QualityConfig::default()
        })
        .unwrap();
        let queue = connect_queue(&monitor, 8);
        let (mail, answer) = (text("Mail jane.doe@example.com"), text("Done."));
        let id = trace_id(0x80);
        monitor.observe_call(&call(&id, None, None));
        monitor.observe_content(&content_event(&id, &[1; 8], "gen_ai.user.message", &mail));
        monitor.release_pending();
        // The input alone: scanned (and counted), the call waits for its output.
        assert!(queue.calls.lock().unwrap().is_empty());
        monitor.observe_content(&content_event(&id, &[1; 8], "gen_ai.choice", &answer));
        monitor.release_pending();
        let queued = queue.calls.lock().unwrap().clone();
        assert_eq!(queued.len(), 1);
        assert_eq!(
            queued[0].input.as_deref(),
            Some("Mail jane.doe@example.com")
        );
        assert_eq!(queued[0].output.as_deref(), Some("Done."));
        assert_eq!(queued[0].safety_flags, ["pii_email"]);
        // The judge's entry will carry the flag: no review entry of its own.
        assert!(monitor.review().is_empty());
        let families = snapshot(&monitor);
        assert_eq!(flags_of(&families, "pii_email", "input"), 1.0);
        assert_eq!(counter(&families, names::SAFETY_SCANNED_CALLS, &[]), 1.0);
    }

    #[test]
    fn safety_flagged_calls_go_to_the_review_queue_once() {
        let monitor = QualityMonitor::new(QualityConfig {
            sampling: SamplingConfig::uniform(0.5),
            ..QualityConfig::default()
        })
        .unwrap();
        let queue = connect_queue(&monitor, 8);
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
        let families = snapshot(&monitor);
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
        let queue = connect_queue(&monitor, 8);
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
        let families = snapshot(&monitor);
        assert_eq!(sampled_calls(&families, "queued"), 3.0);
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
        let queue = connect_queue(&monitor, 8);
        static ID: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0];
        let answer = text("4");
        let outcome = monitor.observe_call(&call(&ID, None, None));
        assert_eq!((outcome.sampled, outcome.safety_judged), (false, true));
        monitor.observe_content(&CallContentEvent {
            trace_id: &ID,
            span_id: &[1; 8],
            service_name: "svc",
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
        let families = snapshot(&monitor);
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
        let families = snapshot(&monitor);
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
