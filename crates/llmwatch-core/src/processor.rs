//! The processor: normalized records in, aggregates out. Synchronous and non-blocking: it only
//! updates in-memory aggregates, so receivers call it inline.

use std::time::{SystemTime, UNIX_EPOCH};

use llmwatch_semconv::{Dimension, LlmCall, LogEvent, Normalizer, NormalizerError, RecordError};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::snapshot::FamilySnapshot;
use crate::store::{GenAiStore, StoreConfig};
use crate::telemetry::{RecordKind, SelfTelemetry, Signal, Transport};

/// Rejection details quoted in one partial-success message; the rest are only counted.
const MAX_QUOTED_ERRORS: usize = 3;

/// Everything the processor needs to know from configuration.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    pub dimensions: Vec<Dimension>,
    pub max_series: usize,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            dimensions: Vec::new(),
            max_series: 2000,
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
    store: GenAiStore,
    telemetry: SelfTelemetry,
}

impl Processor {
    pub fn new(config: &ProcessorConfig) -> Result<Processor, NormalizerError> {
        let normalizer = Normalizer::new(config.dimensions.clone())?;
        let store = GenAiStore::new(&StoreConfig {
            max_series: config.max_series,
            dimension_labels: config.dimensions.iter().map(|d| d.label.clone()).collect(),
        });
        Ok(Processor {
            normalizer,
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

    pub fn ingest_traces(
        &self,
        request: &ExportTraceServiceRequest,
        transport: Transport,
    ) -> IngestReport {
        let now = now_seconds();
        let mut report = IngestReport::default();
        let (mut calls, mut ignored) = (0, 0);
        for resource_spans in &request.resource_spans {
            let resource = self.normalizer.resource(resource_spans.resource.as_ref());
            for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
                match self.normalizer.span(&resource, span) {
                    Ok(Some(call)) => {
                        self.store.record(&call, sampled_count(&call), now);
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
        let mut report = IngestReport::default();
        let mut kinds = [0u64; RecordKind::ALL.len()];
        for resource_logs in &request.resource_logs {
            let resource = self.normalizer.resource(resource_logs.resource.as_ref());
            for record in resource_logs.scope_logs.iter().flat_map(|s| &s.log_records) {
                let kind = match self.normalizer.log_record(&resource, record) {
                    Ok(Some(LogEvent::Evaluation(_))) => RecordKind::Evaluation,
                    Ok(Some(LogEvent::CallContent(_))) => RecordKind::ContentEvent,
                    Ok(None) => RecordKind::Ignored,
                    Err(error) => {
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
        self.telemetry
            .received(Signal::Logs, transport, report.accepted + report.rejected);
        for kind in RecordKind::ALL {
            self.telemetry
                .normalized(Signal::Logs, kind, kinds[kind as usize]);
        }
        report.finish("log records")
    }

    /// Removes label sets idle for longer than `idle_seconds`; returns how many.
    pub fn expire_idle(&self, idle_seconds: u64) -> usize {
        self.store
            .expire_idle(now_seconds().saturating_sub(idle_seconds))
    }

    /// Every metric, GenAI and self, in catalog families.
    pub fn snapshot(&self) -> Vec<FamilySnapshot> {
        let mut families = Vec::new();
        self.store.snapshot(&mut families);
        self.telemetry.snapshot(&mut families);
        families
    }
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How many calls one sampled span stands for, as a whole number whose expectation is the
/// adjusted count: the fraction is rounded up or down by a uniform draw derived from the span id
/// (not from the trace randomness the sampler used, which would bias it).
fn sampled_count(call: &LlmCall<'_>) -> u64 {
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
