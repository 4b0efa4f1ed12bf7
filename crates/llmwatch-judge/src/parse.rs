//! Strict parsing of a chat-completions reply: the envelope (usage, model, refusal, the content)
//! here for every kind of verdict, the quality verdict's scores too ([`parse_verdict`]; the
//! safety verdict is parsed in `safety.rs`).

use serde_json::Value;

use crate::config::Dimension;
use crate::error::{Usage, excerpt};

/// How much of a bad reply is kept for diagnosis, in characters.
const RAW_EXCERPT_CHARS: usize = 300;

/// A reply parsed as a verdict on some dimensions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Parsed {
    pub scores: Vec<(String, f64)>,
    pub reasons: Vec<(String, String)>,
}

/// A successful (HTTP 2xx) reply: what it billed and which model answered, whatever its content.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply<T = Parsed> {
    pub usage: Usage,
    pub model: Option<String>,
    pub verdict: Result<T, ParseFailure>,
}

/// Why a reply is not a verdict.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParseFailure {
    pub reason: String,
    pub raw_excerpt: String,
}

/// Parses a 2xx chat-completions body: usage and model when readable, and the verdict from
/// `choices[0].message.content` by `parse_content` (e.g. [`parse_verdict`] on the rubric's
/// dimensions), which says why when the content is not one.
pub(crate) fn parse_reply<T>(
    body: &[u8],
    parse_content: impl FnOnce(&str) -> Result<T, String>,
) -> Reply<T> {
    let text = String::from_utf8_lossy(body);
    let fail = |reason: String, raw: &str| ParseFailure {
        reason,
        raw_excerpt: excerpt(raw, RAW_EXCERPT_CHARS),
    };
    let envelope: Value = match serde_json::from_str(&text) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return Reply {
                usage: Usage::default(),
                model: None,
                verdict: Err(fail("reply body is not a JSON object".into(), &text)),
            };
        }
        Err(e) => {
            return Reply {
                usage: Usage::default(),
                model: None,
                verdict: Err(fail(format!("reply body is not JSON: {e}"), &text)),
            };
        }
    };
    let usage = usage_of(&envelope);
    let model = envelope["model"].as_str().map(str::to_owned);
    let message = &envelope["choices"][0]["message"];
    let verdict = if let Some(refusal) = message["refusal"].as_str() {
        Err(fail("the judge refused".into(), refusal))
    } else if let Some(content) = message["content"].as_str() {
        parse_content(content).map_err(|reason| {
            let reason = if envelope["choices"][0]["finish_reason"] == "length" {
                format!("{reason} (the reply was cut at the token limit)")
            } else {
                reason
            };
            fail(reason, content)
        })
    } else {
        Err(fail(
            "reply has no choices[0].message.content string".into(),
            &text,
        ))
    };
    Reply {
        usage,
        model,
        verdict,
    }
}

