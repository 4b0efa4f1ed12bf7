//! Log record → [`LogEvent`]: evaluation results, user feedback and the message events that carry
//! content.

use opentelemetry_proto::tonic::logs::v1::LogRecord;

use crate::call::{CallContentEvent, Evaluation, LogEvent};
use crate::content::{CapturedContent, ContentRef};
use crate::error::{RecordError, RejectReason};
use crate::feedback::{FEEDBACK_EVENT, FeedbackFields};
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
                if let Some(kind) = self.feedback.kind_of(name) {
                    let fields = FeedbackFields {
                        evaluation_name: Some(name),
                        ..feedback_fields(resource, record)?
                    };
                    let label = find_str(attributes, "gen_ai.evaluation.score.label");
                    return self
                        .feedback
                        .from_evaluation(kind, score, label, fields)
                        .map(|feedback| Some(LogEvent::Feedback(feedback)));
                }
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
            FEEDBACK_EVENT => {
                let fields = feedback_fields(resource, record)?;
                LogEvent::Feedback(self.feedback.check(&fields)?)
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
                    resource,
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
                resource,
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
                resource,
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
                    resource,
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
const GENAI_EVENTS: [&str; 9] = [
    "gen_ai.evaluation.result",
    FEEDBACK_EVENT,
    "gen_ai.choice",
    "gen_ai.system.message",
    "gen_ai.user.message",
    "gen_ai.assistant.message",
    "gen_ai.tool.message",
    // OpenLIT's spelling of the tool message event.
    "gen_ai.tools.message",
    "gen_ai.client.inference.operation.details",
];

/// The feedback attributes any feedback-carrying event may have; the record's trace context
/// names the call the feedback is about.
fn feedback_fields<'a>(
    resource: &ResourceInfo<'a>,
    record: &'a LogRecord,
) -> Result<FeedbackFields<'a>, RecordError> {
    let attributes = &record.attributes;
    let number = |key: &str| -> Result<Option<f64>, RecordError> {
        match find(attributes, key) {
            None => Ok(None),
            Some(value) => as_f64(value).map(Some).ok_or_else(|| {
                RecordError::new(
                    RejectReason::InvalidFeedback,
                    format!(
                        "{key} must be a finite number, got {}",
                        crate::value::describe(value)
                    ),
                )
            }),
        }
    };
    Ok(FeedbackFields {
        trace_id: &record.trace_id,
        span_id: &record.span_id,
        response_id: find_str(attributes, "gen_ai.response.id"),
        conversation_id: find_str(attributes, "gen_ai.conversation.id")
            .or_else(|| find_str(attributes, "session.id")),
        service_name: Some(
            resource
                .service_name
                .unwrap_or(resource.fallback_service_name),
        ),
        signal: find_str(attributes, "gen_ai.feedback.signal"),
        rating: number("gen_ai.feedback.rating")?,
        rating_min: number("gen_ai.feedback.rating.min")?,
        rating_max: number("gen_ai.feedback.rating.max")?,
        comment: find_str(attributes, "gen_ai.feedback.comment"),
        evaluation_name: None,
    })
}

fn content_event<'a>(
    resource: &ResourceInfo<'a>,
    record: &'a LogRecord,
    event_name: &'a str,
    finish_reasons: FinishReasonCounts,
    content: CapturedContent<'a>,
) -> LogEvent<'a> {
    LogEvent::CallContent(CallContentEvent {
        trace_id: &record.trace_id,
        span_id: &record.span_id,
        event_name,
        service_name: resource
            .service_name
            .unwrap_or(resource.fallback_service_name),
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
