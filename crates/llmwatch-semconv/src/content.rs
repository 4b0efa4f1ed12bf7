//! Message content an app chose to capture, kept as references for later stages (judge, safety
//! patterns, embeddings). Never turned into metric labels.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};

/// Where one side of a conversation was captured.
#[derive(Debug, Clone, Copy)]
pub enum ContentRef<'a> {
    /// A single attribute, event attribute or log body: a JSON string or a structured value.
    Value(&'a AnyValue),
    /// Flattened indexed attributes such as `gen_ai.prompt.0.content` or
    /// `llm.input_messages.0.message.content`: every key under `prefix` ending in `content`.
    Flattened {
        attributes: &'a [KeyValue],
        prefix: &'static str,
    },
}

/// The input, output and system instructions of a call, where captured.
#[derive(Debug, Clone, Copy, Default)]
pub struct CapturedContent<'a> {
    pub input: Option<ContentRef<'a>>,
    pub output: Option<ContentRef<'a>>,
    pub system_instructions: Option<ContentRef<'a>>,
}

impl CapturedContent<'_> {
    pub fn is_empty(&self) -> bool {
        self.input.is_none() && self.output.is_none() && self.system_instructions.is_none()
    }
}

impl ContentRef<'_> {
    /// The human-readable text: message contents and text parts joined by newlines.
    ///
    /// JSON strings in any of the conventions' shapes (OpenAI messages, `parts` messages, plain
    /// strings) are read for their `content`/`text` leaves; anything else is kept verbatim.
    pub fn to_text(&self) -> String {
        let mut out = Vec::new();
        match self {
            ContentRef::Value(value) => collect_any(value, &mut out),
            ContentRef::Flattened { attributes, prefix } => {
                for kv in attributes.iter() {
                    if kv.key.starts_with(prefix)
                        && crate::span::is_flattened_content(&kv.key)
                        && let Some(value) = &kv.value
                    {
                        collect_any(value, &mut out);
                    }
                }
            }
        }
        out.join("\n")
    }
}

fn collect_any(value: &AnyValue, out: &mut Vec<String>) {
    match &value.value {
        Some(Value::StringValue(s)) => match serde_json::from_str::<serde_json::Value>(s) {
            Ok(json @ (serde_json::Value::Array(_) | serde_json::Value::Object(_))) => {
                collect_json(&json, out)
            }
            _ => out.push(s.clone()),
        },
        Some(Value::ArrayValue(array)) => array.values.iter().for_each(|v| collect_any(v, out)),
        Some(Value::KvlistValue(list)) => {
            for kv in &list.values {
                let Some(v) = &kv.value else { continue };
                match (kv.key.as_str(), &v.value) {
                    ("content" | "text", Some(Value::StringValue(s))) => out.push(s.clone()),
                    (_, Some(Value::ArrayValue(_) | Value::KvlistValue(_))) => collect_any(v, out),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

fn collect_json(json: &serde_json::Value, out: &mut Vec<String>) {
    match json {
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_json(v, out)),
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("content" | "text", serde_json::Value::String(s)) => out.push(s.clone()),
                    (_, serde_json::Value::Array(_) | serde_json::Value::Object(_)) => {
                        collect_json(v, out)
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> AnyValue {
        AnyValue {
            value: Some(Value::StringValue(s.to_owned())),
        }
    }

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(string(value)),
            ..Default::default()
        }
    }

    #[test]
    fn reads_text_from_every_message_shape() {
        let parts =
            string(r#"[{"role":"user","parts":[{"type":"text","content":"What is 2+2?"}]}]"#);
        assert_eq!(ContentRef::Value(&parts).to_text(), "What is 2+2?");
        let openai =
            string(r#"[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]"#);
        assert_eq!(ContentRef::Value(&openai).to_text(), "Be brief.\nHi");
        let plain = string("just text");
        assert_eq!(ContentRef::Value(&plain).to_text(), "just text");
        let flattened = vec![
            kv("gen_ai.prompt.0.role", "user"),
            kv("gen_ai.prompt.0.content", "Hello"),
            kv("gen_ai.completion.0.content", "Hey"),
        ];
        let input = ContentRef::Flattened {
            attributes: &flattened,
            prefix: "gen_ai.prompt.",
        };
        assert_eq!(input.to_text(), "Hello");
    }
}
