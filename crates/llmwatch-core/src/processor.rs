//! The processor: normalized records in, aggregates out. Synchronous and non-blocking: it only
//! updates in-memory aggregates, so receivers call it inline.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use llmwatch_semconv::{
    Dimension, Feedback, FeedbackFields, FeedbackSignal, LlmCall, LogEvent, Normalizer,
    NormalizerError, RecordError, RejectReason,
};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::drift::{DriftConfig, DriftMonitors};
use crate::pricer::{Pricer, PricingConfig};
use crate::quality::{CallBatch, Channel, FeedbackReceipt};
use crate::quality::{
    EvaluationRecord, EvaluationSource, QualityConfig, QualityConfigError, QualityMonitor,
    ReviewScore,
};
use crate::snapshot::FamilySnapshot;
use crate::spend::{SpendConfig, SpendTracker};
use crate::store::{GenAiStore, StoreConfig};
use crate::telemetry::{RecordKind, SelfTelemetry, Signal, Transport};

/// Rejection details quoted in one partial-success message; the rest are only counted.
const MAX_QUOTED_ERRORS: usize = 3;

/// Everything the processor needs to know from configuration.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    pub dimensions: Vec<Dimension>,
    pub max_series: usize,
    pub pricing: PricingConfig,
    pub spend: SpendConfig,
    pub drift: DriftConfig,
    pub quality: QualityConfig,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            dimensions: Vec::new(),
            max_series: 2000,
            pricing: PricingConfig::default(),
            spend: SpendConfig::default(),
            drift: DriftConfig::default(),
            quality: QualityConfig::default(),
        }
    }
}

/// The outcome of one export request, as the OTLP partial-success answer needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub accepted: u64,
    pub rejected: u64,
    /// Empty when nothing was rejected; otherwise names what was wrong.
    pub error_message: String,
}

impl IngestReport {
    fn reject(&mut self, error: &RecordError) {
        self.rejected += 1;
        if self.rejected as usize <= MAX_QUOTED_ERRORS {
            if !self.error_message.is_empty() {
                self.error_message.push_str("; ");
            }
            self.error_message.push_str(&error.to_string());
        }
    }

    fn finish(mut self, what: &str) -> IngestReport {
        if self.rejected as usize > MAX_QUOTED_ERRORS {
            let more = self.rejected as usize - MAX_QUOTED_ERRORS;
            self.error_message
                .push_str(&format!("; and {more} more rejected {what}"));
        }
        self
    }
}

#[derive(Debug)]
pub struct Processor {
    normalizer: Normalizer,
    pricer: Pricer,
    spend: SpendTracker,
    drift: DriftMonitors,
    quality: QualityMonitor,
    store: GenAiStore,
    telemetry: SelfTelemetry,
}

impl Processor {
    pub fn new(config: &ProcessorConfig) -> Result<Processor, ProcessorError> {
        let normalizer = Normalizer::new(config.dimensions.clone())?
            .with_feedback_rules(config.quality.feedback.rules.clone());
        let dimension_labels: Vec<String> =
            config.dimensions.iter().map(|d| d.label.clone()).collect();
        let store = GenAiStore::new(&StoreConfig {
            max_series: config.max_series,
            dimension_labels: dimension_labels.clone(),
        });
        Ok(Processor {
            normalizer,
            pricer: Pricer::new(config.pricing.clone()),
            spend: SpendTracker::new(&config.spend),
            drift: DriftMonitors::new(config.drift.clone(), &dimension_labels),
            quality: QualityMonitor::new(config.quality.clone())?,
            store,
            telemetry: SelfTelemetry::default(),
        })
    }

    pub fn telemetry(&self) -> &SelfTelemetry {
        &self.telemetry
    }

    pub fn store(&self) -> &GenAiStore {
        &self.store
    }

    pub fn pricer(&self) -> &Pricer {
        &self.pricer
    }

    pub fn drift(&self) -> &DriftMonitors {
        &self.drift
    }

    pub fn quality(&self) -> &QualityMonitor {
        &self.quality
    }

