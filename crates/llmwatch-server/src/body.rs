//! Turning an OTLP/HTTP body into an export request: size limits, gzip with a bounded output,
//! protobuf or OTLP/JSON.

use std::io::Read;

use flate2::read::GzDecoder;
use llmwatch_core::RequestRejection;
use serde_json::Value;

/// The two OTLP/HTTP payload encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

impl Format {
    /// Reads `Content-Type`, ignoring parameters such as `charset`.
    pub fn from_content_type(content_type: Option<&str>) -> Option<Format> {
        let media_type = content_type?.split(';').next()?.trim();
        if media_type.eq_ignore_ascii_case("application/x-protobuf")
            || media_type.eq_ignore_ascii_case("application/protobuf")
        {
            Some(Format::Protobuf)
        } else if media_type.eq_ignore_ascii_case("application/json") {
            Some(Format::Json)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

/// A request the receiver refuses as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RequestRejection,
    pub message: String,
}

impl Rejection {
    pub fn new(reason: RequestRejection, message: impl Into<String>) -> Rejection {
        Rejection {
            reason,
            message: message.into(),
        }
    }
}

/// Undoes `Content-Encoding` (identity or gzip), never producing more than `limit` bytes, so a
/// small compressed body cannot inflate into an unbounded allocation.
pub fn decode_content_encoding(
    encoding: Option<&str>,
    body: bytes::Bytes,
    limit: usize,
) -> Result<bytes::Bytes, Rejection> {
    match encoding.map(str::trim) {
        None | Some("") | Some("identity") => Ok(body),
        Some(e) if e.eq_ignore_ascii_case("gzip") => {
            let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
            GzDecoder::new(&body[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    Rejection::new(
                        RequestRejection::Undecodable,
                        format!("invalid gzip body: {e}"),
                    )
                })?;
            if out.len() > limit {
                return Err(Rejection::new(
                    RequestRejection::TooLarge,
                    format!("decompressed body exceeds the limit of {limit} bytes"),
                ));
            }
            Ok(out.into())
        }
        Some(other) => Err(Rejection::new(
            RequestRejection::UnsupportedEncoding,
            format!("unsupported Content-Encoding {other:?}; use gzip or identity"),
        )),
    }
}

/// Decodes an export request from protobuf or OTLP/JSON.
pub fn decode_message<M>(format: Format, body: &[u8]) -> Result<M, Rejection>
where
    M: prost::Message + Default + serde::de::DeserializeOwned,
{
    match format {
        Format::Protobuf => M::decode(body).map_err(|e| {
            Rejection::new(
                RequestRejection::Undecodable,
                format!("invalid protobuf body: {e}"),
            )
        }),
        Format::Json => {
            let mut value: Value = serde_json::from_slice(body).map_err(|e| {
                Rejection::new(
                    RequestRejection::Undecodable,
                    format!("invalid JSON body: {e}"),
                )
            })?;
            normalize_otlp_json(&mut value);
            serde_json::from_value(value).map_err(|e| {
                Rejection::new(
                    RequestRejection::Undecodable,
                    format!("invalid OTLP/JSON body: {e}"),
                )
            })
        }
    }
}

/// Brings OTLP/JSON into the exact shape the serde mapping reads: field names in lowerCamelCase
/// (proto3 JSON also allows the original snake_case names) and enum values as numbers (proto3
/// JSON also allows their names).
pub fn normalize_otlp_json(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(normalize_otlp_json),
        Value::Object(map) => {
            if map.keys().any(|k| k.contains('_')) {
                let entries = std::mem::take(map);
                for (key, v) in entries {
                    map.insert(lower_camel_case(&key), v);
                }
            }
            for (key, v) in map.iter_mut() {
                if let Value::String(name) = v
                    && let Some(number) = enum_number(key, name)
                {
                    *v = Value::from(number);
                    continue;
                }
                normalize_otlp_json(v);
            }
        }
        _ => {}
    }
}

fn lower_camel_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The number of an OTLP enum value written by name.
fn enum_number(field: &str, name: &str) -> Option<i64> {
    const SPAN_KINDS: [&str; 6] = [
        "SPAN_KIND_UNSPECIFIED",
        "SPAN_KIND_INTERNAL",
        "SPAN_KIND_SERVER",
        "SPAN_KIND_CLIENT",
        "SPAN_KIND_PRODUCER",
        "SPAN_KIND_CONSUMER",
    ];
    const STATUS_CODES: [&str; 3] = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];
    const SEVERITIES: [&str; 25] = [
        "SEVERITY_NUMBER_UNSPECIFIED",
        "SEVERITY_NUMBER_TRACE",
        "SEVERITY_NUMBER_TRACE2",
        "SEVERITY_NUMBER_TRACE3",
        "SEVERITY_NUMBER_TRACE4",
        "SEVERITY_NUMBER_DEBUG",
        "SEVERITY_NUMBER_DEBUG2",
        "SEVERITY_NUMBER_DEBUG3",
        "SEVERITY_NUMBER_DEBUG4",
        "SEVERITY_NUMBER_INFO",
        "SEVERITY_NUMBER_INFO2",
        "SEVERITY_NUMBER_INFO3",
        "SEVERITY_NUMBER_INFO4",
        "SEVERITY_NUMBER_WARN",
        "SEVERITY_NUMBER_WARN2",
        "SEVERITY_NUMBER_WARN3",
        "SEVERITY_NUMBER_WARN4",
        "SEVERITY_NUMBER_ERROR",
        "SEVERITY_NUMBER_ERROR2",
        "SEVERITY_NUMBER_ERROR3",
        "SEVERITY_NUMBER_ERROR4",
        "SEVERITY_NUMBER_FATAL",
        "SEVERITY_NUMBER_FATAL2",
        "SEVERITY_NUMBER_FATAL3",
        "SEVERITY_NUMBER_FATAL4",
    ];
    let names: &[&str] = match field {
        "kind" => &SPAN_KINDS,
        "code" => &STATUS_CODES,
        "severityNumber" => &SEVERITIES,
        _ => return None,
    };
    if let Ok(number) = name.parse::<i64>() {
        return Some(number);
    }
    names.iter().position(|n| *n == name).map(|i| i as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

    #[test]
    fn accepts_enum_names_snake_case_and_int64_strings() {
        let json = br#"{"resource_spans":[{"scopeSpans":[{"spans":[{
            "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
            "name":"chat gpt-4o","kind":"SPAN_KIND_CLIENT",
            "startTimeUnixNano":"1700000000000000000","end_time_unix_nano":1700000001000000000,
            "status":{"code":"STATUS_CODE_ERROR"},
            "attributes":[{"key":"gen_ai.usage.input_tokens","value":{"intValue":"42"}}]}]}]}]}"#;
        let request: ExportTraceServiceRequest = decode_message(Format::Json, json).unwrap();
        let span = &request.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.kind, 3);
        assert_eq!(span.status.as_ref().unwrap().code, 2);
        assert_eq!(span.trace_id.len(), 16);
        assert_eq!(
            span.end_time_unix_nano - span.start_time_unix_nano,
            1_000_000_000
        );
        let value = span.attributes[0]
            .value
            .as_ref()
            .unwrap()
            .value
            .as_ref()
            .unwrap();
        assert_eq!(
            value,
            &opentelemetry_proto::tonic::common::v1::any_value::Value::IntValue(42)
        );
    }

    #[test]
    fn gzip_output_is_bounded() {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&vec![0u8; 10 << 20]).unwrap();
        let bomb = bytes::Bytes::from(encoder.finish().unwrap());
        assert!(bomb.len() < 64 << 10);
        let error = decode_content_encoding(Some("gzip"), bomb, 1 << 20).unwrap_err();
        assert_eq!(error.reason, RequestRejection::TooLarge);
        let error = decode_content_encoding(Some("br"), bytes::Bytes::new(), 10).unwrap_err();
        assert_eq!(error.reason, RequestRejection::UnsupportedEncoding);
    }
}
