//! Builders for OTLP spans, resources and log records shaped as real emitters shape them, and an
//! assertion that compares every field of a normalized call at once.

#![allow(dead_code)]

use llmwatch_semconv::{FinishReason, LlmCall, Normalizer, RecordError, ResourceInfo, TokenUsage};
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, KeyValue, KeyValueList, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};

/// The W3C trace-context example ids.
pub const TRACE_ID: [u8; 16] = [
    0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c,
];
pub const SPAN_ID: [u8; 8] = [0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31];

/// 2026-01-01T00:00:00Z in Unix nanoseconds (1 767 225 600 s).
pub const T0: u64 = 1_767_225_600_000_000_000;
pub const MS: u64 = 1_000_000;

pub fn s(value: &str) -> AnyValue {
    AnyValue {
        value: Some(Value::StringValue(value.to_owned())),
    }
}

pub fn i(value: i64) -> AnyValue {
    AnyValue {
        value: Some(Value::IntValue(value)),
    }
}

pub fn f(value: f64) -> AnyValue {
    AnyValue {
        value: Some(Value::DoubleValue(value)),
    }
}

pub fn b(value: bool) -> AnyValue {
    AnyValue {
        value: Some(Value::BoolValue(value)),
    }
}

pub fn array(values: Vec<AnyValue>) -> AnyValue {
    AnyValue {
        value: Some(Value::ArrayValue(ArrayValue { values })),
    }
}

/// A string array, as the SDKs write `string[]` attributes.
pub fn strs(values: &[&str]) -> AnyValue {
    array(values.iter().map(|v| s(v)).collect())
}

pub fn kvlist(values: Vec<KeyValue>) -> AnyValue {
    AnyValue {
        value: Some(Value::KvlistValue(KeyValueList { values })),
    }
}

pub fn kv(key: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(value),
        ..Default::default()
    }
}

pub fn resource(attributes: Vec<KeyValue>) -> Resource {
    Resource {
        attributes,
        ..Default::default()
    }
}

/// A span under construction: CLIENT ids above, starting at [`T0`], lasting one second.
#[derive(Debug)]
pub struct SpanBuilder(Span);

impl SpanBuilder {
    pub fn new(name: &str, kind: SpanKind) -> SpanBuilder {
        SpanBuilder(Span {
            trace_id: TRACE_ID.to_vec(),
            span_id: SPAN_ID.to_vec(),
            name: name.to_owned(),
            kind: kind as i32,
            start_time_unix_nano: T0,
            end_time_unix_nano: T0 + 1_000 * MS,
            ..Default::default()
        })
    }

    /// Sets the duration, in nanoseconds after [`T0`].
    pub fn lasting(mut self, nanos: u64) -> SpanBuilder {
        self.0.end_time_unix_nano = T0 + nanos;
        self
    }

    pub fn times(mut self, start: u64, end: u64) -> SpanBuilder {
        self.0.start_time_unix_nano = start;
        self.0.end_time_unix_nano = end;
        self
    }

    pub fn ids(mut self, trace_id: &[u8], span_id: &[u8]) -> SpanBuilder {
        self.0.trace_id = trace_id.to_vec();
        self.0.span_id = span_id.to_vec();
        self
    }

    pub fn attr(mut self, key: &str, value: AnyValue) -> SpanBuilder {
        self.0.attributes.push(kv(key, value));
        self
    }

    /// A span event `after` nanoseconds after [`T0`].
    pub fn event(mut self, name: &str, after: u64, attributes: Vec<KeyValue>) -> SpanBuilder {
        self.0.events.push(Event {
            time_unix_nano: T0 + after,
            name: name.to_owned(),
            attributes,
            dropped_attributes_count: 0,
        });
        self
    }

    pub fn status(mut self, code: StatusCode, message: &str) -> SpanBuilder {
        self.0.status = Some(Status {
            message: message.to_owned(),
            code: code as i32,
        });
        self
    }

    pub fn trace_state(mut self, trace_state: &str) -> SpanBuilder {
        self.0.trace_state = trace_state.to_owned();
        self
    }

    pub fn build(self) -> Span {
        self.0
    }
}

/// A log record in the given trace and span, emitted at [`T0`].
pub fn log_record(
    event_name: &str,
    attributes: Vec<KeyValue>,
    body: Option<AnyValue>,
) -> LogRecord {
    LogRecord {
        time_unix_nano: T0,
        observed_time_unix_nano: T0,
        severity_number: 9,
        body,
        attributes,
        trace_id: TRACE_ID.to_vec(),
        span_id: SPAN_ID.to_vec(),
        event_name: event_name.to_owned(),
        ..Default::default()
    }
}

/// Normalizes one span under one (optional) resource.
pub fn normalize<'a>(
    normalizer: &Normalizer,
    resource: Option<&'a Resource>,
    span: &'a Span,
) -> Result<Option<LlmCall<'a>>, RecordError> {
    let info: ResourceInfo<'a> = normalizer.resource(resource);
    normalizer.span(&info, span)
}

/// Normalizes a span that must be a model call.
pub fn call<'a>(
    normalizer: &Normalizer,
    resource: Option<&'a Resource>,
    span: &'a Span,
) -> LlmCall<'a> {
    match normalize(normalizer, resource, span) {
        Ok(Some(call)) => call,
        Ok(None) => panic!("span {:?} was not recognised as a model call", span.name),
        Err(error) => panic!("span {:?} was rejected: {error}", span.name),
    }
}

