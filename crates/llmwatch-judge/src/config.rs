//! The judge's configuration: endpoint, credentials, retry policy and rubric.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::endpoint::SetupError;

/// How to reach the judge model and what to ask it.
///
/// Deserializes from the service's config (TOML) with unknown keys rejected. Durations are
/// written as text such as `"30s"` or `"250ms"`. Only `base_url`, `model` and `rubric` are
/// required:
///
/// ```toml
/// base_url = "https://api.openai.com/v1"
/// model = "gpt-4o-mini"
/// api_key_env = "OPENAI_API_KEY"
/// timeout = "30s"
/// max_attempts = 3
/// backoff = { initial = "500ms", max = "10s" }
/// json_schema = true
/// extra_headers = { "OpenAI-Organization" = "org-123" }
/// extra_body = { temperature = 0.0, max_tokens = 600 }
///
/// [[rubric]]
/// name = "correctness"
/// scale_min = 1
/// scale_max = 5
/// instructions = "Is the answer factually and logically correct?"
///
/// [[rubric]]
/// name = "groundedness"
/// scale_min = 1
/// scale_max = 5
/// instructions = "Is every claim supported by the context?"
/// needs_context = true
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeConfig {
    /// The OpenAI-compatible API root, e.g. `https://api.openai.com/v1` or
    /// `http://localhost:8000/v1`; requests go to `{base_url}/chat/completions`.
    pub base_url: String,
    /// The judge model, sent as `model`.
    pub model: String,
    /// The name of the environment variable holding the API key, read once when the
    /// [`Judge`](crate::Judge) is built and sent as `Authorization: Bearer <key>`. `None` (the
    /// default) sends no `Authorization` header, for local endpoints that need none.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Headers added to every request (e.g. `OpenAI-Organization`, a gateway's routing
    /// header). They may not set `Authorization` when `api_key_env` is set, nor
    /// `Content-Type`.
    #[serde(default)]
    pub extra_headers: BTreeMap<String, String>,
    /// Fields merged into every request body, e.g. `temperature`, `seed`, `max_tokens`
    /// (names differ between servers, so none is sent unless configured). They may not set
    /// `model`, `messages` or `response_format`.
    #[serde(default)]
    pub extra_body: BTreeMap<String, serde_json::Value>,
    /// The limit on one request, from sending it to reading the whole reply.
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// How many requests one evaluation may make for rate limits (429), server errors (5xx),
    /// timeouts and transport errors, the first included. A reply that fails to parse is
    /// retried once on top of this budget.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// The waits between retried requests.
    #[serde(default)]
    pub backoff: Backoff,
    /// `true` (the default) asks for `response_format: {type: "json_schema", strict: true}`
    /// with the verdict's schema; `false` asks for `{type: "json_object"}`, for endpoints
    /// without structured outputs. The expected shape is spelled out in the system message
    /// either way.
    #[serde(default = "default_true")]
    pub json_schema: bool,
    /// The longest `prompt`, `response`, `context` or `system_instructions` sent, in
    /// characters; longer ones are cut and marked as cut. `0` sends them whole.
    #[serde(default = "default_max_content_chars")]
    pub max_content_chars: usize,
    /// The dimensions scored, in the order they are presented and reported.
    pub rubric: Vec<Dimension>,
}

/// Exponential backoff between retried requests: `initial`, then doubling, at most `max`. A
/// `Retry-After` header replaces the computed wait, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    /// The wait before the first retry.
    #[serde(default = "default_backoff_initial", deserialize_with = "duration")]
    pub initial: Duration,
    /// The longest wait, including one asked for by `Retry-After`.
    #[serde(default = "default_backoff_max", deserialize_with = "duration")]
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: default_backoff_initial(),
            max: default_backoff_max(),
        }
    }
}

impl Backoff {
    /// The wait before retry number `retry` (1 for the first retry): `initial * 2^(retry-1)`,
    /// at most `max`.
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// One scored dimension of the rubric.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dimension {
    /// The key of the score in the verdict, e.g. `correctness`: ASCII letters, digits, `_` and
    /// `-`, at most 64 characters, unique in the rubric.
    pub name: String,
    /// The lowest score.
    pub scale_min: f64,
    /// The highest score, greater than `scale_min`.
    pub scale_max: f64,
    /// Whether only whole scores are allowed (`true`, the default: the schema says
    /// `integer` and the bounds must be whole) or any number in the scale (`false`: `number`).
    #[serde(default = "default_true")]
    pub integer: bool,
    /// What the dimension measures and how to score it, shown to the judge.
    pub instructions: String,
    /// The dimension is judged only when the request carries context (e.g. groundedness in
    /// retrieved documents); without context it is left out of the prompt, the schema and the
    /// verdict.
    #[serde(default)]
    pub needs_context: bool,
}

