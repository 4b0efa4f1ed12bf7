//! What differs between traces and logs, for every receiver: the request and response types,
//! which processor entry point takes them, and the OTLP partial-success answer.

use llmwatch_core::{IngestReport, Processor, Signal, Transport};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

/// What differs between the traces and the logs endpoint.
pub(crate) trait Export {
    const SIGNAL: Signal;
    type Request: Message + Default + serde::de::DeserializeOwned;
    type Response: Message + serde::Serialize;
    fn ingest(processor: &Processor, request: &Self::Request, transport: Transport)
    -> IngestReport;
    fn response(report: IngestReport) -> Self::Response;
}

pub(crate) struct Traces;
pub(crate) struct Logs;

impl Export for Traces {
    const SIGNAL: Signal = Signal::Traces;
    type Request = ExportTraceServiceRequest;
    type Response = ExportTraceServiceResponse;

    fn ingest(
        processor: &Processor,
        request: &Self::Request,
        transport: Transport,
    ) -> IngestReport {
        processor.ingest_traces(request, transport)
    }

    fn response(report: IngestReport) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: (report.rejected > 0).then_some(ExportTracePartialSuccess {
                rejected_spans: report.rejected as i64,
                error_message: report.error_message,
            }),
        }
    }
}

impl Export for Logs {
    const SIGNAL: Signal = Signal::Logs;
    type Request = ExportLogsServiceRequest;
    type Response = ExportLogsServiceResponse;

    fn ingest(
        processor: &Processor,
        request: &Self::Request,
        transport: Transport,
    ) -> IngestReport {
        processor.ingest_logs(request, transport)
    }

    fn response(report: IngestReport) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: (report.rejected > 0).then_some(ExportLogsPartialSuccess {
                rejected_log_records: report.rejected as i64,
                error_message: report.error_message,
            }),
        }
    }
}
