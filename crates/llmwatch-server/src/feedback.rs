//! llmwatch's feedback APIs on the ingest listeners: `POST /v1/feedback` (JSON) on OTLP/HTTP and
//! `llmwatch.v1.FeedbackService/Submit` on OTLP/gRPC. Both turn items into the same
//! [`FeedbackFields`] the OTLP feedback event gives, checked and recorded by the processor: an
//! invalid item is refused and counted by reason, the valid ones in the same request still count.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use llmwatch_core::RequestRejection;
use llmwatch_core::quality::Channel;
use llmwatch_proto::v1::{Feedback as ProtoFeedback, Signal};
use llmwatch_proto::{FeedbackService, SubmitFeedbackRequest, SubmitFeedbackResponse};
use llmwatch_semconv::{FeedbackFields, RecordError, RejectReason};
use serde::Deserialize;
use tonic::{Code, Request, Status};

use crate::Shared;
use crate::body::{Format, Rejection};

/// Most items one request may carry.
pub const MAX_FEEDBACK_ITEMS: usize = 1_000;

/// Refusals quoted in one answer; the rest are only counted.
const MAX_QUOTED_ERRORS: usize = 3;

/// What a batch came to.
#[derive(Debug, Default)]
struct Outcome {
    accepted: u32,
    matched: u32,
    rejected: u32,
    errors: Vec<String>,
    /// The request was refused as a whole, for this reason.
    refused: Option<String>,
}

impl Outcome {
    fn refuse(&mut self, index: usize, error: impl std::fmt::Display) {
        self.rejected += 1;
        if self.errors.len() < MAX_QUOTED_ERRORS {
            self.errors.push(format!("item {index}: {error}"));
        }
    }

    fn message(&self) -> String {
        if let Some(refused) = &self.refused {
            return refused.clone();
        }
        let mut message = self.errors.join("; ");
        let more = self.rejected as usize - self.errors.len();
        if more > 0 {
            message.push_str(&format!("; and {more} more rejected items"));
        }
        message
    }

    /// Nothing was recorded though something was sent.
    fn all_refused(&self) -> bool {
        self.accepted == 0 && self.rejected > 0
    }
}

fn submit(
    shared: &Shared,
    outcome: &mut Outcome,
    index: usize,
    fields: &FeedbackFields<'_>,
    channel: Channel,
) {
    match shared.processor.submit_feedback(fields, channel) {
        Ok(receipt) => {
            outcome.accepted += 1;
            outcome.matched += u32::from(receipt.matched.is_some());
        }
        Err(error) => outcome.refuse(index, error),
    }
}

/// One item of `POST /v1/feedback`. Unknown fields are refused, so a misspelt key is an error
/// rather than silently missing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonFeedback {
    /// 32 hex digits, as OTLP/JSON writes ids.
    #[serde(default)]
    trace_id: Option<String>,
    /// 16 hex digits.
    #[serde(default)]
    span_id: Option<String>,
    #[serde(default)]
    response_id: Option<String>,
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default)]
    service_name: Option<String>,
    #[serde(default)]
    signal: Option<String>,
    #[serde(default)]
    rating: Option<f64>,
    #[serde(default)]
    rating_min: Option<f64>,
    #[serde(default)]
    rating_max: Option<f64>,
    #[serde(default)]
    comment: Option<String>,
}

/// Decodes a hex id; `len` bytes expected.
fn hex_id(text: Option<&str>, len: usize, what: &str) -> Result<Vec<u8>, RecordError> {
    let text = text.map(str::trim).unwrap_or("");
    let reason = if len == 16 {
        RejectReason::InvalidTraceId
    } else {
        RejectReason::InvalidSpanId
    };
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let digits = text.as_bytes();
    if digits.len() != len * 2 || !digits.iter().all(u8::is_ascii_hexdigit) {
        let shown: String = text.chars().take(40).collect();
        return Err(RecordError {
            reason,
            detail: format!("{what} must be {} hex digits, got {shown:?}", len * 2),
        });
    }
    Ok(digits
        .chunks(2)
        .map(|pair| {
            let digit = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            digit(pair[0]) << 4 | digit(pair[1])
        })
        .collect())
}