/// Every field of an [`LlmCall`] worth asserting; fields left at [`Expected::default`] are
/// asserted to be absent too.
#[derive(Debug, Clone)]
pub struct Expected<'e> {
    pub operation: &'e str,
    pub provider: &'e str,
    pub request_model: &'e str,
    pub response_model: &'e str,
    pub response_id: Option<&'e str>,
    pub system_fingerprint: Option<&'e str>,
    pub streaming: Option<bool>,
    pub usage: TokenUsage,
    pub finish_reasons: &'e [(FinishReason, u16)],
    pub duration_seconds: f64,
    pub time_to_first_token_seconds: Option<f64>,
    pub time_per_output_token_seconds: Option<f64>,
    pub error_type: Option<&'e str>,
    pub service_name: &'e str,
    pub environment: Option<&'e str>,
    pub conversation_id: Option<&'e str>,
    pub user_id: Option<&'e str>,
    pub output_type: Option<&'e str>,
    pub reported_cost_usd: Option<f64>,
    /// Values of the configured dimensions, in order; the rest must be unset.
    pub dimensions: &'e [Option<&'e str>],
    /// `to_text()` of each captured side, `None` when not captured.
    pub input_text: Option<&'e str>,
    pub output_text: Option<&'e str>,
    pub system_text: Option<&'e str>,
    pub adjusted_count: f64,
}

impl Default for Expected<'_> {
    fn default() -> Self {
        Expected {
            operation: "",
            provider: "",
            request_model: "",
            response_model: "",
            response_id: None,
            system_fingerprint: None,
            streaming: None,
            usage: TokenUsage::default(),
            finish_reasons: &[],
            duration_seconds: 1.0,
            time_to_first_token_seconds: None,
            time_per_output_token_seconds: None,
            error_type: None,
            service_name: "",
            environment: None,
            conversation_id: None,
            user_id: None,
            output_type: None,
            reported_cost_usd: None,
            dimensions: &[],
            input_text: None,
            output_text: None,
            system_text: None,
            adjusted_count: 1.0,
        }
    }
}

/// Asserts every field of `call` (normalized from `span`) against `expected`.
#[track_caller]
pub fn assert_call(call: &LlmCall<'_>, span: &Span, expected: &Expected<'_>) {
    let name = &span.name;
    assert_eq!(call.trace_id, span.trace_id.as_slice(), "{name}: trace_id");
    assert_eq!(call.span_id, span.span_id.as_slice(), "{name}: span_id");
    assert_eq!(
        call.start_unix_nano, span.start_time_unix_nano,
        "{name}: start"
    );
    assert_eq!(call.end_unix_nano, span.end_time_unix_nano, "{name}: end");
    assert_eq!(call.operation, expected.operation, "{name}: operation");
    assert_eq!(call.provider, expected.provider, "{name}: provider");
    assert_eq!(
        call.request_model, expected.request_model,
        "{name}: request_model"
    );
    assert_eq!(
        call.response_model, expected.response_model,
        "{name}: response_model"
    );
    assert_eq!(
        call.response_id, expected.response_id,
        "{name}: response_id"
    );
    assert_eq!(
        call.system_fingerprint, expected.system_fingerprint,
        "{name}: system_fingerprint"
    );
    assert_eq!(call.streaming, expected.streaming, "{name}: streaming");
    assert_eq!(call.usage, expected.usage, "{name}: usage");
    assert_eq!(
        call.finish_reasons.iter().collect::<Vec<_>>(),
        expected.finish_reasons.to_vec(),
        "{name}: finish_reasons"
    );
    assert_eq!(
        call.duration_seconds, expected.duration_seconds,
        "{name}: duration"
    );
    assert_eq!(
        call.time_to_first_token_seconds, expected.time_to_first_token_seconds,
        "{name}: time to first token"
    );
    assert_eq!(
        call.time_per_output_token_seconds(),
        expected.time_per_output_token_seconds,
        "{name}: time per output token"
    );
    assert_eq!(call.error_type, expected.error_type, "{name}: error_type");
    assert_eq!(
        call.service_name, expected.service_name,
        "{name}: service_name"
    );
    assert_eq!(
        call.environment, expected.environment,
        "{name}: environment"
    );
    assert_eq!(
        call.conversation_id, expected.conversation_id,
        "{name}: conversation_id"
    );
    assert_eq!(call.user_id, expected.user_id, "{name}: user_id");
    assert_eq!(
        call.output_type, expected.output_type,
        "{name}: output_type"
    );
    assert_eq!(
        call.reported_cost_usd, expected.reported_cost_usd,
        "{name}: reported_cost_usd"
    );
    let dimensions: Vec<Option<&str>> = call.dimensions.iter().map(|d| d.as_deref()).collect();
    let mut wanted = expected.dimensions.to_vec();
    wanted.resize(dimensions.len(), None);
    assert_eq!(dimensions, wanted, "{name}: dimensions");
    let text = |side: Option<llmwatch_semconv::ContentRef<'_>>| side.map(|c| c.to_text());
    assert_eq!(
        text(call.content.input),
        expected.input_text.map(str::to_owned),
        "{name}: input content"
    );
    assert_eq!(
        text(call.content.output),
        expected.output_text.map(str::to_owned),
        "{name}: output content"
    );
    assert_eq!(
        text(call.content.system_instructions),
        expected.system_text.map(str::to_owned),
        "{name}: system instructions"
    );
    assert_eq!(
        call.content.is_empty(),
        expected.input_text.is_none()
            && expected.output_text.is_none()
            && expected.system_text.is_none(),
        "{name}: content presence"
    );
    assert_eq!(
        call.sampling.adjusted_count, expected.adjusted_count,
        "{name}: adjusted_count"
    );
}