impl JudgeConfig {
    /// Checks every setting except the API key (read by [`Judge::new`](crate::Judge::new)).
    pub fn validate(&self) -> Result<(), SetupError> {
        let invalid = |key: &str, reason: String| Err(SetupError::new(key, reason));
        if let Err(crate::endpoint::EndpointError::InvalidBaseUrl { url, reason }) =
            crate::endpoint::endpoint_url(&self.base_url, "chat/completions")
        {
            return invalid(
                "base_url",
                format!("an http(s) API root, got {url:?} ({reason})"),
            );
        }
        if self.model.trim().is_empty() {
            return invalid("model", "must not be empty".into());
        }
        if self.api_key_env.as_deref().is_some_and(|v| v.is_empty()) {
            return invalid("api_key_env", "must name a variable".into());
        }
        if self.timeout.is_zero() {
            return invalid("timeout", "must be longer than 0".into());
        }
        if self.max_attempts == 0 {
            return invalid("max_attempts", "must be at least 1".into());
        }
        if self.backoff.initial > self.backoff.max {
            return invalid(
                "backoff",
                format!(
                    "initial ({:?}) must not exceed max ({:?})",
                    self.backoff.initial, self.backoff.max
                ),
            );
        }
        for key in self.extra_body.keys() {
            if RESERVED_BODY_KEYS.contains(&key.as_str()) {
                return invalid(
                    "extra_body",
                    format!("{key:?} is set by the judge and cannot be overridden"),
                );
            }
        }
        if self.rubric.is_empty() {
            return invalid("rubric", "needs at least one dimension".into());
        }
        let mut names = BTreeSet::new();
        for (i, d) in self.rubric.iter().enumerate() {
            let key = format!("rubric[{i}]");
            if d.name.is_empty()
                || d.name.len() > 64
                || !d
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return invalid(
                    &key,
                    format!(
                        "name {:?} must be 1 to 64 ASCII letters, digits, '_' or '-'",
                        d.name
                    ),
                );
            }
            if !names.insert(d.name.as_str()) {
                return invalid(&key, format!("name {:?} appears twice", d.name));
            }
            if !d.scale_min.is_finite() || !d.scale_max.is_finite() || d.scale_min >= d.scale_max {
                return invalid(
                    &key,
                    format!(
                        "scale_min ({}) must be below scale_max ({}), both finite",
                        d.scale_min, d.scale_max
                    ),
                );
            }
            if d.integer && (d.scale_min.fract() != 0.0 || d.scale_max.fract() != 0.0) {
                return invalid(
                    &key,
                    format!(
                        "an integer scale needs whole bounds, got {} to {} (set integer = false for a continuous scale)",
                        d.scale_min, d.scale_max
                    ),
                );
            }
            if d.instructions.trim().is_empty() {
                return invalid(&key, "instructions must not be empty".into());
            }
        }
        Ok(())
    }
}

/// Request body fields the judge sets itself.
pub(crate) const RESERVED_BODY_KEYS: &[&str] = &["model", "messages", "response_format"];

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_max_attempts() -> u32 {
    3
}

fn default_backoff_initial() -> Duration {
    Duration::from_millis(500)
}

fn default_backoff_max() -> Duration {
    Duration::from_secs(10)
}

fn default_true() -> bool {
    true
}

fn default_max_content_chars() -> usize {
    32_000
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "expected a duration such as \"30s\" or \"250ms\", got {text:?} ({e})"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dimension(name: &str) -> Dimension {
        Dimension {
            name: name.into(),
            scale_min: 1.0,
            scale_max: 5.0,
            integer: true,
            instructions: "x".into(),
            needs_context: false,
        }
    }

    fn config() -> JudgeConfig {
        JudgeConfig {
            base_url: "http://localhost:8000/v1".into(),
            model: "m".into(),
            api_key_env: None,
            extra_headers: BTreeMap::new(),
            extra_body: BTreeMap::new(),
            timeout: Duration::from_secs(1),
            max_attempts: 3,
            backoff: Backoff::default(),
            json_schema: true,
            max_content_chars: 100,
            rubric: vec![dimension("correctness")],
        }
    }

    #[test]
    fn backoff_doubles_up_to_max() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(350),
        };
        let delays: Vec<_> = (1..=5).map(|r| b.delay(r).as_millis()).collect();
        assert_eq!(delays, [100, 200, 350, 350, 350]);
        assert_eq!(b.delay(u32::MAX), Duration::from_millis(350));
    }

    #[test]
    fn validation_names_the_key() {
        assert_eq!(config().validate(), Ok(()));
        type Mutation = Box<dyn Fn(&mut JudgeConfig)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|c| c.base_url = "ftp://h/v1".into()), "base_url"),
            (
                Box::new(|c| c.base_url = "localhost:8000".into()),
                "base_url",
            ),
            (
                Box::new(|c| c.base_url = "http://h/v1?x=1".into()),
                "base_url",
            ),
            (Box::new(|c| c.model = " ".into()), "model"),
            (Box::new(|c| c.max_attempts = 0), "max_attempts"),
            (Box::new(|c| c.timeout = Duration::ZERO), "timeout"),
            (
                Box::new(|c| c.backoff.initial = Duration::from_secs(60)),
                "backoff",
            ),
            (Box::new(|c| c.rubric.clear()), "rubric"),
            (Box::new(|c| c.rubric[0].name = "a b".into()), "rubric[0]"),
            (
                Box::new(|c| c.rubric.push(dimension("correctness"))),
                "rubric[1]",
            ),
            (Box::new(|c| c.rubric[0].scale_max = 1.0), "rubric[0]"),
            (Box::new(|c| c.rubric[0].scale_min = f64::NAN), "rubric[0]"),
            (
                Box::new(|c| c.rubric[0].instructions = "".into()),
                "rubric[0]",
            ),
            (Box::new(|c| c.rubric[0].scale_max = 4.5), "rubric[0]"),
            (
                Box::new(|c| {
                    c.extra_body
                        .insert("messages".into(), serde_json::json!([]));
                }),
                "extra_body",
            ),
        ];
        for (mutate, want) in cases {
            let mut c = config();
            mutate(&mut c);
            match c.validate() {
                Err(SetupError { key, .. }) => assert_eq!(key, want),
                other => panic!("{want}: {other:?}"),
            }
        }
    }

    #[test]
    fn continuous_scales_may_have_fractional_bounds() {
        let mut c = config();
        c.rubric[0].integer = false;
        c.rubric[0].scale_max = 4.5;
        assert_eq!(c.validate(), Ok(()));
    }
}