/// `POST /v1/feedback`: one JSON object, or an array of them.
pub(crate) async fn http(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if Format::from_content_type(content_type) != Some(Format::Json) {
        let rejection = Rejection::new(
            RequestRejection::UnsupportedMediaType,
            format!(
                "unsupported Content-Type {:?}; feedback is application/json",
                content_type.unwrap_or("")
            ),
        );
        return refuse_request(&shared, rejection);
    }
    let (_permit, bytes) = match crate::http::admit_and_read(&shared, &headers, body).await {
        Ok(read) => read,
        Err(rejection) => return refuse_request(&shared, rejection),
    };
    let items = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Array(items)) => items,
        Ok(item @ serde_json::Value::Object(_)) => vec![item],
        Ok(_) => {
            return refuse_request(
                &shared,
                Rejection::new(
                    RequestRejection::Undecodable,
                    "expected a feedback object or an array of them",
                ),
            );
        }
        Err(e) => {
            return refuse_request(
                &shared,
                Rejection::new(
                    RequestRejection::Undecodable,
                    format!("invalid JSON body: {e}"),
                ),
            );
        }
    };
    if items.len() > MAX_FEEDBACK_ITEMS {
        return too_many(&shared, Channel::Http, items.len()).into_http();
    }
    let mut outcome = Outcome::default();
    let signals = shared.processor.quality().signals();
    for (index, item) in items.into_iter().enumerate() {
        let item: JsonFeedback = match serde_json::from_value(item) {
            Ok(item) => item,
            Err(e) => {
                signals.rejected(Channel::Http, RejectReason::InvalidFeedback.as_str());
                outcome.refuse(index, format!("invalid_feedback: {e}"));
                continue;
            }
        };
        let ids = hex_id(item.trace_id.as_deref(), 16, "trace_id")
            .and_then(|trace| Ok((trace, hex_id(item.span_id.as_deref(), 8, "span_id")?)));
        let (trace_id, span_id) = match ids {
            Ok(ids) => ids,
            Err(error) => {
                signals.rejected(Channel::Http, error.reason.as_str());
                outcome.refuse(index, error);
                continue;
            }
        };
        let fields = FeedbackFields {
            trace_id: &trace_id,
            span_id: &span_id,
            response_id: item.response_id.as_deref(),
            conversation_id: item.conversation_id.as_deref(),
            service_name: item.service_name.as_deref(),
            signal: item.signal.as_deref(),
            rating: item.rating,
            rating_min: item.rating_min,
            rating_max: item.rating_max,
            comment: item.comment.as_deref(),
            evaluation_name: None,
        };
        submit(&shared, &mut outcome, index, &fields, Channel::Http);
    }
    outcome.into_http()
}

impl Outcome {
    /// 200 with the counts when anything was recorded (or nothing was sent), 400 with the same
    /// body and a message when every item was refused.
    fn into_http(self) -> Response {
        let mut body = serde_json::json!({
            "accepted": self.accepted,
            "matched": self.matched,
            "rejected": self.rejected,
            "errors": self.errors,
        });
        let status = if self.all_refused() {
            body["message"] = self.message().into();
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        json(status, body)
    }
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, Format::Json.content_type())],
        body.to_string(),
    )
        .into_response()
}

/// A request refused as a whole, counted under `channel="http"` with the request's reason.
fn refuse_request(shared: &Shared, rejection: Rejection) -> Response {
    shared
        .processor
        .quality()
        .signals()
        .rejected(Channel::Http, rejection.reason.as_str());
    let status = match rejection.reason {
        RequestRejection::Undecodable => StatusCode::BAD_REQUEST,
        RequestRejection::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        RequestRejection::UnsupportedMediaType | RequestRejection::UnsupportedEncoding => {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        }
        RequestRejection::Overloaded => StatusCode::TOO_MANY_REQUESTS,
        RequestRejection::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        RequestRejection::Timeout => StatusCode::REQUEST_TIMEOUT,
    };
    let mut response = json(status, serde_json::json!({ "message": rejection.message }));
    if matches!(
        rejection.reason,
        RequestRejection::Overloaded | RequestRejection::Unavailable
    ) {
        let seconds = shared.config.retry_after.as_secs().max(1);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, seconds.into());
    }
    response
}

