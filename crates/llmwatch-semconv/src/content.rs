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

impl ContentRef<'_> {
    /// The text of the last user message of an input, for implicit signals (a correction starts
    /// the user's new message). Message lists in any of the conventions' shapes are searched for
    /// the last `role: user` entry; input that is not a message list (a plain prompt) is the
    /// user's text as a whole.
    pub fn last_user_text(&self) -> Option<String> {
        let mut out = Vec::new();
        match self {
            ContentRef::Value(value) => last_user_any(value, &mut out),
            ContentRef::Flattened { attributes, prefix } => {
                // `{prefix}{index}.…role = "user"`: the highest such index is the last message.
                let index_of = |key: &str| -> Option<u64> {
                    key.strip_prefix(prefix)?.split('.').next()?.parse().ok()
                };
                let last = attributes
                    .iter()
                    .filter(|kv| kv.key.ends_with("role"))
                    .filter(|kv| kv.value.as_ref().and_then(crate::value::as_str) == Some("user"))
                    .filter_map(|kv| index_of(&kv.key))
                    .max()?;
                for kv in attributes.iter() {
                    if index_of(&kv.key) == Some(last)
                        && crate::span::is_flattened_content(&kv.key)
                        && let Some(value) = &kv.value
                    {
                        collect_any(value, &mut out);
                    }
                }
            }
        }
        let text = out.join("\n");
        (!text.trim().is_empty()).then_some(text)
    }
}

impl ContentRef<'_> {
    /// [`ContentRef::to_text`] and [`ContentRef::last_user_text`] at once, a JSON string parsed
    /// once for both.
    pub fn text_and_last_user_text(&self) -> (String, Option<String>) {
        let json = match self {
            ContentRef::Value(AnyValue {
                value: Some(Value::StringValue(s)),
            }) => match serde_json::from_str::<serde_json::Value>(s) {
                Ok(json @ (serde_json::Value::Array(_) | serde_json::Value::Object(_))) => json,
                // Plain text is both the whole input and the user's message.
                _ => return (s.clone(), (!s.trim().is_empty()).then(|| s.clone())),
            },
            _ => return (self.to_text(), self.last_user_text()),
        };
        let (mut text, mut user) = (Vec::new(), Vec::new());
        collect_json(&json, &mut text);
        last_user_json(&json, &mut user);
        let user = user.join("\n");
        (text.join("\n"), (!user.trim().is_empty()).then_some(user))
    }
}

fn last_user_any(value: &AnyValue, out: &mut Vec<String>) {
    match &value.value {
        Some(Value::StringValue(s)) => match serde_json::from_str::<serde_json::Value>(s) {
            Ok(json @ (serde_json::Value::Array(_) | serde_json::Value::Object(_))) => {
                last_user_json(&json, out)
            }
            _ => out.push(s.clone()),
        },
        Some(Value::ArrayValue(array)) => {
            let is_user = |v: &&AnyValue| match &v.value {
                Some(Value::KvlistValue(list)) => list.values.iter().any(|kv| {
                    kv.key == "role"
                        && kv.value.as_ref().and_then(crate::value::as_str) == Some("user")
                }),
                _ => false,
            };
            if let Some(message) = array.values.iter().rfind(is_user) {
                collect_any(message, out);
            }
        }
        // One message (the legacy `gen_ai.user.message` body).
        Some(Value::KvlistValue(_)) => collect_any(value, out),
        _ => {}
    }
}

fn last_user_json(json: &serde_json::Value, out: &mut Vec<String>) {
    match json {
        serde_json::Value::Array(items) => {
            let is_user =
                |v: &&serde_json::Value| v.get("role").and_then(|r| r.as_str()) == Some("user");
            if let Some(message) = items.iter().rfind(is_user) {
                collect_json(message, out);
            }
        }
        // A raw request payload: `{"messages": [...]}` or `{"input": [...]}`.
        serde_json::Value::Object(map) => {
            if let Some(messages) = map.get("messages").or_else(|| map.get("input")) {
                match messages {
                    serde_json::Value::String(text) => out.push(text.clone()),
                    other => last_user_json(other, out),
                }
            } else if map.get("role").and_then(|r| r.as_str()) == Some("user") {
                collect_json(json, out);
            }
        }
        _ => {}
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

    #[test]
    fn finds_the_last_user_message_in_every_shape() {
        let openai = string(
            r#"[{"role":"user","content":"What is 2+2?"},{"role":"assistant","content":"5"},{"role":"user","content":"No, that's wrong"}]"#,
        );
        assert_eq!(
            ContentRef::Value(&openai).last_user_text().as_deref(),
            Some("No, that's wrong")
        );
        let parts = string(
            r#"[{"role":"user","parts":[{"type":"text","content":"Hi"}]},{"role":"tool","parts":[{"type":"text","content":"42"}]}]"#,
        );
        assert_eq!(
            ContentRef::Value(&parts).last_user_text().as_deref(),
            Some("Hi")
        );
        let raw = string(r#"{"model":"m","messages":[{"role":"user","content":"Again?"}]}"#);
        assert_eq!(
            ContentRef::Value(&raw).last_user_text().as_deref(),
            Some("Again?")
        );
        let plain = string("Complete this sentence");
        assert_eq!(
            ContentRef::Value(&plain).last_user_text().as_deref(),
            Some("Complete this sentence")
        );
        let flattened = vec![
            kv("gen_ai.prompt.0.role", "user"),
            kv("gen_ai.prompt.0.content", "First"),
            kv("gen_ai.prompt.1.role", "assistant"),
            kv("gen_ai.prompt.1.content", "Answer"),
            kv("gen_ai.prompt.2.role", "user"),
            kv("gen_ai.prompt.2.content", "Actually, I meant Paris"),
        ];
        let input = ContentRef::Flattened {
            attributes: &flattened,
            prefix: "gen_ai.prompt.",
        };
        assert_eq!(
            input.last_user_text().as_deref(),
            Some("Actually, I meant Paris")
        );
        for value in [&openai, &parts, &raw, &plain] {
            let content = ContentRef::Value(value);
            assert_eq!(
                content.text_and_last_user_text(),
                (content.to_text(), content.last_user_text())
            );
        }
        assert_eq!(
            input.text_and_last_user_text(),
            (
                "First\nAnswer\nActually, I meant Paris".to_owned(),
                input.last_user_text()
            )
        );
        let system_only = string(r#"[{"role":"system","content":"Be brief."}]"#);
        assert_eq!(ContentRef::Value(&system_only).last_user_text(), None);
    }
}
