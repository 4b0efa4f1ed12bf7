//! The processor's quality stage: per call it scans captured content for safety patterns and
//! decides whether the call is judged; per evaluation (from the judge, a plugin, another tool or
//! a user) it records the score. Slow work happens elsewhere: sampled calls are handed to a
//! [`QualitySink`] that never waits (the judge queue), and results come back through
//! [`QualityMonitor::record_evaluation`].

use std::fmt;
use std::sync::OnceLock;

use llmwatch_semconv::LlmCall;

use crate::catalog::names;
use crate::labeled::LabeledFamily;
use crate::quality::feedback::{FeedbackConfig, SessionConfig, UserSignals};
use crate::quality::safety::{SafetyConfig, SafetyConfigError, SafetyMonitor};
use crate::quality::sampler::{Sampler, SamplingConfig, SamplingConfigError};
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
    /// Label sets per quality metric.
    pub max_label_sets: usize,
    /// Scores from other tools and users on a 0..1 scale below this flag their call.
    pub flag_below: f64,
    /// Explicit user feedback: reading, matching to calls, ratios.
    pub feedback: FeedbackConfig,
    /// Implicit signals from sessions.
    pub sessions: SessionConfig,
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig {
            sampling: SamplingConfig::uniform(0.0),
            safety: Some(SafetyConfig::defaults()),
            max_label_sets: DEFAULT_MAX_LABEL_SETS,
            flag_below: 0.5,
            feedback: FeedbackConfig::default(),
            sessions: SessionConfig::default(),
        }
    }
}

#[derive(Debug)]
pub enum QualityConfigError {
    Sampling(SamplingConfigError),
    Safety(SafetyConfigError),
}

impl fmt::Display for QualityConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QualityConfigError::Sampling(e) => write!(f, "sampling: {e}"),
            QualityConfigError::Safety(e) => write!(f, "safety: {e}"),
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
    /// The sampling rate that applied (the adjusted count is its inverse).
    pub rate: f64,
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
    /// Chosen for judging (whether or not it could be queued).
    pub sampled: bool,
}

/// The quality stage of the processor.
#[derive(Debug)]
pub struct QualityMonitor {
    config: QualityConfig,
    sampler: Option<Sampler>,
    safety: Option<SafetyMonitor>,
    sink: OnceLock<Box<dyn QualitySink>>,
    metrics: QualityMetrics,
    /// User feedback and session signals.
    signals: UserSignals,
}

impl QualityMonitor {
    pub fn new(config: QualityConfig) -> Result<QualityMonitor, QualityConfigError> {
        let sampling_on = config.sampling.default_rate > 0.0 || !config.sampling.rules.is_empty();
        let sampler = if sampling_on {
            Some(Sampler::new(config.sampling.clone()).map_err(QualityConfigError::Sampling)?)
        } else {
            None
        };
        let safety = match &config.safety {
            Some(safety) => Some(SafetyMonitor::new(safety).map_err(QualityConfigError::Safety)?),
            None => None,
        };
        Ok(QualityMonitor {
            metrics: QualityMetrics::new(config.max_label_sets),
            signals: UserSignals::new(
                config.feedback.clone(),
                config.sessions.clone(),
                config.max_label_sets,
            ),
            config,
            sampler,
            safety,
            sink: OnceLock::new(),
        })
    }

    pub fn config(&self) -> &QualityConfig {
        &self.config
    }

    pub fn metrics(&self) -> &QualityMetrics {
        &self.metrics
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
        let mut outcome = CallQuality::default();
        let (has_input, has_output) = (call.content.input.is_some(), call.content.output.is_some());
        if !has_input && !has_output && self.sampler.is_none() {
            self.signals.observe_call(call, None, now);
            return outcome;
        }
        let input = call.content.input.map(|c| c.to_text());
        let output = call.content.output.map(|c| c.to_text());
        self.signals.observe_call(call, input.as_deref(), now);
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
        let Some(sampler) = &self.sampler else {
            return outcome;
        };
        let decision = sampler.decide(call, !outcome.safety_flags.is_empty());
        if !decision.sampled {
            return outcome;
        }
        outcome.sampled = true;
        let result = if output.is_none() {
            "no_content"
        } else {
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
                rate: decision.rate,
            };
            match self.sink.get().map(|sink| sink.offer(sampled)) {
                Some(true) => "queued",
                Some(false) | None => "queue_full",
            }
        };
        self.metrics
            .judge_sampled_calls
            .add(&[call.service_name, result], 1.0);
        outcome
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