/// More items than one request may carry: counted once, nothing recorded.
fn too_many(shared: &Shared, channel: Channel, n: usize) -> Outcome {
    shared
        .processor
        .quality()
        .signals()
        .rejected(channel, "too_many_items");
    let message = format!("too_many_items: {n} items in one request, at most {MAX_FEEDBACK_ITEMS}");
    Outcome {
        rejected: n as u32,
        errors: vec![message.clone()],
        refused: Some(message),
        ..Outcome::default()
    }
}

/// The gRPC `FeedbackService` on the OTLP/gRPC listener.
pub(crate) struct FeedbackReceiver(pub Arc<Shared>);

fn signal_name(signal: i32) -> Option<&'static str> {
    match Signal::try_from(signal).ok()? {
        Signal::Unspecified => None,
        Signal::ThumbsUp => Some("thumbs_up"),
        Signal::ThumbsDown => Some("thumbs_down"),
        Signal::Rating => Some("rating"),
        Signal::Correction => Some("correction"),
        Signal::Report => Some("report"),
    }
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

#[tonic::async_trait]
impl FeedbackService for FeedbackReceiver {
    async fn submit(
        &self,
        request: Request<SubmitFeedbackRequest>,
    ) -> Result<tonic::Response<SubmitFeedbackResponse>, Status> {
        let _permit = crate::grpc::admit(&self.0)?;
        let items = &request.get_ref().feedback;
        let outcome = if items.len() > MAX_FEEDBACK_ITEMS {
            too_many(&self.0, Channel::Grpc, items.len())
        } else {
            let mut outcome = Outcome::default();
            for (index, item) in items.iter().enumerate() {
                let ProtoFeedback {
                    trace_id,
                    span_id,
                    response_id,
                    conversation_id,
                    service_name,
                    signal,
                    rating,
                    rating_min,
                    rating_max,
                    comment,
                } = item;
                // An unknown enum number is an invalid signal, not a missing one.
                let unknown = format!("signal number {signal}");
                let signal = match signal_name(*signal) {
                    Some(name) => Some(name),
                    None if *signal != Signal::Unspecified as i32 => Some(unknown.as_str()),
                    None => None,
                };
                let fields = FeedbackFields {
                    trace_id,
                    span_id,
                    response_id: non_empty(response_id),
                    conversation_id: non_empty(conversation_id),
                    service_name: non_empty(service_name),
                    signal,
                    rating: *rating,
                    rating_min: *rating_min,
                    rating_max: *rating_max,
                    comment: non_empty(comment),
                    evaluation_name: None,
                };
                submit(&self.0, &mut outcome, index, &fields, Channel::Grpc);
            }
            outcome
        };
        if outcome.all_refused() {
            return Err(Status::new(Code::InvalidArgument, outcome.message()));
        }
        Ok(tonic::Response::new(SubmitFeedbackResponse {
            accepted: outcome.accepted,
            matched: outcome.matched,
            rejected: outcome.rejected,
            error_message: if outcome.rejected > 0 {
                outcome.message()
            } else {
                String::new()
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids_decode_or_name_what_is_wrong() {
        assert_eq!(
            hex_id(Some("0af7651916cd43dd8448eb211c80319c"), 16, "trace_id").unwrap()[..3],
            [0x0a, 0xf7, 0x65]
        );
        assert_eq!(hex_id(None, 8, "span_id").unwrap(), Vec::<u8>::new());
        let error = hex_id(Some("b7ad6b71692033"), 8, "span_id").unwrap_err();
        assert_eq!(error.reason, RejectReason::InvalidSpanId);
        assert_eq!(
            error.detail,
            "span_id must be 16 hex digits, got \"b7ad6b71692033\""
        );
        assert!(hex_id(Some("zz".repeat(16).as_str()), 16, "trace_id").is_err());
    }

    #[test]
    fn answers_quote_the_first_errors_and_count_the_rest() {
        let mut outcome = Outcome::default();
        for index in 0..5 {
            outcome.refuse(index, "invalid_feedback: no signal");
        }
        assert!(outcome.all_refused());
        assert_eq!(
            outcome.message(),
            "item 0: invalid_feedback: no signal; item 1: invalid_feedback: no signal; \
             item 2: invalid_feedback: no signal; and 2 more rejected items"
        );
    }
}
