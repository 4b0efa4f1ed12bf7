//! Log record → [`LogEvent`]: evaluation results and the message events that carry content.

use opentelemetry_proto::tonic::logs::v1::LogRecord;

use crate::call::{CallContentEvent, Evaluation, LogEvent};
use crate::content::{CapturedContent, ContentRef};
use crate::error::{RecordError, RejectReason};
use crate::finish_reason::{FinishReason, FinishReasonCounts};
use crate::normalizer::Normalizer;
use crate::resource::ResourceInfo;
use crate::value::{as_f64, find, find_str};

impl Normalizer {
    /// Normalizes one log record: `Ok(None)` for records that are not GenAI events.
    pub fn log_record<'a>(
        &self,
        resource: &ResourceInfo<'a>,
        record: &'a LogRecord,
    ) -> Result<Option<LogEvent<'a>>, RecordError> {
        // Newer SDKs fill the `event_name` field; older ones an `event.name` attribute.
        let event_name = if record.event_name.is_empty() {
            find_str(&record.attributes, "event.name").unwrap_or("")
        } else {
            record.event_name.as_str()
        };
        if !GENAI_EVENTS.contains(&event_name) {
            return Ok(None);
        }
        // Later stages join these to their span by ids: malformed ones would join nothing.
        check_optional_ids(&record.trace_id, &record.span_id)?;
        let attributes = &record.attributes;
        let event = match event_name {
            "gen_ai.evaluation.result" => {
                let name = find_str(attributes, "gen_ai.evaluation.name").ok_or_else(|| {
                    RecordError::new(
                        RejectReason::InvalidEvaluation,
                        "gen_ai.evaluation.result without gen_ai.evaluation.name",
                    )
                })?;
                let score = match find(attributes, "gen_ai.evaluation.score.value") {
                    None => None,
                    Some(value) => Some(as_f64(value).ok_or_else(|| {
                        RecordError::new(
                            RejectReason::InvalidEvaluation,
                            format!(
                                "evaluation {name:?}: gen_ai.evaluation.score.value must be a finite number, got {}",
                                crate::value::describe(value)
                            ),
                        )
                    })?),
                };
                LogEvent::Evaluation(Evaluation {
                    trace_id: &record.trace_id,
                    span_id: &record.span_id,
                    name,
                    score,
                    label: find_str(attributes, "gen_ai.evaluation.score.label"),
                    explanation: find_str(attributes, "gen_ai.evaluation.explanation"),
                    response_id: find_str(attributes, "gen_ai.response.id"),
                    error_type: find_str(attributes, "error.type"),
                    service_name: resource
                        .service_name
                        .unwrap_or(resource.fallback_service_name),
                })
            }
            "gen_ai.choice" => {
                let mut finish_reasons = FinishReasonCounts::default();
                if let Some(reason) = record.body.as_ref().and_then(|body| match &body.value {
                    Some(
                        opentelemetry_proto::tonic::common::v1::any_value::Value::KvlistValue(kv),
                    ) => find_str(&kv.values, "finish_reason"),
                    _ => None,
                }) {
                    finish_reasons.add(FinishReason::parse(reason));
                }
                content_event(
                    record,
                    event_name,
                    finish_reasons,
                    CapturedContent {
                        output: record.body.as_ref().map(ContentRef::Value),
                        ..Default::default()
                    },
                )
            }
            "gen_ai.system.message" => content_event(
                record,
                event_name,
                FinishReasonCounts::default(),
                CapturedContent {
                    system_instructions: record.body.as_ref().map(ContentRef::Value),
                    ..Default::default()
                },
            ),
            "gen_ai.user.message"
            | "gen_ai.assistant.message"
            | "gen_ai.tool.message"
            | "gen_ai.tools.message" => content_event(
                record,
                event_name,
                FinishReasonCounts::default(),
                CapturedContent {
                    input: record.body.as_ref().map(ContentRef::Value),
                    ..Default::default()
                },
            ),
            "gen_ai.client.inference.operation.details" => {
                let mut finish_reasons = FinishReasonCounts::default();
                if let Some(value) = find(attributes, "gen_ai.response.finish_reasons")
                    && let Some(
                        opentelemetry_proto::tonic::common::v1::any_value::Value::ArrayValue(a),
                    ) = &value.value
                {
                    for reason in a
                        .values
                        .iter()
                        .filter_map(crate::value::as_str)
                        .filter(|r| !r.trim().is_empty())
                    {
                        finish_reasons.add(FinishReason::parse(reason));
                    }
                }
                content_event(
                    record,
                    event_name,
                    finish_reasons,
                    CapturedContent {
                        input: find(attributes, "gen_ai.input.messages").map(ContentRef::Value),
                        output: find(attributes, "gen_ai.output.messages").map(ContentRef::Value),
                        system_instructions: find(attributes, "gen_ai.system_instructions")
                            .map(ContentRef::Value),
                    },
                )
            }
            _ => return Ok(None),
        };
        Ok(Some(event))
    }
}

/// The log-based events this crate reads; every other record is not ours.
const GENAI_EVENTS: [&str; 8] = [
    "gen_ai.evaluation.result",
    "gen_ai.choice",
    "gen_ai.system.message",
    "gen_ai.user.message",
    "gen_ai.assistant.message",
    "gen_ai.tool.message",
    // OpenLIT's spelling of the tool message event.
    "gen_ai.tools.message",
    "gen_ai.client.inference.operation.details",
];

fn content_event<'a>(
    record: &'a LogRecord,
    event_name: &'a str,
    finish_reasons: FinishReasonCounts,
    content: CapturedContent<'a>,
) -> LogEvent<'a> {
    LogEvent::CallContent(CallContentEvent {
        trace_id: &record.trace_id,
        span_id: &record.span_id,
        event_name,
        finish_reasons,
        content,
    })
}

/// Log records may lack trace context; when they carry it, it must be well formed.
fn check_optional_ids(trace_id: &[u8], span_id: &[u8]) -> Result<(), RecordError> {
    if !trace_id.is_empty() && trace_id.len() != 16 {
        return Err(RecordError::new(
            RejectReason::InvalidTraceId,
            format!(
                "trace_id must be empty or 16 bytes (got {} bytes)",
                trace_id.len()
            ),
        ));
    }
    if !span_id.is_empty() && span_id.len() != 8 {
        return Err(RecordError::new(
            RejectReason::InvalidSpanId,
            format!(
                "span_id must be empty or 8 bytes (got {} bytes)",
                span_id.len()
            ),
        ));
    }
    Ok(())
}
