//! llmwatch's own metrics: what was received, rejected and why. Fixed label vocabularies, so
//! these are plain atomic arrays.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use llmwatch_semconv::RejectReason;

use crate::catalog::{self, names};
use crate::snapshot::FamilySnapshot;

/// How telemetry reached llmwatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Grpc,
    HttpProtobuf,
    HttpJson,
    File,
}

impl Transport {
    pub const ALL: [Transport; 4] = [
        Transport::Grpc,
        Transport::HttpProtobuf,
        Transport::HttpJson,
        Transport::File,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::HttpProtobuf => "http_protobuf",
            Transport::HttpJson => "http_json",
            Transport::File => "file",
        }
    }
}

/// Which OTLP signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Logs,
}

impl Signal {
    pub const ALL: [Signal; 2] = [Signal::Traces, Signal::Logs];

    pub const fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
        }
    }
}

/// Why a whole export request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestRejection {
    /// The body is not a valid protobuf or OTLP/JSON message.
    Undecodable,
    /// Over the size limit, before or after decompression.
    TooLarge,
    UnsupportedMediaType,
    UnsupportedEncoding,
    /// Too many requests in flight.
    Overloaded,
    /// Shutting down or not ready.
    Unavailable,
    /// The body did not arrive within the read timeout.
    Timeout,
}

impl RequestRejection {
    pub const ALL: [RequestRejection; 7] = [
        RequestRejection::Undecodable,
        RequestRejection::TooLarge,
        RequestRejection::UnsupportedMediaType,
        RequestRejection::UnsupportedEncoding,
        RequestRejection::Overloaded,
        RequestRejection::Unavailable,
        RequestRejection::Timeout,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RequestRejection::Undecodable => "undecodable",
            RequestRejection::TooLarge => "too_large",
            RequestRejection::UnsupportedMediaType => "unsupported_media_type",
            RequestRejection::UnsupportedEncoding => "unsupported_encoding",
            RequestRejection::Overloaded => "overloaded",
            RequestRejection::Unavailable => "unavailable",
            RequestRejection::Timeout => "timeout",
        }
    }
}

/// What normalization made of an accepted record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    LlmCall,
    Evaluation,
    ContentEvent,
    /// Explicit user feedback.
    Feedback,
    Ignored,
}

impl RecordKind {
    pub const ALL: [RecordKind; 5] = [
        RecordKind::LlmCall,
        RecordKind::Evaluation,
        RecordKind::ContentEvent,
        RecordKind::Feedback,
        RecordKind::Ignored,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RecordKind::LlmCall => "llm_call",
            RecordKind::Evaluation => "evaluation",
            RecordKind::ContentEvent => "content_event",
            RecordKind::Feedback => "feedback",
            RecordKind::Ignored => "ignored",
        }
    }
}

const RECORD_REASONS: [RejectReason; 6] = [
    RejectReason::InvalidTraceId,
    RejectReason::InvalidSpanId,
    RejectReason::InvalidTimestamps,
    RejectReason::InvalidTokenCount,
    RejectReason::InvalidEvaluation,
    RejectReason::InvalidFeedback,
];

const T: usize = Transport::ALL.len();
const S: usize = Signal::ALL.len();
const R: usize = RECORD_REASONS.len();
const Q: usize = RequestRejection::ALL.len();
const K: usize = RecordKind::ALL.len();

/// Counters of llmwatch's own behaviour.
#[derive(Debug, Default)]
pub struct SelfTelemetry {
    received: [[AtomicU64; T]; S],
    rejected_records: [[[AtomicU64; R]; T]; S],
    rejected_requests: [[[AtomicU64; Q]; T]; S],
    normalized: [[AtomicU64; K]; S],
}

impl SelfTelemetry {
    pub fn received(&self, signal: Signal, transport: Transport, n: u64) {
        self.received[signal as usize][transport as usize].fetch_add(n, Relaxed);
    }

    pub fn rejected_record(&self, signal: Signal, transport: Transport, reason: RejectReason) {
        let index = RECORD_REASONS
            .iter()
            .position(|&r| r == reason)
            .unwrap_or(0);
        self.rejected_records[signal as usize][transport as usize][index].fetch_add(1, Relaxed);
    }

    pub fn rejected_request(&self, signal: Signal, transport: Transport, reason: RequestRejection) {
        self.rejected_requests[signal as usize][transport as usize][reason as usize]
            .fetch_add(1, Relaxed);
    }

    pub fn normalized(&self, signal: Signal, kind: RecordKind, n: u64) {
        self.normalized[signal as usize][kind as usize].fetch_add(n, Relaxed);
    }

    pub fn snapshot(&self, out: &mut Vec<FamilySnapshot>) {
        let label = |name: &str, value: &str| (name.to_owned(), value.to_owned());
        for signal in Signal::ALL {
            let (received_name, rejected_name) = match signal {
                Signal::Traces => (names::RECEIVED_SPANS, names::REJECTED_SPANS),
                Signal::Logs => (names::RECEIVED_LOG_RECORDS, names::REJECTED_LOG_RECORDS),
            };
            let mut received = FamilySnapshot::new(catalog::def(received_name));
            let mut rejected = FamilySnapshot::new(catalog::def(rejected_name));
            for transport in Transport::ALL {
                let n = self.received[signal as usize][transport as usize].load(Relaxed);
                received.push_scalar(vec![label("transport", transport.as_str())], n as f64);
                for (index, reason) in RECORD_REASONS.iter().enumerate() {
                    let n = self.rejected_records[signal as usize][transport as usize][index]
                        .load(Relaxed);
                    if n > 0 {
                        rejected.push_scalar(
                            vec![
                                label("transport", transport.as_str()),
                                label("reason", reason.as_str()),
                            ],
                            n as f64,
                        );
                    }
                }
            }
            out.push(received);
            out.push(rejected);
        }
        let mut requests = FamilySnapshot::new(catalog::def(names::REJECTED_REQUESTS));
        let mut normalized = FamilySnapshot::new(catalog::def(names::NORMALIZED_RECORDS));
        for signal in Signal::ALL {
            for transport in Transport::ALL {
                for reason in RequestRejection::ALL {
                    let n = self.rejected_requests[signal as usize][transport as usize]
                        [reason as usize]
                        .load(Relaxed);
                    if n > 0 {
                        requests.push_scalar(
                            vec![
                                label("signal", signal.as_str()),
                                label("transport", transport.as_str()),
                                label("reason", reason.as_str()),
                            ],
                            n as f64,
                        );
                    }
                }
            }
            for kind in RecordKind::ALL {
                let n = self.normalized[signal as usize][kind as usize].load(Relaxed);
                normalized.push_scalar(
                    vec![
                        label("signal", signal.as_str()),
                        label("record", kind.as_str()),
                    ],
                    n as f64,
                );
            }
        }
        out.push(requests);
        out.push(normalized);
        let mut build = FamilySnapshot::new(catalog::def(names::BUILD_INFO));
        build.push_scalar(vec![label("version", env!("CARGO_PKG_VERSION"))], 1.0);
        out.push(build);
    }
}