    /// Records an evaluation result (the judge's, a plugin's, a user's) in the score metrics and
    /// in the score's SPC chart.
    pub fn record_evaluation(&self, record: &EvaluationRecord<'_>) {
        self.quality.record_evaluation(record);
        if let Some(score) = record.score {
            self.drift
                .observe_score(record.service_name, record.name, score);
        }
    }

    pub fn ingest_traces(
        &self,
        request: &ExportTraceServiceRequest,
        transport: Transport,
    ) -> IngestReport {
        self.ingest_traces_at(request, transport, now_seconds())
    }

    /// [`Self::ingest_traces`] at `now` (Unix seconds): the clock of series expiry and of the
    /// feedback and session windows.
    pub fn ingest_traces_at(
        &self,
        request: &ExportTraceServiceRequest,
        transport: Transport,
        now: u64,
    ) -> IngestReport {
        let mut report = IngestReport::default();
        let (mut calls, mut ignored) = (0, 0);
        let mut batch = CallBatch::default();
        for resource_spans in &request.resource_spans {
            let resource = self.normalizer.resource(resource_spans.resource.as_ref());
            for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
                match self.normalizer.span(&resource, span) {
                    Ok(Some(call)) => {
                        let price = self.pricer.price(&call);
                        let count = sampled_count(&call);
                        self.store.record(&call, &price, count, now);
                        if let Some(cost) = price.total() {
                            self.spend.record(&call, cost * count as f64);
                        }
                        self.drift.observe(&call, &price);
                        self.quality.observe_call_batched(&call, now, &mut batch);
                        calls += 1;
                    }
                    Ok(None) => ignored += 1,
                    Err(error) => {
                        self.telemetry
                            .rejected_record(Signal::Traces, transport, error.reason);
                        report.reject(&error);
                    }
                }
            }
        }
        self.quality.signals().flush(batch, now);
        // Feedback that came before these spans matches them now.
        self.settle_feedback(now);
        report.accepted = calls + ignored;
        self.telemetry
            .received(Signal::Traces, transport, report.accepted + report.rejected);
        self.telemetry
            .normalized(Signal::Traces, RecordKind::LlmCall, calls);
        self.telemetry
            .normalized(Signal::Traces, RecordKind::Ignored, ignored);
        report.finish("spans")
    }

    pub fn ingest_logs(
        &self,
        request: &ExportLogsServiceRequest,
        transport: Transport,
    ) -> IngestReport {
        self.ingest_logs_at(request, transport, now_seconds())
    }

    /// [`Self::ingest_logs`] at `now` (Unix seconds), the clock of the feedback windows.
    pub fn ingest_logs_at(
        &self,
        request: &ExportLogsServiceRequest,
        transport: Transport,
        now: u64,
    ) -> IngestReport {
        let mut report = IngestReport::default();
        let mut kinds = [0u64; RecordKind::ALL.len()];
        for resource_logs in &request.resource_logs {
            let resource = self.normalizer.resource(resource_logs.resource.as_ref());
            for record in resource_logs.scope_logs.iter().flat_map(|s| &s.log_records) {
                let kind = match self.normalizer.log_record(&resource, record) {
                    Ok(Some(LogEvent::Evaluation(evaluation))) => {
                        let flagged = evaluation
                            .score
                            .is_some_and(|s| self.quality.flags_external_score(s));
                        self.record_evaluation(&EvaluationRecord {
                            service_name: evaluation.service_name,
                            request_model: "",
                            name: evaluation.name,
                            score: evaluation.score,
                            source: EvaluationSource::External,
                            flagged,
                        });
                        if flagged {
                            self.quality.review_external(
                                evaluation.trace_id,
                                evaluation.span_id,
                                evaluation.service_name,
                                ReviewScore {
                                    name: evaluation.name.to_owned(),
                                    source: EvaluationSource::External.as_str().to_owned(),
                                    evaluator: None,
                                    value: evaluation.score,
                                    label: evaluation.label.map(str::to_owned),
                                    flagged,
                                },
                                evaluation.explanation,
                                evaluation.response_id,
                            );
                        }
                        RecordKind::Evaluation
                    }
                    Ok(Some(LogEvent::CallContent(content))) => {
                        // Content captured as events joins its span, whichever comes first.
                        self.quality.observe_content(&content);
                        RecordKind::ContentEvent
                    }
                    Ok(Some(LogEvent::Feedback(feedback))) => {
                        self.record_feedback_at(&feedback, Channel::Otlp, now);
                        RecordKind::Feedback
                    }
                    Ok(None) => RecordKind::Ignored,
                    Err(error) => {
                        if error.reason == RejectReason::InvalidFeedback {
                            self.quality
                                .signals()
                                .rejected(Channel::Otlp, error.reason.as_str());
                        }
                        self.telemetry
                            .rejected_record(Signal::Logs, transport, error.reason);
                        report.reject(&error);
                        continue;
                    }
                };
                kinds[kind as usize] += 1;
                report.accepted += 1;
            }
        }
        self.quality.release_pending_at(now);
        self.settle_feedback(now);
        self.telemetry
            .received(Signal::Logs, transport, report.accepted + report.rejected);
        for kind in RecordKind::ALL {
            self.telemetry
                .normalized(Signal::Logs, kind, kinds[kind as usize]);
        }
        report.finish("log records")
    }

    /// Records checked feedback: the feedback counters and ratios, and its score as an evaluation
    /// with source `user` (flagged when negative), matched to its call when one is remembered.
    /// Feedback that matches no call but names one waits for its call's span
    /// (`feedback.call_wait`) and is recorded then, exactly as if the span had come first; after
    /// the wait it is recorded unmatched (the receipt says `waiting`).
    pub fn record_feedback_at(
        &self,
        feedback: &Feedback<'_>,
        channel: Channel,
        now: u64,
    ) -> FeedbackReceipt {
        let signals = self.quality.signals();
        let receipt = match signals.record_or_hold_feedback(feedback, channel, now) {
            Some(receipt) => {
                self.feedback_recorded(feedback, &receipt);
                receipt
            }
            None => FeedbackReceipt {
                matched: None,
                service: Arc::from(feedback.service_name),
                model: Arc::from(""),
                call_ids: None,
                waiting: true,
            },
        };
        // Holding it may have made older waiting feedback give up its place.
        self.settle_feedback(now);
        receipt
    }

    /// Records the waiting feedback that is due: matched to a call that arrived, or unmatched
    /// after the wait.
    fn settle_feedback(&self, now: u64) {
        let signals = self.quality.signals();
        for (item, due) in signals.take_due_feedback(now) {
            let feedback = item.clone();
            if let Some(receipt) = signals.record_due_feedback(item, due, now) {
                self.feedback_recorded(&feedback.feedback(), &receipt);
            }
        }
    }

    /// What recorded feedback adds beyond its counters: its score as a `user` evaluation, and
    /// the call it flags in the review queue.
    fn feedback_recorded(&self, feedback: &Feedback<'_>, receipt: &FeedbackReceipt) {
        let flagged = match feedback.signal {
            FeedbackSignal::ThumbsUp => false,
            FeedbackSignal::ThumbsDown | FeedbackSignal::Correction | FeedbackSignal::Report => {
                true
            }
            FeedbackSignal::Rating => feedback
                .score
                .is_some_and(|s| self.quality.flags_external_score(s)),
        };
        self.record_evaluation(&EvaluationRecord {
            service_name: &receipt.service,
            request_model: &receipt.model,
            name: feedback.evaluation_name,
            score: feedback.score,
            source: EvaluationSource::User,
            flagged,
        });
        if flagged {
            // The call the user disliked goes to the review queue (the comment is not kept).
            let (trace_id, span_id) = match &receipt.call_ids {
                Some((trace, span)) => (&trace[..], &span[..]),
                None => (feedback.trace_id, feedback.span_id),
            };
            self.quality.review_external(
                trace_id,
                span_id,
                &receipt.service,
                ReviewScore {
                    name: feedback.evaluation_name.to_owned(),
                    source: EvaluationSource::User.as_str().to_owned(),
                    evaluator: None,
                    value: feedback.score,
                    label: Some(feedback.signal.as_str().to_owned()),
                    flagged,
                },
                None,
                feedback.response_id,
            );
        }
    }

    /// Checks one feedback item from llmwatch's own APIs (HTTP, gRPC) by the same rules as the
    /// OTLP events, and records it; a refused item is counted by channel and reason.
    pub fn submit_feedback(
        &self,
        fields: &FeedbackFields<'_>,
        channel: Channel,
    ) -> Result<FeedbackReceipt, RecordError> {
        self.submit_feedback_at(fields, channel, now_seconds())
    }

    pub fn submit_feedback_at(
        &self,
        fields: &FeedbackFields<'_>,
        channel: Channel,
        now: u64,
    ) -> Result<FeedbackReceipt, RecordError> {
        match self.normalizer.feedback_rules().check(fields) {
            Ok(feedback) => Ok(self.record_feedback_at(&feedback, channel, now)),
            Err(error) => {
                self.quality
                    .signals()
                    .rejected(channel, error.reason.as_str());
                Err(error)
            }
        }
    }

    /// Ends the sessions inactive past the timeout as of `now` (Unix seconds); the server calls
    /// this on an interval.
    pub fn sweep_sessions(&self, now: u64) {
        self.quality.sweep(now);
        self.settle_feedback(now);
    }

    /// Removes label sets idle for longer than `idle_seconds`; returns how many.
    pub fn expire_idle(&self, idle_seconds: u64) -> usize {
        self.store
            .expire_idle(now_seconds().saturating_sub(idle_seconds))
    }

    /// Every metric, GenAI and self, in catalog families, as of now.
    pub fn snapshot(&self) -> Vec<FamilySnapshot> {
        self.snapshot_at(Some(unix_now_seconds()))
    }

    /// Every metric, with time windows (budgets, top spenders) as of `now` (Unix seconds), or as
    /// of the newest call seen when `None` (replaying old captures).
    pub fn snapshot_at(&self, now: Option<i64>) -> Vec<FamilySnapshot> {
        let mut families = Vec::new();
        self.store.snapshot(&mut families);
        self.spend.snapshot(&mut families, now);
        self.drift.snapshot(&mut families);
        let quality_now = now.unwrap_or_else(unix_now_seconds).max(0) as u64;
        self.quality.snapshot_at(&mut families, quality_now);
        self.telemetry.snapshot(&mut families);
        families
    }
}

