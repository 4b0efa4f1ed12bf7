//! The signals drift is measured on: what one model call contributes to each.

use llmwatch_semconv::{FinishReason, LlmCall};

use crate::pricer::CallPrice;

/// A numeric signal: one value per call when the call has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NumericSignal {
    InputTokens,
    OutputTokens,
    CachedTokens,
    ReasoningTokens,
    Duration,
    TimeToFirstToken,
    TimePerOutputToken,
    CostPerCall,
    ResponseLength,
}

/// A categorical signal: one category per call (or several, for finish reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CategoricalSignal {
    FinishReason,
    ResponseModel,
    SystemFingerprint,
    ErrorType,
    OutputType,
}

impl NumericSignal {
    pub const ALL: [NumericSignal; 9] = [
        NumericSignal::InputTokens,
        NumericSignal::OutputTokens,
        NumericSignal::CachedTokens,
        NumericSignal::ReasoningTokens,
        NumericSignal::Duration,
        NumericSignal::TimeToFirstToken,
        NumericSignal::TimePerOutputToken,
        NumericSignal::CostPerCall,
        NumericSignal::ResponseLength,
    ];

    /// The `signal` label value.
    pub const fn name(self) -> &'static str {
        match self {
            NumericSignal::InputTokens => "input_tokens",
            NumericSignal::OutputTokens => "output_tokens",
            NumericSignal::CachedTokens => "cached_tokens",
            NumericSignal::ReasoningTokens => "reasoning_tokens",
            NumericSignal::Duration => "duration_seconds",
            NumericSignal::TimeToFirstToken => "time_to_first_token_seconds",
            NumericSignal::TimePerOutputToken => "time_per_output_token_seconds",
            NumericSignal::CostPerCall => "cost_usd",
            NumericSignal::ResponseLength => "response_length_chars",
        }
    }

    /// This call's value, if it has one.
    pub fn value(
        self,
        call: &LlmCall<'_>,
        price: &CallPrice,
        response_length: Option<usize>,
    ) -> Option<f64> {
        let tokens = |n: Option<u64>| n.map(|n| n as f64);
        match self {
            NumericSignal::InputTokens => tokens(call.usage.input),
            NumericSignal::OutputTokens => tokens(call.usage.output),
            NumericSignal::CachedTokens => tokens(call.usage.cache_read),
            NumericSignal::ReasoningTokens => tokens(call.usage.reasoning),
            NumericSignal::Duration => Some(call.duration_seconds),
            NumericSignal::TimeToFirstToken => call.time_to_first_token_seconds,
            NumericSignal::TimePerOutputToken => call.time_per_output_token_seconds(),
            NumericSignal::CostPerCall => price.total(),
            NumericSignal::ResponseLength => response_length.map(|n| n as f64),
        }
    }
}

impl CategoricalSignal {
    pub const ALL: [CategoricalSignal; 5] = [
        CategoricalSignal::FinishReason,
        CategoricalSignal::ResponseModel,
        CategoricalSignal::SystemFingerprint,
        CategoricalSignal::ErrorType,
        CategoricalSignal::OutputType,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            CategoricalSignal::FinishReason => "finish_reason",
            CategoricalSignal::ResponseModel => "response_model",
            CategoricalSignal::SystemFingerprint => "system_fingerprint",
            CategoricalSignal::ErrorType => "error_type",
            CategoricalSignal::OutputType => "output_type",
        }
    }

    /// This call's categories (each with its count), calling `add` for each.
    pub fn categories(self, call: &LlmCall<'_>, mut add: impl FnMut(&str, u64)) {
        match self {
            CategoricalSignal::FinishReason => {
                for (reason, n) in call.finish_reasons.iter() {
                    add(reason.as_str(), u64::from(n));
                }
            }
            CategoricalSignal::ResponseModel if !call.response_model.is_empty() => {
                add(call.response_model, 1)
            }
            CategoricalSignal::SystemFingerprint => {
                if let Some(fingerprint) = call.system_fingerprint {
                    add(fingerprint, 1);
                }
            }
            // Successful calls are a category of their own, so an error burst shows as drift.
            CategoricalSignal::ErrorType => add(call.error_type.unwrap_or("none"), 1),
            CategoricalSignal::OutputType => add(call.output_type.unwrap_or("text"), 1),
            CategoricalSignal::ResponseModel => {}
        }
    }
}

/// Whether a call ended for a reason that is a refusal or truncation (for SPC ratio charts).
pub fn finish_share(call: &LlmCall<'_>, reason: FinishReason) -> (u64, u64) {
    let total: u64 = call.finish_reasons.iter().map(|(_, n)| u64::from(n)).sum();
    (u64::from(call.finish_reasons.count(reason)), total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmwatch_semconv::{Normalizer, ResourceInfo};
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
    use opentelemetry_proto::tonic::trace::v1::Span;

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    #[test]
    fn a_call_contributes_to_each_signal_it_has() {
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            start_time_unix_nano: 1_000_000_000,
            end_time_unix_nano: 3_000_000_000,
            attributes: vec![
                kv("gen_ai.operation.name", Value::StringValue("chat".into())),
                kv("gen_ai.request.model", Value::StringValue("gpt-4o".into())),
                kv(
                    "gen_ai.response.model",
                    Value::StringValue("gpt-4o-2024-08-06".into()),
                ),
                kv("gen_ai.usage.input_tokens", Value::IntValue(120)),
                kv("gen_ai.usage.output_tokens", Value::IntValue(11)),
                kv("gen_ai.request.stream", Value::BoolValue(true)),
                kv(
                    "gen_ai.response.time_to_first_chunk",
                    Value::DoubleValue(0.5),
                ),
                kv(
                    "gen_ai.response.finish_reasons",
                    Value::StringValue("length".into()),
                ),
            ],
            ..Default::default()
        };
        let normalizer = Normalizer::default();
        let call = normalizer
            .span(&ResourceInfo::default(), &span)
            .unwrap()
            .unwrap();
        let value = |signal: NumericSignal| signal.value(&call, &CallPrice::Unpriced, Some(42));
        assert_eq!(value(NumericSignal::OutputTokens), Some(11.0));
        assert_eq!(value(NumericSignal::Duration), Some(2.0));
        assert_eq!(value(NumericSignal::TimePerOutputToken), Some(0.15));
        assert_eq!(value(NumericSignal::CostPerCall), None);
        assert_eq!(value(NumericSignal::CachedTokens), None);
        assert_eq!(value(NumericSignal::ResponseLength), Some(42.0));
        let mut seen = Vec::new();
        for signal in CategoricalSignal::ALL {
            signal.categories(&call, |category, n| {
                seen.push((signal.name(), category.to_owned(), n))
            });
        }
        assert_eq!(
            seen,
            [
                ("finish_reason", "length".to_owned(), 1),
                ("response_model", "gpt-4o-2024-08-06".to_owned(), 1),
                ("error_type", "none".to_owned(), 1),
                ("output_type", "text".to_owned(), 1),
            ]
        );
        assert_eq!(finish_share(&call, FinishReason::Length), (1, 1));
    }
}
