//! Typed reads of OTLP `AnyValue`s, tolerant of the ways emitters encode the same number.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};

/// The string inside a value, when it is one.
pub fn as_str(value: &AnyValue) -> Option<&str> {
    match &value.value {
        Some(Value::StringValue(s)) => Some(s.as_str()),
        _ => None,
    }
}

/// A boolean, also from the strings `"true"`/`"false"` some SDKs write.
pub fn as_bool(value: &AnyValue) -> Option<bool> {
    match &value.value {
        Some(Value::BoolValue(b)) => Some(*b),
        Some(Value::StringValue(s)) if s.eq_ignore_ascii_case("true") => Some(true),
        Some(Value::StringValue(s)) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A finite floating-point number, from a double, an int or a numeric string.
pub fn as_f64(value: &AnyValue) -> Option<f64> {
    let number = match &value.value {
        Some(Value::DoubleValue(d)) => *d,
        Some(Value::IntValue(i)) => *i as f64,
        Some(Value::StringValue(s)) => s.trim().parse().ok()?,
        _ => return None,
    };
    number.is_finite().then_some(number)
}

/// What an attribute meant to be a count really holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Count {
    Valid(i64),
    /// Present but not an integer (a string that does not parse, a fractional double, a list).
    NotAnInteger,
}

/// An integer count, from an int, an integral double or a numeric string.
pub fn as_count(value: &AnyValue) -> Count {
    match &value.value {
        Some(Value::IntValue(i)) => Count::Valid(*i),
        Some(Value::DoubleValue(d)) if d.is_finite() && d.fract() == 0.0 && d.abs() < 9.0e15 => {
            Count::Valid(*d as i64)
        }
        Some(Value::StringValue(s)) => s.trim().parse().map_or(Count::NotAnInteger, Count::Valid),
        _ => Count::NotAnInteger,
    }
}

/// The first attribute with this key.
pub fn find<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

/// The first string attribute with this key.
pub fn find_str<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    find(attributes, key)
        .and_then(as_str)
        .filter(|s| !s.is_empty())
}

/// A short human description of a value, for error messages.
pub fn describe(value: &AnyValue) -> String {
    match &value.value {
        Some(Value::StringValue(s)) => {
            let shown: String = s.chars().take(40).collect();
            format!("string {shown:?}")
        }
        Some(Value::IntValue(i)) => format!("int {i}"),
        Some(Value::DoubleValue(d)) => format!("double {d}"),
        Some(Value::BoolValue(b)) => format!("bool {b}"),
        Some(Value::ArrayValue(_)) => "an array".to_owned(),
        Some(Value::KvlistValue(_)) => "a key-value list".to_owned(),
        Some(Value::BytesValue(_)) => "bytes".to_owned(),
        Some(_) | None => "an empty value".to_owned(),
    }
}

/// A scalar rendered as a label value: strings borrowed, numbers and booleans formatted.
pub fn as_label(value: &AnyValue) -> Option<std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    match &value.value {
        Some(Value::StringValue(s)) if !s.is_empty() => Some(Cow::Borrowed(s.as_str())),
        Some(Value::IntValue(i)) => Some(Cow::Owned(i.to_string())),
        Some(Value::BoolValue(b)) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Some(Value::DoubleValue(d)) if d.is_finite() => Some(Cow::Owned(d.to_string())),
        _ => None,
    }
}