/// A processor that cannot be built from its configuration.
#[derive(Debug)]
pub enum ProcessorError {
    Normalizer(NormalizerError),
    Quality(QualityConfigError),
}

impl std::fmt::Display for ProcessorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProcessorError::Normalizer(e) => e.fmt(f),
            ProcessorError::Quality(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ProcessorError {}

impl From<NormalizerError> for ProcessorError {
    fn from(e: NormalizerError) -> Self {
        ProcessorError::Normalizer(e)
    }
}

impl From<QualityConfigError> for ProcessorError {
    fn from(e: QualityConfigError) -> Self {
        ProcessorError::Quality(e)
    }
}

/// The wall clock in Unix seconds (drift and budget windows, series expiry).
pub fn unix_now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn now_seconds() -> u64 {
    unix_now_seconds().max(0) as u64
}

/// How many calls one sampled span stands for, as a whole number whose expectation is the
/// adjusted count: the fraction is rounded up or down by a uniform draw derived from the span id
/// (not from the trace randomness the sampler used, which would bias it).
pub(crate) fn sampled_count(call: &LlmCall<'_>) -> u64 {
    let adjusted = call.sampling.adjusted_count;
    if adjusted <= 1.0 || !adjusted.is_finite() {
        return 1;
    }
    let whole = adjusted.floor();
    let fraction = adjusted - whole;
    let mut id = [0u8; 8];
    id[..call.span_id.len().min(8)].copy_from_slice(&call.span_id[..call.span_id.len().min(8)]);
    // SplitMix64 finalizer spreads span ids evenly over [0, 1).
    let mut z = u64::from_le_bytes(id).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let uniform = (z >> 11) as f64 / (1u64 << 53) as f64;
    whole as u64 + u64::from(uniform < fraction)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::names;
    use crate::snapshot::{SampleValue, family};
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn attribute(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn chat(span_id: u64, model: &str, trace_state: &str, error: Option<&str>) -> Span {
        let mut attributes = vec![
            attribute("gen_ai.operation.name", Value::StringValue("chat".into())),
            attribute("gen_ai.provider.name", Value::StringValue("openai".into())),
            attribute("gen_ai.request.model", Value::StringValue(model.into())),
            attribute("gen_ai.usage.input_tokens", Value::IntValue(100)),
            attribute("gen_ai.usage.output_tokens", Value::IntValue(7)),
        ];
        if let Some(error) = error {
            attributes.push(attribute("error.type", Value::StringValue(error.into())));
        }
        Span {
            trace_id: vec![1; 16],
            span_id: span_id.to_be_bytes().to_vec(),
            trace_state: trace_state.into(),
            name: format!("chat {model}"),
            start_time_unix_nano: 1_000_000_000,
            end_time_unix_nano: 1_250_000_000,
            attributes,
            ..Default::default()
        }
    }

    fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn counter(families: &[FamilySnapshot], name: &str, label: (&str, &str)) -> f64 {
        family(families, name)
            .unwrap()
            .samples
            .iter()
            .filter(|s| s.labels.iter().any(|(n, v)| n == label.0 && v == label.1))
            .map(|s| match s.value {
                SampleValue::Counter(v) | SampleValue::Gauge(v) => v,
                SampleValue::Histogram(_) => panic!("{name} is a histogram"),
            })
            .sum()
    }

    #[test]
    fn sampled_spans_count_by_their_adjusted_count() {
        let processor = Processor::new(&ProcessorConfig::default()).unwrap();
        // th:c keeps one span in four: each stands for exactly 4 calls.
        let spans = (1..=10).map(|i| chat(i, "m", "ot=th:c", None)).collect();
        processor.ingest_traces(&request(spans), Transport::Grpc);
        let families = processor.snapshot();
        assert_eq!(
            counter(&families, names::LLM_CALLS, ("gen_ai_request_model", "m")),
            40.0
        );
        assert_eq!(
            counter(&families, names::TOKENS, ("token_type", "input")),
            4000.0
        );
    }

    #[test]
    fn fractional_adjusted_counts_round_without_bias() {
        // th:aaab keeps about one span in three (adjusted count 2.99994…): over many spans the
        // total must stay within a few percent of the true 3 × n.
        let processor = Processor::new(&ProcessorConfig::default()).unwrap();
        let n = 20_000u64;
        let spans = (1..=n)
            .map(|i| chat(i * 7919, "m", "ot=th:aaab", None))
            .collect();
        processor.ingest_traces(&request(spans), Transport::Grpc);
        let total = counter(
            &processor.snapshot(),
            names::LLM_CALLS,
            ("gen_ai_request_model", "m"),
        );
        let expected = n as f64 * 2f64.powi(56) / (2f64.powi(56) - (0xaaabu64 << 40) as f64);
        assert!(
            (total - expected).abs() / expected < 0.02,
            "{total} vs {expected}"
        );
        assert_eq!(total.fract(), 0.0);
    }

    #[test]
    fn series_limit_folds_into_overflow_and_expiry_frees_label_sets() {
        let processor = Processor::new(&ProcessorConfig {
            dimensions: Vec::new(),
            max_series: 3,
            ..ProcessorConfig::default()
        })
        .unwrap();
        let spans = (1..=10)
            .map(|i| chat(i, &format!("model-{i}"), "", None))
            .collect();
        processor.ingest_traces(&request(spans), Transport::Grpc);
        let families = processor.snapshot();
        assert_eq!(
            counter(
                &families,
                names::LLM_CALLS,
                ("otel_metric_overflow", "true")
            ),
            7.0
        );
        assert_eq!(
            family(&families, names::SERIES_OVERFLOW).unwrap().samples[0].value,
            SampleValue::Counter(7.0)
        );
        assert_eq!(
            family(&families, names::LABEL_SETS).unwrap().samples[0].value,
            SampleValue::Gauge(4.0)
        );
        // Calls: 3 label sets and the overflow one, each with error_type="" only.
        assert_eq!(
            counter(&families, names::SERIES, ("metric", names::LLM_CALLS)),
            4.0
        );
        // Tokens: input and output per label set.
        assert_eq!(
            counter(&families, names::SERIES, ("metric", names::TOKENS)),
            8.0
        );
        assert_eq!(processor.store().series_count(), 3);
        assert_eq!(processor.store().expire_idle(u64::MAX), 3);
        assert_eq!(processor.store().series_count(), 0);
    }

    #[test]
    fn error_types_per_label_set_are_capped() {
        use crate::store::MAX_ERROR_TYPES_PER_SERIES;
        let processor = Processor::new(&ProcessorConfig::default()).unwrap();
        let spans = (1..=40)
            .map(|i| chat(i, "m", "", Some(&format!("Error{i}"))))
            .collect();
        processor.ingest_traces(&request(spans), Transport::Grpc);
        let families = processor.snapshot();
        let calls = family(&families, names::LLM_CALLS).unwrap();
        assert_eq!(calls.samples.len(), 1 + MAX_ERROR_TYPES_PER_SERIES);
        let other = 40 - (MAX_ERROR_TYPES_PER_SERIES as u64 - 1);
        assert_eq!(
            counter(&families, names::LLM_CALLS, ("error_type", "_OTHER")),
            other as f64
        );
    }

    #[test]
    fn partial_success_quotes_the_first_errors_and_counts_the_rest() {
        let processor = Processor::new(&ProcessorConfig::default()).unwrap();
        let mut spans: Vec<Span> = (1..=5).map(|i| chat(i, "m", "", None)).collect();
        for span in &mut spans[..4] {
            span.attributes
                .push(attribute("gen_ai.usage.output_tokens", Value::IntValue(-1)));
            span.attributes.swap_remove(4);
        }
        let report = processor.ingest_traces(&request(spans), Transport::HttpJson);
        assert_eq!((report.accepted, report.rejected), (1, 4));
        assert_eq!(
            report.error_message.matches("invalid_token_count").count(),
            3
        );
        assert!(
            report
                .error_message
                .ends_with("; and 1 more rejected spans"),
            "{}",
            report.error_message
        );
        let families = processor.snapshot();
        assert_eq!(
            counter(
                &families,
                names::REJECTED_SPANS,
                ("reason", "invalid_token_count")
            ),
            4.0
        );
        assert_eq!(
            counter(&families, names::LLM_CALLS, ("gen_ai_request_model", "m")),
            1.0
        );
    }
}

#[cfg(test)]
mod concurrency_tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    /// Threads racing to create new label sets never take the count past the limit.
    #[test]
    fn the_series_limit_holds_under_concurrent_inserts() {
        let processor = Processor::new(&ProcessorConfig {
            max_series: 50,
            ..ProcessorConfig::default()
        })
        .unwrap();
        std::thread::scope(|scope| {
            for thread in 0..4u64 {
                let processor = &processor;
                scope.spawn(move || {
                    for i in 0..200u64 {
                        let model = KeyValue {
                            key: "gen_ai.request.model".into(),
                            value: Some(AnyValue {
                                value: Some(Value::StringValue(format!("m-{thread}-{i}"))),
                            }),
                            ..Default::default()
                        };
                        let operation = KeyValue {
                            key: "gen_ai.operation.name".into(),
                            value: Some(AnyValue {
                                value: Some(Value::StringValue("chat".into())),
                            }),
                            ..Default::default()
                        };
                        let span = Span {
                            trace_id: vec![1; 16],
                            span_id: (thread * 1_000 + i + 1).to_be_bytes().to_vec(),
                            start_time_unix_nano: 1,
                            end_time_unix_nano: 2,
                            attributes: vec![operation, model],
                            ..Default::default()
                        };
                        let request = ExportTraceServiceRequest {
                            resource_spans: vec![ResourceSpans {
                                scope_spans: vec![ScopeSpans {
                                    spans: vec![span],
                                    ..Default::default()
                                }],
                                ..Default::default()
                            }],
                        };
                        processor.ingest_traces(&request, Transport::Grpc);
                    }
                });
            }
        });
        assert_eq!(processor.store().series_count(), 50);
    }
}