fn usage_of(envelope: &Value) -> Usage {
    let usage = &envelope["usage"];
    Usage {
        prompt_tokens: usage["prompt_tokens"].as_u64().unwrap_or(0),
        completion_tokens: usage["completion_tokens"].as_u64().unwrap_or(0),
        cached_tokens: usage["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0),
    }
}

/// The content without one surrounding Markdown code fence (```` ```json ... ``` ````), which
/// some models add in `json_object` mode.
pub(crate) fn unfenced(content: &str) -> &str {
    let trimmed = content.trim();
    let Some(rest) = trimmed.strip_prefix("```") else {
        return trimmed;
    };
    let Some(inner) = rest.strip_suffix("```") else {
        return trimmed;
    };
    // Drop the info string (`json`) up to the end of the opening line.
    match inner.find('\n') {
        Some(newline) => inner[newline + 1..].trim(),
        None => trimmed,
    }
}

/// Parses the verdict object. Every dimension must have a score that is a JSON number,
/// finite, within its scale and whole on an integer scale, and a reason that is a string.
/// Keys for other dimensions are ignored.
pub(crate) fn parse_verdict(content: &str, dimensions: &[&Dimension]) -> Result<Parsed, String> {
    let value: Value = serde_json::from_str(unfenced(content))
        .map_err(|e| format!("content is not valid JSON: {e}"))?;
    let Value::Object(object) = value else {
        return Err("content is not a JSON object".into());
    };
    let Some(Value::Object(scores)) = object.get("scores") else {
        return Err("\"scores\" is missing or not an object".into());
    };
    let Some(Value::Object(reasons)) = object.get("reasons") else {
        return Err("\"reasons\" is missing or not an object".into());
    };
    let mut parsed = Parsed {
        scores: Vec::with_capacity(dimensions.len()),
        reasons: Vec::with_capacity(dimensions.len()),
    };
    for d in dimensions {
        let name = &d.name;
        let score = match scores.get(name) {
            None => return Err(format!("score for {name:?} is missing")),
            Some(Value::Number(n)) => n
                .as_f64()
                .ok_or_else(|| format!("score for {name:?} is not a finite number: {n}"))?,
            Some(other) => return Err(format!("score for {name:?} is not a number: {other}")),
        };
        if !score.is_finite() {
            return Err(format!("score for {name:?} is not a finite number"));
        }
        if score < d.scale_min || score > d.scale_max {
            return Err(format!(
                "score for {name:?} is {score}, outside its scale {} to {}",
                d.scale_min, d.scale_max
            ));
        }
        if d.integer && score.fract() != 0.0 {
            return Err(format!(
                "score for {name:?} is {score}, not a whole number on its integer scale"
            ));
        }
        let reason = match reasons.get(name) {
            Some(Value::String(s)) => s.clone(),
            None => return Err(format!("reason for {name:?} is missing")),
            Some(other) => return Err(format!("reason for {name:?} is not a string: {other}")),
        };
        parsed.scores.push((name.clone(), score));
        parsed.reasons.push((name.clone(), reason));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dims() -> Vec<Dimension> {
        vec![
            Dimension {
                name: "correctness".into(),
                scale_min: 1.0,
                scale_max: 5.0,
                integer: true,
                instructions: "i".into(),
                needs_context: false,
            },
            Dimension {
                name: "tone".into(),
                scale_min: 0.0,
                scale_max: 1.0,
                integer: false,
                instructions: "i".into(),
                needs_context: false,
            },
        ]
    }

    fn verdict(content: &str) -> Result<Parsed, String> {
        let d = dims();
        let refs: Vec<&Dimension> = d.iter().collect();
        parse_verdict(content, &refs)
    }

    #[test]
    fn valid_verdict_in_rubric_order() {
        let p = verdict(
            r#"{"scores": {"tone": 0.25, "correctness": 4.0, "extra": 9},
                "reasons": {"tone": "t", "correctness": "c"}}"#,
        )
        .unwrap();
        assert_eq!(
            p.scores,
            [("correctness".to_owned(), 4.0), ("tone".to_owned(), 0.25)]
        );
        assert_eq!(
            p.reasons,
            [
                ("correctness".to_owned(), "c".to_owned()),
                ("tone".to_owned(), "t".to_owned())
            ]
        );
    }

    #[test]
    fn fenced_content_is_accepted() {
        let content = "```json\n{\"scores\": {\"correctness\": 2, \"tone\": 1}, \
                       \"reasons\": {\"correctness\": \"\", \"tone\": \"\"}}\n```";
        assert_eq!(verdict(content).unwrap().scores[0].1, 2.0);
    }

    #[test]
    fn every_violation_is_a_failure_never_a_default() {
        let r = r#""reasons": {"correctness": "c", "tone": "t"}"#;
        let cases = [
            ("not json".to_owned(), "not valid JSON"),
            ("[1]".to_owned(), "not a JSON object"),
            (format!(r#"{{{r}}}"#), "\"scores\" is missing"),
            (
                r#"{"scores": {"correctness": 3, "tone": 1}}"#.to_owned(),
                "\"reasons\" is missing",
            ),
            (
                format!(r#"{{"scores": {{"tone": 1}}, {r}}}"#),
                "score for \"correctness\" is missing",
            ),
            (
                format!(r#"{{"scores": {{"correctness": "4", "tone": 1}}, {r}}}"#),
                "score for \"correctness\" is not a number",
            ),
            (
                format!(r#"{{"scores": {{"correctness": null, "tone": 1}}, {r}}}"#),
                "score for \"correctness\" is not a number",
            ),
            (
                format!(r#"{{"scores": {{"correctness": 6, "tone": 1}}, {r}}}"#),
                "outside its scale 1 to 5",
            ),
            (
                format!(r#"{{"scores": {{"correctness": 0, "tone": 1}}, {r}}}"#),
                "outside its scale 1 to 5",
            ),
            (
                format!(r#"{{"scores": {{"correctness": 3.5, "tone": 1}}, {r}}}"#),
                "not a whole number",
            ),
            (
                format!(r#"{{"scores": {{"correctness": 3, "tone": 1.01}}, {r}}}"#),
                "outside its scale 0 to 1",
            ),
            (
                format!(r#"{{"scores": {{"correctness": 3, "tone": 1e999}}, {r}}}"#),
                "not valid JSON",
            ),
            (
                r#"{"scores": {"correctness": 3, "tone": 1}, "reasons": {"correctness": 1, "tone": "t"}}"#
                    .to_owned(),
                "reason for \"correctness\" is not a string",
            ),
        ];
        for (content, want) in cases {
            let err = verdict(&content).unwrap_err();
            assert!(err.contains(want), "{content}: {err}");
        }
    }

    #[test]
    fn envelope_usage_model_refusal_and_truncation() {
        let d = dims();
        let refs: Vec<&Dimension> = d.iter().collect();
        let body = json!({
            "model": "judge-2024",
            "choices": [{"message": {"role": "assistant", "content": "{\"scores\": {"}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 64}},
        });
        let reply = parse_reply(body.to_string().as_bytes(), |c| parse_verdict(c, &refs));
        assert_eq!(
            reply.usage,
            Usage {
                prompt_tokens: 100,
                completion_tokens: 7,
                cached_tokens: 64
            }
        );
        assert_eq!(reply.model.as_deref(), Some("judge-2024"));
        let failure = reply.verdict.unwrap_err();
        assert!(
            failure.reason.contains("cut at the token limit"),
            "{failure:?}"
        );
        assert_eq!(failure.raw_excerpt, "{\"scores\": {");

        let refused = json!({"choices": [{"message": {"content": null, "refusal": "I can't"}}]});
        let failure = parse_reply(refused.to_string().as_bytes(), |c| parse_verdict(c, &refs))
            .verdict
            .unwrap_err();
        assert_eq!(failure.reason, "the judge refused");
        assert_eq!(failure.raw_excerpt, "I can't");

        let reply = parse_reply(b"<html>oops</html>", |c| parse_verdict(c, &refs));
        assert_eq!(reply.usage, Usage::default());
        assert!(
            reply
                .verdict
                .unwrap_err()
                .reason
                .starts_with("reply body is not JSON")
        );

        let empty = json!({"choices": []});
        let failure = parse_reply(empty.to_string().as_bytes(), |c| parse_verdict(c, &refs))
            .verdict
            .unwrap_err();
        assert_eq!(
            failure.reason,
            "reply has no choices[0].message.content string"
        );
    }
}
